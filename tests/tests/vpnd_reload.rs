//! Live reload of a running vpnd, under traffic.
//!
//! A hub H (vpnd) has spokes A and B (each a vpnd in its own namespace, on
//! its own veth link to H); spoke C runs too but H does not know it yet.
//! While a paced TCP stream runs from H to A (`iperf3`, measured every
//! 0.5 s at both ends), H's configuration file is changed four times, one
//! change after the other, each through another trigger:
//!
//! * (a) add peer C — SIGHUP;
//! * (b) change B's allowed IPs (10.40.0.0/24 becomes 10.41.0.0/24) —
//!   `vpnctl reload`, which prints what changed;
//! * (c) remove B — the file watcher alone, the file saved the way editors
//!   do (a temporary file renamed over it);
//! * (d) lower the MTU from 1420 to 1380 — the file watcher alone, the file
//!   written in place.
//!
//! Each change takes effect: C answers through the tunnel and its routed
//! prefix appears in H's routing table, B's old prefix route goes and the
//! new one comes (and only the new one reaches B), B disappears from
//! `vpnctl show` and is unreachable, and the TUN's MTU is 1380 in
//! `ip link`. A sha256-checked TCP transfer to A succeeds after every step.
//!
//! Then three broken files (bad YAML, a bad key, an allowed IP claimed by
//! two peers) are each refused: `vpnctl reload` exits 1 and prints the
//! reason, the daemon logs it, and the running configuration is unchanged.
//! These run under a second stream to A.
//!
//! Across all of it A's session is untouched: its `handshakes` count and
//! `last_handshake` never change, and neither stream ever had a 0.5 s
//! interval in which no byte was sent or arrived. The daemons on the
//! stream's path and both `iperf3` ends run at nice -10, so that other
//! load on a shared machine cannot pass for a stall.

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::iperf::{IperfStream, STREAM_NICE};
use e2e::vpnd::{all_routes, write_config_file, PeerConfig, ShowResult, Vpnd, VpndConfig};
use e2e::{
    ping, ping_until, require_root_with, run_with_timeout, tcp_transfer_timeout, wait_until, Netns,
    TestGuard, VethPair, WgKeys,
};

/// Length of each `iperf3` stream; the changes it covers take a few
/// seconds, so the rest is margin for a loaded machine.
const STREAM_SECS: u32 = 15;
/// Pace of the stream: steady, and far below `rekey_after_bytes` (1 GiB)
/// over both streams, so that volume never causes a handshake.
const STREAM_MBIT: u32 = 80;
/// How long a change may take to show (the watcher polls every 500 ms and
/// waits for the file to settle, so about 1 s).
const CHANGE_TIMEOUT: Duration = Duration::from_secs(8);
/// A small transfer after each step: it must complete, intact.
const CHECK_BYTES: u64 = 1 << 20;
/// The log line of the file watcher.
const WATCHER_LINE: &str = "configuration file changed; reloading";

/// What of `vpnctl show --json` is configuration (not counters or state).
fn config_view(show: &ShowResult) -> String {
    let i = &show.interface;
    let mut v = format!(
        "{} {} port {} {:?} mtu {}\n",
        i.name, i.public_key, i.listen_port, i.addresses, i.mtu
    );
    for p in &show.peers {
        v.push_str(&format!(
            "{:?} {} {:?} {:?}\n",
            p.name, p.public_key, p.allowed_ips, p.persistent_keepalive
        ));
    }
    v
}

/// The daemon's stderr (its log) from byte `mark` on.
fn log_since(vpnd: &Vpnd, mark: usize) -> String {
    let log = vpnd.proc().stderr();
    log.get(mark..).unwrap_or("").to_owned()
}

/// Waits until the log after `mark` contains every one of `needles`, in
/// that order; returns that part of the log.
fn wait_log(vpnd: &Vpnd, mark: usize, needles: &[&str], what: &str) -> String {
    let mut text = String::new();
    let found = wait_until(CHANGE_TIMEOUT, Duration::from_millis(50), || {
        text = log_since(vpnd, mark);
        let mut rest = text.as_str();
        needles.iter().all(|n| match rest.find(n) {
            Some(i) => {
                rest = &rest[i + n.len()..];
                true
            }
            None => false,
        })
    });
    assert!(
        found,
        "{what}: the log never showed {needles:?} in order; log since the step:\n{text}"
    );
    text
}

/// Waits until the file watcher has reloaded after the last write (so the
/// next step starts with a watcher that has caught up).
fn wait_watcher(vpnd: &Vpnd, mark: usize, what: &str) {
    wait_log(vpnd, mark, &[WATCHER_LINE, "reload"], what);
}

