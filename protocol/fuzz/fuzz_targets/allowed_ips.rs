//! libFuzzer entry point for the `allowed_ips` harness (see harness/allowed_ips.rs).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::allowed_ips::run(data));
