//! Reading the INI text: sections, `Key = value` lines, and each value checked.

use super::endpoint;
use super::problem::{Place, Problem, ProblemKind, Warning};
use super::{Interface, Peer, WgConfig};
use protocol::allowed_ips::IpPrefix;
use protocol::keys::{PresharedKey, PrivateKey, PublicKey};
use std::collections::HashMap;
use std::str::FromStr;
use zeroize::Zeroizing;

const INTERFACE_KEYS: &str =
    "PrivateKey, ListenPort, FwMark, Address, MTU, DNS, Table, PreUp, PostUp, PreDown, PostDown, SaveConfig";
const PEER_KEYS: &str = "PublicKey, PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive";

const HOOK_HINT: &str = "vpnd runs no shell commands; remove the line and run the command \
    from the service manager instead (systemd: ExecStartPre=, ExecStartPost=, ExecStopPost= \
    in vpnd's unit)";
const TABLE_HINT: &str = "vpnd routes each peer's allowed IPs through the main routing table; \
    remove the line, and add policy rules for another table yourself if you need one";
const SAVE_HINT: &str = "vpnd writes changes to its configuration file when asked with \
    `vpnctl ... --save`; remove the line";
const DNS_WARNING: &str = "ignored: vpnd does not configure DNS; set the interface's \
    resolver yourself (e.g. with resolvectl)";
const DEFAULT_ROUTE_WARNING: &str = "routes all traffic through the tunnel; wg-quick sets up \
    policy routing for that (a firewall mark and a routing table of its own), vpnd does not: \
    set FwMark and add the rules yourself (see `fwmark` in docs/configuration.md)";

/// Smallest MTU vpnd takes (IPv4's minimum datagram size) and the smallest with IPv6.
const MIN_MTU: u16 = 576;
const MIN_MTU_IPV6: u16 = 1280;

/// A value and the line it came from.
#[derive(Debug)]
struct At<T> {
    value: T,
    line: usize,
}

/// `[Interface]` while it is being read.
#[derive(Debug, Default)]
struct InterfaceDraft {
    line: usize,
    private_key: Option<At<Zeroizing<String>>>,
    listen_port: Option<At<u16>>,
    addresses: Vec<(String, IpPrefix)>,
    mtu: Option<At<u16>>,
    fwmark: Option<At<u32>>,
}

/// One `[Peer]` while it is being read.
#[derive(Debug, Default)]
struct PeerDraft {
    line: usize,
    /// The last line read in this section.
    end: usize,
    public_key: Option<At<(String, PublicKey)>>,
    preshared_key: Option<At<Zeroizing<String>>>,
    /// Each item, its prefix and its line.
    allowed_ips: Vec<(String, IpPrefix, usize)>,
    endpoint: Option<At<String>>,
    persistent_keepalive: Option<At<u16>>,
}

/// The section the lines being read belong to.
enum Section {
    None,
    Interface,
    Peer,
    /// An unknown section, already reported: its lines are skipped.
    Unknown,
}

struct Reader {
    interface: Option<InterfaceDraft>,
    peers: Vec<PeerDraft>,
    section: Section,
    problems: Vec<Problem>,
    warnings: Vec<Warning>,
}

/// Reads the whole file; see the module documentation of `import` for the rules.
pub(super) fn parse(text: &str) -> Result<(WgConfig, Vec<Warning>), Vec<Problem>> {
    let mut r = Reader {
        interface: None,
        peers: Vec::new(),
        section: Section::None,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        r.line(i + 1, raw);
    }
    let config = r.finish();
    if r.problems.is_empty() {
        if let Some(config) = config {
            return Ok((config, r.warnings));
        }
    }
    r.problems.sort_by_key(|p| p.place.line);
    Err(r.problems)
}

impl Reader {
    fn problem(&mut self, line: usize, key: Option<&str>, kind: ProblemKind) {
        self.problems.push(Problem {
            place: place(Some(line), key),
            kind,
        });
    }

    fn warn(&mut self, line: usize, key: &str, message: String) {
        self.warnings.push(Warning {
            place: place(Some(line), Some(key)),
            message,
        });
    }

