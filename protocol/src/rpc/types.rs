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
    /// Our public key (base64).
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
}
