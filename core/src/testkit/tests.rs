//! The kit's own behaviour: its answers, its clock, and the messages it
//! panics with when a script asks for something the state does not allow.

// The fake clock needs one arbitrary origin; nothing reads the clock after it.
#![allow(clippy::disallowed_methods)]

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use super::*;
use crate::{
    BackoffConfig, DisconnectReason, HandshakeError, PingConfig, Session, SessionBuilder, SessionEvent, SessionState,
};

fn builder() -> SessionBuilder {
    Session::builder("ws://feed.test:9001/ws?x=1").expect("valid URL").ping(None)
}

fn open(builder: SessionBuilder) -> FakeServer {
    let mut kit = FakeServer::new(builder, Instant::now()).expect("valid config");
    kit.connect();
    kit.accept();
    kit.sent();
    kit.events();
    kit
}

#[test]
fn the_upgrade_request_and_endpoint_are_visible() {
    let mut kit = FakeServer::new(builder().header("X-Token", "abc"), Instant::now()).unwrap();
    assert_eq!((kit.link(), kit.transports_opened()), (Link::Down, 0));
    kit.connect();
    assert_eq!(kit.link(), Link::Opening);
    assert_eq!(kit.endpoint(), Some(&Endpoint { host: "feed.test".into(), port: 9001, tls: false }));
    kit.accept_transport();
    let request = kit.expect_upgrade();
    assert_eq!((request.path(), request.header("x-token")), ("/ws?x=1", Some("abc")));
    assert!(matches!(&kit.sent()[..], [Sent::Upgrade(r)] if *r == request));
    kit.accept_upgrade();
    assert_eq!((kit.link(), kit.state()), (Link::Open, SessionState::Open));
}

#[test]
fn pings_and_closes_are_answered_unless_told_otherwise() {
    let ping = PingConfig { interval: Duration::from_secs(15), timeout: Duration::from_secs(5) };
    let mut kit = open(builder().ping(Some(ping)));
    assert_eq!(kit.advance(), Duration::from_secs(15));
    assert!(matches!(&kit.sent()[..], [Sent::Ping(_)]));
    assert!(kit.session().heartbeat_health().last_rtt.is_some(), "the pong came at once");
    assert_eq!(kit.advance(), Duration::from_secs(15), "the next ping, not a pong deadline");

    kit.set_auto_answer(false);
    kit.sent();
    kit.command(|s, now| s.close(CloseCode::Normal, "bye", now)).unwrap();
    assert_eq!(kit.sent(), [Sent::Close(Some((CloseCode::Normal, "bye".into())))]);
    assert_eq!(kit.state(), SessionState::Closing, "no answer yet");
    kit.send_close(CloseCode::Normal, "");
    assert_eq!((kit.state(), kit.link()), (SessionState::Closed, Link::Down));

    let mut kit = open(builder());
    kit.command(|s, now| s.close(CloseCode::Away, "", now)).unwrap();
    assert_eq!((kit.state(), kit.transports_closed()), (SessionState::Closed, 1), "auto-answered");
}

#[test]
fn advance_by_fires_each_deadline_at_its_own_instant() {
    let mut kit = open(builder());
    let a = kit.command(|s, now| s.request("a", None, Some(Duration::from_secs(1)), now)).unwrap();
    let b = kit.command(|s, now| s.request("b", None, Some(Duration::from_secs(3)), now)).unwrap();
    kit.advance_by(Duration::from_secs(2));
    assert_eq!(kit.elapsed(), Duration::from_secs(2));
    assert_eq!(kit.events(), [SessionEvent::RequestFailed { id: a, reason: crate::RequestFailure::Timeout }]);
    kit.advance_by(Duration::from_secs(1));
    assert_eq!(kit.events(), [SessionEvent::RequestFailed { id: b, reason: crate::RequestFailure::Timeout }]);
    // Ended ids are remembered for late answers for 60 s after the first deadline.
    assert_eq!(kit.try_advance(), Some(Duration::from_secs(58)));
    assert_eq!(kit.try_advance(), Some(Duration::from_secs(2)));
    assert_eq!(kit.try_advance(), None, "no pings, no requests: nothing to wait for");
}

