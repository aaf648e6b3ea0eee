//! Raw DEFLATE for messages (RFC 7692 §7.2), on zlib-rs.
//!
//! zlib-rs is used directly rather than through flate2: it is flate2's fastest
//! pure-Rust backend, its safe API takes any window from 8 to 15 bits where
//! flate2 panics below 9, and it exposes `mem_level`, which sets most of a
//! compressor's memory (flate2 fixes it at 8, 128 KiB of hash table).
//!
//! The inflater never writes past `limit + 1` bytes of output: the output is
//! grown in steps bounded by what is left, so a message that inflates beyond
//! the limit is refused after at most `limit + 1` bytes were produced.

use bytes::BytesMut;
use zlib_rs::{DeflateConfig as ZConfig, DeflateFlush, InflateFlush, Status};

use crate::error::ProtocolError;

/// The four bytes a sync flush ends with, which senders strip and receivers
/// put back (RFC 7692 §7.2.1 and §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The largest step the output grows by at once: the memory zeroed ahead of
/// inflation is at most this.
const MAX_STEP: usize = 64 << 10;

/// Decompresses the server's messages, keeping the window between messages.
///
/// Messages are inflated into one shared buffer and split off it, as the read
/// buffer's small payloads are: no allocation per message, one per
/// `ARENA` bytes of output (or per message larger than that).
pub(crate) struct Inflater {
    state: Option<Box<zlib_rs::Inflate>>,
    window_bits: u8,
    /// The stream ended with a final block: the next message starts afresh.
    ended: bool,
    /// The message being inflated, in front of the room for the next ones.
    out: BytesMut,
    /// A small last frame with the tail put back, inflated in one call.
    joined: Vec<u8>,
    /// Messages inflated, bytes taken in, bytes put out (for `CompressionStats`).
    counts: (u64, u64, u64),
}

/// Last frames shorter than this get their tail appended in a copy (one
/// inflate call instead of two); longer ones are not copied.
const JOIN_BELOW: usize = 2048;

/// The output buffer is allocated this large at least.
const ARENA: usize = 16 << 10;

impl Inflater {
    /// An inflater for a server window of up to `window_bits`, allocated on first use.
    pub(crate) fn new(window_bits: u8) -> Self {
        Self { state: None, window_bits, ended: false, out: BytesMut::new(), joined: Vec::new(), counts: (0, 0, 0) }
    }

    /// Inflates one frame's payload onto the message in progress, which never
    /// grows past `limit + 1` bytes; `fin` ends the message (the stripped
    /// tail is put back, which flushes what is left).
    pub(crate) fn inflate(&mut self, input: &[u8], fin: bool, limit: usize) -> Result<(), ProtocolError> {
        self.counts.1 += input.len() as u64;
        let result = match fin {
            false => self.run(input, limit),
            true if input.len() < JOIN_BELOW => {
                let mut joined = std::mem::take(&mut self.joined);
                joined.clear();
                joined.extend_from_slice(input);
                joined.extend_from_slice(&TAIL);
                let result = self.run(&joined, limit);
                self.joined = joined;
                result
            }
            true => self.run(input, limit).and_then(|()| self.run(&TAIL, limit)),
        };
        if fin && self.ended {
            // A final block ended the stream; zlib takes no more after it.
            self.state = None;
            self.ended = false;
        }
        result
    }

    /// The message inflated so far.
    pub(crate) fn inflated(&self) -> &[u8] {
        &self.out
    }

    /// Takes the finished message.
    pub(crate) fn take(&mut self) -> BytesMut {
        self.counts.0 += 1;
        self.counts.2 += self.out.len() as u64;
        self.out.split()
    }

