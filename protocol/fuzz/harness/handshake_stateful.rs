//! The stateful handshake harness: the input is a sequence of operations — advance the clock,
//! send data, deliver, drop, duplicate, corrupt or replay messages, inject arbitrary datagrams
//! from arbitrary sources, toggle load, reconfigure — played against a responder [`Device`]
//! with one configured peer. That peer is a second, real device, so genuine initiations,
//! responses and transport data are interleaved with the fuzzer's bytes and the responder is
//! driven through handshakes, key confirmation, rotation, roaming, expiry and retries. A third
//! device the responder does not know sends initiations too.
//!
//! Checked after every operation: nothing panics, every sent datagram parses, and each device's
//! index table holds exactly the indices its peer says it uses (no leaked or stolen indices),
//! never more than four (current, previous and next keypair plus a pending handshake).

use super::common::{self, Input};
use super::handshake_responder::drain;
use protocol::noise::cookie::CookieGenerator;
use protocol::noise::device::{Device, DropReason, Incoming, PeerId};
use protocol::noise::messages::{Message, INITIATION_LEN, RESPONSE_LEN};
use protocol::noise::peer::Encapsulated;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Most operations played from one input.
const MAX_OPS: usize = 256;
/// Most datagrams in flight; older ones are lost.
const MAX_IN_FLIGHT: usize = 64;
/// Past datagrams to the responder kept for replays.
const HISTORY: usize = 16;

/// Operation codes (the op byte modulo their count).
#[derive(Clone, Copy, Debug)]
#[repr(u8)]
pub enum Op {
    /// Advance the clock (u16 amount, u8 unit) and run every device's timers.
    Advance,
    /// An arbitrary datagram to the responder: flags (bit 0: fix macs), source, u16-length blob.
    Raw,
    /// The initiator sends an inner packet of u16 % 1421 bytes.
    InitiatorData,
    /// The responder sends an inner packet of u16 % 1421 bytes.
    ResponderData,
    /// Deliver one in-flight datagram (u8 picks it; u8 flags: bit 0 corrupt a byte chosen by a
    /// u16 with a u8 mask, bit 1 from a source the input picks, bit 2 with a small buffer).
    Deliver,
    /// Deliver everything in flight, in order, until quiet (bounded).
    DeliverAll,
    /// Lose one in-flight datagram (u8 picks it).
    Drop,
    /// Replay a datagram the responder saw before (u8 picks it; u8 flags as for Deliver).
    Replay,
    /// Toggle whether the responder is under load.
    ToggleLoad,
    /// The unknown device initiates.
    Stranger,
    /// Duplicate one in-flight datagram (u8 picks it).
    Duplicate,
    /// The initiator moves to a new address (source address follows).
    Roam,
    /// Reconfigure the responder's peer (u8: which setting, then its value).
    Reconfigure,
}

impl Op {
    const COUNT: u8 = 13;

    fn from_byte(b: u8) -> Op {
        match b % Self::COUNT {
            0 => Op::Advance,
            1 => Op::Raw,
            2 => Op::InitiatorData,
            3 => Op::ResponderData,
            4 => Op::Deliver,
            5 => Op::DeliverAll,
            6 => Op::Drop,
            7 => Op::Replay,
            8 => Op::ToggleLoad,
            9 => Op::Stranger,
            10 => Op::Duplicate,
            11 => Op::Roam,
            _ => Op::Reconfigure,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Responder,
    Initiator,
    Stranger,
}

struct Datagram {
    to: Side,
    src: SocketAddr,
    payload: Vec<u8>,
}

/// What a run reached, so tests can show the seeds drive the devices into deep states.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    /// Handshakes the responder's peer completed.
    pub responder_handshakes: u64,
    /// Handshakes the initiator's peer completed.
    pub initiator_handshakes: u64,
    /// Inner packets the responder delivered.
    pub responder_data: u64,
    /// Inner packets the initiator delivered.
    pub initiator_data: u64,
    /// Datagrams the responder dropped, any reason.
    pub responder_drops: u64,
    /// Datagrams the responder answered with a cookie reply.
    pub cookies_sent: u64,
}

struct World {
    reached: Reached,
    now: Instant,
    responder: Device,
    r_peer: PeerId,
    initiator: Device,
    i_peer: PeerId,
    stranger: Device,
    s_peer: PeerId,
    initiator_addr: SocketAddr,
    under_load: bool,
    in_flight: Vec<Datagram>,
    history: Vec<(SocketAddr, Vec<u8>)>,
    macs: CookieGenerator,
}

fn stranger_addr() -> SocketAddr {
    "203.0.113.9:4000".parse().expect("literal address")
}

impl World {
    fn new(flags: u8) -> World {
        let endpoint = (flags & 1 != 0).then(common::initiator_addr);
        let psk = (flags & 2 != 0).then_some([0x5a; 32]);
        let (responder, r_peer) = common::device(
            common::RESPONDER_KEY,
            common::initiator_public(),
            endpoint,
            psk,
            0x77,
        );
        let (initiator, i_peer) = common::device(
            common::INITIATOR_KEY,
            common::responder_public(),
            Some(common::responder_addr()),
            psk,
            0x44,
        );
        let (stranger, s_peer) = common::device(
            common::STRANGER_KEY,
            common::responder_public(),
            Some(common::responder_addr()),
            None,
            0x99,
        );
        World {
            reached: Reached::default(),
            now: common::epoch(),
            responder,
            r_peer,
            initiator,
            i_peer,
            stranger,
            s_peer,
            initiator_addr: common::initiator_addr(),
            under_load: flags & 4 != 0,
            in_flight: Vec::new(),
            history: Vec::new(),
            macs: CookieGenerator::new(&common::responder_public()),
        }
    }

