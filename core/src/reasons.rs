//! Why things end, named once for every layer above: why a connection
//! ended ([`DisconnectReason`]), why the session closed ([`CloseReason`]),
//! how a request ended without a response ([`RequestFailure`]), the error a
//! reconnect policy sees ([`SessionError`]) and why a command was refused
//! ([`CommandError`]); and each as a sentence, for logs and for the
//! adapters' error messages ("could not connect: the TLS handshake failed:
//! the server's certificate has expired"). `{:?}` is for debugging.
//!
//! A leaf of the session's parts: it names the wire's and the connection's
//! errors and nothing above them, so the hooks, the session's outputs and
//! the recording can all use it.

use std::fmt;

use crate::error::ConfigError;
use crate::event::Closed;
use crate::request_id::RequestId;

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The transport did not open within `connect_timeout`.
    ConnectTimeout,
    /// The transport could not be opened.
    ConnectFailed {
        /// The I/O error kind the adapter saw.
        kind: std::io::ErrorKind,
        /// The adapter's description.
        message: String,
    },
    /// The upgrade request built for this attempt was invalid (from `headers_fn`).
    BadRequest(ConfigError),
    /// The WebSocket closed: a close handshake, a refused or failed
    /// handshake, a protocol violation or the transport ending.
    Closed(Box<Closed>),
    /// A heartbeat was not answered in time.
    HeartbeatTimeout,
    /// Nothing arrived within `idle_timeout`.
    IdleTimeout,
    /// The transport took none of the bytes waiting to be written for
    /// `write_timeout`: the peer stopped reading (or the link is dead
    /// without a word). No close frame is sent; it could not be written.
    WriteTimeout,
    /// An authentication error on which `on_error` chose to end the
    /// connection (to reconnect, or to stop).
    Error(SessionError),
    /// The user called `reconnect`.
    UserReconnect,
    /// A numbered channel's numbering broke and its `GapAction` is
    /// `Reconnect`: the session connects again at once, as for `UserReconnect`.
    SequenceBroken {
        /// The channel.
        channel: String,
    },
    /// The TLS handshake failed (reported with `Session::handle_tls_failure`).
    Tls {
        /// What went wrong.
        failure: crate::TlsFailure,
        /// Whether the session had been open (`Connected`) before this
        /// attempt. A refused certificate on a session that never opened is
        /// a misconfiguration; on one that was open, a server whose
        /// certificate changed. The default policy stops on the first and
        /// reconnects on the second (see `hooks::DefaultPolicy`).
        ever_connected: bool,
    },
    /// The proxy the connection goes through failed: unreachable, refused
    /// the tunnel, wants credentials, or broke its protocol (reported with
    /// `Session::handle_proxy_failure`). Every attempt goes through the
    /// proxy again; the default policy reconnects with backoff.
    Proxy(crate::proxy::ProxyError),
}

impl DisconnectReason {
    /// Whether the connection ended in an error, rather than a clean close by
    /// the server or the user's own `reconnect`: exactly when
    /// [`SessionError::from_disconnect`] names the error.
    pub fn is_error(&self) -> bool {
        match self {
            Self::Closed(c) => !c.is_clean(),
            Self::UserReconnect | Self::SequenceBroken { .. } => false,
            _ => true,
        }
    }
}

/// How a request ended without a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestFailure {
    /// No response before its deadline.
    Timeout,
    /// It was sent, and the connection died before the response: it is not
    /// sent again, since it may have taken effect.
    ConnectionLost,
    /// It was never sent: the queue was dropped at a disconnect.
    Dropped,
    /// The session closed.
    SessionClosed,
}

/// Why the session closed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The user called `close`.
    Requested,
    /// `max_attempts` attempts in a row failed to open.
    GaveUp {
        /// The attempts in a row that failed to open.
        attempts: u32,
    },
    /// The policy or the retry function said stop.
    Stopped,
}

