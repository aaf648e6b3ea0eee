//! Reads straight into the connection's buffer (`read_buffer` and
//! `handle_read`, as the adapters read) deliver exactly what `handle_input`
//! delivers, whatever the read sizes, with large frames read into buffers of
//! their own and bytes past them handed back in order.

#![allow(clippy::disallowed_methods)]

use proptest::prelude::*;

use super::*;
use crate::frame::server_frame as frame;
use rand::{rngs::StdRng, SeedableRng};

fn open() -> Connection {
    Connection::from_upgraded(ConnectionConfig::default(), Box::new(StdRng::seed_from_u64(5))).expect("default config")
}

fn messages(conn: &mut Connection) -> Vec<Message> {
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

fn payload(len: usize, seed: usize) -> Vec<u8> {
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
