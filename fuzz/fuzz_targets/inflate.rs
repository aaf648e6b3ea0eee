//! Fuzzes permessage-deflate's decompression (and our compressor) under every
//! agreed parameter set, with arbitrary chunking.
#![no_main]

// Each target uses one of the shared bodies.
#[allow(dead_code)]
#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::inflate(data));
