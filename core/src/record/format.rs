//! The recording's line format (version 3): one JSON object per line, the
//! header first. Inputs are the session's `handle_*` calls and commands with
//! their time; outputs are what its `poll_*` calls returned, in call order,
//! so that a replay makes the same calls at the same points.
//!
//! Earlier versions are still read. Version 2's header lacked `settings`
//! and `hooks`: a replay of it needs a builder from the caller, with the
//! recorded session's settings and hooks (`replay::replay`). Version 1 also
//! lacked `written` lines: its sessions had no write budget, and a replay of
//! one runs without it.

use std::collections::BTreeMap;

#[cfg(feature = "record")]
use serde::{Deserialize, Serialize};

use super::settings::{Hook, HookSpec, Settings};
use crate::{GapAction, SubscribeOptions, TlsFailure};

/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 3;

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
}

/// A duration as whole seconds and nanoseconds, exact for any `Duration`.
pub type Span = (u64, u32);

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
    /// Bytes read (`handle_input` or `handle_read`), base64.
    Read {
        /// The bytes, base64.
        b64: String,
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
    /// Output: any other `SessionEvent`, as `Debug` prints it.
    Event {
        /// The event.
        ev: String,
    },
    /// The recorder's note: this many lines were dropped here (it was full);
    /// a replay cannot be exact past this point.
    Dropped {
        /// Lines dropped.
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
                | Self::Event { .. }
                | Self::Dropped { .. }
        )
    }
}

/// FNV-1a 64, hex: a digest for comparing bytes, not for security.
pub(crate) fn digest(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
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

/// A duration as a [`Span`].
pub(crate) fn span(d: std::time::Duration) -> Span {
    (d.as_secs(), d.subsec_nanos())
}
