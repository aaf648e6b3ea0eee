//! What goes to stdout: one line per message, response or request outcome,
//! plain or as a JSON object.
//!
//! Invariants: stdout carries data lines only (notices, errors and the
//! status line go to stderr), so `wslink URL | jq` works; a JSON line is one
//! complete object with its fields in a fixed order; a binary payload is
//! base64 (RFC 4648, padded), never raw bytes on a terminal. The receive time
//! is the wall clock when the line is formatted, which is when the client
//! handed the message over.

use std::fmt::Display;
use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use data_encoding::BASE64;
use serde::Serialize;
use wslink_core::Message;

use crate::status::{StatusInfo, StatusLine};

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Format {
    /// One JSON object per line.
    pub(crate) json: bool,
    /// Prefix plain lines with the receive time.
    pub(crate) timestamps: bool,
}

/// What a line reports.
#[derive(Debug)]
pub(crate) enum Record<'a> {
    /// A message from the server.
    Message(&'a Message),
    /// The response to a `--request`.
    Response {
        /// The request's method.
        method: &'a str,
        /// The request id the session gave it.
        id: u64,
        /// The response.
        message: &'a Message,
        /// From sending the request to the response.
        rtt: Duration,
        /// Whether the server answered with a JSON-RPC error.
        is_error: bool,
    },
    /// A `--request` that ended without a response.
    RequestFailed {
        /// The request's method.
        method: &'a str,
        /// Why, as the library's sentence.
        error: String,
    },
}

/// The terminal side of a run: data lines to stdout, notices and errors to
/// stderr, and the status line kept out of the way of both.
#[derive(Debug)]
pub(crate) struct Console {
    format: Format,
    status: StatusLine,
    /// Whether stdout is a terminal too: then the status line (on the same
    /// screen) is cleared before each data line.
    stdout_terminal: bool,
    quiet: bool,
}

impl Console {
    /// A console writing lines in `format`; `status` draws only if it was enabled.
    pub(crate) fn new(format: Format, status: StatusLine, stdout_terminal: bool, quiet: bool) -> Self {
        Self { format, status, stdout_terminal, quiet }
    }

    /// The output format.
    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// Writes one data line to stdout, stamped with the time now.
    pub(crate) fn data(&mut self, record: &Record<'_>) -> io::Result<()> {
        let line = line(self.format, record, SystemTime::now());
        if self.stdout_terminal {
            self.status.clear();
        }
        writeln!(io::stdout().lock(), "{line}")
    }

    /// A notice on stderr (`wslink: connected ...`), unless `--quiet`.
    pub(crate) fn notice(&mut self, text: impl Display) {
        if !self.quiet {
            self.status.clear();
            eprintln!("wslink: {text}");
        }
    }

    /// An error on stderr, even with `--quiet`.
    pub(crate) fn error(&mut self, text: impl Display) {
        self.status.clear();
        eprintln!("wslink: error: {text}");
    }

    /// Whether the status line is shown at all.
    pub(crate) fn status_enabled(&self) -> bool {
        self.status.enabled()
    }

    /// Redraws the status line.
    pub(crate) fn status(&mut self, info: &StatusInfo) {
        self.status.draw(info);
    }

    /// Leaves the terminal clean: no status text, stdout flushed.
    pub(crate) fn finish(&mut self) {
        self.status.clear();
        let _ = io::stdout().lock().flush();
    }
}

/// One JSON line; the field order is the order written.
#[derive(Serialize)]
struct JsonLine<'a> {
    time: String,
    unix_ns: u128,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base64: Option<String>,
}

/// Formats `record`, received at `at`, as one line without its newline.
pub(crate) fn line(format: Format, record: &Record<'_>, at: SystemTime) -> String {
    if format.json {
        json_line(record, at)
    } else {
        let body = match record {
            Record::Message(m) | Record::Response { message: m, .. } => plain(m),
            Record::RequestFailed { method, error } => format!("request {method} failed: {error}"),
        };
        if format.timestamps {
            format!("{} {body}", rfc3339(at))
        } else {
            body
        }
    }
}

fn plain(message: &Message) -> String {
    match message {
        Message::Text(t) => t.as_str().to_owned(),
        Message::Binary(b) => format!("[binary {} bytes] {}", b.len(), BASE64.encode(b)),
    }
}

