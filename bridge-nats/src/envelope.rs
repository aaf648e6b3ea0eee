//! What goes on a subject: the exchange's message with the bridge's headers,
//! and gap messages.
//!
//! Headers of every message:
//!
//! | header | value |
//! | --- | --- |
//! | `Nats-Msg-Id` | the stable id (`msgid`): JetStream keeps one message per id |
//! | `Wslink-Kind` | `message` or `gap` |
//! | `Wslink-Received` | when the bridge read it, Unix time in milliseconds |
//! | `Wslink-Connection` | `instance/endpoint/member.connection/run`: which replica, pool member and connection read it, and in which run of the process (`run` is the start time in Unix ms and a random number, both hex) |
//! | `Wslink-Seq` | this bridge process's sequence number on the subject, from 1 (two replicas number independently) |
//! | `Wslink-Exchange-Seq` | the exchange's sequence number, when `sequence_pointer` finds one |
//!
//! A gap message has `Wslink-Kind: gap` and `Wslink-Gap-Reason`:
//!
//! - `sequence`: the exchange's sequence jumped; `Wslink-Gap-From` and
//!   `Wslink-Gap-To` are the missing numbers, inclusive. Its id names the
//!   channel and the first number after the gap, so every replica that sees
//!   the jump gives it the same id (even replicas that had read up to
//!   different numbers before it) and JetStream keeps one.
//! - `reconnect`: a connection was re-made and the exchange has no sequence
//!   to tell what was missed.
//! - `restart`: the first connection of a run of the process, without an
//!   exchange sequence: messages sent while no process of this replica ran
//!   (its downtime, or before it first started) may be missing. With a
//!   sequence, a consumer can tell the same from `Wslink-Exchange-Seq`.
//! - `rejected`: a message that no server could store (too large) was
//!   dropped; `Wslink-Rejected-Id` is its id (see `publisher`).
//!
//! Its payload is the same facts as JSON. `reconnect` and `restart` gaps are
//! one replica's own (their id holds the connection id, run included, so
//! two runs or two replicas never share one): with replicas, a consumer
//! should read them as "this replica may have missed messages", which the
//! other replica may have published.
//!
//! The [`Tracker`] keeps, per channel, the bridge's sequence number and the
//! exchange's last one, keyed by a 128-bit hash of the subject (16 bytes,
//! whatever the subject's length). It tracks at most [`MAX_TRACKED`]
//! channels, so an exchange that invents channel names cannot make it grow
//! without bound; messages of channels past that get `Wslink-Seq: 0` and no
//! gap detection.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use bytes::Bytes;
use tokio::time::Instant;

use crate::msgid;
use crate::publisher::Outgoing;

/// Header names.
pub mod header {
    /// JetStream's de-duplication id.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// `message` or `gap`.
    pub const KIND: &str = "Wslink-Kind";
    /// Receive time, Unix milliseconds.
    pub const RECEIVED: &str = "Wslink-Received";
    /// The connection that read it.
    pub const CONNECTION: &str = "Wslink-Connection";
    /// The bridge's sequence number on the subject.
    pub const SEQ: &str = "Wslink-Seq";
    /// The exchange's sequence number.
    pub const EXCHANGE_SEQ: &str = "Wslink-Exchange-Seq";
    /// Why a gap message was sent.
    pub const GAP_REASON: &str = "Wslink-Gap-Reason";
    /// First missing exchange sequence number.
    pub const GAP_FROM: &str = "Wslink-Gap-From";
    /// Last missing exchange sequence number.
    pub const GAP_TO: &str = "Wslink-Gap-To";
    /// The id of the message a `rejected` gap replaces.
    pub const REJECTED_ID: &str = "Wslink-Rejected-Id";
}

/// Why a gap message was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// A connection was re-made, with no exchange sequence to tell what was missed.
    Reconnect,
    /// The first connection of this run of the process, with no exchange sequence.
    Restart,
}

impl GapReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Reconnect => "reconnect",
            Self::Restart => "restart",
        }
    }
}

/// Whether `m` is a gap message (any reason).
pub fn is_gap(m: &Outgoing) -> bool {
    m.headers.get(header::KIND).is_some_and(|k| k.as_str() == "gap")
}

/// Channels tracked at most.
pub const MAX_TRACKED: usize = 1 << 17;

#[derive(Debug, Default, Clone, Copy)]
struct Channel {
    seq: u64,
    exchange_seq: Option<u64>,
}

/// Per-channel numbering and gap detection for one bridge process.
#[derive(Debug, Default)]
pub struct Tracker {
    channels: HashMap<u128, Channel>,
}

/// A message read from an endpoint, ready to be wrapped.
#[derive(Debug)]
pub struct Received<'a> {
    /// The subject it goes to.
    pub subject: String,
    /// The endpoint's name.
    pub endpoint: &'a str,
    /// The connection id (`Wslink-Connection`).
    pub connection: &'a str,
    /// What `msgid::identify` found.
    pub ident: msgid::Identified,
    /// The payload.
    pub payload: Bytes,
    /// When it was read.
    pub at: Instant,
}

