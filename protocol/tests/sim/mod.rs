//! A two-device simulation with a fake clock and a seeded network that can delay, drop,
//! reorder and partition. Nothing sleeps: time jumps to the next event.

#![allow(dead_code)]

use protocol::keys::PrivateKey;
use protocol::noise::device::{Device, Incoming, PeerId};
use protocol::noise::peer::{Encapsulated, PeerConfig, PeerEvent, PeerSettings, Transmit};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Side of the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

#[derive(Debug, Clone)]
pub struct InFlight {
    pub from: Side,
    pub src: SocketAddr,
    pub payload: Vec<u8>,
}

/// Network behaviour knobs.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub latency: Duration,
    /// Extra random delay in [0, jitter) — makes reordering.
    pub jitter: Duration,
    /// Probability (per mille) of dropping a datagram.
    pub drop_per_mille: u32,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            drop_per_mille: 0,
        }
    }
}

pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub a: Device,
    pub b: Device,
    pub a_peer: PeerId,
    pub b_peer: PeerId,
    pub addr_a: SocketAddr,
    pub addr_b: SocketAddr,
    pub net: NetConfig,
    /// Blocks delivery towards a side (a dead or paused host).
    pub down: [bool; 2],
    rng: ChaCha20Rng,
    queue: BTreeMap<(Instant, u64), (Side, InFlight)>,
    seq: u64,
    /// Inner packets delivered, per receiving side.
    pub delivered: [Vec<Vec<u8>>; 2],
    /// Every transport message put on the wire, per sending side (including keepalives).
    pub sent_transport: [usize; 2],
    pub sent_keepalives: [usize; 2],
    pub sent_initiations: [usize; 2],
    pub events: Vec<(Side, PeerEvent)>,
    pub drops: Vec<(Side, String)>,
    pub under_load: [bool; 2],
}

pub fn ip_packet(src: [u8; 4], dst: [u8; 4], seq: u32, len: usize) -> Vec<u8> {
    let len = len.max(24);
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p[20..24].copy_from_slice(&seq.to_be_bytes());
    p
}

pub fn seq_of(p: &[u8]) -> u32 {
    u32::from_be_bytes(p[20..24].try_into().unwrap())
}

impl Sim {
    pub fn new(settings: PeerSettings, seed: u8) -> Self {
        Self::with(settings, seed, None, None, true, true)
    }

    /// `ka_*`: persistent keepalive per side; `ep_*`: whether that side knows the other's
    /// endpoint.
    pub fn with(
        settings: PeerSettings,
        seed: u8,
        ka_a: Option<Duration>,
        ka_b: Option<Duration>,
        ep_a: bool,
        ep_b: bool,
    ) -> Self {
        let t0 = Instant::now();
        let anchor = (t0, Duration::from_secs(1_750_000_000));
        let ka = PrivateKey::from_bytes([seed.wrapping_add(1); 32]);
        let kb = PrivateKey::from_bytes([seed.wrapping_add(2); 32]);
        let pa = ka.public_key();
        let pb = kb.public_key();
        let addr_a: SocketAddr = "10.0.0.1:51820".parse().unwrap();
        let addr_b: SocketAddr = "10.0.0.2:51820".parse().unwrap();
        let mut a = Device::new(ka, settings, [seed; 32], anchor);
        let mut b = Device::new(kb, settings, [seed ^ 0x55; 32], anchor);
        let a_peer = a.add_peer(PeerConfig {
            public_key: pb,
            preshared_key: None,
            endpoint: ep_a.then_some(addr_b),
            persistent_keepalive: ka_a,
        });
        let b_peer = b.add_peer(PeerConfig {
            public_key: pa,
            preshared_key: None,
            endpoint: ep_b.then_some(addr_a),
            persistent_keepalive: ka_b,
        });
        let mut s = Sim {
            t0,
            now: t0,
            a,
            b,
            a_peer,
            b_peer,
            addr_a,
            addr_b,
            net: NetConfig::default(),
            down: [false, false],
            rng: ChaCha20Rng::from_seed([seed.wrapping_mul(7); 32]),
            queue: BTreeMap::new(),
            seq: 0,
            delivered: [Vec::new(), Vec::new()],
            sent_transport: [0, 0],
            sent_keepalives: [0, 0],
            sent_initiations: [0, 0],
            events: Vec::new(),
            drops: Vec::new(),
            under_load: [false, false],
        };
        s.drain();
        s
    }

