#![no_main]
//! libFuzzer entry point; the body is krust_fuzzing::frame_stream.

libfuzzer_sys::fuzz_target!(|data: &[u8]| krust_fuzzing::frame_stream(data));
