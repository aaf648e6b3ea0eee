//! Room for reads that need initialised memory (futures-io's `AsyncRead`,
//! `std::io::Read`: they take `&mut [u8]`), kept initialised from read to
//! read without `unsafe`.
//!
//! Safe code cannot read into a `BytesMut`'s spare capacity: its bytes
//! count as uninitialised, and only zeroing them (`resize`) makes them a
//! `&mut [u8]`. Zeroing the room before every read costs as much as the
//! read itself, and more when the room is larger than what arrives (256 KiB
//! zeroed for a ping after a flood). So the zeroed room is split off the
//! input buffer as `tail`, a `BytesMut` of its own in the same allocation,
//! right after the input's bytes: reads go to its front, and `handle_read`
//! moves what they brought onto the end of the input (`unsplit`, which joins
//! the two halves without a copy). The rest of the tail stays initialised
//! for the next read. It is zeroed again only when the buffer's room is
//! renewed (a new buffer, or one reclaimed once its messages are dropped);
//! a large frame's pooled payload buffer comes back from the pool with its
//! bytes still counted, so a flood of large frames zeroes nothing.
//!
//! Invariants: `tail` is empty or starts where the input's bytes end, in the
//! same allocation, and all of it is initialised (its length is its
//! capacity); a `read_room` (spare capacity, `read_buffer`) gives the tail's
//! room back to the input first; anything that moves or replaces the input
//! gives the tail back or takes it along.

use bytes::{Buf, BytesMut};

use super::Connection;

/// Room for a read, to take one of two ways: as spare capacity to append
/// to ([`spare`](Self::spare), for readers that fill uninitialised memory:
/// tokio's `AsyncRead`, `bytes::BufMut`) or as initialised bytes
/// ([`initialised`](Self::initialised), for readers that take `&mut [u8]`).
/// Either way, read at most what it offers. The room of a connection's next
/// read (`Session::next_read`): then call `handle_read(n)` with how many
/// bytes came. Or a scratch buffer's ([`scratch`](Self::scratch)), for
/// bytes read only to be dropped.
#[derive(Debug)]
pub struct ReadRoom<'a>(Room<'a>);

#[derive(Debug)]
enum Room<'a> {
    Connection(&'a mut Connection),
    Scratch(&'a mut BytesMut),
}

impl<'a> ReadRoom<'a> {
    /// The room of `conn`'s next read.
    pub(crate) fn new(conn: &'a mut Connection) -> Self {
        Self(Room::Connection(conn))
    }

    /// Room in `buf` for bytes read only to be dropped (a link drained
    /// after its connection ended): all of its capacity, whatever it holds.
    /// Taken as initialised bytes, it is zeroed once and then reused as it
    /// is; keep the same buffer from read to read.
    pub fn scratch(buf: &'a mut BytesMut) -> Self {
        Self(Room::Scratch(buf))
    }

    /// The buffer, to append to, and the most bytes the read should
    /// append: [`Connection::read_room`].
    pub fn spare(self) -> (&'a mut BytesMut, usize) {
        match self.0 {
            Room::Connection(conn) => conn.read_room(),
            Room::Scratch(buf) => {
                buf.clear();
                let room = buf.capacity();
                (buf, room)
            }
        }
    }

    /// The room as initialised bytes, already cut to what the read should
    /// take: [`Connection::read_slice`].
    pub fn initialised(self) -> &'a mut [u8] {
        match self.0 {
            Room::Connection(conn) => conn.read_slice(),
            Room::Scratch(buf) => {
                buf.resize(buf.capacity(), 0);
                buf
            }
        }
    }
}

impl Connection {
    /// The room for the next read as initialised bytes, for readers that
    /// take `&mut [u8]`: read into its front, then call
    /// [`handle_read`](Self::handle_read). The same room as
    /// [`read_room`](Self::read_room) offers, cut to its limit. It is zeroed
    /// once, when the buffer is new or its room renewed, never per read: the
    /// bytes past a read stay initialised for the next one.
    pub fn read_slice(&mut self) -> &mut [u8] {
        self.read_into_tail = true;
        self.offered = self.prepare_room();
        if self.tail.is_empty() {
            // Zeroed once; split off, so that the input still ends at its bytes.
            let filled = self.input.len();
            self.input.resize(self.input.capacity(), 0);
            self.tail = self.input.split_off(filled);
        }
        debug_assert!(self.input.as_ptr_range().end == self.tail.as_ptr(), "the tail follows the input");
        let offered = self.offered.min(self.tail.len());
        &mut self.tail[..offered]
    }

    /// Moves the input to a buffer with `size` bytes of initialised room,
    /// from the pieces its messages gave back when they make one that large
    /// (`read_pieces.rs`); the input and its room are kept there in turn.
    pub(super) fn renew_initialised(&mut self, size: usize) {
        let filled = self.input.len();
        let mut old = std::mem::take(&mut self.input);
        // The tail follows the input's bytes: joined without a copy.
        old.unsplit(std::mem::take(&mut self.tail));
        let mut next = self.pieces.renew(size, old, filled);
        self.input = next.split_to(filled);
        self.tail = next;
    }

    /// The room past the input's bytes: its spare capacity, and the
    /// initialised tail (one of the two is empty).
    pub(super) fn room(&self) -> usize {
        self.input.capacity() - self.input.len() + self.tail.len()
    }

    /// The last read went to the tail (`read_slice`): its first `n` bytes
    /// join the input's end, without a copy.
    pub(super) fn take_tail_read(&mut self, n: usize) {
        let read = self.tail.split_to(n.min(self.tail.len()));
        self.input.unsplit(read);
    }

    /// Gives the tail's room back to the input as spare capacity (its bytes
    /// no longer count as initialised): before the input is appended to as
    /// `read_room` offers it, reclaimed, or replaced.
    pub(super) fn give_back_tail(&mut self) {
        if self.tail.is_empty() {
            return;
        }
        let tail = std::mem::take(&mut self.tail);
        if self.input.as_ptr_range().end == tail.as_ptr() {
            let filled = self.input.len();
            // Contiguous, in one allocation: joined without a copy.
            self.input.unsplit(tail);
            self.input.truncate(filled);
        }
    }

    /// Appends `bytes` to the input: copied into the tail when it has the
    /// room (the input keeps ending where the tail starts), else as usual.
    pub(super) fn append_input(&mut self, bytes: &[u8]) {
        if bytes.len() <= self.tail.len() {
            self.tail[..bytes.len()].copy_from_slice(bytes);
            self.take_tail_read(bytes.len());
        } else {
            self.give_back_tail();
            self.input.extend_from_slice(bytes);
        }
    }

    /// Drops the input's bytes. With a tail, they are skipped rather than
    /// cleared, so that the input still ends where the tail starts.
    pub(super) fn clear_input(&mut self) {
        match self.tail.is_empty() {
            true => self.input.clear(),
            false => self.input.advance(self.input.len()),
        }
    }
}