    fn line(&mut self, n: usize, raw: &str) {
        // `#` starts a comment anywhere on the line, as in wg(8); base64 has no `#`.
        let text = raw.split('#').next().unwrap_or_default().trim();
        if text.is_empty() {
            return;
        }
        if let Some(rest) = text.strip_prefix('[') {
            self.section_header(n, text, rest);
            return;
        }
        let Some((key, value)) = text.split_once('=') else {
            self.problem(n, None, ProblemKind::NotKeyValue);
            return;
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            self.problem(n, None, ProblemKind::NotKeyValue);
            return;
        }
        match self.section {
            Section::None => self.problem(n, Some(key), ProblemKind::OutsideSection),
            Section::Unknown => {}
            Section::Interface => self.interface_key(n, key, value),
            Section::Peer => {
                self.peer().end = n;
                self.peer_key(n, key, value);
            }
        }
    }

    fn section_header(&mut self, n: usize, text: &str, rest: &str) {
        let name = rest.strip_suffix(']').map(str::trim);
        self.section = match name {
            Some(name) if name.eq_ignore_ascii_case("interface") => {
                if let Some(first) = &self.interface {
                    let first = first.line;
                    self.problem(n, Some(text), ProblemKind::SecondInterface { first });
                    Section::Unknown
                } else {
                    self.interface = Some(InterfaceDraft {
                        line: n,
                        ..InterfaceDraft::default()
                    });
                    Section::Interface
                }
            }
            Some(name) if name.eq_ignore_ascii_case("peer") => {
                self.peers.push(PeerDraft {
                    line: n,
                    ..PeerDraft::default()
                });
                Section::Peer
            }
            _ => {
                self.problem(n, Some(text), ProblemKind::UnknownSection);
                Section::Unknown
            }
        };
    }

    fn interface_key(&mut self, n: usize, key: &str, value: &str) {
        let lower = key.to_ascii_lowercase();
        // Keys that carry no value for vpnd are handled before the empty check.
        match lower.as_str() {
            "preup" | "postup" | "predown" | "postdown" => {
                return self.problem(n, Some(key), ProblemKind::Refused(HOOK_HINT));
            }
            // `false` is wg-quick's default: nothing to convert.
            "saveconfig" if value.eq_ignore_ascii_case("false") => return,
            "saveconfig" => return self.problem(n, Some(key), ProblemKind::Refused(SAVE_HINT)),
            "table" if value.eq_ignore_ascii_case("auto") => {
                return self.warn(
                    n,
                    key,
                    "ignored: `auto` is what vpnd does (routes in the main table)".into(),
                );
            }
            "table" => return self.problem(n, Some(key), ProblemKind::Refused(TABLE_HINT)),
            "dns" => return self.warn(n, key, DNS_WARNING.into()),
            "privatekey" | "listenport" | "fwmark" | "address" | "mtu" => {}
            _ => {
                return self.problem(
                    n,
                    Some(key),
                    ProblemKind::UnknownKey {
                        section: "Interface",
                        expected: INTERFACE_KEYS,
                    },
                );
            }
        }
        if value.is_empty() {
            return self.problem(n, Some(key), ProblemKind::Empty);
        }
        let result = match lower.as_str() {
            "privatekey" => value
                .parse::<PrivateKey>()
                .map(|_| At {
                    value: Zeroizing::new(value.to_string()),
                    line: n,
                })
                .map_err(ProblemKind::BadKey)
                .and_then(|v| set_once(&mut self.iface().private_key, v)),
            "listenport" => number::<u16>(value, "a port number from 0 to 65535")
                .and_then(|v| set_once(&mut self.iface().listen_port, At { value: v, line: n })),
            "fwmark" => fwmark(value)
                .and_then(|v| set_once(&mut self.iface().fwmark, At { value: v, line: n })),
            "mtu" => number::<u16>(value, "an MTU from 576 to 65535")
                .and_then(|mtu| {
                    if mtu < MIN_MTU {
                        Err(ProblemKind::BadNumber {
                            text: value.to_string(),
                            expected: "an MTU from 576 to 65535",
                        })
                    } else {
                        Ok(mtu)
                    }
                })
                .and_then(|v| set_once(&mut self.iface().mtu, At { value: v, line: n })),
            // "address"
            _ => {
                for item in list(value) {
                    match item.parse::<IpPrefix>() {
                        Ok(prefix) => self.iface().addresses.push((item.to_string(), prefix)),
                        Err(error) => self.problem(
                            n,
                            Some(key),
                            ProblemKind::BadCidr {
                                text: item.to_string(),
                                error,
                            },
                        ),
                    }
                }
                Ok(())
            }
        };
        if let Err(kind) = result {
            self.problem(n, Some(key), kind);
        }
    }

