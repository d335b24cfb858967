//! Concurrent changes do not undo each other (issue 15 #8). `vpnctl` and `wg` edits used to read
//! the configuration outside the root and reloads did not take the edit lock, so a SIGHUP
//! between a `peer add --save` and its write, or a change planned from a configuration a reload
//! had just replaced, lost changes. Every change is now applied inside the root, to the
//! configuration in force at its turn, and saved before the next.
//!
//! * `vpnctl peer add --save` ×N, SIGHUP ×N and `wg set` ×N at once: every saved peer is in
//!   force and in the file afterwards (`wg set` peers are unsaved, so a reload may drop them by
//!   design).
//! * `vpnctl peer add` ×N and `wg set` ×N at once, no reload: every peer is in force.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::vpnd::{run_vpnd, PeerConfig, Vpnd, VpndConfig};
use e2e::{require_root_with, run_with_timeout, TestGuard, WgKeys};

const N: usize = 25;
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

fn keys(n: usize) -> Vec<WgKeys> {
    (0..n).map(|_| WgKeys::generate()).collect()
}

fn run_ok(mut cmd: Command, what: &str) {
    let out = run_with_timeout(&mut cmd, COMMAND_TIMEOUT).expect("command runs");
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `wg set IFNAME peer KEY allowed-ips CIDR` against the daemon's UAPI socket (in its private
/// `/run`, hence `nsenter` into its mount namespace).
fn wg_set(vpnd: &Vpnd, key: &str, cidr: &str) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg("--target")
        .arg(vpnd.proc().pid().to_string())
        .args(["--mount", "--net", "wg", "set", vpnd.ifname(), "peer", key])
        .args(["allowed-ips", cidr]);
    cmd
}

fn peers_in_force(vpnd: &Vpnd) -> HashSet<String> {
    vpnd.show()
        .peers
        .into_iter()
        .map(|p| p.public_key)
        .collect()
}

#[test]
fn concurrent_changes_and_reloads_lose_nothing() {
    if !require_root_with(&["wg", "nsenter", "unshare"]) {
        return;
    }
    let guard = TestGuard::new("concurrent_changes_and_reloads_lose_nothing");
    let ns = guard.netns();
    let me = WgKeys::generate();
    let first = WgKeys::generate();
    let config = VpndConfig::new("vpncc0", &me)
        .listen_port(51860)
        .addresses(&["10.59.0.1/24"])
        .peer(PeerConfig::new(&first.public, &["10.59.0.2/32"]));
    let vpnd = Vpnd::start(&ns, &config);
    let pid = vpnd.proc().pid();
    let deadline = Instant::now() + Duration::from_secs(120);

    // Phase 1: saved adds, reloads and `wg set` at once.
    let (saved, uapi) = (keys(N), keys(N));
    std::thread::scope(|s| {
        s.spawn(|| {
            for (i, k) in saved.iter().enumerate() {
                assert!(Instant::now() < deadline, "phase 1 took too long");
                let cidr = format!("10.60.{i}.0/24");
                let name = format!("saved{i}");
                run_ok(
                    vpnd.vpnctl([
                        "peer",
                        "add",
                        &k.public,
                        "--allowed-ips",
                        &cidr,
                        "--name",
                        &name,
                        "--save",
                    ]),
                    "vpnctl peer add --save",
                );
            }
        });
        s.spawn(|| {
            for _ in 0..N {
                // SAFETY: kill(2) takes no pointers; the PID is the daemon this test started.
                let r = unsafe { libc::kill(pid as i32, libc::SIGHUP) };
                assert_eq!(r, 0, "SIGHUP to vpnd");
                std::thread::sleep(Duration::from_millis(15));
            }
        });
        s.spawn(|| {
            for (i, k) in uapi.iter().enumerate() {
                run_ok(
                    wg_set(&vpnd, &k.public, &format!("10.61.{i}.0/24")),
                    "wg set",
                );
            }
        });
    });
    // Let the last reloads (SIGHUP, file watcher) finish: a show goes through the same root.
    std::thread::sleep(Duration::from_millis(500));
    let in_force = peers_in_force(&vpnd);
    let file = std::fs::read_to_string(vpnd.config_path()).unwrap();
    let lost_in_force: Vec<&str> = saved
        .iter()
        .map(|k| k.public.as_str())
        .filter(|k| !in_force.contains(*k))
        .collect();
    let lost_in_file: Vec<&str> = saved
        .iter()
        .map(|k| k.public.as_str())
        .filter(|k| !file.contains(*k))
        .collect();
    assert!(
        lost_in_force.is_empty() && lost_in_file.is_empty(),
        "saved peers lost: {} not in force, {} not in the file\n{file}\n{}",
        lost_in_force.len(),
        lost_in_file.len(),
        vpnd.proc().logs()
    );
    assert!(in_force.contains(&first.public));
    let check = run_vpnd(
        &ns,
        ["--check", "--config", vpnd.config_path().to_str().unwrap()],
        COMMAND_TIMEOUT,
    );
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // Phase 2: unsaved adds and `wg set` at once; no reload, so everything stays.
    let (added, uapi2) = (keys(N), keys(N));
    std::thread::scope(|s| {
        s.spawn(|| {
            for (i, k) in added.iter().enumerate() {
                assert!(Instant::now() < deadline, "phase 2 took too long");
                let cidr = format!("10.62.{i}.0/24");
                run_ok(
                    vpnd.vpnctl(["peer", "add", &k.public, "--allowed-ips", &cidr]),
                    "vpnctl peer add",
                );
            }
        });
        s.spawn(|| {
            for (i, k) in uapi2.iter().enumerate() {
                run_ok(
                    wg_set(&vpnd, &k.public, &format!("10.63.{i}.0/24")),
                    "wg set",
                );
            }
        });
    });
    let in_force = peers_in_force(&vpnd);
    let lost: Vec<&str> = added
        .iter()
        .chain(&uapi2)
        .chain(&saved)
        .map(|k| k.public.as_str())
        .filter(|k| !in_force.contains(*k))
        .collect();
    assert!(lost.is_empty(), "changes lost: {lost:?}");
}
