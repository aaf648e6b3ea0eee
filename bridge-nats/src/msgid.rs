//! What the bridge reads from each message: its channel, a stable id, and
//! the exchange's sequence number, each found by a JSON pointer.
//!
//! **What "stable" can honestly mean.** The id becomes JetStream's
//! `Nats-Msg-Id`, and JetStream keeps one message per id within the stream's
//! duplicate window. Two replicas must therefore give the same exchange
//! message the same id, without talking to each other. Only the message
//! itself is common to both, so the id is a function of the endpoint's name,
//! the channel and the message:
//!
//! - with `id_pointer` set, it is the value found there (a sequence number,
//!   a change id, a trade id) with the endpoint and channel: exact, as long
//!   as the exchange never reuses an id on a channel within the window;
//! - without it (or when the value is missing), it is a 128-bit hash (two
//!   FNV-1a passes) of endpoint, channel and the payload's bytes. Two
//!   messages with identical bytes on one channel within the window (a
//!   heartbeat-like tick that repeats exactly) are then taken for one, and
//!   the second is dropped as a duplicate; and an exchange that sends the
//!   same event to two connections with different bytes (a per-connection
//!   field, a timestamp of sending) defeats de-duplication. Configure an
//!   `id_pointer` wherever the exchange offers one.
//!
//! Ids longer than [`MAX_ID`] bytes are replaced by the hash of the id, so a
//! hostile value cannot make headers grow without bound.

use bytes::Bytes;
use serde_json::Value;

use crate::shard::fnv1a;

/// The longest id sent as it is.
pub const MAX_ID: usize = 160;

/// Where to look in a message.
#[derive(Debug, Clone, Default)]
pub struct Pointers {
    /// The channel (required).
    pub channel: String,
    /// The exchange's id of the message; empty: hash the payload.
    pub id: String,
    /// The exchange's per-channel sequence number; empty: none.
    pub sequence: String,
}

/// What one message carries, as the bridge sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    /// The channel, if found (a string, or a number written out).
    pub channel: Option<String>,
    /// The stable id: `Nats-Msg-Id`.
    pub id: String,
    /// The exchange's sequence number, if configured and found.
    pub sequence: Option<u64>,
}

/// Reads channel, id and sequence from `payload` (text or binary; a payload
/// that is not JSON has no channel and a hashed id). Never panics.
pub fn identify(endpoint: &str, payload: &Bytes, pointers: &Pointers) -> Identified {
    let json: Option<Value> = serde_json::from_slice(payload).ok();
    let lookup = |pointer: &str| -> Option<&Value> {
        if pointer.is_empty() {
            return None;
        }
        json.as_ref()?.pointer(pointer)
    };
    let channel = lookup(&pointers.channel).and_then(scalar);
    let sequence = lookup(&pointers.sequence).and_then(Value::as_u64);
    let chan = channel.as_deref().unwrap_or("");
    let id = match lookup(&pointers.id).and_then(scalar) {
        Some(value) => bounded(format!("{endpoint}:{chan}:{value}")),
        None => format!("h:{}", hash128(&[endpoint.as_bytes(), &[0], chan.as_bytes(), &[0], payload])),
    };
    Identified { channel, id, sequence }
}

/// The id of the gap message for the numbers missing before sequence number
/// `next` of a channel: named by the first number after the gap, so every
/// replica that sees the jump gives it the same id, even replicas that read
/// up to different numbers before it, and JetStream keeps one.
pub fn gap_id(endpoint: &str, channel: &str, next: u64) -> String {
    bounded(format!("gap:{endpoint}:{channel}:<{next}"))
}

/// A channel or id value written out. A number is used only when it is
/// exact: an integer that fits in 64 bits. serde_json reads any other
/// number (larger integers, fractions, exponents) as an `f64`, which can
/// print two different numbers alike; such a value is `None`, and the id
/// falls back to the hash of the payload.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Some(u.to_string()),
            (None, Some(i)) => Some(i.to_string()),
            (None, None) => None,
        },
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `id` as it is when at most [`MAX_ID`] bytes long, else its hash.
pub(crate) fn bounded(id: String) -> String {
    if id.len() <= MAX_ID {
        id
    } else {
        format!("h:{}", hash128(&[id.as_bytes()]))
    }
}

