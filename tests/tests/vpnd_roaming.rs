//! Roaming: one vpnd's outer address changes under it (no restart) and the
//! tunnel keeps working, because the other side follows the source address
//! of authenticated packets.
//!
//! A and B are vpnd, each configured with the other's endpoint. After the
//! tunnel is up, B's underlay address is replaced (10.99.0.2 by 10.99.0.3,
//! or fd99::2 by fd99::3); the old one no longer exists, so A's configured
//! endpoint is dead. B pings first, A learns B's new endpoint from those
//! packets, `vpnctl show --json` on A reports it, and A can reach B again.

use std::time::Duration;

use e2e::vpnd::{PeerConfig, Vpnd, VpndConfig};
use e2e::{ping, ping_until, require_root_with, TestGuard, VethPair, WgKeys};

fn roaming(test: &str, v6: bool) {
    if !require_root_with(&["wg"]) {
        return;
    }
    let guard = TestGuard::new(test);
    let a = guard.netns();
    let b = guard.netns();
    let veth = VethPair::link(
        &a,
        &b,
        &["10.99.0.1/24", "fd99::1/64"],
        &["10.99.0.2/24", "fd99::2/64"],
    );
    let (ep_a, ep_b, old_addr, new_addr, new_ep_b) = if v6 {
        (
            "[fd99::1]:51820",
            "[fd99::2]:51821",
            "fd99::2/64",
            "fd99::3/64",
            "[fd99::3]:51821",
        )
    } else {
        (
            "10.99.0.1:51820",
            "10.99.0.2:51821",
            "10.99.0.2/24",
            "10.99.0.3/24",
            "10.99.0.3:51821",
        )
    };
    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
    let va = Vpnd::start(
        &a,
        &VpndConfig::new("vpn0", &ka)
            .listen_port(51820)
            .addresses(&["10.10.0.1/24", "fd10::1/64"])
            .peer(PeerConfig::new(&kb.public, &["10.10.0.2/32", "fd10::2/128"]).endpoint(ep_b)),
    );
    let _vb = Vpnd::start(
        &b,
        &VpndConfig::new("vpn0", &kb)
            .listen_port(51821)
            .addresses(&["10.10.0.2/24", "fd10::2/64"])
            .peer(PeerConfig::new(&ka.public, &["10.10.0.1/32", "fd10::1/128"]).endpoint(ep_a)),
    );

    assert!(
        ping_until(&a, "10.10.0.2", Duration::from_secs(10)),
        "no tunnel before the move"
    );
    let peer = va.wait_peer_state(&kb.public, "online", Duration::from_secs(5));
    assert_eq!(peer.endpoint.as_deref(), Some(ep_b));

    // Move B: its old outer address disappears, a new one appears.
    b.ip_ok(["addr", "del", old_addr, "dev", &veth.if_b]);
    let mut add = vec!["addr", "add", new_addr, "dev", veth.if_b.as_str()];
    if v6 {
        add.push("nodad");
    }
    b.ip_ok(add);

    // B sends first; A must follow the authenticated packets' source.
    assert!(
        ping_until(&b, "10.10.0.1", Duration::from_secs(10)),
        "B cannot reach A after moving to {new_addr}\n{}",
        va.proc().logs()
    );
    va.wait_peer(
        &kb.public,
        Duration::from_secs(5),
        &format!("endpoint {new_ep_b}"),
        |p| p.endpoint.as_deref() == Some(new_ep_b),
    );
    for (from, dst) in [(&a, "10.10.0.2"), (&a, "fd10::2"), (&b, "fd10::1")] {
        assert!(
            ping(from, dst, 3),
            "ping {dst} from {} after the move",
            from.name()
        );
    }
    let peer = va.peer(&kb.public);
    assert_eq!(peer.endpoint.as_deref(), Some(new_ep_b));
    assert_eq!(peer.state, "online");
}

#[test]
fn roaming_peer_over_ipv4_underlay() {
    roaming("roaming_peer_over_ipv4_underlay", false);
}

#[test]
fn roaming_peer_over_ipv6_underlay() {
    roaming("roaming_peer_over_ipv6_underlay", true);
}
