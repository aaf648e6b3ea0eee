//! Numbered channels (gaps and resets reported before the message that
//! shows them, then tell, resubscribe or reconnect, also across a
//! reconnect) and restoring subscriptions as a choice, per session and per
//! subscription.

use super::*;
use crate::record::MemoryRecorder;
use crate::replay::{replay, Recording, Replayed};
use crate::{GapAction, SequenceRule, SubscribeOptions};

/// A Deribit-style notification numbered by `seq`.
fn note(channel: &str, seq: u64) -> String {
    format!(r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"{channel}","data":{{"seq":{seq}}}}}}}"#)
}

fn counted() -> SubscribeOptions {
    SubscribeOptions::new().sequence(SequenceRule::json(Some("/params/channel"), None, "/params/data/seq"))
}

/// Answers every subscribe request the server got since the last call; returns their channels.
fn confirm(f: &mut Fake) -> Vec<String> {
    let mut channels = Vec::new();
    for t in f.texts() {
        if method_of(&t) == "public/subscribe" {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            channels.extend(v["params"]["channels"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()));
            f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{},"result":{}}}"#, id_of(&t), v["params"]["channels"]));
        }
    }
    channels
}

/// The events, messages shown by their `seq` and channel.
fn seen(f: &mut Fake) -> Vec<String> {
    f.events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::Message(m) => {
                let v: serde_json::Value = serde_json::from_str(m.as_text()?).ok()?;
                Some(format!("{} {}", v["params"]["channel"].as_str()?, v["params"]["data"]["seq"]))
            }
            SessionEvent::SequenceGap { channel, expected, got } => Some(format!("gap {channel} {expected}..{got}")),
            SessionEvent::SequenceReset { channel, last, got } => Some(format!("reset {channel} {last}->{got}")),
            SessionEvent::Disconnected { reason } => Some(format!("disconnected {reason}")),
            SessionEvent::Subscribed { channels } => Some(format!("subscribed {}", channels.join(","))),
            _ => None,
        })
        .collect()
}

#[test]
fn gaps_and_repeats_are_reported_before_their_message_and_counted() {
    let mut f = Fake::open(builder());
    f.s.subscribe_with(&["book.a", "book.b"], counted(), f.now).unwrap();
    f.step();
    confirm(&mut f);
    for (channel, seq) in [
        ("book.a", 1),
        ("book.b", 40),
        ("book.a", 2),
        ("book.a", 4),
        ("book.b", 41),
        ("book.a", 4),
        ("book.a", 1),
        ("book.a", 2),
    ] {
        f.server_text(&note(channel, seq));
    }
    f.server_text(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{}}"#);
    assert_eq!(
        seen(&mut f),
        [
            "subscribed book.a,book.b",
            "book.a 1",
            "book.b 40",
            "book.a 2",
            "gap book.a 3..4",
            "book.a 4",
            "book.b 41",
            "reset book.a 4->4",
            "book.a 4",
            "reset book.a 4->1",
            "book.a 1",
            "book.a 2",
        ]
    );
    let m = f.s.metrics(f.now);
    assert_eq!((m.sequence_gaps, m.sequence_resets), (1, 2));
    assert_eq!(f.texts(), Vec::<String>::new(), "telling sends nothing");
}

#[test]
fn binance_style_ranges_continue_when_they_hold_the_next_update() {
    let mut f = Fake::open(builder());
    let rule = SequenceRule::json(Some("/stream"), Some("/data/U"), "/data/u");
    f.s.subscribe_with(&["bnbbtc@depth"], SubscribeOptions::new().sequence(rule), f.now).unwrap();
    f.step();
    confirm(&mut f);
    f.events();
    let depth = |first: u64, last: u64| {
        format!(r#"{{"stream":"bnbbtc@depth","data":{{"e":"depthUpdate","U":{first},"u":{last}}}}}"#)
    };
    let mut gaps = Vec::new();
    for (first, last) in [(157, 160), (161, 165), (163, 170), (175, 180)] {
        f.server_text(&depth(first, last));
        gaps.extend(f.events().into_iter().filter(|e| !matches!(e, SessionEvent::Message(_))));
    }
    assert_eq!(gaps, [SessionEvent::SequenceGap { channel: "bnbbtc@depth".into(), expected: 171, got: 175 }]);
}

#[test]
fn resubscribing_waits_for_the_confirmation_and_starts_afresh() {
    let mut f = Fake::open(builder());
    f.s.subscribe_with(&["book.a"], counted().on_gap(GapAction::Resubscribe), f.now).unwrap();
    f.step();
    confirm(&mut f);
    f.server_text(&note("book.a", 10));
    f.server_text(&note("book.a", 12));
    let sent = f.texts();
    assert_eq!(sent.iter().map(|t| method_of(t)).collect::<Vec<_>>(), ["public/unsubscribe", "public/subscribe"]);
    assert!(sent.iter().all(|t| t.contains(r#"["book.a"]"#)));
    // Still in flight from the old subscription: not judged.
    f.server_text(&note("book.a", 14));
    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{},"result":["book.a"]}}"#, id_of(&sent[0])));
    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{},"result":["book.a"]}}"#, id_of(&sent[1])));
    // The snapshot and what follows it.
    f.server_text(&note("book.a", 500));
    f.server_text(&note("book.a", 501));
    assert_eq!(
        seen(&mut f),
        [
            "subscribed book.a",
            "book.a 10",
            "gap book.a 11..12",
            "book.a 12",
            "book.a 14",
            "subscribed book.a",
            "book.a 500",
            "book.a 501"
        ]
    );
    assert!(f.texts().is_empty(), "one resubscribe");
}

