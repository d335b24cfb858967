//! Linux implementation: TUN devices through `tun-rs`, everything else
//! (addresses, MTU, link state, routes, link deletion) through rtnetlink.
//!
//! Nothing here shells out to `ip`; every kernel change is a netlink request
//! whose errno is surfaced in [`InterfaceError::Os`].

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::{StreamExt, TryStreamExt};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::{AddressMessageBuilder, LinkUnspec, RouteMessageBuilder};
use tun_rs::{AsyncDevice, DeviceBuilder};

use super::{normalize_prefix, prefix_contains, validate_ifname, InterfaceError, TunOptions};

/// IPv6 refuses to run on links with a smaller MTU (RFC 8200); the kernel
/// drops every IPv6 address from such an interface.
const IPV6_MIN_MTU: u16 = 1280;

/// Route requests kept in flight on the netlink socket at once. Waiting for each
/// acknowledgement before sending the next request costs two task switches per route;
/// with a window, 100,000 routes go in about twice as fast (the kernel's own work per route
/// is the rest).
const ROUTE_WINDOW: usize = 64;

/// Creates (but does not address) a TUN device.
///
/// The device is created down; addresses, MTU changes and bringing it up are
/// left to netlink (see [`InterfaceManager::setup`]). With
/// `opts.offload == false` it is a plain `IFF_TUN | IFF_NO_PI` device; with
/// `true` it is opened with `IFF_VNET_HDR` and TSO/USO offloads, and must be
/// read with `recv_multiple` / written with `send_multiple`. The device is not
/// persistent: it disappears when the last descriptor is closed.
///
/// Must be called from within a Tokio runtime (the descriptor is registered
/// with the reactor).
pub async fn create_tun(opts: &TunOptions) -> Result<AsyncDevice, InterfaceError> {
    validate_ifname(&opts.name)?;
    let (offload, multi_queue) = (opts.offload, opts.multi_queue);
    DeviceBuilder::new()
        .name(opts.name.clone())
        .mtu(opts.mtu)
        // Stay down until the caller has configured addresses and MTU.
        .enable(false)
        .with(|b| {
            b.packet_information(false)
                .offload(offload)
                .multi_queue(multi_queue);
        })
        .build_async()
        .map_err(|e| InterfaceError::os(format!("create tun {}", opts.name), e))
}

/// Opens one more queue of a device created with
/// [`TunOptions::multi_queue`] set (`IFF_MULTI_QUEUE`).
///
/// The kernel spreads packets destined to the interface across the queues by
/// flow; each queue can be read and written independently. The new queue
/// inherits the offload mode of `dev`.
pub fn clone_queue(dev: &AsyncDevice) -> Result<AsyncDevice, InterfaceError> {
    dev.try_clone()
        .map_err(|e| InterfaceError::os("open additional tun queue", e))
}

/// Basic state of a network interface, as reported by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Current MTU.
    pub mtu: u32,
    /// Whether the interface is administratively up (`IFF_UP`).
    pub up: bool,
}

/// A netlink (`NETLINK_ROUTE`) connection for configuring interfaces.
///
/// The connection task runs on the Tokio runtime that was current when the
/// handle was created and is stopped when the handle is dropped. The socket
/// belongs to the network namespace of the thread that created it.
pub struct NetlinkHandle {
    handle: rtnetlink::Handle,
    connection: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for NetlinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetlinkHandle").finish_non_exhaustive()
    }
}

impl Drop for NetlinkHandle {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// The errno a netlink request failed with, if it failed with one.
fn netlink_errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => Some(msg.raw_code().abs()),
        _ => None,
    }
}

fn netlink_error(op: String, e: rtnetlink::Error) -> InterfaceError {
    let source = match &e {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io(),
        other => io::Error::other(other.to_string()),
    };
    InterfaceError::os(op, source)
}

/// Maps "already there" / "already gone" errnos to success.
fn tolerate(
    result: Result<(), rtnetlink::Error>,
    benign: &[i32],
    op: impl FnOnce() -> String,
) -> Result<bool, InterfaceError> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if netlink_errno(&e).is_some_and(|c| benign.contains(&c)) => Ok(false),
        Err(e) => Err(netlink_error(op(), e)),
    }
}

