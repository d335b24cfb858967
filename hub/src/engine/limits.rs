//! Every vpnhub timing and size bound, each with the reason for its value.

use std::time::Duration;

/// How long a registration lives without a renewal (a fresh Register, the keepalive). Peers
/// renew every third of it (30 s, which also keeps their NAT's ~30 s UDP mapping to the hub
/// alive), so two lost renewals still do not drop a peer, and a vanished peer is forgotten
/// within 90 s.
pub const REGISTRATION_TTL: Duration = Duration::from_secs(90);
/// Width of a challenge-nonce time bucket. The current and the previous bucket are accepted, so
/// a nonce is good for 30 to 60 s: far above any round trip, short enough that a captured
/// nonce is soon useless (it is bound to the source address anyway).
pub const NONCE_BUCKET: Duration = Duration::from_secs(30);
/// How often expired registrations and refilled rate-limit entries are swept. Expiry is also
/// checked on every lookup, so the sweep only bounds how long dead entries hold memory.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The hub's table sizes and rates. [`Limits::default`] is what `vpnhub` runs with; tests
/// shrink them to see the bounds hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most registered peers. An entry is under 400 bytes, so 65,536 peers cost ~25 MB; past
    /// it new keys are refused (counted) until entries expire. With an `allow` list the list
    /// is the real bound.
    pub max_registrations: usize,
    /// Most source IPs tracked by the per-source rate limiter (~48 bytes each). When full,
    /// entries that have refilled are dropped; if none has, unknown sources share one
    /// overflow bucket, so a spoofed-source flood cannot grow the table.
    pub max_sources: usize,
    /// Registration messages (Hello, Register) and STUN requests one source IP may send in a
    /// burst. Generous: a carrier-grade NAT puts many peers behind one IP.
    pub source_burst: u32,
    /// Sustained registration messages per second per source IP.
    pub source_per_sec: u32,
    /// Register proofs checked per second in all (each costs an X25519 operation, ~50 µs):
    /// a flood of forged registrations from many sources costs at most ~10% of one core.
    pub verify_per_sec: u32,
    /// Lookups and signals one registered peer may send in a burst…
    pub peer_burst: u32,
    /// …and per second sustained: path setup needs a handful per peer pair.
    pub peer_per_sec: u32,
    /// Relay bytes one client may send in a burst ([`relay_burst`] of the rate)…
    pub relay_burst_bytes: u64,
    /// …and per second sustained (`relay.rate_mbit`, default 1,000 Mbit/s: one client cannot
    /// take a small hub's whole link from the others).
    pub relay_bytes_per_sec: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_registrations: 65_536,
            max_sources: 16_384,
            source_burst: 40,
            source_per_sec: 20,
            verify_per_sec: 2_000,
            peer_burst: 100,
            peer_per_sec: 50,
            relay_burst_bytes: relay_burst(1_000_000_000 / 8),
            relay_bytes_per_sec: 1_000_000_000 / 8,
        }
    }
}

/// The relay burst for a sustained rate of `bytes_per_sec`: an eighth of a second's worth
/// (a TCP window in flight at that rate), at least 64 KiB (a few full-size frames back to
/// back at any rate) and at most 4 MiB (what one client may make the hub send at once).
pub fn relay_burst(bytes_per_sec: u64) -> u64 {
    (bytes_per_sec / 8).clamp(64 << 10, 4 << 20)
}
