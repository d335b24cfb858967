//! From raw sections to a checked [`Config`]: parse keys, prefixes and endpoints, apply defaults,
//! check ranges and cross-peer rules, and read key files. Every problem is collected; a
//! configuration is produced only when there are none.

use super::cidr::Cidr;
use super::confine::{self, ConfineError};
use super::endpoint::Endpoint;
use super::error::{Problem, ProblemKind};
use super::schema::{self, Int, RawControl, RawInterface, RawPeer};
use super::{
    default_socket, ControlConfig, InterfaceConfig, PeerConfig, DEFAULT_MTU,
    DEFAULT_REKEY_AFTER_BYTES, MAX_SOCKET_PATH_LEN,
};
use super::{hints, keyfile, path, KeyFiles};
use config::{Map, Value, ValueKind};
use protocol::keys::{PresharedKey, PrivateKey, PublicKey};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The checked sections.
pub(super) struct Checked {
    pub interface: InterfaceConfig,
    pub control: ControlConfig,
    pub peers: Vec<PeerConfig>,
    pub nat: super::nat::NatConfig,
}

/// Checks the top-level map. Problems and warnings are appended; `Some` only if no problem was
/// found (including any already in `problems`).
pub(super) fn check(
    root: Map<String, Value>,
    base_dir: &Path,
    key_files: KeyFiles<'_>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Option<Checked> {
    let mut c = Checker {
        base_dir,
        key_files,
        problems,
        warnings,
    };
    let raw = schema::decode_root(root, c.problems);
    let interface = c.interface(raw.interface);
    let name = interface.as_ref().and_then(|i| i.name.clone());
    let control = c.control(raw.control, name.as_deref().unwrap_or_default());
    let own_key = interface
        .as_ref()
        .and_then(|i| i.private_key.as_ref())
        .map(|(k, _)| k.public_key());
    let peers = c.peers(raw.peers, own_key);
    let nat = super::nat::check(raw.hubs, raw.stun_servers, c.base_dir, c.problems);

    if !c.problems.is_empty() {
        return None;
    }
    let interface = interface?;
    let (private_key, private_key_file) = interface.private_key?;
    Some(Checked {
        interface: InterfaceConfig {
            name: interface.name?,
            private_key: Some(private_key),
            private_key_file,
            listen_port: interface.listen_port,
            addresses: interface.addresses,
            mtu: interface.mtu,
            rekey_after_bytes: interface.rekey_after_bytes,
            fwmark: interface.fwmark,
        },
        control,
        peers,
        nat,
    })
}

/// The interface section with each field as far as it could be checked.
struct PartialInterface {
    name: Option<String>,
    private_key: Option<(PrivateKey, Option<PathBuf>)>,
    listen_port: Option<u16>,
    addresses: Vec<Cidr>,
    mtu: u16,
    rekey_after_bytes: u64,
    fwmark: Option<u32>,
}

struct Checker<'a> {
    base_dir: &'a Path,
    key_files: KeyFiles<'a>,
    problems: &'a mut Vec<Problem>,
    warnings: &'a mut Vec<String>,
}

