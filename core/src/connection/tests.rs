//! Connection behaviour with a fake clock: time moves only when a test says so,
//! and only to the deadlines the connection reported.

// The fake clock needs one arbitrary origin; no test reads the clock after it.
#![allow(clippy::disallowed_methods)]

use super::*;
use crate::frame::apply_mask;
use crate::Message;
use rand::{rngs::StdRng, SeedableRng};
use std::io::Cursor;
use std::time::Duration;
use tungstenite::protocol::frame::FrameHeader;

pub(super) fn start(config: ConnectionConfig) -> (Connection, Instant, String) {
    let now = Instant::now();
    let request = ClientRequest::new("ws://example.com/x").unwrap().subprotocol("chat");
    let mut conn = Connection::new(request, config, Box::new(StdRng::seed_from_u64(3)), now).unwrap();
    let mut out = Vec::new();
    let _ = conn.poll_transmit(&mut out);
    let text = String::from_utf8(out).unwrap();
    let key = text.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap().to_owned();
    (conn, now, key)
}

pub(super) fn accept_response(key: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        tungstenite::handshake::derive_accept_key(key.as_bytes())
    )
}

fn open() -> (Connection, Instant) {
    let (mut conn, now, key) = start(ConnectionConfig::default());
    conn.handle_input(accept_response(&key).as_bytes(), now);
    assert!(matches!(conn.poll_event(), Some(ConnectionEvent::Opened(_))));
    (conn, now)
}

pub(super) fn events(conn: &mut Connection) -> Vec<ConnectionEvent> {
    std::iter::from_fn(|| next_event(conn)).collect()
}

/// The next event, as a caller following the documented order sees it: once
/// `poll_event` has returned `None` with a violation held, the timeout it
/// made due is fired (at its own instant, which has passed) and polled again.
pub(super) fn next_event(conn: &mut Connection) -> Option<ConnectionEvent> {
    if let Some(event) = conn.poll_event() {
        return Some(event);
    }
    let due = conn.fault.as_ref().filter(|f| f.due).map(|f| f.read_at)?;
    conn.handle_timeout(due);
    conn.poll_event()
}

/// Decodes the masked client frames `conn` has queued: (fin, opcode byte, payload).
pub(super) fn sent_frames(conn: &mut Connection) -> Vec<(bool, u8, Vec<u8>)> {
    let mut out = Vec::new();
    let _ = conn.poll_transmit(&mut out);
    let mut frames = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let mut cursor = Cursor::new(rest);
        let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        let start = cursor.position() as usize;
        let mut payload = rest[start..start + len as usize].to_vec();
        apply_mask(&mut payload, header.mask.expect("client frames are masked"));
        frames.push((header.is_final, u8::from(header.opcode), payload));
        rest = &rest[start + len as usize..];
    }
    frames
}

