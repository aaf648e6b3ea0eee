//! Recording a session: every input the core saw and every output it gave,
//! for [`replay`](crate::replay) and for reading (`cargo run -p wslink-tests
//! --example recording`). What a recording holds is in [`format`](mod@format);
//! a session writes it in the [`compact`] encoding (bytes read kept raw, a
//! run of messages as one record), which `Recording::to_lines` turns into
//! JSON Lines for reading and editing.
//!
//! The header keeps what a replay needs to rebuild the session from the
//! file alone ([`settings`]): every setting, exactly, and each hook by name,
//! wslink's presets with their settings, the user's own by the name given
//! with `SessionBuilder::name_hook` (a hook set without one is recorded as
//! unnamed, and a replay from the file refuses it, naming it).
//!
//! The core only encodes records, into chunks it hands to a [`Recorder`]
//! (when the session is flushed, `Session::flush_recording`, which the
//! adapters do before each wait; at a chunk's size; when it is dropped). A
//! recorder decides where they go and must never block: a full recorder
//! drops chunks, counts their lines and says so in the file. Secrets stay
//! out: sensitive header values and the URL's query are redacted in the
//! header, and the bytes of the upgrade request (when it carries a
//! sensitive header or `headers_fn` output) and of the authenticator's
//! message are recorded as "redacted" rather than digested, and so are
//! those of `on_upgrade` messages and of an upgrade whose URL has a query.
//! Bytes the server sent are kept whole: an exact replay needs them (a
//! token the server returns is in the file). Not redacted: subprotocol
//! names (some APIs carry a token in one), and with permessage-deflate's
//! context takeover the digests of messages sent after a secret one depend
//! on it; do not record such sessions where the file could be read by
//! someone who should not guess the secret.

pub mod compact;
pub mod format;
pub mod settings;
mod tape;

pub use settings::{Hook, HookSpec};
pub(crate) use tape::Tape;

use std::sync::{Arc, Mutex};

use crate::outputs::Action;
#[cfg(feature = "record")]
use crate::{message::Message, outputs::SessionEvent};
use format::{digest, span, Entry};

/// Where a recording goes. Implementations must not block: the session
/// calls it on its driver's path.
pub trait Recorder: Send {
    /// A chunk of the recording: the header line first (with `lines` 0),
    /// then whole records ([`compact`]), `lines` of them. Keep the bytes by
    /// taking the buffer (`std::mem::take`, or swap a spare one in: the
    /// session writes the next chunk into whatever is left, cleared) or by
    /// copying them. A recorder that cannot take a chunk drops it whole,
    /// counts its `lines`, and writes a [`compact::dropped_note`] before the
    /// next chunk it takes.
    fn record(&mut self, chunk: &mut Vec<u8>, lines: u64);
}

/// A recorder that keeps the recording in memory up to `cap` bytes, then
/// drops and counts (a note of the count ends the recording: once full it
/// takes nothing more). Clones share the recording: hand one to the
/// session, read the other once the session is flushed
/// (`Session::flush_recording`) or dropped.
#[derive(Debug, Clone)]
pub struct MemoryRecorder {
    shared: Arc<Mutex<Memory>>,
}

#[derive(Debug, Default)]
struct Memory {
    bytes: Vec<u8>,
    cap: usize,
    dropped: u64,
}

impl MemoryRecorder {
    /// A recorder that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self { shared: Arc::new(Mutex::new(Memory { cap, ..Memory::default() })) }
    }

    /// The recording so far, as a file would hold it (compact), with a note
    /// of dropped lines at the end: for `Recording::parse` and `replay_file`
    /// (`Recording::to_lines` shows it as JSON Lines).
    pub fn bytes(&self) -> Vec<u8> {
        let m = self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut bytes = m.bytes.clone();
        if m.dropped > 0 {
            bytes.extend_from_slice(&compact::dropped_note(m.dropped));
        }
        bytes
    }

    /// Lines dropped because the cap was reached.
    pub fn dropped(&self) -> u64 {
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).dropped
    }
}

impl Recorder for MemoryRecorder {
    fn record(&mut self, chunk: &mut Vec<u8>, lines: u64) {
        let mut m = self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.dropped > 0 || m.bytes.len() + chunk.len() > m.cap {
            m.dropped += lines.max(1);
            return;
        }
        m.bytes.extend_from_slice(chunk);
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

/// How an event is recorded (a message as formats 1 to 3 did).
#[cfg(feature = "record")]
pub(crate) fn event_entry(event: &SessionEvent) -> Entry {
    match event {
        SessionEvent::Message(m) => message_entry(m),
        other => Entry::Event { ev: format!("{other:?}") },
    }
}

/// How a message was recorded by formats 1 to 3, one line each: kind,
/// length, digest and its first bytes (format 4 records runs,
/// [`Entry::Messages`]).
#[cfg(feature = "record")]
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
