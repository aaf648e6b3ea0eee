//! permessage-deflate on a whole connection: the offer, the server's answer,
//! compressed messages both ways, and hostile compressed input.

#![allow(clippy::disallowed_methods)]

use super::tests::{accept_response, closed, events, next_event, sent_frames, start};
use super::*;
use crate::deflate::{Compressor, DeflateConfig, Inflater};
use crate::frame::server_frame as frame;
use crate::Message;
use rand::{rngs::StdRng, SeedableRng};

fn deflate_config(deflate: DeflateConfig) -> ConnectionConfig {
    ConnectionConfig { deflate: Some(deflate), max_message_size: 1 << 20, ..ConnectionConfig::default() }
}

/// A connection opened with the server's answer `answer` to our deflate offer.
fn open_with(deflate: DeflateConfig, answer: &str) -> (Connection, Instant, UpgradeResponse) {
    let (mut conn, now, key) = start(deflate_config(deflate));
    let response =
        accept_response(&key).replace("\r\n\r\n", &format!("\r\nSec-WebSocket-Extensions: {answer}\r\n\r\n"));
    conn.handle_input(response.as_bytes(), now);
    match conn.poll_event() {
        Some(ConnectionEvent::Opened(r)) => (conn, now, *r),
        other => panic!("{other:?}"),
    }
}

/// What a server compressor with context takeover sends for each message.
fn server_compress(compressor: &mut Compressor, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(compressor.compress(message, &mut out));
    out
}

