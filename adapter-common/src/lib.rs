//! wslink-adapter: everything wslink's runtime adapters share, written once.
//!
//! The handles ([`Client`], [`Events`]), the [`Builder`], the [`Pool`], TLS
//! options, proxies ([`Proxy`]), the opening of a transport and the driver
//! loop are generic over a [`Runtime`]: a handful of functions to spawn,
//! sleep, connect TCP, run TLS, and read and write. Each
//! adapter crate (`wslink-tokio`, `wslink-smol`) is one short implementation
//! of that trait plus re-exports, so the two cannot drift apart.
//!
//! The channels between handles and driver (`channels.rs`) run on any
//! executor; request replies use tokio's runtime-agnostic `oneshot`.
//!
//! [`telemetry`] maps what the driver sees to `tracing` spans and, with the
//! feature `metrics`, to metrics pushed through the `metrics` facade.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod builder;
mod channels;
mod client;
mod driver;
mod filter;
mod inline;
mod pool;
mod recorder;
pub mod telemetry;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
mod tls;
mod transport;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

pub use builder::Builder;
pub use client::{Client, ClientError, ClientMetrics, Events, RequestError, Response, TrySendError};
pub use filter::EventFilter;
pub use inline::InlineClient;
pub use pool::{MemberEvents, Pool, PoolBuilder, PoolError, PoolEvent, PoolEvents};
pub use recorder::{FileRecorder, RecordingFile};
pub use tls::{tls_handshake_error, Roots, TlsOptions};
pub use wslink_core::proxy::{Proxy, ProxyError, ProxyServer, ProxyUrlError};
pub use wslink_core::{CloseReason, DisconnectReason};

/// Resolves a host and port to addresses; replaceable for custom DNS or tests.
pub type Resolver = Arc<dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync>;

/// Starts a task on an executor of the caller's choosing (see [`Builder::spawn_with`]).
pub type Spawner = Arc<dyn Fn(Pin<Box<dyn Future<Output = ()> + Send>>) + Send + Sync>;

/// Runs `task` with `spawner` when one is given, else on the runtime's own executor.
fn spawn<R: Runtime>(spawner: Option<&Spawner>, task: impl Future<Output = ()> + Send + 'static) {
    match spawner {
        Some(spawn) => spawn(Box::pin(task)),
        None => R::spawn(task),
    }
}

/// What an async runtime provides to the driver. Implemented once per adapter.
pub trait Runtime: Send + Sync + 'static {
    /// The read half of an open transport.
    type Reader: Send + 'static;
    /// The write half of an open transport.
    type Writer: Send + 'static;

    /// The runtime's clock (tokio's, so paused-time tests drive the session too).
    fn now() -> Instant;
    /// Runs a task in the background.
    fn spawn(task: impl Future<Output = ()> + Send + 'static);
    /// A timer; the driver keeps one and moves it rather than making one per
    /// turn (on smol each new timer wakes the reactor thread through an eventfd).
    type Timer: Future + Send;
    /// A timer that completes at `deadline`.
    fn timer(deadline: Instant) -> Self::Timer;
    /// Moves `timer` to complete at `deadline` (again, if it completed).
    fn reset(timer: Pin<&mut Self::Timer>, deadline: Instant);
    /// A connection before the WebSocket's TLS: TCP, or TLS over TCP to an
    /// `https://` proxy. A proxy's tunnel is opened over it.
    type Link: Send + 'static;
    /// Resolves `host` with the system resolver.
    fn resolve(host: String, port: u16) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;
    /// Connects TCP to `addr`, with TCP_NODELAY set.
    fn tcp_connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Link>> + Send;
    /// Runs TLS over a TCP link, to an `https://` proxy named `host`. An
    /// error of the handshake goes through [`tls_handshake_error`].
    fn link_tls(
        link: Self::Link,
        host: String,
        tls: Arc<rustls::ClientConfig>,
    ) -> impl Future<Output = io::Result<Self::Link>> + Send;
    /// Reads some bytes from a link into `buf`; returns how many.
    fn link_read<'a>(
        link: &'a mut Self::Link,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;
    /// Writes all of `buf` to a link.
    fn link_write_all<'a>(link: &'a mut Self::Link, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a;
    /// With `tls`, runs TLS over `link` (SNI and the certificate's name:
    /// `host`); returns the transport's two halves. An error of the TLS
    /// handshake goes through [`tls_handshake_error`], so that the session
    /// gets it typed. The rest of opening a transport (resolving, trying each
    /// address, a proxy's tunnel) is written once, in the shared code.
    fn secure(
        link: Self::Link,
        host: String,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> impl Future<Output = io::Result<(Self::Reader, Self::Writer)>> + Send;
    /// Reads some bytes, at most `limit`, appending them to `buf`'s spare
    /// capacity (the session's own input buffer, so nothing is copied after
    /// the read); returns how many. The limit is the session's
    /// (`Session::read_room`): reading exactly to the end of a large frame
    /// keeps its payload where the read put it. Cancel-safe: dropping it
    /// leaves `buf` as it was.
    fn read_buf<'a>(
        reader: &'a mut Self::Reader,
        buf: &'a mut bytes::BytesMut,
        limit: usize,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;
    /// Writes some bytes; cancel-safe (dropping it writes nothing more).
    fn write<'a>(writer: &'a mut Self::Writer, buf: &'a [u8]) -> impl Future<Output = io::Result<usize>> + Send + 'a;
    /// Writes all of `buf`.
    fn write_all<'a>(writer: &'a mut Self::Writer, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a;
    /// Flushes and closes the write half.
    fn shutdown(writer: &mut Self::Writer) -> impl Future<Output = io::Result<()>> + Send + '_;
}

/// The TLS server name (SNI, and the name the certificate must carry) for `host`.
pub fn tls_server_name(host: &str) -> io::Result<rustls::pki_types::ServerName<'static>> {
    rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("TLS server name {host:?}: {e}")))
}

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
    Tls(String),
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
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
    use super::*;

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
