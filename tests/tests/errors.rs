//! `on_error` sees every error kind, on both runtimes, over real loopback
//! sockets: a port with nothing listening, a certificate the client refuses,
//! an upgrade answered 403, a server that breaks the protocol, and a link
//! that goes silent under the heartbeat. Each reaches the builder's
//! `on_error` as its typed `SessionError`, before the `Disconnected` event
//! that reports it (the session calls the hook while handling the failure,
//! and the driver delivers events after that call); `Stop` ends the client.
//!
//! Every wait is on an event, bounded by `WAIT`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wslink_adapter::{Builder, Events, Runtime, TlsOptions};
use wslink_core::hooks::{Decision, SessionError};
use wslink_core::{CloseCode, CloseReason, HandshakeError, PingConfig, ProtocolError, SessionEvent, TlsFailure};
use wslink_tests::certs::TestCerts;
use wslink_tests::peers::{echo_server, refusing_server};
use wslink_tests::proxy::{Fault, FaultProxy};
use wslink_tests::scenario::{builder, run, until};
use wslink_tests::scenarios;

scenarios!(
    a_port_with_nothing_listening_is_connect_failed,
    a_refused_certificate_is_tls_and_the_default_rule_still_stops,
    an_upgrade_answered_403_is_a_refused_handshake,
    a_reserved_opcode_and_invalid_utf8_are_protocol_violations,
    a_blackholed_link_is_a_heartbeat_timeout,
    stop_from_on_error_ends_the_client,
);

/// The errors `on_error` saw, shared with the test.
type Seen = Arc<Mutex<Vec<SessionError>>>;

/// `builder` with an `on_error` that logs each error and answers `answer`.
fn logging<R: Runtime>(url: &str, answer: Decision) -> (Builder<R>, Seen) {
    let seen = Seen::default();
    let log = seen.clone();
    let builder = builder::<R>(url).on_error(move |error| {
        log.lock().expect("log lock").push(error.clone());
        answer
    });
    (builder, seen)
}

/// Waits for the next `Disconnected`, and checks that `on_error` had seen
/// the error its reason maps to by then; returns that error. (The errors of
/// later attempts may be logged already, behind it: the driver runs ahead
/// of the consumer.)
async fn next_error(events: &mut Events, seen: &Seen) -> SessionError {
    let events = until(events, |e| matches!(e, SessionEvent::Disconnected { .. })).await;
    let Some(SessionEvent::Disconnected { reason }) = events.last() else { unreachable!("until stops at it") };
    let mut log = seen.lock().expect("log lock");
    assert!(!log.is_empty(), "on_error saw {reason:?} before it was reported");
    let error = log.remove(0);
    assert_eq!(SessionError::from_disconnect(reason).as_ref(), Some(&error), "{reason:?}");
    error
}

/// A loopback port that was free a moment ago and has no listener now.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
    listener.local_addr().expect("bound address")
    // Dropped here: connecting to it is refused.
}

