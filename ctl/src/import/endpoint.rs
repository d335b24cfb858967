//! Checking a `[Peer]`'s `Endpoint` the way vpnd reads `endpoint:` (`host:port`, `ipv4:port` or
//! `[ipv6]:port`, port 1 to 65535), so a file that converts is one vpnd accepts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `text` is not an endpoint vpnd accepts, if it is not.
pub(super) fn problem(text: &str) -> Option<&'static str> {
    const MISSING_PORT: &str = "missing `:port` (write host:port, IPv4:port or [IPv6]:port)";
    const IPV6_BRACKETS: &str = "IPv6 addresses must be in brackets, e.g. [2001:db8::1]:51820";
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Some("no `]` after the IPv6 address");
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Some("the text in brackets is not an IPv6 address");
        }
        match after.strip_prefix(':') {
            Some(port) => (None, port),
            None => return Some(MISSING_PORT),
        }
    } else {
        let Some((host, port)) = text.rsplit_once(':') else {
            return Some(if text.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()) {
                IPV6_BRACKETS
            } else {
                MISSING_PORT
            });
        };
        if host.contains(':') {
            return Some(IPV6_BRACKETS);
        }
        (Some(host), port)
    };
    if port.is_empty() {
        return Some(MISSING_PORT);
    }
    let valid_port = port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0);
    if !valid_port {
        return Some("the port is not a number from 1 to 65535");
    }
    let host = host?;
    if host.is_empty() {
        return Some("empty host");
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host
            .parse::<Ipv4Addr>()
            .is_err()
            .then_some("not a valid IPv4 address");
    }
    (!valid_host_name(host)).then_some("not a valid host name")
}

/// RFC 1123 host names (plus `_`, which real DNS uses), with an optional trailing dot: the
/// names vpnd accepts.
fn valid_host_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn accepts_what_vpnd_accepts() {
        for ok in [
            "192.0.2.1:51820",
            "[2001:db8::1]:51820",
            "vpn.example.com:51820",
            "vpn.example.com.:1",
            "localhost:65535",
        ] {
            assert_eq!(problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn refuses_the_rest() {
        for bad in [
            "192.0.2.1",
            "vpn.example.com",
            "2001:db8::1:51820",
            "2001:db8::1",
            "[2001:db8::1]",
            "[2001:db8::1]51820",
            "[nope]:1",
            "[2001:db8::1:1",
            "host:0",
            "host:65536",
            "host:+5",
            "host:https",
            ":51820",
            "300.1.1.1:5",
            "bad_host-.com:5",
            "a b:5",
        ] {
            assert!(problem(bad).is_some(), "{bad} accepted");
        }
    }
}
