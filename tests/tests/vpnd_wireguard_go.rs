//! Interoperability of vpnd with the reference implementation,
//! `wireguard-go` configured with `wg`.
//!
//! * vpnd as initiator: only vpnd knows the other side's endpoint, so the
//!   first handshake must be vpnd's; then ping and a TCP transfer both ways.
//! * vpnd as responder: only wireguard-go knows an endpoint; same checks.
//! * A preshared key on both sides: the tunnel works and both sides agree.
//! * Mismatched preshared keys: no session in either direction (vpnd
//!   initiating, then wireguard-go initiating), and then the very same
//!   setup works once wireguard-go gets the right key, so the key and
//!   nothing else was what kept them apart.

use std::time::Duration;

use e2e::vpnd::{wg_setconf_text, PeerConfig, Vpnd, VpndConfig};
use e2e::{
    ping, ping_until, require_wireguard_go, tcp_transfer, Netns, TestGuard, VethPair, WgKeys,
    WireguardGo,
};

const TRANSFER_BYTES: u64 = 16 * 1024 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is configured with the other side's endpoint, i.e. who must send the
/// first handshake initiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Initiator {
    Vpnd,
    WireguardGo,
}

/// A vpnd in namespace A (10.10.0.1, fd10::1) and a wireguard-go in
/// namespace B (10.10.0.2, fd10::2), joined by a veth pair.
struct Setup {
    // Field order is drop order: daemons before their namespaces.
    vpnd: Vpnd,
    wg: WireguardGo,
    ka: WgKeys,
    kb: WgKeys,
    a: Netns,
    b: Netns,
    ep_a: String,
    ep_b: String,
}

/// Builds the setup over the IPv4 (`v6 == false`) or IPv6 underlay. Only
/// the `initiator` gets an endpoint for its peer. `psk_a`/`psk_b` are the
/// preshared keys vpnd and wireguard-go are configured with.
fn setup(
    guard: &TestGuard,
    v6: bool,
    initiator: Initiator,
    psk_a: Option<&str>,
    psk_b: Option<&str>,
) -> Setup {
    setup_with_offload(guard, v6, initiator, psk_a, psk_b, true)
}

/// [`setup`], with vpnd's data-plane offloads on or off (`VPND_DISABLE_OFFLOAD=1`).
fn setup_with_offload(
    guard: &TestGuard,
    v6: bool,
    initiator: Initiator,
    psk_a: Option<&str>,
    psk_b: Option<&str>,
    offload: bool,
) -> Setup {
    let a = guard.netns();
    let b = guard.netns();
    let _veth = VethPair::link(
        &a,
        &b,
        &["10.99.0.1/24", "fd99::1/64"],
        &["10.99.0.2/24", "fd99::2/64"],
    );
    let (ep_a, ep_b) = if v6 {
        ("[fd99::1]:51820", "[fd99::2]:51821")
    } else {
        ("10.99.0.1:51820", "10.99.0.2:51821")
    };
    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());

    let mut peer_b = PeerConfig::new(&kb.public, &["10.10.0.2/32", "fd10::2/128"]).name("wg-go");
    let mut peer_a = PeerConfig::new(&ka.public, &["10.10.0.1/32", "fd10::1/128"]).name("vpnd");
    match initiator {
        Initiator::Vpnd => peer_b = peer_b.endpoint(ep_b),
        Initiator::WireguardGo => peer_a = peer_a.endpoint(ep_a),
    }
    if let Some(psk) = psk_a {
        peer_b = peer_b.preshared_key(psk);
    }
    if let Some(psk) = psk_b {
        peer_a = peer_a.preshared_key(psk);
    }

    let wg = WireguardGo::start(&b, "wg0");
    wg.wg_setconf(&wg_setconf_text(&kb, 51821, &[peer_a]));
    wg.configure_ip(&["10.10.0.2/24", "fd10::2/64"], 1420);
    let env: &[(&str, &str)] = if offload {
        &[]
    } else {
        &[("VPND_DISABLE_OFFLOAD", "1")]
    };
    let vpnd = Vpnd::start_with_env(
        &a,
        &VpndConfig::new("vpn0", &ka)
            .listen_port(51820)
            .addresses(&["10.10.0.1/24", "fd10::1/64"])
            .peer(peer_b),
        env,
    );
    Setup {
        vpnd,
        wg,
        ka,
        kb,
        a,
        b,
        ep_a: ep_a.to_owned(),
        ep_b: ep_b.to_owned(),
    }
}

