//! The fuzz target bodies, shared by the cargo-fuzz binaries and by the
//! corpus replay test in `tests/` (which includes this file by path), so CI
//! runs every saved input through exactly the code the fuzzer ran.
//!
//! Each body panics only when an invariant of the connection breaks: a second
//! `Closed` event, an event after `Closed`, no `Closed` after end of stream,
//! or output or messages out of proportion to the input.

use std::time::Instant;

use rand::{rngs::StdRng, SeedableRng};
use wslink_core::{
    ClientRequest, Connection, ConnectionConfig, ConnectionEvent, ConnectionState, DeflateConfig, DeflateParams,
};

/// Where the fuzz input asks for the correct `Sec-WebSocket-Accept` value.
const ACCEPT_PLACEHOLDER: &[u8] = b"@ACCEPT@";

/// The first byte picks the chunk size the rest is fed in (1..=256 bytes).
fn split_chunk(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (usize::from(*first) + 1, rest),
        None => (1, data),
    }
}

fn small_limits() -> ConnectionConfig {
    ConnectionConfig::default()
        .max_frame_size(4096)
        .max_message_size(8192)
        .max_response_head(2048)
        .refusal_body_limit(64)
}

/// How large the messages may be, in all: no larger than the input, or (when
/// they may be decompressed) each no larger than the message limit.
#[derive(Clone, Copy)]
enum MessageBound {
    Input,
    EachAtMost(usize),
}

/// Feeds `data` in chunks, then end of stream, checking the invariants throughout.
fn drive(conn: &mut Connection, data: &[u8], chunk: usize, now: Instant, bound: MessageBound) {
    let mut closed = 0usize;
    let mut message_bytes = 0usize;
    let mut out = Vec::new();
    let mut drain = |conn: &mut Connection, closed: &mut usize| {
        while let Some(event) = conn.poll_event() {
            assert_eq!(*closed, 0, "event after Closed: {event:?}");
            match event {
                ConnectionEvent::Closed(_) => *closed += 1,
                ConnectionEvent::Message(m) => {
                    message_bytes += m.len();
                    if let MessageBound::EachAtMost(limit) = bound {
                        assert!(m.len() <= limit, "a message of {} bytes passed the limit", m.len());
                    }
                }
                _ => {}
            }
        }
        if let MessageBound::Input = bound {
            assert!(message_bytes <= data.len(), "messages larger than the input");
        }
    };
    for (i, piece) in data.chunks(chunk).enumerate() {
        // Odd pieces go in as the adapters read: into the connection's own
        // buffer, at most the room it offers at a time, and every other
        // piece at most the limit it gives (as the adapters do).
        let mut rest = piece;
        while !rest.is_empty() {
            if i % 2 == 0 {
                conn.handle_input(rest, now);
                break;
            }
            let (buf, limit) = conn.read_room();
            let room = buf.capacity() - buf.len();
            let n = if i % 4 == 1 { room.min(limit) } else { room }.min(rest.len());
            assert!(n > 0, "read_room offers no room");
            buf.extend_from_slice(&rest[..n]);
            conn.handle_read(n, now);
            rest = &rest[n..];
        }
        drain(conn, &mut closed);
        // A violation behind messages is due once they are taken: fire it, as a caller would.
        if conn.poll_timeout().is_some_and(|due| due <= now) {
            conn.handle_timeout(now);
            drain(conn, &mut closed);
        }
        let _ = conn.poll_transmit(&mut out);
        // Pongs and one close frame are the only answers: at most 14 bytes of header per 2 read.
        assert!(out.len() <= 8 * data.len() + 512, "output out of proportion to input");
        if conn.state() == ConnectionState::Open {
            assert_eq!(closed, 0, "open after Closed");
        }
    }
    conn.handle_eof(now);
    drain(conn, &mut closed);
    assert_eq!(closed, 1, "exactly one Closed event after end of stream");
    assert_eq!(conn.state(), ConnectionState::Closed);
}

