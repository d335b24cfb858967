//! Every NAT-traversal timing and size constant, each with the reason for its value.

use std::time::Duration;

// --- STUN (RFC 8489 §6.2.1) -------------------------------------------------------------

/// First retransmission timeout. RFC 8489 recommends 500 ms as the RTO floor for UDP; a
/// smaller one would flood lossy links, a larger one delays learning our mapping.
pub const STUN_RTO: Duration = Duration::from_millis(500);
/// Requests sent per transaction (RFC 8489 `Rc` = 7): 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s.
pub const STUN_MAX_REQUESTS: u32 = 7;
/// After the last request wait `Rm` × RTO (RFC 8489 `Rm` = 16, i.e. 8 s), then give up: the
/// transaction is bounded at 39.5 s in all.
pub const STUN_LAST_WAIT_FACTOR: u32 = 16;
/// Base re-STUN period. Many NATs drop idle UDP mappings after ~30 s; refreshing at 20 s leaves
/// room for one lost request (0.5 s + 1 s retransmissions) before the mapping can lapse.
pub const RESTUN_BASE: Duration = Duration::from_secs(20);
/// Random extra on top of [`RESTUN_BASE`] (so 20–26 s): peers behind one NAT that started
/// together do not STUN in lock-step, and 26 s still stays under the ~30 s expiry.
pub const RESTUN_JITTER: Duration = Duration::from_secs(6);

// --- Path probing -------------------------------------------------------------------------

/// Probe round interval while the peer is active and not on a direct path. Short enough that a
/// punch is retried several times within a user's patience, long enough that an unpunchable
/// pair costs one ping per candidate every 5 s (Tailscale and NetBird use 4–5 s).
pub const PROBE_INTERVAL_ACTIVE: Duration = Duration::from_secs(5);
/// Upper bound of the idle back-off: never hourly (users stuck on a relay was the top complaint
/// against other systems), but an idle peer costs at most one round a minute.
pub const PROBE_INTERVAL_IDLE_MAX: Duration = Duration::from_secs(60);
/// A ping without a pong after this long is unanswered. Above any sane RTT (intercontinental
/// paths stay under 1 s), and shorter than a probe round so rounds do not overlap.
pub const PING_TIMEOUT: Duration = Duration::from_secs(4);
/// Heartbeat on the selected path. Must be ≤ 10 s (issue 10) and well under the ~30 s NAT
/// mapping expiry; 3 s lets a lost mapping be noticed within [`PATH_TRUST`].
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
/// A path stays trusted this long after its last pong: two heartbeats plus 0.5 s for RTT, so a
/// single lost pong does not drop it but a flushed mapping is noticed in under 7 s and
/// re-probed at once (target: back to punched within 10 s).
pub const PATH_TRUST: Duration = Duration::from_millis(6500);
/// A selected direct path whose last pong is this old has missed a heartbeat (every 3 s) and
/// its answer's second of grace: it is in doubt. Until [`PATH_TRUST`] declares it dead (or a
/// pong clears it), data to the peer goes out on the relay as well, so a dying path costs a
/// stream at most this long a stall instead of the whole trust period (issue 11).
pub const PATH_DOUBT: Duration = Duration::from_secs(4);
/// A peer with no WireGuard traffic for this long is idle: heartbeats stop and probing backs
/// off. WireGuard's own keepalive (10 s) and rekey (120 s) traffic makes 45 s "really idle".
pub const ACTIVE_TIMEOUT: Duration = Duration::from_secs(45);
/// A path that answers probes but on which WireGuard makes no progress for this long is
/// suspect (middleboxes that pass probes but not data). 15 s covers a handshake retry (5 s)
/// twice plus slack.
pub const WIREGUARD_PROGRESS_TIMEOUT: Duration = Duration::from_secs(15);
/// A faster path replaces the selected one only if it is at least this much faster…
pub const SWITCH_MIN_GAIN: Duration = Duration::from_millis(5);
/// …and at least this percentage faster, so jitter between two similar paths does not flap.
pub const SWITCH_MIN_GAIN_PERCENT: u32 = 10;
/// Candidates kept per peer: bounds memory against a peer (or spoofer) that shows us endless
/// addresses; real hosts have a handful (LAN v4/v6, one or two public, one configured).
pub const MAX_CANDIDATES: usize = 16;
/// Pongs a peer may elicit per probe round interval: replayed or flooded pings cost at most
/// this many small replies per 5 s.
pub const MAX_PONGS_PER_ROUND: u32 = 2 * MAX_CANDIDATES as u32;
/// A STUN answer older than this no longer counts for the mapping type or public endpoints:
/// the ~30 s NAT expiry may have replaced the mapping (Tailscale uses the same 27 s).
pub const STUN_FRESH: Duration = Duration::from_secs(27);
