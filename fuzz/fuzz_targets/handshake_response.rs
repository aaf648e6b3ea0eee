//! Fuzzes the handshake response parser and the frames that follow the head.
#![no_main]

// Each target uses one of the shared bodies.
#[allow(dead_code)]
#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::handshake_response(data));
