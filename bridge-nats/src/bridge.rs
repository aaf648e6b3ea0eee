//! The bridge's loop: pools of WebSocket connections in, JetStream out.
//!
//! One turn: hand the stream readers what the [`Tracker`] asks for (a
//! channel's last stored message, a hole's check), send what the window
//! allows, then wait for the first of an ack (and every other ack already
//! there), a reader's answer, the end of a retry delay, the shutdown
//! signal, the periodic figures, or, only while the [`Publisher`] has room
//! and the tracker holds few messages, the next WebSocket events (a batch
//! of those already there). Not asking for events is the backpressure: the
//! pools' streams fill, their members stop reading their sockets, and TCP
//! slows the exchange.
//!
//! Shutdown drains: the pools are closed (each member ends its connection
//! with a close handshake), the events still buffered are read and
//! published, holes waiting for their check are checked at once, and the
//! acks still awaited are waited for, all within `drain_timeout_ms`; what
//! is left then is reported in the [`Summary`]: messages queued, held or
//! awaiting acks, messages read into the pools' buffers but never
//! published (taken without waiting when the deadline passes), holes never
//! marked, and whether the pools' event stream ended at all (if not, their
//! members may still have held messages).
//!
//! Each run of the process has its own id (its start time in Unix ms and a
//! random number), part of every connection id, so the ids of `reconnect`
//! and `restart` markers are never reused by a later run or another
//! replica of the same name.

use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, Stream, StreamExt};
use futures_util::FutureExt;
use tokio::time::Instant;
use wslink_tokio::{presets, Builder, Pool, PoolEvent, PoolEvents, SessionEvent};

use crate::config::{Config, Endpoint};
use crate::envelope::GapReason;
pub use crate::error::BridgeError;
use crate::ledger::{self, Ledger};
use crate::msgid::{self, Pointers};
use crate::publisher::{self, Publisher, Transport};
use crate::sequence::{Ranges, Tail};
use crate::shard::{self, Assignment};
use crate::stats::{Snapshot, Stats};
use crate::tracker::{self, Check, Read, Source, Tracker};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// The figures at the end.
    pub stats: Snapshot,
    /// Messages read but neither stored nor acked as duplicates when the
    /// drain timed out: those queued, held or awaiting acks, plus `unread`.
    pub undrained: usize,
    /// Of `undrained`, messages read into the pools' buffers but never
    /// published (taken without waiting once the drain deadline passed).
    pub unread: usize,
    /// Whether the pools' event stream ended (every member closed and its
    /// events delivered); when not, the members may have held more messages.
    pub stream_ended: bool,
    /// Messages no server could store (too large), each replaced by a marker.
    pub rejected: u64,
    /// Holes in an exchange's numbering never checked and marked (the drain
    /// deadline passed first, or there were too many): messages may be
    /// missing from the stream without a marker.
    pub unmarked_holes: u64,
    /// Channels this shard ran.
    pub channels: usize,
}

/// A pause of the reads longer than this is logged as a warning.
const PAUSE_WORTH_A_WARNING: Duration = Duration::from_secs(1);
/// Events handled in one turn at most.
const EVENT_BATCH: usize = 256;
/// Channels' last messages looked up at once at most.
const MAX_CONSULTS: usize = 64;
/// Holes checked at once at most.
const MAX_CHECKS: usize = 4;

/// One endpoint's pool, as the loop knows it.
struct Feed {
    endpoint: Endpoint,
    pointers: Pointers,
    assignment: Assignment,
    pool: Pool,
    /// Per pool member: connections made so far, and the current one's id.
    connects: Vec<u64>,
    connections: Vec<Arc<str>>,
    received: metrics::Counter,
}

/// This run's id: its start time in Unix milliseconds and a random number,
/// both hex (`18c2f3a4b5c-9f86d081`).
fn run_id(ms: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    // std's hasher keys come from the OS's random source, fresh for each RandomState.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{ms:x}-{:08x}", h.finish() as u32)
}