fn messages(conn: &mut Connection) -> Vec<Message> {
    events(conn)
        .into_iter()
        .map(|e| match e {
            ConnectionEvent::Message(m) => m,
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn the_offer_goes_out_and_the_answer_is_reported() {
    let (_, _, response) = open_with(DeflateConfig::default(), "permessage-deflate; server_max_window_bits=10");
    let params = response.deflate.unwrap();
    assert_eq!((params.server_max_window_bits, params.client_max_window_bits), (10, 12));
    // Without the extension in the answer the connection opens plain.
    let (mut conn, now, key) = start(deflate_config(DeflateConfig::default()));
    conn.handle_input(accept_response(&key).as_bytes(), now);
    assert!(matches!(conn.poll_event(), Some(ConnectionEvent::Opened(r)) if r.deflate.is_none()));
    assert_eq!(conn.compression_stats(), None);
    // A compressed frame is then a protocol error.
    conn.handle_input(&frame(0xc1, b"x"), now);
    let c = closed(next_event(&mut conn));
    assert_eq!(c.error, Some(ConnectionError::Protocol(ProtocolError::ReservedBits)));
}

#[test]
fn the_request_carries_the_offer_and_a_raw_offer_is_refused() {
    let now = Instant::now();
    let request = ClientRequest::new("ws://example.com/").unwrap();
    let config = deflate_config(DeflateConfig { server_no_context_takeover: true, ..DeflateConfig::default() });
    let mut conn = Connection::new(request, config, Box::new(StdRng::seed_from_u64(1)), now).unwrap();
    let mut out = Vec::new();
    let _ = conn.poll_transmit(&mut out);
    let head = String::from_utf8(out).unwrap();
    assert!(
        head.contains(
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12; server_no_context_takeover\r\n"
        ),
        "{head}"
    );
    for config in [ConnectionConfig::default(), deflate_config(DeflateConfig::default())] {
        let raw = ClientRequest::new("ws://example.com/").unwrap().extension("x-other, Permessage-Deflate");
        let err = Connection::new(raw, config, Box::new(StdRng::seed_from_u64(1)), now).unwrap_err();
        assert_eq!(err, ConfigError::RawDeflateOffer);
    }
}

#[test]
fn answers_that_break_the_offer_fail_the_handshake() {
    let asked = DeflateConfig { server_no_context_takeover: true, ..DeflateConfig::default() };
    let cases = [
        (DeflateConfig::default(), "permessage-deflate, permessage-deflate", DeflateNegotiationError::AcceptedTwice),
        (
            DeflateConfig::default(),
            "permessage-deflate; mystery",
            DeflateNegotiationError::UnknownParameter("mystery".into()),
        ),
        (asked, "permessage-deflate", DeflateNegotiationError::NotGranted("server_no_context_takeover")),
    ];
    for (config, answer, want) in cases {
        let (mut conn, now, key) = start(deflate_config(config));
        let response =
            accept_response(&key).replace("\r\n\r\n", &format!("\r\nSec-WebSocket-Extensions: {answer}\r\n\r\n"));
        conn.handle_input(response.as_bytes(), now);
        let c = closed(next_event(&mut conn));
        assert_eq!(c.error, Some(ConnectionError::Handshake(HandshakeError::Deflate(want))), "{answer}");
        assert_eq!(c.initiator, Initiator::Local, "{answer}: the client refused the answer");
        assert_eq!(conn.state(), ConnectionState::Closed);
    }
}

/// Text that deflate shrinks only by back-references, none of them closer
/// than its length: a block of pseudo-random letters, twice.
fn repeated_noise(len: usize) -> String {
    let mut x = 0x2545_f491_u32;
    let block: String = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    block.repeat(2)
}

#[test]
fn a_server_granting_a_larger_client_window_than_offered_gets_our_smaller_one() {
    // Some servers answer 15 whatever we offered (RFC 7692 §7.1.2.2 says they
    // must not); our 12-bit window is a subset of what they can inflate.
    let config = DeflateConfig { compress_threshold: 0, ..DeflateConfig::default() };
    let (mut conn, now, response) = open_with(config, "permessage-deflate; client_max_window_bits=15");
    let params = response.deflate.unwrap();
    assert_eq!((params.client_max_window_bits, params.client_window_over_granted), (12, Some(15)));
    // 6000-byte blocks: with a 32 KiB window the copy would be one back-reference.
    let text = repeated_noise(6000);
    conn.send_text(&text).unwrap();
    let frames = sent_frames(&mut conn);
    let [(true, 1, payload)] = &frames[..] else { panic!("{frames:?}") };
    assert!(payload.len() > 6000, "no reference reaches 6000 bytes back: {} bytes", payload.len());
    // The server inflates with its window of 15; one of 12 proves we kept ours.
    for bits in [15, 12] {
        let mut server = Inflater::new(bits);
        server.inflate(payload, true, 1 << 20).unwrap();
        assert_eq!(&server.take()[..], text.as_bytes(), "inflated with {bits} bits");
    }
    // And back: the server compresses with its own window, which we inflate.
    let mut server = Compressor::new(6, 8, 15, false);
    conn.handle_input(&frame(0xc1, &server_compress(&mut server, text.as_bytes())), now);
    assert_eq!(messages(&mut conn), [Message::Text(text.into())]);
}

#[test]
fn compressed_messages_arrive_whole_or_in_fragments_with_context_kept() {
    let (mut conn, now, _) = open_with(DeflateConfig::default(), "permessage-deflate");
    let mut server = Compressor::new(6, 8, 15, false);
    let text = "{\"channel\":\"trades\",\"price\":\"60123.5\",\"size\":\"0.25\"}".repeat(20);
    let first = server_compress(&mut server, text.as_bytes());
    let second = server_compress(&mut server, text.as_bytes());
    assert!(second.len() < first.len() / 2, "the repeat refers back into the first message");
    let mut wire = frame(0xc1, &first);
    // The second message in three fragments: RSV1 on the first only.
    let third = second.len() / 3;
    wire.extend(frame(0x41, &second[..third]));
    wire.extend(frame(0x00, &second[third..2 * third]));
    wire.extend(frame(0x89, b"p")); // a ping between fragments
    wire.extend(frame(0x80, &second[2 * third..]));
    wire.extend(frame(0x82, b"plain")); // uncompressed messages still pass
    for piece in wire.chunks(17) {
        conn.handle_input(piece, now);
    }
    let evs = events(&mut conn);
    assert!(matches!(&evs[1], ConnectionEvent::Ping(_)));
    let got: Vec<&Message> = evs
        .iter()
        .filter_map(|e| match e {
            ConnectionEvent::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    let n = text.len() as u64;
    assert_eq!(
        got,
        [&Message::Text(text.clone().into()), &Message::Text(text.into()), &Message::Binary("plain".into())]
    );
    let stats = conn.compression_stats().unwrap();
    assert_eq!(stats.messages_inflated, 2);
    assert_eq!(stats.inflated_from, (first.len() + second.len()) as u64);
    assert_eq!(stats.inflated_to, 2 * n);
}

#[test]
fn outgoing_messages_above_the_threshold_are_compressed() {
    let config = DeflateConfig { compress_threshold: 10, ..DeflateConfig::default() };
    let (mut conn, _, _) = open_with(config, "permessage-deflate; client_max_window_bits=10");
    conn.send_text("short").unwrap();
    let long = "abcdefgh".repeat(100);
    conn.send_text(&long).unwrap();
    conn.send_binary(long.as_bytes()).unwrap();
    let frames = sent_frames(&mut conn);
    assert_eq!(frames[0], (true, 1, b"short".to_vec()));
    // `sent_frames` drops RSV bits; read them from the wire instead.
    let mut server = Inflater::new(10);
    for (fin, opcode, payload) in &frames[1..] {
        assert!(*fin && payload.len() < 100, "{opcode}: {} bytes", payload.len());
        server.inflate(payload, true, 1 << 20).unwrap();
        assert_eq!(&server.take()[..], long.as_bytes());
    }
    let stats = conn.compression_stats().unwrap();
    assert_eq!((stats.messages_compressed, stats.compressed_from), (2, 1600));
}

#[test]
fn compressed_outgoing_fragments_carry_rsv1_on_the_first_only() {
    let mut deflate = deflate_config(DeflateConfig { compress_threshold: 0, level: 0, ..DeflateConfig::default() });
    deflate.fragment_size = Some(100);
    let (mut conn, now, key) = start(deflate);
    let response =
        accept_response(&key).replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n");
    conn.handle_input(response.as_bytes(), now);
    let _ = events(&mut conn);
    conn.send_binary(&[7u8; 250]).unwrap();
    let mut out = Vec::new();
    let _ = conn.poll_transmit(&mut out);
    // Level 0 stores: 250 bytes + block headers, so three frames.
    let mut firsts = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        firsts.push(rest[0]);
        let len = (rest[1] & 0x7f) as usize;
        rest = &rest[2 + 4 + len..];
    }
    assert_eq!(firsts, [0x42, 0x00, 0x80]);
}

#[test]
fn a_bomb_closes_with_1009_before_the_memory_is_spent() {
    let (mut conn, now, _) = open_with(DeflateConfig::default(), "permessage-deflate");
    let mut server = Compressor::new(9, 9, 15, false);
    let bomb = server_compress(&mut server, &vec![b'a'; 8 << 20]);
    assert!(bomb.len() < 64 << 10);
    conn.handle_input(&frame(0xc2, &bomb), now);
    let c = closed(next_event(&mut conn));
    assert_eq!(
        c.error,
        Some(ConnectionError::Protocol(ProtocolError::MessageTooLarge { size: (1 << 20) + 1, limit: 1 << 20 }))
    );
    assert_eq!(c.sent_code, Some(CloseCode::Size));
}

#[test]
fn corrupt_data_and_misplaced_rsv1_close_with_1002() {
    let cases: [Vec<u8>; 3] = [
        frame(0xc1, &[0xff, 0xff, 0xff]),                      // reserved block type
        [frame(0x41, &[0x00]), frame(0xc0, &[0x00])].concat(), // RSV1 on a continuation
        frame(0xc9, b""),                                      // RSV1 on a ping
    ];
    for wire in cases {
        let (mut conn, now, _) = open_with(DeflateConfig::default(), "permessage-deflate");
        conn.handle_input(&wire, now);
        let c = closed(events(&mut conn).pop());
        assert_eq!(c.sent_code, Some(CloseCode::Protocol), "{wire:x?}: {:?}", c.error);
    }
    // Valid deflate of bad UTF-8 is a text error, 1007.
    let (mut conn, now, _) = open_with(DeflateConfig::default(), "permessage-deflate");
    let mut server = Compressor::new(1, 8, 15, false);
    conn.handle_input(&frame(0xc1, &server_compress(&mut server, b"ok \xff\xfe")), now);
    assert_eq!(closed(next_event(&mut conn)).sent_code, Some(CloseCode::Invalid));
}

#[test]
fn server_window_of_8_bits_is_inflated_and_we_send_plain() {
    let (mut conn, now, response) =
        open_with(DeflateConfig::default(), "permessage-deflate; client_max_window_bits=8; server_max_window_bits=8");
    assert_eq!(response.deflate.map(|p| (p.client_max_window_bits, p.server_max_window_bits)), Some((8, 8)));
    conn.send_text(&"x".repeat(500)).unwrap();
    let mut out = Vec::new();
    let _ = conn.poll_transmit(&mut out);
    assert_eq!(out[0], 0x81, "no RSV1: zlib cannot honour an 8-bit window");
    // A stored block is valid whatever the window.
    conn.handle_input(&frame(0xc2, &[0x00, 0x02, 0x00, 0xfd, 0xff, 1, 2]), now);
    assert_eq!(messages(&mut conn), [Message::Binary(vec![1u8, 2].into())]);
}
