//! The WireGuard protocol proper: messages, Noise handshake, cookies, keypairs, timers, peers.

pub mod crypto;
pub mod messages;
pub mod ratelimit;
pub mod replay;
