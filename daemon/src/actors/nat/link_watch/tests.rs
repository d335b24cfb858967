use super::*;
use rtnetlink::packet_route::address::AddressMessage;
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::packet_route::neighbour::NeighbourMessage;
use rtnetlink::packet_route::route::{RouteMessage, RouteNextHop};

const TUN: u32 = 7;
const ETH: u32 = 2;

fn link(index: u32, name: &str) -> RouteNetlinkMessage {
    let mut l = LinkMessage::default();
    l.header.index = index;
    l.attributes.push(LinkAttribute::IfName(name.into()));
    RouteNetlinkMessage::NewLink(l)
}

fn address(index: u32) -> RouteNetlinkMessage {
    let mut a = AddressMessage::default();
    a.header.index = index;
    RouteNetlinkMessage::NewAddress(a)
}

fn route(attributes: Vec<RouteAttribute>) -> RouteNetlinkMessage {
    let mut r = RouteMessage::default();
    r.attributes = attributes;
    RouteNetlinkMessage::NewRoute(r)
}

fn hop(index: u32) -> RouteNextHop {
    let mut h = RouteNextHop::default();
    h.interface_index = index;
    h
}

#[test]
fn changes_of_our_tun_alone_are_ignored() {
    let tun = Some(TUN);
    assert!(!relevant(&link(TUN, "vpn0"), tun, "vpn0"));
    // While the TUN is created its index is not known yet: its name tells.
    assert!(!relevant(&link(9, "vpn0"), None, "vpn0"));
    assert!(!relevant(&address(TUN), tun, "vpn0"));
    assert!(!relevant(
        &route(vec![RouteAttribute::Oif(TUN)]),
        tun,
        "vpn0"
    ));
    assert!(!relevant(
        &route(vec![RouteAttribute::MultiPath(vec![hop(TUN), hop(TUN)])]),
        tun,
        "vpn0"
    ));
}

#[test]
fn other_interfaces_and_routes_without_one_count() {
    let tun = Some(TUN);
    assert!(relevant(&link(ETH, "eth0"), tun, "vpn0"));
    assert!(relevant(&address(ETH), tun, "vpn0"));
    // The default route moving to another uplink: the change the address poll cannot see.
    assert!(relevant(
        &route(vec![RouteAttribute::Oif(ETH)]),
        tun,
        "vpn0"
    ));
    // A blackhole or unreachable route has no output interface.
    assert!(relevant(&route(Vec::new()), tun, "vpn0"));
    // One hop elsewhere is enough.
    assert!(relevant(
        &route(vec![RouteAttribute::MultiPath(vec![hop(TUN), hop(ETH)])]),
        tun,
        "vpn0"
    ));
    // Before our TUN exists nothing is filtered.
    assert!(relevant(&address(TUN), None, "vpn0"));
}

#[test]
fn unsubscribed_kinds_are_ignored() {
    let n = RouteNetlinkMessage::NewNeighbour(NeighbourMessage::default());
    assert!(!relevant(&n, Some(TUN), "vpn0"));
}

#[test]
fn a_burst_is_reported_once_after_it_goes_quiet() {
    let t0 = Instant::now();
    let mut d = Debounce::default();
    assert_eq!(d.deadline(), None);
    assert!(!d.fire(t0));
    d.event(t0);
    d.event(t0 + Duration::from_millis(20));
    d.event(t0 + Duration::from_millis(50));
    let due = t0 + Duration::from_millis(50) + QUIET;
    assert_eq!(d.deadline(), Some(due));
    assert!(!d.fire(due - Duration::from_millis(1)));
    assert!(d.fire(due));
    assert!(!d.fire(due + QUIET), "reported once");
    assert_eq!(d.deadline(), None);
}

#[test]
fn a_burst_that_never_goes_quiet_is_reported_after_max_hold() {
    let t0 = Instant::now();
    let mut d = Debounce::default();
    let step = QUIET / 2;
    let mut t = t0;
    let mut fired_at = None;
    while t < t0 + 3 * MAX_HOLD {
        d.event(t);
        if d.fire(t) {
            fired_at = Some(t);
            break;
        }
        t += step;
    }
    let fired_at = fired_at.expect("reported within the churn");
    assert!(fired_at >= t0 + MAX_HOLD && fired_at < t0 + MAX_HOLD + step);
}

#[test]
fn reports_are_at_least_min_gap_apart_and_none_is_lost() {
    let t0 = Instant::now();
    let mut d = Debounce::default();
    d.event(t0);
    assert!(d.fire(t0 + QUIET));
    // A second change right after the report waits for the gap, and is still reported.
    let t1 = t0 + QUIET + Duration::from_millis(10);
    d.event(t1);
    assert_eq!(d.deadline(), Some(t0 + QUIET + MIN_GAP));
    assert!(!d.fire(t1 + QUIET));
    assert!(d.fire(t0 + QUIET + MIN_GAP));
}
