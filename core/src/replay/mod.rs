//! Replaying a recording ([`crate::record`]): a fresh [`Session`] is fed the
//! recorded inputs at the recorded (fake) times, its outputs are polled at
//! the recorded points and compared with the recorded ones. The first
//! difference is reported with its line and output index; no socket, no
//! clock.
//!
//! The session is rebuilt from the file alone ([`replay_file`], or
//! [`rebuild`] then [`replay`]) for a recording of format 3: its header
//! keeps every setting and each hook by name, wslink's presets with their
//! settings, the user's own hooks by the name given when recording
//! ([`SessionBuilder::name_hook`]), which a [`HookRegistry`] maps back to
//! the hooks. A hook set without a name refuses the rebuild
//! ([`RebuildError::Unnamed`], naming it) rather than letting the replay
//! diverge. An older recording (format 1 or 2) keeps neither: [`replay`] it
//! with a builder from the caller, with the recorded session's settings and
//! hooks.
//!
//! What a file leaves out, a replay does without, and stays identical:
//! - Secrets. A sensitive header's value and the URL's query are
//!   `<redacted>` in the header, and the upgrade that carried them is
//!   recorded redacted; so is the authenticator's message, which a rebuilt
//!   [`JsonRpcAuth`](crate::presets::JsonRpcAuth) sends with its method and
//!   no parameters. A redacted transmit is compared by its presence only:
//!   the session numbers the request as it did (the server's recorded answer
//!   carries that id, and accepts or refuses it as it did).
//! - Their length. The write budget counts the bytes handed out and
//!   written; a replayed redacted transmit is no longer than the recorded
//!   one (the shortest authentication; a `<redacted>` value), and a report
//!   of more bytes written than wait counts as all of them, so the count is
//!   the same after every report that wrote each transmit whole, which is
//!   what the adapters report unless the socket took part of one. A write
//!   that stopped inside a redacted transmit leaves the replayed count
//!   lower until the next whole one: a write timeout that fell due then
//!   shows as a divergence, never as a silent difference.
//! - Compression after a secret: with permessage-deflate's context
//!   takeover, the bytes of every message compressed after the
//!   authenticator's depend on its text, so a session that compresses and
//!   authenticates diverges at its first compressed message (replay it with
//!   the real credentials through a registered authenticator, or record
//!   with `client_no_context_takeover`).
//!
//! What a replay compares: each output the recording keeps, the way it
//! keeps it. A transmit by its length and digest (by its presence when
//! redacted), any other event by its `Debug` text, and messages (format 4)
//! a run at a time: the recording keeps every byte read, and the messages
//! are decoded from them again, so a run's count and the digest chained
//! over its messages' kinds, lengths and payloads find any difference,
//! at the run (formats 1 to 3: at each message, by its digest).
//!
//! A recording is checked whole before anything is replayed: a truncated,
//! corrupted or future-version file is refused with a typed error naming the
//! line (the record, in the compact encoding, with its byte offset). Both
//! encodings are read ([`Recording::parse`]), and formats 1 to 4.

mod compact;
mod parse;
mod rebuild;

pub use rebuild::{rebuild, replay_file, HookRegistry, RebuildError, ReplayError};

use std::time::{Duration, Instant};

use data_encoding::BASE64;

use crate::error::ConfigError;
use crate::message::Message;
use crate::record::format::{chain, hex, Entry, Header, Line, FORMAT_VERSION, RUN_SEED};
use crate::record::{action_entry, event_entry};
use crate::session::{Session, SessionBuilder};
use crate::CloseCode;

/// A recording, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recording {
    /// The header line.
    pub header: Header,
    /// Every line after it, in order (its number is index + 2, the header
    /// being line 1; in the compact encoding, each record but a `time` is
    /// a line, numbered the same way).
    pub lines: Vec<Line>,
    /// The random source's seed, from the header.
    pub seed: [u8; 32],
}

