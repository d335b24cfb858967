//! vpnd learns its public endpoint and NAT mapping type with STUN over the WireGuard socket
//! (issue 10), checked against coturn (the reference STUN server) behind emulated NATs:
//!
//! ```text
//!   host (vpnd, 192.168.77.2) ── router (NAT: 192.168.77.1 | 198.18.0.10) ── inet (coturn on
//!                                                                           198.18.0.1 and .2)
//! ```
//!
//! * Endpoint-independent mapping (Linux masquerade, which keeps the source port): `show`
//!   reports one public endpoint `198.18.0.10:<listen port>` and `endpoint_independent`;
//!   `vpnctl netcheck` reports both STUN servers answering with that mapping and an RTT.
//! * Endpoint-dependent mapping (`masquerade random`: a new port per destination):
//!   `endpoint_dependent` and two public endpoints.
//! * Without `stun_servers` there is no NAT check (`netcheck` says what to configure; STUN
//!   datagrams are counted `nat_off`), and a live reload that adds them starts it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::vpnd::{Vpnd, VpndConfig};
use e2e::{require_root_with, Netns, Proc, TestGuard, VethPair, WgKeys};
use serde_json::Value;

const STUN1: &str = "198.18.0.1:3478";
const STUN2: &str = "198.18.0.2:3478";
const PUBLIC_IP: &str = "198.18.0.10";
const WAIT: Duration = Duration::from_secs(15);

/// The three namespaces, the NAT rules and coturn.
struct NatLab {
    host: Netns,
    // Dropped in this order: coturn, then the links and namespaces.
    _coturn: Proc,
    _links: (VethPair, VethPair),
    _router: Netns,
    _inet: Netns,
    _dir: tempfile::TempDir,
}

