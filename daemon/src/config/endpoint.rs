//! A peer's endpoint as written in the configuration: an address, or a host name still to be
//! resolved (resolution happens elsewhere).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// Where to send a peer's packets until it roams.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A literal address: `192.0.2.1:51820` or `[2001:db8::1]:51820`.
    Addr(SocketAddr),
    /// A host name and port, resolved when the peer is configured.
    Host {
        /// The DNS name, as written.
        host: String,
        /// The UDP port, `1..=65535`.
        port: u16,
    },
}

/// Why a string is not an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// No `:port` at the end.
    #[error("missing `:port` (write host:port, IPv4:port or [IPv6]:port)")]
    MissingPort,
    /// The port is not a number in `1..=65535`.
    #[error("port `{0}` is not a number from 1 to 65535")]
    BadPort(String),
    /// Nothing before the `:port`.
    #[error("empty host")]
    EmptyHost,
    /// An IPv6 address without brackets, which makes the port ambiguous.
    #[error("IPv6 addresses must be in brackets, e.g. [2001:db8::1]:51820")]
    UnbracketedIpv6,
    /// The text in brackets is not an IPv6 address.
    #[error("`{0}` in brackets is not an IPv6 address")]
    BadIpv6(String),
    /// Dotted digits that are not a valid IPv4 address.
    #[error("`{0}` is not a valid IPv4 address")]
    BadIpv4(String),
    /// Not a valid DNS name.
    #[error("`{0}` is not a valid host name")]
    BadHost(String),
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, EndpointError> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return check_port(addr.port()).map(|_| Endpoint::Addr(addr));
        }
        if let Some(rest) = s.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else {
                return Err(EndpointError::BadIpv6(rest.to_string()));
            };
            let Some(port) = after.strip_prefix(':') else {
                return Err(if after.is_empty() {
                    EndpointError::MissingPort
                } else {
                    EndpointError::BadPort(after.to_string())
                });
            };
            parse_port(port)?;
            // A valid IPv6 address with a valid port parsed as a `SocketAddr` above, so the
            // address is what is wrong (IPv4 in brackets, a named zone id, garbage).
            return Err(EndpointError::BadIpv6(inside.to_string()));
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            if s.is_empty() {
                return Err(EndpointError::EmptyHost);
            }
            if s.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()) {
                return Err(EndpointError::UnbracketedIpv6);
            }
            return Err(EndpointError::MissingPort);
        };
        if host.contains(':') {
            return Err(EndpointError::UnbracketedIpv6);
        }
        if host.is_empty() {
            return Err(EndpointError::EmptyHost);
        }
        let port = parse_port(port)?;
        if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            // Looks like IPv4; a valid one would have parsed as a SocketAddr above.
            return Err(EndpointError::BadIpv4(host.to_string()));
        }
        if !valid_host_name(host) {
            return Err(EndpointError::BadHost(host.to_string()));
        }
        Ok(Endpoint::Host {
            host: host.to_string(),
            port,
        })
    }
}

fn parse_port(s: &str) -> Result<u16, EndpointError> {
    if s.is_empty() {
        return Err(EndpointError::MissingPort);
    }
    if s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EndpointError::BadPort(s.to_string()));
    }
    let port: u16 = s
        .parse()
        .map_err(|_| EndpointError::BadPort(s.to_string()))?;
    check_port(port)
}

fn check_port(port: u16) -> Result<u16, EndpointError> {
    if port == 0 {
        Err(EndpointError::BadPort("0".into()))
    } else {
        Ok(port)
    }
}

/// RFC 1123 host names (plus `_`, which real-world DNS uses), with an optional trailing dot.
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

impl fmt::Display for Endpoint {
    /// `host:port`, `ipv4:port` or `[ipv6]:port`: the form [`FromStr`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Addr(addr) => write!(f, "{addr}"),
            Endpoint::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Result<Endpoint, EndpointError> {
        s.parse()
    }

    #[test]
    fn parses_addresses_and_hosts() {
        assert_eq!(
            ep("10.99.0.2:51820"),
            Ok(Endpoint::Addr("10.99.0.2:51820".parse().unwrap()))
        );
        assert_eq!(
            ep("[fd00::1]:51820"),
            Ok(Endpoint::Addr("[fd00::1]:51820".parse().unwrap()))
        );
        assert_eq!(
            ep("alice.example.net:51820"),
            Ok(Endpoint::Host {
                host: "alice.example.net".into(),
                port: 51820
            })
        );
        assert!(ep("localhost:1").is_ok());
        assert!(ep("host.example.:1").is_ok());
    }

    #[test]
    fn displays_in_parseable_form() {
        for s in ["10.99.0.2:51820", "[fd00::1]:51820", "alice.example.net:7"] {
            assert_eq!(ep(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_endpoints() {
        use EndpointError::*;
        assert_eq!(ep("alice.example.net"), Err(MissingPort));
        assert_eq!(ep("10.0.0.1"), Err(MissingPort));
        assert_eq!(ep("10.0.0.1:"), Err(MissingPort));
        assert_eq!(ep("[fd00::1]"), Err(MissingPort));
        assert_eq!(ep("host:0"), Err(BadPort("0".into())));
        assert_eq!(ep("10.0.0.1:0"), Err(BadPort("0".into())));
        assert_eq!(ep("host:65536"), Err(BadPort("65536".into())));
        assert_eq!(ep("host:+5"), Err(BadPort("+5".into())));
        assert_eq!(ep("host:http"), Err(BadPort("http".into())));
        assert_eq!(ep(":51820"), Err(EmptyHost));
        assert_eq!(ep(""), Err(EmptyHost));
        assert_eq!(ep("fd00::1:51820"), Err(UnbracketedIpv6));
        assert_eq!(ep("fd00::1"), Err(UnbracketedIpv6));
        assert_eq!(ep("[nope]:1"), Err(BadIpv6("nope".into())));
        assert_eq!(ep("[fd00::1"), Err(BadIpv6("fd00::1".into())));
        assert_eq!(ep("[10.0.0.1]:5"), Err(BadIpv6("10.0.0.1".into())));
        assert_eq!(ep("[fd00::1]:0"), Err(BadPort("0".into())));
        assert_eq!(ep("10.0.0.256:1"), Err(BadIpv4("10.0.0.256".into())));
        assert_eq!(ep("bad host:1"), Err(BadHost("bad host".into())));
        assert_eq!(ep("-x.net:1"), Err(BadHost("-x.net".into())));
        assert_eq!(ep("a..b:1"), Err(BadHost("a..b".into())));
    }
}
