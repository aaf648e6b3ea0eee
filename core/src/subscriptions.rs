//! The subscription set: each channel with how it is kept
//! ([`SubscribeOptions`]: restored after a reconnect or not, numbered or
//! not) and where its numbering stands.
//!
//! Invariants: `names` and `kept` hold the same channels in the order they
//! were subscribed, each once; `rules` holds each distinct rule of a
//! subscribed channel once, so a message is read once per rule; a track
//! exists for a numbered key while a channel of its rule is subscribed and
//! survives a reconnect (a gap across the reconnect is reported too).

use std::borrow::Cow;

use crate::message::Message;
use crate::sequence::{GapAction, SequenceRule, Track, Verdict};

/// How [`Session::subscribe_with`](crate::Session::subscribe_with) keeps
/// its channels.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Whether the channels are subscribed again after a reconnect;
    /// `None`: the session's `restore_subscriptions` (default on).
    pub restore: Option<bool>,
    /// Where their sequence numbers sit; `None`: not numbered.
    pub sequence: Option<SequenceRule>,
    /// What a gap or a reset in their numbering does (default: only tell).
    pub on_gap: GapAction,
}

impl SubscribeOptions {
    /// Kept as the session's settings say, not numbered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribed again after a reconnect, or not (a server that restores
    /// subscriptions itself refuses a second subscribe).
    pub fn restore(mut self, restore: bool) -> Self {
        self.restore = Some(restore);
        self
    }

    /// Numbered by `rule`: gaps and resets are reported.
    pub fn sequence(mut self, rule: SequenceRule) -> Self {
        self.sequence = Some(rule);
        self
    }

    /// What a break in the numbering does.
    pub fn on_gap(mut self, action: GapAction) -> Self {
        self.on_gap = action;
        self
    }
}

/// One subscribed channel's options.
#[derive(Debug, Clone)]
struct Kept {
    restore: Option<bool>,
    /// The index in `rules` of its rule, if numbered.
    rule: Option<usize>,
    on_gap: GapAction,
}

/// A channel's numbering: the rule, and the channel as the rule reads it
/// (`None`: the rule's channels are one feed).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    rule: usize,
    channel: Option<String>,
}

/// A break in one channel's numbering, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Break {
    /// The channel, as reported: the one read, or the rule's first.
    pub(crate) channel: String,
    pub(crate) verdict: Verdict,
    pub(crate) action: GapAction,
    /// The subscribed channels it concerns (for a resubscribe).
    pub(crate) channels: Vec<String>,
}

/// The subscription set.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    names: Vec<String>,
    kept: Vec<Kept>,
    /// Each distinct rule once; a slot is `None` once no channel uses it.
    rules: Vec<Option<SequenceRule>>,
    tracks: Vec<(Key, Track)>,
}

impl Subscriptions {
    /// The channels, in the order they were subscribed.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether any channel is numbered (messages must then be read).
    pub(crate) fn numbered(&self) -> bool {
        !self.tracks.is_empty()
    }

    /// Adds the channels not yet in the set; returns them.
    pub(crate) fn add(&mut self, channels: &[&str], options: &SubscribeOptions) -> Vec<String> {
        let mut added: Vec<String> = Vec::new();
        for c in channels {
            if !self.names.iter().chain(&added).any(|s| s == c) {
                added.push((*c).to_owned());
            }
        }
        if added.is_empty() {
            return added;
        }
        let rule = options.sequence.as_ref().map(|r| self.rule_index(r));
        for name in &added {
            self.names.push(name.clone());
            self.kept.push(Kept { restore: options.restore, rule, on_gap: options.on_gap });
        }
        if let (Some(rule), Some(sequence)) = (rule, &options.sequence) {
            let per_channel = sequence.spec().is_none_or(|s| s.channel.is_some()) && !self.one_feed(rule);
            for name in &added {
                let key = Key { rule, channel: per_channel.then(|| name.clone()) };
                if !self.tracks.iter().any(|(k, _)| *k == key) {
                    self.tracks.push((key, Track::Fresh));
                }
            }
        }
        added
    }

    /// Whether a rule's channels are numbered as one feed: a function's
    /// rule may read no channel, and its points say so; until then, a key
    /// per channel, and a key without a channel made when a point has none.
    fn one_feed(&self, rule: usize) -> bool {
        self.tracks.iter().any(|(k, _)| k.rule == rule && k.channel.is_none())
    }

