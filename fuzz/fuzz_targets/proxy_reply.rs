//! Fuzzes the proxy reply parsers: HTTP CONNECT and SOCKS5 (with and without authentication).
#![no_main]

// Each target uses one of the shared bodies.
#[allow(dead_code)]
#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::proxy_reply(data));
