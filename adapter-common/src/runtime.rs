//! What a runtime adapter provides ([`Runtime`]), and the things the
//! caller may hand the builder in a runtime's place: a [`Resolver`] (or an
//! async one), a [`Spawner`], and a connector whose streams are the
//! runtime's [`Runtime::Stream`].
//!
//! This module is the one supported extension point of `wslink-adapter`:
//! a new runtime implements [`Runtime`], with the two helpers its TLS
//! needs ([`tls_server_name`], [`tls_handshake_error`]); everything else in
//! the crate is for users of a runtime, through `wslink-tokio` or
//! `wslink-smol`.
//!
//! Role: the ground floor of the shared code. The driver, the transport's
//! opening and the builder are generic over [`Runtime`]; each adapter crate
//! implements it once, and nothing here knows which runtime it is.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

pub use crate::tls::{tls_handshake_error, tls_server_name};

/// Resolves a host and port to addresses; replaceable for custom DNS or tests.
/// The form [`Builder::resolver`](crate::Builder::resolver) takes;
/// [`Builder::resolver_async`](crate::Builder::resolver_async) takes one that answers with a future.
pub type Resolver = Arc<dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync>;

/// Starts a task on an executor of the caller's choosing (see [`Builder::spawn_with`](crate::Builder::spawn_with)).
pub type Spawner = Arc<dyn Fn(Pin<Box<dyn Future<Output = ()> + Send>>) + Send + Sync>;

/// Runs `task` with `spawner` when one is given, else on the runtime's own executor.
pub(crate) fn spawn<R: Runtime>(spawner: Option<&Spawner>, task: impl Future<Output = ()> + Send + 'static) {
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
    /// `https://` proxy (a proxy's tunnel is opened over it), or a stream
    /// the caller's connector opened.
    type Link: Send + 'static;
    /// A stream the caller's connector opened (`Builder::connector`): the
    /// runtime's type for any stream of its I/O traits, and whether wslink
    /// runs its TLS over it for a `wss://` URL or uses it as it is. Only
    /// connected streams pay for its dispatch: the runtime's own TCP and
    /// TLS stay as they are.
    type Stream: Send + 'static;
    /// The link over a caller's stream, and whether wslink runs its TLS over
    /// it (given to [`secure`](Self::secure)) when the URL is `wss://`.
    fn stream_link(stream: Self::Stream) -> (Self::Link, bool);
    /// Resolves `host` with the system resolver.
    fn resolve(host: String, port: u16) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;
    /// Waits for a TCP connection the shared code started: `socket` is
    /// non-blocking, its options set (`SocketOptions`: TCP_NODELAY and the
    /// rest), bound when asked, and its connect begun. Answers the link once
    /// the socket is writable and its pending error (`take_error`) is none,
    /// or that error.
    fn tcp_connect(socket: std::net::TcpStream) -> impl Future<Output = io::Result<Self::Link>> + Send;
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
    /// Reads some bytes into `room`, the session's own input buffer (so
    /// nothing is copied after the read), and returns how many. The runtime
    /// takes the room the way its reads need it: as spare capacity to append
    /// to ([`ReadRoom::spare`](wslink_core::ReadRoom::spare), nothing zeroed)
    /// or as initialised bytes ([`ReadRoom::initialised`](wslink_core::ReadRoom::initialised),
    /// kept initialised by the session from read to read), and reads at most
    /// what it offers: reading exactly to the end of a large frame keeps its
    /// payload where the read put it. Cancel-safe: dropping it reads nothing.
    fn read_buf<'a>(
        reader: &'a mut Self::Reader,
        room: wslink_core::ReadRoom<'a>,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;
    /// Writes some bytes; cancel-safe (dropping it writes nothing more).
    fn write<'a>(writer: &'a mut Self::Writer, buf: &'a [u8]) -> impl Future<Output = io::Result<usize>> + Send + 'a;
    /// Writes all of `buf`.
    fn write_all<'a>(writer: &'a mut Self::Writer, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a;
    /// Flushes and closes the write half.
    fn shutdown(writer: &mut Self::Writer) -> impl Future<Output = io::Result<()>> + Send + '_;
}
