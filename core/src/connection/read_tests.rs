//! Reads straight into the connection's buffer (`read_buffer` and
//! `handle_read`, as the adapters read) deliver exactly what `handle_input`
//! delivers, whatever the read sizes, with large frames read into buffers of
//! their own and bytes past them handed back in order.

#![allow(clippy::disallowed_methods)]

use proptest::prelude::*;

use super::*;
use crate::frame::server_frame as frame;
use rand::{rngs::StdRng, SeedableRng};

pub(super) fn open() -> Connection {
    Connection::from_upgraded(ConnectionConfig::default(), Box::new(StdRng::seed_from_u64(5))).expect("default config")
}

pub(super) fn messages(conn: &mut Connection) -> Vec<Message> {
    std::iter::from_fn(|| conn.poll_event())
        .filter_map(|e| match e {
            ConnectionEvent::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// Feeds `wire` as an adapter would: each read fills at most the room
/// offered, at most `sizes[i]` bytes; reads flagged in `copy` go through
/// `handle_input` instead.
fn read_all(conn: &mut Connection, wire: &[u8], sizes: &[usize], copy: &[bool]) -> Vec<Message> {
    let now = Instant::now();
    let mut got = Vec::new();
    let mut pos = 0;
    // Bounded: every read moves at least one byte.
    for i in 0..=wire.len() {
        if pos == wire.len() {
            break;
        }
        let size = sizes[i % sizes.len()];
        if copy[i % copy.len()] {
            let n = size.min(wire.len() - pos);
            conn.handle_input(&wire[pos..pos + n], now);
            pos += n;
        } else {
            let buf = conn.read_buffer();
            let room = buf.capacity() - buf.len();
            assert!(room > 0, "read_buffer offers room");
            let n = size.min(room).min(wire.len() - pos);
            buf.extend_from_slice(&wire[pos..pos + n]);
            conn.handle_read(n, now);
            pos += n;
        }
        got.extend(messages(conn));
    }
    assert_eq!(pos, wire.len());
    got
}

pub(super) fn payload(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + seed) as u8).collect()
}

#[test]
fn a_large_frame_in_pieces_then_small_frames_in_the_same_read() {
    let big = payload(70_000, 1);
    let mut wire = frame(0x82, &big);
    wire.extend(frame(0x82, b"after"));
    wire.extend(frame(0x89, b"ping"));
    wire.extend(frame(0x81, b"text"));
    let want = vec![Message::Binary(big.into()), Message::Binary("after".into()), Message::Text("text".into())];
    for sizes in [&[10, 5000, 100_000][..], &[1], &[70_005], &[65_536, 7]] {
        let got = read_all(&mut open(), &wire, sizes, &[false]);
        assert_eq!(got, want, "reads of {sizes:?}");
    }
    let mut conn = open();
    assert_eq!(read_all(&mut conn, &wire, &[3000, 20_000], &[false, true]), want, "mixed with handle_input");
    // A large frame cut by the end of the stream is reported mid-frame.
    let mut conn = open();
    let _ = read_all(&mut conn, &wire[..40_000], &[4096], &[false]);
    conn.handle_eof(Instant::now());
    let closed = std::iter::from_fn(|| conn.poll_event()).last();
    assert!(
        matches!(closed, Some(ConnectionEvent::Closed(c)) if c.error == Some(ConnectionError::UnexpectedEof { mid_frame: true }))
    );
}

#[test]
fn a_flood_of_large_frames_takes_one_read_each_and_copies_no_payload() {
    const N: usize = 8;
    const LEN: usize = 64 << 10;
    let mut wire = Vec::new();
    for i in 0..N {
        wire.extend(frame(0x82, &payload(LEN, i)));
    }
    let mut conn = open();
    let now = Instant::now();
    let (mut pos, mut got) = (0, Vec::new());
    // Per read after the first message: where it wrote, and the messages it completed.
    let mut reads = Vec::new();
    for _ in 0..10 * N {
        if pos == wire.len() {
            break;
        }
        let (buf, limit) = conn.read_room();
        // A socket with the whole flood waiting: the read takes all it is allowed.
        let n = limit.min(buf.capacity() - buf.len()).min(wire.len() - pos);
        let start = buf.len();
        buf.extend_from_slice(&wire[pos..pos + n]);
        let written = buf[start..].as_ptr() as usize;
        conn.handle_read(n, now);
        pos += n;
        let new = messages(&mut conn);
        if !got.is_empty() {
            reads.push((written, new.clone()));
        }
        got.extend(new);
    }
    assert_eq!(got.len(), N, "every frame delivered");
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.as_bytes(), &payload(LEN, i)[..], "message {i}");
    }
    // The first frame's header came with the start of its payload (copied
    // once into its buffer); every later frame took exactly one read, which
    // wrote its payload where the message now points.
    assert_eq!(reads.len(), N - 1, "one read per later frame");
    for (written, completed) in &reads {
        assert_eq!(completed.len(), 1);
        assert_eq!(completed[0].as_bytes().as_ptr() as usize, *written, "the payload is where the read wrote it");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn reads_into_the_buffer_deliver_what_handle_input_does(
        lens in prop::collection::vec(prop_oneof![0usize..200, 1900usize..2300, 3000usize..20_000, 20_000usize..70_000], 1..6),
        fragmented in prop::collection::vec(any::<bool>(), 1..6),
        sizes in prop::collection::vec(1usize..80_000, 1..8),
        copy in prop::collection::vec(prop::bool::weighted(0.2), 1..5),
    ) {
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            let p = payload(len, i);
            if fragmented[i % fragmented.len()] && len > 1 {
                // Two fragments with a pong between them.
                wire.extend(frame(0x02, &p[..len / 2]));
                wire.extend(frame(0x8a, b""));
                wire.extend(frame(0x80, &p[len / 2..]));
            } else {
                wire.extend(frame(0x82, &p));
            }
            want.push(Message::Binary(p.into()));
        }
        let mut reference = open();
        reference.handle_input(&wire, Instant::now());
        prop_assert_eq!(&messages(&mut reference), &want);
        prop_assert_eq!(read_all(&mut open(), &wire, &sizes, &copy), want);
    }
}

