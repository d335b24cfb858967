//! What the kernel has for our interface — its MTU and addresses — for `show` in the
//! configuration-less mode, where `wg-quick` (not vpnd) sets them with `ip` and vpnd's own
//! configuration knows neither.

use crate::actors::interface::{InterfaceError, NetlinkHandle};
use std::net::IpAddr;
use std::time::Duration;

/// A netlink request that takes longer than this is given up (`show` then reports the
/// configuration); the kernel answers in microseconds.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The interface's MTU and addresses as the kernel reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// The link's MTU.
    pub mtu: u16,
    /// Addresses with their prefix lengths, in the kernel's order, without IPv6 link-local
    /// ones (the kernel adds those itself; nobody configured them).
    pub addresses: Vec<(IpAddr, u8)>,
}

/// Reads one interface's state through a netlink socket of its own, opened in the daemon's
/// network namespace.
#[derive(Debug)]
pub struct KernelLink {
    netlink: NetlinkHandle,
    name: String,
}

/// Why the link's state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KernelLinkError {
    /// A netlink request failed.
    #[error(transparent)]
    Netlink(#[from] InterfaceError),
    /// The interface does not exist (any more).
    #[error("interface {0:?} not found")]
    Gone(String),
    /// The kernel did not answer in time.
    #[error("no answer from the kernel within {READ_TIMEOUT:?}")]
    Timeout,
}

impl KernelLink {
    /// Opens the netlink socket (on the current Tokio runtime) for interface `name`.
    pub fn new(name: &str) -> Result<Self, InterfaceError> {
        Ok(KernelLink {
            netlink: NetlinkHandle::new()?,
            name: name.to_string(),
        })
    }

    /// The link's MTU and addresses now.
    pub async fn read(&self) -> Result<LinkState, KernelLinkError> {
        tokio::time::timeout(READ_TIMEOUT, self.read_now())
            .await
            .map_err(|_| KernelLinkError::Timeout)?
    }

    async fn read_now(&self) -> Result<LinkState, KernelLinkError> {
        let link = self
            .netlink
            .link_by_name(&self.name)
            .await?
            .ok_or_else(|| KernelLinkError::Gone(self.name.clone()))?;
        let addresses = self.netlink.list_addresses(link.index).await?;
        Ok(LinkState {
            mtu: u16::try_from(link.mtu).unwrap_or(u16::MAX),
            addresses: configured(addresses),
        })
    }
}

/// Leaves out IPv6 link-local addresses (fe80::/10), which the kernel assigns by itself.
fn configured(addresses: Vec<(IpAddr, u8)>) -> Vec<(IpAddr, u8)> {
    addresses
        .into_iter()
        .filter(|(ip, _)| match ip {
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
            IpAddr::V4(_) => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_link_local_addresses_are_left_out() {
        let a = |s: &str, l| (s.parse::<IpAddr>().unwrap(), l);
        let kernel = vec![
            a("10.0.0.1", 24),
            a("fe80::1234", 64),
            a("febf::1", 64),
            a("fec0::1", 64),
            a("fd00::1", 64),
            a("169.254.1.1", 16),
        ];
        assert_eq!(
            configured(kernel),
            vec![
                a("10.0.0.1", 24),
                a("fec0::1", 64),
                a("fd00::1", 64),
                a("169.254.1.1", 16)
            ]
        );
    }
}
