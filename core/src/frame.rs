//! Frames on the wire (RFC 6455 §5.2): decoding server frames from the input
//! buffer and encoding masked client frames into the output buffer.
//!
//! Header formatting is tungstenite's (`FrameHeader::format`). Header parsing
//! is done here: tungstenite's `FrameHeader::parse` (a `Cursor` and `Read`,
//! with a log-level check per field) cost about 130 instructions per message
//! in the flood benchmark, more than the rest of decoding; this parser reads
//! the 2 to 14 bytes straight from the slice and agrees with it on every
//! input (the differential proptest and the unit tests below check it).
//! The client's rules that a header alone decides (server frames are
//! unmasked, no reserved bits, control frames short and final, the frame size
//! limit) refuse a bad frame before its payload is waited for.
//! A payload is split off the input buffer as `Bytes`, never copied: the
//! buffers it shares are reused once the messages are dropped (see
//! `connection/spare_reads.rs`), and a frame larger than a read is read
//! into a buffer of its own (`connection/large_read.rs`).

use bytes::{Buf, Bytes, BytesMut};
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use crate::error::ProtocolError;

/// One complete server frame that passed the header rules.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) fin: bool,
    pub(crate) opcode: OpCode,
    /// RSV1 on the first frame of a message: permessage-deflate compressed it.
    pub(crate) compressed: bool,
    pub(crate) payload: Bytes,
}

/// The fields of a frame header that decoding needs.
struct Header {
    fin: bool,
    rsv1: bool,
    rsv23: bool,
    masked: bool,
    opcode: u8,
}

