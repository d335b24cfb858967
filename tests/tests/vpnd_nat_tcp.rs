//! The hub over TCP where UDP to it is blocked (issue 10: "Signaling works over UDP and falls
//! back to TCP when UDP is blocked"), on the shared NAT lab (`e2e::nat_lab`).
//!
//! * A host whose router drops all UDP: vpnd registers with the hub over TCP (`transport` =
//!   `tcp`, `connected`) and signals through it; no UDP path can exist, so the pair is
//!   relayed by the hub (issue 11: "UDP blocked on one side: `relay` over TCP"): the blocked
//!   side shows `path` = `relay` with `relay_transport` = `tcp`, the other side the same relay
//!   over `udp`; pings and a TCP stream pass.
//! * A host whose router drops UDP to the hub only: registration and signaling over TCP, the
//!   candidates learnt from other STUN servers announced, and the pair punches a direct UDP
//!   path and pings. When the block is lifted, vpnd goes back to UDP on its own and the
//!   tunnel carries on.
//! * A host whose router blocks UDP to the hub and refuses TCP to it: the hub shows `failed`
//!   over `tcp` with the connect error, and the peer's `why_not_direct` is `hub_unreachable`.

use std::time::{Duration, Instant};

use e2e::nat_lab::{Host, NatLab, NatType, Router, HUB_IP, STUN_PORT};
use e2e::vpnd::{peer_in, PeerConfig, Vpnd, VpndConfig};
use e2e::{ping_until, require_root_with, tcp_transfer_timeout, TestGuard, WgKeys};
use serde_json::Value;

const PORT: u16 = 51820;
/// UDP unanswered for 4 s moves to TCP; connecting, STUN over TCP and registering take a few
/// round trips more.
const TCP_REGISTERED: Duration = Duration::from_secs(15);
/// Registration, a probe round and its repeat.
const PUNCHED: Duration = Duration::from_secs(20);
/// Back to UDP: the hub's UDP answers come back with STUN's next retransmission or re-check
/// (≤ 26 s), and vpnd stays on TCP at least 30 s after moving there.
const BACK_TO_UDP: Duration = Duration::from_secs(75);
const POLL: Duration = Duration::from_millis(100);

/// Polls `vpnd`'s `show --json` until `ok` holds or `within` passes; the last view either way.
fn wait_show(vpnd: &Vpnd, within: Duration, ok: impl Fn(&Value) -> bool) -> (bool, Value) {
    let deadline = Instant::now() + within;
    loop {
        let v = vpnd.show_json();
        if ok(&v) {
            return (true, v);
        }
        if Instant::now() >= deadline {
            return (false, v);
        }
        std::thread::sleep(POLL);
    }
}

fn hub_is(v: &Value, state: &str, transport: &str) -> bool {
    let h = &v["interface"]["nat"]["hubs"][0];
    h["state"] == state && h["transport"] == transport
}

struct Pair {
    a: Vpnd,
    b: Vpnd,
    ka: WgKeys,
    kb: WgKeys,
}

impl Pair {
    fn start(a: &Host, b: &Host, hub: &(String, String), stun: &[&str]) -> Pair {
        let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
        let config = |me: &WgKeys, ip: &str, other: &WgKeys, other_ip: &str| {
            VpndConfig::new("vpntcp0", me)
                .listen_port(PORT)
                .addresses(&[&format!("{ip}/24")])
                .hub(&hub.0, &hub.1)
                .stun_servers(stun)
                .peer(PeerConfig::new(&other.public, &[&format!("{other_ip}/32")]))
        };
        let va = Vpnd::start(a.ns(), &config(&ka, "10.82.0.1", &kb, "10.82.0.2"));
        let vb = Vpnd::start(b.ns(), &config(&kb, "10.82.0.2", &ka, "10.82.0.1"));
        Pair {
            a: va,
            b: vb,
            ka,
            kb,
        }
    }

    fn diagnostics(&self) -> String {
        format!(
            "A: {:#}\nB: {:#}\nA logs:\n{}\nB logs:\n{}",
            self.a.show_json(),
            self.b.show_json(),
            self.a.proc().logs(),
            self.b.proc().logs()
        )
    }
}

