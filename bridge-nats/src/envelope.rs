//! What goes on a subject: the exchange's message with the bridge's
//! headers, and the markers that stand where messages are missing.
//!
//! An [`Outgoing`] keeps its facts as plain fields and writes its headers
//! when it is handed to NATS ([`Outgoing::headers`]): nothing is built
//! twice, nothing is copied to be kept for a resend, and the connection id
//! is shared by every message of the connection.
//!
//! Headers of every message:
//!
//! | header | value |
//! | --- | --- |
//! | `Nats-Msg-Id` | the stable id (`msgid`): JetStream keeps one message per id |
//! | `Wslink-Kind` | `message` or `gap` (a marker) |
//! | `Wslink-Received` | when the bridge read it, Unix time in milliseconds |
//! | `Wslink-Connection` | `instance/endpoint/member.connection/run`: which replica, pool member and connection read it, and in which run of the process (`run` is the start time in Unix ms and a random number, both hex) |
//! | `Wslink-Seq` | this bridge process's number on the subject, from 1 (two replicas number independently) |
//! | `Wslink-Exchange-Seq` | the exchange's sequence number, when `sequence_pointer` finds one (on a `rejected` marker: the rejected message's) |
//! | `Wslink-Epoch` | the channel's numbering epoch, when above 0 (see `sequence`) |
//!
//! A marker has `Wslink-Kind: gap` and `Wslink-Gap-Reason`:
//!
//! - `sequence`: the exchange numbers `Wslink-Gap-From..=Wslink-Gap-To` are
//!   in no replica's copy in the stream: checked against the stream after
//!   `gap_settle_ms`. Its id is made of the channel, epoch and range, so
//!   replicas that find the same hole publish one marker.
//! - `reset`: the exchange restarted the channel's numbering; messages after
//!   it carry `Wslink-Epoch` (the new epoch). `Wslink-Reset-Last-Epoch` and
//!   `Wslink-Reset-Last-Seq` are the old numbering's last number known,
//!   `Wslink-Reset-First-Seq` the first of the new one the marking replica
//!   read. Its id is made of the channel and the new epoch.
//! - `reconnect`: a connection was re-made and the exchange has no sequence
//!   to tell what was missed.
//! - `restart`: the first connection of a run of the process, without an
//!   exchange sequence: messages sent while no process of this replica ran
//!   may be missing.
//! - `rejected`: a message that no server could store (too large) was
//!   dropped; `Wslink-Rejected-Id` is its id (see `publisher`).
//!
//! Its payload is the same facts as JSON. `reconnect` and `restart` markers
//! are one replica's own (their id holds the connection id, run included,
//! so two runs or two replicas never share one): with replicas, a consumer
//! should read them as "this replica may have missed messages", which the
//! other replica may have published.

use std::sync::Arc;

use async_nats::{HeaderMap, HeaderName, Subject};
use bytes::Bytes;
use tokio::time::Instant;

use crate::msgid;
use crate::sequence::Numbering;

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
    /// The channel's numbering epoch (absent: 0).
    pub const EPOCH: &str = "Wslink-Epoch";
    /// Why a marker was sent.
    pub const GAP_REASON: &str = "Wslink-Gap-Reason";
    /// First missing exchange sequence number.
    pub const GAP_FROM: &str = "Wslink-Gap-From";
    /// Last missing exchange sequence number.
    pub const GAP_TO: &str = "Wslink-Gap-To";
    /// A reset's old epoch.
    pub const RESET_LAST_EPOCH: &str = "Wslink-Reset-Last-Epoch";
    /// The old numbering's last number known.
    pub const RESET_LAST_SEQ: &str = "Wslink-Reset-Last-Seq";
    /// The new numbering's first number the marking replica read.
    pub const RESET_FIRST_SEQ: &str = "Wslink-Reset-First-Seq";
    /// The id of the message a `rejected` marker replaces.
    pub const REJECTED_ID: &str = "Wslink-Rejected-Id";
}

/// Why a connection marker was published (channels without an exchange sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// A connection was re-made, with no exchange sequence to tell what was missed.
    Reconnect,
    /// The first connection of this run of the process, with no exchange sequence.
    Restart,
}

