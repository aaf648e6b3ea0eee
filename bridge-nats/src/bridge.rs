//! The bridge's loop: pools of WebSocket connections in, JetStream out.
//!
//! One turn: send what the window allows, then wait for the first of an
//! ack, the end of a retry delay, the shutdown signal, the periodic figures,
//! or, only while the [`Publisher`] is ready, the next WebSocket event. Not
//! asking for events is the backpressure: the pools' streams fill, their
//! members stop reading their sockets, and TCP slows the exchange.
//!
//! Shutdown drains: the pools are closed (each member ends its connection
//! with a close handshake), the events still buffered are read and
//! published, and the acks still awaited are waited for, all within
//! `drain_timeout_ms`; what is left then is reported in the [`Summary`]:
//! messages queued or awaiting acks, messages read into the pools' buffers
//! but never published (taken without waiting when the deadline passes),
//! and whether the pools' event stream ended at all (if not, their members
//! may still have held messages).
//!
//! Each run of the process has its own id (its start time in Unix ms and a
//! random number), part of every connection id, so the ids of `reconnect`
//! and `restart` gaps are never reused by a later run or another replica of
//! the same name.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{select_all, StreamExt};
use futures_util::FutureExt;
use tokio::time::Instant;
use wslink_tokio::{presets, Builder, Pool, PoolEvent, PoolEvents, SessionEvent};

use crate::config::{Config, ConfigError, Endpoint};
use crate::envelope::{GapReason, Received, Tracker};
use crate::msgid::{self, Pointers};
use crate::publisher::Publisher;
use crate::shard::{self, Assignment};
use crate::stats::{Snapshot, Stats};
use crate::subject;

/// Why the bridge could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The configuration is wrong (or an environment variable it names is missing).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The NATS credentials file could not be read.
    #[error("cannot read the NATS credentials file: {0}")]
    Credentials(std::io::Error),
    /// No NATS server could be reached at start.
    #[error("cannot connect to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    /// The stream could not be created or found.
    #[error("cannot create or find the JetStream stream {stream:?}: {source}")]
    Stream {
        /// The stream's name.
        stream: String,
        /// JetStream's answer.
        source: async_nats::jetstream::context::CreateStreamError,
    },
    /// The existing stream's configuration could not be read.
    #[error("cannot read the configuration of the JetStream stream {stream:?}: {source}")]
    StreamInfo {
        /// The stream's name.
        stream: String,
        /// JetStream's answer.
        source: async_nats::jetstream::context::RequestError,
    },
    /// The existing stream cannot be used safely: its subjects do not cover
    /// `<subject_prefix>.>`, or its de-duplication window is shorter than the
    /// configured one (a resend or a failover could be stored twice).
    #[error("the JetStream stream {stream:?} does not fit: {reason}")]
    StreamMismatch {
        /// The stream's name.
        stream: String,
        /// What does not fit.
        reason: String,
    },
    /// A WebSocket endpoint's client could not be built.
    #[error("endpoint {endpoint:?}: {source}")]
    Endpoint {
        /// The endpoint's name.
        endpoint: String,
        /// The builder's error.
        source: wslink_tokio::Error,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// The figures at the end.
    pub stats: Snapshot,
    /// Messages read but neither stored nor acked as duplicates when the
    /// drain timed out: those queued or awaiting acks, plus `unread`.
    pub undrained: usize,
    /// Of `undrained`, messages read into the pools' buffers but never
    /// published (taken without waiting once the drain deadline passed).
    pub unread: usize,
    /// Whether the pools' event stream ended (every member closed and its
    /// events delivered); when not, the members may have held more messages.
    pub stream_ended: bool,
    /// Messages no server could store (too large), each replaced by a marker.
    pub rejected: u64,
    /// Channels this shard ran.
    pub channels: usize,
}

/// A pause of the reads longer than this is logged as a warning.
const PAUSE_WORTH_A_WARNING: Duration = Duration::from_secs(1);

/// One endpoint's pool, as the loop knows it.
struct Feed {
    endpoint: Endpoint,
    pointers: Pointers,
    assignment: Assignment,
    pool: Pool,
    /// Per pool member: connections made so far.
    connects: Vec<u64>,
}