/// Errnos meaning "the object to delete does not exist (any more)". `ENODEV`
/// covers the whole link having vanished, which takes its addresses and
/// routes with it.
const GONE: &[i32] = &[libc::ENOENT, libc::ESRCH, libc::EADDRNOTAVAIL, libc::ENODEV];

fn link_info_from(msg: &LinkMessage) -> LinkInfo {
    let mut info = LinkInfo {
        index: msg.header.index,
        name: String::new(),
        mtu: 0,
        up: msg.header.flags.contains(LinkFlags::Up),
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => info.name.clone_from(name),
            LinkAttribute::Mtu(mtu) => info.mtu = *mtu,
            _ => {}
        }
    }
    info
}

fn address_of(msg: &AddressMessage) -> Option<(IpAddr, u8)> {
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links and equals IFA_LOCAL otherwise. IPv6 usually sends
    // only IFA_ADDRESS.
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => return Some((*ip, msg.header.prefix_len)),
            AddressAttribute::Address(ip) => address = Some((*ip, msg.header.prefix_len)),
            _ => {}
        }
    }
    address
}

/// The first link of a get-link reply; `ENODEV` means there is none.
async fn first_link(
    request: impl futures::Stream<Item = Result<LinkMessage, rtnetlink::Error>>,
    op: impl FnOnce() -> String,
) -> Result<Option<LinkInfo>, InterfaceError> {
    let mut request = std::pin::pin!(request);
    match request.try_next().await {
        Ok(msg) => Ok(msg.as_ref().map(link_info_from)),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(netlink_error(op(), e)),
    }
}

/// A device route `prefix dev index`, in the main table, tagged as a static
/// route so deletes only ever match routes of that origin.
fn device_route(index: u32, network: IpAddr, prefix_len: u8) -> RouteMessage {
    match network {
        // `ip route add 10.0.0.0/8 dev X` uses link scope for gateway-less
        // IPv4 routes; the kernel ignores scope for IPv6.
        IpAddr::V4(v4) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(v4, prefix_len)
            .output_interface(index)
            .scope(RouteScope::Link)
            .protocol(RouteProtocol::Static)
            .build(),
        IpAddr::V6(v6) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(v6, prefix_len)
            .output_interface(index)
            .protocol(RouteProtocol::Static)
            .build(),
    }
}