    pub fn dev(&mut self, side: Side) -> &mut Device {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    pub fn peer_id(&self, side: Side) -> PeerId {
        match side {
            Side::A => self.a_peer,
            Side::B => self.b_peer,
        }
    }

    pub fn peer(&self, side: Side) -> &protocol::noise::peer::Peer {
        match side {
            Side::A => self.a.peer(self.a_peer),
            Side::B => self.b.peer(self.b_peer),
        }
    }

    fn addr(&self, side: Side) -> SocketAddr {
        match side {
            Side::A => self.addr_a,
            Side::B => self.addr_b,
        }
    }

    fn idx(side: Side) -> usize {
        match side {
            Side::A => 0,
            Side::B => 1,
        }
    }

    /// Sends an inner packet from `side` to the other side's peer.
    pub fn send(&mut self, side: Side, packet: &[u8]) -> bool {
        let id = self.peer_id(side);
        let now = self.now;
        let mut out = vec![0u8; packet.len() + 64];
        let r = self.dev(side).encapsulate(id, packet, &mut out, now);
        let sealed = match r {
            Ok(Encapsulated::Sealed { len, .. }) => {
                out.truncate(len);
                self.put_on_wire(side, out);
                true
            }
            Ok(Encapsulated::Queued) => false,
            Err(e) => panic!("encapsulate failed: {e}"),
        };
        self.drain();
        sealed
    }

    fn put_on_wire(&mut self, from: Side, payload: Vec<u8>) {
        let i = Self::idx(from);
        match payload.first() {
            Some(1) => self.sent_initiations[i] += 1,
            Some(4) => {
                self.sent_transport[i] += 1;
                if payload.len() == 32 {
                    self.sent_keepalives[i] += 1;
                }
            }
            _ => {}
        }
        if self.net.drop_per_mille > 0 && self.rng.next_u32() % 1000 < self.net.drop_per_mille {
            return;
        }
        let mut delay = self.net.latency;
        if !self.net.jitter.is_zero() {
            delay += Duration::from_nanos(self.rng.next_u64() % self.net.jitter.as_nanos() as u64);
        }
        self.seq += 1;
        let src = self.addr(from);
        self.queue.insert(
            (self.now + delay, self.seq),
            (from.other(), InFlight { from, src, payload }),
        );
    }

    /// Loses every handshake initiation `from` has in flight (e.g. sent to an old endpoint).
    pub fn lose_initiations_from(&mut self, from: Side) -> usize {
        let before = self.queue.len();
        self.queue
            .retain(|_, (_, m)| !(m.from == from && m.payload.first() == Some(&1)));
        before - self.queue.len()
    }

    /// Drains both devices' transmits and events.
    pub fn drain(&mut self) {
        loop {
            let mut any = false;
            for side in [Side::A, Side::B] {
                while let Some(Transmit { payload, .. }) = self.dev(side).poll_transmit() {
                    any = true;
                    self.put_on_wire(side, payload);
                }
                while let Some((_, e)) = self.dev(side).poll_event() {
                    any = true;
                    self.events.push((side, e));
                }
            }
            if !any {
                break;
            }
        }
    }

    fn deliver(&mut self, to: Side, m: InFlight) {
        if self.down[Self::idx(to)] {
            return;
        }
        let now = self.now;
        let load = self.under_load[Self::idx(to)];
        let mut out = vec![0u8; m.payload.len() + 64];
        let r = self
            .dev(to)
            .handle_datagram(m.src, &m.payload, &mut out, load, now);
        match r {
            Incoming::Data { len, .. } => self.delivered[Self::idx(to)].push(out[..len].to_vec()),
            Incoming::Dropped(d) => self.drops.push((to, d.to_string())),
            _ => {}
        }
        self.drain();
    }

    /// Runs until `until`, processing deliveries and timers in time order.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next_net = self.queue.keys().next().map(|k| k.0);
            let next_a = if self.down[0] {
                None
            } else {
                self.a.poll_timeout()
            };
            let next_b = if self.down[1] {
                None
            } else {
                self.b.poll_timeout()
            };
            let next = [next_net, next_a, next_b].into_iter().flatten().min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    if next_net == Some(t) {
                        let key = *self.queue.keys().next().unwrap();
                        let (to, m) = self.queue.remove(&key).unwrap();
                        self.deliver(to, m);
                    } else {
                        let now = self.now;
                        if next_a == Some(t) {
                            self.a.handle_timeout(now);
                        }
                        if next_b == Some(t) {
                            self.b.handle_timeout(now);
                        }
                        self.drain();
                    }
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Roams `side` to a new outer address.
    pub fn roam(&mut self, side: Side, addr: SocketAddr) {
        match side {
            Side::A => self.addr_a = addr,
            Side::B => self.addr_b = addr,
        }
    }

    pub fn handshakes(&self, side: Side) -> u64 {
        self.peer(side).stats().handshakes
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }
}
