//! Why a client could not be built or started: the one error type of the
//! builder, the pool and `connect`, each variant a sentence with its detail.

use wslink_core::proxy::ProxyUrlError;
use wslink_core::{CloseReason, DisconnectReason};

use crate::reply::ClientError;

/// Why a client could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is unusable.
    #[error(transparent)]
    Url(#[from] wslink_core::UrlError),
    /// A proxy URL is unusable ([`Proxy::url`](wslink_core::proxy::Proxy::url)
    /// and the like, for [`Builder::proxy`](crate::Builder::proxy); the
    /// environment's unusable variables are skipped with a warning instead).
    #[error(transparent)]
    Proxy(#[from] ProxyUrlError),
    /// A setting is out of range; the message names the field.
    #[error(transparent)]
    Config(#[from] wslink_core::ConfigError),
    /// The TLS configuration could not be built.
    #[error("the TLS configuration could not be built: {0}")]
    Tls(#[from] crate::tls::TlsSetupError),
    /// The operating system's random source failed.
    #[error(transparent)]
    Random(#[from] wslink_core::OsRandomError),
    /// The first connection attempt failed (from `connect`).
    #[error("could not connect: {0}")]
    Connect(DisconnectReason),
    /// The session closed before connecting.
    #[error("the session closed before connecting: {0}")]
    Closed(CloseReason),
    /// A command was refused.
    #[error(transparent)]
    Command(#[from] wslink_core::CommandError),
    /// A handle's call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

#[cfg(test)]
mod tests {
    use wslink_core::proxy::ProxyError;

    use super::*;
    use crate::reply::RequestError;

    #[test]
    fn errors_read_as_sentences_with_their_detail() {
        let connect = Error::Connect(DisconnectReason::ConnectTimeout);
        assert_eq!(connect.to_string(), "could not connect: the connection did not open within the connect timeout");
        let closed = Error::Closed(CloseReason::GaveUp { attempts: 3 });
        assert_eq!(
            closed.to_string(),
            "the session closed before connecting: it gave up after 3 attempts in a row failed to connect"
        );
        let tls = Error::Connect(DisconnectReason::Tls {
            failure: wslink_core::TlsFailure::NameMismatch { expected: "example.com".into(), presented: vec![] },
            ever_connected: false,
        });
        assert_eq!(
            tls.to_string(),
            "could not connect: the TLS handshake failed: the server's certificate is not valid for example.com"
        );
        let refusal = wslink_core::proxy::ProxyRefusal {
            protocol: wslink_core::proxy::ProxyProtocol::Http,
            status: 407,
            reason: "Proxy Authentication Required".into(),
            headers: vec![],
        };
        let proxy = Error::Connect(DisconnectReason::Proxy(ProxyError::AuthRequired(Box::new(refusal))));
        assert_eq!(
            proxy.to_string(),
            "could not connect: the proxy requires authentication (407 Proxy Authentication Required)"
        );
        let url = Error::from(wslink_core::proxy::Proxy::url("ftp://u:hunter2@p").unwrap_err());
        assert_eq!(
            url.to_string(),
            "unsupported proxy scheme \"ftp\": use http://, https://, socks5://, socks5h://, socks4:// or socks4a://"
        );
        let timeout = RequestError::Timeout;
        assert_eq!(timeout.to_string(), "the request was not answered in time");
    }
}
