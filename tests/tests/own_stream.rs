//! Connecting over a stream the caller opens (`Builder::connector`), on
//! both runtimes, to real peers: tokio-tungstenite's server over a Unix
//! socket, and over an in-memory duplex. The session runs over it with
//! every feature: heartbeats, requests, and after a cut, the connector
//! called again for a fresh stream, the reconnect and the resubscription.
//! A plain stream for a `wss://` URL gets wslink's TLS; a connector's own
//! TLS is used as it is, and its refusal of a certificate comes out typed.
//! The connector's failures are retried with the attempt counted, and the
//! connect timeout covers a connector that never answers.
//!
//! tokio's connectors hand back tokio streams; smol's hand back
//! `futures-io` ones: an `async_net` Unix socket, and the in-memory duplex
//! through [`Compat`] (tokio's duplex needs no runtime of its own).

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use wslink_adapter::{Builder, ConnectTo, Error, Proxy, Runtime, TlsOptions};
use wslink_core::{
    CloseCode, CloseReason, DisconnectReason, Message, PingConfig, SessionEvent, SessionState, TlsFailure,
};
use wslink_tests::certs::TestCerts;
use wslink_tests::peers::{echo, ExchangeServer};
use wslink_tests::scenario::{builder, run, until};
use wslink_tests::scenarios;

scenarios!(
    a_unix_socket_carries_heartbeats_requests_and_a_reconnect,
    an_in_memory_duplex_carries_heartbeats_requests_and_a_reconnect,
    a_failing_connector_is_retried_with_the_attempt_counted,
    the_connect_timeout_covers_a_connector_that_never_answers,
    a_plain_stream_gets_wslinks_tls_for_wss,
    a_connectors_own_tls_is_used_as_it_is_and_its_refusal_is_typed,
);

/// What each runtime's connector hands back, so that each scenario is written once.
trait Streams: Runtime {
    /// A Unix socket connected to `path`, of the runtime's own kind.
    fn unix(path: PathBuf) -> impl Future<Output = io::Result<Self::Stream>> + Send + 'static;
    /// A tokio stream (one end of an in-memory duplex, or TLS over one) as
    /// the runtime's: as it is, or `plain` for wslink's TLS over it.
    fn wrap<S>(io: S, plain: bool) -> Self::Stream
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static;
}

impl Streams for wslink_tokio::Tokio {
    async fn unix(path: PathBuf) -> io::Result<Self::Stream> {
        tokio::net::UnixStream::connect(path).await.map(wslink_tokio::Stream::from)
    }
    fn wrap<S>(io: S, plain: bool) -> Self::Stream
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        if plain {
            wslink_tokio::Stream::plain(io)
        } else {
            wslink_tokio::Stream::new(io)
        }
    }
}

impl Streams for wslink_smol::Smol {
    async fn unix(path: PathBuf) -> io::Result<Self::Stream> {
        async_net::unix::UnixStream::connect(path).await.map(wslink_smol::Stream::from)
    }
    fn wrap<S>(io: S, plain: bool) -> Self::Stream
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        if plain {
            wslink_smol::Stream::plain(Compat(io))
        } else {
            wslink_smol::Stream::new(Compat(io))
        }
    }
}

/// A tokio stream seen through `futures-io`'s traits.
struct Compat<S>(S);

impl<S: tokio::io::AsyncRead + Unpin> futures_lite::io::AsyncRead for Compat<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut filled = tokio::io::ReadBuf::new(buf);
        ready!(Pin::new(&mut self.0).poll_read(cx, &mut filled))?;
        Poll::Ready(Ok(filled.filled().len()))
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> futures_lite::io::AsyncWrite for Compat<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// What the connector was asked, call by call.
type Calls = Arc<Mutex<Vec<ConnectTo>>>;

/// A directory of its own under the system's temporary one, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("wslink-own-stream-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Heartbeats every second, each answered within 0.9 s; their pongs come as events.
fn with_heartbeats<R: Runtime>(b: Builder<R>) -> Builder<R> {
    b.ping(Some(PingConfig::new(Duration::from_secs(1), Duration::from_millis(900)))).control_events(true)
}