impl Checker<'_> {
    fn problem(&mut self, path: impl Into<String>, kind: ProblemKind) {
        self.problems.push(Problem::new(path, kind));
    }

    /// Records a warning as `path: message`.
    fn warn(&mut self, path: &str, message: String) {
        self.warnings.push(format!("{path}: {message}"));
    }

    /// Whether a problem was already reported at `path` (e.g. a field dropped for its type,
    /// which should not then also be called missing).
    fn reported(&self, path: &str) -> bool {
        self.problems.iter().any(|p| p.path == path)
    }

    fn require<T>(&mut self, value: Option<T>, path: &str) -> Option<T> {
        if value.is_none() && !self.reported(path) {
            self.problem(path, ProblemKind::Missing);
        }
        value
    }

    /// `value` if it is in `min..=max`, else a problem.
    fn in_range(
        &mut self,
        value: Int,
        min: i64,
        max: Option<i64>,
        note: Option<&'static str>,
        path: &str,
    ) -> Option<i64> {
        let Int(v) = value;
        if v < min || max.is_some_and(|max| v > max) {
            self.problem(
                path,
                ProblemKind::OutOfRange {
                    value: v,
                    min,
                    max,
                    note,
                },
            );
            return None;
        }
        Some(v)
    }

    fn resolve(&self, file: &str) -> PathBuf {
        self.base_dir.join(file)
    }

    /// Reads a key file named by the field at `path`; warns if others can read it.
    fn key_file<K: std::str::FromStr<Err = protocol::keys::KeyError>>(
        &mut self,
        file: &str,
        path: &str,
    ) -> Option<(K, PathBuf)> {
        if file.is_empty() {
            self.problem(path, ProblemKind::Empty);
            return None;
        }
        let resolved = self.resolve(file);
        let readable = match self.key_files {
            KeyFiles::Anywhere => Ok(resolved.clone()),
            KeyFiles::Within(dir) => confine::within(dir, &resolved).map_err(|e| match e {
                ConfineError::Unresolvable { path, error } => {
                    ProblemKind::KeyFileUnreadable { path, error }
                }
                other => ProblemKind::KeyFileNotRead {
                    path: resolved.clone(),
                    reason: other.to_string(),
                },
            }),
            KeyFiles::None => Err(ProblemKind::KeyFileNotRead {
                path: resolved.clone(),
                reason: "the daemon was started without a configuration file, so it reads no \
                         key file for a control client"
                    .to_string(),
            }),
        };
        let read = readable.and_then(|real| keyfile::read::<K>(&real));
        match read {
            Ok(read) => {
                if read.too_open() {
                    self.warn(
                        path,
                        format!(
                            "key file {} is accessible by group or others (mode {:04o}); \
                             run `chmod 600` on it",
                            resolved.display(),
                            read.mode
                        ),
                    );
                }
                Some((read.key, resolved))
            }
            Err(kind) => {
                self.problem(path, kind);
                None
            }
        }
    }

    fn interface(&mut self, value: Option<Value>) -> Option<PartialInterface> {
        const AT: &str = "interface";
        let Some(value) = value.filter(|v| !matches!(v.kind, ValueKind::Nil)) else {
            self.problem(AT, ProblemKind::Missing);
            return None;
        };
        let raw: RawInterface = schema::decode(value, AT, self.problems)?;
        let p = |field| path::field(AT, field);

        let name =
            self.require(raw.name, &p("name"))
                .filter(|name| match interface_name_problem(name) {
                    None => true,
                    Some(reason) => {
                        self.problem(
                            p("name"),
                            ProblemKind::BadInterfaceName {
                                name: name.escape_debug().to_string(),
                                reason,
                            },
                        );
                        false
                    }
                });

        let private_key = match (raw.private_key, raw.private_key_file) {
            (Some(_), Some(_)) => {
                self.problem(AT, ProblemKind::BothSet("private_key", "private_key_file"));
                None
            }
            (Some(text), None) => match text.parse::<PrivateKey>() {
                Ok(key) => Some((key, None)),
                Err(e) => {
                    self.problem(p("private_key"), ProblemKind::BadKey(e));
                    None
                }
            },
            (None, Some(file)) => self
                .key_file::<PrivateKey>(&file, &p("private_key_file"))
                .map(|(key, path)| (key, Some(path))),
            (None, None) => {
                if !self.reported(&p("private_key")) && !self.reported(&p("private_key_file")) {
                    self.problem(
                        AT,
                        ProblemKind::NeitherSet("private_key", "private_key_file"),
                    );
                }
                None
            }
        };

        let listen_port = raw
            .listen_port
            .and_then(|v| {
                self.in_range(
                    v,
                    0,
                    Some(65535),
                    Some("0 picks any free port"),
                    &p("listen_port"),
                )
            })
            .and_then(|v| u16::try_from(v).ok())
            .filter(|&port| port != 0);

        let addresses = self.cidrs(raw.addresses, &p("addresses"));
        let has_ipv6 = addresses.iter().any(Cidr::is_ipv6);

        let mtu = raw
            .mtu
            .and_then(|Int(v)| match super::mtu_problem(v, has_ipv6) {
                Some(kind) => {
                    self.problem(p("mtu"), kind);
                    None
                }
                None => u16::try_from(v).ok(),
            })
            .unwrap_or(DEFAULT_MTU);

        let rekey_after_bytes = raw
            .rekey_after_bytes
            .and_then(|v| self.in_range(v, 1, None, None, &p("rekey_after_bytes")))
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(DEFAULT_REKEY_AFTER_BYTES);

        let fwmark = raw
            .fwmark
            .and_then(|v| {
                self.in_range(
                    v,
                    0,
                    Some(u32::MAX.into()),
                    Some("0 means no mark"),
                    &p("fwmark"),
                )
            })
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&m| m != 0);

        Some(PartialInterface {
            name,
            private_key,
            listen_port,
            addresses,
            mtu,
            rekey_after_bytes,
            fwmark,
        })
    }

    /// Parses a list of prefixes, reporting each bad one at `path[i]`.
    fn cidrs(&mut self, list: Option<Vec<String>>, at: &str) -> Vec<Cidr> {
        let mut out = Vec::new();
        for (i, text) in list.unwrap_or_default().into_iter().enumerate() {
            match text.parse::<Cidr>() {
                Ok(c) => out.push(c),
                Err(error) => {
                    self.problem(path::index(at, i), ProblemKind::BadCidr { text, error })
                }
            }
        }
        out
    }

    fn control(&mut self, value: Option<Value>, interface_name: &str) -> ControlConfig {
        const AT: &str = "control";
        let raw = match value.filter(|v| !matches!(v.kind, ValueKind::Nil)) {
            None => RawControl::default(),
            Some(v) => schema::decode(v, AT, self.problems).unwrap_or_default(),
        };
        let p = |field| path::field(AT, field);

        let socket = match raw.socket {
            None => default_socket(interface_name),
            Some(s) => {
                if s.is_empty() {
                    self.problem(p("socket"), ProblemKind::Empty);
                } else if s.contains('\0') {
                    self.problem(p("socket"), ProblemKind::BadCharacters("NUL"));
                }
                self.resolve(&s)
            }
        };
        let len = socket.as_os_str().len();
        if len > MAX_SOCKET_PATH_LEN && !self.reported(&p("socket")) {
            self.problem(
                p("socket"),
                ProblemKind::SocketPathTooLong {
                    len,
                    max: MAX_SOCKET_PATH_LEN,
                },
            );
        }

        let group = raw.group.filter(|g| {
            let problem = if g.is_empty() {
                Some(ProblemKind::Empty)
            } else if g.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Some(ProblemKind::BadCharacters(
                    "whitespace or control characters",
                ))
            } else {
                match crate::unix_group::gid_of(g) {
                    Ok(Some(_)) => None,
                    Ok(None) => Some(ProblemKind::NoSuchGroup(g.clone())),
                    // The group database could not be read: the socket's bind reports it
                    // with the OS error; nothing here to tell the user to fix.
                    Err(_) => None,
                }
            };
            problem.map(|kind| self.problem(p("group"), kind)).is_none()
        });

        ControlConfig { socket, group }
    }

    fn peers(&mut self, value: Option<Value>, own_key: Option<PublicKey>) -> Vec<PeerConfig> {
        const AT: &str = "peers";
        let list = match value.map(|v| v.kind) {
            None | Some(ValueKind::Nil) => return Vec::new(),
            Some(ValueKind::Array(list)) => list,
            Some(other) => {
                self.problem(
                    AT,
                    ProblemKind::WrongType(format!(
                        "expected a list, found {}",
                        schema::describe_kind(&other)
                    )),
                );
                return Vec::new();
            }
        };

        let mut peers = Vec::new();
        let mut cross = CrossPeer::default();
        for (i, value) in list.into_iter().enumerate() {
            let at = path::index(AT, i);
            let listed = hints::listed_endpoint(&value);
            let decoded = schema::decode::<RawPeer>(value, &at, self.problems);
            if let Some(address) = listed {
                hints::quote_listed_endpoint(
                    self.problems,
                    &path::field(&at, "endpoint"),
                    &address,
                );
            }
            if let Some(raw) = decoded {
                if let Some(peer) = self.peer(raw, i, &at, own_key.as_ref(), &mut cross) {
                    peers.push(peer);
                }
            }
        }
        peers
    }

    fn peer(
        &mut self,
        raw: RawPeer,
        index: usize,
        at: &str,
        own_key: Option<&PublicKey>,
        cross: &mut CrossPeer,
    ) -> Option<PeerConfig> {
        let p = |field| path::field(at, field);

        let name = raw.name.filter(|name| {
            let problem = if name.is_empty() {
                Some(ProblemKind::Empty)
            } else if name.chars().any(char::is_control) {
                Some(ProblemKind::BadCharacters("control characters"))
            } else if let Some(&first) = cross.names.get(name) {
                Some(ProblemKind::DuplicatePeerName {
                    name: name.clone(),
                    first: cross.label(first),
                })
            } else {
                None
            };
            problem.map(|kind| self.problem(p("name"), kind)).is_none()
        });
        if let Some(name) = &name {
            cross.names.insert(name.clone(), index);
        }
        cross.labels.push(name.clone());

        let public_key = self
            .require(raw.public_key, &p("public_key"))
            .and_then(|text| match text.parse::<PublicKey>() {
                Ok(key) => Some(key),
                Err(e) => {
                    self.problem(p("public_key"), ProblemKind::BadKey(e));
                    None
                }
            })
            .filter(|key| {
                let problem = if own_key == Some(key) {
                    Some(ProblemKind::OwnPublicKey)
                } else {
                    cross
                        .keys
                        .get(key)
                        .map(|&first| ProblemKind::DuplicatePublicKey {
                            first: cross.label(first),
                        })
                };
                problem
                    .map(|kind| self.problem(p("public_key"), kind))
                    .is_none()
            });
        if let Some(key) = public_key {
            cross.keys.entry(key).or_insert(index);
        }

        let preshared = match (raw.preshared_key, raw.preshared_key_file) {
            (Some(_), Some(_)) => {
                self.problem(
                    at,
                    ProblemKind::BothSet("preshared_key", "preshared_key_file"),
                );
                None
            }
            (Some(text), None) => match text.parse::<PresharedKey>() {
                Ok(key) => Some((key, None)),
                Err(e) => {
                    self.problem(p("preshared_key"), ProblemKind::BadKey(e));
                    None
                }
            },
            (None, Some(file)) => self
                .key_file::<PresharedKey>(&file, &p("preshared_key_file"))
                .map(|(key, path)| (key, Some(path))),
            (None, None) => None,
        };
        let (preshared_key, preshared_key_file) = match preshared {
            Some((key, file)) => (Some(key), file),
            None => (None, None),
        };

        let mut allowed_ips: Vec<Cidr> = Vec::new();
        let allowed_at = p("allowed_ips");
        for (j, text) in raw.allowed_ips.unwrap_or_default().into_iter().enumerate() {
            let here = path::index(&allowed_at, j);
            let cidr = match text.parse::<Cidr>() {
                Ok(c) => c,
                Err(error) => {
                    self.problem(here, ProblemKind::BadCidr { text, error });
                    continue;
                }
            };
            let prefix = cidr.masked();
            if prefix != cidr {
                self.warn(
                    &here,
                    format!("{cidr} has host bits set; it is used as {prefix}"),
                );
            }
            match cross.claims.get(&prefix) {
                Some(&owner) if owner == index => {
                    self.warn(
                        &here,
                        format!("{prefix} is listed more than once for this peer"),
                    );
                }
                Some(&owner) => self.problem(
                    here,
                    ProblemKind::AllowedIpTaken {
                        prefix,
                        other: cross.label(owner),
                    },
                ),
                None => {
                    cross.claims.insert(prefix, index);
                    allowed_ips.push(prefix);
                }
            }
        }

        let endpoint = raw
            .endpoint
            .and_then(|text| match text.parse::<Endpoint>() {
                Ok(e) => Some(e),
                Err(error) => {
                    self.problem(p("endpoint"), ProblemKind::BadEndpoint { text, error });
                    None
                }
            });

        let persistent_keepalive = raw
            .persistent_keepalive
            .and_then(|v| {
                self.in_range(
                    v,
                    0,
                    Some(65535),
                    Some("seconds; 0 turns it off"),
                    &p("persistent_keepalive"),
                )
            })
            .and_then(|v| u16::try_from(v).ok())
            .filter(|&s| s != 0);

        Some(PeerConfig {
            name,
            public_key: public_key?,
            preshared_key,
            preshared_key_file,
            allowed_ips,
            endpoint,
            persistent_keepalive,
        })
    }
}

