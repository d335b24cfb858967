//! Fake-clock tests of the path state machine, with the peer played by hand.

use super::*;
use crate::nat::probe::PROBE_LEN;
use crate::noise::crypto;
use x25519_dalek::StaticSecret;

fn keys() -> (ProbeKey, ProbeKey) {
    let a = StaticSecret::from([1; 32]);
    let b = StaticSecret::from([2; 32]);
    (
        ProbeKey::derive(&a, &crypto::public_key(&b)).unwrap(),
        ProbeKey::derive(&b, &crypto::public_key(&a)).unwrap(),
    )
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const PUB: &str = "203.0.113.7:51820";
const PUB2: &str = "198.51.100.7:51820";
const LAN: &str = "192.168.1.7:51820";

struct Peer {
    key: ProbeKey,
    rng: ChaCha20Rng,
}

impl Peer {
    /// Drains `m`'s probes; answers each ping to an address in `up` with a pong delivered after
    /// `rtt(addr)`. Returns the addresses pinged.
    fn answer(
        &mut self,
        m: &mut PathManager,
        now: Instant,
        up: &[&str],
        rtt: impl Fn(SocketAddr) -> Duration,
    ) -> Vec<SocketAddr> {
        let mut pinged = Vec::new();
        let mut replies = Vec::new();
        let mut buf = [0u8; PROBE_LEN];
        while let Some((dst, n)) = m.poll_transmit(&mut buf) {
            let p = self.key.open(&mut buf[..n]).unwrap();
            if p.kind != ProbeType::Ping {
                continue;
            }
            pinged.push(dst);
            if up.iter().any(|u| sa(u) == dst) {
                let pong = Probe {
                    kind: ProbeType::Pong,
                    txid: p.txid,
                    observed: sa("10.0.0.1:5000"),
                };
                let mut out = [0u8; PROBE_LEN];
                self.key.seal(&pong, &mut self.rng, &mut out).unwrap();
                replies.push((now + rtt(dst), dst, out));
            }
        }
        replies.sort_by_key(|r| r.0);
        for (at, from, mut out) in replies {
            m.handle_probe(from, &mut out, at).unwrap();
        }
        pinged
    }
}

fn setup(t0: Instant) -> (PathManager, Peer) {
    let (ka, kb) = keys();
    (
        PathManager::new(ka, [9; 32], t0),
        Peer {
            key: kb,
            rng: ChaCha20Rng::from_seed([8; 32]),
        },
    )
}

fn selected(m: &mut PathManager) -> Option<SocketAddr> {
    let mut last = None;
    while let Some(e) = m.poll_event() {
        if let PathEvent::Selected { endpoint, .. } = e {
            last = Some(endpoint);
        }
    }
    last
}

/// Runs `m` with the peer answering from `up`, until `until`; returns the instants of rounds
/// that pinged every candidate (more than one ping).
fn run(
    m: &mut PathManager,
    peer: &mut Peer,
    from: Instant,
    until: Instant,
    up: &[&str],
    active: bool,
) -> Vec<(Instant, Vec<SocketAddr>)> {
    run_p(m, peer, from, until, up, active, false)
}

/// [`run`], and with `progress` WireGuard makes progress at every step.
fn run_p(
    m: &mut PathManager,
    peer: &mut Peer,
    from: Instant,
    until: Instant,
    up: &[&str],
    active: bool,
    progress: bool,
) -> Vec<(Instant, Vec<SocketAddr>)> {
    let mut now = from;
    let mut log = Vec::new();
    for _ in 0..10_000 {
        let t = m.poll_timeout().max(now);
        if t > until {
            break;
        }
        now = t;
        if active {
            m.note_activity(now);
            m.note_wireguard_sent(now);
        }
        if progress {
            m.note_wireguard_progress(now);
        }
        m.handle_timeout(now);
        let pinged = peer.answer(m, now, up, |_| Duration::from_millis(20));
        if !pinged.is_empty() {
            log.push((now, pinged));
        }
    }
    log
}

#[test]
fn lan_beats_public_and_event_names_the_kind() {
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    m.note_activity(t0);
    m.set_candidates(Source::Stun, &[sa(PUB)], t0);
    m.set_candidates(Source::Lan, &[sa(LAN)], t0);
    m.handle_timeout(t0);
    // The public path is faster, but LAN wins.
    peer.answer(&mut m, t0, &[PUB, LAN], |a| {
        Duration::from_millis(if a == sa(LAN) { 30 } else { 10 })
    });
    assert_eq!(m.endpoint(), Some(sa(LAN)));
    assert_eq!(m.kind(), PathKind::Direct);
    assert_eq!(m.why_not_direct(), None);
    assert!(matches!(
        m.poll_event(),
        Some(PathEvent::ObservedSelf { .. }) | Some(PathEvent::Selected { .. })
    ));
}

#[test]
fn rtt_hysteresis_needs_5ms_and_10_percent() {
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    m.note_activity(t0);
    m.set_candidates(Source::Stun, &[sa(PUB), sa(PUB2)], t0);
    m.handle_timeout(t0);
    peer.answer(&mut m, t0, &[PUB, PUB2], |a| {
        Duration::from_millis(if a == sa(PUB) { 50 } else { 60 })
    });
    assert_eq!(selected(&mut m), Some(sa(PUB)));
    assert_eq!(m.kind(), PathKind::Punched);
    // 4 ms better: no switch (below 5 ms).
    let t1 = t0 + Duration::from_secs(1);
    m.link_changed(t1);
    m.handle_timeout(t1);
    peer.answer(&mut m, t1, &[PUB, PUB2], |a| {
        Duration::from_millis(if a == sa(PUB) { 50 } else { 46 })
    });
    assert_eq!(m.endpoint(), Some(sa(PUB)));
    assert_eq!(selected(&mut m), None, "no flap");
    // 6 ms better on 500 ms (1.2 %): no switch either (below 10 %).
    let t2 = t1 + Duration::from_secs(1);
    m.link_changed(t2);
    m.handle_timeout(t2);
    peer.answer(&mut m, t2, &[PUB, PUB2], |a| {
        Duration::from_millis(if a == sa(PUB) { 500 } else { 494 })
    });
    assert_eq!(selected(&mut m), None);
    // 20 ms and 40 % better: switch.
    let t3 = t2 + Duration::from_secs(1);
    m.link_changed(t3);
    m.handle_timeout(t3);
    peer.answer(&mut m, t3, &[PUB, PUB2], |a| {
        Duration::from_millis(if a == sa(PUB) { 50 } else { 30 })
    });
    assert_eq!(selected(&mut m), Some(sa(PUB2)));
}

#[test]
fn active_unanswered_probes_every_5s_idle_backs_off_to_60s() {
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    m.set_candidates(Source::Stun, &[sa(PUB)], t0);
    let log = run(
        &mut m,
        &mut peer,
        t0,
        t0 + Duration::from_secs(30),
        &[],
        true,
    );
    let gaps: Vec<_> = log.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(gaps.len() >= 5);
    assert!(gaps.iter().all(|g| *g == PROBE_INTERVAL_ACTIVE), "{gaps:?}");
    assert_eq!(m.why_not_direct(), Some(WhyNotDirect::ProbesUnanswered));
    assert_eq!(m.kind(), PathKind::None);

    // Idle (no activity for 45 s and more): doubling up to the 60 s cap, never beyond.
    let t1 = t0 + Duration::from_secs(30);
    let log = run(
        &mut m,
        &mut peer,
        t1,
        t1 + Duration::from_secs(600),
        &[],
        false,
    );
    let gaps: Vec<_> = log
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).as_secs())
        .collect();
    assert!(gaps.iter().all(|g| *g <= 60), "{gaps:?}");
    assert!(
        gaps.windows(2).all(|w| w[0] <= w[1]),
        "monotone back-off: {gaps:?}"
    );
    assert_eq!(gaps.last(), Some(&60));
    assert!(
        gaps.contains(&10) && gaps.contains(&20) && gaps.contains(&40),
        "{gaps:?}"
    );
}