#[test]
fn udp_blocked_registers_signals_and_relays_over_tcp() {
    if !require_root_with(&["nft", "conntrack"]) {
        return;
    }
    let guard = TestGuard::new("nat-tcp");
    let mut lab = NatLab::new(&guard);
    let blocked = lab.router(NatType::UdpBlocked);
    let open = lab.router(NatType::EimEif);
    let (ha, hb) = (lab.host(&blocked), lab.host(&open));
    let hub = lab.start_hub();
    let pair = Pair::start(&ha, &hb, &hub, &[]);

    let (ok, a) = wait_show(&pair.a, TCP_REGISTERED, |v| hub_is(v, "connected", "tcp"));
    assert!(ok, "A registers over TCP\n{}", pair.diagnostics());
    assert!(
        hub_is(&pair.b.show_json(), "connected", "udp"),
        "{}",
        pair.diagnostics()
    );
    assert!(
        a["interface"]["nat"]["hubs"][0]["rtt_ms"]
            .as_f64()
            .is_some(),
        "{a:#}"
    );

    // Signaling works and, since no UDP gets through, the hub relays: over TCP for A, over
    // UDP for B.
    let kb = pair.kb.public.clone();
    let ka = pair.ka.public.clone();
    let relayed = |v: &Value, key: &str, transport: &str, why: &str| {
        let p = peer_in(v, key);
        p["path"] == "relay" && p["relay_transport"] == transport && p["why_relayed"] == why
    };
    let (ok, a) = wait_show(&pair.a, PUNCHED, |v| relayed(v, &kb, "tcp", "udp_blocked"));
    assert!(ok, "A relays over TCP\n{}", pair.diagnostics());
    // B cannot tell A's network blocks UDP: its probes go unanswered.
    let (ok, _) = wait_show(&pair.b, PUNCHED, |v| {
        relayed(v, &ka, "udp", "probes_unanswered")
    });
    assert!(ok, "B relays over UDP\n{}", pair.diagnostics());
    let p = peer_in(&a, &kb);
    assert_eq!(p["relay"], format!("{HUB_IP}:{STUN_PORT}"), "{p:#}");
    assert!(p["next_direct_attempt"].as_f64().is_some(), "{p:#}");

    assert!(
        ping_until(ha.ns(), "10.82.0.2", Duration::from_secs(10)),
        "A pings B through the TCP relay\n{}",
        pair.diagnostics()
    );
    assert!(
        ping_until(hb.ns(), "10.82.0.1", Duration::from_secs(10)),
        "B pings A\n{}",
        pair.diagnostics()
    );
    // A TCP stream inside the tunnel, through TCP to the hub on one side: it arrives intact.
    let (sent, received) = tcp_transfer_timeout(
        ha.ns(),
        hb.ns(),
        "10.82.0.2",
        2 << 20,
        Duration::from_secs(60),
    );
    assert_eq!(
        sent, received,
        "the stream through the TCP relay arrives intact"
    );

    let human = pair.a.vpnctl(["show"]).output().expect("vpnctl runs");
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains("relay via") && human.contains("(tcp, udp blocked"),
        "human show names the relay and its transport:\n{human}"
    );
}

/// Drops UDP from `router`'s LAN to the hub, leaving all other UDP alone.
fn block_udp_to_hub(router: &Router) {
    let ns = router.ns();
    ns.exec_ok(["nft", "add", "table", "ip", "hubblock"]);
    ns.exec_ok([
        "nft",
        "add",
        "chain",
        "ip",
        "hubblock",
        "forward",
        "{ type filter hook forward priority filter - 10; policy accept; }",
    ]);
    let (ip, port) = (HUB_IP.to_string(), STUN_PORT.to_string());
    ns.exec_ok([
        "nft", "add", "rule", "ip", "hubblock", "forward", "ip", "daddr", &ip, "udp", "dport",
        &port, "drop",
    ]);
}

#[test]
fn udp_to_the_hub_blocked_still_punches_and_returns_to_udp() {
    if !require_root_with(&["nft", "conntrack", "turnserver"]) {
        return;
    }
    let guard = TestGuard::new("nat-tcp");
    let mut lab = NatLab::new(&guard);
    let ra = lab.router(NatType::EimApdf);
    let rb = lab.router(NatType::EimEif);
    block_udp_to_hub(&ra);
    let (ha, hb) = (lab.host(&ra), lab.host(&rb));
    lab.start_coturn();
    let hub = lab.start_hub();
    let stun = lab.stun_servers();
    let pair = Pair::start(&ha, &hb, &hub, &[&stun[0], &stun[1]]);

    let started = Instant::now();
    let (ok, _) = wait_show(&pair.a, TCP_REGISTERED, |v| hub_is(v, "connected", "tcp"));
    assert!(ok, "A registers over TCP\n{}", pair.diagnostics());
    let kb = pair.kb.public.clone();
    let ka = pair.ka.public.clone();
    let (ok, _) = wait_show(&pair.a, PUNCHED, |v| peer_in(v, &kb)["path"] == "punched");
    assert!(ok, "A punched to B\n{}", pair.diagnostics());
    let (ok, _) = wait_show(&pair.b, PUNCHED, |v| peer_in(v, &ka)["path"] == "punched");
    assert!(ok, "B punched to A\n{}", pair.diagnostics());
    println!(
        "UDP to the hub blocked: registered over TCP and punched {:.2} s after start",
        started.elapsed().as_secs_f64()
    );
    assert!(
        ping_until(ha.ns(), "10.82.0.2", Duration::from_secs(5))
            && ping_until(hb.ns(), "10.82.0.1", Duration::from_secs(5)),
        "pings over the punched path\n{}",
        pair.diagnostics()
    );

    ra.ns()
        .exec_ok(["nft", "delete", "table", "ip", "hubblock"]);
    let lifted = Instant::now();
    let (ok, _) = wait_show(&pair.a, BACK_TO_UDP, |v| hub_is(v, "connected", "udp"));
    assert!(ok, "A back on UDP\n{}", pair.diagnostics());
    println!(
        "block lifted: registered over UDP again after {:.1} s",
        lifted.elapsed().as_secs_f64()
    );
    assert!(
        peer_in(&pair.a.show_json(), &kb)["path"] == "punched",
        "the path is untouched by the hub's transport\n{}",
        pair.diagnostics()
    );
    assert!(
        ping_until(ha.ns(), "10.82.0.2", Duration::from_secs(5)),
        "{}",
        pair.diagnostics()
    );
}

