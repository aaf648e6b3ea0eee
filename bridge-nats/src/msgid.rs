//! What the bridge reads from each message: its channel, a stable id, and
//! the exchange's sequence number, each found by a JSON pointer
//! ([`pointer`](mod@crate::pointer): one pass over the message, no tree).
//!
//! **What "stable" can honestly mean.** The id becomes JetStream's
//! `Nats-Msg-Id`, and JetStream keeps one message per id within the stream's
//! duplicate window. Two replicas must therefore give the same exchange
//! message the same id, without talking to each other. Only the message
//! itself is common to both, so the id is a function of the endpoint's name,
//! the channel, the message and the channel's numbering epoch:
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
//! **Epochs.** When the exchange restarts a channel's numbering (see
//! `sequence`), the channel's epoch goes up by one, and ids of epoch `e > 0`
//! carry it (`<endpoint>~<e>:<channel>:<value>`; an endpoint's name never
//! holds `~`), so the new numbering's ids never collide with the old one's
//! still in the duplicate window. Epoch 0's ids are those of earlier
//! versions, so replicas of two versions still agree.
//!
//! Ids longer than [`MAX_ID`] bytes are replaced by the hash of the id, so a
//! hostile value cannot make headers grow without bound.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::hash::{hash128, hash_u128};
use crate::pointer::{self, Pointer, Scalar};

/// The longest id sent as it is.
pub const MAX_ID: usize = 160;

/// Where to look in a message, parsed once per endpoint.
#[derive(Debug, Clone, Default)]
pub struct Pointers {
    /// The channel (required).
    pub channel: Pointer,
    /// The exchange's id of the message; unset: hash the payload.
    pub id: Pointer,
    /// The exchange's per-channel sequence number; unset: none.
    pub sequence: Pointer,
}

impl Pointers {
    /// Parses the three pointers of an endpoint (empty strings: unset).
    pub fn new(channel: &str, id: &str, sequence: &str) -> Self {
        Self { channel: Pointer::parse(channel), id: Pointer::parse(id), sequence: Pointer::parse(sequence) }
    }
}

/// What one message carries, as the bridge sees it; borrowed from the
/// message where it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified<'a> {
    /// The channel, if found (a string, or a number or boolean written out).
    pub channel: Option<Cow<'a, str>>,
    /// The exchange's id value, if `id_pointer` found an exact one.
    pub value: Option<Cow<'a, str>>,
    /// The exchange's sequence number, if configured and found.
    pub sequence: Option<u64>,
}

/// Reads channel, id value and sequence from `payload` (text or binary; a
/// payload that is not JSON has none of them). Never panics.
pub fn identify<'a>(payload: &'a [u8], pointers: &Pointers) -> Identified<'a> {
    read(pointer::find(payload, [&pointers.channel, &pointers.id, &pointers.sequence]))
}

/// [`identify`] for a text message (already checked UTF-8: not checked again).
pub fn identify_text<'a>(text: &'a str, pointers: &Pointers) -> Identified<'a> {
    read(pointer::find_in_str(text, [&pointers.channel, &pointers.id, &pointers.sequence]))
}