/// This run's id: its start time in Unix milliseconds and a random number,
/// both hex (`18c2f3a4b5c-9f86d081`).
fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
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
    let js = connect_nats(&config).await?;
    let assignments = shard::assign(&config);
    let channels = assignments.iter().map(|a| a.channels().count()).sum();
    let mut feeds = Vec::new();
    let mut streams = Vec::new();
    for assignment in assignments {
        let endpoint = config.endpoints[assignment.endpoint].clone();
        let (pool, events) = start_pool(&endpoint, assignment.per_connection.len())?;
        let index = feeds.len();
        streams.push(events.map(move |e| (index, e)).boxed());
        let pointers = Pointers {
            channel: endpoint.channel_pointer.clone(),
            id: endpoint.id_pointer.clone(),
            sequence: endpoint.sequence_pointer.clone(),
        };
        let connects = vec![0; assignment.per_connection.len()];
        feeds.push(Feed { endpoint, pointers, assignment, pool, connects });
    }
    let mut events = select_all(streams);
    let ack_timeout = Duration::from_millis(config.nats.ack_timeout_ms);
    let fallback = format!("{}.~rejected", config.nats.subject_prefix);
    let mut publisher = Publisher::new(js, config.nats.max_in_flight, ack_timeout, fallback, stats.clone());
    let mut tracker = Tracker::default();
    let instance = config.bridge.instance.clone();
    let run = run_id();
    let prefix = config.nats.subject_prefix.clone();
    let every = Duration::from_millis(config.bridge.stats_interval_ms.max(1));
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    let report = config.bridge.stats_interval_ms > 0;
    tokio::pin!(shutdown);
    if feeds.is_empty() {
        // Nothing to read in this shard (more shards than channels): stay up
        // like any shard, so a supervisor does not restart it in a loop.
        tracing::warn!(shard = config.bridge.shard, shards = config.bridge.shards, "no channel falls in this shard");
        shutdown.await;
        return Ok(Summary {
            stats: stats.snapshot(),
            undrained: 0,
            unread: 0,
            stream_ended: true,
            rejected: 0,
            channels: 0,
        });
    }
    let mut stopping: Option<Instant> = None;
    let mut ended = false;
    // Since when reading is paused, and whether that pause was logged (only
    // pauses longer than PAUSE_WORTH_A_WARNING are: a busy window fills and
    // empties many times a second).
    let mut paused: Option<(Instant, bool)> = None;

    loop {
        publisher.pump().await;
        let reading = publisher.ready() && !ended;
        stats.set_backpressured(!reading && !ended);
        paused = match (reading || ended, paused) {
            (true, Some((since, true))) => {
                tracing::info!(paused_for = ?since.elapsed(), "reading resumed");
                None
            }
            (true, _) => None,
            (false, None) => Some((Instant::now(), false)),
            (false, Some((since, false))) if since.elapsed() >= PAUSE_WORTH_A_WARNING => {
                tracing::warn!(
                    in_flight = publisher.in_flight(),
                    backlog = publisher.backlog(),
                    retries = stats.snapshot().retries,
                    "publish window full for {:?}: reading paused (NATS slow or away)",
                    since.elapsed()
                );
                Some((since, true))
            }
            (false, still) => still,
        };
        if ended && publisher.in_flight() + publisher.backlog() == 0 {
            break;
        }
        if stopping.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        let hold = publisher.held_until();
        let deadline = stopping;
        tokio::select! {
            biased;
            () = publisher.settle_next(), if publisher.in_flight() > 0 => {}
            () = tokio::time::sleep_until(hold.unwrap_or_else(Instant::now)), if hold.is_some() => {}
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
            () = &mut shutdown, if stopping.is_none() => {
                stopping = Some(Instant::now() + Duration::from_millis(config.bridge.drain_timeout_ms));
                for feed in &feeds {
                    let pool = feed.pool.clone();
                    tokio::spawn(async move { pool.close().await });
                }
            }
            _ = tick.tick(), if report => {
                let figures = serde_json::to_string(&stats.snapshot()).unwrap_or_default();
                tracing::info!(shard = config.bridge.shard, %instance, %figures, "figures");
            }
            event = events.next(), if reading => match event {
                None => ended = true,
                Some((index, event)) => {
                    let feed = &mut feeds[index];
                    let ids = Ids { instance: &instance, run: &run, prefix: &prefix };
                    on_event(feed, event, ids, &mut tracker, &mut publisher, &stats);
                }
            }
        }
    }
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
    let undrained = publisher.in_flight() + publisher.backlog() + unread;
    if undrained > 0 || !ended {
        tracing::warn!(
            in_flight = publisher.in_flight(),
            backlog = publisher.backlog(),
            unread,
            stream_ended = ended,
            "the drain deadline passed: messages were read and not stored"
        );
    }
    // Unread, the stream would hold the members' last events and their close with them.
    drop(events);
    // The pools close together, within what is left of the drain deadline (at least a second).
    let limit = stopping.unwrap_or_else(|| Instant::now() + Duration::from_millis(config.bridge.drain_timeout_ms));
    let closes = futures_util::future::join_all(feeds.iter().map(|feed| feed.pool.close()));
    if tokio::time::timeout_at(limit.max(Instant::now() + Duration::from_secs(1)), closes).await.is_err() {
        tracing::warn!("the pools did not close within the drain deadline");
    }
    Ok(Summary {
        stats: stats.snapshot(),
        undrained,
        unread,
        stream_ended: ended,
        rejected: publisher.rejected(),
        channels,
    })
}

