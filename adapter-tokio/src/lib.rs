//! wslink-tokio: a WebSocket client for connections that must stay up, on tokio.
//!
//! It drives `wslink_core`'s session over tokio TCP and rustls TLS: it
//! reconnects with backoff, re-authenticates and re-subscribes by itself,
//! detects dead links by heartbeat, matches responses to requests, reports
//! latency and health, and pushes back on the server when you read slowly.
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
//! The rest goes through [`Builder`]; several connections to one endpoint
//! through [`Pool`]. Every [`Client`] method is cancel-safe: drop it mid-await
//! inside `select!` and nothing is half-sent and no event is lost (a command
//! already handed over still takes effect; only its answer is not awaited).
//! Dropping every `Client` and the `Events` stream closes the connection
//! cleanly with code 1000.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod builder;
mod client;
mod driver;
mod pool;
mod tls;
mod transport;

pub use builder::Builder;
pub use bytes::Bytes;
pub use client::{Client, ClientError, ClientMetrics, Events, RequestError, Response};
pub use pool::{Pool, PoolError};
pub use tls::{Roots, TlsOptions};
pub use transport::Resolver;
pub use wslink_core::{
    hooks, presets, BackoffConfig, CloseCode, CloseReason, DisconnectReason, HeartbeatHealth, LatencyStats, Message,
    Metrics, PingConfig, RateLimit, RequestFailure, SessionConfig, SessionEvent, SessionState,
};

/// Why a client could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is unusable.
    #[error(transparent)]
    Url(#[from] wslink_core::UrlError),
    /// A setting is out of range; the message names the field.
    #[error(transparent)]
    Config(#[from] wslink_core::ConfigError),
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The operating system's random source failed.
    #[error("random source: {0}")]
    Random(String),
    /// The first connection attempt failed (from `connect`).
    #[error("could not connect: {0:?}")]
    Connect(DisconnectReason),
    /// The session closed before connecting.
    #[error("closed before connecting: {0:?}")]
    Closed(CloseReason),
    /// A command was refused.
    #[error(transparent)]
    Command(#[from] wslink_core::CommandError),
    /// A handle's call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Connects to `url` with every default and waits for the connection to open.
pub async fn connect(url: &str) -> Result<(Client, Events), Error> {
    Builder::new(url)?.connect().await
}
