//! Requests with the caller's own ids (`request_with_id`, a number or a
//! text) and requests the caller wrote whole (`request_message`): the
//! response that carries the id ends them, the session's own numbering keeps
//! clear of them, a pending id is not taken twice, and every one ends once.

use super::*;
use crate::hooks::RequestCodec;
use crate::record::MemoryRecorder;
use crate::replay::{replay, Recording, Replayed};
use crate::{RequestFailure, RequestId};

fn reply(id: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"ok":true}}}}"#)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn a_text_id_goes_out_as_given_and_its_response_ends_the_request() {
    let mut f = Fake::open(builder());
    let a = f.s.request_with_id("order-7f3a", "private/buy", Some(r#"{"amount":10}"#), None, f.now).unwrap();
    let b = f.s.request("public/get_time", None, None, f.now).unwrap();
    assert_ne!(a, b, "handles are distinct");
    f.step();
    let sent = f.texts();
    assert_eq!(json(&sent[0])["id"], "order-7f3a");
    assert_eq!(json(&sent[0])["params"]["amount"], 10);
    assert_eq!(id_of(&sent[1]), b, "the session's own requests keep their numbers");
    f.wait(ms(12));
    f.server_text(&reply(r#""order-7f3a""#));
    f.server_text(&reply(&b.to_string()));
    assert_eq!(
        f.events(),
        [
            SessionEvent::Response {
                id: a,
                message: Message::Text(reply(r#""order-7f3a""#).into()),
                rtt: ms(12),
                is_error: false
            },
            SessionEvent::Response {
                id: b,
                message: Message::Text(reply(&b.to_string()).into()),
                rtt: ms(12),
                is_error: false
            },
        ]
    );
    // A text id nobody asked with is the server's own business: a message.
    f.server_text(&reply(r#""someone-else""#));
    assert!(matches!(f.events().as_slice(), [SessionEvent::Message(_)]));
}

#[test]
fn the_sessions_numbers_skip_a_number_a_caller_holds() {
    let mut f = Fake::open(builder());
    let mine = f.s.request_with_id(3u64, "a", None, None, f.now).unwrap();
    let x = f.s.request("b", None, None, f.now).unwrap();
    let y = f.s.request("c", None, None, f.now).unwrap();
    f.step();
    let wire: Vec<u64> = f.texts().iter().map(|t| id_of(t)).collect();
    assert_eq!(wire[0], 3);
    assert!(!wire[1..].contains(&3), "no two requests share wire id 3: {wire:?}");
    assert_eq!(wire[1..], [x, y]);
    // The caller's 3 is answered by a response with 3, whatever its handle.
    f.server_text(&reply("3"));
    assert!(matches!(f.events().as_slice(), [SessionEvent::Response { id, .. }] if *id == mine));
    // The session's 2 is not the caller's: a number the caller held for a
    // handle of its own is matched by the wire id alone.
    f.server_text(&reply(&x.to_string()));
    assert!(matches!(f.events().as_slice(), [SessionEvent::Response { id, .. }] if *id == x));
}

#[test]
fn a_pending_id_is_refused_and_free_again_once_answered() {
    let mut f = Fake::open(builder());
    f.s.request_with_id("q", "a", None, None, f.now).unwrap();
    assert_eq!(
        f.s.request_with_id("q", "a", None, None, f.now),
        Err(CommandError::DuplicateRequestId(RequestId::from("q")))
    );
    let own = f.s.request("b", None, None, f.now).unwrap();
    assert_eq!(
        f.s.request_with_id(own, "c", None, None, f.now),
        Err(CommandError::DuplicateRequestId(RequestId::Number(own))),
        "the session's own pending number"
    );
    let whole = Message::Text(r#"{"jsonrpc":"2.0","id":"q","method":"a"}"#.into());
    assert_eq!(
        f.s.request_message(whole.clone(), None, f.now),
        Err(CommandError::DuplicateRequestId(RequestId::from("q")))
    );
    f.step();
    assert_eq!(f.texts().len(), 2, "refused requests send nothing");
    f.server_text(&reply(r#""q""#));
    f.events();
    assert!(f.s.request_message(whole, None, f.now).is_ok(), "q is free again");
    assert_eq!(f.s.metrics(f.now).pending_requests, 2);
}

#[test]
fn a_whole_request_is_sent_as_written_and_ends_once_on_timeout() {
    let mut f = Fake::open(builder());
    let text = r#"{"jsonrpc":"2.0","method":"public/get_order_book","id":"ob-1","params":{"depth":5}}"#;
    let id = f.s.request_message(Message::Text(text.into()), Some(secs(2)), f.now).unwrap();
    f.step();
    assert_eq!(f.texts(), [text], "sent byte for byte");
    f.wait(secs(2));
    assert_eq!(f.events(), [SessionEvent::RequestFailed { id, reason: RequestFailure::Timeout }]);
    f.server_text(&reply(r#""ob-1""#));
    assert_eq!(
        f.events(),
        [SessionEvent::Unmatched { id: RequestId::from("ob-1"), message: Message::Text(reply(r#""ob-1""#).into()) }],
        "a late answer to a text id that just ended is unmatched, not a feed message"
    );
}

#[test]
fn a_whole_request_needs_an_id_the_codec_reads() {
    let mut f = Fake::open(builder());
    for broken in [
        Message::Text(r#"{"jsonrpc":"2.0","method":"m"}"#.into()),
        Message::Text(r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#.into()),
        Message::Text(r#"{"jsonrpc":"2.0","id":-4,"method":"m"}"#.into()),
        Message::Text(r#"{"jsonrpc":"2.0","id":1.5,"method":"m"}"#.into()),
        Message::Text("not json".into()),
        Message::Binary(bytes::Bytes::from_static(br#"{"id":1}"#)),
    ] {
        assert_eq!(f.s.request_message(broken.clone(), None, f.now), Err(CommandError::NoRequestId), "{broken:?}");
    }
    f.step();
    assert!(f.texts().is_empty());
    assert_eq!(f.s.metrics(f.now).pending_requests, 0);
}

/// A codec of numbers only: the trait's default `encode_with`.
struct Numbers;

impl RequestCodec for Numbers {
    fn encode(&mut self, id: u64, method: &str, _params: Option<&str>) -> Message {
        Message::Text(format!("{id} {method}").into())
    }
    fn response_id(&self, message: &Message) -> Option<u64> {
        message.as_text()?.split_once(' ')?.0.parse().ok()
    }
    fn is_error(&self, _response: &Message) -> bool {
        false
    }
}

#[test]
fn a_codec_that_writes_numbers_refuses_text_ids_and_keeps_nothing_pending() {
    let mut f = Fake::open(builder().request_codec(Numbers));
    assert_eq!(
        f.s.request_with_id("t-1", "a", None, None, f.now),
        Err(CommandError::UnsupportedRequestId(RequestId::from("t-1")))
    );
    assert_eq!(f.s.metrics(f.now).pending_requests, 0);
    let n = f.s.request_with_id(40u64, "a", None, None, f.now).unwrap();
    assert_eq!(
        f.s.request_message(Message::Text("41 b".into()), None, f.now),
        Err(CommandError::NoRequestId),
        "this codec reads no id from requests"
    );
    f.step();
    assert_eq!(f.texts(), ["40 a"]);
    f.server_text("40 ok");
    assert!(matches!(f.events().as_slice(), [SessionEvent::Response { id, .. }] if *id == n));
}

#[test]
fn queued_caller_ids_go_out_on_connect_or_end_when_the_queue_is_dropped() {
    let mut f = Fake::new(builder());
    let a = f.s.request_with_id("early", "a", None, None, f.now).unwrap();
    let b = f.s.request_message(Message::Text(r#"{"id":"whole","method":"b"}"#.into()), None, f.now).unwrap();
    f.s.connect(f.now).unwrap();
    f.step();
    f.establish();
    let sent = f.texts();
    assert_eq!(sent.len(), 2);
    assert_eq!(json(&sent[0])["id"], "early");
    assert_eq!(sent[1], r#"{"id":"whole","method":"b"}"#);
    f.server_text(&reply(r#""whole""#));
    f.server_text(&reply(r#""early""#));
    let ended: Vec<u64> = f
        .events()
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Response { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [b, a]);

    // Queued while the link is down, then the session closes: each ends once.
    f.server_drop();
    f.events();
    let c = f.s.request_with_id("late", "c", None, None, f.now).unwrap();
    let d = f.s.request_message(Message::Text(r#"{"id":9,"method":"d"}"#.into()), None, f.now).unwrap();
    f.s.close(CloseCode::Normal, "bye", f.now).unwrap();
    f.step();
    let failed: Vec<(u64, RequestFailure)> = f
        .events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::RequestFailed { id, reason } => Some((id, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().any(|(id, _)| *id == c) && failed.iter().any(|(id, _)| *id == d));
    assert_eq!(f.s.metrics(f.now).pending_requests, 0);
}

#[test]
fn caller_ids_replay_identically() {
    let tape = MemoryRecorder::new(1 << 20);
    let mut f = Fake::new(builder().recorder(tape.clone(), [3; 32]));
    f.s.connect(f.now).unwrap();
    f.step();
    f.establish();
    f.s.request_with_id("r-1", "a", Some("[1]"), Some(secs(5)), f.now).unwrap();
    f.s.request_with_id(77u64, "b", None, None, f.now).unwrap();
    f.s.request_message(Message::Text(r#"{"id":"w","method":"c"}"#.into()), None, f.now).unwrap();
    f.s.request_message(Message::Binary(bytes::Bytes::from_static(&[1, 2])), None, f.now).unwrap_err();
    f.step();
    f.wait(ms(3));
    f.server_text(&reply(r#""w""#));
    f.server_text(&reply("77"));
    f.advance();
    f.events();
    let recording = Recording::parse(tape.bytes()).expect("a valid recording");
    match replay(&recording, builder(), f.t0).unwrap() {
        Replayed::Identical { .. } => {}
        other => panic!("{other:?}"),
    }
}
