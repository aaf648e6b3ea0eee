//! What a recording holds (format 4): a header, then one [`Line`] per
//! input and output. Inputs are the session's `handle_*` calls and commands
//! with their time; outputs are what its `poll_*` calls returned, in call
//! order, so that a replay makes the same calls at the same points.
//!
//! Two encodings carry the same lines, named by the header's `encoding`:
//! - [`Encoding::Compact`], what a session writes: the header as one line of
//!   JSON, then binary records ([`compact`](super::compact)): bytes read kept
//!   raw with their length, times as deltas, and a run of messages as one
//!   record (their count and a chained digest, [`Entry::Messages`]).
//! - [`Encoding::Lines`], JSON Lines: one JSON object per line, the header
//!   first. For reading and editing by hand; `Recording::to_lines` and
//!   `to_compact` convert either way, and both parse back to the same lines.
//!   Formats 1 to 3 were written only this way, with a line per message
//!   ([`Entry::Msg`]).
//!
//! Earlier versions are still read. Version 3 wrote a line per message
//! and only JSON Lines. Version 2's header lacked `settings` and `hooks`: a
//! replay of it needs a builder from the caller, with the recorded
//! session's settings and hooks (`replay::replay`). Version 1 also lacked
//! `written` lines: its sessions had no write budget, and a replay of one
//! runs without it.

use std::collections::BTreeMap;

#[cfg(feature = "record")]
use serde::{Deserialize, Serialize};

pub(crate) use super::settings::span;
pub use super::settings::Span;
use super::settings::{Hook, HookSpec, Settings};
use crate::message::Message;
use crate::{GapAction, SubscribeOptions, TlsFailure};

/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 4;

/// How the lines after a recording's header are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "record", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "record", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Encoding {
    /// One JSON object per line (formats 1 to 3 were only written this way).
    #[default]
    Lines,
    /// Binary records ([`compact`](super::compact)), what a session writes.
    Compact,
}

impl Encoding {
    /// Whether this is [`Encoding::Lines`], the default (left out of the header).
    pub fn is_lines(&self) -> bool {
        *self == Self::Lines
    }
}

/// The first line of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "record", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub struct Header {
    /// Always [`FORMAT_VERSION`] when written by this crate.
    pub wslink_recording: u32,
    /// The wslink-core version that wrote it.
    pub wslink: String,
    /// The URL, its query (which may carry a token) redacted.
    pub url: String,
    /// Formats 1 and 2: the session's settings as `Debug` prints them,
    /// sensitive header values redacted. Empty (left out) from format 3,
    /// which keeps `settings` instead.
    #[cfg_attr(feature = "record", serde(default, skip_serializing_if = "String::is_empty"))]
    pub config: String,
    /// The seed of the session's random source (hex), so a replay draws the
    /// same masking keys, handshake nonces and backoff jitter.
    pub seed: String,
    /// Every plain setting of the session, exactly (format 3; `None` in
    /// older recordings, whose replay needs the caller's builder).
    #[cfg_attr(feature = "record", serde(default, skip_serializing_if = "Option::is_none"))]
    pub settings: Option<Settings>,
    /// Each hook the session had (format 3), by name: a preset with its
    /// settings, a name the user gave, or `None` (JSON `null`) for a hook
    /// set without a name, which a replay from the file cannot rebuild.
    #[cfg_attr(feature = "record", serde(default, skip_serializing_if = "BTreeMap::is_empty"))]
    pub hooks: BTreeMap<Hook, Option<HookSpec>>,
    /// How the lines after the header are written (`"encoding":"compact"`;
    /// left out for JSON Lines).
    #[cfg_attr(feature = "record", serde(default, skip_serializing_if = "Encoding::is_lines"))]
    pub encoding: Encoding,
}

/// One line after the header: when, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "record", derive(Serialize, Deserialize))]
pub struct Line {
    /// Nanoseconds since the session was built, at the input (outputs carry
    /// the time of the input before them).
    pub t: u64,
    /// What happened.
    #[cfg_attr(feature = "record", serde(flatten))]
    pub entry: Entry,
}