    fn rule_index(&mut self, rule: &SequenceRule) -> usize {
        if let Some(i) = self.rules.iter().position(|r| r.as_ref().is_some_and(|r| r.same(rule))) {
            return i;
        }
        self.rules.push(Some(rule.clone()));
        self.rules.len() - 1
    }

    /// Removes the channels in the set; returns them.
    pub(crate) fn remove(&mut self, channels: &[&str]) -> Vec<String> {
        let mut removed = Vec::new();
        let mut i = 0;
        while i < self.names.len() {
            if channels.contains(&self.names[i].as_str()) {
                removed.push(self.names.remove(i));
                self.kept.remove(i);
            } else {
                i += 1;
            }
        }
        let used: Vec<usize> = self.kept.iter().filter_map(|k| k.rule).collect();
        self.tracks
            .retain(|(key, _)| used.contains(&key.rule) && key.channel.as_ref().is_none_or(|c| !removed.contains(c)));
        for (i, slot) in self.rules.iter_mut().enumerate() {
            if !used.contains(&i) {
                *slot = None;
            }
        }
        removed
    }

    /// The channels to subscribe after a reconnect.
    pub(crate) fn to_restore(&self, by_default: bool) -> Vec<String> {
        self.names
            .iter()
            .zip(&self.kept)
            .filter(|(_, k)| k.restore.unwrap_or(by_default))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Channels subscribed again by the session (a resubscribe): their
    /// numbering waits for the server's confirmation when `confirmed` is
    /// false, and starts afresh with the next message otherwise.
    pub(crate) fn restart(&mut self, channels: &[String], confirmed: bool) {
        let track = if confirmed { Track::Fresh } else { Track::Confirming };
        for at in 0..self.tracks.len() {
            if self.concerns(&self.tracks[at].0, channels) {
                self.tracks[at].1 = track;
            }
        }
    }

    /// The server confirmed these channels: their numbering starts with the next message.
    pub(crate) fn confirmed(&mut self, channels: &[String]) {
        for at in 0..self.tracks.len() {
            if self.tracks[at].1 == Track::Confirming && self.concerns(&self.tracks[at].0, channels) {
                self.tracks[at].1 = Track::Fresh;
            }
        }
    }

    /// Whether a numbering is that of one of `channels`.
    fn concerns(&self, key: &Key, channels: &[String]) -> bool {
        match &key.channel {
            Some(c) => channels.contains(c),
            None => self.names.iter().zip(&self.kept).any(|(n, k)| k.rule == Some(key.rule) && channels.contains(n)),
        }
    }

    /// Reads `message` with each rule and judges its numbering; a break
    /// comes back with what to do. At most one break per message: a
    /// message belongs to one channel.
    pub(crate) fn judge(&mut self, message: &Message) -> Option<Break> {
        for rule in 0..self.rules.len() {
            let Some(point) = self.rules[rule].as_ref().and_then(|r| r.read(message)) else { continue };
            let channel = point.channel.as_deref();
            let Some(at) = self.track_of(rule, channel) else { continue };
            let verdict = self.tracks[at].1.judge(point.first, point.last);
            if verdict == Verdict::Fine {
                return None;
            }
            return Some(self.broken(rule, channel.map(Cow::Borrowed), verdict));
        }
        None
    }

    /// The track of `channel` under `rule`: a subscribed channel's, or the
    /// rule's one feed when the point names none.
    fn track_of(&mut self, rule: usize, channel: Option<&str>) -> Option<usize> {
        match channel {
            Some(c) => self.tracks.iter().position(|(k, _)| k.rule == rule && k.channel.as_deref() == Some(c)),
            None => {
                if let Some(at) = self.tracks.iter().position(|(k, _)| k.rule == rule && k.channel.is_none()) {
                    return Some(at);
                }
                // A function's rule that reads no channel: its channels are one feed from now on.
                let had = self.tracks.iter().any(|(k, _)| k.rule == rule);
                self.tracks.retain(|(k, _)| k.rule != rule);
                had.then(|| {
                    self.tracks.push((Key { rule, channel: None }, Track::Fresh));
                    self.tracks.len() - 1
                })
            }
        }
    }

    fn broken(&self, rule: usize, channel: Option<Cow<'_, str>>, verdict: Verdict) -> Break {
        let of_rule = || self.names.iter().zip(&self.kept).filter(move |(_, k)| k.rule == Some(rule));
        let channels: Vec<String> = match &channel {
            Some(c) => vec![c.to_string()],
            None => of_rule().map(|(n, _)| n.clone()).collect(),
        };
        let action = of_rule().find(|(n, _)| channels.contains(n)).map_or(GapAction::Tell, |(_, k)| k.on_gap);
        let channel = channel.map_or_else(|| channels.first().cloned().unwrap_or_default(), Cow::into_owned);
        Break { channel, verdict, action, channels }
    }
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use super::*;

    fn text(t: &str) -> Message {
        Message::Text(t.into())
    }

    #[test]
    fn each_channel_is_numbered_on_its_own_and_restored_as_chosen() {
        let mut s = Subscriptions::default();
        let rule = SequenceRule::json(Some("/ch"), None, "/n");
        let numbered = SubscribeOptions::new().sequence(rule.clone()).on_gap(GapAction::Resubscribe);
        assert_eq!(s.add(&["a", "b"], &numbered), ["a", "b"]);
        assert_eq!(s.add(&["b", "c"], &SubscribeOptions::new().restore(false)), ["c"]);
        assert_eq!(s.add(&["d"], &SubscribeOptions::new().sequence(rule).restore(true)), ["d"]);
        assert_eq!(s.rules.len(), 1, "one rule, read once per message");
        assert_eq!(s.to_restore(true), ["a", "b", "d"]);
        assert_eq!(s.to_restore(false), ["d"]);
        for m in [r#"{"ch":"a","n":1}"#, r#"{"ch":"b","n":7}"#, r#"{"ch":"a","n":2}"#, r#"{"ch":"c","n":1}"#] {
            assert_eq!(s.judge(&text(m)), None, "{m}");
        }
        let gap = s.judge(&text(r#"{"ch":"b","n":9}"#)).expect("b skipped 8");
        assert_eq!(gap.verdict, Verdict::Gap { expected: 8, got: 9 });
        assert_eq!((gap.channel.as_str(), gap.action, gap.channels), ("b", GapAction::Resubscribe, vec!["b".into()]));
        s.restart(&["b".into()], false);
        assert_eq!(s.judge(&text(r#"{"ch":"b","n":3}"#)), None, "the old subscription's message is not judged");
        s.confirmed(&["b".into()]);
        assert_eq!(s.judge(&text(r#"{"ch":"b","n":50}"#)), None, "numbering starts afresh");
        let reset = s.judge(&text(r#"{"ch":"a","n":1}"#)).expect("a went back");
        assert_eq!(reset.verdict, Verdict::Reset { last: 2, got: 1 });
        assert_eq!(s.remove(&["a", "b", "zz"]), ["a", "b"]);
        assert_eq!(s.names(), ["c", "d"]);
        assert_eq!(s.tracks.len(), 1, "d's track is kept, a's and b's go");
        s.remove(&["d"]);
        assert!(!s.numbered() && s.rules.iter().all(Option::is_none));
    }

    #[test]
    fn a_rule_without_channels_numbers_its_channels_as_one_feed() {
        let mut s = Subscriptions::default();
        s.add(&["x", "y"], &SubscribeOptions::new().sequence(SequenceRule::json(None, None, "/seq")));
        assert_eq!(s.tracks.len(), 1);
        assert_eq!(s.judge(&text(r#"{"seq":1}"#)), None);
        let gap = s.judge(&text(r#"{"seq":3}"#)).unwrap();
        assert_eq!((gap.channel.as_str(), gap.channels), ("x", vec!["x".to_owned(), "y".to_owned()]));
        // A function's rule that reads no channel becomes one feed at its first point.
        let mut f = Subscriptions::default();
        let rule = SequenceRule::new(|m| Some(crate::sequence::SequencePoint::one(None, m.as_text()?.parse().ok()?)));
        f.add(&["p", "q"], &SubscribeOptions::new().sequence(rule));
        assert_eq!(f.tracks.len(), 2);
        assert_eq!(f.judge(&text("4")), None);
        assert_eq!(f.tracks.len(), 1);
        assert!(f.judge(&text("6")).is_some());
    }
}
