//! libFuzzer entry point for the `rpc_request` harness (see harness/rpc_request.rs).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::rpc_request::run(data));
