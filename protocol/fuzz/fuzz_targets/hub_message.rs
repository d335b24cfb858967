//! libFuzzer entry point for the `hub_message` harness (see harness/hub_message.rs).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::hub_message::run(data));
