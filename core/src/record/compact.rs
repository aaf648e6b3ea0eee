//! The compact encoding of a recording (format 4): what a session writes.
//!
//! The header is one line of JSON, as in JSON Lines (its `encoding` is
//! `"compact"`), so `head -1` shows it. After its newline come binary
//! records, each a kind byte then its fields; numbers are LEB128 varints
//! (at most ten bytes), a time step is a zigzag varint (the difference to
//! the time before, modulo 2^64, so any sequence of times comes back
//! exactly), a digest is eight bytes little-endian:
//!
//! | kind | record | fields |
//! | --- | --- | --- |
//! | 1 | time | the time, in nanoseconds since the session was built |
//! | 2 | read | time step, length, the bytes |
//! | 3 | messages | count, digest ([`Entry::Messages`]) |
//! | 4 | transmit | length, FNV-1a digest |
//! | 5 | redacted transmit | length |
//! | 6 | written | time step, bytes written |
//! | 7 | timeout | time step |
//! | 8 | dropped | lines dropped |
//! | 9 | any other line | time step, length, the [`Entry`] as JSON |
//!
//! Every record but `time` is one [`Line`](super::format::Line). Inputs
//! carry a time step; outputs and notes have the time of the record before
//! them (an output written with another time is preceded by a `time`
//! record). A session hands its records to the recorder in chunks, each
//! starting with a `time` record: a chunk dropped by a full recorder (it
//! writes a `dropped` record in its place, [`dropped_note`]) or a file
//! rotated between chunks leaves the times after it right.
//!
//! Invariant: the encoder writes only what the reader
//! (`replay::Recording::parse`) takes back to the same lines; a line that a
//! binary record cannot hold exactly (a digest that is not 16 hex digits)
//! is written as JSON.

#[cfg(feature = "record")]
use super::format::{unhex, Entry};

/// Record kinds.
pub(crate) const TIME: u8 = 1;
pub(crate) const READ: u8 = 2;
pub(crate) const MESSAGES: u8 = 3;
pub(crate) const TRANSMIT: u8 = 4;
pub(crate) const REDACTED: u8 = 5;
pub(crate) const WRITTEN: u8 = 6;
pub(crate) const TIMEOUT: u8 = 7;
pub(crate) const DROPPED: u8 = 8;
#[cfg(feature = "record")]
pub(crate) const JSON: u8 = 9;

/// The bytes of a note that `count` lines were dropped here, for a recorder
/// that drops chunks (a record, not a line of text: see the module docs).
pub fn dropped_note(count: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(11);
    out.push(DROPPED);
    varint(&mut out, count);
    out
}

/// Appends `v` as an LEB128 varint.
pub(crate) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The step from `from` to `to`, modulo 2^64, zigzagged: small either way.
pub(crate) fn zigzag(from: u64, to: u64) -> u64 {
    let d = to.wrapping_sub(from) as i64;
    ((d << 1) ^ (d >> 63)) as u64
}

/// `from` moved by a step [`zigzag`] wrote.
#[cfg(any(test, feature = "record"))]
pub(crate) fn unzigzag(from: u64, z: u64) -> u64 {
    from.wrapping_add(((z >> 1) as i64 ^ -((z & 1) as i64)) as u64)
}

/// Writes records, keeping the time they are relative to.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    /// The time of the last record written.
    pub(crate) t: u64,
}

impl Encoder {
    /// A `time` record: the chunk's start, or an output at another time.
    pub(crate) fn time(&mut self, out: &mut Vec<u8>, t: u64) {
        out.push(TIME);
        varint(out, t);
        self.t = t;
    }

    /// A kind and the time step to `t`.
    fn step(&mut self, out: &mut Vec<u8>, kind: u8, t: u64) {
        out.push(kind);
        varint(out, zigzag(self.t, t));
        self.t = t;
    }

    /// Bytes read at `t`.
    pub(crate) fn read(&mut self, out: &mut Vec<u8>, t: u64, bytes: &[u8]) {
        self.step(out, READ, t);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }

    /// `handle_written(n)` at `t`.
    pub(crate) fn written(&mut self, out: &mut Vec<u8>, t: u64, n: u64) {
        self.step(out, WRITTEN, t);
        varint(out, n);
    }

    /// `handle_timeout` at `t`.
    pub(crate) fn timeout(&mut self, out: &mut Vec<u8>, t: u64) {
        self.step(out, TIMEOUT, t);
    }

    /// A run of `n` messages with digest `h`.
    pub(crate) fn messages(out: &mut Vec<u8>, n: u64, h: u64) {
        out.push(MESSAGES);
        varint(out, n);
        out.extend_from_slice(&h.to_le_bytes());
    }

    /// A transmit of `len` bytes, its digest, or `None` when redacted.
    pub(crate) fn transmit(out: &mut Vec<u8>, len: u64, h: Option<u64>) {
        match h {
            Some(h) => {
                out.push(TRANSMIT);
                varint(out, len);
                out.extend_from_slice(&h.to_le_bytes());
            }
            None => {
                out.push(REDACTED);
                varint(out, len);
            }
        }
    }

    /// Any line as JSON, at `t`.
    #[cfg(feature = "record")]
    pub(crate) fn json(&mut self, out: &mut Vec<u8>, t: u64, entry: &Entry) {
        // Serialising these plain structures cannot fail.
        let text = serde_json::to_vec(entry).unwrap_or_default();
        self.step(out, JSON, t);
        varint(out, text.len() as u64);
        out.extend_from_slice(&text);
    }

    /// Any line at `t`, in the smallest record that holds it exactly.
    #[cfg(feature = "record")]
    pub(crate) fn line(&mut self, out: &mut Vec<u8>, t: u64, entry: &Entry) {
        let output = |enc: &mut Self, out: &mut Vec<u8>| {
            if enc.t != t {
                enc.time(out, t);
            }
        };
        match entry {
            Entry::Read { data } => self.read(out, t, data),
            Entry::Written { n } => self.written(out, t, *n as u64),
            Entry::Timeout => self.timeout(out, t),
            Entry::Messages { n, h } if unhex(h).is_some() => {
                output(self, out);
                Self::messages(out, *n, unhex(h).unwrap_or_default());
            }
            Entry::Transmit { len, h, redacted: false } if unhex(h).is_some() => {
                output(self, out);
                Self::transmit(out, *len as u64, unhex(h));
            }
            Entry::Transmit { len, h, redacted: true } if h.is_empty() => {
                output(self, out);
                Self::transmit(out, *len as u64, None);
            }
            Entry::Dropped { count } => {
                output(self, out);
                out.extend_from_slice(&dropped_note(*count));
            }
            other => self.json(out, t, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_steps_come_back_exactly() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            varint(&mut out, v);
            assert!(out.len() <= 10);
            let back = out.iter().rev().fold(0u64, |acc, b| acc << 7 | u64::from(b & 0x7f));
            assert_eq!(back, v);
        }
        for (from, to) in [(0, 0), (5, 3), (3, 5), (0, u64::MAX), (u64::MAX, 0), (1 << 63, 7)] {
            assert_eq!(unzigzag(from, zigzag(from, to)), to);
        }
        assert!(zigzag(1000, 999) < 4 && zigzag(999, 1000) < 4, "a small step either way is small");
    }
}
