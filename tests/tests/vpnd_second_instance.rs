//! A second vpnd for a running interface is refused and leaves the running tunnel alone
//! (issue 9, defect 1): it used to delete the live TUN as "stale", and the first daemon exited.
//!
//! * While pings cross a vpnd tunnel, a second vpnd with the same interface name (another port
//!   and socket) exits 1 naming the interface and the running daemon's PID; no ping is lost.
//! * After the first vpnd is SIGKILLed, a new start succeeds (the kernel released the lock).
//! * Another network namespace may run an interface of the same name at the same time.

use std::process::Stdio;
use std::time::Duration;

use e2e::vpnd::{run_vpnd, write_config_file, PeerConfig, Vpnd, VpndConfig};
use e2e::{ping_until, require_root_with, TestGuard, VethPair, WgKeys};

#[test]
fn a_second_vpnd_for_a_running_interface_is_refused() {
    if !require_root_with(&["ping"]) {
        return;
    }
    let guard = TestGuard::new("a_second_vpnd_for_a_running_interface_is_refused");
    let a = guard.netns();
    let b = guard.netns();
    let _veth = VethPair::link(&a, &b, &["10.98.0.1/24"], &["10.98.0.2/24"]);
    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
    let config_a = VpndConfig::new("vpndup0", &ka)
        .listen_port(51830)
        .addresses(&["10.11.0.1/24"])
        .peer(PeerConfig::new(&kb.public, &["10.11.0.2/32"]).endpoint("10.98.0.2:51831"));
    let config_b = VpndConfig::new("vpndup0", &kb)
        .listen_port(51831)
        .addresses(&["10.11.0.2/24"])
        .peer(PeerConfig::new(&ka.public, &["10.11.0.1/32"]).endpoint("10.98.0.1:51830"));
    let mut vpnd_a = Vpnd::start(&a, &config_a);
    // Same interface name in namespace b, at the same time.
    let _vpnd_b = Vpnd::start(&b, &config_b);
    assert!(ping_until(&a, "10.11.0.2", Duration::from_secs(10)));

    // 40 pings over 4 s while the second instance tries to start.
    let pinger = a
        .command([
            "ping",
            "-n",
            "-q",
            "-c",
            "40",
            "-i",
            "0.1",
            "-W",
            "1",
            "10.11.0.2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ping starts");
    std::thread::sleep(Duration::from_millis(500));

    let dir = tempfile::tempdir().unwrap();
    let mut second = config_a.clone().listen_port(51840);
    second.socket = Some(dir.path().join("second.sock"));
    let path = write_config_file(dir.path(), "second.yaml", &second.to_yaml());
    let out = run_vpnd(
        &a,
        ["--config".as_ref(), path.as_os_str()],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "second vpnd: {stderr}");
    let pid = vpnd_a.proc().pid();
    assert!(
        stderr.contains("vpndup0") && stderr.contains(&format!("pid {pid}")),
        "the refusal names the interface and the running daemon's PID ({pid}): {stderr}"
    );
    assert_eq!(
        stderr.matches("already run by another vpnd").count(),
        1,
        "the refusal is printed once: {stderr}"
    );

    let ping = pinger.wait_with_output().expect("ping ends");
    let summary = String::from_utf8_lossy(&ping.stdout);
    assert!(
        summary.contains("40 packets transmitted, 40 received"),
        "pings lost while the second vpnd started: {summary}\n{}",
        vpnd_a.proc().logs()
    );
    assert!(vpnd_a.try_show().is_ok(), "the first vpnd stopped serving");

    // SIGKILL: the lock goes with the process, the next start cleans up and runs.
    vpnd_a.kill();
    vpnd_a.restart(&a);
    assert!(ping_until(&a, "10.11.0.2", Duration::from_secs(15)));
}