/// Ping both ways in both families and a TCP transfer each way.
fn traffic_both_ways(s: &Setup) {
    for (from, dst) in [
        (&s.a, "10.10.0.2"),
        (&s.b, "10.10.0.1"),
        (&s.a, "fd10::2"),
        (&s.b, "fd10::1"),
    ] {
        assert!(
            ping(from, dst, 3),
            "ping {dst} from {} over the tunnel failed",
            from.name()
        );
    }
    let (sent, received) = tcp_transfer(&s.a, &s.b, "10.10.0.2", TRANSFER_BYTES);
    assert_eq!(sent, received, "vpnd -> wireguard-go transfer corrupted");
    let (sent, received) = tcp_transfer(&s.b, &s.a, "fd10::1", TRANSFER_BYTES);
    assert_eq!(sent, received, "wireguard-go -> vpnd transfer corrupted");

    let ours = s.vpnd.peer(&s.kb.public);
    let theirs = s.wg.dump();
    let theirs = theirs
        .peer(&s.ka.public)
        .expect("wireguard-go has vpnd as peer");
    assert!(
        ours.tx_bytes > TRANSFER_BYTES && ours.rx_bytes > TRANSFER_BYTES,
        "vpnd counted both transfers: {ours:?}"
    );
    assert!(
        theirs.tx_bytes > TRANSFER_BYTES && theirs.rx_bytes > TRANSFER_BYTES,
        "wireguard-go counted both transfers: {theirs:?}"
    );
}

#[test]
fn vpnd_initiates_to_wireguard_go() {
    vpnd_initiates("vpnd_initiates_to_wireguard_go", true);
}

#[test]
fn vpnd_initiates_to_wireguard_go_without_offload() {
    vpnd_initiates("vpnd_initiates_wggo_no_offload", false);
}

fn vpnd_initiates(test: &str, offload: bool) {
    if !require_wireguard_go() {
        return;
    }
    let guard = TestGuard::new(test);
    let s = setup_with_offload(&guard, false, Initiator::Vpnd, None, None, offload);
    let before = s.wg.dump();
    let before = before
        .peer(&s.ka.public)
        .expect("wireguard-go has vpnd as peer");
    assert_eq!(
        before.endpoint, None,
        "wireguard-go must not know vpnd's endpoint, so it cannot initiate"
    );

    assert!(
        ping_until(&s.a, "10.10.0.2", HANDSHAKE_TIMEOUT),
        "vpnd could not reach wireguard-go"
    );
    let peer = s
        .vpnd
        .wait_peer_state(&s.kb.public, "online", Duration::from_secs(5));
    assert!(peer.handshakes >= 1 && peer.last_handshake.is_some());
    assert_eq!(peer.endpoint.as_deref(), Some(s.ep_b.as_str()));
    let dump = s.wg.dump();
    let theirs = dump
        .peer(&s.ka.public)
        .expect("wireguard-go has vpnd as peer");
    assert!(theirs.latest_handshake > 0, "wireguard-go: {theirs:?}");
    assert_eq!(
        theirs.endpoint.as_deref(),
        Some(s.ep_a.as_str()),
        "wireguard-go learnt vpnd's endpoint from its handshake"
    );

    traffic_both_ways(&s);
}

#[test]
fn vpnd_responds_to_wireguard_go() {
    vpnd_responds("vpnd_responds_to_wireguard_go", true);
}

#[test]
fn vpnd_responds_to_wireguard_go_without_offload() {
    vpnd_responds("vpnd_responds_wggo_no_offload", false);
}

fn vpnd_responds(test: &str, offload: bool) {
    if !require_wireguard_go() {
        return;
    }
    let guard = TestGuard::new(test);
    let s = setup_with_offload(&guard, true, Initiator::WireguardGo, None, None, offload);
    let before = s.vpnd.peer(&s.kb.public);
    assert_eq!(
        before.endpoint, None,
        "vpnd must not know wireguard-go's endpoint, so it cannot initiate"
    );
    assert_ne!(before.state, "online");

    assert!(
        ping_until(&s.b, "10.10.0.1", HANDSHAKE_TIMEOUT),
        "wireguard-go could not reach vpnd"
    );
    let peer = s
        .vpnd
        .wait_peer_state(&s.kb.public, "online", Duration::from_secs(5));
    assert!(peer.handshakes >= 1 && peer.last_handshake.is_some());
    assert_eq!(
        peer.endpoint.as_deref(),
        Some(s.ep_b.as_str()),
        "vpnd learnt wireguard-go's endpoint from its handshake"
    );

    traffic_both_ways(&s);
}

