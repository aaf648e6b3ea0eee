//! Faults met while the caller does its part: a consumer that stops reading,
//! a protocol violation behind good messages, and how a link is let go.

use super::*;
use crate::{ConnectionError, PingConfig, ProtocolError};

fn pings() -> SessionBuilder {
    builder().ping(Some(PingConfig { interval: secs(15), timeout: secs(5) }))
}

#[test]
fn a_paused_reader_is_never_taken_for_a_dead_link() {
    let mut f = Fake::open(pings().idle_timeout(secs(30)));
    f.server_text("first");
    f.events();
    // The consumer stalls for ten times interval + timeout; the caller stops reading.
    f.s.handle_reading_paused(f.now);
    assert_eq!(f.s.poll_timeout(), None, "nothing waits on the peer while it cannot be heard");
    f.wait(secs(200));
    assert!(disconnects(&f.events()).is_empty());
    // Reading resumes: the flood that waited in the socket arrives.
    f.s.handle_reading_resumed(f.now);
    for i in 0..100 {
        f.server_text(&format!("m{i}"));
    }
    let messages: Vec<String> = f
        .events()
        .into_iter()
        .map(|e| match e {
            SessionEvent::Message(Message::Text(t)) => t.as_str().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(messages, (0..100).map(|i| format!("m{i}")).collect::<Vec<_>>());
    // The ping schedule resumes where it stood: the next ping went out before the pause was 15 s old.
    assert_eq!(f.advance(), secs(15));
    let payload = match f.got().as_slice() {
        [Got::Ping(p)] => p.clone(),
        other => panic!("{other:?}"),
    };
    f.server_pong(&payload);
    assert_eq!(f.s.state(), SessionState::Open);
    assert_eq!(f.s.heartbeat_health().consecutive_failures, 0);
}

#[test]
fn a_ping_in_flight_when_reading_pauses_waits_for_the_resume() {
    let mut f = Fake::open(pings());
    assert_eq!(f.advance(), secs(15));
    let payload = match f.got().as_slice() {
        [Got::Ping(p)] => p.clone(),
        other => panic!("{other:?}"),
    };
    f.wait(secs(2));
    f.s.handle_reading_paused(f.now);
    f.wait(secs(600));
    f.s.handle_reading_resumed(f.now);
    // Three seconds of the pong's five were left when reading paused.
    assert_eq!(f.s.poll_timeout(), Some(f.now + secs(3)));
    f.wait(secs(1));
    f.server_pong(&payload);
    assert!(disconnects(&f.events()).is_empty());
}

#[test]
fn a_link_that_died_during_a_pause_is_found_within_interval_plus_timeout() {
    let mut f = Fake::open(pings());
    f.wait(secs(10));
    f.s.handle_reading_paused(f.now);
    f.wait(secs(1000)); // the link dies somewhere in here
    f.s.handle_reading_resumed(f.now);
    let resumed = f.now;
    let mut found = None;
    for _ in 0..4 {
        f.advance();
        if disconnects(&f.events()).contains(&DisconnectReason::HeartbeatTimeout) {
            found = Some(f.now);
            break;
        }
    }
    let found = found.expect("the dead link is found");
    assert!(found - resumed <= secs(15 + 5), "found {:?} after the resume", found - resumed);
    // The goodbye a merely slow peer would read: a close frame with 1011.
    assert_eq!(f.got(), [Got::Ping(1u64.to_be_bytes().to_vec()), Got::Close(Some(1011))]);
}

#[test]
fn a_handshake_and_authentication_wait_while_reading_is_paused() {
    let auth = builder().authenticator(crate::presets::JsonRpcAuth::new("public/auth", |_| "{}".into()));
    let mut f = Fake::new(auth);
    f.s.handle_reading_paused(f.now);
    f.s.connect(f.now).unwrap();
    f.step();
    f.accept_transport();
    assert_eq!(f.s.poll_timeout(), None, "the upgrade cannot be read: its 10 s wait");
    f.wait(secs(100));
    f.s.handle_reading_resumed(f.now);
    assert_eq!(f.s.poll_timeout(), Some(f.now + secs(10)), "a full wait from the resume");
    f.upgrade();
    assert_eq!(f.s.state(), SessionState::Authenticating);
    f.s.handle_reading_paused(f.now);
    assert_eq!(f.s.poll_timeout(), None, "the auth answer cannot be read either");
    f.wait(secs(100));
    f.s.handle_reading_resumed(f.now);
    assert_eq!(f.advance(), secs(10));
    assert!(f.events().iter().any(|e| matches!(e, SessionEvent::Error(_))), "then it times out as usual");
}

#[test]
fn request_deadlines_and_the_close_timeout_keep_running_while_paused() {
    let mut f = Fake::open(builder());
    let id = f.s.request("m", None, Some(secs(3)), f.now).unwrap();
    f.step();
    f.s.handle_reading_paused(f.now);
    assert_eq!(f.advance(), secs(3));
    assert_eq!(f.events(), [SessionEvent::RequestFailed { id, reason: RequestFailure::Timeout }]);
    f.s.close(CloseCode::Normal, "", f.now).unwrap();
    f.step();
    assert_eq!(f.advance(), secs(5), "a close asked for ends in time whatever the consumer does");
    assert_eq!(f.s.state(), SessionState::Closed);
}

/// A good text message and, in the same read, a frame with a reserved opcode.
const GOOD_THEN_BAD: &[u8] = &[0x81, 0x08, b'q', b'u', b'e', b's', b't', b'i', b'o', b'n', 0x83, 0x00];

#[test]
fn messages_before_a_violation_are_delivered_and_answered_before_the_close_frame() {
    let mut f = Fake::open(builder());
    f.input(GOOD_THEN_BAD);
    assert!(f.got().is_empty(), "nothing is acted on before the message is taken");
    let first = f.s.poll_event();
    assert!(matches!(&first, Some(SessionEvent::Message(Message::Text(t))) if t.as_str() == "question"));
    f.s.send(Message::Text("answer".into()), f.now).unwrap();
    assert!(f.s.fault_next(), "the next poll makes the violation due");
    assert_eq!(f.s.poll_event(), None);
    assert!(!f.s.fault_next());
    f.step();
    assert_eq!(f.s.poll_timeout(), Some(f.now), "the violation is due once everything before it was taken");
    f.advance();
    assert_eq!(f.got(), [Got::Text("answer".into()), Got::Close(Some(1002))]);
    let reasons = disconnects(&f.events());
    match reasons.as_slice() {
        [DisconnectReason::Closed(closed)] => {
            assert_eq!(closed.error, Some(ConnectionError::Protocol(ProtocolError::ReservedOpcode(3))))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_violation_read_after_its_message_was_taken_still_waits_for_the_answer() {
    let mut f = Fake::open(builder());
    f.input(&GOOD_THEN_BAD[..10]);
    let first = f.s.poll_event();
    assert!(matches!(&first, Some(SessionEvent::Message(_))), "{first:?}");
    // The violation comes in a later read, while the caller still handles the message.
    f.input(&GOOD_THEN_BAD[10..]);
    assert!(f.got().is_empty());
    f.s.send(Message::Text("answer".into()), f.now).unwrap();
    assert_eq!(f.s.poll_event(), None);
    f.advance();
    assert_eq!(f.got(), [Got::Text("answer".into()), Got::Close(Some(1002))]);
    assert_eq!(disconnects(&f.events()).len(), 1);
}

#[test]
fn a_held_violation_is_acted_on_after_the_close_timeout_at_the_latest() {
    let mut f = Fake::open(builder());
    f.input(GOOD_THEN_BAD);
    // The caller never comes back for more events.
    assert_eq!(f.advance(), secs(5));
    assert_eq!(f.got(), [Got::Close(Some(1002))]);
    let events = f.events();
    assert!(matches!(&events[0], SessionEvent::Message(_)), "the message is still delivered first: {events:?}");
    assert_eq!(disconnects(&events).len(), 1);
}

#[test]
fn closing_while_a_violation_is_held_ends_at_once_with_its_code() {
    let mut f = Fake::open(builder());
    f.input(GOOD_THEN_BAD);
    f.s.close(CloseCode::Normal, "bye", f.now).unwrap();
    f.step();
    assert_eq!(f.got(), [Got::Close(Some(1002))]);
    assert_eq!(f.s.state(), SessionState::Closed);
    let events = f.events();
    assert!(matches!(&events[0], SessionEvent::Message(_)), "{events:?}");
    assert_eq!(events.last(), Some(&SessionEvent::Closed { reason: CloseReason::Requested }));
}

#[test]
fn the_transport_ending_behind_a_held_violation_reports_the_violation() {
    let mut f = Fake::open(builder());
    f.input(GOOD_THEN_BAD);
    f.server_drop();
    let events = f.events();
    assert!(matches!(&events[0], SessionEvent::Message(_)), "{events:?}");
    match disconnects(&events).as_slice() {
        [DisconnectReason::Closed(closed)] => assert!(matches!(closed.error, Some(ConnectionError::Protocol(_)))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn after_a_complete_close_handshake_the_server_ends_tcp_first() {
    let mut f = Fake::open(builder());
    f.s.close(CloseCode::Normal, "bye", f.now).unwrap();
    f.step();
    f.wait(secs(1));
    f.input(&[0x88, 0x02, 0x03, 0xE8]);
    assert_eq!(f.s.state(), SessionState::Closed);
    assert_eq!(f.last_wait_for_server, Some(secs(5)), "the close timeout, from the server's close frame");

    // The server starts the close: the client answers and waits the same way.
    let mut f = Fake::open(builder());
    f.input(&[0x88, 0x02, 0x03, 0xE9]);
    assert_eq!(f.got(), [Got::Close(Some(1001))]);
    assert_eq!((f.closed, f.last_wait_for_server), (1, Some(secs(5))));

    // A link dropped without a handshake is not waited on.
    let mut f = Fake::open(builder());
    f.server_drop();
    assert_eq!((f.closed, f.last_wait_for_server), (1, None));
}