/// Runs shard `config.bridge.shard` until `shutdown` completes, then drains.
/// `stats` is updated as it runs (read it from elsewhere for live figures).
pub async fn run(
    config: Config,
    stats: Arc<Stats>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Summary, BridgeError> {
    let (client, js) = crate::stream::connect(&config).await?;
    let transport = publisher::Nats::new(client).await?;
    let ack_timeout = Duration::from_millis(config.nats.ack_timeout_ms);
    let ledger = ledger::JetStream::new(js, config.nats.stream.clone(), ack_timeout);
    let started_ms = tracker::unix_ms();
    let assignments = shard::assign(&config);
    let channels = assignments.iter().map(|a| a.channels().count()).sum();
    let mut feeds = Vec::new();
    let mut streams = Vec::new();
    for assignment in assignments {
        let endpoint = config.endpoints[assignment.endpoint].clone();
        let (pool, events) = start_pool(&endpoint, assignment.per_connection.len())?;
        streams.push(Some(events));
        let pointers = Pointers::new(&endpoint.channel_pointer, &endpoint.id_pointer, &endpoint.sequence_pointer);
        let members = assignment.per_connection.len();
        let received = Stats::endpoint_counter(&endpoint.name);
        let (connects, connections) = (vec![0; members], vec![Arc::from(""); members]);
        feeds.push(Feed { endpoint, pointers, assignment, pool, connects, connections, received });
    }
    let sources = feeds
        .iter()
        .map(|f| Source {
            name: f.endpoint.name.clone(),
            sequenced: !f.endpoint.sequence_pointer.is_empty(),
            max_jump: f.endpoint.max_sequence_jump,
        })
        .collect();
    let window = config.nats.max_in_flight;
    let tracker = Tracker::new(tracker::Settings {
        sources,
        prefix: config.nats.subject_prefix.clone(),
        started_ms,
        settle: Duration::from_millis(config.bridge.gap_settle_ms),
        margin: 2 * window as u64,
    });
    let fallback = format!("{}.~rejected", config.nats.subject_prefix);
    let publisher = Publisher::new(transport, window, ack_timeout, fallback, stats.clone());
    if feeds.is_empty() {
        // Nothing to read in this shard (more shards than channels): stay up
        // like any shard, so a supervisor does not restart it in a loop.
        tracing::warn!(shard = config.bridge.shard, shards = config.bridge.shards, "no channel falls in this shard");
        shutdown.await;
        let stats = stats.snapshot();
        return Ok(Summary {
            stats,
            undrained: 0,
            unread: 0,
            stream_ended: true,
            rejected: 0,
            unmarked_holes: 0,
            channels: 0,
        });
    }
    let run = run_id(started_ms);
    let mut bridge = Loop { config: &config, stats, feeds, tracker, publisher, ledger, run, resets: 0 };
    let mut summary = bridge.drive(Events { streams, next: 0 }, shutdown).await;
    summary.channels = channels;
    Ok(summary)
}

/// What the loop works with.
struct Loop<'c, T: Transport, L: Ledger> {
    config: &'c Config,
    stats: Arc<Stats>,
    feeds: Vec<Feed>,
    tracker: Tracker,
    publisher: Publisher<T>,
    ledger: L,
    run: String,
    /// Resets counted into `stats` so far.
    resets: u64,
}

/// The pools' event streams as one, tagged with the feed's index: polled
/// in turn, each poll starting after the stream that answered last, so a
/// busy endpoint cannot starve another (and, unlike `select_all`, nothing
/// is allocated per event). Ends when every stream has ended.
struct Events {
    streams: Vec<Option<PoolEvents>>,
    next: usize,
}

impl Stream for Events {
    type Item = (usize, PoolEvent);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<(usize, PoolEvent)>> {
        let n = self.streams.len();
        let mut open = false;
        for i in 0..n {
            let k = (self.next + i) % n;
            let Some(stream) = self.streams[k].as_mut() else { continue };
            match Pin::new(stream).poll_next(cx) {
                Poll::Ready(Some(event)) => {
                    self.next = (k + 1) % n;
                    return Poll::Ready(Some((k, event)));
                }
                Poll::Ready(None) => self.streams[k] = None,
                Poll::Pending => open = true,
            }
        }
        if open {
            Poll::Pending
        } else {
            Poll::Ready(None)
        }
    }
}

