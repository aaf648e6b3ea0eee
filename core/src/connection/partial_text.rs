//! Text validated as it arrives: the payload of a text frame not yet whole
//! is checked piece by piece, so invalid UTF-8 fails the connection (1007)
//! at the read that brings the first byte no continuation can make valid,
//! not when the whole frame is in (RFC 6455 §8.1 allows either; a server
//! trickling a bad frame would otherwise hold the connection until its end).
//!
//! Invariants:
//! - Only a frame that a read leaves unfinished is checked here, and only
//!   its bytes that arrived since the last check; a frame whole within one
//!   read (every frame of a flood of small messages, and a large frame whose
//!   payload one read brings) is never looked at here, so the flood path
//!   costs one header parse per read. When the frame is whole, the usual
//!   check of the whole payload (which builds the `Utf8Bytes` without
//!   `unsafe`) covers it again: the bytes of earlier reads are validated twice.
//! - The state belongs to the frame at the front of the input, or to the
//!   large frame being read into its own buffer (`LargeRead::text`): it is
//!   dropped when that frame is decoded whole.
//! - A text frame starts from a fresh validator; a continuation of an
//!   uncompressed text message from the assembler's, which holds a code
//!   point split across the fragments before. A text frame where a
//!   continuation belongs, and compressed (permessage-deflate) frames, are
//!   not checked here: the first is a 1002 when whole, and the second's
//!   bytes are deflate data, not UTF-8, until the frame is whole and
//!   inflated (the assembler checks what each fragment inflates to).
//! - No payload byte is copied: the validator reads them where they lie.

use std::time::Instant;

use tungstenite::protocol::frame::coding::{Data, OpCode};

use super::Connection;
use crate::error::ProtocolError;
use crate::frame::{partial_frame_head, FrameHead};
use crate::utf8::Utf8Validator;

/// How far a text frame's payload has been checked.
#[derive(Debug, Clone)]
pub(super) struct TextProgress {
    /// Payload bytes checked so far.
    checked: usize,
    utf8: Utf8Validator,
}

impl Connection {
    /// Where checking a frame with `head` starts, if it is text to check.
    pub(super) fn text_progress_for(&self, head: &FrameHead) -> Option<TextProgress> {
        let utf8 = match head.opcode {
            OpCode::Data(Data::Text) if !head.compressed && !self.assembler.in_progress() => Utf8Validator::default(),
            OpCode::Data(Data::Continue) => self.assembler.text_in_progress()?.clone(),
            _ => return None,
        };
        Some(TextProgress { checked: 0, utf8 })
    }

    /// The frame at the front of the input is not whole (`decode_frame`
    /// said so): checks the payload bytes that arrived since `progress`,
    /// which is this frame's (the caller dropped it if a frame was decoded
    /// whole before this one), and keeps the progress for the next read.
    pub(super) fn check_partial_text(&mut self, progress: Option<TextProgress>, now: Instant) {
        let Some((head, header_len)) = partial_frame_head(&self.input) else { return };
        let Some(mut progress) = progress.or_else(|| self.text_progress_for(&head)) else { return };
        let arrived = &self.input[header_len..];
        if progress.utf8.feed(&arrived[progress.checked..]).is_err() {
            return self.violation(ProtocolError::InvalidUtf8, now);
        }
        progress.checked = arrived.len();
        self.text_progress = Some(progress);
    }

    /// A large frame is still being read into its own buffer: checks its
    /// payload bytes that arrived since the last check, if it is text.
    pub(super) fn check_large_text(&mut self, now: Instant) {
        let Some(large) = self.large.as_mut() else { return };
        let Some(progress) = large.text.as_mut() else { return };
        // `input` holds the payload; a read may have brought the next header too.
        let arrived = &self.input[..self.input.len().min(large.len)];
        if progress.utf8.feed(&arrived[progress.checked..]).is_err() {
            return self.violation(ProtocolError::InvalidUtf8, now);
        }
        progress.checked = arrived.len();
    }
}
