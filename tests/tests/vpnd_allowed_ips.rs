//! Cryptokey routing in vpnd.
//!
//! * Inbound: a packet that decrypts fine but whose inner source is not in
//!   the sending peer's allowed IPs never reaches vpnd's TUN. wireguard-go
//!   sends from extra addresses (10.10.0.99, fd10::99) vpnd does not allow
//!   for it: the pings fail, the TUN's receive counter does not move, and
//!   vpnd's `drops.allowed_ips` counter grows by the number of echoes,
//!   while wireguard-go's tx counter shows they were sent into the tunnel.
//! * Outbound: with two peers, one allowed 10.20.0.0/16 and the other
//!   10.20.1.0/24, the most specific prefix wins: 10.20.1.5 is reached at
//!   the second and 10.20.2.5 at the first, and only the chosen peer's
//!   tx counter grows by the echoes.

use std::time::Duration;

use e2e::vpnd::{wg_setconf_text, PeerConfig, Vpnd, VpndConfig};
use e2e::{
    ping, ping_until, require_root_with, require_wireguard_go, wait_until, Netns, TestGuard,
    VethPair, WgKeys, WireguardGo,
};

/// One default ping packet in the tunnel (84-byte IPv4 echo padded to 96,
/// plus header and tag).
const ECHO_MESSAGE: u64 = 96 + 32;
/// The same for IPv6: a 104-byte echo padded to 112.
const ECHO6_MESSAGE: u64 = 112 + 32;

/// Packets the kernel received on `ifname` in `ns`, i.e. packets vpnd wrote
/// into its TUN.
fn tun_rx_packets(ns: &Netns, ifname: &str) -> u64 {
    let path = format!("/sys/class/net/{ifname}/statistics/rx_packets");
    ns.exec_ok(["cat", &path])
        .trim()
        .parse()
        .expect("rx_packets is a number")
}

#[test]
fn inbound_source_outside_allowed_ips_never_reaches_the_tun() {
    if !require_wireguard_go() {
        return;
    }
    let guard = TestGuard::new("inbound_source_outside_allowed_ips_never_reaches_the_tun");
    let a = guard.netns();
    let b = guard.netns();
    let _veth = VethPair::link(&a, &b, &["10.99.0.1/24"], &["10.99.0.2/24"]);
    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());

    let vpnd = Vpnd::start(
        &a,
        &VpndConfig::new("vpn0", &ka)
            .listen_port(51820)
            .addresses(&["10.10.0.1/24", "fd10::1/64"])
            .peer(PeerConfig::new(
                &kb.public,
                &["10.10.0.2/32", "fd10::2/128"],
            )),
    );
    let wg = WireguardGo::start(&b, "wg0");
    wg.wg_setconf(&wg_setconf_text(
        &kb,
        51821,
        &[
            PeerConfig::new(&ka.public, &["10.10.0.1/32", "fd10::1/128"])
                .endpoint("10.99.0.1:51820"),
        ],
    ));
    // The extra addresses must never be picked as a default source: the
    // IPv4 one is secondary, the IPv6 one deprecated (preferred_lft 0).
    wg.configure_ip(&["10.10.0.2/24", "10.10.0.99/24", "fd10::2/64"], 1420);
    b.ip_ok([
        "addr",
        "add",
        "fd10::99/64",
        "dev",
        "wg0",
        "nodad",
        "preferred_lft",
        "0",
    ]);

    // Control: from the allowed source the tunnel works.
    assert!(
        ping_until(&b, "10.10.0.1", Duration::from_secs(10)),
        "no tunnel wireguard-go -> vpnd"
    );
    vpnd.wait_peer_state(&kb.public, "online", Duration::from_secs(5));
    assert!(ping(&b, "fd10::1", 2), "allowed IPv6 source");

    for (src, dst, echo) in [
        ("10.10.0.99", "10.10.0.1", ECHO_MESSAGE),
        ("fd10::99", "fd10::1", ECHO6_MESSAGE),
    ] {
        let drops_before = vpnd.drops("allowed_ips");
        let tun_before = tun_rx_packets(&a, "vpn0");
        let wg_tx_before = wg.dump().peer(&ka.public).expect("peer").tx_bytes;

        let out = b.exec_timeout(
            [
                "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-w", "3", "-I", src, dst,
            ],
            Duration::from_secs(10),
        );
        assert!(
            !out.status.success(),
            "a ping from {src}, outside the peer's allowed IPs, was answered: {}",
            String::from_utf8_lossy(&out.stdout)
        );

        let mut drops = drops_before;
        assert!(
            wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
                drops = vpnd.drops("allowed_ips");
                drops >= drops_before + 3
            }),
            "drops.allowed_ips went from {drops_before} to {drops}, expected +3 for {src}\n{:#?}",
            vpnd.show().interface
        );
        let wg_tx = wg.dump().peer(&ka.public).expect("peer").tx_bytes;
        assert!(
            wg_tx >= wg_tx_before + 3 * echo,
            "wireguard-go really sent the echoes from {src} into the tunnel: \
             {wg_tx_before} -> {wg_tx}"
        );
        assert_eq!(
            tun_rx_packets(&a, "vpn0"),
            tun_before,
            "a packet from {src}, a disallowed source, was written to vpnd's TUN"
        );
    }

    // The allowed sources still work afterwards.
    assert!(
        ping(&b, "10.10.0.1", 2),
        "allowed IPv4 source after the drops"
    );
    assert!(
        ping(&b, "fd10::1", 2),
        "allowed IPv6 source after the drops"
    );
}

