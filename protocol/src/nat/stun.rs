//! STUN Binding client (RFC 8489) for learning the WireGuard socket's public mapping, and the
//! mapping-behaviour check over two or more servers (RFC 5780's idea, without its second
//! server address: two servers with different IPs are enough to see whether the NAT reuses one
//! mapping for every destination).
//!
//! Sans-IO: the daemon sends what [`StunClient::poll_transmit`] yields from the WireGuard
//! socket, feeds datagrams that [`super::demux::classify`] calls STUN to
//! [`StunClient::handle_input`], and calls [`StunClient::handle_timeout`] at
//! [`StunClient::poll_timeout`]. Requests are rare (a few per 20 s), so they are allocated.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytecodec::{DecodeExt, EncodeExt};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use stun_codec::rfc5389::attributes::{Fingerprint, Software, XorMappedAddress};
use stun_codec::rfc5389::{methods::BINDING, Attribute};
use stun_codec::{Message, MessageClass, MessageDecoder, MessageEncoder, TransactionId};

use super::consts::{
    RESTUN_BASE, RESTUN_JITTER, STUN_FRESH, STUN_LAST_WAIT_FACTOR, STUN_MAX_REQUESTS, STUN_RTO,
};

/// SOFTWARE attribute value: identifies us to STUN server operators.
pub const SOFTWARE: &str = concat!("vpnd ", env!("CARGO_PKG_VERSION"));

/// A datagram to send from the WireGuard socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination (a STUN server).
    pub dst: SocketAddr,
    /// The encoded request.
    pub payload: Vec<u8>,
}

/// What the client learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunEvent {
    /// A server reported our mapped address (first time, or unchanged on a refresh).
    Mapped {
        /// The server.
        server: SocketAddr,
        /// Our public address as that server sees it.
        mapped: SocketAddr,
    },
    /// A server reported a different mapped address than last time: the NAT replaced our
    /// mapping, so the path state machines should probe again at once.
    MappingChanged {
        /// The server.
        server: SocketAddr,
        /// The previous mapped address.
        old: SocketAddr,
        /// The new one.
        new: SocketAddr,
    },
    /// A transaction with a server ran out of retransmissions.
    Unreachable {
        /// The server.
        server: SocketAddr,
    },
}

/// How the NAT maps one local socket to public addresses (RFC 4787 terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingType {
    /// The same public address for every destination (what hole punching needs).
    EndpointIndependent,
    /// A different public address per destination ("symmetric" NAT).
    EndpointDependent,
    /// Fewer than two fresh answers from servers with different IPs.
    Unknown,
}

/// Why an incoming STUN datagram was dropped (the daemon counts these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    /// Not a decodable STUN message.
    #[error("malformed STUN message")]
    Malformed,
    /// A STUN message that is not a Binding success response.
    #[error("unexpected STUN message class or method")]
    Unexpected,
    /// No outstanding request with this transaction id to this source.
    #[error("STUN response matches no outstanding request")]
    Unmatched,
    /// A success response without XOR-MAPPED-ADDRESS.
    #[error("STUN response without XOR-MAPPED-ADDRESS")]
    NoMappedAddress,
}

struct Pending {
    txid: [u8; 12],
    sent: u32,
    /// When the first request went out (for the RTT: only answers to a transaction sent once
    /// are timed, since an answer to a retransmitted one could belong to either send).
    first_at: Instant,
    next_at: Instant,
    payload: Vec<u8>,
}

struct Server {
    addr: SocketAddr,
    pending: Option<Pending>,
    mapped: Option<(SocketAddr, Instant)>,
    next_check: Instant,
    rtt: Option<Duration>,
    /// The last transaction ran out of retransmissions (cleared by the next answer).
    unreachable: bool,
}

impl Server {
    /// A server not asked yet, first checked at `now`.
    fn new(addr: SocketAddr, now: Instant) -> Server {
        Server {
            addr,
            pending: None,
            mapped: None,
            next_check: now,
            rtt: None,
            unreachable: false,
        }
    }
}

/// How one server is doing, for `vpnctl show` and `netcheck`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerStatus {
    /// The server.
    pub addr: SocketAddr,
    /// Our address as it last saw us, if that answer is still fresh.
    pub mapped: Option<SocketAddr>,
    /// Round-trip time of its last answer to a request sent once.
    pub rtt: Option<Duration>,
    /// Its last transaction went unanswered.
    pub unreachable: bool,
    /// A request to it is in flight.
    pub checking: bool,
}

