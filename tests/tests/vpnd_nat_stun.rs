//! vpnd learns its public endpoint and NAT mapping type with STUN over the WireGuard socket
//! (issue 10), checked against coturn (the reference STUN server) behind emulated NATs:
//!
//! ```text
//!   host (vpnd, 192.168.1.10) ── router (NAT: 192.168.1.1 | 198.18.1.2) ── inet (coturn on
//!                                                                         198.18.0.1 and .2)
//! ```
//!
//! (the NAT lab, `e2e::nat_lab`).
//!
//! * Endpoint-independent mapping (Linux masquerade, which keeps the source port): `show`
//!   reports one public endpoint `198.18.1.2:<listen port>` and `endpoint_independent`;
//!   `vpnctl netcheck` reports both STUN servers answering with that mapping and an RTT.
//! * Endpoint-dependent mapping (`masquerade random`: a new port per destination):
//!   `endpoint_dependent` and two public endpoints.
//! * Without `stun_servers` there is no NAT check (`netcheck` says what to configure; STUN
//!   datagrams are counted `nat_off`), and a live reload that adds them starts it.

use std::time::{Duration, Instant};

use e2e::nat_lab::{Host, NatLab, NatType};
use e2e::vpnd::{Vpnd, VpndConfig};
use e2e::{require_root_with, TestGuard, WgKeys};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

/// A host behind a router of type `nat` (from the shared NAT lab), with coturn running.
fn nat_lab<'g>(guard: &'g TestGuard, nat: NatType) -> (NatLab<'g>, Host) {
    let mut lab = NatLab::new(guard);
    let router = lab.router(nat);
    let host = lab.host(&router);
    lab.start_coturn();
    (lab, host)
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
    let (lab, host) = nat_lab(&guard, NatType::EimApdf);
    let [stun1, stun2] = lab.stun_servers();
    let keys = WgKeys::generate();
    // First without STUN servers: no NAT check.
    let plain = VpndConfig::new("vpnnat0", &keys)
        .listen_port(51870)
        .addresses(&["10.70.0.1/24"]);
    let vpnd = Vpnd::start(host.ns(), &plain);
    let err = netcheck(&vpnd).unwrap_err();
    assert!(
        err.contains("no hubs or stun_servers are configured"),
        "{err}"
    );
    let n = nat(&vpnd);
    assert_eq!(n["mapping"], "unknown");
    assert_eq!(n["public_endpoints"], serde_json::json!([]));

    // A live reload adds the servers.
    let mut with_stun = plain.clone().stun_servers(&[&stun1, &stun2]);
    with_stun.socket = Some(vpnd.socket().to_path_buf());
    std::fs::write(vpnd.config_path(), with_stun.to_yaml()).unwrap();
    let out = vpnd.vpnctl(["reload"]).output().unwrap();
    assert!(
        out.status.success(),
        "reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = format!("{}:51870", host.public_ip);
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
    let (lab, host) = nat_lab(&guard, NatType::Symmetric);
    let [stun1, stun2] = lab.stun_servers();
    let keys = WgKeys::generate();
    let config = VpndConfig::new("vpnnat1", &keys)
        .listen_port(51871)
        .addresses(&["10.71.0.1/24"])
        .stun_servers(&[&stun1, &stun2]);
    let vpnd = Vpnd::start(host.ns(), &config);
    let n = wait_nat(&vpnd, "endpoint-dependent mapping", |n| {
        n["mapping"] == "endpoint_dependent"
    });
    let endpoints = n["public_endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2, "one mapping per server: {n:#}");
    for e in endpoints {
        assert!(
            e.as_str()
                .unwrap()
                .starts_with(&format!("{}:", host.public_ip)),
            "{n:#}"
        );
    }
    // Nothing unsolicited is counted as junk: every STUN answer was used.
    assert_eq!(vpnd.drops("nat_unexpected"), 0);
}

/// vpnhub's STUN answers and coturn's agree: behind an endpoint-independent NAT, vpnd asking
/// both (the hub as a STUN server, coturn on another address) sees one mapped address from
/// each, the same one, and calls the mapping endpoint-independent.
#[test]
fn vpnhub_and_coturn_report_the_same_mapped_address() {
    if !require_root_with(&["nft", "turnserver", "ss"]) {
        return;
    }
    let guard = TestGuard::new("vpnhub_and_coturn_report_the_same_mapped_address");
    let (mut lab, host) = nat_lab(&guard, NatType::EimApdf);
    let (hub, _hub_key) = lab.start_hub();
    let [coturn, _] = lab.stun_servers();
    let keys = WgKeys::generate();
    let config = VpndConfig::new("vpnnat2", &keys)
        .listen_port(51872)
        .addresses(&["10.72.0.1/24"])
        .stun_servers(&[&coturn, &hub]);
    let vpnd = Vpnd::start(host.ns(), &config);
    let n = wait_nat(&vpnd, "both servers answered", |n| {
        n["stun_servers"]
            .as_array()
            .is_some_and(|s| s.len() == 2 && s.iter().all(|x| x["state"] == "ok"))
    });
    let servers = n["stun_servers"].as_array().unwrap();
    let expected = format!("{}:51872", host.public_ip);
    for s in servers {
        assert_eq!(s["mapped"], expected.as_str(), "{n:#}");
    }
    assert_eq!(n["mapping"], "endpoint_independent", "{n:#}");
    assert_eq!(
        n["public_endpoints"],
        serde_json::json!([expected]),
        "{n:#}"
    );
}