/// An error the session met, as [`ReconnectPolicy::on_error`](crate::hooks::ReconnectPolicy::on_error) sees it.
///
/// Two kinds arrive there. Authentication errors happen on a live
/// connection, which they do not end by themselves: `on_error` decides alone
/// (`Ignore` keeps the connection unauthenticated), and the session reports
/// them as `SessionEvent::Error` too. Every other variant is a connection, or
/// a connection attempt, that ended in an error: the session has already
/// reported it as `SessionEvent::Disconnected`, and
/// [`from_disconnect`](Self::from_disconnect) maps that event's reason to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The server refused the authentication.
    #[error("the server rejected the authentication: {0}")]
    AuthRejected(String),
    /// No answer to the authentication within `auth_timeout`.
    #[error("the authentication was not answered in time")]
    AuthTimeout,
    /// The transport could not be opened (the name did not resolve, nothing
    /// listens on the port, the network is unreachable ...).
    #[error("the transport could not be opened ({kind}): {message}")]
    ConnectFailed {
        /// The I/O error kind the adapter saw.
        kind: std::io::ErrorKind,
        /// The adapter's description.
        message: String,
    },
    /// The transport (TCP, and TLS for `wss`) did not open within `connect_timeout`.
    #[error("the transport did not open within connect_timeout")]
    ConnectTimeout,
    /// The TLS handshake failed (see [`TlsFailure`](crate::TlsFailure)).
    #[error("the TLS handshake failed: {failure}")]
    Tls {
        /// What went wrong.
        failure: crate::TlsFailure,
        /// Whether the session had been open before this attempt (as in
        /// `DisconnectReason::Tls`).
        ever_connected: bool,
    },
    /// The proxy failed (see [`ProxyError`](crate::proxy::ProxyError)):
    /// unreachable, refused the tunnel, wants credentials, or sent a bad reply.
    #[error("{0}")]
    Proxy(crate::proxy::ProxyError),
    /// The upgrade request built for this attempt was invalid: `headers_fn`
    /// returned a header that cannot be sent.
    #[error("the upgrade request is invalid: {0}")]
    BadRequest(crate::ConfigError),
    /// The server refused the WebSocket upgrade (a status other than 101,
    /// with its headers and the start of its body, in
    /// [`HandshakeError::Refused`](crate::HandshakeError::Refused)) or
    /// answered it in a way RFC 6455 does not allow (a wrong accept key, an
    /// extension not offered ...).
    #[error("the WebSocket handshake failed: {0}")]
    Handshake(crate::HandshakeError),
    /// The server did not answer the upgrade within `handshake_timeout`.
    #[error("the WebSocket handshake did not complete in time")]
    HandshakeTimeout,
    /// The server broke RFC 6455 (a reserved opcode, text that is not UTF-8,
    /// a frame over the size limit ...) and the client failed the connection.
    #[error("the server broke the WebSocket protocol: {error}")]
    Protocol {
        /// The rule broken.
        error: crate::ProtocolError,
        /// The code of the close frame the client sent: the violation's
        /// ([`ProtocolError::close_code`](crate::ProtocolError::close_code))
        /// when the connection was open, that of an earlier close if one
        /// was under way.
        sent_code: Option<crate::CloseCode>,
    },
    /// The transport ended without a close frame (close code 1006): the
    /// server, or something between, dropped the connection.
    #[error("the connection ended without a close frame{}", if *.mid_frame { " (in the middle of a frame)" } else { "" })]
    UnexpectedEof {
        /// Whether part of a frame or message had been received.
        mid_frame: bool,
    },
    /// The transport failed on an open connection (a reset, a TLS error
    /// after the handshake ...).
    #[error("the transport failed ({kind}): {message}")]
    Transport {
        /// The I/O error kind the adapter saw.
        kind: std::io::ErrorKind,
        /// The adapter's description.
        message: String,
    },
    /// The server did not answer the client's close frame within `close_timeout`.
    #[error("the server did not answer the close within close_timeout")]
    CloseTimeout,
    /// A heartbeat (protocol ping or application heartbeat) was not answered in time.
    #[error("the heartbeat was not answered in time")]
    HeartbeatTimeout,
    /// Nothing arrived within `idle_timeout`.
    #[error("nothing arrived within idle_timeout")]
    IdleTimeout,
    /// The transport took none of the bytes waiting to be written within `write_timeout`.
    #[error("the server took nothing written within write_timeout")]
    WriteTimeout,
}

