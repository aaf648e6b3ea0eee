//! What a handle's call gets back: a [`Response`], the reasons a call did
//! not take effect ([`ClientError`], [`RequestError`], [`TrySendError`]),
//! and the channels and values the driver answers by.
//!
//! Role: the bottom of the handles' side. The commands (`command.rs`), the
//! channels (`channels.rs`) and the handles (`client.rs`) all speak of
//! these, and this file speaks of none of them, so no import runs back up.

use std::time::Duration;

use tokio::sync::oneshot;
use wslink_core::{CommandError, HeartbeatHealth, LatencyStats, Message, Metrics, RequestFailure};

/// Why a handle's call did not take effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The session refused the command (closed, queue full, not connected ...).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The driver task has ended (the session closed and every event was delivered).
    #[error("the client has shut down")]
    Shutdown,
}

/// A response to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The request id.
    pub id: u64,
    /// The response message.
    pub message: Message,
    /// From sending to the response.
    pub rtt: Duration,
    /// Whether the server answered with an error (JSON-RPC `error`).
    pub is_error: bool,
}

/// How an awaited request ended without a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// It could not be sent or queued.
    #[error(transparent)]
    Rejected(#[from] ClientError),
    /// No response before its deadline.
    #[error("the request was not answered in time")]
    Timeout,
    /// Sent, then the connection died before the response; it is not replayed.
    #[error("the connection was lost before the response came")]
    ConnectionLost,
    /// Queued, then dropped at a disconnect.
    #[error("the request was dropped from the queue at a disconnect")]
    Dropped,
    /// The session closed.
    #[error("the session closed before the response came")]
    SessionClosed,
    /// It ended for a reason this version of the adapter has no name for
    /// (one the core added since).
    #[error("the request failed: {0:?}")]
    Failed(RequestFailure),
}

impl From<RequestFailure> for RequestError {
    fn from(f: RequestFailure) -> Self {
        match f {
            RequestFailure::Timeout => Self::Timeout,
            RequestFailure::ConnectionLost => Self::ConnectionLost,
            RequestFailure::Dropped => Self::Dropped,
            RequestFailure::SessionClosed => Self::SessionClosed,
            other => Self::Failed(other),
        }
    }
}

/// Why `try_send_text`/`try_send_binary` did not hand a message over; the
/// message comes back in either case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrySendError {
    /// The driver has `256` commands waiting (it is behind), or the write
    /// budget is used up (the peer takes what is written more slowly than
    /// it is sent). Wait with `send_text`/`send_binary`, or try again later.
    #[error("the client's command queue or write budget is full")]
    Full(Message),
    /// The session has closed (or the driver has ended).
    #[error("the session is closed")]
    Closed(Message),
}

impl TrySendError {
    /// The message that was not handed over.
    pub fn into_message(self) -> Message {
        match self {
            TrySendError::Full(m) | TrySendError::Closed(m) => m,
        }
    }
}

/// Where the driver answers a command: done, or why not.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

/// Metrics, latency and heartbeat health at one instant.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) metrics: Metrics,
    pub(crate) latency: LatencyStats,
    pub(crate) health: HeartbeatHealth,
    pub(crate) read_paused: Duration,
}