/// Why a recording was refused. Lines are numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingError {
    /// The text holds no header line.
    #[error("the recording is empty")]
    Empty,
    /// The header line is not a recording header.
    #[error("line {line}: not a wslink recording header ({reason})")]
    BadHeader {
        /// The line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The recording was written in a format this version does not know.
    #[error("line {line}: recording format {found}, but this wslink reads formats 1 to {FORMAT_VERSION}")]
    FutureVersion {
        /// The line.
        line: usize,
        /// The format version found.
        found: u32,
    },
    /// A line is not a valid record.
    #[error("line {line}: {reason}")]
    BadLine {
        /// The line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The last line ends in the middle (no newline, not a whole record; in
    /// the compact encoding, the input ends inside a record or a length runs
    /// past it): the writer stopped mid-line.
    #[error("line {line}: the recording ends in the middle of a line")]
    Truncated {
        /// The line.
        line: usize,
    },
    /// A record of the compact encoding is not valid.
    #[error("line {line} (byte {offset}): {fault}")]
    BadRecord {
        /// The line (record) it would have been.
        line: usize,
        /// Where the record starts in the input.
        offset: usize,
        /// What is wrong.
        fault: RecordFault,
    },
}

/// What is wrong with a record of the compact encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordFault {
    /// A record kind this version does not know.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// A number longer than 64 bits, or a length beyond this machine's.
    #[error("a number too large")]
    BadNumber,
    /// A line held as JSON that is not a valid line.
    #[error("{0}")]
    BadEntry(String),
}

/// Where a replay first differed from its recording.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Divergence {
    /// The recording's line (numbered from 1, the header being line 1).
    pub line: usize,
    /// Which output this was, counting from 0 over all outputs.
    pub output: usize,
    /// What the recording says.
    pub recorded: String,
    /// What the replayed session gave.
    pub replayed: String,
}

/// How a replay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Replayed {
    /// Every recorded output came out the same.
    Identical {
        /// Inputs fed.
        inputs: usize,
        /// Outputs compared.
        outputs: usize,
    },
    /// The first difference.
    Diverged(Divergence),
    /// The recorder dropped lines here (it was full): the replay agreed up to this line.
    Incomplete {
        /// The line of the note.
        line: usize,
        /// Lines the recorder dropped.
        dropped: u64,
    },
}

/// Replays `recording` into a session built from `builder` (the same URL,
/// settings and hooks as the recorded one: [`rebuild`] makes it from a
/// recording of format 3; its random source is seeded from the recording),
/// with `origin` as the recorded session's start.
///
/// A recording of format 1 predates the write budget: it carries no
/// `written` lines, and its session held nothing back for one, so it is
/// replayed without a budget or a write timeout.
pub fn replay(recording: &Recording, builder: SessionBuilder, origin: Instant) -> Result<Replayed, ConfigError> {
    let rng = Box::new(<rand::rngs::StdRng as rand::SeedableRng>::from_seed(recording.seed));
    let builder = match recording.header.wslink_recording {
        1 => builder.write_budget(usize::MAX).write_timeout(None),
        _ => builder,
    };
    let mut s = builder.build(rng, origin)?;
    let (mut inputs, mut outputs) = (0, 0);
    for (i, line) in recording.lines.iter().enumerate() {
        let number = i + 2;
        let now = origin.checked_add(Duration::from_nanos(line.t)).unwrap_or(origin);
        if let Entry::Messages { n, h } = &line.entry {
            match messages(&mut s, *n, h) {
                Ok(n) => outputs += n,
                Err((at, recorded, replayed)) => {
                    let d = Divergence { line: number, output: outputs + at, recorded, replayed };
                    return Ok(Replayed::Diverged(d));
                }
            }
            continue;
        }
        let diverged = |recorded: String, replayed: String| {
            Ok(Replayed::Diverged(Divergence { line: number, output: outputs, recorded, replayed }))
        };
        if line.entry.is_input() {
            inputs += 1;
            if let Some((recorded, replayed)) = feed(&mut s, &line.entry, now) {
                return diverged(recorded, replayed);
            }
            continue;
        }
        let replayed = match &line.entry {
            Entry::Dropped { count } => return Ok(Replayed::Incomplete { line: number, dropped: *count }),
            Entry::OpenTransport { .. } | Entry::Transmit { .. } | Entry::CloseTransport { .. } => {
                s.poll_action().map(|a| action_entry(&a))
            }
            _ => s.poll_event().map(|e| event_entry(&e)),
        };
        let same = match (&line.entry, &replayed) {
            (Entry::Transmit { redacted: true, .. }, Some(Entry::Transmit { .. })) => true,
            (recorded, Some(replayed)) => recorded == replayed,
            (_, None) => false,
        };
        if !same {
            return diverged(format!("{:?}", line.entry), replayed.map_or("nothing".to_owned(), |e| format!("{e:?}")));
        }
        outputs += 1;
    }
    Ok(Replayed::Identical { inputs, outputs })
}

