//! The tokio runtime for wslink's shared driver: clock, spawn, sleep, and the
//! transport's parts (resolve, TCP with TCP_NODELAY, rustls TLS with SNI);
//! the shared code puts them together, with a proxy's tunnel between.
//! `wslink-smol`'s `runtime.rs` is the same file for smol.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use wslink_adapter::Runtime;

/// The tokio runtime (the client's task runs on the runtime that starts it).
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

impl Runtime for Tokio {
    type Reader = ReadHalf<Transport>;
    type Writer = WriteHalf<Transport>;

    fn now() -> Instant {
        // tokio's clock, so tests with paused time drive the session too.
        tokio::time::Instant::now().into_std()
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }

    type Timer = tokio::time::Sleep;

    fn timer(deadline: Instant) -> Self::Timer {
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline))
    }

    fn reset(timer: Pin<&mut Self::Timer>, deadline: Instant) {
        timer.reset(tokio::time::Instant::from_std(deadline));
    }

    type Link = Link;

    async fn resolve(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect())
    }

    async fn tcp_connect(addr: SocketAddr) -> io::Result<Link> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(Link::Tcp(tcp))
    }

    async fn link_tls(link: Link, host: String, tls: Arc<rustls::ClientConfig>) -> io::Result<Link> {
        match link {
            Link::Tcp(tcp) => Ok(Link::Tls(Box::new(tls_over(tcp, &host, tls).await?))),
            Link::Tls(_) => Err(io::Error::new(io::ErrorKind::InvalidInput, "the link to the proxy is TLS already")),
        }
    }

    async fn link_read<'a>(link: &'a mut Link, buf: &'a mut [u8]) -> io::Result<usize> {
        match link {
            Link::Tcp(s) => s.read(buf).await,
            Link::Tls(s) => s.read(buf).await,
        }
    }

    async fn link_write_all<'a>(link: &'a mut Link, buf: &'a [u8]) -> io::Result<()> {
        match link {
            Link::Tcp(s) => s.write_all(buf).await,
            Link::Tls(s) => s.write_all(buf).await,
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
        };
        Ok(tokio::io::split(transport))
    }

    async fn read_buf<'a>(
        reader: &'a mut Self::Reader,
        buf: &'a mut bytes::BytesMut,
        limit: usize,
    ) -> io::Result<usize> {
        // Reads into the spare capacity without zeroing it first.
        reader.read_buf(&mut bytes::BufMut::limit(buf, limit)).await
    }

    fn write<'a>(writer: &'a mut Self::Writer, buf: &'a [u8]) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        writer.write(buf)
    }

    fn write_all<'a>(writer: &'a mut Self::Writer, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a {
        writer.write_all(buf)
    }

    fn shutdown(writer: &mut Self::Writer) -> impl Future<Output = io::Result<()>> + Send + '_ {
        writer.shutdown()
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

/// A connection before the WebSocket's TLS: TCP, or TLS to an `https://` proxy.
pub enum Link {
    /// TCP.
    Tcp(TcpStream),
    /// TLS over TCP, to an `https://` proxy.
    Tls(Box<TlsStream<TcpStream>>),
}

/// An open transport: plain TCP or TLS over TCP, or TLS inside TLS.
pub enum Transport {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://`, or `ws://` through an `https://` proxy.
    Tls(Box<TlsStream<TcpStream>>),
    /// `wss://` through an `https://` proxy.
    TlsInTls(Box<TlsStream<TlsStream<TcpStream>>>),
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::TlsInTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::TlsInTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::TlsInTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::TlsInTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
