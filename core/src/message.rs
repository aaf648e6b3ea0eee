//! Data messages and their assembly from frames (RFC 6455 §5.4).
//!
//! A message in one frame (the common case) is the frame's payload itself:
//! no copy. A fragmented message is gathered into one buffer whose growth is
//! checked against the message limit before any byte is added, and its text is
//! validated fragment by fragment so bad UTF-8 fails at once. A compressed
//! message (permessage-deflate) is inflated fragment by fragment into that
//! buffer, under the same limit.

use bytes::{Bytes, BytesMut};
use tungstenite::protocol::frame::coding::Data;

use crate::deflate::Inflater;
use crate::error::ProtocolError;
use crate::text::Utf8Bytes;
use crate::utf8::Utf8Validator;

/// A complete data message.
///
/// The payload shares the buffer it was read into (no copy), so a message kept
/// for long keeps that whole read buffer (up to 256 KiB) alive; copy out
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

    /// The text of a text message; `None` for a binary one.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t.as_str()),
            Self::Binary(_) => None,
        }
    }

    /// The payload of a binary message; `None` for a text one.
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Self::Text(_) => None,
            Self::Binary(b) => Some(b),
        }
    }
}

/// Text as it is; a binary message as its length and up to its first 32
/// bytes in hex, so that a log line stays one short line.
impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(t) => f.write_str(t.as_str()),
            Self::Binary(b) => {
                write!(f, "<{} bytes:", b.len())?;
                for byte in b.iter().take(32) {
                    write!(f, " {byte:02x}")?;
                }
                f.write_str(if b.len() > 32 { " ...>" } else { ">" })
            }
        }
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::Text(text.into())
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Self::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Self::Binary(data.into())
    }
}

struct Partial {
    text: bool,
    /// permessage-deflate: fragments are inflated as they arrive, into the
    /// inflater's buffer (`buf` stays empty).
    compressed: bool,
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

    /// The validator of an unfinished uncompressed text message, as its
    /// fragments so far left it: a continuation still arriving goes on from there.
    pub(crate) fn text_in_progress(&self) -> Option<&Utf8Validator> {
        self.partial.as_ref().filter(|p| p.text && !p.compressed).map(|p| &p.utf8)
    }

    /// Takes one data frame; returns the message it completes, if any.
    /// `compressed` is the frame's RSV1; `inflater` is there when
    /// permessage-deflate is in force (the frame decoder refuses RSV1 otherwise).
    pub(crate) fn on_frame(
        &mut self,
        opcode: Data,
        fin: bool,
        compressed: bool,
        payload: Bytes,
        inflater: Option<&mut Inflater>,
    ) -> Result<Option<Message>, ProtocolError> {
        let text = match (opcode, self.partial.is_some()) {
            (Data::Continue, true) => return self.on_continuation(fin, &payload, inflater),
            (Data::Continue, false) => return Err(ProtocolError::UnexpectedContinuation),
            (_, true) => return Err(ProtocolError::ExpectedContinuation),
            (Data::Text, false) => true,
            (Data::Binary, false) => false,
            // The frame decoder refuses reserved opcodes before they get here.
            (Data::Reserved(op), false) => return Err(ProtocolError::ReservedOpcode(op)),
        };
        if fin && !compressed {
            self.check_size(payload.len() as u64)?;
            return Ok(Some(if text {
                Message::Text(Utf8Bytes::try_from(payload).map_err(|_| ProtocolError::InvalidUtf8)?)
            } else {
                Message::Binary(payload)
            }));
        }
        self.partial = Some(Partial { text, compressed, buf: BytesMut::new(), utf8: Utf8Validator::default() });
        self.on_continuation(fin, &payload, inflater)
    }

