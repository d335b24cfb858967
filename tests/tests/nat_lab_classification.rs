//! The NAT lab (`e2e::nat_lab`, issue 10) emulates what it claims, checked independently:
//!
//! * For each NAT type, coturn's `turnutils_natdiscovery` (RFC 5780 behaviour discovery, run
//!   on a host behind the router against coturn on two addresses) finds the mapping and
//!   filtering classes the lab promises, with the router's WAN address as the public one; and
//!   a vpnd on that host (two `stun_servers`) reports the matching `interface.nat.mapping`.
//!   Behind "UDP blocked" neither gets any STUN answer.
//! * The layouts: two hosts behind one NAT reach each other over the LAN; hosts behind two
//!   routers behind one carrier-grade NAT are seen with the CGNAT's address; a public host is
//!   seen with its own; routers drop unsolicited inbound traffic.
//! * The mapping knobs: a 3 s mapping timeout forgets idle mappings, and `flush_mappings`
//!   forgets them at once.

use std::time::{Duration, Instant};

use e2e::nat_lab::{Behaviour, NatLab, NatType, RouterSpec, STUN1};
use e2e::vpnd::{Vpnd, VpndConfig};
use e2e::{ping, require_root_with, wait_until, TestGuard, WgKeys};
use serde_json::Value;

const TOOLS: &[&str] = &[
    "nft",
    "turnserver",
    "turnutils_natdiscovery",
    "conntrack",
    "ss",
];
const LISTEN_PORT: u16 = 51880;
const WAIT: Duration = Duration::from_secs(15);