#[test]
fn large_frames_arriving_one_at_a_time_are_not_copied_either() {
    // The server writes frame by frame and the client keeps up: a read ends
    // where a frame ends, with no header after it. The next read takes at
    // most a header's length, so the large payload after it goes to its own
    // buffer with at most 8 bytes copied (those that came with a 2-byte header).
    const N: usize = 8;
    const LEN: usize = 40_000;
    let frames: Vec<Vec<u8>> = (0..N).map(|i| frame(0x82, &payload(LEN, i))).collect();
    let wire = frames.concat();
    let mut conn = open();
    let now = Instant::now();
    let (mut pos, mut arrived, mut got, mut reads) = (0, 0, Vec::new(), 0);
    let mut written = Vec::new();
    while pos < wire.len() && reads < 10 * N {
        if pos == arrived {
            arrived += frames[0].len();
        }
        let (buf, limit) = conn.read_room();
        let n = limit.min(buf.capacity() - buf.len()).min(arrived - pos);
        let start = buf.len();
        buf.extend_from_slice(&wire[pos..pos + n]);
        written.push(buf[start..].as_ptr() as usize);
        conn.handle_read(n, now);
        pos += n;
        reads += 1;
        got.extend(messages(&mut conn));
    }
    assert_eq!(got.len(), N);
    for (i, m) in got.iter().enumerate().skip(1) {
        assert_eq!(m.as_bytes(), &payload(LEN, i)[..]);
        // A read wrote all of it but the few bytes that came with its header.
        let p = m.as_bytes().as_ptr() as usize;
        assert!(written.iter().any(|&w| w >= p && w <= p + MAX_SERVER_HEADER), "message {i} is where a read wrote it");
    }
}

// ----- text validated as it arrives (issue 23, item 9) -----

/// What feeding a stream piece by piece did: the messages, and the piece
/// after which the connection failed with invalid UTF-8 (if it did).
#[derive(Debug, PartialEq)]
struct Fed {
    messages: Vec<Message>,
    failed_at: Option<usize>,
}

