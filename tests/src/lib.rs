//! Test support for wslink: a client [`Connection`] and tungstenite's
//! server-side `WebSocket` joined by an in-memory duplex, stepped by hand.
//!
//! Nothing here sleeps or spawns: the server's stream answers `WouldBlock`
//! when it has nothing to read, so one thread drives both ends in lockstep and
//! every run is the same. Bytes from the server can be delivered to the client
//! in chunks of any size, and raw bytes can be injected as if the server had
//! sent them, to play a hostile peer.

// The fake clock needs one arbitrary origin; nothing reads the clock after it.
#![allow(clippy::disallowed_methods)]

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, SeedableRng};

pub mod blocking;
pub mod certs;
pub mod peers;
pub mod probe;
pub mod proxy;
pub mod python;
pub mod scenario;
pub mod tunnels;

/// The workspace's `target/` directory, where test peers and certificates live.
pub fn target_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target")
}
use tungstenite::handshake::HandshakeError as TungHandshakeError;
use tungstenite::WebSocket;
use wslink_core::{ClientRequest, Connection, ConnectionConfig, ConnectionEvent};

/// The server's end of the in-memory duplex.
#[derive(Debug, Default)]
pub struct ServerEnd {
    /// Bytes the client wrote, not yet read by the server.
    pub inbox: VecDeque<u8>,
    /// Bytes the server wrote, not yet delivered to the client.
    pub outbox: Vec<u8>,
    /// Set when the client closed its transport: reads then return end of stream.
    pub client_closed: bool,
}

impl Read for ServerEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbox.is_empty() {
            return if self.client_closed { Ok(0) } else { Err(io::ErrorKind::WouldBlock.into()) };
        }
        let n = self.inbox.read(buf)?;
        Ok(n)
    }
}

impl Write for ServerEnd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outbox.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A wslink client and a tungstenite server over an in-memory duplex.
pub struct Duplex {
    /// The wslink client under test.
    pub client: Connection,
    /// tungstenite's server side.
    pub server: WebSocket<ServerEnd>,
    /// The fake clock; moved only by the test.
    pub now: Instant,
    /// Bytes from the server are handed to the client in chunks of this size.
    pub chunk: usize,
}

impl Duplex {
    /// Runs the opening handshake between a client for `request` and
    /// tungstenite's `accept`, and returns the open pair with the client's
    /// `Opened` event still queued.
    pub fn open(request: ClientRequest, config: ConnectionConfig) -> Self {
        let now = Instant::now();
        let rng = Box::new(StdRng::seed_from_u64(0x5eed));
        let mut client = Connection::new(request, config, rng, now).expect("valid test config");
        let mut end = ServerEnd::default();
        let mut out = Vec::new();
        let _ = client.poll_transmit(&mut out);
        end.inbox.extend(out);
        let mut attempt = tungstenite::accept(end);
        // The request is already in the inbox; a few rounds always suffice.
        for _ in 0..8 {
            match attempt {
                Ok(server) => {
                    let mut duplex = Self { client, server, now, chunk: usize::MAX };
                    duplex.deliver_to_client();
                    return duplex;
                }
                Err(TungHandshakeError::Interrupted(mid)) => attempt = mid.handshake(),
                Err(TungHandshakeError::Failure(e)) => panic!("tungstenite refused the upgrade: {e}"),
            }
        }
        panic!("handshake did not complete in 8 rounds");
    }

    /// A pair for `ws://localhost/` with the default config.
    pub fn open_default() -> Self {
        Self::open(ClientRequest::new("ws://localhost/").expect("valid URL"), ConnectionConfig::default())
    }

    /// Moves whatever the client queued to the server's inbox.
    pub fn deliver_to_server(&mut self) {
        let mut out = Vec::new();
        let _ = self.client.poll_transmit(&mut out);
        self.server.get_mut().inbox.extend(out);
    }

    /// Moves whatever the server wrote to the client, in chunks of `self.chunk`.
    pub fn deliver_to_client(&mut self) {
        let bytes = std::mem::take(&mut self.server.get_mut().outbox);
        for piece in bytes.chunks(self.chunk.max(1)) {
            self.client.handle_input(piece, self.now);
        }
    }

    /// Hands raw bytes to the client as if the server had written them.
    pub fn inject(&mut self, bytes: &[u8]) {
        self.client.handle_input(bytes, self.now);
    }

    /// Sends a message from the server and delivers it to the client.
    pub fn server_send(&mut self, message: tungstenite::Message) {
        self.server.send(message).expect("in-memory write");
        self.deliver_to_client();
    }

