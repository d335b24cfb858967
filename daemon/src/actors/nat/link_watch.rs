//! Watches the kernel's routing tables for link, address and route changes (rtnetlink
//! multicast) and tells the NatActor once per burst, so path probing starts again at once
//! when this host moves to another network or uplink (issue 10, "never stuck").
//!
//! The 1 s address poll in the NatActor ([`super::SYNC_INTERVAL`]) stays as the fallback: it
//! catches address changes when this subscription cannot be opened (no `NETLINK_ROUTE`, a
//! seccomp profile) or breaks, but it cannot see a route change (the default route moving to
//! another uplink and NAT without any address changing), which only this watch catches before
//! the selected path's heartbeats fail ([`protocol::nat::consts::PATH_TRUST`], 6.5 s).
//!
//! Changes that concern only our own TUN interface are ignored: vpnd configures that interface
//! itself (its addresses and the routes of every peer's allowed IPs, again on every reload and
//! peer change), its addresses are never candidates ([`super::local`] skips it), and the
//! underlay the UDP socket uses does not go through it. Reacting to them would restart every
//! peer's probing on each reload for nothing.

use super::{NatMsg, NatState};
use futures::StreamExt;
use ractor::ActorRef;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::route::RouteAttribute;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::MulticastGroup;
use std::time::{Duration, Instant};

/// A burst ends when no relevant change came for this long. A network switch arrives as a
/// handful of messages within a few milliseconds (link up, address, then routes, which
/// DHCP clients and `ip` add one by one); 150 ms covers a DHCP client's sequence of commands
/// without delaying the restart noticeably next to a path's RTT.
pub const QUIET: Duration = Duration::from_millis(150);
/// A burst that never goes quiet (a flapping link, a routing daemon's churn) is reported
/// after this long anyway, so a real change inside it is not held back indefinitely.
pub const MAX_HOLD: Duration = Duration::from_secs(1);
/// At most one report per this long: each report restarts every peer's probing and re-checks
/// STUN, which a flapping link must not turn into a probe storm. One second matches the
/// address poll ([`super::SYNC_INTERVAL`]), which could already restart probing that often.
pub const MIN_GAP: Duration = Duration::from_secs(1);

/// The groups subscribed to: links (up/down, new/gone), IPv4 and IPv6 addresses and routes.
const GROUPS: [MulticastGroup; 5] = [
    MulticastGroup::Link,
    MulticastGroup::Ipv4Ifaddr,
    MulticastGroup::Ipv6Ifaddr,
    MulticastGroup::Ipv4Route,
    MulticastGroup::Ipv6Route,
];

/// Whether a routing message may change how this host reaches the internet: true unless it
/// concerns only our TUN (index `tun`, when it exists; a link message may also name it
/// `tun_name` before its index is known). Neighbour, rule and traffic-control messages are not
/// subscribed to and count as irrelevant.
pub fn relevant(msg: &RouteNetlinkMessage, tun: Option<u32>, tun_name: &str) -> bool {
    let ours = |index: u32| tun == Some(index);
    match msg {
        RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l) => {
            let named = l
                .attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::IfName(n) if n == tun_name));
            !(ours(l.header.index) || named)
        }
        RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a) => {
            !ours(a.header.index)
        }
        RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r) => {
            // A route is ours only if every next hop leaves through the TUN; one without an
            // output interface (blackhole, unreachable) or with any other hop counts.
            let mut oifs = r.attributes.iter().flat_map(|a| match a {
                RouteAttribute::Oif(i) => vec![*i],
                RouteAttribute::MultiPath(hops) => hops.iter().map(|h| h.interface_index).collect(),
                _ => Vec::new(),
            });
            let first = oifs.next();
            !(first.is_some_and(ours) && oifs.all(ours))
        }
        _ => false,
    }
}

/// The debounce, sans-IO: [`Debounce::event`] for every relevant change,
/// [`Debounce::deadline`] for when to call [`Debounce::fire`], which says whether to report.
#[derive(Debug, Default)]
pub struct Debounce {
    /// The first and the latest change of the burst not yet reported.
    pending: Option<(Instant, Instant)>,
    last_report: Option<Instant>,
}

impl Debounce {
    /// A relevant change at `now`.
    pub fn event(&mut self, now: Instant) {
        self.pending = Some(match self.pending {
            Some((first, _)) => (first, now),
            None => (now, now),
        });
    }

    /// When the pending burst is due: [`QUIET`] after its latest change, at most [`MAX_HOLD`]
    /// after its first, and not before [`MIN_GAP`] after the last report. `None` if nothing is
    /// pending.
    pub fn deadline(&self) -> Option<Instant> {
        let (first, last) = self.pending?;
        let due = (last + QUIET).min(first + MAX_HOLD);
        Some(match self.last_report {
            Some(r) => due.max(r + MIN_GAP),
            None => due,
        })
    }

    /// True (once) if the pending burst is due at `now`.
    pub fn fire(&mut self, now: Instant) -> bool {
        if self.deadline().is_some_and(|d| now >= d) {
            self.pending = None;
            self.last_report = Some(now);
            true
        } else {
            false
        }
    }
}

/// The index of interface `name`, if it exists.
fn if_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// Subscribes and runs the watch until the actor stops (the caller aborts the task) or the
/// subscription fails, which is logged once; the address poll carries on either way. `tun`
/// is our interface's name, whose changes are ignored.
pub fn spawn(me: ActorRef<NatMsg>, tun: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (connection, _handle, mut messages) = match rtnetlink::new_multicast_connection(&GROUPS)
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch link and route changes; noticing address changes within {:?} only", super::SYNC_INTERVAL);
                return;
            }
        };
        // The connection task lives exactly as long as this one (aborting this drops it).
        let connection = AbortOnDrop(tokio::spawn(connection));
        let mut debounce = Debounce::default();
        // Our TUN's index, remembered after it is gone so that the messages of its own
        // removal (addresses and routes after the link) are still recognised.
        let mut tun_index = None;
        loop {
            let wake = debounce.deadline().map(tokio::time::Instant::from_std);
            tokio::select! {
                m = messages.next() => {
                    let Some((m, _)) = m else {
                        tracing::warn!("the link and route watch stopped; noticing address changes within {:?} only", super::SYNC_INTERVAL);
                        break;
                    };
                    tun_index = if_index(&tun).or(tun_index);
                    if let NetlinkPayload::InnerMessage(msg) = &m.payload {
                        if relevant(msg, tun_index, &tun) {
                            debounce.event(Instant::now());
                        }
                    }
                }
                () = sleep_until(wake) => {
                    if debounce.fire(Instant::now()) {
                        tracing::debug!("link, address or route change");
                        if me.cast(NatMsg::LinkChanged).is_err() {
                            break;
                        }
                    }
                }
            }
        }
        drop(connection);
    })
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A burst of changes: read our addresses again, re-check STUN (the mapping is likely new)
/// and probe every peer at once.
pub(super) fn on_change(st: &mut NatState, now: Instant) {
    tracing::info!("link, address or route changed; re-checking STUN and probing every peer");
    super::sync(st, now);
    st.stun.recheck(now);
    st.paths.restart_all(now);
}

#[cfg(test)]
mod tests;
