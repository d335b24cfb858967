//! Anti-replay protection for transport-data counters: a sliding bitmap window in the style of
//! RFC 6479.
//!
//! Every transport-data message carries a 64-bit counter. The receiver keeps the highest counter
//! it has accepted plus a bitmap of which counters just below it it has seen, so it can accept
//! packets that the network reordered while refusing ones an attacker (or the network) replays.
//!
//! # Window semantics
//!
//! Let `H` be the highest counter accepted so far (`H = 0` before the first one). A counter `c`
//! is accepted if and only if
//!
//! 1. `c < REJECT_AFTER_MESSAGES`, and
//! 2. either `c > H`, or `H - c <= BITS - 64` and `c` has not been accepted before.
//!
//! So besides `H` itself, the `BITS - 64` counters directly below it are still accepted out of
//! order ([`ReplayWindow::WINDOW`]): 1984 for the default 2048-bit ring. The bitmap is a ring of
//! `BITS / 64` words; the 64 bits beyond the window are the one word of slack that lets the window
//! slide by whole words without ever clearing a bit still inside it. This is the rule of the
//! Linux kernel and wireguard-go, which use an 8192-bit ring (a window of 8128).
//!
//! # Usage
//!
//! [`ReplayWindow::check`] is read-only and is meant to be called *before* decrypting, to drop
//! obvious replays cheaply. [`ReplayWindow::update`] records a counter and must only be called
//! *after* the packet authenticated: otherwise forged packets could move the window forward and
//! make genuine ones look too old.

use std::fmt;

/// Counters at or beyond this value are refused: a keypair must be retired before its nonce
/// space runs out (2^64 − 2^13 − 1, as in wireguard-go).
pub const REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 13);

/// The replay window used for transport keypairs: a 2048-bit ring, accepting counters up to 1984
/// below the highest one seen.
pub type DefaultReplayWindow = ReplayWindow<2048>;

/// Bits in one ring word.
const WORD_BITS: u64 = u64::BITS as u64;

/// A sliding anti-replay window over a ring of `BITS` bits (see the [module docs](self) for the
/// exact acceptance rule).
///
/// `BITS` must be a power of two and at least 64 (so a whole number of 64-bit words); this is
/// checked at compile time when [`ReplayWindow::new`] is instantiated. `BITS = 64` is allowed and
/// means a window of zero: only counters above the highest one seen are accepted.
///
/// Both operations are O(1) bit operations, except that a forward jump clears the ring words it
/// passes over: at most `BITS / 64` of them however far the counter jumps.
#[derive(Clone)]
pub struct ReplayWindow<const BITS: usize> {
    /// The highest counter accepted so far; 0 before the first (which is why a fresh window
    /// treats counter 0 as inside the window rather than above it).
    highest: u64,
    /// `BITS / 64` words. Word `(c / 64) % (BITS / 64)`, bit `c % 64`, records counter `c`.
    ///
    /// A boxed slice rather than `[u64; BITS / 64]`: stable Rust cannot size an array by an
    /// expression over a const parameter. The length never changes after `new`.
    ring: Box<[u64]>,
}

impl<const BITS: usize> ReplayWindow<BITS> {
    /// Number of 64-bit words in the ring.
    const WORDS: usize = BITS / 64;

    /// How far below the highest accepted counter a counter may be and still be accepted (if not
    /// already seen): `BITS - 64`.
    pub const WINDOW: u64 = BITS as u64 - WORD_BITS;

    /// An empty window: nothing seen yet, every counter below [`REJECT_AFTER_MESSAGES`] and
    /// within [`Self::WINDOW`] of 0 (so in particular 0 itself) acceptable.
    pub fn new() -> Self {
        const {
            assert!(
                BITS >= 64 && BITS % 64 == 0 && BITS.is_power_of_two(),
                "ReplayWindow BITS must be a non-zero multiple of 64 and a power of two"
            )
        };
        Self {
            highest: 0,
            ring: vec![0; Self::WORDS].into_boxed_slice(),
        }
    }

    /// Would `counter` be accepted? Does not record it; call before decrypting.
    pub fn check(&self, counter: u64) -> bool {
        if counter >= REJECT_AFTER_MESSAGES {
            return false;
        }
        if counter > self.highest {
            // Above the window: any stale bit for it is cleared when the window moves.
            return true;
        }
        if self.highest - counter > Self::WINDOW {
            return false;
        }
        self.ring
            .get(Self::word_index(counter))
            .is_some_and(|word| word & Self::bit(counter) == 0)
    }

