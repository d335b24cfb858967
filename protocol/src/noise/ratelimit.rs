//! Per-source rate limiting of handshake messages, for when the device is under load.
//!
//! Handshake messages cost a Diffie-Hellman or more each, so a flood of them is the cheapest way
//! to exhaust the CPU. Under load (when cookies are being demanded), each source gets a token
//! bucket: [`PACKETS_PER_SECOND`] refill, bursts of up to [`BURST`].
//!
//! Sources are keyed by IPv4 address, or by IPv6 /64 prefix (one subscriber usually owns a whole
//! /64, so keying on the full address would let it mint endless fresh buckets). IPv4-mapped IPv6
//! addresses (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 peers) are keyed as the IPv4
//! address they carry, not as one shared /64.
//!
//! Memory is bounded twice: [`RateLimiter::gc`] forgets sources idle for more than
//! [`IDLE_TIMEOUT`], and the table never holds more than [`MAX_ENTRIES`] sources; when it is full,
//! handshakes from sources not already in it are denied (rather than growing the table or
//! evicting a source that is being limited) until `gc` makes room. The caller is expected to run
//! `gc` about once a second.
//!
//! Time is whatever the caller passes in; all arithmetic is in integer nanoseconds, and a clock
//! that appears to go backwards simply refills nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Sustained handshake rate allowed per source.
pub const PACKETS_PER_SECOND: u64 = 20;
/// Handshakes a source may send back to back once its bucket is full.
pub const BURST: u64 = 5;
/// Most sources tracked at once; beyond this, new sources are denied until [`RateLimiter::gc`].
pub const MAX_ENTRIES: usize = 65_536;
/// [`RateLimiter::gc`] forgets a source idle for longer than this. Forgetting is lossless: a
/// bucket refills completely in `BURST / PACKETS_PER_SECOND` (250 ms), so a source idle this long
/// is treated exactly as a new one.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(1);

const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// Tokens are nanoseconds of credit; one handshake costs this many (50 ms at 20/s).
const PACKET_COST: u64 = NANOS_PER_SECOND / PACKETS_PER_SECOND;
/// A full bucket.
const MAX_TOKENS: u64 = PACKET_COST * BURST;

/// What a source is rate-limited as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SourceKey {
    /// A whole IPv4 address.
    V4([u8; 4]),
    /// The upper 64 bits of an IPv6 address.
    V6Prefix([u8; 8]),
}

impl From<IpAddr> for SourceKey {
    fn from(addr: IpAddr) -> Self {
        match addr.to_canonical() {
            IpAddr::V4(v4) => SourceKey::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                SourceKey::V6Prefix([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Credit in nanoseconds, at most [`MAX_TOKENS`].
    tokens: u64,
    /// When `tokens` was last brought up to date.
    last: Instant,
}

/// Token buckets for handshake messages, one per source (IPv4 address or IPv6 /64).
///
/// A `BTreeMap` rather than a `HashMap`: no hasher seed to draw from the OS, nothing an attacker
/// choosing source addresses can collide, and O(log n) at the [`MAX_ENTRIES`] cap is ~16 steps.
#[derive(Clone)]
pub struct RateLimiter {
    table: BTreeMap<SourceKey, Bucket>,
    max_entries: usize,
}

impl RateLimiter {
    /// An empty limiter tracking up to [`MAX_ENTRIES`] sources.
    pub fn new() -> Self {
        Self::with_max_entries(MAX_ENTRIES)
    }

    /// An empty limiter tracking up to `max_entries` sources (0 denies every handshake).
    pub fn with_max_entries(max_entries: usize) -> Self {
        Self {
            table: BTreeMap::new(),
            max_entries,
        }
    }

    /// Whether a handshake message from `src` arriving at `now` may be processed; if so, one
    /// token is spent. A source seen for the first time starts with a full bucket, unless the
    /// table is full, in which case it is denied.
    pub fn allow(&mut self, src: IpAddr, now: Instant) -> bool {
        let key = SourceKey::from(src);
        if let Some(bucket) = self.table.get_mut(&key) {
            let elapsed = now.saturating_duration_since(bucket.last);
            let elapsed_ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            bucket.tokens = bucket.tokens.saturating_add(elapsed_ns).min(MAX_TOKENS);
            if now > bucket.last {
                bucket.last = now;
            }
            if bucket.tokens >= PACKET_COST {
                bucket.tokens -= PACKET_COST;
                true
            } else {
                false
            }
        } else if self.table.len() < self.max_entries {
            self.table.insert(
                key,
                Bucket {
                    tokens: MAX_TOKENS - PACKET_COST,
                    last: now,
                },
            );
            true
        } else {
            false
        }
    }

    /// Forgets every source that has sent nothing for more than [`IDLE_TIMEOUT`] before `now`.
    pub fn gc(&mut self, now: Instant) {
        self.table
            .retain(|_, bucket| now.saturating_duration_since(bucket.last) <= IDLE_TIMEOUT);
    }

    /// Number of sources currently tracked.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("sources", &self.table.len())
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<Ipv6Addr>().expect("test address"))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Spends the whole burst at `now` and shows the next one is refused.
    fn exhaust(rl: &mut RateLimiter, src: IpAddr, now: Instant) {
        for i in 0..BURST {
            assert!(rl.allow(src, now), "burst packet {i} of {src}");
        }
        assert!(!rl.allow(src, now), "packet after the burst of {src}");
    }

    #[test]
    fn burst_of_five_then_denied() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let src = v4(192, 0, 2, 1);
        exhaust(&mut rl, src, t0);
        assert!(!rl.allow(src, t0 + ms(1)));
        assert!(!rl.allow(src, t0 + ms(49)));
    }

    #[test]
    fn refills_at_twenty_per_second() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let src = v4(192, 0, 2, 1);
        exhaust(&mut rl, src, t0);
        // 50 ms buys exactly one more, even when the time arrives in pieces.
        assert!(!rl.allow(src, t0 + ms(30)));
        assert!(rl.allow(src, t0 + ms(50)));
        assert!(!rl.allow(src, t0 + ms(50)));
        assert!(!rl.allow(src, t0 + ms(99)));
        assert!(rl.allow(src, t0 + ms(100)));
        // A steady 20/s is sustained indefinitely.
        for i in 3..200 {
            assert!(rl.allow(src, t0 + ms(50 * i)), "steady packet {i}");
            assert!(!rl.allow(src, t0 + ms(50 * i)), "extra packet {i}");
        }
        // A long pause refills only up to the burst.
        exhaust(&mut rl, src, t0 + Duration::from_secs(3600));
    }

    #[test]
    fn clock_going_backwards_refills_nothing() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let src = v4(192, 0, 2, 1);
        let later = t0 + ms(500);
        exhaust(&mut rl, src, later);
        assert!(!rl.allow(src, t0));
        // The earlier timestamp did not move the reference point back either.
        assert!(!rl.allow(src, later + ms(49)));
        assert!(rl.allow(src, later + ms(50)));
    }