/// Takes events, and acts on a violation as a caller does once
/// `poll_timeout` says it is due; returns whether the connection closed with 1007.
fn drain_and_act(conn: &mut Connection, now: Instant, messages: &mut Vec<Message>) -> bool {
    let mut closed = false;
    // Bounded: a violation is acted on once, after which nothing more is read.
    for _ in 0..3 {
        while let Some(event) = conn.poll_event() {
            match event {
                ConnectionEvent::Message(m) => messages.push(m),
                ConnectionEvent::Closed(c) => {
                    assert_eq!(c.error, Some(ConnectionError::Protocol(ProtocolError::InvalidUtf8)), "{c:?}");
                    assert_eq!(c.sent_code, Some(CloseCode::Invalid));
                    closed = true;
                }
                _ => {}
            }
        }
        match conn.poll_timeout() {
            Some(due) if due <= now => conn.handle_timeout(now),
            _ => break,
        }
    }
    closed
}

/// Feeds `pieces` through `handle_input` (or, with `direct`, through
/// `read_buffer` and `handle_read`, as the adapters read).
fn feed(pieces: &[&[u8]], direct: bool) -> Fed {
    let mut conn = open();
    let now = Instant::now();
    let mut fed = Fed { messages: Vec::new(), failed_at: None };
    for (i, piece) in pieces.iter().enumerate() {
        if direct {
            let mut rest = *piece;
            // Bounded: each read moves at least one byte while the connection reads.
            while !rest.is_empty() && conn.state() == ConnectionState::Open {
                let (buf, limit) = conn.read_room();
                let n = limit.min(buf.capacity() - buf.len()).min(rest.len());
                assert!(n > 0, "read_room offers room");
                buf.extend_from_slice(&rest[..n]);
                conn.handle_read(n, now);
                rest = &rest[n..];
            }
        } else {
            conn.handle_input(piece, now);
        }
        if drain_and_act(&mut conn, now, &mut fed.messages) {
            fed.failed_at = Some(i);
            break;
        }
    }
    fed
}

/// `wire` cut after every byte.
fn bytes(wire: &[u8]) -> Vec<&[u8]> {
    wire.chunks(1).collect()
}

#[test]
fn invalid_utf8_in_a_text_frame_fails_at_its_byte_not_at_the_frame_end() {
    // A 200-byte text frame (a 4-byte header) delivered a byte at a time.
    for (bad_at, bad) in
        [(50usize, &b"\xff"[..]), (100, b"\xed\xa0"), (120, b"\xe2\x28"), (0, b"\x80"), (150, b"\xf4\x90")]
    {
        let mut payload = vec![b'a'; 200];
        payload[bad_at..bad_at + bad.len()].copy_from_slice(bad);
        let wire = frame(0x81, &payload);
        // The byte that makes the text impossible: the last of `bad`.
        let want = 4 + bad_at + bad.len() - 1;
        for direct in [false, true] {
            let fed = feed(&bytes(&wire), direct);
            assert_eq!(fed.failed_at, Some(want), "{bad:x?} at {bad_at}, direct {direct}");
        }
    }
}

#[test]
fn invalid_utf8_in_a_trickling_continuation_fails_at_its_byte() {
    // "caf\xc3" then a continuation frame whose first payload byte cannot follow \xc3.
    let mut wire = frame(0x01, b"caf\xc3");
    let second = wire.len();
    wire.extend(frame(0x80, b"(and more text that never counts)"));
    let fed = feed(&bytes(&wire), false);
    assert_eq!(fed.failed_at, Some(second + 2), "the continuation's first payload byte");
    // A text frame where a continuation belongs is 1002, whatever its text.
    let mut wire = frame(0x01, b"ok");
    wire.extend(frame(0x81, b"\xff and more"));
    let mut conn = open();
    let now = Instant::now();
    for b in bytes(&wire) {
        conn.handle_input(b, now);
    }
    assert_eq!(std::iter::from_fn(|| conn.poll_event()).count(), 0, "nothing before the violation");
    conn.handle_timeout(now);
    let closed = std::iter::from_fn(|| conn.poll_event()).find_map(|e| match e {
        ConnectionEvent::Closed(c) => Some(c),
        _ => None,
    });
    assert_eq!(closed.and_then(|c| c.error), Some(ConnectionError::Protocol(ProtocolError::ExpectedContinuation)));
}

