//! The WireGuard protocol as pure, deterministic state machines (sans-IO).
//!
//! This crate opens no socket, spawns no task, reads no clock and asks the OS for no randomness.
//! Time and randomness come in as arguments; see [`noise::peer`] for the drain contract.

pub mod allowed_ips;
pub mod keys;
pub mod noise;
pub mod rpc;
