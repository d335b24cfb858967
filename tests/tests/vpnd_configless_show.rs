//! `vpnctl show` of a vpnd started the way `wg-quick` starts it (`vpnd <interface>`, no
//! configuration file) reports the MTU and addresses the kernel has: `wg-quick` sets them
//! with `ip`, so vpnd's own configuration knows neither (issue 9: it said MTU 1420 and no
//! addresses while the link had MTU 1400 and two addresses).

use std::time::Duration;

use e2e::vpnd::start_configless;
use e2e::{cargo_binary, run_with_timeout, TestGuard};
use protocol::rpc::ShowResult;

#[test]
fn configless_show_reports_the_kernels_mtu_and_addresses() {
    if !e2e::require_root_with(&[]) {
        return;
    }
    let guard = TestGuard::new("configless_show_reports_the_kernels_mtu_and_addresses");
    let ns = guard.netns();
    let vpnd = start_configless(&ns, "vpnu-show");
    // What wg-quick does after starting the daemon.
    vpnd.configure_ip(&["10.77.1.1/24", "fd77::1/64"], 1400);

    // The control socket is at its default path, in vpnd's private /run.
    let vpnctl = cargo_binary("vpnctl");
    let mut cmd = vpnd.command([
        vpnctl.as_os_str(),
        "--socket".as_ref(),
        "/run/vpnd/vpnu-show.sock".as_ref(),
        "show".as_ref(),
        "--json".as_ref(),
    ]);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(10)).unwrap();
    assert!(
        out.status.success(),
        "vpnctl show: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        vpnd.proc().logs()
    );
    let show: ShowResult = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(show.interface.mtu, 1400, "{show:?}");
    let mut addrs = show.interface.addresses.clone();
    addrs.sort();
    // The kernel's own IPv6 link-local address is not reported.
    assert_eq!(addrs, ["10.77.1.1/24", "fd77::1/64"], "{show:?}");

    // Changes made later with `ip` show too.
    ns.ip_ok(["link", "set", "vpnu-show", "mtu", "1380"]);
    ns.ip_ok(["address", "del", "10.77.1.1/24", "dev", "vpnu-show"]);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(10)).unwrap();
    let show: ShowResult = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(show.interface.mtu, 1380);
    assert_eq!(show.interface.addresses, ["fd77::1/64"]);
}