#[test]
fn new_candidate_link_change_mapping_change_and_wake_restart_at_once() {
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    m.set_candidates(Source::Stun, &[sa(PUB)], t0);
    // Idle long enough to back off to the cap.
    run(
        &mut m,
        &mut peer,
        t0,
        t0 + Duration::from_secs(300),
        &[],
        false,
    );
    assert_eq!(m.probe_interval(), PROBE_INTERVAL_IDLE_MAX);
    let mut now = t0 + Duration::from_secs(301);
    type Trigger = fn(&mut PathManager, Instant);
    let triggers: [(&str, Trigger); 5] = [
        ("new candidate", |m, t| {
            m.set_candidates(Source::Lan, &[sa(LAN)], t)
        }),
        ("link change", |m, t| m.link_changed(t)),
        ("mapping change", |m, t| m.mapping_changed(t)),
        ("activity after idle", |m, t| m.note_activity(t)),
        ("the peer called", |m, t| m.peer_called(t)),
    ];
    for (name, trig) in triggers {
        // Back to idle back-off first.
        run(
            &mut m,
            &mut peer,
            now,
            now + Duration::from_secs(200),
            &[],
            false,
        );
        now += Duration::from_secs(201);
        assert!(
            m.poll_timeout() > now,
            "{name}: nothing due before the trigger"
        );
        trig(&mut m, now);
        assert_eq!(m.poll_timeout(), now, "{name}: probing restarts at once");
        assert_eq!(m.probe_interval(), PROBE_INTERVAL_ACTIVE, "{name}");
        m.handle_timeout(now);
        let pinged = peer.answer(&mut m, now, &[], |_| Duration::ZERO);
        assert!(pinged.contains(&sa(PUB)), "{name}: {pinged:?}");
    }
}

