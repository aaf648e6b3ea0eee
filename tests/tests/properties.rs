//! Property tests of the connection layer, 1000 cases each unless
//! `PROPTEST_CASES` says otherwise (proptest lets it override `CASES`):
//! - any stream of server frames, valid or not, split at arbitrary byte
//!   boundaries, yields the events it yields when fed whole, and a valid stream
//!   yields exactly the messages it was built from;
//! - frames the client sends, read by tungstenite's server, give back the messages sent;
//! - the same bytes fed to wslink and to tungstenite's client-side reader are
//!   accepted or refused alike and yield the same messages.

use std::io::{self, Read, Write};

use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message as TungMessage, WebSocket};
use wslink_core::{Connection, ConnectionConfig, ConnectionError, ConnectionEvent, Message, ProtocolError};
use wslink_tests::{server_frame, ServerEnd};

const CASES: u32 = 1000;
const MAX_FRAME: usize = 64 << 10;
const MAX_MESSAGE: usize = 256 << 10;

fn config() -> ConnectionConfig {
    ConnectionConfig::default().max_frame_size(MAX_FRAME).max_message_size(MAX_MESSAGE)
}

fn upgraded(config: ConnectionConfig) -> Connection {
    Connection::from_upgraded(config, Box::new(StdRng::seed_from_u64(11))).expect("valid config")
}

/// Feeds `bytes` cut at `cuts` and returns the events and every byte the client wrote.
fn run_split(bytes: &[u8], cuts: &[usize]) -> (Vec<ConnectionEvent>, Vec<u8>) {
    let mut conn = upgraded(config());
    // The fake clock needs one arbitrary origin; nothing reads the clock after it.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::Instant::now();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut start = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        conn.handle_input(&bytes[start..cut], now);
        start = cut;
    }
    // Take every event; a violation behind messages is acted on at the
    // timeout that follows (the documented order), so poll once more after it.
    let mut events: Vec<ConnectionEvent> = std::iter::from_fn(|| conn.poll_event()).collect();
    if conn.poll_timeout().is_some_and(|due| due <= now) {
        conn.handle_timeout(now);
        events.extend(std::iter::from_fn(|| conn.poll_event()));
    }
    let mut out = Vec::new();
    let _ = conn.poll_transmit(&mut out);
    (events, out)
}

/// One server message of a valid stream, with the pings to put between its fragments.
#[derive(Debug, Clone)]
struct ValidMessage {
    text: bool,
    payload: Vec<u8>,
    cuts: Vec<usize>,
    pings: Vec<Vec<u8>>,
}

fn valid_message() -> impl Strategy<Value = ValidMessage> {
    let body = prop_oneof![
        ".{0,200}".prop_map(|s: String| (true, s.into_bytes())),
        prop::collection::vec(any::<u8>(), 0..2000).prop_map(|b| (false, b)),
    ];
    (
        body,
        prop::collection::vec(any::<usize>(), 0..4),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..=125), 0..3),
    )
        .prop_map(|((text, payload), cuts, pings)| ValidMessage { text, payload, cuts, pings })
}

