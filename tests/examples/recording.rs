//! Prints a wslink recording as a readable timeline, then replays it.
//!
//! `cargo run -p wslink-tests --example recording -- FILE [--no-replay | --lines]`
//!
//! Reads every format (1 to 4) in either encoding: the compact one a
//! session writes (format 4) and JSON Lines (formats 1 to 3, and what
//! `--lines` prints: the recording as JSON Lines, one line per record, for
//! reading, `jq` or editing; it reads back, and replays, as the file does).
//!
//! Each line: the time since the session was built, the direction (`<-` from
//! the server, `->` to it, `**` the user, `..` the session), what it is
//! (server frames are decoded from the bytes read: kind, size, first bytes),
//! and the session's events. The replay rebuilds the session from the file
//! alone (format 3: its settings, and its hooks by name) and runs the
//! recorded inputs through it: `replay: Identical` with the counts, or the
//! first difference. This example registers no hooks of its own, so a
//! recording whose session had a hook of the user's (named or not) says
//! which and is not replayed; wslink's presets need no registration. An
//! older recording (formats 1 and 2) keeps no settings: it is replayed with
//! the default settings for its URL, and diverges where the recorded
//! session's settings or hooks first show.

use std::time::Instant;

use tungstenite::protocol::frame::coding::OpCode;
use tungstenite::protocol::frame::FrameHeader;
use wslink_core::record::format::Entry;
use wslink_core::replay::{rebuild, replay, HookRegistry, RebuildError, Recording, Replayed};
use wslink_core::Session;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: recording FILE [--no-replay | --lines]");
        std::process::exit(2);
    };
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    });
    let recording = Recording::parse(&bytes).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    });
    if args.iter().any(|a| a == "--lines") {
        print!("{}", recording.to_lines());
        return;
    }
    println!(
        "{} (format {}, {:?}, wslink {})",
        recording.header.url, recording.header.wslink_recording, recording.header.encoding, recording.header.wslink
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
    println!("\n{}", replayed(&recording));
}

/// Replays a recording from the file alone (or, for formats 1 and 2, with
/// the default settings for its URL) and says how it went, `replay: ...`.
fn replayed(recording: &Recording) -> String {
    let (builder, settings) = match rebuild(recording, HookRegistry::new()) {
        Ok(builder) => (builder, "the recorded settings".to_owned()),
        Err(RebuildError::NoSettings { format }) => {
            // The URL's redacted query does not parse as it is; it was recorded redacted anyway.
            match Session::builder(&recording.header.url.replace("?<redacted>", "?redacted")) {
                Ok(builder) => (builder, format!("default settings (format {format} keeps none)")),
                Err(e) => return format!("replay: the recorded URL does not parse: {e}"),
            }
        }
        Err(e) => return format!("replay: not from this file alone: {e}"),
    };
    #[allow(clippy::disallowed_methods)] // any origin: the recorded times are relative to it
    let origin = Instant::now();
    match replay(recording, builder, origin) {
        Ok(Replayed::Identical { inputs, outputs }) => {
            format!("replay: Identical ({inputs} inputs, {outputs} outputs)")
        }
        Ok(Replayed::Diverged(d)) => format!(
            "replay with {settings} diverged at line {} (output {}):\n  recorded: {}\n  replayed: {}",
            d.line, d.output, d.recorded, d.replayed
        ),
        Ok(Replayed::Incomplete { line, dropped }) => {
            format!("replay: agreed up to line {line}, where the recorder dropped {dropped} lines")
        }
        Ok(other) => format!("replay: {other:?}"),
        Err(e) => format!("replay: the recorded settings are refused: {e}"),
    }
}

/// The longest upgrade response head looked for: past it, the server's
/// bytes are not HTTP (or not ours to decode) and are shown only as reads.
const HEAD_LIMIT: usize = 64 << 10;
/// How much of a payload a row shows.
const SHOWN: usize = 48;
/// The longest frame header: 2 bytes, 8 of length, 4 of mask.
const MAX_HEADER: usize = 14;

/// The server's bytes read so far, as the rows they complete: the upgrade
/// response, then frames, which may span reads.
///
/// Linear in the bytes read: each byte is looked at a bounded number of
/// times (the search for the head's end resumes where it stopped; a frame's
/// payload is skipped, keeping only its first bytes), and what is held is
/// bounded (the head up to `HEAD_LIMIT`, a header's start, a payload's
/// first bytes) whatever the recording's size.
#[derive(Default)]
struct ServerBytes {
    phase: Phase,
    /// The upgrade response head so far, then the start of a frame header.
    pending: Vec<u8>,
    /// How much of `pending` the search for the head's end has looked at.
    searched: usize,
    /// A frame whose payload is still arriving.
    frame: Option<Payload>,
    /// Bytes looked at or copied, which the test reads: it grows with the
    /// bytes read, not with their square.
    work: u64,
}

