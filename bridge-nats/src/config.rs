//! The bridge's configuration file (TOML), read and checked before anything
//! starts.
//!
//! Invariant: a [`Config`] returned by [`Config::parse`] or [`Config::load`]
//! has been validated: every endpoint has a unique name that is a valid
//! subject token, a `ws://` or `wss://` URL and at least one connection;
//! every JSON pointer is empty or starts with `/`; the window and the
//! timeouts are positive; the shard is below the shard count; the
//! de-duplication window is at least [`DUPLICATE_WINDOW_FACTOR`] times
//! (`ack_timeout_ms` + the longest retry delay, 2 s), so a message sent
//! again after a lost ack is still recognised as a duplicate, and at most
//! [`MAX_DUPLICATE_WINDOW_MS`]. A broken file
//! is an [`ConfigError`] that names the field, never a panic.
//!
//! ```toml
//! [bridge]
//! shards = 4            # n: how many shards the subscriptions are split into
//! shard = 0             # k: which one this process runs (the command line may override k and n)
//! instance = "a"        # this replica's name, in the connection-id header
//! gap_settle_ms = 5000  # a hole in a feed's numbering is checked against the stream after this
//! worker_threads = 1    # the runtime's threads: one costs least per message
//!
//! [nats]
//! urls = ["nats://127.0.0.1:4222"]
//! stream = "WSLINK"
//! subject_prefix = "wslink"
//! max_in_flight = 1024           # publish acks awaited at once; a full window stops the WebSocket reads
//! duplicate_window_ms = 120000   # JetStream de-duplication: must cover a replica's failover and
//!                                # at least 4 x (ack_timeout_ms + 2000)
//!
//! [[endpoint]]
//! name = "deribit"
//! url = "wss://www.deribit.com/ws/api/v2"
//! connections = 2
//! max_message_size = 8388608     # larger WebSocket messages close the connection (1009)
//! channel_pointer = "/params/channel"
//! id_pointer = "/params/data/change_id"
//! backoff_initial_ms = 250       # reconnects: first delay, growth, longest delay,
//! backoff_factor = 1.5           # and how long a connection must stay up to start again
//! backoff_max_ms = 10000         # from the first delay
//! backoff_reset_after_ms = 10000
//! ping_interval_ms = 15000       # 0: no pings
//! ping_timeout_ms = 10000
//! idle_timeout_ms = 0            # 0: never
//! channels = ["book.BTC-PERPETUAL.100ms", "trades.BTC-PERPETUAL.raw"]
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::subject;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema (unknown
    /// fields are refused, so a typo is not silently ignored).
    #[error("invalid configuration: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A value is out of range or inconsistent; the field is named.
    #[error("invalid configuration: {field}: {reason}")]
    Invalid {
        /// The field, as a path (`endpoint[1].url`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.into(), reason: reason.into() }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This process's place among the shards and replicas.
    #[serde(default)]
    pub bridge: BridgeSection,
    /// Where to publish.
    pub nats: NatsSection,
    /// The WebSocket endpoints to read, with their subscriptions.
    #[serde(rename = "endpoint", default)]
    pub endpoints: Vec<Endpoint>,
}

/// `[bridge]`: sharding and identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSection {
    /// n, the number of shards (default 1).
    #[serde(default = "one")]
    pub shards: u32,
    /// k, the shard this process runs, `0..shards` (default 0).
    #[serde(default)]
    pub shard: u32,
    /// This replica's name (default `"bridge"`); goes into the
    /// `Wslink-Connection` header, so two replicas of a shard are told apart.
    #[serde(default = "default_instance")]
    pub instance: String,
    /// How long a graceful shutdown waits for publish acks in flight (default 10 s).
    #[serde(default = "default_drain_ms")]
    pub drain_timeout_ms: u64,
    /// How often the figures are logged (a `tracing` INFO event, the snapshot
    /// as JSON); 0 turns it off (default 10 s).
    #[serde(default = "default_stats_ms")]
    pub stats_interval_ms: u64,
    /// How long a hole in an exchange's numbering waits before it is checked
    /// against the stream and marked where no replica stored the numbers
    /// (default 5 s, at most half of `nats.duplicate_window_ms`): the time
    /// another replica gets to publish what this one missed.
    #[serde(default = "default_settle_ms")]
    pub gap_settle_ms: u64,
    /// Threads of the process's runtime (default 1, at most 64). With one,
    /// the loop, the WebSocket connections and the NATS client share a
    /// thread and nothing is handed between threads: the least CPU per
    /// message (about a third less than two threads). Scale out with
    /// shards, or give more threads when one process must hold many TLS
    /// connections.
    #[serde(default = "one_usize")]
    pub worker_threads: usize,
}

