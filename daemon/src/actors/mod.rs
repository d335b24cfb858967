//! The daemon's actors: they own configuration, handshakes, timers and kernel state; packets
//! never pass through them.

pub mod config;
pub mod control;
pub mod interface;
pub mod lookup_schedule;
pub mod nat;
pub mod peer;
pub mod uapi;