impl SessionError {
    /// The error behind a disconnect, or `None` when the connection ended
    /// without one: a clean close handshake (whatever the server's close
    /// code) and the user's own `reconnect`. `Some` exactly when
    /// [`DisconnectReason::is_error`] is true. This is the one mapping the
    /// session uses before it calls [`ReconnectPolicy::on_error`](crate::hooks::ReconnectPolicy::on_error); an
    /// `on_disconnect` that wants the same typed view calls it too.
    pub fn from_disconnect(reason: &DisconnectReason) -> Option<Self> {
        use crate::ConnectionError as C;
        Some(match reason {
            DisconnectReason::ConnectTimeout => Self::ConnectTimeout,
            DisconnectReason::ConnectFailed { kind, message } => {
                Self::ConnectFailed { kind: *kind, message: message.clone() }
            }
            DisconnectReason::BadRequest(e) => Self::BadRequest(e.clone()),
            DisconnectReason::Tls { failure, ever_connected } => {
                Self::Tls { failure: failure.clone(), ever_connected: *ever_connected }
            }
            DisconnectReason::Proxy(e) => Self::Proxy(e.clone()),
            DisconnectReason::HeartbeatTimeout => Self::HeartbeatTimeout,
            DisconnectReason::IdleTimeout => Self::IdleTimeout,
            DisconnectReason::WriteTimeout => Self::WriteTimeout,
            DisconnectReason::Error(e) => e.clone(),
            DisconnectReason::UserReconnect | DisconnectReason::SequenceBroken { .. } => return None,
            DisconnectReason::Closed(closed) => match closed.error.as_ref()? {
                C::Handshake(e) => Self::Handshake(e.clone()),
                C::HandshakeTimeout => Self::HandshakeTimeout,
                C::Protocol(e) => Self::Protocol { error: e.clone(), sent_code: closed.sent_code },
                C::UnexpectedEof { mid_frame } => Self::UnexpectedEof { mid_frame: *mid_frame },
                C::Transport { kind, message } => Self::Transport { kind: *kind, message: message.clone() },
                C::CloseTimeout => Self::CloseTimeout,
            },
        })
    }
}