    fn device(&mut self, side: Side) -> &mut Device {
        match side {
            Side::Responder => &mut self.responder,
            Side::Initiator => &mut self.initiator,
            Side::Stranger => &mut self.stranger,
        }
    }

    fn send(&mut self, to: Side, src: SocketAddr, payload: Vec<u8>) {
        assert!(
            Message::parse(&payload).is_ok(),
            "a device sent a malformed message of {} bytes",
            payload.len()
        );
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.in_flight.remove(0);
        }
        self.in_flight.push(Datagram { to, src, payload });
    }

    /// Moves every device's transmits onto the network and discards events.
    fn collect(&mut self) {
        while let Some(t) = self.responder.poll_transmit() {
            let to = if t.dst == stranger_addr() {
                Side::Stranger
            } else {
                Side::Initiator
            };
            self.send(to, common::responder_addr(), t.payload);
        }
        while let Some(t) = self.initiator.poll_transmit() {
            let src = self.initiator_addr;
            self.send(Side::Responder, src, t.payload);
        }
        while let Some(t) = self.stranger.poll_transmit() {
            self.send(Side::Responder, stranger_addr(), t.payload);
        }
        for side in [Side::Responder, Side::Initiator, Side::Stranger] {
            while self.device(side).poll_event().is_some() {}
        }
    }

    fn check(&self) {
        for (name, dev, peer) in [
            ("responder", &self.responder, self.r_peer),
            ("initiator", &self.initiator, self.i_peer),
            ("stranger", &self.stranger, self.s_peer),
        ] {
            let held = dev.peer(peer).local_indices();
            assert!(held.len() <= 4, "{name} peer holds {} indices", held.len());
            assert_eq!(
                dev.indices_in_use(),
                held.len(),
                "{name}: device index table disagrees with its only peer ({held:?})"
            );
        }
    }

    fn deliver(&mut self, to: Side, src: SocketAddr, payload: &[u8], out_len: usize) {
        let now = self.now;
        let load = to == Side::Responder && self.under_load;
        if to == Side::Responder {
            if self.history.len() >= HISTORY {
                self.history.remove(0);
            }
            self.history.push((src, payload.to_vec()));
        }
        let mut out = vec![0u8; out_len];
        let r = self
            .device(to)
            .handle_datagram(src, payload, &mut out, load, now);
        match (to, r) {
            (_, Incoming::Data { len, .. }) if len > out_len => {
                panic!("inner packet of {len} bytes in a {out_len}-byte buffer")
            }
            (Side::Responder, Incoming::Data { .. }) => self.reached.responder_data += 1,
            (Side::Initiator, Incoming::Data { .. }) => self.reached.initiator_data += 1,
            (Side::Responder, Incoming::Dropped(d)) => {
                self.reached.responder_drops += 1;
                if d == DropReason::CookieSent {
                    self.reached.cookies_sent += 1;
                }
            }
            _ => {}
        }
        self.collect();
    }

    fn data(&mut self, side: Side, len: usize) {
        let now = self.now;
        let (src_ip, id) = match side {
            Side::Initiator => ([10, 0, 0, 2], self.i_peer),
            _ => ([10, 0, 0, 1], self.r_peer),
        };
        let packet = common::ipv4_packet(src_ip, len, 0xab);
        let mut out = vec![0u8; packet.len() + 64];
        let dev = self.device(side);
        if let Ok(Encapsulated::Sealed { len, dst }) = dev.encapsulate(id, &packet, &mut out, now) {
            out.truncate(len);
            match side {
                Side::Initiator => {
                    let src = self.initiator_addr;
                    self.send(Side::Responder, src, out);
                }
                _ => {
                    let to = if dst == stranger_addr() {
                        Side::Stranger
                    } else {
                        Side::Initiator
                    };
                    self.send(to, common::responder_addr(), out);
                }
            }
        }
        self.collect();
    }

