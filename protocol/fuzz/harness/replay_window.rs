//! [`ReplayWindow`] under sequences of counters, at three ring sizes, checked against a model
//! that remembers every accepted counter in a set and states the acceptance rule directly.

use super::common::Input;
use protocol::noise::replay::{ReplayWindow, REJECT_AFTER_MESSAGES};
use std::collections::HashSet;

/// Most operations played from one input.
const MAX_OPS: usize = 1024;

struct Model {
    seen: HashSet<u64>,
    highest: u64,
    window: u64,
}

impl Model {
    fn check(&self, c: u64) -> bool {
        c < REJECT_AFTER_MESSAGES
            && (c > self.highest || (self.highest - c <= self.window && !self.seen.contains(&c)))
    }
    fn update(&mut self, c: u64) -> bool {
        if !self.check(c) {
            return false;
        }
        self.seen.insert(c);
        self.highest = self.highest.max(c);
        true
    }
}

fn play<const BITS: usize>(input: &mut Input<'_>) {
    let mut w = ReplayWindow::<BITS>::new();
    let mut m = Model {
        seen: HashSet::new(),
        highest: 0,
        window: ReplayWindow::<BITS>::WINDOW,
    };
    let bits = BITS as u64;
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        let c = match op % 4 {
            // Near the top: from (BITS + 64) below to 63 above.
            0 => {
                let d = i64::from(input.u16()) % (2 * bits as i64 + 128) - (bits as i64 + 64);
                m.highest.saturating_add_signed(d)
            }
            // Forward by up to many rings.
            1 => m
                .highest
                .saturating_add(u64::from(input.u32()) % (20 * bits)),
            // Around the counter limit.
            2 => (REJECT_AFTER_MESSAGES + bits).saturating_sub(u64::from(input.u16()) % (3 * bits)),
            _ => input.u64(),
        };
        assert_eq!(w.check(c), m.check(c), "check({c}), {BITS} bits");
        if op & 0x80 == 0 {
            assert_eq!(w.update(c), m.update(c), "update({c}), {BITS} bits");
            assert!(!w.check(c), "check({c}) after update");
        }
    }
    let _ = format!("{w:?}");
}

/// Runs one input: a ring-size byte, then counters.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    match input.u8() % 4 {
        0 => play::<64>(&mut input),
        1 => play::<128>(&mut input),
        2 => play::<2048>(&mut input),
        _ => play::<8192>(&mut input),
    }
}

/// In-order runs, reordering inside the window, jumps and the counter limit.
pub fn seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for size in 0..4u8 {
        let mut s = vec![size];
        for i in 0..40u8 {
            s.extend_from_slice(&[0, 64 + i, 0]);
        }
        s.extend_from_slice(&[1, 0, 9, 0, 0]);
        s.extend_from_slice(&[0, 10, 0, 0, 0, 0, 0]);
        s.extend_from_slice(&[2, 5, 0, 2, 6, 0, 2, 5, 0]);
        s.extend_from_slice(&[3, 1, 2, 3, 4, 5, 6, 7, 8]);
        v.push(s);
    }
    v
}
