//! The session's metrics where they depend on time: when the last message
//! was read, whatever path it took through the session.

use super::*;

#[test]
fn last_message_at_is_the_time_of_the_input_that_completed_a_message() {
    let mut f = Fake::open(builder());
    assert_eq!(f.s.metrics(f.now).last_message_at, None, "nothing read yet (the upgrade is no message)");
    f.wait(secs(3));
    f.server_text("tick");
    // Read, not yet polled: the flood's path parks it in the connection.
    assert_eq!(f.s.metrics(f.now).last_message_at, Some(f.t0 + secs(3)));
    assert_eq!(f.events(), vec![SessionEvent::Message(Message::Text("tick".into()))]);
    f.wait(secs(2));
    f.server_pong(b"unasked");
    assert_eq!(f.s.metrics(f.now).last_message_at, Some(f.t0 + secs(3)), "a control frame is no message");
    // Half a frame completes nothing; its second half does.
    f.wait(secs(1));
    f.input(&[0x81, 5, b'h', b'e']);
    assert_eq!(f.s.metrics(f.now).last_message_at, Some(f.t0 + secs(3)));
    f.wait(secs(1));
    f.input(b"llo");
    assert_eq!(f.s.metrics(f.now).last_message_at, Some(f.t0 + secs(7)));
}

#[test]
fn last_message_at_counts_responses_and_survives_a_reconnect() {
    let mut f = Fake::open(builder());
    let id = f.s.request("public/get_time", None, None, f.now).unwrap();
    f.step();
    f.got();
    f.wait(ms(250));
    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{id},"result":1}}"#));
    assert!(matches!(f.events().as_slice(), [SessionEvent::Response { rtt, .. }] if *rtt == ms(250)));
    let answered = f.t0 + ms(250);
    assert_eq!(f.s.metrics(f.now).last_message_at, Some(answered), "a response is a message read");
    f.server_drop();
    f.advance();
    f.establish();
    f.events();
    let m = f.s.metrics(f.now);
    assert_eq!((m.connects, m.last_message_at), (2, Some(answered)), "kept across connections");
}

#[test]
fn traffic_is_the_part_of_metrics_that_moves_with_messages() {
    let mut f = Fake::open(builder());
    f.server_text("hello");
    f.s.send(Message::Text("out".into()), f.now).unwrap();
    f.step();
    f.server_drop();
    f.s.send(Message::Text("queued".into()), f.now).unwrap();
    // One message still parked in the connection counts as read in both.
    let (m, t) = (f.s.metrics(f.now), f.s.traffic());
    let from_metrics = Traffic {
        bytes_in: m.bytes_in,
        bytes_out: m.bytes_out,
        messages_in: m.messages_in,
        messages_out: m.messages_out,
        queue_len: m.queue_len,
        write_buffered: m.write_buffered,
    };
    assert_eq!(t, from_metrics);
    assert_eq!((t.messages_in, t.messages_out, t.queue_len), (1, 1, 1));
}
