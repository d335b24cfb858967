//! The plumbing of `bench/tunnel.sh`: namespaces, the veth link, every iperf3 and ping test,
//! the JSON report, the table and the chart, run over the bare veth only (`--quick --impls
//! veth`: 2 s per test, nothing to build). What the tunnels achieve is not checked here; that
//! is what the script is for.

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::{find_in_path, require_root_with, run_with_timeout};

#[test]
fn tunnel_bench_runs_over_the_bare_veth() {
    if !require_root_with(&["iperf3", "jq", "nsenter", "unshare", "setpriv", "ss"]) {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let result = run_with_timeout(
        &mut e2e::command([
            repo.join("bench/tunnel.sh").as_os_str(),
            "--quick".as_ref(),
            "--impls".as_ref(),
            "veth".as_ref(),
            "--no-install".as_ref(),
            "--out".as_ref(),
            out.path().as_os_str(),
        ]),
        Duration::from_secs(90),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "tunnel.sh failed ({}):\n{stdout}\n{stderr}",
        result.status
    );

    let text = std::fs::read_to_string(out.path().join("results.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let veth = &json["median"]["veth"];
    let positive = |key: &str| {
        let v = veth[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {veth}"));
        assert!(v > 0.0, "{key} = {v}: {veth}");
    };
    for key in [
        "tcp1_mbps",
        "tcp4_mbps",
        "udp300_mbps",
        "udp1g_mbps",
        "udp64_kpps",
        "ping_idle_ms",
        "ping_load_ms",
    ] {
        positive(key);
    }
    // No daemon over the bare veth: no CPU or memory figures.
    assert!(veth["tcp1_cpu_s_per_gb"].is_null() && veth["rss_peak_mib"].is_null());
    assert_eq!(json["rounds"].as_array().unwrap().len(), 1);
    assert_eq!(json["rounds"][0]["ok"], true);
    assert_eq!(json["options"]["duration_s"], 2);
    assert!(stdout.contains("TCP, 1 stream (Mbit/s)"), "{stdout}");
    assert!(out.path().join("table.txt").exists());
    if find_in_path("gnuplot").is_some() {
        let png = std::fs::read(out.path().join("chart.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "chart.png is not a PNG");
    }
    // The namespaces it names in its log are gone.
    let ours: Vec<&str> = stderr
        .split_whitespace()
        .map(|w| w.trim_end_matches(';'))
        .filter(|w| w.starts_with("vpbench-"))
        .collect();
    assert!(!ours.is_empty(), "the log names no namespace:\n{stderr}");
    let listed = run_with_timeout(
        &mut e2e::command(["ip", "netns", "list"]),
        Duration::from_secs(10),
    )
    .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for ns in ours {
        assert!(!listed.contains(ns), "{ns} left behind: {listed}");
    }
    eprintln!("tunnel.sh --quick --impls veth took {took:?}");
}