#[test]
fn heartbeat_every_3s_while_active_and_loss_detected_within_trust() {
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    m.set_candidates(Source::Stun, &[sa(PUB)], t0);
    let log = run_p(
        &mut m,
        &mut peer,
        t0,
        t0 + Duration::from_secs(20),
        &[PUB],
        true,
        true,
    );
    assert_eq!(m.endpoint(), Some(sa(PUB)));
    let hb: Vec<_> = log.windows(2).map(|w| w[1].0 - w[0].0).collect();
    // The first heartbeat is due 3 s after the pong that selected the path (20 ms RTT).
    assert!(hb.len() >= 6, "{hb:?}");
    assert!(
        hb.iter()
            .all(|g| *g <= HEARTBEAT_INTERVAL + Duration::from_millis(20)),
        "{hb:?}"
    );
    assert!(HEARTBEAT_INTERVAL <= Duration::from_secs(10));
    // The path stops answering (mapping gone): lost within PATH_TRUST (+ one heartbeat), then
    // probing at the active cadence.
    let t1 = t0 + Duration::from_secs(20);
    let mut lost_at = None;
    let mut now = t1;
    for _ in 0..100 {
        now = m.poll_timeout().max(now);
        m.note_activity(now);
        m.handle_timeout(now);
        peer.answer(&mut m, now, &[], |_| Duration::ZERO);
        if m.endpoint().is_none() {
            lost_at = Some(now);
            break;
        }
    }
    let lost = lost_at.expect("path lost") - t1;
    assert!(lost <= PATH_TRUST, "{lost:?}");
    assert!(std::iter::from_fn(|| m.poll_event()).any(|e| matches!(e, PathEvent::Lost { .. })));
    assert_eq!(m.why_not_direct(), Some(WhyNotDirect::ProbesUnanswered));
}

#[test]
fn a_quiet_tunnel_keeps_its_path() {
    // WireGuard progressed once, then nothing was sent either way: nothing is unanswered, so
    // the path stays selected while the peer counts as active (45 s).
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    m.set_candidates(Source::Stun, &[sa(PUB)], t0);
    run(
        &mut m,
        &mut peer,
        t0,
        t0 + Duration::from_secs(2),
        &[PUB],
        true,
    );
    assert_eq!(m.endpoint(), Some(sa(PUB)));
    m.note_wireguard_progress(t0 + Duration::from_secs(2));
    run(
        &mut m,
        &mut peer,
        t0 + Duration::from_secs(2),
        t0 + Duration::from_secs(40),
        &[PUB],
        false,
    );
    assert_eq!(m.endpoint(), Some(sa(PUB)), "{:?}", m.why_not_direct());
    // Sending with no answer makes it suspect 15 s later.
    let sent = t0 + Duration::from_secs(40);
    m.note_activity(sent);
    m.note_wireguard_sent(sent);
    run(
        &mut m,
        &mut peer,
        sent,
        sent + Duration::from_secs(14),
        &[PUB],
        false,
    );
    assert_eq!(m.endpoint(), Some(sa(PUB)));
    run(
        &mut m,
        &mut peer,
        sent + Duration::from_secs(14),
        sent + Duration::from_secs(16),
        &[PUB],
        false,
    );
    assert_eq!(m.why_not_direct(), Some(WhyNotDirect::NoWireguardProgress));
}

