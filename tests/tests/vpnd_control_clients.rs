//! Idle control clients cannot starve vpnd (issue 9, defect 6).
//!
//! Under systemd's default descriptor limit (1024 soft and hard), 2,000 idle connections to the
//! control socket used to exhaust the daemon's descriptors: `vpnctl show` timed out and a SIGHUP
//! reload failed with "Too many open files". Now each socket server holds at most 256 clients,
//! evicts idle ones for a newcomer, closes the excess at once and counts it, so `vpnctl show` and
//! a reload keep working.

use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::vpnd::{PeerConfig, Vpnd, VpndConfig};
use e2e::{require_root_with, wait_until, TestGuard, WgKeys};

const IDLE_CLIENTS: usize = 2_000;

/// Raises this test process's own descriptor limit: it holds the 2,000 client sockets.
fn raise_own_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointers for getrlimit/setrlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.max(8192);
        lim.rlim_max = lim.rlim_cur;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

#[test]
fn idle_clients_do_not_starve_show_or_reload() {
    if !require_root_with(&["prlimit"]) {
        return;
    }
    let guard = TestGuard::new("idle_clients_do_not_starve_show_or_reload");
    let ns = guard.netns();
    raise_own_nofile();

    let config = VpndConfig::new("vpnfd0", &WgKeys::generate()).addresses(&["10.78.0.1/24"]);
    let mut vpnd = Vpnd::start(&ns, &config);
    let pid = vpnd.proc().pid().to_string();
    // systemd's default for services: the daemon cannot raise its soft limit past this.
    let out = Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=1024:1024"])
        .output()
        .unwrap();
    assert!(out.status.success(), "prlimit: {out:?}");

    let started = Instant::now();
    let mut idle = Vec::with_capacity(IDLE_CLIENTS);
    for _ in 0..IDLE_CLIENTS {
        // Connections past the backlog may fail while vpnd closes the excess: that is fine,
        // the point is the load.
        if let Ok(s) = UnixStream::connect(vpnd.socket()) {
            idle.push(s);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "connecting took too long"
        );
    }

    // The daemon still answers, in well under vpnctl's own timeout.
    let t = Instant::now();
    let show = vpnd.try_show();
    assert!(
        show.is_ok(),
        "vpnctl show with {} idle clients: {show:?}\n{}",
        idle.len(),
        vpnd.proc().logs()
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "show took {:?}",
        t.elapsed()
    );

    // A reload can still open the configuration file.
    let peer = WgKeys::generate();
    let changed = config
        .clone()
        .peer(PeerConfig::new(&peer.public, &["10.78.0.2/32"]));
    let mut changed = changed;
    changed.socket = Some(vpnd.socket().to_path_buf());
    std::fs::write(vpnd.config_path(), changed.to_yaml()).unwrap();
    vpnd.proc_mut().signal(libc::SIGHUP).unwrap();
    let reloaded = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        vpnd.try_show()
            .map(|s| s.peers.iter().any(|p| p.public_key == peer.public))
            .unwrap_or(false)
    });
    assert!(
        reloaded,
        "SIGHUP reload did not apply under load\n{}",
        vpnd.proc().logs()
    );
    assert!(
        !vpnd.proc().logs().contains("Too many open files"),
        "{}",
        vpnd.proc().logs()
    );

    // The excess was counted.
    let stats = vpnd.stats();
    let refused = stats.clients_refused.get("control").copied().unwrap_or(0);
    assert!(refused > 0, "no refused clients counted: {stats:?}");
    drop(idle);
}
