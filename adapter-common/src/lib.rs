//! wslink-adapter: everything wslink's runtime adapters share, written once.
//!
//! The handles ([`Client`], [`Events`]), the [`Builder`], the [`Pool`], TLS
//! options, proxies ([`Proxy`]), socket options ([`SocketOptions`]), the
//! opening of a transport and the driver loop are generic over a
//! [`Runtime`]: a handful of functions to spawn, sleep, wait for a TCP
//! connect, run TLS, and read and write. Each
//! adapter crate (`wslink-tokio`, `wslink-smol`) is one short implementation
//! of that trait plus re-exports, so the two cannot drift apart.
//!
//! The channels between handles and driver (`channels.rs`) run on any
//! executor; request replies use tokio's runtime-agnostic `oneshot`.
//!
//! [`telemetry`] maps what the driver sees to `tracing` spans and, with the
//! feature `metrics`, to metrics pushed through the `metrics` facade.
//!
//! This file only names the modules and what they export: every item lives
//! in the module of its idea, and no module imports from here, so imports
//! run one way, from the builder and the driver down to the runtime, the
//! replies and the channels.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod builder;
mod channels;
mod client;
mod command;
mod dial;
mod driver;
mod error;
mod filter;
mod future;
mod inline;
mod pool;
#[cfg(feature = "record")]
mod recorder;
mod reply;
pub mod runtime;
mod socket;
pub mod telemetry;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
mod tls;
mod transport;

pub use builder::Builder;
pub use client::{Client, ClientMetrics, Events};
pub use dial::ConnectTo;
pub use error::Error;
pub use filter::EventFilter;
pub use inline::InlineClient;
pub use pool::{MemberEvents, Pool, PoolBuilder, PoolError, PoolEvent, PoolEvents};
#[cfg(feature = "record")]
#[cfg_attr(docsrs, doc(cfg(feature = "record")))]
pub use recorder::{FileRecorder, RecordingFile};
pub use reply::{ClientError, RequestError, Response, TrySendError};
pub use runtime::{Resolver, Runtime, Spawner};
pub use socket::{SocketOptions, TcpKeepalive};
pub use tls::{Roots, TlsOptions, TlsSetupError};
pub use wslink_core::proxy::{Proxy, ProxyError, ProxyServer, ProxyUrlError};
pub use wslink_core::{CloseReason, DisconnectReason};
