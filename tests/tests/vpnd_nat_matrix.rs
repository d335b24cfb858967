//! The punching matrix on the shared NAT lab (`e2e::nat_lab`, issue 10): vpnd peers that know
//! only each other's public keys and a vpnhub, behind every pair of RFC 4787 NAT behaviours.
//!
//! ```text
//!   host ── router (NAT type X) ──┐
//!                                  inet (vpnhub on 198.18.0.3:3478)   × 10 pairs, one lab
//!   host ── router (NAT type Y) ──┘
//! ```
//!
//! * The 10 unordered pairs of {EIM+EIF, EIM+ADF, EIM+APDF, symmetric}, in parallel on one lab
//!   (distinct routers and addresses, one hub): the 8 that theory allows end `punched` on both
//!   sides, pass pings both ways and carry a 512 KiB TCP stream intact (all pairs' streams at
//!   once); EIM+APDF ↔ symmetric and symmetric ↔ symmetric end on the hub's relay (`relay`,
//!   `why_not_direct` = `probes_unanswered`) and carry the same pings and TCP stream through
//!   it. A table pair → path, time to `punched` (from both peers registered,
//!   `hubs[0].state` = `connected`) and the stream's time is printed.
//! * Two peers behind one NAT connect over the LAN (`direct`, a LAN `path_endpoint`).
//! * A public host and a NATed one connect `direct` or `punched`.
//! * Both NATs forget their mappings (conntrack flush) during a TCP stream: back to `punched`
//!   and pings within 10 s, and the stream completes intact.

use std::time::{Duration, Instant};

use e2e::nat_lab::{Host, NatLab, NatType, RouterSpec};
use e2e::vpnd::{peer_in, PeerConfig, Vpnd, VpndConfig};
use e2e::{ping_until, require_root_with, tcp_transfer_paced, try_tcp_transfer, TestGuard, WgKeys};
use serde_json::Value;

/// The WireGuard port of every peer (each in its own namespace).
const PORT: u16 = 51820;
/// How long a pair may take from start to its verdict (registration, a few probe rounds).
const VERDICT: Duration = Duration::from_secs(25);
/// The issue's target from both peers registered to `punched` (measured: about 0.1 s).
/// Slower means a probe round was lost and the next one (5 s later) did the job.
const PUNCH_TARGET: Duration = Duration::from_secs(2);
/// How long pings over a punched path may take to pass.
const PING_WAIT: Duration = Duration::from_secs(5);
/// Between two `vpnctl show` polls of one pair.
const POLL: Duration = Duration::from_millis(50);
/// The issue's bound for re-punching after the NAT forgot its mappings.
const REPUNCH: Duration = Duration::from_secs(10);
/// The TCP stream through each punched pair's tunnel: many TCP windows' worth, small enough
/// that 8 at once on a loaded CI machine take a second or two (measured here: 0.05–0.1 s
/// each, debug build; the matrix's time is set by the unpunchable pairs' 6 s anyway).
const STREAM_BYTES: u64 = 512 * 1024;
/// Bound on one pair's stream (a stalled path shows as a timeout, not a hang).
const STREAM_WAIT: Duration = Duration::from_secs(15);

/// One peer's view of the other: the `peers[]` entry and whether its hub is connected.
struct View {
    peer: Value,
    registered: bool,
}

fn view(vpnd: &Vpnd, key: &str) -> View {
    let v = vpnd.show_json();
    let peer = peer_in(&v, key);
    View {
        peer,
        registered: v["interface"]["nat"]["hubs"][0]["state"] == "connected",
    }
}

/// Two daemons on `a` and `b`, each knowing only the other's key and the hub; tunnel addresses
/// `10.81.<n>.1` and `.2`.
struct Pair {
    a: Vpnd,
    b: Vpnd,
    ka: WgKeys,
    kb: WgKeys,
    tunnel_a: String,
    tunnel_b: String,
}

impl Pair {
    fn start(n: u8, a: &Host, b: &Host, hub: &(String, String)) -> Pair {
        Pair::start_with_stun(n, a, b, hub, &[])
    }

