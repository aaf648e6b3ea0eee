//! Recording a session: every input the core saw and every output it gave,
//! as JSON Lines (see [`format`](mod@format)), for [`replay`](crate::replay) and for
//! reading (`cargo run -p wslink-tests --example recording`).
//!
//! The header keeps what a replay needs to rebuild the session from the
//! file alone ([`settings`]): every setting, exactly, and each hook by name,
//! wslink's presets with their settings, the user's own by the name given
//! with `SessionBuilder::name_hook` (a hook set without one is recorded as
//! unnamed, and a replay from the file refuses it, naming it).
//!
//! The core only formats lines and hands them to a [`Recorder`], which
//! decides where they go and must never block: a full recorder drops lines,
//! counts them and says so in the file. Secrets stay out: sensitive header
//! values and the URL's query are redacted in the header, and the bytes of
//! the upgrade request (when it carries a sensitive header or `headers_fn`
//! output) and of the authenticator's message are recorded as "redacted"
//! rather than digested, and so are those of `on_upgrade` messages and of an
//! upgrade whose URL has a query. Bytes the server sent are kept whole: an
//! exact replay needs them (a token the server returns is in the file).
//! Not redacted: subprotocol names (some APIs carry a token in one), and
//! with permessage-deflate's context takeover the digests of messages sent
//! after a secret one depend on it; do not record such sessions where the
//! file could be read by someone who should not guess the secret.

pub mod format;
pub mod settings;

pub use settings::{Hook, HookSpec};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use std::fmt::Write as _;

use data_encoding::BASE64;

use crate::message::Message;
use crate::outputs::{Action, SessionEvent};
#[cfg(feature = "record")]
use format::Header;
use format::{digest, span, Entry, Line};

/// Where recorded lines go. Implementations must not block: the session
/// calls it on its driver's path.
pub trait Recorder: Send {
    /// One line of JSON, without its newline.
    fn record(&mut self, line: String);
}

/// A recorder that keeps lines in memory up to `cap` bytes, then drops and
/// counts (noting the count once room returns, which it does not: the cap is
/// for the whole recording). Clones share the lines: hand one to the session,
/// read the other.
#[derive(Debug, Clone)]
pub struct MemoryRecorder {
    shared: Arc<Mutex<MemoryLines>>,
}

#[derive(Debug, Default)]
struct MemoryLines {
    lines: Vec<String>,
    bytes: usize,
    cap: usize,
    dropped: u64,
}

impl MemoryRecorder {
    /// A recorder that keeps at most `cap` bytes of lines.
    pub fn new(cap: usize) -> Self {
        Self { shared: Arc::new(Mutex::new(MemoryLines { cap, ..MemoryLines::default() })) }
    }

    /// The recording so far, one line each, with a note of dropped lines at the end.
    #[cfg(feature = "record")]
    pub fn text(&self) -> String {
        let m = self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut text = m.lines.join("\n");
        text.push('\n');
        if m.dropped > 0 {
            let note = Line { t: 0, entry: Entry::Dropped { count: m.dropped } };
            text.push_str(&serde_json::to_string(&note).unwrap_or_default());
            text.push('\n');
        }
        text
    }

    /// Lines dropped because the cap was reached.
    pub fn dropped(&self) -> u64 {
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).dropped
    }
}

impl Recorder for MemoryRecorder {
    fn record(&mut self, line: String) {
        let mut m = self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.bytes + line.len() + 1 > m.cap {
            m.dropped += 1;
            return;
        }
        m.bytes += line.len() + 1;
        m.lines.push(line);
    }
}

/// The session's side of a recording: the sink, the clock origin, and what
/// a transmit about to be polled carries.
pub(crate) struct Tape {
    recorder: Box<dyn Recorder>,
    t0: Instant,
    /// The time of the last input, stamped on the outputs after it.
    t: u64,
    /// The next transmit created carries a secret.
    pub(crate) secret_pending: bool,
    /// Digests of transmits created and not yet polled, in order.
    transmits: VecDeque<Entry>,
}

impl Tape {
    /// Starts a recording: writes the header.
    #[cfg(feature = "record")]
    pub(crate) fn start(mut recorder: Box<dyn Recorder>, header: &Header, t0: Instant) -> Self {
        recorder.record(serde_json::to_string(header).unwrap_or_default());
        Self { recorder, t0, t: 0, secret_pending: false, transmits: VecDeque::new() }
    }

    fn write(&mut self, entry: Entry) {
        let line = Line { t: self.t, entry };
        // Serialising these plain structures cannot fail.
        #[cfg(feature = "record")]
        self.recorder.record(serde_json::to_string(&line).unwrap_or_default());
        // Without the feature no tape is ever made (the builder has no `recorder`).
        #[cfg(not(feature = "record"))]
        drop(line);
    }

    /// An input at `now`.
    pub(crate) fn input(&mut self, entry: Entry, now: Instant) {
        self.t = u64::try_from(now.saturating_duration_since(self.t0).as_nanos()).unwrap_or(u64::MAX);
        self.write(entry);
    }

