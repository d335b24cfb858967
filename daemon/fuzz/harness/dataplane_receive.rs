//! The daemon's own receive path: `dataplane::inbound::handle_batch` (type and length checks,
//! keypair by receiver index, opening in place, the allowed-IPs source check, the TUN batch)
//! and the handshake dispatch behind it (mac1 here, then `dataplane::handshake`'s queue and
//! responder work, run on this thread with `HandshakeQueue::process_queued`).
//!
//! Each run builds a data plane with two real peers, writing to a stub TUN and sending through
//! socket-less `UdpSockets` (nothing reaches the network). Peer R completes a handshake with
//! it through that path first, so a live session exists; then the input is a list of
//! operations that fill receive slots and hand them to `handle_batch`: transport data sealed by
//! R (optionally mutated, optionally with an inner source R does not own), raw bytes, replays
//! of the handshake messages (mutated or not), several datagrams coalesced into one GRO slot,
//! sources of every family (IPv4, IPv6, v4-mapped, none), and clock jumps.
//!
//! Checked beyond "no panic": every packet that reaches the TUN is a whole inner packet whose
//! source address is one of R's allowed IPs (cryptokey routing), and the handshake leaves R's
//! first data packet delivered.

use arc_swap::ArcSwap;
use parking_lot::RwLock;
use protocol::allowed_ips::IpPrefix;
use protocol::keys::PrivateKey;
use protocol::noise::handshake::{begin_initiation, StaticIdentity};
use protocol::noise::keypair::inner_packet_len;
use protocol::noise::messages::Message;
use protocol::noise::peer::{Encapsulated, Peer, PeerConfig, PeerSettings};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use vpnd::dataplane::batch_udp::RECV_MSGS;
use vpnd::dataplane::counters::DropCounters;
use vpnd::dataplane::handshake::HandshakeQueue;
use vpnd::dataplane::inbound::{handle_batch, RxBatch, TunWrite};
use vpnd::dataplane::peer_handle::PeerHandle;
use vpnd::dataplane::router::{PeerIndexRegistry, Router};
use vpnd::dataplane::udp::UdpSockets;
use vpnd::dataplane::{Clock, DataPlane, DataPlaneOptions};

/// R's tunnel addresses (its allowed IPs on the data plane).
const R_V4: [u8; 4] = [10, 9, 0, 2];
const R_V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// Q's: a second peer of the data plane that never handshakes.
const Q_V4: [u8; 4] = [10, 9, 0, 3];
const DP_V4: [u8; 4] = [10, 9, 0, 1];

fn r_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(192, 0, 2, 2), 51820))
}

/// The stub TUN: checks and counts what the receive path writes.
#[derive(Default)]
struct StubTun {
    delivered: AtomicUsize,
}

impl TunWrite for StubTun {
    async fn write_batch(
        &self,
        _gro: &mut tun_rs::GROTable,
        bufs: &mut [Vec<u8>],
        offset: usize,
    ) -> io::Result<usize> {
        for b in bufs.iter() {
            let inner = &b[offset..];
            assert_eq!(
                inner_packet_len(inner),
                Some(inner.len()),
                "partial inner packet"
            );
            let owned = match inner[0] >> 4 {
                4 => inner[12..16] == R_V4,
                6 => inner[8..24] == R_V6,
                v => panic!("IP version {v} reached the TUN"),
            };
            assert!(
                owned,
                "an inner source R does not own reached the TUN: {inner:02x?}"
            );
        }
        self.delivered.fetch_add(bufs.len(), Ordering::Relaxed);
        Ok(bufs.len())
    }
}

/// Input bytes; zeros past the end.
struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let start = self.at.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.at = start + n;
        &self.data[start..end]
    }
    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
}

fn peer_handle(
    router: &Router,
    me: &Arc<StaticIdentity>,
    them: &StaticIdentity,
    endpoint: Option<SocketAddr>,
    allowed: &[IpPrefix],
    seed: u8,
    now: Instant,
) -> Arc<PeerHandle> {
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let indices = router.indices.clone();
    let config = PeerConfig {
        public_key: *them.public_key(),
        preshared_key: None,
        endpoint,
        persistent_keepalive: None,
    };
    let h = Arc::new_cyclic(|weak| {
        let registry = Arc::new(PeerIndexRegistry::new(indices, weak.clone()));
        PeerHandle::new(Peer::new(
            me.clone(),
            config,
            PeerSettings::default(),
            registry,
            [seed; 32],
            (now, wall),
        ))
    });
    router.install(h.clone(), allowed);
    h
}

/// An IPv4 (or, with `v6`, IPv6) UDP packet from `src` with `payload` bytes.
fn inner_packet(v6: bool, src_v4: [u8; 4], payload: usize) -> Vec<u8> {
    if v6 {
        let mut p = vec![0u8; 40 + payload];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&(payload as u16).to_be_bytes());
        p[6] = 17;
        p[7] = 64;
        p[8..24].copy_from_slice(&R_V6);
        p[39] = 1;
        p
    } else {
        let len = 20 + payload;
        let mut p = vec![0u8; len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&src_v4);
        p[16..20].copy_from_slice(&DP_V4);
        p
    }
}

