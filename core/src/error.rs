//! Typed errors of the connection layer.
//!
//! Two families are kept apart, as rustls and wsproto do: faults caused by the
//! peer or the network ([`ProtocolError`], [`HandshakeError`], gathered in
//! [`ConnectionError`]) arrive as events, never as panics; misuse by the caller
//! ([`ConfigError`], [`UrlError`], [`SendError`]) is returned as `Err` from the
//! call that made it. Each variant's doc states the rule that produced it.

use crate::CloseCode;

/// A `ws://` or `wss://` URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The text is not a URI at all (as parsed by the `http` crate).
    #[error("invalid URL: {0}")]
    Invalid(String),
    /// Only `ws` and `wss` can be connected to.
    #[error("unsupported URL scheme {0:?}: use ws:// or wss://")]
    UnsupportedScheme(String),
    /// The URL names no host.
    #[error("the URL has no host")]
    MissingHost,
    /// Credentials in the URL are not sent anywhere; pass an `Authorization` header instead.
    #[error("user information in the URL is not supported; send an Authorization header")]
    UserInfo,
    /// RFC 6455 §3: a WebSocket URI has no fragment.
    #[error("a WebSocket URL must not have a #fragment")]
    Fragment,
    /// The port is 0, or not a number below 65536.
    #[error("invalid port {0:?}")]
    InvalidPort(String),
}

/// A configuration or request the caller built that cannot be used.
///
/// Returned when the connection is built, so a bad value never reaches the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL is unusable.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A header name must be an RFC 7230 token (no spaces, colons or control bytes).
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    /// A header value must not contain CR, LF or NUL, which could inject headers.
    #[error("invalid value for header {name:?}: CR, LF and NUL are not allowed")]
    InvalidHeaderValue {
        /// The header whose value was refused.
        name: String,
    },
    /// The handshake writes this header itself.
    #[error("header {0:?} is set by the handshake and cannot be given")]
    ReservedHeader(String),
    /// A subprotocol must be a non-empty RFC 7230 token.
    #[error("invalid subprotocol {0:?}")]
    InvalidSubprotocol(String),
    /// An extension offer must be non-empty and free of CR, LF and NUL.
    #[error("invalid extension offer {0:?}")]
    InvalidExtensionOffer(String),
    /// permessage-deflate is offered through `ConnectionConfig::deflate`, which
    /// also speaks it; a raw offer would be accepted and then not understood.
    #[error("offer permessage-deflate through `ConnectionConfig::deflate`, not as a raw extension offer")]
    RawDeflateOffer,
    /// A numeric setting is out of range.
    #[error("invalid value for `{field}`: {reason}")]
    InvalidValue {
        /// The configuration field, as named in the config struct.
        field: &'static str,
        /// What the field must satisfy.
        reason: &'static str,
    },
}

/// The caller asked for something the connection cannot do in its current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Messages can be sent only once the handshake has completed.
    #[error("the connection is not open yet")]
    NotOpen,
    /// A close frame was sent or received; RFC 6455 §5.5.1 forbids data after it.
    #[error("the connection is closing or closed")]
    Closed,
    /// RFC 6455 §5.5: control frame payloads are at most 125 bytes.
    #[error("control frame payload of {0} bytes exceeds 125")]
    ControlPayloadTooLong(usize),
    /// The close code may not be sent (1005, 1006, 1015, reserved or out of range).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// The close reason must fit in 123 bytes beside the 2-byte code.
    #[error("close reason of {0} bytes exceeds 123")]
    CloseReasonTooLong(usize),
}