#[test]
fn invalid_utf8_in_a_large_text_frame_fails_in_the_read_that_brings_it() {
    // 70 000 bytes: read into a buffer of its own, 1000 bytes a read.
    let mut payload = "é".repeat(35_000).into_bytes();
    payload[30_001] = b'x'; // the second byte of a two-byte code point
    let wire = frame(0x81, &payload);
    let pieces: Vec<&[u8]> = wire.chunks(1000).collect();
    let want = (10 + 30_001) / 1000;
    for direct in [false, true] {
        assert_eq!(feed(&pieces, direct).failed_at, Some(want), "direct {direct}");
    }
}

#[test]
fn valid_text_in_pieces_and_binary_are_delivered_whole() {
    let text = "aé€𝄞z".repeat(5000);
    let mut wire = frame(0x81, text.as_bytes());
    wire.extend(frame(0x82, b"\xff\xfe binary is not text"));
    wire.extend(frame(0x01, &text.as_bytes()[..7]));
    wire.extend(frame(0x80, &text.as_bytes()[7..]));
    let want = vec![
        Message::Text(text.as_str().into()),
        Message::Binary(Bytes::from_static(b"\xff\xfe binary is not text")),
        Message::Text(text.as_str().into()),
    ];
    for size in [1, 3, 1000, 20_000] {
        let pieces: Vec<&[u8]> = wire.chunks(size).collect();
        for direct in [false, true] {
            let fed = feed(&pieces, direct);
            assert_eq!(fed, Fed { messages: want.clone(), failed_at: None }, "pieces of {size}, direct {direct}");
        }
    }
}

/// The index of the first byte after which `text` can never be valid
/// UTF-8, however it goes on; `None` if every prefix can still be.
fn first_impossible(text: &[u8]) -> Option<usize> {
    (0..text.len()).find(|&i| std::str::from_utf8(&text[..=i]).is_err_and(|e| e.error_len().is_some()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    /// Validating as bytes arrive agrees with validating the whole: the
    /// same message, or a 1007 close in the piece holding the first byte
    /// that can never become valid (or the last piece, for text cut short).
    #[test]
    fn incremental_and_whole_frame_validation_agree(
        parts in prop::collection::vec(prop_oneof![
            ".{0,8}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..4),
        ], 0..12),
        split in any::<prop::sample::Index>(),
        fragmented in any::<bool>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        direct in any::<bool>(),
    ) {
        let text: Vec<u8> = parts.concat();
        let at = if fragmented { split.index(text.len() + 1) } else { text.len() };
        let (first, second) = (frame(if fragmented { 0x01 } else { 0x81 }, &text[..at]), frame(0x80, &text[at..]));
        let mut wire = first.clone();
        if fragmented {
            wire.extend(&second);
        }
        // Where each payload byte sits on the wire.
        let offset = |i: usize| if i < at { first.len() - at + i } else { first.len() + second.len() - (text.len() - i) };
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        cuts.push(0);
        cuts.push(wire.len());
        cuts.sort_unstable();
        cuts.dedup();
        let pieces: Vec<&[u8]> = cuts.windows(2).map(|w| &wire[w[0]..w[1]]).collect();
        let piece_of = |pos: usize| cuts.windows(2).position(|w| w[0] <= pos && pos < w[1]);
        let whole = feed(&[&wire], false);
        let fed = feed(&pieces, direct);
        match (std::str::from_utf8(&text), first_impossible(&text)) {
            (Ok(valid), _) => {
                prop_assert_eq!(&whole.messages, &vec![Message::Text(valid.into())]);
                prop_assert_eq!(fed, whole);
            }
            (Err(_), impossible) => {
                prop_assert_eq!(whole.failed_at, Some(0));
                prop_assert!(fed.messages.is_empty());
                // Cut short: only the frame's end shows it.
                let pos = impossible.map_or(wire.len() - 1, offset);
                prop_assert_eq!(fed.failed_at, piece_of(pos), "text {:x?} at {}, pieces {:?}", text, pos, cuts);
            }
        }
    }
}
