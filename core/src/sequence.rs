//! Per-channel message numbering: where a subscription's sequence numbers
//! sit ([`SequenceRule`]), what the session does when one is missed
//! ([`GapAction`]), and the check itself ([`Track`]).
//!
//! Exchange feeds number their messages per channel (order-book updates,
//! trades); a missed one leaves a local book wrong until it is rebuilt. A
//! message may carry one number (a plain counter) or a range (Binance's
//! depth updates: `U` the first update in it, `u` the last). The next
//! message continues the numbering when its range holds `last + 1`; one
//! that starts past it is a gap, one that ends before it a reset (the
//! numbering restarted, or a message came again): neither is accepted
//! silently.
//!
//! Invariant: a track's number only moves to the last number of a message
//! it was shown, so after any report the next message is judged against
//! the message that was reported.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::message::Message;

/// Where a message's channel and sequence numbers are read from.
type Reader = dyn for<'m> Fn(&'m Message) -> Option<SequencePoint<'m>> + Send + Sync;

/// How to read a subscription's sequence numbers from its messages: JSON
/// pointers ([`json`](Self::json), feature `json`) or a function of your
/// own ([`new`](Self::new)). Cheap to clone; channels subscribed with one
/// rule share its reading, so each message is read once per rule.
#[derive(Clone)]
pub struct SequenceRule {
    read: Arc<Reader>,
    /// What the rule reads, for `Debug` and recordings: the pointers, or
    /// `None` for a function.
    spec: Option<JsonSpec>,
}

/// The JSON pointers of a [`SequenceRule::json`] rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonSpec {
    pub(crate) channel: Option<String>,
    pub(crate) first: Option<String>,
    pub(crate) last: String,
}

/// The numbers one message carries, as a [`SequenceRule`] reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SequencePoint<'m> {
    /// The channel the message belongs to, as subscribed; `None` when the
    /// rule reads no channel (its channels are then numbered as one feed).
    pub channel: Option<Cow<'m, str>>,
    /// The first number in the message (Binance's `U`).
    pub first: u64,
    /// The last number in the message (Binance's `u`); `first` for a
    /// message that carries one number.
    pub last: u64,
}

impl<'m> SequencePoint<'m> {
    /// A message numbered `first..=last` on `channel`. A `last` below
    /// `first` is read as `first` (a message covers at least its own number).
    pub fn new(channel: Option<Cow<'m, str>>, first: u64, last: u64) -> Self {
        Self { channel, first, last: last.max(first) }
    }

    /// A message that carries one number.
    pub fn one(channel: Option<Cow<'m, str>>, number: u64) -> Self {
        Self::new(channel, number, number)
    }
}

impl SequenceRule {
    /// A rule of your own: `read` returns the message's channel and numbers,
    /// or `None` for a message that is not numbered (a response, a notice).
    pub fn new(read: impl for<'m> Fn(&'m Message) -> Option<SequencePoint<'m>> + Send + Sync + 'static) -> Self {
        Self { read: Arc::new(read), spec: None }
    }

    /// The numbers at JSON pointers (RFC 6901) in text messages: `last` is
    /// the number (or the last of a range), `first` the first of a range
    /// (`None`: one number per message), `channel` the channel's name as
    /// subscribed (`None`: the rule's channels are numbered as one feed).
    /// Binance's combined depth stream:
    /// `SequenceRule::json(Some("/stream"), Some("/data/U"), "/data/u")`.
    /// A message where `last` (or a `first` that is set) is not an unsigned
    /// integer is not numbered.
    #[cfg(feature = "json")]
    #[cfg_attr(docsrs, doc(cfg(feature = "json")))]
    pub fn json(channel: Option<&str>, first: Option<&str>, last: &str) -> Self {
        use crate::json_pointer::{find_in_str, Pointer, Scalar};
        let spec =
            JsonSpec { channel: channel.map(str::to_owned), first: first.map(str::to_owned), last: last.to_owned() };
        let pointers = [
            channel.map_or_else(Pointer::default, Pointer::parse),
            Pointer::parse(first.unwrap_or("")),
            Pointer::parse(last),
        ];
        let read = reader(move |message| {
            let [channel, first, last] = find_in_str(message.as_text()?, [&pointers[0], &pointers[1], &pointers[2]])?;
            let Some(Scalar::Unsigned(last)) = last else { return None };
            let first = match first {
                Some(Scalar::Unsigned(first)) => first,
                None if !pointers[1].is_set() => last,
                _ => return None,
            };
            let channel = match channel {
                Some(Scalar::Str(name)) => Some(name),
                None if !pointers[0].is_set() => None,
                // A message whose channel is missing or not a string belongs to no channel.
                _ => return None,
            };
            Some(SequencePoint::new(channel, first, last))
        });
        Self { read: Arc::new(read), spec: Some(spec) }
    }

    /// The channel and numbers of `message`, if it is numbered.
    pub fn read<'m>(&self, message: &'m Message) -> Option<SequencePoint<'m>> {
        (self.read)(message)
    }

    /// Whether two rules are the same rule (one was cloned from the other).
    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.read, &other.read)
    }

    /// The pointers of a JSON rule; `None` for a function.
    pub(crate) fn spec(&self) -> Option<&JsonSpec> {
        self.spec.as_ref()
    }
}

/// Gives a closure the signature of a reader (a closure's own signature
/// cannot say that its answer borrows from its argument).
#[cfg(feature = "json")]
fn reader<F: for<'m> Fn(&'m Message) -> Option<SequencePoint<'m>>>(f: F) -> F {
    f
}