#[derive(Default, PartialEq, Eq)]
enum Phase {
    /// Before the upgrade response's head has ended.
    #[default]
    Head,
    Frames,
    /// Not decodable (no head within `HEAD_LIMIT`, a header that does not
    /// parse): later reads are shown by their size only.
    Raw,
}

/// A frame whose header is read and whose payload is arriving.
struct Payload {
    opcode: OpCode,
    len: u64,
    /// The payload's first `SHOWN` bytes.
    head: Vec<u8>,
    missing: u64,
}

impl Payload {
    fn row(&self) -> String {
        format!("{:?} {} B {:?}", self.opcode, self.len, String::from_utf8_lossy(&self.head))
    }
}

impl ServerBytes {
    /// Takes bytes read; returns what they complete.
    fn read(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut shown = Vec::new();
        match self.phase {
            Phase::Head => {
                if let Some(rest) = self.head(bytes, &mut shown) {
                    self.frames(&rest, &mut shown);
                }
            }
            Phase::Frames => self.frames(bytes, &mut shown),
            Phase::Raw => {}
        }
        shown
    }

    /// Looks for the end of the upgrade response's head, from where the
    /// last search stopped; returns the bytes after it once found.
    fn head(&mut self, bytes: &[u8], shown: &mut Vec<String>) -> Option<Vec<u8>> {
        // Only what can still end within the limit is kept.
        let room = (HEAD_LIMIT + 4).saturating_sub(self.pending.len());
        self.pending.extend_from_slice(&bytes[..bytes.len().min(room)]);
        // A `\r\n\r\n` may straddle the previous read: back up three bytes.
        let from = self.searched.saturating_sub(3);
        self.work += (self.pending.len() - from) as u64;
        match self.pending[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            Some(at) => {
                let end = from + at;
                let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                shown.push(format!("http {}", head.lines().next().unwrap_or_default()));
                // The rest of this read (in `pending`, or past what it took).
                let mut rest = self.pending.split_off(end + 4);
                rest.extend_from_slice(&bytes[bytes.len().min(room)..]);
                self.pending = Vec::new();
                self.phase = Phase::Frames;
                Some(rest)
            }
            None if self.pending.len() > HEAD_LIMIT => {
                shown.push(format!("no upgrade response in the first {HEAD_LIMIT} bytes: not decoded further"));
                self.pending = Vec::new();
                self.phase = Phase::Raw;
                None
            }
            None => {
                self.searched = self.pending.len();
                None
            }
        }
    }

    /// Decodes frames from `input`, after what the last read left.
    fn frames(&mut self, mut input: &[u8], shown: &mut Vec<String>) {
        // Bounded: each turn ends a payload or a header, or uses up `input`.
        loop {
            if let Some(frame) = self.frame.as_mut() {
                let take = usize::try_from(frame.missing).unwrap_or(usize::MAX).min(input.len());
                let keep = (SHOWN - frame.head.len()).min(take);
                frame.head.extend_from_slice(&input[..keep]);
                self.work += keep as u64;
                frame.missing -= take as u64;
                input = &input[take..];
                if frame.missing > 0 {
                    return;
                }
                shown.push(frame.row());
                self.frame = None;
            }
            if input.is_empty() {
                return;
            }
            // The header: what the last read left of it, then this read's first bytes.
            let had = self.pending.len();
            let add = (MAX_HEADER - had).min(input.len());
            self.pending.extend_from_slice(&input[..add]);
            self.work += self.pending.len() as u64;
            let mut cursor = std::io::Cursor::new(&self.pending[..]);
            match FrameHeader::parse(&mut cursor) {
                Ok(Some((header, len))) => {
                    // The header ended within the bytes this read added.
                    let used = cursor.position() as usize - had;
                    input = &input[used..];
                    self.pending.clear();
                    self.frame = Some(Payload { opcode: header.opcode, len, head: Vec::new(), missing: len });
                }
                // The header continues in the next read; `input` is used up.
                Ok(None) => return,
                Err(e) => {
                    shown.push(format!("a frame header does not parse ({e}): not decoded further"));
                    self.pending = Vec::new();
                    self.phase = Phase::Raw;
                    return;
                }
            }
        }
    }
}

