//! The WireGuard protocol proper: messages, Noise handshake, cookies, keypairs, timers, peers.

pub mod cookie;
pub mod crypto;
pub mod device;
pub mod handshake;
pub mod keypair;
pub mod messages;
pub mod peer;
pub mod ratelimit;
pub mod replay;
pub mod timers;