/// Two FNV-1a passes with different leading bytes, as 32 hex digits.
pub(crate) fn hash128(parts: &[&[u8]]) -> String {
    format!("{:032x}", hash_u128(parts))
}

/// Two FNV-1a passes with different leading bytes, as one number.
pub(crate) fn hash_u128(parts: &[&[u8]]) -> u128 {
    let mut a = vec![b"\x01".as_slice()];
    let mut b = vec![b"\x02".as_slice()];
    a.extend_from_slice(parts);
    b.extend_from_slice(parts);
    (u128::from(fnv1a(&a)) << 64) | u128::from(fnv1a(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ptrs(id: &str, seq: &str) -> Pointers {
        Pointers { channel: "/params/channel".into(), id: id.into(), sequence: seq.into() }
    }

    fn msg(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn an_exchange_id_gives_the_same_id_whatever_else_differs() {
        let a = msg(r#"{"params":{"channel":"t.BTC","data":{"seq":7,"sent":"conn-1"}}}"#);
        let b = msg(r#"{"params":{"data":{"sent":"conn-2","seq":7},"channel":"t.BTC"}}"#);
        let p = ptrs("/params/data/seq", "/params/data/seq");
        let (ia, ib) = (identify("ex", &a, &p), identify("ex", &b, &p));
        assert_eq!(ia, ib);
        assert_eq!(ia.id, "ex:t.BTC:7");
        assert_eq!(ia.sequence, Some(7));
        assert_eq!(ia.channel.as_deref(), Some("t.BTC"));
    }

    #[test]
    fn without_an_exchange_id_the_bytes_decide() {
        let p = ptrs("", "");
        let a = identify("ex", &msg(r#"{"params":{"channel":"c","v":1}}"#), &p);
        let b = identify("ex", &msg(r#"{"params":{"channel":"c","v":1}}"#), &p);
        let c = identify("ex", &msg(r#"{"params":{"channel":"c","v":2}}"#), &p);
        let d = identify("other", &msg(r#"{"params":{"channel":"c","v":1}}"#), &p);
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
        assert_ne!(a.id, d.id);
        assert!(a.id.starts_with("h:") && a.id.len() == 34);
    }

    #[test]
    fn garbage_and_hostile_values_are_handled() {
        let p = ptrs("/id", "/seq");
        let binary = identify("ex", &Bytes::from_static(&[0xff, 0, 1]), &p);
        assert_eq!((binary.channel, binary.sequence), (None, None));
        let long = format!(r#"{{"params":{{"channel":"c"}},"id":"{}","seq":-3}}"#, "x".repeat(10_000));
        let i = identify("ex", &msg(&long), &p);
        assert!(i.id.len() <= MAX_ID);
        assert_eq!(i.sequence, None);
        let object_id = identify("ex", &msg(r#"{"params":{"channel":{"a":1}},"id":{"b":2}}"#), &p);
        assert_eq!(object_id.channel, None);
        assert!(object_id.id.starts_with("h:"));
    }

    #[test]
    fn gap_ids_name_the_number_after_the_gap() {
        assert_eq!(gap_id("ex", "c", 10), "gap:ex:c:<10");
        assert_ne!(gap_id("ex", "c", 10), gap_id("ex", "c", 11));
    }

    #[test]
    fn numeric_ids_that_differ_never_share_an_id() {
        let p = ptrs("/id", "");
        let id = |v: &str| identify("ex", &msg(&format!(r#"{{"params":{{"channel":"c"}},"id":{v}}}"#)), &p).id;
        // Above 2^53, differing in the last digit: within u64, exact.
        assert_ne!(id("9007199254740993"), id("9007199254740992"));
        assert_eq!(id("9007199254740993"), "ex:c:9007199254740993");
        assert_eq!(id("-9007199254740993"), "ex:c:-9007199254740993");
        // Beyond u64 or not integers: read as f64 by serde_json, so the payload's hash decides.
        let (a, b) = (id("123456789012345678901"), id("123456789012345678902"));
        assert_ne!(a, b);
        assert!(a.starts_with("h:"), "{a}");
        assert_ne!(id("0.10000000000000000001"), id("0.10000000000000000002"));
        // The same bytes still give the same id, so replicas agree.
        assert_eq!(id("123456789012345678901"), a);
    }
}