impl Tracker {
    /// The messages to publish for `m`: a gap message first when the
    /// exchange's sequence jumped, then `m` itself.
    pub fn wrap(&mut self, m: Received<'_>) -> Vec<Outgoing> {
        let mut out = Vec::with_capacity(1);
        let state = self.state(&m.subject);
        let mut seq = 0;
        if let Some(state) = state {
            if let (Some(last), Some(now)) = (state.exchange_seq, m.ident.sequence) {
                if now > last.saturating_add(1) {
                    state.seq += 1;
                    let (from, to) = (last + 1, now - 1);
                    let channel = m.ident.channel.as_deref().unwrap_or("");
                    out.push(gap(
                        &m.subject,
                        msgid::gap_id(m.endpoint, channel, now),
                        m.connection,
                        state.seq,
                        Ok((from, to)),
                        m.at,
                    ));
                }
            }
            if let Some(now) = m.ident.sequence {
                state.exchange_seq = Some(state.exchange_seq.map_or(now, |last| last.max(now)));
            }
            state.seq += 1;
            seq = state.seq;
        }
        let mut headers = common(&m.ident.id, "message", m.connection, seq);
        if let Some(s) = m.ident.sequence {
            headers.insert(header::EXCHANGE_SEQ, s.to_string());
        }
        out.push(Outgoing { subject: m.subject, headers, payload: m.payload, received: m.at });
        out
    }

    /// A `reconnect` or `restart` gap message for `subject`, read by
    /// connection `connection` (whose id names the run, so the gap's id is
    /// never reused by another run or replica).
    pub fn connection_gap(&mut self, subject: &str, connection: &str, reason: GapReason, at: Instant) -> Outgoing {
        let seq = self.state(subject).map_or(0, |s| {
            s.seq += 1;
            s.seq
        });
        let tag = match reason {
            GapReason::Reconnect => "gapr",
            GapReason::Restart => "gaps",
        };
        let id = msgid::bounded(format!("{tag}:{connection}:{subject}"));
        gap(subject, id, connection, seq, Err(reason), at)
    }

    /// Channels tracked now.
    pub fn tracked(&self) -> usize {
        self.channels.len()
    }

    fn state(&mut self, subject: &str) -> Option<&mut Channel> {
        let key = msgid::hash_u128(&[subject.as_bytes()]);
        if !self.channels.contains_key(&key) && self.channels.len() >= MAX_TRACKED {
            return None;
        }
        Some(self.channels.entry(key).or_default())
    }
}

fn common(id: &str, kind: &str, connection: &str, seq: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::MSG_ID, id);
    h.insert(header::KIND, kind);
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    h.insert(header::RECEIVED, ms.to_string());
    h.insert(header::CONNECTION, connection);
    h.insert(header::SEQ, seq.to_string());
    h
}

/// A `rejected` gap message on `subject`, in place of `original` (which no
/// server could store, for `error`): same connection and `Wslink-Seq`,
/// the original's id in `Wslink-Rejected-Id`.
pub fn rejected(subject: &str, original: &Outgoing, error: &str) -> Outgoing {
    let get = |name: &str| original.headers.get(name).map(|v| v.as_str().to_owned()).unwrap_or_default();
    let (id, connection) = (get(header::MSG_ID), get(header::CONNECTION));
    let seq = get(header::SEQ).parse().unwrap_or(0);
    let mut headers = common(&msgid::bounded(format!("rej:{id}")), "gap", &connection, seq);
    headers.insert(header::GAP_REASON, "rejected");
    headers.insert(header::REJECTED_ID, id.as_str());
    let payload = format!(
        r#"{{"gap":"rejected","id":{},"bytes":{},"error":{},"connection":{}}}"#,
        json_str(&id),
        original.payload.len(),
        json_str(error),
        json_str(&connection)
    );
    Outgoing { subject: subject.to_owned(), headers, payload: Bytes::from(payload), received: original.received }
}