fn json_line(record: &Record<'_>, at: SystemTime) -> String {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut line = JsonLine {
        time: rfc3339(at),
        unix_ns: since_epoch.as_nanos(),
        kind: "text",
        method: None,
        id: None,
        rtt_ms: None,
        error: None,
        text: None,
        base64: None,
    };
    match record {
        Record::Message(m) => {
            line.kind = if matches!(m, Message::Text(_)) { "text" } else { "binary" };
            payload(&mut line, m);
        }
        Record::Response { method, id, message, rtt, is_error } => {
            line.kind = "response";
            line.method = Some(method);
            line.id = Some(*id);
            // Microseconds are what a loopback round trip needs; more digits are noise.
            line.rtt_ms = Some((rtt.as_micros() as f64) / 1000.0);
            line.error = Some(serde_json::Value::Bool(*is_error));
            payload(&mut line, message);
        }
        Record::RequestFailed { method, error } => {
            line.kind = "request_failed";
            line.method = Some(method);
            line.error = Some(serde_json::Value::String(error.clone()));
        }
    }
    // Serialising strings, numbers and bools cannot fail; an empty object
    // would still be a JSON line.
    serde_json::to_string(&line).unwrap_or_else(|_| "{}".to_owned())
}

fn payload<'a>(line: &mut JsonLine<'a>, message: &'a Message) {
    match message {
        Message::Text(t) => line.text = Some(t.as_str()),
        Message::Binary(b) => line.base64 = Some(BASE64.encode(b)),
    }
}

/// `2025-01-02T03:04:05.123456Z`: RFC 3339 in UTC with microseconds (a
/// time before 1970 reads as the epoch: the clock is not to be trusted then).
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_micros()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01, by
/// Howard Hinnant's `civil_from_days` (shifted so March starts the year,
/// which puts the leap day last).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, micros * 1000)
    }

    #[test]
    fn rfc3339_in_utc() {
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(at(951_782_400, 1)), "2000-02-29T00:00:00.000001Z");
        assert_eq!(rfc3339(at(1_735_787_045, 123_456)), "2025-01-02T03:04:05.123456Z");
        assert_eq!(rfc3339(at(4_107_542_399, 999_999)), "2100-02-28T23:59:59.999999Z");
        assert_eq!(rfc3339(at(4_107_542_400, 0)), "2100-03-01T00:00:00.000000Z");
        assert_eq!(rfc3339(UNIX_EPOCH - Duration::from_secs(5)), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn plain_lines_are_the_payload() {
        let plain = Format { json: false, timestamps: false };
        let text = Message::Text("hello".into());
        assert_eq!(line(plain, &Record::Message(&text), at(0, 0)), "hello");
        let binary = Message::Binary(vec![0, 1, 2, 255].into());
        assert_eq!(line(plain, &Record::Message(&binary), at(0, 0)), "[binary 4 bytes] AAEC/w==");
        let stamped = Format { json: false, timestamps: true };
        assert_eq!(line(stamped, &Record::Message(&text), at(1, 5)), "1970-01-01T00:00:01.000005Z hello");
        let failed = Record::RequestFailed { method: "m", error: "the request was not answered in time".into() };
        assert_eq!(line(plain, &failed, at(0, 0)), "request m failed: the request was not answered in time");
    }

    #[test]
    fn json_lines_carry_the_documented_fields_in_order() {
        let json = Format { json: true, timestamps: false };
        let text = Message::Text("say \"hi\"".into());
        assert_eq!(
            line(json, &Record::Message(&text), at(1, 2)),
            r#"{"time":"1970-01-01T00:00:01.000002Z","unix_ns":1000002000,"kind":"text","text":"say \"hi\""}"#
        );
        let binary = Message::Binary(vec![0xfb, 0xff].into());
        assert_eq!(
            line(json, &Record::Message(&binary), at(0, 0)),
            r#"{"time":"1970-01-01T00:00:00.000000Z","unix_ns":0,"kind":"binary","base64":"+/8="}"#
        );
        let answer = Message::Text(r#"{"id":7,"result":1}"#.into());
        let response = Record::Response {
            method: "public/get_time",
            id: 7,
            message: &answer,
            rtt: Duration::from_micros(1234),
            is_error: false,
        };
        assert_eq!(
            line(json, &response, at(0, 0)),
            r#"{"time":"1970-01-01T00:00:00.000000Z","unix_ns":0,"kind":"response","method":"public/get_time","id":7,"rtt_ms":1.234,"error":false,"text":"{\"id\":7,\"result\":1}"}"#
        );
        let failed = Record::RequestFailed { method: "m", error: "gone".into() };
        assert_eq!(
            line(json, &failed, at(0, 0)),
            r#"{"time":"1970-01-01T00:00:00.000000Z","unix_ns":0,"kind":"request_failed","method":"m","error":"gone"}"#
        );
    }
}