    /// [`Pair::start`] with extra STUN servers (with the hub's, two IPs tell each side its
    /// NAT's mapping type).
    fn start_with_stun(n: u8, a: &Host, b: &Host, hub: &(String, String), stun: &[&str]) -> Pair {
        let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
        let (tunnel_a, tunnel_b) = (format!("10.81.{n}.1"), format!("10.81.{n}.2"));
        let config = |me: &WgKeys, ip: &str, other: &WgKeys, other_ip: &str| {
            VpndConfig::new("vpnmx0", me)
                .listen_port(PORT)
                .addresses(&[&format!("{ip}/24")])
                .hub(&hub.0, &hub.1)
                .stun_servers(stun)
                .peer(PeerConfig::new(&other.public, &[&format!("{other_ip}/32")]))
        };
        let va = Vpnd::start(a.ns(), &config(&ka, &tunnel_a, &kb, &tunnel_b));
        let vb = Vpnd::start(b.ns(), &config(&kb, &tunnel_b, &ka, &tunnel_a));
        Pair {
            a: va,
            b: vb,
            ka,
            kb,
            tunnel_a,
            tunnel_b,
        }
    }

    fn views(&self) -> (View, View) {
        (
            view(&self.a, &self.kb.public),
            view(&self.b, &self.ka.public),
        )
    }

    fn diagnostics(&self) -> String {
        let (va, vb) = self.views();
        format!(
            "A sees {:#}\nB sees {:#}\nA logs:\n{}\nB logs:\n{}",
            va.peer,
            vb.peer,
            self.a.proc().logs(),
            self.b.proc().logs()
        )
    }

    /// Polls until both sides are `punched` (`Ok`, with the time since both were registered)
    /// or, for a pair that cannot punch, both say `probes_unanswered` (`Err` with the views).
    /// A pair expected to punch (`punchable`) is polled until `deadline` in any case.
    fn verdict(
        &self,
        punchable: bool,
        deadline: Instant,
    ) -> Result<(Duration, Value, Value), (Value, Value)> {
        let mut registered: Option<Instant> = None;
        loop {
            let (va, vb) = self.views();
            if registered.is_none() && va.registered && vb.registered {
                registered = Some(Instant::now());
            }
            if va.peer["path"] == "punched" && vb.peer["path"] == "punched" {
                let since = registered.map(|t| t.elapsed()).unwrap_or_default();
                return Ok((since, va.peer, vb.peer));
            }
            let unanswered = |v: &View| {
                v.peer["path"] == "relay"
                    && (v.peer["why_not_direct"] == "probes_unanswered"
                        || v.peer["why_not_direct"] == "both_hard_nat")
            };
            // Registered and past a first full probe exchange before calling it.
            let settled =
                !punchable && registered.is_some_and(|t| t.elapsed() > Duration::from_secs(6));
            if settled && unanswered(&va) && unanswered(&vb) || Instant::now() >= deadline {
                return Err((va.peer, vb.peer));
            }
            std::thread::sleep(POLL);
        }
    }

    fn pings_both_ways(&self, a: &Host, b: &Host) -> bool {
        ping_until(a.ns(), &self.tunnel_b, PING_WAIT)
            && ping_until(b.ns(), &self.tunnel_a, PING_WAIT)
    }
}

/// Whether theory lets two NATs of these types punch: it fails only when one side's mapping
/// depends on the destination (symmetric) and the other side filters by port (APDF or
/// symmetric), so neither side's probe can reach a mapping the other has opened for it.
fn punchable(x: NatType, y: NatType) -> bool {
    let port_filter = |n: NatType| matches!(n, NatType::EimApdf | NatType::Symmetric);
    !(x == NatType::Symmetric && port_filter(y) || y == NatType::Symmetric && port_filter(x))
}

/// One row of the matrix as measured.
struct Row {
    x: NatType,
    y: NatType,
    path: String,
    time: Option<Duration>,
    /// How long the TCP stream took, for pairs that punched.
    stream: Option<Duration>,
    failure: Option<String>,
}