/// Seals `packet` with R's current session.
fn seal(r: &PeerHandle, packet: &[u8], now: Instant) -> Option<Vec<u8>> {
    let mut out = vec![0u8; packet.len() + 64];
    let mut c = r.cell.lock();
    let res = c.peer.encapsulate(packet, &mut out, now);
    while c.peer.poll_transmit().is_some() || c.peer.poll_event().is_some() {}
    match res {
        Ok(Encapsulated::Sealed { len, .. }) => {
            out.truncate(len);
            Some(out)
        }
        _ => None,
    }
}

fn source(input: &mut Input<'_>) -> Option<SocketAddr> {
    let port = input.u16();
    match input.u8() % 6 {
        0 | 1 => Some(r_addr()),
        2 => Some(SocketAddr::from((Ipv4Addr::from(input.u16() as u32), port))),
        3 => Some(SocketAddr::from((
            Ipv6Addr::from(input.u16() as u128),
            port,
        ))),
        4 => Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv4Addr::new(192, 0, 2, input.u8()).to_ipv6_mapped(),
            port,
            0,
            0,
        ))),
        _ => None,
    }
}

fn mutate(msg: &mut Vec<u8>, input: &mut Input<'_>) {
    match input.u8() % 4 {
        0 => {}
        1 => {
            if !msg.is_empty() {
                let i = usize::from(input.u16()) % msg.len();
                msg[i] ^= input.u8() | 1;
            }
        }
        2 => {
            let n = usize::from(input.u16()) % (msg.len() + 1);
            msg.truncate(n);
        }
        _ => {
            let n = usize::from(input.u8() % 32);
            msg.extend_from_slice(input.bytes(n));
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input { data, at: 0 };
    let start = Instant::now();
    let ka = Arc::new(StaticIdentity::new(PrivateKey::from_bytes([1; 32])));
    let kr = Arc::new(StaticIdentity::new(PrivateKey::from_bytes([2; 32])));
    let kq = Arc::new(StaticIdentity::new(PrivateKey::from_bytes([4; 32])));
    let dp = DataPlane {
        identity: RwLock::new(ka.clone()),
        router: Router::default(),
        udp: ArcSwap::from_pointee(UdpSockets::unbound()),
        tun: Arc::new(StubTun::default()),
        settings: RwLock::new(PeerSettings::default()),
        timer_divisor: 1,
        drops: DropCounters::default(),
        clock: Clock::now(),
        handshakes: HandshakeQueue::new(&ka, [7; 32]),
        options: DataPlaneOptions {
            offload: false,
            crypto_workers: 0,
        },
        crypto: None,
        restarts: Default::default(),
        nat: Default::default(),
        #[cfg(feature = "fault-injection")]
        faults: Default::default(),
    };
    let p = peer_handle(
        &dp.router,
        &ka,
        &kr,
        Some(r_addr()),
        &[
            IpPrefix::host(IpAddr::from(R_V4)),
            IpPrefix::host(IpAddr::from(R_V6)),
        ],
        1,
        start,
    );
    let _q = peer_handle(
        &dp.router,
        &ka,
        &kq,
        None,
        &[IpPrefix::host(IpAddr::from(Q_V4))],
        3,
        start,
    );
    let remote = Router::default();
    let r = peer_handle(&remote, &kr, &ka, None, &[], 2, start);

    let mut rx = RxBatch::new().expect("receive buffers");
    let mut now = start;
    // The data plane's peer initiates (its datagrams taken straight from the protocol, as the
    // sockets are stubs); R answers through the real receive path.
    let init = {
        let mut c = p.cell.lock();
        let mut out = [0u8; 256];
        let _ = c
            .peer
            .encapsulate(&inner_packet(false, DP_V4, 8), &mut out, now);
        let t = c.peer.poll_transmit().expect("an initiation");
        while c.peer.poll_transmit().is_some() || c.peer.poll_event().is_some() {}
        t.payload
    };
    let Ok(Message::Initiation(msg)) = Message::parse(&init) else {
        panic!("not an initiation")
    };
    let begun = begin_initiation(&kr, &msg).expect("R accepts the initiation");
    let resp = {
        let mut c = r.cell.lock();
        c.peer
            .handle_initiation(&begun, SocketAddr::from(([192, 0, 2, 1], 51820)), now)
            .expect("R answers");
        let t = c.peer.poll_transmit().expect("a response");
        while c.peer.poll_transmit().is_some() || c.peer.poll_event().is_some() {}
        t.payload
    };
    rx.load(0, &resp, resp.len(), Some(r_addr()));
    futures::executor::block_on(handle_batch(&dp, &mut rx, 1, now));
    assert_eq!(HandshakeQueue::process_queued(&dp, now), 1);
    // R's session is confirmed by the initiator's first transport message (a keepalive).
    let keepalive = {
        let mut c = p.cell.lock();
        let mut out = [0u8; 64];
        let res = c.peer.encapsulate(&[], &mut out, now);
        while c.peer.poll_transmit().is_some() || c.peer.poll_event().is_some() {}
        match res {
            Ok(Encapsulated::Sealed { len, .. }) => out[..len].to_vec(),
            other => panic!("no session after the response: {other:?}"),
        }
    };
    {
        let mut c = r.cell.lock();
        let mut k = keepalive.clone();
        c.peer
            .decapsulate_in_place(&mut k, SocketAddr::from(([192, 0, 2, 1], 51820)), now)
            .expect("R opens the keepalive");
    }
    let first = seal(&r, &inner_packet(false, R_V4, 16), now).expect("R has a session");
    rx.load(0, &first, first.len(), Some(r_addr()));
    futures::executor::block_on(handle_batch(&dp, &mut rx, 1, now));
    assert_eq!(
        dp.tun.delivered.load(Ordering::Relaxed),
        1,
        "{:?}",
        dp.drops.snapshot()
    );

    // The fuzzed part: up to 64 batches of up to RECV_MSGS slots.
    let mut slots = 0usize;
    for _ in 0..256 {
        if input.done() {
            break;
        }
        let op = input.u8();
        let mut msg = match op % 8 {
            0 | 1 => {
                let own = input.u8() % 8 != 0;
                let v6 = input.u8() % 4 == 0;
                let src = if own { R_V4 } else { Q_V4 };
                let len = usize::from(input.u16() % 1400);
                match seal(&r, &inner_packet(v6, src, len), now) {
                    Some(m) => m,
                    None => continue,
                }
            }
            2 => {
                let n = usize::from(input.u16() % 300);
                input.bytes(n).to_vec()
            }
            3 => init.clone(),
            4 => resp.clone(),
            5 => first.clone(),
            6 => {
                now += Duration::from_millis(u64::from(input.u16()) * u64::from(input.u8()));
                continue;
            }
            _ => {
                // Two sealed messages of one size in one GRO slot.
                let len = usize::from(input.u8());
                let a = seal(&r, &inner_packet(false, R_V4, len), now);
                let b = seal(&r, &inner_packet(false, R_V4, len), now);
                match (a, b) {
                    (Some(mut a), Some(b)) => {
                        let seg = a.len();
                        a.extend_from_slice(&b);
                        mutate(&mut a, &mut input);
                        let src = source(&mut input);
                        rx.load(slots, &a, seg, src);
                        slots += 1;
                        if slots == RECV_MSGS || input.u8() % 4 == 0 {
                            flush(&dp, &mut rx, &mut slots, now);
                        }
                        continue;
                    }
                    _ => continue,
                }
            }
        };
        mutate(&mut msg, &mut input);
        let src = source(&mut input);
        rx.load(slots, &msg, msg.len(), src);
        slots += 1;
        if slots == RECV_MSGS || input.u8() % 4 == 0 {
            flush(&dp, &mut rx, &mut slots, now);
        }
    }
    flush(&dp, &mut rx, &mut slots, now);
}

fn flush(dp: &DataPlane<StubTun>, rx: &mut RxBatch, slots: &mut usize, now: Instant) {
    if *slots > 0 {
        futures::executor::block_on(handle_batch(dp, rx, *slots, now));
        *slots = 0;
    }
    HandshakeQueue::process_queued(dp, now);
}

/// Starting inputs: data of every kind, replays, GRO slots, junk, clock jumps.
pub fn seeds() -> Vec<Vec<u8>> {
    vec![
        vec![],
        // Own data, several sizes, one batch each.
        vec![
            0, 1, 0, 100, 0, 0, 0, 0, 0, 0, 1, 1, 0, 200, 5, 0, 0, 0, 0, 0, 0,
        ],
        // Data with a source R does not own, and IPv6 data.
        vec![
            0, 0, 1, 50, 0, 0, 0, 0, 0, 0, 0, 1, 0, 60, 0, 0, 0, 0, 0, 0, 0,
        ],
        // Replays of the handshake and of the first data message; mutated.
        vec![
            3, 0, 0, 0, 0, 0, 4, 1, 7, 0, 9, 0, 0, 0, 0, 5, 0, 0, 0, 1, 0,
        ],
        // Junk from IPv6 and v4-mapped sources.
        vec![
            2, 40, 0, 4, 0, 0, 0, 0, 3, 0, 0, 0, 1, 2, 8, 0, 4, 0, 2, 0, 0, 0, 0, 0,
        ],
        // A GRO slot of two messages, then a clock jump past the session's life.
        vec![
            7, 100, 0, 0, 0, 0, 0, 1, 6, 0xff, 0xff, 0xff, 0, 1, 0, 30, 0, 0, 0, 0, 0,
        ],
    ]
}
