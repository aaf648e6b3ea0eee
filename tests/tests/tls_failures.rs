//! TLS failures on both runtimes, against real rustls servers on loopback.
//!
//! A certificate the client refuses (unknown issuer, a forged issuer, the
//! wrong name, expired) is a typed `DisconnectReason::Tls`, and the default
//! policy stops a session that was never open at once: the client is
//! misconfigured, and retrying would meet the same certificate forever. A
//! session that was open before keeps reconnecting through the same refusal
//! and heals when the server's certificate is fixed. A server that does not
//! speak TLS, or hangs up mid-handshake, is a TLS failure that is retried.

use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use wslink_adapter::{Error, Runtime, TlsOptions};
use wslink_core::{CloseCode, CloseReason, DisconnectReason, SessionEvent, SessionState, TlsFailure};
use wslink_tests::certs::TestCerts;
use wslink_tests::peers::{echo_server, refusing_server};
use wslink_tests::scenario::{builder, run, until};
use wslink_tests::scenarios;

scenarios!(
    an_unknown_issuer_stops_a_session_that_was_never_open,
    a_forged_issuer_stops_a_session_that_was_never_open,
    a_name_mismatch_stops_a_session_that_was_never_open,
    an_expired_certificate_stops_a_session_that_was_never_open,
    a_server_that_does_not_speak_tls_is_retried,
    a_certificate_refused_after_the_session_was_open_is_retried_until_fixed,
);

/// Connects to a server presenting `served`'s certificate with only
/// `trusted`'s CA trusted, and checks the session ends at once with
/// `Disconnected { Tls(want) }` and `Closed { Stopped }`, without a retry.
async fn stops_at_once<R: Runtime>(served: &TestCerts, trusted: &TestCerts, host: &str, want: TlsFailure) {
    let addr = echo_server(Some(served.server_config())).await;
    let url = format!("wss://{host}:{}/", addr.port());
    let (_client, mut events) =
        builder::<R>(&url).tls(TlsOptions::with_roots(trusted.roots())).start().expect("started");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    let reason = DisconnectReason::Tls { failure: want, ever_connected: false };
    let end = [
        SessionEvent::Disconnected { reason },
        SessionEvent::StateChanged { from: SessionState::Connecting, to: SessionState::Closed },
        SessionEvent::Closed { reason: CloseReason::Stopped },
    ];
    assert!(seen.ends_with(&end), "{seen:?}");
    assert_eq!(seen.len(), 4, "one attempt and no retry: {seen:?}");
}

async fn an_unknown_issuer_stops_a_session_that_was_never_open<R: Runtime>() {
    // The client trusts another CA than the one that signed the server's certificate.
    stops_at_once::<R>(&TestCerts::generate(), &TestCerts::generate(), "127.0.0.1", TlsFailure::UnknownIssuer).await;
}

async fn a_forged_issuer_stops_a_session_that_was_never_open<R: Runtime>() {
    let trusted = TestCerts::generate();
    stops_at_once::<R>(&TestCerts::impostor_of(&trusted), &trusted, "127.0.0.1", TlsFailure::BadSignature).await;
}

async fn a_name_mismatch_stops_a_session_that_was_never_open<R: Runtime>() {
    let certs = TestCerts::for_names(&["other.example"]);
    let want = TlsFailure::NameMismatch { expected: "localhost".into(), presented: vec!["other.example".into()] };
    stops_at_once::<R>(&certs, &certs, "localhost", want).await;
    // `connect` returns the reason, and it reads as a sentence.
    let addr = echo_server(Some(certs.server_config())).await;
    let connect = builder::<R>(&format!("wss://127.0.0.1:{}/", addr.port()))
        .tls(TlsOptions::with_roots(certs.roots()))
        .connect()
        .await;
    let Err(error @ Error::Connect(DisconnectReason::Tls { .. })) = connect else { panic!("{:?}", connect.err()) };
    assert_eq!(
        error.to_string(),
        "could not connect: the TLS handshake failed: \
         the server's certificate is not valid for 127.0.0.1 (it names other.example)"
    );
}

async fn an_expired_certificate_stops_a_session_that_was_never_open<R: Runtime>() {
    let certs = TestCerts::expired();
    stops_at_once::<R>(&certs, &certs, "127.0.0.1", TlsFailure::Expired).await;
}