/// A command the session cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The session is closed (or closing at the user's request).
    #[error("the session is closed")]
    Closed,
    /// Not connected, and `queue_while_disconnected` is off.
    #[error("not connected")]
    NotConnected,
    /// The queue holds `queue_capacity` messages already.
    #[error("the outbound queue is full")]
    QueueFull,
    /// The message costs more tokens than the rate limit's bucket can ever hold.
    #[error("message cost {0} exceeds the rate limit's capacity")]
    CostExceedsCapacity(u32),
    /// The request codec refused the parameters.
    #[error("invalid request parameters: {0}")]
    InvalidParams(String),
    /// No request codec is set and none is built in (the `json` feature is off).
    #[error("no request codec: set one with request_codec (the `json` feature gives JSON-RPC 2.0)")]
    NoRequestCodec,
    /// No subscription codec is set and none is built in (the `json` feature is off).
    #[error("no subscription codec: set one with subscription_codec (the `json` feature gives JSON-RPC)")]
    NoSubscriptionCodec,
    /// A request with the caller's id while a pending request has it.
    #[error("request id {0} is still pending")]
    DuplicateRequestId(RequestId),
    /// The request codec cannot write this id (the default codec's
    /// `encode_with` writes numbers only).
    #[error("the request codec cannot write request id {0}")]
    UnsupportedRequestId(RequestId),
    /// `request_message` got a message the codec reads no id from.
    #[error("the request message has no id the request codec can read")]
    NoRequestId,
    /// The connection refused the close code or reason.
    #[error(transparent)]
    Send(#[from] crate::error::SendError),
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConnectTimeout => f.write_str("the connection did not open within the connect timeout"),
            Self::ConnectFailed { message, .. } => write!(f, "the connection could not be opened: {message}"),
            Self::BadRequest(e) => write!(f, "the upgrade request was invalid: {e}"),
            Self::Closed(closed) => write!(f, "{closed}"),
            Self::HeartbeatTimeout => f.write_str("the server did not answer a heartbeat in time"),
            Self::IdleTimeout => f.write_str("nothing arrived within the idle timeout"),
            Self::WriteTimeout => f.write_str("the server took nothing written within the write timeout"),
            Self::Error(e) => write!(f, "{e}"),
            Self::UserReconnect => f.write_str("the user asked to reconnect"),
            Self::SequenceBroken { channel } => write!(f, "channel {channel:?} missed messages and asks to reconnect"),
            Self::Tls { failure, .. } => write!(f, "the TLS handshake failed: {failure}"),
            Self::Proxy(e) => write!(f, "{e}"),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Requested => f.write_str("it was closed at the user's request"),
            Self::GaveUp { attempts } => write!(f, "it gave up after {attempts} attempts in a row failed to connect"),
            Self::Stopped => f.write_str("the reconnect policy stopped it"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CloseCode, Closed, ConnectionError, HandshakeError, Initiator, RefusedUpgrade, TlsFailure};

    #[test]
    fn reasons_read_as_sentences_with_their_detail() {
        let tls = DisconnectReason::Tls {
            failure: TlsFailure::NameMismatch { expected: "example.com".into(), presented: vec![] },
            ever_connected: false,
        };
        assert_eq!(tls.to_string(), "the TLS handshake failed: the server's certificate is not valid for example.com");
        let failed = DisconnectReason::ConnectFailed {
            kind: std::io::ErrorKind::ConnectionRefused,
            message: "Connection refused (os error 111)".into(),
        };
        assert_eq!(failed.to_string(), "the connection could not be opened: Connection refused (os error 111)");
        let refused = DisconnectReason::Closed(Box::new(Closed {
            initiator: Initiator::Remote,
            code: CloseCode::Abnormal,
            reason: String::new(),
            sent_code: None,
            error: Some(ConnectionError::Handshake(HandshakeError::Refused(Box::new(RefusedUpgrade {
                status: 403,
                reason: "Forbidden".into(),
                headers: vec![],
                body: vec![],
            })))),
        }));
        assert_eq!(refused.to_string(), "handshake failed: upgrade refused: 403 Forbidden");
        let clean = Closed {
            initiator: Initiator::Remote,
            code: CloseCode::Away,
            reason: "maintenance".into(),
            sent_code: Some(CloseCode::Away),
            error: None,
        };
        assert_eq!(
            DisconnectReason::Closed(Box::new(clean)).to_string(),
            "the server closed the connection with code 1001 (\"maintenance\")"
        );
        let transport =
            ConnectionError::Transport { kind: std::io::ErrorKind::ConnectionReset, message: "reset".into() };
        assert_eq!(transport.to_string(), "the transport failed (connection reset): reset");
        assert_eq!(DisconnectReason::HeartbeatTimeout.to_string(), "the server did not answer a heartbeat in time");
        let proxy = DisconnectReason::Proxy(crate::proxy::ProxyError::BadReply(crate::proxy::BadProxyReply::Closed));
        assert_eq!(
            proxy.to_string(),
            "the proxy's reply is invalid: the proxy closed the connection in the middle of its reply"
        );
        assert_eq!(
            CloseReason::GaveUp { attempts: 3 }.to_string(),
            "it gave up after 3 attempts in a row failed to connect"
        );
        assert_eq!(CloseReason::Stopped.to_string(), "the reconnect policy stopped it");
    }
}
