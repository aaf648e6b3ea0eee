//! The session's side of a recording: it encodes each input and output as
//! a compact record ([`compact`](super::compact)) into a chunk, and hands
//! the chunk to the [`Recorder`] when the session is flushed
//! (`Session::flush_recording`, which the adapters call before each wait),
//! when [`CHUNK_BYTES`] have gathered, and when the session is dropped.
//!
//! Invariants:
//! - Nothing per message is allocated or formatted: a message polled
//!   (`poll_event` or `poll_messages`) only extends the open run's count and
//!   digest; the run becomes one record before the next record of any other
//!   kind, or at a flush. Bytes read are copied raw into the chunk, whose
//!   buffer is reused (or swapped for the recorder's) from chunk to chunk.
//! - Each chunk starts with a `time` record, so a chunk the recorder drops
//!   leaves the times after it right.
//! - The session never waits on the recorder (it must not block).

use std::collections::VecDeque;
use std::time::Instant;

use super::compact::Encoder;
#[cfg(feature = "record")]
use super::format::Header;
use super::format::{chain, fnv, Entry, RUN_SEED};
use super::{action_entry, Recorder};
use crate::message::Message;
use crate::outputs::{Action, SessionEvent};

/// Bytes a chunk gathers before it goes to the recorder unasked.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// The session's side of a recording: the sink, the clock origin, the chunk
/// being written, the open run of messages, the transmits not yet polled.
pub(crate) struct Tape {
    recorder: Box<dyn Recorder>,
    t0: Instant,
    /// The time of the last input, which the outputs after it have.
    t: u64,
    /// Records not yet handed over; empty, or starting with a `time` record.
    chunk: Vec<u8>,
    /// Lines in `chunk`.
    lines: u64,
    encoder: Encoder,
    /// Messages polled since the last record, and their chained digest.
    run: u64,
    run_digest: u64,
    /// The next transmit created carries a secret.
    pub(crate) secret_pending: bool,
    /// Transmits created and not yet polled, in order: length and digest
    /// (`None`: redacted).
    transmits: VecDeque<(usize, Option<u64>)>,
}

impl Tape {
    /// Starts a recording: hands the header over, as the first chunk.
    #[cfg(feature = "record")]
    pub(crate) fn start(mut recorder: Box<dyn Recorder>, header: &Header, t0: Instant) -> Self {
        let mut first = serde_json::to_vec(header).unwrap_or_default();
        first.push(b'\n');
        recorder.record(&mut first, 0);
        Self {
            recorder,
            t0,
            t: 0,
            chunk: Vec::new(),
            lines: 0,
            encoder: Encoder::default(),
            run: 0,
            run_digest: RUN_SEED,
            secret_pending: false,
            transmits: VecDeque::new(),
        }
    }

    /// Hands every record so far to the recorder (the open run first).
    pub(crate) fn flush(&mut self) {
        self.close_run();
        if self.chunk.is_empty() {
            return;
        }
        self.recorder.record(&mut self.chunk, self.lines);
        self.chunk.clear();
        self.lines = 0;
    }

    /// Before a record: the open run ends, and a new chunk starts with the time.
    fn open(&mut self) {
        if self.run > 0 {
            self.close_run();
        }
        if self.chunk.is_empty() {
            self.encoder.time(&mut self.chunk, self.t);
        }
    }

    /// After a record: counted, and the chunk handed over once large.
    fn wrote(&mut self) {
        self.lines += 1;
        if self.chunk.len() >= CHUNK_BYTES {
            self.flush();
        }
    }

    fn close_run(&mut self) {
        if self.run == 0 {
            return;
        }
        let (n, h) = (std::mem::take(&mut self.run), std::mem::replace(&mut self.run_digest, RUN_SEED));
        if self.chunk.is_empty() {
            self.encoder.time(&mut self.chunk, self.t);
        }
        Encoder::messages(&mut self.chunk, n, h);
        self.lines += 1;
    }

    fn stamp(&mut self, now: Instant) {
        self.t = u64::try_from(now.saturating_duration_since(self.t0).as_nanos()).unwrap_or(u64::MAX);
    }

    /// An input at `now`.
    pub(crate) fn input(&mut self, entry: Entry, now: Instant) {
        self.open();
        self.stamp(now);
        match entry {
            Entry::Timeout => self.encoder.timeout(&mut self.chunk, self.t),
            Entry::Written { n } => self.encoder.written(&mut self.chunk, self.t, n as u64),
            other => self.json(&other),
        }
        self.wrote();
    }

    /// Any other line, as JSON at the current time.
    fn json(&mut self, entry: &Entry) {
        #[cfg(feature = "record")]
        self.encoder.json(&mut self.chunk, self.t, entry);
        // Without the feature no tape is ever made (the builder has no `recorder`).
        #[cfg(not(feature = "record"))]
        let _ = entry;
    }

    /// Bytes read at `now`, kept raw.
    pub(crate) fn read(&mut self, bytes: &[u8], now: Instant) {
        if self.run > 0 {
            self.close_run();
        }
        if !self.chunk.is_empty() && self.chunk.len() + bytes.len() > CHUNK_BYTES {
            self.flush();
        }
        self.open();
        self.stamp(now);
        self.encoder.read(&mut self.chunk, self.t, bytes);
        self.wrote();
    }

    /// A transmit was just created (it is polled later, in order).
    pub(crate) fn transmit_created(&mut self, bytes: &[u8]) {
        let redacted = std::mem::take(&mut self.secret_pending);
        self.transmits.push_back((bytes.len(), (!redacted).then(|| fnv(bytes))));
    }

    /// An action was polled.
    pub(crate) fn action(&mut self, action: &Action) {
        self.open();
        match action {
            // A transmit's digest was taken when it was created (it knows whether it is secret).
            Action::Transmit(bytes) => {
                let (len, h) = self.transmits.pop_front().unwrap_or_else(|| (bytes.len(), Some(fnv(bytes))));
                Encoder::transmit(&mut self.chunk, len as u64, h);
            }
            other => self.json(&action_entry(other)),
        }
        self.wrote();
    }

    /// An event was polled.
    pub(crate) fn event(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::Message(m) => self.event_message(m),
            other => {
                self.open();
                self.json(&Entry::Event { ev: format!("{other:?}") });
                self.wrote();
            }
        }
    }

    /// A message was polled (by `poll_event` or in a batch by
    /// `poll_messages`): the open run takes it.
    pub(crate) fn event_message(&mut self, message: &Message) {
        self.run += 1;
        self.run_digest = chain(self.run_digest, message);
    }

    /// A `poll_event` made a held violation due.
    pub(crate) fn caught_up(&mut self) {
        self.open();
        self.json(&Entry::CaughtUp);
        self.wrote();
    }
}

impl Drop for Tape {
    fn drop(&mut self) {
        self.flush();
    }
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tape").field("t", &self.t).field("chunk", &self.chunk.len()).finish_non_exhaustive()
    }
}