/// What names a connection and its subjects.
#[derive(Clone, Copy)]
struct Ids<'a> {
    instance: &'a str,
    run: &'a str,
    prefix: &'a str,
}

fn on_event(
    feed: &mut Feed,
    event: PoolEvent,
    ids: Ids<'_>,
    tracker: &mut Tracker,
    publisher: &mut Publisher,
    stats: &Stats,
) {
    let Ids { instance, run, prefix } = ids;
    let name = feed.endpoint.name.as_str();
    match event {
        PoolEvent::Started { index, .. } => {
            let channels = feed.assignment.per_connection.get(index % feed.connects.len().max(1)).cloned();
            if let (Some(client), Some(channels)) = (feed.pool.client(index), channels) {
                let endpoint = name.to_owned();
                tokio::spawn(async move {
                    let refs: Vec<&str> = channels.iter().map(String::as_str).collect();
                    if let Err(e) = client.subscribe(&refs).await {
                        tracing::warn!(%endpoint, member = index, error = %e, "subscribe refused");
                    }
                });
            }
        }
        PoolEvent::Member { index, event: SessionEvent::Connected { .. } } => {
            let slot = index % feed.connects.len().max(1);
            feed.connects[slot] += 1;
            // With an exchange sequence, a jump is seen exactly (and a
            // consumer sees a restart's from `Wslink-Exchange-Seq`); without,
            // the first connection of a run may follow a downtime, and every
            // re-made connection may have missed messages.
            if feed.endpoint.sequence_pointer.is_empty() {
                let reason = if feed.connects[slot] == 1 { GapReason::Restart } else { GapReason::Reconnect };
                let connection = format!("{instance}/{name}/{index}.{}/{run}", feed.connects[slot]);
                for channel in &feed.assignment.per_connection[slot] {
                    let subject = subject::subject(prefix, name, Some(channel));
                    publisher.push(tracker.connection_gap(&subject, &connection, reason, Instant::now()));
                }
            }
        }
        PoolEvent::Member { index, event: SessionEvent::SubscriptionFailed { channels, reason } } => {
            // The session keeps them and asks again after the next reconnect.
            tracing::warn!(endpoint = name, member = index, ?channels, %reason, "subscription refused");
        }
        PoolEvent::Member { index, event: SessionEvent::Message(message) } => {
            let at = Instant::now();
            stats.received(name);
            let slot = index % feed.connects.len().max(1);
            let connection = format!("{instance}/{name}/{index}.{}/{run}", feed.connects[slot]);
            let payload = match message {
                wslink_tokio::Message::Text(t) => bytes::Bytes::from(t),
                wslink_tokio::Message::Binary(b) => b,
            };
            let ident = msgid::identify(name, &payload, &feed.pointers);
            let subject = subject::subject(prefix, name, ident.channel.as_deref());
            let received = Received { subject, endpoint: name, connection: &connection, ident, payload, at };
            for out in tracker.wrap(received) {
                publisher.push(out);
            }
        }
        _ => {}
    }
}

async fn connect_nats(config: &Config) -> Result<async_nats::jetstream::Context, BridgeError> {
    let n = &config.nats;
    let mut options = async_nats::ConnectOptions::new()
        .name(format!(
            "wslink-bridge {} shard {}/{}",
            config.bridge.instance, config.bridge.shard, config.bridge.shards
        ))
        .connection_timeout(Duration::from_secs(5))
        // The window bounds what is buffered; the client may hold all of it while reconnecting.
        .client_capacity(n.max_in_flight.saturating_mul(2).max(2048))
        .max_reconnects(None);
    if let (Some(user), Some(password)) = (&n.user, &n.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &n.token {
        options = options.token(token.clone());
    }
    if let Some(file) = &n.credentials_file {
        options = options.credentials_file(file).await.map_err(BridgeError::Credentials)?;
    }
    let client = options.connect(n.urls.clone()).await?;
    let js = async_nats::jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_millis(n.ack_timeout_ms))
        .max_ack_inflight(n.max_in_flight.saturating_add(16))
        .build(client);
    if n.ensure_stream {
        ensure_stream(&js, config).await?;
    }
    Ok(js)
}

