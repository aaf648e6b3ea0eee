//! The session's reasons as sentences, for logs and for the adapters' error
//! messages ("could not connect: the TLS handshake failed: the server's
//! certificate has expired"). Each includes its detail; `{:?}` is for debugging.

use std::fmt;

use crate::session::{CloseReason, DisconnectReason};

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
