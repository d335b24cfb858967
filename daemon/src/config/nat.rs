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
}

/// Checks `hubs` and `stun_servers`, appending every problem.
pub(super) fn check(
    hubs: Option<Value>,
    stun_servers: Option<Value>,
    problems: &mut Vec<Problem>,
) -> NatConfig {
    NatConfig {
        hubs: check_hubs(hubs, problems),
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

fn check_hubs(value: Option<Value>, problems: &mut Vec<Problem>) -> Vec<HubConfig> {
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
            });
        }
    }
    hubs
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