/// What a marker stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gap {
    /// Exchange numbers `from..=to` are missing from the stream.
    Sequence {
        /// The first missing number.
        from: u64,
        /// The last missing number.
        to: u64,
    },
    /// The exchange restarted the numbering; the marker's epoch is the new one.
    Reset {
        /// The old numbering.
        previous: Numbering,
        /// The new numbering's first number read.
        first: u64,
    },
    /// A connection was re-made or a run started, without an exchange sequence.
    Connection(GapReason),
    /// A message no server could store, by its id.
    Rejected {
        /// The dropped message's id.
        id: String,
        /// Its size in bytes.
        bytes: usize,
        /// Why it was refused.
        error: String,
    },
}

/// A message or a marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The exchange's message.
    Message,
    /// A marker.
    Gap(Gap),
}

/// One message on its way to JetStream.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The subject.
    pub subject: Subject,
    /// `Nats-Msg-Id`.
    pub id: String,
    /// A message or a marker.
    pub kind: Kind,
    /// `Wslink-Connection`, shared by the connection's messages.
    pub connection: Arc<str>,
    /// `Wslink-Seq`.
    pub seq: u64,
    /// `Wslink-Exchange-Seq`.
    pub exchange_seq: Option<u64>,
    /// `Wslink-Epoch` (written when above 0).
    pub epoch: u32,
    /// `Wslink-Received`, Unix ms.
    pub received_ms: u64,
    /// The payload, as the exchange sent it (or the marker's JSON).
    pub payload: Bytes,
    /// When the bridge read it (for the lag).
    pub received: Instant,
}

mod names {
    use async_nats::HeaderName;

    use super::header as h;

    pub(super) const MSG_ID: HeaderName = HeaderName::from_static(h::MSG_ID);
    pub(super) const KIND: HeaderName = HeaderName::from_static(h::KIND);
    pub(super) const RECEIVED: HeaderName = HeaderName::from_static(h::RECEIVED);
    pub(super) const CONNECTION: HeaderName = HeaderName::from_static(h::CONNECTION);
    pub(super) const SEQ: HeaderName = HeaderName::from_static(h::SEQ);
    pub(super) const EXCHANGE_SEQ: HeaderName = HeaderName::from_static(h::EXCHANGE_SEQ);
    pub(super) const EPOCH: HeaderName = HeaderName::from_static(h::EPOCH);
    pub(super) const GAP_REASON: HeaderName = HeaderName::from_static(h::GAP_REASON);
    pub(super) const GAP_FROM: HeaderName = HeaderName::from_static(h::GAP_FROM);
    pub(super) const GAP_TO: HeaderName = HeaderName::from_static(h::GAP_TO);
    pub(super) const RESET_LAST_EPOCH: HeaderName = HeaderName::from_static(h::RESET_LAST_EPOCH);
    pub(super) const RESET_LAST_SEQ: HeaderName = HeaderName::from_static(h::RESET_LAST_SEQ);
    pub(super) const RESET_FIRST_SEQ: HeaderName = HeaderName::from_static(h::RESET_FIRST_SEQ);
    pub(super) const REJECTED_ID: HeaderName = HeaderName::from_static(h::REJECTED_ID);
}

impl Outgoing {
    /// Whether it is a marker (any reason).
    pub fn is_gap(&self) -> bool {
        matches!(self.kind, Kind::Gap(_))
    }

