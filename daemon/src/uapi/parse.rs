//! Parsing the UAPI's text: the operation line and the body of a `set=1` request.
//!
//! Pure functions over strings: no I/O, no daemon state. A body is parsed completely before
//! anything is applied, so a malformed request changes nothing.
//!
//! A `set` body is `key=value` lines. Interface keys (`private_key`, `listen_port`, `fwmark`,
//! `replace_peers`) come first; each `public_key` starts a peer section, and every later key
//! belongs to that peer (`remove`, `update_only`, `preshared_key`, `endpoint`,
//! `persistent_keepalive_interval`, `replace_allowed_ips`, `allowed_ip`, `protocol_version`).
//! Keys are lower-case hex; an all-zero `private_key` or `preshared_key` clears it.

use protocol::allowed_ips::IpPrefix;
use protocol::keys::{parse_hex_key, PresharedKey, PrivateKey, PublicKey, KEY_LEN};
use std::net::SocketAddr;
use zeroize::Zeroize;

/// The operation a client asks for on its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `get=1`: dump the configuration and state.
    Get,
    /// `set=1`: change the configuration.
    Set,
}

/// The operation named by a request's first line (without its `\n`), if it is one.
pub fn parse_operation(line: &str) -> Option<Operation> {
    match line {
        "get=1" => Some(Operation::Get),
        "set=1" => Some(Operation::Set),
        _ => None,
    }
}

/// A parsed `set=1` body: every change it asks for, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetRequest {
    /// `private_key`: `Some(None)` clears the key (all zeros).
    pub private_key: Option<Option<PrivateKey>>,
    /// `listen_port` (0 = any free port).
    pub listen_port: Option<u16>,
    /// `fwmark` (0 = none).
    pub fwmark: Option<u32>,
    /// `replace_peers=true`: remove every peer before the sections below.
    pub replace_peers: bool,
    /// The peer sections, in order (a key may appear in more than one).
    pub peers: Vec<PeerSection>,
}

/// The lines from one `public_key=` to the next (or the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSection {
    /// The peer the section is about.
    pub public_key: PublicKey,
    /// `remove=true`: remove the peer (the rest of the section is ignored).
    pub remove: bool,
    /// `update_only=true`: change the peer only if it exists; otherwise ignore the section.
    pub update_only: bool,
    /// `preshared_key`: `Some(None)` clears it (all zeros).
    pub preshared_key: Option<Option<PresharedKey>>,
    /// `endpoint`: a literal `ip:port` or `[ipv6]:port`.
    pub endpoint: Option<SocketAddr>,
    /// `persistent_keepalive_interval` in seconds (0 = off).
    pub persistent_keepalive: Option<u16>,
    /// `replace_allowed_ips=true`: the peer's allowed IPs are exactly [`Self::allowed_ips`]
    /// (an `allowed_ip` before it in the same section is dropped too, as it would be if the
    /// lines were applied one by one).
    pub replace_allowed_ips: bool,
    /// `allowed_ip` lines after the last `replace_allowed_ips`, in order.
    pub allowed_ips: Vec<IpPrefix>,
}

impl PeerSection {
    fn new(public_key: PublicKey) -> Self {
        PeerSection {
            public_key,
            remove: false,
            update_only: false,
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: None,
            replace_allowed_ips: false,
            allowed_ips: Vec::new(),
        }
    }
}

/// Why a `set` body was refused: the 1-based line within the body and what is wrong.
/// Always answered with `errno=22` (EINVAL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number within the body (the line after `set=1` is 1).
    pub line: usize,
    /// What is wrong, without echoing secret values.
    pub message: String,
}

/// Parses the lines of a `set=1` body (without the `set=1` line and the final empty line).
pub fn parse_set<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<SetRequest, ParseError> {
    let mut req = SetRequest::default();
    let mut peer: Option<PeerSection> = None;
    for (i, line) in lines.into_iter().enumerate() {
        let fail = |message: String| ParseError {
            line: i + 1,
            message,
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(fail(format!(
                "expected key=value, got {:?}",
                truncate(line)
            )));
        };
        if key == "public_key" {
            let k = public_key(value).map_err(fail)?;
            req.peers.extend(peer.replace(PeerSection::new(k)));
            continue;
        }
        match &mut peer {
            None => interface_key(&mut req, key, value).map_err(fail)?,
            Some(p) => peer_key(p, key, value).map_err(fail)?,
        }
    }
    req.peers.extend(peer);
    Ok(req)
}

fn interface_key(req: &mut SetRequest, key: &str, value: &str) -> Result<(), String> {
    match key {
        "private_key" => {
            let mut bytes = hex_key(key, value)?;
            req.private_key = Some(if bytes == [0; KEY_LEN] {
                None
            } else {
                Some(PrivateKey::from_bytes(bytes))
            });
            bytes.zeroize();
        }
        "listen_port" => req.listen_port = Some(number(key, value)?),
        "fwmark" => req.fwmark = Some(number(key, value)?),
        "replace_peers" => {
            flag(key, value)?;
            req.replace_peers = true;
        }
        _ => return Err(format!("unknown interface key {:?}", truncate(key))),
    }
    Ok(())
}

