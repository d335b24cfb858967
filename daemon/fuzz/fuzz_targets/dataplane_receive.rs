//! libFuzzer entry point for the `dataplane_receive` harness (see harness/dataplane_receive.rs).
#![no_main]

#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::dataplane_receive::run(data));