impl Default for BridgeSection {
    fn default() -> Self {
        Self {
            shards: 1,
            shard: 0,
            instance: default_instance(),
            drain_timeout_ms: default_drain_ms(),
            stats_interval_ms: default_stats_ms(),
            gap_settle_ms: default_settle_ms(),
            worker_threads: 1,
        }
    }
}

/// `[nats]`: the server, the stream and the publish window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSection {
    /// Server URLs (`nats://host:port`); the client fails over between them.
    pub urls: Vec<String>,
    /// The JetStream stream's name (default `"WSLINK"`).
    #[serde(default = "default_stream")]
    pub stream: String,
    /// First token of every subject (default `"wslink"`).
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// Create the stream (or check it exists) at start (default true).
    #[serde(default = "yes")]
    pub ensure_stream: bool,
    /// The stream's replication factor when the bridge creates it (default 1).
    #[serde(default = "one_usize")]
    pub stream_replicas: usize,
    /// The stream's de-duplication window, when the bridge creates it
    /// (default 120 s); an existing stream's must be at least as long. At
    /// least [`DUPLICATE_WINDOW_FACTOR`] x (`ack_timeout_ms` + 2000), at most
    /// [`MAX_DUPLICATE_WINDOW_MS`].
    #[serde(default = "default_dup_ms")]
    pub duplicate_window_ms: u64,
    /// Publish acks awaited at once (default 1024): the bound on memory
    /// while NATS is slow or away.
    #[serde(default = "default_window")]
    pub max_in_flight: usize,
    /// How long one publish waits for its ack before it is sent again
    /// (default 5 s, at most [`MAX_ACK_TIMEOUT_MS`]).
    #[serde(default = "default_ack_ms")]
    pub ack_timeout_ms: u64,
    /// A user and password, if the server asks for them.
    pub user: Option<String>,
    /// The password that goes with `user`.
    pub password: Option<String>,
    /// A token, if the server asks for one.
    pub token: Option<String>,
    /// A `.creds` file (JWT and NKey seed), if the server asks for one.
    pub credentials_file: Option<String>,
}

/// `[[endpoint]]`: one WebSocket endpoint and what to read from it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Its name: the second token of its subjects.
    pub name: String,
    /// `ws://` or `wss://` URL.
    pub url: String,
    /// Connections in this endpoint's pool (default 1); the shard's channels
    /// are spread over them.
    #[serde(default = "one_usize")]
    pub connections: usize,
    /// The largest WebSocket message accepted, in bytes (default 8 MiB, at
    /// most 64 MiB): a larger one closes the connection with 1009 and it is
    /// made again, so this bounds the memory one message can take. A message
    /// accepted here but larger than the server's `max_payload` (1 MiB by
    /// default) is rejected: a marker takes its place and the connection stays.
    #[serde(default = "default_max_message")]
    pub max_message_size: usize,
    /// JSON pointer to a message's channel (default `/params/channel`, as in
    /// JSON-RPC subscription notifications).
    #[serde(default = "default_channel_pointer")]
    pub channel_pointer: String,
    /// JSON pointer to an id the exchange gives each message (a sequence
    /// number, a change id). Empty: ids are hashes of the message (see
    /// `msgid`).
    #[serde(default)]
    pub id_pointer: String,
    /// JSON pointer to an exchange sequence number that rises by one per
    /// message on a channel; when set, numbers missing from the stream are
    /// marked (`sequence`), and a restart of the numbering too (`reset`).
    #[serde(default)]
    pub sequence_pointer: String,
    /// A sequence number more than this far ahead of the last one is taken
    /// for a restart of the numbering, not a hole (default 10^9).
    #[serde(default = "default_max_jump")]
    pub max_sequence_jump: u64,
    /// The first reconnect's delay (default 250 ms); each next one is
    /// `backoff_factor` times longer, up to `backoff_max_ms`, drawn at
    /// random below that (full jitter).
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    /// Growth of the delay per attempt (default 1.5, at least 1).
    #[serde(default = "default_backoff_factor")]
    pub backoff_factor: f64,
    /// The longest delay (default 10 s): a feed that is back is read again
    /// within this, and every second away is a hole.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// A connection open this long starts the delays again from the first
    /// (default 10 s), so a second cut soon after the first is not waited
    /// out as a tenth attempt would be.
    #[serde(default = "default_backoff_reset_ms")]
    pub backoff_reset_after_ms: u64,
    /// Protocol pings this often (default 15 s; 0: none).
    #[serde(default = "default_ping_ms")]
    pub ping_interval_ms: u64,
    /// How long a pong may take before the link counts as dead and is made
    /// again (default 10 s; below `ping_interval_ms`).
    #[serde(default = "default_pong_ms")]
    pub ping_timeout_ms: u64,
    /// The link is made again when nothing arrives for this long (default
    /// 0: never; time with reading paused by a full window does not count).
    #[serde(default)]
    pub idle_timeout_ms: u64,
    /// The JSON-RPC method that subscribes (default `public/subscribe`).
    #[serde(default = "default_subscribe_method")]
    pub subscribe_method: String,
    /// A JSON-RPC method to authenticate with after each upgrade, if any.
    pub auth_method: Option<String>,
    /// Its parameters, as a JSON object in a string.
    pub auth_params: Option<String>,
    /// The environment variable that holds the parameters instead (so a
    /// secret stays out of the file).
    pub auth_params_env: Option<String>,
    /// Every channel of the endpoint; each shard takes its part.
    pub channels: Vec<String>,
}

