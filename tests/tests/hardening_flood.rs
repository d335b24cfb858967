//! A 60-second flood against a real vpnd (issue "Hardening", bullets 1 and 2): memory, CPU,
//! throughput of an established tunnel, and real peers connecting through the cookie defence.
//!
//! The attacker H floods vpnd A from 65,535 IPv4 addresses, random IPv6 /64s and 8 source
//! ports with a mix of handshake initiations with a valid mac1 for unknown keys (they push A
//! under load, and are then answered with cookie replies), junk, and initiations with a valid
//! mac2 from 4,096 sources that fetched a cookie (they reach the rate limiter and, within its
//! budget, the DH). Meanwhile:
//!
//! * vpnd B is killed and restarted: its new handshake must complete within 10 s (it gets a
//!   cookie reply, and retries with mac2 after WireGuard's 5 s retransmit);
//! * a wireguard-go peer C, started during the flood, must connect within 10 s too;
//! * a TCP stream B -> A (iperf3) keeps at least half the throughput it had before the flood;
//! * A's RSS stays below a fixed bound and does not grow after warm-up, and its CPU use over
//!   the flood is bounded.
//!
//! This is the one test in its binary, so nothing else competes for the CPU while it measures.

use std::time::{Duration, Instant};

use e2e::lab::{
    drop_deltas, field, fields, iperf3, iperf3_received_bps, Lab, LabOptions, A_ON_H_LINK, A_PORT,
    A_TUN, H_SOURCES4, H_SOURCES6,
};
use e2e::vpnd::{wg_setconf_text, PeerConfig, ProcUsage};
use e2e::{ping_until, require_wireguard_go, wait_until, TestGuard, WgKeys, WireguardGo};

/// iperf3 options of both throughput measurements.
const IPERF_ARGS: &[&str] = &["-t", "8", "-O", "2"];

/// Flood rate, datagrams per second (`HARDEN_FLOOD_RATE` overrides it).
const FLOOD_RATE: u32 = 20_000;
const FLOOD_SECS: u64 = 60;
/// RSS bounds for vpnd A (a debug build) during the flood. Measured: 15.5 MiB before, at most
/// 16.3 MiB during, growth after warm-up under 0.6 MiB (2 cores, 20,000 and 50,000 datagrams/s).
const RSS_LIMIT_KIB: u64 = 48 * 1024;
const RSS_GROWTH_LIMIT_KIB: u64 = 8 * 1024;
/// CPU bound for vpnd A over the flood, in cores (of 2).
const CPU_LIMIT_CORES: f64 = 1.5;

