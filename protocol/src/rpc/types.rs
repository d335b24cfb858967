//! Request, response and error objects, and the result types of each method.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The JSON-RPC version string.
pub const JSONRPC: &str = "2.0";

/// Standard error: invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Standard error: not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// Standard error: unknown method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Standard error: invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// Standard error: internal error.
pub const INTERNAL_ERROR: i64 = -32603;
/// Application error: the daemon refused the change (validation, conflict).
pub const REFUSED: i64 = -32000;
/// Application error: the named peer does not exist.
pub const NOT_FOUND: i64 = -32001;

/// A request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Request {
    /// Always "2.0".
    pub jsonrpc: String,
    /// Method name.
    pub method: String,
    /// Parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// Request id (absent for notifications).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
}

impl Request {
    /// A request with numeric id 1.
    pub fn new(method: &str, params: Option<Value>) -> Self {
        Request {
            jsonrpc: JSONRPC.into(),
            method: method.into(),
            params,
            id: Some(Value::from(1)),
        }
    }
}

/// An error object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RpcError {
    /// Error code.
    pub code: i64,
    /// Human-readable message; for parameter errors it names the field.
    pub message: String,
    /// Optional details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

/// A response: exactly one of `result` and `error`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Response {
    /// Always "2.0".
    pub jsonrpc: String,
    /// Result on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Error on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
    /// The request's id (null when it could not be read).
    pub id: Value,
}

impl Response {
    /// A success response.
    pub fn ok(id: Value, result: Value) -> Self {
        Response {
            jsonrpc: JSONRPC.into(),
            result: Some(result),
            error: None,
            id,
        }
    }
    /// An error response.
    pub fn err(id: Value, error: RpcError) -> Self {
        Response {
            jsonrpc: JSONRPC.into(),
            result: None,
            error: Some(error),
            id,
        }
    }
}

/// `show` result: the interface and every peer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShowResult {
    /// The interface.
    pub interface: InterfaceInfo,
    /// Every peer.
    pub peers: Vec<PeerInfo>,
}

/// Interface section of `show`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InterfaceInfo {
    /// TUN interface name.
    pub name: String,
    /// Our public key (base64); empty while the daemon has no private key (UAPI mode).
    pub public_key: String,
    /// UDP port we listen on.
    pub listen_port: u16,
    /// Interface addresses in CIDR form.
    pub addresses: Vec<String>,
    /// Tunnel MTU.
    pub mtu: u16,
    /// Network packets dropped, by reason.
    #[serde(default)]
    pub drops: std::collections::BTreeMap<String, u64>,
    /// Restarts of each data-plane task after a failure (`receive_v4`, `receive_v6`, `send`,
    /// `handshake`).
    #[serde(default)]
    pub dataplane_restarts: std::collections::BTreeMap<String, u64>,
    /// NAT traversal: our public endpoints, the mapping type and each hub's state (empty lists
    /// and `unknown` when no hubs or STUN servers are configured).
    #[serde(default)]
    pub nat: NatInfo,
}

/// What the daemon knows about its NAT (`interface.nat` in `show`, and `netcheck`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NatInfo {
    /// Our public `ip:port` endpoints as STUN servers (and hubs) see the WireGuard socket.
    pub public_endpoints: Vec<String>,
    /// `endpoint_independent` (one public mapping for every destination: hole punching works),
    /// `endpoint_dependent` ("symmetric") or `unknown` (fewer than two servers with different
    /// IPs answered).
    pub mapping: String,
    /// Each configured hub.
    pub hubs: Vec<HubInfo>,
    /// Each STUN server asked (the hubs and `stun_servers`).
    #[serde(default)]
    pub stun_servers: Vec<StunServerInfo>,
}

impl Default for NatInfo {
    fn default() -> Self {
        NatInfo {
            public_endpoints: Vec::new(),
            mapping: "unknown".into(),
            hubs: Vec::new(),
            stun_servers: Vec::new(),
        }
    }
}

/// One hub in [`NatInfo`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HubInfo {
    /// The hub's address as configured (`host:port`).
    pub address: String,
    /// `connected` (registered), `connecting` or `failed` (unreachable or refusing us).
    pub state: String,
    /// `udp`, or `tcp` when UDP to the hub is blocked.
    pub transport: String,
    /// Whether the TCP transport is wrapped in TLS (the hub's `tls` is configured); shown
    /// only while on TCP.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// A hub not in the configuration, registered with to relay to a peer homed there (left
    /// after a minute without a relay through it); shown only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_demand: bool,
    /// Round-trip time of the last exchange with the hub, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Why the hub is `failed` (unresolvable name, no answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One STUN server in [`NatInfo`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StunServerInfo {
    /// The server as configured (`host:port`).
    pub address: String,
    /// `ok` (answered recently), `checking` or `unreachable`.
    pub state: String,
    /// Our address as this server saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped: Option<String>,
    /// Round-trip time of its last answer, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

