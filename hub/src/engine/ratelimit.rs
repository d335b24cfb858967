//! Token buckets: one per source IP for registration traffic (in a bounded table), one per
//! registered peer for lookups and signals, and one global budget for proof checks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// A token bucket holding up to `burst` tokens, refilled at `per_sec`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(burst: u32, now: Instant) -> Self {
        Bucket {
            tokens: f64::from(burst),
            last: now,
        }
    }

    fn refill(&mut self, burst: u32, per_sec: u32, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * f64::from(per_sec)).min(f64::from(burst));
        self.last = now;
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, burst: u32, per_sec: u32, now: Instant) -> bool {
        self.refill(burst, per_sec, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// True when the bucket has refilled to `burst`: forgetting it changes nothing.
    fn is_full(&mut self, burst: u32, per_sec: u32, now: Instant) -> bool {
        self.refill(burst, per_sec, now);
        self.tokens >= f64::from(burst)
    }
}

/// Per-source-IP buckets in a table of at most `max` entries.
#[derive(Debug)]
pub struct SourceLimiter {
    buckets: HashMap<IpAddr, Bucket>,
    /// Shared by sources that find the table full: they are limited together.
    overflow: Bucket,
    max: usize,
    burst: u32,
    per_sec: u32,
}

impl SourceLimiter {
    /// An empty limiter.
    pub fn new(max: usize, burst: u32, per_sec: u32, now: Instant) -> Self {
        SourceLimiter {
            buckets: HashMap::new(),
            overflow: Bucket::full(burst, now),
            max,
            burst,
            per_sec,
        }
    }

    /// Whether `ip` may send one more message now.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let (burst, per_sec) = (self.burst, self.per_sec);
        if let Some(b) = self.buckets.get_mut(&ip) {
            return b.take(burst, per_sec, now);
        }
        if self.buckets.len() >= self.max {
            self.sweep(now);
        }
        if self.buckets.len() >= self.max {
            return self.overflow.take(burst, per_sec, now);
        }
        let mut b = Bucket::full(burst, now);
        let ok = b.take(burst, per_sec, now);
        self.buckets.insert(ip, b);
        ok
    }

    /// Forgets sources whose bucket has refilled.
    pub fn sweep(&mut self, now: Instant) {
        let (burst, per_sec) = (self.burst, self.per_sec);
        self.buckets.retain(|_, b| !b.is_full(burst, per_sec, now));
    }

    /// Sources tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::full(3, t0);
        assert!((0..3).all(|_| b.take(3, 10, t0)));
        assert!(!b.take(3, 10, t0));
        assert!(b.take(3, 10, t0 + Duration::from_millis(100)));
        assert!(!b.take(3, 10, t0 + Duration::from_millis(100)));
    }

    #[test]
    fn table_stays_bounded_and_full_table_shares_one_bucket() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::new(4, 2, 1, t0);
        for i in 0..4u8 {
            assert!(l.allow(IpAddr::from([10, 0, 0, i]), t0));
        }
        assert_eq!(l.len(), 4);
        // Table full, nothing refilled: newcomers share the overflow bucket (burst 2).
        assert!(l.allow(IpAddr::from([10, 0, 1, 0]), t0));
        assert!(l.allow(IpAddr::from([10, 0, 1, 1]), t0));
        assert!(!l.allow(IpAddr::from([10, 0, 1, 2]), t0));
        assert_eq!(l.len(), 4);
        // Once entries refill they are swept and newcomers get their own.
        let later = t0 + Duration::from_secs(10);
        assert!(l.allow(IpAddr::from([10, 0, 2, 0]), later));
        assert_eq!(l.len(), 1);
    }
}