impl NetlinkHandle {
    /// Opens a netlink socket and spawns its connection task on the current
    /// Tokio runtime.
    pub fn new() -> Result<Self, InterfaceError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            InterfaceError::os("start netlink connection", io::Error::other(e.to_string()))
        })?;
        let (connection, handle, _messages) = rtnetlink::new_connection()
            .map_err(|e| InterfaceError::os("open netlink socket", e))?;
        let connection = runtime.spawn(connection);
        Ok(Self { handle, connection })
    }

    /// The index of the interface called `name`, or `None` if there is none.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>, InterfaceError> {
        Ok(self.link_by_name(name).await?.map(|l| l.index))
    }

    /// Kernel state of the interface called `name`, or `None` if there is
    /// none.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<LinkInfo>, InterfaceError> {
        let request = self.handle.link().get().match_name(name).execute();
        first_link(request, || format!("get link {name}")).await
    }

    /// Kernel state of the interface with index `index`, or `None` if there is
    /// none.
    pub async fn link(&self, index: u32) -> Result<Option<LinkInfo>, InterfaceError> {
        let request = self.handle.link().get().match_index(index).execute();
        first_link(request, || format!("get link {index}")).await
    }

    /// Sets the MTU of interface `index`.
    pub async fn set_mtu(&self, index: u32, mtu: u32) -> Result<(), InterfaceError> {
        let msg = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| netlink_error(format!("set mtu {mtu} on link {index}"), e))
    }

    /// Brings interface `index` administratively up.
    pub async fn set_up(&self, index: u32) -> Result<(), InterfaceError> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| netlink_error(format!("set link {index} up"), e))
    }

    /// Adds `addr/prefix_len` to interface `index`. An address that is
    /// already present (`EEXIST`) counts as success.
    pub async fn add_address(
        &self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), InterfaceError> {
        normalize_prefix(addr, prefix_len)?;
        let result = self
            .handle
            .address()
            .add(index, addr, prefix_len)
            .execute()
            .await;
        tolerate(result, &[libc::EEXIST], || {
            format!("add address {addr}/{prefix_len} to link {index}")
        })
        .map(drop)
    }

    /// Removes `addr/prefix_len` from interface `index`. An address (or link)
    /// that is already gone counts as success.
    pub async fn remove_address(
        &self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), InterfaceError> {
        normalize_prefix(addr, prefix_len)?;
        let msg = match addr {
            IpAddr::V4(v4) => AddressMessageBuilder::<Ipv4Addr>::new()
                .index(index)
                .address(v4, prefix_len)
                .build(),
            IpAddr::V6(v6) => AddressMessageBuilder::<Ipv6Addr>::new()
                .index(index)
                .address(v6, prefix_len)
                .build(),
        };
        let result = self.handle.address().del(msg).execute().await;
        tolerate(result, GONE, || {
            format!("remove address {addr}/{prefix_len} from link {index}")
        })
        .map(drop)
    }

    /// All addresses (IPv4 and IPv6, including kernel-generated link-local
    /// ones) on interface `index`, as `(address, prefix_len)`.
    pub async fn list_addresses(&self, index: u32) -> Result<Vec<(IpAddr, u8)>, InterfaceError> {
        let mut request = self.handle.address().get();
        request.message_mut().header.index = index;
        let messages: Vec<AddressMessage> = request
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| netlink_error(format!("list addresses of link {index}"), e))?;
        Ok(messages.iter().filter_map(address_of).collect())
    }

    /// Adds the device route `network/prefix_len dev index` to the main
    /// table. Host bits of `network` are cleared first. A route that already
    /// exists (`EEXIST`) counts as success.
    ///
    /// The link must be up, or the kernel answers `ENETDOWN`.
    pub async fn add_route(
        &self,
        index: u32,
        network: IpAddr,
        prefix_len: u8,
    ) -> Result<(), InterfaceError> {
        let (network, prefix_len) = normalize_prefix(network, prefix_len)?;
        let msg = device_route(index, network, prefix_len);
        let result = self.handle.route().add(msg).execute().await;
        let added = tolerate(result, &[libc::EEXIST], || {
            format!("add route {network}/{prefix_len} dev {index}")
        })?;
        if !added {
            tracing::debug!(%network, prefix_len, index, "route already present");
        }
        Ok(())
    }

    /// Removes a device route added by [`NetlinkHandle::add_route`]. Only
    /// static-protocol routes through `index` match, so kernel-generated
    /// prefix routes are never touched. A route (or link) that is already gone
    /// counts as success.
    pub async fn remove_route(
        &self,
        index: u32,
        network: IpAddr,
        prefix_len: u8,
    ) -> Result<(), InterfaceError> {
        let (network, prefix_len) = normalize_prefix(network, prefix_len)?;
        let msg = device_route(index, network, prefix_len);
        let result = self.handle.route().del(msg).execute().await;
        tolerate(result, GONE, || {
            format!("remove route {network}/{prefix_len} dev {index}")
        })
        .map(drop)
    }

    /// Destinations of all main-table unicast routes (IPv4 and IPv6, any
    /// origin) whose output interface is `index`.
    pub async fn list_routes(&self, index: u32) -> Result<Vec<(IpAddr, u8)>, InterfaceError> {
        let mut routes = Vec::new();
        for family in [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ] {
            let messages: Vec<RouteMessage> = self
                .handle
                .route()
                .get(family)
                .execute()
                .try_collect()
                .await
                .map_err(|e| netlink_error(format!("list routes of link {index}"), e))?;
            routes.extend(messages.iter().filter_map(|m| route_via(m, index)));
        }
        Ok(routes)
    }

    /// Deletes the interface called `name`. Returns whether there was one to
    /// delete.
    pub async fn delete_link(&self, name: &str) -> Result<bool, InterfaceError> {
        let msg = LinkUnspec::new_with_name(name).build();
        let result = self.handle.link().del_with_message(msg).execute().await;
        tolerate(result, &[libc::ENODEV], || format!("delete link {name}"))
    }

    /// Deletes the interface with index `index`. Returns whether there was one
    /// to delete.
    pub async fn delete_link_index(&self, index: u32) -> Result<bool, InterfaceError> {
        let result = self.handle.link().del(index).execute().await;
        tolerate(result, &[libc::ENODEV], || format!("delete link {index}"))
    }
}