impl ValidMessage {
    /// Frames for this message: fragments cut anywhere (even inside a code point), pings between.
    fn encode(&self, out: &mut Vec<u8>) {
        let mut cuts: Vec<usize> = self.cuts.iter().map(|c| c % (self.payload.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut bounds = vec![0];
        bounds.extend(cuts.into_iter().filter(|&c| c > 0 && c < self.payload.len()));
        bounds.push(self.payload.len());
        for (i, w) in bounds.windows(2).enumerate() {
            let opcode = match (i, self.text) {
                (0, true) => 1,
                (0, false) => 2,
                _ => 0,
            };
            out.extend(server_frame(w[1] == self.payload.len(), opcode, &self.payload[w[0]..w[1]]));
            if let Some(ping) = self.pings.get(i) {
                out.extend(server_frame(true, 9, ping));
            }
        }
    }

    fn expected(&self) -> Message {
        if self.text {
            Message::Text(String::from_utf8(self.payload.clone()).expect("generated as a String").into())
        } else {
            Message::Binary(self.payload.clone().into())
        }
    }
}

/// A frame with arbitrary header bits: mostly valid, sometimes broken in one way or another.
fn arbitrary_frame() -> impl Strategy<Value = Vec<u8>> {
    let opcode = prop_oneof![20 => prop::sample::select(vec![0u8, 1, 2, 2, 9, 10]), 1 => Just(8u8), 1 => 0u8..16];
    let payload = prop_oneof![
        4 => ".{0,40}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => prop::sample::select(vec![vec![3, 232], vec![3, 237], vec![3], vec![3, 232, 0xff], vec![15, 160, b'o', b'k']]),
    ];
    let rsv = prop_oneof![40 => Just(0u8), 1 => 1u8..8];
    (prop::bool::weighted(0.8), rsv, opcode, prop::option::weighted(0.02, any::<[u8; 4]>()), payload).prop_map(
        |(fin, rsv, opcode, mask, payload)| {
            let mut frame = server_frame(fin || opcode >= 8, opcode, &payload);
            frame[0] |= rsv << 4;
            if let Some(key) = mask {
                let header_len = frame.len() - payload.len();
                frame[1] |= 0x80;
                let masked: Vec<u8> = payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
                frame.truncate(header_len);
                frame.extend_from_slice(&key);
                frame.extend(masked);
            }
            frame
        },
    )
}

/// What either implementation made of a byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// A close frame arrived; the code the reader reports (None for a codeless close).
    Close(Option<u16>),
    /// The reader refused the stream.
    Refused,
}

fn wslink_reads(bytes: &[u8]) -> Vec<Seen> {
    let (events, _) = run_split(bytes, &[]);
    let mut seen = Vec::new();
    for event in events {
        seen.push(match event {
            ConnectionEvent::Message(Message::Text(t)) => Seen::Text(t.as_str().to_owned()),
            ConnectionEvent::Message(Message::Binary(b)) => Seen::Binary(b.to_vec()),
            ConnectionEvent::Ping(p) => Seen::Ping(p.to_vec()),
            ConnectionEvent::Pong(p) => Seen::Pong(p.to_vec()),
            ConnectionEvent::Closed(c) => match c.error {
                None if c.code == wslink_core::CloseCode::Status => Seen::Close(None),
                None => Seen::Close(Some(c.code.into())),
                // tungstenite reports a close with a forbidden code as a close
                // with 1002, the code both implementations answer with.
                Some(ConnectionError::Protocol(ProtocolError::InvalidCloseCode(_))) => Seen::Close(Some(1002)),
                Some(_) => Seen::Refused,
            },
            other => panic!("unexpected event {other:?}"),
        });
    }
    seen
}

/// A stream that yields `data` and then `WouldBlock`, as a socket with nothing more to read.
struct Replay(io::Cursor<Vec<u8>>);

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf)? {
            0 if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// tungstenite's client-side reader on the same bytes; `None` at the end means
/// it is still waiting for more input.
fn tungstenite_reads(bytes: &[u8]) -> (Vec<Seen>, bool) {
    let config = WebSocketConfig::default().max_frame_size(Some(MAX_FRAME)).max_message_size(Some(MAX_MESSAGE));
    let mut ws = WebSocket::from_raw_socket(Replay(io::Cursor::new(bytes.to_vec())), Role::Client, Some(config));
    let mut seen = Vec::new();
    // Each read consumes at least one frame of at least 2 bytes.
    for _ in 0..=bytes.len() {
        match ws.read() {
            Ok(TungMessage::Text(t)) => seen.push(Seen::Text(t.as_str().to_owned())),
            Ok(TungMessage::Binary(b)) => seen.push(Seen::Binary(b.to_vec())),
            Ok(TungMessage::Ping(p)) => seen.push(Seen::Ping(p.to_vec())),
            Ok(TungMessage::Pong(p)) => seen.push(Seen::Pong(p.to_vec())),
            Ok(TungMessage::Close(c)) => {
                seen.push(Seen::Close(c.map(|f| f.code.into())));
                return (seen, false);
            }
            Ok(TungMessage::Frame(_)) => unreachable!("tungstenite never reads raw frames"),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return (seen, true),
            Err(_) => {
                seen.push(Seen::Refused);
                return (seen, false);
            }
        }
    }
    (seen, true)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn valid_streams_split_anywhere_yield_their_messages(
        messages in prop::collection::vec(valid_message(), 0..6),
        close in prop::option::of(prop::sample::select(vec![1000u16, 1001, 3000, 4999])),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for m in &messages {
            m.encode(&mut bytes);
            expected.push(m.expected());
        }
        if let Some(code) = close {
            bytes.extend(server_frame(true, 8, &code.to_be_bytes()));
        }
        let (whole, whole_out) = run_split(&bytes, &[]);
        let (split, split_out) = run_split(&bytes, &cuts);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(whole_out, split_out);
        let messages: Vec<Message> = whole.iter().filter_map(|e| match e {
            ConnectionEvent::Message(m) => Some(m.clone()),
            _ => None,
        }).collect();
        prop_assert_eq!(messages, expected);
        let closed = whole.iter().filter(|e| matches!(e, ConnectionEvent::Closed(c) if c.is_clean())).count();
        prop_assert_eq!(closed, usize::from(close.is_some()));
    }

    #[test]
    fn any_frames_split_anywhere_yield_the_same_events(
        frames in prop::collection::vec(arbitrary_frame(), 0..8),
        tail in prop::collection::vec(any::<u8>(), 0..16),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut bytes = frames.concat();
        bytes.extend(tail);
        prop_assert_eq!(run_split(&bytes, &[]), run_split(&bytes, &cuts));
    }

    #[test]
    fn frames_sent_are_read_back_by_tungstenite(
        messages in prop::collection::vec(prop_oneof![
            ".{0,300}".prop_map(|s: String| Message::Text(s.into())),
            prop::collection::vec(any::<u8>(), 0..5000).prop_map(|b| Message::Binary(b.into())),
        ], 1..8),
        fragment_size in prop::option::of(1usize..700),
    ) {
        let mut conn = upgraded(config().fragment_size(fragment_size));
        for m in &messages {
            match m {
                Message::Text(t) => conn.send_text(t.as_str()).unwrap(),
                Message::Binary(b) => conn.send_binary(b).unwrap(),
            }
        }
        let mut end = ServerEnd::default();
        let mut out = Vec::new();
        let _ = conn.poll_transmit(&mut out);
        end.inbox.extend(out);
        let mut server = WebSocket::from_raw_socket(end, Role::Server, None);
        for m in &messages {
            let got = server.read().expect("tungstenite accepts our frames");
            let want = match m {
                Message::Text(t) => TungMessage::text(t.as_str()),
                Message::Binary(b) => TungMessage::Binary(b.clone()),
            };
            prop_assert_eq!(got, want);
        }
        prop_assert!(server.get_ref().inbox.is_empty(), "no stray bytes");
    }

    #[test]
    fn wslink_and_tungstenite_agree_on_the_same_bytes(
        frames in prop::collection::vec(arbitrary_frame(), 0..8),
        tail in prop::option::weighted(0.25, prop::collection::vec(any::<u8>(), 1..6)),
    ) {
        let mut bytes = frames.concat();
        bytes.extend(tail.unwrap_or_default());
        let ours = wslink_reads(&bytes);
        let (mut theirs, waiting) = tungstenite_reads(&bytes);
        if waiting && ours.last() == Some(&Seen::Refused) {
            // wslink refuses a frame from its header alone; tungstenite reads the
            // whole frame first. Complete the last frame with zeros and ask again.
            bytes.extend(std::iter::repeat_n(0, MAX_FRAME + 14));
            theirs = tungstenite_reads(&bytes).0;
        }
        prop_assert_eq!(ours, theirs);
    }
}