/// The STUN client for one socket and a fixed list of servers.
pub struct StunClient {
    servers: Vec<Server>,
    rng: ChaCha20Rng,
    transmits: VecDeque<Transmit>,
    events: VecDeque<StunEvent>,
}

impl StunClient {
    /// A client for `servers`; the first check starts at `now`. `seed` drives transaction ids
    /// and jitter (the daemon passes OS randomness; tests pass constants).
    pub fn new(servers: &[SocketAddr], seed: [u8; 32], now: Instant) -> Self {
        StunClient {
            servers: servers.iter().map(|&addr| Server::new(addr, now)).collect(),
            rng: ChaCha20Rng::from_seed(seed),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Adds `addr` to the servers (a hub dialled on demand), checked from `now`; nothing if
    /// it is one already.
    pub fn add_server(&mut self, addr: SocketAddr, now: Instant) {
        if self.servers.iter().any(|s| s.addr == addr) {
            return;
        }
        self.servers.push(Server::new(addr, now));
        self.handle_timeout(now);
    }

    /// Starts a check of every server now (link change, or the daemon wants a fresh netcheck).
    /// A transaction already in flight is left to finish.
    pub fn recheck(&mut self, now: Instant) {
        for s in &mut self.servers {
            if s.pending.is_none() {
                s.next_check = now;
            }
        }
        self.handle_timeout(now);
    }

    /// Drives retransmissions, give-ups and periodic re-STUN.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.servers.len() {
            let s = &mut self.servers[i];
            match &mut s.pending {
                None if now >= s.next_check => {
                    let txid = random_txid(&mut self.rng);
                    let payload = encode_request(txid);
                    self.transmits.push_back(Transmit {
                        dst: s.addr,
                        payload: payload.clone(),
                    });
                    s.pending = Some(Pending {
                        txid,
                        sent: 1,
                        first_at: now,
                        next_at: now + STUN_RTO,
                        payload,
                    });
                }
                Some(p) if now >= p.next_at => {
                    if p.sent >= STUN_MAX_REQUESTS {
                        s.pending = None;
                        s.unreachable = true;
                        let addr = s.addr;
                        s.next_check = now + restun_delay(&mut self.rng);
                        self.events
                            .push_back(StunEvent::Unreachable { server: addr });
                    } else {
                        p.sent += 1;
                        // RFC 8489: the wait doubles per request; after the last one it is Rm × RTO.
                        let wait = if p.sent == STUN_MAX_REQUESTS {
                            STUN_RTO * STUN_LAST_WAIT_FACTOR
                        } else {
                            STUN_RTO * (1 << (p.sent - 1))
                        };
                        p.next_at = now + wait;
                        self.transmits.push_back(Transmit {
                            dst: s.addr,
                            payload: p.payload.clone(),
                        });
                    }
                }
                _ => {}
            }
        }
    }

    /// Handles a datagram classified as STUN, received from `from`.
    pub fn handle_input(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Result<(), StunError> {
        let msg = MessageDecoder::<Attribute>::new()
            .decode_from_bytes(data)
            .map_err(|_| StunError::Malformed)?
            .map_err(|_| StunError::Malformed)?;
        if msg.class() != MessageClass::SuccessResponse || msg.method() != BINDING {
            return Err(StunError::Unexpected);
        }
        let txid = *msg.transaction_id().as_bytes();
        let server = self
            .servers
            .iter_mut()
            .find(|s| s.addr == from && s.pending.as_ref().is_some_and(|p| p.txid == txid))
            .ok_or(StunError::Unmatched)?;
        let mapped = msg
            .get_attribute::<XorMappedAddress>()
            .map(|a| a.address())
            .ok_or(StunError::NoMappedAddress)?;
        if let Some(p) = server.pending.take() {
            if p.sent == 1 {
                server.rtt = Some(now.saturating_duration_since(p.first_at));
            }
        }
        server.unreachable = false;
        server.next_check = now + restun_delay(&mut self.rng);
        let addr = server.addr;
        let ev = match server.mapped.replace((mapped, now)) {
            Some((old, _)) if old != mapped => StunEvent::MappingChanged {
                server: addr,
                old,
                new: mapped,
            },
            _ => StunEvent::Mapped {
                server: addr,
                mapped,
            },
        };
        self.events.push_back(ev);
        Ok(())
    }

    /// The next request to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<StunEvent> {
        self.events.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.servers
            .iter()
            .map(|s| s.pending.as_ref().map_or(s.next_check, |p| p.next_at))
            .min()
    }

