#![no_main]
//! libFuzzer entry point; the body is krust_fuzzing::record_batch.

libfuzzer_sys::fuzz_target!(|data: &[u8]| krust_fuzzing::record_batch(data));