/// The handshake response parser, then whatever frames follow the head.
pub fn handshake_response(data: &[u8]) {
    let (chunk, data) = split_chunk(data);
    // The fake clock needs one arbitrary origin; nothing reads the clock after it.
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let request = ClientRequest::new("ws://fuzz.example/").expect("valid URL").subprotocol("chat").extension("x-ext");
    let rng = Box::new(StdRng::seed_from_u64(0));
    let mut conn = Connection::new(request, small_limits(), rng, now).expect("valid config");
    let mut out = Vec::new();
    let _ = conn.poll_transmit(&mut out);
    let key = String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ").map(str::to_owned))
        .expect("the request carries a key");
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut input = Vec::with_capacity(data.len() + 32);
    let mut rest = data;
    while let Some(at) = rest.windows(ACCEPT_PLACEHOLDER.len()).position(|w| w == ACCEPT_PLACEHOLDER) {
        input.extend_from_slice(&rest[..at]);
        input.extend_from_slice(accept.as_bytes());
        rest = &rest[at + ACCEPT_PLACEHOLDER.len()..];
    }
    input.extend_from_slice(rest);
    drive(&mut conn, &input, chunk, now, MessageBound::Input);
}

/// The frame and message decoder of an open connection, fed in chunks.
pub fn frames(data: &[u8]) {
    let (chunk, data) = split_chunk(data);
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let rng = Box::new(StdRng::seed_from_u64(0));
    // Frames up to 64 KiB: one that lacks 16 KiB once its header is in is read apart.
    let config = small_limits().max_frame_size(64 << 10).max_message_size(128 << 10);
    let mut conn = Connection::from_upgraded(config, rng).expect("valid config");
    drive(&mut conn, data, chunk, now, MessageBound::Input);
}

/// permessage-deflate: the second byte picks the agreed parameters (both
/// windows, both context takeovers); the rest is frames, compressed or not,
/// fed in chunks. Our compressor also gets a slice of the input to send.
pub fn inflate(data: &[u8]) {
    let (chunk, data) = split_chunk(data);
    let Some((&pick, data)) = data.split_first() else { return };
    let params = DeflateParams::new(8 + (pick & 7), 8 + ((pick >> 3) & 7), pick & 0x40 != 0, pick & 0x80 != 0);
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let rng = Box::new(StdRng::seed_from_u64(0));
    let config = small_limits()
        .deflate(Some(DeflateConfig::default().compress_threshold(0)))
        .max_frame_size(64 << 10)
        .max_message_size(128 << 10);
    let limit = config.max_message_size;
    let mut conn = Connection::from_upgraded_with_deflate(config, params, rng).expect("valid config");
    conn.send_binary(&data[..data.len().min(512)]).expect("open");
    drive(&mut conn, data, chunk, now, MessageBound::EachAtMost(limit));
}

/// The recording parser (both encodings: JSON Lines, and the compact
/// records after a header that says `"encoding":"compact"`), then a replay
/// of whatever it accepted into a session with default settings: refusals
/// must be typed, and a replay of anything must end without a panic.
/// Whatever is accepted reads back to the same lines from either encoding
/// (`to_lines`, `to_compact`), and the compact one is never larger than
/// the JSON Lines.
pub fn recording(data: &[u8]) {
    use wslink_core::replay::Recording;
    let Ok(recording) = Recording::parse(data) else { return };
    let (lines, compact) = (recording.to_lines(), recording.to_compact());
    for (encoding, again) in [("JSON Lines", Recording::parse(&lines)), ("compact", Recording::parse(&compact))] {
        let again = again.unwrap_or_else(|e| panic!("written as {encoding}, not read back: {e}"));
        assert_eq!(again.lines, recording.lines, "written as {encoding}, read back to other lines");
        assert_eq!(again.seed, recording.seed);
    }
    assert!(compact.len() <= lines.len() + 32, "compact {} B, JSON Lines {} B", compact.len(), lines.len());
    // The header's URL may be anything; the replay needs one that parses.
    let builder = match wslink_core::Session::builder(&recording.header.url) {
        Ok(builder) => builder,
        Err(_) => wslink_core::Session::builder("ws://fuzz.example/").expect("valid URL"),
    };
    #[allow(clippy::disallowed_methods)] // the fake clock's origin
    let origin = Instant::now();
    let _ = wslink_core::replay::replay(&recording, builder, origin);
}

