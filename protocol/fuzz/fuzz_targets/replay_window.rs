//! libFuzzer entry point for the `replay_window` harness (see harness/replay_window.rs).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::replay_window::run(data));