    /// Applies delivery flags: corruption, a chosen source, a small output buffer.
    fn mangle(
        &self,
        input: &mut Input<'_>,
        src: SocketAddr,
        mut payload: Vec<u8>,
    ) -> (SocketAddr, Vec<u8>, usize) {
        let flags = input.u8();
        if flags & 1 != 0 && !payload.is_empty() {
            let at = usize::from(input.u16()) % payload.len();
            payload[at] ^= input.u8() | 1;
        }
        let src = if flags & 2 != 0 {
            input.socket_addr()
        } else {
            src
        };
        let out_len = if flags & 4 != 0 {
            usize::from(input.u8())
        } else {
            payload.len() + 64
        };
        (src, payload, out_len)
    }

    fn step(&mut self, input: &mut Input<'_>) {
        match Op::from_byte(input.u8()) {
            Op::Advance => {
                let amount = u32::from(input.u16());
                let unit = match input.u8() % 4 {
                    0 => Duration::from_millis(1),
                    1 => Duration::from_millis(100),
                    2 => Duration::from_secs(1),
                    _ => Duration::from_secs(60),
                };
                // At most 65535 minutes per op and 256 ops: far from overflowing an Instant.
                self.now += unit * amount;
                let now = self.now;
                for side in [Side::Responder, Side::Initiator, Side::Stranger] {
                    let dev = self.device(side);
                    if dev.poll_timeout().is_some_and(|t| t <= now) {
                        dev.handle_timeout(now);
                    }
                }
                self.collect();
            }
            Op::Raw => {
                let flags = input.u8();
                let src = input.socket_addr();
                let mut payload = input.blob().to_vec();
                if flags & 1 != 0 && matches!(payload.len(), INITIATION_LEN | RESPONSE_LEN) {
                    self.macs.add_macs(&mut payload, self.now);
                }
                let out_len = payload.len() + 64;
                self.deliver(Side::Responder, src, &payload, out_len);
            }
            Op::InitiatorData => self.data(Side::Initiator, usize::from(input.u16() % 1421)),
            Op::ResponderData => self.data(Side::Responder, usize::from(input.u16() % 1421)),
            Op::Deliver => {
                if self.in_flight.is_empty() {
                    return;
                }
                let i = usize::from(input.u8()) % self.in_flight.len();
                let d = self.in_flight.remove(i);
                let (src, payload, out_len) = self.mangle(input, d.src, d.payload);
                self.deliver(d.to, src, &payload, out_len);
            }
            Op::DeliverAll => {
                for _ in 0..32 {
                    if self.in_flight.is_empty() {
                        break;
                    }
                    let d = self.in_flight.remove(0);
                    let out_len = d.payload.len() + 64;
                    self.deliver(d.to, d.src, &d.payload, out_len);
                }
            }
            Op::Drop => {
                if !self.in_flight.is_empty() {
                    let i = usize::from(input.u8()) % self.in_flight.len();
                    self.in_flight.remove(i);
                }
            }
            Op::Replay => {
                if self.history.is_empty() {
                    return;
                }
                let i = usize::from(input.u8()) % self.history.len();
                let (src, payload) = self.history[i].clone();
                let (src, payload, out_len) = self.mangle(input, src, payload);
                self.deliver(Side::Responder, src, &payload, out_len);
            }
            Op::ToggleLoad => self.under_load = !self.under_load,
            Op::Stranger => self.data(Side::Stranger, 40),
            Op::Duplicate => {
                if !self.in_flight.is_empty() {
                    let i = usize::from(input.u8()) % self.in_flight.len();
                    let d = &self.in_flight[i];
                    let copy = Datagram {
                        to: d.to,
                        src: d.src,
                        payload: d.payload.clone(),
                    };
                    self.in_flight.push(copy);
                }
            }
            Op::Roam => self.initiator_addr = input.socket_addr(),
            Op::Reconfigure => {
                let now = self.now;
                let which = input.u8();
                let value = input.u8();
                let peer = self.responder.peer_mut(self.r_peer);
                match which % 4 {
                    0 => peer.set_persistent_keepalive(
                        (value != 0).then(|| Duration::from_secs(u64::from(value))),
                        now,
                    ),
                    1 => peer.set_endpoint((value & 1 != 0).then(common::initiator_addr)),
                    2 => peer.set_preshared_key(
                        (value & 1 != 0).then_some(protocol::keys::PresharedKey([value; 32])),
                    ),
                    _ => {
                        let p = self.initiator.peer_mut(self.i_peer);
                        p.set_persistent_keepalive(
                            (value != 0).then(|| Duration::from_secs(u64::from(value))),
                            now,
                        );
                    }
                }
                self.collect();
            }
        }
    }
}

