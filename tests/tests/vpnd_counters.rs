//! Byte-exact transfer counters: vpnd's `rx_bytes`/`tx_bytes` for a peer
//! equal wireguard-go's `transfer` counters for vpnd, mirrored (our tx is
//! their rx, our rx is their tx), after a fresh handshake and 10 pings one
//! way, and again after 10 pings the other way.
//!
//! Both implementations count whole WireGuard messages as they travel in
//! UDP (handshake messages included), so the totals must agree to the byte.
//! Nothing else may cross the tunnel meanwhile: allowed IPs are host routes
//! only (so IPv6 multicast such as MLD reports or router solicitations has
//! no peer and is dropped before encryption), router solicitations and DAD
//! are off on both namespaces before the tunnel interfaces exist, no
//! persistent keepalive is configured, and the test pings only IPv4.

use std::time::Duration;

use e2e::vpnd::{quiet_ipv6, wg_setconf_text, PeerConfig, Vpnd, VpndConfig};
use e2e::{ping, require_wireguard_go, wait_until, TestGuard, VethPair, WgKeys, WireguardGo};

/// Handshake initiation and response sizes (WireGuard whitepaper §5.4).
const INITIATION: u64 = 148;
const RESPONSE: u64 = 92;
/// One default `ping` packet in the tunnel: 84-byte IPv4 echo, padded to a
/// multiple of 16 (96), plus the 16-byte header and the 16-byte tag.
const ECHO_MESSAGE: u64 = 96 + 32;
/// A keepalive: header and tag around an empty payload.
const KEEPALIVE: u64 = 32;

#[test]
fn transfer_counters_match_wireguard_go_byte_for_byte() {
    if !require_wireguard_go() {
        return;
    }
    let guard = TestGuard::new("transfer_counters_match_wireguard_go_byte_for_byte");
    let a = guard.netns();
    let b = guard.netns();
    quiet_ipv6(&a);
    quiet_ipv6(&b);
    let _veth = VethPair::link(&a, &b, &["10.99.0.1/24"], &["10.99.0.2/24"]);
    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());

    let wg = WireguardGo::start(&b, "wg0");
    wg.wg_setconf(&wg_setconf_text(
        &kb,
        51821,
        &[PeerConfig::new(
            &ka.public,
            &["10.10.0.1/32", "fd10::1/128"],
        )],
    ));
    wg.configure_ip(&["10.10.0.2/24", "fd10::2/64"], 1420);
    let vpnd = Vpnd::start(
        &a,
        &VpndConfig::new("vpn0", &ka)
            .listen_port(51820)
            .addresses(&["10.10.0.1/24", "fd10::1/64"])
            .peer(
                PeerConfig::new(&kb.public, &["10.10.0.2/32", "fd10::2/128"])
                    .endpoint("10.99.0.2:51821"),
            ),
    );

    // Fresh: nothing has crossed yet, on either side.
    let counters = || {
        let ours = vpnd.peer(&kb.public);
        let dump = wg.dump();
        let theirs = dump
            .peer(&ka.public)
            .expect("wireguard-go has vpnd as peer");
        (
            ours.tx_bytes,
            ours.rx_bytes,
            theirs.rx_bytes,
            theirs.tx_bytes,
        )
    };
    assert_eq!(counters(), (0, 0, 0, 0), "counters before any traffic");

    // The first echo triggers vpnd's handshake; all 10 must be answered.
    assert!(ping(&a, "10.10.0.2", 10), "10 pings vpnd -> wireguard-go");
    let first = wait_mirrored(&counters);
    let (tx, rx) = (first.0, first.1);
    eprintln!("after 10 pings vpnd -> wireguard-go: vpnd tx {tx} rx {rx}, mirrored");
    assert!(
        vpnd.peer(&kb.public).handshakes == 1,
        "exactly one handshake expected"
    );
    // What crossed: vpnd's initiation and 10 echo requests; wireguard-go's
    // response and 10 echo replies; at most a few keepalives besides.
    let extra_tx = tx
        .checked_sub(INITIATION + 10 * ECHO_MESSAGE)
        .unwrap_or_else(|| panic!("vpnd sent too little: tx {tx}"));
    let extra_rx = rx
        .checked_sub(RESPONSE + 10 * ECHO_MESSAGE)
        .unwrap_or_else(|| panic!("vpnd received too little: rx {rx}"));
    for extra in [extra_tx, extra_rx] {
        assert!(
            extra % KEEPALIVE == 0 && extra <= 2 * KEEPALIVE,
            "unexpected extra bytes beyond handshake, echoes and keepalives: tx {tx}, rx {rx}"
        );
    }

    // Ten more the other way, on the same session.
    assert!(ping(&b, "10.10.0.1", 10), "10 pings wireguard-go -> vpnd");
    let second = wait_mirrored(&counters);
    eprintln!(
        "after 10 pings wireguard-go -> vpnd: vpnd tx {} rx {}, mirrored",
        second.0, second.1
    );
    assert!(
        second.0 >= tx + 10 * ECHO_MESSAGE && second.1 >= rx + 10 * ECHO_MESSAGE,
        "the second round was counted: {first:?} -> {second:?}"
    );
}

/// Polls until vpnd's (tx, rx) equal wireguard-go's (rx, tx) and returns
/// them; a packet may still be in flight at the first look.
fn wait_mirrored(counters: &impl Fn() -> (u64, u64, u64, u64)) -> (u64, u64, u64, u64) {
    let mut last = (0, 0, 0, 0);
    let mirrored = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        last = counters();
        let (our_tx, our_rx, their_rx, their_tx) = last;
        our_tx == their_rx && our_rx == their_tx
    });
    let (our_tx, our_rx, their_rx, their_tx) = last;
    assert!(
        mirrored,
        "counters differ: vpnd tx {our_tx} vs wireguard-go rx {their_rx}, \
         vpnd rx {our_rx} vs wireguard-go tx {their_tx}"
    );
    last
}
