//! The smol runtime for wslink's shared driver: clock, spawn, sleep, and the
//! transport's parts (resolve, wait for a TCP connect the shared code began
//! with the builder's socket options, rustls TLS with SNI, the caller's own
//! streams); the shared code puts them together, with a proxy's tunnel between.
//! `wslink-tokio`'s `runtime.rs` is the same file for tokio.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_net::TcpStream;
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use wslink_adapter::Runtime;
use wslink_core::ReadRoom;

/// The smol runtime (the client's task runs on smol's global executor, its
/// sockets and timers on async-io's reactor).
#[derive(Debug, Clone, Copy)]
pub struct Smol;

impl Runtime for Smol {
    type Reader = ReadHalf<Transport>;
    type Writer = WriteHalf<Transport>;

    fn now() -> Instant {
        Instant::now()
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(task).detach();
    }

    type Timer = async_io::Timer;

    fn timer(deadline: Instant) -> Self::Timer {
        async_io::Timer::at(deadline)
    }

    fn reset(timer: Pin<&mut Self::Timer>, deadline: Instant) {
        timer.get_mut().set_at(deadline);
    }

    type Link = Link;

    type Stream = Stream;

    fn stream_link(stream: Stream) -> (Link, bool) {
        let plain = stream.plain;
        (Link::Stream(stream), plain)
    }

    async fn resolve(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
        async_net::resolve((host.as_str(), port)).await
    }

    async fn tcp_connect(socket: std::net::TcpStream) -> io::Result<Link> {
        let tcp = async_io::Async::new_nonblocking(socket)?;
        // Writable once the connect has ended, either way; its error tells which.
        tcp.writable().await?;
        match tcp.get_ref().take_error()? {
            None => Ok(Link::Tcp(TcpStream::from(tcp))),
            Some(e) => Err(e),
        }
    }

    async fn link_tls(link: Link, host: String, tls: Arc<rustls::ClientConfig>) -> io::Result<Link> {
        match link {
            Link::Tcp(tcp) => Ok(Link::Tls(Box::new(tls_over(tcp, &host, tls).await?))),
            Link::Tls(_) => Err(io::Error::new(io::ErrorKind::InvalidInput, "the link to the proxy is TLS already")),
            Link::Stream(_) => Err(io::Error::new(io::ErrorKind::InvalidInput, "a connector's stream has no proxy")),
        }
    }

    async fn link_read<'a>(link: &'a mut Link, buf: &'a mut [u8]) -> io::Result<usize> {
        match link {
            Link::Tcp(s) => s.read(buf).await,
            Link::Tls(s) => s.read(buf).await,
            Link::Stream(s) => s.io.read(buf).await,
        }
    }

    async fn link_write_all<'a>(link: &'a mut Link, buf: &'a [u8]) -> io::Result<()> {
        match link {
            Link::Tcp(s) => s.write_all(buf).await,
            Link::Tls(s) => s.write_all(buf).await,
            Link::Stream(s) => s.io.write_all(buf).await,
        }
    }

    async fn secure(
        link: Link,
        host: String,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> io::Result<(Self::Reader, Self::Writer)> {
        let transport = match (link, tls) {
            (Link::Tcp(tcp), None) => Transport::Plain(tcp),
            (Link::Tls(proxied), None) => Transport::Tls(proxied),
            (Link::Tcp(tcp), Some(config)) => Transport::Tls(Box::new(tls_over(tcp, &host, config).await?)),
            (Link::Tls(proxied), Some(config)) => {
                Transport::TlsInTls(Box::new(tls_over(*proxied, &host, config).await?))
            }
            (Link::Stream(stream), None) => Transport::Stream(stream),
            // Boxed once more: the caller's streams keep to one variant.
            (Link::Stream(stream), Some(config)) => {
                Transport::Stream(Stream::new(tls_over(Transport::Stream(stream), &host, config).await?))
            }
        };
        Ok(futures_lite::io::split(transport))
    }

    async fn read_buf<'a>(reader: &'a mut Self::Reader, room: ReadRoom<'a>) -> io::Result<usize> {
        // futures-io reads into initialised memory: the room the session
        // keeps initialised from read to read, zeroed once, not per read.
        reader.read(room.initialised()).await
    }

    fn write<'a>(writer: &'a mut Self::Writer, buf: &'a [u8]) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        writer.write(buf)
    }

    fn write_all<'a>(writer: &'a mut Self::Writer, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a {
        writer.write_all(buf)
    }

    fn shutdown(writer: &mut Self::Writer) -> impl Future<Output = io::Result<()>> + Send + '_ {
        writer.close()
    }
}