pub(super) fn closed(event: Option<ConnectionEvent>) -> Closed {
    match event {
        Some(ConnectionEvent::Closed(c)) => *c,
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[test]
fn response_in_pieces_with_frames_behind_it_opens_and_delivers() {
    let (mut conn, now, key) = start(ConnectionConfig::default());
    assert_eq!(conn.state(), ConnectionState::Handshaking);
    let mut bytes = accept_response(&key).replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n").into_bytes();
    bytes.extend_from_slice(b"\x81\x05hello\x82\x00");
    for piece in bytes.chunks(7) {
        conn.handle_input(piece, now);
    }
    let evs = events(&mut conn);
    assert!(matches!(&evs[0], ConnectionEvent::Opened(r) if r.subprotocol.as_deref() == Some("chat")));
    assert_eq!(evs[1], ConnectionEvent::Message(Message::Text("hello".into())));
    assert_eq!(evs[2], ConnectionEvent::Message(Message::Binary(Bytes::new())));
    assert_eq!((conn.state(), conn.poll_timeout()), (ConnectionState::Open, None));
}

#[test]
fn handshake_times_out_at_the_reported_deadline_only() {
    let (mut conn, now, _) = start(ConnectionConfig::default());
    let deadline = conn.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(10));
    conn.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(conn.poll_event(), None);
    conn.handle_timeout(deadline);
    let c = closed(next_event(&mut conn));
    assert_eq!(
        (c.initiator, c.code, c.error),
        (Initiator::Local, CloseCode::Abnormal, Some(ConnectionError::HandshakeTimeout))
    );
    assert_eq!(conn.state(), ConnectionState::Closed);
}

#[test]
fn refused_upgrade_keeps_status_headers_and_bounded_body() {
    let (mut conn, now, _) = start(ConnectionConfig { refusal_body_limit: 8, ..Default::default() });
    conn.handle_input(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 20\r\nWWW-Authenticate: Bearer\r\n\r\nbad t", now);
    assert_eq!(conn.poll_event(), None, "body not complete yet");
    conn.handle_input(b"oken, go away", now);
    let c = closed(next_event(&mut conn));
    assert_eq!(c.initiator, Initiator::Remote, "the server refused the upgrade");
    match c.error {
        Some(ConnectionError::Handshake(HandshakeError::Refused(r))) => {
            assert_eq!((r.status, r.reason.as_str(), r.body.as_slice()), (401, "Unauthorized", &b"bad toke"[..]));
            assert_eq!(r.headers[1], ("WWW-Authenticate".into(), "Bearer".into()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(conn.state(), ConnectionState::Closed);

    let (mut conn, now, _) = start(ConnectionConfig::default());
    conn.handle_input(b"HTTP/1.1 503 Busy\r\n\r\ntry later", now);
    conn.handle_eof(now);
    match closed(next_event(&mut conn)).error {
        Some(ConnectionError::Handshake(HandshakeError::Refused(r))) => assert_eq!(r.body, b"try later"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_handshake_response_is_a_typed_close() {
    let (mut conn, now, _) = start(ConnectionConfig::default());
    conn.handle_input(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n", now);
    let c = closed(next_event(&mut conn));
    assert_eq!(c.error, Some(ConnectionError::Handshake(HandshakeError::AcceptKey)));
    assert_eq!(c.initiator, Initiator::Local, "the client refused the answer");
    assert_eq!(conn.state(), ConnectionState::Closed);
    assert_eq!(conn.send_text("x"), Err(SendError::Closed));
}

#[test]
fn draining_messages_stops_at_the_first_other_event_and_at_the_limit() {
    let (mut conn, now) = open();
    // "a", "b", a ping, "c", "d", "e".
    conn.handle_input(b"\x81\x01a\x81\x01b\x89\x00\x81\x01c\x81\x01d\x81\x01e", now);
    let text = |t: &'static str| Message::Text(t.into());
    let mut into = Vec::new();
    assert_eq!(conn.drain_messages(10, |m| into.push(m)), 2, "up to the ping");
    assert_eq!(into, [text("a"), text("b")]);
    assert_eq!(conn.drain_messages(10, |m| into.push(m)), 0, "the ping is next");
    assert_eq!(conn.poll_event(), Some(ConnectionEvent::Ping(Bytes::new())));
    assert_eq!(conn.drain_messages(2, |m| into.push(m)), 2, "no more than asked");
    assert_eq!(conn.drain_messages(10, |m| into.push(m)), 1);
    assert_eq!(into[2..], [text("c"), text("d"), text("e")]);
    assert_eq!(conn.poll_event(), None);
}

#[test]
fn pings_are_answered_with_the_same_payload() {
    let (mut conn, now) = open();
    conn.handle_input(b"\x89\x03abc\x8a\x01z", now);
    assert_eq!(
        events(&mut conn),
        vec![ConnectionEvent::Ping(Bytes::from_static(b"abc")), ConnectionEvent::Pong(Bytes::from_static(b"z"))]
    );
    assert_eq!(sent_frames(&mut conn), vec![(true, 0xA, b"abc".to_vec())]);
}

#[test]
fn server_close_is_echoed_and_the_transport_awaited() {
    let (mut conn, now) = open();
    conn.handle_input(b"\x88\x05\x03\xe9bye\x81\x01x", now);
    let c = closed(next_event(&mut conn));
    assert_eq!(
        (c.initiator, c.code, c.reason.as_str(), c.sent_code),
        (Initiator::Remote, CloseCode::Away, "bye", Some(CloseCode::Away))
    );
    assert!(c.is_clean());
    assert_eq!(conn.poll_event(), None, "data after close is ignored");
    assert_eq!(sent_frames(&mut conn), vec![(true, 0x8, b"\x03\xe9".to_vec())]);
    assert_eq!(conn.state(), ConnectionState::Closing);
    assert_eq!(conn.send_text("late"), Err(SendError::Closed));
    conn.handle_eof(now);
    assert_eq!((conn.state(), conn.poll_event()), (ConnectionState::Closed, None));
}

#[test]
fn server_that_never_ends_the_transport_is_cut_at_the_close_timeout() {
    let (mut conn, now) = open();
    conn.handle_input(b"\x88\x00", now);
    assert_eq!(closed(next_event(&mut conn)).code, CloseCode::Status);
    assert_eq!(sent_frames(&mut conn), vec![(true, 0x8, vec![])]);
    let deadline = conn.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(5));
    conn.handle_timeout(deadline);
    assert_eq!((conn.state(), conn.poll_event()), (ConnectionState::Closed, None));
}

#[test]
fn local_close_completes_on_the_server_answer() {
    let (mut conn, now) = open();
    conn.close(CloseCode::Normal, "done", now).unwrap();
    assert_eq!(sent_frames(&mut conn), vec![(true, 0x8, b"\x03\xe8done".to_vec())]);
    assert_eq!(conn.close(CloseCode::Normal, "", now), Err(SendError::Closed));
    conn.handle_input(b"\x81\x02hi", now);
    assert_eq!(
        conn.poll_event(),
        Some(ConnectionEvent::Message(Message::Text("hi".into()))),
        "data still flows until the answer"
    );
    conn.handle_input(b"\x88\x02\x03\xe8", now + Duration::from_secs(1));
    let c = closed(next_event(&mut conn));
    assert_eq!(
        (c.initiator, c.code, c.sent_code, c.error),
        (Initiator::Local, CloseCode::Normal, Some(CloseCode::Normal), None)
    );
    conn.handle_eof(now);
    assert_eq!(conn.state(), ConnectionState::Closed);
}

#[test]
fn local_close_without_answer_times_out() {
    let (mut conn, now) = open();
    conn.close(CloseCode::Away, "", now).unwrap();
    let deadline = conn.poll_timeout().unwrap();
    conn.handle_timeout(deadline);
    let c = closed(next_event(&mut conn));
    assert_eq!(
        (c.initiator, c.code, c.error),
        (Initiator::Local, CloseCode::Abnormal, Some(ConnectionError::CloseTimeout))
    );
    assert_eq!(conn.state(), ConnectionState::Closed);
}

#[test]
fn every_protocol_violation_closes_with_its_code() {
    let cases: &[(&[u8], ProtocolError, u16)] = &[
        (b"\x81\x81abcdx", ProtocolError::MaskedFrame, 1002),
        (b"\xc1\x00", ProtocolError::ReservedBits, 1002),
        (b"\x85\x00", ProtocolError::ReservedOpcode(5), 1002),
        (b"\x8f\x00", ProtocolError::ReservedOpcode(0xf), 1002),
        (b"\x09\x00", ProtocolError::FragmentedControlFrame, 1002),
        (b"\x89\x7e\x00\x80", ProtocolError::ControlFrameTooLong(128), 1002),
        (b"\x80\x01x", ProtocolError::UnexpectedContinuation, 1002),
        (b"\x01\x01x\x81\x01y", ProtocolError::ExpectedContinuation, 1002),
        (b"\x81\x02\xc3\x28", ProtocolError::InvalidUtf8, 1007),
        (b"\x01\x01a\x00\x01\xff", ProtocolError::InvalidUtf8, 1007),
        (b"\x88\x01\x03", ProtocolError::InvalidClosePayload, 1002),
        (b"\x88\x02\x03\xee", ProtocolError::InvalidCloseCode(1006), 1002),
        (b"\x88\x03\x03\xe8\xff", ProtocolError::InvalidCloseReason, 1007),
        (
            b"\x82\x7f\x00\x00\x00\x00\x01\x00\x00\x01",
            ProtocolError::FrameTooLarge { size: (16 << 20) + 1, limit: 16 << 20 },
            1009,
        ),
    ];
    for (bytes, error, code) in cases {
        let (mut conn, now) = open();
        conn.handle_input(bytes, now);
        let evs = events(&mut conn);
        let c = closed(evs.last().cloned());
        assert_eq!(c.error, Some(ConnectionError::Protocol(error.clone())), "{bytes:x?}");
        assert_eq!(
            (c.initiator, c.code, c.sent_code.map(u16::from)),
            (Initiator::Local, CloseCode::Abnormal, Some(*code))
        );
        assert_eq!(sent_frames(&mut conn), vec![(true, 0x8, code.to_be_bytes().to_vec())]);
        assert_eq!(conn.state(), ConnectionState::Closed);
        conn.handle_input(b"\x81\x01x", now);
        assert_eq!(conn.poll_event(), None, "nothing is read after a failure");
    }
}

#[test]
fn message_limit_counts_across_fragments() {
    let (mut conn, now, key) = start(ConnectionConfig { max_message_size: 4, ..Default::default() });
    conn.handle_input(accept_response(&key).as_bytes(), now);
    conn.handle_input(b"\x02\x03abc\x80\x02de", now);
    let c = closed(events(&mut conn).pop());
    assert_eq!(c.error, Some(ConnectionError::Protocol(ProtocolError::MessageTooLarge { size: 5, limit: 4 })));
    assert_eq!(c.sent_code, Some(CloseCode::Size));
}

#[test]
fn eof_and_transport_errors_are_abnormal_closes() {
    let (mut conn, now) = open();
    conn.handle_input(b"\x82\x05ab", now);
    conn.handle_eof(now);
    let c = closed(next_event(&mut conn));
    assert_eq!(
        (c.initiator, c.code, c.error),
        (Initiator::Remote, CloseCode::Abnormal, Some(ConnectionError::UnexpectedEof { mid_frame: true }))
    );
    conn.handle_eof(now);
    assert_eq!(conn.poll_event(), None, "Closed is emitted once");

    let (mut conn, now) = open();
    conn.handle_transport_error(std::io::ErrorKind::ConnectionReset, "reset", now);
    let c = closed(next_event(&mut conn));
    assert!(matches!(c.error, Some(ConnectionError::Transport { kind: std::io::ErrorKind::ConnectionReset, .. })));
}

#[test]
fn sends_are_refused_outside_the_open_state_and_checked() {
    let (mut conn, now, _) = start(ConnectionConfig::default());
    assert_eq!(conn.send_text("early"), Err(SendError::NotOpen));
    assert_eq!(conn.ping(b""), Err(SendError::NotOpen));
    conn.close(CloseCode::Normal, "", now).unwrap();
    assert_eq!(closed(next_event(&mut conn)).sent_code, None, "nothing to close on the wire yet");

    let (mut conn, now) = open();
    assert_eq!(conn.ping(&[0; 126]), Err(SendError::ControlPayloadTooLong(126)));
    assert_eq!(conn.close(CloseCode::Abnormal, "", now), Err(SendError::InvalidCloseCode(1006)));
    assert_eq!(conn.close(CloseCode::Normal, &"x".repeat(124), now), Err(SendError::CloseReasonTooLong(124)));
    assert_eq!(conn.state(), ConnectionState::Open, "a refused close changes nothing");
}

#[test]
fn outgoing_messages_are_fragmented_when_configured() {
    let (mut conn, now, key) = start(ConnectionConfig { fragment_size: Some(4), ..Default::default() });
    conn.handle_input(accept_response(&key).as_bytes(), now);
    conn.send_text("abcdefghij").unwrap();
    conn.send_binary(b"1234").unwrap();
    conn.pong(b"p").unwrap();
    assert_eq!(
        sent_frames(&mut conn),
        vec![
            (false, 0x1, b"abcd".to_vec()),
            (false, 0x0, b"efgh".to_vec()),
            (true, 0x0, b"ij".to_vec()),
            (true, 0x2, b"1234".to_vec()),
            (true, 0xA, b"p".to_vec()),
        ]
    );
}

#[test]
fn transmit_appends_into_a_caller_buffer_in_one_piece() {
    let (mut conn, _) = open();
    conn.send_text("a").unwrap();
    conn.send_text("b").unwrap();
    let mut out = b"prefix".to_vec();
    let n = conn.poll_transmit(&mut out);
    assert_eq!((n, out.len()), (14, 20));
    assert_eq!(conn.poll_transmit(&mut out), 0);
}

#[test]
fn masking_keys_differ_between_frames() {
    let (mut conn, _) = open();
    for _ in 0..4 {
        conn.send_binary(b"same").unwrap();
    }
    let mut out = Vec::new();
    let _ = conn.poll_transmit(&mut out);
    let masks: std::collections::HashSet<&[u8]> = out.chunks(10).map(|f| &f[2..6]).collect();
    assert_eq!(masks.len(), 4);
}

#[test]
fn invalid_config_and_request_are_refused_at_construction() {
    let rng = || Box::new(StdRng::seed_from_u64(0)) as Box<dyn RandomSource>;
    let now = Instant::now();
    let bad = ConnectionConfig { close_timeout: Duration::ZERO, ..Default::default() };
    let req = ClientRequest::new("ws://h/").unwrap();
    assert!(matches!(
        Connection::new(req.clone(), bad.clone(), rng(), now),
        Err(ConfigError::InvalidValue { field: "close_timeout", .. })
    ));
    assert!(matches!(Connection::from_upgraded(bad, rng()), Err(ConfigError::InvalidValue { .. })));
    let req = req.header("X\r\n", "v");
    assert_eq!(
        Connection::new(req, ConnectionConfig::default(), rng(), now).unwrap_err(),
        ConfigError::InvalidHeaderName("X\r\n".into())
    );
}