/// Reads a header from the front of `input`: `None` until all of it (up to
/// 14 bytes) is there; then the header, its length and the payload length.
fn parse_header(input: &[u8]) -> Option<(Header, usize, u64)> {
    let (&b0, &b1) = (input.first()?, input.get(1)?);
    let header = Header {
        fin: b0 & 0x80 != 0,
        rsv1: b0 & 0x40 != 0,
        rsv23: b0 & 0x30 != 0,
        masked: b1 & 0x80 != 0,
        opcode: b0 & 0x0F,
    };
    let (len, at) = match b1 & 0x7F {
        126 => (u64::from(u16::from_be_bytes(input.get(2..4)?.try_into().ok()?)), 4),
        127 => (u64::from_be_bytes(input.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let header_len = if header.masked { at + 4 } else { at };
    (input.len() >= header_len).then_some((header, header_len, len))
}

/// How many more bytes the frame at the front of `input` needs, once its
/// header is complete (0 when it is whole or its header is not in yet).
pub(crate) fn bytes_missing(input: &[u8]) -> usize {
    match parse_header(input) {
        Some((_, header_len, len)) => (header_len as u64 + len).saturating_sub(input.len() as u64) as usize,
        None => 0,
    }
}

fn opcode(code: u8) -> Result<OpCode, ProtocolError> {
    Ok(match code {
        0 => OpCode::Data(Data::Continue),
        1 => OpCode::Data(Data::Text),
        2 => OpCode::Data(Data::Binary),
        8 => OpCode::Control(Control::Close),
        9 => OpCode::Control(Control::Ping),
        10 => OpCode::Control(Control::Pong),
        other => return Err(ProtocolError::ReservedOpcode(other)),
    })
}

/// What the connection allows in frame headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameRules {
    pub(crate) max_frame_size: usize,
    /// permessage-deflate is in force: RSV1 may mark a message's first frame.
    pub(crate) deflate: bool,
}

/// What a data frame's header says about its payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameHead {
    pub(crate) fin: bool,
    pub(crate) opcode: OpCode,
    pub(crate) compressed: bool,
}

/// A frame that still lacks this much is read into a buffer of its own; a
/// smaller rest comes with the next ordinary read (reading it alone would
/// cost a read call of its own for every frame).
const READ_APART_FROM: usize = 16 << 10;

/// The frame at the front of `input` when it is a large one whose header is
/// in and passed the rules but which still lacks `READ_APART_FROM` bytes or
/// more: its head, where the payload starts and how long it is. Its payload
/// is then better read straight into a buffer of its own.
pub(crate) fn large_frame_start(input: &[u8], rules: FrameRules) -> Option<(FrameHead, usize, usize)> {
    let (header, header_len, len) = parse_header(input)?;
    let opcode = opcode(header.opcode).ok()?;
    check_header(&header, opcode, len, rules).ok()?;
    // `check_header` bounded `len` by `max_frame_size`, a `usize`.
    let len = len as usize;
    (header_len + len >= input.len() + READ_APART_FROM).then_some((
        FrameHead { fin: header.fin, opcode, compressed: header.rsv1 },
        header_len,
        len,
    ))
}

/// The head of the frame at the front of `input` and where its payload
/// starts, once its header is in: for a frame `decode_frame` found
/// incomplete (which checked the header's rules), whose payload is arriving.
pub(crate) fn partial_frame_head(input: &[u8]) -> Option<(FrameHead, usize)> {
    let (header, header_len, _) = parse_header(input)?;
    let opcode = opcode(header.opcode).ok()?;
    Some((FrameHead { fin: header.fin, opcode, compressed: header.rsv1 }, header_len))
}

/// How many bytes at the front of `input` are whole frames (by their
/// headers alone: the rules are checked when they are decoded).
pub(crate) fn whole_frames(input: &[u8]) -> usize {
    let mut at = 0;
    while let Some((_, header_len, len)) = parse_header(&input[at..]) {
        match (header_len as u64).checked_add(len) {
            Some(total) if total <= (input.len() - at) as u64 => at += total as usize,
            _ => break,
        }
    }
    at
}

/// Where frames are decoded from: the input buffer, or a batch of whole
/// frames already split off it (`Connection::process_frames`).
pub(crate) trait FrameSource: std::ops::Deref<Target = [u8]> {
    /// Splits the first `n` bytes off, as the frame's own `Bytes`.
    fn take_frame(&mut self, n: usize) -> Bytes;
}

impl FrameSource for BytesMut {
    #[inline]
    fn take_frame(&mut self, n: usize) -> Bytes {
        self.split_to(n).freeze()
    }
}

impl FrameSource for Bytes {
    #[inline]
    fn take_frame(&mut self, n: usize) -> Bytes {
        self.split_to(n)
    }
}

/// Takes one frame off the front of `input`, or returns `Ok(None)` and leaves
/// `input` untouched when the frame is not complete yet.
pub(crate) fn decode_frame<B: FrameSource>(input: &mut B, rules: FrameRules) -> Result<Option<Frame>, ProtocolError> {
    let Some((header, header_len, len)) = parse_header(input) else { return Ok(None) };
    let opcode = opcode(header.opcode)?;
    check_header(&header, opcode, len, rules)?;
    let compressed = header.rsv1;
    // `check_header` bounded `len` by `max_frame_size`, a `usize`.
    let total = header_len + len as usize;
    if input.len() < total {
        // Room for the rest is made by `Connection::read_buffer`, in one step.
        return Ok(None);
    }
    // One split of the whole frame, then a cheap advance on the frozen `Bytes`.
    let mut payload = input.take_frame(total);
    payload.advance(header_len);
    Ok(Some(Frame { fin: header.fin, opcode, compressed, payload }))
}

fn check_header(header: &Header, opcode: OpCode, len: u64, rules: FrameRules) -> Result<(), ProtocolError> {
    let max_frame_size = rules.max_frame_size;
    if header.masked {
        return Err(ProtocolError::MaskedFrame);
    }
    // RFC 7692 §6: RSV1 marks the first frame of a compressed data message;
    // on a continuation or a control frame it is an error.
    let rsv1_allowed = rules.deflate && matches!(opcode, OpCode::Data(Data::Text | Data::Binary));
    if header.rsv23 || (header.rsv1 && !rsv1_allowed) {
        return Err(ProtocolError::ReservedBits);
    }
    if let OpCode::Control(_) = opcode {
        if !header.fin {
            return Err(ProtocolError::FragmentedControlFrame);
        }
        if len > 125 {
            return Err(ProtocolError::ControlFrameTooLong(len));
        }
    }
    if len > max_frame_size as u64 {
        return Err(ProtocolError::FrameTooLarge { size: len, limit: max_frame_size });
    }
    Ok(())
}

/// Appends one masked client frame to `out`; `rsv1` marks a compressed message's first frame.
pub(crate) fn encode_frame(out: &mut Vec<u8>, opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8], mask: [u8; 4]) {
    let header = FrameHeader { is_final: fin, rsv1, rsv2: false, rsv3: false, opcode, mask: Some(mask) };
    out.reserve(header.len(payload.len() as u64) + payload.len());
    // Writing into a Vec<u8> cannot fail; the Result is io::Write's signature only.
    let _ = header.format(payload.len() as u64, out);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XORs `buf` with the 4-byte masking key (RFC 6455 §5.3).
///
/// tungstenite's own `apply_mask` is private to it, so this is the one
/// protocol primitive written here; it works 8 bytes at a time without `unsafe`.
pub(crate) fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask) as u64;
    let mask64 = word | (word << 32);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(bytes) = <[u8; 8]>::try_from(&*chunk) {
            chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ mask64).to_ne_bytes());
        }
    }
    // Chunks are multiples of 4 long, so the remainder starts at mask index 0.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// An unmasked server frame with first byte `first` (FIN, RSV bits, opcode),