/// The destination of `msg` if it is a main-table unicast route out of
/// `index`.
fn route_via(msg: &RouteMessage, index: u32) -> Option<(IpAddr, u8)> {
    if msg.header.kind != RouteType::Unicast {
        return None;
    }
    let mut table = u32::from(msg.header.table);
    let mut oif = None;
    let mut destination = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Oif(o) => oif = Some(*o),
            RouteAttribute::Destination(RouteAddress::Inet(a)) => {
                destination = Some(IpAddr::V4(*a))
            }
            RouteAttribute::Destination(RouteAddress::Inet6(a)) => {
                destination = Some(IpAddr::V6(*a))
            }
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) || oif != Some(index) {
        return None;
    }
    // No RTA_DST means the default route of the message's family.
    let destination = destination.or_else(|| match msg.header.address_family {
        rtnetlink::packet_route::AddressFamily::Inet => Some(Ipv4Addr::UNSPECIFIED.into()),
        rtnetlink::packet_route::AddressFamily::Inet6 => Some(Ipv6Addr::UNSPECIFIED.into()),
        _ => None,
    })?;
    Some((destination, msg.header.destination_prefix_length))
}

/// Owns the kernel-side state of the VPN interface: the TUN link, its
/// addresses and MTU, and the routes for peers' allowed IPs.
///
/// The manager holds the *desired* configuration. Changes made before
/// [`setup`](Self::setup) are only recorded and are applied by `setup`;
/// changes made afterwards are applied immediately.
///
/// Only routes this manager added are ever removed. Dropping the manager
/// without [`teardown`](Self::teardown) leaves cleanup to the kernel: the
/// link (and with it every address and route) disappears once the last TUN
/// descriptor is closed.
#[derive(Debug)]
pub struct InterfaceManager {
    netlink: NetlinkHandle,
    opts: TunOptions,
    /// Configured addresses, host bits kept (`10.10.0.1/24`).
    addresses: Vec<(IpAddr, u8)>,
    /// Index of the link created by `setup`, while it is ours.
    index: Option<u32>,
    /// Normalized prefixes last passed to `sync_routes`.
    wanted_routes: BTreeSet<(IpAddr, u8)>,
    /// Routes this manager installed and believes are present.
    installed_routes: BTreeSet<(IpAddr, u8)>,
}

fn dedup_addresses(addresses: &[(IpAddr, u8)]) -> Result<Vec<(IpAddr, u8)>, InterfaceError> {
    let mut out: Vec<(IpAddr, u8)> = Vec::with_capacity(addresses.len());
    for &(addr, len) in addresses {
        normalize_prefix(addr, len)?;
        if !out.contains(&(addr, len)) {
            out.push((addr, len));
        }
    }
    Ok(out)
}

impl InterfaceManager {
    /// A manager for interface `name`; nothing is changed in the kernel until
    /// [`setup`](Self::setup).
    ///
    /// Must be called from within a Tokio runtime (it opens a
    /// [`NetlinkHandle`]).
    pub fn new(
        name: impl Into<String>,
        mtu: u16,
        addresses: Vec<(IpAddr, u8)>,
        offload: bool,
    ) -> Result<Self, InterfaceError> {
        Self::with_options(
            TunOptions {
                offload,
                ..TunOptions::new(name, mtu)
            },
            addresses,
        )
    }