/// [`block_udp_to_hub`], and TCP to the hub's port refused at once, as a firewall that
/// rejects does.
fn block_udp_and_tcp_to_hub(router: &Router) {
    block_udp_to_hub(router);
    let (ip, port) = (HUB_IP.to_string(), STUN_PORT.to_string());
    router.ns().exec_ok([
        "nft", "add", "rule", "ip", "hubblock", "forward", "ip", "daddr", &ip, "tcp", "dport",
        &port, "reject", "with", "tcp", "reset",
    ]);
}

#[test]
fn hub_unreachable_on_both_transports_is_reported() {
    if !require_root_with(&["nft", "conntrack"]) {
        return;
    }
    let guard = TestGuard::new("nat-tcp-none");
    let mut lab = NatLab::new(&guard);
    let ra = lab.router(NatType::EimApdf);
    let rb = lab.router(NatType::EimEif);
    block_udp_and_tcp_to_hub(&ra);
    let (ha, hb) = (lab.host(&ra), lab.host(&rb));
    let hub = lab.start_hub();
    let pair = Pair::start(&ha, &hb, &hub, &[]);
    let kb = pair.kb.public.clone();
    // 4 s on UDP, then three refused connections 1 and 2 s apart.
    let (ok, v) = wait_show(&pair.a, TCP_REGISTERED, |v| {
        hub_is(v, "failed", "tcp") && peer_in(v, &kb)["why_not_direct"] == "hub_unreachable"
    });
    assert!(ok, "A reports the hub unreachable\n{}", pair.diagnostics());
    let error = v["interface"]["nat"]["hubs"][0]["error"]
        .as_str()
        .unwrap_or("");
    assert!(error.contains("tcp connect"), "the reason is named: {v:#}");
}

/// The TLS port of the hub in the TLS test: HTTPS's, as a restrictive firewall allows.
const TLS_PORT: u16 = 443;

#[test]
fn only_https_out_relays_over_tls() {
    if !require_root_with(&["nft", "conntrack", "openssl"]) {
        return;
    }
    let guard = TestGuard::new("nat-tls");
    let mut lab = NatLab::new(&guard);
    // A's network: no UDP at all, and TCP to the hub's own port refused; 443 passes.
    let ra = lab.router(NatType::UdpBlocked);
    let rb = lab.router(NatType::EimEif);
    block_udp_and_tcp_to_hub(&ra);
    let (ha, hb) = (lab.host(&ra), lab.host(&rb));
    let (hub, pki) = lab.start_tls_hub(TLS_PORT);
    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
    let config = |me: &WgKeys, ip: &str, other: &WgKeys, other_ip: &str| {
        VpndConfig::new("vpntls0", me)
            .listen_port(PORT)
            .addresses(&[&format!("{ip}/24")])
            .hub(&hub.address, &hub.public_key)
            .peer(PeerConfig::new(&other.public, &[&format!("{other_ip}/32")]))
    };
    let pair = Pair {
        a: Vpnd::start(
            ha.ns(),
            &config(&ka, "10.82.0.1", &kb, "10.82.0.2").hub_tls(TLS_PORT, &pki.ca),
        ),
        b: Vpnd::start(hb.ns(), &config(&kb, "10.82.0.2", &ka, "10.82.0.1")),
        ka,
        kb,
    };
    let (ok, v) = wait_show(&pair.a, TCP_REGISTERED, |v| hub_is(v, "connected", "tcp"));
    assert!(ok, "A registers over TLS\n{}", pair.diagnostics());
    assert_eq!(v["interface"]["nat"]["hubs"][0]["tls"], true, "{v:#}");
    let kb = pair.kb.public.clone();
    let (ok, _) = wait_show(&pair.a, PUNCHED, |v| {
        let p = peer_in(v, &kb);
        p["path"] == "relay" && p["relay_transport"] == "tcp" && p["why_relayed"] == "udp_blocked"
    });
    assert!(ok, "A relays over TLS\n{}", pair.diagnostics());
    assert!(
        ping_until(ha.ns(), "10.82.0.2", Duration::from_secs(10)),
        "A pings B through the relay over TLS\n{}",
        pair.diagnostics()
    );
    let (sent, received) = tcp_transfer_timeout(
        ha.ns(),
        hb.ns(),
        "10.82.0.2",
        2 << 20,
        Duration::from_secs(60),
    );
    assert_eq!(sent, received, "the stream through TLS arrives intact");
    let human = pair.a.vpnctl(["show"]).output().expect("vpnctl runs");
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("over tcp (tls)"), "{human}");
}
