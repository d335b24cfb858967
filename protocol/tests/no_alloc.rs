//! The data path allocates nothing in steady state: sealing and opening with a [`Keypair`], and
//! [`Peer::encapsulate_in_place`] / [`Peer::decapsulate_in_place`] on an established session.
//!
//! A counting global allocator counts allocations made by the test's own thread while counting
//! is switched on (other threads, such as the test harness's, are ignored). This file is its own
//! test binary so the allocator affects nothing else.
//!
//! [`Keypair`]: protocol::noise::keypair::Keypair
//! [`Peer::encapsulate_in_place`]: protocol::noise::peer::Peer::encapsulate_in_place
//! [`Peer::decapsulate_in_place`]: protocol::noise::peer::Peer::decapsulate_in_place

mod sim;

use protocol::noise::handshake::SessionKeys;
use protocol::noise::keypair::Keypair;
use protocol::noise::messages::{TRANSPORT_HEADER_LEN, TRANSPORT_OVERHEAD};
use protocol::noise::peer::{Decapsulated, Encapsulated, Peer, PeerSettings};
use sim::{ip_packet, Side, Sim};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Round trips counted per scenario.
const ROUNDS: usize = 10_000;

struct Counting;

// Both per thread: tests run concurrently, and one test's allocations must not show up in
// another's count.
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator may run while this thread's locals are being torn down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards to the system allocator unchanged; counting touches only
// const-initialised thread-locals, which do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which System shares.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` was allocated by this allocator, i.e. by System, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by System with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn counter_sees_allocations() {
    // The instrument works: a Vec allocates once.
    let n = allocations_in(|| {
        let v = std::hint::black_box(vec![1u8; 100]);
        drop(v);
    });
    assert_eq!(n, 1);
}

fn keypairs() -> (Keypair, Keypair) {
    let now = Instant::now();
    let a = SessionKeys {
        send: [1; 32],
        recv: [2; 32],
        local_index: 10,
        remote_index: 20,
        initiator: true,
    };
    let b = SessionKeys {
        send: [2; 32],
        recv: [1; 32],
        local_index: 20,
        remote_index: 10,
        initiator: false,
    };
    (Keypair::new(&a, now), Keypair::new(&b, now))
}

/// Seals `packet` with `a` and opens it with `b`, in `buf`.
fn keypair_round_trip(a: &Keypair, b: &Keypair, buf: &mut [u8], packet: &[u8]) {
    buf[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + packet.len()].copy_from_slice(packet);
    let n = a.seal_in_place(buf, packet.len(), 1420).expect("seal");
    let m = b.open_in_place(&mut buf[..n]).expect("open");
    assert!(m >= packet.len());
}

#[test]
fn keypair_seal_open_does_not_allocate() {
    let (a, b) = keypairs();
    let mut buf = vec![0u8; 1420 + TRANSPORT_OVERHEAD];
    let packets = [vec![0u8; 0], vec![0x45; 64], vec![0x45; 1420]];
    for p in &packets {
        keypair_round_trip(&a, &b, &mut buf, p);
    }
    let n = allocations_in(|| {
        for i in 0..ROUNDS {
            keypair_round_trip(&a, &b, &mut buf, &packets[i % packets.len()]);
        }
    });
    assert_eq!(n, 0, "allocations in {ROUNDS} keypair round trips");
}

/// Encapsulates `packet` on `from` and decapsulates on `to`, in place in `buf`.
fn peer_round_trip(
    from: &mut Peer,
    to: &mut Peer,
    src: std::net::SocketAddr,
    buf: &mut [u8],
    packet: &[u8],
    now: Instant,
) {
    buf[TRANSPORT_HEADER_LEN..TRANSPORT_HEADER_LEN + packet.len()].copy_from_slice(packet);
    let Ok(Encapsulated::Sealed { len, .. }) = from.encapsulate_in_place(buf, packet.len(), now)
    else {
        panic!("no session to seal on");
    };
    match to.decapsulate_in_place(&mut buf[..len], src, now) {
        Ok(Decapsulated::Data { len }) => assert_eq!(len, packet.len()),
        Ok(Decapsulated::Keepalive) => assert!(packet.is_empty()),
        Err(e) => panic!("decapsulate: {e}"),
    }
}