fn read(found: Option<[Option<Scalar<'_>>; 3]>) -> Identified<'_> {
    let Some([channel, value, sequence]) = found else {
        return Identified { channel: None, value: None, sequence: None };
    };
    let sequence = match sequence {
        Some(Scalar::Unsigned(n)) => Some(n),
        _ => None,
    };
    Identified { channel: channel.and_then(written), value: value.and_then(written), sequence }
}

/// A channel or id value written out. A number is used only when it is
/// exact: an integer that fits in 64 bits. serde_json reads any other
/// number (larger integers, fractions, exponents) as an `f64`, which can
/// print two different numbers alike; such a value is `None`, and the id
/// falls back to the hash of the payload.
fn written(v: Scalar<'_>) -> Option<Cow<'_, str>> {
    match v {
        Scalar::Str(s) => Some(s),
        Scalar::Unsigned(n) => Some(Cow::Owned(n.to_string())),
        Scalar::Signed(n) => Some(Cow::Owned(n.to_string())),
        Scalar::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
        Scalar::Other => None,
    }
}

/// The `Nats-Msg-Id` of a message of `channel` (`""` when none was found)
/// on `endpoint`, in numbering `epoch`: from the exchange's `value`, or
/// else the hash of `payload`.
pub fn message_id(endpoint: &str, channel: &str, value: Option<&str>, epoch: u32, payload: &[u8]) -> String {
    match value {
        Some(value) => {
            let mut id = String::with_capacity(endpoint.len() + channel.len() + value.len() + 8);
            id.push_str(endpoint);
            if epoch > 0 {
                let _ = write!(id, "~{epoch}");
            }
            id.push(':');
            id.push_str(channel);
            id.push(':');
            id.push_str(value);
            bounded(id)
        }
        None if epoch == 0 => {
            format!("h:{}", hash128(&[endpoint.as_bytes(), &[0], channel.as_bytes(), &[0], payload]))
        }
        None => {
            let tag = format!("~{epoch}");
            format!("h:{}", hash128(&[endpoint.as_bytes(), tag.as_bytes(), &[0], channel.as_bytes(), &[0], payload]))
        }
    }
}

/// `id` as it is when at most [`MAX_ID`] bytes long, else its hash.
pub fn bounded(id: String) -> String {
    if id.len() <= MAX_ID {
        id
    } else {
        format!("h:{}", hash128(&[id.as_bytes()]))
    }
}

/// The 128-bit key of `channel` (`None`: no channel found) of endpoint
/// number `endpoint`: what the per-channel tables are keyed by, 16 bytes
/// whatever the channel's length.
pub fn channel_key(endpoint: usize, channel: Option<&str>) -> u128 {
    let index = (endpoint as u64).to_le_bytes();
    match channel {
        Some(c) => hash_u128(&[&index, b"c", c.as_bytes()]),
        None => hash_u128(&[&index, b"n"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ptrs(id: &str, seq: &str) -> Pointers {
        Pointers::new("/params/channel", id, seq)
    }

    fn id_of(endpoint: &str, payload: &str, p: &Pointers, epoch: u32) -> String {
        let i = identify(payload.as_bytes(), p);
        message_id(endpoint, i.channel.as_deref().unwrap_or(""), i.value.as_deref(), epoch, payload.as_bytes())
    }

    #[test]
    fn an_exchange_id_gives_the_same_id_whatever_else_differs() {
        let a = r#"{"params":{"channel":"t.BTC","data":{"seq":7,"sent":"conn-1"}}}"#;
        let b = r#"{"params":{"data":{"sent":"conn-2","seq":7},"channel":"t.BTC"}}"#;
        let p = ptrs("/params/data/seq", "/params/data/seq");
        let (ia, ib) = (identify(a.as_bytes(), &p), identify(b.as_bytes(), &p));
        assert_eq!(ia, ib);
        assert_eq!(identify_text(a, &p), ia);
        assert_eq!(id_of("ex", a, &p, 0), "ex:t.BTC:7");
        assert_eq!(ia.sequence, Some(7));
        assert_eq!(ia.channel.as_deref(), Some("t.BTC"));
    }

    #[test]
    fn without_an_exchange_id_the_bytes_decide() {
        let p = ptrs("", "");
        let a = id_of("ex", r#"{"params":{"channel":"c","v":1}}"#, &p, 0);
        let b = id_of("ex", r#"{"params":{"channel":"c","v":1}}"#, &p, 0);
        let c = id_of("ex", r#"{"params":{"channel":"c","v":2}}"#, &p, 0);
        let d = id_of("other", r#"{"params":{"channel":"c","v":1}}"#, &p, 0);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert!(a.starts_with("h:") && a.len() == 34);
        // The same formula as every earlier version: replicas of two versions agree.
        let payload = br#"{"params":{"channel":"c","v":1}}"#;
        assert_eq!(a, format!("h:{}", hash128(&[b"ex", &[0], b"c", &[0], payload])));
    }

    #[test]
    fn garbage_and_hostile_values_are_handled() {
        let p = ptrs("/id", "/seq");
        let binary = identify(&[0xff, 0, 1], &p);
        assert_eq!((binary.channel, binary.value, binary.sequence), (None, None, None));
        let long = format!(r#"{{"params":{{"channel":"c"}},"id":"{}","seq":-3}}"#, "x".repeat(10_000));
        let i = identify(long.as_bytes(), &p);
        assert_eq!(i.sequence, None);
        assert!(id_of("ex", &long, &p, 0).len() <= MAX_ID);
        let object_id = r#"{"params":{"channel":{"a":1}},"id":{"b":2}}"#;
        assert_eq!(identify(object_id.as_bytes(), &p).channel, None);
        assert!(id_of("ex", object_id, &p, 0).starts_with("h:"));
        let numeric_channel = identify(br#"{"params":{"channel":12}}"#, &p);
        assert_eq!(numeric_channel.channel.as_deref(), Some("12"));
    }

    #[test]
    fn numeric_ids_that_differ_never_share_an_id() {
        let p = ptrs("/id", "");
        let id = |v: &str| id_of("ex", &format!(r#"{{"params":{{"channel":"c"}},"id":{v}}}"#), &p, 0);
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

    #[test]
    fn an_epoch_gives_the_same_numbers_new_ids() {
        let p = ptrs("/params/seq", "/params/seq");
        let m = r#"{"params":{"channel":"c","seq":21}}"#;
        assert_eq!(id_of("ex", m, &p, 0), "ex:c:21");
        assert_eq!(id_of("ex", m, &p, 1), "ex~1:c:21");
        assert_ne!(id_of("ex", m, &p, 2), id_of("ex", m, &p, 1));
        let hashed = ptrs("", "/params/seq");
        assert_ne!(id_of("ex", m, &hashed, 1), id_of("ex", m, &hashed, 0));
    }

    #[test]
    fn channel_keys_tell_endpoints_and_missing_channels_apart() {
        assert_ne!(channel_key(0, Some("c")), channel_key(1, Some("c")));
        assert_ne!(channel_key(0, Some("")), channel_key(0, None));
        assert_eq!(channel_key(3, Some("c")), channel_key(3, Some("c")));
    }
}
