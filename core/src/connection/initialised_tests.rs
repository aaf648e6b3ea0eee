//! Reads into initialised room (`read_slice`, as wslink-smol reads) deliver
//! what `handle_input` delivers, mixed with the other ways in, and never
//! zero again what a read left initialised: the bytes a reader wrote past
//! its read are still there when the next read's room starts on them, and
//! a large frame's pooled buffer comes back unzeroed.

#![allow(clippy::disallowed_methods)]

use proptest::prelude::*;

use super::read_tests::{messages, open, payload};
use super::*;
use crate::frame::server_frame as frame;

/// What a reader writes past the bytes it read (a `read` may write
/// anywhere in the buffer it is given).
const MARK: u8 = 0xa5;

/// A way a read goes in.
#[derive(Debug, Clone, Copy)]
enum Way {
    /// `read_slice`, as futures-io's readers read.
    Slice,
    /// `read_room`, appending to spare capacity, as tokio's readers read.
    Spare,
    /// `handle_input`, copied.
    Copy,
}

/// Reads through `read_slice`, what the wire has (at most `want`), the
/// rest of the slice marked; returns how many bytes, and where they went.
fn read_slice(conn: &mut Connection, wire: &[u8], want: usize) -> (usize, usize) {
    let slice = conn.read_slice();
    assert!(!slice.is_empty(), "read_slice offers room");
    let n = want.min(slice.len()).min(wire.len());
    slice[..n].copy_from_slice(&wire[..n]);
    slice[n..].fill(MARK);
    (n, slice.as_ptr() as usize)
}

/// Feeds `wire` in reads of `sizes`, each going in the way `ways` says.
fn read_all(conn: &mut Connection, wire: &[u8], sizes: &[usize], ways: &[Way]) -> Vec<Message> {
    let now = Instant::now();
    let (mut got, mut pos) = (Vec::new(), 0);
    // Bounded: every read moves at least one byte.
    for i in 0..=wire.len() {
        if pos == wire.len() {
            break;
        }
        let size = sizes[i % sizes.len()];
        let n = match ways[i % ways.len()] {
            Way::Slice => {
                let (n, _) = read_slice(conn, &wire[pos..], size);
                conn.handle_read(n, now);
                n
            }
            Way::Spare => {
                let (buf, limit) = conn.read_room();
                let n = size.min(limit).min(buf.capacity() - buf.len()).min(wire.len() - pos);
                assert!(n > 0, "read_room offers room");
                buf.extend_from_slice(&wire[pos..pos + n]);
                conn.handle_read(n, now);
                n
            }
            Way::Copy => {
                let n = size.min(wire.len() - pos);
                conn.handle_input(&wire[pos..pos + n], now);
                n
            }
        };
        pos += n;
        got.extend(messages(conn));
    }
    assert_eq!(pos, wire.len());
    got
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn reads_into_initialised_room_deliver_what_handle_input_does(
        lens in prop::collection::vec(prop_oneof![0usize..200, 1900usize..2300, 3000usize..20_000, 20_000usize..70_000], 1..6),
        text in prop::collection::vec(any::<bool>(), 1..6),
        sizes in prop::collection::vec(1usize..80_000, 1..8),
        ways in prop::collection::vec(prop_oneof![6 => Just(Way::Slice), 1 => Just(Way::Spare), 1 => Just(Way::Copy)], 1..6),
    ) {
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            if text[i % text.len()] {
                let t = "aé€".repeat(len / 6 + 1);
                wire.extend(frame(0x81, t.as_bytes()));
                wire.extend(frame(0x89, b"ping"));
                want.push(Message::Text(t.as_str().into()));
            } else {
                let p = payload(len, i);
                wire.extend(frame(0x82, &p));
                want.push(Message::Binary(p.into()));
            }
        }
        let mut reference = open();
        reference.handle_input(&wire, Instant::now());
        prop_assert_eq!(&messages(&mut reference), &want);
        prop_assert_eq!(read_all(&mut open(), &wire, &sizes, &ways), want);
    }
}

#[test]
fn a_read_never_zeroes_what_an_earlier_read_left_initialised() {
    // Small messages, one a read, as a feed sends them when the client keeps
    // up: each read's room starts where the last read's bytes ended, on the
    // bytes the reader left there.
    let mut conn = open();
    let now = Instant::now();
    let (mut continued, mut renewed, mut last_end) = (0, 0, None);
    for i in 0..200 {
        let wire = frame(0x82, &payload(20 + i % 7, i));
        let slice = conn.read_slice();
        let start = slice.as_ptr() as usize;
        if last_end == Some(start) {
            assert!(slice.iter().all(|&b| b == MARK), "read {i}: the room the last read left is as it left it");
            continued += 1;
        } else {
            renewed += 1;
        }
        let (n, _) = read_slice(&mut conn, &wire, usize::MAX);
        assert_eq!(n, wire.len());
        last_end = Some(start + n);
        conn.handle_read(n, now);
        assert_eq!(messages(&mut conn).len(), 1);
    }
    assert!(continued > 150, "most reads continue in the same room: {continued} did, {renewed} did not");
}

#[test]
fn a_flood_of_large_frames_read_into_initialised_room_zeroes_no_reused_buffer() {
    const N: usize = 12;
    const LEN: usize = 64 << 10;
    let mut wire = Vec::new();
    for i in 0..N {
        wire.extend(frame(0x82, &payload(LEN, i)));
    }
    let mut conn = open();
    let now = Instant::now();
    let (mut pos, mut got, mut zeroed_rooms) = (0, 0, Vec::new());
    for read in 0..10 * N {
        if pos == wire.len() {
            break;
        }
        let slice = conn.read_slice();
        // A room that comes back from the pool holds what the last payload there left.
        if slice.len() > 1024 && slice.iter().all(|&b| b == 0) {
            zeroed_rooms.push(read);
        }
        let start = slice.as_ptr() as usize;
        let (n, _) = read_slice(&mut conn, &wire[pos..], usize::MAX);
        conn.handle_read(n, now);
        pos += n;
        for m in messages(&mut conn) {
            assert_eq!(m.as_bytes(), &payload(LEN, got)[..], "message {got}");
            if got > 0 {
                let at = m.as_bytes().as_ptr() as usize;
                assert!(at >= start && at <= start + MAX_SERVER_HEADER, "message {got} is where its read wrote it");
            }
            got += 1;
            // Dropped here: its buffer goes back to the pool for the next frames.
        }
    }
    assert_eq!(got, N, "every frame delivered");
    assert!(zeroed_rooms.len() <= 2, "only new buffers are zeroed, not reused ones: {zeroed_rooms:?}");
}

#[test]
fn scratch_room_is_zeroed_once_and_reused() {
    let mut sink = BytesMut::with_capacity(64);
    let room = ReadRoom::scratch(&mut sink).initialised();
    assert_eq!(room.len(), 64);
    room.fill(MARK);
    let again = ReadRoom::scratch(&mut sink).initialised();
    assert!(again.iter().all(|&b| b == MARK), "not zeroed again");
    let (buf, limit) = ReadRoom::scratch(&mut sink).spare();
    assert_eq!((buf.len(), limit), (0, 64));
}