/// The server's handshake response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The server answered with a status other than 101.
    #[error("upgrade refused: {}", .0)]
    Refused(Box<RefusedUpgrade>),
    /// The response head did not end within the configured bound.
    #[error("handshake response head exceeds {limit} bytes")]
    ResponseTooLarge {
        /// `ConnectionConfig::max_response_head`.
        limit: usize,
    },
    /// The response is not valid HTTP/1.1 (as `httparse` reads it).
    #[error("malformed handshake response: {0}")]
    Malformed(String),
    /// RFC 6455 §4.1: the response must be HTTP/1.1.
    #[error("handshake response is not HTTP/1.1")]
    HttpVersion,
    /// RFC 6455 §4.1: `Upgrade` must name `websocket`.
    #[error("missing or wrong Upgrade header")]
    UpgradeHeader,
    /// RFC 6455 §4.1: `Connection` must contain the token `Upgrade`.
    #[error("missing or wrong Connection header")]
    ConnectionHeader,
    /// RFC 6455 §4.1: `Sec-WebSocket-Accept` must be the hash of our key.
    #[error("missing or wrong Sec-WebSocket-Accept")]
    AcceptKey,
    /// The server chose a subprotocol we did not offer, or several.
    #[error("server chose subprotocol {0:?}, which was not offered")]
    UnofferedSubprotocol(String),
    /// The server accepted an extension we did not offer.
    #[error("server accepted extension {0:?}, which was not offered")]
    UnofferedExtension(String),
    /// A header that must appear once appeared more than once.
    #[error("header {0} appears more than once")]
    DuplicateHeader(&'static str),
    /// The server's permessage-deflate answer breaks our offer (RFC 7692 §7.1).
    #[error("permessage-deflate: {0}")]
    Deflate(#[from] DeflateNegotiationError),
}

/// How a server's permessage-deflate answer broke the offer (RFC 7692 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeflateNegotiationError {
    /// A parameter RFC 7692 does not define.
    #[error("unknown parameter {0:?}")]
    UnknownParameter(String),
    /// A parameter given twice.
    #[error("parameter {0:?} given twice")]
    DuplicateParameter(String),
    /// A flag with a value, or a window size that is not a number from 8 to 15.
    #[error("invalid value {value:?} for {parameter:?}")]
    InvalidValue {
        /// The parameter's name as the server wrote it.
        parameter: String,
        /// The value as the server wrote it.
        value: String,
    },
    /// A server window larger than the `server_max_window_bits` we asked for:
    /// our inflater would not hold it. (A client window above our offer is
    /// taken instead; see `DeflateParams::client_window_over_granted`.)
    #[error("{parameter} of {bits} exceeds the offer")]
    WindowAboveOffer {
        /// The parameter's name as the server wrote it.
        parameter: String,
        /// The server's value.
        bits: u8,
    },
    /// We asked the server for this and it did not grant it (it must decline instead).
    #[error("{0} was asked for and not granted")]
    NotGranted(&'static str),
    /// The extension was accepted more than once.
    #[error("accepted more than once")]
    AcceptedTwice,
}

/// Response headers as `Debug` shows them: the values of those that carry
/// credentials or session state (`Set-Cookie`, `Cookie`, `Authorization`,
/// `Proxy-Authorization`) are `<redacted>`; the rest are shown as sent.
pub(crate) struct ShownHeaders<'a>(pub(crate) &'a [(String, String)]);

/// Header names whose values `ShownHeaders` hides.
const SECRET_HEADERS: [&str; 4] = ["set-cookie", "cookie", "authorization", "proxy-authorization"];

impl std::fmt::Debug for ShownHeaders<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.0.iter().map(|(name, value)| {
            let secret = SECRET_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s));
            (name, if secret { "<redacted>" } else { value.as_str() })
        });
        f.debug_list().entries(shown).finish()
    }
}

/// A refused upgrade: what the server said instead of `101 Switching Protocols`.
/// Its `Debug` hides the values of headers that carry credentials (as
/// `UpgradeResponse`'s does) and shows the body's length, not its bytes.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefusedUpgrade {
    /// The HTTP status code, for example 401 or 429.
    pub status: u16,
    /// The reason phrase, possibly empty.
    pub reason: String,
    /// Response headers, values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The start of the body, at most `ConnectionConfig::refusal_body_limit` bytes.
    pub body: Vec<u8>,
}

impl RefusedUpgrade {
    /// A refusal with this status, reason phrase, headers and start of the body.
    pub fn new(status: u16, reason: impl Into<String>, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        Self { status, reason: reason.into(), headers, body }
    }
}

impl std::fmt::Debug for RefusedUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusedUpgrade")
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("headers", &ShownHeaders(&self.headers))
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

impl std::fmt::Display for RefusedUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