/// One peer in `show`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PeerInfo {
    /// Optional label.
    pub name: Option<String>,
    /// Public key (base64).
    pub public_key: String,
    /// Current endpoint (`ip:port` / `[ip]:port`), if known.
    pub endpoint: Option<String>,
    /// The configured `host:port` while its name has not resolved (the first lookup is under
    /// way, or the last one failed and is being retried); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_unresolved: Option<String>,
    /// Allowed IPs in CIDR form.
    pub allowed_ips: Vec<String>,
    /// "online", "handshaking", "offline" (later also "failed").
    pub state: String,
    /// Why the peer is offline, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    /// Unix seconds of the last completed handshake.
    pub last_handshake: Option<u64>,
    /// Completed handshakes.
    pub handshakes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Persistent keepalive interval in seconds.
    pub persistent_keepalive: Option<u16>,
    /// How packets reach the peer: `direct` (peer-to-peer UDP to a configured, LAN or public
    /// endpoint, no coordination needed), `punched` (peer-to-peer UDP opened through a hub),
    /// `relay` (through a relay) or `none`.
    #[serde(default = "path_none")]
    pub path: String,
    /// The UDP address packets to the peer go to, when there is a path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_endpoint: Option<String>,
    /// Why the path is not `direct` or `punched`: `no_candidates`, `probes_unanswered`,
    /// `hub_unreachable`, `peer_offline`, `no_wireguard_progress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_not_direct: Option<String>,
    /// With `path` = `relay`: the hub relaying (its address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    /// With `path` = `relay`: how we reach the relay (`udp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_transport: Option<String>,
    /// With `path` = `relay`: why not direct (a `why_not_direct` code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_relayed: Option<String>,
    /// With `path` = `relay`: seconds until probing next tries a direct path (at most 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_direct_attempt: Option<f64>,
}

fn path_none() -> String {
    "none".into()
}

/// Names a peer: its base64 public key or its configured name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PeerSelector {
    /// Public key (base64) or name.
    pub peer: String,
}

/// `peer.add` parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PeerAddParams {
    /// The peer's public key (base64).
    pub public_key: String,
    /// Allowed IPs in CIDR form.
    pub allowed_ips: Vec<String>,
    /// Endpoint `host:port`, `ip:port` or `[ipv6]:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Preshared key (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preshared_key: Option<String>,
    /// Persistent keepalive in seconds (0 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_keepalive: Option<u16>,
    /// Label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Also write the change to the configuration file.
    #[serde(default)]
    pub save: bool,
}

/// `peer.update` parameters: every field but `peer` is optional; absent fields are kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PeerUpdateParams {
    /// Public key (base64) or name of the peer to change.
    pub peer: String,
    /// Replaces the allowed IPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_ips: Option<Vec<String>>,
    /// Sets the endpoint; an empty string clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Sets the preshared key (base64); an empty string removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preshared_key: Option<String>,
    /// Sets the persistent keepalive in seconds; 0 turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_keepalive: Option<u16>,
    /// Sets the label; an empty string removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Also write the change to the configuration file.
    #[serde(default)]
    pub save: bool,
}

/// `peer.remove` parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct PeerRemoveParams {
    /// Public key (base64) or name.
    pub peer: String,
    /// Also write the change to the configuration file.
    #[serde(default)]
    pub save: bool,
}

/// `interface.set` parameters: absent fields are kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct InterfaceSetParams {
    /// UDP listen port (0 = any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    /// New private key (base64). Every session is rebuilt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// Tunnel MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u16>,
    /// Interface addresses in CIDR form (replaces the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<String>>,
    /// Also write the change to the configuration file.
    #[serde(default)]
    pub save: bool,
}

/// `reload` parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ReloadParams {}

/// `config.check` parameters: either `path` or `content`.
///
/// The daemon runs as root, so it reads for a client only files inside its configuration
/// directory (the directory of its `--config` file); anything else is sent as `content`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigCheckParams {
    /// A file in the daemon's configuration directory, read by the daemon (relative paths
    /// are taken from that directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The configuration's text, checked as if it were a file in the configuration directory
    /// (key files are read only from there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// With `content`: the name to give it in messages, usually the client's file name; a
    /// name ending in `.toml` selects TOML, anything else YAML. Default `content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `config.check` result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ConfigCheckResult {
    /// Whether the file is valid.
    pub valid: bool,
    /// Every problem, one per line (`file: field: reason`).
    pub errors: Vec<String>,
    /// Warnings (valid but worth attention).
    pub warnings: Vec<String>,
}

/// What a change or reload did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ChangeResult {
    /// Interface-level changes.
    pub interface: Vec<String>,
    /// Peers added.
    pub peers_added: Vec<String>,
    /// Peers removed.
    pub peers_removed: Vec<String>,
    /// Peers changed in place, with the fields that changed.
    pub peers_changed: Vec<String>,
    /// Whether the configuration file was written.
    #[serde(default)]
    pub saved: bool,
}

/// `peer.show` result: `show`'s peer entry plus supervision details.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PeerShowResult {
    /// The peer.
    #[serde(flatten)]
    pub peer: PeerInfo,
    /// How many times its actor was restarted after a failure.
    pub restarts: u32,
}

/// `stats` result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct StatsResult {
    /// Network packets dropped, by reason.
    pub drops: std::collections::BTreeMap<String, u64>,
    /// Handshake messages waiting for the worker.
    pub handshake_queue: usize,
    /// Whether the cookie defence is on.
    pub under_load: bool,
    /// Connections each local socket server (`control`, `uapi`) closed at once because it
    /// already had its maximum of concurrent clients.
    #[serde(default)]
    pub clients_refused: std::collections::BTreeMap<String, u64>,
}
