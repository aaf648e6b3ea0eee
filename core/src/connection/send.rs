//! The sending side: messages, pings and pongs framed, masked and, when
//! permessage-deflate is in force, compressed into the output buffer.
//!
//! Invariants: nothing is written unless the connection is open; a message
//! compressed in full is fragmented afterwards, with RSV1 on its first frame;
//! automatic pongs never fill the output past its room: past it, only the
//! latest ping waits for an answer (RFC 6455 §5.5.3), so a peer that floods
//! pings and reads nothing cannot grow the output.

use bytes::Bytes;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::{Connection, Phase};
use crate::close::close_payload;
use crate::error::SendError;
use crate::frame::encode_frame;
use crate::CloseCode;

impl Connection {
    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_data(Data::Text, text.as_bytes())
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_data(Data::Binary, data)
    }

    /// Sends a ping; the server's pong arrives as [`ConnectionEvent::Pong`](crate::ConnectionEvent::Pong).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(Control::Ping, payload)
    }

    /// Sends a pong (needed only when `auto_pong` is off, or as a one-way heartbeat).
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(Control::Pong, payload)
    }

    fn send_data(&mut self, data: Data, payload: &[u8]) -> Result<(), SendError> {
        self.check_open()?;
        self.busy = true;
        let mut compressed = self.deflate.as_mut().map(|d| std::mem::take(&mut d.out)).unwrap_or_default();
        let rsv1 = self.deflate.as_mut().is_some_and(|d| d.compress(payload, &mut compressed));
        let payload = if rsv1 { &compressed[..] } else { payload };
        match self.config.fragment_size {
            Some(size) if payload.len() > size => {
                let mut chunks = payload.chunks(size).peekable();
                let (mut opcode, mut first) = (OpCode::Data(data), rsv1);
                while let Some(chunk) = chunks.next() {
                    self.write_frame_rsv1(opcode, chunks.peek().is_none(), first, chunk);
                    (opcode, first) = (OpCode::Data(Data::Continue), false);
                }
            }
            _ => self.write_frame_rsv1(OpCode::Data(data), true, rsv1, payload),
        }
        if let Some(deflate) = self.deflate.as_mut() {
            deflate.out = compressed;
        }
        Ok(())
    }

    fn send_control(&mut self, control: Control, payload: &[u8]) -> Result<(), SendError> {
        self.check_open()?;
        if payload.len() > 125 {
            return Err(SendError::ControlPayloadTooLong(payload.len()));
        }
        self.write_frame(OpCode::Control(control), true, payload);
        Ok(())
    }

    /// How many bytes the output may hold before automatic pongs wait: the
    /// caller's write budget less what it still has to write. Past it, a
    /// ping is answered only once the room grows again, and only the latest
    /// of those that arrived meanwhile (RFC 6455 §5.5.3 allows answering
    /// only the most recent ping). Unlimited by default; the session sets it
    /// from its `write_budget`.
    pub fn set_write_room(&mut self, room: usize) {
        self.write_room = room;
        if self.output.len() < room {
            if let Some(payload) = self.held_pong.take() {
                if matches!(self.phase, Phase::Open) {
                    self.write_frame(OpCode::Control(Control::Pong), true, &payload);
                }
            }
        }
    }

    /// Bytes framed and not yet taken by `poll_transmit`.
    pub fn pending_output(&self) -> usize {
        self.output.len()
    }

    /// Whether a pong waits for room in the output (see [`set_write_room`](Self::set_write_room)).
    pub fn pong_held(&self) -> bool {
        self.held_pong.is_some()
    }

    /// Answers a ping automatically: at once while the output has room,
    /// else the pong waits in place of any that waited before it.
    pub(super) fn answer_ping(&mut self, payload: &Bytes) {
        if self.output.len() < self.write_room {
            self.write_frame(OpCode::Control(Control::Pong), true, payload);
        } else {
            self.held_pong = Some(Box::new(payload.clone()));
        }
    }

    fn check_open(&self) -> Result<(), SendError> {
        match self.phase {
            Phase::Open => Ok(()),
            Phase::Handshaking(_) | Phase::ReadingRefusal { .. } => Err(SendError::NotOpen),
            Phase::CloseSent | Phase::AwaitingEof | Phase::Finished => Err(SendError::Closed),
        }
    }

    pub(super) fn write_close(&mut self, code: Option<CloseCode>, reason: &str) {
        // Nothing follows a close frame, a pong that waited neither.
        self.held_pong = None;
        self.sent_code = code.or(Some(CloseCode::Status));
        self.write_frame(OpCode::Control(Control::Close), true, &close_payload(code, reason));
    }

    pub(super) fn write_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) {
        self.write_frame_rsv1(opcode, fin, false, payload);
    }

    fn write_frame_rsv1(&mut self, opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) {
        let mask = self.rng.next_u32().to_ne_bytes();
        encode_frame(&mut self.output, opcode, fin, rsv1, payload, mask);
    }
}