#[test]
fn reconnecting_delivers_what_was_read_then_connects_again_and_starts_afresh() {
    let mut f = Fake::open(builder());
    f.s.subscribe_with(&["book.a"], counted().on_gap(GapAction::Reconnect), f.now).unwrap();
    f.step();
    confirm(&mut f);
    f.server_text(&note("book.a", 1));
    // One read carries the gap and the message after it.
    let mut bytes = Vec::new();
    for seq in [5, 6] {
        let text = note("book.a", seq);
        bytes.extend_from_slice(&[0x81, text.len() as u8]);
        bytes.extend_from_slice(text.as_bytes());
    }
    f.input(&bytes);
    assert_eq!(f.opened, 2, "connected again at once, without backoff");
    f.establish();
    assert_eq!(confirm(&mut f), ["book.a"], "subscribed again on the new link");
    f.server_text(&note("book.a", 900));
    let events = seen(&mut f);
    assert_eq!(
        events,
        [
            "subscribed book.a",
            "book.a 1",
            "gap book.a 2..5",
            "book.a 5",
            "book.a 6",
            "disconnected channel \"book.a\" missed messages and asks to reconnect",
            "subscribed book.a",
            "book.a 900",
        ]
    );
}

#[test]
fn a_gap_across_a_reconnect_is_reported() {
    let mut f = Fake::open(builder());
    f.s.subscribe_with(&["book.a"], counted(), f.now).unwrap();
    f.step();
    confirm(&mut f);
    f.server_text(&note("book.a", 7));
    f.server_drop();
    f.advance();
    f.establish();
    confirm(&mut f);
    f.server_text(&note("book.a", 8));
    f.server_drop();
    f.advance();
    f.establish();
    confirm(&mut f);
    f.server_text(&note("book.a", 20));
    let breaks: Vec<String> =
        seen(&mut f).into_iter().filter(|e| e.starts_with("gap") || e.starts_with("reset")).collect();
    assert_eq!(breaks, ["gap book.a 9..20"], "8 continued 7 over the first reconnect");
}

#[test]
fn restoring_subscriptions_is_a_setting_per_session_and_per_subscription() {
    let run = |session_default: bool| {
        let mut f = Fake::open(builder().restore_subscriptions(session_default));
        f.s.subscribe(&["plain"], f.now).unwrap();
        f.s.subscribe_with(&["kept"], SubscribeOptions::new().restore(true), f.now).unwrap();
        f.s.subscribe_with(&["resumed"], SubscribeOptions::new().restore(false), f.now).unwrap();
        f.step();
        assert_eq!(confirm(&mut f), ["plain", "kept", "resumed"], "all go out on the open link");
        f.server_drop();
        f.advance();
        f.establish();
        let again = confirm(&mut f);
        assert_eq!(f.s.subscriptions(), ["plain", "kept", "resumed"], "the set is the same");
        again
    };
    assert_eq!(run(true), ["plain", "kept"]);
    assert_eq!(run(false), ["kept"]);
}

#[test]
fn unsubscribing_forgets_the_numbering() {
    let mut f = Fake::open(builder());
    f.s.subscribe_with(&["book.a"], counted(), f.now).unwrap();
    f.server_text(&note("book.a", 3));
    f.s.unsubscribe(&["book.a"], f.now).unwrap();
    f.s.subscribe_with(&["book.a"], counted(), f.now).unwrap();
    f.server_text(&note("book.a", 90));
    assert!(seen(&mut f).iter().all(|e| !e.starts_with("gap")));
    f.s.unsubscribe(&["book.a"], f.now).unwrap();
    f.server_text(&note("book.a", 1));
    assert_eq!(seen(&mut f), ["book.a 1"], "not numbered any more");
}

#[test]
fn numbered_subscriptions_replay_identically() {
    let tape = MemoryRecorder::new(1 << 20);
    let mut f = Fake::new(builder().recorder(tape.clone(), [5; 32]));
    f.s.connect(f.now).unwrap();
    f.step();
    f.establish();
    f.s.subscribe_with(&["book.a"], counted().on_gap(GapAction::Resubscribe).restore(false), f.now).unwrap();
    f.step();
    confirm(&mut f);
    for seq in [1, 3, 4] {
        f.server_text(&note("book.a", seq));
    }
    confirm(&mut f);
    f.events();
    let text = lines(&tape);
    assert!(text.contains(r#""k":"subscribe_with""#) && text.contains("/params/data/seq"), "{text}");
    let recording = Recording::parse(&text).expect("a valid recording");
    match replay(&recording, builder(), f.t0).unwrap() {
        Replayed::Identical { .. } => {}
        other => panic!("{other:?}"),
    }
}
