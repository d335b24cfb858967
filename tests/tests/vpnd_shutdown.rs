//! Shutdown and crash recovery.
//!
//! * SIGTERM (and SIGINT, the other shutdown signal): with a live tunnel
//!   and a peer whose allowed IPs lie outside the interface subnets (so
//!   vpnd really added routes), vpnd exits with status 0 within 2 s, and
//!   afterwards the interface, its addresses, every route vpnd added and
//!   its control socket are gone.
//! * SIGKILL: vpnd gets no chance to clean up. A stale interface with the
//!   same name (as a crashed run may leave: a persistent TUN with an address
//!   and a route) is in the way; starting vpnd again with the same
//!   configuration (and the same control socket path, whose stale socket
//!   file is still there) replaces it, and the tunnel works again.

use std::time::{Duration, Instant};

use e2e::vpnd::{all_routes, link_exists, PeerConfig, Vpnd, VpndConfig};
use e2e::{
    describe_status, ping, ping_until, require_root_with, Netns, TestGuard, VethPair, WgKeys,
};

/// Two vpnd, A and B; A's peer B has allowed IPs outside A's subnets
/// (10.30.0.0/16 and fd30::/48), so A routes them through its TUN.
fn pair(guard: &TestGuard) -> (Netns, Netns, Vpnd, Vpnd, WgKeys, WgKeys) {
    let a = guard.netns();
    let b = guard.netns();
    let _veth = VethPair::link(&a, &b, &["10.99.0.1/24"], &["10.99.0.2/24"]);
    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
    let va = Vpnd::start(
        &a,
        &VpndConfig::new("vpn0", &ka)
            .listen_port(51820)
            .addresses(&["10.10.0.1/24", "fd10::1/64"])
            .peer(
                PeerConfig::new(
                    &kb.public,
                    &["10.10.0.2/32", "fd10::2/128", "10.30.0.0/16", "fd30::/48"],
                )
                .endpoint("10.99.0.2:51820"),
            ),
    );
    let vb = Vpnd::start(
        &b,
        &VpndConfig::new("vpn0", &kb)
            .listen_port(51820)
            .addresses(&["10.10.0.2/24", "fd10::2/64", "10.30.0.7/32"])
            .peer(PeerConfig::new(
                &ka.public,
                &["10.10.0.1/32", "fd10::1/128"],
            )),
    );
    (a, b, va, vb, ka, kb)
}

fn has_vpnd_routes(routes: &str) -> bool {
    routes.contains("10.30.0.0/16") || routes.contains("fd30::/48")
}

fn clean_shutdown(test: &str, signal: i32) {
    if !require_root_with(&["wg"]) {
        return;
    }
    let guard = TestGuard::new(test);
    let (a, _b, mut va, _vb, _ka, kb) = pair(&guard);

    let routes = all_routes(&a);
    assert!(
        routes.contains("10.30.0.0/16 dev vpn0") && routes.contains("fd30::/48 dev vpn0"),
        "vpnd must have added routes for allowed IPs outside its subnets:\n{routes}"
    );
    // A live tunnel, including through an added route.
    assert!(ping_until(&a, "10.10.0.2", Duration::from_secs(10)));
    assert!(ping(&a, "10.30.0.7", 2), "ping through the added route");
    va.wait_peer_state(&kb.public, "online", Duration::from_secs(5));
    let socket = va.socket().to_owned();

    let start = Instant::now();
    let status = va.signal_and_wait(signal, Duration::from_secs(2));
    let took = start.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "vpnd still running 2 s after signal {signal}\n{}",
            va.proc().logs()
        )
    });
    assert_eq!(
        status.code(),
        Some(0),
        "vpnd must exit 0 after signal {signal}, got {} after {took:?}\n{}",
        describe_status(&status),
        va.proc().logs()
    );

    eprintln!("vpnd exited 0 {took:?} after signal {signal}");
    assert!(
        !link_exists(&a, "vpn0"),
        "vpn0 still exists after shutdown:\n{}",
        a.ip_ok(["link", "show"])
    );
    let routes = all_routes(&a);
    assert!(
        !has_vpnd_routes(&routes) && !routes.contains("vpn0"),
        "routes vpnd added are still there after shutdown:\n{routes}"
    );
    let addrs = a.ip_ok(["addr", "show"]);
    assert!(
        !addrs.contains("10.10.0.1") && !addrs.contains("fd10::1"),
        "tunnel addresses left behind:\n{addrs}"
    );
    assert!(
        !socket.exists(),
        "control socket {} left behind",
        socket.display()
    );
}

#[test]
fn sigterm_removes_interface_and_routes_and_exits_zero() {
    clean_shutdown(
        "sigterm_removes_interface_and_routes_and_exits_zero",
        libc::SIGTERM,
    );
}

#[test]
fn sigint_removes_interface_and_routes_and_exits_zero() {
    clean_shutdown(
        "sigint_removes_interface_and_routes_and_exits_zero",
        libc::SIGINT,
    );
}

#[test]
fn restart_after_sigkill_replaces_stale_interface() {
    if !require_root_with(&["wg"]) {
        return;
    }
    let guard = TestGuard::new("restart_after_sigkill_replaces_stale_interface");
    let (a, _b, mut va, _vb, _ka, kb) = pair(&guard);
    assert!(ping_until(&a, "10.10.0.2", Duration::from_secs(10)));

    let status = va.kill();
    assert_eq!(
        describe_status(&status),
        format!("signal {}", libc::SIGKILL)
    );
    // The kernel removes a non-persistent TUN with its last descriptor; put
    // a stale interface in the way, as a crash could leave one behind.
    if link_exists(&a, "vpn0") {
        eprintln!("vpn0 survived SIGKILL; restarting over it");
    } else {
        eprintln!("vpn0 vanished with its descriptor; putting a stale persistent TUN in its place");
        a.ip_ok(["tuntap", "add", "dev", "vpn0", "mode", "tun"]);
        a.ip_ok(["addr", "add", "10.10.0.1/24", "dev", "vpn0"]);
        a.ip_ok(["link", "set", "vpn0", "up"]);
        a.ip_ok(["route", "add", "10.30.0.0/16", "dev", "vpn0"]);
    }
    assert!(
        va.socket().exists(),
        "the killed daemon's socket file is still there (stale)"
    );

    va.restart(&a);
    let details = a.ip_ok(["-d", "link", "show", "dev", "vpn0"]);
    assert!(
        !details.contains("persist on"),
        "the stale persistent TUN must have been replaced:\n{details}"
    );
    assert!(
        ping_until(&a, "10.10.0.2", Duration::from_secs(15)),
        "no tunnel after restart\n{}",
        va.proc().logs()
    );
    assert!(ping(&a, "10.30.0.7", 2), "ping through the re-added route");
    let peer = va.wait_peer_state(&kb.public, "online", Duration::from_secs(5));
    assert!(peer.handshakes >= 1);
    assert_eq!(
        a.ip_ok(["-o", "link", "show", "dev", "vpn0"])
            .lines()
            .count(),
        1
    );
}