    /// Bytes read at `now`. The line is written by hand, base64 straight
    /// into it (it needs no JSON escaping): on a flood this is most of the
    /// recording's work.
    pub(crate) fn read(&mut self, bytes: &[u8], now: Instant) {
        self.t = u64::try_from(now.saturating_duration_since(self.t0).as_nanos()).unwrap_or(u64::MAX);
        let mut line = String::with_capacity(40 + BASE64.encode_len(bytes.len()));
        let _ = write!(line, r#"{{"t":{},"k":"read","b64":""#, self.t);
        BASE64.encode_append(bytes, &mut line);
        line.push_str("\"}");
        self.recorder.record(line);
    }

    /// A transmit was just created (it is polled later, in order).
    pub(crate) fn transmit_created(&mut self, bytes: &[u8]) {
        let redacted = std::mem::take(&mut self.secret_pending);
        let h = if redacted { String::new() } else { digest(bytes) };
        self.transmits.push_back(Entry::Transmit { len: bytes.len(), h, redacted });
    }

    /// An action was polled.
    pub(crate) fn action(&mut self, action: &Action) {
        // A transmit's entry was made when it was created (it knows whether it is secret).
        let created = matches!(action, Action::Transmit(_)).then(|| self.transmits.pop_front()).flatten();
        let entry = created.unwrap_or_else(|| action_entry(action));
        self.write(entry);
    }

    /// An event was polled.
    pub(crate) fn event(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::Message(m) => self.event_message(m),
            other => self.write(event_entry(other)),
        }
    }

    /// A message was polled in a batch (`poll_messages`); written by hand,
    /// as a flood writes one per message (the same line serde would write).
    pub(crate) fn event_message(&mut self, message: &Message) {
        let Entry::Msg { text, len, h, head } = message_entry(message) else { return };
        let mut line = String::with_capacity(120);
        let _ = write!(line, r#"{{"t":{},"k":"msg","text":{text},"len":{len},"h":"{h}","head":"{head}"}}"#, self.t);
        self.recorder.record(line);
    }

    /// A `poll_event` made a held violation due.
    pub(crate) fn caught_up(&mut self) {
        self.write(Entry::CaughtUp);
    }
}

/// How an action is recorded (a transmit as a digest, not secret).
pub(crate) fn action_entry(action: &Action) -> Entry {
    match action {
        Action::OpenTransport { host, port, tls } => {
            Entry::OpenTransport { host: host.clone(), port: *port, tls: *tls }
        }
        Action::Transmit(bytes) => Entry::Transmit { len: bytes.len(), h: digest(bytes), redacted: false },
        Action::CloseTransport { wait_for_server } => Entry::CloseTransport { wait: wait_for_server.map(span) },
    }
}

/// How an event is recorded.
pub(crate) fn event_entry(event: &SessionEvent) -> Entry {
    match event {
        SessionEvent::Message(m) => message_entry(m),
        other => Entry::Event { ev: format!("{other:?}") },
    }
}

/// How a message is recorded: kind, length, digest and its first bytes.
pub(crate) fn message_entry(m: &Message) -> Entry {
    let (text, bytes): (bool, &[u8]) = match m {
        Message::Text(t) => (true, t.as_bytes()),
        Message::Binary(b) => (false, b),
    };
    // Printable ASCII but the two characters JSON escapes: readable, and
    // written into a line as it is.
    let printable =
        |b: &u8| if b.is_ascii_graphic() && *b != b'"' && *b != b'\\' || *b == b' ' { *b as char } else { '.' };
    let head = bytes[..bytes.len().min(48)].iter().map(printable).collect();
    Entry::Msg { text, len: bytes.len(), h: digest(bytes), head }
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tape").field("t", &self.t).finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "record"))]
mod tests {
    use super::*;

    #[test]
    fn hand_written_lines_read_back_as_serde_writes_them() {
        let tape = MemoryRecorder::new(1 << 20);
        #[allow(clippy::disallowed_methods)] // the fake clock's origin
        let t0 = Instant::now();
        let header = Header {
            wslink_recording: format::FORMAT_VERSION,
            wslink: "0".into(),
            url: "ws://h/".into(),
            config: String::new(),
            seed: String::new(),
            settings: None,
            hooks: std::collections::BTreeMap::new(),
        };
        let mut t = Tape::start(Box::new(tape.clone()), &header, t0);
        let nasty = Message::Binary(bytes::Bytes::from_static(b"a\"b\\c\x00\xff\n{}"));
        t.read(b"\x81\x02hi\xff", t0 + std::time::Duration::from_nanos(5));
        t.event_message(&nasty);
        let text = tape.text();
        let lines: Vec<Line> = text.lines().skip(1).map(|l| serde_json::from_str(l).expect(l)).collect();
        assert_eq!(lines[0], Line { t: 5, entry: Entry::Read { b64: BASE64.encode(b"\x81\x02hi\xff") } });
        assert_eq!(lines[1], Line { t: 5, entry: message_entry(&nasty) });
    }
}
