#![no_main]
//! libFuzzer entry point; the body is krust_fuzzing::consumer_protocol.

libfuzzer_sys::fuzz_target!(|data: &[u8]| krust_fuzzing::consumer_protocol(data));
