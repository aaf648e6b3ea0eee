//! Opening a transport, written once for every runtime: resolve, TCP (to
//! the addresses in turn as RFC 8305 races them: `wslink_core::HappyEyeballs`
//! decides which address starts when, this runs the attempts side by side
//! and keeps the first that connects; each socket made with the builder's
//! `SocketOptions`, and only addresses of a bound local address's family
//! tried), the
//! proxy's tunnel when the URL goes through one (over TLS to the proxy for
//! an `https://` proxy), then TLS (for `wss`) inside it. The runtime only
//! resolves, connects, reads, writes and runs TLS.
//!
//! The tunnel is `wslink_core::proxy`'s sans-IO handshake driven over the
//! TCP connection; the loop reads at most what the machine allows, so the
//! tunnel's first byte stays in the socket for TLS or the upgrade. A proxy
//! failure travels inside the `io::Error` the opening returns, typed, and
//! the driver reports it with `Session::handle_proxy_failure`: the proxy
//! not answering (no TCP connection, a link that fails before its reply),
//! refusing, wanting credentials, breaking its protocol, or (`https://`)
//! failing the TLS handshake, its certificate checked against the client's
//! roots. The session's connect timeout covers the whole opening, the
//! tunnel included.
//!
//! A connector of the caller's ([`open_stream`]) replaces all of it but
//! TLS: its stream is the transport as it is, or, when it hands back a plain
//! stream for a `wss://` URL, the link wslink runs its TLS over.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use wslink_core::proxy::{ProxyError, ProxyHandshake, ProxyServer};
use wslink_core::HappyEyeballs;

use crate::dial::{ConnectFn, ConnectTo, ResolveFn};
use crate::runtime::Runtime;
use crate::socket::{start_connect, SocketOptions};

/// Chunk size of the tunnel handshake's reads (the machine may allow more).
const READ_CHUNK: usize = 2048;

/// The proxy a transport goes through, and the TLS configuration for an `https://` one.
pub(crate) type Via = (Arc<ProxyServer>, Option<Arc<rustls::ClientConfig>>);

/// Opens a transport to `host:port`, through the proxy when given, with TLS
/// when `tls` is given; returns its two halves. The TCP connection (to the
/// host, or to the proxy) is made with `socket`'s options.
pub(crate) async fn open<R: Runtime>(
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    resolver: Option<Arc<ResolveFn>>,
    via: Option<Via>,
    attempt_delay: Duration,
    socket: SocketOptions,
) -> io::Result<(R::Reader, R::Writer)> {
    let link = match via {
        None => connect::<R>(&host, port, resolver.as_ref(), attempt_delay, &socket).await?,
        Some((proxy, proxy_tls)) => {
            let reached = connect::<R>(proxy.host(), proxy.port(), resolver.as_ref(), attempt_delay, &socket).await;
            let mut link = reached.map_err(|e| unreachable(&proxy, "", e))?;
            if proxy.uses_tls() {
                let config = proxy_tls.ok_or_else(|| {
                    failed(ProxyError::Tls(wslink_core::TlsFailure::HandshakeFailure(
                        "no TLS configuration for the https:// proxy".to_owned(),
                    )))
                })?;
                let secured = R::link_tls(link, proxy.host().to_owned(), config).await;
                link = secured.map_err(|e| match crate::tls::failure(&e) {
                    Some(failure) => failed(ProxyError::Tls(failure)),
                    None => unreachable(&proxy, "the link to the proxy failed: ", e),
                })?;
            }
            let resolved = match proxy.resolves_locally(&host) {
                // `socks5://` and `socks4://`: the client names the proxy an address, chosen by
                // the core (none that fits is the handshake's `BadTarget`).
                true => {
                    proxy.target_address(resolve::<R>(&host, port, resolver.as_ref()).await?.iter().map(|a| a.ip()))
                }
                false => None,
            };
            tunnel::<R>(&mut link, &proxy, &host, port, resolved).await?;
            link
        }
    };
    R::secure(link, host, tls).await
}