fn nat(vpnd: &Vpnd) -> Value {
    let out = vpnd.vpnctl(["show", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).expect("show --json");
    v["interface"]["nat"].clone()
}

/// Builds router + host + coturn for `nat`, classifies it with natdiscovery and vpnd.
fn classify(name: &str, nat_type: NatType) {
    if !require_root_with(TOOLS) {
        return;
    }
    let guard = TestGuard::new(name);
    let mut lab = NatLab::new(&guard);
    let router = lab.router(nat_type);
    let host = lab.host(&router);
    lab.start_coturn();
    let stun = lab.stun_servers();
    let keys = WgKeys::generate();
    let config = VpndConfig::new("vpnlab0", &keys)
        .listen_port(LISTEN_PORT)
        .addresses(&["10.80.0.1/24"])
        .stun_servers(&[&stun[0], &stun[1]]);
    // Started first, so it has probed for the seconds natdiscovery takes.
    let vpnd = Vpnd::start(host.ns(), &config);

    let found = host.natdiscovery(STUN1);
    let context = || format!("{nat_type}:\n{}\n{}", found.output, router.ruleset());
    assert_eq!(found.mapping, nat_type.mapping(), "{}", context());
    assert_eq!(found.filtering, nat_type.filtering(), "{}", context());
    if nat_type == NatType::UdpBlocked {
        assert!(found.reflexive.is_empty(), "{}", context());
    } else {
        assert!(!found.reflexive.is_empty(), "{}", context());
        let public = format!("{}:", router.public_ip);
        for addr in &found.reflexive {
            assert!(addr.starts_with(&public), "{}", context());
        }
    }

    let want = nat_type.vpnd_mapping();
    let deadline = Instant::now() + WAIT;
    let n = loop {
        let n = nat(&vpnd);
        if n["mapping"] == want {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "{nat_type}: vpnd's mapping is not {want} within {WAIT:?}: {n:#}\n{}",
            vpnd.proc().logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let endpoints: Vec<&str> = n["public_endpoints"]
        .as_array()
        .expect("public_endpoints")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match nat_type.mapping() {
        None => assert!(endpoints.is_empty(), "{nat_type}: {n:#}"),
        Some(Behaviour::EndpointIndependent) => assert_eq!(
            endpoints,
            [format!("{}:{LISTEN_PORT}", router.public_ip)],
            "{nat_type}: {n:#}"
        ),
        Some(_) => {
            assert_eq!(endpoints.len(), 2, "one mapping per server: {n:#}");
            for e in endpoints {
                assert!(
                    e.starts_with(&format!("{}:", router.public_ip)),
                    "{nat_type}: {n:#}"
                );
            }
        }
    }
}

#[test]
fn eim_eif_classifies_as_full_cone() {
    classify("eim_eif_classifies_as_full_cone", NatType::EimEif);
}

#[test]
fn eim_adf_classifies_as_address_dependent_filtering() {
    classify(
        "eim_adf_classifies_as_address_dependent_filtering",
        NatType::EimAdf,
    );
}

#[test]
fn eim_apdf_classifies_as_port_restricted() {
    classify("eim_apdf_classifies_as_port_restricted", NatType::EimApdf);
}

#[test]
fn symmetric_classifies_as_endpoint_dependent() {
    classify(
        "symmetric_classifies_as_endpoint_dependent",
        NatType::Symmetric,
    );
}

#[test]
fn udp_blocked_gets_no_stun_answer() {
    classify("udp_blocked_gets_no_stun_answer", NatType::UdpBlocked);
}

#[test]
fn layouts_shared_nat_cgnat_public_host() {
    if !require_root_with(TOOLS) {
        return;
    }
    let guard = TestGuard::new("layouts_shared_nat_cgnat_public_host");
    let mut lab = NatLab::new(&guard);
    // Two hosts behind one NAT.
    let home = lab.router(NatType::EimApdf);
    let h1 = lab.host(&home);
    let h2 = lab.host(&home);
    // Two routers behind one carrier-grade NAT (the CGNAT full cone, so natdiscovery's filtering
    // test sees the inner routers' filtering; both are endpoint-independent mapping).
    let cgnat = lab.cgnat(NatType::EimEif);
    let inner1 = lab.router_with(RouterSpec::new(NatType::EimEif).behind(&cgnat));
    let inner2 = lab.router_with(RouterSpec::new(NatType::EimApdf).behind(&cgnat));
    let c1 = lab.host(&inner1);
    let c2 = lab.host(&inner2);
    let public = lab.public_host();
    lab.start_coturn();

    // The shared LAN: direct, and the router is the hosts' gateway.
    assert_ne!(h1.ip, h2.ip);
    assert_eq!(h1.gateway, home.lan_ip);
    assert!(ping(h1.ns(), &h2.ip.to_string(), 1), "LAN h1 -> h2");
    assert!(ping(h2.ns(), &h1.ip.to_string(), 1), "LAN h2 -> h1");
    assert_eq!(h1.public_ip, home.wan_ip);

    // Everyone reaches the public host (and so the servers' network).
    for (what, h) in [("h1", &h1), ("c1", &c1), ("c2", &c2)] {
        assert!(ping(h.ns(), &public.ip.to_string(), 1), "{what} -> public");
    }
    // Unsolicited inbound is dropped by every router, forwarded or addressed to it.
    for (what, ip) in [("home WAN", home.wan_ip), ("CGNAT WAN", cgnat.wan_ip)] {
        assert!(!ping(public.ns(), &ip.to_string(), 1), "public -> {what}");
    }
    assert!(
        !ping(c1.ns(), &inner2.wan_ip.to_string(), 1),
        "inner routers drop what comes from the carrier LAN"
    );

    // Behind the CGNAT the world sees the CGNAT's address; the inner routers' classes show.
    assert_eq!(c1.public_ip, cgnat.wan_ip);
    assert_eq!(inner1.public_ip, cgnat.wan_ip);
    for (host, nat_type) in [(&c1, NatType::EimEif), (&c2, NatType::EimApdf)] {
        let found = host.natdiscovery(STUN1);
        assert_eq!(found.mapping, nat_type.mapping(), "{}", found.output);
        assert_eq!(found.filtering, nat_type.filtering(), "{}", found.output);
        assert!(
            found
                .reflexive
                .iter()
                .all(|a| a.starts_with(&format!("{}:", cgnat.wan_ip))),
            "{}",
            found.output
        );
    }
    // A public host is seen as itself.
    let found = public.natdiscovery(STUN1);
    assert!(
        found
            .reflexive
            .iter()
            .all(|a| a.starts_with(&format!("{}:", public.ip))),
        "{}",
        found.output
    );
    assert!(!found.reflexive.is_empty(), "{}", found.output);
}

#[test]
fn mappings_time_out_and_flush() {
    if !require_root_with(TOOLS) {
        return;
    }
    let guard = TestGuard::new("mappings_time_out_and_flush");
    let mut lab = NatLab::new(&guard);
    let short =
        lab.router_with(RouterSpec::new(NatType::EimAdf).mapping_timeout(Duration::from_secs(3)));
    let normal = lab.router(NatType::EimEif);
    let h_short = lab.host(&short);
    let h_normal = lab.host(&normal);
    lab.start_coturn();
    let cone = |r: &e2e::nat_lab::Router| {
        r.ns()
            .exec_ok(["nft", "list", "map", "ip", "lab", "cone"])
            .contains("elements")
    };

    for (host, router) in [(&h_short, &short), (&h_normal, &normal)] {
        let found = host.natdiscovery(STUN1);
        assert!(!found.reflexive.is_empty(), "{}", found.output);
        assert!(router.udp_mappings() > 0, "{}", router.ruleset());
        assert!(cone(router), "a learnt cone mapping: {}", router.ruleset());
    }
    // Idle for the 3 s timeout (plus conntrack's garbage collection): gone.
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
            short.udp_mappings() == 0 && !cone(&short)
        }),
        "mappings outlive the 3 s timeout: {}\n{}",
        short.ruleset(),
        short.ns().exec_ok(["conntrack", "-L"])
    );
    // The default timeout keeps them; a flush forgets them at once.
    assert!(normal.udp_mappings() > 0, "{}", normal.ruleset());
    normal.flush_mappings();
    assert_eq!(normal.udp_mappings(), 0);
    assert!(!cone(&normal), "{}", normal.ruleset());
}