/// The proxy reply parsers (`wslink_core::proxy`): HTTP CONNECT, SOCKS5
/// without and with a user name and password, SOCKS4a and SOCKS4. The first
/// byte picks the proxy (bits 0, 1 and 4), whether reads obey `read_limit`
/// (bit 2) and whether the target is an address (bit 3, and always for the
/// proxies that are told an address: `socks5://`, `socks4://`); the second
/// the chunk size.
/// Invariants: no panic; a failed or finished handshake takes no more bytes
/// (an error, and `read_limit` 0); the bytes accepted stay within the reply
/// limit; what the client writes stays small; end of stream before the
/// tunnel opens is an error.
pub fn proxy_reply(data: &[u8]) {
    use wslink_core::proxy::{ProxyHandshake, ProxyServer, MAX_REPLY_HEAD};
    let Some((&mode, rest)) = data.split_first() else { return };
    let (chunk, rest) = split_chunk(rest);
    let urls = [
        "http://user:pw@proxy:3128",
        "socks5h://proxy",
        "socks5://user:pw@proxy",
        "http://proxy",
        "socks4a://user@proxy",
        "socks4://proxy",
        "socks4a://proxy",
        "socks5h://user:pw@proxy",
    ];
    let url = urls[usize::from(mode & 3) + 4 * usize::from(mode >> 4 & 1)];
    let proxy = ProxyServer::parse(url).expect("a valid proxy URL");
    let host = "stream.example.com";
    let ip = (mode & 8 != 0 || proxy.resolves_locally(host)).then(|| std::net::IpAddr::from([10, 0, 0, 1]));
    let mut tunnel = match ProxyHandshake::new(&proxy, host, 443, ip) {
        Ok(tunnel) => tunnel,
        Err(e) => panic!("a valid target refused: {e}"),
    };
    let obey_limit = mode & 4 == 0;
    let (mut written, mut accepted) = (0usize, 0usize);
    let mut out = Vec::new();
    let mut rest = rest;
    let mut outcome: Option<Result<bool, _>> = None;
    while !rest.is_empty() {
        written += tunnel.poll_transmit(&mut out);
        let take = if obey_limit { chunk.min(tunnel.read_limit()).max(1) } else { chunk };
        let (now, later) = rest.split_at(take.min(rest.len()));
        rest = later;
        let result = tunnel.handle_input(now);
        match (&outcome, &result) {
            (Some(Err(_)), r) | (Some(Ok(true)), r) => assert!(r.is_err(), "input taken after the end: {r:?}"),
            _ => {}
        }
        if result.is_err() || result == Ok(true) {
            assert_eq!(tunnel.read_limit(), 0, "a finished handshake asks for more");
        }
        if result.is_err() || outcome.is_none() || outcome == Some(Ok(false)) {
            outcome = Some(result);
        }
        if !matches!(outcome, Some(Err(_))) {
            accepted += now.len();
            assert!(accepted <= MAX_REPLY_HEAD + 512, "{accepted} bytes taken as a reply");
        }
    }
    written += tunnel.poll_transmit(&mut out);
    assert!(written <= 1024, "{written} bytes written to the proxy");
    if !tunnel.is_open() && !matches!(outcome, Some(Err(_))) {
        let _error = tunnel.handle_eof();
        assert!(!tunnel.is_open());
        assert_eq!(tunnel.read_limit(), 0, "the handshake ended with the stream");
    }
}
