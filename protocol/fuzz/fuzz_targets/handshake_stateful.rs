//! libFuzzer entry point for the `handshake_stateful` harness (see harness/handshake_stateful.rs).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::handshake_stateful::run(data));
