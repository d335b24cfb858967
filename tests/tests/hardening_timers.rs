//! WireGuard's timers on a real clock, between two vpnd processes (issue "Hardening",
//! bullet 4). Packets are counted on the outer link with tcpdump.
//!
//! Most tests shrink every protocol timer with `VPND_TEST_TIMER_DIVISOR` (test-only, see
//! docs/configuration.md); each says which values it runs at. One test runs at WireGuard's
//! real values: `a_slow_rekey_after_120_seconds_on_a_real_clock` (about 130 s). It is named to
//! sort first, so libtest starts it first and the other tests of this binary run beside it.
//!
//! * rekey by time under continuous TCP traffic (divisor 10: every 12 s), with no stall;
//! * rekey by volume (`rekey_after_bytes` 16 MiB) during a 256 MiB transfer that arrives
//!   intact;
//! * passive keepalive after 10 s of one-way traffic, persistent keepalive at its interval
//!   (real values);
//! * dead peer: offline and keys cleared 5 s after an unanswered handshake, back online by
//!   itself when the peer returns (real values);
//! * laptop pause: a daemon stopped for longer than a session lives recovers by itself
//!   (divisor 10: 20 s for WireGuard's 200 s).

use std::time::{Duration, Instant, SystemTime};

use e2e::capture::{Capture, Packet};
use e2e::lab::{iperf3, Lab, LabOptions, A_TUN, B_PORT, B_TUN};
use e2e::{ping, ping_until, require_root_with, wait_until, Netns, Proc, TestGuard};

const TOOLS: &[&str] = &["tcpdump", "iperf3"];
const DIVISOR: &str = "VPND_TEST_TIMER_DIVISOR";

fn now_unix() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// WireGuard keepalives (transport messages with an empty payload: 32 bytes) in `pkts` sent
/// from UDP port `port`.
fn keepalives_from(pkts: &[Packet], port: u16) -> Vec<Duration> {
    pkts.iter()
        .filter(|p| p.src_port == Some(port) && p.wg_type() == Some(4) && p.payload.len() == 32)
        .map(|p| p.ts)
        .collect()
}

fn handshakes(v: &e2e::vpnd::Vpnd) -> u64 {
    v.show().peers[0].handshakes
}

fn udp_sink(ns: &Netns, listen: &str) -> Proc {
    let p = ns.spawn([
        e2e::cargo_binary("e2e-udp").to_string_lossy().as_ref(),
        "recv",
        "--listen",
        listen,
        "--timeout",
        "120",
    ]);
    assert!(p.wait_for_output("listening", Duration::from_secs(10)));
    p
}

#[test]
fn a_slow_rekey_after_120_seconds_on_a_real_clock() {
    if !require_root_with(TOOLS) {
        return;
    }
    let guard = TestGuard::new("a_slow_rekey_after_120_seconds_on_a_real_clock");
    // Only A knows an endpoint: A is the initiator, and only the initiator rekeys by time.
    let opts = LabOptions {
        a_knows_b: true,
        ..LabOptions::default()
    };
    let lab = Lab::new(&guard, &opts);
    assert!(ping_until(&lab.a, B_TUN, Duration::from_secs(10)));
    let first = lab.vpnd_a.peer(&lab.kb.public);
    assert_eq!(first.handshakes, 1);
    let t0 = Instant::now();
    // Light continuous traffic both ways for 130 s: 5 pings a second.
    let mut pinger = lab.a.spawn([
        "ping", "-n", "-q", "-c", "650", "-i", "0.2", "-W", "1", B_TUN,
    ]);
    let mut second_at = None;
    while t0.elapsed() < Duration::from_secs(130) {
        std::thread::sleep(Duration::from_millis(250));
        let n = handshakes(&lab.vpnd_a);
        if n >= 2 && second_at.is_none() {
            second_at = Some(t0.elapsed());
        }
        assert!(n <= 2, "{n} handshakes within {:?}", t0.elapsed());
    }
    pinger.wait_exit(Duration::from_secs(20));
    let summary = pinger.stdout();
    eprintln!("second handshake after {second_at:?}; {summary}");
    let at = second_at.expect("no rekey within 130 s");
    // REKEY_AFTER_TIME is 120 s; the rekey happens at the first packet sent after it (5 per
    // second here), plus the handshake round trip and our 250 ms polling.
    assert!(
        at >= Duration::from_secs(119) && at <= Duration::from_secs(122),
        "rekey after {at:?}"
    );
    assert!(
        summary.contains(" 0% packet loss"),
        "pings were lost across the rekey: {summary}"
    );
    let last = lab.vpnd_a.peer(&lab.kb.public);
    assert_eq!(last.state, "online");
    assert!(last.last_handshake > first.last_handshake);
    assert_eq!(handshakes(lab.b()), 2, "B saw the same rekey");
}