/// Opens a transport over the stream the caller's connector opens for
/// `to`: as it is, or with TLS (`tls`, for a `wss://` URL) when the
/// connector hands back a plain stream.
pub(crate) async fn open_stream<R: Runtime>(
    connect: Arc<ConnectFn<R>>,
    to: ConnectTo,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> io::Result<(R::Reader, R::Writer)> {
    let host = to.host.clone();
    let stream = connect(to).await.map_err(|e| connector_error(&host, e))?;
    let (link, plain) = R::stream_link(stream);
    R::secure(link, host, tls.filter(|_| plain)).await
}

/// A connector that runs rustls itself fails its handshake with the
/// `io::Error` tokio-rustls and futures-rustls make (a `rustls::Error`
/// inside): typed as wslink's own handshakes' failures are, so the session
/// tells a refused certificate from a link that failed. Any other error
/// stays as it is (an end of stream is not taken for the server's TLS
/// hanging up: the connector knows what it was).
fn connector_error(host: &str, error: io::Error) -> io::Error {
    match error.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        true => crate::runtime::tls_handshake_error(host, error),
        false => error,
    }
}

async fn resolve<R: Runtime>(host: &str, port: u16, resolver: Option<&Arc<ResolveFn>>) -> io::Result<Vec<SocketAddr>> {
    match resolver {
        Some(resolve) => resolve(host, port).await,
        None => R::resolve(host.to_owned(), port).await,
    }
}

async fn connect<R: Runtime>(
    host: &str,
    port: u16,
    resolver: Option<&Arc<ResolveFn>>,
    attempt_delay: Duration,
    socket: &SocketOptions,
) -> io::Result<R::Link> {
    let mut addrs = resolve::<R>(host, port, resolver).await?;
    // A socket bound to a local address reaches only its family's addresses.
    if let Some(local) = socket.bind {
        let resolved = addrs.len();
        addrs.retain(|addr| socket.reaches(addr));
        if addrs.is_empty() && resolved > 0 {
            let family = if local.is_ipv4() { "IPv4" } else { "IPv6" };
            let message = format!("{host} has no {family} address to reach from the bound local address {local}");
            return Err(io::Error::new(io::ErrorKind::AddrNotAvailable, message));
        }
    }
    race::<R>(host, addrs, attempt_delay, socket).await
}

type Attempt<R> = Pin<Box<dyn Future<Output = (SocketAddr, io::Result<<R as Runtime>::Link>)> + Send>>;

/// Connects TCP to one of `addrs`, starting the attempts as
/// `HappyEyeballs` says (each socket made with `socket`'s options, its
/// connect begun at once) and keeping the first that connects (the others
/// are dropped, which closes them). Every address failed: the last error,
/// naming its address.
async fn race<R: Runtime>(
    host: &str,
    addrs: Vec<SocketAddr>,
    delay: Duration,
    socket: &SocketOptions,
) -> io::Result<R::Link> {
    let mut plan = HappyEyeballs::new(addrs, delay, R::now());
    let mut attempts: Vec<Attempt<R>> = Vec::new();
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} resolved to no address"));
    loop {
        while let Some(addr) = plan.poll_start(R::now()) {
            let started = start_connect(addr, socket);
            attempts.push(Box::pin(async move {
                match started {
                    Ok(started) => (addr, R::tcp_connect(started).await),
                    Err(e) => (addr, Err(e)),
                }
            }));
        }
        if attempts.is_empty() {
            return Err(last);
        }
        let mut timer = plan.poll_timeout().map(|at| Box::pin(R::timer(at)));
        let done = poll_fn(|cx| {
            for (i, attempt) in attempts.iter_mut().enumerate() {
                if let Poll::Ready(outcome) = attempt.as_mut().poll(cx) {
                    return Poll::Ready(Some((i, outcome)));
                }
            }
            match timer.as_mut().map(|t| t.as_mut().poll(cx)) {
                Some(Poll::Ready(_)) => Poll::Ready(None),
                _ => Poll::Pending,
            }
        })
        .await;
        match done {
            Some((_, (_, Ok(link)))) => return Ok(link),
            Some((i, (addr, Err(e)))) => {
                drop(attempts.swap_remove(i));
                plan.handle_failure(R::now());
                last = io::Error::new(e.kind(), format!("{addr}: {e}"));
            }
            // The next address's turn has come.
            None => {}
        }
    }
}

