//! The NAT traversal sections: `hubs` (vpnhub servers that coordinate hole punching and answer
//! STUN) and `stun_servers` (any standard STUN server). Both are optional; without them vpnd
//! behaves as a plain WireGuard peer.

use super::endpoint::Endpoint;
use super::error::{Problem, ProblemKind};
use super::path;
use super::schema::{self, describe_kind};
use config::{Value, ValueKind};
use protocol::keys::PublicKey;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// At most this many hubs: each is registered with and kept alive all the time, and a user
/// who outgrows one hub runs several behind one Redis, not dozens per peer.
pub const MAX_HUBS: usize = 8;
/// At most this many STUN servers: two with different IPs tell the mapping type; a few more
/// cover outages. Each costs one request per re-STUN period.
pub const MAX_STUN_SERVERS: usize = 8;

/// One `hubs` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Where the hub listens (UDP and TCP on the same port); a host name is resolved when used.
    pub address: Endpoint,
    /// The hub's public key (`vpnctl pubkey` of its private key): registrations and signaling
    /// are bound to it.
    pub public_key: PublicKey,
    /// Reach the hub over TLS (its `relay.tls`) when UDP to it is blocked, instead of plain
    /// TCP on its UDP port.
    pub tls: Option<HubTls>,
}

/// A hub's `tls`: where its TLS service is and how to check its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubTls {
    /// The TLS port on the hub's address (e.g. 443).
    pub port: u16,
    /// The name the certificate must carry: `server_name`, or else the host (or IP) of the
    /// hub's `address`.
    pub server_name: String,
    /// PEM file of the certificate authorities to trust (resolved against the
    /// configuration's directory); `None`: the public web roots (Mozilla's list).
    pub ca_file: Option<PathBuf>,
}

/// `hubs:` and `stun_servers:` as checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatConfig {
    /// The hubs, in file order.
    pub hubs: Vec<HubConfig>,
    /// Extra STUN servers, in file order (the hubs answer STUN too).
    pub stun_servers: Vec<Endpoint>,
}

impl NatConfig {
    /// Whether NAT traversal is configured at all.
    pub fn is_enabled(&self) -> bool {
        !self.hubs.is_empty() || !self.stun_servers.is_empty()
    }
}

/// One entry of `hubs:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHub {
    address: Option<String>,
    public_key: Option<String>,
    tls: Option<RawHubTls>,
}

/// A hub's `tls` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHubTls {
    port: Option<i64>,
    server_name: Option<String>,
    ca_file: Option<String>,
}

/// Checks `hubs` and `stun_servers`, appending every problem.
pub(super) fn check(
    hubs: Option<Value>,
    stun_servers: Option<Value>,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) -> NatConfig {
    NatConfig {
        hubs: check_hubs(hubs, base_dir, problems),
        stun_servers: check_stun_servers(stun_servers, problems),
    }
}

/// The list at `at`, or a problem if it is not a list or too long.
fn list(value: Option<Value>, at: &str, max: usize, problems: &mut Vec<Problem>) -> Vec<Value> {
    let list = match value.map(|v| v.kind) {
        None | Some(ValueKind::Nil) => return Vec::new(),
        Some(ValueKind::Array(list)) => list,
        Some(other) => {
            problems.push(Problem::new(
                at,
                ProblemKind::WrongType(format!("expected a list, found {}", describe_kind(&other))),
            ));
            return Vec::new();
        }
    };
    if list.len() > max {
        problems.push(Problem::new(
            at,
            ProblemKind::Invalid(format!("{} entries; at most {max} are allowed", list.len())),
        ));
        return Vec::new();
    }
    list
}

fn endpoint(text: String, at: String, problems: &mut Vec<Problem>) -> Option<Endpoint> {
    match text.parse::<Endpoint>() {
        Ok(e) => Some(e),
        Err(error) => {
            problems.push(Problem::new(at, ProblemKind::BadEndpoint { text, error }));
            None
        }
    }
}

