//! Self-tests of the harness building blocks: namespace and process
//! cleanup (including when a test panics), veth addressing, output capture
//! and stop escalation.

use std::os::unix::process::ExitStatusExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::{ping, require_root, run_ok, Netns, TestGuard, VethPair};

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

fn pid_alive(pid: u32) -> bool {
    // A reaped process has no /proc entry (barring PID reuse within the test).
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn failing_test_still_removes_namespaces_and_processes() {
    if !require_root() {
        return;
    }
    let mut seen = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let guard = TestGuard::new("forced_failure");
        let a = guard.netns();
        let b = guard.netns();
        let _veth = VethPair::link(&a, &b, &["10.98.0.1/24"], &["10.98.0.2/24"]);
        let daemon = a.spawn(["sleep", "600"]);
        seen = Some((a.name().to_owned(), b.name().to_owned(), daemon.pid()));
        assert!(netns_exists(a.name()) && netns_exists(b.name()));
        panic!("forced failure to exercise cleanup");
    }));
    assert!(result.is_err(), "the closure must have panicked");
    let (na, nb, pid) = seen.expect("the closure got far enough");
    assert!(!netns_exists(&na), "{na} must be gone after the panic");
    assert!(!netns_exists(&nb), "{nb} must be gone after the panic");
    assert!(
        !pid_alive(pid),
        "pid {pid} must have been killed and reaped"
    );
    let listed = run_ok(&mut e2e::command(["ip", "netns", "list"]));
    assert!(!listed.contains(&na) && !listed.contains(&nb), "{listed}");
}

#[test]
fn dropping_netns_kills_processes_started_outside_proc() {
    if !require_root() {
        return;
    }
    let ns = Netns::new();
    let name = ns.name().to_owned();
    // A plain child the harness does not guard: only the namespace teardown
    // can stop it.
    let mut child = ns.command(["sleep", "600"]).spawn().expect("spawn sleep");
    assert!(e2e::wait_until(
        Duration::from_secs(5),
        Duration::from_millis(10),
        || ns.pids().contains(&child.id())
    ));
    let start = Instant::now();
    drop(ns);
    assert!(!netns_exists(&name));
    let status = child.wait().expect("wait");
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "stopped by SIGTERM: {status:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn netns_has_loopback_and_ipv6_and_veth_works_at_once() {
    if !require_root() {
        return;
    }
    let guard = TestGuard::new("veth");
    let a = guard.netns();
    let b = guard.netns();
    assert!(ping(&a, "127.0.0.1", 1));
    assert!(ping(&a, "::1", 1), "IPv6 loopback must work");
    let veth = VethPair::link(
        &a,
        &b,
        &["10.97.0.1/24", "fd97::1/64"],
        &["10.97.0.2/24", "fd97::2/64"],
    );
    assert!(ping(&a, "10.97.0.2", 1));
    assert!(ping(&b, "fd97::1", 1), "IPv6 without waiting for DAD");
    let addrs = a.ip_ok(["-o", "addr", "show", "dev", &veth.if_a]);
    assert!(
        addrs.contains("fd97::1/64") && !addrs.contains("tentative"),
        "{addrs}"
    );
    veth.remove();
    assert!(!ping(&a, "10.97.0.2", 1));
}

#[test]
fn proc_captures_output_and_exit_status() {
    if !require_root() {
        return;
    }
    let ns = Netns::new();
    let mut p = ns.spawn(["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"]);
    let status = p.wait_exit(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(3));
    assert_eq!(p.stdout(), "to-stdout\n");
    assert_eq!(p.stderr(), "to-stderr\n");
    assert!(p.logs().contains("to-stdout") && p.logs().contains("to-stderr"));
    assert!(
        p.signal(libc::SIGTERM).is_err(),
        "no signals after the process was reaped"
    );
}

#[test]
fn proc_stop_escalates_to_sigkill() {
    if !require_root() {
        return;
    }
    let ns = Netns::new();
    let mut p = ns.spawn([
        "sh",
        "-c",
        "trap '' TERM; echo ready; while :; do sleep 0.1; done",
    ]);
    assert!(
        p.wait_for_output("ready", Duration::from_secs(10)),
        "{}",
        p.logs()
    );
    let start = Instant::now();
    let status = p.stop(Duration::from_millis(300)).expect("SIGKILL ends it");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(p.wait_exit(Duration::ZERO).is_some());
}

#[test]
fn proc_signal_reaches_the_program() {
    if !require_root() {
        return;
    }
    let ns = Netns::new();
    let mut p = ns.spawn([
        "sh",
        "-c",
        "trap 'echo got-hup; exit 0' HUP; echo ready; while :; do sleep 0.1; done",
    ]);
    assert!(
        p.wait_for_output("ready", Duration::from_secs(10)),
        "{}",
        p.logs()
    );
    p.signal(libc::SIGHUP).expect("SIGHUP");
    let status = p
        .wait_exit(Duration::from_secs(10))
        .expect("exits after SIGHUP");
    assert!(status.success(), "{}", p.logs());
    assert!(p.stdout().contains("got-hup"));
}
