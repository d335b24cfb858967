//! Which transport a peer uses to reach one hub, sans-IO: UDP from the WireGuard socket while
//! the hub answers there, TCP (framed, [`super::frame`]) when UDP to the hub goes unanswered,
//! and back to UDP once the hub answers over UDP again.
//!
//! The caller reports what it sends to and hears from the hub over UDP (STUN requests and hub
//! messages alike) and asks [`TransportChoice::poll`] each tick whether to switch. A switch
//! means a new registration over the other transport: the hub binds a registration to the
//! source it came from.

use std::time::{Duration, Instant};

/// A request to the hub over UDP unanswered for this long means UDP to the hub is blocked.
/// STUN retransmits at 0, 0.5, 1.5 and 3.5 s and hub hellos after 1 and 2 s, so 4 s is five
/// or more lost datagrams in a row: a lossy link answers one of them, a firewall none.
pub const TCP_FALLBACK_AFTER: Duration = Duration::from_secs(4);
/// The least time spent on TCP before going back to UDP. STUN keeps checking the hub over
/// UDP every 20–26 s while on TCP; an answer means UDP works again, but a path that lets an
/// odd datagram through and then drops the rest must not make us flap more than this often.
pub const TCP_MIN_DWELL: Duration = Duration::from_secs(30);
/// First wait before reconnecting a TCP connection that failed or closed.
pub const TCP_RECONNECT_BASE: Duration = Duration::from_secs(1);
/// The reconnect wait doubles up to this (the same bound as the UDP registration retries:
/// a hub that comes back is reached within 30 s).
pub const TCP_RECONNECT_MAX: Duration = Duration::from_secs(30);
/// Failed connection attempts in a row before the hub counts as `failed` over TCP
/// (1 + 2 + 4 s of trying, like [`super::client::HUB_FAIL_AFTER`] over UDP).
pub const TCP_FAIL_AFTER: u32 = 3;

/// How a peer talks to a hub (`transport` in `vpnctl show`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Datagrams from the WireGuard socket.
    Udp,
    /// Length-prefixed frames over a TCP connection to the same port.
    Tcp,
}

impl Transport {
    /// The name `vpnctl show` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// The transport decision for one hub.
#[derive(Debug, Clone)]
pub struct TransportChoice {
    current: Transport,
    /// The oldest UDP request to the hub still unanswered.
    unanswered_since: Option<Instant>,
    /// When we moved to TCP.
    tcp_since: Option<Instant>,
    /// The hub answered over UDP after we moved to TCP.
    udp_answered_on_tcp: bool,
    /// TCP connection attempts that failed in a row.
    tcp_failures: u32,
    /// The TCP connection, while on TCP.
    link: Link,
}

/// The TCP connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// None open; connect at this time (`None`: at once).
    Closed(Option<Instant>),
    /// An attempt is in flight.
    Connecting,
    /// Open.
    Up,
}

impl Default for TransportChoice {
    fn default() -> Self {
        Self::new()
    }
}

impl TransportChoice {
    /// Starts on UDP.
    pub fn new() -> Self {
        TransportChoice {
            current: Transport::Udp,
            unanswered_since: None,
            tcp_since: None,
            udp_answered_on_tcp: false,
            tcp_failures: 0,
            link: Link::Closed(None),
        }
    }

    /// The transport in use.
    pub fn current(&self) -> Transport {
        self.current
    }

    /// A STUN request or hub message went to the hub over UDP.
    pub fn udp_sent(&mut self, now: Instant) {
        if self.current == Transport::Udp && self.unanswered_since.is_none() {
            self.unanswered_since = Some(now);
        }
    }

    /// The hub answered over UDP (a STUN response or a hub message).
    pub fn udp_answered(&mut self) {
        self.unanswered_since = None;
        if self.current == Transport::Tcp {
            self.udp_answered_on_tcp = true;
        }
    }

    /// The TCP connection is up.
    pub fn tcp_connected(&mut self) {
        self.tcp_failures = 0;
        self.link = Link::Up;
    }

    /// The TCP connection failed or closed; returns when to connect again.
    pub fn tcp_failed(&mut self, now: Instant) -> Instant {
        self.tcp_failures = self.tcp_failures.saturating_add(1);
        let wait = TCP_RECONNECT_BASE
            .saturating_mul(1 << (self.tcp_failures - 1).min(5))
            .min(TCP_RECONNECT_MAX);
        let at = now + wait;
        self.link = Link::Closed(Some(at));
        at
    }

    /// On TCP: whether to open the connection now (none open, none being opened, and any
    /// back-off over).
    pub fn should_connect(&self, now: Instant) -> bool {
        self.current == Transport::Tcp
            && matches!(self.link, Link::Closed(at) if at.is_none_or(|at| now >= at))
    }

    /// A connection attempt started; it ends in [`Self::tcp_connected`] or
    /// [`Self::tcp_failed`].
    pub fn connecting(&mut self) {
        self.link = Link::Connecting;
    }