async fn a_server_that_does_not_speak_tls_is_retried<R: Runtime>() {
    let trusted = TestCerts::generate();
    // An HTTP server answers the ClientHello with `HTTP/1.1 403`.
    let http = refusing_server().await;
    // This one reads the ClientHello and hangs up (having read it, with a
    // FIN: closing with unread bytes would reset the link, a transport error).
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind on loopback");
    let hangs_up = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut hello = [0u8; 4096];
            let _ = tcp.read(&mut hello).await;
        }
    });
    let cases = [
        (http, TlsFailure::NotTls),
        (hangs_up, TlsFailure::HandshakeFailure("the server closed the connection during the handshake".into())),
    ];
    for (addr, want) in cases {
        let (client, mut events) = builder::<R>(&format!("wss://{addr}/"))
            .tls(TlsOptions::with_roots(trusted.roots()))
            .start()
            .expect("started");
        let reason = DisconnectReason::Tls { failure: want, ever_connected: false };
        // Retried, and refused the same way again.
        for attempt in 2..4 {
            let seen = until(&mut events, |e| matches!(e, SessionEvent::Reconnecting { .. })).await;
            assert!(seen.contains(&SessionEvent::Disconnected { reason: reason.clone() }), "{seen:?}");
            assert!(matches!(seen.last(), Some(SessionEvent::Reconnecting { attempt: a, .. }) if *a == attempt));
        }
        client.close(CloseCode::Normal, "").await.expect("closed");
    }
}

/// A TLS echo server whose certificate can be changed: each new connection
/// gets the current one, and a change cuts the open connections.
struct SwitchingServer {
    addr: std::net::SocketAddr,
    config: Arc<Mutex<Arc<rustls::ServerConfig>>>,
    cut: tokio::sync::watch::Sender<u32>,
}

impl SwitchingServer {
    async fn start(config: Arc<rustls::ServerConfig>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind on loopback");
        let addr = listener.local_addr().expect("bound address");
        let config = Arc::new(Mutex::new(config));
        let (cut, cuts) = tokio::sync::watch::channel(0);
        let current = config.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let config = current.lock().expect("config lock").clone();
                let mut cuts = cuts.clone();
                // Only a switch after this connection cuts it.
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(tls) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await else { return };
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else { return };
                    loop {
                        tokio::select! {
                            _ = cuts.changed() => return,
                            message = ws.next() => match message {
                                Some(Ok(m)) if m.is_text() || m.is_binary() => {
                                    if ws.send(m).await.is_err() {
                                        return;
                                    }
                                }
                                Some(Ok(_)) => {}
                                _ => return,
                            },
                        }
                    }
                });
            }
        });
        Self { addr, config, cut }
    }

    /// Presents `config` from the next connection on, and cuts the open ones.
    fn switch(&self, config: Arc<rustls::ServerConfig>) {
        *self.config.lock().expect("config lock") = config;
        self.cut.send_modify(|n| *n += 1);
    }
}

async fn a_certificate_refused_after_the_session_was_open_is_retried_until_fixed<R: Runtime>() {
    let good = TestCerts::generate();
    let server = SwitchingServer::start(good.server_config()).await;
    let (client, mut events) = builder::<R>(&format!("wss://{}/", server.addr))
        .tls(TlsOptions::with_roots(good.roots()))
        .start()
        .expect("started");
    until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;

    // The server comes back with a certificate from a CA the client does not trust.
    server.switch(TestCerts::generate().server_config());
    let reason = DisconnectReason::Tls { failure: TlsFailure::UnknownIssuer, ever_connected: true };
    for _ in 0..2 {
        let seen =
            until(&mut events, |e| matches!(e, SessionEvent::Disconnected { reason: DisconnectReason::Tls { .. } }))
                .await;
        assert_eq!(seen.last(), Some(&SessionEvent::Disconnected { reason: reason.clone() }), "{seen:?}");
        let next =
            until(&mut events, |e| matches!(e, SessionEvent::Reconnecting { .. } | SessionEvent::Closed { .. })).await;
        assert!(matches!(next.last(), Some(SessionEvent::Reconnecting { .. })), "not stopped: {next:?}");
    }

    // Fixed: the client heals by itself.
    server.switch(good.server_config());
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Connected { .. } | SessionEvent::Closed { .. })).await;
    assert!(matches!(seen.last(), Some(SessionEvent::Connected { .. })), "{seen:?}");
    client.send_text("back".to_owned()).await.expect("sent");
    until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
    client.close(CloseCode::Normal, "").await.expect("closed");
}
