//! Supervision of peer actors: a crash is contained and repaired, and a
//! peer that keeps crashing is given up on, without disturbing the others.
//!
//! The hub H runs a `vpnd` built with the test-only cargo feature
//! `fault-injection` (see [`e2e::vpnd::fault_injection_vpnd`]: set
//! `VPN_E2E_FAULT_VPND` to a prebuilt binary, or let the test run
//! `cargo build -p vpnd --features fault-injection --target-dir
//! <target>/fault` once). That build adds the JSON-RPC method
//! `debug.panic_peer {peer}`, which the test sends straight over the
//! control socket. Spokes A and B are ordinary `vpnd`s.
//!
//! * Phase 1, with paced TCP streams from H to A and to B: A's actor
//!   panics once. It is restarted alone: `peer.show` says `restarts: 1`, A
//!   handshakes again (its `handshakes` count grows, `last_handshake` is
//!   new), ping and the stream to A work again, while B's stream never has
//!   a 0.5 s interval without data and B's `handshakes` count and
//!   `last_handshake` do not change.
//! * Phase 2, with a stream to B only: A panics five more times within
//!   60 s. The sixth failure exceeds the restart intensity (5 restarts in
//!   60 s): A is `failed` in `vpnctl show --json` (and no longer reachable),
//!   `restarts` stays at 5, and B is still untouched.
//! * Phase 3: removing A from the file (`vpnctl reload`) and adding it back
//!   starts it afresh: it works again, `restarts` is 0, and one more crash
//!   is an ordinary restart, not an immediate `failed`.
//!
//! The daemons and both `iperf3` ends run at nice -10, so that other load
//! on a shared machine cannot pass for a stall.

use std::path::Path;
use std::time::Duration;

use e2e::iperf::{IperfStream, STREAM_NICE};
use e2e::rpc::{rpc_call, rpc_ok};
use e2e::vpnd::{fault_injection_vpnd, write_config_file, PeerConfig, Vpnd, VpndConfig};
use e2e::{
    ping, ping_until, require_root_with, run_with_timeout, wait_until, Netns, TestGuard, VethPair,
    WgKeys,
};
use serde_json::{json, Value};

const STREAM_SECS: u32 = 10;
const STREAM_MBIT: u32 = 60;
/// How long a restart (or the `failed` mark) may take to show.
const RESTART_TIMEOUT: Duration = Duration::from_secs(5);

/// `peer.show` for `peer` over the raw control socket.
fn peer_show(socket: &Path, peer: &str) -> Value {
    rpc_ok(socket, "peer.show", Some(json!({ "peer": peer })))
}

fn restarts(socket: &Path, peer: &str) -> u64 {
    peer_show(socket, peer)["restarts"]
        .as_u64()
        .expect("peer.show has a numeric `restarts`")
}

/// Makes `peer`'s actor panic and waits until the supervisor has dealt
/// with it: `restarts` reached `expect_restarts`, or (when `expect_failed`)
/// the peer is marked failed.
fn panic_peer(hub: &Vpnd, peer: &str, expect_restarts: u64, expect_failed: bool) {
    let socket = hub.socket();
    let r = rpc_call(socket, "debug.panic_peer", Some(json!({ "peer": peer })));
    assert_eq!(
        r,
        Ok(Value::Bool(true)),
        "debug.panic_peer (is this vpnd built with --features fault-injection?)"
    );
    let mut last = Value::Null;
    let done = wait_until(RESTART_TIMEOUT, Duration::from_millis(20), || {
        last = peer_show(socket, peer);
        let failed = last["state"] == "failed";
        last["restarts"].as_u64() == Some(expect_restarts) && failed == expect_failed
    });
    assert!(
        done,
        "after panic: expected restarts {expect_restarts}, failed {expect_failed}; \
         peer.show says {last:#}\n{}",
        hub.proc().stderr()
    );
}

fn spoke(ns: &Netns, me: &WgKeys, hub: &WgKeys, addr: &str, hub_ep: &str) -> Vpnd {
    Vpnd::start(
        ns,
        &VpndConfig::new("vpn0", me)
            .listen_port(51820)
            .addresses(&[addr])
            .peer(
                PeerConfig::new(&hub.public, &["10.10.0.1/32"])
                    .name("hub")
                    .endpoint(hub_ep),
            ),
    )
}