    /// Its headers, written now (once per publish attempt; see the module).
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        let mut put = |name: HeaderName, value: String| h.insert(name, value);
        put(names::MSG_ID, self.id.clone());
        put(names::KIND, if self.is_gap() { "gap" } else { "message" }.to_owned());
        put(names::RECEIVED, self.received_ms.to_string());
        put(names::CONNECTION, self.connection.as_ref().to_owned());
        put(names::SEQ, self.seq.to_string());
        if let Some(s) = self.exchange_seq {
            put(names::EXCHANGE_SEQ, s.to_string());
        }
        if self.epoch > 0 {
            put(names::EPOCH, self.epoch.to_string());
        }
        if let Kind::Gap(gap) = &self.kind {
            put(names::GAP_REASON, reason(gap).to_owned());
            match gap {
                Gap::Sequence { from, to } => {
                    put(names::GAP_FROM, from.to_string());
                    put(names::GAP_TO, to.to_string());
                }
                Gap::Reset { previous, first } => {
                    put(names::RESET_LAST_EPOCH, previous.epoch.to_string());
                    put(names::RESET_LAST_SEQ, previous.last.to_string());
                    put(names::RESET_FIRST_SEQ, first.to_string());
                }
                Gap::Rejected { id, .. } => put(names::REJECTED_ID, id.clone()),
                Gap::Connection(_) => {}
            }
        }
        h
    }

    /// A `rejected` marker in place of this message (which no server could
    /// store, for `error`), on `subject`: the same connection, `Wslink-Seq`,
    /// exchange number and epoch, the original's id in `Wslink-Rejected-Id`.
    pub fn rejected(&self, subject: Subject, error: &str) -> Outgoing {
        let gap = Gap::Rejected { id: self.id.clone(), bytes: self.payload.len(), error: error.to_owned() };
        Outgoing {
            subject,
            id: msgid::bounded(format!("rej:{}", self.id)),
            payload: payload(&gap, self.epoch, &self.connection),
            kind: Kind::Gap(gap),
            connection: self.connection.clone(),
            seq: self.seq,
            exchange_seq: self.exchange_seq,
            epoch: self.epoch,
            received_ms: self.received_ms,
            received: self.received,
        }
    }
}

fn reason(gap: &Gap) -> &'static str {
    match gap {
        Gap::Sequence { .. } => "sequence",
        Gap::Reset { .. } => "reset",
        Gap::Connection(GapReason::Reconnect) => "reconnect",
        Gap::Connection(GapReason::Restart) => "restart",
        Gap::Rejected { .. } => "rejected",
    }
}

/// Where a marker goes and who sends it; [`marker`] adds what it says.
#[derive(Debug, Clone)]
pub struct Place<'a> {
    /// The channel's subject.
    pub subject: Subject,
    /// The endpoint's name.
    pub endpoint: &'a str,
    /// The channel (`""` when messages had none).
    pub channel: &'a str,
    /// The connection id.
    pub connection: Arc<str>,
    /// `Wslink-Seq`.
    pub seq: u64,
    /// `Wslink-Received`, Unix ms.
    pub received_ms: u64,
    /// For the lag.
    pub at: Instant,
}

/// The marker for `gap` at `place`, in numbering `epoch` (a reset's: the new one).
pub fn marker(place: Place<'_>, gap: Gap, epoch: u32) -> Outgoing {
    let Place { subject, endpoint, channel, connection, seq, received_ms, at } = place;
    let ep = if epoch > 0 { format!("{endpoint}~{epoch}") } else { endpoint.to_owned() };
    let id = match &gap {
        Gap::Sequence { from, to } => format!("gap:{ep}:{channel}:{from}-{to}"),
        Gap::Reset { .. } => format!("reset:{ep}:{channel}"),
        Gap::Connection(GapReason::Reconnect) => format!("gapr:{connection}:{subject}"),
        Gap::Connection(GapReason::Restart) => format!("gaps:{connection}:{subject}"),
        Gap::Rejected { id, .. } => format!("rej:{id}"),
    };
    Outgoing {
        payload: payload(&gap, epoch, &connection),
        id: msgid::bounded(id),
        kind: Kind::Gap(gap),
        subject,
        connection,
        seq,
        exchange_seq: None,
        epoch,
        received_ms,
        received: at,
    }
}

/// A marker's payload: its facts as JSON.
fn payload(gap: &Gap, epoch: u32, connection: &str) -> Bytes {
    let mut v = serde_json::json!({ "gap": reason(gap), "connection": connection });
    let facts = match gap {
        Gap::Sequence { from, to } => serde_json::json!({ "from": from, "to": to, "epoch": epoch }),
        Gap::Reset { previous, first } => serde_json::json!({
            "epoch": epoch, "last_epoch": previous.epoch, "last_seq": previous.last, "first_seq": first
        }),
        Gap::Rejected { id, bytes, error } => serde_json::json!({ "id": id, "bytes": bytes, "error": error }),
        Gap::Connection(_) => serde_json::json!({}),
    };
    if let (Some(v), serde_json::Value::Object(facts)) = (v.as_object_mut(), facts) {
        v.extend(facts);
    }
    Bytes::from(v.to_string())
}

#[cfg(test)]
mod tests;