/// A gap message: `Ok(range)` for a `sequence` gap, `Err(reason)` for the others.
fn gap(
    subject: &str,
    id: String,
    connection: &str,
    seq: u64,
    range: Result<(u64, u64), GapReason>,
    at: Instant,
) -> Outgoing {
    let mut headers = common(&id, "gap", connection, seq);
    let payload = match range {
        Ok((from, to)) => {
            headers.insert(header::GAP_REASON, "sequence");
            headers.insert(header::GAP_FROM, from.to_string());
            headers.insert(header::GAP_TO, to.to_string());
            format!(r#"{{"gap":"sequence","from":{from},"to":{to},"connection":{}}}"#, json_str(connection))
        }
        Err(reason) => {
            headers.insert(header::GAP_REASON, reason.as_str());
            format!(r#"{{"gap":"{}","connection":{}}}"#, reason.as_str(), json_str(connection))
        }
    };
    Outgoing { subject: subject.to_owned(), headers, payload: Bytes::from(payload), received: at }
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(seq: Option<u64>) -> Received<'static> {
        Received {
            subject: "p.e.c".into(),
            endpoint: "e",
            connection: "a/e/0.1",
            ident: msgid::Identified { channel: Some("c".into()), id: format!("e:c:{seq:?}"), sequence: seq },
            payload: Bytes::from_static(b"{}"),
            at: Instant::now(),
        }
    }

    fn h(o: &Outgoing, name: &str) -> String {
        o.headers.get(name).map(|v| v.as_str().to_owned()).unwrap_or_default()
    }

    #[test]
    fn a_jump_in_the_exchange_sequence_becomes_a_gap_message() {
        let mut t = Tracker::default();
        assert_eq!(t.wrap(received(Some(1))).len(), 1);
        assert_eq!(t.wrap(received(Some(2))).len(), 1);
        let out = t.wrap(received(Some(6)));
        assert_eq!(out.len(), 2);
        assert_eq!(h(&out[0], header::KIND), "gap");
        assert_eq!((h(&out[0], header::GAP_FROM), h(&out[0], header::GAP_TO)), ("3".into(), "5".into()));
        assert_eq!(h(&out[0], header::MSG_ID), "gap:e:c:<6");
        assert_eq!(h(&out[1], header::KIND), "message");
        assert_eq!(h(&out[1], header::SEQ), "4");
        assert_eq!(h(&out[1], header::EXCHANGE_SEQ), "6");
        // A replay (lower or equal numbers) is no gap.
        assert_eq!(t.wrap(received(Some(4))).len(), 1);
        assert_eq!(t.wrap(received(Some(7))).len(), 1);
        assert_eq!(t.wrap(received(None)).len(), 1);
    }

    #[test]
    fn replicas_that_read_up_to_different_numbers_give_one_gap_one_id() {
        // Replica a read up to 100, replica b only up to 98; both next see 151.
        let (mut a, mut b) = (Tracker::default(), Tracker::default());
        a.wrap(received(Some(100)));
        b.wrap(received(Some(98)));
        let (ga, gb) = (a.wrap(received(Some(151))), b.wrap(received(Some(151))));
        assert_eq!(h(&ga[0], header::MSG_ID), h(&gb[0], header::MSG_ID));
        assert_eq!((h(&ga[0], header::GAP_FROM), h(&gb[0], header::GAP_FROM)), ("101".into(), "99".into()));
    }

    #[test]
    fn reconnect_gaps_are_numbered_on_the_subject() {
        let mut t = Tracker::default();
        t.wrap(received(None));
        let g = t.connection_gap("p.e.c", "a/e/0.2/r1", GapReason::Reconnect, Instant::now());
        assert_eq!(h(&g, header::SEQ), "2");
        assert_eq!(h(&g, header::GAP_REASON), "reconnect");
        assert!(std::str::from_utf8(&g.payload).unwrap().contains("\"a/e/0.2/r1\""));
        let r = t.connection_gap("p.e.c", "a/e/0.1/r2", GapReason::Restart, Instant::now());
        assert_eq!(h(&r, header::GAP_REASON), "restart");
        assert_ne!(h(&r, header::MSG_ID), h(&g, header::MSG_ID));
    }

    #[test]
    fn gap_ids_of_two_runs_differ_and_stay_bounded() {
        let mut t = Tracker::default();
        let long = format!("p.e.{}", "x".repeat(2000));
        let one = t.connection_gap(&long, "bridge/e/0.2/18c0-aa", GapReason::Reconnect, Instant::now());
        let two = t.connection_gap(&long, "bridge/e/0.2/18c1-bb", GapReason::Reconnect, Instant::now());
        assert_ne!(h(&one, header::MSG_ID), h(&two, header::MSG_ID));
        assert!(h(&one, header::MSG_ID).len() <= msgid::MAX_ID);
    }

    #[test]
    fn the_tracker_is_bounded_in_count_and_key_size() {
        let mut t = Tracker::default();
        let long = "y".repeat(100_000);
        for i in 0..(MAX_TRACKED + 10) {
            let subject = if i == 0 { long.clone() } else { format!("p.e.c{i}") };
            let tracked = t.state(&subject).is_some();
            assert_eq!(tracked, i < MAX_TRACKED);
        }
        assert_eq!(t.tracked(), MAX_TRACKED);
        // Keys are 16-byte hashes, whatever the subject's length.
        assert_eq!(std::mem::size_of::<u128>(), 16);
    }

    #[test]
    fn a_rejected_message_leaves_a_marker_with_its_id() {
        let mut t = Tracker::default();
        let m = t.wrap(received(Some(1))).remove(0);
        let r = rejected("p.e.c", &m, "max payload size exceeded");
        assert!(is_gap(&r) && !is_gap(&m));
        assert_eq!(h(&r, header::GAP_REASON), "rejected");
        assert_eq!(h(&r, header::REJECTED_ID), "e:c:Some(1)");
        assert_eq!(h(&r, header::MSG_ID), "rej:e:c:Some(1)");
        assert_eq!(h(&r, header::SEQ), "1");
        assert!(r.payload.len() < 300);
    }
}
