//! The sending side: messages, pings and pongs framed, masked and, when
//! permessage-deflate is in force, compressed into the output buffer.
//!
//! Invariant: nothing is written unless the connection is open; a message
//! compressed in full is fragmented afterwards, with RSV1 on its first frame.

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
        let mut compressed = std::mem::take(&mut self.compressed);
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
        self.compressed = compressed;
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

    fn check_open(&self) -> Result<(), SendError> {
        match self.phase {
            Phase::Open => Ok(()),
            Phase::Handshaking(_) | Phase::ReadingRefusal { .. } => Err(SendError::NotOpen),
            Phase::CloseSent | Phase::AwaitingEof | Phase::Finished => Err(SendError::Closed),
        }
    }

    pub(super) fn write_close(&mut self, code: Option<CloseCode>, reason: &str) {
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
