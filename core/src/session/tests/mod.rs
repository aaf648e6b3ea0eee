//! Session behaviour with a fake clock and a scripted fake server.
//!
//! The fake server lives at the byte level: it reads the session's transmits,
//! answers the upgrade when told to, decodes the client's masked frames, and
//! writes server frames. The clock moves only when a test says so, and
//! `advance` only to the deadline the session reported.

// The fake clock needs one arbitrary origin; no test reads the clock after it.
#![allow(clippy::disallowed_methods)]

mod arbitrary_time;
mod compact;
mod durations;
mod errors;
mod faults;
mod heartbeats;
mod lifecycle;
mod metrics;
mod reauth;
mod recording;
mod replay_from_file;
mod request_ids;
mod requests;
mod sequences;
mod state_machine;
mod subscriptions;
mod write_budget;

use std::io::Cursor;
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, SeedableRng};
use tungstenite::protocol::frame::FrameHeader;

use super::*;
use crate::frame::apply_mask;

/// A recording as JSON Lines (`Recording::to_lines`), for reading in assertions.
pub(super) fn lines(tape: &crate::record::MemoryRecorder) -> String {
    crate::replay::Recording::parse(tape.bytes()).expect("a valid recording").to_lines()
}

/// What the fake server decoded from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Got {
    Upgrade { headers: Vec<String> },
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>),
}

pub(super) struct Fake {
    pub(super) s: Session,
    pub(super) now: Instant,
    pub(super) t0: Instant,
    /// Transports asked for and not closed: `Some(open)` while one exists.
    pub(super) transport: Option<bool>,
    pub(super) opened: usize,
    pub(super) closed: usize,
    /// What the last `CloseTransport` asked: how long to wait for the server's end of stream.
    pub(super) last_wait_for_server: Option<Duration>,
    rx: Vec<u8>,
    key: Option<String>,
    upgraded: bool,
    pub(super) got: Vec<Got>,
    /// The server reads nothing: transmits wait here, unwritten, until `unstall`.
    pub(super) stalled: bool,
    pub(super) unwritten: Vec<u8>,
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn builder() -> SessionBuilder {
    Session::builder("ws://feed.test:9001/ws").expect("valid URL").ping(None)
}

impl Fake {
    pub(super) fn new(builder: SessionBuilder) -> Self {
        Self::with_seed(builder, 42)
    }

    /// A session whose random source is seeded with `seed`.
    pub(super) fn with_seed(builder: SessionBuilder, seed: u64) -> Self {
        let t0 = Instant::now();
        let s = builder.build(Box::new(StdRng::seed_from_u64(seed)), t0).expect("valid config");
        Self {
            s,
            now: t0,
            t0,
            transport: None,
            opened: 0,
            closed: 0,
            last_wait_for_server: None,
            rx: Vec::new(),
            key: None,
            upgraded: false,
            got: Vec::new(),
            stalled: false,
            unwritten: Vec::new(),
        }
    }

    /// A session connected and open (no auth), events drained.
    pub(super) fn open(builder: SessionBuilder) -> Self {
        let mut f = Self::new(builder);
        f.s.connect(f.now).unwrap();
        f.step();
        f.establish();
        f.events();
        f.got();
        f
    }

    /// Accepts the pending transport and the upgrade.
    pub(super) fn establish(&mut self) {
        self.accept_transport();
        self.upgrade();
    }

    /// Drains actions into the fake transport and decodes what the client wrote.
    pub(super) fn step(&mut self) {
        while let Some(action) = self.s.poll_action() {
            match action {
                Action::OpenTransport { host, port, tls } => {
                    assert_eq!((host.as_str(), port, tls), ("feed.test", 9001, false));
                    assert!(self.transport.is_none(), "at most one transport open or opening");
                    self.transport = Some(false);
                    self.opened += 1;
                }
                Action::Transmit(bytes) => {
                    assert_eq!(self.transport, Some(true), "transmit without an open transport");
                    if self.stalled {
                        self.unwritten.extend(bytes);
                    } else {
                        self.s.handle_written(bytes.len(), self.now);
                        self.rx.extend(bytes);
                        self.decode();
                    }
                }
                Action::CloseTransport { wait_for_server } => {
                    self.last_wait_for_server = wait_for_server;
                    assert!(self.transport.is_some(), "closing a transport that is not there");
                    self.transport = None;
                    self.closed += 1;
                    self.rx.clear();
                    self.unwritten.clear();
                    self.key = None;
                    self.upgraded = false;
                }
            }
        }
        self.decode();
        // As a driver does before it waits: what was recorded goes to the recorder.
        self.s.flush_recording();
    }

    /// The server reads `n` of the bytes that waited (all of them when
    /// `None`) and goes on reading everything.
    pub(super) fn unstall(&mut self, n: Option<usize>) {
        let n = n.unwrap_or(self.unwritten.len()).min(self.unwritten.len());
        let read: Vec<u8> = self.unwritten.drain(..n).collect();
        self.stalled = !self.unwritten.is_empty();
        self.rx.extend(&read);
        self.s.handle_written(n, self.now);
        self.decode();
        self.step();
    }

