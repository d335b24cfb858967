//! The plumbing of `bench/relay.sh` (issue 11): the four namespaces and the router, vpnhub
//! and two vpnds without endpoints, the nftables blocks that force the relay (over UDP, and
//! over TCP for one side whose UDP to the hub is blocked), every iperf3
//! test, the JSON report and the table, with the workspace's own binaries (`--quick`: 2 s
//! per test, 1 round). What the relay achieves is not checked here beyond "it carried
//! traffic on the path it should"; that is what the script is for.

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::{find_binary, require_root_with, run_with_timeout};

#[test]
fn relay_bench_runs_relayed_over_udp_and_tcp_and_direct() {
    if !require_root_with(&["iperf3", "jq", "nsenter", "unshare", "setpriv", "ss", "nft"]) {
        return;
    }
    let bin = |name: &str| {
        find_binary(name)
            .unwrap_or_else(|| panic!("{name} not built (cargo build --workspace --bins)"))
    };
    let (vpnd, vpnhub, vpnctl) = (bin("vpnd"), bin("vpnhub"), bin("vpnctl"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let result = run_with_timeout(
        &mut e2e::command([
            repo.join("bench/relay.sh").as_os_str(),
            "--quick".as_ref(),
            "--no-install".as_ref(),
            "--vpnd".as_ref(),
            vpnd.as_os_str(),
            "--vpnhub".as_ref(),
            vpnhub.as_os_str(),
            "--vpnctl".as_ref(),
            vpnctl.as_os_str(),
            "--out".as_ref(),
            out.path().as_os_str(),
        ]),
        Duration::from_secs(150),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "relay.sh failed ({}):\n{stdout}\n{stderr}",
        result.status
    );

    let text = std::fs::read_to_string(out.path().join("results.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rounds = json["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3, "{json:#}");
    assert!(rounds.iter().all(|r| r["ok"] == true), "{json:#}");
    for case in ["relay", "relay-tcp", "direct"] {
        let m = &json["median"][case];
        for key in [
            "tcp1_mbps",
            "udp1400_mbps",
            "udp64_kpps",
            "tcp1_vpnd_cpu_s_per_gb",
        ] {
            let v = m[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{case} {key} missing: {m}"));
            assert!(v > 0.0, "{case} {key} = {v}: {m}");
        }
    }
    // The relayed traffic went through the hub (it used CPU for it); the direct did not.
    for case in ["relay", "relay-tcp"] {
        assert!(
            json["median"][case]["tcp1_gb_per_hub_cpu_s"].as_f64() > Some(0.0),
            "{case}: {json:#}"
        );
    }
    assert!(
        json["median"]["direct"]["tcp1_gb_per_hub_cpu_s"].is_null(),
        "{json:#}"
    );
    assert!(
        json["relay_pct_of_direct"]["tcp1_mbps"].as_f64().is_some()
            && json["relay_tcp_pct_of_direct"]["tcp1_mbps"]
                .as_f64()
                .is_some(),
        "{json:#}"
    );
    assert!(stdout.contains("Gb per relay CPU-second"), "{stdout}");
    assert!(out.path().join("table.txt").exists());

    // The namespaces it names in its log are gone.
    let ours: Vec<&str> = stderr
        .split_whitespace()
        .map(|w| w.trim_end_matches(';'))
        .filter(|w| w.starts_with("vprelay-"))
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
    eprintln!("relay.sh --quick took {took:?}");
}
