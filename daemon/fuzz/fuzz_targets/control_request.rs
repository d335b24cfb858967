//! libFuzzer entry point for the `control_request` harness (see harness/control_request.rs).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::control_request::run(data));
