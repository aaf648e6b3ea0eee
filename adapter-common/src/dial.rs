//! How a transport reaches its host when the caller says so: a resolver of
//! the caller's (a function, or a future, so that an async resolver such as
//! hickory's fits without blocking the driver), or a connector of the
//! caller's, which opens the stream itself in place of resolving, TCP and
//! the proxy (a Unix socket, an in-memory duplex, a TLS stream of its own,
//! a proxy library's tunnel).
//!
//! Role: what the builder hands the transport's opening; the decision to
//! (re)connect stays with the session, and each `Action::OpenTransport`
//! calls the connector again, so every reconnect gets a fresh stream.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::runtime::Runtime;

/// What a connector is asked to reach (see [`Builder::connector`](crate::Builder::connector)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectTo {
    /// The URL's host (a name, or an IP address without brackets).
    pub host: String,
    /// The URL's port (its scheme's default when it names none).
    pub port: u16,
    /// Whether the URL is `wss://`: the connection is meant to be TLS,
    /// whether the connector runs it or hands back a plain stream for
    /// wslink to run it over.
    pub tls: bool,
    /// The attempt's number among the attempts in a row that have not
    /// opened, from 1: 1 is the first try after a link that was open (or
    /// the very first), 2 the retry after it failed, and so on.
    pub attempt: u32,
}

/// A resolver's answer, to await.
pub(crate) type Resolving = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// A resolver of the caller's, as the opening calls it (a plain function's answer comes ready).
pub(crate) type ResolveFn = dyn Fn(&str, u16) -> Resolving + Send + Sync;

/// A stream being opened by the caller's connector.
pub(crate) type Connecting<R> = Pin<Box<dyn Future<Output = io::Result<<R as Runtime>::Stream>> + Send>>;

/// A connector of the caller's, as the opening calls it.
pub(crate) type ConnectFn<R> = dyn Fn(ConnectTo) -> Connecting<R> + Send + Sync;

/// How the transport reaches the host, when not with the runtime's resolver.
pub(crate) enum Dial<R: Runtime> {
    /// The caller's resolver, then TCP (and the proxy) as usual.
    Resolve(Arc<ResolveFn>),
    /// The caller's connector: no resolving, no TCP of wslink's, no proxy.
    Connect(Arc<ConnectFn<R>>),
}
