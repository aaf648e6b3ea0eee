//! Large frames read straight into a payload buffer of their own.
//!
//! Once the header of a frame that still lacks 16 KiB or more is in (see
//! `large_frame_start` in `frame.rs`), a pooled buffer sized for its payload takes the input
//! buffer's place, so `read_buffer` hands it to the reads: the payload's
//! bytes are written once, by the read, and become the message without a
//! copy. The pooled buffer returns when the message is dropped, so a flood of
//! large messages does not make the allocator map and unmap memory for each.
//! Bytes a read brings beyond the frame go back to the input buffer, in order.
//!
//! Invariant: while a large read is in progress, `input` holds only the
//! frame's payload, and no frame is parsed from it.

use std::time::Instant;

use bytes::BytesMut;

use super::{Connection, Phase, TextProgress, MAX_SERVER_HEADER};
use crate::frame::{large_frame_start, Frame, FrameHead, FrameRules};
use crate::pool::BufferPool;

/// A large frame's payload being read into `Connection::input`.
pub(super) struct LargeRead {
    head: FrameHead,
    /// The payload's length.
    pub(super) len: usize,
    /// The input buffer, put back when the payload is complete: empty, or,
    /// for reads into initialised memory, holding its initialised room as
    /// its bytes (the tail it had, `initialised.rs`).
    spare: BytesMut,
    /// How far its text has been validated, if it is text (`partial_text.rs`).
    pub(super) text: Option<TextProgress>,
}

impl Connection {
    /// Starts reading a large frame's payload into a buffer of its own when
    /// the input holds the header of one.
    pub(super) fn start_large_read(&mut self) {
        if self.large.is_some() || !matches!(self.phase, Phase::Open | Phase::CloseSent) {
            return;
        }
        let rules = FrameRules { max_frame_size: self.config.max_frame_size, deflate: self.deflate.is_some() };
        let Some((head, header_len, len)) = large_frame_start(&self.input, rules) else { return };
        // Room for the next frame's header too: `read_room` lets the read that
        // completes the payload bring it (see there).
        let (payload, payload_tail) =
            large_buffer(&mut self.pool, self.read_into_tail, len + MAX_SERVER_HEADER, &self.input[header_len..]);
        self.clear_input();
        let mut spare = std::mem::replace(&mut self.input, payload);
        let tail = std::mem::replace(&mut self.tail, payload_tail);
        if !tail.is_empty() {
            // The spare is empty where its tail starts: it becomes the tail, kept initialised.
            spare.unsplit(tail);
        }
        // The payload bytes checked while the frame was at the front of the input stay checked.
        let text = self.text_progress.take().or_else(|| self.text_progress_for(&head));
        self.large = Some(LargeRead { head, len, spare, text });
    }

    /// Appends what the large frame still lacks from bytes that arrived
    /// through `handle_input`; returns the rest.
    pub(super) fn feed_large_read<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let Some(large) = self.large.as_ref() else { return data };
        let take = large.len.saturating_sub(self.input.len()).min(data.len());
        self.append_input(&data[..take]);
        &data[take..]
    }

    /// Delivers the large frame once its payload is complete, and puts the
    /// input buffer back.
    pub(super) fn finish_large_read(&mut self, now: Instant) {
        if self.large.as_ref().is_none_or(|large| self.input.len() < large.len) {
            return;
        }
        let Some(LargeRead { head, len, spare, .. }) = self.large.take() else { return };
        let payload_tail = std::mem::take(&mut self.tail);
        let mut payload = std::mem::replace(&mut self.input, spare);
        if !self.input.is_empty() {
            // The spare carried its initialised room as bytes: the tail again.
            self.tail = self.input.split_off(0);
        }
        // Nothing came past the frame: the next header is still to come.
        self.header_first = payload.len() == len;
        // The read may have run past the frame (a reused buffer has room to
        // spare): those bytes are the next frames.
        if payload.len() > len {
            self.append_input(&payload[len..]);
        }
        // The whole buffer goes out (the message sees its first `len` bytes),
        // its initialised room joined again for its next use from the pool.
        if !payload_tail.is_empty() && payload.as_ptr_range().end == payload_tail.as_ptr() {
            payload.unsplit(payload_tail);
        }
        let payload = self.pool.wrap(payload, len);
        let frame = Frame { fin: head.fin, opcode: head.opcode, compressed: head.compressed, payload };
        if let Err(e) = self.on_frame(frame, now) {
            self.violation(e, now);
        }
    }
}

/// A pooled buffer for a large frame's payload, with room for `capacity`
/// bytes, starting with `start`, and its initialised room (`tail`). For
/// reads into initialised memory (`initialised`), the buffer's initialised
/// bytes (all of them, when it comes back from the pool) become the tail,
/// zeroed only where new; otherwise there is no tail.
fn large_buffer(pool: &mut BufferPool, initialised: bool, capacity: usize, start: &[u8]) -> (BytesMut, BytesMut) {
    if !initialised {
        let mut payload = pool.take(capacity);
        payload.extend_from_slice(start);
        return (payload, BytesMut::new());
    }
    let mut payload = pool.take_initialised(capacity.max(start.len()));
    payload.resize(payload.capacity(), 0);
    payload[..start.len()].copy_from_slice(start);
    let tail = payload.split_off(start.len());
    (payload, tail)
}