#[test]
fn rekey_by_time_under_tcp_traffic_has_no_stall() {
    if !require_root_with(TOOLS) {
        return;
    }
    let guard = TestGuard::new("rekey_by_time_under_tcp_traffic_has_no_stall");
    // Divisor 10: REKEY_AFTER_TIME 12 s, REJECT_AFTER_TIME 18 s, REKEY_TIMEOUT 0.5 s.
    let opts = LabOptions {
        a_knows_b: true,
        ..LabOptions::default()
    }
    .env(DIVISOR, "10");
    let lab = Lab::new(&guard, &opts);
    assert!(ping_until(&lab.a, B_TUN, Duration::from_secs(10)));
    let before = handshakes(&lab.vpnd_a);
    // Headers only: about 350,000 packets.
    let wire = Capture::start_snaplen(&lab.a, &lab.link_ab.if_a, "out", "udp", 64);
    // 40 s of TCP at a fixed 100 Mbit/s (below what the tunnel carries, so every interval
    // should see the same rate), reported every 0.5 s.
    let report = iperf3(
        &lab.b,
        B_TUN,
        &lab.a,
        &["-t", "40", "-i", "0.5", "-b", "100M"],
        Duration::from_secs(70),
    );
    let after = handshakes(&lab.vpnd_a);
    let pkts = wire.stop();
    let rates: Vec<f64> = report["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .filter_map(|i| i["sum"]["bits_per_second"].as_f64())
        .collect();
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let min = sorted[0];
    let retransmits = report["end"]["sum_sent"]["retransmits"]
        .as_u64()
        .unwrap_or(0);
    eprintln!(
        "handshakes {before} -> {after}; {} intervals of 0.5 s: min {:.1} Mbit/s, median {:.1} \
         Mbit/s; {retransmits} retransmits",
        rates.len(),
        min / 1e6,
        median / 1e6
    );
    // 40 s / 12 s: three rekeys (at about 12, 24 and 36 s).
    assert!(
        (3..=4).contains(&(after - before)),
        "{} rekeys in 40 s",
        after - before
    );
    assert!(rates.len() >= 78, "{} intervals", rates.len());
    let received = report["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    assert!(received > 400_000_000, "only {received} bytes arrived");
    // Never near zero, whatever else runs on the machine.
    assert!(
        min >= 0.05 * median,
        "a 0.5 s interval dropped to {:.1} Mbit/s (median {:.1}): a stall",
        min / 1e6,
        median / 1e6
    );

    // Around each rekey, on the wire (A's transport messages, same clock as the initiations):
    // no gap in A's data longer than a blip, and the half second after the initiation
    // carries at least half the usual volume.
    let data: Vec<(f64, usize)> = pkts
        .iter()
        .filter(|p| p.wg_type() == Some(4) && p.udp_len > 32)
        .map(|p| (p.ts.as_secs_f64(), p.udp_len))
        .collect();
    let inits: Vec<f64> = pkts
        .iter()
        .filter(|p| p.wg_type() == Some(1))
        .map(|p| p.ts.as_secs_f64())
        .collect();
    assert_eq!(
        inits.len() as u64,
        after - before,
        "one initiation per rekey"
    );
    let (first, last) = (data[0].0, data[data.len() - 1].0);
    let per_half_second =
        data.iter().map(|d| d.1 as f64).sum::<f64>() / ((last - first) / 0.5).max(1.0);
    for r in &inits {
        let window: Vec<&(f64, usize)> = data
            .iter()
            .filter(|d| d.0 >= r - 0.5 && d.0 <= r + 1.0)
            .collect();
        let gap = window
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .fold(0.0, f64::max);
        let after_half: f64 = data
            .iter()
            .filter(|d| d.0 >= *r && d.0 < r + 0.5)
            .map(|d| d.1 as f64)
            .sum();
        eprintln!(
            "rekey at {:.2} s: longest gap in A's data within [-0.5, +1] s: {:.1} ms; next 0.5 s \
             carried {:.0}% of the average",
            r - first,
            gap * 1000.0,
            100.0 * after_half / per_half_second
        );
        assert!(
            gap < 0.1,
            "A's data stopped for {:.0} ms at a rekey",
            gap * 1000.0
        );
        assert!(
            after_half >= 0.5 * per_half_second,
            "the half second after a rekey carried {:.0}% of the average",
            100.0 * after_half / per_half_second
        );
    }
}

#[test]
fn rekey_by_volume_counts_and_data_arrives_intact() {
    if !require_root_with(TOOLS) {
        return;
    }
    let guard = TestGuard::new("rekey_by_volume_counts_and_data_arrives_intact");
    // rekey_after_bytes 16 MiB. Divisor 10 so the minimum interval between handshakes
    // (REKEY_TIMEOUT) is 0.5 s: at 20 MiB/s each 16 MiB takes 0.8 s, so every threshold
    // crossing can start its own handshake, and keypairs never get old enough (12 s) to
    // rekey by time.
    const MIB: u64 = 1 << 20;
    let opts = LabOptions {
        a_knows_b: true,
        rekey_after_bytes: Some(16 * MIB),
        ..LabOptions::default()
    }
    .env(DIVISOR, "10");
    let lab = Lab::new(&guard, &opts);
    assert!(ping_until(&lab.a, B_TUN, Duration::from_secs(10)));
    let before = handshakes(&lab.vpnd_a);
    let (sent, received) = e2e::tcp_transfer_paced(
        &lab.a,
        &lab.b,
        B_TUN,
        256 * MIB,
        Some(20 * MIB),
        Duration::from_secs(90),
    );
    assert_eq!(sent, received, "256 MiB arrived corrupted");
    std::thread::sleep(Duration::from_millis(300));
    let rekeys = handshakes(&lab.vpnd_a) - before;
    let peer = lab.vpnd_a.peer(&lab.kb.public);
    eprintln!("{rekeys} rekeys; A sent {} bytes", peer.tx_bytes);
    // A seals 256 MiB of TCP payload plus TCP/IP headers (MSS 1368 with timestamps: 3.8%)
    // and padding: about 266 MiB, so the 16 MiB threshold is crossed 16 times. B only sends
    // ACKs (a few MiB per keypair), far from it.
    assert!(
        (15..=17).contains(&rekeys),
        "{rekeys} rekeys for 256 MiB at 16 MiB per keypair (expected 16 +- 1)"
    );
    assert_eq!(peer.state, "online");
}

#[test]
fn keepalives_passive_after_10s_and_persistent_at_interval() {
    if !require_root_with(TOOLS) {
        return;
    }
    let guard = TestGuard::new("keepalives_passive_after_10s_and_persistent_at_interval");
    // Real timer values.
    let lab = Lab::new(
        &guard,
        &LabOptions {
            a_knows_b: true,
            ..LabOptions::default()
        },
    );
    assert!(ping_until(&lab.a, B_TUN, Duration::from_secs(10)));
    let sink = udp_sink(&lab.b, &format!("{B_TUN}:7100"));
    let wire = Capture::start(&lab.a, &lab.link_ab.if_a, "inout", "udp");
    // One-way traffic A -> B for 22 s, 5 datagrams a second; B only receives.
    let out = lab.a.exec_timeout(
        [
            e2e::cargo_binary("e2e-udp").to_string_lossy().as_ref(),
            "send",
            "--target",
            &format!("{B_TUN}:7100"),
            "--count",
            "110",
            "--interval-ms",
            "200",
        ],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{out:?}");
    std::thread::sleep(Duration::from_millis(300));
    let pkts = wire.stop();
    let first_data = pkts
        .iter()
        .find(|p| p.dst_port == Some(B_PORT) && p.wg_type() == Some(4) && p.payload.len() > 32)
        .map(|p| p.ts)
        .expect("A's data on the wire");
    let from_b = keepalives_from(&pkts, B_PORT);
    let from_a = keepalives_from(&pkts, e2e::lab::A_PORT);
    let rel: Vec<f64> = from_b
        .iter()
        .map(|t| t.saturating_sub(first_data).as_secs_f64())
        .collect();
    eprintln!("passive keepalives from B at {rel:.2?} s after A's first data; from A: {from_a:?}");
    assert_eq!(
        sink.stdout()
            .lines()
            .filter(|l| l.starts_with("seq "))
            .count(),
        110
    );
    // KEEPALIVE_TIMEOUT: 10 s after receiving data without sending anything, and again 10 s
    // later while data keeps coming.
    assert_eq!(rel.len(), 2, "passive keepalives at {rel:?}");
    assert!((9.9..=10.6).contains(&rel[0]), "first at {:.2} s", rel[0]);
    assert!((19.9..=21.2).contains(&rel[1]), "second at {:.2} s", rel[1]);
    assert!(from_a.is_empty(), "A sends data, it needs no keepalive");

    // Persistent keepalive: B keeps the path open every 2 s while nothing else is sent.
    let out = e2e::run_with_timeout(
        &mut lab
            .b()
            .vpnctl(["peer", "update", "a", "--persistent-keepalive", "2"]),
        Duration::from_secs(20),
    )
    .expect("vpnctl");
    assert!(out.status.success(), "{out:?}");
    std::thread::sleep(Duration::from_millis(2500));
    let wire = Capture::start(&lab.a, &lab.link_ab.if_a, "inout", "udp");
    std::thread::sleep(Duration::from_secs(10));
    let pkts = wire.stop();
    let ka = keepalives_from(&pkts, B_PORT);
    let gaps: Vec<f64> = ka.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    eprintln!(
        "persistent keepalives from B: {} in 10 s, gaps {gaps:.2?}",
        ka.len()
    );
    assert!(
        (4..=6).contains(&ka.len()),
        "{} keepalives in 10 s",
        ka.len()
    );
    assert!(
        gaps.iter().all(|g| (1.9..=2.2).contains(g)),
        "persistent keepalive gaps {gaps:?}"
    );
    let other = pkts
        .iter()
        .filter(|p| !(p.src_port == Some(B_PORT) && p.payload.len() == 32))
        .count();
    assert_eq!(other, 0, "only B's keepalives cross an idle tunnel");
}

#[test]
fn dead_peer_goes_offline_and_comes_back_by_itself() {
    if !require_root_with(TOOLS) {
        return;
    }
    let guard = TestGuard::new("dead_peer_goes_offline_and_comes_back_by_itself");
    // Real timer values.
    let mut lab = Lab::new(&guard, &LabOptions::both_know());
    assert!(ping_until(&lab.a, B_TUN, Duration::from_secs(10)));
    assert_eq!(lab.vpnd_a.peer(&lab.kb.public).state, "online");
    let wire = Capture::start(&lab.a, &lab.link_ab.if_a, "out", "udp");
    lab.b_mut().kill();
    let killed = now_unix();
    // A keeps sending: after KEEPALIVE + REKEY_TIMEOUT (15 s) without an answer it starts a
    // handshake; 5 s (+ up to 333 ms jitter) later, still no answer: offline, keys cleared.
    let mut pinger = lab
        .a
        .spawn(["ping", "-n", "-q", "-i", "0.5", "-W", "1", B_TUN]);
    let mut offline_at = None;
    let found = wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        let p = lab.vpnd_a.peer(&lab.kb.public);
        if p.state == "offline" {
            offline_at = Some(now_unix());
            true
        } else {
            false
        }
    });
    assert!(found, "A never marked the dead peer offline");
    let offline_at = offline_at.expect("set with found");
    let peer = lab.vpnd_a.peer(&lab.kb.public);
    eprintln!("offline: {peer:?}");
    assert_eq!(peer.state_reason.as_deref(), Some("handshake timed out"));
    // Long enough for A's next retry (every 5 s).
    std::thread::sleep(Duration::from_millis(5600));
    let pkts = wire.packets_so_far();
    let init = pkts
        .iter()
        .find(|p| p.wg_type() == Some(1) && p.ts > killed)
        .map(|p| p.ts)
        .expect("A sent an initiation");
    let delay = offline_at.saturating_sub(init).as_secs_f64();
    eprintln!(
        "initiation {:.2} s after the kill, offline {delay:.2} s after the initiation",
        init.saturating_sub(killed).as_secs_f64()
    );
    assert!(
        (14.5..=16.0).contains(&init.saturating_sub(killed).as_secs_f64()),
        "A's handshake attempt came {:.2} s after its first unanswered packet",
        init.saturating_sub(killed).as_secs_f64()
    );
    assert!(
        (4.9..=5.9).contains(&delay),
        "offline {delay:.2} s after the unanswered handshake (REKEY_TIMEOUT 5 s + jitter)"
    );
    // Keys cleared: nothing is sealed any more, only initiations leave A.
    let after: Vec<String> = pkts
        .iter()
        .filter(|p| p.ts > offline_at + Duration::from_millis(100) && p.wg_type() != Some(1))
        .map(Packet::summary)
        .collect();
    assert!(
        after.is_empty(),
        "A sent transport messages after clearing its keys:\n{}",
        after.join("\n")
    );
    assert!(
        pkts.iter()
            .any(|p| p.ts > offline_at && p.wg_type() == Some(1)),
        "A keeps trying to handshake"
    );

    // B comes back: A's next retry (every 5 s) reaches it, no operator action.
    let back = Instant::now();
    lab.start_b();
    lab.vpnd_a
        .wait_peer_state(&lab.kb.public, "online", Duration::from_secs(8));
    eprintln!("online again {:.1?} after B restarted", back.elapsed());
    let _ = wire.stop();
    let _ = pinger.signal(libc::SIGINT);
    pinger.wait_exit(Duration::from_secs(5));
    assert!(ping(&lab.a, B_TUN, 2) && ping(&lab.b, A_TUN, 2));
}

#[test]
fn laptop_pause_recovers_by_itself() {
    if !require_root_with(TOOLS) {
        return;
    }
    let guard = TestGuard::new("laptop_pause_recovers_by_itself");
    // Divisor 10: a 20 s pause stands for WireGuard's 200 s, longer than REJECT_AFTER_TIME
    // (18 s here, 180 s real) and than B's handshake attempts (9 s here, 90 s real).
    let opts = LabOptions::both_know().env(DIVISOR, "10");
    let mut lab = Lab::new(&guard, &opts);
    assert!(ping_until(&lab.a, B_TUN, Duration::from_secs(10)));
    // B has traffic for A throughout, as a server would.
    let mut pinger = lab
        .b
        .spawn(["ping", "-n", "-q", "-i", "0.2", "-W", "1", A_TUN]);
    std::thread::sleep(Duration::from_secs(1));
    lab.vpnd_a
        .proc_mut()
        .signal(libc::SIGSTOP)
        .expect("SIGSTOP");
    std::thread::sleep(Duration::from_secs(20));
    let b_state = lab.b().peer(&lab.ka.public);
    eprintln!("B after 20 s without A: {b_state:?}");
    assert_ne!(b_state.state, "online", "B did not notice A was gone");
    lab.vpnd_a
        .proc_mut()
        .signal(libc::SIGCONT)
        .expect("SIGCONT");
    let resumed = Instant::now();
    assert!(
        ping_until(&lab.a, B_TUN, Duration::from_secs(5)),
        "A -> B did not recover within 5 s of waking up"
    );
    assert!(
        ping_until(&lab.b, A_TUN, Duration::from_secs(5)),
        "B -> A did not recover"
    );
    eprintln!("tunnel back {:.1?} after SIGCONT", resumed.elapsed());
    assert_eq!(lab.vpnd_a.peer(&lab.kb.public).state, "online");
    assert_eq!(lab.b().peer(&lab.ka.public).state, "online");
    let _ = pinger.signal(libc::SIGINT);
    pinger.wait_exit(Duration::from_secs(5));
    assert!(lab.vpnd_a.proc_mut().is_running());
}