/// Creates the stream, or finds it and checks that it fits: its subjects
/// cover `<subject_prefix>.>` and its de-duplication window is at least the
/// configured one. A stream that does not fit is a
/// [`BridgeError::StreamMismatch`]: publishing into it would lose messages
/// (no stream takes them) or store resends twice.
async fn ensure_stream(js: &async_nats::jetstream::Context, config: &Config) -> Result<(), BridgeError> {
    use async_nats::jetstream::stream;
    let n = &config.nats;
    let want = Duration::from_millis(n.duplicate_window_ms);
    let wildcard = subject::wildcard(&n.subject_prefix);
    let stream_config = stream::Config {
        name: n.stream.clone(),
        subjects: vec![wildcard.clone()],
        duplicate_window: want,
        num_replicas: n.stream_replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    // A cluster may still be electing its JetStream leader: a few tries.
    let mut attempt = 0u32;
    let mut found = loop {
        match js.get_or_create_stream(stream_config.clone()).await {
            Ok(s) => break s,
            Err(e) if attempt < 9 => {
                tracing::warn!(attempt, error = %e, "stream not ready");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(source) => return Err(BridgeError::Stream { stream: n.stream.clone(), source }),
        }
    };
    let info = found.info().await.map_err(|source| BridgeError::StreamInfo { stream: n.stream.clone(), source })?;
    check_stream(&n.stream, &info.config.subjects, info.config.duplicate_window, &wildcard, want)
}

/// Whether a stream with `subjects` and de-duplication `window` can take
/// the bridge's subjects (`wildcard`) with at least the `want`ed window.
fn check_stream(
    stream: &str,
    subjects: &[String],
    window: Duration,
    wildcard: &str,
    want: Duration,
) -> Result<(), BridgeError> {
    let mismatch = |reason: String| Err(BridgeError::StreamMismatch { stream: stream.to_owned(), reason });
    if !subjects.iter().any(|s| subject::covers(s, wildcard)) {
        return mismatch(format!("its subjects {subjects:?} do not cover {wildcard:?}"));
    }
    if window < want {
        return mismatch(format!(
            "its duplicate window {window:?} is shorter than nats.duplicate_window_ms ({want:?}): a resend could be stored twice"
        ));
    }
    Ok(())
}

fn start_pool(endpoint: &Endpoint, size: usize) -> Result<(Pool, PoolEvents), BridgeError> {
    let auth = match &endpoint.auth_method {
        Some(method) => Some((method.clone(), endpoint.auth_params()?.unwrap_or_else(|| "{}".into()))),
        None => None,
    };
    let (url, method, name) = (endpoint.url.clone(), endpoint.subscribe_method.clone(), endpoint.name.clone());
    let max_message = endpoint.max_message_size;
    // Check the URL once here, so a bad one is an error now rather than a member restarting forever.
    Builder::new(&url).map_err(|source| BridgeError::Endpoint { endpoint: name.clone(), source })?;
    let make = move |_member: usize| {
        let mut b = Builder::new(&url)?
            .subscription_codec(presets::JsonRpcSubscriptions {
                subscribe_method: method.clone().into(),
                ..presets::JsonRpcSubscriptions::default()
            })
            .max_message_size(max_message)
            .metrics_label(name.clone());
        if let Some((auth_method, params)) = &auth {
            let params = params.clone();
            b = b.authenticator(presets::JsonRpcAuth::new(auth_method.clone(), move |_| params.clone()));
        }
        Ok(b)
    };
    Ok(Pool::builder(make).size(size).start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_that_does_not_fit_is_refused() {
        let ok = |subjects: &[&str], window_s: u64| {
            let subjects: Vec<String> = subjects.iter().map(|s| (*s).to_owned()).collect();
            check_stream("S", &subjects, Duration::from_secs(window_s), "feed.>", Duration::from_secs(120))
        };
        assert!(ok(&["feed.>"], 120).is_ok());
        assert!(ok(&["other.>", ">"], 300).is_ok());
        assert!(ok(&["*.>"], 120).is_ok());
        let short = ok(&["feed.>"], 60).unwrap_err();
        assert!(matches!(short, BridgeError::StreamMismatch { .. }) && short.to_string().contains("duplicate window"));
        for subjects in [&["feed.mock.>"][..], &["feed.*"], &["other.>"], &[]] {
            let e = ok(subjects, 120).unwrap_err();
            assert!(e.to_string().contains("do not cover"), "{subjects:?}: {e}");
        }
    }

    #[test]
    fn run_ids_differ_between_runs() {
        let (a, b) = (run_id(), run_id());
        assert_ne!(a, b);
        assert!(a.len() <= 24 && !a.contains(['.', ' ', '*', '>']), "{a}");
    }
}
