//! The hub's STUN server: Binding requests get a success response carrying the source address
//! as XOR-MAPPED-ADDRESS (RFC 8489), encoded by the same codec vpnd's client uses.

use std::net::SocketAddr;

use protocol::nat::stun::{encode_success, request_txid};

/// The response to `data` from `from`, if `data` is a Binding request; anything else (another
/// method or class, a bad FINGERPRINT, a broken attribute) gets none.
pub(super) fn answer(data: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    request_txid(data).map(|txid| encode_success(txid, from))
}
