//! Per channel: the subject, this process's numbering on it (`Wslink-Seq`),
//! and the exchange's numbering (`sequence`), turning each message read
//! into what to publish. Sans-IO: what it needs from the stream it asks
//! for ([`Tracker::next_consult`], [`Tracker::next_check`]) and is told
//! ([`Tracker::consulted`], [`Tracker::checked`]); the bridge's loop does
//! the asking.
//!
//! The common case costs one table lookup: a number that follows the last
//! one (or repeats it) is published at once. A number out of line (and the
//! first of each channel in a run) holds the channel's messages until the
//! stream's last message on the subject is known (its [`Tail`]): from both,
//! the channel's epoch and what the number means ([`sequence::resolve`]). A
//! restart of the numbering is marked (`reset`) and logged at once; a hole
//! is checked against the stream after `settle` and marked only where no
//! replica stored the numbers. A channel's messages keep their order.
//!
//! Bounds: at most [`MAX_TRACKED`] channels and [`MAX_SUBJECT_BYTES`] of
//! their subjects (messages of channels past that are published with
//! `Wslink-Seq: 0`, in epoch 0, never held); held messages are counted
//! ([`Tracker::held`]) so the bridge stops reading while too many wait; at
//! most [`MAX_HOLES`] holes wait for their check (one past that is logged
//! and counted, not marked).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_nats::Subject;
use bytes::Bytes;
use tokio::time::Instant;

use crate::envelope::{self, Gap, GapReason, Kind, Outgoing, Place};
use crate::hash::hash128;
use crate::msgid::{self, Identified};
use crate::sequence::{self, Numbering, Ranges, Step, Tail};
use crate::subject;

/// Channels tracked at most.
pub const MAX_TRACKED: usize = 1 << 17;
/// Bytes of tracked channels' subjects at most.
pub const MAX_SUBJECT_BYTES: usize = 32 << 20;
/// Holes waiting for their check at most.
pub const MAX_HOLES: usize = 1 << 16;
/// A channel name longer than this is named by its hash in markers' ids.
const MAX_LABEL: usize = 256;
/// A consult or check that failed is tried again after this.
const RETRY: Duration = Duration::from_secs(1);

/// What the tracker knows of an endpoint.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its name.
    pub name: String,
    /// Whether it has a `sequence_pointer`.
    pub sequenced: bool,
    /// Its `max_sequence_jump`.
    pub max_jump: u64,
}

/// The tracker's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The endpoints, by index.
    pub sources: Vec<Source>,
    /// The subjects' first token.
    pub prefix: String,
    /// When this process started, Unix ms.
    pub started_ms: u64,
    /// How long a hole waits before it is checked against the stream.
    pub settle: Duration,
    /// How far before the tail's stream sequence a check starts reading (a
    /// resend may have been stored that much out of order).
    pub margin: u64,
}

/// One message read from an endpoint.
#[derive(Debug)]
pub struct Read<'a> {
    /// The endpoint's index.
    pub source: usize,
    /// The connection id (`Wslink-Connection`).
    pub connection: &'a Arc<str>,
    /// What `msgid::identify` found.
    pub ident: Identified<'a>,
    /// The payload.
    pub payload: &'a Bytes,
    /// When it was read, Unix ms.
    pub received_ms: u64,
    /// When it was read.
    pub at: Instant,
}

/// A hole to check: which of `from..=to` the stream holds on `subject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The channel's key.
    pub key: u128,
    /// Its subject.
    pub subject: Subject,
    /// The numbering.
    pub epoch: u32,
    /// The first missing number.
    pub from: u64,
    /// The last missing number.
    pub to: u64,
    /// Read the stream after this sequence.
    pub after: u64,
    /// The connection that found the hole (its markers' `Wslink-Connection`).
    pub connection: Arc<str>,
}

/// Counts of what the tracker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Restarts of a numbering seen (each marked `reset`).
    pub resets: u64,
    /// Holes seen (candidates, before their check).
    pub holes: u64,
    /// Holes never marked: more than [`MAX_HOLES`] waited, or the check
    /// read more ranges than a [`Ranges`] holds.
    pub unchecked: u64,
}

