//! WireGuard's timer constants and the per-peer table of deadlines.
//!
//! Every timer is one slot in a fixed table; `poll_timeout` is the earliest armed slot. Nothing
//! here reads a clock: deadlines are computed from the `now` the caller passes in.

use std::time::{Duration, Instant};

/// Send a new handshake after this many messages on one keypair.
pub const REKEY_AFTER_MESSAGES: u64 = 1 << 60;

/// The protocol's time constants. [`TimerConfig::default`] is WireGuard's; tests and the
/// daemon's test-only knob may scale them down with [`TimerConfig::scaled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// The initiator starts a new handshake when its keypair is this old (120 s).
    pub rekey_after_time: Duration,
    /// A keypair this old is never used again (180 s).
    pub reject_after_time: Duration,
    /// Give up retrying a handshake after this long (90 s).
    pub rekey_attempt_time: Duration,
    /// Retry a handshake that got no answer after this long (5 s); also the minimum interval
    /// between initiations and the dead-peer delay.
    pub rekey_timeout: Duration,
    /// Passive keepalive after receiving data without sending for this long (10 s).
    pub keepalive_timeout: Duration,
    /// Maximum random jitter added to handshake retries (333 ms).
    pub max_jitter: Duration,
    /// Ignore initiations from one peer arriving closer together than this (20 ms).
    pub min_initiation_interval: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            rekey_after_time: Duration::from_secs(120),
            reject_after_time: Duration::from_secs(180),
            rekey_attempt_time: Duration::from_secs(90),
            rekey_timeout: Duration::from_secs(5),
            keepalive_timeout: Duration::from_secs(10),
            max_jitter: Duration::from_millis(333),
            min_initiation_interval: Duration::from_millis(20),
        }
    }
}

impl TimerConfig {
    /// Every duration divided by `divisor` (for tests on a real clock). `divisor` 0 or 1
    /// leaves the defaults.
    pub fn scaled(divisor: u32) -> Self {
        let d = TimerConfig::default();
        if divisor <= 1 {
            return d;
        }
        TimerConfig {
            rekey_after_time: d.rekey_after_time / divisor,
            reject_after_time: d.reject_after_time / divisor,
            rekey_attempt_time: d.rekey_attempt_time / divisor,
            rekey_timeout: d.rekey_timeout / divisor,
            keepalive_timeout: d.keepalive_timeout / divisor,
            max_jitter: d.max_jitter / divisor,
            min_initiation_interval: d.min_initiation_interval / divisor,
        }
    }

    /// New handshake when data was sent and nothing came back for this long (15 s).
    pub fn new_handshake_timeout(&self) -> Duration {
        self.keepalive_timeout + self.rekey_timeout
    }

    /// The initiator re-handshakes when receiving on a keypair this old (165 s).
    pub fn receive_rekey_age(&self) -> Duration {
        self.reject_after_time - self.keepalive_timeout - self.rekey_timeout
    }

    /// Erase all key material after this long without a new handshake (540 s).
    pub fn zero_keys_after(&self) -> Duration {
        self.reject_after_time * 3
    }

    /// Handshake attempts before giving up (90 s / 5 s = 18).
    pub fn max_handshake_attempts(&self) -> u32 {
        let t = self.rekey_timeout.as_nanos().max(1);
        (self.rekey_attempt_time.as_nanos() / t) as u32
    }
}

/// The per-peer timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Timer {
    /// Resend an initiation that got no response.
    RetransmitHandshake,
    /// Passive keepalive after receiving data.
    SendKeepalive,
    /// New handshake after sending data with nothing received.
    NewHandshake,
    /// Erase all key material.
    ZeroKeyMaterial,
    /// Persistent keepalive.
    PersistentKeepalive,
    /// The current session reaches its reject age.
    SessionExpiry,
}

impl Timer {
    /// Every timer, in table order.
    pub const ALL: [Timer; 6] = [
        Timer::RetransmitHandshake,
        Timer::SendKeepalive,
        Timer::NewHandshake,
        Timer::ZeroKeyMaterial,
        Timer::PersistentKeepalive,
        Timer::SessionExpiry,
    ];
}

/// One table of deadlines.
#[derive(Debug, Default, Clone)]
pub struct TimerTable {
    deadlines: [Option<Instant>; 6],
}

impl TimerTable {
    /// Arms (or re-arms) `t` for `at`.
    pub fn set(&mut self, t: Timer, at: Instant) {
        self.deadlines[t as usize] = Some(at);
    }
    /// Disarms `t`.
    pub fn stop(&mut self, t: Timer) {
        self.deadlines[t as usize] = None;
    }
    /// Whether `t` is armed.
    pub fn is_armed(&self, t: Timer) -> bool {
        self.deadlines[t as usize].is_some()
    }
    /// The deadline of `t`.
    pub fn get(&self, t: Timer) -> Option<Instant> {
        self.deadlines[t as usize]
    }
    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }
    /// Disarms and returns the first timer due at `now`, if any.
    pub fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        for t in Timer::ALL {
            if matches!(self.deadlines[t as usize], Some(d) if d <= now) {
                self.deadlines[t as usize] = None;
                return Some(t);
            }
        }
        None
    }
    /// Disarms everything.
    pub fn clear(&mut self) {
        self.deadlines = Default::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_wireguard() {
        let c = TimerConfig::default();
        assert_eq!(c.new_handshake_timeout(), Duration::from_secs(15));
        assert_eq!(c.receive_rekey_age(), Duration::from_secs(165));
        assert_eq!(c.zero_keys_after(), Duration::from_secs(540));
        assert_eq!(c.max_handshake_attempts(), 18);
        assert_eq!(
            TimerConfig::scaled(10).rekey_after_time,
            Duration::from_secs(12)
        );
        assert_eq!(TimerConfig::scaled(10).max_handshake_attempts(), 18);
    }

    #[test]
    fn table_orders_deadlines() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::SendKeepalive, t0 + Duration::from_secs(10));
        t.set(Timer::NewHandshake, t0 + Duration::from_secs(5));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(t.take_expired(t0 + Duration::from_secs(4)), None);
        assert_eq!(
            t.take_expired(t0 + Duration::from_secs(11)),
            Some(Timer::SendKeepalive)
        );
        assert_eq!(
            t.take_expired(t0 + Duration::from_secs(11)),
            Some(Timer::NewHandshake)
        );
        assert_eq!(t.take_expired(t0 + Duration::from_secs(11)), None);
    }
}