    fn peer_key(&mut self, n: usize, key: &str, value: &str) {
        let lower = key.to_ascii_lowercase();
        let known = [
            "publickey",
            "presharedkey",
            "allowedips",
            "endpoint",
            "persistentkeepalive",
        ];
        if !known.contains(&lower.as_str()) {
            return self.problem(
                n,
                Some(key),
                ProblemKind::UnknownKey {
                    section: "Peer",
                    expected: PEER_KEYS,
                },
            );
        }
        if lower == "allowedips" {
            // An empty list is valid: a peer that may send nothing.
            let mut default_routes = Vec::new();
            for item in list(value) {
                match item.parse::<IpPrefix>() {
                    Ok(prefix) => {
                        if prefix.prefix_len() == 0 {
                            default_routes.push(item);
                        }
                        self.peer().allowed_ips.push((item.to_string(), prefix, n));
                    }
                    Err(error) => self.problem(
                        n,
                        Some(key),
                        ProblemKind::BadCidr {
                            text: item.to_string(),
                            error,
                        },
                    ),
                }
            }
            if !default_routes.is_empty() {
                let items = default_routes.join(", ");
                self.warn(n, key, format!("{items}: {DEFAULT_ROUTE_WARNING}"));
            }
            return;
        }
        if value.is_empty() {
            return self.problem(n, Some(key), ProblemKind::Empty);
        }
        let result = match lower.as_str() {
            "publickey" => value
                .parse::<PublicKey>()
                .map_err(ProblemKind::BadKey)
                .and_then(|k| {
                    let v = At {
                        value: (value.to_string(), k),
                        line: n,
                    };
                    set_once(&mut self.peer().public_key, v)
                }),
            "presharedkey" => value
                .parse::<PresharedKey>()
                .map_err(ProblemKind::BadKey)
                .and_then(|_| {
                    let v = At {
                        value: Zeroizing::new(value.to_string()),
                        line: n,
                    };
                    set_once(&mut self.peer().preshared_key, v)
                }),
            "endpoint" => match endpoint::problem(value) {
                Some(reason) => Err(ProblemKind::BadEndpoint {
                    text: value.to_string(),
                    reason,
                }),
                None => set_once(
                    &mut self.peer().endpoint,
                    At {
                        value: value.to_string(),
                        line: n,
                    },
                ),
            },
            // "persistentkeepalive"
            _ => keepalive(value).and_then(|v| {
                set_once(
                    &mut self.peer().persistent_keepalive,
                    At { value: v, line: n },
                )
            }),
        };
        if let Err(kind) = result {
            self.problem(n, Some(key), kind);
        }
    }

    /// Whether a problem was reported for `key` (lower case) anywhere.
    fn reported(&self, key: &str) -> bool {
        self.reported_in(key, 0, usize::MAX)
    }

