//! Opening a transport: resolve the host, try each address in turn over TCP
//! with `TCP_NODELAY`, then TLS with rustls when the URL is `wss`.
//!
//! Nothing here decides a timeout or a retry: the session's connect timeout
//! drops this future, and the session decides what follows a failure.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Resolves a host and port to addresses; replaceable for custom DNS or tests.
pub type Resolver = Arc<dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync>;

/// An open transport: plain TCP or TLS over TCP.
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Opens the transport the session asked for.
pub(crate) async fn open(
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    resolver: Option<Resolver>,
) -> io::Result<Transport> {
    let addrs: Vec<SocketAddr> = match resolver {
        Some(resolve) => resolve(&host, port)?,
        None => tokio::net::lookup_host((host.as_str(), port)).await?.collect(),
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} resolved to no address"));
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(e) => last = e,
        }
    }
    let tcp = tcp.ok_or(last)?;
    tcp.set_nodelay(true)?;
    let Some(config) = tls else { return Ok(Transport::Plain(tcp)) };
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid TLS server name {host:?}: {e}")))?;
    let stream = TlsConnector::from(config).connect(name, tcp).await?;
    Ok(Transport::Tls(Box::new(stream)))
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
