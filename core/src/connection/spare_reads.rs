//! Read buffers kept for reuse once the messages split from them are dropped.
//!
//! Payloads leave the read buffer as `Bytes` that share it, so while a
//! batch of messages waits for the consumer, the next read needs another
//! buffer. Allocating a fresh one each time, and freeing the old one when the
//! consumer is done, made glibc grow and trim its heap on almost every read
//! (one `brk` and a dozen page faults per read on a flood). The buffers that
//! were replaced wait here instead, and the next read takes the first one
//! that nothing shares any more: on a flood two or three buffers take turns.
//!
//! Invariants: at most `KEEP` buffers are kept, each no larger than the read
//! room asked for when it was in use (256 KiB and a frame's rest at most); all
//! are let go once reads turn small (see `Connection::handle_read`): a few
//! heartbeat reads after a flood ends; then at most one small buffer stays.
//! A link that falls silent right after a flood, with heartbeats off, keeps
//! them until its next reads.

use bytes::BytesMut;

/// Most buffers kept: the consumer may hold the messages of a few reads.
const KEEP: usize = 3;

/// Read buffers that were replaced while messages still shared them.
#[derive(Debug, Default)]
pub(super) struct SpareReads {
    kept: Vec<BytesMut>,
}

impl SpareReads {
    /// An empty buffer with room for `capacity` bytes: a kept one that is no
    /// longer shared when there is one, else a new one of exactly that size
    /// (`reserve` would double, to sizes the allocator maps and unmaps).
    pub(super) fn take(&mut self, capacity: usize) -> BytesMut {
        // `try_reclaim` succeeds only when no `Bytes` shares the buffer and
        // its allocation holds `capacity`; it has no effect otherwise.
        match self.kept.iter_mut().position(|buf| buf.try_reclaim(capacity)) {
            Some(i) => self.kept.swap_remove(i),
            None => BytesMut::with_capacity(capacity),
        }
    }

    /// Keeps `buf`, which messages may still share, for a later `take`; the
    /// oldest kept buffer goes when there are `KEEP` already.
    pub(super) fn keep(&mut self, mut buf: BytesMut) {
        buf.clear();
        if buf.capacity() == 0 {
            return;
        }
        if self.kept.len() == KEEP {
            self.kept.remove(0);
        }
        self.kept.push(buf);
    }

    /// Lets the kept buffers go (each is freed once its messages are), all
    /// but one of at most `small` bytes that nothing shares any more: a link
    /// that reads one message at a time (a request and its answer) swaps two
    /// small buffers instead of allocating one per read.
    pub(super) fn release(&mut self, small: usize) {
        // A kept buffer's capacity counts only the room after the messages
        // split from it. Asking for more room than that succeeds only when
        // nothing shares it, and then makes it count its whole allocation. A
        // buffer still shared is let go: its size is unknown.
        self.kept.retain_mut(|buf| {
            let room = buf.capacity();
            buf.try_reclaim(room + 1) && buf.capacity() <= small
        });
        self.kept.truncate(1);
        if self.kept.is_empty() {
            self.kept = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The address of a buffer's allocation, to tell reuse from a new one.
    fn at(buf: &BytesMut) -> *const u8 {
        buf.as_ptr()
    }

    #[test]
    fn a_kept_buffer_is_reused_once_its_messages_are_dropped() {
        let mut spares = SpareReads::default();
        let mut first = spares.take(4096);
        first.extend_from_slice(&[7; 1000]);
        let start = at(&first);
        let message = first.split_to(600).freeze();
        spares.keep(first);

        let second = spares.take(4096);
        assert_ne!(at(&second), start, "the message still shares the first buffer");
        drop(message);
        let third = spares.take(4096);
        assert_eq!(at(&third), start, "nothing shares it any more");
        assert!(third.is_empty() && third.capacity() >= 4096);
        drop(second);
    }

    #[test]
    fn a_buffer_too_small_for_the_room_asked_is_not_taken() {
        let mut spares = SpareReads::default();
        spares.keep(BytesMut::with_capacity(512));
        let big = spares.take(4096);
        assert!(big.capacity() >= 4096);
        assert_eq!(spares.kept.len(), 1);
    }

    #[test]
    fn at_most_keep_buffers_are_kept_and_release_lets_all_go() {
        let mut spares = SpareReads::default();
        let mut held = Vec::new();
        for _ in 0..KEEP + 2 {
            let mut buf = spares.take(1024);
            buf.extend_from_slice(&[1; 10]);
            held.push(buf.split_to(5).freeze());
            spares.keep(buf);
            assert!(spares.kept.len() <= KEEP);
        }
        assert_eq!(spares.kept.len(), KEEP);
        spares.release(512);
        assert_eq!((spares.kept.len(), spares.kept.capacity()), (0, 0), "none is small enough to stay");
        // Empty buffers hold no allocation and are not kept.
        spares.keep(BytesMut::new());
        assert!(spares.kept.is_empty());
    }

    #[test]
    fn release_judges_a_buffer_by_its_allocation_not_the_room_left_after_splits() {
        let mut spares = SpareReads::default();
        let mut big = BytesMut::with_capacity(8192);
        big.extend_from_slice(&[3; 8100]);
        let message = big.split_to(8100).freeze();
        assert!(big.capacity() <= 1024, "only the room after the split shows");
        spares.keep(big);
        spares.release(1024);
        assert!(spares.kept.is_empty(), "a large buffer still shared is let go");

        let mut big = BytesMut::with_capacity(8192);
        big.extend_from_slice(&[3; 8100]);
        drop(big.split_to(8100).freeze());
        spares.keep(big);
        spares.release(1024);
        assert!(spares.kept.is_empty(), "and so is one nothing shares");
        drop(message);
    }

    #[test]
    fn release_keeps_one_small_buffer_for_reads_of_one_message_at_a_time() {
        let mut spares = SpareReads::default();
        // Replaced buffers, as a connection keeps them: a message split off each, then dropped.
        for size in [600, 8192, 700] {
            let mut buf = BytesMut::with_capacity(size);
            buf.extend_from_slice(&[1; 40]);
            drop(buf.split_to(40).freeze());
            spares.keep(buf);
        }
        spares.release(1024);
        assert_eq!(spares.kept.len(), 1);
        assert!(spares.kept[0].capacity() <= 1024);
        let start = at(&spares.kept[0]);
        assert_eq!(at(&spares.take(512)), start, "the small one is reused");
    }
}