/// A message held while its channel's numbering is looked up.
#[derive(Debug)]
struct Held {
    channel: Option<String>,
    value: Option<String>,
    sequence: Option<u64>,
    payload: Bytes,
    connection: Arc<str>,
    received_ms: u64,
    at: Instant,
}

impl Held {
    fn read(&self, source: usize) -> Read<'_> {
        let ident = Identified {
            channel: self.channel.as_deref().map(Into::into),
            value: self.value.as_deref().map(Into::into),
            sequence: self.sequence,
        };
        Read {
            source,
            connection: &self.connection,
            ident,
            payload: &self.payload,
            received_ms: self.received_ms,
            at: self.at,
        }
    }
}

#[derive(Debug)]
struct Channel {
    source: usize,
    subject: Subject,
    /// The channel in markers' ids.
    label: Box<str>,
    /// `Wslink-Seq`'s last value.
    seq: u64,
    /// The exchange's numbering as this replica read it.
    numbering: Option<Numbering>,
    /// `Some` while the stream's tail is looked up: the messages waiting for it.
    held: Option<VecDeque<Held>>,
}

impl Channel {
    /// Whether a message numbered `n` (if at all) follows what this channel read.
    fn fits(&self, n: Option<u64>) -> bool {
        match (n, self.numbering) {
            (Some(n), Some(own)) => n == own.last || own.last.checked_add(1) == Some(n),
            (Some(_), None) => false,
            (None, _) => true,
        }
    }

    /// Publishes a message that needs no decision.
    fn publish(&mut self, name: &str, m: &Read<'_>, out: &mut impl FnMut(Outgoing)) {
        let epoch = self.numbering.map_or(0, |n| n.epoch);
        if let (Some(n), Some(own)) = (m.ident.sequence, self.numbering.as_mut()) {
            own.last = own.last.max(n);
        }
        let channel = m.ident.channel.as_deref().unwrap_or("");
        let id = msgid::message_id(name, channel, m.ident.value.as_deref(), epoch, m.payload);
        self.seq += 1;
        out(message(self.subject.clone(), id, self.seq, epoch, m));
    }

    /// Where a marker of this channel goes, numbered next.
    fn place<'a>(&'a mut self, name: &'a str, connection: &Arc<str>, received_ms: u64, at: Instant) -> Place<'a> {
        self.seq += 1;
        let connection = connection.clone();
        Place {
            subject: self.subject.clone(),
            endpoint: name,
            channel: &self.label,
            connection,
            seq: self.seq,
            received_ms,
            at,
        }
    }
}

/// Per-channel numbering for one bridge process.
#[derive(Debug)]
pub struct Tracker {
    settings: Settings,
    channels: HashMap<u128, Channel>,
    subject_bytes: usize,
    held: usize,
    consults: VecDeque<(Instant, u128)>,
    holes: Vec<(Instant, Check)>,
    counts: Counts,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            channels: HashMap::new(),
            subject_bytes: 0,
            held: 0,
            consults: VecDeque::new(),
            holes: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// Messages held while their channel's numbering is looked up.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Holes waiting for their check.
    pub fn pending_checks(&self) -> usize {
        self.holes.len()
    }

    /// Channels tracked now.
    pub fn tracked(&self) -> usize {
        self.channels.len()
    }

    /// What the tracker did so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The earliest time a consult may be retried or a hole checked.
    pub fn next_deadline(&self) -> Option<Instant> {
        let consult = self.consults.iter().map(|(t, _)| *t).min();
        consult.into_iter().chain(self.holes.iter().map(|(t, _)| *t)).min()
    }

