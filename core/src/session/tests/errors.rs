//! `on_error` sees every error: which `SessionError` each way a connection
//! can fail becomes, the order of the policy's two calls, what `Stop` does,
//! and what is no error (a clean close, the user's reconnect).

use std::sync::{Arc, Mutex};

use super::*;
use crate::hooks::{Decision, ReconnectPolicy, SessionError};
use crate::presets::JsonRpcAuth;
use crate::{ConfigError, ConnectionError, HandshakeError, PingConfig, ProtocolError, TlsFailure};

/// One call the session made to the policy (or to the builder's `on_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Error(SessionError),
    Disconnect(DisconnectReason),
    /// The builder's `on_error` function.
    Closure(SessionError),
}

/// The calls, shared between a policy moved into the session and the test.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Call>>>);

impl Log {
    fn push(&self, call: Call) {
        self.0.lock().unwrap().push(call);
    }
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Logs each call and answers as told.
struct Logged {
    log: Log,
    on_error: Decision,
    on_disconnect: Decision,
}

impl ReconnectPolicy for Logged {
    fn on_disconnect(&mut self, reason: &DisconnectReason, _: u32) -> Decision {
        self.log.push(Call::Disconnect(reason.clone()));
        self.on_disconnect
    }
    fn on_error(&mut self, error: &SessionError) -> Decision {
        self.log.push(Call::Error(error.clone()));
        self.on_error
    }
}

/// A builder whose policy logs and reconnects, and the log.
fn logged(builder: SessionBuilder) -> (SessionBuilder, Log) {
    let log = Log::default();
    let policy = Logged { log: log.clone(), on_error: Decision::Reconnect, on_disconnect: Decision::Reconnect };
    (builder.policy(policy), log)
}

/// Checks that one connection ended since the last look, that `on_error`
/// saw its error first and `on_disconnect` its reason next, that the error
/// is what `from_disconnect` makes of the reason, and that no `Error`
/// event repeated it; returns the error.
fn the_error(f: &mut Fake, log: &Log) -> SessionError {
    let events = f.events();
    assert!(!events.iter().any(|e| matches!(e, SessionEvent::Error(_))), "reported once, as Disconnected: {events:?}");
    let reasons = disconnects(&events);
    let [reason] = reasons.as_slice() else { panic!("one disconnect: {events:?}") };
    match log.take().as_slice() {
        [Call::Error(error), Call::Disconnect(seen)] => {
            assert_eq!(seen, reason);
            assert_eq!(SessionError::from_disconnect(reason).as_ref(), Some(error));
            error.clone()
        }
        other => panic!("on_error, then on_disconnect: {other:?}"),
    }
}

/// Connects and leaves the transport opening.
fn connecting(builder: SessionBuilder) -> Fake {
    let mut f = Fake::new(builder);
    f.s.connect(f.now).unwrap();
    f.step();
    f.events();
    f
}

#[test]
fn a_transport_that_cannot_open_is_connect_failed() {
    let (b, log) = logged(builder());
    let mut f = connecting(b);
    f.refuse_transport();
    let error = the_error(&mut f, &log);
    assert_eq!(
        error,
        SessionError::ConnectFailed { kind: std::io::ErrorKind::ConnectionRefused, message: "refused".into() }
    );
    assert_eq!(f.s.state(), SessionState::Backoff, "on_disconnect's Reconnect still decides");
}

#[test]
fn a_transport_that_does_not_open_in_time_is_connect_timeout() {
    let (b, log) = logged(builder());
    let mut f = connecting(b);
    assert_eq!(f.advance(), secs(10));
    assert_eq!(the_error(&mut f, &log), SessionError::ConnectTimeout);
}

#[test]
fn a_failed_tls_handshake_is_tls_with_whether_the_session_was_open() {
    let (b, log) = logged(builder());
    let mut f = connecting(b);
    let failure = TlsFailure::UnknownIssuer;
    f.s.handle_tls_failure(failure.clone(), f.now);
    f.step();
    assert_eq!(the_error(&mut f, &log), SessionError::Tls { failure: failure.clone(), ever_connected: false });
    assert_eq!(f.s.state(), SessionState::Backoff, "the logging policy reconnects where the default would stop");

    f.advance();
    f.establish();
    f.server_drop();
    log.take();
    f.advance();
    f.events();
    f.s.handle_tls_failure(failure.clone(), f.now);
    f.step();
    assert_eq!(the_error(&mut f, &log), SessionError::Tls { failure, ever_connected: true });
}

#[test]
fn a_bad_header_from_headers_fn_is_bad_request() {
    let (b, log) = logged(builder().headers_fn(|_| vec![("X-Token\n".into(), "t".into())]));
    let mut f = connecting(b);
    f.accept_transport();
    assert_eq!(the_error(&mut f, &log), SessionError::BadRequest(ConfigError::InvalidHeaderName("X-Token\n".into())));
}

#[test]
fn a_refused_upgrade_is_handshake_with_the_status_and_headers() {
    let (b, log) = logged(builder());
    let mut f = connecting(b);
    f.accept_transport();
    f.input(b"HTTP/1.1 403 Forbidden\r\nX-Why: banned\r\nContent-Length: 2\r\n\r\nno");
    match the_error(&mut f, &log) {
        SessionError::Handshake(HandshakeError::Refused(refused)) => {
            assert_eq!(
                (refused.status, refused.reason.as_str(), refused.body.as_slice()),
                (403, "Forbidden", &b"no"[..])
            );
            assert!(refused.headers.contains(&("X-Why".into(), "banned".into())), "{:?}", refused.headers);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_invalid_upgrade_answer_is_handshake() {
    let (b, log) = logged(builder());
    let mut f = connecting(b);
    f.accept_transport();
    f.input(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n");
    assert_eq!(the_error(&mut f, &log), SessionError::Handshake(HandshakeError::AcceptKey));
}

#[test]
fn an_unanswered_upgrade_is_handshake_timeout() {
    let (b, log) = logged(builder());
    let mut f = connecting(b);
    f.accept_transport();
    assert_eq!(f.advance(), secs(10));
    assert_eq!(the_error(&mut f, &log), SessionError::HandshakeTimeout);
}

#[test]
fn a_violation_by_the_server_is_protocol_with_the_close_code_sent() {
    let cases: [(&[u8], ProtocolError, CloseCode); 3] = [
        (&[0x83, 0x00], ProtocolError::ReservedOpcode(3), CloseCode::Protocol),
        (&[0x81, 0x01, 0xff], ProtocolError::InvalidUtf8, CloseCode::Invalid),
        (&[0x82, 0x7e, 0x01, 0x00], ProtocolError::FrameTooLarge { size: 256, limit: 100 }, CloseCode::Size),
    ];
    for (bytes, violation, code) in cases {
        let (b, log) = logged(builder().max_frame_size(100));
        let mut f = Fake::open(b);
        f.input(bytes);
        // Acted on once the caller has taken every event before it (none here).
        assert_eq!(f.s.poll_event(), None);
        assert_eq!(f.advance(), Duration::ZERO);
        assert_eq!(f.got(), [Got::Close(Some(code.into()))]);
        assert_eq!(the_error(&mut f, &log), SessionError::Protocol { error: violation, sent_code: Some(code) });
    }
}

#[test]
fn a_transport_that_ends_without_a_close_is_unexpected_eof() {
    let (b, log) = logged(builder());
    let mut f = Fake::open(b);
    f.server_drop();
    assert_eq!(the_error(&mut f, &log), SessionError::UnexpectedEof { mid_frame: false });

    let (b, log) = logged(builder());
    let mut f = Fake::open(b);
    f.input(&[0x81, 0x05, b'a', b'b']);
    f.server_drop();
    assert_eq!(the_error(&mut f, &log), SessionError::UnexpectedEof { mid_frame: true });
}

#[test]
fn a_transport_that_breaks_is_transport() {
    let (b, log) = logged(builder());
    let mut f = Fake::open(b);
    f.s.handle_transport_error(std::io::ErrorKind::ConnectionReset, "reset by peer", f.now);
    f.step();
    assert_eq!(
        the_error(&mut f, &log),
        SessionError::Transport { kind: std::io::ErrorKind::ConnectionReset, message: "reset by peer".into() }
    );
}

#[test]
fn a_missed_pong_is_heartbeat_timeout_and_silence_is_idle_timeout() {
    let (b, log) = logged(builder().ping(Some(PingConfig { interval: secs(15), timeout: secs(5) })));
    let mut f = Fake::open(b);
    assert_eq!(f.advance(), secs(15));
    assert!(matches!(f.got().as_slice(), [Got::Ping(_)]));
    assert_eq!(f.advance(), secs(5));
    assert_eq!(the_error(&mut f, &log), SessionError::HeartbeatTimeout);

    let (b, log) = logged(builder().idle_timeout(secs(30)));
    let mut f = Fake::open(b);
    assert_eq!(f.advance(), secs(30));
    assert_eq!(the_error(&mut f, &log), SessionError::IdleTimeout);
}

#[test]
fn a_clean_close_and_the_users_reconnect_are_no_errors() {
    let (b, log) = logged(builder());
    let mut f = Fake::open(b);
    f.input(&[0x88, 0x02, 0x03, 0xf3]); // the server closes cleanly with 1011
    match log.take().as_slice() {
        [Call::Disconnect(DisconnectReason::Closed(closed))] => assert!(closed.is_clean()),
        other => panic!("on_disconnect only: {other:?}"),
    }

    let (b, log) = logged(builder());
    let mut f = Fake::open(b);
    f.s.reconnect(f.now).unwrap();
    f.step();
    assert_eq!(log.take(), [], "the user decided already");
    assert!(disconnects(&f.events()).contains(&DisconnectReason::UserReconnect));
}

#[test]
fn on_errors_stop_stops_without_asking_on_disconnect() {
    let log = Log::default();
    let policy = Logged { log: log.clone(), on_error: Decision::Stop, on_disconnect: Decision::Reconnect };
    let mut f = Fake::open(builder().policy(policy));
    f.server_drop();
    let events = f.events();
    assert_eq!(events.last(), Some(&SessionEvent::Closed { reason: CloseReason::Stopped }), "{events:?}");
    assert_eq!(log.take(), [Call::Error(SessionError::UnexpectedEof { mid_frame: false })]);
    assert_eq!((f.s.state(), f.opened, f.closed), (SessionState::Closed, 1, 1));
}

#[test]
fn on_errors_other_answers_leave_the_decision_to_on_disconnect() {
    for answer in [Decision::Ignore, Decision::ReconnectNow, Decision::ReconnectAfter(secs(1))] {
        let log = Log::default();
        let policy = Logged { log: log.clone(), on_error: answer, on_disconnect: Decision::ReconnectAfter(secs(7)) };
        let mut f = Fake::open(builder().policy(policy));
        f.server_drop();
        let events = f.events();
        assert!(
            matches!(events.last(), Some(SessionEvent::Reconnecting { delay, .. }) if *delay == secs(7)),
            "{answer:?}: {events:?}"
        );
        assert_eq!(log.take().len(), 2);
    }
}

#[test]
fn the_default_on_error_changes_nothing() {
    // Only on_disconnect overridden, as every policy before on_error saw every error.
    struct Delay;
    impl ReconnectPolicy for Delay {
        fn on_disconnect(&mut self, _: &DisconnectReason, _: u32) -> Decision {
            Decision::ReconnectAfter(secs(3))
        }
    }
    let mut f = connecting(builder().policy(Delay));
    f.refuse_transport();
    assert_eq!(f.advance(), secs(3));
    // The default policy: a certificate refused before the first open still stops, a failed negotiation is retried.
    let mut f = connecting(builder());
    f.s.handle_tls_failure(TlsFailure::Expired, f.now);
    assert_eq!(f.s.state(), SessionState::Closed);
    let mut f = connecting(builder());
    f.s.handle_tls_failure(TlsFailure::NotTls, f.now);
    assert_eq!(f.s.state(), SessionState::Backoff);
}

#[test]
fn the_configuration_that_stops_leaves_no_choice_to_ask_about() {
    for b in [builder().reconnect(false), builder().config(|c| c.reconnect_on_error = false)] {
        let (b, log) = logged(b);
        let mut f = Fake::open(b);
        f.server_drop();
        assert_eq!(f.s.state(), SessionState::Closed);
        assert_eq!(log.take(), []);
    }
}

/// The builder's `on_error` answers in place of the policy's `on_error`,
/// whichever was set first; the policy still answers `on_disconnect`.
#[test]
fn the_builders_on_error_replaces_the_policys_in_either_order() {
    fn closure(log: Log, answer: Decision) -> impl FnMut(&SessionError) -> Decision + Send {
        move |e| {
            log.push(Call::Closure(e.clone()));
            answer
        }
    }
    type Order = fn(SessionBuilder, Logged, Log) -> SessionBuilder;
    let policy_first: Order = |b, p, log| b.policy(p).on_error(closure(log, Decision::Reconnect));
    let policy_last: Order = |b, p, log| b.on_error(closure(log, Decision::Reconnect)).policy(p);
    for order in [policy_first, policy_last] {
        let log = Log::default();
        let policy = Logged { log: log.clone(), on_error: Decision::Stop, on_disconnect: Decision::ReconnectNow };
        let mut f = Fake::open(order(builder(), policy, log.clone()));
        f.server_drop();
        let eof = SessionError::UnexpectedEof { mid_frame: false };
        let reason = disconnects(&f.events()).remove(0);
        assert_eq!(log.take(), [Call::Closure(eof), Call::Disconnect(reason)]);
        assert_eq!(f.s.state(), SessionState::Connecting, "the policy's on_disconnect decided");
    }

    let log = Log::default();
    let mut f = Fake::open(builder().on_error(closure(log.clone(), Decision::Stop)));
    f.server_drop();
    assert_eq!(log.take(), [Call::Closure(SessionError::UnexpectedEof { mid_frame: false })]);
    assert_eq!(f.events().last(), Some(&SessionEvent::Closed { reason: CloseReason::Stopped }));
}

fn with_auth() -> SessionBuilder {
    builder().authenticator(JsonRpcAuth::new("public/auth", |_| "{}".to_owned()))
}

#[test]
fn authentication_errors_are_decided_by_on_error_alone() {
    let (b, log) = logged(with_auth());
    let mut f = connecting(b);
    f.establish();
    let login = f.texts().remove(0);
    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{},"error":{{"message":"denied"}}}}"#, id_of(&login)));
    let rejected = SessionError::AuthRejected(format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{{"message":"denied"}}}}"#,
        id_of(&login)
    ));
    assert_eq!(log.take(), [Call::Error(rejected.clone())], "no on_disconnect for it");
    let events = f.events();
    assert_eq!(events[0], SessionEvent::Error(rejected.clone()));
    assert_eq!(disconnects(&events), [DisconnectReason::Error(rejected)]);