fn check_hubs(
    value: Option<Value>,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<HubConfig> {
    const AT: &str = "hubs";
    let mut hubs: Vec<HubConfig> = Vec::new();
    for (i, value) in list(value, AT, MAX_HUBS, problems).into_iter().enumerate() {
        let at = path::index(AT, i);
        let Some(raw) = schema::decode::<RawHub>(value, &at, problems) else {
            continue;
        };
        let address = match raw.address {
            Some(text) => endpoint(text, path::field(&at, "address"), problems),
            None => {
                problems.push(Problem::new(
                    path::field(&at, "address"),
                    ProblemKind::Missing,
                ));
                None
            }
        };
        let public_key = match raw.public_key.map(|t| t.parse::<PublicKey>()) {
            Some(Ok(k)) => Some(k),
            Some(Err(e)) => {
                problems.push(Problem::new(
                    path::field(&at, "public_key"),
                    ProblemKind::BadKey(e),
                ));
                None
            }
            None => {
                problems.push(Problem::new(
                    path::field(&at, "public_key"),
                    ProblemKind::Missing,
                ));
                None
            }
        };
        let tls = match (raw.tls, &address) {
            (Some(t), Some(a)) => check_tls(t, a, &path::field(&at, "tls"), base_dir, problems),
            _ => None,
        };
        if let (Some(address), Some(public_key)) = (address, public_key) {
            if let Some(first) = hubs.iter().position(|h| h.address == address) {
                problems.push(Problem::new(
                    path::field(&at, "address"),
                    ProblemKind::Invalid(format!("the same hub as hubs[{first}]")),
                ));
                continue;
            }
            hubs.push(HubConfig {
                address,
                public_key,
                tls,
            });
        }
    }
    hubs
}

/// Checks a hub's `tls`: a port, and a CA file that holds certificates (read now, so a wrong
/// path is a configuration error rather than a failed connection later).
fn check_tls(
    raw: RawHubTls,
    address: &Endpoint,
    at: &str,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) -> Option<HubTls> {
    let port = match raw.port {
        None => {
            problems.push(Problem::new(path::field(at, "port"), ProblemKind::Missing));
            None
        }
        Some(p) => match u16::try_from(p).ok().filter(|p| *p != 0) {
            Some(p) => Some(p),
            None => {
                problems.push(Problem::new(
                    path::field(at, "port"),
                    ProblemKind::Invalid(format!(
                        "{p} is not a port from 1 to 65535 (the hub's relay.tls.listen port, e.g. 443)"
                    )),
                ));
                None
            }
        },
    };
    let server_name = match raw.server_name {
        Some(n) => {
            if rustls_pki_types::ServerName::try_from(n.as_str()).is_err() {
                problems.push(Problem::new(
                    path::field(at, "server_name"),
                    ProblemKind::Invalid(format!(
                        "`{n}` is not a DNS name or IP address (the name on the hub's certificate)"
                    )),
                ));
                return None;
            }
            n
        }
        None => match address {
            Endpoint::Addr(a) => a.ip().to_string(),
            Endpoint::Host { host, .. } => host.clone(),
        },
    };
    let ca_file = match raw.ca_file {
        None => None,
        Some(f) => {
            let file = base_dir.join(f);
            if let Err(e) = crate::actors::nat::hub_tls::read_roots(&file) {
                problems.push(Problem::new(
                    path::field(at, "ca_file"),
                    ProblemKind::Invalid(e),
                ));
                return None;
            }
            Some(file)
        }
    };
    Some(HubTls {
        port: port?,
        server_name,
        ca_file,
    })
}

fn check_stun_servers(value: Option<Value>, problems: &mut Vec<Problem>) -> Vec<Endpoint> {
    const AT: &str = "stun_servers";
    let mut servers: Vec<Endpoint> = Vec::new();
    for (i, value) in list(value, AT, MAX_STUN_SERVERS, problems)
        .into_iter()
        .enumerate()
    {
        let at = path::index(AT, i);
        let text = match value.kind {
            ValueKind::String(s) => s,
            other => {
                problems.push(Problem::new(
                    at,
                    ProblemKind::WrongType(format!(
                        "expected \"host:port\", found {}",
                        describe_kind(&other)
                    )),
                ));
                continue;
            }
        };
        if let Some(e) = endpoint(text, at.clone(), problems) {
            if servers.contains(&e) {
                problems.push(Problem::new(
                    at,
                    ProblemKind::Invalid(format!("{e} is listed twice")),
                ));
            } else {
                servers.push(e);
            }
        }
    }
    servers
}
