//! The reader of the compact encoding ([`crate::record::compact`]).
//!
//! Invariants: every input gives lines or a typed error, never a panic; a
//! length is checked against the bytes left before anything is taken or
//! allocated for it, so what is allocated is bounded by the input's size
//! whatever a length field says; a record cut by the end of the input is
//! [`RecordingError::Truncated`], anything else wrong is
//! [`RecordingError::BadRecord`] with its byte offset.

use super::{RecordFault, RecordingError};
use crate::record::compact::{unzigzag, DROPPED, JSON, MESSAGES, READ, REDACTED, TIME, TIMEOUT, TRANSMIT, WRITTEN};
use crate::record::format::{hex, Entry, Line};

/// Why a record stopped: cut by the end, or wrong.
enum Stop {
    Cut,
    Fault(RecordFault),
}

impl From<RecordFault> for Stop {
    fn from(fault: RecordFault) -> Self {
        Self::Fault(fault)
    }
}

/// A cursor over the records.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, Stop> {
        let b = *self.data.get(self.at).ok_or(Stop::Cut)?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, Stop> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            // The tenth byte holds bit 63 only.
            if shift == 63 && b > 1 {
                return Err(RecordFault::BadNumber.into());
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordFault::BadNumber.into())
    }

    fn size(&mut self) -> Result<usize, Stop> {
        usize::try_from(self.varint()?).map_err(|_| RecordFault::BadNumber.into())
    }

    /// The next `len` bytes, checked against what is left first.
    fn take(&mut self, len: u64) -> Result<&'a [u8], Stop> {
        let left = self.data.len() - self.at;
        let len = usize::try_from(len).ok().filter(|&len| len <= left).ok_or(Stop::Cut)?;
        let bytes = &self.data[self.at..self.at + len];
        self.at += len;
        Ok(bytes)
    }

    fn digest(&mut self) -> Result<u64, Stop> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(<[u8; 8]>::try_from(bytes).map_err(|_| Stop::Cut)?))
    }
}

/// The lines of a compact body that starts at byte `base` of the file.
pub(super) fn decode(body: &[u8], base: usize) -> Result<Vec<Line>, RecordingError> {
    let mut reader = Reader { data: body, at: 0 };
    let mut t = 0u64;
    let mut lines = Vec::new();
    while reader.at < body.len() {
        let start = reader.at;
        let line = lines.len() + 2;
        match record(&mut reader, &mut t) {
            Ok(Some(entry)) => lines.push(Line { t, entry }),
            Ok(None) => {}
            Err(Stop::Cut) => return Err(RecordingError::Truncated { line }),
            Err(Stop::Fault(fault)) => return Err(RecordingError::BadRecord { line, offset: base + start, fault }),
        }
    }
    Ok(lines)
}

/// One record: its line, or `None` for a `time` record (which moves `t`).
fn record(r: &mut Reader<'_>, t: &mut u64) -> Result<Option<Entry>, Stop> {
    let kind = r.byte()?;
    let mut step = |r: &mut Reader<'_>| -> Result<(), Stop> {
        *t = unzigzag(*t, r.varint()?);
        Ok(())
    };
    let entry = match kind {
        TIME => {
            *t = r.varint()?;
            return Ok(None);
        }
        READ => {
            step(r)?;
            let len = r.varint()?;
            Entry::Read { data: r.take(len)?.to_vec() }
        }
        MESSAGES => Entry::Messages { n: r.varint()?, h: hex(r.digest()?) },
        TRANSMIT => Entry::Transmit { len: r.size()?, h: hex(r.digest()?), redacted: false },
        REDACTED => Entry::Transmit { len: r.size()?, h: String::new(), redacted: true },
        WRITTEN => {
            step(r)?;
            Entry::Written { n: r.size()? }
        }
        TIMEOUT => {
            step(r)?;
            Entry::Timeout
        }
        DROPPED => Entry::Dropped { count: r.varint()? },
        JSON => {
            step(r)?;
            let len = r.varint()?;
            let text = r.take(len)?;
            let entry: Entry =
                serde_json::from_slice(text).map_err(|e| Stop::Fault(RecordFault::BadEntry(e.to_string())))?;
            entry.check().map_err(|reason| Stop::Fault(RecordFault::BadEntry(reason)))?;
            entry
        }
        other => return Err(RecordFault::UnknownKind(other).into()),
    };
    Ok(Some(entry))
}