/// The peer broke RFC 6455; the connection is failed with [`ProtocolError::close_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RFC 6455 §5.1: a server must not mask its frames.
    #[error("the server sent a masked frame")]
    MaskedFrame,
    /// RFC 6455 §5.2: RSV bits must be 0 unless an extension defines them.
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    /// RFC 6455 §5.2: opcodes 3-7 and 11-15 are reserved.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// RFC 6455 §5.5: control frames must not be fragmented.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// RFC 6455 §5.5: control frame payloads are at most 125 bytes.
    #[error("control frame payload of {0} bytes exceeds 125")]
    ControlFrameTooLong(u64),
    /// RFC 6455 §5.4: a continuation frame with no message to continue.
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// RFC 6455 §5.4: a new data frame while a fragmented message is unfinished.
    #[error("new data frame while a fragmented message is unfinished")]
    ExpectedContinuation,
    /// RFC 6455 §8.1: text messages must be valid UTF-8.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// RFC 6455 §5.5.1: a close payload is empty or at least 2 bytes.
    #[error("close frame payload of 1 byte")]
    InvalidClosePayload,
    /// RFC 6455 §7.4: the close code may not be sent on the wire.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// RFC 6455 §5.5.1: the close reason must be UTF-8.
    #[error("close reason is not valid UTF-8")]
    InvalidCloseReason,
    /// A frame longer than `ConnectionConfig::max_frame_size`.
    #[error("frame of {size} bytes exceeds the limit of {limit}")]
    FrameTooLarge {
        /// The length the frame header announced.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A message longer than `ConnectionConfig::max_message_size`.
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    MessageTooLarge {
        /// The length the message would reach.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// RFC 7692 §7.2.2: a compressed message that does not inflate (corrupt
    /// deflate data, or data after the stream's final block).
    #[error("compressed message does not inflate")]
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code RFC 6455 §7.4.1 prescribes for this violation.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCloseReason => CloseCode::Invalid,
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::Size,
            _ => CloseCode::Protocol,
        }
    }
}

/// Why a connection ended other than by a clean close handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The opening handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer broke the protocol and the connection was failed.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The handshake did not complete within `ConnectionConfig::handshake_timeout`.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The peer did not answer our close frame within `ConnectionConfig::close_timeout`.
    #[error("close handshake timed out")]
    CloseTimeout,
    /// The transport ended without a close frame.
    #[error("connection closed by peer without a close frame{}", if *.mid_frame { " (in the middle of a frame)" } else { "" })]
    UnexpectedEof {
        /// Whether part of a frame or message had been received.
        mid_frame: bool,
    },
    /// The caller reported a transport failure (reset, TLS error ...).
    #[error("the transport failed ({kind}): {message}")]
    Transport {
        /// The I/O error kind the adapter saw.
        kind: std::io::ErrorKind,
        /// The adapter's description.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_map_to_the_rfc_close_codes() {
        let cases = [
            (ProtocolError::MaskedFrame, 1002),
            (ProtocolError::ReservedBits, 1002),
            (ProtocolError::ReservedOpcode(3), 1002),
            (ProtocolError::FragmentedControlFrame, 1002),
            (ProtocolError::ControlFrameTooLong(126), 1002),
            (ProtocolError::UnexpectedContinuation, 1002),
            (ProtocolError::ExpectedContinuation, 1002),
            (ProtocolError::InvalidClosePayload, 1002),
            (ProtocolError::InvalidCloseCode(1005), 1002),
            (ProtocolError::InvalidUtf8, 1007),
            (ProtocolError::InvalidCloseReason, 1007),
            (ProtocolError::FrameTooLarge { size: 2, limit: 1 }, 1009),
            (ProtocolError::MessageTooLarge { size: 2, limit: 1 }, 1009),
            (ProtocolError::InvalidCompressedData, 1002),
        ];
        for (error, code) in cases {
            assert_eq!(u16::from(error.close_code()), code, "{error}");
        }
    }

    #[test]
    fn messages_name_the_problem() {
        let refused = HandshakeError::Refused(Box::new(RefusedUpgrade {
            status: 429,
            reason: "Too Many Requests".into(),
            headers: vec![],
            body: vec![],
        }));
        assert_eq!(refused.to_string(), "upgrade refused: 429 Too Many Requests");
        let eof = ConnectionError::UnexpectedEof { mid_frame: true };
        assert_eq!(eof.to_string(), "connection closed by peer without a close frame (in the middle of a frame)");
        let field = ConfigError::InvalidValue { field: "close_timeout", reason: "must be positive" };
        assert_eq!(field.to_string(), "invalid value for `close_timeout`: must be positive");
    }
}
