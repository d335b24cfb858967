//! A UDP port that is taken is an error naming `interface.listen_port` and the fix (issue 9),
//! for IPv6 as well as IPv4 (issue 15 #7: a taken IPv6 port used to be read as "no IPv6 on
//! this host", and vpnd ran IPv4-only without a word).
//!
//! * Start: with the IPv4 port held by another program, and then with only the IPv6 port held
//!   (`[::]:P`, IPv6-only), `vpnd --config` exits 1 with
//!   `interface.listen_port: P is already in use` and leaves no interface behind.
//! * Runtime: `vpnctl interface set --listen-port` and `vpnctl reload` onto a taken port (IPv4,
//!   then IPv6 alone) are refused with the same message; the old port keeps carrying the tunnel.

use std::ffi::OsStr;
use std::time::Duration;

use e2e::vpnd::{link_names, run_vpnd, write_config_file, PeerConfig, Vpnd, VpndConfig};
use e2e::{
    ping_until, require_root_with, run_with_timeout, Netns, Proc, TestGuard, VethPair, WgKeys,
};

const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// Holds UDP `listen` in `ns` (an `e2e-udp recv`), as another program would. Call
/// [`ipv6_only_sockets`] first for an `[::]` address that must leave IPv4 free.
fn hold_port(ns: &Netns, listen: &str) -> Proc {
    let p = ns.spawn([
        e2e::cargo_binary("e2e-udp").to_string_lossy().as_ref(),
        "recv",
        "--listen",
        listen,
        "--timeout",
        "120",
    ]);
    assert!(
        p.wait_for_output("listening", Duration::from_secs(10)),
        "{}",
        p.logs()
    );
    p
}

/// Makes `[::]` sockets in `ns` IPv6-only by default (vpnd sets `IPV6_V6ONLY` itself, so only
/// the port holder is affected).
fn ipv6_only_sockets(ns: &Netns) {
    ns.sysctl("net.ipv6.bindv6only", "1");
}

fn expect_in_use(stderr: &str, port: u16, what: &str) {
    let needle = format!("interface.listen_port: {port} is already in use");
    assert!(
        stderr.contains(&needle),
        "{what}: no `{needle}` in: {stderr}"
    );
    assert!(
        stderr.contains("choose another port"),
        "{what}: no hint: {stderr}"
    );
}

#[test]
fn a_taken_port_refuses_start_naming_the_field() {
    if !require_root_with(&[]) {
        return;
    }
    let guard = TestGuard::new("a_taken_port_refuses_start_naming_the_field");
    let ns = guard.netns();
    let keys = WgKeys::generate();
    let dir = tempfile::tempdir().unwrap();
    let start = |port: u16| {
        let mut c = VpndConfig::new("vpnport0", &keys)
            .listen_port(port)
            .addresses(&["10.12.0.1/24"]);
        c.socket = Some(dir.path().join("control.sock"));
        let path = write_config_file(dir.path(), "vpn.yaml", &c.to_yaml());
        run_vpnd(&ns, [OsStr::new("--config"), path.as_os_str()], RUN_TIMEOUT)
    };

    let holder = hold_port(&ns, "0.0.0.0:51850");
    let out = start(51850);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "IPv4 port taken: {stderr}");
    expect_in_use(&stderr, 51850, "IPv4 port taken");
    drop(holder);

    ipv6_only_sockets(&ns);
    let _holder = hold_port(&ns, "[::]:51851");
    let out = start(51851);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "IPv6 port taken (vpnd must not run IPv4-only): {stderr}"
    );
    expect_in_use(&stderr, 51851, "IPv6 port taken");
    assert!(stderr.contains("(for IPv6)"), "{stderr}");
    assert!(
        !link_names(&ns).iter().any(|l| l == "vpnport0"),
        "a refused start left its interface: {:?}",
        link_names(&ns)
    );
}

#[test]
fn a_taken_port_is_refused_at_runtime_and_the_old_port_keeps_working() {
    if !require_root_with(&["ping"]) {
        return;
    }
    let guard = TestGuard::new("a_taken_port_is_refused_at_runtime_and_the_old_port_keeps_working");
    let a = guard.netns();
    let b = guard.netns();
    let _veth = VethPair::link(&a, &b, &["10.97.0.1/24"], &["10.97.0.2/24"]);
    let (ka, kb) = (WgKeys::generate(), WgKeys::generate());
    let config_a = VpndConfig::new("vpnport1", &ka)
        .listen_port(51860)
        .addresses(&["10.13.0.1/24"])
        .peer(PeerConfig::new(&kb.public, &["10.13.0.2/32"]).endpoint("10.97.0.2:51861"));
    let config_b = VpndConfig::new("vpnport1", &kb)
        .listen_port(51861)
        .addresses(&["10.13.0.2/24"])
        .peer(PeerConfig::new(&ka.public, &["10.13.0.1/32"]).endpoint("10.97.0.1:51860"));
    let vpnd_a = Vpnd::start(&a, &config_a);
    let _vpnd_b = Vpnd::start(&b, &config_b);
    assert!(ping_until(&a, "10.13.0.2", Duration::from_secs(10)));
    // The file as the daemon reads it (its control socket included), for the reloads.
    let mut file_a = config_a.clone();
    file_a.socket = Some(vpnd_a.socket().to_path_buf());

    let _v4 = hold_port(&a, "0.0.0.0:51862");
    ipv6_only_sockets(&a);
    let _v6 = hold_port(&a, "[::]:51863");

    for (port, what) in [(51862, "IPv4 taken"), (51863, "IPv6 taken")] {
        let out = run_with_timeout(
            &mut vpnd_a.vpnctl(["interface", "set", "--listen-port", &port.to_string()]),
            RUN_TIMEOUT,
        )
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "interface set, {what}: {stderr}");
        expect_in_use(&stderr, port, &format!("interface set, {what}"));

        std::fs::write(
            vpnd_a.config_path(),
            file_a.clone().listen_port(port).to_yaml(),
        )
        .unwrap();
        let out = run_with_timeout(&mut vpnd_a.vpnctl(["reload"]), RUN_TIMEOUT).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "reload, {what}: {stderr}");
        expect_in_use(&stderr, port, &format!("reload, {what}"));
        // Put the file back before the watcher could try it again.
        std::fs::write(vpnd_a.config_path(), file_a.to_yaml()).unwrap();

        assert_eq!(vpnd_a.show().interface.listen_port, 51860, "{what}");
        // B sends to 51860: pings answered prove the old socket still carries the tunnel.
        assert!(
            ping_until(&a, "10.13.0.2", Duration::from_secs(5)),
            "the old port stopped working after a refused change ({what})\n{}",
            vpnd_a.proc().logs()
        );
    }
}
