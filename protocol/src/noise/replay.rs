//! Placeholder replay window (replaced by the full implementation).
#![allow(missing_docs)]
pub const REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 13);
#[derive(Default, Debug, Clone)]
pub struct ReplayWindow<const BITS: usize> {
    seen: std::collections::BTreeSet<u64>,
}
pub type DefaultReplayWindow = ReplayWindow<2048>;
impl<const BITS: usize> ReplayWindow<BITS> {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn check(&self, c: u64) -> bool {
        c < REJECT_AFTER_MESSAGES && !self.seen.contains(&c)
    }
    pub fn update(&mut self, c: u64) -> bool {
        self.check(c) && self.seen.insert(c)
    }
}