#[test]
fn crashed_peer_is_restarted_alone_then_marked_failed() {
    if !require_root_with(&["iperf3", "ss"]) {
        return;
    }
    let binary = fault_injection_vpnd();
    let guard = TestGuard::new("crashed_peer_is_restarted_alone_then_marked_failed");
    let h = guard.netns();
    let a = guard.netns();
    let b = guard.netns();
    let _la = VethPair::link(&h, &a, &["10.99.1.1/24"], &["10.99.1.2/24"]);
    let _lb = VethPair::link(&h, &b, &["10.99.2.1/24"], &["10.99.2.2/24"]);
    let (kh, ka, kb) = (WgKeys::generate(), WgKeys::generate(), WgKeys::generate());

    let peer_a = PeerConfig::new(&ka.public, &["10.10.0.2/32"])
        .name("a")
        .endpoint("10.99.1.2:51820");
    let peer_b = PeerConfig::new(&kb.public, &["10.10.0.3/32"])
        .name("b")
        .endpoint("10.99.2.2:51820");
    let mut hub_config = VpndConfig::new("vpn0", &kh)
        .listen_port(51820)
        .addresses(&["10.10.0.1/24"])
        .peer(peer_a.clone())
        .peer(peer_b.clone());
    let mut hub = Vpnd::start_binary(&binary, &h, &hub_config, &[]);
    hub_config.socket = Some(hub.socket().to_path_buf());
    let mut va = spoke(&a, &ka, &kh, "10.10.0.2/24", "10.99.1.1:51820");
    let mut vb = spoke(&b, &kb, &kh, "10.10.0.3/24", "10.99.2.1:51820");
    // The streams' paths must not be starved by unrelated load on a shared
    // machine, or scheduling delays would read as stalls.
    for v in [&mut hub, &mut va, &mut vb] {
        v.proc_mut()
            .set_nice(STREAM_NICE)
            .expect("raise the daemon's priority");
    }
    let socket = hub.socket().to_path_buf();

    assert!(
        ping_until(&h, "10.10.0.2", Duration::from_secs(10)),
        "H -> A"
    );
    assert!(
        ping_until(&h, "10.10.0.3", Duration::from_secs(10)),
        "H -> B"
    );
    let a0 = hub.wait_peer_state(&ka.public, "online", Duration::from_secs(5));
    let b0 = hub.wait_peer_state(&kb.public, "online", Duration::from_secs(5));
    assert_eq!(restarts(&socket, "a"), 0);
    // The method exists only in this build; a bad selector is refused.
    let e = rpc_call(&socket, "debug.panic_peer", Some(json!({"peer": "nobody"})))
        .expect_err("unknown peer");
    assert_eq!(e["code"], -32001, "{e}");

    // ---- Phase 1: one crash, repaired, B undisturbed.
    let stream_a = IperfStream::start(&h, &a, "10.10.0.2", STREAM_SECS, STREAM_MBIT);
    let stream_b = IperfStream::start(&h, &b, "10.10.0.3", STREAM_SECS, STREAM_MBIT);
    std::thread::sleep(Duration::from_secs(1));
    // A new second, so that a new handshake shows in `last_handshake`.
    std::thread::sleep(Duration::from_secs(1));
    panic_peer(&hub, "a", 1, false);
    let a1 = hub.wait_peer(
        &ka.public,
        Duration::from_secs(10),
        "a new handshake after the restart",
        |p| p.state == "online" && p.handshakes > a0.handshakes,
    );
    assert!(
        a1.last_handshake > a0.last_handshake,
        "A's last handshake must be new: before {a0:#?} after {a1:#?}"
    );
    assert!(ping(&h, "10.10.0.2", 2), "A after its restart");
    let rb = stream_b.finish();
    let ra = stream_a.finish();
    rb.assert_no_stall("phase 1: H -> B while A crashed and restarted");
    for side in [&ra.client, &ra.server] {
        assert!(side.error.is_none(), "stream to A failed: {:?}", side.error);
    }
    let tail = ra.server.intervals.iter().rev().take(4).collect::<Vec<_>>();
    assert!(
        tail.iter().all(|i| i.bytes > 0),
        "the stream to A must flow again after the restart: {:?}",
        ra.server.intervals
    );
    let b1 = hub.peer(&kb.public);
    assert_eq!(
        (b1.handshakes, b1.last_handshake),
        (b0.handshakes, b0.last_handshake),
        "B re-handshook when A crashed"
    );
    assert_eq!(peer_show(&socket, "b")["restarts"], 0);

    // ---- Phase 2: five more crashes within 60 s; the sixth failure marks A failed.
    let stream_b = IperfStream::start(&h, &b, "10.10.0.3", STREAM_SECS, STREAM_MBIT);
    std::thread::sleep(Duration::from_millis(500));
    for n in 2..=5 {
        panic_peer(&hub, "a", n, false);
    }
    panic_peer(&hub, "a", 5, true);
    let show = hub.show();
    let pa = show
        .peers
        .iter()
        .find(|p| p.public_key == ka.public)
        .expect("A stays configured");
    assert_eq!(pa.state, "failed", "vpnctl show --json: {pa:#?}");
    assert!(
        hub.proc().stderr().contains("marking it failed"),
        "the log says why A is failed"
    );
    assert!(
        !ping(&h, "10.10.0.2", 1),
        "a failed peer is out of the data plane"
    );
    assert!(ping(&h, "10.10.0.3", 2), "B while A is failed");
    let rb = stream_b.finish();
    rb.assert_no_stall("phase 2: H -> B while A crashed repeatedly");
    let b2 = hub.peer(&kb.public);
    assert_eq!(
        (b2.handshakes, b2.last_handshake, b2.state.as_str()),
        (b0.handshakes, b0.last_handshake, "online"),
        "B was disturbed by A's failures"
    );
    assert_eq!(peer_show(&socket, "b")["restarts"], 0);

    // ---- Phase 3: remove A and add it back; it starts afresh.
    let dir = hub
        .config_path()
        .parent()
        .expect("config dir")
        .to_path_buf();
    for peers in [vec![peer_b.clone()], vec![peer_a.clone(), peer_b.clone()]] {
        hub_config.peers = peers;
        write_config_file(&dir, "vpnd.yaml", &hub_config.to_yaml());
        let out = run_with_timeout(&mut hub.vpnctl(["reload"]), Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "vpnctl reload: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        ping_until(&h, "10.10.0.2", Duration::from_secs(10)),
        "A after it was removed and added back"
    );
    assert_eq!(restarts(&socket, "a"), 0, "a re-added peer starts afresh");
    panic_peer(&hub, "a", 1, false);
    assert!(
        ping_until(&h, "10.10.0.2", Duration::from_secs(10)),
        "A after a crash of the re-added peer"
    );
    let b3 = hub.peer(&kb.public);
    assert_eq!(
        (b3.handshakes, b3.last_handshake),
        (b0.handshakes, b0.last_handshake),
        "B was disturbed by A's removal and return"
    );
    eprintln!("test took {:?}", guard.elapsed());
}

/// `interface.dataplane_restarts[task]` in `show`.
fn dataplane_restarts(socket: &Path, task: &str) -> u64 {
    rpc_ok(socket, "show", None)["interface"]["dataplane_restarts"][task]
        .as_u64()
        .expect("show has interface.dataplane_restarts for every task")
}

/// Arms a panic in data-plane task `task` of `hub`, sets it off with pings from `h` to
/// `target` (the handshake worker is woken by the RPC itself) and waits until the root
/// restarted it `expect` times in all.
fn panic_dataplane(hub: &Vpnd, h: &Netns, target: &str, task: &str, expect: u64) {
    let socket = hub.socket();
    let r = rpc_call(
        socket,
        "debug.panic_dataplane",
        Some(json!({ "task": task })),
    );
    assert_eq!(r, Ok(Value::Bool(true)), "debug.panic_dataplane {task}");
    let done = wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
        if task != "handshake" {
            ping(h, target, 1);
        }
        dataplane_restarts(socket, task) == expect
    });
    assert!(
        done,
        "{task} was not restarted (expected {expect} restarts, show says {})\n{}",
        rpc_ok(socket, "show", None)["interface"],
        hub.proc().stderr()
    );
}

