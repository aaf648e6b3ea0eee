//! The builder's transport settings: TLS, the proxy, the resolver (a
//! function or a future), the caller's own connector, Happy Eyeballs' delay
//! between attempts, and the TCP sockets' options. What they decide is in
//! `dial.rs` and `socket.rs`; here they are only kept.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wslink_core::proxy::Proxy;

use super::Builder;
use crate::dial::ConnectTo;
use crate::runtime::Runtime;
use crate::socket::SocketOptions;
use crate::tls::TlsOptions;

impl<R: Runtime> Builder<R> {
    /// TLS settings for `wss://`.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// The proxy connections go through: [`Proxy::none()`], one proxy for
    /// every URL ([`Proxy::http`], [`Proxy::socks5`], [`Proxy::url`], with
    /// [`Proxy::no_proxy`] exemptions), or the environment's as given
    /// ([`Proxy::from_env_vars`]). Every reconnect goes through it again;
    /// its failures are `DisconnectReason::Proxy`.
    ///
    /// Without this call the process's environment decides, as curl and
    /// reqwest read it: `HTTPS_PROXY` for `wss://`, `HTTP_PROXY` for `ws://`,
    /// `ALL_PROXY` for both, `NO_PROXY` exemptions (lower-case names first),
    /// and a `localhost` or loopback URL always direct. The variables are
    /// read when the client starts; one that holds no usable proxy URL is
    /// skipped as if unset, with a `tracing` warning that names the
    /// variable (never its value, which may hold a password). A proxy
    /// given here is checked when it is made: [`Proxy::url`] and the like
    /// return the error.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Resolves hosts with this function instead of the system resolver
    /// (the proxy's host too, and a `socks5://` proxy's target). It runs on
    /// the client's task, so it must answer at once (a table, a cache); a
    /// resolver that waits on the network goes through
    /// [`resolver_async`](Self::resolver_async).
    pub fn resolver(mut self, f: impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static) -> Self {
        self.resolver = Some(Arc::new(move |host: &str, port| Box::pin(std::future::ready(f(host, port)))));
        self
    }

    /// Resolves hosts with this async function instead of the system
    /// resolver (the proxy's host too, and a `socks5://` proxy's target):
    /// each transport's opening awaits its future, so a resolver that asks
    /// the network (hickory's `TokioResolver`, say) never blocks the
    /// client's task. The session's connect timeout covers the wait.
    /// Replaces [`resolver`](Self::resolver) (the last one set is used).
    ///
    /// ```ignore
    /// let dns = hickory_resolver::TokioResolver::builder_tokio()?.build();
    /// let builder = Builder::new("wss://stream.example.com/ws")?.resolver_async(move |host, port| {
    ///     let dns = dns.clone();
    ///     async move {
    ///         let ips = dns.lookup_ip(host).await.map_err(std::io::Error::other)?;
    ///         Ok(ips.iter().map(|ip| std::net::SocketAddr::new(ip, port)).collect())
    ///     }
    /// });
    /// ```
    pub fn resolver_async<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(String, u16) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static,
    {
        self.resolver = Some(Arc::new(move |host: &str, port| Box::pin(f(host.to_owned(), port))));
        self
    }