/// Runs `vpnctl reload`; returns (exit code, stdout, stderr).
fn vpnctl_reload(vpnd: &Vpnd) -> (i32, String, String) {
    let out = run_with_timeout(&mut vpnd.vpnctl(["reload"]), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `yaml` the way editors save: a temporary file in the same
/// directory, renamed over the configuration file.
fn save_by_rename(path: &Path, yaml: &str) {
    let dir = path.parent().expect("the file has a directory");
    let tmp = write_config_file(dir, ".vpnd.yaml.swp", yaml);
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename over {}: {e}", path.display()));
}

/// The MTU of `ifname` in `ns`, from `ip link`.
fn link_mtu(ns: &Netns, ifname: &str) -> u32 {
    let line = ns.ip_ok(["-o", "link", "show", "dev", ifname]);
    line.split_whitespace()
        .skip_while(|w| *w != "mtu")
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no mtu in {line:?}"))
}

/// One ping attempt that must fail (no route, or no peer behind it).
fn unreachable(ns: &Netns, dst: &str) -> bool {
    !ns.exec_timeout(
        ["ping", "-n", "-q", "-c", "1", "-W", "1", dst],
        Duration::from_secs(5),
    )
    .status
    .success()
}

/// Drop counters of both ends of the stream, for failure messages.
fn drops(hub: &Vpnd, spoke_a: &Vpnd) -> String {
    format!(
        "drops: hub {:?}, A {:?}",
        hub.show().interface.drops,
        spoke_a.show().interface.drops
    )
}

/// A spoke: its own vpnd with H as its only peer.
fn spoke(ns: &Netns, me: &WgKeys, hub: &WgKeys, addrs: &[&str], hub_ep: &str) -> Vpnd {
    Vpnd::start(
        ns,
        &VpndConfig::new("vpn0", me)
            .listen_port(51820)
            .addresses(addrs)
            .peer(
                PeerConfig::new(&hub.public, &["10.10.0.1/32"])
                    .name("hub")
                    .endpoint(hub_ep),
            ),
    )
}

#[test]
fn live_reload_under_traffic_keeps_other_sessions() {
    if !require_root_with(&["iperf3", "ss"]) {
        return;
    }
    let guard = TestGuard::new("live_reload_under_traffic_keeps_other_sessions");
    let h = guard.netns();
    let a = guard.netns();
    let b = guard.netns();
    let c = guard.netns();
    let _la = VethPair::link(&h, &a, &["10.99.1.1/24"], &["10.99.1.2/24"]);
    let _lb = VethPair::link(&h, &b, &["10.99.2.1/24"], &["10.99.2.2/24"]);
    let _lc = VethPair::link(&h, &c, &["10.99.3.1/24"], &["10.99.3.2/24"]);
    let (kh, ka, kb, kc) = (
        WgKeys::generate(),
        WgKeys::generate(),
        WgKeys::generate(),
        WgKeys::generate(),
    );

    let peer_a = PeerConfig::new(&ka.public, &["10.10.0.2/32"])
        .name("a")
        .endpoint("10.99.1.2:51820");
    let peer_b = |prefix: &str| {
        PeerConfig::new(&kb.public, &["10.10.0.3/32", prefix])
            .name("b")
            .endpoint("10.99.2.2:51820")
    };
    let peer_c = |extra: &str| {
        PeerConfig::new(&kc.public, &["10.10.0.4/32", extra])
            .name("c")
            .endpoint("10.99.3.2:51820")
    };
    let hub_config = |peers: Vec<PeerConfig>, mtu: u32| {
        let mut cfg = VpndConfig::new("vpn0", &kh)
            .listen_port(51820)
            .addresses(&["10.10.0.1/24"])
            .mtu(mtu);
        cfg.peers = peers;
        cfg
    };

    let mut initial = hub_config(vec![peer_a.clone(), peer_b("10.40.0.0/24")], 1420);
    let mut hub = Vpnd::start(&h, &initial);
    // Later versions of the file keep the control socket where it is.
    initial.socket = Some(hub.socket().to_path_buf());
    let with_socket = |mut cfg: VpndConfig| {
        cfg.socket = initial.socket.clone();
        cfg.to_yaml()
    };
    let path = hub.config_path().to_path_buf();
    let dir = path.parent().expect("config dir").to_path_buf();

    let mut spoke_a = spoke(&a, &ka, &kh, &["10.10.0.2/24"], "10.99.1.1:51820");
    // The stream's path must not be starved by unrelated load on a shared
    // machine, or scheduling delays would read as stalls.
    for v in [&mut hub, &mut spoke_a] {
        v.proc_mut()
            .set_nice(STREAM_NICE)
            .expect("raise the daemon's priority");
    }
    let _vb = spoke(
        &b,
        &kb,
        &kh,
        &["10.10.0.3/24", "10.40.0.1/32", "10.41.0.1/32"],
        "10.99.2.1:51820",
    );
    let _vc = spoke(
        &c,
        &kc,
        &kh,
        &["10.10.0.4/24", "10.50.0.1/32"],
        "10.99.3.1:51820",
    );

    assert!(
        ping_until(&h, "10.10.0.2", Duration::from_secs(10)),
        "H -> A"
    );
    assert!(
        ping_until(&h, "10.10.0.3", Duration::from_secs(10)),
        "H -> B"
    );
    assert!(ping(&h, "10.40.0.1", 1), "H -> B's routed prefix");
    let a0 = hub.wait_peer_state(&ka.public, "online", Duration::from_secs(5));
    assert!(a0.handshakes >= 1 && a0.last_handshake.is_some(), "{a0:#?}");
    assert!(
        all_routes(&h).contains("10.40.0.0/24"),
        "route for B's prefix"
    );
    let check_a = |step: &str| {
        let (sent, received) =
            tcp_transfer_timeout(&h, &a, "10.10.0.2", CHECK_BYTES, Duration::from_secs(20));
        assert_eq!(sent, received, "transfer to A after {step}");
    };

    // ---- Phase 1: four changes under one stream to A.
    let mut stream = IperfStream::start(&h, &a, "10.10.0.2", STREAM_SECS, STREAM_MBIT);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(1));

    // (a) Add C; SIGHUP.
    let mark = hub.proc().stderr().len();
    let cfg_a = hub_config(
        vec![
            peer_a.clone(),
            peer_b("10.40.0.0/24"),
            peer_c("10.50.0.0/24"),
        ],
        1420,
    );
    write_config_file(&dir, "vpnd.yaml", &with_socket(cfg_a));
    hub.proc_mut().signal(libc::SIGHUP).expect("SIGHUP to vpnd");
    let log = wait_log(
        &hub,
        mark,
        &["SIGHUP: reloading", "reload: peer added:"],
        "(a) SIGHUP",
    );
    // The signal did it, not the watcher (which needs at least 500 ms).
    let added_at = log.find("reload: peer added:").unwrap_or(0);
    assert!(
        !log[..added_at].contains(WATCHER_LINE),
        "(a): the watcher reloaded before SIGHUP did:\n{log}"
    );
    assert!(
        ping_until(&h, "10.10.0.4", Duration::from_secs(10)),
        "(a): C unreachable after it was added\n{}",
        log_since(&hub, mark)
    );
    assert!(ping(&h, "10.50.0.1", 1), "(a): C's routed prefix");
    assert!(
        all_routes(&h).contains("10.50.0.0/24 dev vpn0"),
        "(a): no route for C's prefix:\n{}",
        all_routes(&h)
    );
    hub.wait_peer_state(&kc.public, "online", Duration::from_secs(5));
    check_a("(a)");
    wait_watcher(&hub, mark, "(a) watcher");

    // (b) B's allowed IPs: 10.40.0.0/24 -> 10.41.0.0/24; vpnctl reload.
    let mark = hub.proc().stderr().len();
    let cfg_b = hub_config(
        vec![
            peer_a.clone(),
            peer_b("10.41.0.0/24"),
            peer_c("10.50.0.0/24"),
        ],
        1420,
    );
    write_config_file(&dir, "vpnd.yaml", &with_socket(cfg_b));
    let (code, out, err) = vpnctl_reload(&hub);
    assert_eq!(code, 0, "(b): vpnctl reload failed: {out}{err}");
    assert!(
        out.contains("peer changed:") && out.contains("allowed_ips") && out.contains(&kb.public),
        "(b): vpnctl reload must report B's allowed IPs as changed, printed:\n{out}"
    );
    let routes = all_routes(&h);
    assert!(
        routes.contains("10.41.0.0/24 dev vpn0") && !routes.contains("10.40.0.0/24"),
        "(b): routes not updated:\n{routes}"
    );
    assert_eq!(
        hub.peer(&kb.public).allowed_ips,
        ["10.10.0.3/32", "10.41.0.0/24"],
        "(b): B's allowed IPs in show"
    );
    assert!(
        ping_until(&h, "10.41.0.1", Duration::from_secs(5)),
        "(b): B's new prefix"
    );
    assert!(
        unreachable(&h, "10.40.0.1"),
        "(b): B's old prefix still works"
    );
    check_a("(b)");
    wait_watcher(&hub, mark, "(b) watcher");

    // (c) Remove B; saved by rename, picked up by the watcher alone.
    let mark = hub.proc().stderr().len();
    let cfg_c = hub_config(vec![peer_a.clone(), peer_c("10.50.0.0/24")], 1420);
    save_by_rename(&path, &with_socket(cfg_c));
    wait_log(
        &hub,
        mark,
        &[WATCHER_LINE, "reload: peer removed:"],
        "(c) save by rename",
    );
    let show = hub.show();
    assert!(
        show.peers.iter().all(|p| p.public_key != kb.public),
        "(c): B still in show: {show:#?}"
    );
    assert!(
        !all_routes(&h).contains("10.41.0.0/24"),
        "(c): B's route left behind:\n{}",
        all_routes(&h)
    );
    assert!(unreachable(&h, "10.10.0.3"), "(c): B still reachable");
    check_a("(c)");

    // (d) MTU 1420 -> 1380; written in place, picked up by the watcher.
    let mark = hub.proc().stderr().len();
    let good = with_socket(hub_config(
        vec![peer_a.clone(), peer_c("10.50.0.0/24")],
        1380,
    ));
    write_config_file(&dir, "vpnd.yaml", &good);
    wait_log(
        &hub,
        mark,
        &[WATCHER_LINE, "reload: interface: mtu 1420 -> 1380"],
        "(d) MTU",
    );
    assert_eq!(link_mtu(&h, "vpn0"), 1380, "(d): MTU in ip link");
    assert_eq!(hub.show().interface.mtu, 1380, "(d): MTU in show");
    check_a("(d)");
    assert!(ping(&h, "10.10.0.4", 1), "(d): C after the MTU change");

    assert!(
        stream.is_running(),
        "the changes took {:?}, longer than the {STREAM_SECS} s stream that should cover them",
        started.elapsed()
    );
    let report = stream.finish();
    if let Some(why) = report.stall("phase 1: H -> A during the four changes") {
        panic!("{why}\n{}", drops(&hub, &spoke_a));
    }
    eprintln!(
        "phase 1: smallest 0.5 s interval {} B sent / {} B received, {} retransmits",
        report.client.min_bytes(),
        report.server.min_bytes(),
        report.client.retransmits.unwrap_or(0)
    );

    // ---- Phase 2: broken files are refused whole, under a second stream.
    let running = config_view(&hub.show());
    let mut stream = IperfStream::start(&h, &a, "10.10.0.2", STREAM_SECS, STREAM_MBIT);
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let a_key_line = format!("  - public_key: \"{}\"", ka.public);
    let broken = [
        (
            "bad YAML",
            format!("{good}  - public_key: [\"unclosed\"\n"),
            "syntax error",
        ),
        (
            "bad key",
            good.replace(&kc.public, "not*base64*at*all!"),
            "peers[1].public_key: not valid base64",
        ),
        (
            "overlapping allowed IPs",
            good.replace("\"10.50.0.0/24\"", "\"10.10.0.2/32\""),
            "already an allowed IP of peers[0]",
        ),
    ];
    assert!(good.contains(&a_key_line), "peer A comes first:\n{good}");
    for (what, yaml, reason) in &broken {
        let mark = hub.proc().stderr().len();
        write_config_file(&dir, "vpnd.yaml", yaml);
        let (code, out, err) = vpnctl_reload(&hub);
        assert_eq!(
            code, 1,
            "{what}: vpnctl reload must exit 1; stdout {out:?} stderr {err:?}"
        );
        assert!(
            err.contains(reason),
            "{what}: vpnctl reload must print the reason ({reason:?}), printed: {err}"
        );
        wait_log(&hub, mark, &["reload refused", reason], what);
        assert_eq!(
            config_view(&hub.show()),
            running,
            "{what}: the running configuration changed"
        );
        assert!(ping(&h, "10.10.0.2", 1), "{what}: A after the refusal");
        assert!(ping(&h, "10.10.0.4", 1), "{what}: C after the refusal");
        // The watcher refuses the file too; then the good file comes back.
        wait_log(&hub, mark, &[WATCHER_LINE, "reload refused"], what);
        let mark = hub.proc().stderr().len();
        write_config_file(&dir, "vpnd.yaml", &good);
        wait_log(&hub, mark, &[WATCHER_LINE, "reload: nothing changed"], what);
    }
    check_a("the refused files");
    assert!(
        stream.is_running(),
        "the refusals took {:?}, longer than the {STREAM_SECS} s stream that should cover them",
        started.elapsed()
    );
    let report = stream.finish();
    if let Some(why) = report.stall("phase 2: H -> A during the refused reloads") {
        panic!("{why}\n{}", drops(&hub, &spoke_a));
    }
    assert_eq!(config_view(&hub.show()), running, "after the refusals");

    // A's session survived everything: no new handshake at all.
    let a1 = hub.peer(&ka.public);
    assert_eq!(
        (a1.handshakes, a1.last_handshake),
        (a0.handshakes, a0.last_handshake),
        "A re-handshook during the reloads: before {a0:#?} after {a1:#?}"
    );
    assert_eq!(a1.state, "online");
    eprintln!("test took {:?}", guard.elapsed());
}