/// The session over the connector's streams, end to end: subscribed, a
/// request answered, a heartbeat answered; the server drops the link; the
/// connector opens a fresh stream, the session reconnects and subscribes
/// again, and requests and heartbeats work on the new link.
async fn heals_over_the_connector<R: Runtime>(server: &ExchangeServer, b: Builder<R>, calls: &Calls) {
    let (client, mut events) = with_heartbeats(b).connect().await.expect("connected over the connector's stream");
    client.subscribe(&["trades"]).await.expect("subscribed");
    for connection in 0..2 {
        until(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
        let response = client.request("public/get_time", None, None).await.expect("answered");
        assert!(response.message.as_text().is_some_and(|t| t.contains(r#""result":"ok""#)), "{}", response.message);
        until(&mut events, |e| matches!(e, SessionEvent::Pong(_))).await;
        assert_eq!(server.methods_on(connection), ["public/subscribe", "public/get_time"]);
        if connection == 0 {
            server.drop_all();
            until(&mut events, |e| matches!(e, SessionEvent::Disconnected { .. })).await;
        }
    }
    let health = client.heartbeat_health().await.expect("health");
    assert!(health.rtt_samples >= 2 && health.total_failures == 0, "{health:?}");
    client.close(CloseCode::Normal, "").await.expect("closed");
    let calls = calls.lock().expect("calls");
    assert_eq!(calls.len(), 2, "one stream per connection: {calls:?}");
    // Each is the first try after a link that was open (or the very first).
    assert!(calls.iter().all(|to| to.host == "feed.test" && to.port == 80 && !to.tls && to.attempt == 1), "{calls:?}");
}

async fn a_unix_socket_carries_heartbeats_requests_and_a_reconnect<R: Streams>() {
    let dir = TempDir::new();
    let path = dir.0.join("feed.sock");
    let server = Arc::new(ExchangeServer::start(true).await);
    let listener = tokio::net::UnixListener::bind(&path).expect("bound a Unix socket");
    let serving = server.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            serving.serve(stream);
        }
    });
    let calls = Calls::default();
    let seen = calls.clone();
    let b = builder::<R>("ws://feed.test/ws").connector(move |to| {
        seen.lock().expect("calls").push(to);
        R::unix(path.clone())
    });
    heals_over_the_connector(&server, b, &calls).await;
}

async fn an_in_memory_duplex_carries_heartbeats_requests_and_a_reconnect<R: Streams>() {
    let server = Arc::new(ExchangeServer::start(true).await);
    let calls = Calls::default();
    let (seen, serving) = (calls.clone(), server.clone());
    let b = builder::<R>("ws://feed.test/ws")
        // Both replaced by the connector: neither is used.
        .proxy(Proxy::url("http://127.0.0.1:9").expect("a proxy URL"))
        .resolver(|host, _| Err(io::Error::new(io::ErrorKind::NotFound, format!("no such host {host}"))))
        .connector(move |to| {
            seen.lock().expect("calls").push(to);
            let (ours, theirs) = tokio::io::duplex(64 << 10);
            serving.serve(theirs);
            std::future::ready(Ok(R::wrap(ours, false)))
        });
    heals_over_the_connector(&server, b, &calls).await;
}

async fn a_failing_connector_is_retried_with_the_attempt_counted<R: Streams>() {
    let server = Arc::new(ExchangeServer::start(true).await);
    let calls = Calls::default();
    let (seen, serving) = (calls.clone(), server.clone());
    let (client, mut events) = builder::<R>("wss://feed.test:8443/ws")
        .connector(move |to| {
            let attempt = to.attempt;
            seen.lock().expect("calls").push(to);
            let opened = match attempt {
                1 | 2 => Err(io::Error::new(io::ErrorKind::ConnectionRefused, "the socket is not there yet")),
                _ => {
                    let (ours, theirs) = tokio::io::duplex(64 << 10);
                    serving.serve(theirs);
                    Ok(R::wrap(ours, false))
                }
            };
            std::future::ready(opened)
        })
        .start()
        .expect("started");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    let failed: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Disconnected { reason: DisconnectReason::ConnectFailed { kind, message } } => {
                Some((*kind, message.as_str()))
            }
            _ => None,
        })
        .collect();
    let refused = (io::ErrorKind::ConnectionRefused, "the socket is not there yet");
    assert_eq!(failed, [refused, refused], "{seen:?}");
    let response = client.request("public/get_time", None, None).await.expect("answered");
    assert!(response.message.as_text().is_some_and(|t| t.contains("ok")), "{}", response.message);
    client.close(CloseCode::Normal, "").await.expect("closed");
    let calls = calls.lock().expect("calls");
    let asked: Vec<_> = calls.iter().map(|to| (to.host.as_str(), to.port, to.tls, to.attempt)).collect();
    assert_eq!(asked, [("feed.test", 8443, true, 1), ("feed.test", 8443, true, 2), ("feed.test", 8443, true, 3)]);
}

/// Counts its drops: the connector's future was dropped, not left running.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