    #[test]
    fn different_ipv4_addresses_are_independent() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        exhaust(&mut rl, v4(192, 0, 2, 1), t0);
        exhaust(&mut rl, v4(192, 0, 2, 2), t0);
        exhaust(&mut rl, v4(198, 51, 100, 1), t0);
        assert_eq!(rl.len(), 3);
    }

    #[test]
    fn ipv6_same_slash64_shares_a_bucket() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let a = v6("2001:db8:1:2::1");
        let b = v6("2001:db8:1:2:ffff:ffff:ffff:ffff");
        for _ in 0..3 {
            assert!(rl.allow(a, t0));
        }
        assert!(rl.allow(b, t0));
        assert!(rl.allow(b, t0));
        assert!(!rl.allow(b, t0));
        assert!(!rl.allow(a, t0));
        assert_eq!(rl.len(), 1);
    }

    #[test]
    fn ipv6_different_slash64_are_independent() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        exhaust(&mut rl, v6("2001:db8:1:2::1"), t0);
        // Differs only in the last bit of the prefix.
        exhaust(&mut rl, v6("2001:db8:1:3::1"), t0);
        exhaust(&mut rl, v6("3001:db8:1:2::1"), t0);
        assert_eq!(rl.len(), 3);
    }

    #[test]
    fn ipv4_mapped_ipv6_is_keyed_as_ipv4() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let plain = v4(192, 0, 2, 1);
        let mapped = v6("::ffff:192.0.2.1");
        for _ in 0..BURST {
            assert!(rl.allow(mapped, t0));
        }
        assert!(!rl.allow(plain, t0));
        // Another IPv4 peer behind the same dual-stack socket has its own bucket.
        exhaust(&mut rl, v6("::ffff:192.0.2.2"), t0);
        assert_eq!(rl.len(), 2);
    }

    #[test]
    fn gc_forgets_idle_sources() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let old = v4(192, 0, 2, 1);
        let recent = v4(192, 0, 2, 2);
        exhaust(&mut rl, old, t0);
        assert!(rl.allow(recent, t0 + ms(600)));
        assert_eq!(rl.len(), 2);
        // Idle exactly 1 s is kept; more than 1 s is forgotten.
        rl.gc(t0 + IDLE_TIMEOUT);
        assert_eq!(rl.len(), 2);
        rl.gc(t0 + IDLE_TIMEOUT + Duration::from_nanos(1));
        assert_eq!(rl.len(), 1);
        rl.gc(t0 + ms(1601));
        assert!(rl.is_empty());
        // A forgotten source starts afresh with a full bucket.
        exhaust(&mut rl, old, t0 + ms(2000));
    }

    #[test]
    fn gc_keeps_a_flood_from_growing_the_table() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        for second in 0..5u8 {
            let now = t0 + Duration::from_secs(u64::from(second)) + ms(10);
            for host in 0..=255u8 {
                assert!(rl.allow(v4(10, second, 0, host), now));
            }
            rl.gc(now + ms(990));
            assert!(rl.len() <= 512, "after second {second}: {}", rl.len());
        }
    }

    #[test]
    fn full_table_denies_new_sources() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::with_max_entries(3);
        for d in 1..=3 {
            assert!(rl.allow(v4(192, 0, 2, d), t0));
        }
        assert!(!rl.allow(v4(192, 0, 2, 4), t0));
        assert!(!rl.allow(v6("2001:db8::1"), t0));
        assert_eq!(rl.len(), 3);
        // Known sources keep their buckets.
        assert!(rl.allow(v4(192, 0, 2, 1), t0));
        // Room is made only by gc.
        rl.gc(t0 + ms(1001));
        assert!(rl.is_empty());
        assert!(rl.allow(v4(192, 0, 2, 4), t0 + ms(1001)));
    }

    #[test]
    fn default_cap_is_65536_sources() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::default();
        for i in 0..MAX_ENTRIES as u32 {
            assert!(rl.allow(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), t0));
        }
        assert_eq!(rl.len(), MAX_ENTRIES);
        assert!(!rl.allow(v4(192, 0, 2, 1), t0));
        assert!(rl.allow(v4(10, 0, 0, 0), t0));
        assert_eq!(rl.len(), MAX_ENTRIES);
    }

    #[test]
    fn zero_capacity_denies_everything() {
        let mut rl = RateLimiter::with_max_entries(0);
        assert!(!rl.allow(v4(192, 0, 2, 1), Instant::now()));
        assert!(rl.is_empty());
    }
}