/// What a line records. Inputs first, then outputs, then the recorder's notes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "record", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "record", serde(tag = "k", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Entry {
    /// `Session::connect`.
    Connect,
    /// `Session::reconnect`.
    Reconnect,
    /// `Session::close`.
    Close {
        /// The close code.
        code: u16,
        /// The reason.
        reason: String,
    },
    /// `Session::send` (or `post` when `post` is true) of a text (`text`) or
    /// binary (`b64`, base64) message.
    Send {
        /// The text, for a text message.
        #[cfg_attr(feature = "record", serde(default, skip_serializing_if = "Option::is_none"))]
        text: Option<String>,
        /// The payload in base64, for a binary message.
        #[cfg_attr(feature = "record", serde(default, skip_serializing_if = "Option::is_none"))]
        b64: Option<String>,
        /// Handed over with `post` rather than `send`.
        #[cfg_attr(feature = "record", serde(default))]
        post: bool,
    },
    /// `Session::request`.
    Request {
        /// The method.
        method: String,
        /// The parameters, as JSON text.
        params: Option<String>,
        /// The request's own timeout, if given.
        timeout: Option<Span>,
    },
    /// `Session::request_with_id`.
    RequestWithId {
        /// The caller's wire id.
        id: crate::RequestId,
        /// The method.
        method: String,
        /// The parameters, as JSON text.
        params: Option<String>,
        /// The request's own timeout, if given.
        timeout: Option<Span>,
    },
    /// `Session::request_message`: the caller's whole request, a text
    /// (`text`) or binary (`b64`, base64) message.
    RequestMessage {
        /// The text, for a text message.
        #[cfg_attr(feature = "record", serde(default, skip_serializing_if = "Option::is_none"))]
        text: Option<String>,
        /// The payload in base64, for a binary message.
        #[cfg_attr(feature = "record", serde(default, skip_serializing_if = "Option::is_none"))]
        b64: Option<String>,
        /// The request's own timeout, if given.
        timeout: Option<Span>,
    },
    /// `Session::subscribe`.
    Subscribe {
        /// The channels.
        channels: Vec<String>,
    },
    /// `Session::subscribe_with`.
    SubscribeWith {
        /// The channels.
        channels: Vec<String>,
        /// The options.
        options: SubscribeLine,
    },
    /// `Session::unsubscribe`.
    Unsubscribe {
        /// The channels.
        channels: Vec<String>,
    },
    /// `Session::ping`.
    Ping {
        /// The payload, base64.
        b64: String,
    },
    /// `Session::pong`.
    Pong {
        /// The payload, base64.
        b64: String,
    },
    /// `handle_transport_open`.
    Open,
    /// `handle_transport_error`.
    Error {
        /// The I/O error kind, as `Debug` prints it.
        kind: String,
        /// The description.
        msg: String,
    },
    /// `handle_tls_failure`.
    Tls {
        /// The failure.
        failure: TlsFailure,
    },
    /// `handle_proxy_failure`.
    Proxy {
        /// The failure.
        error: crate::proxy::ProxyError,
    },
    /// `handle_eof`.
    Eof,
    /// Bytes read (`handle_input` or `handle_read`): raw in the compact
    /// encoding, base64 (`"b64"`) in JSON Lines.
    Read {
        /// The bytes.
        #[cfg_attr(feature = "record", serde(rename = "b64", with = "base64_bytes"))]
        data: Vec<u8>,
    },
    /// `handle_timeout`.
    Timeout,
    /// `handle_reading_paused`.
    Pause,
    /// `handle_reading_resumed`.
    Resume,
    /// `handle_written`.
    Written {
        /// Bytes written.
        n: usize,
    },
    /// A `poll_event` that returned `None` while a protocol violation waited
    /// behind taken messages: it made the violation due.
    CaughtUp,
    /// Output: `Action::OpenTransport`.
    OpenTransport {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// TLS.
        tls: bool,
    },
    /// Output: `Action::Transmit`, as its length and FNV-1a digest: the bytes
    /// are the client's own (masked with keys from the seed), so a replay
    /// reproduces them exactly. `redacted` when they carry a secret (the
    /// upgrade with sensitive headers, the authenticator's message): then
    /// only their presence is compared.
    Transmit {
        /// Bytes.
        len: usize,
        /// FNV-1a 64 of the bytes, hex (empty when redacted).
        h: String,
        /// Carries a secret.
        #[cfg_attr(feature = "record", serde(default))]
        redacted: bool,
    },
    /// Output: `Action::CloseTransport`.
    CloseTransport {
        /// How long to wait for the server's end of stream.
        wait: Option<Span>,
    },
    /// Output: a `SessionEvent::Message`, as its kind, length, digest and first bytes.
    Msg {
        /// Text (else binary).
        text: bool,
        /// Bytes.
        len: usize,
        /// FNV-1a 64 of the payload, hex.
        h: String,
        /// The first bytes, for reading (lossy UTF-8).
        head: String,
    },
    /// Output (format 4): `n` messages in a row, each a
    /// `SessionEvent::Message` (from `poll_event` or `poll_messages`), as
    /// their count and one digest chained over each one's kind, length and
    /// payload ([`chain`]). Everything in them was decoded from the bytes
    /// read, which the recording keeps, so this is what a replay needs to
    /// find a divergence: it polls `n` events, each must be a message, and
    /// their digest must be `h`. A difference is found at the run (the
    /// record says which run, not which message in it).
    Messages {
        /// How many.
        n: u64,
        /// The chained digest ([`chain`] from [`RUN_SEED`]), hex.
        h: String,
    },
    /// Output: any other `SessionEvent`, as `Debug` prints it.
    Event {
        /// The event.
        ev: String,
    },
    /// The recorder's note: this many lines (records) were dropped here (it
    /// was full); a replay cannot be exact past this point.
    Dropped {
        /// Lines dropped (one record of the compact encoding is one line).
        count: u64,
    },
}

