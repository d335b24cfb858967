//! Hole punching between two simulated hosts behind simulated NATs, on a fake clock.
//!
//! A small NAT model (RFC 4787: endpoint-independent or endpoint-dependent mapping;
//! endpoint-independent, address-dependent or address-and-port-dependent filtering; a mapping
//! timeout; a "conntrack flush") sits between each host and a simulated internet with two STUN
//! servers at different IPs. Each host runs the real `StunClient` and `PathManager`; the hub is
//! modelled as an instant exchange of STUN-learned endpoints ("call me maybe"). WireGuard is
//! modelled as one datagram a second to the selected endpoint, whose arrival is the
//! receiver's WireGuard progress. This mirrors the netns NAT lab that issue 10 adds later.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use protocol::nat::demux::{classify, Kind};
use protocol::nat::path::{PathEvent, PathKind, PathManager, Source, WhyNotDirect};
use protocol::nat::probe::{ProbeKey, PROBE_LEN};
use protocol::nat::stun::{encode_success, request_txid, MappingType, StunClient, StunEvent};
use protocol::noise::crypto;
use x25519_dalek::StaticSecret;

const LATENCY: Duration = Duration::from_millis(15);
const WG_TICK: Duration = Duration::from_secs(1);
const WG_MAGIC: u8 = 4;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn stun_servers() -> [SocketAddr; 2] {
    [sa("192.0.2.1:3478"), sa("192.0.2.2:3478")]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mapping {
    Eim,
    Edm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filtering {
    Eif,
    Adf,
    Apdf,
}

/// The four NAT types of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NatType {
    FullCone,
    Restricted,
    PortRestricted,
    Symmetric,
}

impl NatType {
    const ALL: [NatType; 4] = [
        NatType::FullCone,
        NatType::Restricted,
        NatType::PortRestricted,
        NatType::Symmetric,
    ];

    fn behaviour(self) -> (Mapping, Filtering) {
        match self {
            NatType::FullCone => (Mapping::Eim, Filtering::Eif),
            NatType::Restricted => (Mapping::Eim, Filtering::Adf),
            NatType::PortRestricted => (Mapping::Eim, Filtering::Apdf),
            NatType::Symmetric => (Mapping::Edm, Filtering::Apdf),
        }
    }
}

struct Entry {
    inside: SocketAddr,
    /// For endpoint-dependent mapping: the one destination this mapping serves.
    dest: Option<SocketAddr>,
    port: u16,
    contacted: Vec<SocketAddr>,
    last_used: Instant,
}

struct Nat {
    ip: IpAddr,
    mapping: Mapping,
    filtering: Filtering,
    timeout: Duration,
    preserve_port: bool,
    next_port: u16,
    entries: Vec<Entry>,
}

impl Nat {
    fn new(ip: &str, t: NatType) -> Self {
        let (mapping, filtering) = t.behaviour();
        Nat {
            ip: ip.parse().unwrap(),
            mapping,
            filtering,
            timeout: Duration::from_secs(30),
            preserve_port: true,
            next_port: 40000,
            entries: Vec::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        let t = self.timeout;
        self.entries.retain(|e| now < e.last_used + t);
    }

    fn outbound(&mut self, inside: SocketAddr, dst: SocketAddr, now: Instant) -> SocketAddr {
        self.expire(now);
        let dest = (self.mapping == Mapping::Edm).then_some(dst);
        let i = match self
            .entries
            .iter()
            .position(|e| e.inside == inside && e.dest == dest)
        {
            Some(i) => i,
            None => {
                let free = |p: u16, es: &[Entry]| es.iter().all(|e| e.port != p);
                let port = if self.mapping == Mapping::Eim
                    && self.preserve_port
                    && free(inside.port(), &self.entries)
                {
                    inside.port()
                } else {
                    while !free(self.next_port, &self.entries) {
                        self.next_port += 1;
                    }
                    self.next_port += 1;
                    self.next_port - 1
                };
                self.entries.push(Entry {
                    inside,
                    dest,
                    port,
                    contacted: Vec::new(),
                    last_used: now,
                });
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[i];
        e.last_used = now;
        if !e.contacted.contains(&dst) {
            e.contacted.push(dst);
        }
        SocketAddr::new(self.ip, e.port)
    }

    fn inbound(&mut self, src: SocketAddr, port: u16, now: Instant) -> Option<SocketAddr> {
        self.expire(now);
        let filtering = self.filtering;
        let e = self.entries.iter_mut().find(|e| {
            e.port == port
                && match filtering {
                    Filtering::Eif => true,
                    Filtering::Adf => e.contacted.iter().any(|c| c.ip() == src.ip()),
                    Filtering::Apdf => e.contacted.contains(&src),
                }
        })?;
        e.last_used = now;
        Some(e.inside)
    }
}

struct Host {
    inside: SocketAddr,
    nat: Option<Nat>,
    stun: StunClient,
    path: PathManager,
    /// Time of the first `Selected` event.
    punched_at: Option<Instant>,
    lost: u32,
    next_wg: Instant,
    wg_received: u32,
    /// On losing the path, ask for a fresh STUN check (the NatActor's job in vpnd).
    recheck_on_loss: bool,
}

struct Packet {
    at: Instant,
    src: SocketAddr,
    dst: SocketAddr,
    data: Vec<u8>,
}

struct World {
    now: Instant,
    t0: Instant,
    hosts: [Host; 2],
    net: Vec<Packet>,
    /// Endpoints announced through the "hub", per host.
    announced: [Vec<SocketAddr>; 2],
    configured: [Option<SocketAddr>; 2],
}

fn host(i: usize, nat: Option<Nat>, t0: Instant) -> Host {
    let own = StaticSecret::from([i as u8 + 1; 32]);
    let peer = StaticSecret::from([2 - i as u8; 32]);
    let key = ProbeKey::derive(&own, &crypto::public_key(&peer)).unwrap();
    let inside = if nat.is_some() {
        SocketAddr::new(format!("10.{i}.0.2").parse().unwrap(), 51820)
    } else {
        SocketAddr::new(format!("198.51.100.{}", 10 + i).parse().unwrap(), 51820)
    };
    Host {
        inside,
        nat,
        stun: StunClient::new(&stun_servers(), [i as u8 + 10; 32], t0),
        path: PathManager::new(key, [i as u8 + 20; 32], t0),
        punched_at: None,
        lost: 0,
        next_wg: t0,
        wg_received: 0,
        recheck_on_loss: false,
    }
}

impl World {
    fn new(a: Option<NatType>, b: Option<NatType>) -> Self {
        let t0 = Instant::now();
        World {
            now: t0,
            t0,
            hosts: [
                host(0, a.map(|t| Nat::new("203.0.113.1", t)), t0),
                host(1, b.map(|t| Nat::new("203.0.113.2", t)), t0),
            ],
            net: Vec::new(),
            announced: [Vec::new(), Vec::new()],
            configured: [None, None],
        }
    }

    fn send(&mut self, from: usize, dst: SocketAddr, data: Vec<u8>) {
        let now = self.now;
        let h = &mut self.hosts[from];
        let src = match &mut h.nat {
            Some(n) => n.outbound(h.inside, dst, now),
            None => h.inside,
        };
        self.net.push(Packet {
            at: now + LATENCY,
            src,
            dst,
            data,
        });
    }

    /// Which host (and its inside address) a datagram to `dst` from `src` reaches, if any.
    fn route(&mut self, src: SocketAddr, dst: SocketAddr) -> Option<usize> {
        let now = self.now;
        for (i, h) in self.hosts.iter_mut().enumerate() {
            match &mut h.nat {
                Some(n) if n.ip == dst.ip() => {
                    return n.inbound(src, dst.port(), now).map(|_| i);
                }
                None if h.inside == dst => return Some(i),
                _ => {}
            }
        }
        None
    }

    fn deliver(&mut self, p: Packet) {
        if stun_servers().contains(&p.dst) {
            let txid = request_txid(&p.data).expect("only Binding requests go to STUN servers");
            self.net.push(Packet {
                at: self.now + LATENCY,
                src: p.dst,
                dst: p.src,
                data: encode_success(txid, p.src),
            });
            return;
        }
        let Some(i) = self.route(p.src, p.dst) else {
            return; // dropped by a NAT or to nowhere
        };
        let now = self.now;
        let mut data = p.data;
        match classify(&data) {
            Kind::Stun => {
                self.hosts[i].stun.handle_input(p.src, &data, now).unwrap();
            }
            Kind::Probe => {
                let _ = self.hosts[i].path.handle_probe(p.src, &mut data, now);
            }
            _ if data[0] == WG_MAGIC => {
                let h = &mut self.hosts[i];
                h.wg_received += 1;
                h.path.note_activity(now);
                h.path.note_wireguard_progress(now);
            }
            _ => {}
        }
    }

    /// Drains both hosts' outputs and handles their events.
    fn drain(&mut self) {
        let now = self.now;
        for i in 0..2 {
            while let Some(t) = self.hosts[i].stun.poll_transmit() {
                self.send(i, t.dst, t.payload);
            }
            let mut buf = [0u8; PROBE_LEN];
            while let Some((dst, n)) = self.hosts[i].path.poll_transmit(&mut buf) {
                self.send(i, dst, buf[..n].to_vec());
            }
            while let Some(ev) = self.hosts[i].stun.poll_event() {
                match ev {
                    StunEvent::Mapped { .. } => {}
                    StunEvent::MappingChanged { .. } => self.hosts[i].path.mapping_changed(now),
                    StunEvent::Unreachable { .. } => {}
                }
                // Call me maybe: announce our public endpoints to the peer through the hub.
                let eps = self.hosts[i].stun.public_endpoints(now);
                if eps != self.announced[i] {
                    self.announced[i] = eps.clone();
                    self.hosts[1 - i]
                        .path
                        .set_candidates(Source::Stun, &eps, now);
                }
            }
            while let Some(ev) = self.hosts[i].path.poll_event() {
                match ev {
                    PathEvent::Selected { .. } => {
                        self.hosts[i].punched_at.get_or_insert(now);
                    }
                    PathEvent::Lost { .. } => {
                        self.hosts[i].lost += 1;
                        if self.hosts[i].recheck_on_loss {
                            self.hosts[i].stun.recheck(now);
                        }
                    }
                    PathEvent::ObservedSelf { .. } => {}
                }
            }
        }
    }

    /// Runs the world until `t0 + until`, with both peers active.
    fn run_until(&mut self, until: Duration) {
        let end = self.t0 + until;
        for _ in 0..1_000_000 {
            self.drain();
            let mut next = end;
            for p in &self.net {
                next = next.min(p.at);
            }
            for h in &self.hosts {
                next = next
                    .min(h.path.poll_timeout())
                    .min(h.next_wg)
                    .min(h.stun.poll_timeout().unwrap_or(end));
            }
            if next >= end {
                self.now = end;
                return;
            }
            self.now = next.max(self.now);
            let now = self.now;
            let (due, rest): (Vec<_>, Vec<_>) = self.net.drain(..).partition(|p| p.at <= now);
            self.net = rest;
            for p in due {
                self.deliver(p);
            }
            for i in 0..2 {
                if now >= self.hosts[i].next_wg {
                    // The user keeps traffic flowing: WireGuard sends a datagram a second to the
                    // selected endpoint (or the configured one).
                    self.hosts[i].next_wg = now + WG_TICK;
                    self.hosts[i].path.note_activity(now);
                    if let Some(ep) = self.hosts[i].path.endpoint().or(self.configured[i]) {
                        let mut wg = vec![0u8; 32];
                        wg[0] = WG_MAGIC;
                        self.send(i, ep, wg);
                    }
                }
                if now >= self.hosts[i].path.poll_timeout() {
                    self.hosts[i].path.handle_timeout(now);
                }
                if self.hosts[i].stun.poll_timeout().is_some_and(|t| now >= t) {
                    self.hosts[i].stun.handle_timeout(now);
                }
            }
        }
        panic!("simulation did not converge");
    }

    fn punched_after(&self) -> Option<Duration> {
        let a = self.hosts[0].punched_at?;
        let b = self.hosts[1].punched_at?;
        Some(a.max(b) - self.t0)
    }

    fn both_on_path(&self) -> bool {
        self.hosts.iter().all(|h| h.path.endpoint().is_some())
    }
}

fn punchable(a: NatType, b: NatType) -> bool {
    use NatType::*;
    !matches!(
        (a, b),
        (Symmetric, Symmetric) | (PortRestricted, Symmetric) | (Symmetric, PortRestricted)
    )
}

#[test]
fn each_nat_type_classifies_as_intended() {
    for t in NatType::ALL {
        let mut w = World::new(Some(t), None);
        w.run_until(Duration::from_secs(1));
        let expected = match t.behaviour().0 {
            Mapping::Eim => MappingType::EndpointIndependent,
            Mapping::Edm => MappingType::EndpointDependent,
        };
        assert_eq!(w.hosts[0].stun.mapping(w.now), expected, "{t:?}");
    }
}

#[test]
fn the_ten_nat_pairs_punch_as_theory_predicts() {
    let mut matrix = BTreeMap::new();
    for (i, &a) in NatType::ALL.iter().enumerate() {
        for &b in &NatType::ALL[i..] {
            let mut w = World::new(Some(a), Some(b));
            w.run_until(Duration::from_secs(20));
            let ok = w.both_on_path();
            let t = w.punched_after();
            matrix.insert(format!("{a:?}-{b:?}"), (ok, t));
            assert_eq!(ok, punchable(a, b), "{a:?} <-> {b:?}");
            if ok {
                assert_eq!(w.hosts[0].path.kind(), PathKind::Punched);
                let t = t.unwrap();
                assert!(t < Duration::from_secs(2), "{a:?} <-> {b:?} took {t:?}");
                assert!(
                    w.hosts.iter().all(|h| h.wg_received > 10),
                    "WireGuard flows"
                );
                assert!(w.hosts.iter().all(|h| h.lost == 0), "no flapping");
            } else {
                for h in &w.hosts {
                    assert_eq!(h.path.kind(), PathKind::None);
                    assert_eq!(
                        h.path.why_not_direct(),
                        Some(WhyNotDirect::ProbesUnanswered)
                    );
                }
            }
        }
    }
    assert_eq!(matrix.values().filter(|(ok, _)| *ok).count(), 8);
    for (pair, (ok, t)) in &matrix {
        eprintln!("{pair}: punched={ok} after={t:?}");
    }
}

#[test]
fn public_peer_and_natted_peer_connect() {
    for t in NatType::ALL {
        let mut w = World::new(None, Some(t));
        // B knows A's configured public endpoint; A learns B only from its probes and the hub.
        let a_ep = w.hosts[0].inside;
        w.configured[1] = Some(a_ep);
        w.hosts[1]
            .path
            .set_candidates(Source::Configured, &[a_ep], w.t0);
        w.run_until(Duration::from_secs(10));
        assert!(w.both_on_path(), "{t:?}");
        assert_eq!(w.hosts[1].path.kind(), PathKind::Direct, "{t:?}");
        assert_eq!(w.hosts[1].path.endpoint(), Some(a_ep));
    }
}

#[test]
fn short_mapping_timeout_is_kept_open_by_heartbeats() {
    let mut w = World::new(Some(NatType::PortRestricted), Some(NatType::PortRestricted));
    for h in &mut w.hosts {
        h.nat.as_mut().unwrap().timeout = Duration::from_secs(10);
    }
    w.run_until(Duration::from_secs(120));
    assert!(w.both_on_path());
    assert!(w.hosts.iter().all(|h| h.lost == 0), "never lost the path");
}

#[test]
fn conntrack_flush_recovers_within_10s() {
    for preserve in [true, false] {
        let mut w = World::new(Some(NatType::PortRestricted), Some(NatType::Restricted));
        for h in &mut w.hosts {
            h.recheck_on_loss = true;
        }
        w.run_until(Duration::from_secs(30));
        assert!(w.both_on_path());
        // Both NATs forget every mapping; without port preservation the new mapping gets a new
        // public port, so only a fresh STUN answer (asked for on loss) can find it.
        for h in &mut w.hosts {
            let n = h.nat.as_mut().unwrap();
            n.entries.clear();
            n.preserve_port = preserve;
            n.next_port = 50000;
        }
        let flushed = w.now;
        let before = w.hosts.iter().map(|h| h.wg_received).collect::<Vec<_>>();
        // Find when WireGuard flows both ways again.
        let mut back = None;
        for step in 1..=200u64 {
            w.run_until(flushed - w.t0 + Duration::from_millis(100 * step));
            let flowing = w
                .hosts
                .iter()
                .zip(&before)
                .all(|(h, b)| h.wg_received > *b && h.path.endpoint().is_some());
            if flowing && back.is_none() {
                back = Some(w.now - flushed);
            }
        }
        let back = back.expect("recovered");
        assert!(
            back <= Duration::from_secs(10),
            "preserve={preserve}: {back:?}"
        );
        eprintln!("flush (port preserved: {preserve}) -> WireGuard flowing again after {back:?}");
    }
}