    /// Records `counter` as seen, sliding the window forward if it is the new highest. Returns
    /// false, changing nothing, if it was a replay, too old, or at or beyond
    /// [`REJECT_AFTER_MESSAGES`]. Call only after the packet authenticated.
    pub fn update(&mut self, counter: u64) -> bool {
        if counter >= REJECT_AFTER_MESSAGES {
            return false;
        }
        if counter > self.highest {
            let current = self.highest / WORD_BITS;
            let target = counter / WORD_BITS;
            // Clear the words entered between the old highest's word (exclusive) and the new
            // one's (inclusive); a jump of a whole ring or more clears every word once.
            let passed = (target - current).min(Self::WORDS as u64);
            for step in 1..=passed {
                if let Some(word) = self.ring.get_mut(Self::word_of_block(current + step)) {
                    *word = 0;
                }
            }
            self.highest = counter;
        } else if self.highest - counter > Self::WINDOW {
            return false;
        }
        match self.ring.get_mut(Self::word_index(counter)) {
            Some(word) => {
                let bit = Self::bit(counter);
                let fresh = *word & bit == 0;
                *word |= bit;
                fresh
            }
            // Unreachable: the index is masked to the ring length. Refuse rather than panic.
            None => false,
        }
    }

    /// The ring word holding counter block `block` (= counter / 64).
    fn word_of_block(block: u64) -> usize {
        // The mask fits in usize, so the cast cannot truncate.
        (block & (Self::WORDS as u64 - 1)) as usize
    }

    fn word_index(counter: u64) -> usize {
        Self::word_of_block(counter / WORD_BITS)
    }

    fn bit(counter: u64) -> u64 {
        1 << (counter % WORD_BITS)
    }
}

