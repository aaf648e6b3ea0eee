//! The fake server's side of the wire: it reads what the client wrote (the
//! upgrade request, then masked frames) and writes server frames.
//!
//! Role: byte-level decoding and encoding only; `server.rs` decides what to
//! do with it. Invariant: `ClientWire` holds the bytes of one transport and
//! is replaced when the transport closes, so nothing from one connection is
//! read as part of the next.

use std::io::Cursor;

use bytes::Bytes;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::{Sent, UpgradeRequest};
use crate::frame::apply_mask;
use crate::{CloseCode, Message};

/// What the client wrote on one transport, decoded as it arrives.
#[derive(Debug, Default)]
pub(super) struct ClientWire {
    /// Bytes not yet decoded (an incomplete request head or frame).
    rx: Vec<u8>,
    /// The upgrade request, once its head is complete.
    pub(super) upgrade: Option<UpgradeRequest>,
    /// A fragmented message under way: whether it is text, and its bytes.
    partial: Option<(bool, Vec<u8>)>,
}

impl ClientWire {
    /// Takes bytes the client wrote and appends what they complete to `out`.
    ///
    /// # Panics
    ///
    /// If the client wrote something no RFC 6455 client may write (an
    /// unmasked frame, a bad opcode, text that is not UTF-8), or a
    /// compressed frame (the fake server does not speak permessage-deflate):
    /// that is a failure of the code under test, not of the test.
    #[track_caller]
    pub(super) fn read(&mut self, bytes: &[u8], out: &mut Vec<Sent>) {
        self.rx.extend_from_slice(bytes);
        if self.upgrade.is_none() {
            let Some(end) = self.rx.windows(4).position(|w| w == b"\r\n\r\n") else { return };
            let head: Vec<u8> = self.rx.drain(..end + 4).collect();
            let request = UpgradeRequest::parse(&head);
            self.upgrade = Some(request.clone());
            out.push(Sent::Upgrade(request));
        }
        // One frame per turn; each turn removes the frame's bytes, so this ends.
        loop {
            let mut cursor = Cursor::new(&self.rx[..]);
            let (header, len) = match FrameHeader::parse(&mut cursor) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return,
                Err(e) => panic!("the client wrote bytes that are not a WebSocket frame: {e}"),
            };
            let start = cursor.position() as usize;
            let Some(end) = usize::try_from(len).ok().and_then(|len| start.checked_add(len)) else {
                panic!("the client announced a frame of {len} bytes, more than this machine can hold")
            };
            if self.rx.len() < end {
                return;
            }
            let Some(mask) = header.mask else { panic!("the client sent an unmasked frame (RFC 6455 §5.3)") };
            assert!(
                !header.rsv1 && !header.rsv2 && !header.rsv3,
                "the client sent a frame with reserved bits set (a compressed one?): the fake server does not \
                 negotiate permessage-deflate, so do not grant it in `accept_upgrade_with`"
            );
            let mut payload = self.rx[start..end].to_vec();
            apply_mask(&mut payload, mask);
            self.rx.drain(..end);
            if let Some(sent) = self.frame(header.opcode, header.is_final, payload) {
                out.push(sent);
            }
        }
    }

    /// One unmasked frame; returns what it completes.
    #[track_caller]
    fn frame(&mut self, opcode: OpCode, fin: bool, payload: Vec<u8>) -> Option<Sent> {
        let (text, bytes) = match opcode {
            OpCode::Control(Control::Ping) => return Some(Sent::Ping(payload.into())),
            OpCode::Control(Control::Pong) => return Some(Sent::Pong(payload.into())),
            OpCode::Control(Control::Close) => return Some(close_of(&payload)),
            OpCode::Data(Data::Text) | OpCode::Data(Data::Binary) => {
                assert!(self.partial.is_none(), "the client began a message inside another (RFC 6455 §5.4)");
                (opcode == OpCode::Data(Data::Text), payload)
            }
            OpCode::Data(Data::Continue) => {
                let Some((text, mut bytes)) = self.partial.take() else {
                    panic!("the client sent a continuation frame outside a message (RFC 6455 §5.4)")
                };
                bytes.extend_from_slice(&payload);
                (text, bytes)
            }
            other => panic!("the client sent a frame with the reserved opcode {other}"),
        };
        if !fin {
            self.partial = Some((text, bytes));
            return None;
        }
        Some(Sent::Message(if text {
            match String::from_utf8(bytes) {
                Ok(s) => Message::Text(s.into()),
                Err(e) => panic!("the client sent a text message that is not UTF-8: {e}"),
            }
        } else {
            Message::Binary(bytes.into())
        }))
    }
}

/// A close frame's payload: the code and reason, if any.
#[track_caller]
fn close_of(payload: &[u8]) -> Sent {
    match payload {
        [] => Sent::Close(None),
        [hi, lo, reason @ ..] => match std::str::from_utf8(reason) {
            Ok(reason) => Sent::Close(Some((CloseCode::from(u16::from_be_bytes([*hi, *lo])), reason.to_owned()))),
            Err(e) => panic!("the client sent a close reason that is not UTF-8: {e}"),
        },
        [_] => panic!("the client sent a close frame with a one-byte payload (RFC 6455 §5.5.1)"),
    }
}

impl UpgradeRequest {
    /// The request line and headers of a complete request head.
    #[track_caller]
    fn parse(head: &[u8]) -> Self {
        let Ok(head) = std::str::from_utf8(head) else { panic!("the client's upgrade request is not UTF-8") };
        let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
        let request_line = lines.next().unwrap_or_default().to_owned();
        let headers = lines
            .map(|line| match line.split_once(':') {
                Some((name, value)) => (name.to_owned(), value.trim().to_owned()),
                None => panic!("the client's upgrade request has a header line without a colon: {line:?}"),
            })
            .collect();
        Self { request_line, headers }
    }
}

/// One unmasked, final server frame.
pub(super) fn server_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader { is_final: true, opcode, ..FrameHeader::default() };
    let mut out = Vec::with_capacity(payload.len() + 10);
    // Writing to a Vec cannot fail, and an unmasked header takes any length.
    let _ = header.format(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// A text or binary server frame for `message`.
pub(super) fn message_frame(message: &Message) -> Vec<u8> {
    match message {
        Message::Text(t) => server_frame(OpCode::Data(Data::Text), t.as_bytes()),
        Message::Binary(b) => server_frame(OpCode::Data(Data::Binary), b),
    }
}

/// A close frame with `code` and `reason`.
pub(super) fn close_frame(code: CloseCode, reason: &str) -> Vec<u8> {
    let mut payload = u16::from(code).to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    server_frame(OpCode::Control(Control::Close), &payload)
}

/// A ping or pong frame.
pub(super) fn control_frame(control: Control, payload: &Bytes) -> Vec<u8> {
    server_frame(OpCode::Control(control), payload)
}

/// The `101 Switching Protocols` answer to a request with `key`, with `extra` headers.
pub(super) fn switching_protocols(key: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        tungstenite::handshake::derive_accept_key(key.as_bytes())
    );
    for (name, value) in extra {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.into_bytes()
}

/// A refusal with `status` and an empty body.
pub(super) fn refusal(status: u16) -> Vec<u8> {
    let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Refused");
    format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n").into_bytes()
}
