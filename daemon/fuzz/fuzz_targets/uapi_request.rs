//! libFuzzer entry point for the `uapi_request` harness (see harness/uapi_request.rs).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::uapi_request::run(data));
