//! Fuzzes the frame and message decoder with arbitrary chunking.
#![no_main]

// Each target uses one of the shared bodies.
#[allow(dead_code)]
#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::frames(data));
