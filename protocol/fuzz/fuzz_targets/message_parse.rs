//! libFuzzer entry point for the `message_parse` harness (see harness/message_parse.rs).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::message_parse::run(data));