/// What later peers are checked against.
#[derive(Default)]
struct CrossPeer {
    /// Each peer's valid name, by index, for messages.
    labels: Vec<Option<String>>,
    names: HashMap<String, usize>,
    keys: HashMap<PublicKey, usize>,
    /// Masked allowed-IP prefix to the peer that claimed it first.
    claims: HashMap<Cidr, usize>,
}

impl CrossPeer {
    /// `peers[0] (alice)`, or `peers[0]` for an unnamed peer.
    fn label(&self, index: usize) -> String {
        match self.labels.get(index) {
            Some(Some(name)) => format!("peers[{index}] ({name})"),
            _ => format!("peers[{index}]"),
        }
    }
}

/// Why Linux would refuse `name` as a network interface name (see `dev_valid_name`), if it would.
pub(super) fn interface_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > 15 {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are reserved")
    } else if name.contains('/') {
        Some("contains `/`")
    } else if name.contains(':') {
        Some("contains `:`")
    } else if name.contains('\0') {
        Some("contains NUL")
    } else if name.chars().any(char::is_whitespace) {
        Some("contains whitespace")
    } else if name.chars().any(char::is_control) {
        Some("contains control characters")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::interface_name_problem as check;

    #[test]
    fn interface_names() {
        assert_eq!(check("vpn0"), None);
        assert_eq!(check("a-b_c.d@e"), None);
        assert_eq!(check("123456789012345"), None);
        assert!(check("").is_some());
        assert!(check("1234567890123456").is_some());
        assert!(check("ééééééééé").is_some(), "15 bytes is a byte limit");
        for bad in ["a/b", "a b", "a\tb", "a\0b", "a:1", ".", "..", "a\u{1}"] {
            assert!(check(bad).is_some(), "{bad:?}");
        }
    }
}
