//! wslink-bridge-nats: WebSocket feeds into NATS JetStream, sharded, with
//! replicas that fail over without a gap.
//!
//! One bridge process runs shard k of n: a stable hash ([`shard`]) picks
//! its part of every endpoint's subscriptions, and a wslink [`Pool`] per
//! endpoint reads them. Every message is published to a subject derived from
//! the endpoint and the channel ([`subject`]) with headers ([`envelope`]) and
//! a stable `Nats-Msg-Id` ([`msgid`], from values read without a parse tree:
//! [`pointer`](mod@crate::pointer)); at most `max_in_flight` publish acks are awaited at once,
//! and a full window stops the WebSocket reads ([`publisher`]):
//! backpressure all the way to the exchange, never unbounded memory. Two
//! replicas of a shard publish the same messages with the same ids, and
//! JetStream's de-duplication keeps one copy, so losing either replica
//! loses nothing. Where the exchange numbers its messages, the [`tracker`]
//! follows each channel's numbering ([`sequence`]): a restart of the
//! numbering gets a new epoch in the ids and a `reset` marker, and a hole
//! is checked against the stream ([`ledger`]) before the numbers nobody
//! stored are marked. The stream is made or checked at start ([`stream`]).
//! Figures go through the `metrics` facade ([`stats`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = wslink_bridge_nats::Config::load("bridge.toml".as_ref())?.with_shard(0, 4)?;
//! let stats = std::sync::Arc::new(wslink_bridge_nats::Stats::default());
//! let summary = wslink_bridge_nats::run(config, stats, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! println!("{summary:?}");
//! # Ok(()) }
//! ```
//!
//! [`Pool`]: wslink_tokio::Pool
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

pub mod bridge;
pub mod config;
pub mod envelope;
pub mod error;
pub mod hash;
pub mod ledger;
pub mod msgid;
/// The JSON pointer reader (`wslink_core::json_pointer`), kept under this name.
pub use wslink_core::json_pointer as pointer;
pub mod publisher;
pub mod sequence;
pub mod shard;
pub mod stats;
pub mod stream;
pub mod subject;
pub mod tracker;

pub use bridge::{run, Summary};
pub use config::{Config, ConfigError};
pub use error::BridgeError;
pub use stats::{Snapshot, Stats};
