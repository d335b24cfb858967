//! The fuzz harnesses of `daemon/fuzz/harness/` (the control-socket parsers: UAPI, JSON-RPC,
//! configuration text) on stable Rust, through the protocol crate's shared driver
//! (`protocol/fuzz/driver.rs`):
//!
//! - `regressions` (always): replays every file under `daemon/fuzz/regressions/<target>/`.
//! - `smoke` (always): each harness on its seeds and a few hundred deterministic mutations.
//! - `fuzz_stable`, `write_seeds` (ignored): run by `scripts/fuzz`.
//!
//! See docs/fuzzing.md.

#[path = "../../protocol/fuzz/driver.rs"]
mod driver;
#[path = "../fuzz/harness/mod.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn targets() -> Vec<driver::Target> {
    harness::TARGETS
        .iter()
        .map(|t| driver::Target {
            name: t.name,
            run: t.run,
            seeds: t.seeds,
        })
        .collect()
}

#[test]
fn regressions() {
    driver::regressions(&fuzz_dir(), &targets());
}

#[test]
fn smoke() {
    driver::smoke(&fuzz_dir(), &targets());
}

#[test]
#[ignore = "time-bounded fuzzing; run through scripts/fuzz"]
fn fuzz_stable() {
    driver::fuzz_stable(&fuzz_dir(), &targets());
}

#[test]
#[ignore = "writes files; run through scripts/fuzz"]
fn write_seeds() {
    driver::write_seeds(&fuzz_dir(), &targets());
}

/// The seeds must be accepted where they are meant to be, or mutating them explores only
/// error paths.
#[test]
fn seeds_reach_the_accepting_paths() {
    use vpnd::config::Format;
    let cfg = harness::common::parse(
        std::str::from_utf8(&harness::config_text::seeds()[0][1..]).unwrap(),
        Format::Yaml,
    );
    assert!(cfg.is_ok(), "{cfg:?}");
    for i in 0..3 {
        let _ = harness::common::base(i);
    }
}