    /// Each server's state, in the order given to [`StunClient::new`].
    pub fn servers(&self, now: Instant) -> Vec<ServerStatus> {
        self.servers
            .iter()
            .map(|s| ServerStatus {
                addr: s.addr,
                mapped: s
                    .mapped
                    .filter(|(_, at)| now.saturating_duration_since(*at) <= STUN_FRESH)
                    .map(|(m, _)| m),
                rtt: s.rtt,
                unreachable: s.unreachable,
                checking: s.pending.is_some(),
            })
            .collect()
    }

    /// Whether no transaction is in flight (a `netcheck` waits for this).
    pub fn is_idle(&self) -> bool {
        self.servers.iter().all(|s| s.pending.is_none())
    }

    /// Our public endpoints from fresh answers, deduplicated, in server order.
    pub fn public_endpoints(&self, now: Instant) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for a in self.fresh(now) {
            if !out.contains(&a.1) {
                out.push(a.1);
            }
        }
        out
    }

    /// The mapping behaviour seen in fresh answers: two servers with different IPs that report
    /// the same mapped address mean endpoint-independent mapping, different addresses mean
    /// endpoint-dependent; fewer than two such servers give `Unknown`. Servers that share an
    /// IP are not compared (a NAT may map per destination IP only, which they could not see).
    pub fn mapping(&self, now: Instant) -> MappingType {
        let fresh: Vec<_> = self.fresh(now).collect();
        let mut verdict = MappingType::Unknown;
        for (i, (sa, ma)) in fresh.iter().enumerate() {
            for (sb, mb) in &fresh[i + 1..] {
                if sa.ip() == sb.ip() {
                    continue;
                }
                if ma != mb {
                    return MappingType::EndpointDependent;
                }
                verdict = MappingType::EndpointIndependent;
            }
        }
        verdict
    }

    fn fresh(&self, now: Instant) -> impl Iterator<Item = (SocketAddr, SocketAddr)> + '_ {
        self.servers.iter().filter_map(move |s| match s.mapped {
            Some((m, at)) if now.saturating_duration_since(at) <= STUN_FRESH => Some((s.addr, m)),
            _ => None,
        })
    }
}

fn random_txid(rng: &mut ChaCha20Rng) -> [u8; 12] {
    let mut t = [0u8; 12];
    rng.fill_bytes(&mut t);
    t
}

fn restun_delay(rng: &mut ChaCha20Rng) -> Duration {
    RESTUN_BASE + Duration::from_millis(rng.next_u64() % (RESTUN_JITTER.as_millis() as u64 + 1))
}

/// Encodes a Binding request with SOFTWARE and FINGERPRINT.
pub fn encode_request(txid: [u8; 12]) -> Vec<u8> {
    let mut m = Message::<Attribute>::new(MessageClass::Request, BINDING, TransactionId::new(txid));
    m.add_attribute(Software::new(SOFTWARE.to_owned()).expect("SOFTWARE is short"));
    let fp = Fingerprint::new(&m).expect("fingerprint of a small message");
    m.add_attribute(fp);
    MessageEncoder::new()
        .encode_into_bytes(m)
        .expect("a Binding request always encodes")
}

/// Encodes a Binding success response (what a STUN server sends; used by vpnhub's tests and
/// by this module's scripted network).
pub fn encode_success(txid: [u8; 12], mapped: SocketAddr) -> Vec<u8> {
    let mut m = Message::<Attribute>::new(
        MessageClass::SuccessResponse,
        BINDING,
        TransactionId::new(txid),
    );
    m.add_attribute(XorMappedAddress::new(mapped));
    let fp = Fingerprint::new(&m).expect("fingerprint of a small message");
    m.add_attribute(fp);
    MessageEncoder::new()
        .encode_into_bytes(m)
        .expect("a Binding response always encodes")
}

