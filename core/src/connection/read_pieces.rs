//! Initialised read buffers, given back piece by piece by the messages that
//! shared them, and put together again for the next reads.
//!
//! A reader that takes `&mut [u8]` (`read_slice`) needs initialised room,
//! and safe code can only make it by zeroing. Messages leave the read buffer
//! as `Bytes` that share it, so on a flood the buffer is replaced every few
//! dozen messages, and a replaced buffer that comes back through
//! `try_reclaim` (as `SpareReads` reuses them) counts its bytes as spare
//! again: every byte read was zeroed once first, as much work again as
//! reading it. Here the whole frames of a read go out as one piece whose
//! `Bytes` hands the piece back, bytes still counted, when the last message
//! of it is dropped; contiguous pieces of one buffer are joined again
//! without a copy (`unsplit`), and the next read buffer is taken from them.
//! So a flood zeroes its two or three buffers once, not every byte it reads.
//!
//! Invariants: every piece's length is its capacity, all of it initialised;
//! pieces carry the number of the buffer they were split from, and only
//! neighbours of one buffer are joined (`unsplit` of two buffers copies);
//! at most `KEEP_BYTES` are kept, and all are let go when reads turn small.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

/// Most bytes of pieces kept, per connection: a few read buffers' worth.
const KEEP_BYTES: usize = 1 << 20;

/// Pieces of read buffers no message shares any more.
type FreeList = Arc<Mutex<Vec<Piece>>>;

/// Part of a read buffer, all of it initialised.
#[derive(Debug)]
struct Piece {
    /// Which buffer it was split from.
    buffer: u64,
    bytes: BytesMut,
}

/// A connection's pieces, and the number of the buffer its input is in.
#[derive(Debug, Default)]
pub(super) struct ReadPieces {
    /// Made on first use: only connections read through `read_slice` lend.
    free: Option<FreeList>,
    /// The buffer the input is in.
    current: u64,
    /// The number the next new buffer gets.
    next: u64,
}

/// A piece lent out as `Bytes`: back to the free list when dropped.
struct Lent {
    piece: Piece,
    free: FreeList,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.piece.bytes
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let piece = Piece { buffer: self.piece.buffer, bytes: std::mem::take(&mut self.piece.bytes) };
        // A poisoned lock only means another holder panicked; the list is still a list.
        keep(&mut self.free.lock().unwrap_or_else(|e| e.into_inner()), piece);
    }
}

/// Keeps `piece` unless that would pass the bound.
fn keep(free: &mut Vec<Piece>, piece: Piece) {
    let kept: usize = free.iter().map(|p| p.bytes.len()).sum();
    if kept + piece.bytes.len() <= KEEP_BYTES {
        free.push(piece);
    }
}

impl ReadPieces {
    /// Lends `bytes`, whole frames split off the input (all initialised),
    /// as one `Bytes` to split the frames from; they come back when the
    /// last of those is dropped.
    pub(super) fn lend(&mut self, bytes: BytesMut) -> Bytes {
        let free = Arc::clone(self.free.get_or_insert_default());
        Bytes::from_owner(Lent { piece: Piece { buffer: self.current, bytes }, free })
    }

    /// A read buffer of `len` initialised bytes (at least half as much room
    /// past `filled` when reused) for the input to move to, starting with the first `filled` bytes of `old` (the input
    /// and its room), which is kept for later. Joined from pieces when they
    /// make one that large, else new (zeroed by `calloc`, which fresh pages
    /// cost no work).
    pub(super) fn renew(&mut self, len: usize, mut old: BytesMut, filled: usize) -> BytesMut {
        let (len, was) = (len.max(filled), self.current);
        // Only what is initialised is kept: the bytes, not spare capacity.
        drop(old.split_off(old.len()));
        let free = Arc::clone(self.free.get_or_insert_default());
        let mut free = free.lock().unwrap_or_else(|e| e.into_inner());
        // Pieces of buffers replaced long ago, some of whose messages are
        // still held, would only fill the list.
        let recent = was.saturating_sub(2);
        free.retain(|p| p.buffer >= recent);
        join_neighbours(&mut free);
        // Half the room asked for is enough, as `prepare_room` keeps
        // initialised room while it holds half: the buffers come back at
        // the size they were made, and the bytes to carry over vary.
        let enough = filled + (len - filled) / 2;
        let mut next = match free.iter().position(|p| p.bytes.len() >= enough) {
            Some(i) => {
                let piece = free.swap_remove(i);
                self.current = piece.buffer;
                piece.bytes
            }
            None => {
                self.next += 1;
                self.current = self.next;
                BytesMut::zeroed(len)
            }
        };
        next[..filled].copy_from_slice(&old[..filled]);
        if !old.is_empty() {
            keep(&mut free, Piece { buffer: was, bytes: old });
        }
        next
    }

    /// Lets every kept piece go: reads have turned small.
    pub(super) fn release(&mut self) {
        if let Some(free) = self.free.as_ref() {
            *free.lock().unwrap_or_else(|e| e.into_inner()) = Vec::new();
        }
    }
}

/// Joins the pieces of each buffer that lie next to each other.
fn join_neighbours(free: &mut Vec<Piece>) {
    if free.len() < 2 {
        return;
    }
    free.sort_unstable_by_key(|p| (p.buffer, p.bytes.as_ptr() as usize));
    let mut joined: Vec<Piece> = Vec::with_capacity(free.len());
    for piece in free.drain(..) {
        match joined.last_mut() {
            Some(last) if last.buffer == piece.buffer && last.bytes.as_ptr_range().end == piece.bytes.as_ptr() => {
                // One buffer, contiguous: joined without a copy.
                last.bytes.unsplit(piece.bytes);
            }
            _ => joined.push(piece),
        }
    }
    *free = joined;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_lent_in_pieces_comes_back_whole_without_a_copy() {
        let mut pieces = ReadPieces::default();
        let mut input = pieces.renew(64, BytesMut::new(), 0);
        assert_eq!(input.len(), 64, "new: zeroed, all of it initialised");
        let start = input.as_ptr();
        input[..10].copy_from_slice(b"0123456789");
        let a = pieces.lend(input.split_to(4));
        let b = pieces.lend(input.split_to(6));
        let (a1, a2) = (a.slice(..2), a.slice(2..));
        assert_eq!((&a1[..], &a2[..], &b[..]), (&b"01"[..], &b"23"[..], &b"456789"[..]));
        drop((a, b, a1));
        // A piece still lent (`a2`): its neighbours cannot make the whole buffer.
        let other = pieces.renew(64, input, 0);
        assert_ne!(other.as_ptr(), start, "a new buffer");
        drop(a2);
        // Back whole: the input's rest was kept when it moved.
        let again = pieces.renew(64, other, 0);
        assert_eq!((again.as_ptr(), again.len()), (start, 64));
        assert_eq!(&again[..10], b"0123456789", "reused as it was, not zeroed");
    }

    #[test]
    fn pieces_are_bounded_and_let_go() {
        let mut pieces = ReadPieces::default();
        let mut input = pieces.renew(KEEP_BYTES, BytesMut::new(), 0);
        drop(pieces.lend(input.split_to(KEEP_BYTES / 2)));
        let big = pieces.renew(KEEP_BYTES, BytesMut::zeroed(KEEP_BYTES), 0);
        let kept =
            |p: &ReadPieces| p.free.as_ref().unwrap().lock().unwrap().iter().map(|p| p.bytes.len()).sum::<usize>();
        assert!(kept(&pieces) <= KEEP_BYTES);
        drop((input, big));
        pieces.release();
        assert_eq!(kept(&pieces), 0);
    }
}
