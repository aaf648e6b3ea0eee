//! wslink-tokio: a WebSocket client for connections that must stay up, on tokio.
//!
//! It drives `wslink_core`'s session over tokio TCP and rustls TLS: it
//! reconnects with backoff, re-authenticates and re-subscribes by itself,
//! detects dead links by heartbeat, matches responses to requests, reports
//! latency and health, and pushes back on the server when you read slowly.
//! The handles, builder, pool and driver are `wslink_adapter`'s, shared with
//! `wslink-smol`; this crate is the tokio [`Runtime`](wslink_adapter::Runtime).
//!
//! The simple case:
//!
//! ```no_run
//! # async fn run() -> Result<(), wslink_tokio::Error> {
//! let (client, mut events) = wslink_tokio::connect("wss://stream.example.com/ws").await?;
//! client.send_text(r#"{"op":"subscribe","args":["trades"]}"#).await?;
//! while let Some(event) = events.recv().await {
//!     println!("{event:?}"); // Message, Disconnected, Reconnecting, Connected, ... Closed
//! }
//! # Ok(()) }
//! ```
//!
//! The builder:
//!
//! ```no_run
//! # async fn run() -> Result<(), wslink_tokio::Error> {
//! use std::time::Duration;
//! use wslink_tokio::{presets, Builder};
//!
//! let (client, mut events) = Builder::new("wss://test.deribit.com/ws/api/v2")?
//!     .app_heartbeat(presets::DeribitHeartbeat, Duration::from_secs(30), Duration::from_secs(10))
//!     .authenticator(presets::JsonRpcAuth::new("public/auth", |_| r#"{"grant_type":"client_credentials"}"#.into()))
//!     .connect()
//!     .await?;
//! client.subscribe(&["trades.BTC-PERPETUAL.raw"]).await?;
//! let time = client.request("public/get_time", None, None).await;
//! # Ok(()) }
//! ```
//!
//! Several connections to one endpoint go through [`Pool`]. Every [`Client`]
//! method is cancel-safe: drop it mid-await inside `select!` and nothing is
//! half-sent and no event is lost (a command already handed over still takes
//! effect; only its answer is not awaited). Dropping every `Client` and the
//! `Events` stream closes the connection cleanly with code 1000.
//!
//! Telemetry: each connection attempt runs in a `tracing` span
//! `wslink.connect` (URL without its query, attempt number, outcome), and
//! the cargo feature `metrics` pushes counters, gauges and histograms
//! through the `metrics` facade to any exporter; [`telemetry`] has the table.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod runtime;

pub use bytes::Bytes;
pub use runtime::{Link, Stream, Tokio, Transport};
/// Spans per connection attempt and, with the feature `metrics`, metrics
/// pushed through the `metrics` facade: the table of names and labels.
pub use wslink_adapter::telemetry;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub use wslink_adapter::testkit;
/// What a connector is asked to reach (`Builder::connector`).
pub use wslink_adapter::ConnectTo;
pub use wslink_adapter::{
    Client, ClientError, ClientMetrics, Error, EventFilter, Events, InlineClient, MemberEvents, Pool, PoolBuilder,
    PoolError, PoolEvent, PoolEvents, RequestError, Resolver, Response, Roots, TlsOptions, TlsSetupError, TrySendError,
};
#[cfg(feature = "record")]
#[cfg_attr(docsrs, doc(cfg(feature = "record")))]
pub use wslink_adapter::{FileRecorder, RecordingFile};
/// How wslink makes its TCP sockets (`Builder::socket`): TCP_NODELAY, keepalive, buffers, a local address.
pub use wslink_adapter::{SocketOptions, TcpKeepalive};
/// Ready-made hooks: JSON-RPC 2.0, JSON op and Deribit heartbeats (feature `json`).
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub use wslink_core::presets;
/// Proxies: the setting ([`Proxy`]), its errors, and the core's tunnel handshakes.
pub use wslink_core::proxy::{self, Proxy, ProxyError};
/// Replaying a recording (feature `record`).
#[cfg(feature = "record")]
#[cfg_attr(docsrs, doc(cfg(feature = "record")))]
pub use wslink_core::replay;
pub use wslink_core::{
    hooks, record, BackoffConfig, CloseCode, CloseReason, CompressionStats, ConnectionConfig, ConnectionError,
    DeflateConfig, DeflateParams, DisconnectReason, GapAction, HandshakeError, HeartbeatHealth, LatencyStats, Message,
    Metrics, PingConfig, ProtocolError, RateLimit, RefusedUpgrade, RequestFailure, RequestId, SequencePoint,
    SequenceRule, SessionConfig, SessionEvent, SessionState, SubscribeOptions, TlsFailure, Utf8Bytes,
    DEFAULT_ATTEMPT_DELAY, DEFAULT_WRITE_BUDGET,
};

/// Configures and starts a client on tokio.
pub type Builder = wslink_adapter::Builder<Tokio>;

/// Connects to `url` with every default and waits for the connection to open.
pub async fn connect(url: &str) -> Result<(Client, Events), Error> {
    Builder::new(url)?.connect().await
}

/// The README's Rust examples that are marked to compile (your own loop,
/// driving the core, record, replay, the test kit) are doctests of this
/// crate; the sketches that are not complete programs are marked `ignore`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
