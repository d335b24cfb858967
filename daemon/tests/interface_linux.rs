//! Integration tests for the Linux interface layer.
//!
//! Every test body runs on its own thread inside a network namespace created
//! for it (`unshare(CLONE_NEWNET)` affects only the calling thread), on a
//! current-thread Tokio runtime bound to that thread. Nothing touches the
//! host's namespace, and the namespace with everything in it vanishes when
//! the thread exits. Tests skip themselves unless run as root with
//! `/dev/net/tun` available.
#![cfg(target_os = "linux")]

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use vpnd::actors::interface::{
    clone_queue, create_tun, InterfaceError, InterfaceManager, NetlinkHandle, TunOptions,
};

const NAME: &str = "vpntest0";

fn p(s: &str) -> (IpAddr, u8) {
    let (addr, len) = s.split_once('/').expect("prefix has a '/'");
    (addr.parse().unwrap(), len.parse().unwrap())
}

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tun = std::path::Path::new("/dev/net/tun").exists();
    if !root || !tun {
        eprintln!("skipping: needs root and /dev/net/tun (root={root}, tun={tun})");
    }
    root && tun
}

/// Runs `body` in a fresh network namespace on a dedicated thread.
fn in_netns<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread = std::thread::spawn(move || {
        // SAFETY: unshare only changes this thread's namespace membership.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        // /proc/sys/net resolves against the namespace of the task that
        // opens the file, i.e. this thread's new namespace.
        let knob = "/proc/sys/net/ipv6/conf/all/disable_ipv6";
        if std::fs::read_to_string(knob).is_ok_and(|v| v.trim() != "0") {
            std::fs::write(knob, "0").expect("enable IPv6 in the test namespace");
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(body());
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

fn manager(addresses: &[&str]) -> InterfaceManager {
    InterfaceManager::new(NAME, 1380, addresses.iter().map(|a| p(a)).collect(), false).unwrap()
}

async fn routes(nl: &NetlinkHandle, index: u32) -> Vec<(IpAddr, u8)> {
    nl.list_routes(index).await.unwrap()
}

#[test]
fn setup_creates_configured_interface() {
    if !can_run() {
        return;
    }
    in_netns(|| async {
        let mut mgr = manager(&["10.10.0.1/24", "fd10::1/64"]);
        let dev = mgr.setup().await.unwrap();
        assert_eq!(dev.name().unwrap(), NAME);

        let nl = mgr.netlink();
        let link = nl.link_by_name(NAME).await.unwrap().expect("link exists");
        assert_eq!(Some(link.index), mgr.index());
        assert_eq!(nl.link_index(NAME).await.unwrap(), Some(link.index));
        assert_eq!(link.mtu, 1380);
        assert!(link.up, "link is up");

        let addrs = nl.list_addresses(link.index).await.unwrap();
        assert!(addrs.contains(&p("10.10.0.1/24")), "{addrs:?}");
        assert!(addrs.contains(&p("fd10::1/64")), "{addrs:?}");

        mgr.set_mtu(1300).await.unwrap();
        let mtu = mgr.netlink().link(link.index).await.unwrap().unwrap().mtu;
        assert_eq!(mtu, 1300);
        assert_eq!(mgr.mtu(), 1300);
    });
}

#[test]
fn sync_routes_skips_covered_and_removes_stale() {
    if !can_run() {
        return;
    }
    in_netns(|| async {
        let mut mgr = manager(&["10.10.0.1/24", "fd10::1/64"]);
        let _dev = mgr.setup().await.unwrap();
        let index = mgr.index().unwrap();

        // A route we did not add must survive every sync.
        mgr.netlink()
            .add_route(index, p("10.99.0.0/16").0, 16)
            .await
            .unwrap();

        let wanted = [
            p("10.10.0.2/32"),
            p("10.20.0.0/16"),
            p("10.30.1.7/24"),
            p("fd10::2/128"),
            p("fd20::/48"),
        ];
        mgr.sync_routes(&wanted).await.unwrap();
        let present = routes(mgr.netlink(), index).await;
        for added in ["10.20.0.0/16", "10.30.1.0/24", "fd20::/48"] {
            assert!(present.contains(&p(added)), "{added} missing: {present:?}");
        }
        for skipped in ["10.10.0.2/32", "fd10::2/128"] {
            assert!(
                !present.contains(&p(skipped)),
                "{skipped} added: {present:?}"
            );
        }
        let installed: Vec<_> = mgr.installed_routes().collect();
        assert_eq!(installed.len(), 3, "{installed:?}");

        // Re-syncing the same set is a no-op.
        mgr.sync_routes(&wanted).await.unwrap();

        mgr.sync_routes(&[p("10.20.0.0/16"), p("fd10::2/128")])
            .await
            .unwrap();
        let present = routes(mgr.netlink(), index).await;
        assert!(present.contains(&p("10.20.0.0/16")), "{present:?}");
        assert!(!present.contains(&p("10.30.1.0/24")), "{present:?}");
        assert!(!present.contains(&p("fd20::/48")), "{present:?}");
        assert!(
            present.contains(&p("10.99.0.0/16")),
            "foreign route removed"
        );
        // The kernel's own prefix routes are untouched.
        assert!(present.contains(&p("10.10.0.0/24")), "{present:?}");
        assert!(present.contains(&p("fd10::/64")), "{present:?}");

        // An address that now covers 10.20.0.0/16 makes our route redundant.
        mgr.set_addresses(&[p("10.10.0.1/24"), p("10.20.0.1/16")])
            .await
            .unwrap();
        // fd10::1/64 is gone, so fd10::2/128 now needs a route of its own.
        let installed: Vec<_> = mgr.installed_routes().collect();
        assert_eq!(installed, [p("fd10::2/128")]);
        let addrs = mgr.netlink().list_addresses(index).await.unwrap();
        assert!(addrs.contains(&p("10.20.0.1/16")), "{addrs:?}");
        assert!(!addrs.contains(&p("fd10::1/64")), "{addrs:?}");
        let present = routes(mgr.netlink(), index).await;
        assert!(present.contains(&p("fd10::2/128")), "{present:?}");
        assert!(present.contains(&p("10.20.0.0/16")), "kernel prefix route");

        mgr.sync_routes(&[]).await.unwrap();
        let present = routes(mgr.netlink(), index).await;
        assert!(!present.contains(&p("fd10::2/128")), "{present:?}");
        assert!(
            present.contains(&p("10.99.0.0/16")),
            "foreign route removed"
        );
    });
}

#[test]
fn routed_packets_reach_the_tun() {
    if !can_run() {
        return;
    }
    in_netns(|| async {
        let mut mgr = manager(&["10.10.0.1/24"]);
        let dev = mgr.setup().await.unwrap();
        mgr.sync_routes(&[p("10.20.0.0/16")]).await.unwrap();

        let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await.unwrap();
        for dst in ["10.10.0.2", "10.20.3.4"] {
            let target: SocketAddr = format!("{dst}:9999").parse().unwrap();
            socket.send_to(b"ping", target).await.unwrap();
            let mut buf = vec![0u8; 2048];
            let found = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    let n = dev.recv(&mut buf).await.unwrap();
                    // IFF_NO_PI: the read starts with the IP header itself.
                    if n >= 20 && buf[0] >> 4 == 4 && buf[16..20] == target_octets(&target) {
                        return;
                    }
                }
            })
            .await;
            assert!(found.is_ok(), "no packet for {dst} on the tun");
        }
    });
}