/// Runs the proxy's handshake over `link` until the tunnel to `host:port` is open.
async fn tunnel<R: Runtime>(
    link: &mut R::Link,
    proxy: &ProxyServer,
    host: &str,
    port: u16,
    resolved: Option<std::net::IpAddr>,
) -> io::Result<()> {
    let mut handshake = ProxyHandshake::new(proxy, host, port, resolved).map_err(failed)?;
    let (mut out, mut buf) = (Vec::new(), vec![0u8; READ_CHUNK]);
    // Bounded: every turn reads at least one byte, and the machine fails
    // once a reply passes its limit (`MAX_REPLY_HEAD` at most).
    loop {
        out.clear();
        if handshake.poll_transmit(&mut out) > 0 {
            R::link_write_all(link, &out).await.map_err(|e| unreachable(proxy, "the link to the proxy failed: ", e))?;
        }
        if handshake.is_open() {
            return Ok(());
        }
        let limit = handshake.read_limit().clamp(1, READ_CHUNK);
        let n = R::link_read(link, &mut buf[..limit])
            .await
            .map_err(|e| unreachable(proxy, "the link to the proxy failed: ", e))?;
        if n == 0 {
            return Err(failed(handshake.handle_eof()));
        }
        handshake.handle_input(&buf[..n]).map_err(failed)?;
    }
}

fn unreachable(proxy: &ProxyServer, what: &str, error: io::Error) -> io::Error {
    // The proxy's redacted text: its credentials never reach a message.
    let message = format!("{what}{}: {error}", proxy.redacted_text());
    failed(ProxyError::Unreachable { kind: error.kind(), message })
}

/// A proxy failure, carried inside the `io::Error` the opening returns.
#[derive(Debug)]
struct ProxyFailed(ProxyError);

impl std::fmt::Display for ProxyFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ProxyFailed {}

fn failed(error: ProxyError) -> io::Error {
    let kind = match &error {
        ProxyError::Unreachable { kind, .. } => *kind,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, ProxyFailed(error))
}

/// The proxy failure inside an error from [`open`], if it is one.
pub(crate) fn proxy_failure(error: &io::Error) -> Option<ProxyError> {
    error.get_ref()?.downcast_ref::<ProxyFailed>().map(|p| p.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wslink_core::proxy::BadProxyReply;

    #[test]
    fn proxy_failures_survive_the_trip_through_io_error_and_name_no_credentials() {
        let error = failed(ProxyError::BadReply(BadProxyReply::Closed));
        assert_eq!(proxy_failure(&error), Some(ProxyError::BadReply(BadProxyReply::Closed)));
        let proxy = ProxyServer::parse("http://alice:hunter2@proxy.test:3128").unwrap();
        let error = unreachable(&proxy, "", io::ErrorKind::ConnectionRefused.into());
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        let Some(ProxyError::Unreachable { kind, message }) = proxy_failure(&error) else { panic!("{error:?}") };
        assert_eq!(kind, io::ErrorKind::ConnectionRefused);
        assert!(message.starts_with("http://<credentials>@proxy.test:3128: "), "{message}");
        assert!(!format!("{error:?}{error}").contains("hunter2"));
        assert_eq!(proxy_failure(&io::Error::other("plain")), None);
    }
}