#[test]
fn answering_path_without_wireguard_progress_is_suspect() {
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    m.set_candidates(Source::Stun, &[sa(PUB)], t0);
    run(
        &mut m,
        &mut peer,
        t0,
        t0 + Duration::from_secs(10),
        &[PUB],
        true,
    );
    assert_eq!(m.endpoint(), Some(sa(PUB)));
    // Progress keeps it.
    m.note_wireguard_progress(t0 + Duration::from_secs(10));
    run(
        &mut m,
        &mut peer,
        t0 + Duration::from_secs(10),
        t0 + Duration::from_secs(24),
        &[PUB],
        true,
    );
    assert_eq!(m.endpoint(), Some(sa(PUB)));
    // No progress for 15 s: dropped although pongs keep coming.
    run(
        &mut m,
        &mut peer,
        t0 + Duration::from_secs(24),
        t0 + Duration::from_secs(40),
        &[PUB],
        true,
    );
    assert_eq!(m.endpoint(), None);
    assert_eq!(m.why_not_direct(), Some(WhyNotDirect::NoWireguardProgress));
    // WireGuard works again: the path comes back on the next answer.
    m.note_wireguard_progress(t0 + Duration::from_secs(40));
    m.link_changed(t0 + Duration::from_secs(40));
    run(
        &mut m,
        &mut peer,
        t0 + Duration::from_secs(40),
        t0 + Duration::from_secs(41),
        &[PUB],
        true,
    );
    assert_eq!(m.endpoint(), Some(sa(PUB)));
}

#[test]
fn why_not_direct_without_candidates_follows_signaling() {
    let t0 = Instant::now();
    let (mut m, _) = setup(t0);
    assert_eq!(m.why_not_direct(), Some(WhyNotDirect::NoCandidates));
    m.set_signaling(Signaling::HubUnreachable);
    assert_eq!(m.why_not_direct(), Some(WhyNotDirect::HubUnreachable));
    m.set_signaling(Signaling::PeerOffline);
    assert_eq!(m.why_not_direct(), Some(WhyNotDirect::PeerOffline));
    m.set_signaling(Signaling::PeerOnline);
    assert_eq!(m.why_not_direct(), Some(WhyNotDirect::NoCandidates));
}