    /// Like [`new`](Self::new), with full control over the TUN options.
    pub fn with_options(
        opts: TunOptions,
        addresses: Vec<(IpAddr, u8)>,
    ) -> Result<Self, InterfaceError> {
        validate_ifname(&opts.name)?;
        let addresses = dedup_addresses(&addresses)?;
        Ok(Self {
            netlink: NetlinkHandle::new()?,
            opts,
            addresses,
            index: None,
            wanted_routes: BTreeSet::new(),
            installed_routes: BTreeSet::new(),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.opts.name
    }

    /// The interface index, once set up.
    pub fn index(&self) -> Option<u32> {
        self.index
    }

    /// The configured MTU.
    pub fn mtu(&self) -> u16 {
        self.opts.mtu
    }

    /// The configured addresses.
    pub fn addresses(&self) -> &[(IpAddr, u8)] {
        &self.addresses
    }

    /// The routes this manager has installed (normalized prefixes).
    pub fn installed_routes(&self) -> impl Iterator<Item = (IpAddr, u8)> + '_ {
        self.installed_routes.iter().copied()
    }

    /// The netlink connection, for queries.
    pub fn netlink(&self) -> &NetlinkHandle {
        &self.netlink
    }

    /// Creates and configures the interface and returns its TUN device.
    ///
    /// A link with the same name left behind by an earlier, crashed run is
    /// deleted first. Then the TUN is created, every configured address is
    /// assigned, the MTU is set, the link is brought up and any routes
    /// recorded by an earlier [`sync_routes`](Self::sync_routes) are
    /// installed. On error the new device is closed, which removes it again.
    ///
    /// Calling `setup` again recreates the interface from scratch.
    pub async fn setup(&mut self) -> Result<AsyncDevice, InterfaceError> {
        self.index = None;
        self.installed_routes.clear();
        let name = self.opts.name.clone();

        if self.netlink.delete_link(&name).await? {
            tracing::warn!(
                interface = %name,
                "deleted stale interface with our name, probably left by an earlier run"
            );
        }

        let device = create_tun(&self.opts).await?;
        let index = device
            .if_index()
            .map_err(|e| InterfaceError::os(format!("get index of {name}"), e))?;

        for &(addr, len) in &self.addresses {
            self.netlink.add_address(index, addr, len).await?;
        }
        self.warn_if_mtu_drops_ipv6(self.opts.mtu);
        self.netlink.set_mtu(index, self.opts.mtu.into()).await?;
        self.netlink.set_up(index).await?;
        self.index = Some(index);
        self.apply_routes(index).await?;

        tracing::info!(
            interface = %name,
            index,
            mtu = self.opts.mtu,
            offload = self.opts.offload,
            addresses = ?self.addresses,
            "interface up"
        );
        Ok(device)
    }

    /// Makes the kernel routes through the interface match `prefixes` (peers'
    /// allowed IPs, any mix of IPv4 and IPv6).
    ///
    /// A prefix already covered by one of the interface's own address
    /// prefixes gets no route: the kernel's prefix route for the address
    /// handles it (with address `10.10.0.1/24`, `10.10.0.2/32` is skipped
    /// while `10.20.0.0/16` is added). Routes this manager added earlier that
    /// are no longer wanted are removed; other routes are never touched.
    ///
    /// Before `setup` the prefixes are only recorded.
    pub async fn sync_routes(&mut self, prefixes: &[(IpAddr, u8)]) -> Result<(), InterfaceError> {
        let wanted = prefixes
            .iter()
            .map(|&(addr, len)| normalize_prefix(addr, len))
            .collect::<Result<BTreeSet<_>, _>>()?;
        self.wanted_routes = wanted;
        match self.index {
            Some(index) => self.apply_routes(index).await,
            None => Ok(()),
        }
    }

    /// Replaces the interface addresses with `new`, removing the ones no
    /// longer wanted before adding the new ones, then re-evaluates which
    /// routes are needed (coverage by address prefixes may have changed).
    ///
    /// Before `setup` the addresses are only recorded.
    pub async fn set_addresses(&mut self, new: &[(IpAddr, u8)]) -> Result<(), InterfaceError> {
        let new = dedup_addresses(new)?;
        let Some(index) = self.index else {
            self.addresses = new;
            return Ok(());
        };
        // Remove first: IPv6 refuses the same address twice with different
        // prefix lengths, so a prefix change must free the address first.
        let stale: Vec<_> = self
            .addresses
            .iter()
            .filter(|a| !new.contains(a))
            .copied()
            .collect();
        for (addr, len) in stale {
            self.netlink.remove_address(index, addr, len).await?;
            self.addresses.retain(|&a| a != (addr, len));
        }
        for &(addr, len) in &new {
            if !self.addresses.contains(&(addr, len)) {
                self.netlink.add_address(index, addr, len).await?;
                self.addresses.push((addr, len));
            }
        }
        self.addresses = new;
        self.apply_routes(index).await
    }

    /// Changes the interface MTU.
    ///
    /// Before `setup` the MTU is only recorded.
    pub async fn set_mtu(&mut self, mtu: u16) -> Result<(), InterfaceError> {
        if let Some(index) = self.index {
            self.warn_if_mtu_drops_ipv6(mtu);
            self.netlink.set_mtu(index, mtu.into()).await?;
        }
        self.opts.mtu = mtu;
        Ok(())
    }

    /// Deletes the link, and with it the routes this manager added.
    ///
    /// If the link cannot be deleted, the routes are removed one by one and the
    /// link's error is returned. Routes and link that are already gone are not
    /// errors. Does nothing if the interface is not set up.
    pub async fn teardown(&mut self) -> Result<(), InterfaceError> {
        let Some(index) = self.index.take() else {
            return Ok(());
        };
        // Deleting the link takes every route through it along, in one request: removing
        // 100,000 routes one by one first would take seconds. Routes are removed one by one
        // only if the link cannot be deleted.
        match self.netlink.delete_link_index(index).await {
            Ok(_) => {
                self.installed_routes.clear();
                tracing::info!(interface = %self.opts.name, "interface deleted");
                Ok(())
            }
            Err(link_error) => {
                let routes = std::mem::take(&mut self.installed_routes);
                for (_, result) in self.routes_request(index, routes, false).await {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "removing route during teardown failed");
                    }
                }
                Err(link_error)
            }
        }
    }

    /// Installs the wanted routes that are not covered by an address prefix
    /// and removes installed routes that are no longer needed. Adds before
    /// removing, so traffic for a prefix that merely moves is not interrupted.
    /// Every missing route is attempted; if any add fails, the first error is
    /// returned and nothing is removed.
    async fn apply_routes(&mut self, index: u32) -> Result<(), InterfaceError> {
        let needed: BTreeSet<(IpAddr, u8)> = self
            .wanted_routes
            .iter()
            .filter(|&&prefix| !self.addresses.iter().any(|&a| prefix_contains(a, prefix)))
            .copied()
            .collect();

        let missing: Vec<_> = needed.difference(&self.installed_routes).copied().collect();
        let mut first_error = None;
        for ((network, len), result) in self.routes_request(index, missing, true).await {
            match result {
                Ok(()) => {
                    self.installed_routes.insert((network, len));
                    tracing::debug!(interface = %self.opts.name, %network, len, "route added");
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let stale: Vec<_> = self.installed_routes.difference(&needed).copied().collect();
        for ((network, len), result) in self.routes_request(index, stale, false).await {
            match result {
                Ok(()) => {
                    self.installed_routes.remove(&(network, len));
                    tracing::debug!(interface = %self.opts.name, %network, len, "route removed");
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Adds (`add`) or removes routes through link `index`, with up to
    /// [`ROUTE_WINDOW`] requests in flight; returns each prefix with its result,
    /// in the order the answers came.
    async fn routes_request(
        &self,
        index: u32,
        prefixes: impl IntoIterator<Item = (IpAddr, u8)>,
        add: bool,
    ) -> Vec<((IpAddr, u8), Result<(), InterfaceError>)> {
        let netlink = &self.netlink;
        futures::stream::iter(prefixes)
            .map(|(network, len)| async move {
                let result = if add {
                    netlink.add_route(index, network, len).await
                } else {
                    netlink.remove_route(index, network, len).await
                };
                ((network, len), result)
            })
            .buffer_unordered(ROUTE_WINDOW)
            .collect()
            .await
    }

    fn warn_if_mtu_drops_ipv6(&self, mtu: u16) {
        if mtu < IPV6_MIN_MTU && self.addresses.iter().any(|(a, _)| a.is_ipv6()) {
            tracing::warn!(
                interface = %self.opts.name,
                mtu,
                "MTU below 1280: the kernel disables IPv6 on this interface"
            );
        }
    }
}