/// Runs TLS over `stream` with `host` (SNI, and the certificate's name).
async fn tls_over<S>(stream: S, host: &str, config: Arc<rustls::ClientConfig>) -> io::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = wslink_adapter::runtime::tls_server_name(host)?;
    let handshake = TlsConnector::from(config).connect(name, stream).await;
    // Typed here, while the host is known, so the session can tell a refused certificate.
    handshake.map_err(|e| wslink_adapter::runtime::tls_handshake_error(host, e))
}

/// A connection before the WebSocket's TLS: TCP, or TLS to an `https://`
/// proxy, or a stream the caller's connector opened.
pub enum Link {
    /// TCP.
    Tcp(TcpStream),
    /// TLS over TCP, to an `https://` proxy.
    Tls(Box<TlsStream<TcpStream>>),
    /// The caller's connector's stream.
    Stream(Stream),
}

/// An open transport: plain TCP or TLS over TCP, or TLS inside TLS, or a
/// stream of the caller's (with wslink's TLS over it, for a plain one and
/// a `wss://` URL). The caller's streams, boxed, are one variant, the last:
/// the runtime's own TCP and TLS pay no dispatch through a box.
pub enum Transport {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://`, or `ws://` through an `https://` proxy.
    Tls(Box<TlsStream<TcpStream>>),
    /// `wss://` through an `https://` proxy.
    TlsInTls(Box<TlsStream<TlsStream<TcpStream>>>),
    /// The caller's stream, as it is, or wslink's TLS over it (itself a
    /// `Transport::Stream` inside).
    Stream(Stream),
}

/// A stream the caller opened, for [`Builder::connector`](wslink_adapter::Builder::connector):
/// any `AsyncRead + AsyncWrite + Send + 'static` of `futures-io`'s (an
/// `async_net::unix::UnixStream`, one end of an in-memory pipe, a TLS
/// stream of your own, a proxy library's tunnel), boxed.
///
/// A connector's stream becomes one by `From` (or [`Stream::new`]) and is
/// then the transport as it is; [`Stream::plain`] marks one that carries
/// plain bytes, for wslink to run its TLS over when the URL is `wss://`.
pub struct Stream {
    io: Pin<Box<dyn StreamIo>>,
    /// wslink runs its TLS over it for a `wss://` URL.
    plain: bool,
}

/// What a caller's stream is: futures-io's two I/O traits, sendable.
trait StreamIo: AsyncRead + AsyncWrite + Send {}

impl<T: AsyncRead + AsyncWrite + Send> StreamIo for T {}

impl Stream {
    /// The transport as it is: wslink runs no TLS over it, whatever the
    /// URL's scheme (the connector ran any TLS itself).
    pub fn new(io: impl AsyncRead + AsyncWrite + Send + 'static) -> Self {
        Self { io: Box::pin(io), plain: false }
    }

    /// A stream of plain bytes, as a TCP connection carries them: for a
    /// `wss://` URL wslink runs its TLS over it (the builder's `tls`
    /// settings, the URL's host for SNI and the certificate's name), as
    /// over its own TCP; for `ws://`, the same as [`Stream::new`].
    pub fn plain(io: impl AsyncRead + AsyncWrite + Send + 'static) -> Self {
        Self { io: Box::pin(io), plain: true }
    }
}

impl<T: AsyncRead + AsyncWrite + Send + 'static> From<T> for Stream {
    fn from(io: T) -> Self {
        Self::new(io)
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("plain", &self.plain).finish_non_exhaustive()
    }
}

impl Transport {
    /// Calls `io` on any transport through one vtable, out of line: for the
    /// rare ones (TLS inside TLS, the caller's streams). The I/O calls'
    /// match then has three arms, and plain TCP and TLS cost what they did
    /// before the caller's streams came: a fourth arm made a jump table.
    #[cold]
    #[inline(never)]
    fn rare<T>(&mut self, io: impl FnOnce(Pin<&mut dyn StreamIo>) -> T) -> T {
        fn pin<S: StreamIo + Unpin>(s: &mut S) -> Pin<&mut dyn StreamIo> {
            let pinned: Pin<&mut S> = Pin::new(s);
            pinned
        }
        io(match self {
            Transport::Plain(s) => pin(s),
            Transport::Tls(s) => pin(s.as_mut()),
            Transport::TlsInTls(s) => pin(s.as_mut()),
            Transport::Stream(s) => s.io.as_mut(),
        })
    }
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            rare => rare.rare(|s| s.poll_read(cx, buf)),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            rare => rare.rare(|s| s.poll_write(cx, buf)),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            rare => rare.rare(|s| s.poll_flush(cx)),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_close(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            rare => rare.rare(|s| s.poll_close(cx)),
        }
    }
}