    /// Messages inflated, their bytes as received, and their bytes inflated.
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        self.counts
    }

    /// Whether the inflater's state is allocated (for memory accounting in tests).
    #[cfg(test)]
    pub(crate) fn is_allocated(&self) -> bool {
        self.state.is_some()
    }

    /// The output buffer's capacity (for the memory bound in tests).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.out.capacity()
    }

    fn run(&mut self, mut input: &[u8], limit: usize) -> Result<(), ProtocolError> {
        if self.ended {
            // Bytes after the final block, other than the tail, are not deflate data.
            return if input.is_empty() || input == TAIL { Ok(()) } else { Err(ProtocolError::InvalidCompressedData) };
        }
        let bits = self.window_bits;
        let state = self.state.get_or_insert_with(|| Box::new(zlib_rs::Inflate::new(false, bits)));
        let out = &mut self.out;
        loop {
            let len = out.len();
            // Grow by about what this input could produce (JSON inflates 4 to
            // 10 times), never past limit + 1.
            let step = (input.len().saturating_mul(8)).clamp(1024, MAX_STEP).min(limit + 1 - len.min(limit));
            reserve_within(out, step, limit + 1);
            out.resize(len + step, 0);
            let (in_before, out_before) = (state.total_in(), state.total_out());
            let status = state.decompress(input, &mut out[len..], InflateFlush::SyncFlush);
            let consumed = (state.total_in() - in_before) as usize;
            let produced = (state.total_out() - out_before) as usize;
            out.truncate(len + produced);
            input = &input[consumed.min(input.len())..];
            let status = status.map_err(|_| ProtocolError::InvalidCompressedData)?;
            if out.len() > limit {
                return Err(ProtocolError::MessageTooLarge { size: out.len() as u64, limit });
            }
            if status == Status::StreamEnd {
                self.ended = true;
                // After the final block only the tail we put back may follow.
                return if input.is_empty() || input == TAIL {
                    Ok(())
                } else {
                    Err(ProtocolError::InvalidCompressedData)
                };
            }
            // Done once the input is used up and the output was not filled
            // (a full output may hide more).
            if input.is_empty() && (produced < step || consumed == 0 && produced == 0) {
                return Ok(());
            }
            if consumed == 0 && produced == 0 {
                // Input left and room to write, yet zlib moved nothing.
                return Err(ProtocolError::InvalidCompressedData);
            }
        }
    }
}

/// Makes room for `step` more bytes of the message in `out` (which holds only
/// that message): in place when earlier messages split off it are gone, else
/// in a new buffer of at least `ARENA` bytes that doubles for large messages
/// but never passes `cap` (`BytesMut::reserve` may double past it).
fn reserve_within(out: &mut BytesMut, step: usize, cap: usize) {
    let len = out.len();
    if out.capacity() - len >= step || out.try_reclaim(step) {
        return;
    }
    let target = (len * 2).max(ARENA).min(cap).max(len + step);
    let mut grown = BytesMut::with_capacity(target);
    grown.extend_from_slice(out);
    *out = grown;
}

/// Compresses our messages.
pub(crate) struct Compressor {
    state: Option<Box<zlib_rs::Deflate>>,
    level: u8,
    mem_level: u8,
    window_bits: u8,
    /// `client_no_context_takeover`: every message starts from an empty window.
    reset_each: bool,
}

impl Compressor {
    /// A compressor with these settings, allocated on first use. `window_bits` is 9 to 15.
    pub(crate) fn new(level: u8, mem_level: u8, window_bits: u8, reset_each: bool) -> Self {
        Self { state: None, level, mem_level, window_bits, reset_each }
    }