#[test]
fn pings_get_pongs_and_triggered_pings_rate_limited_and_candidates_bounded() {
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    let mut answered = 0;
    let mut limited = 0;
    for i in 0..200u16 {
        let mut buf = [0u8; PROBE_LEN];
        let ping = Probe {
            kind: ProbeType::Ping,
            txid: [i as u8; 12],
            observed: sa(PUB),
        };
        peer.key.seal(&ping, &mut peer.rng, &mut buf).unwrap();
        let from = SocketAddr::new("198.51.100.9".parse().unwrap(), 1000 + i);
        match m.handle_probe(from, &mut buf, t0) {
            Ok(()) => answered += 1,
            Err(PathError::RateLimited) => limited += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(answered <= MAX_PONGS_PER_ROUND as usize && limited > 0);
    assert!(m.candidates.len() <= MAX_CANDIDATES);
    let mut buf = [0u8; PROBE_LEN];
    let mut pongs = 0;
    while let Some((_, n)) = m.poll_transmit(&mut buf) {
        if peer.key.open(&mut buf[..n]).unwrap().kind == ProbeType::Pong {
            pongs += 1;
        }
    }
    assert_eq!(pongs, answered);
    // A forged or replayed pong is refused.
    let mut junk = [0u8; PROBE_LEN];
    let pong = Probe {
        kind: ProbeType::Pong,
        txid: [77; 12],
        observed: sa(PUB),
    };
    peer.key.seal(&pong, &mut peer.rng, &mut junk).unwrap();
    assert_eq!(
        m.handle_probe(sa(PUB), &mut junk, t0),
        Err(PathError::UnmatchedPong)
    );
    assert!(matches!(
        m.handle_probe(sa(PUB), &mut [0u8; 5], t0),
        Err(PathError::Probe(_))
    ));
}

#[test]
fn a_pong_from_another_address_moves_the_path_there_at_once() {
    // The peer's default route moved to another uplink: our ping still reaches it at PUB, but
    // its pong comes from its new mapping PUB2.
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    m.set_candidates(Source::Stun, &[sa(PUB)], t0);
    run_p(
        &mut m,
        &mut peer,
        t0,
        t0 + Duration::from_secs(2),
        &[PUB],
        true,
        true,
    );
    assert_eq!(m.endpoint(), Some(sa(PUB)));
    let _ = selected(&mut m);

    let t1 = t0 + Duration::from_secs(2);
    // The peer announces its new mapping (through the hub); that restarts probing.
    m.set_candidates(Source::Stun, &[sa(PUB2)], t1);
    m.note_activity(t1);
    m.handle_timeout(t1);
    let mut buf = [0u8; PROBE_LEN];
    let mut pongs = Vec::new();
    let mut order = Vec::new();
    while let Some((dst, n)) = m.poll_transmit(&mut buf) {
        let p = peer.key.open(&mut buf[..n]).unwrap();
        assert_eq!(p.kind, ProbeType::Ping);
        order.push(dst);
        if dst != sa(PUB) {
            // Not answered from there yet (only the pong below opens the way).
            continue;
        }
        let pong = Probe {
            kind: ProbeType::Pong,
            txid: p.txid,
            observed: sa("10.0.0.1:5000"),
        };
        let mut out = [0u8; PROBE_LEN];
        peer.key.seal(&pong, &mut peer.rng, &mut out).unwrap();
        pongs.push(out);
    }
    assert!(!pongs.is_empty(), "the selected path is pinged at once");
    // The selected path is pinged after the others: our own address-dependent filter must
    // have seen us send to the new address before the peer's answer from there comes back.
    assert_eq!(order.first(), Some(&sa(PUB2)), "{order:?}");
    let t2 = t1 + Duration::from_millis(20);
    for mut out in pongs {
        m.handle_probe(sa(PUB2), &mut out, t2).unwrap();
    }
    assert_eq!(
        m.endpoint(),
        Some(sa(PUB2)),
        "moved without waiting for PATH_TRUST"
    );
    assert_eq!(selected(&mut m), Some(sa(PUB2)));
    assert_eq!(m.kind(), PathKind::Punched);
    // The old address answers nothing back any more and is not selected again.
    m.handle_timeout(t2);
    assert_eq!(m.endpoint(), Some(sa(PUB2)));
}

#[test]
fn a_pong_for_no_ping_is_still_refused() {
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    m.set_candidates(Source::Stun, &[sa(PUB)], t0);
    let pong = Probe {
        kind: ProbeType::Pong,
        txid: [7; 12],
        observed: sa("10.0.0.1:5000"),
    };
    let mut out = [0u8; PROBE_LEN];
    peer.key.seal(&pong, &mut peer.rng, &mut out).unwrap();
    assert_eq!(
        m.handle_probe(sa(PUB2), &mut out, t0),
        Err(PathError::UnmatchedPong)
    );
    assert_eq!(m.endpoint(), None);
}

const RELAY: &str = "[fd7f:7672:6c79:1::7]:9";

#[test]
fn relay_is_taken_at_once_without_udp_and_never_probed() {
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    m.set_candidates(Source::Stun, &[sa(PUB)], t0);
    m.set_relay(Some(sa(RELAY)), t0);
    assert_eq!(
        m.endpoint(),
        Some(sa(RELAY)),
        "the first packets go out through the relay"
    );
    assert_eq!(m.kind(), PathKind::Relay);
    assert_eq!(selected(&mut m), Some(sa(RELAY)));
    // Direct is retried every 5 s while active; the relay is never pinged.
    let log = run_p(
        &mut m,
        &mut peer,
        t0,
        t0 + Duration::from_secs(21),
        &[],
        true,
        true,
    );
    assert!(log.iter().all(|(_, p)| !p.contains(&sa(RELAY))), "{log:?}");
    assert!(log.len() >= 4, "rounds every 5 s while relayed: {log:?}");
    assert_eq!(m.probe_interval(), PROBE_INTERVAL_ACTIVE);
    assert_eq!(m.endpoint(), Some(sa(RELAY)));
    assert_eq!(m.why_not_direct(), Some(WhyNotDirect::ProbesUnanswered));
}

#[test]
fn a_direct_path_that_answers_replaces_the_relay_and_the_relay_catches_its_loss() {
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    m.set_relay(Some(sa(RELAY)), t0);
    selected(&mut m);
    // The peer's public address appears and answers: upgrade.
    m.set_candidates(Source::Stun, &[sa(PUB)], t0);
    run_p(
        &mut m,
        &mut peer,
        t0,
        t0 + Duration::from_secs(1),
        &[PUB],
        true,
        true,
    );
    assert_eq!(m.endpoint(), Some(sa(PUB)));
    assert_eq!(m.kind(), PathKind::Punched);
    assert_eq!(m.why_not_direct(), None);
    assert_eq!(selected(&mut m), Some(sa(PUB)));
    // It stops answering: back on the relay once its trust lapses, not to none.
    let t1 = t0 + Duration::from_secs(1);
    run_p(
        &mut m,
        &mut peer,
        t1,
        t1 + PATH_TRUST + Duration::from_secs(1),
        &[],
        true,
        true,
    );
    assert_eq!(m.endpoint(), Some(sa(RELAY)));
    assert_eq!(m.kind(), PathKind::Relay);
    assert_eq!(m.why_not_direct(), Some(WhyNotDirect::DirectPathBroken));
    // The relay goes (hub lost): nothing left.
    let t2 = t1 + Duration::from_secs(10);
    m.set_relay(None, t2);
    assert_eq!(m.endpoint(), None);
    assert!(std::iter::from_fn(|| m.poll_event()).any(|e| matches!(e, PathEvent::Lost { .. })));
}

#[test]
fn a_relay_that_carries_no_wireguard_is_dropped() {
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    m.set_relay(Some(sa(RELAY)), t0);
    // WireGuard sends and nothing comes back for 15 s.
    run(
        &mut m,
        &mut peer,
        t0,
        t0 + WIREGUARD_PROGRESS_TIMEOUT + Duration::from_secs(1),
        &[],
        true,
    );
    assert_eq!(m.endpoint(), None);
    assert_eq!(m.why_not_direct(), Some(WhyNotDirect::NoWireguardProgress));
}

#[test]
fn a_direct_path_in_doubt_sends_on_the_relay_too_until_it_answers_or_dies() {
    let t0 = Instant::now();
    let (mut m, mut peer) = setup(t0);
    m.set_relay(Some(sa(RELAY)), t0);
    m.set_candidates(Source::Stun, &[sa(PUB)], t0);
    let t1 = t0 + Duration::from_secs(1);
    run_p(&mut m, &mut peer, t0, t1, &[PUB], true, true);
    assert_eq!(m.endpoint(), Some(sa(PUB)));
    assert_eq!(
        m.also_send_to(t1),
        None,
        "an answering path needs no second copy"
    );
    // It stops answering: in doubt after a missed heartbeat, both paths carry data...
    let mut doubt = None;
    let mut now = t1;
    while now < t1 + PATH_TRUST + Duration::from_secs(2) {
        now += Duration::from_millis(100);
        m.note_activity(now);
        m.note_wireguard_sent(now);
        m.note_wireguard_progress(now);
        m.handle_timeout(now);
        while m.poll_transmit(&mut [0u8; 256]).is_some() {}
        if m.endpoint() == Some(sa(PUB)) && m.also_send_to(now) == Some(sa(RELAY)) {
            doubt.get_or_insert(now);
        }
    }
    let doubt = doubt.expect("a path in doubt sends on the relay as well");
    assert!(
        doubt - t1 <= PATH_DOUBT + HEARTBEAT_INTERVAL,
        "in doubt {:?} after the last pong",
        doubt - t1
    );
    // ...until it is declared dead: then the relay is the path, sent to once.
    assert_eq!(m.endpoint(), Some(sa(RELAY)));
    assert_eq!(m.also_send_to(now), None);
    // A path in doubt that answers again clears the doubt.
    let (mut m, mut peer) = setup(t0);
    m.set_relay(Some(sa(RELAY)), t0);
    m.set_candidates(Source::Stun, &[sa(PUB)], t0);
    run_p(&mut m, &mut peer, t0, t1, &[PUB], true, true);
    let quiet = t1 + PATH_DOUBT + Duration::from_millis(500);
    m.note_activity(quiet);
    assert_eq!(m.also_send_to(quiet), Some(sa(RELAY)));
    run_p(
        &mut m,
        &mut peer,
        quiet,
        quiet + HEARTBEAT_INTERVAL,
        &[PUB],
        true,
        true,
    );
    let later = quiet + HEARTBEAT_INTERVAL;
    assert_eq!(m.endpoint(), Some(sa(PUB)));
    assert_eq!(m.also_send_to(later), None, "the pong cleared the doubt");
}
