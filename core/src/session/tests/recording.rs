//! A recorded session replays identically; a changed setting diverges at the
//! step it changes; broken recordings are refused by line; secrets stay out.

use super::*;
use crate::presets::JsonRpcAuth;
use crate::record::MemoryRecorder;
use crate::replay::{replay, Recording, RecordingError, Replayed};
use crate::BackoffConfig;

const SEED: [u8; 32] = [7; 32];

/// Whether `needle` occurs in `haystack`.
pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The header's version field as this crate writes it.
fn current() -> String {
    format!(r#""wslink_recording":{}"#, crate::record::format::FORMAT_VERSION)
}

fn recorded(b: SessionBuilder) -> SessionBuilder {
    b.authenticator(JsonRpcAuth::new("public/auth", |_| r#"{"secret":"hunter2"}"#.into()))
        .header("Authorization", "Bearer hunter2")
}

/// Auth, a subscription, a request, a drop, the reconnect and resubscribe, a close.
fn a_session(b: SessionBuilder) -> (Fake, MemoryRecorder) {
    let tape = MemoryRecorder::new(1 << 20);
    let mut f = Fake::new(recorded(b).recorder(tape.clone(), SEED));
    f.s.subscribe(&["trades"], f.now).unwrap();
    f.s.connect(f.now).unwrap();
    f.step();
    for round in 0..2 {
        f.establish();
        let auth = f.texts();
        f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{"access_token":"t"}}}}"#, id_of(&auth[0])));
        let subscribe = f.texts();
        f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{},"result":["trades"]}}"#, id_of(&subscribe[0])));
        f.events();
        if round == 0 {
            let id = f.s.request("public/get_time", None, None, f.now).unwrap();
            f.step();
            assert_eq!(f.texts().len(), 1, "the request went out");
            f.wait(ms(30));
            f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{id},"result":1}}"#));
            f.server_text("tick");
            f.events();
            f.server_drop();
            f.events();
            f.advance();
        }
    }
    f.s.close(CloseCode::Normal, "bye", f.now).unwrap();
    f.step();
    f.input(&[0x88, 0x02, 0x03, 0xE8]);
    f.events();
    (f, tape)
}

