//! Two vpnd peers behind two NATs, knowing only each other's public keys, find each other
//! through a vpnhub and punch a direct UDP path (issue 10):
//!
//! ```text
//!   host A 192.168.1.2 ── router A (NAT, 198.18.1.10) ──┐
//!                                                        inet (vpnhub on 198.18.1.1:3478)
//!   host B 192.168.2.2 ── router B (NAT, 198.18.2.10) ──┘
//! ```
//!
//! Routers translate what leaves and drop anything unsolicited from outside, as home routers do,
//! in the forward *and* the input hook: a peer's first probe reaches the router's own address,
//! and if the router accepted it locally, conntrack would keep that flow and the router's own
//! outgoing probe to the same address and port could not keep its port (a tuple clash), which
//! would turn a port-preserving NAT into an endpoint-dependent one.
//!
//! * Linux masquerade on both sides (endpoint-independent mapping, address-and-port-dependent
//!   filtering): both peers register, exchange candidates through the hub, probe each other at
//!   once, and end `punched` with the other router's public address; pings cross the tunnel.
//!   The time from start to `punched` is printed.
//! * `masquerade random` on both (endpoint-dependent mapping, "symmetric"): no path can be
//!   punched; both end on the hub's relay (`path` = `relay`, `why_relayed` =
//!   `probes_unanswered`) and pings cross the tunnel through it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::vpnd::{PeerConfig, Vpnd, VpndConfig};
use e2e::{cargo_binary, ping_until, require_root_with, Netns, Proc, TestGuard, VethPair, WgKeys};
use serde_json::Value;

const HUB: &str = "198.18.1.1:3478";
const WAIT: Duration = Duration::from_secs(20);

struct Side {
    host: Netns,
    _router: Netns,
    _links: (VethPair, VethPair),
}

struct Lab {
    a: Side,
    b: Side,
    hub_key: String,
    // Dropped first: the hub process, then the namespaces.
    _hub: Proc,
    _inet: Netns,
    _dir: tempfile::TempDir,
}

