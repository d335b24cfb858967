//! An IP prefix in CIDR notation (`10.10.0.1/24`, `fd10::1/64`).
//!
//! This is a stand-in kept private to the configuration module until
//! `protocol::allowed_ips::IpPrefix` lands; everything the module needs from a prefix lives here
//! so that the swap touches one file.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address with a prefix length, e.g. `10.10.0.1/24`.
///
/// The address may have host bits set (an interface address keeps them); [`Cidr::masked`] gives
/// the network prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    /// The address as written.
    pub addr: IpAddr,
    /// The prefix length: `0..=32` for IPv4, `0..=128` for IPv6.
    pub len: u8,
}

/// Why a string is not a CIDR prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error("`{0}` is not an IP address")]
    BadAddress(String),
    /// The part after `/` is not a decimal number.
    #[error("prefix length `{0}` is not a number")]
    BadLength(String),
    /// The prefix length is larger than the address family allows.
    #[error("prefix length {len} is longer than {max}, the maximum for this address family")]
    TooLong {
        /// The length given.
        len: u32,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
}

impl Cidr {
    /// A prefix, checking that `len` fits the address family.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, CidrError> {
        let max = max_len(addr);
        if len > max {
            return Err(CidrError::TooLong {
                len: len.into(),
                max,
            });
        }
        Ok(Cidr { addr, len })
    }

    /// Whether this is an IPv6 prefix.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// The network prefix: the address with the host bits cleared.
    pub fn masked(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(self.len)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(self.len)).into()),
        };
        Cidr {
            addr,
            len: self.len,
        }
    }

    /// Whether the address has bits set beyond the prefix length.
    pub fn has_host_bits(&self) -> bool {
        self.masked().addr != self.addr
    }

    /// Whether `ip` falls inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                (u32::from(net) ^ u32::from(ip)) & mask32(self.len) == 0
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                (u128::from(net) ^ u128::from(ip)) & mask128(self.len) == 0
            }
            _ => false,
        }
    }

    /// Whether the two prefixes share any address (one contains the other's network).
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let shorter = if self.len <= other.len { self } else { other };
        let longer = if self.len <= other.len { other } else { self };
        shorter.contains(longer.addr)
    }
}

fn max_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// Parses `addr/len`; a bare address means a single host (`/32` or `/128`), as in `wg`.
    fn from_str(s: &str) -> Result<Self, CidrError> {
        let (addr_s, len_s) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr_s
            .parse()
            .map_err(|_| CidrError::BadAddress(addr_s.to_string()))?;
        let len = match len_s {
            None => max_len(addr),
            Some(l) => {
                // `u32::from_str` would take a leading `+`; a prefix length is plain digits.
                if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CidrError::BadLength(l.to_string()));
                }
                let n: u32 = l.parse().map_err(|_| CidrError::BadLength(l.to_string()))?;
                let max = max_len(addr);
                if n > u32::from(max) {
                    return Err(CidrError::TooLong { len: n, max });
                }
                n as u8
            }
        };
        Ok(Cidr { addr, len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_displays() {
        assert_eq!(c("10.10.0.1/24").to_string(), "10.10.0.1/24");
        assert_eq!(c("fd10::1/64").to_string(), "fd10::1/64");
        assert_eq!(c("10.0.0.7").len, 32);
        assert_eq!(c("::1").len, 128);
        assert_eq!(c("0.0.0.0/0").len, 0);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            "10.0.0.1/33".parse::<Cidr>(),
            Err(CidrError::TooLong { len: 33, max: 32 })
        );
        assert_eq!(
            "::/129".parse::<Cidr>(),
            Err(CidrError::TooLong { len: 129, max: 128 })
        );
        for bad in ["10.0.0.1/+8", "10.0.0.1/", "10.0.0.1/x", "10.0.0.1/0008"] {
            assert!(
                matches!(bad.parse::<Cidr>(), Err(CidrError::BadLength(_))),
                "{bad}"
            );
        }
        for bad in [
            "",
            "/8",
            "10.0.0/8",
            "10.0.0.256/8",
            "host/8",
            " 10.0.0.1/8",
        ] {
            assert!(
                matches!(bad.parse::<Cidr>(), Err(CidrError::BadAddress(_))),
                "{bad}"
            );
        }
        assert!(Cidr::new("10.0.0.0".parse().unwrap(), 40).is_err());
    }

    #[test]
    fn masking() {
        assert_eq!(c("10.10.0.77/24").masked(), c("10.10.0.0/24"));
        assert_eq!(c("10.10.0.77/0").masked(), c("0.0.0.0/0"));
        assert_eq!(c("10.10.0.77/32").masked(), c("10.10.0.77/32"));
        assert_eq!(c("fd10::1:2/112").masked(), c("fd10::1:0/112"));
        assert_eq!(c("fd10::1:2/96").masked(), c("fd10::/96"));
        assert_eq!(c("fd10::1/0").masked(), c("::/0"));
        assert!(c("10.10.0.1/24").has_host_bits());
        assert!(!c("10.10.0.0/24").has_host_bits());
    }

    #[test]
    fn overlap() {
        assert!(c("10.0.0.0/8").overlaps(&c("10.1.2.3/32")));
        assert!(c("10.1.2.3/32").overlaps(&c("10.0.0.0/8")));
        assert!(!c("10.0.0.0/8").overlaps(&c("11.0.0.0/8")));
        assert!(c("0.0.0.0/0").overlaps(&c("192.0.2.1/32")));
        assert!(!c("0.0.0.0/0").overlaps(&c("::/0")));
        assert!(c("fd10::/64").overlaps(&c("fd10::5/128")));
        assert!(!c("fd10::/64").overlaps(&c("fd11::/64")));
    }
}