/// Runs one input: a flags byte (bit 0: the responder knows the initiator's endpoint; bit 1:
/// both use a preshared key; bit 2: start under load), then operations.
pub fn run(data: &[u8]) {
    play(data);
}

/// [`run`], reporting what the run reached.
pub fn play(data: &[u8]) -> Reached {
    let mut input = Input::new(data);
    let mut world = World::new(input.u8());
    world.collect();
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        world.step(&mut input);
        world.check();
    }
    for side in [Side::Responder, Side::Initiator, Side::Stranger] {
        drain(world.device(side));
    }
    let mut reached = world.reached;
    reached.responder_handshakes = world.responder.peer(world.r_peer).stats().handshakes;
    reached.initiator_handshakes = world.initiator.peer(world.i_peer).stats().handshakes;
    reached
}

/// Encodes operations for seeds.
struct Script(Vec<u8>);

impl Script {
    fn new(flags: u8) -> Script {
        Script(vec![flags])
    }
    fn op(mut self, op: Op, args: &[u8]) -> Script {
        self.0.push(op as u8);
        self.0.extend_from_slice(args);
        self
    }
    /// Advance by `n` units of kind `unit` (0 ms, 1 100 ms, 2 s, 3 min).
    fn advance(self, n: u16, unit: u8) -> Script {
        let [a, b] = n.to_le_bytes();
        self.op(Op::Advance, &[a, b, unit])
    }
    fn data(self, op: Op, len: u16) -> Script {
        let [a, b] = len.to_le_bytes();
        self.op(op, &[a, b])
    }
}

/// Handshakes, data both ways, rekeying after two minutes, expiry, load with cookies,
/// simultaneous initiation, roaming, a stranger, corruption and replays.
pub fn seeds() -> Vec<Vec<u8>> {
    let handshake = || {
        Script::new(1)
            .data(Op::InitiatorData, 100)
            .op(Op::DeliverAll, &[])
            .advance(10, 0)
            .op(Op::DeliverAll, &[])
            .data(Op::ResponderData, 200)
            .op(Op::DeliverAll, &[])
    };
    vec![
        handshake().0,
        handshake()
            .advance(2, 3)
            .data(Op::InitiatorData, 60)
            .op(Op::DeliverAll, &[])
            .op(Op::DeliverAll, &[])
            .data(Op::ResponderData, 60)
            .op(Op::DeliverAll, &[])
            .advance(4, 3)
            .op(Op::DeliverAll, &[])
            .0,
        handshake()
            .op(Op::Replay, &[0, 0])
            .op(Op::Replay, &[1, 1, 3, 0, 0x10])
            .op(Op::Roam, &[0, 3, 0x10, 0x20])
            .data(Op::InitiatorData, 300)
            .op(Op::DeliverAll, &[])
            .0,
        Script::new(5)
            .data(Op::InitiatorData, 100)
            .op(Op::DeliverAll, &[])
            .advance(60, 1)
            .op(Op::DeliverAll, &[])
            .op(Op::DeliverAll, &[])
            .op(Op::ToggleLoad, &[])
            .data(Op::ResponderData, 80)
            .op(Op::DeliverAll, &[])
            .0,
        Script::new(1)
            .data(Op::InitiatorData, 100)
            .data(Op::ResponderData, 100)
            .op(Op::DeliverAll, &[])
            .op(Op::DeliverAll, &[])
            .advance(6, 2)
            .op(Op::DeliverAll, &[])
            .0,
        handshake()
            .op(Op::Stranger, &[])
            .op(Op::Deliver, &[0, 1, 5, 0, 0x40])
            .op(Op::Duplicate, &[0])
            .op(Op::Drop, &[0])
            .op(Op::Reconfigure, &[0, 5])
            .advance(20, 2)
            .op(Op::DeliverAll, &[])
            .0,
        Script::new(3)
            .data(Op::InitiatorData, 1420)
            .op(Op::Deliver, &[0, 4, 0])
            .advance(6, 2)
            .op(Op::DeliverAll, &[])
            .advance(100, 2)
            .0,
    ]
}