/// What a line shows: (direction, description) rows.
fn describe(entry: &Entry, server: &mut ServerBytes) -> Vec<(&'static str, String)> {
    let one = |direction, what: String| vec![(direction, what)];
    match entry {
        Entry::Read { data } => {
            let mut rows = vec![("<-", format!("read {} B", data.len()))];
            rows.extend(server.read(data).into_iter().map(|what| ("<-", format!("  {what}"))));
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
        // Format 4 keeps a run of messages as one record: they are the frames shown above.
        Entry::Messages { n, h } => one("..", format!("{n} messages taken (digest {h})")),
        Entry::Event { ev } => one("..", ev.clone()),
        Entry::Timeout => one("..", "timer".into()),
        Entry::Pause => one("..", "reading paused (consumer behind)".into()),
        Entry::Resume => one("..", "reading resumed".into()),
        Entry::CaughtUp => one("..", "consumer caught up".into()),
        Entry::Dropped { count } => one("..", format!("the recorder dropped {count} lines here")),
        other => one("**", format!("{other:?}")),
    }
}

/// The demo itself (`cargo run -p wslink-tokio --example demo`), run here
/// with shorter timings by the test of its recording.
#[cfg(test)]
#[path = "../../adapter-tokio/examples/demo.rs"]
#[allow(dead_code)] // its `main` and `DEMO` are the demo's, not the test's
mod demo;

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::BASE64;

    const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

    /// A recording whose reads are `chunks`, one line each.
    fn recording(chunks: &[&[u8]]) -> Recording {
        let mut text = format!(
            "{{\"wslink_recording\":1,\"wslink\":\"0.1.0\",\"url\":\"ws://127.0.0.1:1/\",\"config\":\"\",\"seed\":\"{}\"}}\n",
            "00".repeat(32)
        );
        for (i, chunk) in chunks.iter().enumerate() {
            text.push_str(&format!("{{\"t\":{i},\"k\":\"read\",\"b64\":\"{}\"}}\n", BASE64.encode(chunk)));
        }
        Recording::parse(&text).expect("the generated recording parses")
    }

    /// The rows a recording of `chunks` shows (not the `read N B` ones), and
    /// the work it took.
    fn timeline(chunks: &[&[u8]]) -> (Vec<String>, u64) {
        let recording = recording(chunks);
        let mut server = ServerBytes::default();
        let mut rows = Vec::new();
        for line in &recording.lines {
            rows.extend(
                describe(&line.entry, &mut server).into_iter().map(|(_, what)| what).filter(|w| w.starts_with("  ")),
            );
        }
        (rows, server.work)
    }

    /// An unmasked server frame with first byte `first` (FIN and opcode), by tungstenite's header.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let header =
            FrameHeader { is_final: first & 0x80 != 0, opcode: OpCode::from(first & 0x0f), ..FrameHeader::default() };
        let mut v = Vec::new();
        header.format(payload.len() as u64, &mut v).expect("a Vec takes every byte");
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn server_bytes_without_an_upgrade_cost_work_linear_in_their_size() {
        // What took 6.8 s for 7 reads and 22.4 s for 14: every read rescanned all before it.
        let chunk = vec![b'x'; 256 << 10];
        let (rows, small) = timeline(&[&chunk[..]; 8]);
        let (_, large) = timeline(&vec![&chunk[..]; 16]);
        assert!(large <= 2 * small + (1 << 20), "8 reads: {small} bytes of work, 16 reads: {large}");
        assert!(small <= 2 * HEAD_LIMIT as u64, "the search stops at the head's limit: {small}");
        assert_eq!(rows, [format!("  no upgrade response in the first {HEAD_LIMIT} bytes: not decoded further")]);
    }

    #[test]
    fn frames_cost_work_linear_in_their_number_and_size() {
        // Many small frames in each read, then one large frame over many reads.
        let small: Vec<u8> = (0..4096).flat_map(|i| frame(0x81, format!("tick {i}").as_bytes())).collect();
        let large = frame(0x82, &vec![7u8; 8 << 20]);
        let run = |n: usize| {
            let mut chunks: Vec<&[u8]> = vec![HEAD];
            chunks.extend(std::iter::repeat_n(&small[..], n));
            chunks.extend(large.chunks(large.len().div_ceil(n)));
            timeline(&chunks)
        };
        let ((rows, once), (_, twice)) = (run(8), run(16));
        assert_eq!(rows.len(), 1 + 8 * 4096 + 1, "the head, each small frame, the large one");
        assert!(twice <= 2 * once + 4096, "8 reads of each: {once} bytes of work, 16: {twice}");
        // Each frame costs its header and the bytes shown, not its payload.
        assert!(once <= 8 * 4096 * (MAX_HEADER + SHOWN) as u64 + (1 << 10), "{once}");
    }

    #[test]
    fn rows_are_the_same_however_the_reads_cut_the_bytes() {
        let mut wire = HEAD.to_vec();
        for part in [
            frame(0x81, b"hello"),
            frame(0x82, &(0..70_000u32).map(|i| i as u8).collect::<Vec<_>>()),
            frame(0x89, b"ping"),
            frame(0x81, &[b'a'; 200]),
            frame(0x82, b""),
            frame(0x88, &[3, 232]),
        ] {
            wire.extend(part);
        }
        let (whole, _) = timeline(&[&wire]);
        assert_eq!(whole.len(), 7, "{whole:?}");
        assert!(whole[0].contains("http HTTP/1.1 101"), "{whole:?}");
        assert!(whole[2].starts_with("  Data(Binary) 70000 B"), "{whole:?}");
        for size in [1, 2, 3, 7, 13, 100, 4096, 65_537] {
            let chunks: Vec<&[u8]> = wire.chunks(size).collect();
            assert_eq!(timeline(&chunks).0, whole, "reads of {size} bytes");
        }
    }

    #[test]
    fn reads_past_the_decoding_show_their_size_undecoded() {
        let mut server = ServerBytes { phase: Phase::Raw, ..Default::default() };
        for n in 0..10 {
            let entry = Entry::Read { data: vec![1u8; n] };
            assert_eq!(describe(&entry, &mut server), [("<-", format!("read {n} B"))]);
        }
    }

    #[test]
    fn a_header_that_does_not_parse_ends_the_decoding() {
        let mut wire = HEAD.to_vec();
        wire.extend(frame(0x81, b"ok"));
        wire.extend([0x83, 0x00]); // reserved opcode 3
        wire.extend(frame(0x81, b"never shown"));
        let (rows, _) = timeline(&[&wire[..50], &wire[50..], b"more"]);
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert!(rows[2].contains("does not parse"), "{rows:?}");
    }

    /// A recording wslink wrote before format 4 (format 3: JSON Lines, a line
    /// per message), kept as a fixture of the core's tests.
    const FORMAT_3: &str = include_str!("../../core/src/session/tests/format3.jsonl");

    #[test]
    fn the_timeline_reads_a_format_3_recording_and_replays_it() {
        let recording = Recording::parse(FORMAT_3).expect("format 3 is still read");
        assert_eq!(recording.header.wslink_recording, 3);
        let rows = |recording: &Recording| {
            let mut server = ServerBytes::default();
            recording.lines.iter().flat_map(|l| describe(&l.entry, &mut server)).collect::<Vec<_>>()
        };
        let shown = rows(&recording);
        assert!(shown.iter().any(|(d, w)| *d == ".." && w.starts_with("message (")), "a row per message: {shown:?}");
        assert!(shown.iter().any(|(_, w)| w.starts_with("  Data(Text)")), "frames decoded from the reads");
        assert!(replayed(&recording).starts_with("replay: Identical ("), "{}", replayed(&recording));
        // Rewritten in the compact encoding, it shows and replays the same.
        let compact = Recording::parse(recording.to_compact()).expect("its compact form parses");
        assert_eq!(rows(&compact), shown);
        assert_eq!(replayed(&compact), replayed(&recording));
    }

    #[test]
    fn the_demos_recording_replays_identically_from_the_file_alone() {
        // The demo's scenario (auth, subscriptions, requests, pings, cuts
        // and reconnects), recorded for real over loopback, shorter: two
        // cuts in 3 s rather than four in 15.
        let path = std::env::temp_dir().join(format!("wslink-demo-{}.wslink", std::process::id()));
        let timings = demo::Timings {
            run_for: std::time::Duration::from_secs(3),
            cut_after: std::time::Duration::from_millis(1100),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(demo::run(timings, path.to_str())).expect("the demo ran");
        let bytes = std::fs::read(&path).expect("the demo wrote its recording");
        let _ = std::fs::remove_file(&path);
        let recording = Recording::parse(&bytes).expect("a valid recording");
        let connected = recording
            .lines
            .iter()
            .filter(|l| matches!(&l.entry, Entry::Event { ev } if ev.starts_with("Connected")))
            .count();
        assert!(connected >= 2, "the run reconnected after a cut: {connected} connections");
        let said = replayed(&recording);
        assert!(said.starts_with("replay: Identical ("), "{said}");
        // Its JSON Lines (`--lines`) read back to the same lines, and replay the same.
        let lines = Recording::parse(recording.to_lines()).expect("its JSON Lines parse");
        assert_eq!(lines.lines, recording.lines);
        assert_eq!(replayed(&lines), said);
    }
}
