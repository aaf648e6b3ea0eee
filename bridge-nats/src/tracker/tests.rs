use super::*;
use crate::envelope::header;

const SETTLE: Duration = Duration::from_secs(5);

fn tracker(sequenced: bool) -> Tracker {
    Tracker::new(Settings {
        sources: vec![Source { name: "e".into(), sequenced, max_jump: 1_000_000 }],
        prefix: "p".into(),
        started_ms: 1_000,
        settle: SETTLE,
        margin: 10,
    })
}

fn payload(seq: u64) -> Bytes {
    Bytes::from(format!(r#"{{"params":{{"channel":"c","seq":{seq}}}}}"#))
}

/// Feeds message number `seq` of channel `c` through `t`; returns what came out.
fn feed(t: &mut Tracker, seq: u64, at: Instant) -> Vec<Outgoing> {
    let connection: Arc<str> = Arc::from("a/e/0.1/r");
    let payload = payload(seq);
    let value = seq.to_string();
    let ident = Identified { channel: Some("c".into()), value: Some(value.as_str().into()), sequence: Some(seq) };
    let read = Read { source: 0, connection: &connection, ident, payload: &payload, received_ms: 2_000, at };
    let mut out = Vec::new();
    t.message(&read, &mut |o| out.push(o));
    out
}

fn answer(t: &mut Tracker, tail: Option<Tail>, now: Instant) -> Vec<Outgoing> {
    let (key, subject) = t.next_consult(now).expect("a consult");
    assert_eq!(subject.as_str(), "p.e.c");
    let mut out = Vec::new();
    t.consulted(key, Ok(tail), now, &mut |o| out.push(o));
    out
}

fn tail(epoch: u32, last: u64, stream_seq: u64) -> Option<Tail> {
    Some(Tail { numbering: Numbering { epoch, last }, stream_seq, read_ms: Some(1_500) })
}

fn ids(out: &[Outgoing]) -> Vec<String> {
    out.iter().map(|o| o.id.clone()).collect()
}

fn h(o: &Outgoing, name: &str) -> Option<String> {
    o.headers().get(name).map(|v| v.as_str().to_owned())
}

#[test]
fn a_channel_waits_for_its_tail_once_then_flows() {
    let mut t = tracker(true);
    let now = Instant::now();
    assert!(feed(&mut t, 1, now).is_empty(), "held until the stream's tail is known");
    assert!(feed(&mut t, 2, now).is_empty());
    assert_eq!(t.held(), 2);
    let out = answer(&mut t, None, now);
    assert_eq!(ids(&out), ["e:c:1", "e:c:2"]);
    assert_eq!(t.held(), 0);
    assert_eq!(ids(&feed(&mut t, 3, now)), ["e:c:3"]);
    assert_eq!(ids(&feed(&mut t, 3, now)), ["e:c:3"], "a repeat goes out with the same id");
    assert!(t.next_consult(now).is_none());
    let seqs: Vec<u64> = out.iter().map(|o| o.seq).collect();
    assert_eq!(seqs, [1, 2]);
}

#[test]
fn a_restart_of_the_numbering_is_marked_and_gets_new_ids() {
    let mut t = tracker(true);
    let now = Instant::now();
    feed(&mut t, 1185, now);
    answer(&mut t, tail(0, 1184, 50), now);
    feed(&mut t, 1186, now);
    // The exchange starts again at 21: held, then a reset in epoch 1.
    assert!(feed(&mut t, 21, now).is_empty());
    assert!(feed(&mut t, 22, now).is_empty());
    let out = answer(&mut t, tail(0, 1186, 52), now);
    assert_eq!(ids(&out), ["reset:e~1:c", "e~1:c:21", "e~1:c:22"]);
    assert_eq!(h(&out[0], header::RESET_LAST_SEQ).as_deref(), Some("1186"));
    assert_eq!(h(&out[0], header::RESET_FIRST_SEQ).as_deref(), Some("21"));
    assert_eq!(h(&out[1], header::EPOCH).as_deref(), Some("1"));
    assert_eq!(t.counts().resets, 1);
    assert_eq!(ids(&feed(&mut t, 23, now)), ["e~1:c:23"]);
}

#[test]
fn a_hole_is_marked_only_where_the_stream_lacks_the_numbers() {
    let mut t = tracker(true);
    let now = Instant::now();
    feed(&mut t, 100, now);
    answer(&mut t, tail(0, 99, 500), now);
    assert!(feed(&mut t, 151, now).is_empty());
    assert_eq!(ids(&answer(&mut t, tail(0, 100, 600), now)), ["e:c:151"], "the message goes out at once");
    assert_eq!(t.pending_checks(), 1);
    assert!(t.next_check(now).is_none(), "not before the settling time");
    assert_eq!(t.next_deadline(), Some(now + SETTLE));
    let check = t.next_check(now + SETTLE).expect("due");
    assert_eq!((check.from, check.to, check.after, check.epoch), (101, 150, 590, 0));
    // Another replica stored 101..=120 and 131..=150 meanwhile.
    let mut covered = Ranges::default();
    covered.add(101, 120);
    covered.add(131, 150);
    let mut out = Vec::new();
    t.checked(check, Ok(Some(covered)), now + SETTLE, &mut |o| out.push(o));
    assert_eq!(ids(&out), ["gap:e:c:121-130"]);
    assert_eq!((h(&out[0], header::GAP_FROM), h(&out[0], header::GAP_TO)), (Some("121".into()), Some("130".into())));
    assert_eq!(t.pending_checks(), 0);
}

/// The issue's case, both replicas through their own trackers: a is back
/// first and stores 1452..=1553; b, back later, finds them in the stream.
#[test]
fn two_replicas_back_at_different_times_agree_on_one_marker() {
    let now = Instant::now();
    let (mut a, mut b) = (tracker(true), tracker(true));
    for t in [&mut a, &mut b] {
        feed(t, 1125, now);
        answer(t, tail(0, 1124, 10), now);
    }
    feed(&mut a, 1452, now);
    answer(&mut a, tail(0, 1125, 11), now);
    feed(&mut b, 1554, now);
    // a stored 1452..=1553 before b asked.
    assert_eq!(ids(&answer(&mut b, tail(0, 1553, 113), now)), ["e:c:1554"]);
    assert_eq!(b.pending_checks(), 0, "b sees no hole");
    let check = a.next_check(now + SETTLE).expect("a checks its hole");
    let mut out = Vec::new();
    a.checked(check, Ok(Some(Ranges::default())), now + SETTLE, &mut |o| out.push(o));
    assert_eq!(ids(&out), ["gap:e:c:1126-1451"]);
}

#[test]
fn a_second_jump_among_held_messages_holds_the_channel_again() {
    let mut t = tracker(true);
    let now = Instant::now();
    for n in [10, 11, 5, 6] {
        assert!(feed(&mut t, n, now).is_empty());
    }
    assert_eq!(ids(&answer(&mut t, None, now)), ["e:c:10", "e:c:11"]);
    assert_eq!(t.held(), 2, "5 and 6 wait for a second look at the stream");
    let out = answer(&mut t, tail(0, 11, 3), now);
    assert_eq!(ids(&out), ["reset:e~1:c", "e~1:c:5", "e~1:c:6"]);
    assert_eq!(t.held(), 0);
}

#[test]
fn a_tail_that_cannot_be_read_is_asked_again_and_holds_meanwhile() {
    let mut t = tracker(true);
    let now = Instant::now();
    feed(&mut t, 7, now);
    let (key, _) = t.next_consult(now).unwrap();
    let mut out = Vec::new();
    t.consulted(key, Err("timed out".into()), now, &mut |o| out.push(o));
    assert!(out.is_empty());
    assert_eq!(t.held(), 1);
    assert!(t.next_consult(now).is_none(), "not at once");
    assert_eq!(ids(&answer(&mut t, None, now + RETRY)), ["e:c:7"]);
}

#[test]
fn a_check_that_fails_is_tried_again_and_one_that_overflows_is_counted() {
    let mut t = tracker(true);
    let now = Instant::now();
    feed(&mut t, 1, now);
    answer(&mut t, None, now);
    feed(&mut t, 10, now);
    answer(&mut t, tail(0, 1, 1), now);
    let check = t.next_check(now + SETTLE).unwrap();
    let mut out = Vec::new();
    t.checked(check, Err("no stream".into()), now + SETTLE, &mut |o| out.push(o));
    assert!(out.is_empty());
    let again = t.next_check(now + SETTLE + RETRY).expect("tried again");
    t.checked(again, Ok(None), now, &mut |o| out.push(o));
    assert!(out.is_empty());
    assert_eq!(t.counts().unchecked, 1);
}

#[test]
fn without_a_sequence_nothing_is_held() {
    let mut t = tracker(false);
    let now = Instant::now();
    assert_eq!(ids(&feed(&mut t, 5, now)), ["e:c:5"]);
    assert_eq!(ids(&feed(&mut t, 1, now)), ["e:c:1"]);
    assert!(t.next_consult(now).is_none());
    let connection: Arc<str> = Arc::from("a/e/0.2/run");
    let g = t.connection_gap(0, "c", &connection, GapReason::Reconnect, now).unwrap();
    assert_eq!(g.seq, 3, "numbered on the subject after the two messages");
    assert_eq!(h(&g, header::GAP_REASON).as_deref(), Some("reconnect"));
}

#[test]
fn the_table_is_bounded_and_untracked_channels_still_flow() {
    let mut t = tracker(true);
    let now = Instant::now();
    let connection: Arc<str> = Arc::from("a/e/0.1/r");
    for i in 0..(MAX_TRACKED + 10) {
        let channel = format!("c{i}");
        let tracked = t.track(msgid::channel_key(0, Some(&channel)), 0, Some(&channel));
        assert_eq!(tracked, i < MAX_TRACKED);
    }
    assert_eq!(t.tracked(), MAX_TRACKED);
    let payload = payload(9);
    let ident = Identified { channel: Some("new".into()), value: Some("9".into()), sequence: Some(9) };
    let read = Read { source: 0, connection: &connection, ident, payload: &payload, received_ms: 1, at: now };
    let mut out = Vec::new();
    t.message(&read, &mut |o| out.push(o));
    assert_eq!(ids(&out), ["e:new:9"]);
    assert_eq!((out[0].seq, t.held()), (0, 0));
}

#[test]
fn a_huge_channel_is_labelled_by_its_hash_and_its_subject_bounded() {
    let mut t = tracker(true);
    let now = Instant::now();
    let huge = "x".repeat(100_000);
    let connection: Arc<str> = Arc::from("a/e/0.1/r");
    let payload = payload(1);
    let ident = Identified { channel: Some(huge.as_str().into()), value: Some("1".into()), sequence: Some(1) };
    let read = Read { source: 0, connection: &connection, ident, payload: &payload, received_ms: 1, at: now };
    t.message(&read, &mut |_| {});
    let (key, subject) = t.next_consult(now).unwrap();
    assert!(subject.len() < 200, "{}", subject.len());
    let mut out = Vec::new();
    t.consulted(key, Ok(None), now, &mut |o| out.push(o));
    assert!(out[0].id.len() <= msgid::MAX_ID);
    assert!(t.channels.values().all(|c| c.label.len() <= MAX_LABEL + 1));
}