    /// Whether TCP has failed often enough to call the hub unreachable.
    pub fn tcp_failing(&self) -> bool {
        self.current == Transport::Tcp && self.tcp_failures >= TCP_FAIL_AFTER
    }

    /// Decides whether to switch now; returns the new transport if so.
    pub fn poll(&mut self, now: Instant) -> Option<Transport> {
        match self.current {
            Transport::Udp => {
                let since = self.unanswered_since?;
                if now.saturating_duration_since(since) < TCP_FALLBACK_AFTER {
                    return None;
                }
                self.current = Transport::Tcp;
                self.unanswered_since = None;
                self.tcp_since = Some(now);
                self.udp_answered_on_tcp = false;
                self.tcp_failures = 0;
                self.link = Link::Closed(None);
                Some(Transport::Tcp)
            }
            Transport::Tcp => {
                let dwelt = self
                    .tcp_since
                    .is_none_or(|t| now.saturating_duration_since(t) >= TCP_MIN_DWELL);
                if !(self.udp_answered_on_tcp && dwelt) {
                    return None;
                }
                *self = TransportChoice::new();
                Some(Transport::Udp)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn answered_udp_stays_on_udp() {
        let t0 = Instant::now();
        let mut c = TransportChoice::new();
        for i in 0..100 {
            let now = t0 + ms(i * 1000);
            c.udp_sent(now);
            assert_eq!(c.poll(now + ms(300)), None);
            c.udp_answered();
        }
        assert_eq!(c.current(), Transport::Udp);
    }

    #[test]
    fn lossy_udp_answered_within_the_bound_stays() {
        let t0 = Instant::now();
        let mut c = TransportChoice::new();
        c.udp_sent(t0);
        c.udp_sent(t0 + ms(500)); // a retransmission does not restart the clock
        assert_eq!(c.poll(t0 + ms(3999)), None);
        c.udp_answered();
        assert_eq!(c.poll(t0 + ms(10_000)), None);
    }

    #[test]
    fn unanswered_udp_falls_back_to_tcp_after_the_bound() {
        let t0 = Instant::now();
        let mut c = TransportChoice::new();
        assert_eq!(
            c.poll(t0 + ms(60_000)),
            None,
            "nothing sent, nothing to judge"
        );
        c.udp_sent(t0);
        assert_eq!(c.poll(t0 + TCP_FALLBACK_AFTER - ms(1)), None);
        assert_eq!(c.poll(t0 + TCP_FALLBACK_AFTER), Some(Transport::Tcp));
        assert_eq!(c.current(), Transport::Tcp);
        assert!(c.should_connect(t0 + TCP_FALLBACK_AFTER));
        // UDP sends while on TCP (STUN keeps checking) do not matter.
        c.udp_sent(t0 + ms(5000));
        assert_eq!(c.poll(t0 + ms(20_000)), None);
    }

    #[test]
    fn back_to_udp_once_it_answers_but_not_before_the_dwell() {
        let t0 = Instant::now();
        let mut c = TransportChoice::new();
        c.udp_sent(t0);
        let on_tcp = t0 + TCP_FALLBACK_AFTER;
        assert_eq!(c.poll(on_tcp), Some(Transport::Tcp));
        assert_eq!(c.poll(on_tcp + TCP_MIN_DWELL), None, "no UDP answer yet");
        c.udp_answered();
        assert_eq!(c.poll(on_tcp + TCP_MIN_DWELL - ms(1)), None);
        assert_eq!(c.poll(on_tcp + TCP_MIN_DWELL), Some(Transport::Udp));
        // Fresh on UDP: judged again from the next request.
        assert_eq!(c.poll(on_tcp + ms(100_000)), None);
        c.udp_sent(on_tcp + ms(100_000));
        assert_eq!(
            c.poll(on_tcp + ms(100_000) + TCP_FALLBACK_AFTER),
            Some(Transport::Tcp)
        );
    }

    #[test]
    fn tcp_reconnects_back_off_and_report_failing() {
        let t0 = Instant::now();
        let mut c = TransportChoice::new();
        c.udp_sent(t0);
        let now = t0 + TCP_FALLBACK_AFTER;
        c.poll(now);
        assert!(c.should_connect(now));
        c.connecting();
        assert!(
            !c.should_connect(now + ms(60_000)),
            "an attempt is in flight"
        );
        let mut waits = Vec::new();
        for _ in 0..8 {
            let at = c.tcp_failed(now);
            waits.push((at - now).as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert!(c.tcp_failing());
        assert!(!c.should_connect(now + ms(29_999)));
        assert!(c.should_connect(now + ms(30_000)));
        c.connecting();
        c.tcp_connected();
        assert!(!c.tcp_failing());
        assert!(!c.should_connect(now + ms(100_000)), "already connected");
        assert_eq!(
            c.tcp_failed(now),
            now + TCP_RECONNECT_BASE,
            "closed: retried at once"
        );
    }
}
