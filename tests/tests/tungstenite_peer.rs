//! The wslink connection against tungstenite's server side over an in-memory
//! duplex: messages of every size both ways, fragments, pings, closes from
//! either side, and each protocol violation a hostile server can commit,
//! checked on both ends (the client's event and the close code the server reads).

use bytes::Bytes;
use tungstenite::protocol::frame::coding::{CloseCode as TungCloseCode, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::Message as TungMessage;
use wslink_core::{
    ClientRequest, CloseCode, Closed, ConnectionConfig, ConnectionError, ConnectionEvent, ConnectionState, Initiator,
    Message, ProtocolError,
};
use wslink_tests::{server_frame, Duplex};

const SIZES: &[usize] = &[0, 1, 125, 126, 127, 65535, 65536, 100_000, 1 << 20];

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

fn only_closed(events: Vec<ConnectionEvent>) -> Closed {
    match events.as_slice() {
        [ConnectionEvent::Closed(c)] => (**c).clone(),
        other => panic!("expected exactly one Closed, got {other:?}"),
    }
}

#[test]
fn handshake_reports_the_chosen_subprotocol() {
    let mut d = Duplex::open_default();
    match d.client_events().as_slice() {
        [ConnectionEvent::Opened(r)] => assert_eq!(r.subprotocol, None),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.client.state(), ConnectionState::Open);
}

#[test]
fn echo_of_every_size_both_kinds_client_to_server_and_back() {
    for chunk in [usize::MAX, 1400, 7] {
        let mut d = Duplex::open_default();
        d.chunk = chunk;
        d.client_events();
        for &n in SIZES.iter().filter(|&&n| chunk > 7 || n <= 65536) {
            let data = payload(n);
            let text = String::from_utf8(data.clone()).unwrap();
            d.client.send_text(&text).unwrap();
            assert_eq!(d.server_read().unwrap().unwrap(), TungMessage::Text(text.clone().into()), "text {n}");
            d.client.send_binary(&data).unwrap();
            assert_eq!(d.server_read().unwrap().unwrap(), TungMessage::Binary(data.clone().into()), "binary {n}");
            d.server_send(TungMessage::Text(text.clone().into()));
            d.server_send(TungMessage::Binary(data.clone().into()));
            assert_eq!(
                d.client_events(),
                vec![
                    ConnectionEvent::Message(Message::Text(text.into())),
                    ConnectionEvent::Message(Message::Binary(Bytes::from(data)))
                ],
                "size {n} chunk {chunk}"
            );
        }
    }
}

#[test]
fn fragmented_messages_both_ways_with_pings_between_fragments() {
    let config = ConnectionConfig::default().fragment_size(Some(1000));
    let mut d = Duplex::open(ClientRequest::new("ws://localhost/").unwrap(), config);
    d.client_events();
    let text = "é€".repeat(5000);
    d.client.send_text(&text).unwrap();
    assert_eq!(d.server_read().unwrap().unwrap(), TungMessage::Text(text.clone().into()));

    // Server fragments split a multi-byte character and interleave a ping.
    let bytes = text.as_bytes();
    let cuts = [0, 1, 4001, bytes.len()];
    for (i, w) in cuts.windows(2).enumerate() {
        let opcode = if i == 0 { OpCode::from(1) } else { OpCode::from(0) };
        let last = w[1] == bytes.len();
        d.server.write(TungMessage::Frame(Frame::message(bytes[w[0]..w[1]].to_vec(), opcode, last))).unwrap();
        if i == 0 {
            d.server.write(TungMessage::Ping(Bytes::from_static(b"mid"))).unwrap();
        }
    }
    d.server.flush().unwrap();
    d.deliver_to_client();
    assert_eq!(
        d.client_events(),
        vec![ConnectionEvent::Ping(Bytes::from_static(b"mid")), ConnectionEvent::Message(Message::Text(text.into()))]
    );
    assert_eq!(d.server_read().unwrap().unwrap(), TungMessage::Pong(Bytes::from_static(b"mid")));
}

#[test]
fn pings_both_ways() {
    let mut d = Duplex::open_default();
    d.client_events();
    d.client.ping(b"rtt-1").unwrap();
    // tungstenite answers the ping itself while reading.
    assert_eq!(d.server_read().unwrap().unwrap(), TungMessage::Ping(Bytes::from_static(b"rtt-1")));
    assert_eq!(d.client_events(), vec![ConnectionEvent::Pong(Bytes::from_static(b"rtt-1"))]);
    d.server_send(TungMessage::Ping(Bytes::from_static(b"srv")));
    assert_eq!(d.client_events(), vec![ConnectionEvent::Ping(Bytes::from_static(b"srv"))]);
    assert_eq!(d.server_read().unwrap().unwrap(), TungMessage::Pong(Bytes::from_static(b"srv")));
}

#[test]
fn client_initiated_close_completes_with_the_server_echo() {
    let mut d = Duplex::open_default();
    d.client_events();
    d.client.close(CloseCode::Normal, "bye", d.now).unwrap();
    let got = d.server_read().unwrap().unwrap();
    assert_eq!(got, TungMessage::Close(Some(CloseFrame { code: TungCloseCode::Normal, reason: "bye".into() })));
    let c = only_closed(d.client_events());
    assert_eq!((c.initiator, c.code, c.reason.as_str(), c.error), (Initiator::Local, CloseCode::Normal, "bye", None));
    assert_eq!(d.client.state(), ConnectionState::Closing);
    d.client.handle_eof(d.now);
    assert_eq!(d.client.state(), ConnectionState::Closed);
    assert!(d.client_events().is_empty());
}

#[test]
fn server_initiated_close_is_echoed() {
    let mut d = Duplex::open_default();
    d.client_events();
    d.server.close(Some(CloseFrame { code: TungCloseCode::Library(4001), reason: "maintenance".into() })).unwrap();
    let _ = d.server.flush();
    d.deliver_to_client();
    let c = only_closed(d.client_events());
    assert_eq!((c.initiator, c.code, c.reason.as_str()), (Initiator::Remote, CloseCode::Library(4001), "maintenance"));
    assert_eq!(c.sent_code, Some(CloseCode::Library(4001)));
    // tungstenite sees the echo and completes its side of the handshake.
    match d.server_read() {
        Some(Err(tungstenite::Error::ConnectionClosed)) | Some(Ok(TungMessage::Close(_))) => {}
        other => panic!("{other:?}"),
    }
    d.server.get_mut().client_closed = true;
    d.client.handle_eof(d.now);
    assert_eq!(d.client.state(), ConnectionState::Closed);
}

#[test]
fn each_protocol_violation_fails_with_its_code_on_both_ends() {
    let mut invalid_utf8_fragments = server_frame(false, 1, b"ok");
    invalid_utf8_fragments.extend(server_frame(true, 0, b"\xc0\xaf"));
    let mut masked = vec![0x82, 0x82, 1, 2, 3, 4];
    masked.extend_from_slice(b"xy");
    let cases: Vec<(&str, Vec<u8>, ProtocolError, u16)> = vec![
        ("masked frame", masked, ProtocolError::MaskedFrame, 1002),
        ("rsv1", vec![0xC2, 0x00], ProtocolError::ReservedBits, 1002),
        ("rsv3", vec![0x92, 0x00], ProtocolError::ReservedBits, 1002),
        ("data opcode 3", server_frame(true, 3, b""), ProtocolError::ReservedOpcode(3), 1002),
        ("control opcode 0xB", server_frame(true, 0xB, b""), ProtocolError::ReservedOpcode(0xB), 1002),
        ("fragmented ping", server_frame(false, 9, b""), ProtocolError::FragmentedControlFrame, 1002),
        ("long ping", server_frame(true, 9, &[0; 126]), ProtocolError::ControlFrameTooLong(126), 1002),
        ("lone continuation", server_frame(true, 0, b"x"), ProtocolError::UnexpectedContinuation, 1002),
        (
            "text inside fragmented binary",
            [server_frame(false, 2, b"a"), server_frame(true, 1, b"b")].concat(),
            ProtocolError::ExpectedContinuation,
            1002,
        ),
        ("bad utf-8", server_frame(true, 1, b"\xff"), ProtocolError::InvalidUtf8, 1007),
        ("bad utf-8 across fragments", invalid_utf8_fragments, ProtocolError::InvalidUtf8, 1007),
        ("1-byte close", server_frame(true, 8, b"\x03"), ProtocolError::InvalidClosePayload, 1002),
        ("close code 1005", server_frame(true, 8, &1005u16.to_be_bytes()), ProtocolError::InvalidCloseCode(1005), 1002),
        ("close code 999", server_frame(true, 8, &999u16.to_be_bytes()), ProtocolError::InvalidCloseCode(999), 1002),
        ("close reason not utf-8", server_frame(true, 8, b"\x03\xe8\xfe"), ProtocolError::InvalidCloseReason, 1007),
        (
            "frame over the limit",
            vec![0x82, 0x7F, 0, 0, 0, 0, 0x01, 0, 0, 0],
            ProtocolError::FrameTooLarge { size: 1 << 24, limit: 1 << 20 },
            1009,
        ),
        (
            "message over the limit",
            [server_frame(false, 2, &[0; 600_000]), server_frame(true, 0, &[0; 600_000])].concat(),
            ProtocolError::MessageTooLarge { size: 1_200_000, limit: 1 << 20 },
            1009,
        ),
    ];
    for (name, bytes, error, code) in cases {
        let config = ConnectionConfig::default().max_frame_size(1 << 20).max_message_size(1 << 20);
        let mut d = Duplex::open(ClientRequest::new("ws://localhost/").unwrap(), config);
        d.client_events();
        d.inject(&bytes);
        let c = only_closed(d.client_events());
        assert_eq!(c.error, Some(ConnectionError::Protocol(error)), "{name}");
        assert_eq!((c.initiator, c.sent_code.map(u16::from)), (Initiator::Local, Some(code)), "{name}");
        assert_eq!(d.client.state(), ConnectionState::Closed, "{name}: the transport is to be closed at once");
        match d.server_read() {
            Some(Ok(TungMessage::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), code, "{name}"),
            other => panic!("{name}: server read {other:?}"),
        }
    }
}

#[test]
fn a_server_that_drops_mid_frame_is_an_unexpected_eof() {
    let mut d = Duplex::open_default();
    d.client_events();
    let frame = server_frame(true, 2, &payload(300));
    d.inject(&frame[..100]);
    d.client.handle_eof(d.now);
    let c = only_closed(d.client_events());
    assert_eq!((c.initiator, c.code), (Initiator::Remote, CloseCode::Abnormal));
    assert_eq!(c.error, Some(ConnectionError::UnexpectedEof { mid_frame: true }));
}

#[test]
fn close_timeout_cuts_a_server_that_never_answers() {
    let mut d = Duplex::open_default();
    d.client_events();
    d.client.close(CloseCode::Away, "", d.now).unwrap();
    d.deliver_to_server(); // the server receives the close but we never let it answer
    let waited = d.advance_to_deadline().unwrap();
    assert_eq!(waited, ConnectionConfig::default().close_timeout);
    let c = only_closed(d.client_events());
    assert_eq!(c.error, Some(ConnectionError::CloseTimeout));
    assert_eq!(d.client.state(), ConnectionState::Closed);
}