async fn the_connect_timeout_covers_a_connector_that_never_answers<R: Streams>() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let counter = dropped.clone();
    let outcome = builder::<R>("ws://feed.test/ws")
        .config(|c| c.connect_timeout = Duration::from_millis(300))
        // One attempt: no second connector call races the check below.
        .reconnect(false)
        .connector(move |_| {
            let guard = DropCount(counter.clone());
            async move {
                let _guard = guard;
                std::future::pending::<io::Result<R::Stream>>().await
            }
        })
        .connect()
        .await;
    assert!(matches!(outcome, Err(Error::Connect(DisconnectReason::ConnectTimeout))), "{outcome:?}");
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the timed-out connector's future was dropped");
}

/// A connector over an in-memory duplex whose server end runs rustls with
/// `certs`' certificate and then echoes; the client's end goes through
/// `client_end` (the runtime's wrapping, or the connector's own TLS first).
fn tls_echo(certs: &TestCerts) -> impl Fn() -> tokio::io::DuplexStream + Send + Sync + 'static {
    let acceptor = tokio_rustls::TlsAcceptor::from(certs.server_config());
    let runtime = tokio::runtime::Handle::current();
    move || {
        let (ours, theirs) = tokio::io::duplex(64 << 10);
        let acceptor = acceptor.clone();
        runtime.spawn(async move {
            if let Ok(tls) = acceptor.accept(theirs).await {
                echo(tls).await;
            }
        });
        ours
    }
}

/// Sends a text and expects it back.
async fn echoes(client: &wslink_adapter::Client, events: &mut wslink_adapter::Events) {
    client.send_text("over the caller's stream").await.expect("sent");
    let seen = until(events, |e| matches!(e, SessionEvent::Message(_))).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Message(Message::from("over the caller's stream"))));
}

async fn a_plain_stream_gets_wslinks_tls_for_wss<R: Streams>() {
    let certs = TestCerts::generate();
    let open = tls_echo(&certs);
    let (client, mut events) = builder::<R>("wss://localhost/ws")
        .tls(TlsOptions::with_roots(certs.roots()))
        .connector(move |_| std::future::ready(Ok(R::wrap(open(), true))))
        .connect()
        .await
        .expect("connected with wslink's TLS over the plain stream");
    echoes(&client, &mut events).await;
    client.close(CloseCode::Normal, "").await.expect("closed");

    // Its certificate checked as over wslink's own TCP: an unknown issuer is typed.
    let open = tls_echo(&TestCerts::generate());
    let outcome = builder::<R>("wss://localhost/ws")
        .tls(TlsOptions::with_roots(certs.roots()))
        .connector(move |_| std::future::ready(Ok(R::wrap(open(), true))))
        .connect()
        .await;
    let refused = DisconnectReason::Tls { failure: TlsFailure::UnknownIssuer, ever_connected: false };
    assert!(matches!(outcome, Err(Error::Connect(ref reason)) if *reason == refused), "{outcome:?}");
}

/// The connector's own rustls client over `open`'s stream, trusting `roots`.
fn own_tls<R: Streams>(
    roots: rustls::RootCertStore,
    open: impl Fn() -> tokio::io::DuplexStream + Send + Sync + 'static,
) -> impl Fn(ConnectTo) -> Pin<Box<dyn Future<Output = io::Result<R::Stream>> + Send>> + Send + Sync + 'static {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    move |to: ConnectTo| {
        let (connector, stream) = (connector.clone(), open());
        Box::pin(async move {
            let name = rustls::pki_types::ServerName::try_from(to.host).map_err(io::Error::other)?;
            // Its TLS, as it is: wslink runs none over it.
            Ok(R::wrap(connector.connect(name, stream).await?, false))
        })
    }
}

async fn a_connectors_own_tls_is_used_as_it_is_and_its_refusal_is_typed<R: Streams>() {
    let certs = TestCerts::generate();
    let (client, mut events) = builder::<R>("wss://localhost/ws")
        .connector(own_tls::<R>(certs.roots(), tls_echo(&certs)))
        .connect()
        .await
        .expect("connected over the connector's own TLS");
    echoes(&client, &mut events).await;
    client.close(CloseCode::Normal, "").await.expect("closed");

    // The connector's rustls refused the certificate: typed, and the default
    // policy stops a session that was never open, as for wslink's own TLS.
    let (_client, mut events) = builder::<R>("wss://localhost/ws")
        .connector(own_tls::<R>(certs.roots(), tls_echo(&TestCerts::generate())))
        .start()
        .expect("started");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    let reason = DisconnectReason::Tls { failure: TlsFailure::UnknownIssuer, ever_connected: false };
    let end = [
        SessionEvent::Disconnected { reason },
        SessionEvent::StateChanged { from: SessionState::Connecting, to: SessionState::Closed },
        SessionEvent::Closed { reason: CloseReason::Stopped },
    ];
    assert!(seen.ends_with(&end), "{seen:?}");
}