    /// Delivers the client's bytes and reads one message on the server;
    /// `None` when the server has nothing complete to read.
    pub fn server_read(&mut self) -> Option<Result<tungstenite::Message, tungstenite::Error>> {
        self.deliver_to_server();
        let result = match self.server.read() {
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => None,
            other => Some(other),
        };
        // Flush what tungstenite queued in answer (pongs, close replies).
        let _ = self.server.flush();
        self.deliver_to_client();
        result
    }

    /// Drains the client's events, as a caller following the documented
    /// order does: a violation held behind messages becomes due once they are
    /// taken, so a timeout already due is fired and the events drained again.
    pub fn client_events(&mut self) -> Vec<ConnectionEvent> {
        let mut events: Vec<ConnectionEvent> = std::iter::from_fn(|| self.client.poll_event()).collect();
        if self.client.poll_timeout().is_some_and(|due| due <= self.now) {
            self.client.handle_timeout(self.now);
            events.extend(std::iter::from_fn(|| self.client.poll_event()));
        }
        events
    }

    /// Moves the fake clock to the client's deadline and fires it.
    pub fn advance_to_deadline(&mut self) -> Option<Duration> {
        let deadline = self.client.poll_timeout()?;
        let step = deadline.saturating_duration_since(self.now);
        self.now = deadline.max(self.now);
        self.client.handle_timeout(self.now);
        Some(step)
    }
}

/// Encodes one unmasked server frame with tungstenite's header writer.
pub fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    use tungstenite::protocol::frame::{coding::OpCode, FrameHeader};
    let header = FrameHeader { is_final: fin, opcode: OpCode::from(opcode), ..FrameHeader::default() };
    let mut out = Vec::with_capacity(payload.len() + 10);
    header.format(payload.len() as u64, &mut out).expect("writing to a Vec");
    out.extend_from_slice(payload);
    out
}

/// Encodes one unmasked server frame with RSV1 set: the first frame of a
/// permessage-deflate message.
pub fn compressed_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = server_frame(fin, opcode, payload);
    frame[0] |= 0x40;
    frame
}

/// A server's side of permessage-deflate: raw DEFLATE with context takeover,
/// each message sync-flushed and its `00 00 ff ff` tail stripped (RFC 7692 §7.2.1).
pub struct ServerDeflate(zlib_rs::Deflate);

impl ServerDeflate {
    /// A compressor with a window of `window_bits` (9 to 15).
    pub fn new(level: i32, window_bits: u8) -> Self {
        Self(zlib_rs::Deflate::new(level, false, window_bits))
    }

    /// One message, made of `parts` (so that a large one need not exist in memory).
    pub fn message<'a>(&mut self, parts: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut parts = parts.into_iter().peekable();
        while let Some(part) = parts.next() {
            let flush =
                if parts.peek().is_none() { zlib_rs::DeflateFlush::SyncFlush } else { zlib_rs::DeflateFlush::NoFlush };
            let mut input = part;
            loop {
                let len = out.len();
                let room = input.len() / 2 + 1024;
                out.resize(len + room, 0);
                let (before_in, before_out) = (self.0.total_in(), self.0.total_out());
                self.0.compress(input, &mut out[len..], flush).expect("compress");
                input = &input[(self.0.total_in() - before_in) as usize..];
                let produced = (self.0.total_out() - before_out) as usize;
                out.truncate(len + produced);
                if input.is_empty() && produced < room {
                    break;
                }
            }
        }
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "a sync flush ends with the empty stored block");
        out.truncate(out.len() - 4);
        out
    }
}

/// Helpers shared by the benches: one buffer of many frames, and timing that
/// keeps the best of several rounds.
pub mod bench {
    use std::time::{Duration, Instant};

    /// `count` copies of one unmasked server frame.
    pub fn frames(count: usize, opcode: u8, payload: &[u8]) -> Vec<u8> {
        super::server_frame(true, opcode, payload).repeat(count)
    }

    /// Runs `f`, checks it handled `expected` messages, and returns how long it took.
    pub fn time(f: impl FnOnce() -> usize, expected: usize) -> Duration {
        let start = Instant::now();
        let n = f();
        let took = start.elapsed();
        assert_eq!(n, expected, "every message handled");
        took
    }

    /// Nanoseconds per message.
    pub fn per_message(d: Duration, count: usize) -> f64 {
        d.as_nanos() as f64 / count as f64
    }
}