    /// Whether a problem was reported for `key` (lower case) on lines `from..=to`.
    fn reported_in(&self, key: &str, from: usize, to: usize) -> bool {
        self.problems.iter().any(|p| {
            p.place.line.is_some_and(|l| (from..=to).contains(&l))
                && p.place
                    .key
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case(key))
        })
    }

    /// The `[Interface]` being read; only called in that section.
    fn iface(&mut self) -> &mut InterfaceDraft {
        self.interface.get_or_insert_with(InterfaceDraft::default)
    }

    /// The `[Peer]` being read; only called in that section.
    fn peer(&mut self) -> &mut PeerDraft {
        if self.peers.is_empty() {
            self.peers.push(PeerDraft::default());
        }
        let last = self.peers.len() - 1;
        &mut self.peers[last]
    }

    /// Checks what needs the whole file and builds the result (`None` if something required
    /// is missing; the problem is recorded).
    fn finish(&mut self) -> Option<WgConfig> {
        let Some(iface) = self.interface.take() else {
            if self.problems.is_empty() {
                self.problems.push(Problem {
                    place: place(None, None),
                    kind: ProblemKind::NoInterface,
                });
            }
            return None;
        };
        let has_ipv6 = iface.addresses.iter().any(|(_, p)| p.is_ipv6());
        if let Some(mtu) = &iface.mtu {
            if has_ipv6 && mtu.value < MIN_MTU_IPV6 {
                let (line, mtu) = (mtu.line, mtu.value);
                self.problem(line, Some("MTU"), ProblemKind::MtuTooSmallForIpv6 { mtu });
            }
        }
        let own_public = iface
            .private_key
            .as_ref()
            .and_then(|k| k.value.parse::<PrivateKey>().ok())
            .map(|k| k.public_key());
        if iface.private_key.is_none() && !self.reported("privatekey") {
            self.problem(
                iface.line,
                Some("[Interface]"),
                ProblemKind::Missing("PrivateKey"),
            );
        }

        let peers = std::mem::take(&mut self.peers);
        let mut keys: HashMap<PublicKey, usize> = HashMap::new();
        let mut claims: HashMap<IpPrefix, usize> = HashMap::new();
        let mut out = Vec::new();
        for peer in peers {
            let Some(At {
                value: (text, key),
                line,
            }) = peer.public_key
            else {
                if !self.reported_in("publickey", peer.line, peer.end) {
                    self.problem(peer.line, Some("[Peer]"), ProblemKind::Missing("PublicKey"));
                }
                continue;
            };
            if own_public == Some(key) {
                self.problem(line, Some("PublicKey"), ProblemKind::OwnPublicKey);
            } else if let Some(&first) = keys.get(&key) {
                self.problem(
                    line,
                    Some("PublicKey"),
                    ProblemKind::DuplicatePeer { first },
                );
            } else {
                keys.insert(key, peer.line);
            }
            let mut allowed_ips = Vec::new();
            for (item, prefix, item_line) in peer.allowed_ips {
                let masked = prefix.masked();
                match claims.get(&masked) {
                    Some(&first) if first != peer.line => self.problem(
                        item_line,
                        Some("AllowedIPs"),
                        ProblemKind::AllowedIpTaken {
                            prefix: masked,
                            first,
                        },
                    ),
                    _ => {
                        claims.insert(masked, peer.line);
                    }
                }
                allowed_ips.push(item);
            }
            out.push(Peer {
                public_key: text,
                preshared_key: peer.preshared_key.map(|k| k.value),
                allowed_ips,
                endpoint: peer.endpoint.map(|e| e.value),
                persistent_keepalive: peer
                    .persistent_keepalive
                    .map(|k| k.value)
                    .filter(|&s| s != 0),
            });
        }

        Some(WgConfig {
            interface: Interface {
                private_key: iface.private_key?.value,
                listen_port: iface.listen_port.map(|p| p.value).filter(|&p| p != 0),
                addresses: iface.addresses.into_iter().map(|(text, _)| text).collect(),
                mtu: iface.mtu.map(|m| m.value),
                fwmark: iface.fwmark.map(|m| m.value).filter(|&m| m != 0),
            },
            peers: out,
        })
    }
}

fn place(line: Option<usize>, key: Option<&str>) -> Place {
    Place {
        line,
        key: key.map(str::to_string),
    }
}

/// Stores `value` in an empty `slot`, or reports the line of the one already there.
fn set_once<T>(slot: &mut Option<At<T>>, value: At<T>) -> Result<(), ProblemKind> {
    match slot {
        Some(first) => Err(ProblemKind::Duplicate { first: first.line }),
        None => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// The non-empty items of a comma-separated list, trimmed.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// A decimal number made of digits only (no sign, no spaces).
fn number<T: FromStr>(text: &str, expected: &'static str) -> Result<T, ProblemKind> {
    let bad = || ProblemKind::BadNumber {
        text: text.to_string(),
        expected,
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

/// `FwMark`: `off`, a decimal number or `0x` hexadecimal, as wg(8) takes it.
fn fwmark(text: &str) -> Result<u32, ProblemKind> {
    const EXPECTED: &str = "a mark from 0 to 4294967295 (decimal or 0x hexadecimal) or off";
    if text.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
    match hex {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u32::from_str_radix(digits, 16).map_err(|_| ProblemKind::BadNumber {
                text: text.to_string(),
                expected: EXPECTED,
            })
        }
        Some(_) => Err(ProblemKind::BadNumber {
            text: text.to_string(),
            expected: EXPECTED,
        }),
        None => number(text, EXPECTED),
    }
}

/// `PersistentKeepalive`: `off` or seconds.
fn keepalive(text: &str) -> Result<u16, ProblemKind> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    number(text, "a number of seconds from 0 to 65535, or off")
}
