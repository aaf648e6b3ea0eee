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
//! `drain_timeout_ms`; what is left then is reported in the [`Summary`].

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{select_all, StreamExt};
use tokio::time::Instant;
use wslink_tokio::{presets, Builder, Pool, PoolEvent, PoolEvents, SessionEvent};

use crate::config::{Config, ConfigError, Endpoint};
use crate::envelope::{Received, Tracker};
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
    /// Messages read but neither stored nor acked as duplicates when the drain timed out.
    pub undrained: usize,
    /// Messages dropped as too large for the server.
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
    let mut publisher = Publisher::new(js, config.nats.max_in_flight, ack_timeout, stats.clone());
    let mut tracker = Tracker::default();
    let instance = config.bridge.instance.clone();
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
        return Ok(Summary { stats: stats.snapshot(), undrained: 0, rejected: 0, channels: 0 });
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
                    on_event(feed, event, &instance, &prefix, &mut tracker, &mut publisher, &stats);
                }
            }
        }
    }
    let undrained = publisher.in_flight() + publisher.backlog();
    // Unread, the stream would hold the members' last events and their close with them.
    drop(events);
    for feed in &feeds {
        feed.pool.close().await;
    }
    Ok(Summary { stats: stats.snapshot(), undrained, rejected: publisher.rejected(), channels })
}

fn on_event(
    feed: &mut Feed,
    event: PoolEvent,
    instance: &str,
    prefix: &str,
    tracker: &mut Tracker,
    publisher: &mut Publisher,
    stats: &Stats,
) {
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
            // With an exchange sequence, a jump is seen exactly; without, every
            // re-made connection may have missed messages.
            if feed.connects[slot] > 1 && feed.endpoint.sequence_pointer.is_empty() {
                let connection = format!("{instance}/{name}/{index}.{}", feed.connects[slot]);
                for channel in &feed.assignment.per_connection[slot] {
                    let subject = subject::subject(prefix, name, Some(channel));
                    publisher.push(tracker.reconnect_gap(&subject, &connection, Instant::now()));
                    stats.gap();
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
            let connection = format!("{instance}/{name}/{index}.{}", feed.connects[slot]);
            let payload = match message {
                wslink_tokio::Message::Text(t) => bytes::Bytes::from(t),
                wslink_tokio::Message::Binary(b) => b,
            };
            let ident = msgid::identify(name, &payload, &feed.pointers);
            let subject = subject::subject(prefix, name, ident.channel.as_deref());
            let received = Received { subject, endpoint: name, connection: &connection, ident, payload, at };
            for out in tracker.wrap(received) {
                if out.headers.get(crate::envelope::header::KIND).is_some_and(|k| k.as_str() == "gap") {
                    stats.gap();
                }
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

/// Creates the stream, or finds it; warns when its de-duplication window is
/// shorter than the configured one (a failover longer than it could double).
async fn ensure_stream(js: &async_nats::jetstream::Context, config: &Config) -> Result<(), BridgeError> {
    use async_nats::jetstream::stream;
    let n = &config.nats;
    let want = Duration::from_millis(n.duplicate_window_ms);
    let stream_config = stream::Config {
        name: n.stream.clone(),
        subjects: vec![subject::wildcard(&n.subject_prefix)],
        duplicate_window: want,
        num_replicas: n.stream_replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    // A cluster may still be electing its JetStream leader: a few tries.
    let mut attempt = 0u32;
    loop {
        match js.get_or_create_stream(stream_config.clone()).await {
            Ok(mut s) => {
                let window = s.info().await.map(|i| i.config.duplicate_window).unwrap_or(want);
                if window < want {
                    tracing::warn!(stream = %n.stream, ?window, ?want, "the stream's duplicate window is shorter than configured");
                }
                return Ok(());
            }
            Err(e) if attempt < 9 => {
                tracing::warn!(attempt, error = %e, "stream not ready");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(source) => return Err(BridgeError::Stream { stream: n.stream.clone(), source }),
        }
    }
}

fn start_pool(endpoint: &Endpoint, size: usize) -> Result<(Pool, PoolEvents), BridgeError> {
    let auth = match &endpoint.auth_method {
        Some(method) => Some((method.clone(), endpoint.auth_params()?.unwrap_or_else(|| "{}".into()))),
        None => None,
    };
    let (url, method, name) = (endpoint.url.clone(), endpoint.subscribe_method.clone(), endpoint.name.clone());
    // Check the URL once here, so a bad one is an error now rather than a member restarting forever.
    Builder::new(&url).map_err(|source| BridgeError::Endpoint { endpoint: name.clone(), source })?;
    let make = move |_member: usize| {
        let mut b = Builder::new(&url)?
            .subscription_codec(presets::JsonRpcSubscriptions {
                subscribe_method: method.clone().into(),
                ..presets::JsonRpcSubscriptions::default()
            })
            .metrics_label(name.clone());
        if let Some((auth_method, params)) = &auth {
            let params = params.clone();
            b = b.authenticator(presets::JsonRpcAuth::new(auth_method.clone(), move |_| params.clone()));
        }
        Ok(b)
    };
    Ok(Pool::builder(make).size(size).start())
}