    /// Handles one message read; what is ready goes to `out`.
    pub fn message(&mut self, m: &Read<'_>, out: &mut impl FnMut(Outgoing)) {
        let channel = m.ident.channel.as_deref();
        let key = msgid::channel_key(m.source, channel);
        let tracked = self.track(key, m.source, channel);
        let Some(source) = self.settings.sources.get(m.source) else { return };
        if !tracked {
            let subject = Subject::from(subject::subject(&self.settings.prefix, &source.name, channel));
            let id = msgid::message_id(&source.name, channel.unwrap_or(""), m.ident.value.as_deref(), 0, m.payload);
            out(message(subject, id, 0, 0, m));
            return;
        }
        let Some(ch) = self.channels.get_mut(&key) else { return };
        if ch.held.is_none() && (!source.sequenced || ch.fits(m.ident.sequence)) {
            ch.publish(&source.name, m, out);
            return;
        }
        let held = Held {
            channel: channel.map(str::to_owned),
            value: m.ident.value.as_deref().map(str::to_owned),
            sequence: m.ident.sequence,
            payload: m.payload.clone(),
            connection: m.connection.clone(),
            received_ms: m.received_ms,
            at: m.at,
        };
        self.held += 1;
        match &mut ch.held {
            Some(queue) => queue.push_back(held),
            None => {
                ch.held = Some(VecDeque::from([held]));
                self.consults.push_back((m.at, key));
            }
        }
    }

    /// A consult to send: a channel whose stream tail is wanted, and its
    /// subject. Each is handed out once; its answer goes to [`Self::consulted`].
    pub fn next_consult(&mut self, now: Instant) -> Option<(u128, Subject)> {
        let at = self.consults.iter().position(|(t, _)| *t <= now)?;
        let (_, key) = self.consults.remove(at)?;
        Some((key, self.channels.get(&key)?.subject.clone()))
    }

    /// The stream's tail for channel `key` (or why it could not be read:
    /// asked again after a second); releases what the channel held.
    pub fn consulted(
        &mut self,
        key: u128,
        tail: Result<Option<Tail>, String>,
        now: Instant,
        out: &mut impl FnMut(Outgoing),
    ) {
        let Self { settings, channels, held, consults, holes, counts, .. } = self;
        let tail = match tail {
            Ok(tail) => tail,
            Err(error) => {
                tracing::warn!(%error, "cannot read the stream's last message on a channel; asking again");
                consults.push_back((now + RETRY, key));
                return;
            }
        };
        let Some(ch) = channels.get_mut(&key) else { return };
        let mut queue = ch.held.take().unwrap_or_default();
        *held -= queue.len();
        let Some(first) = queue.front() else { return };
        let source = &settings.sources[ch.source];
        let n = first.sequence.unwrap_or(0);
        let (epoch, step) = sequence::resolve(ch.numbering, tail.as_ref(), n, settings.started_ms, source.max_jump);
        ch.numbering = Some(Numbering { epoch, last: n });
        match step {
            Step::Next | Step::Again => {}
            Step::Hole { from, to } => {
                counts.holes += 1;
                if holes.len() >= MAX_HOLES {
                    counts.unchecked += 1;
                    tracing::error!(channel = %ch.label, from, to, "too many holes wait for their check: this one is not marked");
                } else {
                    let after = tail.map_or(0, |t| t.stream_seq.saturating_sub(settings.margin));
                    let connection = first.connection.clone();
                    let check = Check { key, subject: ch.subject.clone(), epoch, from, to, after, connection };
                    holes.push((now + settings.settle, check));
                }
            }
            Step::Restart { previous } => {
                counts.resets += 1;
                tracing::warn!(
                    endpoint = %source.name, channel = %ch.label, last_epoch = previous.epoch,
                    last_seq = previous.last, epoch, first_seq = n,
                    "the exchange restarted the channel's numbering: marked `reset`, its messages get new ids"
                );
                let place = ch.place(&source.name, &first.connection, first.received_ms, first.at);
                out(envelope::marker(place, Gap::Reset { previous, first: n }, epoch));
            }
        }
        // The first goes out in its epoch (it is now the channel's last
        // number); the rest the usual way, and one out of line holds the
        // channel again, with what follows it.
        while let Some(h) = queue.pop_front() {
            if ch.held.is_none() && ch.fits(h.sequence) {
                ch.publish(&source.name, &h.read(ch.source), out);
                continue;
            }
            *held += 1 + queue.len();
            let rest = ch.held.get_or_insert_with(VecDeque::new);
            if rest.is_empty() {
                consults.push_back((now, key));
            }
            rest.push_back(h);
            rest.extend(queue.drain(..));
        }
    }

