//! Protocol pings, the idle timeout, and both application heartbeat presets.
//! (A blackholed pong: `tests/tests/testkit.rs`, on the public test kit.)

use super::*;
use crate::presets::{DeribitHeartbeat, JsonOpHeartbeat};
use crate::PingConfig;

fn pings() -> SessionBuilder {
    builder().ping(Some(PingConfig { interval: secs(15), timeout: secs(5) }))
}

#[test]
fn answered_pings_keep_the_link_and_report_rtt() {
    let mut f = Fake::open(pings());
    assert_eq!(f.advance(), secs(15));
    let payload = match f.got().as_slice() {
        [Got::Ping(p)] => p.clone(),
        other => panic!("{other:?}"),
    };
    assert!(f.s.heartbeat_health().in_flight);
    f.wait(ms(40));
    f.server_pong(&payload);
    let h = f.s.heartbeat_health();
    assert_eq!((h.last_rtt, h.in_flight, h.last_heartbeat), (Some(ms(40)), false, Some(f.now)));
    assert_eq!(h.rtt_samples, 1, "one round trip measured");
    f.server_pong(&payload);
    assert_eq!(f.s.heartbeat_health().rtt_samples, 1, "a second pong answers nothing: no new sample");
    assert_eq!(f.s.poll_timeout(), Some(f.t0 + secs(30)), "the next ping, not the pong deadline");
    assert!(f.events().is_empty(), "pongs are not user events");
}

#[test]
fn idle_timeout_fires_only_after_silence() {
    let mut f = Fake::open(builder().idle_timeout(secs(30)));
    f.wait(secs(20));
    f.server_text("tick");
    assert_eq!(f.s.poll_timeout(), Some(f.now + secs(30)), "any input restarts the idle timer");
    assert_eq!(f.advance(), secs(30));
    assert!(f.events().contains(&SessionEvent::Disconnected { reason: DisconnectReason::IdleTimeout }));
}

#[test]
fn json_op_heartbeat_pings_and_consumes_pongs() {
    let mut f = Fake::open(builder().app_heartbeat(JsonOpHeartbeat, secs(10), secs(3)));
    assert_eq!(f.advance(), secs(10));
    assert_eq!(f.texts(), [r#"{"op":"ping"}"#]);
    f.wait(ms(120));
    f.server_text(r#"{"op":"pong"}"#);
    assert!(f.events().is_empty(), "the pong is heartbeat traffic");
    assert_eq!(f.s.heartbeat_health().last_rtt, Some(ms(120)));
    f.server_text(r#"{"op":"trade","px":1}"#);
    assert_eq!(f.events(), [SessionEvent::Message(Message::Text(r#"{"op":"trade","px":1}"#.into()))]);
    assert_eq!(f.advance(), secs(10) - ms(120));
    assert_eq!(f.texts(), [r#"{"op":"ping"}"#]);
    assert_eq!(f.advance(), secs(3));
    assert!(f.events().contains(&SessionEvent::Disconnected { reason: DisconnectReason::HeartbeatTimeout }));
}

#[test]
fn deribit_heartbeat_sets_up_answers_test_requests_and_watches_the_beat() {
    let mut f = Fake::new(builder().app_heartbeat(DeribitHeartbeat, secs(30), secs(10)));
    f.s.connect(f.now).unwrap();
    f.step();
    f.establish();
    f.events();
    let setup = f.texts();
    assert_eq!(setup.len(), 1);
    assert_eq!(method_of(&setup[0]), "public/set_heartbeat");
    assert!(setup[0].contains(r#""params":{"interval":30}"#));
    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{},"result":"ok"}}"#, id_of(&setup[0])));
    assert!(f.events().is_empty(), "the setup response is the session's own");

    f.wait(secs(25));
    f.server_text(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#);
    let answer = f.texts();
    assert_eq!(method_of(&answer[0]), "public/test");
    f.wait(ms(15));
    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{"version":"1"}}}}"#, id_of(&answer[0])));
    assert!(f.events().is_empty(), "probe and answer are heartbeat traffic");
    let h = f.s.heartbeat_health();
    assert_eq!((h.last_rtt, h.last_heartbeat), (Some(ms(15)), Some(f.now - ms(15))));

    // No beat for interval + timeout after the last one ends the link.
    assert_eq!(f.advance(), secs(40) - ms(15));
    assert!(f.events().contains(&SessionEvent::Disconnected { reason: DisconnectReason::HeartbeatTimeout }));
}

#[test]
fn control_frames_reach_the_user_when_asked_and_pings_can_be_answered_by_hand() {
    let mut f = Fake::open(builder().control_events(true));
    f.input(&[0x89, 0x02, b'h', b'i']); // the server pings
    f.server_pong(b"yo");
    assert_eq!(
        f.events(),
        [SessionEvent::Ping(bytes::Bytes::from_static(b"hi")), SessionEvent::Pong(bytes::Bytes::from_static(b"yo"))]
    );
    assert_eq!(f.got(), [Got::Pong(b"hi".to_vec())], "auto_pong answered");
    f.s.ping(b"mine", f.now).unwrap();
    f.step();
    assert_eq!(f.got(), [Got::Ping(b"mine".to_vec())]);

    // auto_pong off: the ping is delivered even without control_events, and the user answers it.
    let mut f = Fake::open(builder().config(|c| c.connection.auto_pong = false));
    f.input(&[0x89, 0x02, b'h', b'i']);
    assert_eq!(f.events(), [SessionEvent::Ping(bytes::Bytes::from_static(b"hi"))]);
    assert!(f.got().is_empty(), "nothing answered by itself");
    f.s.pong(b"hi", f.now).unwrap();
    f.step();
    assert_eq!(f.got(), [Got::Pong(b"hi".to_vec())]);

    // Off (the default): neither is an event; control frames need an open link.
    let mut f = Fake::new(builder());
    assert_eq!(f.s.ping(b"x", f.now), Err(CommandError::NotConnected));
    f.s.connect(f.now).unwrap();
    f.step();
    f.establish();
    f.events();
    f.input(&[0x89, 0x00]);
    assert!(f.events().is_empty());
    assert_eq!(f.s.ping(&[0u8; 126], f.now).map_err(|e| matches!(e, CommandError::Send(_))), Err(true), "too long");
}