fn target_octets(addr: &SocketAddr) -> [u8; 4] {
    match addr.ip() {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(_) => unreachable!(),
    }
}

#[test]
fn setup_replaces_stale_interface() {
    if !can_run() {
        return;
    }
    in_netns(|| async {
        // What a crashed run could leave behind: a persistent TUN with our
        // name and an address on it.
        let stale = tun_rs::DeviceBuilder::new()
            .name(NAME)
            .enable(false)
            .build_sync()
            .unwrap();
        stale.persist().unwrap();
        drop(stale);

        let nl = NetlinkHandle::new().unwrap();
        let stale_index = nl.link_index(NAME).await.unwrap().expect("stale link");
        nl.add_address(stale_index, p("10.66.0.1/24").0, 24)
            .await
            .unwrap();

        let mut mgr = manager(&["10.10.0.1/24"]);
        let _dev = mgr.setup().await.unwrap();
        let index = mgr.index().unwrap();
        assert_ne!(index, stale_index, "link was recreated");
        let addrs = nl.list_addresses(index).await.unwrap();
        assert!(addrs.contains(&p("10.10.0.1/24")), "{addrs:?}");
        assert!(!addrs.contains(&p("10.66.0.1/24")), "{addrs:?}");
    });
}

#[test]
fn teardown_removes_link_and_routes() {
    if !can_run() {
        return;
    }
    in_netns(|| async {
        let mut mgr = manager(&["10.10.0.1/24", "fd10::1/64"]);
        let dev = mgr.setup().await.unwrap();
        mgr.sync_routes(&[p("10.20.0.0/16"), p("fd20::/48")])
            .await
            .unwrap();

        // The device is still open: teardown must delete the link explicitly.
        mgr.teardown().await.unwrap();
        assert_eq!(mgr.netlink().link_index(NAME).await.unwrap(), None);
        assert_eq!(mgr.index(), None);
        assert_eq!(mgr.installed_routes().count(), 0);
        drop(dev);

        // Idempotent, and deleting a missing link is not an error.
        mgr.teardown().await.unwrap();
        assert!(!mgr.netlink().delete_link(NAME).await.unwrap());

        // The manager can bring the interface back with the same routes.
        let _dev = mgr.setup().await.unwrap();
        let index = mgr.index().unwrap();
        let present = routes(mgr.netlink(), index).await;
        assert!(present.contains(&p("10.20.0.0/16")), "{present:?}");
        assert!(present.contains(&p("fd20::/48")), "{present:?}");
    });
}