    f.advance();
    f.establish();
    f.got();
    assert_eq!(f.advance(), secs(10));
    assert_eq!(log.take(), [Call::Error(SessionError::AuthTimeout)]);

    let log = Log::default();
    let mut f = connecting(with_auth().on_error(move |e| {
        log.push(Call::Closure(e.clone()));
        Decision::Ignore
    }));
    f.establish();
    f.got();
    assert_eq!(f.advance(), secs(10));
    assert_eq!(f.s.state(), SessionState::Open, "Ignore keeps the connection");
}

/// Every way a connection can end maps to an error exactly when it is one,
/// and every error reads as a sentence with its detail.
#[test]
fn from_disconnect_agrees_with_is_error_and_each_error_reads_as_a_sentence() {
    let closed = |error: Option<ConnectionError>, sent_code| {
        let initiator = crate::Initiator::Remote;
        let code = if error.is_some() { CloseCode::Abnormal } else { CloseCode::Away };
        DisconnectReason::Closed(Box::new(crate::Closed { initiator, code, reason: String::new(), sent_code, error }))
    };
    let kind = std::io::ErrorKind::ConnectionReset;
    let cases = [
        (DisconnectReason::UserReconnect, None),
        (closed(None, Some(CloseCode::Away)), None),
        (DisconnectReason::ConnectTimeout, Some("the transport did not open within connect_timeout")),
        (
            DisconnectReason::ConnectFailed { kind: std::io::ErrorKind::ConnectionRefused, message: "refused".into() },
            Some("the transport could not be opened (connection refused): refused"),
        ),
        (
            DisconnectReason::BadRequest(ConfigError::InvalidHeaderName("a b".into())),
            Some("the upgrade request is invalid: invalid header name \"a b\""),
        ),
        (
            DisconnectReason::Tls { failure: TlsFailure::Expired, ever_connected: true },
            Some("the TLS handshake failed: the server's certificate has expired"),
        ),
        (DisconnectReason::HeartbeatTimeout, Some("the heartbeat was not answered in time")),
        (DisconnectReason::IdleTimeout, Some("nothing arrived within idle_timeout")),
        (DisconnectReason::Error(SessionError::AuthTimeout), Some("the authentication was not answered in time")),
        (
            closed(Some(ConnectionError::Handshake(HandshakeError::UpgradeHeader)), None),
            Some("the WebSocket handshake failed: missing or wrong Upgrade header"),
        ),
        (
            closed(Some(ConnectionError::HandshakeTimeout), None),
            Some("the WebSocket handshake did not complete in time"),
        ),
        (
            closed(Some(ConnectionError::Protocol(ProtocolError::MaskedFrame)), Some(CloseCode::Protocol)),
            Some("the server broke the WebSocket protocol: the server sent a masked frame"),
        ),
        (
            closed(Some(ConnectionError::UnexpectedEof { mid_frame: true }), None),
            Some("the connection ended without a close frame (in the middle of a frame)"),
        ),
        (
            closed(Some(ConnectionError::Transport { kind, message: "reset".into() }), None),
            Some("the transport failed (connection reset): reset"),
        ),
        (
            closed(Some(ConnectionError::CloseTimeout), Some(CloseCode::Normal)),
            Some("the server did not answer the close within close_timeout"),
        ),
    ];
    for (reason, text) in cases {
        let error = SessionError::from_disconnect(&reason);
        assert_eq!(error.is_some(), reason.is_error(), "{reason:?}");
        assert_eq!(error.map(|e| e.to_string()).as_deref(), text, "{reason:?}");
    }
}

#[test]
fn an_authentication_error_does_not_reconnect_when_the_configuration_forbids_it() {
    for b in [with_auth().reconnect(false), with_auth().config(|c| c.reconnect_on_error = false)] {
        let mut f = connecting(b.on_error(|_| Decision::ReconnectNow));
        f.establish();
        f.got();
        assert_eq!(f.advance(), secs(10), "the authentication times out");
        let events = f.events();
        assert_eq!(events.last(), Some(&SessionEvent::Closed { reason: CloseReason::Stopped }), "{events:?}");
        assert_eq!((f.opened, f.s.state()), (1, SessionState::Closed));
    }
}
