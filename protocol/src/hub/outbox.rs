//! A bounded queue of length-prefixed frames waiting for a TCP (or TLS) connection to the hub,
//! shared by vpnhub (per client) and vpnd (per hub): relayed WireGuard datagrams and control
//! messages in the order they were queued.
//!
//! Bytes are kept in one buffer that the writer takes whole ([`Outbox::take`]) and gives back
//! empty, so a busy connection writes many frames per system call and nothing is allocated per
//! frame once both buffers have grown. When the queue is full the oldest frames are dropped
//! (head drop): under overload, fresh packets are worth more to TCP inside the tunnel than old
//! ones, and a stalled receiver cannot make the sender buffer without bound. Drops are done a
//! quarter of the limit at a time so that a sustained overload costs one move of the buffer per
//! many frames, not per frame.

use std::collections::VecDeque;

use super::frame::{FRAME_HEADER_LEN, MAX_FRAME_BODY};

/// What [`Outbox::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued; `dropped` older frames were dropped to make room.
    Queued {
        /// Frames dropped from the head.
        dropped: usize,
    },
    /// Not queued: the body is empty or longer than a frame may be.
    Refused,
}

/// Frames waiting to be written.
#[derive(Debug)]
pub struct Outbox {
    bytes: Vec<u8>,
    /// Length of each queued frame (header included), oldest first.
    frames: VecDeque<u16>,
    limit: usize,
}

impl Outbox {
    /// An empty queue holding at most `limit` bytes (at least one maximal frame).
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            bytes: Vec::new(),
            frames: VecDeque::new(),
            limit: limit.max(FRAME_HEADER_LEN + MAX_FRAME_BODY),
        }
    }

    /// Queues `head` followed by `body` as one frame (the length prefix covers both).
    pub fn push(&mut self, head: &[u8], body: &[u8]) -> Pushed {
        let n = head.len() + body.len();
        if n == 0 || n > MAX_FRAME_BODY {
            return Pushed::Refused;
        }
        let total = FRAME_HEADER_LEN + n;
        let mut dropped = 0;
        if self.bytes.len() + total > self.limit {
            dropped = self.drop_head(total);
        }
        self.bytes.extend_from_slice(&(n as u16).to_be_bytes());
        self.bytes.extend_from_slice(head);
        self.bytes.extend_from_slice(body);
        self.frames.push_back(total as u16);
        Pushed::Queued { dropped }
    }

    /// Drops the oldest frames until `need` bytes and a quarter of the limit are free.
    fn drop_head(&mut self, need: usize) -> usize {
        let target = self.limit.saturating_sub(need + self.limit / 4);
        let mut cut = 0;
        let mut dropped = 0;
        while self.bytes.len() - cut > target {
            let Some(f) = self.frames.pop_front() else {
                break;
            };
            cut += usize::from(f);
            dropped += 1;
        }
        self.bytes.drain(..cut);
        dropped
    }

    /// Moves every queued byte into `out` (which must be empty; its capacity is kept for the
    /// next time), leaving the queue empty.
    pub fn take(&mut self, out: &mut Vec<u8>) {
        debug_assert!(out.is_empty());
        out.clear();
        std::mem::swap(&mut self.bytes, out);
        self.frames.clear();
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::frame::body_len;

    fn frames(mut b: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let n = body_len([b[0], b[1]]).unwrap();
            out.push(b[2..2 + n].to_vec());
            b = &b[2 + n..];
        }
        out
    }

    #[test]
    fn frames_come_out_in_order_with_their_length_prefix() {
        let mut q = Outbox::new(0);
        assert_eq!(q.push(b"ab", b"cd"), Pushed::Queued { dropped: 0 });
        assert_eq!(q.push(&[], b"e"), Pushed::Queued { dropped: 0 });
        assert_eq!(q.push(&[], &[]), Pushed::Refused);
        assert_eq!(q.push(&[], &vec![1; MAX_FRAME_BODY + 1]), Pushed::Refused);
        let mut out = Vec::new();
        q.take(&mut out);
        assert!(q.is_empty());
        assert_eq!(frames(&out), vec![b"abcd".to_vec(), b"e".to_vec()]);
    }

    #[test]
    fn a_full_queue_drops_its_oldest_frames_and_stays_bounded() {
        let limit = 16 * 1024;
        let mut q = Outbox::new(limit);
        let mut dropped = 0;
        for i in 0..1000u32 {
            let body = [i.to_be_bytes().as_slice(), &[0u8; 996]].concat();
            match q.push(&[], &body) {
                Pushed::Queued { dropped: d } => dropped += d,
                Pushed::Refused => panic!("refused"),
            }
            assert!(q.len() <= limit);
        }
        let mut out = Vec::new();
        q.take(&mut out);
        let left = frames(&out);
        assert_eq!(dropped + left.len(), 1000);
        // What is left is the newest frames, in order, ending with the last one pushed.
        let ids: Vec<u32> = left
            .iter()
            .map(|f| u32::from_be_bytes([f[0], f[1], f[2], f[3]]))
            .collect();
        assert_eq!(*ids.last().unwrap(), 999);
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
        // The buffer's capacity is reused: taking back and forth allocates nothing new.
        let cap = out.capacity();
        out.clear();
        q.push(&[], b"x");
        q.take(&mut out);
        assert!(out.capacity() >= 3 && cap >= limit / 2);
    }
}
