//! The fuzz harnesses of `protocol/fuzz/harness/` on stable Rust, through the shared driver
//! `protocol/fuzz/driver.rs`:
//!
//! - `regressions` (always): replays every file under `protocol/fuzz/regressions/<target>/`
//!   through its harness. Each is an input that once made a harness panic; keeping them here
//!   makes every `cargo test` prove the fix still holds.
//! - `smoke` (always): each harness on its seeds and a few hundred deterministic mutations of
//!   them, so a harness that panics on its own seeds is caught at once.
//! - `fuzz_stable` (ignored; run by `scripts/fuzz` when cargo fuzz is unavailable): a
//!   time-bounded random mutation loop per harness, without coverage feedback. Settings come
//!   from the environment: `FUZZ_SECONDS` per target (default 30), `FUZZ_TARGETS` (names
//!   separated by commas or spaces; default all), `FUZZ_SEED` (default: from the clock). New
//!   crashing inputs are written to the regressions directory.
//! - `write_seeds` (ignored): writes each harness's seeds to `FUZZ_CORPUS_DIR/<target>/`, the
//!   starting corpus for cargo fuzz.
//!
//! See docs/fuzzing.md.

#[path = "../fuzz/driver.rs"]
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

/// The stateful handshake seeds must reach the states the harness exists for; otherwise
/// mutating them explores little beyond the first message.
#[test]
fn stateful_seeds_reach_deep_states() {
    let reached: Vec<_> = harness::handshake_stateful::seeds()
        .iter()
        .map(|s| harness::handshake_stateful::play(s))
        .collect();
    for (i, r) in reached.iter().enumerate() {
        eprintln!("seed {i}: {r:?}");
    }
    let any = |f: &dyn Fn(&harness::handshake_stateful::Reached) -> bool| reached.iter().any(f);
    assert!(any(
        &|r| r.responder_handshakes >= 1 && r.initiator_handshakes >= 1
    ));
    assert!(any(&|r| r.responder_data >= 1 && r.initiator_data >= 1));
    assert!(any(&|r| r.initiator_handshakes >= 2), "no seed rekeys");
    assert!(any(&|r| r.cookies_sent >= 1), "no seed gets a cookie reply");
    assert!(
        any(&|r| r.responder_drops >= 1),
        "no seed makes the responder drop"
    );
}