#[test]
fn a_recorded_session_replays_identically() {
    let (f, tape) = a_session(builder());
    let recording = Recording::parse(tape.bytes()).expect("a valid recording");
    assert_eq!(recording.header.encoding, crate::record::format::Encoding::Compact);
    match replay(&recording, recorded(builder()), f.t0).unwrap() {
        Replayed::Identical { inputs, outputs } => assert!(inputs > 15 && outputs > 30, "{inputs} {outputs}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_changed_setting_diverges_where_it_shows() {
    let (f, tape) = a_session(builder());
    let recording = Recording::parse(tape.bytes()).unwrap();
    // A longer first backoff: the Reconnecting event after the drop differs.
    let slower = BackoffConfig { initial: secs(1), ..BackoffConfig::default() };
    let reconnecting = recording
        .lines
        .iter()
        .position(|l| matches!(&l.entry, crate::record::format::Entry::Event { ev } if ev.starts_with("Reconnecting")))
        .expect("a reconnect was recorded");
    match replay(&recording, recorded(builder()).backoff(slower), f.t0).unwrap() {
        Replayed::Diverged(d) => {
            assert_eq!(d.line, reconnecting + 2, "{d:?}");
            assert!(d.recorded.contains("Reconnecting") && d.replayed.contains("Reconnecting"), "{d:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_token_in_the_url_stays_out_and_its_upgrade_is_redacted() {
    let tape = MemoryRecorder::new(1 << 20);
    let b = Session::builder("ws://feed.test:9001/ws?token=abc-999").unwrap().ping(None);
    let mut f = Fake::new(b.recorder(tape.clone(), SEED));
    f.s.connect(f.now).unwrap();
    f.step();
    f.establish();
    let text = lines(&tape);
    assert!(!text.contains("abc-999"), "{text}");
    assert!(!contains(&tape.bytes(), b"abc-999"), "nor in the compact bytes");
    assert!(text.contains("/ws?<redacted>"));
    assert!(
        text.contains(r#""k":"transmit","len""#) && text.contains(r#""redacted":true"#),
        "the upgrade is not digested"
    );
}

#[test]
fn secrets_stay_out_of_the_recording() {
    let (_, tape) = a_session(builder().header("X-Api-Key", "k-123").sensitive_header("x-api-key"));
    let (text, bytes) = (lines(&tape), tape.bytes());
    for secret in ["hunter2", "k-123"] {
        assert!(!text.contains(secret) && !contains(&bytes, secret.as_bytes()), "{secret} leaked");
    }
    assert!(text.contains("<redacted>"));
    assert!(text.contains(r#""redacted":true"#), "the upgrade and the auth message are marked");
}

#[test]
fn a_full_recorder_drops_counts_and_the_replay_says_so() {
    let tape = MemoryRecorder::new(2_000);
    let mut f = Fake::new(builder().recorder(tape.clone(), SEED));
    f.s.connect(f.now).unwrap();
    f.step();
    f.establish();
    for i in 0..100 {
        f.server_text(&format!("tick {i}"));
        // Polled and flushed one by one: a chunk each.
        f.events();
    }
    assert!(tape.dropped() > 0);
    let recording = Recording::parse(tape.bytes()).unwrap();
    assert!(
        matches!(replay(&recording, builder(), f.t0).unwrap(), Replayed::Incomplete { dropped, .. } if dropped == tape.dropped())
    );
}

#[test]
fn a_recording_of_format_1_replays_without_a_write_budget() {
    // Format 1 had no `written` lines: the same session, written that way,
    // replays identically under a budget too small for it, since a replay of
    // format 1 runs without one.
    let (f, tape) = a_session(builder());
    let v1: String = lines(&tape)
        .lines()
        .filter(|l| !l.contains(r#""k":"written""#))
        .map(|l| l.replacen(&current(), r#""wslink_recording":1"#, 1) + "\n")
        .collect();
    let recording = Recording::parse(&v1).expect("format 1 is still read");
    let tight = recorded(builder()).write_budget(1).write_timeout(Some(ms(1)));
    assert!(matches!(replay(&recording, tight, f.t0).unwrap(), Replayed::Identical { .. }));
    // The same lines as format 2 are a session whose writes never completed.
    let as_v2 = v1.replacen(r#""wslink_recording":1"#, r#""wslink_recording":2"#, 1);
    let recording = Recording::parse(&as_v2).unwrap();
    let tight = recorded(builder()).write_budget(1).write_timeout(Some(ms(1)));
    assert!(matches!(replay(&recording, tight, f.t0).unwrap(), Replayed::Diverged(_)));
}

#[test]
fn broken_recordings_are_refused_by_line() {
    let (_, tape) = a_session(builder());
    let text = lines(&tape);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(Recording::parse(""), Err(RecordingError::Empty));
    let future = text.replacen(&current(), r#""wslink_recording":9"#, 1);
    assert_eq!(Recording::parse(&future), Err(RecordingError::FutureVersion { line: 1, found: 9 }));
    assert!(matches!(Recording::parse("{}\n"), Err(RecordingError::BadHeader { line: 1, .. })));
    let cut = &text[..text.len() - 10];
    assert_eq!(Recording::parse(cut), Err(RecordingError::Truncated { line: lines.len() }));
    let mut corrupted: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    corrupted[4] = r#"{"t":1,"k":"read","b64":"@@@"}"#.to_owned();
    assert!(matches!(Recording::parse(corrupted.join("\n")), Err(RecordingError::BadLine { line: 5, .. })));
    corrupted[4] = r#"{"t":1,"k":"no_such_thing"}"#.to_owned();
    assert!(matches!(Recording::parse(corrupted.join("\n")), Err(RecordingError::BadLine { line: 5, .. })));
    corrupted[4] =
        r#"{"t":1,"k":"request","method":"m","params":null,"timeout":[18446744073709551615,1000000000]}"#.to_owned();
    assert!(matches!(Recording::parse(corrupted.join("\n")), Err(RecordingError::BadLine { line: 5, .. })));
}
