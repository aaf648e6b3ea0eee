//! wslink-core: the sans-IO heart of wslink, a WebSocket client for
//! connections that must stay up.
//!
//! The crate is a set of state machines fed with bytes, transport events,
//! commands and the current time, and drained of bytes to write, events and
//! the next deadline. It is fully deterministic: it never reads the clock,
//! never does I/O, never spawns, and takes its randomness (masking keys,
//! handshake nonces) from a [`RandomSource`] the caller injects. Nothing it
//! reads from the network can make it panic; a peer's fault becomes a typed
//! event, a caller's misuse an `Err`.
//!
//! Two machines a user drives:
//! - [`Connection`]: one RFC 6455 client connection, from the upgrade request
//!   to closed (handshake, frames, messages, the close handshake);
//! - [`Session`]: one logical client across many connections: reconnect with
//!   backoff and user policy, heartbeats, requests matched to responses,
//!   subscriptions restored after authentication, a bounded outbound queue
//!   with an optional rate limit, a bounded write side, and metrics. Its
//!   hooks ([`hooks`]) come with JSON-RPC 2.0, JSON op and Deribit presets
//!   ([`presets`]).
//!
//! The modules stand in five layers, and a module imports only from its own
//! layer or those below (`tests/layers.rs` checks it, and that no modules
//! import each other in a circle):
//!
//! ```text
//! 5  on top      replay  presets  testkit  supervise
//! 4  session     session/ (state and commands, inputs, outputs, send, lifecycle, config)
//! 3  its parts   backoff  backlog  heartbeat  requests  request_id  outbound  latency
//!                subscriptions  sequence (per-channel numbering, gaps)
//!                reasons (why things end: DisconnectReason, SessionError, ...)
//!                hooks  jsonrpc (the default codecs)  outputs (actions, events, metrics)
//!                record (the recording's tape and its encodings)
//! 2  connection  connection/ (read, send, closing, outputs)  config  event
//! 1  wire        frame  message  text  utf8  close  url  handshake/  deflate/  proxy/  tls
//!                close_code  error  happy_eyeballs  io_kind  random  deadline  queue  pool
//!                json_pointer
//! ```
//!
//! A connection's whole run, against any byte source:
//!
//! ```
//! use std::time::Instant;
//! use rand::{rngs::StdRng, SeedableRng};
//! use wslink_core::{ClientRequest, Connection, ConnectionConfig, ConnectionEvent};
//!
//! let now = Instant::now();
//! let request = ClientRequest::new("ws://127.0.0.1:9001/feed").unwrap();
//! let rng = Box::new(StdRng::seed_from_u64(1));
//! let mut conn = Connection::new(request, ConnectionConfig::default(), rng, now).unwrap();
//!
//! let mut wire = Vec::new();
//! let n = conn.poll_transmit(&mut wire); // the upgrade request: write it to the socket
//! assert!(wire.starts_with(b"GET /feed HTTP/1.1\r\n") && n == wire.len());
//!
//! conn.handle_eof(now); // the server hung up before answering
//! match conn.poll_event() {
//!     Some(ConnectionEvent::Closed(closed)) => assert!(!closed.is_clean()),
//!     other => panic!("{other:?}"),
//! }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod backlog;
mod backoff;
mod close;
mod close_code;
mod config;
mod connection;
mod deadline;
mod deflate;
mod error;
mod event;
mod frame;
mod handshake;
mod happy_eyeballs;
mod heartbeat;
pub mod hooks;
mod io_kind;
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub mod json_pointer;
#[cfg(feature = "json")]
mod jsonrpc;
mod latency;
mod message;
mod outbound;
mod outputs;
mod pool;
#[cfg(feature = "json")]
pub mod presets;
pub mod proxy;
mod queue;
mod random;
mod reasons;
pub mod record;
#[cfg(feature = "record")]
pub mod replay;
mod request_id;
mod requests;
mod sequence;
mod session;
mod subscriptions;
mod supervise;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
mod text;
mod tls;
mod url;
mod utf8;

pub use backoff::BackoffConfig;
pub use close_code::CloseCode;
pub use config::ConnectionConfig;
pub use connection::{Connection, ConnectionState, ReadRoom};
pub use deflate::{CompressionStats, DeflateConfig, DeflateParams};
pub use error::{
    ConfigError, ConnectionError, DeflateNegotiationError, HandshakeError, ProtocolError, RefusedUpgrade, SendError,
    UrlError,
};
pub use event::{Closed, ConnectionEvent, Initiator};
pub use handshake::{ClientRequest, UpgradeResponse};
pub use happy_eyeballs::{HappyEyeballs, DEFAULT_ATTEMPT_DELAY};
pub use heartbeat::{AppHeartbeatConfig, HeartbeatHealth, PingConfig};
pub use latency::LatencyStats;
pub use message::Message;
pub use outbound::RateLimit;
pub use outputs::{Action, Metrics, SessionEvent, SessionState, Traffic};
pub use random::{OsRandom, OsRandomError, RandomSource};
pub use reasons::{CloseReason, CommandError, DisconnectReason, RequestFailure};
pub use request_id::RequestId;
pub use sequence::{GapAction, SequencePoint, SequenceRule};
pub use session::{Session, SessionBuilder, SessionConfig, DEFAULT_WRITE_BUDGET};
pub use subscriptions::SubscribeOptions;
pub use supervise::Restarts;
pub use text::{NotUtf8, Utf8Bytes};
pub use tls::TlsFailure;
pub use url::WsUrl;