#[test]
fn flood_keeps_memory_cpu_and_tunnel_bounded() {
    if !require_wireguard_go() || !e2e::require_root_with(&["iperf3", "tcpdump"]) {
        return;
    }
    let guard = TestGuard::new("flood_keeps_memory_cpu_and_tunnel_bounded");
    let mut lab = Lab::new(&guard, &LabOptions::both_know());
    assert!(ping_until(&lab.a, "10.10.0.2", Duration::from_secs(10)));
    assert!(ping_until(&lab.b, A_TUN, Duration::from_secs(5)));

    // Peer C: wireguard-go in the attacker's namespace, on H's own address.
    let kc = WgKeys::generate();
    let out = e2e::run_with_timeout(
        &mut lab.vpnd_a.vpnctl([
            "peer",
            "add",
            &kc.public,
            "--allowed-ips",
            "10.10.0.3/32",
            "--name",
            "c",
        ]),
        Duration::from_secs(20),
    )
    .expect("vpnctl peer add");
    assert!(out.status.success(), "{out:?}");

    // Unflooded throughput, B -> A (the direction whose packets share A's socket with the
    // flood).
    // 8 s after 2 s left out (slow start), both times: a 5 s run varied by ±25 % here.
    let calm = iperf3(&lab.a, A_TUN, &lab.b, IPERF_ARGS, Duration::from_secs(30));
    let calm_bps = iperf3_received_bps(&calm);
    eprintln!("unflooded B -> A: {:.0} Mbit/s", calm_bps / 1e6);

    let rate = std::env::var("HARDEN_FLOOD_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FLOOD_RATE);
    let drops_before = lab.vpnd_a.stats().drops;
    let usage_start = lab.vpnd_a.usage();
    let flood_start = Instant::now();
    let mut flood = lab.spawn_hostile(&[
        "flood",
        "--target",
        &lab.a_target(),
        "--target6",
        &lab.a_target6(),
        "--responder",
        &lab.ka.public,
        "--src4",
        H_SOURCES4,
        "--src6",
        H_SOURCES6,
        "--duration",
        &FLOOD_SECS.to_string(),
        "--rate",
        &rate.to_string(),
        "--cookie-sources",
        "4096",
        "--mix",
        "init=60,junk=30,mac2=10",
    ]);
    let pid_a = lab.vpnd_a.proc().pid();
    let sampler = std::thread::spawn(move || {
        let mut samples = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(FLOOD_SECS) {
            if let Some(u) = ProcUsage::of(pid_a) {
                samples.push((start.elapsed(), u));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        samples
    });

    // t ≈ 5 s: under load by now. Restart B and start C.
    std::thread::sleep(Duration::from_secs(5));
    let stats = lab.vpnd_a.stats();
    eprintln!("A at 5 s: {stats:?}");
    lab.b_mut().kill();
    lab.vpnd_b = None;
    lab.start_b();
    let b_started = Instant::now();
    let wg = WireguardGo::start(&lab.h, "wg0");
    wg.wg_setconf(&wg_setconf_text(
        &kc,
        51822,
        &[PeerConfig::new(&lab.ka.public, &["10.10.0.1/32"])
            .endpoint(&format!("{A_ON_H_LINK}:{A_PORT}"))
            .persistent_keepalive(25)],
    ));
    wg.configure_ip(&["10.10.0.3/24"], 1420);
    let c_started = Instant::now();
    // B has no reason to send until it has traffic: a ping makes it initiate.
    let b_ok = ping_until(&lab.b, A_TUN, Duration::from_secs(10));
    let b_took = b_started.elapsed();
    let c_ok = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        wg.dump()
            .peer(&lab.ka.public)
            .is_some_and(|p| p.latest_handshake > 0)
    });
    let c_took = c_started.elapsed();
    eprintln!("during the flood: B reconnected after {b_took:.1?} ({b_ok}), C after {c_took:.1?} ({c_ok})");
    assert!(
        b_ok,
        "vpnd B could not reconnect within 10 s under the flood"
    );
    assert!(
        c_ok,
        "wireguard-go C could not connect within 10 s under the flood"
    );
    assert!(
        e2e::ping(&lab.h, A_TUN, 2),
        "C's tunnel does not carry traffic"
    );

    // Throughput under the flood.
    let loaded = iperf3(&lab.a, A_TUN, &lab.b, IPERF_ARGS, Duration::from_secs(30));
    let loaded_bps = iperf3_received_bps(&loaded);
    eprintln!(
        "flooded B -> A: {:.0} Mbit/s ({:.0}% of unflooded)",
        loaded_bps / 1e6,
        100.0 * loaded_bps / calm_bps
    );

    let samples = sampler.join().expect("sampler");
    let flood_out = flood.wait_exit(Duration::from_secs(FLOOD_SECS + 30));
    let usage_end = lab.vpnd_a.usage();
    let wall = flood_start.elapsed().as_secs_f64();
    let f = fields(flood.stdout().as_bytes());
    eprintln!("flood: {f:?} ({flood_out:?})\n{}", flood.stderr());
    let stats = lab.vpnd_a.stats();
    let d = drop_deltas(&drops_before, &stats.drops);
    eprintln!("A's drops during the flood: {d:?}");
    let cpu = usage_end.cpu_seconds_since(&usage_start) / wall;
    let max_rss = samples.iter().map(|(_, u)| u.rss_kib).max().unwrap_or(0);
    let warm = samples
        .iter()
        .find(|(t, _)| *t >= Duration::from_secs(10))
        .map_or(0, |(_, u)| u.rss_kib);
    eprintln!(
        "A: RSS at start {} KiB, after warm-up (10 s) {warm} KiB, max {max_rss} KiB, VmHWM {} KiB; \
         CPU {cpu:.2} cores over {wall:.0} s",
        usage_start.rss_kib, usage_end.hwm_kib
    );
    for (t, u) in samples.iter().step_by(10) {
        eprintln!("  {:>5.1}s rss {} KiB", t.as_secs_f64(), u.rss_kib);
    }

    assert!(flood_out.is_some_and(|s| s.success()), "flood tool failed");
    assert!(field(&f, "cookie_replies") > 0, "A never went under load");
    assert!(field(&f, "valid_cookies") > 0, "no cookie reply decrypted");
    assert!(d.get("cookie_sent").copied().unwrap_or(0) > 0);
    assert!(lab.vpnd_a.proc_mut().is_running(), "vpnd A died");
    assert!(!lab.vpnd_a.proc().logs().contains("panic"));
    assert!(max_rss < RSS_LIMIT_KIB, "RSS {max_rss} KiB");
    assert!(
        max_rss.saturating_sub(warm) < RSS_GROWTH_LIMIT_KIB,
        "RSS grew from {warm} to {max_rss} KiB after warm-up"
    );
    assert!(cpu < CPU_LIMIT_CORES, "vpnd A used {cpu:.2} cores");
    assert!(
        loaded_bps >= 0.5 * calm_bps,
        "throughput under flood {:.0} Mbit/s < half of {:.0} Mbit/s",
        loaded_bps / 1e6,
        calm_bps / 1e6
    );
    assert!(ping_until(&lab.a, "10.10.0.2", Duration::from_secs(5)));
}