    fn decode(&mut self) {
        if !self.upgraded && self.key.is_none() {
            let Some(end) = self.rx.windows(4).position(|w| w == b"\r\n\r\n") else { return };
            let head = String::from_utf8(self.rx.drain(..end + 4).collect()).unwrap();
            let headers: Vec<String> = head.lines().skip(1).filter(|l| !l.is_empty()).map(str::to_owned).collect();
            self.key = headers.iter().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).map(str::to_owned);
            self.got.push(Got::Upgrade { headers });
        }
        loop {
            let mut cursor = Cursor::new(&self.rx[..]);
            let Ok(Some((header, len))) = FrameHeader::parse(&mut cursor) else { return };
            let start = cursor.position() as usize;
            let end = start + len as usize;
            if self.rx.len() < end {
                return;
            }
            let mut payload = self.rx[start..end].to_vec();
            apply_mask(&mut payload, header.mask.expect("client frames are masked"));
            self.rx.drain(..end);
            self.got.push(match u8::from(header.opcode) {
                1 => Got::Text(String::from_utf8(payload).unwrap()),
                2 => Got::Binary(payload),
                8 => Got::Close((payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))),
                9 => Got::Ping(payload),
                10 => Got::Pong(payload),
                op => panic!("client sent opcode {op}"),
            });
        }
    }

    pub(super) fn accept_transport(&mut self) {
        assert_eq!(self.transport, Some(false), "no transport is opening");
        self.transport = Some(true);
        self.s.handle_transport_open(self.now);
        self.step();
    }

    pub(super) fn refuse_transport(&mut self) {
        assert_eq!(self.transport, Some(false), "no transport is opening");
        self.s.handle_transport_error(std::io::ErrorKind::ConnectionRefused, "refused", self.now);
        self.step();
    }

    pub(super) fn upgrade(&mut self) {
        let key = self.key.take().expect("an upgrade request arrived");
        self.upgraded = true;
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            tungstenite::handshake::derive_accept_key(key.as_bytes())
        );
        self.input(response.as_bytes());
    }

    pub(super) fn input(&mut self, bytes: &[u8]) {
        self.s.handle_input(bytes, self.now);
        self.step();
    }

    pub(super) fn server_text(&mut self, text: &str) {
        let mut frame = vec![0x81];
        match text.len() {
            n if n < 126 => frame.push(n as u8),
            n => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        frame.extend_from_slice(text.as_bytes());
        self.input(&frame);
    }

    pub(super) fn server_pong(&mut self, payload: &[u8]) {
        let mut frame = vec![0x8A, payload.len() as u8];
        frame.extend_from_slice(payload);
        self.input(&frame);
    }

    /// The server drops the connection without a close frame.
    pub(super) fn server_drop(&mut self) {
        self.s.handle_eof(self.now);
        self.step();
    }

    /// Moves the clock to the session's next deadline and fires it; returns the step taken.
    pub(super) fn advance(&mut self) -> Duration {
        let deadline = self.s.poll_timeout().expect("a timer is armed");
        assert!(deadline >= self.now, "poll_timeout is never in the past");
        let step = deadline - self.now;
        self.now = deadline;
        self.s.handle_timeout(self.now);
        self.step();
        step
    }

    /// Moves the clock forward by `by` without firing anything first; the
    /// session must have no deadline before then.
    pub(super) fn wait(&mut self, by: Duration) {
        let target = self.now + by;
        if let Some(deadline) = self.s.poll_timeout() {
            assert!(deadline >= target, "a deadline at +{:?} would be skipped", deadline - self.t0);
        }
        self.now = target;
        self.s.handle_timeout(self.now);
        self.step();
    }

    /// Events since the last call, without state changes.
    pub(super) fn events(&mut self) -> Vec<SessionEvent> {
        let events = std::iter::from_fn(|| self.s.poll_event())
            .filter(|e| !matches!(e, SessionEvent::StateChanged { .. }))
            .collect();
        self.s.flush_recording();
        events
    }

    /// What the server received since the last call.
    pub(super) fn got(&mut self) -> Vec<Got> {
        std::mem::take(&mut self.got)
    }

    /// The text messages the server received since the last call.
    pub(super) fn texts(&mut self) -> Vec<String> {
        self.got()
            .into_iter()
            .filter_map(|g| match g {
                Got::Text(t) => Some(t),
                _ => None,
            })
            .collect()
    }
}

/// The id of a JSON-RPC request text.
pub(super) fn id_of(request: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(request).unwrap();
    v["id"].as_u64().unwrap()
}

/// The method of a JSON-RPC request text.
pub(super) fn method_of(request: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(request).unwrap();
    v["method"].as_str().unwrap().to_owned()
}

/// The reasons of the `Disconnected` events among `events`, in order.
pub(super) fn disconnects(events: &[SessionEvent]) -> Vec<DisconnectReason> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Disconnected { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}
