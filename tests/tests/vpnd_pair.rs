//! vpnd ↔ vpnd over a real TUN and UDP: IPv4 and IPv6 inner addresses over
//! an IPv4 underlay and over an IPv6 underlay (one test each).
//!
//! Each case proves, between two `vpnd` processes in two namespaces:
//! * ping in both directions and both inner families;
//! * a 64 MiB TCP transfer whose SHA-256 is the same on both ends (over the
//!   inner family that differs from the underlay's, so the two cases cover
//!   v6-in-v4 and v4-in-v6);
//! * full-MTU packets: with the underlay MTU set to exactly the tunnel MTU
//!   plus WireGuard's overhead, `ping -M do` of the largest size crosses
//!   both ways for both families without any fragment being created on
//!   either host, and one byte more fails with "message too long" instead
//!   of being fragmented or truncated.
//!
//! Every case runs with the data plane's offloads (TUN TSO/GRO, UDP GSO/GRO) on, with them
//! off (`VPND_DISABLE_OFFLOAD=1`), and with one side on and the other off; one runs with
//! crypto workers (`VPND_CRYPTO_WORKERS=2`: runs sealed in parallel must still leave in
//! order, with each counter used once).

use std::time::Duration;

use e2e::vpnd::{PeerConfig, Vpnd, VpndConfig};
use e2e::{ping, ping_until, require_root_with, tcp_transfer, Netns, TestGuard, VethPair, WgKeys};

const TUNNEL_MTU: u32 = 1420;
const TRANSFER_BYTES: u64 = 64 * 1024 * 1024;
/// WireGuard's per-packet overhead on top of the outer IP header: UDP (8),
/// message header (16: type, receiver index, counter) and AEAD tag (16).
const WG_OVERHEAD: u32 = 8 + 16 + 16;

#[derive(Clone, Copy, Debug)]
enum Underlay {
    V4,
    V6,
}