/// A NAT router between `inet` and a new host: `n` numbers the LAN (192.168.n.0/24) and the
/// WAN (198.18.n.0/24, inet at .1, the router at .10).
fn side(guard: &TestGuard, inet: &Netns, n: u8, masquerade: &str, dir: &std::path::Path) -> Side {
    let host = guard.netns();
    let router = guard.netns();
    let lan = VethPair::link(
        &host,
        &router,
        &[&format!("192.168.{n}.2/24")],
        &[&format!("192.168.{n}.1/24")],
    );
    let wan = VethPair::link(
        &router,
        inet,
        &[&format!("198.18.{n}.10/24")],
        &[&format!("198.18.{n}.1/24")],
    );
    host.ip_ok(["route", "add", "default", "via", &format!("192.168.{n}.1")]);
    router.ip_ok(["route", "add", "default", "via", &format!("198.18.{n}.1")]);
    router.sysctl("net.ipv4.ip_forward", "1");
    let wan_if = &wan.if_a;
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
    let file = dir.join(format!("router{n}.nft"));
    std::fs::write(&file, rules).unwrap();
    let out = router.exec(["nft", "-f", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Side {
        host,
        _router: router,
        _links: (lan, wan),
    }
}

impl Lab {
    fn new(guard: &TestGuard, masquerade: &str) -> Lab {
        let inet = guard.netns();
        inet.sysctl("net.ipv4.ip_forward", "1");
        let dir = tempfile::tempdir().unwrap();
        let a = side(guard, &inet, 1, masquerade, dir.path());
        let b = side(guard, &inet, 2, masquerade, dir.path());
        let hub_keys = WgKeys::generate();
        let key_file = dir.path().join("hub.key");
        std::fs::write(&key_file, format!("{}\n", hub_keys.private)).unwrap();
        let config = dir.path().join("hub.yaml");
        std::fs::write(
            &config,
            format!(
                "private_key_file: \"{}\"\nlisten: [\"198.18.1.1:3478\"]\nadmission:\n  allow_any: true\nstore: memory\n",
                key_file.display()
            ),
        )
        .unwrap();
        for f in [&key_file, &config] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut cmd = inet.command([cargo_binary("vpnhub").to_str().unwrap(), "--config"]);
        cmd.arg(&config).stdin(Stdio::null());
        let hub = Proc::spawn(&format!("{}-vpnhub", inet.name()), cmd).expect("vpnhub starts");
        for h in [&a.host, &b.host] {
            assert!(
                ping_until(h, "198.18.1.1", Duration::from_secs(5)),
                "the hub's address is unreachable from {}",
                h.name()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !inet.exec_ok(["ss", "-Hnul"]).contains(":3478") {
            assert!(Instant::now() < deadline, "vpnhub does not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Lab {
            a,
            b,
            hub_key: hub_keys.public,
            _hub: hub,
            _inet: inet,
            _dir: dir,
        }
    }
}

fn peer_json(vpnd: &Vpnd, key: &str) -> Value {
    let out = vpnd.vpnctl(["show", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).expect("show --json");
    v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["public_key"] == key)
        .cloned()
        .expect("the peer is listed")
}

/// Starts both daemons, each knowing only the other's key and the hub.
fn start_pair(lab: &Lab) -> (Vpnd, Vpnd, WgKeys, WgKeys) {
    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
    let ca = VpndConfig::new("vpnpunch0", &ka)
        .listen_port(51880)
        .addresses(&["10.80.0.1/24"])
        .hub(HUB, &lab.hub_key)
        .peer(PeerConfig::new(&kb.public, &["10.80.0.2/32"]));
    let cb = VpndConfig::new("vpnpunch1", &kb)
        .listen_port(51881)
        .addresses(&["10.80.0.2/24"])
        .hub(HUB, &lab.hub_key)
        .peer(PeerConfig::new(&ka.public, &["10.80.0.1/32"]));
    let a = Vpnd::start(&lab.a.host, &ca);
    let b = Vpnd::start(&lab.b.host, &cb);
    (a, b, ka, kb)
}

#[test]
fn two_peers_behind_masquerading_nats_punch_through() {
    if !require_root_with(&["nft", "ss", "ping"]) {
        return;
    }
    let guard = TestGuard::new("two_peers_behind_masquerading_nats_punch_through");
    let lab = Lab::new(&guard, "masquerade");
    let started = Instant::now();
    let (a, b, ka, kb) = start_pair(&lab);
    let deadline = started + WAIT;
    let (pa, pb) = loop {
        let (pa, pb) = (peer_json(&a, &kb.public), peer_json(&b, &ka.public));
        if pa["path"] == "punched" && pb["path"] == "punched" {
            break (pa, pb);
        }
        assert!(
            Instant::now() < deadline,
            "not punched within {WAIT:?}:\nA sees {pa:#}\nB sees {pb:#}\nA drops {:?}\nB drops {:?}\n{}\n{}",
            a.show().interface.drops,
            b.show().interface.drops,
            a.proc().logs(),
            b.proc().logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "punched after {:.2} s (start of both daemons included)",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(pa["path_endpoint"], "198.18.2.10:51881", "{pa:#}");
    assert_eq!(pb["path_endpoint"], "198.18.1.10:51880", "{pb:#}");
    assert!(ping_until(
        &lab.a.host,
        "10.80.0.2",
        Duration::from_secs(10)
    ));
    assert!(ping_until(
        &lab.b.host,
        "10.80.0.1",
        Duration::from_secs(10)
    ));
    let nat = {
        let out = a.vpnctl(["show", "--json"]).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["interface"]["nat"].clone()
    };
    assert_eq!(nat["hubs"][0]["state"], "connected", "{nat:#}");
    assert_eq!(
        nat["public_endpoints"],
        serde_json::json!(["198.18.1.10:51880"]),
        "{nat:#}"
    );
}

#[test]
fn symmetric_nats_on_both_sides_cannot_punch_and_relay() {
    if !require_root_with(&["nft", "ss", "ping"]) {
        return;
    }
    let guard = TestGuard::new("symmetric_nats_on_both_sides_cannot_punch");
    let lab = Lab::new(&guard, "masquerade random");
    let (a, b, ka, kb) = start_pair(&lab);
    // Registration and a few probe rounds, then the verdict: relayed through the hub, and why.
    let deadline = Instant::now() + WAIT;
    loop {
        let (pa, pb) = (peer_json(&a, &kb.public), peer_json(&b, &ka.public));
        assert_ne!(pa["path"], "punched", "{pa:#}");
        if pa["why_not_direct"] == "probes_unanswered"
            && pb["why_not_direct"] == "probes_unanswered"
            && pa["path"] == "relay"
            && pb["path"] == "relay"
        {
            for p in [&pa, &pb] {
                assert_eq!(p["path_endpoint"], HUB, "{p:#}");
                assert_eq!(p["relay"], HUB, "{p:#}");
                assert_eq!(p["relay_transport"], "udp", "{p:#}");
                assert_eq!(p["why_relayed"], "probes_unanswered", "{p:#}");
                let next = p["next_direct_attempt"].as_f64().unwrap_or(-1.0);
                assert!((0.0..=60.0).contains(&next), "{p:#}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no verdict within {WAIT:?}:\nA sees {pa:#}\nB sees {pb:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The tunnel works through the relay, both ways.
    assert!(
        ping_until(&lab.a.host, "10.80.0.2", Duration::from_secs(10)),
        "A to B through the relay:\n{}\n{}",
        a.proc().logs(),
        b.proc().logs()
    );
    assert!(ping_until(
        &lab.b.host,
        "10.80.0.1",
        Duration::from_secs(10)
    ));
    let human = a.vpnctl(["show"]).output().unwrap();
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains(&format!(
            "relay via {HUB} (udp, probes unanswered, direct tried again in"
        )),
        "human show names the relay:\n{human}"
    );
}
