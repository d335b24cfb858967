//! Host-name endpoints (issue 9, issue 15).
//!
//! * A name that does not resolve when vpnd starts is retried with backoff (5 s doubling to
//!   5 min; divided by the test timer divisor here) and the tunnel comes up once it resolves,
//!   without a reload. It is logged once when it fails and once when it resolves, not per
//!   retry, and `show` reports it as `endpoint_unresolved` meanwhile.
//! * A lookup that hangs (a name server that never answers) delays neither the start-up nor a
//!   `peer update`: the root never waits for a resolver.
//!
//! Each daemon gets its own `/etc/hosts` (and `/etc/resolv.conf`) by bind mounts in its
//! private mount namespace ([`BIND_FILES_ENV`]).

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::vpnd::{PeerConfig, Vpnd, VpndConfig, BIND_FILES_ENV};
use e2e::{ping_until, require_root_with, run_with_timeout, TestGuard, VethPair, WgKeys};

/// Lines of the daemon's logs that contain `needle`.
fn log_lines(vpnd: &Vpnd, needle: &str) -> usize {
    let p = vpnd.proc();
    format!("{}\n{}", p.stdout(), p.stderr())
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

fn write_file(path: &Path, text: &str) {
    // In place (same inode): the bind mount keeps showing this file.
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

#[test]
fn an_unresolvable_name_is_retried_until_it_resolves() {
    if !require_root_with(&["ping"]) {
        return;
    }
    let guard = TestGuard::new("an_unresolvable_name_is_retried_until_it_resolves");
    let a = guard.netns();
    let b = guard.netns();
    let _veth = VethPair::link(&a, &b, &["10.97.0.1/24"], &["10.97.0.2/24"]);
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    write_file(&hosts, "127.0.0.1 localhost\n");

    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
    // A knows B only by name, with a keepalive: once the name resolves, A starts the
    // handshake by itself (no traffic needed).
    let config_a = VpndConfig::new("vpndns0", &ka)
        .listen_port(51850)
        .addresses(&["10.12.0.1/24"])
        .peer(
            PeerConfig::new(&kb.public, &["10.12.0.2/32"])
                .name("b")
                .endpoint("peer.test:51851")
                .persistent_keepalive(25),
        );
    let config_b = VpndConfig::new("vpndns0", &kb)
        .listen_port(51851)
        .addresses(&["10.12.0.2/24"])
        .peer(PeerConfig::new(&ka.public, &["10.12.0.1/32"]).name("a"));
    let bind = format!("{}=/etc/hosts", hosts.display());
    // Divisor 5: lookups at about 0, 1, 3, 7, 15 s after start.
    let started = Instant::now();
    let va = Vpnd::start_with_env(
        &a,
        &config_a,
        &[(BIND_FILES_ENV, &bind), ("VPND_TEST_TIMER_DIVISOR", "5")],
    );
    let _vb = Vpnd::start(&b, &config_b);

    // Unresolved: no endpoint, and show says which name it waits for.
    let peer = va.peer(&kb.public);
    assert_eq!(peer.endpoint, None, "{peer:?}");
    assert_eq!(
        peer.endpoint_unresolved.as_deref(),
        Some("peer.test:51851"),
        "show reports the unresolved name: {peer:?}\n{}",
        va.proc().logs()
    );
    let human = va.vpnctl(["show"]).output().unwrap();
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains("endpoint: peer.test:51851 (unresolved; retrying)"),
        "{human}"
    );

    // Three failed lookups (0, 1, 3 s) give one warning.
    std::thread::sleep(Duration::from_secs(4).saturating_sub(started.elapsed()));
    assert_eq!(
        log_lines(&va, "endpoint does not resolve"),
        1,
        "one warning however many retries:\n{}",
        va.proc().logs()
    );
    assert_ne!(va.peer(&kb.public).state, "online");

    // The name appears: the next retry (about 7 s after start) finds it; no reload.
    write_file(&hosts, "127.0.0.1 localhost\n10.97.0.2 peer.test\n");
    let peer = va.wait_peer_state(&kb.public, "online", Duration::from_secs(15));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "online only after {:?}",
        started.elapsed()
    );
    assert_eq!(peer.endpoint.as_deref(), Some("10.97.0.2:51851"));
    assert_eq!(peer.endpoint_unresolved, None);
    assert!(ping_until(&a, "10.12.0.2", Duration::from_secs(10)));

    // One notice with the address; still the one warning.
    let resolved = log_lines(&va, "endpoint resolved");
    assert_eq!(resolved, 1, "{}", va.proc().logs());
    assert!(
        va.proc().stderr().contains("10.97.0.2:51851")
            || va.proc().stdout().contains("10.97.0.2:51851"),
        "the notice names the address:\n{}",
        va.proc().logs()
    );
    assert_eq!(log_lines(&va, "endpoint does not resolve"), 1);
}