fn peer_key(p: &mut PeerSection, key: &str, value: &str) -> Result<(), String> {
    match key {
        "remove" => {
            flag(key, value)?;
            p.remove = true;
        }
        "update_only" => {
            flag(key, value)?;
            p.update_only = true;
        }
        "preshared_key" => {
            let mut bytes = hex_key(key, value)?;
            p.preshared_key = Some((bytes != [0; KEY_LEN]).then(|| PresharedKey(bytes)));
            bytes.zeroize();
        }
        "endpoint" => {
            p.endpoint = Some(value.parse::<SocketAddr>().map_err(|_| {
                format!(
                    "endpoint {:?} is not ip:port or [ipv6]:port",
                    truncate(value)
                )
            })?);
        }
        "persistent_keepalive_interval" => p.persistent_keepalive = Some(number(key, value)?),
        "replace_allowed_ips" => {
            flag(key, value)?;
            p.replace_allowed_ips = true;
            p.allowed_ips.clear();
        }
        "allowed_ip" => p.allowed_ips.push(prefix(value)?),
        "protocol_version" => {
            if value != "1" {
                return Err(format!(
                    "protocol_version {:?} is not supported (only 1)",
                    truncate(value)
                ));
            }
        }
        _ => return Err(format!("unknown peer key {:?}", truncate(key))),
    }
    Ok(())
}

/// Exactly 64 hex digits.
fn hex_key(key: &str, value: &str) -> Result<[u8; KEY_LEN], String> {
    parse_hex_key(value).ok_or_else(|| format!("{key} must be {} hex digits", KEY_LEN * 2))
}

fn public_key(value: &str) -> Result<PublicKey, String> {
    hex_key("public_key", value).map(PublicKey)
}

/// `true`, the only value a flag takes.
fn flag(key: &str, value: &str) -> Result<(), String> {
    if value == "true" {
        Ok(())
    } else {
        Err(format!("{key} must be \"true\", got {:?}", truncate(value)))
    }
}

/// A decimal number in the type's range: digits only (no sign, no spaces).
fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{key} {:?} is not a number", truncate(value)));
    }
    value
        .parse()
        .map_err(|_| format!("{key} {:?} is out of range", truncate(value)))
}

/// `address/length`; the length is required.
fn prefix(value: &str) -> Result<IpPrefix, String> {
    if !value.contains('/') || value.trim() != value {
        return Err(format!(
            "allowed_ip {:?} is not address/length",
            truncate(value)
        ));
    }
    value
        .parse::<IpPrefix>()
        .map_err(|e| format!("allowed_ip {:?}: {e}", truncate(value)))
}