impl<const BITS: usize> Default for ReplayWindow<BITS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const BITS: usize> fmt::Debug for ReplayWindow<BITS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("bits", &BITS)
            .field("highest", &self.highest)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// Checks `check` (twice, to show it does not mutate) then `update` against `expected`.
    fn step<const BITS: usize>(w: &mut ReplayWindow<BITS>, counter: u64, expected: bool) {
        assert_eq!(
            w.check(counter),
            expected,
            "check({counter}) with {BITS} bits"
        );
        assert_eq!(w.check(counter), expected, "second check({counter})");
        assert_eq!(
            w.update(counter),
            expected,
            "update({counter}) with {BITS} bits"
        );
        // Whatever happened, the counter is now either seen or unacceptable.
        assert!(!w.check(counter), "check({counter}) after update");
    }

    fn run<const BITS: usize>(pairs: &[(u64, bool)]) {
        let mut w = ReplayWindow::<BITS>::new();
        for (i, &(counter, expected)) in pairs.iter().enumerate() {
            assert_eq!(
                w.check(counter),
                expected,
                "#{i}: check({counter}), {BITS} bits"
            );
            assert_eq!(
                w.update(counter),
                expected,
                "#{i}: update({counter}), {BITS} bits"
            );
        }
    }

    fn in_order<const BITS: usize>() {
        let mut w = ReplayWindow::<BITS>::new();
        for c in 0..(4 * BITS as u64) {
            step(&mut w, c, true);
        }
    }

    fn out_of_order_within_window<const BITS: usize>() {
        let win = ReplayWindow::<BITS>::WINDOW;
        let mut w = ReplayWindow::<BITS>::new();
        let top = 3 * BITS as u64;
        step(&mut w, top, true);
        // Every counter from the top down to exactly WINDOW below it, in reverse order.
        for c in (top - win..top).rev() {
            step(&mut w, c, true);
        }
        // Interleaved: evens going up after a jump, then the odds.
        let mut w = ReplayWindow::<BITS>::new();
        let top = 10 * BITS as u64 + 7;
        step(&mut w, top, true);
        for c in (top - win..top).filter(|c| c % 2 == 0) {
            step(&mut w, c, true);
        }
        for c in (top - win..top).filter(|c| c % 2 == 1) {
            step(&mut w, c, true);
        }
    }

    fn too_old<const BITS: usize>() {
        let win = ReplayWindow::<BITS>::WINDOW;
        let mut w = ReplayWindow::<BITS>::new();
        let top = 5 * BITS as u64 + 13;
        step(&mut w, top, true);
        step(&mut w, top - win - 1, false);
        step(&mut w, top - win - 64, false);
        step(&mut w, 0, false);
        step(&mut w, top - win, true);
        // A lower counter ages out once the top moves by one.
        step(&mut w, top + 1, true);
        step(&mut w, top - win, false);
        step(&mut w, top + 1 - win, true);
    }

    fn duplicates<const BITS: usize>() {
        let win = ReplayWindow::<BITS>::WINDOW;
        let mut w = ReplayWindow::<BITS>::new();
        for c in [0, 1, 2, 100, 50, win + 100, win + 99, 101] {
            step(&mut w, c, true);
            step(&mut w, c, false);
        }
        // Still refused much later, as long as it is inside the window.
        step(&mut w, 101 + win, true);
        step(&mut w, 101, false);
        step(&mut w, win + 99, false);
    }

    fn jump_larger_than_window_clears_old_bits<const BITS: usize>() {
        let bits = BITS as u64;
        let win = ReplayWindow::<BITS>::WINDOW;
        for jump in [bits, bits + 1, bits + 63, bits + 64, 3 * bits + 5, 1 << 40] {
            let mut w = ReplayWindow::<BITS>::new();
            // Set every bit the window can hold.
            for c in 0..=win {
                step(&mut w, c, true);
            }
            let top = win + jump;
            step(&mut w, top, true);
            // Everything in the new window aliases some old set bit; all must read as unseen.
            for c in top - win..top {
                step(&mut w, c, true);
            }
            step(&mut w, top - win - 1, false);
        }
        // A jump shorter than the ring keeps the bits still inside the window.
        let mut w = ReplayWindow::<BITS>::new();
        for c in 0..=win {
            step(&mut w, c, true);
        }
        let top = win + bits / 2;
        step(&mut w, top, true);
        for c in top - win..=win {
            step(&mut w, c, false);
        }
        for c in win + 1..top {
            step(&mut w, c, true);
        }
    }

    fn counter_zero_first<const BITS: usize>() {
        let mut w = ReplayWindow::<BITS>::new();
        step(&mut w, 0, true);
        step(&mut w, 0, false);
        step(&mut w, 1, true);
        // Zero first after a later counter also works while inside the window.
        let mut w = ReplayWindow::<BITS>::new();
        step(&mut w, 5, true);
        step(&mut w, 0, true);
        step(&mut w, 0, false);
    }

    fn counter_limit<const BITS: usize>() {
        let win = ReplayWindow::<BITS>::WINDOW;
        let mut w = ReplayWindow::<BITS>::new();
        step(&mut w, REJECT_AFTER_MESSAGES, false);
        step(&mut w, u64::MAX, false);
        step(&mut w, REJECT_AFTER_MESSAGES - 1, true);
        step(&mut w, REJECT_AFTER_MESSAGES - 1, false);
        step(&mut w, REJECT_AFTER_MESSAGES, false);
        step(&mut w, REJECT_AFTER_MESSAGES + 1, false);
        step(&mut w, REJECT_AFTER_MESSAGES - 2, true);
        step(&mut w, REJECT_AFTER_MESSAGES - 1 - win, true);
        step(&mut w, REJECT_AFTER_MESSAGES - 2 - win, false);
        step(&mut w, 0, false);
    }

    /// A scripted sequence in the spirit of the WireGuard kernel's counter self-test: each pair
    /// is (counter, accepted?), with the interesting counters placed relative to the window.
    fn scripted<const BITS: usize>() {
        let w = ReplayWindow::<BITS>::WINDOW;
        // First counter far enough above 0 that 0 falls just out of the window.
        let t = w + 1;
        let lim = REJECT_AFTER_MESSAGES;
        run::<BITS>(&[
            (0, true),               // a fresh window takes 0
            (0, false),              // and only once
            (1, true),               // next in order
            (5, true),               // skip ahead
            (3, true),               // fill a gap
            (5, false),              // replay of the top
            (4, true),               // the last gap
            (3, false),              // replay below the top
            (t, true),               // 0 is now exactly one past the window
            (1, false),              // at the edge, but already seen
            (2, true),               // inside, never seen
            (0, false),              // too old
            (t - 1, true),           // just below the top
            (t - 1, false),          // replayed
            (t + 64, true),          // moves the window into the next word
            (t, false),              // still remembered across the word change
            (6, false),              // never seen, but too old now
            (t + 64 - w, true),      // exactly WINDOW below the top
            (t + 64 - w - 1, false), // one further is too old
            (4 * t, true),           // a jump
            (4 * t - w, true),       // the oldest acceptable
            (4 * t - w - 1, false),  // one older
            (4 * t - w, false),      // replay at the edge
            (t + 64, false),         // long gone
            (lim - 1, true),         // the last usable counter
            (lim, false),            // the limit itself
            (lim - 1, false),        // replay at the limit
            (lim - 2, true),         // below the limit, fresh
            (u64::MAX, false),       // far beyond the limit
            (lim + 1, false),        // just beyond
            (lim - 1 - w, true),     // the oldest acceptable under the limit
            (lim - 2 - w, false),    // too old
            (0, false),              // and the very first counter, long gone
        ]);
    }

    fn all_vectors<const BITS: usize>() {
        in_order::<BITS>();
        out_of_order_within_window::<BITS>();
        too_old::<BITS>();
        duplicates::<BITS>();
        jump_larger_than_window_clears_old_bits::<BITS>();
        counter_zero_first::<BITS>();
        counter_limit::<BITS>();
        scripted::<BITS>();
    }

    #[test]
    fn vectors_2048() {
        all_vectors::<2048>();
    }

    #[test]
    fn vectors_8192() {
        all_vectors::<8192>();
    }

    #[test]
    fn window_sizes() {
        assert_eq!(DefaultReplayWindow::WINDOW, 1984);
        assert_eq!(ReplayWindow::<8192>::WINDOW, 8128);
        assert_eq!(ReplayWindow::<64>::WINDOW, 0);
        assert_eq!(
            u128::from(REJECT_AFTER_MESSAGES),
            (1u128 << 64) - (1 << 13) - 1
        );
    }

    #[test]
    fn single_word_ring_accepts_only_increasing_counters() {
        let mut w = ReplayWindow::<64>::new();
        step(&mut w, 0, true);
        step(&mut w, 2, true);
        step(&mut w, 1, false);
        step(&mut w, 200, true);
        step(&mut w, 199, false);
        step(&mut w, 201, true);
    }

    #[test]
    fn default_is_new() {
        let mut w = DefaultReplayWindow::default();
        assert!(w.update(0));
        assert!(!w.update(0));
        assert!(format!("{w:?}").contains("highest: 0"));
    }

    /// The reference the window must match: every accepted counter kept in a set, with the same
    /// acceptance rule stated directly.
    struct Model {
        seen: HashSet<u64>,
        highest: u64,
        window: u64,
    }

    impl Model {
        fn new(window: u64) -> Self {
            Self {
                seen: HashSet::new(),
                highest: 0,
                window,
            }
        }

        fn check(&self, c: u64) -> bool {
            c < REJECT_AFTER_MESSAGES
                && (c > self.highest
                    || (self.highest - c <= self.window && !self.seen.contains(&c)))
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

    /// How the next counter is chosen, relative to the highest one so far.
    #[derive(Debug, Clone)]
    enum Op {
        /// Close to the highest: around and below the window edge, or a little above.
        Near(i64),
        /// Forward by up to many rings.
        Jump(u64),
        /// Around the counter limit.
        NearLimit(u64),
        /// Anything at all.
        Any(u64),
    }

    fn op(bits: u64) -> impl Strategy<Value = Op> {
        let b = bits as i64;
        prop_oneof![
            8 => (-(b + 64)..=64i64).prop_map(Op::Near),
            2 => (0..(20 * bits)).prop_map(Op::Jump),
            1 => (0..(3 * bits)).prop_map(Op::NearLimit),
            1 => any::<u64>().prop_map(Op::Any),
        ]
    }

    fn against_model<const BITS: usize>(ops: &[Op]) -> Result<(), TestCaseError> {
        let mut w = ReplayWindow::<BITS>::new();
        let mut m = Model::new(ReplayWindow::<BITS>::WINDOW);
        for op in ops {
            let c = match *op {
                Op::Near(d) => m.highest.saturating_add_signed(d),
                Op::Jump(j) => m.highest.saturating_add(j),
                Op::NearLimit(d) => (REJECT_AFTER_MESSAGES + BITS as u64).saturating_sub(d),
                Op::Any(c) => c,
            };
            prop_assert_eq!(w.check(c), m.check(c), "check({})", c);
            prop_assert_eq!(w.update(c), m.update(c), "update({})", c);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn matches_hashset_model_128(ops in proptest::collection::vec(op(128), 1..400)) {
            against_model::<128>(&ops)?;
        }

        #[test]
        fn matches_hashset_model_2048(ops in proptest::collection::vec(op(2048), 1..400)) {
            against_model::<2048>(&ops)?;
        }

        #[test]
        fn matches_hashset_model_8192(ops in proptest::collection::vec(op(8192), 1..400)) {
            against_model::<8192>(&ops)?;
        }
    }
}
