//! The session layer's cost on a flood, beside the bare connection, in one run.
//!
//! One buffer of small JSON text messages (a market-data notification that
//! carries a nested `"id"`, the worst case for the response matcher) is fed in
//! 64 KiB pieces to: the bare `Connection`; a `Session` with no request
//! pending (the matcher is skipped); and a `Session` with 100 requests pending
//! (the matcher looks at every message). Rounds alternate; best of each.
//!
//! `cargo bench -p wslink-tests --bench session`; instructions per message:
//! `WSLINK_BENCH_ONLY=bare|session|matcher|none WSLINK_BENCH_FRAMES=100000 valgrind --tool=callgrind target/release/deps/session-*`

// Timing a benchmark is what the clock is for here.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, SeedableRng};
use wslink_core::{Action, Connection, ConnectionConfig, ConnectionEvent, Session, SessionEvent};
use wslink_tests::bench::{frames, per_message, time};

const READ_SIZE: usize = 64 << 10;
const ROUNDS: usize = 5;
const NOTIFICATION: &str =
    r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC","data":{"id":42,"px":101.5}}}"#;

fn bare(buf: &[u8]) -> usize {
    let mut conn = Connection::from_upgraded(ConnectionConfig::default(), Box::new(StdRng::seed_from_u64(1)))
        .expect("default config");
    let now = Instant::now();
    let mut n = 0;
    for piece in buf.chunks(READ_SIZE) {
        conn.handle_input(piece, now);
        while let Some(event) = conn.poll_event() {
            if let ConnectionEvent::Message(m) = event {
                black_box(m);
                n += 1;
            }
        }
    }
    n
}

/// A session taken through connect and upgrade, with `pending` requests in flight.
fn open_session(pending: usize) -> Session {
    let now = Instant::now();
    let mut s = Session::builder("ws://bench.local/")
        .expect("valid URL")
        .build(Box::new(StdRng::seed_from_u64(2)), now)
        .expect("default config");
    s.connect(now).expect("idle");
    while s.poll_action().is_some() {}
    s.handle_transport_open(now);
    let mut request = Vec::new();
    while let Some(action) = s.poll_action() {
        if let Action::Transmit(bytes) = action {
            s.handle_written(bytes.len(), now);
            request.extend(bytes);
        }
    }
    let text = String::from_utf8(request).expect("ASCII request");
    let key = text.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).expect("key");
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        tungstenite::handshake::derive_accept_key(key.as_bytes())
    );
    s.handle_input(response.as_bytes(), now);
    for _ in 0..pending {
        s.request("public/get_time", None, Some(Duration::from_secs(3600)), now).expect("open");
    }
    while let Some(action) = s.poll_action() {
        if let Action::Transmit(bytes) = action {
            s.handle_written(bytes.len(), now);
        }
    }
    while s.poll_event().is_some() {}
    s
}

fn session(buf: &[u8], pending: usize) -> usize {
    let mut s = open_session(pending);
    let now = Instant::now();
    let mut n = 0;
    for piece in buf.chunks(READ_SIZE) {
        s.handle_input(piece, now);
        while let Some(event) = s.poll_event() {
            if let SessionEvent::Message(m) = event {
                black_box(m);
                n += 1;
            }
        }
    }
    n
}

fn main() {
    let count: usize = std::env::var("WSLINK_BENCH_FRAMES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let buf = frames(count, 1, NOTIFICATION.as_bytes());
    // One side alone, for callgrind: `bare`, `session` (0 pending) or `matcher` (100 pending).
    if let Ok(side) = std::env::var("WSLINK_BENCH_ONLY") {
        let n = match side.as_str() {
            "bare" => bare(&buf),
            "session" => session(&buf, 0),
            "matcher" => session(&buf, 100),
            _ => black_box(buf.len()),
        };
        println!("{side}: {n}");
        return;
    }
    println!(
        "{count} text messages of {} B, read in {} KiB pieces, best of {ROUNDS} rounds",
        NOTIFICATION.len(),
        READ_SIZE >> 10
    );
    let (mut c, mut s0, mut s100) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..ROUNDS {
        c = c.min(time(|| bare(&buf), count));
        s0 = s0.min(time(|| session(&buf, 0), count));
        s100 = s100.min(time(|| session(&buf, 100), count));
    }
    println!("{:>34} | {:>8} | {:>16}", "", "ns/msg", "vs connection");
    println!("{:>34} | {:>8.1} | {:>16}", "connection", per_message(c, count), "1.00x");
    for (name, d) in [("session, 0 pending", s0), ("session, 100 pending (matcher on)", s100)] {
        println!("{name:>34} | {:>8.1} | {:>15.2}x", per_message(d, count), d.as_secs_f64() / c.as_secs_f64());
    }
}
