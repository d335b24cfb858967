//! Proves the harness end to end with two reference `wireguard-go` peers:
//! namespaces, veth underlay, per-instance UAPI isolation, ping over the
//! tunnel in both directions and address families, and a bulk TCP transfer
//! whose SHA-256 must match on both ends.
//!
//! The same scenario runs over an IPv4 and an IPv6 underlay, as two tests
//! that `cargo test` runs in parallel, which also shows that concurrent
//! tests (both using interface `wg0` and port 51820) do not collide.

use std::time::Duration;

use e2e::{
    ping, ping_until, require_wireguard_go, run_ok, tcp_transfer, TestGuard, VethPair, WgKeys,
    WireguardGo,
};

const TRANSFER_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Clone, Copy, Debug)]
enum Underlay {
    V4,
    V6,
}

fn wg_conf(keys: &WgKeys, port: u16, peer: &WgKeys, endpoint: &str, allowed: &str) -> String {
    format!(
        "[Interface]\nPrivateKey = {}\nListenPort = {port}\n\n\
         [Peer]\nPublicKey = {}\nEndpoint = {endpoint}\nAllowedIPs = {allowed}\n",
        keys.private, peer.public
    )
}

fn wireguard_go_pair(test: &str, underlay: Underlay) {
    if !require_wireguard_go() {
        return;
    }
    let guard = TestGuard::new(test);
    let a = guard.netns();
    let b = guard.netns();
    let _veth = VethPair::link(
        &a,
        &b,
        &["10.99.0.1/24", "fd99::1/64"],
        &["10.99.0.2/24", "fd99::2/64"],
    );
    assert!(
        ping(&a, "10.99.0.2", 1),
        "underlay IPv4 must work before the tunnel"
    );
    assert!(
        ping(&a, "fd99::2", 1),
        "underlay IPv6 must work at once (nodad)"
    );

    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
    let wa = WireguardGo::start(&a, "wg0");
    let wb = WireguardGo::start(&b, "wg0");
    let (ep_a, ep_b) = match underlay {
        Underlay::V4 => ("10.99.0.1:51820", "10.99.0.2:51821"),
        Underlay::V6 => ("[fd99::1]:51820", "[fd99::2]:51821"),
    };
    wa.wg_setconf(&wg_conf(&ka, 51820, &kb, ep_b, "10.10.0.2/32, fd10::2/128"));
    wb.wg_setconf(&wg_conf(&kb, 51821, &ka, ep_a, "10.10.0.1/32, fd10::1/128"));
    wa.configure_ip(&["10.10.0.1/24", "fd10::1/64"], 1420);
    wb.configure_ip(&["10.10.0.2/24", "fd10::2/64"], 1420);

    // Both interfaces are called wg0, yet each instance has its own UAPI
    // socket, on its own tmpfs.
    let socket_id = |wg: &WireguardGo| {
        run_ok(&mut wg.command(["stat", "-c", "%d:%i", "/run/wireguard/wg0.sock"]))
    };
    assert_ne!(
        socket_id(&wa),
        socket_id(&wb),
        "the two wg0 sockets must be distinct files"
    );
    assert_eq!(wa.dump().public_key, ka.public);
    assert_eq!(wb.dump().public_key, kb.public);

    // The first packet triggers the handshake; allow it a few seconds.
    assert!(
        ping_until(&a, "10.10.0.2", Duration::from_secs(10)),
        "no tunnel A->B"
    );
    for (from, dst) in [
        (&a, "10.10.0.2"),
        (&b, "10.10.0.1"),
        (&a, "fd10::2"),
        (&b, "fd10::1"),
    ] {
        assert!(
            ping(from, dst, 3),
            "ping {dst} from {} over the tunnel failed",
            from.name()
        );
    }

    let dump_a = wa.dump();
    let peer_b = dump_a.peer(&kb.public).expect("A has B as peer");
    assert!(
        peer_b.latest_handshake > 0,
        "A completed a handshake: {dump_a:?}"
    );
    assert_eq!(peer_b.endpoint.as_deref(), Some(ep_b));
    assert_eq!(peer_b.allowed_ips, ["10.10.0.2/32", "fd10::2/128"]);

    let (sent, received) = tcp_transfer(&a, &b, "10.10.0.2", TRANSFER_BYTES);
    assert_eq!(sent, received, "IPv4 transfer corrupted");
    let (sent, received) = tcp_transfer(&b, &a, "fd10::1", TRANSFER_BYTES);
    assert_eq!(sent, received, "IPv6 transfer corrupted");

    let peer_a = wb.dump();
    let peer_a = peer_a.peer(&ka.public).expect("B has A as peer");
    assert!(
        peer_a.rx_bytes > TRANSFER_BYTES && peer_a.tx_bytes > TRANSFER_BYTES,
        "both transfers crossed the tunnel: {peer_a:?}"
    );
}

#[test]
fn wireguard_go_pair_over_ipv4_underlay() {
    wireguard_go_pair("wireguard_go_pair_over_ipv4_underlay", Underlay::V4);
}

#[test]
fn wireguard_go_pair_over_ipv6_underlay() {
    wireguard_go_pair("wireguard_go_pair_over_ipv6_underlay", Underlay::V6);
}