type Consult = BoxFuture<'static, (u128, Result<Option<Tail>, String>)>;
type Checking = BoxFuture<'static, (Check, Result<Option<Ranges>, String>)>;

impl<T: Transport, L: Ledger> Loop<'_, T, L> {
    async fn drive(&mut self, mut events: Events, shutdown: impl std::future::Future<Output = ()>) -> Summary {
        let config = self.config;
        let every = Duration::from_millis(config.bridge.stats_interval_ms.max(1));
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        let report = config.bridge.stats_interval_ms > 0;
        let window = config.nats.max_in_flight;
        tokio::pin!(shutdown);
        let mut consults: FuturesUnordered<Consult> = FuturesUnordered::new();
        let mut checks: FuturesUnordered<Checking> = FuturesUnordered::new();
        let mut stopping: Option<Instant> = None;
        let mut ended = false;
        // Since when reading is paused, and whether that pause was logged (only
        // pauses longer than PAUSE_WORTH_A_WARNING are: a busy window fills and
        // empties many times a second).
        let mut paused: Option<(Instant, bool)> = None;
        loop {
            let now = Instant::now();
            while consults.len() < MAX_CONSULTS {
                let Some((key, subject)) = self.tracker.next_consult(now) else { break };
                consults.push(self.ledger.tail(subject).map(move |tail| (key, tail)).boxed());
            }
            while checks.len() < MAX_CHECKS {
                let Some(check) = self.tracker.next_check(now) else { break };
                checks.push(self.ledger.covered(&check).map(move |covered| (check, covered)).boxed());
            }
            self.publisher.pump().await;
            let reading = self.room(window) > 0 && !ended;
            self.stats.set_backpressured(!reading && !ended);
            paused = self.note_pause(reading || ended, paused);
            let idle = consults.is_empty() && checks.is_empty() && self.tracker.held() == 0;
            if ended
                && idle
                && self.tracker.pending_checks() == 0
                && self.publisher.in_flight() + self.publisher.backlog() == 0
            {
                break;
            }
            if stopping.is_some_and(|t| Instant::now() >= t) {
                break;
            }
            let wake =
                self.publisher.held_until().into_iter().chain(self.tracker.next_deadline()).chain(stopping).min();
            tokio::select! {
                biased;
                () = self.publisher.settle_next(), if self.publisher.in_flight() > 0 => {}
                Some((key, tail)) = consults.next(), if !consults.is_empty() => {
                    let publisher = &mut self.publisher;
                    self.tracker.consulted(key, tail, Instant::now(), &mut |o| publisher.push(o));
                    self.count_resets();
                }
                Some((check, covered)) = checks.next(), if !checks.is_empty() => {
                    let publisher = &mut self.publisher;
                    self.tracker.checked(check, covered, Instant::now(), &mut |o| publisher.push(o));
                }
                () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
                () = &mut shutdown, if stopping.is_none() => {
                    stopping = Some(Instant::now() + Duration::from_millis(config.bridge.drain_timeout_ms));
                    // A hole's check cannot wait for a process that stops.
                    self.tracker.hurry(Instant::now());
                    for feed in &self.feeds {
                        let pool = feed.pool.clone();
                        tokio::spawn(async move { pool.close().await });
                    }
                }
                _ = tick.tick(), if report => {
                    let figures = serde_json::to_string(&self.stats.snapshot()).unwrap_or_default();
                    tracing::info!(shard = config.bridge.shard, instance = %config.bridge.instance, %figures, "figures");
                }
                event = events.next(), if reading => match event {
                    None => ended = true,
                    Some((index, event)) => {
                        // One reading of the clocks for the batch.
                        let at = (Instant::now(), tracker::unix_ms());
                        self.on_event(index, event, at);
                        // The events already there, while there is room: one turn for many.
                        for _ in 1..EVENT_BATCH {
                            if self.room(window) == 0 {
                                break;
                            }
                            match events.next().now_or_never() {
                                Some(Some((index, event))) => self.on_event(index, event, at),
                                Some(None) => {
                                    ended = true;
                                    break;
                                }
                                None => break,
                            }
                        }
                    }
                }
            }
        }
        self.finish(events, ended, stopping, checks.len() + consults.len()).await
    }

    /// Messages that may still be read before reading pauses: the window
    /// less what is in flight, queued and held.
    fn room(&self, window: usize) -> usize {
        let used = self.publisher.in_flight() + self.publisher.backlog() + self.tracker.held();
        window.saturating_sub(used)
    }

    fn count_resets(&mut self) {
        let resets = self.tracker.counts().resets;
        for _ in self.resets..resets {
            self.stats.reset();
        }
        self.resets = resets;
    }

    fn note_pause(&self, reading: bool, paused: Option<(Instant, bool)>) -> Option<(Instant, bool)> {
        match (reading, paused) {
            (true, Some((since, true))) => {
                tracing::info!(paused_for = ?since.elapsed(), "reading resumed");
                None
            }
            (true, _) => None,
            (false, None) => Some((Instant::now(), false)),
            (false, Some((since, false))) if since.elapsed() >= PAUSE_WORTH_A_WARNING => {
                tracing::warn!(
                    in_flight = self.publisher.in_flight(),
                    backlog = self.publisher.backlog(),
                    held = self.tracker.held(),
                    retries = self.stats.snapshot().retries,
                    "publish window full for {:?}: reading paused (NATS slow or away)",
                    since.elapsed()
                );
                Some((since, true))
            }
            (false, still) => still,
        }
    }

    /// After the loop: counts what was left, closes the pools.
    async fn finish(
        &mut self,
        mut events: Events,
        mut ended: bool,
        stopping: Option<Instant>,
        reading: usize,
    ) -> Summary {
        // The deadline passed before the stream ended: what the pools' buffers
        // hold now is lost; count it (without waiting) rather than drop it unseen.
        let mut unread = 0;
        while !ended {
            match events.next().now_or_never() {
                Some(Some((_, PoolEvent::Member { event: SessionEvent::Message(_), .. }))) => unread += 1,
                Some(Some(_)) => {}
                Some(None) => ended = true,
                None => break,
            }
        }
        let (p, t) = (&self.publisher, &self.tracker);
        let undrained = p.in_flight() + p.backlog() + t.held() + unread;
        let unmarked_holes = (t.pending_checks() + reading) as u64 + t.counts().unchecked;
        if undrained > 0 || !ended || unmarked_holes > 0 {
            tracing::warn!(
                in_flight = p.in_flight(),
                backlog = p.backlog(),
                held = t.held(),
                unread,
                unmarked_holes,
                stream_ended = ended,
                "the drain deadline passed: messages were read and not stored, or holes not marked"
            );
        }
        // Unread, the stream would hold the members' last events and their close with them.
        drop(events);
        // The pools close together, within what is left of the drain deadline (at least a second).
        let drain = Duration::from_millis(self.config.bridge.drain_timeout_ms);
        let limit = stopping.unwrap_or_else(|| Instant::now() + drain);
        let closes = futures_util::future::join_all(self.feeds.iter().map(|feed| feed.pool.close()));
        if tokio::time::timeout_at(limit.max(Instant::now() + Duration::from_secs(1)), closes).await.is_err() {
            tracing::warn!("the pools did not close within the drain deadline");
        }
        Summary {
            stats: self.stats.snapshot(),
            undrained,
            unread,
            stream_ended: ended,
            rejected: self.publisher.rejected(),
            unmarked_holes,
            channels: 0,
        }
    }

    /// Handles one event, read at `at` (an `Instant` and Unix ms).
    fn on_event(&mut self, index: usize, event: PoolEvent, (now, now_ms): (Instant, u64)) {
        let Some(feed) = self.feeds.get_mut(index) else { return };
        let name = feed.endpoint.name.as_str();
        let members = feed.connects.len().max(1);
        match event {
            PoolEvent::Started { index: member, .. } => {
                let channels = feed.assignment.per_connection.get(member % members).cloned();
                if let (Some(client), Some(channels)) = (feed.pool.client(member), channels) {
                    let endpoint = name.to_owned();
                    tokio::spawn(async move {
                        let refs: Vec<&str> = channels.iter().map(String::as_str).collect();
                        if let Err(e) = client.subscribe(&refs).await {
                            tracing::warn!(%endpoint, member, error = %e, "subscribe refused");
                        }
                    });
                }
            }
            PoolEvent::Member { index: member, event: SessionEvent::Connected { .. } } => {
                let slot = member % members;
                feed.connects[slot] += 1;
                let (instance, run) = (&self.config.bridge.instance, &self.run);
                let connection: Arc<str> =
                    Arc::from(format!("{instance}/{name}/{member}.{}/{run}", feed.connects[slot]));
                feed.connections[slot] = connection.clone();
                // With an exchange sequence, what was missed is found from the
                // numbers; without, the first connection of a run may follow
                // a downtime, and every re-made connection may have missed messages.
                if feed.endpoint.sequence_pointer.is_empty() {
                    let reason = if feed.connects[slot] == 1 { GapReason::Restart } else { GapReason::Reconnect };
                    for channel in &feed.assignment.per_connection[slot] {
                        if let Some(m) =
                            self.tracker.connection_gap(index, channel, &connection, reason, Instant::now())
                        {
                            self.publisher.push(m);
                        }
                    }
                }
            }
            PoolEvent::Member { index: member, event: SessionEvent::SubscriptionFailed { channels, reason } } => {
                // The session keeps them and asks again after the next reconnect.
                tracing::warn!(endpoint = name, member, ?channels, %reason, "subscription refused");
            }
            PoolEvent::Member { index: member, event: SessionEvent::Message(message) } => {
                self.stats.received(&feed.received);
                // A text message is read as text (its UTF-8 was checked on arrival).
                let (payload, text) = match message {
                    wslink_tokio::Message::Text(t) => (bytes::Bytes::from(t.clone()), Some(t)),
                    wslink_tokio::Message::Binary(b) => (b, None),
                };
                let ident = match &text {
                    Some(t) => msgid::identify_text(t.as_str(), &feed.pointers),
                    None => msgid::identify(&payload, &feed.pointers),
                };
                let connection = &feed.connections[member % members];
                let read = Read { source: index, connection, ident, payload: &payload, received_ms: now_ms, at: now };
                let publisher = &mut self.publisher;
                self.tracker.message(&read, &mut |o| publisher.push(o));
            }
            _ => {}
        }
    }
}