fn one() -> u32 {
    1
}
fn one_usize() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn default_instance() -> String {
    "bridge".into()
}
fn default_drain_ms() -> u64 {
    10_000
}
fn default_stats_ms() -> u64 {
    10_000
}
fn default_stream() -> String {
    "WSLINK".into()
}
fn default_prefix() -> String {
    "wslink".into()
}
fn default_dup_ms() -> u64 {
    120_000
}
fn default_window() -> usize {
    1024
}
fn default_ack_ms() -> u64 {
    5_000
}
fn default_max_message() -> usize {
    8 << 20
}
fn default_settle_ms() -> u64 {
    5_000
}
fn default_max_jump() -> u64 {
    1_000_000_000
}
fn default_backoff_initial_ms() -> u64 {
    250
}
fn default_backoff_factor() -> f64 {
    1.5
}
fn default_backoff_max_ms() -> u64 {
    10_000
}
fn default_backoff_reset_ms() -> u64 {
    10_000
}
fn default_ping_ms() -> u64 {
    15_000
}
fn default_pong_ms() -> u64 {
    10_000
}
fn default_channel_pointer() -> String {
    "/params/channel".into()
}
fn default_subscribe_method() -> String {
    "public/subscribe".into()
}

/// The most of anything a file may ask for, so a typo cannot ask for a
/// window of a billion acks or a million connections.
const MAX_WINDOW: usize = 1 << 20;
const MAX_CONNECTIONS: usize = 1024;
const MAX_SHARDS: u32 = 1 << 16;
const MAX_MESSAGE: usize = 64 << 20;

