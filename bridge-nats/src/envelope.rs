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
//! | `Wslink-Connection` | `instance/endpoint/member.connection`: which replica, pool member and connection read it |
//! | `Wslink-Seq` | this bridge process's sequence number on the subject, from 1 (two replicas number independently) |
//! | `Wslink-Exchange-Seq` | the exchange's sequence number, when `sequence_pointer` finds one |
//!
//! A gap message has `Wslink-Kind: gap`, `Wslink-Gap-Reason` (`sequence`:
//! the exchange's sequence jumped, `reconnect`: the connection was re-made
//! and the exchange has no sequence to tell what was missed), and for
//! `sequence` `Wslink-Gap-From` and `Wslink-Gap-To` (the missing numbers,
//! inclusive). Its payload is the same facts as JSON. A `sequence` gap has
//! the same id in every replica that sees the same jump; a `reconnect` gap is
//! one replica's own, so with replicas a consumer should read it as "this
//! replica may have missed messages", which the other replica may have
//! published.
//!
//! The [`Tracker`] keeps, per channel, the bridge's sequence number and the
//! exchange's last one. It tracks at most [`MAX_TRACKED`] channels, so an
//! exchange that invents channel names cannot make it grow without bound;
//! messages of channels past that get `Wslink-Seq: 0` and no gap detection.

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
    channels: HashMap<String, Channel>,
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
                        msgid::gap_id(m.endpoint, channel, from, to),
                        m.connection,
                        state.seq,
                        Some((from, to)),
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

    /// A `reconnect` gap message for `subject`, read by connection `connection`.
    pub fn reconnect_gap(&mut self, subject: &str, connection: &str, at: Instant) -> Outgoing {
        let seq = self.state(subject).map_or(0, |s| {
            s.seq += 1;
            s.seq
        });
        gap(subject, format!("gapr:{connection}:{subject}"), connection, seq, None, at)
    }

    fn state(&mut self, subject: &str) -> Option<&mut Channel> {
        if !self.channels.contains_key(subject) && self.channels.len() >= MAX_TRACKED {
            return None;
        }
        Some(self.channels.entry(subject.to_owned()).or_default())
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

fn gap(subject: &str, id: String, connection: &str, seq: u64, range: Option<(u64, u64)>, at: Instant) -> Outgoing {
    let mut headers = common(&id, "gap", connection, seq);
    let payload = match range {
        Some((from, to)) => {
            headers.insert(header::GAP_REASON, "sequence");
            headers.insert(header::GAP_FROM, from.to_string());
            headers.insert(header::GAP_TO, to.to_string());
            format!(r#"{{"gap":"sequence","from":{from},"to":{to},"connection":{}}}"#, json_str(connection))
        }
        None => {
            headers.insert(header::GAP_REASON, "reconnect");
            format!(r#"{{"gap":"reconnect","connection":{}}}"#, json_str(connection))
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
        assert_eq!(h(&out[0], header::MSG_ID), "gap:e:c:3-5");
        assert_eq!(h(&out[1], header::KIND), "message");
        assert_eq!(h(&out[1], header::SEQ), "4");
        assert_eq!(h(&out[1], header::EXCHANGE_SEQ), "6");
        // A replay (lower or equal numbers) is no gap.
        assert_eq!(t.wrap(received(Some(4))).len(), 1);
        assert_eq!(t.wrap(received(Some(7))).len(), 1);
        assert_eq!(t.wrap(received(None)).len(), 1);
    }

    #[test]
    fn reconnect_gaps_are_numbered_on_the_subject() {
        let mut t = Tracker::default();
        t.wrap(received(None));
        let g = t.reconnect_gap("p.e.c", "a/e/0.2", Instant::now());
        assert_eq!(h(&g, header::SEQ), "2");
        assert_eq!(h(&g, header::GAP_REASON), "reconnect");
        assert!(std::str::from_utf8(&g.payload).unwrap().contains("\"a/e/0.2\""));
    }
}
