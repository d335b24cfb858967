//! When to look a peer's host name up again, and when to tell the operator: the pure part of
//! hostname endpoints. The PeerActor feeds it each lookup's result and the time, then does
//! what it says (start a timer, write a log line); the tests drive it with a fake clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Wait before the first retry of a name that did not resolve. Short enough that a peer whose
/// name appears just after start (resolver not up yet at boot, a record still propagating)
/// comes up within seconds; long enough not to hammer a resolver that is down.
pub const FIRST_RETRY: Duration = Duration::from_secs(5);

/// Longest wait between retries (the wait doubles from [`FIRST_RETRY`] up to this). A name
/// that stays unresolvable then costs one lookup every 5 minutes, and a fixed one is picked up
/// at most 5 minutes later: about the negative-caching time of common resolvers, so asking
/// more often would mostly get the cached failure back.
pub const MAX_RETRY: Duration = Duration::from_secs(300);

/// What the operator should hear about, once per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The name resolved for the first time, again after failing, or to another address.
    Resolved(SocketAddr),
    /// The name stopped resolving (or never did): retries follow.
    Unresolvable,
}

/// What to do after a failed lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Look the name up again at this time.
    pub at: Instant,
    /// `Some` on the first failure after a change (log it); `None` on the retries after it.
    pub change: Option<Change>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// No lookup has finished yet.
    Pending,
    Resolved(SocketAddr),
    Failing,
}

/// The retry schedule and last outcome of one host name.
#[derive(Debug, Clone)]
pub struct LookupSchedule {
    first: Duration,
    max: Duration,
    /// The wait after the next failure.
    next_wait: Duration,
    status: Status,
}

impl LookupSchedule {
    /// A schedule with the production waits divided by `divisor` (the test-only timer divisor;
    /// 1 in production, 0 taken as 1).
    pub fn scaled(divisor: u32) -> Self {
        let d = divisor.max(1);
        Self::new(FIRST_RETRY / d, MAX_RETRY / d)
    }

    /// A schedule waiting `first` after the first failure, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        LookupSchedule {
            first,
            max: max.max(first),
            next_wait: first,
            status: Status::Pending,
        }
    }

    /// Whether the last lookup succeeded.
    pub fn is_resolved(&self) -> bool {
        matches!(self.status, Status::Resolved(_))
    }

    /// Records a successful lookup. Returns the change to log: none when the name resolved to
    /// the same address as last time.
    pub fn succeeded(&mut self, addr: SocketAddr) -> Option<Change> {
        self.next_wait = self.first;
        let before = std::mem::replace(&mut self.status, Status::Resolved(addr));
        (before != Status::Resolved(addr)).then_some(Change::Resolved(addr))
    }

    /// Records a failed lookup at `now` and says when to try again.
    pub fn failed(&mut self, now: Instant) -> Retry {
        let wait = self.next_wait;
        self.next_wait = wait.saturating_mul(2).min(self.max);
        let before = std::mem::replace(&mut self.status, Status::Failing);
        Retry {
            at: now + wait,
            change: (before != Status::Failing).then_some(Change::Unresolvable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Fails until `until` (a fake clock starting at `t0`), retrying when told; returns the
    /// retry times and how many failures asked to be logged.
    fn fail_until(s: &mut LookupSchedule, t0: Instant, until: Duration) -> (Vec<Duration>, usize) {
        let (mut now, mut times, mut logged) = (t0, Vec::new(), 0);
        while now - t0 < until {
            let r = s.failed(now);
            logged += usize::from(r.change.is_some());
            times.push(r.at - t0);
            now = r.at;
        }
        (times, logged)
    }

    #[test]
    fn waits_double_from_5_s_to_5_min() {
        let t0 = Instant::now();
        let mut s = LookupSchedule::scaled(1);
        let (times, logged) = fail_until(&mut s, t0, Duration::from_secs(1000));
        let secs: Vec<u64> = times.iter().map(Duration::as_secs).collect();
        // Waits 5, 10, 20, 40, 80, 160, then 300 each time.
        assert_eq!(
            &secs[..9],
            &[5, 15, 35, 75, 155, 315, 615, 915, 1215],
            "{secs:?}"
        );
        assert_eq!(logged, 1, "one warning for a name that keeps failing");
    }

    #[test]
    fn logs_each_change_once() {
        let t0 = Instant::now();
        let mut s = LookupSchedule::scaled(1);
        let a = addr("192.0.2.1:51820");
        let b = addr("192.0.2.2:51820");
        assert!(!s.is_resolved());
        // Unresolvable at start: one warning, however many retries.
        assert_eq!(s.failed(t0).change, Some(Change::Unresolvable));
        assert_eq!(s.failed(t0).change, None);
        // Then it resolves: one notice with the address, none for the same answer again.
        assert_eq!(s.succeeded(a), Some(Change::Resolved(a)));
        assert!(s.is_resolved());
        assert_eq!(s.succeeded(a), None);
        // The address changes: one notice.
        assert_eq!(s.succeeded(b), Some(Change::Resolved(b)));
        // It stops resolving, then comes back with the same address: both are changes.
        assert_eq!(s.failed(t0).change, Some(Change::Unresolvable));
        assert_eq!(s.failed(t0).change, None);
        assert_eq!(s.succeeded(b), Some(Change::Resolved(b)));
    }

    #[test]
    fn a_success_starts_the_waits_over() {
        let t0 = Instant::now();
        let mut s = LookupSchedule::scaled(1);
        fail_until(&mut s, t0, Duration::from_secs(600));
        s.succeeded(addr("192.0.2.1:1"));
        assert_eq!(s.failed(t0).at - t0, FIRST_RETRY);
        assert_eq!(s.failed(t0).at - t0, FIRST_RETRY * 2);
    }

    #[test]
    fn the_test_divisor_shortens_every_wait() {
        let t0 = Instant::now();
        let mut s = LookupSchedule::scaled(5);
        let (times, _) = fail_until(&mut s, t0, Duration::from_secs(200));
        let ms: Vec<u128> = times.iter().map(Duration::as_millis).collect();
        assert_eq!(
            &ms[..8],
            &[1000, 3000, 7000, 15000, 31000, 63000, 123000, 183000]
        );
        // A divisor of 0 is taken as 1 rather than dividing by zero.
        assert_eq!(LookupSchedule::scaled(0).failed(t0).at - t0, FIRST_RETRY);
    }
}
