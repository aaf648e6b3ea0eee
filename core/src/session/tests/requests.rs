//! Requests (responses, timeouts, lost connections, late and unknown
//! responses), latency statistics, the outbound queue and the rate limit.
//! (A timeout with its late answer, and requests lost with a connection:
//! `tests/tests/testkit.rs`, on the public test kit.)

use super::*;
use crate::{RateLimit, RequestId};

fn reply(id: u64) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"ok":true}}}}"#)
}

#[test]
fn responses_are_matched_with_their_rtt_and_stats() {
    let mut f = Fake::open(builder());
    let a = f.s.request("public/get_time", None, None, f.now).unwrap();
    let b = f.s.request("public/ticker", Some(r#"{"instrument_name":"BTC-PERPETUAL"}"#), None, f.now).unwrap();
    f.step();
    let sent = f.texts();
    assert_eq!((id_of(&sent[0]), id_of(&sent[1])), (a, b));
    assert!(sent[1].ends_with(r#""params":{"instrument_name":"BTC-PERPETUAL"}}"#));
    f.wait(ms(30));
    f.server_text(&reply(b));
    f.wait(ms(20));
    f.server_text(&reply(a));
    let evs = f.events();
    assert_eq!(
        evs,
        [
            SessionEvent::Response { id: b, message: Message::Text(reply(b).into()), rtt: ms(30), is_error: false },
            SessionEvent::Response { id: a, message: Message::Text(reply(a).into()), rtt: ms(50), is_error: false },
        ]
    );
    let l = f.s.latency();
    assert_eq!(
        (l.count, l.last, l.min, l.max, l.p50, l.p99),
        (2, Some(ms(50)), Some(ms(30)), Some(ms(50)), Some(ms(30)), Some(ms(50)))
    );
    let c = f.s.request("public/get_index", None, None, f.now).unwrap();
    f.server_text(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1}}"#);
    assert!(matches!(&f.events()[0], SessionEvent::Unmatched { id: RequestId::Number(1), .. }), "already answered");
    f.server_text(&reply(c));
    assert!(matches!(&f.events()[0], SessionEvent::Response { id, is_error: false, .. } if *id == c));
}

#[test]
fn drained_messages_keep_their_place_among_other_events() {
    fn text_frame(text: &str) -> Vec<u8> {
        let mut frame = vec![0x81, text.len() as u8];
        frame.extend_from_slice(text.as_bytes());
        frame
    }
    // Two feed messages, the response to a pending request, two more: read at once.
    let run = |batched: bool| {
        let mut f = Fake::open(builder());
        let id = f.s.request("x", None, None, f.now).unwrap();
        f.step();
        f.got();
        f.events();
        let note = |n: u32| format!(r#"{{"jsonrpc":"2.0","method":"note","params":{n}}}"#);
        let wire: Vec<u8> =
            [note(1), note(2), reply(id), note(3), note(4)].iter().flat_map(|t| text_frame(t)).collect();
        f.input(&wire);
        let mut events = Vec::new();
        loop {
            if batched {
                f.s.poll_messages(&mut events);
            }
            match f.s.poll_event() {
                Some(event) => events.push(event),
                None => break,
            }
        }
        (events, f.s.metrics(f.now).messages_in)
    };
    let (one_by_one, counted) = run(false);
    assert_eq!(one_by_one.len(), 5);
    assert!(matches!(one_by_one[2], SessionEvent::Response { .. }));
    assert_eq!(run(true), (one_by_one, counted), "the same events in the same order, counted alike");
}

#[test]
fn feed_messages_pass_through_while_requests_are_pending() {
    let mut f = Fake::open(builder());
    f.s.request("x", None, None, f.now).unwrap();
    let note = r#"{"jsonrpc":"2.0","method":"subscription","params":{"data":{"id":1}}}"#;
    f.server_text(note);
    assert_eq!(f.events(), [SessionEvent::Message(Message::Text(note.into()))]);
}

#[test]
fn responses_among_feed_messages_keep_their_place_and_end_their_request_once() {
    let frame = |s: &str| [&[0x81, s.len() as u8][..], s.as_bytes()].concat();
    let note = |n: u32| format!(r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"data":{{"id":{n}}}}}}}"#);
    let text = |s: &str| SessionEvent::Message(Message::Text(s.into()));
    let mut f = Fake::open(builder());
    let a = f.s.request("a", None, None, f.now).unwrap();
    let b = f.s.request("b", None, None, f.now).unwrap();
    f.step();
    f.got();
    // One read: feed, a's response, feed, an unknown id, feed; then a second
    // read (b's response, feed) before anything is polled.
    let first = [frame(&note(1)), frame(&reply(a)), frame(&note(2)), frame(&reply(99)), frame(&note(3))].concat();
    f.s.handle_input(&first, f.now);
    f.s.handle_input(&[frame(&reply(b)), frame(&note(4))].concat(), f.now);
    let evs = f.events();
    let response =
        |id: u64| SessionEvent::Response { id, message: Message::Text(reply(id).into()), rtt: ms(0), is_error: false };
    assert_eq!(
        evs,
        [
            text(&note(1)),
            response(a),
            text(&note(2)),
            SessionEvent::Unmatched { id: RequestId::Number(99), message: Message::Text(reply(99).into()) },
            text(&note(3)),
            response(b),
            text(&note(4)),
        ]
    );
    assert_eq!(f.s.metrics(f.now).pending_requests, 0);
    assert_eq!(f.s.metrics(f.now).messages_in, 7);
    // A second answer to `a` while another request is pending is unmatched, in its place.
    f.s.request("c", None, None, f.now).unwrap();
    f.s.handle_input(&[frame(&note(5)), frame(&reply(a)), frame(&note(6))].concat(), f.now);
    let evs = f.events();
    assert_eq!(evs[0], text(&note(5)));
    assert!(
        matches!(&evs[1], SessionEvent::Unmatched { id, .. } if *id == RequestId::Number(a)),
        "answered already: {evs:?}"
    );
    assert_eq!(evs[2], text(&note(6)));
}

#[test]
fn the_queue_is_bounded_and_can_be_dropped_or_refused() {
    let mut f = Fake::new(builder().config(|c| {
        c.queue_capacity = 2;
        c.keep_queue_on_disconnect = false;
    }));
    f.s.send(Message::Text("1".into()), f.now).unwrap();
    let id = f.s.request("r", None, None, f.now).unwrap();
    assert_eq!(f.s.send(Message::Text("3".into()), f.now), Err(CommandError::QueueFull));
    assert_eq!(f.s.request("r", None, None, f.now), Err(CommandError::QueueFull));
    f.s.connect(f.now).unwrap();
    f.step();
    f.refuse_transport();
    let evs = f.events();
    assert!(evs.contains(&SessionEvent::Dropped(Message::Text("1".into()))));
    assert!(evs.contains(&SessionEvent::RequestFailed { id, reason: RequestFailure::Dropped }));
    assert_eq!(f.s.metrics(f.now).queue_len, 0);

    let mut f = Fake::new(builder().config(|c| c.queue_while_disconnected = false));
    assert_eq!(f.s.send(Message::Text("x".into()), f.now), Err(CommandError::NotConnected));
    assert_eq!(
        f.s.request("r", Some("{bad"), None, f.now).map_err(|e| matches!(e, CommandError::InvalidParams(_))),
        Err(true)
    );
}

#[test]
fn a_posted_message_goes_out_like_a_sent_one_and_a_refused_one_comes_back_as_an_event() {
    let mut f = Fake::open(builder().config(|c| c.queue_capacity = 1));
    f.s.post(Message::Text("now".into()), f.now);
    f.step();
    assert_eq!(f.texts(), ["now"]);
    assert!(!f.events().iter().any(|e| matches!(e, SessionEvent::Refused { .. })));

    f.server_drop();
    f.events();
    f.got();
    f.s.post(Message::Text("queued".into()), f.now);
    f.s.post(Message::Text("over".into()), f.now);
    assert_eq!(
        f.events(),
        [SessionEvent::Refused { message: Message::Text("over".into()), error: Box::new(CommandError::QueueFull) }],
        "the queue holds one; the second comes back with the reason"
    );
    f.advance();
    f.establish();
    assert_eq!(f.texts(), ["queued"]);

    let mut f = Fake::new(builder().config(|c| c.queue_while_disconnected = false));
    f.s.post(Message::Binary(vec![1, 2].into()), f.now);
    assert_eq!(
        f.events(),
        [SessionEvent::Refused {
            message: Message::Binary(vec![1, 2].into()),
            error: Box::new(CommandError::NotConnected)
        }]
    );
    f.s.close(CloseCode::Normal, "", f.now).unwrap();
    assert!(matches!(f.events().last(), Some(SessionEvent::Closed { .. })));
    f.s.post(Message::Text("late".into()), f.now);
    assert_eq!(
        f.events(),
        [SessionEvent::Refused { message: Message::Text("late".into()), error: Box::new(CommandError::Closed) }]
    );
}

#[test]
fn rate_limit_spaces_sends_by_refill_deadlines() {
    let limit = RateLimit { capacity: 2, refill: 1, interval: ms(100) };
    let cost: crate::hooks::CostFn = Box::new(|m: &Message| if m.as_bytes().starts_with(b"big") { 2 } else { 1 });
    let mut f = Fake::open(builder().rate_limit(limit, Some(cost)));
    for text in ["a", "b", "c", "big", "d"] {
        f.s.send(Message::Text(text.into()), f.now).unwrap();
    }
    f.step();
    assert_eq!(f.texts(), ["a", "b"]);
    assert_eq!(f.advance(), ms(100));
    assert_eq!(f.texts(), ["c"]);
    assert_eq!(f.advance(), ms(200), "two tokens for the big one");
    assert_eq!(f.texts(), ["big"]);
    assert_eq!(f.advance(), ms(100));
    assert_eq!(f.texts(), ["d"]);
    assert_eq!(f.s.poll_timeout(), None, "nothing waits: no timer");
    assert_eq!(f.s.send(Message::Text("big-huge".into()), f.now).map(|_| ()), Ok(()));
    let huge: crate::hooks::CostFn = Box::new(|_: &Message| 3);
    let mut f = Fake::open(builder().rate_limit(limit, Some(huge)));
    assert_eq!(f.s.send(Message::Text("x".into()), f.now), Err(CommandError::CostExceedsCapacity(3)));
}

#[test]
fn prepare_rewrites_user_messages_only() {
    let b = builder().prepare(|m| match m {
        Message::Text(t) => Message::Text(format!("[{}]", t.as_str()).into()),
        other => other,
    });
    let mut f = Fake::open(b);
    f.s.send(Message::Text("x".into()), f.now).unwrap();
    f.s.subscribe(&["ch"], f.now).unwrap();
    f.step();
    let texts = f.texts();
    assert_eq!(texts[0], "[x]");
    assert_eq!(method_of(&texts[1]), "public/subscribe");
}

#[test]
fn prepare_or_drop_drops_messages_and_ends_dropped_requests_at_once() {
    let keep_public = |m: Message| match &m {
        Message::Text(t) if t.as_str().contains("private/") || t.as_str() == "skip" => None,
        _ => Some(m),
    };
    let mut f = Fake::open(builder().prepare_or_drop(keep_public));
    f.s.send(Message::Text("skip".into()), f.now).unwrap();
    f.s.send(Message::Text("keep".into()), f.now).unwrap();
    let dropped = f.s.request("private/buy", None, None, f.now).unwrap();
    let sent = f.s.request("public/get_time", None, None, f.now).unwrap();
    f.step();
    let texts = f.texts();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(texts[0], "keep");
    assert_eq!(id_of(&texts[1]), sent);
    assert_eq!(f.events(), [SessionEvent::RequestFailed { id: dropped, reason: RequestFailure::Dropped }]);
    assert_eq!(f.s.metrics(f.now).pending_requests, 1, "only the sent request waits");
    // A queued request dropped when it finally leaves ends then, once.
    f.server_drop();
    f.events();
    let queued = f.s.request("private/sell", None, None, f.now).unwrap();
    f.advance();
    f.establish();
    let events = f.events();
    let ended: Vec<_> =
        events.iter().filter(|e| matches!(e, SessionEvent::RequestFailed { id, .. } if *id == queued)).collect();
    assert_eq!(ended, [&SessionEvent::RequestFailed { id: queued, reason: RequestFailure::Dropped }], "{events:?}");
}
