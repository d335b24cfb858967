//! Deterministic two-peer simulations of the protocol (fake clock, seeded network).

mod sim;

use protocol::noise::peer::{OfflineReason, PeerEvent, PeerSettings, PeerState};
use protocol::noise::timers::TimerConfig;
use sim::{ip_packet, seq_of, Side, Sim};
use std::time::Duration;

const A_IP: [u8; 4] = [10, 10, 0, 1];
const B_IP: [u8; 4] = [10, 10, 0, 2];

/// Drops other than the expected one of simultaneous initiations: both sides answer, and the
/// answer to the initiation the smaller key abandoned arrives for an index it no longer holds.
/// (Data loss shows in the delivered counts the tests check, not here.)
fn assert_no_loss_drops(sim: &Sim) {
    let bad: Vec<_> = sim
        .drops
        .iter()
        .filter(|(_, d)| !d.contains("unknown receiver index"))
        .collect();
    assert!(bad.is_empty(), "drops: {bad:?}");
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// Sends `count` packets from `side`, one every `gap`, running the sim between them.
fn stream(sim: &mut Sim, side: Side, first_seq: u32, count: u32, gap: Duration) {
    let (src, dst) = match side {
        Side::A => (A_IP, B_IP),
        Side::B => (B_IP, A_IP),
    };
    for i in 0..count {
        sim.send(side, &ip_packet(src, dst, first_seq + i, 100));
        sim.run_for(gap);
    }
}

fn received_seqs(sim: &Sim, side: Side) -> Vec<u32> {
    let i = if side == Side::A { 0 } else { 1 };
    sim.delivered[i].iter().map(|p| seq_of(p)).collect()
}

#[test]
fn handshake_and_data_both_ways() {
    let mut sim = Sim::new(PeerSettings::default(), 1);
    // The first packet is queued and triggers the handshake; it arrives after it completes.
    assert!(!sim.send(Side::A, &ip_packet(A_IP, B_IP, 0, 100)));
    assert_eq!(sim.peer(Side::A).state(), PeerState::Handshaking);
    sim.run_for(ms(100));
    assert_eq!(received_seqs(&sim, Side::B), vec![0]);
    assert_eq!(sim.peer(Side::A).state(), PeerState::Online);
    assert_eq!(sim.peer(Side::B).state(), PeerState::Online);
    assert_eq!(sim.handshakes(Side::A), 1);
    assert_eq!(sim.handshakes(Side::B), 1);
    assert!(sim.send(Side::B, &ip_packet(B_IP, A_IP, 7, 1400)));
    sim.run_for(ms(50));
    assert_eq!(received_seqs(&sim, Side::A), vec![7]);
    assert_eq!(sim.delivered[0][0].len(), 1400);
    // Byte counters mirror each other: initiation 148, response 92, data messages.
    let a = sim.peer(Side::A).stats();
    let b = sim.peer(Side::B).stats();
    assert_eq!(a.tx_bytes, b.rx_bytes);
    assert_eq!(b.tx_bytes, a.rx_bytes);
    assert_eq!(a.tx_bytes, 148 + (16 + 112 + 16));
}

#[test]
fn key_confirmation_responder_waits_for_first_packet() {
    let mut sim = Sim::new(PeerSettings::default(), 2);
    sim.net.latency = ms(50);
    sim.send(Side::A, &ip_packet(A_IP, B_IP, 0, 100));
    // Deliver the initiation to B (50 ms) but not yet the response back to A.
    sim.run_for(ms(60));
    assert_eq!(sim.peer(Side::B).stats().handshakes, 0);
    // B has only an unconfirmed keypair: its data must wait, not be sent on it.
    assert!(!sim.send(Side::B, &ip_packet(B_IP, A_IP, 1, 100)));
    assert_eq!(sim.sent_transport[1], 0);
    sim.run_for(ms(200));
    // A got the response, sent the queued packet, which confirmed B's keypair; B then
    // flushed its queue.
    assert_eq!(received_seqs(&sim, Side::B), vec![0]);
    assert_eq!(received_seqs(&sim, Side::A), vec![1]);
    assert_eq!(sim.peer(Side::B).state(), PeerState::Online);
}

#[test]
fn rekey_after_120s_under_continuous_traffic_loses_nothing() {
    let mut sim = Sim::new(PeerSettings::default(), 3);
    sim.net.latency = ms(20);
    sim.net.jitter = ms(10);
    // 300 s of traffic both ways, 10 packets/s each way.
    for i in 0..3000u32 {
        sim.send(Side::A, &ip_packet(A_IP, B_IP, i, 200));
        sim.send(Side::B, &ip_packet(B_IP, A_IP, i, 200));
        sim.run_for(ms(100));
    }
    sim.run_for(secs(1));
    let mut got_b = received_seqs(&sim, Side::B);
    let mut got_a = received_seqs(&sim, Side::A);
    got_b.sort();
    got_a.sort();
    let missing = |got: &[u32]| {
        (0..3000)
            .filter(|i| got.binary_search(i).is_err())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        missing(&got_b),
        Vec::<u32>::new(),
        "A->B lost packets; drops {:?}",
        sim.drops
    );
    assert_eq!(
        missing(&got_a),
        Vec::<u32>::new(),
        "B->A lost packets; drops {:?}",
        sim.drops
    );
    // At least two rekeys in 300 s (120 s, 240 s) and never more often than every 5 s.
    let hs = sim.handshakes(Side::A);
    assert!((3..=4).contains(&hs), "handshakes {hs}");
    assert_eq!(sim.peer(Side::A).state(), PeerState::Online);
    assert_no_loss_drops(&sim);
}

#[test]
fn volume_rekey() {
    let settings = PeerSettings {
        rekey_after_bytes: 100_000,
        ..PeerSettings::default()
    };
    let mut sim = Sim::new(settings, 4);
    // 1,000 packets of 1,000 bytes = 1 MB: about 10 rekeys, but never more than one per 5 s.
    for i in 0..1000u32 {
        sim.send(Side::A, &ip_packet(A_IP, B_IP, i, 1000));
        sim.run_for(ms(100));
    }
    sim.run_for(secs(1));
    assert_eq!(received_seqs(&sim, Side::B).len(), 1000);
    let hs = sim.handshakes(Side::A);
    // 100 s of traffic, rekey every 100 packets = 10 s: 1 initial + ~9 rekeys.
    assert!((9..=11).contains(&hs), "handshakes {hs}");
}

#[test]
fn volume_rekey_respects_rekey_timeout() {
    let settings = PeerSettings {
        rekey_after_bytes: 1_000,
        ..PeerSettings::default()
    };
    let mut sim = Sim::new(settings, 5);
    for i in 0..200u32 {
        sim.send(Side::A, &ip_packet(A_IP, B_IP, i, 1000));
        sim.run_for(ms(100));
    }
    // 20 s of traffic, rekeys wanted on every packet, allowed once per 5 s.
    let hs = sim.handshakes(Side::A);
    assert!((4..=5).contains(&hs), "handshakes {hs}");
    assert_eq!(received_seqs(&sim, Side::B).len(), 200);
}

#[test]
fn reject_after_180s_when_rekey_cannot_happen() {
    let mut sim = Sim::new(PeerSettings::default(), 6);
    sim.send(Side::B, &ip_packet(B_IP, A_IP, 0, 100)); // B initiates: A is the responder
    sim.run_for(ms(100));
    stream(&mut sim, Side::B, 1, 1, ms(10));
    assert_eq!(sim.peer(Side::A).state(), PeerState::Online);
    // A (the responder) never rekeys on time; B stays silent. At 180 s A's keypair expires.
    sim.run_for(secs(175));
    assert!(sim.peer(Side::A).current_keypair(sim.now).is_some());
    sim.run_for(secs(6));
    assert!(sim.peer(Side::A).current_keypair(sim.now).is_none());
    assert_eq!(
        sim.peer(Side::A).state(),
        PeerState::Offline(OfflineReason::SessionExpired)
    );
    // Data now needs a fresh handshake, which A starts.
    let before = sim.sent_initiations[0];
    assert!(!sim.send(Side::A, &ip_packet(A_IP, B_IP, 9, 100)));
    assert_eq!(sim.sent_initiations[0], before + 1);
    sim.run_for(ms(100));
    assert_eq!(received_seqs(&sim, Side::B), vec![9]);
}

#[test]
fn retry_every_5s_and_give_up_after_90s() {
    let mut sim = Sim::new(PeerSettings::default(), 7);
    sim.down[1] = true; // B is gone
    sim.send(Side::A, &ip_packet(A_IP, B_IP, 0, 100));
    assert_eq!(sim.sent_initiations[0], 1);
    sim.run_for(secs(5) + ms(400));
    assert_eq!(sim.sent_initiations[0], 2);
    sim.run_for(secs(120));
    // 1 + 18 retries over ~90 s, then silence.
    assert_eq!(sim.sent_initiations[0], 19);
    assert_eq!(
        sim.peer(Side::A).queued(),
        0,
        "queued packets dropped on give-up"
    );
    assert_eq!(
        sim.peer(Side::A).state(),
        PeerState::Offline(OfflineReason::RetriesExhausted)
    );
    assert!(sim
        .events
        .iter()
        .any(|(s, e)| *s == Side::A && *e == PeerEvent::QueueDropped { packets: 1 }));
    // Nothing more is sent after giving up.
    let n = sim.sent_initiations[0];
    sim.run_for(secs(600));
    assert_eq!(sim.sent_initiations[0], n);
    assert_eq!(sim.a.indices_in_use(), 0);
}

#[test]
fn passive_keepalive_after_10s_of_one_way_traffic() {
    let mut sim = Sim::new(PeerSettings::default(), 8);
    sim.send(Side::A, &ip_packet(A_IP, B_IP, 0, 100));
    sim.run_for(ms(100));
    let ka_before = sim.sent_keepalives[1];
    // A streams to B for 3 s; B never sends data. As in WireGuard, B's keepalive is due 10 s
    // after the first data it received without answering, and one more follows 10 s later
    // because more data arrived meanwhile.
    let first_rx = sim.now;
    stream(&mut sim, Side::A, 1, 30, ms(100));
    assert_eq!(sim.sent_keepalives[1], ka_before);
    sim.run_until(first_rx + secs(10) - ms(100));
    assert_eq!(sim.sent_keepalives[1], ka_before, "not before 10 s");
    sim.run_until(first_rx + secs(10) + ms(100));
    assert_eq!(
        sim.sent_keepalives[1],
        ka_before + 1,
        "one keepalive after 10 s"
    );
    sim.run_for(secs(60));
    assert_eq!(
        sim.sent_keepalives[1],
        ka_before + 2,
        "one more, then silence"
    );
    // Two-way traffic needs no keepalives at all.
    let k = sim.sent_keepalives;
    for i in 0..100u32 {
        sim.send(Side::A, &ip_packet(A_IP, B_IP, 100 + i, 100));
        sim.send(Side::B, &ip_packet(B_IP, A_IP, 100 + i, 100));
        sim.run_for(ms(500));
    }
    assert_eq!(sim.sent_keepalives, k);
}

#[test]
fn persistent_keepalive_at_interval() {
    let mut sim = Sim::with(
        PeerSettings::default(),
        9,
        Some(secs(25)),
        None,
        true,
        false,
    );
    // A starts a handshake at once because of the persistent keepalive.
    assert_eq!(sim.sent_initiations[0], 1);
    sim.run_for(secs(1));
    assert_eq!(sim.peer(Side::B).state(), PeerState::Online);
    let k0 = sim.sent_keepalives[0];
    sim.run_for(secs(100));
    // One keepalive every 25 s of silence: 4 in 100 s.
    assert_eq!(sim.sent_keepalives[0] - k0, 4);
}

#[test]
fn offline_after_5s_without_answer_then_online_again() {
    let mut sim = Sim::new(PeerSettings::default(), 10);
    sim.send(Side::A, &ip_packet(A_IP, B_IP, 0, 100));
    sim.run_for(ms(100));
    assert_eq!(sim.peer(Side::A).state(), PeerState::Online);
    // B dies. A keeps sending; after 15 s without an answer A starts a handshake, which gets
    // no answer for 5 s: A marks B offline and clears the session keys.
    sim.down[1] = true;
    let t_down = sim.now;
    let mut offline_at = None;
    for i in 1..400u32 {
        sim.send(Side::A, &ip_packet(A_IP, B_IP, i, 100));
        sim.run_for(ms(100));
        if offline_at.is_none() && matches!(sim.peer(Side::A).state(), PeerState::Offline(_)) {
            offline_at = Some(sim.now - t_down);
            assert_eq!(
                sim.peer(Side::A).state(),
                PeerState::Offline(OfflineReason::HandshakeTimeout)
            );
            assert!(!sim.peer(Side::A).has_keys(), "keys cleared");
        }
    }
    let off = offline_at.expect("went offline");
    assert!(off >= secs(20) && off <= secs(21), "offline after {off:?}");
    // No transport packet went out on the old keypair after going offline.
    let t_before = sim.sent_transport[0];
    sim.run_for(secs(3));
    assert_eq!(sim.sent_transport[0], t_before);
    // B comes back: the next retry completes the handshake without operator action.
    sim.down[1] = false;
    sim.run_for(secs(6));
    assert_eq!(sim.peer(Side::A).state(), PeerState::Online);
}

#[test]
fn simultaneous_initiation_yields_one_working_session() {
    let mut sim = Sim::new(PeerSettings::default(), 11);
    sim.net.latency = ms(30);
    sim.send(Side::A, &ip_packet(A_IP, B_IP, 0, 100));
    sim.send(Side::B, &ip_packet(B_IP, A_IP, 0, 100));
    assert_eq!(sim.sent_initiations, [1, 1]);
    sim.run_for(secs(1));
    assert_eq!(received_seqs(&sim, Side::A), vec![0]);
    assert_eq!(received_seqs(&sim, Side::B), vec![0]);
    stream(&mut sim, Side::A, 1, 20, ms(50));
    stream(&mut sim, Side::B, 1, 20, ms(50));
    sim.run_for(secs(1));
    assert_eq!(received_seqs(&sim, Side::B).len(), 21);
    assert_eq!(received_seqs(&sim, Side::A).len(), 21);
    assert_eq!(sim.sent_initiations, [1, 1], "no extra handshakes needed");
    assert_no_loss_drops(&sim);
}

/// Both sides initiate and the initiation of the side that keeps its own (the larger public
/// key) is lost: the other side's initiation is still answered, so the handshake completes at
/// once rather than after a 5 s retry (the delay a refusing tie-break caused after roaming).
#[test]
fn simultaneous_initiation_with_one_lost_completes_without_retry() {
    let mut sim = Sim::new(PeerSettings::default(), 14);
    sim.net.latency = ms(30);
    let key_a = *sim.peer(Side::B).public_key();
    let key_b = *sim.peer(Side::A).public_key();
    let larger = if key_a > key_b { Side::A } else { Side::B };
    sim.send(Side::A, &ip_packet(A_IP, B_IP, 0, 100));
    sim.send(Side::B, &ip_packet(B_IP, A_IP, 0, 100));
    assert_eq!(sim.lose_initiations_from(larger), 1);
    sim.run_for(secs(1));
    assert_eq!(received_seqs(&sim, Side::A), vec![0]);
    assert_eq!(received_seqs(&sim, Side::B), vec![0]);
    assert_eq!(sim.peer(Side::A).state(), PeerState::Online);
    assert_eq!(sim.peer(Side::B).state(), PeerState::Online);
    stream(&mut sim, Side::A, 1, 10, ms(50));
    stream(&mut sim, Side::B, 1, 10, ms(50));
    assert_eq!(received_seqs(&sim, Side::A).len(), 11);
    assert_eq!(received_seqs(&sim, Side::B).len(), 11);
}

#[test]
fn roaming_follows_latest_authenticated_source() {
    let mut sim = Sim::new(PeerSettings::default(), 12);
    sim.send(Side::A, &ip_packet(A_IP, B_IP, 0, 100));
    sim.run_for(ms(100));
    let new_addr = "192.0.2.77:4444".parse().unwrap();
    sim.roam(Side::A, new_addr);
    sim.send(Side::A, &ip_packet(A_IP, B_IP, 1, 100));
    sim.run_for(ms(100));
    assert_eq!(sim.peer(Side::B).endpoint(), Some(new_addr));
    assert!(sim.events.iter().any(|(s, e)| *s == Side::B
        && matches!(e, PeerEvent::EndpointChanged { to, .. } if *to == new_addr)));
    // B's replies reach A at its new address (the sim delivers by side, so check the
    // transmit destination through the peer's endpoint and a round trip).
    sim.send(Side::B, &ip_packet(B_IP, A_IP, 5, 100));
    sim.run_for(ms(100));
    assert_eq!(received_seqs(&sim, Side::A), vec![5]);
}

#[test]
fn lossy_reordering_network_still_converges() {
    let mut sim = Sim::new(PeerSettings::default(), 13);
    sim.net.latency = ms(20);
    sim.net.jitter = ms(40);
    sim.net.drop_per_mille = 100;
    for i in 0..600u32 {
        sim.send(Side::A, &ip_packet(A_IP, B_IP, i, 300));
        sim.run_for(ms(500));
    }
    let got = received_seqs(&sim, Side::B);
    // Around 10 % loss; reordered packets within the window are all accepted.
    assert!(got.len() > 450, "got {}", got.len());
    let mut sorted = got.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), got.len(), "no duplicates delivered");
    assert_eq!(sim.peer(Side::A).state(), PeerState::Online);
}

