#![no_main]
//! libFuzzer entry point; the body is krust_fuzzing::differential.

libfuzzer_sys::fuzz_target!(|data: &[u8]| krust_fuzzing::differential(data));