/// `vpnctl` with a bounded run time; returns (success, elapsed, output text).
fn timed_vpnctl(vpnd: &Vpnd, args: &[&str]) -> (bool, Duration, String) {
    let t = Instant::now();
    let out = run_with_timeout(&mut vpnd.vpnctl(args), Duration::from_secs(30)).unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), t.elapsed(), text)
}

#[test]
fn a_hanging_lookup_blocks_neither_start_nor_changes() {
    if !require_root_with(&[]) {
        return;
    }
    let guard = TestGuard::new("a_hanging_lookup_blocks_neither_start_nor_changes");
    let a = guard.netns();
    let b = guard.netns();
    // A name server whose queries vanish: its address maps to a MAC address nobody has, so
    // frames are silently dropped (no ARP failure, no ICMP error) and lookups wait for the
    // resolver's timeout (longer than vpnd's own 5 s limit on a lookup).
    let veth = VethPair::link(&a, &b, &["192.0.2.1/24"], &["192.0.2.2/24"]);
    a.ip_ok([
        "neigh",
        "add",
        "192.0.2.53",
        "lladdr",
        "02:00:00:00:00:53",
        "dev",
        &veth.if_a,
        "nud",
        "permanent",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (hosts, resolv) = (dir.path().join("hosts"), dir.path().join("resolv.conf"));
    write_file(&hosts, "127.0.0.1 localhost\n");
    write_file(
        &resolv,
        "nameserver 192.0.2.53\noptions timeout:10 attempts:1\n",
    );
    let bind = format!(
        "{}=/etc/hosts {}=/etc/resolv.conf",
        hosts.display(),
        resolv.display()
    );

    let (ka, kb, kc) = (WgKeys::generate(), WgKeys::generate(), WgKeys::generate());
    let config = VpndConfig::new("vpndns1", &ka)
        .listen_port(51860)
        .addresses(&["10.13.0.1/24"])
        .peer(
            PeerConfig::new(&kb.public, &["10.13.0.2/32"])
                .name("b")
                .endpoint("slow.test:51861"),
        );
    let started = Instant::now();
    let mut va = Vpnd::spawn_with_env(&a, &config, &[(BIND_FILES_ENV, &bind)]);
    // The old daemon looked the name up before answering anything: 5 s.
    va.wait_ready(Duration::from_secs(15));
    let ready = started.elapsed();
    assert!(
        ready < Duration::from_secs(4),
        "ready after {ready:?}: start-up waited for the lookup\n{}",
        va.proc().logs()
    );
    let peer = va.peer(&kb.public);
    assert_eq!(peer.endpoint_unresolved.as_deref(), Some("slow.test:51861"));

    // Changing the endpoint to another hanging name, and adding a peer with one, return at
    // once, and `show` answers meanwhile.
    let (ok, took, text) = timed_vpnctl(
        &va,
        &["peer", "update", "b", "--endpoint", "slow2.test:51861"],
    );
    assert!(ok, "{text}");
    assert!(
        took < Duration::from_secs(3),
        "peer update took {took:?}: {text}"
    );
    let (ok, took, text) = timed_vpnctl(
        &va,
        &[
            "peer",
            "add",
            &kc.public,
            "--allowed-ips",
            "10.13.0.3/32",
            "--endpoint",
            "slow3.test:51862",
        ],
    );
    assert!(ok, "{text}");
    assert!(
        took < Duration::from_secs(3),
        "peer add took {took:?}: {text}"
    );
    let (ok, took, text) = timed_vpnctl(&va, &["show", "--json"]);
    assert!(ok, "{text}");
    assert!(took < Duration::from_secs(2), "show took {took:?}");
    assert_eq!(
        va.peer(&kb.public).endpoint_unresolved.as_deref(),
        Some("slow2.test:51861")
    );
    assert_eq!(
        va.peer(&kc.public).endpoint_unresolved.as_deref(),
        Some("slow3.test:51862")
    );

    // The lookups were hanging all along (a failed one would have been logged).
    assert_eq!(
        log_lines(&va, "endpoint does not resolve"),
        0,
        "the name server was meant never to answer:\n{}",
        va.proc().logs()
    );

    // vpnd gives a lookup 5 s, then warns and retries later.
    assert!(
        va.proc()
            .wait_for_output("no answer within 5s", Duration::from_secs(10)),
        "{}",
        va.proc().logs()
    );

    // Stopping while lookups hang is prompt too.
    let t = Instant::now();
    let status = va.terminate(Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        va.proc().logs()
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        t.elapsed()
    );
}