#[test]
fn a_refused_upgrade_and_a_refused_transport_are_typed_disconnects() {
    let mut kit = FakeServer::new(builder(), Instant::now()).unwrap();
    kit.connect();
    kit.refuse_transport(ErrorKind::ConnectionRefused);
    let reason = kit.expect_event(|e| matches!(e, SessionEvent::Disconnected { .. }));
    assert!(matches!(
        reason,
        SessionEvent::Disconnected {
            reason: DisconnectReason::ConnectFailed { kind: ErrorKind::ConnectionRefused, .. }
        }
    ));
    kit.advance();
    kit.accept_transport();
    kit.refuse_upgrade(429);
    match kit.expect_event(|e| matches!(e, SessionEvent::Disconnected { .. })) {
        SessionEvent::Disconnected { reason: DisconnectReason::Closed(closed) } => {
            assert!(
                matches!(&closed.error, Some(crate::ConnectionError::Handshake(HandshakeError::Refused(r))) if r.status == 429),
                "{closed:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(kit.link(), Link::Down);
}

#[test]
fn a_blackhole_swallows_both_ways_until_the_transport_closes() {
    let ping = PingConfig { interval: Duration::from_secs(15), timeout: Duration::from_secs(5) };
    let backoff = BackoffConfig { full_jitter: false, ..Default::default() };
    let mut kit = open(builder().ping(Some(ping)).backoff(backoff));
    kit.blackhole();
    kit.send_text("lost");
    assert!(kit.events().is_empty(), "nothing arrives");
    assert_eq!(kit.advance(), Duration::from_secs(15));
    assert!(matches!(&kit.sent()[..], [Sent::Ping(_)]), "recorded, not answered");
    assert_eq!(kit.advance(), Duration::from_secs(5));
    kit.expect_event(|e| *e == SessionEvent::Disconnected { reason: DisconnectReason::HeartbeatTimeout });
    assert_eq!(kit.link(), Link::Down);
    assert_eq!(kit.advance(), Duration::from_millis(250));
    kit.accept();
    assert_eq!(kit.link(), Link::Open, "the next transport is a new one");
}

#[test]
fn expectations_read_the_wire_forward() {
    let mut kit = open(builder());
    for text in ["one", "two", "three"] {
        kit.command(|s, now| s.send(Message::Text(text.into()), now)).unwrap();
    }
    assert_eq!(kit.expect_sent(|m| m.as_bytes() == b"two"), Message::Text("two".into()));
    assert_eq!(kit.sent_texts(), ["three"], "`one` was taken with `two`");
}

#[test]
fn json_rpc_helpers_read_and_answer_requests() {
    let mut kit = open(builder());
    let id = kit.command(|s, now| s.request("public/get_time", Some(r#"{"a":1}"#), None, now)).unwrap();
    let request = kit.expect_request("public/get_time");
    assert_eq!((jsonrpc::id(&request), jsonrpc::params(&request).as_deref()), (Some(id), Some(r#"{"a":1}"#)));
    kit.answer(&request, "42");
    assert!(matches!(kit.events()[..], [SessionEvent::Response { id: got, is_error: false, .. }] if got == id));
    let id = kit.command(|s, now| s.request("x", None, None, now)).unwrap();
    let request = kit.expect_request("x");
    kit.answer_error(&request, r#"{"code":1}"#);
    assert!(matches!(kit.events()[..], [SessionEvent::Response { id: got, is_error: true, .. }] if got == id));
}

// ----- misuse: each panics with a message that says what is wrong -----

#[test]
#[should_panic(expected = "accept_transport: the link is Down, not Opening")]
fn accepting_a_transport_nobody_asked_for() {
    FakeServer::new(builder(), Instant::now()).unwrap().accept_transport();
}

#[test]
#[should_panic(expected = "send_text: the link is not open (link Upgrading")]
fn sending_before_the_upgrade() {
    let mut kit = FakeServer::new(builder(), Instant::now()).unwrap();
    kit.connect();
    kit.accept_transport();
    kit.send_text("early");
}

#[test]
#[should_panic(expected = "advance: the session has no deadline")]
fn advancing_an_idle_session() {
    FakeServer::new(builder(), Instant::now()).unwrap().advance();
}

#[test]
#[should_panic(expected = "expect_sent: the client sent no matching message")]
fn expecting_a_message_never_sent() {
    open(builder()).expect_request("public/auth");
}

#[test]
#[should_panic(expected = "refuse_upgrade: 101 is not a refusal")]
fn refusing_with_101() {
    let mut kit = FakeServer::new(builder(), Instant::now()).unwrap();
    kit.connect();
    kit.accept_transport();
    kit.refuse_upgrade(101);
}

#[test]
#[should_panic(expected = "simulate_disconnect: no transport is open (link Opening)")]
fn dropping_a_transport_still_opening() {
    let mut kit = FakeServer::new(builder(), Instant::now()).unwrap();
    kit.connect();
    kit.simulate_disconnect();
}

#[test]
fn a_bad_config_is_an_error_naming_the_field() {
    let bad = builder().config(|c| c.queue_capacity = 0);
    match FakeServer::new(bad, Instant::now()) {
        Err(crate::ConfigError::InvalidValue { field, .. }) => assert_eq!(field, "queue_capacity"),
        other => panic!("{other:?}"),
    }
}
