//! Deterministic pseudo-random byte streams for traffic tests.
//!
//! Both ends of a transfer can regenerate the same bytes from a seed, and
//! the bytes do not compress, so nothing on the path can cheat.

/// A SplitMix64 byte generator: the same seed always yields the same bytes.
#[derive(Debug, Clone)]
pub struct Pattern {
    state: u64,
    buf: [u8; 8],
    used: usize,
}

impl Pattern {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Pattern {
        Pattern {
            state: seed,
            buf: [0; 8],
            used: 8,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fills `out` with the next bytes of the stream. The stream does not
    /// depend on how it is split into `fill` calls.
    pub fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            if self.used == 8 {
                self.buf = self.next_u64().to_le_bytes();
                self.used = 0;
            }
            *b = self.buf[self.used];
            self.used += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_does_not_change_the_stream() {
        let mut whole = vec![0; 1000];
        Pattern::new(7).fill(&mut whole);
        let mut parts = vec![0; 1000];
        let mut p = Pattern::new(7);
        for chunk in parts.chunks_mut(13) {
            p.fill(chunk);
        }
        assert_eq!(whole, parts);
        let mut other = vec![0; 1000];
        Pattern::new(8).fill(&mut other);
        assert_ne!(whole, other);
    }
}
