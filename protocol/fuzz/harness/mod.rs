//! Fuzz harnesses for the protocol crate, shared by two drivers:
//!
//! - the cargo-fuzz targets in `fuzz_targets/` (libFuzzer, coverage-guided), and
//! - `protocol/tests/fuzz.rs`, which replays `regressions/` on every `cargo test` and runs a
//!   bounded mutation loop on stable Rust.
//!
//! Every harness is `pub fn run(data: &[u8])`: it must return normally for every input. A
//! panic, whether from protocol code or from an invariant the harness asserts, is a finding.
//! `seeds()` gives each harness a few meaningful starting inputs.

// Each driver uses only some of the harnesses and helpers.
#![allow(dead_code)]

pub mod allowed_ips;
pub mod common;
pub mod cookie_reply;
pub mod handshake_responder;
pub mod handshake_stateful;
pub mod hub_message;
pub mod message_parse;
pub mod nat_input;
pub mod replay_window;
pub mod rpc_request;

/// A harness: its name (the directory under `regressions/`), its entry point and its seeds.
pub struct Target {
    /// Name of the cargo-fuzz target and of its regressions directory.
    pub name: &'static str,
    /// Runs one input.
    pub run: fn(&[u8]),
    /// Starting inputs for a mutation-based driver.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every harness.
pub const TARGETS: &[Target] = &[
    Target {
        name: "message_parse",
        run: message_parse::run,
        seeds: message_parse::seeds,
    },
    Target {
        name: "handshake_responder",
        run: handshake_responder::run,
        seeds: handshake_responder::seeds,
    },
    Target {
        name: "handshake_stateful",
        run: handshake_stateful::run,
        seeds: handshake_stateful::seeds,
    },
    Target {
        name: "cookie_reply",
        run: cookie_reply::run,
        seeds: cookie_reply::seeds,
    },
    Target {
        name: "allowed_ips",
        run: allowed_ips::run,
        seeds: allowed_ips::seeds,
    },
    Target {
        name: "rpc_request",
        run: rpc_request::run,
        seeds: rpc_request::seeds,
    },
    Target {
        name: "nat_input",
        run: nat_input::run,
        seeds: nat_input::seeds,
    },
    Target {
        name: "hub_message",
        run: hub_message::run,
        seeds: hub_message::seeds,
    },
    Target {
        name: "replay_window",
        run: replay_window::run,
        seeds: replay_window::seeds,
    },
];
