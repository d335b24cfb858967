//! The network interface layer: the TUN device plus the kernel-side addresses,
//! MTU, link state and routes that make traffic reach it.
//!
//! This module holds the platform-neutral vocabulary ([`TunOptions`],
//! [`InterfaceError`], prefix arithmetic). The platform implementation lives in
//! a submodule and is re-exported from here, so callers use
//! `actors::interface::InterfaceManager` regardless of the platform.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub mod actor;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::{clone_queue, create_tun, InterfaceManager, LinkInfo, NetlinkHandle};

/// How to create the TUN device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunOptions {
    /// Interface name (at most 15 bytes on Linux).
    pub name: String,
    /// Initial MTU of the device.
    pub mtu: u16,
    /// Open the device with `IFF_VNET_HDR` and enable TSO/GSO offloads, so
    /// reads may return coalesced super-packets. When `false` the device is a
    /// plain `IFF_TUN | IFF_NO_PI` device that yields one IP packet per read.
    pub offload: bool,
    /// Open the device with `IFF_MULTI_QUEUE`, so further queues can be opened
    /// with [`clone_queue`] and served from separate tasks or threads.
    pub multi_queue: bool,
}

impl TunOptions {
    /// Options for a plain single-queue device without offloads.
    pub fn new(name: impl Into<String>, mtu: u16) -> Self {
        Self {
            name: name.into(),
            mtu,
            offload: false,
            multi_queue: false,
        }
    }
}

/// An error from the interface layer.
///
/// Every OS failure carries the operation that failed (including its
/// arguments) and the underlying OS error, so a log line is actionable on its
/// own.
#[derive(Debug, thiserror::Error)]
pub enum InterfaceError {
    /// A system call or netlink request failed.
    #[error("{op}: {source}")]
    Os {
        /// What was being attempted, e.g. `add route 10.0.0.0/8 dev 5`.
        op: String,
        /// The OS error (for netlink, the errno the kernel answered with).
        #[source]
        source: io::Error,
    },
    /// An interface that must exist does not.
    #[error("interface {name:?} not found")]
    LinkNotFound {
        /// The interface name that was looked up.
        name: String,
    },
    /// A prefix length is longer than the address family allows.
    #[error("invalid prefix {addr}/{prefix_len}")]
    InvalidPrefix {
        /// The address part of the prefix.
        addr: IpAddr,
        /// The offending prefix length.
        prefix_len: u8,
    },
    /// An interface name the kernel would reject.
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
}

impl InterfaceError {
    /// Builds an [`InterfaceError::Os`] from an operation description and an
    /// I/O error.
    pub fn os(op: impl Into<String>, source: io::Error) -> Self {
        Self::Os {
            op: op.into(),
            source,
        }
    }

    /// The raw OS error number, if this error came from the OS.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Os { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Longest interface name Linux accepts (`IFNAMSIZ - 1`).
pub const MAX_IFNAME_LEN: usize = 15;

/// Checks `name` against the rules the kernel applies to interface names
/// (`dev_valid_name`), so a bad configuration fails with a clear message.
pub fn validate_ifname(name: &str) -> Result<(), InterfaceError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_IFNAME_LEN {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("reserved name")
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
    {
        Some("contains '/', ':', NUL or whitespace")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(InterfaceError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The longest valid prefix length for the family of `addr`.
pub fn max_prefix_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Clears the host bits of `addr` beyond `prefix_len`, giving the network
/// address (`10.1.2.3/16` becomes `10.1.0.0/16`).
///
/// Fails if `prefix_len` is too long for the address family.
pub fn normalize_prefix(addr: IpAddr, prefix_len: u8) -> Result<(IpAddr, u8), InterfaceError> {
    if prefix_len > max_prefix_len(addr) {
        return Err(InterfaceError::InvalidPrefix { addr, prefix_len });
    }
    let network = match addr {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    };
    Ok((network, prefix_len))
}

/// Whether the prefix `outer` contains every address of the prefix `inner`.
///
/// Prefixes of different families never contain each other; invalid prefix
/// lengths contain nothing.
pub fn prefix_contains(outer: (IpAddr, u8), inner: (IpAddr, u8)) -> bool {
    if outer.0.is_ipv4() != inner.0.is_ipv4() || outer.1 > inner.1 {
        return false;
    }
    match (
        normalize_prefix(outer.0, outer.1),
        normalize_prefix(inner.0, outer.1),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (IpAddr, u8) {
        let (a, l) = s.split_once('/').unwrap();
        (a.parse().unwrap(), l.parse().unwrap())
    }

    #[test]
    fn normalize_clears_host_bits() {
        assert_eq!(
            normalize_prefix(p("10.1.2.3/16").0, 16).unwrap(),
            p("10.1.0.0/16")
        );
        assert_eq!(
            normalize_prefix(p("10.1.2.3/0").0, 0).unwrap(),
            p("0.0.0.0/0")
        );
        assert_eq!(
            normalize_prefix(p("fd00::1:2/64").0, 64).unwrap(),
            p("fd00::/64")
        );
        assert_eq!(normalize_prefix(p("::1/0").0, 0).unwrap(), p("::/0"));
        assert_eq!(
            normalize_prefix(p("fd00::1/128").0, 128).unwrap(),
            p("fd00::1/128")
        );
        assert!(normalize_prefix(p("10.0.0.1/32").0, 33).is_err());
        assert!(normalize_prefix(p("fd00::1/128").0, 129).is_err());
    }

    #[test]
    fn interface_names() {
        assert!(validate_ifname("wg0").is_ok());
        assert!(validate_ifname("abcdefghijklmno").is_ok());
        assert!(validate_ifname("abcdefghijklmnop").is_err());
        assert!(validate_ifname("").is_err());
        assert!(validate_ifname("..").is_err());
        assert!(validate_ifname("a/b").is_err());
        assert!(validate_ifname("a b").is_err());
        assert!(validate_ifname("a:1").is_err());
    }

    #[test]
    fn containment() {
        assert!(prefix_contains(p("10.10.0.1/24"), p("10.10.0.2/32")));
        assert!(prefix_contains(p("10.10.0.1/24"), p("10.10.0.0/24")));
        assert!(!prefix_contains(p("10.10.0.1/24"), p("10.10.0.0/16")));
        assert!(!prefix_contains(p("10.10.0.1/24"), p("10.20.0.0/16")));
        assert!(prefix_contains(p("0.0.0.0/0"), p("10.20.0.0/16")));
        assert!(prefix_contains(p("fd00::1/64"), p("fd00::2/128")));
        assert!(!prefix_contains(p("fd00::1/64"), p("fd01::/48")));
        assert!(!prefix_contains(p("::/0"), p("10.0.0.0/8")));
        assert!(!prefix_contains(p("0.0.0.0/0"), p("::/0")));
    }
}