#[test]
fn scaled_timers_work_the_same() {
    let settings = PeerSettings {
        timers: TimerConfig::scaled(10),
        ..PeerSettings::default()
    };
    let mut sim = Sim::new(settings, 14);
    for i in 0..300u32 {
        sim.send(Side::A, &ip_packet(A_IP, B_IP, i, 100));
        sim.run_for(ms(100));
    }
    // 30 s of traffic with 12 s rekey: 1 + 2 handshakes.
    assert_eq!(sim.handshakes(Side::A), 3);
    assert_eq!(received_seqs(&sim, Side::B).len(), 300);
}

#[test]
fn zero_keys_after_540s() {
    let mut sim = Sim::new(PeerSettings::default(), 15);
    sim.send(Side::A, &ip_packet(A_IP, B_IP, 0, 100));
    sim.run_for(ms(100));
    assert!(sim.peer(Side::A).has_keys());
    sim.run_for(secs(539));
    sim.run_for(secs(2));
    assert!(!sim.peer(Side::A).has_keys());
    assert!(!sim.peer(Side::B).has_keys());
    assert_eq!(sim.a.indices_in_use(), 0);
    assert_eq!(sim.b.indices_in_use(), 0);
}

#[test]
fn cookie_under_load_still_connects() {
    let mut sim = Sim::new(PeerSettings::default(), 16);
    sim.under_load[1] = true;
    sim.send(Side::A, &ip_packet(A_IP, B_IP, 0, 100));
    // First initiation gets a cookie reply; the retry after 5 s carries mac2 and succeeds.
    sim.run_for(secs(7));
    assert!(sim
        .drops
        .iter()
        .any(|(s, d)| *s == Side::B && d == "cookie reply sent"));
    assert_eq!(received_seqs(&sim, Side::B), vec![0]);
    assert_eq!(sim.peer(Side::A).state(), PeerState::Online);
}
