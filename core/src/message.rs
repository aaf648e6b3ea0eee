//! Data messages and their assembly from frames (RFC 6455 §5.4).
//!
//! A message in one frame (the common case) is the frame's payload itself:
//! no copy. A fragmented message is gathered into one buffer whose growth is
//! checked against the message limit before any byte is added, and its text is
//! validated fragment by fragment so bad UTF-8 fails at once.

use bytes::{Bytes, BytesMut};
use tungstenite::protocol::frame::coding::Data;
use tungstenite::Utf8Bytes;

use crate::error::ProtocolError;
use crate::utf8::Utf8Validator;

/// A complete data message.
///
/// The payload shares the buffer it was read into (no copy), so a message kept
/// for long keeps that whole read buffer alive; copy out
/// (`Bytes::copy_from_slice`) what you keep for long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, validated as UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// The payload bytes, whatever the kind.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(t) => t.as_bytes(),
            Self::Binary(b) => b,
        }
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Partial {
    text: bool,
    buf: BytesMut,
    utf8: Utf8Validator,
}

/// Turns data frames into messages, enforcing the fragmentation rules.
pub(crate) struct Assembler {
    partial: Option<Partial>,
    max_message_size: usize,
}

impl Assembler {
    pub(crate) fn new(max_message_size: usize) -> Self {
        Self { partial: None, max_message_size }
    }

    /// Whether a fragmented message is unfinished.
    pub(crate) fn in_progress(&self) -> bool {
        self.partial.is_some()
    }

    /// Takes one data frame; returns the message it completes, if any.
    pub(crate) fn on_frame(
        &mut self,
        opcode: Data,
        fin: bool,
        payload: Bytes,
    ) -> Result<Option<Message>, ProtocolError> {
        let text = match (opcode, self.partial.is_some()) {
            (Data::Continue, true) => return self.on_continuation(fin, payload),
            (Data::Continue, false) => return Err(ProtocolError::UnexpectedContinuation),
            (_, true) => return Err(ProtocolError::ExpectedContinuation),
            (Data::Text, false) => true,
            (Data::Binary, false) => false,
            // The frame decoder refuses reserved opcodes before they get here.
            (Data::Reserved(op), false) => return Err(ProtocolError::ReservedOpcode(op)),
        };
        self.check_size(payload.len() as u64)?;
        if fin {
            return Ok(Some(if text {
                Message::Text(Utf8Bytes::try_from(payload).map_err(|_| ProtocolError::InvalidUtf8)?)
            } else {
                Message::Binary(payload)
            }));
        }
        let mut utf8 = Utf8Validator::default();
        if text {
            utf8.feed(&payload).map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        self.partial = Some(Partial { text, buf: BytesMut::from(&payload[..]), utf8 });
        Ok(None)
    }

    fn on_continuation(&mut self, fin: bool, payload: Bytes) -> Result<Option<Message>, ProtocolError> {
        let Some(partial) = self.partial.as_mut() else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        let size = partial.buf.len() as u64 + payload.len() as u64;
        if size > self.max_message_size as u64 {
            return Err(ProtocolError::MessageTooLarge { size, limit: self.max_message_size });
        }
        if partial.text {
            partial.utf8.feed(&payload).map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        partial.buf.extend_from_slice(&payload);
        if !fin {
            return Ok(None);
        }
        let Some(done) = self.partial.take() else {
            return Ok(None);
        };
        let bytes = done.buf.freeze();
        if !done.text {
            return Ok(Some(Message::Binary(bytes)));
        }
        done.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        // Every fragment was validated; this second check of the whole is the
        // price of building tungstenite's `Utf8Bytes` without `unsafe`.
        Utf8Bytes::try_from(bytes).map(|t| Some(Message::Text(t))).map_err(|_| ProtocolError::InvalidUtf8)
    }

    fn check_size(&self, size: u64) -> Result<(), ProtocolError> {
        if size > self.max_message_size as u64 {
            return Err(ProtocolError::MessageTooLarge { size, limit: self.max_message_size });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    #[test]
    fn single_frame_messages_share_the_payload() {
        let mut a = Assembler::new(100);
        let payload = b(b"hello");
        let ptr = payload.as_ptr();
        match a.on_frame(Data::Binary, true, payload).unwrap() {
            Some(Message::Binary(m)) => assert_eq!(m.as_ptr(), ptr),
            other => panic!("{other:?}"),
        }
        let msg = a.on_frame(Data::Text, true, b("h\u{e9}".as_bytes())).unwrap().unwrap();
        assert_eq!(msg, Message::Text("h\u{e9}".into()));
    }

    #[test]
    fn fragments_join_and_text_is_checked_across_them() {
        let mut a = Assembler::new(100);
        assert_eq!(a.on_frame(Data::Text, false, b(b"caf\xc3")).unwrap(), None);
        assert!(a.in_progress());
        assert_eq!(a.on_frame(Data::Continue, false, b(b"\xa9 ")).unwrap(), None);
        assert_eq!(a.on_frame(Data::Continue, true, b(b"ok")).unwrap(), Some(Message::Text("caf\u{e9} ok".into())));
        assert!(!a.in_progress());
        assert_eq!(a.on_frame(Data::Binary, false, b(b"\xff")).unwrap(), None);
        assert_eq!(a.on_frame(Data::Continue, true, b(b"")).unwrap(), Some(Message::Binary(b(b"\xff"))));
    }

    #[test]
    fn each_fragmentation_fault_is_typed() {
        let mut a = Assembler::new(10);
        assert_eq!(a.on_frame(Data::Continue, true, b(b"x")), Err(ProtocolError::UnexpectedContinuation));
        a.on_frame(Data::Binary, false, b(b"x")).unwrap();
        assert_eq!(a.on_frame(Data::Text, true, b(b"x")), Err(ProtocolError::ExpectedContinuation));
        let mut a = Assembler::new(10);
        a.on_frame(Data::Binary, false, b(b"123456")).unwrap();
        assert_eq!(
            a.on_frame(Data::Continue, true, b(b"12345")),
            Err(ProtocolError::MessageTooLarge { size: 11, limit: 10 })
        );
        let mut a = Assembler::new(10);
        assert_eq!(a.on_frame(Data::Text, false, b(b"\xff")), Err(ProtocolError::InvalidUtf8));
        let mut a = Assembler::new(10);
        a.on_frame(Data::Text, false, b(b"\xe2\x82")).unwrap();
        assert_eq!(a.on_frame(Data::Continue, true, b(b"")), Err(ProtocolError::InvalidUtf8));
        assert_eq!(
            Assembler::new(3).on_frame(Data::Binary, true, b(b"1234")),
            Err(ProtocolError::MessageTooLarge { size: 4, limit: 3 })
        );
    }
}