#[test]
fn peer_encapsulate_decapsulate_in_place_does_not_allocate() {
    let mut sim = Sim::new(PeerSettings::default(), 9);
    // Handshake, confirmation and a packet each way, as the simulation tests do.
    let a_ip = [10, 10, 0, 1];
    let b_ip = [10, 10, 0, 2];
    sim.send(Side::A, &ip_packet(a_ip, b_ip, 0, 100));
    sim.run_for(Duration::from_millis(100));
    sim.send(Side::B, &ip_packet(b_ip, a_ip, 0, 100));
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.handshakes(Side::A), 1);
    assert_eq!(sim.handshakes(Side::B), 1);

    let (addr_a, addr_b) = (sim.addr_a, sim.addr_b);
    let mut now = sim.now;
    let a = sim.a.peer_mut(sim.a_peer);
    let b = sim.b.peer_mut(sim.b_peer);
    let a_to_b = [
        ip_packet(a_ip, b_ip, 1, 64),
        ip_packet(a_ip, b_ip, 2, 1420),
        Vec::new(),
    ];
    let b_to_a = [ip_packet(b_ip, a_ip, 1, 64), ip_packet(b_ip, a_ip, 2, 1420)];
    let mut buf = vec![0u8; 1420 + TRANSPORT_OVERHEAD];
    let mut round = |a: &mut Peer, b: &mut Peer, i: usize, now: Instant| {
        peer_round_trip(a, b, addr_a, &mut buf, &a_to_b[i % a_to_b.len()], now);
        peer_round_trip(b, a, addr_b, &mut buf, &b_to_a[i % b_to_a.len()], now);
    };
    // Warm up, then drain what the warm-up produced (events from the first packets).
    for i in 0..16 {
        round(a, b, i, now);
    }
    while a.poll_event().is_some() || b.poll_event().is_some() {}
    while a.poll_transmit().is_some() || b.poll_transmit().is_some() {}

    let n = allocations_in(|| {
        for i in 0..ROUNDS {
            now += Duration::from_micros(10);
            round(a, b, i, now);
        }
    });
    assert_eq!(n, 0, "allocations in {ROUNDS} peer round trips each way");
    // Nothing was queued for the caller either: the steady state produced no work.
    assert!(a.poll_event().is_none() && b.poll_event().is_none());
    assert!(a.poll_transmit().is_none() && b.poll_transmit().is_none());
}

/// Steady state on a punched path: heartbeat pings, pongs, classification, sealing and opening
/// into caller buffers, and draining events allocate nothing.
#[test]
fn path_probe_heartbeats_do_not_allocate() {
    use protocol::nat::demux::{classify, Kind};
    use protocol::nat::path::{PathManager, Source};
    use protocol::nat::probe::{ProbeKey, PROBE_LEN};
    use protocol::noise::crypto;
    use std::net::SocketAddr;
    use x25519_dalek::StaticSecret;

    let sa = StaticSecret::from([1; 32]);
    let sb = StaticSecret::from([2; 32]);
    let a_addr: SocketAddr = "192.0.2.1:51820".parse().unwrap();
    let b_addr: SocketAddr = "198.51.100.1:51820".parse().unwrap();
    let t0 = Instant::now();
    let mut a = PathManager::new(
        ProbeKey::derive(&sa, &crypto::public_key(&sb)).unwrap(),
        [1; 32],
        t0,
    );
    let mut b = PathManager::new(
        ProbeKey::derive(&sb, &crypto::public_key(&sa)).unwrap(),
        [2; 32],
        t0,
    );
    a.set_candidates(Source::Stun, &[b_addr], t0);
    b.set_candidates(Source::Stun, &[a_addr], t0);
    let mut buf = [0u8; PROBE_LEN];
    let mut step = |now: Instant, a: &mut PathManager, b: &mut PathManager| {
        a.note_activity(now);
        b.note_activity(now);
        a.note_wireguard_progress(now);
        b.note_wireguard_progress(now);
        a.handle_timeout(now);
        b.handle_timeout(now);
        for _ in 0..8 {
            while let Some((_, n)) = a.poll_transmit(&mut buf) {
                assert_eq!(classify(&buf[..n]), Kind::Probe);
                let _ = b.handle_probe(a_addr, &mut buf[..n], now);
            }
            while let Some((_, n)) = b.poll_transmit(&mut buf) {
                assert_eq!(classify(&buf[..n]), Kind::Probe);
                let _ = a.handle_probe(b_addr, &mut buf[..n], now);
            }
        }
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
    };
    let mut now = t0;
    for _ in 0..10 {
        step(now, &mut a, &mut b);
        now += Duration::from_secs(1);
    }
    assert_eq!(a.endpoint(), Some(b_addr));
    let n = allocations_in(|| {
        for _ in 0..ROUNDS / 10 {
            now += Duration::from_secs(3);
            step(now, &mut a, &mut b);
        }
    });
    assert_eq!(a.endpoint(), Some(b_addr), "still on the path");
    assert_eq!(n, 0, "allocations in {} heartbeat rounds", ROUNDS / 10);
}