#[test]
fn offload_and_multi_queue_devices() {
    if !can_run() {
        return;
    }
    in_netns(|| async {
        let plain = create_tun(&TunOptions::new("vpnplain0", 1420))
            .await
            .unwrap();
        assert!(!plain.tcp_gso());
        assert!(clone_queue(&plain).is_err(), "single-queue device cloned");

        let opts = TunOptions {
            offload: true,
            multi_queue: true,
            ..TunOptions::new("vpnoff0", 1420)
        };
        let dev = create_tun(&opts).await.unwrap();
        assert!(dev.tcp_gso());
        let queue = clone_queue(&dev).unwrap();
        assert!(queue.tcp_gso());
        assert_eq!(queue.name().unwrap(), "vpnoff0");
    });
}

#[test]
fn errors_carry_operation_and_errno() {
    if !can_run() {
        return;
    }
    in_netns(|| async {
        let nl = NetlinkHandle::new().unwrap();
        let err = nl.set_mtu(999_999, 1400).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{err}");
        assert!(err.to_string().contains("set mtu 1400"), "{err}");

        let err = nl.add_address(1, p("10.0.0.1/33").0, 33).await.unwrap_err();
        assert!(matches!(err, InterfaceError::InvalidPrefix { .. }), "{err}");

        let err = InterfaceManager::new("much-too-long-name", 1420, vec![], false).unwrap_err();
        assert!(matches!(err, InterfaceError::InvalidName { .. }), "{err}");

        // Removing things that are not there is not an error.
        nl.remove_route(1, p("10.123.0.0/16").0, 16).await.unwrap();
        nl.remove_address(1, p("10.123.0.1/16").0, 16)
            .await
            .unwrap();
        assert_eq!(nl.link_index("nope0").await.unwrap(), None);
    });
}