/// At most 64 characters of client input in a message.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: u8) -> String {
        protocol::keys::hex(&[b; 32])
    }

    fn set(body: &str) -> Result<SetRequest, ParseError> {
        parse_set(body.lines())
    }

    #[test]
    fn operations() {
        assert_eq!(parse_operation("get=1"), Some(Operation::Get));
        assert_eq!(parse_operation("set=1"), Some(Operation::Set));
        assert_eq!(parse_operation("get=2"), None);
        assert_eq!(parse_operation("get=1 "), None);
        assert_eq!(parse_operation(""), None);
    }

    #[test]
    fn empty_body_changes_nothing() {
        assert_eq!(set("").unwrap(), SetRequest::default());
    }

    #[test]
    fn every_interface_key() {
        let r = set(&format!(
            "private_key={}\nlisten_port=51820\nfwmark=4294967295\nreplace_peers=true\n",
            hex(7)
        ))
        .unwrap();
        assert_eq!(r.private_key, Some(Some(PrivateKey::from_bytes([7; 32]))));
        assert_eq!(r.listen_port, Some(51820));
        assert_eq!(r.fwmark, Some(u32::MAX));
        assert!(r.replace_peers);
        assert!(r.peers.is_empty());
    }

    #[test]
    fn zero_keys_clear() {
        let r = set(&format!(
            "private_key={}\npublic_key={}\npreshared_key={}\n",
            hex(0),
            hex(1),
            hex(0)
        ))
        .unwrap();
        assert_eq!(r.private_key, Some(None));
        assert_eq!(r.peers[0].preshared_key, Some(None));
        let r = set(&format!(
            "public_key={}\npreshared_key={}\n",
            hex(1),
            hex(2)
        ))
        .unwrap();
        assert_eq!(r.peers[0].preshared_key, Some(Some(PresharedKey([2; 32]))));
    }

    #[test]
    fn every_peer_key() {
        let body = format!(
            "public_key={}\nupdate_only=true\npreshared_key={}\nendpoint=[fd00::1]:51820\n\
             persistent_keepalive_interval=25\nreplace_allowed_ips=true\n\
             allowed_ip=10.0.0.0/24\nallowed_ip=fd00::/64\nprotocol_version=1\n\
             public_key={}\nremove=true\n",
            hex(1),
            hex(2),
            hex(3)
        );
        let r = set(&body).unwrap();
        assert_eq!(r.peers.len(), 2);
        let p = &r.peers[0];
        assert_eq!(p.public_key, PublicKey([1; 32]));
        assert!(p.update_only && !p.remove && p.replace_allowed_ips);
        assert_eq!(p.endpoint, Some("[fd00::1]:51820".parse().unwrap()));
        assert_eq!(p.persistent_keepalive, Some(25));
        assert_eq!(
            p.allowed_ips,
            vec![
                "10.0.0.0/24".parse::<IpPrefix>().unwrap(),
                "fd00::/64".parse().unwrap()
            ]
        );
        assert_eq!(r.peers[1].public_key, PublicKey([3; 32]));
        assert!(r.peers[1].remove);
    }

    #[test]
    fn replace_allowed_ips_drops_earlier_lines_of_the_section() {
        let r = set(&format!(
            "public_key={}\nallowed_ip=10.0.0.1/32\nreplace_allowed_ips=true\nallowed_ip=10.0.0.2/32\n",
            hex(1)
        ))
        .unwrap();
        assert!(r.peers[0].replace_allowed_ips);
        assert_eq!(
            r.peers[0].allowed_ips,
            vec!["10.0.0.2/32".parse::<IpPrefix>().unwrap()]
        );
    }

    #[test]
    fn a_key_may_have_several_sections() {
        let r = set(&format!(
            "public_key={0}\nremove=true\npublic_key={0}\nallowed_ip=10.0.0.1/32\n",
            hex(1)
        ))
        .unwrap();
        assert_eq!(r.peers.len(), 2);
        assert!(r.peers[0].remove && !r.peers[1].remove);
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("nonsense", 1, "expected key=value"),
            ("listen_port=51820\nbogus=1", 2, "unknown interface key"),
            ("listen_port=65536", 1, "out of range"),
            ("listen_port=-1", 1, "not a number"),
            ("listen_port=", 1, "not a number"),
            ("listen_port= 1", 1, "not a number"),
            ("fwmark=4294967296", 1, "out of range"),
            ("fwmark=0x10", 1, "not a number"),
            ("private_key=abc", 1, "64 hex digits"),
            ("replace_peers=false", 1, "must be \"true\""),
            ("public_key=zz", 1, "64 hex digits"),
            // Peer keys are not interface keys and vice versa.
            ("remove=true", 1, "unknown interface key"),
            ("protocol_version=1", 1, "unknown interface key"),
        ];
        for (body, line, msg) in cases {
            let e = set(body).unwrap_err();
            assert_eq!(e.line, *line, "{body}: {e}");
            assert!(e.message.contains(msg), "{body}: {e}");
        }
        let k = hex(1);
        let peer_cases: &[(&str, &str)] = &[
            ("listen_port=1", "unknown peer key"),
            ("replace_peers=true", "unknown peer key"),
            ("remove=yes", "must be \"true\""),
            ("update_only=1", "must be \"true\""),
            ("replace_allowed_ips=TRUE", "must be \"true\""),
            ("preshared_key=00", "64 hex digits"),
            ("endpoint=example.com:51820", "not ip:port"),
            ("endpoint=fd00::1:51820", "not ip:port"),
            ("endpoint=10.0.0.1", "not ip:port"),
            ("persistent_keepalive_interval=65536", "out of range"),
            ("allowed_ip=10.0.0.1", "not address/length"),
            ("allowed_ip=10.0.0.0/33", "allowed_ip"),
            ("allowed_ip=10.0.0.0/8 ", "not address/length"),
            ("allowed_ip=nope/8", "allowed_ip"),
            ("protocol_version=2", "not supported"),
        ];
        for (line, msg) in peer_cases {
            let e = set(&format!("public_key={k}\n{line}")).unwrap_err();
            assert_eq!(e.line, 2, "{line}: {e}");
            assert!(e.message.contains(msg), "{line}: {e}");
        }
    }

    #[test]
    fn secrets_and_long_input_stay_out_of_messages() {
        let e = set(&format!("private_key={}zz", hex(9))).unwrap_err();
        assert!(!e.message.contains(&hex(9)), "{e}");
        let long = "x".repeat(10_000);
        let e = set(&long).unwrap_err();
        assert!(e.message.len() < 200, "{}", e.message.len());
    }

    #[test]
    fn never_panics_on_odd_input() {
        for body in [
            "=",
            "==",
            "=\n=",
            "public_key=",
            "allowed_ip=/",
            "\u{0}=\u{0}",
            "public_key=é",
            "endpoint=[::1]:99999",
        ] {
            let _ = set(body);
        }
    }
}