/// for the core's tests.
#[cfg(test)]
pub(crate) fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![first];
    match payload.len() {
        n if n < 126 => v.push(n as u8),
        n if n < 65536 => {
            v.push(126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    const RULES: FrameRules = FrameRules { max_frame_size: 1 << 20, deflate: false };

    #[test]
    fn decodes_each_length_form_and_leaves_the_rest() {
        for n in [0usize, 1, 125, 126, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let mut buf = BytesMut::from(&server_frame(0x82, &payload)[..]);
            buf.extend_from_slice(b"\x89");
            let f = decode_frame(&mut buf, RULES).unwrap().unwrap();
            assert!(f.fin);
            assert_eq!(f.opcode, OpCode::Data(Data::Binary));
            assert_eq!(&f.payload[..], &payload[..]);
            assert_eq!(&buf[..], b"\x89");
        }
    }

    #[test]
    fn incomplete_frames_consume_nothing() {
        let whole = server_frame(0x81, &[b'x'; 300]);
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert!(decode_frame(&mut buf, RULES).unwrap().is_none(), "cut {cut}");
            assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn header_rules_fail_before_the_payload_arrives() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"\x81\x85abcd", ProtocolError::MaskedFrame),
            (b"\xc1\x00", ProtocolError::ReservedBits),
            (b"\xa1\x00", ProtocolError::ReservedBits),
            (b"\x91\x00", ProtocolError::ReservedBits),
            (b"\x83\x00", ProtocolError::ReservedOpcode(3)),
            (b"\x8b\x00", ProtocolError::ReservedOpcode(0xb)),
            (b"\x09\x00", ProtocolError::FragmentedControlFrame),
            (b"\x89\x7e\x00\x7e", ProtocolError::ControlFrameTooLong(126)),
            (
                b"\x82\x7f\x00\x00\x00\x00\x00\x10\x00\x01",
                ProtocolError::FrameTooLarge { size: 1_048_577, limit: 1 << 20 },
            ),
            (
                b"\x82\x7f\xff\xff\xff\xff\xff\xff\xff\xff",
                ProtocolError::FrameTooLarge { size: u64::MAX, limit: 1 << 20 },
            ),
        ];
        for (bytes, want) in cases {
            let mut buf = BytesMut::from(*bytes);
            assert_eq!(decode_frame(&mut buf, RULES).unwrap_err(), *want, "{bytes:x?}");
        }
    }

    #[test]
    fn rsv1_is_allowed_only_on_a_first_data_frame_with_deflate() {
        let deflate = FrameRules { deflate: true, ..RULES };
        for (bytes, ok) in [
            (&b"\xc1\x00"[..], true),
            (b"\x42\x00", true),
            (b"\x40\x00", false),
            (b"\xc9\x00", false),
            (b"\xe1\x00", false),
        ] {
            let result = decode_frame(&mut BytesMut::from(bytes), deflate);
            match result {
                Ok(Some(frame)) => assert!(ok && frame.compressed, "{bytes:x?}"),
                Err(e) => assert!(!ok && e == ProtocolError::ReservedBits, "{bytes:x?}: {e:?}"),
                Ok(None) => panic!("{bytes:x?}: incomplete"),
            }
        }
    }

    #[test]
    fn encoded_frames_are_masked_and_parse_back() {
        for n in [0usize, 5, 125, 126, 1000, 70000] {
            let payload: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let mut out = Vec::new();
            encode_frame(&mut out, OpCode::Control(Control::Ping), true, false, &payload, [1, 2, 3, 4]);
            let mut cursor = Cursor::new(&out[..]);
            let (h, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert_eq!((h.mask, len as usize), (Some([1, 2, 3, 4]), n));
            let mut body = out[cursor.position() as usize..].to_vec();
            apply_mask(&mut body, [1, 2, 3, 4]);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn mask_matches_the_bytewise_definition() {
        for n in 0..40 {
            let mut buf: Vec<u8> = (0..n as u8).collect();
            let want: Vec<u8> = buf.iter().enumerate().map(|(i, b)| b ^ [9, 8, 7, 6][i % 4]).collect();
            apply_mask(&mut buf, [9, 8, 7, 6]);
            assert_eq!(buf, want);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn header_parser_agrees_with_tungstenites(bytes in prop::collection::vec(any::<u8>(), 0..16)) {
            let ours = parse_header(&bytes).map(|(h, hl, len)| (h.fin, h.rsv1 || h.rsv23, h.masked, h.opcode, hl, len));
            let mut cursor = Cursor::new(&bytes[..]);
            let theirs = match FrameHeader::parse(&mut cursor) {
                Ok(Some((h, len))) => Some(Some((h.is_final, h.rsv1 || h.rsv2 || h.rsv3, h.mask.is_some(), u8::from(h.opcode), cursor.position() as usize, len))),
                Ok(None) => Some(None),
                Err(_) => None, // a reserved opcode: we parse it, and `opcode` refuses it
            };
            match theirs {
                Some(t) => prop_assert_eq!(ours, t),
                None => prop_assert!(ours.is_some_and(|o| opcode(o.3).is_err())),
            }
        }
    }
}