#[test]
fn preshared_key_with_wireguard_go() {
    if !require_wireguard_go() {
        return;
    }
    let guard = TestGuard::new("preshared_key_with_wireguard_go");
    let psk = WgKeys::genpsk();
    let s = setup(&guard, false, Initiator::Vpnd, Some(&psk), Some(&psk));
    assert!(
        ping_until(&s.a, "10.10.0.2", HANDSHAKE_TIMEOUT),
        "no tunnel with a shared preshared key"
    );
    s.vpnd
        .wait_peer_state(&s.kb.public, "online", Duration::from_secs(5));
    let dump = s.wg.dump();
    let theirs = dump
        .peer(&s.ka.public)
        .expect("wireguard-go has vpnd as peer");
    assert_eq!(theirs.preshared_key.as_deref(), Some(psk.as_str()));
    assert!(theirs.latest_handshake > 0);
    for (from, dst) in [(&s.b, "10.10.0.1"), (&s.a, "fd10::2"), (&s.b, "fd10::1")] {
        assert!(ping(from, dst, 2), "ping {dst} from {}", from.name());
    }
    let (sent, received) = tcp_transfer(&s.b, &s.a, "10.10.0.1", 4 * 1024 * 1024);
    assert_eq!(sent, received);
}

/// Asserts that for a few seconds of pings from `from` no session comes up.
fn assert_no_session(s: &Setup, from: &Netns, dst: &str) {
    assert!(
        !ping_until(from, dst, Duration::from_secs(3)),
        "ping {dst} from {} crossed a tunnel whose preshared keys differ",
        from.name()
    );
    let ours = s.vpnd.peer(&s.kb.public);
    assert_ne!(ours.state, "online", "vpnd: {ours:?}");
    assert_eq!(ours.handshakes, 0, "vpnd completed a handshake: {ours:?}");
    assert_eq!(ours.last_handshake, None, "vpnd: {ours:?}");
    let dump = s.wg.dump();
    let theirs = dump
        .peer(&s.ka.public)
        .expect("wireguard-go has vpnd as peer");
    assert_eq!(
        theirs.latest_handshake, 0,
        "wireguard-go completed a handshake: {theirs:?}"
    );
}

fn mismatched_psk(test: &str, initiator: Initiator) {
    if !require_wireguard_go() {
        return;
    }
    let guard = TestGuard::new(test);
    let (psk_a, psk_b) = (WgKeys::genpsk(), WgKeys::genpsk());
    let s = setup(&guard, false, initiator, Some(&psk_a), Some(&psk_b));
    let (from, dst) = match initiator {
        Initiator::Vpnd => (&s.a, "10.10.0.2"),
        Initiator::WireguardGo => (&s.b, "10.10.0.1"),
    };
    let handshake_traffic = |s: &Setup| {
        let dump = s.wg.dump();
        let p = dump
            .peer(&s.ka.public)
            .expect("wireguard-go has vpnd as peer");
        (p.tx_bytes, s.vpnd.peer(&s.kb.public).rx_bytes)
    };
    assert_no_session(&s, from, dst);
    // Handshake messages did flow (the peers are reachable and talking), so
    // the failure is the key's doing.
    let (wg_tx, vpnd_rx) = handshake_traffic(&s);
    assert!(
        wg_tx > 0 || vpnd_rx > 0 || s.vpnd.peer(&s.kb.public).tx_bytes > 0,
        "no handshake message was even sent"
    );

    // Control: give wireguard-go the key vpnd has, and the same setup works.
    let mut set_psk = s.wg.command([
        "wg",
        "set",
        "wg0",
        "peer",
        &s.ka.public,
        "preshared-key",
        "/dev/stdin",
    ]);
    let out = e2e::run_with_input(
        &mut set_psk,
        format!("{psk_a}\n").as_bytes(),
        e2e::COMMAND_TIMEOUT,
    )
    .expect("wg set preshared-key");
    assert!(out.status.success(), "wg set preshared-key: {out:?}");
    assert!(
        ping_until(from, dst, Duration::from_secs(15)),
        "with equal preshared keys the tunnel must come up"
    );
    s.vpnd
        .wait_peer_state(&s.kb.public, "online", Duration::from_secs(5));
}

#[test]
fn mismatched_preshared_key_vpnd_initiating_does_not_connect() {
    mismatched_psk(
        "mismatched_preshared_key_vpnd_initiating_does_not_connect",
        Initiator::Vpnd,
    );
}

#[test]
fn mismatched_preshared_key_wireguard_go_initiating_does_not_connect() {
    mismatched_psk(
        "mismatched_preshared_key_wireguard_go_initiating_does_not_connect",
        Initiator::WireguardGo,
    );
}
