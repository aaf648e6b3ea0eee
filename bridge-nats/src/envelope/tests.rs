use super::*;

fn place(epoch_channel: &'static str) -> Place<'static> {
    Place {
        subject: Subject::from("p.e.c"),
        endpoint: "e",
        channel: epoch_channel,
        connection: Arc::from("a/e/0.2/r1"),
        seq: 3,
        received_ms: 1700,
        at: Instant::now(),
    }
}

fn h(o: &Outgoing, name: &str) -> Option<String> {
    o.headers().get(name).map(|v| v.as_str().to_owned())
}

#[test]
fn a_message_has_every_header_and_an_epoch_only_past_zero() {
    let mut m = Outgoing {
        subject: Subject::from("p.e.c"),
        id: "e:c:5".into(),
        kind: Kind::Message,
        connection: Arc::from("a/e/0.1/r"),
        seq: 9,
        exchange_seq: Some(5),
        epoch: 0,
        received_ms: 1234,
        payload: Bytes::from_static(b"{}"),
        received: Instant::now(),
    };
    assert_eq!(h(&m, header::MSG_ID).as_deref(), Some("e:c:5"));
    assert_eq!(h(&m, header::KIND).as_deref(), Some("message"));
    assert_eq!(h(&m, header::RECEIVED).as_deref(), Some("1234"));
    assert_eq!(h(&m, header::CONNECTION).as_deref(), Some("a/e/0.1/r"));
    assert_eq!(h(&m, header::SEQ).as_deref(), Some("9"));
    assert_eq!(h(&m, header::EXCHANGE_SEQ).as_deref(), Some("5"));
    assert_eq!(h(&m, header::EPOCH), None);
    assert!(!m.is_gap());
    m.epoch = 3;
    assert_eq!(h(&m, header::EPOCH).as_deref(), Some("3"));
}

#[test]
fn a_sequence_marker_is_named_by_its_range_the_same_in_every_replica() {
    let g = marker(place("c"), Gap::Sequence { from: 1126, to: 1451 }, 0);
    assert_eq!(g.id, "gap:e:c:1126-1451");
    assert_eq!((h(&g, header::GAP_FROM), h(&g, header::GAP_TO)), (Some("1126".into()), Some("1451".into())));
    assert_eq!(h(&g, header::GAP_REASON).as_deref(), Some("sequence"));
    assert_eq!(h(&g, header::KIND).as_deref(), Some("gap"));
    assert_eq!(h(&g, header::EXCHANGE_SEQ), None, "a marker is no message of the exchange");
    let other = Place { connection: Arc::from("b/e/0.5/r9"), seq: 77, ..place("c") };
    assert_eq!(marker(other, Gap::Sequence { from: 1126, to: 1451 }, 0).id, g.id);
    assert_ne!(marker(place("c"), Gap::Sequence { from: 1126, to: 1553 }, 0).id, g.id);
    assert_eq!(marker(place("c"), Gap::Sequence { from: 1, to: 2 }, 4).id, "gap:e~4:c:1-2");
    let payload: serde_json::Value = serde_json::from_slice(&g.payload).unwrap();
    assert_eq!(payload["from"], 1126);
    assert_eq!(payload["to"], 1451);
    assert_eq!(payload["gap"], "sequence");
}

#[test]
fn a_reset_marker_names_both_numberings() {
    let previous = Numbering { epoch: 0, last: 1186 };
    let r = marker(place("c"), Gap::Reset { previous, first: 21 }, 1);
    assert_eq!(r.id, "reset:e~1:c");
    assert_eq!(h(&r, header::GAP_REASON).as_deref(), Some("reset"));
    assert_eq!(h(&r, header::EPOCH).as_deref(), Some("1"));
    assert_eq!(h(&r, header::RESET_LAST_EPOCH).as_deref(), Some("0"));
    assert_eq!(h(&r, header::RESET_LAST_SEQ).as_deref(), Some("1186"));
    assert_eq!(h(&r, header::RESET_FIRST_SEQ).as_deref(), Some("21"));
    assert_eq!((h(&r, header::GAP_FROM), h(&r, header::GAP_TO)), (None, None), "a reset claims no loss");
}

#[test]
fn connection_markers_hold_the_run_and_stay_bounded() {
    let long = format!("p.e.{}", "x".repeat(2000));
    let at = |connection: &str| Place {
        subject: Subject::from(long.clone()),
        connection: Arc::from(connection),
        ..place("c")
    };
    let one = marker(at("bridge/e/0.2/18c0-aa"), Gap::Connection(GapReason::Reconnect), 0);
    let two = marker(at("bridge/e/0.2/18c1-bb"), Gap::Connection(GapReason::Reconnect), 0);
    assert_ne!(one.id, two.id);
    assert!(one.id.len() <= msgid::MAX_ID);
    let restart = marker(place("c"), Gap::Connection(GapReason::Restart), 0);
    assert_eq!(h(&restart, header::GAP_REASON).as_deref(), Some("restart"));
    assert!(std::str::from_utf8(&restart.payload).unwrap().contains("\"a/e/0.2/r1\""));
}

#[test]
fn a_rejected_marker_keeps_the_original_place() {
    let m = Outgoing {
        subject: Subject::from("p.e.c"),
        id: "e:c:41".into(),
        kind: Kind::Message,
        connection: Arc::from("a/e/0.1/r"),
        seq: 4,
        exchange_seq: Some(41),
        epoch: 1,
        received_ms: 5,
        payload: Bytes::from(vec![b'x'; 5000]),
        received: Instant::now(),
    };
    let r = m.rejected(Subject::from("p.~rejected"), "max payload size exceeded");
    assert!(r.is_gap());
    assert_eq!(r.id, "rej:e:c:41");
    assert_eq!(r.subject.as_str(), "p.~rejected");
    assert_eq!(h(&r, header::REJECTED_ID).as_deref(), Some("e:c:41"));
    assert_eq!(h(&r, header::EXCHANGE_SEQ).as_deref(), Some("41"));
    assert_eq!(h(&r, header::EPOCH).as_deref(), Some("1"));
    assert_eq!(h(&r, header::SEQ).as_deref(), Some("4"));
    assert!(r.payload.len() < 300);
    let payload: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
    assert_eq!(payload["bytes"], 5000);
}
