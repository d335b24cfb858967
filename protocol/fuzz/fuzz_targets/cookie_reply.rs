//! libFuzzer entry point for the `cookie_reply` harness (see harness/cookie_reply.rs).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::cookie_reply::run(data));
