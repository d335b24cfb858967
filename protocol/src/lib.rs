//! The WireGuard protocol as pure, deterministic state machines (sans-IO), and the schema of
//! vpnd's control API.
//!
//! # Rules
//! This crate opens no socket, spawns no task, reads no clock and asks the OS for no
//! randomness:
//! - **Time** comes in as arguments: a monotonic `now: std::time::Instant` on every input, and
//!   for TAI64N timestamps an anchor pair (an `Instant` and the time since the Unix epoch at
//!   that instant) given when a peer is created. Tests build one `Instant` and add durations
//!   to it, so a 180-second expiry runs in microseconds.
//! - **Randomness** comes from ChaCha20 RNGs seeded by the caller (ephemeral keys, receiver
//!   indices, jitter, cookie secrets): the same seed and inputs give the same outputs.
//!
//! # The drain contract
//! Inputs are method calls: [`noise::peer::Peer::encapsulate`] / `decapsulate` and their
//! in-place variants, `handle_initiation`, `handle_response`, `handle_cookie_reply`,
//! `handle_timeout`, and the setters. After **every** input the caller drains
//! [`noise::peer::Peer::poll_transmit`] (datagrams to send) and
//! [`noise::peer::Peer::poll_event`] (state changes, handshakes, roaming) until both return
//! `None`, then arranges to call `handle_timeout` at [`noise::peer::Peer::poll_timeout`]. The
//! [`noise::device::Device`] does the same for many peers plus the device-wide message
//! dispatch; it is what the simulation tests and fuzz targets drive.
//!
//! # Map
//! - [`noise::messages`]: wire formats, parsed by type and exact length into borrowed views.
//! - [`noise::handshake`]: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, initiator and responder.
//! - [`noise::cookie`], [`noise::ratelimit`]: mac1/mac2, cookie replies, per-source limits.
//! - [`noise::keypair`], [`noise::replay`]: transport sealing/opening through `&self`, and the
//!   anti-replay window.
//! - [`noise::timers`], [`noise::peer`]: WireGuard's timers in one table, keypair rotation,
//!   liveness.
//! - [`allowed_ips`]: longest-prefix match for cryptokey routing.
//! - [`nat`]: NAT traversal (demux, STUN client, path probes, path selection), sans-IO.
//! - [`rpc`]: JSON-RPC 2.0 types shared by `vpnd` and `vpnctl`.

pub mod allowed_ips;
pub mod hub;
pub mod keys;
pub mod nat;
pub mod noise;
pub mod rpc;
