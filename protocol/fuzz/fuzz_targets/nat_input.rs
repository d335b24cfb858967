//! libFuzzer entry point for the `nat_input` harness (see harness/nat_input.rs).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::nat_input::run(data));
