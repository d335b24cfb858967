//! Complete handshakes per second, two ways:
//!
//! - `functions`: the Noise IKpsk2 steps of `noise::handshake` alone — create the initiation,
//!   begin and finish it on the responder, create the response, consume it — with static-static
//!   DH precomputed as a peer holds it.
//! - `devices`: two [`Device`]s exchanging the datagrams — the initiator's queued packet
//!   triggers the initiation, the responder answers, the initiator's first transport message
//!   confirms the session — so mac1 checks, index allocation, keypair setup, timers and
//!   queueing are included. Building the devices is outside the measurement.
//!
//! Each measured iteration is one whole handshake, so the reported time is per handshake and
//! the "elements" throughput is handshakes per second.

#![allow(missing_docs)]

mod common;

use criterion::measurement::Measurement;
use criterion::{BatchSize, Criterion, Throughput};
use protocol::keys::{PresharedKey, PrivateKey};
use protocol::noise::device::{Device, Incoming, PeerId};
use protocol::noise::handshake::{
    begin_initiation, consume_response, create_initiation, create_response, finish_initiation,
    StaticIdentity, Tai64N,
};
use protocol::noise::messages::{Message, INITIATION_LEN, RESPONSE_LEN};
use protocol::noise::peer::{PeerConfig, PeerSettings};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn functions<M: Measurement>(c: &mut Criterion<M>) {
    let a = StaticIdentity::new(PrivateKey::from_bytes([1; 32]));
    let b = StaticIdentity::new(PrivateKey::from_bytes([2; 32]));
    let psk = PresharedKey([0; 32]);
    let ss_a = a.static_static(b.public_key()).expect("valid keys");
    let ss_b = b.static_static(a.public_key()).expect("valid keys");
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("functions", |bench| {
        bench.iter(|| {
            i += 1;
            let mut eph_a = [3u8; 32];
            eph_a[..8].copy_from_slice(&i.to_le_bytes());
            let mut eph_b = [4u8; 32];
            eph_b[..8].copy_from_slice(&i.to_le_bytes());
            let ts = Tai64N::from_unix(Duration::from_secs(1_750_000_000 + i));
            let mut init = [0u8; INITIATION_LEN];
            let state = create_initiation(&a, b.public_key(), &ss_a, eph_a, 1, ts, &mut init)
                .expect("initiation");
            let Ok(Message::Initiation(m)) = Message::parse(&init) else {
                unreachable!("an initiation parses")
            };
            let begun = begin_initiation(&b, &m).expect("begin");
            let consumed = finish_initiation(&begun, &ss_b).expect("finish");
            let mut resp = [0u8; RESPONSE_LEN];
            let kb = create_response(&consumed, &psk, eph_b, 2, &mut resp).expect("response");
            let Ok(Message::Response(r)) = Message::parse(&resp) else {
                unreachable!("a response parses")
            };
            let ka = consume_response(&state, &a, &psk, &r).expect("consume");
            black_box((ka, kb))
        })
    });
    g.finish();
}

struct Pair {
    a: Device,
    b: Device,
    a_peer: PeerId,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

fn pair(t0: Instant, seed: u8) -> Pair {
    let anchor = (t0, Duration::from_secs(1_750_000_000));
    let ka = PrivateKey::from_bytes([1; 32]);
    let kb = PrivateKey::from_bytes([2; 32]);
    let (pa, pb) = (ka.public_key(), kb.public_key());
    let mut a = Device::new(ka, PeerSettings::default(), [seed; 32], anchor);
    let mut b = Device::new(kb, PeerSettings::default(), [seed ^ 0x55; 32], anchor);
    let a_peer = a.add_peer(PeerConfig {
        public_key: pb,
        preshared_key: None,
        endpoint: Some(addr("10.0.0.2:51820")),
        persistent_keepalive: None,
    });
    b.add_peer(PeerConfig {
        public_key: pa,
        preshared_key: None,
        endpoint: None,
        persistent_keepalive: None,
    });
    Pair { a, b, a_peer }
}

/// One handshake between fresh devices, confirmed by the first data packet.
fn handshake(p: &mut Pair, packet: &[u8], out: &mut [u8], now: Instant) {
    let (addr_a, addr_b) = (addr("10.0.0.1:51820"), addr("10.0.0.2:51820"));
    p.a.encapsulate(p.a_peer, packet, out, now).expect("queue");
    let init = p.a.poll_transmit().expect("initiation").payload;
    let r = p.b.handle_datagram(addr_a, &init, out, false, now);
    assert!(matches!(r, Incoming::Handshake { .. }), "{r:?}");
    let resp = p.b.poll_transmit().expect("response").payload;
    let r = p.a.handle_datagram(addr_b, &resp, out, false, now);
    assert!(matches!(r, Incoming::Handshake { .. }), "{r:?}");
    let data = p.a.poll_transmit().expect("queued packet").payload;
    let r = p.b.handle_datagram(addr_a, &data, out, false, now);
    assert!(matches!(r, Incoming::Data { .. }), "{r:?}");
    while p.a.poll_event().is_some() || p.b.poll_event().is_some() {}
}

fn devices<M: Measurement>(c: &mut Criterion<M>) {
    let t0 = Instant::now();
    let mut packet = vec![0u8; 100];
    packet[0] = 0x45;
    packet[2..4].copy_from_slice(&100u16.to_be_bytes());
    let mut out = vec![0u8; 2048];
    let mut seed = 0u8;
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("devices", |bench| {
        bench.iter_batched_ref(
            || {
                seed = seed.wrapping_add(1);
                pair(t0, seed)
            },
            |p| handshake(p, &packet, &mut out, t0),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Every benchmark of this file, for either clock.
fn all<M: Measurement>(c: &mut Criterion<M>) {
    functions(c);
    devices(c);
}

fn main() {
    common::run(all, all);
}