impl fmt::Debug for SequenceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.spec {
            Some(spec) => f
                .debug_struct("SequenceRule")
                .field("channel", &spec.channel)
                .field("first", &spec.first)
                .field("last", &spec.last)
                .finish(),
            None => f.write_str("SequenceRule(<fn>)"),
        }
    }
}

/// What the session does when a subscription's numbering breaks (a gap or
/// a reset). Each is reported first as `SessionEvent::SequenceGap` or
/// `SequenceReset`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum GapAction {
    /// Only report it: the application rebuilds its state (fetches a snapshot).
    #[default]
    Tell,
    /// Unsubscribe and subscribe the channel again: servers that send a
    /// snapshot on subscribe rebuild the state themselves. Numbering starts
    /// afresh with the first message after the server confirms.
    Resubscribe,
    /// Drop the connection and connect again (`DisconnectReason::SequenceBroken`);
    /// numbering of the channel starts afresh on the new connection.
    Reconnect,
}

/// Where a numbered channel stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Track {
    /// Waiting for the server to confirm a subscribe: messages until then
    /// belong to the old subscription and are not judged.
    Confirming,
    /// The next message sets where the numbering stands.
    Fresh,
    /// The last number seen.
    At(u64),
}

/// What one message did to its channel's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It continues the numbering, or starts it, or is not judged.
    Fine,
    /// It starts past the next number.
    Gap { expected: u64, got: u64 },
    /// It ends before the next number: the numbering went back.
    Reset { last: u64, got: u64 },
}

impl Track {
    /// Judges a message numbered `first..=last` and moves to its last number.
    pub(crate) fn judge(&mut self, first: u64, last: u64) -> Verdict {
        let verdict = match *self {
            Self::Confirming => return Verdict::Fine,
            Self::Fresh => Verdict::Fine,
            Self::At(seen) => match seen.checked_add(1) {
                Some(expected) if first > expected => Verdict::Gap { expected, got: first },
                Some(expected) if last >= expected => Verdict::Fine,
                // Nothing follows the largest number: the numbering restarted.
                _ => Verdict::Reset { last: seen, got: first },
            },
        };
        *self = Self::At(last);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_continues_skips_and_goes_back() {
        let mut t = Track::Fresh;
        assert_eq!(t.judge(100, 100), Verdict::Fine, "the first sets where it stands");
        assert_eq!(t.judge(101, 101), Verdict::Fine);
        assert_eq!(t.judge(104, 104), Verdict::Gap { expected: 102, got: 104 });
        assert_eq!(t.judge(105, 105), Verdict::Fine, "judged against the message reported");
        assert_eq!(t.judge(105, 105), Verdict::Reset { last: 105, got: 105 }, "a repeat is a step back");
        assert_eq!(t.judge(1, 1), Verdict::Reset { last: 105, got: 1 });
        assert_eq!(t.judge(2, 2), Verdict::Fine);
    }

    #[test]
    fn ranges_continue_when_they_hold_the_next_number() {
        let mut t = Track::At(160);
        assert_eq!(t.judge(161, 170), Verdict::Fine);
        assert_eq!(t.judge(150, 175), Verdict::Fine, "an overlap that reaches past the last is no gap");
        assert_eq!(t.judge(160, 175), Verdict::Reset { last: 175, got: 160 }, "wholly seen");
        assert_eq!(t.judge(180, 190), Verdict::Gap { expected: 176, got: 180 });
        let mut confirming = Track::Confirming;
        assert_eq!(confirming.judge(5, 5), Verdict::Fine);
        assert_eq!(confirming, Track::Confirming, "the old subscription's messages are not judged");
        let mut top = Track::At(u64::MAX);
        assert_eq!(top.judge(u64::MAX, u64::MAX), Verdict::Reset { last: u64::MAX, got: u64::MAX }, "no overflow");
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_rules_read_channels_and_ranges() {
        let text = |t: &str| Message::Text(t.into());
        let binance = SequenceRule::json(Some("/stream"), Some("/data/U"), "/data/u");
        let m = text(r#"{"stream":"bnbbtc@depth","data":{"e":"depthUpdate","U":157,"u":160}}"#);
        assert_eq!(binance.read(&m), Some(SequencePoint::new(Some("bnbbtc@depth".into()), 157, 160)));
        for unnumbered in [
            r#"{"stream":"bnbbtc@depth","data":{"U":157}}"#,
            r#"{"stream":"bnbbtc@depth","data":{"U":"157","u":160}}"#,
            r#"{"stream":7,"data":{"U":157,"u":160}}"#,
            r#"{"data":{"U":157,"u":160}}"#,
            r#"{"stream":"x","data":{"U":-1,"u":160}}"#,
            r#"{"result":null,"id":1}"#,
            "not json",
            r#"{"stream":"x","data":{"U":1,"u":2}} trailing"#,
        ] {
            assert_eq!(binance.read(&text(unnumbered)), None, "{unnumbered}");
        }
        assert_eq!(binance.read(&Message::Binary(bytes::Bytes::from_static(b"{}"))), None);
        let counter = SequenceRule::json(None, None, "/seq");
        assert_eq!(counter.read(&text(r#"{"seq":9,"p":1}"#)), Some(SequencePoint::one(None, 9)));
        assert_eq!(format!("{counter:?}"), r#"SequenceRule { channel: None, first: None, last: "/seq" }"#);
        assert!(counter.same(&counter.clone()) && !counter.same(&binance));
    }
}