/// `duplicate_window_ms` must be at least this many times
/// `ack_timeout_ms` + [`MAX_RETRY_DELAY_MS`]: a publish whose ack was lost is
/// sent again after at most that long, and a few such rounds must still fall
/// inside the window, or the resend is stored twice.
pub const DUPLICATE_WINDOW_FACTOR: u64 = 4;
/// The longest delay before a failed publish is sent again (the publisher's).
pub const MAX_RETRY_DELAY_MS: u64 = 2_000;
/// The longest de-duplication window accepted (7 days; JetStream keeps it
/// in nanoseconds, and far larger values would overflow them).
pub const MAX_DUPLICATE_WINDOW_MS: u64 = 7 * 24 * 3_600_000;
/// The longest ack timeout accepted (10 minutes).
pub const MAX_ACK_TIMEOUT_MS: u64 = 600_000;
/// The longest of the connection's timings accepted (one day).
pub const MAX_TIMING_MS: u64 = 86_400_000;

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text)
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Sets the shard (`k`) and shard count (`n`), as the command line
    /// does, and validates again.
    pub fn with_shard(mut self, shard: u32, shards: u32) -> Result<Self, ConfigError> {
        self.bridge.shard = shard;
        self.bridge.shards = shards;
        self.validate()?;
        Ok(self)
    }

    /// Checks every rule in the module's invariant.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let b = &self.bridge;
        if b.shards == 0 || b.shards > MAX_SHARDS {
            return Err(invalid("bridge.shards", format!("must be from 1 to {MAX_SHARDS}, not {}", b.shards)));
        }
        if b.shard >= b.shards {
            return Err(invalid("bridge.shard", format!("{} is not below bridge.shards ({})", b.shard, b.shards)));
        }
        if b.worker_threads == 0 || b.worker_threads > 64 {
            return Err(invalid("bridge.worker_threads", "must be from 1 to 64"));
        }
        if b.instance.is_empty() || b.instance.len() > 64 || b.instance.chars().any(|c| c.is_control()) {
            return Err(invalid("bridge.instance", "must be 1 to 64 printable characters"));
        }
        let n = &self.nats;
        if n.urls.is_empty() {
            return Err(invalid("nats.urls", "name at least one server"));
        }
        if !subject::is_token(&n.subject_prefix) {
            return Err(invalid("nats.subject_prefix", "must be one subject token: letters, digits, '-' or '_'"));
        }
        if !subject::is_token(&n.stream) {
            return Err(invalid("nats.stream", "must be letters, digits, '-' or '_'"));
        }
        if n.max_in_flight == 0 || n.max_in_flight > MAX_WINDOW {
            return Err(invalid("nats.max_in_flight", format!("must be from 1 to {MAX_WINDOW}")));
        }
        if n.ack_timeout_ms == 0 || n.ack_timeout_ms > MAX_ACK_TIMEOUT_MS {
            return Err(invalid("nats.ack_timeout_ms", format!("must be from 1 to {MAX_ACK_TIMEOUT_MS}")));
        }
        let least = self.min_duplicate_window_ms();
        if n.duplicate_window_ms < least || n.duplicate_window_ms > MAX_DUPLICATE_WINDOW_MS {
            return Err(invalid(
                "nats.duplicate_window_ms",
                format!(
                    "must be from {least} ({DUPLICATE_WINDOW_FACTOR} x (ack_timeout_ms + {MAX_RETRY_DELAY_MS}), so a \
                     publish sent again after a lost ack is still a duplicate) to {MAX_DUPLICATE_WINDOW_MS}, not {}",
                    n.duplicate_window_ms
                ),
            ));
        }
        if b.gap_settle_ms > n.duplicate_window_ms / 2 {
            return Err(invalid(
                "bridge.gap_settle_ms",
                "must be at most half of nats.duplicate_window_ms, so replicas' markers of one hole are de-duplicated",
            ));
        }
        if n.stream_replicas == 0 || n.stream_replicas > 5 {
            return Err(invalid("nats.stream_replicas", "must be from 1 to 5"));
        }
        if n.password.is_some() != n.user.is_some() {
            return Err(invalid("nats.user", "user and password go together"));
        }
        if self.endpoints.is_empty() {
            return Err(invalid("endpoint", "name at least one [[endpoint]]"));
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            let field = |f: &str| format!("endpoint[{i}].{f}");
            if !subject::is_token(&e.name) {
                return Err(invalid(field("name"), "must be one subject token: letters, digits, '-' or '_'"));
            }
            if self.endpoints[..i].iter().any(|o| o.name == e.name) {
                return Err(invalid(field("name"), format!("{:?} is used twice", e.name)));
            }
            if !(e.url.starts_with("ws://") || e.url.starts_with("wss://")) {
                return Err(invalid(field("url"), "must start with ws:// or wss://"));
            }
            if e.connections == 0 || e.connections > MAX_CONNECTIONS {
                return Err(invalid(field("connections"), format!("must be from 1 to {MAX_CONNECTIONS}")));
            }
            if e.max_message_size == 0 || e.max_message_size > MAX_MESSAGE {
                return Err(invalid(field("max_message_size"), format!("must be from 1 to {MAX_MESSAGE}")));
            }
            for (name, pointer) in [
                ("channel_pointer", &e.channel_pointer),
                ("id_pointer", &e.id_pointer),
                ("sequence_pointer", &e.sequence_pointer),
            ] {
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    return Err(invalid(field(name), "a JSON pointer is empty or starts with '/'"));
                }
            }
            if e.channel_pointer.is_empty() {
                return Err(invalid(field("channel_pointer"), "must point at the channel"));
            }
            if e.auth_params.is_some() && e.auth_params_env.is_some() {
                return Err(invalid(field("auth_params"), "give auth_params or auth_params_env, not both"));
            }
            if e.auth_method.is_none() && (e.auth_params.is_some() || e.auth_params_env.is_some()) {
                return Err(invalid(field("auth_method"), "auth parameters without an auth_method"));
            }
            e.validate_timings(&field)?;
            if let Some(c) = e.channels.iter().find(|c| c.is_empty() || c.len() > 1024) {
                return Err(invalid(field("channels"), format!("a channel is empty or too long: {c:?}")));
            }
        }
        Ok(())
    }
}