/// The transaction id of a Binding request, if `data` is one (for scripted servers in tests).
pub fn request_txid(data: &[u8]) -> Option<[u8; 12]> {
    let m = MessageDecoder::<Attribute>::new()
        .decode_from_bytes(data)
        .ok()?
        .ok()?;
    (m.class() == MessageClass::Request && m.method() == BINDING)
        .then(|| *m.transaction_id().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::demux::{classify, Kind};

    const S1: &str = "192.0.2.1:3478";
    const S2: &str = "198.51.100.1:3478";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A scripted network: answers every request in the queue with `mapped(server)`.
    fn answer_all(
        c: &mut StunClient,
        now: Instant,
        mapped: impl Fn(SocketAddr) -> SocketAddr,
    ) -> usize {
        let mut n = 0;
        while let Some(t) = c.poll_transmit() {
            assert_eq!(classify(&t.payload), Kind::Stun);
            let txid = request_txid(&t.payload).expect("a Binding request");
            let resp = encode_success(txid, mapped(t.dst));
            c.handle_input(t.dst, &resp, now).unwrap();
            n += 1;
        }
        n
    }

    #[test]
    fn request_carries_software_and_valid_fingerprint() {
        let bytes = encode_request([5; 12]);
        let m = MessageDecoder::<Attribute>::new()
            .decode_from_bytes(&bytes)
            .unwrap()
            .unwrap();
        assert!(m.get_attribute::<Software>().is_some());
        assert!(
            m.get_attribute::<Fingerprint>().is_some(),
            "fingerprint checked on decode"
        );
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            MessageDecoder::<Attribute>::new().decode_from_bytes(&bad),
            Ok(Err(_)) | Err(_)
        ));
    }

    #[test]
    fn eim_when_two_servers_agree_edm_when_not() {
        let t0 = Instant::now();
        let mut c = StunClient::new(&[sa(S1), sa(S2)], [1; 32], t0);
        c.handle_timeout(t0);
        assert_eq!(answer_all(&mut c, t0, |_| sa("203.0.113.9:40000")), 2);
        assert_eq!(c.mapping(t0), MappingType::EndpointIndependent);
        assert_eq!(c.public_endpoints(t0), vec![sa("203.0.113.9:40000")]);

        let mut c = StunClient::new(&[sa(S1), sa(S2)], [2; 32], t0);
        c.handle_timeout(t0);
        answer_all(&mut c, t0, |s| {
            SocketAddr::new(
                "203.0.113.9".parse().unwrap(),
                40000 + (s.ip() == sa(S2).ip()) as u16,
            )
        });
        assert_eq!(c.mapping(t0), MappingType::EndpointDependent);
        assert_eq!(c.public_endpoints(t0).len(), 2);
        // Answers go stale: the classification does not outlive the mapping.
        assert_eq!(
            c.mapping(t0 + STUN_FRESH + Duration::from_secs(1)),
            MappingType::Unknown
        );
    }

    #[test]
    fn same_ip_servers_or_one_answer_is_unknown() {
        let t0 = Instant::now();
        let mut c = StunClient::new(&[sa(S1), sa("192.0.2.1:3479")], [3; 32], t0);
        c.handle_timeout(t0);
        answer_all(&mut c, t0, |s| SocketAddr::new(s.ip(), s.port() + 1));
        assert_eq!(c.mapping(t0), MappingType::Unknown);
    }

    #[test]
    fn retransmits_on_rfc8489_schedule_then_gives_up() {
        let t0 = Instant::now();
        let mut c = StunClient::new(&[sa(S1)], [4; 32], t0);
        c.handle_timeout(t0);
        let first = c.poll_transmit().unwrap();
        let mut sends = vec![0u64];
        let mut now = t0;
        let mut unreachable_at = None;
        for _ in 0..20 {
            now = c.poll_timeout().unwrap();
            c.handle_timeout(now);
            while let Some(t) = c.poll_transmit() {
                assert_eq!(
                    t.payload, first.payload,
                    "retransmissions repeat the request"
                );
                sends.push((now - t0).as_millis() as u64);
            }
            if let Some(StunEvent::Unreachable { .. }) = c.poll_event() {
                unreachable_at = Some((now - t0).as_millis() as u64);
                break;
            }
        }
        assert_eq!(sends, vec![0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(unreachable_at, Some(39500));
        // Then it tries again on the re-STUN cadence (20–26 s later).
        let next = c.poll_timeout().unwrap() - now;
        assert!(
            next >= RESTUN_BASE && next <= RESTUN_BASE + RESTUN_JITTER,
            "{next:?}"
        );
    }

    #[test]
    fn server_status_reports_rtt_mapping_and_unreachable() {
        let t0 = Instant::now();
        let mut c = StunClient::new(&[sa(S1), sa(S2)], [7; 32], t0);
        c.handle_timeout(t0);
        assert!(!c.is_idle());
        let first = c.poll_transmit().unwrap();
        let txid = request_txid(&first.payload).unwrap();
        let t1 = t0 + Duration::from_millis(42);
        c.handle_input(first.dst, &encode_success(txid, sa("203.0.113.7:7")), t1)
            .unwrap();
        // The second server never answers.
        let mut gave_up = false;
        while !gave_up {
            let now = c.poll_timeout().unwrap();
            c.handle_timeout(now);
            while c.poll_transmit().is_some() {}
            while let Some(e) = c.poll_event() {
                gave_up |= e == StunEvent::Unreachable { server: sa(S2) };
            }
        }
        let st = c.servers(t1);
        assert_eq!(st[0].rtt, Some(Duration::from_millis(42)));
        assert_eq!(st[0].mapped, Some(sa("203.0.113.7:7")));
        assert!(
            !st[0].unreachable,
            "a later unanswered re-STUN is still in flight"
        );
        assert!(st[1].unreachable && st[1].mapped.is_none() && st[1].rtt.is_none());
        // Past the freshness window the mapping no longer counts.
        assert_eq!(
            c.servers(t1 + STUN_FRESH + Duration::from_secs(1))[0].mapped,
            None
        );
    }

    #[test]
    fn responses_must_match_txid_and_source() {
        let t0 = Instant::now();
        let mut c = StunClient::new(&[sa(S1)], [5; 32], t0);
        c.handle_timeout(t0);
        let t = c.poll_transmit().unwrap();
        let txid = request_txid(&t.payload).unwrap();
        let good = encode_success(txid, sa("203.0.113.1:1"));
        assert_eq!(
            c.handle_input(sa(S2), &good, t0),
            Err(StunError::Unmatched),
            "right txid from the wrong source"
        );
        let other = encode_success([0; 12], sa("203.0.113.1:1"));
        assert_eq!(
            c.handle_input(sa(S1), &other, t0),
            Err(StunError::Unmatched)
        );
        assert_eq!(
            c.handle_input(sa(S1), b"junk", t0),
            Err(StunError::Malformed)
        );
        assert_eq!(
            c.handle_input(sa(S1), &t.payload, t0),
            Err(StunError::Unexpected)
        );
        assert_eq!(c.handle_input(sa(S1), &good, t0), Ok(()));
        assert_eq!(
            c.handle_input(sa(S1), &good, t0),
            Err(StunError::Unmatched),
            "a replayed response is not accepted twice"
        );
    }

    #[test]
    fn restun_every_20_to_26_s_and_reports_changed_mapping() {
        let t0 = Instant::now();
        let mut c = StunClient::new(&[sa(S1)], [6; 32], t0);
        let mut now = t0;
        c.handle_timeout(now);
        answer_all(&mut c, now, |_| sa("203.0.113.5:1000"));
        assert!(matches!(c.poll_event(), Some(StunEvent::Mapped { .. })));
        let mut gaps = Vec::new();
        for round in 0..10u16 {
            let next = c.poll_timeout().unwrap();
            gaps.push(next - now);
            now = next;
            c.handle_timeout(now);
            // The NAT drops the mapping after round 5: the new port must be reported.
            let port = if round < 5 { 1000 } else { 2000 };
            answer_all(&mut c, now, |_| {
                SocketAddr::new("203.0.113.5".parse().unwrap(), port)
            });
            let ev = c.poll_event().unwrap();
            if round == 5 {
                assert!(matches!(ev, StunEvent::MappingChanged { .. }), "{ev:?}");
            } else {
                assert!(matches!(ev, StunEvent::Mapped { .. }), "{ev:?}");
            }
        }
        assert!(gaps
            .iter()
            .all(|g| *g >= RESTUN_BASE && *g <= RESTUN_BASE + RESTUN_JITTER));
        assert!(gaps.windows(2).any(|w| w[0] != w[1]), "jittered: {gaps:?}");
    }
}