impl Entry {
    /// Whether this line is an input to the session (else an output or a note).
    pub fn is_input(&self) -> bool {
        !matches!(
            self,
            Self::OpenTransport { .. }
                | Self::Transmit { .. }
                | Self::CloseTransport { .. }
                | Self::Msg { .. }
                | Self::Messages { .. }
                | Self::Event { .. }
                | Self::Dropped { .. }
        )
    }

    /// Checks what the types cannot: base64 payloads, exact durations, one
    /// payload per message, a digest of 16 hex digits.
    #[cfg(feature = "record")]
    pub(crate) fn check(&self) -> Result<(), String> {
        use data_encoding::BASE64;
        let b64 = |s: &str| BASE64.decode(s.as_bytes()).map(drop).map_err(|e| format!("bad base64: {e}"));
        let span = |s: &Option<(u64, u32)>| match s {
            Some((_, nanos)) if *nanos >= 1_000_000_000 => Err(format!("{nanos} nanoseconds is not under a second")),
            _ => Ok(()),
        };
        match self {
            Self::Ping { b64: data } | Self::Pong { b64: data } => b64(data),
            Self::Send { text: None, b64: Some(data), .. } => b64(data),
            Self::Send { text: Some(_), b64: None, .. } => Ok(()),
            Self::Send { .. } => Err("a send needs exactly one of text and b64".into()),
            Self::RequestMessage { text: None, b64: Some(data), timeout } => b64(data).and(span(timeout)),
            Self::RequestMessage { text: Some(_), b64: None, timeout } => span(timeout),
            Self::RequestMessage { .. } => Err("a request message needs exactly one of text and b64".into()),
            Self::Request { timeout, .. } | Self::RequestWithId { timeout, .. } => span(timeout),
            Self::CloseTransport { wait } => span(wait),
            Self::Messages { h, .. } if unhex(h).is_none() => Err(format!("digest {h:?} is not 16 hex digits")),
            _ => Ok(()),
        }
    }
}

/// FNV-1a 64, hex: a digest for comparing bytes, not for security.
pub(crate) fn digest(bytes: &[u8]) -> String {
    hex(fnv(bytes))
}

/// FNV-1a 64 of `bytes`.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A digest as a recording writes it: 16 lowercase hex digits.
pub(crate) fn hex(h: u64) -> String {
    format!("{h:016x}")
}

/// A digest written by [`hex`], back (`None` for anything else).
#[cfg(feature = "record")]
pub(crate) fn unhex(h: &str) -> Option<u64> {
    let lower = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    (h.len() == 16 && h.bytes().all(lower)).then(|| u64::from_str_radix(h, 16).ok()).flatten()
}

/// Where a run's digest starts ([`Entry::Messages`]).
pub const RUN_SEED: u64 = 0x243f_6a88_85a3_08d3;

