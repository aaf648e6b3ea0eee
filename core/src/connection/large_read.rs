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

/// A large frame's payload being read into `Connection::input`.
pub(super) struct LargeRead {
    head: FrameHead,
    /// The payload's length.
    pub(super) len: usize,
    /// The input buffer, empty, put back when the payload is complete.
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
        let mut payload = self.pool.take(len + MAX_SERVER_HEADER);
        payload.extend_from_slice(&self.input[header_len..]);
        self.input.clear();
        let spare = std::mem::replace(&mut self.input, payload);
        // The payload bytes checked while the frame was at the front of the input stay checked.
        let text = self.text_progress.take().or_else(|| self.text_progress_for(&head));
        self.large = Some(LargeRead { head, len, spare, text });
    }

    /// Appends what the large frame still lacks from bytes that arrived
    /// through `handle_input`; returns the rest.
    pub(super) fn feed_large_read<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let Some(large) = self.large.as_ref() else { return data };
        let take = large.len.saturating_sub(self.input.len()).min(data.len());
        self.input.extend_from_slice(&data[..take]);
        &data[take..]
    }

    /// Delivers the large frame once its payload is complete, and puts the
    /// input buffer back.
    pub(super) fn finish_large_read(&mut self, now: Instant) {
        if self.large.as_ref().is_none_or(|large| self.input.len() < large.len) {
            return;
        }
        let Some(LargeRead { head, len, spare, .. }) = self.large.take() else { return };
        let mut payload = std::mem::replace(&mut self.input, spare);
        // Nothing came past the frame: the next header is still to come.
        self.header_first = payload.len() == len;
        // The read may have run past the frame (a reused buffer has room to
        // spare): those bytes are the next frames.
        if payload.len() > len {
            self.input.extend_from_slice(&payload[len..]);
            payload.truncate(len);
        }
        let frame =
            Frame { fin: head.fin, opcode: head.opcode, compressed: head.compressed, payload: self.pool.wrap(payload) };
        if let Err(e) = self.on_frame(frame, now) {
            self.violation(e, now);
        }
    }
}
