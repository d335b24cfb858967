//! libFuzzer entry point for the `config_text` harness (see harness/config_text.rs).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::config_text::run(data));