/// The digest of a run of messages ([`Entry::Messages`]) after one more:
/// `h` chained with the message's kind, length and payload. 64 bits, two
/// multiply-rotate lanes over 32 bytes at a time: cheap enough to run on
/// every message of a flood (a few cycles per 32 bytes). For finding
/// divergences, not for security.
pub fn chain(h: u64, message: &Message) -> u64 {
    const M0: u64 = 0x9e37_79b9_7f4a_7c15;
    const M1: u64 = 0xc2b2_ae3d_27d4_eb4f;
    let (text, bytes): (bool, &[u8]) = match message {
        Message::Text(t) => (true, t.as_bytes()),
        Message::Binary(b) => (false, b),
    };
    let word = |b: &[u8], at: usize| {
        // Within the block: `at + 8 <= 32` for every call below.
        b.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()).map_or(0, u64::from_le_bytes)
    };
    let round = |(a, b): (u64, u64), block: &[u8]| {
        (
            (a ^ word(block, 0)).wrapping_mul(M0).rotate_left(31) ^ word(block, 8),
            (b ^ word(block, 16)).wrapping_mul(M1).rotate_left(27) ^ word(block, 24),
        )
    };
    let mut lanes = (h ^ M1, ((bytes.len() as u64) << 1 | u64::from(text)) ^ M0);
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        lanes = round(lanes, block);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 32];
        last.iter_mut().zip(rest).for_each(|(to, from)| *to = *from);
        lanes = round(lanes, &last);
    }
    let folded = u128::from(lanes.0 ^ M0) * u128::from(lanes.1.rotate_left(17) ^ M1);
    (folded as u64) ^ ((folded >> 64) as u64) ^ lanes.0
}

/// `Vec<u8>` as base64 text in JSON (the `b64` of a read).
#[cfg(feature = "record")]
mod base64_bytes {
    use data_encoding::BASE64;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        BASE64.decode(text.as_bytes()).map_err(|e| serde::de::Error::custom(format!("bad base64: {e}")))
    }
}

/// [`SubscribeOptions`] as a recording writes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "record", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub struct SubscribeLine {
    /// Subscribed again after a reconnect; `None`: the session's setting.
    #[cfg_attr(feature = "record", serde(default, skip_serializing_if = "Option::is_none"))]
    pub restore: Option<bool>,
    /// What a break in the numbering does: `tell`, `resubscribe` or `reconnect`.
    pub on_gap: String,
    /// A JSON rule's pointers: the channel's, the first number's, the last's.
    #[cfg_attr(feature = "record", serde(default, skip_serializing_if = "Option::is_none"))]
    pub sequence: Option<(Option<String>, Option<String>, String)>,
    /// The rule is a function of the user's own (a replay runs without it).
    #[cfg_attr(feature = "record", serde(default, skip_serializing_if = "std::ops::Not::not"))]
    pub function: bool,
}

impl SubscribeLine {
    pub(crate) fn of(options: &SubscribeOptions) -> Self {
        let on_gap = match options.on_gap {
            GapAction::Tell => "tell",
            GapAction::Resubscribe => "resubscribe",
            GapAction::Reconnect => "reconnect",
        };
        let spec = options.sequence.as_ref().map(|rule| rule.spec());
        Self {
            restore: options.restore,
            on_gap: on_gap.to_owned(),
            sequence: spec.flatten().map(|s| (s.channel.clone(), s.first.clone(), s.last.clone())),
            function: matches!(spec, Some(None)),
        }
    }

    /// The options again: a JSON rule rebuilt (with the `json` feature), a
    /// function's rule left out.
    #[cfg(feature = "record")]
    pub(crate) fn options(&self) -> SubscribeOptions {
        let mut options = SubscribeOptions::new().on_gap(match self.on_gap.as_str() {
            "resubscribe" => GapAction::Resubscribe,
            "reconnect" => GapAction::Reconnect,
            _ => GapAction::Tell,
        });
        options.restore = self.restore;
        #[cfg(feature = "json")]
        if let Some((channel, first, last)) = &self.sequence {
            options.sequence = Some(crate::SequenceRule::json(channel.as_deref(), first.as_deref(), last));
        }
        options
    }
}