    fn on_continuation(
        &mut self,
        fin: bool,
        payload: &[u8],
        inflater: Option<&mut Inflater>,
    ) -> Result<Option<Message>, ProtocolError> {
        let limit = self.max_message_size;
        let Some(partial) = self.partial.as_mut() else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        // A compressed message grows in the inflater's buffer, a plain one in `buf`.
        let (inflater, start) = match (partial.compressed, inflater) {
            (false, _) => (None, partial.buf.len()),
            (true, Some(inflater)) => {
                let start = inflater.inflated().len();
                inflater.inflate(payload, fin, limit)?;
                (Some(inflater), start)
            }
            (true, None) => return Err(ProtocolError::ReservedBits),
        };
        if inflater.is_none() {
            let size = start as u64 + payload.len() as u64;
            if size > limit as u64 {
                return Err(ProtocolError::MessageTooLarge { size, limit });
            }
            partial.buf.extend_from_slice(payload);
        }
        if !fin {
            // Bad UTF-8 fails at the fragment that brings it; the last
            // fragment is left to the check of the whole message below.
            if partial.text {
                let so_far = inflater.map_or(&partial.buf[..], |i| i.inflated());
                partial.utf8.feed(&so_far[start..]).map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            return Ok(None);
        }
        let Some(done) = self.partial.take() else {
            return Ok(None);
        };
        let bytes = match inflater {
            Some(inflater) => inflater.take().freeze(),
            None => done.buf.freeze(),
        };
        if !done.text {
            return Ok(Some(Message::Binary(bytes)));
        }
        // Fragments before the last were validated as they came; this check
        // of the whole (the price of building tungstenite's `Utf8Bytes`
        // without `unsafe`) also covers the last.
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
        match a.on_frame(Data::Binary, true, false, payload, None).unwrap() {
            Some(Message::Binary(m)) => assert_eq!(m.as_ptr(), ptr),
            other => panic!("{other:?}"),
        }
        let msg = a.on_frame(Data::Text, true, false, b("h\u{e9}".as_bytes()), None).unwrap().unwrap();
        assert_eq!(msg, Message::Text("h\u{e9}".into()));
    }

    #[test]
    fn fragments_join_and_text_is_checked_across_them() {
        let mut a = Assembler::new(100);
        assert_eq!(a.on_frame(Data::Text, false, false, b(b"caf\xc3"), None).unwrap(), None);
        assert!(a.in_progress());
        assert_eq!(a.on_frame(Data::Continue, false, false, b(b"\xa9 "), None).unwrap(), None);
        assert_eq!(
            a.on_frame(Data::Continue, true, false, b(b"ok"), None).unwrap(),
            Some(Message::Text("caf\u{e9} ok".into()))
        );
        assert!(!a.in_progress());
        assert_eq!(a.on_frame(Data::Binary, false, false, b(b"\xff"), None).unwrap(), None);
        assert_eq!(a.on_frame(Data::Continue, true, false, b(b""), None).unwrap(), Some(Message::Binary(b(b"\xff"))));
    }

    #[test]
    fn each_fragmentation_fault_is_typed() {
        let mut a = Assembler::new(10);
        assert_eq!(a.on_frame(Data::Continue, true, false, b(b"x"), None), Err(ProtocolError::UnexpectedContinuation));
        a.on_frame(Data::Binary, false, false, b(b"x"), None).unwrap();
        assert_eq!(a.on_frame(Data::Text, true, false, b(b"x"), None), Err(ProtocolError::ExpectedContinuation));
        let mut a = Assembler::new(10);
        a.on_frame(Data::Binary, false, false, b(b"123456"), None).unwrap();
        assert_eq!(
            a.on_frame(Data::Continue, true, false, b(b"12345"), None),
            Err(ProtocolError::MessageTooLarge { size: 11, limit: 10 })
        );
        let mut a = Assembler::new(10);
        assert_eq!(a.on_frame(Data::Text, false, false, b(b"\xff"), None), Err(ProtocolError::InvalidUtf8));
        let mut a = Assembler::new(10);
        a.on_frame(Data::Text, false, false, b(b"\xe2\x82"), None).unwrap();
        assert_eq!(a.on_frame(Data::Continue, true, false, b(b""), None), Err(ProtocolError::InvalidUtf8));
        assert_eq!(
            Assembler::new(3).on_frame(Data::Binary, true, false, b(b"1234"), None),
            Err(ProtocolError::MessageTooLarge { size: 4, limit: 3 })
        );
    }
}
