//! Fuzz harnesses for the daemon's control-socket parsers and its receive path, shared by two drivers:
//!
//! - the cargo-fuzz targets in `fuzz_targets/` (libFuzzer, coverage-guided), and
//! - `daemon/tests/fuzz.rs`, which replays `regressions/` on every `cargo test` and runs a
//!   bounded mutation loop on stable Rust (the driver is `protocol/fuzz/driver.rs`).
//!
//! Every harness is `pub fn run(data: &[u8])`: it must return normally for every input. A
//! panic, whether from daemon code or from an invariant the harness asserts, is a finding.

// Each driver uses only some of the harnesses and helpers.
#![allow(dead_code)]

pub mod common;
pub mod config_text;
pub mod control_request;
pub mod dataplane_receive;
pub mod uapi_request;

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
        name: "uapi_request",
        run: uapi_request::run,
        seeds: uapi_request::seeds,
    },
    Target {
        name: "control_request",
        run: control_request::run,
        seeds: control_request::seeds,
    },
    Target {
        name: "dataplane_receive",
        run: dataplane_receive::run,
        seeds: dataplane_receive::seeds,
    },
    Target {
        name: "config_text",
        run: config_text::run,
        seeds: config_text::seeds,
    },
];
