#![no_main]
//! libFuzzer entry point; the body is krust_fuzzing::request_decode.

libfuzzer_sys::fuzz_target!(|data: &[u8]| krust_fuzzing::request_decode(data));
