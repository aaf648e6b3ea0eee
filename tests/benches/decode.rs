//! Core decode beside tungstenite's reader, on the same buffer, in one run.
//!
//! The buffer holds N unmasked server frames (binary, 16 B or 256 B payloads);
//! each side reads it in 64 KiB pieces, as from a socket, and hands every
//! message to `black_box`. Rounds alternate between the two so that machine
//! noise hits both alike; the table gives the best round of each and the ratio.
//!
//! `cargo bench -p wslink-tests --bench decode` runs the table (1 000 000 frames).
//! For instruction counts under callgrind, pick one side and fewer frames:
//! `WSLINK_BENCH_ONLY=wslink WSLINK_BENCH_FRAMES=100000 valgrind --tool=callgrind target/release/deps/decode-*`
//! (`tungstenite` for the peer, `none` for the baseline that only builds the buffers).

// Timing a benchmark is what the clock is for here.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, SeedableRng};
use tungstenite::protocol::Role;
use wslink_core::{Connection, ConnectionConfig, ConnectionEvent};
use wslink_tests::bench::{frames, per_message, time};

const READ_SIZE: usize = 64 << 10;
const ROUNDS: usize = 5;

fn wslink_decode(buf: &[u8]) -> usize {
    let rng = Box::new(StdRng::seed_from_u64(1));
    let mut conn = Connection::from_upgraded(ConnectionConfig::default(), rng).expect("default config");
    let now = Instant::now();
    let mut messages = 0;
    for piece in buf.chunks(READ_SIZE) {
        conn.handle_input(piece, now);
        while let Some(event) = conn.poll_event() {
            if let ConnectionEvent::Message(m) = event {
                black_box(m);
                messages += 1;
            }
        }
    }
    messages
}

/// A socket stand-in: reads at most 64 KiB at a time, then ends.
struct Source<'a> {
    data: &'a [u8],
}

impl Read for Source<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len().min(READ_SIZE).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl Write for Source<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tungstenite_decode(buf: &[u8], expected: usize) -> usize {
    let mut ws = tungstenite::WebSocket::from_raw_socket(Source { data: buf }, Role::Client, None);
    let mut messages = 0;
    while messages < expected {
        match ws.read() {
            Ok(m) => {
                black_box(m);
                messages += 1;
            }
            Err(e) => panic!("tungstenite stopped after {messages}: {e}"),
        }
    }
    messages
}

fn main() {
    let count: usize = std::env::var("WSLINK_BENCH_FRAMES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let only = std::env::var("WSLINK_BENCH_ONLY").ok();
    println!("decode {count} server frames, read in {} KiB pieces, best of {ROUNDS} rounds", READ_SIZE >> 10);
    println!("{:>8} | {:>14} | {:>14} | {:>22}", "payload", "wslink ns/msg", "tungstenite", "tungstenite / wslink");
    for payload in [16usize, 256] {
        let buf = frames(count, 2, &vec![0x5a; payload]);
        if let Some(side) = only.as_deref() {
            let n = match side {
                "wslink" => wslink_decode(&buf),
                "tungstenite" => tungstenite_decode(&buf, count),
                // Builds the buffers only: the baseline to subtract under callgrind.
                _ => black_box(buf.len()),
            };
            println!("{payload:>8} | {side} decoded {n}");
            continue;
        }
        let (mut ours, mut theirs) = (Duration::MAX, Duration::MAX);
        for _ in 0..ROUNDS {
            ours = ours.min(time(|| wslink_decode(&buf), count));
            theirs = theirs.min(time(|| tungstenite_decode(&buf, count), count));
        }
        println!(
            "{:>6} B | {:>14.1} | {:>14.1} | {:>21.2}x",
            payload,
            per_message(ours, count),
            per_message(theirs, count),
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
}