    /// A hole whose check is due, handed out once; its answer goes to [`Self::checked`].
    pub fn next_check(&mut self, now: Instant) -> Option<Check> {
        let at = self.holes.iter().position(|(due, _)| *due <= now)?;
        Some(self.holes.swap_remove(at).1)
    }

    /// Makes every waiting hole due now (a drain that cannot wait).
    pub fn hurry(&mut self, now: Instant) {
        for (due, _) in &mut self.holes {
            *due = (*due).min(now);
        }
    }

    /// What the stream holds of a hole (`None`: more ranges than a
    /// [`Ranges`] keeps; an error: checked again after a second): a
    /// `sequence` marker for each range that nobody stored or marked.
    pub fn checked(
        &mut self,
        check: Check,
        covered: Result<Option<Ranges>, String>,
        now: Instant,
        out: &mut impl FnMut(Outgoing),
    ) {
        let covered = match covered {
            Ok(Some(covered)) => covered,
            Ok(None) => {
                self.counts.unchecked += 1;
                tracing::error!(
                    from = check.from,
                    to = check.to,
                    "a hole's check read more ranges than it keeps: not marked"
                );
                return;
            }
            Err(error) => {
                tracing::warn!(%error, from = check.from, to = check.to, "cannot check a hole against the stream; trying again");
                self.holes.push((now + RETRY, check));
                return;
            }
        };
        let Some(ch) = self.channels.get_mut(&check.key) else { return };
        let Some(source) = self.settings.sources.get(ch.source) else { return };
        for (from, to) in sequence::missing(check.from, check.to, &covered) {
            tracing::warn!(endpoint = %source.name, channel = %ch.label, from, to, "messages missing from the stream: marked `sequence`");
            let place = ch.place(&source.name, &check.connection, unix_ms(), now);
            out(envelope::marker(place, Gap::Sequence { from, to }, check.epoch));
        }
    }

    /// A `reconnect` or `restart` marker for `channel` of endpoint `source`,
    /// read by `connection` (whose id names the run, so the marker's id is
    /// never reused by another run or replica).
    pub fn connection_gap(
        &mut self,
        source: usize,
        channel: &str,
        connection: &Arc<str>,
        reason: GapReason,
        at: Instant,
    ) -> Option<Outgoing> {
        let key = msgid::channel_key(source, Some(channel));
        let tracked = self.track(key, source, Some(channel));
        let name = &self.settings.sources.get(source)?.name;
        let place = if tracked {
            self.channels.get_mut(&key)?.place(name, connection, unix_ms(), at)
        } else {
            let subject = Subject::from(subject::subject(&self.settings.prefix, name, Some(channel)));
            Place {
                subject,
                endpoint: name,
                channel,
                connection: connection.clone(),
                seq: 0,
                received_ms: unix_ms(),
                at,
            }
        };
        Some(envelope::marker(place, Gap::Connection(reason), 0))
    }

    /// Makes sure channel `key` has a row; `false` when the table is full.
    fn track(&mut self, key: u128, source: usize, channel: Option<&str>) -> bool {
        if self.channels.contains_key(&key) {
            return true;
        }
        let Some(name) = self.settings.sources.get(source).map(|s| s.name.as_str()) else { return false };
        let subject = subject::subject(&self.settings.prefix, name, channel);
        if self.channels.len() >= MAX_TRACKED || self.subject_bytes + subject.len() > MAX_SUBJECT_BYTES {
            return false;
        }
        self.subject_bytes += subject.len();
        let label = match channel {
            Some(c) if c.len() <= MAX_LABEL => c.into(),
            Some(c) => format!("#{}", hash128(&[c.as_bytes()])).into(),
            None => "".into(),
        };
        let row = Channel { source, subject: Subject::from(subject), label, seq: 0, numbering: None, held: None };
        self.channels.insert(key, row);
        true
    }
}

fn message(subject: Subject, id: String, seq: u64, epoch: u32, m: &Read<'_>) -> Outgoing {
    Outgoing {
        subject,
        id,
        kind: Kind::Message,
        connection: m.connection.clone(),
        seq,
        exchange_seq: m.ident.sequence,
        epoch,
        received_ms: m.received_ms,
        payload: m.payload.clone(),
        received: m.at,
    }
}

/// The time now, Unix ms.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