/// Polls a recorded run of `n` messages (digest `h`): how many, or where
/// and how it differed (its index in the run, recorded, replayed).
fn messages(s: &mut Session, n: u64, h: &str) -> Result<usize, (usize, String, String)> {
    let mut digest = RUN_SEED;
    let mut taken = 0usize;
    // Bounded by the events there are: the first `None` ends it.
    while (taken as u64) < n {
        match s.poll_event() {
            Some(crate::SessionEvent::Message(m)) => digest = chain(digest, &m),
            other => {
                let recorded = format!("message {} of a run of {n}", taken + 1);
                return Err((
                    taken,
                    recorded,
                    other.map_or("nothing".to_owned(), |e| format!("{:?}", event_entry(&e))),
                ));
            }
        }
        taken += 1;
    }
    if hex(digest) != h {
        let (recorded, replayed) =
            (format!("{n} messages, digest {h}"), format!("{n} messages, digest {}", hex(digest)));
        return Err((0, recorded, replayed));
    }
    Ok(taken)
}

/// Feeds one recorded input; returns a difference for a `CaughtUp` that
/// found an event where the recording found none.
fn feed(s: &mut Session, entry: &Entry, now: Instant) -> Option<(String, String)> {
    // Commands refused then were refused now too, or the outputs will show it.
    match entry {
        Entry::Connect => drop(s.connect(now)),
        Entry::Reconnect => drop(s.reconnect(now)),
        Entry::Close { code, reason } => drop(s.close(CloseCode::from(*code), reason, now)),
        Entry::Send { text, b64, post } => {
            let message = match (text, b64) {
                (Some(text), _) => Message::Text(text.as_str().into()),
                (None, Some(data)) => Message::Binary(BASE64.decode(data.as_bytes()).unwrap_or_default().into()),
                (None, None) => return None,
            };
            if *post {
                s.post(message, now);
            } else {
                drop(s.send(message, now));
            }
        }
        Entry::Request { method, params, timeout } => {
            let timeout = timeout.map(|(secs, nanos)| Duration::new(secs, nanos));
            drop(s.request(method, params.as_deref(), timeout, now));
        }
        Entry::RequestWithId { id, method, params, timeout } => {
            let timeout = timeout.map(|(secs, nanos)| Duration::new(secs, nanos));
            drop(s.request_with_id(id.clone(), method, params.as_deref(), timeout, now));
        }
        Entry::RequestMessage { text, b64, timeout } => {
            let message = match (text, b64) {
                (Some(text), _) => Message::Text(text.as_str().into()),
                (None, Some(data)) => Message::Binary(BASE64.decode(data.as_bytes()).unwrap_or_default().into()),
                (None, None) => return None,
            };
            let timeout = timeout.map(|(secs, nanos)| Duration::new(secs, nanos));
            drop(s.request_message(message, timeout, now));
        }
        Entry::Subscribe { channels } => {
            drop(s.subscribe(&channels.iter().map(String::as_str).collect::<Vec<_>>(), now))
        }
        Entry::SubscribeWith { channels, options } => {
            drop(s.subscribe_with(&channels.iter().map(String::as_str).collect::<Vec<_>>(), options.options(), now))
        }
        Entry::Unsubscribe { channels } => {
            drop(s.unsubscribe(&channels.iter().map(String::as_str).collect::<Vec<_>>(), now))
        }
        Entry::Ping { b64 } => drop(s.ping(&BASE64.decode(b64.as_bytes()).unwrap_or_default(), now)),
        Entry::Pong { b64 } => drop(s.pong(&BASE64.decode(b64.as_bytes()).unwrap_or_default(), now)),
        Entry::Open => s.handle_transport_open(now),
        Entry::Error { kind, msg } => s.handle_transport_error(crate::io_kind::from_name(kind), msg, now),
        Entry::Tls { failure } => s.handle_tls_failure(failure.clone(), now),
        Entry::Proxy { error } => s.handle_proxy_failure(error.clone(), now),
        Entry::Eof => s.handle_eof(now),
        Entry::Read { data } => s.handle_input(data, now),
        Entry::Timeout => s.handle_timeout(now),
        Entry::Pause => s.handle_reading_paused(now),
        Entry::Resume => s.handle_reading_resumed(now),
        Entry::Written { n } => s.handle_written(*n, now),
        Entry::CaughtUp => {
            if let Some(event) = s.poll_event() {
                return Some(("no event (the consumer caught up)".into(), format!("{:?}", event_entry(&event))));
            }
        }
        _ => {}
    }
    None
}