impl Config {
    /// The shortest de-duplication window this configuration accepts, in
    /// milliseconds: [`DUPLICATE_WINDOW_FACTOR`] x (`ack_timeout_ms` +
    /// [`MAX_RETRY_DELAY_MS`]).
    pub fn min_duplicate_window_ms(&self) -> u64 {
        DUPLICATE_WINDOW_FACTOR.saturating_mul(self.nats.ack_timeout_ms.saturating_add(MAX_RETRY_DELAY_MS))
    }
}

impl Endpoint {
    fn validate_timings(&self, field: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        let positive = [
            ("backoff_initial_ms", self.backoff_initial_ms),
            ("backoff_max_ms", self.backoff_max_ms),
            ("backoff_reset_after_ms", self.backoff_reset_after_ms),
        ];
        for (name, value) in positive {
            if value == 0 || value > MAX_TIMING_MS {
                return Err(invalid(field(name), format!("must be from 1 to {MAX_TIMING_MS}")));
            }
        }
        for (name, value) in [("ping_interval_ms", self.ping_interval_ms), ("idle_timeout_ms", self.idle_timeout_ms)] {
            if value > MAX_TIMING_MS {
                return Err(invalid(field(name), format!("must be from 0 (off) to {MAX_TIMING_MS}")));
            }
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            return Err(invalid(field("backoff_max_ms"), "must be at least backoff_initial_ms"));
        }
        if !(self.backoff_factor >= 1.0 && self.backoff_factor <= 100.0) {
            return Err(invalid(field("backoff_factor"), "must be from 1 to 100"));
        }
        if self.ping_interval_ms > 0 && (self.ping_timeout_ms == 0 || self.ping_timeout_ms >= self.ping_interval_ms) {
            return Err(invalid(field("ping_timeout_ms"), "must be positive and below ping_interval_ms"));
        }
        if self.max_sequence_jump == 0 {
            return Err(invalid(field("max_sequence_jump"), "must be at least 1"));
        }
        Ok(())
    }

    /// The reconnect schedule this endpoint's connections follow.
    pub fn backoff(&self) -> wslink_tokio::BackoffConfig {
        wslink_tokio::BackoffConfig::default()
            .initial(Duration::from_millis(self.backoff_initial_ms))
            .factor(self.backoff_factor)
            .max(Duration::from_millis(self.backoff_max_ms))
            .full_jitter(true)
            .max_attempts(None)
            .reset_after(Duration::from_millis(self.backoff_reset_after_ms))
    }

    /// Its pings (`None`: off).
    pub fn ping(&self) -> Option<wslink_tokio::PingConfig> {
        (self.ping_interval_ms > 0).then(|| {
            wslink_tokio::PingConfig::new(
                Duration::from_millis(self.ping_interval_ms),
                Duration::from_millis(self.ping_timeout_ms),
            )
        })
    }

    /// Its idle timeout (`None`: off).
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_ms > 0).then(|| Duration::from_millis(self.idle_timeout_ms))
    }

    /// The authentication parameters: from the file, or from the named
    /// environment variable (read now).
    pub fn auth_params(&self) -> Result<Option<String>, ConfigError> {
        match (&self.auth_params, &self.auth_params_env) {
            (Some(p), _) => Ok(Some(p.clone())),
            (None, Some(var)) => std::env::var(var).map(Some).map_err(|_| {
                invalid(format!("endpoint {:?} auth_params_env", self.name), format!("${var} is not set"))
            }),
            (None, None) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
