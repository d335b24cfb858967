//! The hub wire vocabulary spoken by `vpnhub` and vpnd, sans-IO (docs/hub-protocol.md).
//!
//! - [`messages`]: the datagram/frame formats, parsed by exact, bounded lengths.
//! - [`client`]: a peer's side of one hub (registration, renewal, lookups, signals).
//! - [`relay`]: the relay frame (a WireGuard datagram on a hub-assigned channel).
//! - [`frame`]: the length prefix that carries them (and STUN) over TCP.
//! - [`outbox`]: the bounded, head-dropping queue of frames waiting for a TCP connection.
//! - [`transport`]: UDP to the hub, or TCP where UDP goes unanswered.
//! - [`seal`]: the registration proof (a MAC keyed by DH(peer static, hub static) over a
//!   hub-issued nonce and the observed source) and the end-to-end sealed signaling envelope
//!   (keyed by DH of the two peers' static keys, a label distinct from WireGuard's).

pub mod client;
pub mod frame;
pub mod messages;
pub mod outbox;
pub mod relay;
pub mod seal;
pub mod transport;

#[cfg(test)]
mod tests;