#[test]
fn most_specific_allowed_ip_wins_outbound() {
    if !require_root_with(&["wg"]) {
        return;
    }
    let guard = TestGuard::new("most_specific_allowed_ip_wins_outbound");
    let a = guard.netns();
    let b = guard.netns();
    let c = guard.netns();
    let _ab = VethPair::link(&a, &b, &["10.99.0.1/24"], &["10.99.0.2/24"]);
    let _ac = VethPair::link(&a, &c, &["10.98.0.1/24"], &["10.98.0.3/24"]);
    let (ka, kb, kc) = (WgKeys::generate(), WgKeys::generate(), WgKeys::generate());

    let va = Vpnd::start(
        &a,
        &VpndConfig::new("vpn0", &ka)
            .listen_port(51820)
            .addresses(&["10.10.0.1/24"])
            .peer(
                PeerConfig::new(&kb.public, &["10.10.0.2/32", "10.20.0.0/16"])
                    .name("wide")
                    .endpoint("10.99.0.2:51820"),
            )
            .peer(
                PeerConfig::new(&kc.public, &["10.10.0.3/32", "10.20.1.0/24"])
                    .name("narrow")
                    .endpoint("10.98.0.3:51820"),
            ),
    );
    // B owns 10.20.2.5 and C owns 10.20.1.5; each allows only A back.
    let _vb = Vpnd::start(
        &b,
        &VpndConfig::new("vpn0", &kb)
            .listen_port(51820)
            .addresses(&["10.10.0.2/24", "10.20.2.5/32"])
            .peer(PeerConfig::new(&ka.public, &["10.10.0.1/32"]).endpoint("10.99.0.1:51820")),
    );
    let _vc = Vpnd::start(
        &c,
        &VpndConfig::new("vpn0", &kc)
            .listen_port(51820)
            .addresses(&["10.10.0.3/24", "10.20.1.5/32"])
            .peer(PeerConfig::new(&ka.public, &["10.10.0.1/32"]).endpoint("10.98.0.1:51820")),
    );

    // vpnd added kernel routes for both prefixes (both via its TUN).
    let routes = a.ip_ok(["-4", "route", "show", "dev", "vpn0"]);
    assert!(
        routes.contains("10.20.0.0/16") && routes.contains("10.20.1.0/24"),
        "routes via vpn0: {routes}"
    );

    // Sessions to both first, so the measured pings carry only echoes.
    for dst in ["10.10.0.2", "10.10.0.3"] {
        assert!(
            ping_until(&a, dst, Duration::from_secs(10)),
            "no tunnel to {dst}"
        );
    }

    let tx = |key: &str| va.peer(key).tx_bytes;
    for (dst, chosen, other, what) in [
        ("10.20.1.5", &kc.public, &kb.public, "10.20.1.0/24 (narrow)"),
        ("10.20.2.5", &kb.public, &kc.public, "10.20.0.0/16 (wide)"),
    ] {
        let (chosen_before, other_before) = (tx(chosen), tx(other));
        assert!(
            ping(&a, dst, 3),
            "ping {dst} must reach the peer of {what}, the only host that has it"
        );
        let (chosen_after, other_after) = (tx(chosen), tx(other));
        assert!(
            chosen_after >= chosen_before + 3 * ECHO_MESSAGE,
            "{dst} must be sent to the peer of {what}: its tx {chosen_before} -> {chosen_after}"
        );
        assert!(
            other_after - other_before < ECHO_MESSAGE,
            "no echo to {dst} may go to the other peer: its tx {other_before} -> {other_after}"
        );
    }
}