/// Fragments this namespace's stack created (IPv4 `FragCreates` plus
/// IPv6 `Ip6FragCreates`), from `/proc/net/snmp{,6}` read inside it.
fn fragments_created(ns: &Netns) -> u64 {
    let snmp = ns.exec_ok(["cat", "/proc/net/snmp"]);
    let mut lines = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    let v4 = names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "FragCreates")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .expect("FragCreates in /proc/net/snmp");
    let snmp6 = ns.exec_ok(["cat", "/proc/net/snmp6"]);
    let v6 = snmp6
        .lines()
        .find_map(|l| l.strip_prefix("Ip6FragCreates"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("Ip6FragCreates in /proc/net/snmp6");
    v4 + v6
}

/// `ping -M do -s size` (DF set, no local fragmentation), 3 echoes; returns
/// success and the combined output.
fn ping_df(ns: &Netns, dst: &str, size: u32) -> (bool, String) {
    let out = ns.exec_timeout(
        [
            "ping",
            "-n",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "-w",
            "5",
            "-M",
            "do",
            "-s",
            &size.to_string(),
            dst,
        ],
        Duration::from_secs(15),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Offloads of the two daemons.
#[derive(Clone, Copy, Debug)]
enum Offload {
    On,
    Off,
    /// A with offloads, B without.
    Mixed,
    /// Offloads on and two crypto workers on both sides.
    CryptoWorkers,
}

/// The environment that gives a daemon its data-plane setting.
fn offload_env(offload: Offload, side_a: bool) -> &'static [(&'static str, &'static str)] {
    match (offload, side_a) {
        (Offload::On, _) | (Offload::Mixed, true) => &[],
        (Offload::Off, _) | (Offload::Mixed, false) => &[("VPND_DISABLE_OFFLOAD", "1")],
        (Offload::CryptoWorkers, _) => &[("VPND_CRYPTO_WORKERS", "2")],
    }
}

fn vpnd_pair(test: &str, underlay: Underlay, offload: Offload) {
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
    // The underlay carries exactly one full-MTU tunnel packet: anything
    // bigger (a padding or framing mistake) would have to be fragmented.
    let outer_ip_header = match underlay {
        Underlay::V4 => 20,
        Underlay::V6 => 40,
    };
    veth.set_mtu(TUNNEL_MTU + WG_OVERHEAD + outer_ip_header);
    let (ep_a, ep_b) = match underlay {
        Underlay::V4 => ("10.99.0.1:51820", "10.99.0.2:51821"),
        Underlay::V6 => ("[fd99::1]:51820", "[fd99::2]:51821"),
    };

    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
    let config_a = VpndConfig::new("vpn0", &ka)
        .listen_port(51820)
        .addresses(&["10.10.0.1/24", "fd10::1/64"])
        .mtu(TUNNEL_MTU)
        .peer(
            PeerConfig::new(&kb.public, &["10.10.0.2/32", "fd10::2/128"])
                .name("b")
                .endpoint(ep_b),
        );
    let config_b = VpndConfig::new("vpn0", &kb)
        .listen_port(51821)
        .addresses(&["10.10.0.2/24", "fd10::2/64"])
        .mtu(TUNNEL_MTU)
        .peer(
            PeerConfig::new(&ka.public, &["10.10.0.1/32", "fd10::1/128"])
                .name("a")
                .endpoint(ep_a),
        );
    let va = Vpnd::start_with_env(&a, &config_a, offload_env(offload, true));
    let vb = Vpnd::start_with_env(&b, &config_b, offload_env(offload, false));
    if let Offload::CryptoWorkers = offload {
        for v in [&va, &vb] {
            let logs = v.proc().logs();
            assert!(
                logs.contains("crypto_workers=2"),
                "workers not started:\n{logs}"
            );
        }
    }

    assert!(
        ping_until(&a, "10.10.0.2", Duration::from_secs(10)),
        "no tunnel A->B"
    );
    let peer_b = va.wait_peer_state(&kb.public, "online", Duration::from_secs(5));
    let peer_a = vb.wait_peer_state(&ka.public, "online", Duration::from_secs(5));
    assert_eq!(peer_b.endpoint.as_deref(), Some(ep_b), "A's view of B");
    assert_eq!(peer_a.endpoint.as_deref(), Some(ep_a), "B's view of A");
    assert!(peer_b.handshakes >= 1 && peer_b.last_handshake.is_some());

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

    // Full-MTU packets, DF set: IPv4 header 20 + ICMP 8, IPv6 header 40 +
    // ICMPv6 8.
    let frags_before = (fragments_created(&a), fragments_created(&b));
    for (from, dst, overhead) in [
        (&a, "10.10.0.2", 28),
        (&b, "10.10.0.1", 28),
        (&a, "fd10::2", 48),
        (&b, "fd10::1", 48),
    ] {
        let size = TUNNEL_MTU - overhead;
        let (ok, out) = ping_df(from, dst, size);
        assert!(
            ok,
            "full-MTU ping -M do -s {size} {dst} from {} failed:\n{out}",
            from.name()
        );
        assert!(
            !out.contains("wrong data") && !out.contains("truncated"),
            "full-MTU echo of {size} bytes to {dst} came back mangled:\n{out}"
        );
        let (ok, out) = ping_df(from, dst, size + 1);
        assert!(
            !ok,
            "ping -M do -s {} {dst} is one byte over the tunnel MTU and must fail:\n{out}",
            size + 1
        );
        let lower = out.to_ascii_lowercase();
        assert!(
            lower.contains("message too long") || lower.contains("mtu"),
            "oversized DF ping to {dst} must fail for its size, not be lost:\n{out}"
        );
    }
    assert_eq!(
        (fragments_created(&a), fragments_created(&b)),
        frags_before,
        "full-MTU tunnel packets must fit the underlay MTU without fragmentation"
    );

    // Bulk data over the inner family that differs from the underlay's.
    let dst = match underlay {
        Underlay::V4 => "fd10::2",
        Underlay::V6 => "10.10.0.2",
    };
    let (sent, received) = tcp_transfer(&a, &b, dst, TRANSFER_BYTES);
    assert_eq!(sent, received, "64 MiB transfer to {dst} corrupted");

    let peer_b = va.peer(&kb.public);
    let peer_a = vb.peer(&ka.public);
    assert!(
        peer_b.tx_bytes > TRANSFER_BYTES && peer_a.rx_bytes > TRANSFER_BYTES,
        "the transfer crossed the tunnel: A->B tx {}, B<-A rx {}",
        peer_b.tx_bytes,
        peer_a.rx_bytes
    );
    assert_eq!(peer_b.state, "online");
    assert_eq!(peer_a.state, "online");
}

#[test]
fn vpnd_pair_over_ipv4_underlay() {
    vpnd_pair("vpnd_pair_over_ipv4_underlay", Underlay::V4, Offload::On);
}

#[test]
fn vpnd_pair_over_ipv6_underlay() {
    vpnd_pair("vpnd_pair_over_ipv6_underlay", Underlay::V6, Offload::On);
}

#[test]
fn vpnd_pair_over_ipv4_underlay_without_offload() {
    vpnd_pair("vpnd_pair_ipv4_no_offload", Underlay::V4, Offload::Off);
}

#[test]
fn vpnd_pair_over_ipv6_underlay_without_offload() {
    vpnd_pair("vpnd_pair_ipv6_no_offload", Underlay::V6, Offload::Off);
}

#[test]
fn vpnd_pair_with_offload_on_one_side_only() {
    vpnd_pair("vpnd_pair_mixed_offload", Underlay::V4, Offload::Mixed);
}

#[test]
fn vpnd_pair_with_crypto_workers() {
    vpnd_pair(
        "vpnd_pair_crypto_workers",
        Underlay::V4,
        Offload::CryptoWorkers,
    );
}