#[test]
fn nat_type_matrix() {
    if !require_root_with(&["nft", "conntrack", "ss", "ping", "turnserver"]) {
        return;
    }
    let guard = TestGuard::new("nat_type_matrix");
    let mut lab = NatLab::new(&guard);
    let hub = lab.start_hub();
    // A second STUN server on another IP: each side learns its mapping type.
    lab.start_coturn();
    let stun = lab.stun_servers();
    let kinds = NatType::BEHAVIOURS;
    let mut pairs = Vec::new();
    for (i, &x) in kinds.iter().enumerate() {
        for &y in &kinds[i..] {
            let (rx, ry) = (lab.router(x), lab.router(y));
            pairs.push((x, y, lab.host(&rx), lab.host(&ry)));
        }
    }
    assert_eq!(pairs.len(), 10);
    let started = Instant::now();
    let rows: Vec<Row> = std::thread::scope(|s| {
        let handles: Vec<_> = pairs
            .iter()
            .enumerate()
            .map(|(n, (x, y, a, b))| {
                let hub = &hub;
                let stun = &stun;
                s.spawn(move || {
                    let n = u8::try_from(n).expect("10 pairs");
                    let pair = Pair::start_with_stun(n, a, b, hub, &[stun[0].as_str()]);
                    let outcome = pair.verdict(punchable(*x, *y), Instant::now() + VERDICT);
                    let (path, time, mut failure) = match (&outcome, punchable(*x, *y)) {
                        (Ok((t, _, _)), true) => (
                            "punched".to_owned(),
                            Some(*t),
                            (*t > PUNCH_TARGET).then(|| {
                                format!("punched only after {t:?} (target {PUNCH_TARGET:?})")
                            }),
                        ),
                        (Ok((t, pa, pb)), false) => (
                            "punched".to_owned(),
                            Some(*t),
                            Some(format!("punched though theory says no:\n{pa:#}\n{pb:#}")),
                        ),
                        (Err((pa, pb)), expect) => {
                            let word = |p: &Value| p["path"].as_str().unwrap_or("?").to_owned();
                            let path = format!("{} / {}", word(pa), word(pb));
                            // Two symmetric NATs tell each other so (each knows
                            // its own from two STUN servers): `both_hard_nat`.
                            let why = if *x == NatType::Symmetric && *y == NatType::Symmetric {
                                "both_hard_nat"
                            } else {
                                "probes_unanswered"
                            };
                            let ok = !expect
                                && [pa, pb].iter().all(|p| {
                                    p["path"] == "relay"
                                        && p["why_not_direct"] == why
                                        && p["why_relayed"] == why
                                        && p["relay_transport"] == "udp"
                                });
                            let failure =
                                (!ok).then(|| format!("no expected verdict within {VERDICT:?}"));
                            (path, None, failure)
                        }
                    };
                    // Punched pairs and relayed ones carry traffic alike.
                    let carries = outcome.is_ok() || failure.is_none();
                    let mut add = |msg: String| {
                        failure = Some(failure.take().map_or(msg.clone(), |f| format!("{f}; {msg}")));
                    };
                    let mut stream = None;
                    if carries {
                        if !pair.pings_both_ways(a, b) {
                            add("pings do not pass both ways".to_owned());
                        }
                        let t = Instant::now();
                        match try_tcp_transfer(
                            a.ns(),
                            b.ns(),
                            &pair.tunnel_b,
                            STREAM_BYTES,
                            None,
                            STREAM_WAIT,
                        ) {
                            Ok((sent, received)) if sent == received => {
                                stream = Some(t.elapsed());
                            }
                            Ok((sent, received)) => add(format!(
                                "the TCP stream arrived corrupted: sent sha256 {sent}, received {received}"
                            )),
                            Err(e) => add(format!("the TCP stream failed: {e}")),
                        }
                    }
                    let failure = failure.map(|f| format!("{f}\n{}", pair.diagnostics()));
                    Row {
                        x: *x,
                        y: *y,
                        path,
                        time,
                        stream,
                        failure,
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a pair's thread panicked"))
            .collect()
    });
    eprintln!(
        "\nNAT pair                 expected   measured                 to punched  512 KiB TCP"
    );
    for r in &rows {
        eprintln!(
            "{:<24} {:<10} {:<24} {:<11} {}",
            format!("{} <-> {}", r.x, r.y),
            if punchable(r.x, r.y) {
                "punched"
            } else {
                "relay"
            },
            r.path,
            r.time
                .map_or("-".to_owned(), |t| format!("{:.2} s", t.as_secs_f64())),
            r.stream
                .map_or("-".to_owned(), |t| format!("{:.2} s", t.as_secs_f64()))
        );
    }
    eprintln!("(to punched: from both peers registered)");
    eprintln!("whole matrix: {:.1} s\n", started.elapsed().as_secs_f64());
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            r.failure
                .as_ref()
                .map(|f| format!("=== {} <-> {}: {f}", r.x, r.y))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Polls until both sides report `path` = one of `paths`; returns both peer entries.
fn wait_path(pair: &Pair, paths: &[&str], within: Duration) -> (Value, Value) {
    let deadline = Instant::now() + within;
    loop {
        let (va, vb) = pair.views();
        let ok = |v: &View| paths.iter().any(|p| v.peer["path"] == *p);
        if ok(&va) && ok(&vb) {
            return (va.peer, vb.peer);
        }
        assert!(
            Instant::now() < deadline,
            "not {paths:?} within {within:?}:\n{}",
            pair.diagnostics()
        );
        std::thread::sleep(POLL);
    }
}

#[test]
fn two_peers_behind_one_nat_connect_over_the_lan() {
    if !require_root_with(&["nft", "ss", "ping"]) {
        return;
    }
    let guard = TestGuard::new("two_peers_behind_one_nat_connect_over_the_lan");
    let mut lab = NatLab::new(&guard);
    let hub = lab.start_hub();
    let router = lab.router(NatType::EimApdf);
    let (a, b) = (lab.host(&router), lab.host(&router));
    let pair = Pair::start(0, &a, &b, &hub);
    let (pa, pb) = wait_path(&pair, &["direct"], VERDICT);
    assert_eq!(pa["path_endpoint"], format!("{}:{PORT}", b.ip), "{pa:#}");
    assert_eq!(pb["path_endpoint"], format!("{}:{PORT}", a.ip), "{pb:#}");
    assert!(pair.pings_both_ways(&a, &b));
}

#[test]
fn a_public_peer_and_a_nated_one_connect() {
    if !require_root_with(&["nft", "ss", "ping"]) {
        return;
    }
    let guard = TestGuard::new("a_public_peer_and_a_nated_one_connect");
    let mut lab = NatLab::new(&guard);
    let hub = lab.start_hub();
    let router = lab.router(NatType::EimApdf);
    let (a, b) = (lab.host(&router), lab.public_host());
    let pair = Pair::start(0, &a, &b, &hub);
    let (pa, pb) = wait_path(&pair, &["direct", "punched"], VERDICT);
    eprintln!("NATed side: {}, public side: {}", pa["path"], pb["path"]);
    assert_eq!(pa["path_endpoint"], format!("{}:{PORT}", b.ip), "{pa:#}");
    assert_eq!(
        pb["path_endpoint"],
        format!("{}:{PORT}", a.public_ip),
        "{pb:#}"
    );
    assert!(pair.pings_both_ways(&a, &b));
}

#[test]
fn punched_path_recovers_after_the_nat_forgets_its_mappings() {
    if !require_root_with(&["nft", "conntrack", "ss", "ping"]) {
        return;
    }
    let guard = TestGuard::new("punched_path_recovers_after_the_nat_forgets_its_mappings");
    let mut lab = NatLab::new(&guard);
    let hub = lab.start_hub();
    let (ra, rb) = (lab.router(NatType::EimApdf), lab.router(NatType::EimApdf));
    let (a, b) = (lab.host(&ra), lab.host(&rb));
    let pair = Pair::start(0, &a, &b, &hub);
    wait_path(&pair, &["punched"], VERDICT);
    assert!(pair.pings_both_ways(&a, &b));
    std::thread::scope(|s| {
        // 1 MB at 100 kB/s: about 10 s, across the flush and the re-punch.
        let stream = s.spawn(|| {
            tcp_transfer_paced(
                a.ns(),
                b.ns(),
                &pair.tunnel_b,
                1_000_000,
                Some(100_000),
                Duration::from_secs(40),
            )
        });
        std::thread::sleep(Duration::from_secs(2));
        // Both at once: neither side's next datagram finds the other's mapping still open,
        // so the path comes back only if both keep sending (data, keepalives, heartbeats).
        ra.flush_mappings();
        rb.flush_mappings();
        let flushed = Instant::now();
        assert!(
            ping_until(a.ns(), &pair.tunnel_b, REPUNCH)
                && ping_until(
                    b.ns(),
                    &pair.tunnel_a,
                    REPUNCH.saturating_sub(flushed.elapsed())
                ),
            "no pings within {REPUNCH:?} of the flush:\n{}",
            pair.diagnostics()
        );
        let (pa, pb) = wait_path(
            &pair,
            &["punched"],
            REPUNCH.saturating_sub(flushed.elapsed()),
        );
        eprintln!(
            "back to punched and pinging {:.2} s after the flush ({} / {})",
            flushed.elapsed().as_secs_f64(),
            pa["path_endpoint"],
            pb["path_endpoint"]
        );
        let (sent, received) = stream.join().expect("the TCP stream's thread");
        assert_eq!(sent, received, "the TCP stream's bytes arrive intact");
    });
}

#[test]
fn punched_path_outlives_a_ten_second_mapping_timeout() {
    if !require_root_with(&["nft", "conntrack", "ss", "ping"]) {
        return;
    }
    let guard = TestGuard::new("punched_path_outlives_a_ten_second_mapping_timeout");
    let mut lab = NatLab::new(&guard);
    let hub = lab.start_hub();
    let timeout = Duration::from_secs(10);
    // A cone (learnt entries expire too) and a plain masquerade (conntrack only).
    let ra = lab.router_with(RouterSpec::new(NatType::EimEif).mapping_timeout(timeout));
    let rb = lab.router_with(RouterSpec::new(NatType::EimApdf).mapping_timeout(timeout));
    let (a, b) = (lab.host(&ra), lab.host(&rb));
    let pair = Pair::start(0, &a, &b, &hub);
    wait_path(&pair, &["punched"], VERDICT);
    // 1 MB at 60 kB/s: about 17 s, longer than the mapping timeout.
    let (sent, received) = tcp_transfer_paced(
        a.ns(),
        b.ns(),
        &pair.tunnel_b,
        1_000_000,
        Some(60_000),
        Duration::from_secs(40),
    );
    assert_eq!(sent, received, "the TCP stream's bytes arrive intact");
    // Quiet for longer than the mapping timeout (the peer stays "active", so heartbeats run):
    // the path is still there, a ping passes at once.
    std::thread::sleep(timeout + Duration::from_secs(3));
    let (pa, pb) = pair.views();
    assert!(
        pa.peer["path"] == "punched" && pb.peer["path"] == "punched",
        "lost after {timeout:?} quiet:\n{}",
        pair.diagnostics()
    );
    assert!(
        ping_until(a.ns(), &pair.tunnel_b, Duration::from_secs(2)),
        "no ping after {timeout:?} quiet:\n{}",
        pair.diagnostics()
    );
}

/// Two homes behind one carrier-grade NAT (each with its own NAT router): their public
/// address is the same, and the lab's CGNAT does not hairpin (a datagram from its customer
/// side to its own public address is not sent back inside), so no UDP path exists: neither
/// the public candidates nor the LAN ones (different LANs) answer. This pins today's verdict,
/// `relay` with `probes_unanswered` on both sides, and pings pass through the relay.
#[test]
fn two_homes_behind_one_cgnat_without_hairpinning_are_relayed() {
    if !require_root_with(&["nft", "ss", "ping"]) {
        return;
    }
    let guard = TestGuard::new("two_homes_behind_one_cgnat_without_hairpinning_are_relayed");
    let mut lab = NatLab::new(&guard);
    let hub = lab.start_hub();
    let cgnat = lab.cgnat(NatType::EimApdf);
    let ra = lab.router_with(RouterSpec::new(NatType::EimApdf).behind(&cgnat));
    let rb = lab.router_with(RouterSpec::new(NatType::EimApdf).behind(&cgnat));
    let (a, b) = (lab.host(&ra), lab.host(&rb));
    assert_eq!(a.public_ip, b.public_ip);
    let pair = Pair::start(0, &a, &b, &hub);
    match pair.verdict(false, Instant::now() + VERDICT) {
        Ok((t, pa, pb)) => panic!(
            "punched after {:.2} s though the CGNAT does not hairpin: {} / {}",
            t.as_secs_f64(),
            pa["path_endpoint"],
            pb["path_endpoint"]
        ),
        Err((pa, pb)) => {
            for p in [&pa, &pb] {
                assert_eq!(p["path"], "relay", "{p:#}");
                assert_eq!(p["why_not_direct"], "probes_unanswered", "{p:#}");
            }
        }
    }
    assert!(
        pair.pings_both_ways(&a, &b),
        "pings through the relay\n{}",
        pair.diagnostics()
    );
}

/// Drops UDP between `router` and `peer_ip` both ways (the hub stays reachable), in a table of
/// its own so [`unblock`] lifts it.
fn block_udp_between(router: &e2e::nat_lab::Router, peer_ip: &str) {
    let ns = router.ns();
    ns.exec_ok(["nft", "add", "table", "ip", "pathblock"]);
    ns.exec_ok([
        "nft",
        "add",
        "chain",
        "ip",
        "pathblock",
        "forward",
        "{ type filter hook forward priority filter - 10; policy accept; }",
    ]);
    for dir in ["daddr", "saddr"] {
        ns.exec_ok([
            "nft",
            "add",
            "rule",
            "ip",
            "pathblock",
            "forward",
            "ip",
            dir,
            peer_ip,
            "meta",
            "l4proto",
            "udp",
            "drop",
        ]);
    }
}

fn unblock(router: &e2e::nat_lab::Router) {
    router
        .ns()
        .exec_ok(["nft", "delete", "table", "ip", "pathblock"]);
}

/// The issue 11 ladder on a pair that could punch: UDP between the two NATs blocked from the
/// start (relay), lifted (upgrade to punched, make-before-break), blocked again (back on the
/// relay), all under one TCP stream that must arrive intact.
#[test]
fn relay_first_then_punched_then_relay_again_under_one_stream() {
    if !require_root_with(&["nft", "conntrack", "ss", "ping"]) {
        return;
    }
    let guard = TestGuard::new("relay_first_then_punched_then_relay_again_under_one_stream");
    let mut lab = NatLab::new(&guard);
    let hub = lab.start_hub();
    let (ra, rb) = (lab.router(NatType::EimApdf), lab.router(NatType::EimApdf));
    block_udp_between(&ra, &rb.public_ip.to_string());
    let (a, b) = (lab.host(&ra), lab.host(&rb));
    let pair = Pair::start(0, &a, &b, &hub);
    let started = Instant::now();
    let (pa, _) = wait_path(&pair, &["relay"], VERDICT);
    eprintln!(
        "relayed {:.2} s after start ({})",
        started.elapsed().as_secs_f64(),
        pa["path_endpoint"]
    );
    assert!(pair.pings_both_ways(&a, &b), "{}", pair.diagnostics());
    std::thread::scope(|s| {
        // 2 MB at 100 kB/s: about 20 s, across both switches.
        let stream = s.spawn(|| {
            tcp_transfer_paced(
                a.ns(),
                b.ns(),
                &pair.tunnel_b,
                2_000_000,
                Some(100_000),
                Duration::from_secs(60),
            )
        });
        std::thread::sleep(Duration::from_secs(2));
        unblock(&ra);
        let lifted = Instant::now();
        // Probing retries direct every 5 s while relayed and active.
        wait_path(&pair, &["punched"], Duration::from_secs(10));
        eprintln!(
            "upgraded to punched {:.2} s after UDP between the NATs opened",
            lifted.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(2));
        // Pings every 100 ms across the downgrade: the longest gap between answers is the
        // stall a stream sees (the direct path in doubt sends on the relay too).
        let pinger = s.spawn(|| {
            let o = a
                .ns()
                .exec(["ping", "-D", "-n", "-i", "0.1", "-w", "9", &pair.tunnel_b]);
            String::from_utf8_lossy(&o.stdout).into_owned()
        });
        std::thread::sleep(Duration::from_millis(500));
        block_udp_between(&ra, &rb.public_ip.to_string());
        let blocked = Instant::now();
        let (pa, pb) = wait_path(&pair, &["relay"], Duration::from_secs(10));
        for p in [&pa, &pb] {
            assert_eq!(p["why_relayed"], "direct_path_broken", "{p:#}");
        }
        eprintln!(
            "back on the relay {:.2} s after UDP between the NATs was blocked",
            blocked.elapsed().as_secs_f64()
        );
        let pings = pinger.join().expect("the pinger");
        let stall = longest_gap(&pings);
        eprintln!("longest gap between ping answers across the downgrade: {stall:.2} s");
        assert!(
            stall < 5.0,
            "a stall of {stall:.2} s across the downgrade\n{pings}"
        );
        let (sent, received) = stream.join().expect("the TCP stream's thread");
        assert_eq!(sent, received, "the TCP stream's bytes arrive intact");
    });
    assert!(pair.pings_both_ways(&a, &b), "{}", pair.diagnostics());
}

/// Issue 11: "the hub restarted: peers reconnect within 5 s". A relayed pair (both NATs
/// symmetric) under a TCP stream; the hub is killed and started again (a new process: no
/// registrations, no channels). The first relayed frames it cannot place get `Unregistered`,
/// both peers register again and reopen their channel, and pings pass again within 5 s of
/// the restart; the stream arrives intact.
#[test]
fn a_relayed_pair_is_back_within_5_s_of_a_hub_restart() {
    if !require_root_with(&["nft", "conntrack", "ss", "ping"]) {
        return;
    }
    let guard = TestGuard::new("a_relayed_pair_is_back_within_5_s_of_a_hub_restart");
    let mut lab = NatLab::new(&guard);
    let lab_hub = lab.start_hub_with(e2e::nat_lab::HUB_IP, "memory");
    let hub = (lab_hub.address.clone(), lab_hub.public_key.clone());
    let (ra, rb) = (
        lab.router(NatType::Symmetric),
        lab.router(NatType::Symmetric),
    );
    let (a, b) = (lab.host(&ra), lab.host(&rb));
    let pair = Pair::start(0, &a, &b, &hub);
    wait_path(&pair, &["relay"], VERDICT);
    assert!(pair.pings_both_ways(&a, &b), "{}", pair.diagnostics());
    std::thread::scope(|s| {
        // 1.5 MB at 100 kB/s: about 15 s, across the restart.
        let stream = s.spawn(|| {
            tcp_transfer_paced(
                a.ns(),
                b.ns(),
                &pair.tunnel_b,
                1_500_000,
                Some(100_000),
                Duration::from_secs(60),
            )
        });
        std::thread::sleep(Duration::from_secs(2));
        lab.restart_hub(&lab_hub);
        let restarted = Instant::now();
        let back = ping_until(a.ns(), &pair.tunnel_b, Duration::from_secs(5))
            && ping_until(
                b.ns(),
                &pair.tunnel_a,
                Duration::from_secs(5).saturating_sub(restarted.elapsed()),
            );
        eprintln!(
            "relayed pings pass again {:.2} s after the hub restarted",
            restarted.elapsed().as_secs_f64()
        );
        assert!(
            back,
            "not back within 5 s of the restart:\n{}",
            pair.diagnostics()
        );
        let (sent, received) = stream.join().expect("the TCP stream's thread");
        assert_eq!(sent, received, "the TCP stream's bytes arrive intact");
    });
    wait_path(&pair, &["relay"], Duration::from_secs(5));
}

/// The longest time between two consecutive answers in `ping -D` output (seconds), counting
/// from the first answer to the last.
fn longest_gap(out: &str) -> f64 {
    let times: Vec<f64> = out
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}
