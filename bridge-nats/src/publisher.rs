//! Publishing into JetStream with a bounded window of acks in flight.
//!
//! Every message is published with `publish_with_headers` and its
//! [`PublishAckFuture`](async_nats::jetstream::context::PublishAckFuture) is
//! kept, in order, until JetStream answers. At most `window` acks are awaited
//! at once; while the window is full, or while messages wait to be sent
//! again, [`Publisher::ready`] is false and the bridge stops reading its
//! WebSocket event streams, which in turn stop reading their sockets: the
//! exchange's TCP sends slow down, and nothing grows without bound here.
//!
//! A publish that fails (no ack within the timeout, the connection to NATS
//! lost, JetStream unavailable) is sent again with the same `Nats-Msg-Id`,
//! after a delay that doubles from 100 ms up to 2 s while failures go on: if
//! the first attempt was stored after all, JetStream takes the second for a
//! duplicate, so retrying loses nothing and doubles nothing. Failed
//! messages are sent again in the order they were first sent. A message
//! larger than the server's `max_payload` can never be stored: it is dropped
//! and counted (`rejected`), so that one message cannot stall the bridge.
//!
//! Invariants: `in_flight() <= window`; the backlog holds at most `window`
//! failed messages plus the gap messages and the one message of the event
//! being handled, since nothing new is read while it is not empty.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::time::Instant;

use crate::stats::Stats;

/// One message on its way to JetStream.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The subject.
    pub subject: String,
    /// Its headers, `Nats-Msg-Id` among them.
    pub headers: HeaderMap,
    /// The payload, as the exchange sent it (or the gap message's JSON).
    pub payload: Bytes,
    /// When the bridge read it (for the lag).
    pub received: Instant,
}

type AckResult = (Outgoing, Instant, Result<PublishAck, PublishError>);
type AckFuture = Pin<Box<dyn Future<Output = AckResult> + Send>>;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(2);

/// The window of publishes awaiting their acks, and the backlog.
pub struct Publisher {
    js: async_nats::jetstream::Context,
    window: usize,
    in_flight: FuturesOrdered<AckFuture>,
    /// Failed publishes, in the order they were first sent; sent before `fresh`.
    retry: VecDeque<Outgoing>,
    /// Messages not yet sent.
    fresh: VecDeque<Outgoing>,
    /// No send before this, after a failure.
    hold_until: Option<Instant>,
    failures_in_row: u32,
    rejected: u64,
    /// How long handing a message to the client may take (its buffer is full while NATS is away).
    send_timeout: Duration,
    stats: Arc<Stats>,
}

impl Publisher {
    /// A publisher on `js` awaiting at most `window` acks at once; handing
    /// one message to the client waits at most `send_timeout` (then it is
    /// sent again later), so the loop keeps answering shutdown while NATS is away.
    pub fn new(js: async_nats::jetstream::Context, window: usize, send_timeout: Duration, stats: Arc<Stats>) -> Self {
        Self {
            js,
            window: window.max(1),
            in_flight: FuturesOrdered::new(),
            retry: VecDeque::new(),
            fresh: VecDeque::new(),
            hold_until: None,
            failures_in_row: 0,
            rejected: 0,
            send_timeout,
            stats,
        }
    }

    /// Whether the next event may be read: room in the window and nothing
    /// waiting in the backlog.
    pub fn ready(&self) -> bool {
        self.backlog() == 0 && self.in_flight.len() < self.window
    }

    /// Publishes awaiting their acks.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Messages waiting to be sent (again).
    pub fn backlog(&self) -> usize {
        self.retry.len() + self.fresh.len()
    }

    /// Messages dropped because no server could ever store them (too large).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// When the backlog may be sent again, if it waits after a failure.
    pub fn held_until(&self) -> Option<Instant> {
        self.hold_until.filter(|_| self.backlog() > 0)
    }

    /// Queues a message; [`pump`](Self::pump) sends it when the window allows.
    pub fn push(&mut self, message: Outgoing) {
        self.fresh.push_back(message);
        self.report();
    }

    /// Sends from the backlog while the window has room (and no failure
    /// delay holds it back).
    pub async fn pump(&mut self) {
        if self.hold_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.hold_until = None;
        while self.in_flight.len() < self.window {
            let Some(message) = self.retry.pop_front().or_else(|| self.fresh.pop_front()) else { break };
            let sent = Instant::now();
            let publish =
                self.js.publish_with_headers(message.subject.clone(), message.headers.clone(), message.payload.clone());
            // A send cut short by the timeout was not handed over (tokio's channel send is cancel-safe).
            let result = tokio::time::timeout(self.send_timeout, publish)
                .await
                .unwrap_or_else(|_| Err(PublishError::new(PublishErrorKind::TimedOut)));
            match result {
                Ok(ack) => self.in_flight.push_back(Box::pin(async move { (message, sent, ack.await) })),
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => self.reject(&message, &e),
                Err(e) => {
                    // Not handed to the client at all: first in line again, after a delay.
                    tracing::debug!(subject = %message.subject, error = %e, "publish failed; sending again");
                    self.stats.retried();
                    self.retry.push_front(message);
                    self.hold();
                    break;
                }
            }
        }
        self.report();
    }

    /// Waits for the oldest ack and accounts for it: stored, duplicate, or
    /// failed (then queued to be sent again). Pending forever when nothing
    /// is in flight, so it can sit in a `select!`.
    pub async fn settle_next(&mut self) {
        let Some((message, sent, result)) = self.in_flight.next().await else {
            return std::future::pending().await;
        };
        match result {
            Ok(ack) => {
                self.failures_in_row = 0;
                let now = Instant::now();
                self.stats.acked(ack.duplicate, now - sent, now - message.received);
            }
            Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => self.reject(&message, &e),
            Err(e) => {
                tracing::debug!(subject = %message.subject, error = %e, "no ack; sending again");
                self.stats.retried();
                self.retry.push_back(message);
                self.hold();
            }
        }
        self.report();
    }

    /// Waits until every message queued or in flight is stored, or `deadline`
    /// passes; returns how many were left.
    pub async fn drain(&mut self, deadline: Instant) -> usize {
        while self.backlog() + self.in_flight.len() > 0 {
            if Instant::now() >= deadline {
                break;
            }
            self.pump().await;
            let retry_at = self.held_until().unwrap_or(deadline).min(deadline);
            tokio::select! {
                biased;
                () = self.settle_next(), if !self.in_flight.is_empty() => {}
                () = tokio::time::sleep_until(retry_at) => {}
            }
        }
        self.backlog() + self.in_flight.len()
    }

    fn reject(&mut self, message: &Outgoing, e: &PublishError) {
        tracing::error!(subject = %message.subject, bytes = message.payload.len(), error = %e, "message dropped: larger than the server takes");
        self.rejected += 1;
    }

    fn hold(&mut self) {
        let delay = FIRST_RETRY.saturating_mul(1 << self.failures_in_row.min(5)).min(MAX_RETRY);
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        self.hold_until = Some(Instant::now() + delay);
    }

    fn report(&self) {
        self.stats.in_flight(self.in_flight.len(), self.backlog());
    }
}
