//! This host's LAN candidates: the addresses of its interfaces with the WireGuard port, which a
//! peer on the same LAN (or behind the same NAT) can reach without going out and back in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// At most this many local candidates are announced (the hub protocol's limit is 8 in all,
/// and public endpoints come first).
pub const MAX_LOCAL: usize = 4;

/// The addresses of every interface that is up, except loopback, link-local and `skip` (our
/// own tunnel), each with `port`. IPv4 first.
pub fn local_candidates(port: u16, skip: &str) -> Vec<SocketAddr> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we own and free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Vec::new();
    }
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_flags & (libc::IFF_UP as u32) == 0 {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if name.to_bytes() == skip.as_bytes() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points at a sockaddr whose family says its size.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        let ip = match family {
            libc::AF_INET => {
                // SAFETY: the family is AF_INET, so this is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
            }
            libc::AF_INET6 => {
                // SAFETY: the family is AF_INET6, so this is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
            }
            _ => continue,
        };
        if !usable(ip) {
            continue;
        }
        let a = SocketAddr::new(ip, port);
        match ip {
            IpAddr::V4(_) if !v4.contains(&a) => v4.push(a),
            IpAddr::V6(_) if !v6.contains(&a) => v6.push(a),
            _ => {}
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    v4.extend(v6);
    v4.truncate(MAX_LOCAL);
    v4
}

/// Loopback, link-local (needs a scope), multicast and unspecified addresses are no use to a
/// peer elsewhere.
fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_loopback() || a.is_link_local() || a.is_unspecified()),
        IpAddr::V6(a) => {
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (a.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_what_a_peer_cannot_use() {
        assert!(!usable("127.0.0.1".parse().unwrap()));
        assert!(!usable("169.254.1.1".parse().unwrap()));
        assert!(!usable("fe80::1".parse().unwrap()));
        assert!(!usable("::1".parse().unwrap()));
        assert!(usable("192.168.1.5".parse().unwrap()));
        assert!(usable("2001:db8::5".parse().unwrap()));
    }

    #[test]
    fn lists_no_loopback_and_our_port() {
        for a in local_candidates(51820, "vpn0") {
            assert_eq!(a.port(), 51820);
            assert!(!a.ip().is_loopback());
        }
    }
}