/// A panic in the receive task, the send task and the handshake worker thread each is noticed
/// by the root, logged at ERROR and repaired: the task is restarted, `dataplane_restarts`
/// counts it, and traffic (and, for the handshake worker, new handshakes) flows again. Past the
/// restart intensity (more than 5 failures of one task in 60 s), vpnd exits with status 1.
#[test]
fn dataplane_task_panics_are_restarted_then_stop_the_daemon() {
    if !require_root_with(&[]) {
        return;
    }
    let binary = fault_injection_vpnd();
    let guard = TestGuard::new("dataplane_task_panics_are_restarted_then_stop_the_daemon");
    let h = guard.netns();
    let a = guard.netns();
    let _la = VethPair::link(&h, &a, &["10.99.1.1/24"], &["10.99.1.2/24"]);
    let (kh, ka) = (WgKeys::generate(), WgKeys::generate());
    let hub_config = VpndConfig::new("vpn0", &kh)
        .listen_port(51820)
        .addresses(&["10.10.0.1/24"])
        .peer(
            PeerConfig::new(&ka.public, &["10.10.0.2/32"])
                .name("a")
                .endpoint("10.99.1.2:51820"),
        );
    let mut hub = Vpnd::start_binary(&binary, &h, &hub_config, &[]);
    let mut va = spoke(&a, &ka, &kh, "10.10.0.2/24", "10.99.1.1:51820");
    let socket = hub.socket().to_path_buf();
    assert!(
        ping_until(&h, "10.10.0.2", Duration::from_secs(10)),
        "H -> A"
    );
    for task in ["receive_v4", "receive_v6", "send", "handshake"] {
        assert_eq!(dataplane_restarts(&socket, task), 0, "{task}");
    }
    let e = rpc_call(
        &socket,
        "debug.panic_dataplane",
        Some(json!({"task": "nothing"})),
    )
    .expect_err("unknown task");
    assert_eq!(e["code"], -32602, "{e}");

    for task in ["receive_v4", "send"] {
        panic_dataplane(&hub, &h, "10.10.0.2", task, 1);
        assert!(
            ping_until(&h, "10.10.0.2", Duration::from_secs(10)),
            "H -> A after the {task} task was restarted\n{}",
            hub.proc().stderr()
        );
    }

    // The handshake worker: after its restart, a new handshake (A starts afresh) completes.
    let before = hub.peer(&ka.public).handshakes;
    panic_dataplane(&hub, &h, "10.10.0.2", "handshake", 1);
    va.terminate(Duration::from_secs(5)).expect("A stops");
    va.restart(&a);
    // A (afresh, without a session) initiates; H's restarted worker must answer.
    assert!(
        ping_until(&a, "10.10.0.1", Duration::from_secs(15)),
        "A -> H after H's handshake worker was restarted\n{}",
        hub.proc().stderr()
    );
    let after = hub.wait_peer(
        &ka.public,
        Duration::from_secs(10),
        "a handshake through the restarted worker",
        |p| p.handshakes > before,
    );
    assert_eq!(after.state, "online");
    let log = hub.proc().stderr();
    assert!(
        log.contains("ERROR") && log.contains("data-plane task failed; restarting it"),
        "the failures are logged at ERROR:\n{log}"
    );
    let out = run_with_timeout(&mut hub.vpnctl(["show"]), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("data-plane restarts: handshake 1, receive_v4 1, send 1"),
        "vpnctl show:\n{text}"
    );

    // Past the intensity limit: the sixth failure of the send task within 60 s stops vpnd.
    for n in 2..=5 {
        panic_dataplane(&hub, &h, "10.10.0.2", "send", n);
    }
    let r = rpc_call(
        &socket,
        "debug.panic_dataplane",
        Some(json!({ "task": "send" })),
    );
    assert_eq!(r, Ok(Value::Bool(true)));
    let mut status = None;
    for _ in 0..50 {
        ping(&h, "10.10.0.2", 1);
        status = hub.proc_mut().wait_exit(Duration::from_millis(100));
        if status.is_some() {
            break;
        }
    }
    let status = status.unwrap_or_else(|| {
        panic!(
            "vpnd still runs after a sixth send-task failure\n{}",
            hub.proc().stderr()
        )
    });
    assert_eq!(status.code(), Some(1), "{}", hub.proc().stderr());
    assert!(
        hub.proc().stderr().contains("failed more than 5 times"),
        "the log says why vpnd stopped"
    );
    eprintln!("test took {:?}", guard.elapsed());
}