async fn a_port_with_nothing_listening_is_connect_failed<R: Runtime>() {
    let (builder, seen) = logging::<R>(&format!("ws://{}/", closed_port()), Decision::Reconnect);
    let (client, mut events) = builder.start().expect("started");
    match next_error(&mut events, &seen).await {
        SessionError::ConnectFailed { kind, .. } => assert_eq!(kind, std::io::ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }
    // Reconnect leaves it to the policy, which retries.
    until(&mut events, |e| matches!(e, SessionEvent::Reconnecting { .. })).await;
    client.close(CloseCode::Normal, "").await.expect("closed");
}

async fn a_refused_certificate_is_tls_and_the_default_rule_still_stops<R: Runtime>() {
    let addr = echo_server(Some(TestCerts::generate().server_config())).await;
    let (builder, seen) = logging::<R>(&format!("wss://{addr}/"), Decision::Reconnect);
    let trusted = TestCerts::generate();
    let (_client, mut events) = builder.tls(TlsOptions::with_roots(trusted.roots())).start().expect("started");
    let error = next_error(&mut events, &seen).await;
    assert_eq!(error, SessionError::Tls { failure: TlsFailure::UnknownIssuer, ever_connected: false });
    // on_error's Reconnect left the decision to the default policy, which stops on it.
    let end = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert_eq!(end.last(), Some(&SessionEvent::Closed { reason: CloseReason::Stopped }), "{end:?}");
}

async fn an_upgrade_answered_403_is_a_refused_handshake<R: Runtime>() {
    let addr = refusing_server().await;
    let (builder, seen) = logging::<R>(&format!("ws://{addr}/"), Decision::Reconnect);
    let (client, mut events) = builder.start().expect("started");
    match next_error(&mut events, &seen).await {
        SessionError::Handshake(HandshakeError::Refused(refused)) => {
            assert_eq!((refused.status, refused.body.as_slice()), (403, &b"no token, no entry"[..]));
            assert!(refused.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-length")));
        }
        other => panic!("{other:?}"),
    }
    client.close(CloseCode::Normal, "").await.expect("closed");
}

/// Upgrades every connection (tokio-tungstenite's server side), then writes
/// `bad` past tungstenite's framing and reads until the client hangs up.
async fn breaking_server(bad: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind on loopback");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                let tcp = ws.get_mut();
                if tcp.write_all(bad).await.is_err() {
                    return;
                }
                let mut sink = [0u8; 1024];
                while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

async fn a_reserved_opcode_and_invalid_utf8_are_protocol_violations<R: Runtime>() {
    let cases: [(&'static [u8], ProtocolError, CloseCode); 2] = [
        (&[0x83, 0x00], ProtocolError::ReservedOpcode(3), CloseCode::Protocol),
        (&[0x81, 0x01, 0xff], ProtocolError::InvalidUtf8, CloseCode::Invalid),
    ];
    for (bad, violation, code) in cases {
        let addr = breaking_server(bad).await;
        let (builder, seen) = logging::<R>(&format!("ws://{addr}/"), Decision::Reconnect);
        let (client, mut events) = builder.start().expect("started");
        let error = next_error(&mut events, &seen).await;
        assert_eq!(error, SessionError::Protocol { error: violation, sent_code: Some(code) });
        client.close(CloseCode::Normal, "").await.expect("closed");
    }
}

async fn a_blackholed_link_is_a_heartbeat_timeout<R: Runtime>() {
    let proxy = FaultProxy::start(echo_server(None).await).await;
    let (builder, seen) = logging::<R>(&format!("ws://{}/", proxy.addr), Decision::Reconnect);
    let ping = PingConfig::new(Duration::from_millis(200), Duration::from_millis(100));
    let (client, mut events) = builder.ping(Some(ping)).connect().await.expect("connected");
    proxy.set(Fault::Blackhole);
    assert_eq!(next_error(&mut events, &seen).await, SessionError::HeartbeatTimeout);
    client.close(CloseCode::Normal, "").await.expect("closed");
}

async fn stop_from_on_error_ends_the_client<R: Runtime>() {
    // Without on_error, a refused upgrade is retried for ever; on_error stops it.
    let addr = refusing_server().await;
    let (builder, seen) = logging::<R>(&format!("ws://{addr}/"), Decision::Stop);
    let (client, mut events) = builder.start().expect("started");
    let error = next_error(&mut events, &seen).await;
    assert!(matches!(error, SessionError::Handshake(HandshakeError::Refused(_))), "{error:?}");
    let end = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert!(!end.iter().any(|e| matches!(e, SessionEvent::Reconnecting { .. })), "{end:?}");
    assert_eq!(end.last(), Some(&SessionEvent::Closed { reason: CloseReason::Stopped }), "{end:?}");
    assert!(events.recv().await.is_none(), "nothing follows Closed");
    assert!(client.send_text("late").await.is_err(), "the client is closed");
    assert!(seen.lock().expect("log lock").is_empty(), "asked once");
}
