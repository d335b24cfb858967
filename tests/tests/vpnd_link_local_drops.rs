//! The kernel's own IPv6 traffic on a fresh interface (MLD reports, router solicitations) is
//! counted as `link_local`, not `no_route` (issue 9): `no_route` then means a packet for an
//! address no peer covers.

use std::time::Duration;

use e2e::vpnd::{Vpnd, VpndConfig};
use e2e::{require_root_with, wait_until, TestGuard, WgKeys};

#[test]
fn kernel_link_local_multicast_is_not_no_route() {
    if !require_root_with(&["ping"]) {
        return;
    }
    let guard = TestGuard::new("kernel_link_local_multicast_is_not_no_route");
    let ns = guard.netns();
    let vpnd = Vpnd::start(
        &ns,
        &VpndConfig::new("vpnll0", &WgKeys::generate()).addresses(&["10.79.0.1/24", "fd79::1/64"]),
    );
    // A link-local multicast ping leaves through the TUN like the kernel's MLD reports do, so
    // the test does not depend on when the kernel sends its own.
    let _ = ns
        .command([
            "ping",
            "-6",
            "-c",
            "2",
            "-i",
            "0.2",
            "-W",
            "1",
            "ff02::1%vpnll0",
        ])
        .output();
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(100), || vpnd
            .drops("link_local")
            > 0),
        "no link_local drop counted: {:?}",
        vpnd.show().interface.drops
    );
    assert_eq!(
        vpnd.drops("no_route"),
        0,
        "link-scoped traffic counted as no_route: {:?}",
        vpnd.show().interface.drops
    );
    // A unicast address no peer covers is still no_route.
    let _ = ns
        .command(["ping", "-c", "1", "-W", "1", "10.79.0.9"])
        .output();
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(100), || vpnd
            .drops("no_route")
            > 0),
        "{:?}",
        vpnd.show().interface.drops
    );
}