    /// Appends `payload` compressed, tail stripped, to `out`. Returns false,
    /// having written nothing, when zlib refuses; the state then starts afresh
    /// so that later messages never refer to data the server did not get.
    pub(crate) fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        let (level, mem_level, bits) = (self.level, self.mem_level, self.window_bits);
        let state = self.state.get_or_insert_with(|| {
            let config = ZConfig {
                level: i32::from(level),
                window_bits: -i32::from(bits),
                mem_level: i32::from(mem_level),
                ..ZConfig::default()
            };
            Box::new(zlib_rs::Deflate::new_with_config(config))
        });
        let start = out.len();
        let mut input = payload;
        loop {
            let len = out.len();
            // A sync flush adds a few bytes; stored blocks add 5 per 64 KiB.
            let step = input.len() + input.len() / 1024 + 64;
            out.resize(len + step, 0);
            let in_before = state.total_in();
            let out_before = state.total_out();
            let status = state.compress(input, &mut out[len..], DeflateFlush::SyncFlush);
            let consumed = (state.total_in() - in_before) as usize;
            let produced = (state.total_out() - out_before) as usize;
            out.truncate(len + produced);
            input = &input[consumed.min(input.len())..];
            if status.is_err() {
                out.truncate(start);
                state.reset();
                return false;
            }
            // The flush is complete when it did not fill the room given.
            if input.is_empty() && produced < step {
                break;
            }
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.reset_each {
            state.reset();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(n: usize) -> Vec<u8> {
        let mut s = String::new();
        let mut i = 0;
        while s.len() < n {
            s.push_str(&format!("{{\"channel\":\"book.BTC-PERPETUAL\",\"seq\":{i},\"price\":{}.5}}", 60000 + i % 7));
            i += 1;
        }
        s.truncate(n);
        s.into_bytes()
    }

    fn round_trip(c: &mut Compressor, i: &mut Inflater, msg: &[u8]) -> (usize, Vec<u8>) {
        let mut wire = Vec::new();
        assert!(c.compress(msg, &mut wire));
        // Inflate in three pieces, as fragments would arrive.
        let third = wire.len() / 3;
        i.inflate(&wire[..third], false, 1 << 20).unwrap();
        i.inflate(&wire[third..2 * third], false, 1 << 20).unwrap();
        i.inflate(&wire[2 * third..], true, 1 << 20).unwrap();
        (wire.len(), i.take().to_vec())
    }

    #[test]
    fn messages_round_trip_and_context_takeover_shrinks_repeats() {
        for bits in 9..=15 {
            let mut c = Compressor::new(1, 5, bits, false);
            let mut i = Inflater::new(bits);
            let msg = json(3000);
            let (first, out) = round_trip(&mut c, &mut i, &msg);
            assert_eq!(out, msg);
            let (second, out) = round_trip(&mut c, &mut i, &msg);
            assert_eq!(out, msg);
            assert!(first < msg.len() / 2, "bits {bits}: {first}");
            if bits >= 12 {
                // The whole previous message is in the window: the repeat is a few back-references.
                assert!(second < first / 2, "bits {bits}: {second} vs {first}");
            }
        }
        let mut c = Compressor::new(6, 8, 15, true);
        let mut i = Inflater::new(15);
        let msg = json(3000);
        let (first, _) = round_trip(&mut c, &mut i, &msg);
        let (second, out) = round_trip(&mut c, &mut i, &msg);
        assert_eq!((second, out), (first, msg), "no context takeover: each message alone");
        for msg in [&b""[..], b"x", &[0u8; 100_000]] {
            assert_eq!(round_trip(&mut c, &mut i, msg).1, msg);
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let mut c = Compressor::new(9, 9, 15, false);
        let mut wire = Vec::new();
        assert!(c.compress(&vec![0u8; 8 << 20], &mut wire));
        assert!(wire.len() < 100 << 10, "{}", wire.len());
        let mut i = Inflater::new(15);
        let err = i.inflate(&wire, false, 1 << 20).unwrap_err();
        assert_eq!(err, ProtocolError::MessageTooLarge { size: (1 << 20) + 1, limit: 1 << 20 });
        assert!(i.capacity() <= (1 << 20) + 1, "{}", i.capacity());
        // At exactly the limit it passes.
        let mut c = Compressor::new(1, 5, 15, false);
        let mut wire = Vec::new();
        c.compress(&vec![7u8; 4096], &mut wire);
        let mut i = Inflater::new(15);
        i.inflate(&wire, true, 4096).unwrap();
        assert_eq!(i.take().len(), 4096);
    }

    #[test]
    fn corrupt_data_and_data_after_the_final_block_are_refused() {
        let mut i = Inflater::new(15);
        // Block type 3 is reserved.
        assert_eq!(i.inflate(&[0xff, 0xff], true, 100), Err(ProtocolError::InvalidCompressedData));
        // A final stored block holding "hi", then junk.
        let final_block = [0x01, 0x02, 0x00, 0xfd, 0xff, b'h', b'i'];
        let mut i = Inflater::new(15);
        i.inflate(&final_block, true, 100).unwrap();
        assert_eq!(&i.take()[..], b"hi");
        // The next message starts a fresh stream.
        i.inflate(&final_block, false, 100).unwrap();
        assert_eq!(i.inflated(), b"hi");
        assert_eq!(i.inflate(b"junk", true, 100), Err(ProtocolError::InvalidCompressedData));
        let mut junk = final_block.to_vec();
        junk.push(0);
        assert_eq!(Inflater::new(9).inflate(&junk, true, 100), Err(ProtocolError::InvalidCompressedData));
    }

    #[test]
    fn state_is_allocated_on_first_use() {
        let mut i = Inflater::new(15);
        assert!(!i.is_allocated());
        i.inflate(&[], false, 10).unwrap();
        assert!(i.is_allocated());
    }
}
