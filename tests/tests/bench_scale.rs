//! The scaling shape of vpnd's start-up, cheaply, through `bench/scale.sh`: 1,000 peers with
//! 10,000 allowed-IP prefixes (8,000 of them routed) start in under a second and under 64 MiB,
//! with the binaries under test (debug builds in CI), and every peer is visible through both
//! `vpnctl show --json` and `wg show`. The full-size run (10,000 peers, 100,000 prefixes) is
//! `bench/scale.sh` itself; docs/performance.md has its figures.

use std::path::Path;
use std::time::Duration;

use e2e::{cargo_binary, require_root_with, run_with_timeout};

#[test]
fn a_thousand_peers_start_in_under_a_second() {
    if !require_root_with(&["jq", "wg", "nsenter", "unshare", "setpriv"]) {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (vpnd, vpnctl) = (cargo_binary("vpnd"), cargo_binary("vpnctl"));
    let result = run_with_timeout(
        &mut e2e::command([
            repo.join("bench/scale.sh").as_os_str(),
            "--peers".as_ref(),
            "1000".as_ref(),
            "--prefixes".as_ref(),
            "10000".as_ref(),
            "--max-start-ms".as_ref(),
            "1000".as_ref(),
            "--max-rss-mib".as_ref(),
            "64".as_ref(),
            "--vpnd".as_ref(),
            vpnd.as_os_str(),
            "--vpnctl".as_ref(),
            vpnctl.as_os_str(),
            "--out".as_ref(),
            out.path().as_os_str(),
        ]),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    let text = std::fs::read_to_string(out.path().join("scale.json"))
        .unwrap_or_else(|e| panic!("no scale.json ({e}):\n{stdout}\n{stderr}"));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    eprintln!("{stdout}");
    assert_eq!(json["show"]["peers"], 1000, "{json}");
    assert_eq!(json["wg_show_dump"]["peers"], 1000, "{json}");
    // Two of each peer's ten prefixes lie inside the interface's own subnets.
    assert_eq!(
        json["routes"]["ipv4"].as_u64().unwrap() + json["routes"]["ipv6"].as_u64().unwrap(),
        8000,
        "{json}"
    );
    assert!(
        result.status.success() && json["pass"] == true,
        "start-up {} ms (limit 1000), peak {} MiB (limit 64):\n{stdout}\n{stderr}",
        json["ready_ms"],
        json["rss_mib"]["peak_at_ready"]
    );
}