/// Starts `endpoint`'s pool of `size` connections with its settings.
fn start_pool(endpoint: &Endpoint, size: usize) -> Result<(Pool, PoolEvents), BridgeError> {
    let auth = match &endpoint.auth_method {
        Some(method) => Some((method.clone(), endpoint.auth_params()?.unwrap_or_else(|| "{}".into()))),
        None => None,
    };
    let endpoint_error = |source| BridgeError::Endpoint { endpoint: endpoint.name.clone(), source };
    // Check the settings once here, so a bad one is an error now rather than a member restarting forever.
    builder(endpoint, auth.clone()).map_err(endpoint_error)?;
    let endpoint = endpoint.clone();
    let make = move |_member: usize| builder(&endpoint, auth.clone());
    Ok(Pool::builder(make).size(size).start())
}

/// The client builder of one connection to `endpoint`.
pub fn builder(endpoint: &Endpoint, auth: Option<(String, String)>) -> Result<Builder, wslink_tokio::Error> {
    let mut b = Builder::new(&endpoint.url)?
        .subscription_codec(presets::JsonRpcSubscriptions {
            subscribe_method: endpoint.subscribe_method.clone().into(),
            ..presets::JsonRpcSubscriptions::default()
        })
        .max_message_size(endpoint.max_message_size)
        .backoff(endpoint.backoff())
        .ping(endpoint.ping())
        .metrics_label(endpoint.name.clone());
    if let Some(idle) = endpoint.idle_timeout() {
        b = b.idle_timeout(idle);
    }
    if let Some((auth_method, params)) = auth {
        b = b.authenticator(presets::JsonRpcAuth::new(auth_method, move |_| params.clone()));
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_differ_between_runs() {
        let (a, b) = (run_id(1), run_id(1));
        assert_ne!(a, b);
        assert!(a.len() <= 24 && !a.contains(['.', ' ', '*', '>']), "{a}");
    }
}
