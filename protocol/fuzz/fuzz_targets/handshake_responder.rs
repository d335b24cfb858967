//! libFuzzer entry point for the `handshake_responder` harness (see harness/handshake_responder.rs).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::handshake_responder::run(data));
