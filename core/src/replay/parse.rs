//! Reading a recording in either encoding (see [`format`](crate::record::format)),
//! and writing it again in either: the header line (JSON), then JSON Lines
//! or compact records as the header's `encoding` says.
//!
//! Invariants: nothing here panics on any input; what is allocated is
//! bounded by the input's size, never by a length field (the compact
//! reader checks each length against the bytes left before it takes them);
//! a recording parsed, written in either encoding and parsed again gives
//! the same lines.

use super::{compact, Recording, RecordingError};
use crate::record::compact::Encoder;
use crate::record::format::{Encoding, Header, Line, FORMAT_VERSION};

impl Recording {
    /// Parses and checks a recording, in either encoding (the bytes of a
    /// file, or its text: anything that is `AsRef<[u8]>`).
    pub fn parse(data: impl AsRef<[u8]>) -> Result<Self, RecordingError> {
        let data = data.as_ref();
        let (first, body) = match data.iter().position(|&b| b == b'\n') {
            Some(end) => (&data[..end], &data[end + 1..]),
            None => (data, &[][..]),
        };
        if first.trim_ascii().is_empty() {
            return Err(RecordingError::Empty);
        }
        let header = header(first)?;
        let seed = data_encoding::HEXLOWER
            .decode(header.seed.as_bytes())
            .ok()
            .and_then(|s| <[u8; 32]>::try_from(s).ok())
            .ok_or_else(|| RecordingError::BadHeader { line: 1, reason: "the seed is not 32 bytes of hex".into() })?;
        let lines = match header.encoding {
            Encoding::Compact => compact::decode(body, first.len() + 1)?,
            _ => json_lines(body)?,
        };
        Ok(Self { header, lines, seed })
    }

    /// The recording as JSON Lines: the header (its `encoding` left out),
    /// then one line each. For reading and editing; [`parse`](Self::parse)
    /// reads it back to the same lines.
    pub fn to_lines(&self) -> String {
        let header = Header { encoding: Encoding::Lines, ..self.header.clone() };
        // Serialising these plain structures cannot fail.
        let mut text = serde_json::to_string(&header).unwrap_or_default();
        text.push('\n');
        for line in &self.lines {
            text.push_str(&serde_json::to_string(line).unwrap_or_default());
            text.push('\n');
        }
        text
    }

    /// The recording in the compact encoding, as a session writes it:
    /// [`parse`](Self::parse) reads it back to the same lines.
    pub fn to_compact(&self) -> Vec<u8> {
        let header = Header { encoding: Encoding::Compact, ..self.header.clone() };
        let mut out = serde_json::to_vec(&header).unwrap_or_default();
        out.push(b'\n');
        let mut encoder = Encoder::default();
        for line in &self.lines {
            encoder.line(&mut out, line.t, &line.entry);
        }
        out
    }
}

/// The header line: a known version, valid settings.
fn header(first: &[u8]) -> Result<Header, RecordingError> {
    let bad = |reason: String| RecordingError::BadHeader { line: 1, reason };
    let value = serde_json::from_slice::<serde_json::Value>(first).map_err(|e| bad(e.to_string()))?;
    let found = value.get("wslink_recording").and_then(|v| v.as_u64());
    if let Some(v) = found.filter(|&v| v == 0 || v > u64::from(FORMAT_VERSION)) {
        return Err(RecordingError::FutureVersion { line: 1, found: u32::try_from(v).unwrap_or(u32::MAX) });
    }
    let header: Header = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    if let Some(settings) = &header.settings {
        for (name, (_, nanos)) in settings.spans() {
            if nanos >= 1_000_000_000 {
                return Err(bad(format!("settings: {name} has {nanos} nanoseconds, not under a second")));
            }
        }
    }
    Ok(header)
}

/// The lines after the header, as JSON Lines (numbered from 2).
fn json_lines(body: &[u8]) -> Result<Vec<Line>, RecordingError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = 2 + body[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        RecordingError::BadLine { line, reason: "not UTF-8".into() }
    })?;
    let mut rows = text.split('\n').enumerate().peekable();
    let mut lines = Vec::new();
    while let Some((i, row)) = rows.next() {
        let number = i + 2;
        let last = rows.peek().is_none();
        if row.trim().is_empty() {
            continue;
        }
        let line: Line = match serde_json::from_str(row) {
            Ok(line) => line,
            Err(_) if last => return Err(RecordingError::Truncated { line: number }),
            Err(e) => return Err(RecordingError::BadLine { line: number, reason: e.to_string() }),
        };
        line.entry.check().map_err(|reason| RecordingError::BadLine { line: number, reason })?;
        lines.push(line);
    }
    Ok(lines)
}
