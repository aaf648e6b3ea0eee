//! Prints a wslink recording as a readable timeline, then replays it.
//!
//! `cargo run -p wslink-tests --example recording -- FILE [--no-replay]`
//!
//! Each line: the time since the session was built, the direction (`<-` from
//! the server, `->` to it, `**` the user, `..` the session), what it is
//! (server frames are decoded from the bytes read: kind, size, first bytes),
//! and the session's events. The replay runs the recorded inputs through a
//! session with the default settings for the recorded URL: a recording made
//! with hooks (an authenticator, other codecs) or other settings diverges
//! where they first show, and the replay says where.

use std::time::Instant;

use data_encoding::BASE64;
use tungstenite::protocol::frame::FrameHeader;
use wslink_core::record::format::Entry;
use wslink_core::replay::{replay, Recording, Replayed};
use wslink_core::Session;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: recording FILE [--no-replay]");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    });
    let recording = Recording::parse(&text).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    });
    println!(
        "{} (format {}, wslink {})",
        recording.header.url, recording.header.wslink_recording, recording.header.wslink
    );
    let mut server = ServerBytes::default();
    for line in &recording.lines {
        let at = format!("{:>10.3}ms", line.t as f64 / 1e6);
        for (direction, what) in describe(&line.entry, &mut server) {
            println!("{at} {direction} {what}");
        }
    }
    if args.iter().any(|a| a == "--no-replay") {
        return;
    }
    let builder = Session::builder(&recording.header.url).unwrap_or_else(|e| {
        eprintln!("the recorded URL does not parse: {e}");
        std::process::exit(1);
    });
    #[allow(clippy::disallowed_methods)] // any origin: the recorded times are relative to it
    let origin = Instant::now();
    match replay(&recording, builder, origin) {
        Ok(Replayed::Identical { inputs, outputs }) => {
            println!("\nreplay: identical ({inputs} inputs, {outputs} outputs)")
        }
        Ok(Replayed::Diverged(d)) => println!(
            "\nreplay with default settings diverged at line {} (output {}):\n  recorded: {}\n  replayed: {}",
            d.line, d.output, d.recorded, d.replayed
        ),
        Ok(Replayed::Incomplete { line, dropped }) => {
            println!("\nreplay: agreed up to line {line}, where the recorder dropped {dropped} lines")
        }
        Ok(other) => println!("\nreplay: {other:?}"),
        Err(e) => println!("\nreplay: the recorded settings are refused: {e}"),
    }
}

/// The server's bytes read so far and not yet shown: the upgrade response,
/// then frames, which may span reads.
#[derive(Default)]
struct ServerBytes {
    pending: Vec<u8>,
    upgraded: bool,
}

impl ServerBytes {
    /// Takes bytes read; returns what they complete.
    fn read(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut shown = Vec::new();
        if !self.upgraded {
            let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else { return shown };
            let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
            shown.push(format!("http {}", head.lines().next().unwrap_or_default()));
            self.pending.drain(..end + 4);
            self.upgraded = true;
        }
        loop {
            let mut cursor = std::io::Cursor::new(&self.pending[..]);
            let Ok(Some((header, len))) = FrameHeader::parse(&mut cursor) else { break };
            let start = cursor.position() as usize;
            let Some(end) = usize::try_from(len).ok().and_then(|len| start.checked_add(len)) else { break };
            if end > self.pending.len() {
                break;
            }
            let payload = &self.pending[start..end];
            let head = String::from_utf8_lossy(&payload[..payload.len().min(48)]).into_owned();
            shown.push(format!("{:?} {} B {head:?}", header.opcode, payload.len()));
            self.pending.drain(..end);
        }
        shown
    }
}

/// What a line shows: (direction, description) rows.
fn describe(entry: &Entry, server: &mut ServerBytes) -> Vec<(&'static str, String)> {
    let one = |direction, what: String| vec![(direction, what)];
    match entry {
        Entry::Read { b64 } => {
            let bytes = BASE64.decode(b64.as_bytes()).unwrap_or_default();
            let mut rows = vec![("<-", format!("read {} B", bytes.len()))];
            rows.extend(server.read(&bytes).into_iter().map(|what| ("<-", format!("  {what}"))));
            rows
        }
        Entry::Transmit { len, redacted: true, .. } => one("->", format!("write {len} B (redacted: carries a secret)")),
        Entry::Transmit { len, h, .. } => one("->", format!("write {len} B (digest {h})")),
        Entry::OpenTransport { host, port, tls } => {
            one("->", format!("open {}://{host}:{port}", if *tls { "tls" } else { "tcp" }))
        }
        Entry::CloseTransport { wait } => one("->", format!("close transport (wait for the server: {wait:?})")),
        Entry::Open => one("<-", "transport open".into()),
        Entry::Eof => one("<-", "end of stream".into()),
        Entry::Error { kind, msg } => one("<-", format!("transport error {kind}: {msg}")),
        Entry::Tls { failure } => one("<-", format!("TLS: {failure}")),
        Entry::Msg { text, len, head, .. } => {
            one("..", format!("message ({}, {len} B) {head:?}", if *text { "text" } else { "binary" }))
        }
        Entry::Event { ev } => one("..", ev.clone()),
        Entry::Timeout => one("..", "timer".into()),
        Entry::Pause => one("..", "reading paused (consumer behind)".into()),
        Entry::Resume => one("..", "reading resumed".into()),
        Entry::CaughtUp => one("..", "consumer caught up".into()),
        Entry::Dropped { count } => one("..", format!("the recorder dropped {count} lines here")),
        other => one("**", format!("{other:?}")),
    }
}