    /// Opens every connection over a stream of the caller's: `f` is called
    /// for each attempt (the first, and every reconnect, each getting a
    /// fresh stream) with what the URL names ([`ConnectTo`]: host, port,
    /// whether it is `wss://`, the attempt's number), and answers with the
    /// stream or an `io::Error`. A Unix socket, an in-memory duplex in
    /// tests, a TLS stream of your own (client certificates from a
    /// hardware key, another TLS library), a corporate proxy library's
    /// tunnel: the session runs over it as over TCP, with every feature
    /// (reconnect, heartbeats, requests, resubscription, the write budget).
    ///
    /// The stream is any `AsyncRead + AsyncWrite + Send + 'static` of the
    /// runtime's I/O traits (tokio's, or `futures-io`'s on smol), turned
    /// into the runtime's `Stream` by `From`:
    /// - returned as it is (or as `Stream::new(s)`), it is the transport:
    ///   wslink runs no TLS over it, whatever the URL's scheme (the
    ///   connector ran any TLS itself);
    /// - returned as `Stream::plain(s)`, it carries plain bytes as a TCP
    ///   connection does: for a `wss://` URL wslink runs its TLS over it,
    ///   with [`tls`](Self::tls)'s settings and the URL's host for SNI and
    ///   the certificate's name, as over its own TCP.
    ///
    /// Settings this replaces, and so ignores: the resolver (either
    /// kind), the proxy ([`proxy`](Self::proxy) and the environment's
    /// variables, which are not read), and
    /// [`connection_attempt_delay`](Self::connection_attempt_delay). The
    /// session's connect timeout covers the connector's future (it is
    /// dropped when the timeout passes). An error becomes
    /// `DisconnectReason::ConnectFailed` with its kind and message, decided
    /// on by the reconnect policy as any; an error of a TLS handshake the
    /// connector ran with rustls (tokio-rustls's or futures-rustls's, the
    /// `rustls::Error` inside) comes out typed, as `DisconnectReason::Tls`.
    ///
    /// ```ignore
    /// // tokio: a Unix socket (on smol, `async_net::unix::UnixStream`).
    /// let (client, events) = wslink_tokio::Builder::new("ws://localhost/feed")?
    ///     .connector(|_to| tokio::net::UnixStream::connect("/run/feed.sock"))
    ///     .connect()
    ///     .await?;
    /// // A proxy library's tunnel, wslink's TLS over it for wss://.
    /// let builder = wslink_tokio::Builder::new("wss://stream.example.com/ws")?.connector(|to| async move {
    ///     let tunnel = corporate_proxy::connect(&to.host, to.port).await?;
    ///     Ok(wslink_tokio::Stream::plain(tunnel))
    /// });
    /// ```
    pub fn connector<F, Fut, S>(mut self, f: F) -> Self
    where
        F: Fn(ConnectTo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
        S: Into<R::Stream> + 'static,
    {
        self.connector = Some(Arc::new(move |to| {
            let connecting = f(to);
            Box::pin(async move { connecting.await.map(Into::into) })
        }));
        self
    }

    /// How long a connection attempt to one of a host's addresses may go
    /// unanswered before the next address is tried beside it (RFC 8305's
    /// Connection Attempt Delay; default 250 ms). The addresses are tried
    /// in the resolver's order, the families interleaved, and the first to
    /// connect is kept, so an address that never answers (a broken IPv6
    /// route) costs this delay, not the connect timeout. Zero tries every
    /// address at once.
    pub fn connection_attempt_delay(mut self, delay: Duration) -> Self {
        self.attempt_delay = delay;
        self
    }

    /// How wslink makes its TCP sockets ([`SocketOptions`]): `TCP_NODELAY`
    /// (on by default), TCP keepalive and its timings (off), a local address
    /// to connect from, the send and receive buffer sizes (the OS's).
    ///
    /// They apply to every TCP connection of the client: to the server, or
    /// to the proxy when it goes through one (the tunnel then runs over
    /// that socket). A [`connector`](Self::connector)'s streams are the
    /// caller's own and ignore them. A value out of range is refused when the
    /// client is built (`Error::Config`, naming the field, such as
    /// `socket.send_buffer` for a zero buffer). A local address the OS will
    /// not bind (not this machine's, a port in use), or whose family none of
    /// the host's addresses has, fails the attempt with
    /// `DisconnectReason::ConnectFailed` of kind `AddrNotAvailable` (or
    /// `AddrInUse`), or `ProxyError::Unreachable` for the proxy's connection.
    ///
    /// ```ignore
    /// let builder = Builder::new("wss://stream.example.com/ws")?.socket(
    ///     SocketOptions::new()
    ///         .keepalive(TcpKeepalive::new(Duration::from_secs(30)).interval(Duration::from_secs(10)))
    ///         .bind("192.0.2.10:0".parse()?),
    /// );
    /// ```
    pub fn socket(mut self, options: SocketOptions) -> Self {
        self.socket = options;
        self
    }
}