impl NatLab {
    /// `masquerade` is the nftables statement for the NAT (`masquerade` or
    /// `masquerade random`).
    fn new(guard: &TestGuard, masquerade: &str) -> NatLab {
        let host = guard.netns();
        let router = guard.netns();
        let inet = guard.netns();
        let lan = VethPair::link(&host, &router, &["192.168.77.2/24"], &["192.168.77.1/24"]);
        let wan = VethPair::link(
            &router,
            &inet,
            &["198.18.0.10/24"],
            &["198.18.0.1/24", "198.18.0.2/24"],
        );
        host.ip_ok(["route", "add", "default", "via", "192.168.77.1"]);
        router.sysctl("net.ipv4.ip_forward", "1");
        let wan_if = wan.if_a.clone();
        // A home router: translate what leaves on the WAN side, let answers back in, drop
        // anything unsolicited from outside.
        let rules = format!(
            "table ip nat {{\n\
               chain postrouting {{\n\
                 type nat hook postrouting priority 100;\n\
                 oifname \"{wan_if}\" {masquerade}\n\
               }}\n\
             }}\n\
             table ip filter {{\n\
               chain forward {{\n\
                 type filter hook forward priority 0; policy drop;\n\
                 ct state established,related accept\n\
                 iifname != \"{wan_if}\" accept\n\
               }}\n\
               chain input {{\n\
                 type filter hook input priority 0; policy accept;\n\
                 iifname \"{wan_if}\" ct state new drop\n\
               }}\n\
             }}\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let rules_file = dir.path().join("nat.nft");
        std::fs::write(&rules_file, &rules).unwrap();
        let out = router.exec(["nft", "-f", rules_file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ruleset = router.exec_ok(["nft", "list", "ruleset"]);
        assert!(ruleset.contains("masquerade"), "{ruleset}");
        let mut cmd = inet.command([
            "turnserver",
            "--stun-only",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "-L",
            "198.18.0.1",
            "-L",
            "198.18.0.2",
            "-p",
            "3478",
            "--log-file",
            "stdout",
            "--simple-log",
        ]);
        cmd.arg("--pidfile")
            .arg(dir.path().join("turnserver.pid"))
            .stdin(Stdio::null());
        let coturn = Proc::spawn(&format!("{}-coturn", inet.name()), cmd).expect("coturn starts");
        // Wait until coturn listens on both addresses.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ss = inet.exec_ok(["ss", "-Hnul"]);
            if ss.contains("198.18.0.1:3478") && ss.contains("198.18.0.2:3478") {
                break;
            }
            assert!(Instant::now() < deadline, "coturn does not listen: {ss}");
            std::thread::sleep(Duration::from_millis(100));
        }
        NatLab {
            host,
            _coturn: coturn,
            _links: (lan, wan),
            _router: router,
            _inet: inet,
            _dir: dir,
        }
    }
}

fn nat(vpnd: &Vpnd) -> Value {
    let out = vpnd.vpnctl(["show", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).expect("show --json");
    v["interface"]["nat"].clone()
}

/// Waits until `ok(nat)`; returns the last `nat` seen.
fn wait_nat(vpnd: &Vpnd, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let n = nat(vpnd);
        if ok(&n) {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT:?}: {n:#}\n{}",
            vpnd.proc().logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn netcheck(vpnd: &Vpnd) -> Result<Value, String> {
    let out = vpnd.vpnctl(["netcheck", "--json"]).output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("netcheck --json"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn stun_through_an_endpoint_independent_nat() {
    if !require_root_with(&["nft", "turnserver", "ss"]) {
        return;
    }
    let guard = TestGuard::new("stun_through_an_endpoint_independent_nat");
    let lab = NatLab::new(&guard, "masquerade");
    let keys = WgKeys::generate();
    // First without STUN servers: no NAT check.
    let plain = VpndConfig::new("vpnnat0", &keys)
        .listen_port(51870)
        .addresses(&["10.70.0.1/24"]);
    let vpnd = Vpnd::start(&lab.host, &plain);
    let err = netcheck(&vpnd).unwrap_err();
    assert!(
        err.contains("no hubs or stun_servers are configured"),
        "{err}"
    );
    let n = nat(&vpnd);
    assert_eq!(n["mapping"], "unknown");
    assert_eq!(n["public_endpoints"], serde_json::json!([]));

    // A live reload adds the servers.
    let mut with_stun = plain.clone().stun_servers(&[STUN1, STUN2]);
    with_stun.socket = Some(vpnd.socket().to_path_buf());
    std::fs::write(vpnd.config_path(), with_stun.to_yaml()).unwrap();
    let out = vpnd.vpnctl(["reload"]).output().unwrap();
    assert!(
        out.status.success(),
        "reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = format!("{PUBLIC_IP}:51870");
    let n = wait_nat(&vpnd, "endpoint-independent mapping", |n| {
        n["mapping"] == "endpoint_independent"
    });
    assert_eq!(n["public_endpoints"], serde_json::json!([public]), "{n:#}");

    let check = netcheck(&vpnd).expect("netcheck");
    assert_eq!(check["mapping"], "endpoint_independent", "{check:#}");
    let servers = check["stun_servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{check:#}");
    for s in servers {
        assert_eq!(s["state"], "ok", "{check:#}");
        assert_eq!(s["mapped"], public.as_str(), "{check:#}");
        assert!(
            s["rtt_ms"].as_f64().is_some_and(|r| r < 1000.0),
            "{check:#}"
        );
    }
    let human = vpnd.vpnctl(["show"]).output().unwrap();
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains(&format!(
            "nat: endpoint-independent mapping, public {public}"
        )),
        "{human}"
    );
}

#[test]
fn stun_through_an_endpoint_dependent_nat() {
    if !require_root_with(&["nft", "turnserver", "ss"]) {
        return;
    }
    let guard = TestGuard::new("stun_through_an_endpoint_dependent_nat");
    let lab = NatLab::new(&guard, "masquerade random");
    let keys = WgKeys::generate();
    let config = VpndConfig::new("vpnnat1", &keys)
        .listen_port(51871)
        .addresses(&["10.71.0.1/24"])
        .stun_servers(&[STUN1, STUN2]);
    let vpnd = Vpnd::start(&lab.host, &config);
    let n = wait_nat(&vpnd, "endpoint-dependent mapping", |n| {
        n["mapping"] == "endpoint_dependent"
    });
    let endpoints = n["public_endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2, "one mapping per server: {n:#}");
    for e in endpoints {
        assert!(
            e.as_str().unwrap().starts_with(&format!("{PUBLIC_IP}:")),
            "{n:#}"
        );
    }
    // Nothing unsolicited is counted as junk: every STUN answer was used.
    assert_eq!(vpnd.drops("nat_unexpected"), 0);
}
