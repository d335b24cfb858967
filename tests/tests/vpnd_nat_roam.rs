//! A peer whose default route moves to another uplink and NAT, with no address changing
//! (issue 10, "never stuck": probing "starts again at once on … a link or address change"), on
//! the shared NAT lab (`e2e::nat_lab`):
//!
//! ```text
//!   host A ─┬─ router 1 (masquerade) ─┐
//!           └─ router 2 (masquerade) ─┤ inet (vpnhub)
//!   host B ─── router 3 (masquerade) ─┘
//! ```
//!
//! A and B punch a path through the hub (A by router 1); with pings running, A's default route
//! moves to router 2. A's traffic now leaves with router 2's address, which B's router (Linux
//! masquerade: address-and-port-dependent filtering) drops until B sends there first. vpnd
//! sees the route change on rtnetlink, re-checks STUN, learns the new mapping and tells B
//! through the hub; B probes it, and the pair is `punched` again with B's `path_endpoint` at
//! router 2, and pings pass, within [`RECOVER`]. Without the route watch nothing notices until
//! the selected path's heartbeats lapse (6.5 s) on both sides.

use std::time::{Duration, Instant};

use e2e::nat_lab::{NatLab, NatType};
use e2e::vpnd::{peer_in, PeerConfig, Vpnd, VpndConfig};
use e2e::{ping_until, require_root_with, TestGuard, WgKeys};
use serde_json::Value;

const PORT: u16 = 51820;
/// Registration, a probe round and its repeat.
const PUNCHED: Duration = Duration::from_secs(20);
/// The bound the route watch makes possible: its 150 ms debounce, a STUN round trip, a hub
/// relay of the new candidates and a probe round trip, with room for a loaded CI machine.
/// Without the watch it takes the 6.5 s path trust and more.
const RECOVER: Duration = Duration::from_secs(2);
/// How long the test waits after the switch, to report the time even when it misses the bound.
const GIVE_UP: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// Whether `v` shows `key` punched with an endpoint at `ip`.
fn punched_at(v: &Value, key: &str, ip: std::net::Ipv4Addr) -> bool {
    let p = peer_in(v, key);
    p["path"] == "punched"
        && p["path_endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("{ip}:")))
}

/// One echo with a short wait, so the recovery is timed finely.
fn ping_once(ns: &e2e::Netns, dst: &str) -> bool {
    ns.exec_timeout(
        ["ping", "-n", "-q", "-c", "1", "-W", "0.3", dst],
        Duration::from_secs(5),
    )
    .status
    .success()
}

#[test]
fn a_route_change_to_another_uplink_is_punched_again_at_once() {
    if !require_root_with(&["nft", "conntrack"]) {
        return;
    }
    let guard = TestGuard::new("nat-roam");
    let mut lab = NatLab::new(&guard);
    let r1 = lab.router(NatType::EimApdf);
    let r2 = lab.router(NatType::EimApdf);
    let rb = lab.router(NatType::EimApdf);
    let ha = lab.host(&r1);
    let second = lab.add_uplink(&ha, &r2);
    let hb = lab.host(&rb);
    let hub = lab.start_hub();

    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
    let config = |me: &WgKeys, ip: &str, other: &WgKeys, other_ip: &str| {
        VpndConfig::new("vpnroam0", me)
            .listen_port(PORT)
            .addresses(&[&format!("{ip}/24")])
            .hub(&hub.0, &hub.1)
            .peer(PeerConfig::new(&other.public, &[&format!("{other_ip}/32")]))
    };
    let a = Vpnd::start(ha.ns(), &config(&ka, "10.83.0.1", &kb, "10.83.0.2"));
    let b = Vpnd::start(hb.ns(), &config(&kb, "10.83.0.2", &ka, "10.83.0.1"));
    let diagnostics = || {
        format!(
            "A: {:#}\nB: {:#}\nA logs:\n{}\nB logs:\n{}",
            a.show_json(),
            b.show_json(),
            a.proc().logs(),
            b.proc().logs()
        )
    };

    // Punched through router 1, and the tunnel in use (an active peer keeps heartbeats).
    let deadline = Instant::now() + PUNCHED;
    while !(punched_at(&a.show_json(), &kb.public, rb.public_ip)
        && punched_at(&b.show_json(), &ka.public, r1.public_ip))
    {
        assert!(Instant::now() < deadline, "punched\n{}", diagnostics());
        std::thread::sleep(POLL);
    }
    assert!(
        ping_until(ha.ns(), "10.83.0.2", Duration::from_secs(5)),
        "pings through router 1\n{}",
        diagnostics()
    );

    ha.route_default_via(second.gateway);
    let switched = Instant::now();
    let (mut path_at, mut ping_at) = (None, None);
    while (path_at.is_none() || ping_at.is_none()) && switched.elapsed() < GIVE_UP {
        if path_at.is_none()
            && punched_at(&b.show_json(), &ka.public, second.public_ip)
            && punched_at(&a.show_json(), &kb.public, rb.public_ip)
        {
            path_at = Some(switched.elapsed());
        }
        // Pinging all along keeps the peers active, as a user's traffic would.
        if ping_once(ha.ns(), "10.83.0.2") && ping_at.is_none() {
            ping_at = Some(switched.elapsed());
        }
        std::thread::sleep(POLL);
    }
    let secs =
        |d: Option<Duration>| d.map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    println!(
        "default route moved to router 2: punched again at router 2 after {}, pings after {}",
        secs(path_at),
        secs(ping_at)
    );
    let (Some(path_at), Some(ping_at)) = (path_at, ping_at) else {
        panic!("not punched again within {GIVE_UP:?}\n{}", diagnostics());
    };
    assert!(
        path_at < RECOVER && ping_at < RECOVER,
        "punched again after {path_at:?} and pings after {ping_at:?}, over {RECOVER:?}\n{}",
        diagnostics()
    );
    assert!(
        ping_until(hb.ns(), "10.83.0.1", Duration::from_secs(2)),
        "pings from B through router 2\n{}",
        diagnostics()
    );
}
