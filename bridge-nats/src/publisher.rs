//! Publishing into JetStream with a bounded window of acks in flight.
//!
//! Every message is handed to a [`Transport`] with a token, and JetStream's
//! ack comes back with it ([`Nats`]: the publish carries a reply subject
//! `<inbox>.<token>` and one subscription takes every ack, as nats.go's
//! asynchronous publish does: no channel, timer or future per message). At
//! most `window` acks are awaited at once, in a queue indexed by token; a
//! single deadline, the oldest publish's, stands for all of their timeouts.
//! While the window is full, or while messages wait to be sent again,
//! [`Publisher::ready`] is false and the bridge stops reading its WebSocket
//! event streams, which in turn stop reading their sockets: the exchange's
//! TCP sends slow down, and nothing grows without bound here.
//!
//! A publish that fails for a reason that may pass (no ack within the
//! timeout, the connection to NATS lost, JetStream unavailable, the stream
//! missing or full) is sent again with the same `Nats-Msg-Id`, after a delay
//! that doubles from 100 ms up to 2 s while failures go on: if the first
//! attempt was stored after all, JetStream takes the second for a
//! duplicate, so retrying loses nothing and doubles nothing. Such failures
//! are logged as a warning at most every 10 s. Every message keeps the
//! place it was queued in: failed messages are sent again in the order they
//! were first queued, before anything queued later. An ack that comes after
//! its publish timed out is ignored (the resend's ack counts).
//!
//! A publish that can never succeed (the message larger than the server's
//! `max_payload` or the stream's message limit, a subject the client
//! refuses) is **rejected**: it is counted (`rejected`) and a small marker
//! takes its place on the subject (`Wslink-Kind: gap`, `Wslink-Gap-Reason:
//! rejected`, the original id in `Wslink-Rejected-Id`, its exchange number
//! in `Wslink-Exchange-Seq`), so one message cannot stall the bridge and
//! its loss is never silent.
//!
//! Invariants: `in_flight() <= window`; the backlog holds at most `window`
//! failed messages plus what was queued while the loop last read events.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_nats::Subject;
use futures_util::stream::{Stream, StreamExt};
use futures_util::FutureExt;
use tokio::time::Instant;

use crate::envelope::Outgoing;
use crate::stats::Stats;

/// Why a publish was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Whether sending it again can never help (it is rejected instead).
    pub permanent: bool,
    /// Whether the client refused the subject (the marker goes to the fallback subject).
    pub bad_subject: bool,
    /// What happened, for the log.
    pub reason: String,
}

impl Refusal {
    /// A failure that may pass.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self { permanent: false, bad_subject: false, reason: reason.into() }
    }

    /// A failure that never passes.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self { permanent: true, bad_subject: false, reason: reason.into() }
    }
}

/// JetStream's answer to one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Where it is in the stream (for a duplicate: where the first copy is).
    pub stream_seq: u64,
    /// Whether an earlier publish with the same id was kept instead.
    pub duplicate: bool,
}

/// An ack: the token its publish was sent with, and the answer.
pub type Ack = (u64, Result<Stored, Refusal>);

/// Where publishes go: JetStream through a NATS client in the bridge
/// ([`Nats`]), a fake in the tests.
pub trait Transport: Send + 'static {
    /// The acks, in the order they arrive.
    type Acks: Stream<Item = Ack> + Unpin + Send;

    /// Hands `message` to the client, its ack to come back with `token`;
    /// ready at once unless the client's buffer is full.
    fn send(&self, message: &Outgoing, token: u64) -> impl Future<Output = Result<(), Refusal>> + Send;

    /// The acks.
    fn acks(&mut self) -> &mut Self::Acks;
}

/// A message in the publisher, with its place in the order.
#[derive(Debug)]
struct Queued {
    /// Its place: messages are sent, and sent again, in this order.
    order: u64,
    message: Outgoing,
    /// A rejection marker (never replaced by another marker).
    marker: bool,
}

#[derive(Debug)]
struct Flight {
    queued: Queued,
    sent: Instant,
}

const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest delay before a failed publish is sent again.
pub const MAX_RETRY: Duration = Duration::from_secs(2);
/// Failing publishes are logged as a warning at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Acks taken in one go before the loop looks at anything else.
const ACK_BATCH: usize = 1024;
/// Ack timeouts are found on ticks of this many milliseconds (at most this late).
const TIMER_TICK_MS: u128 = 100;
const TIMER_TICK: Duration = Duration::from_millis(TIMER_TICK_MS as u64);

/// The window of publishes awaiting their acks, and the backlog.
pub struct Publisher<T: Transport> {
    transport: T,
    window: usize,
    ack_timeout: Duration,
    /// By token: `flights[0]` is token `base`; `None` once settled.
    flights: VecDeque<Option<Flight>>,
    base: u64,
    live: usize,
    retry: VecDeque<Queued>,
    fresh: VecDeque<Queued>,
    next_order: u64,
    hold_until: Option<Instant>,
    failures_in_row: u32,
    rejected: u64,
    fallback_subject: Subject,
    last_warn: Option<Instant>,
    failures_unreported: u64,
    stats: Arc<Stats>,
    /// The ack timeouts' timer, armed at a tick after the oldest deadline.
    timer: Pin<Box<tokio::time::Sleep>>,
    armed: Option<Instant>,
    /// Where the ticks count from.
    start: Instant,
}

impl<T: Transport> Publisher<T> {
    /// A publisher with at most `window` acks in flight, each awaited at
    /// most `ack_timeout`; a rejected message's marker goes to its own
    /// subject, or to `fallback_subject` when the client refused that one.
    pub fn new(
        transport: T,
        window: usize,
        ack_timeout: Duration,
        fallback_subject: String,
        stats: Arc<Stats>,
    ) -> Self {
        Self {
            transport,
            window: window.max(1),
            ack_timeout,
            flights: VecDeque::new(),
            base: 1,
            live: 0,
            retry: VecDeque::new(),
            fresh: VecDeque::new(),
            next_order: 0,
            hold_until: None,
            failures_in_row: 0,
            rejected: 0,
            fallback_subject: Subject::from(fallback_subject),
            last_warn: None,
            failures_unreported: 0,
            stats,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
            start: Instant::now(),
        }
    }

    /// Whether the next event may be read: room in the window and nothing
    /// waiting in the backlog.
    pub fn ready(&self) -> bool {
        self.backlog() == 0 && self.live < self.window
    }

    /// Publishes awaiting their acks.
    pub fn in_flight(&self) -> usize {
        self.live
    }

    /// Messages waiting to be sent (again).
    pub fn backlog(&self) -> usize {
        self.retry.len() + self.fresh.len()
    }

    /// Messages no server could ever store (too large, subject refused),
    /// each replaced by a marker.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// When the backlog may be sent again, if it waits after a failure.
    pub fn held_until(&self) -> Option<Instant> {
        self.hold_until.filter(|_| self.backlog() > 0)
    }

    /// Queues a message; [`pump`](Self::pump) sends it when the window allows.
    pub fn push(&mut self, message: Outgoing) {
        let order = self.next_order;
        self.next_order += 1;
        self.fresh.push_back(Queued { order, message, marker: false });
    }

    /// Sends from the backlog while the window has room (and no failure
    /// delay holds it back). A send waits for room in the client's buffer
    /// at most the ack timeout.
    pub async fn pump(&mut self) {
        if self.hold_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.hold_until = None;
        let mut now = None;
        while self.live < self.window {
            let (queued, from_retry) = match self.retry.pop_front() {
                Some(q) => (q, true),
                None => match self.fresh.pop_front() {
                    Some(q) => (q, false),
                    None => break,
                },
            };
            let token = self.base + self.flights.len() as u64;
            let result = {
                let mut send = pin!(self.transport.send(&queued.message, token));
                match std::future::poll_fn(|cx| Poll::Ready(send.as_mut().poll(cx))).await {
                    Poll::Ready(result) => result,
                    Poll::Pending => tokio::time::timeout(self.ack_timeout, send)
                        .await
                        .unwrap_or_else(|_| Err(Refusal::transient("the client's buffer stayed full"))),
                }
            };
            match result {
                Ok(()) => {
                    let sent = *now.get_or_insert_with(Instant::now);
                    self.flights.push_back(Some(Flight { queued, sent }));
                    self.live += 1;
                }
                Err(e) if e.permanent => self.reject(queued, &e),
                Err(e) => {
                    // Not handed to the client at all: back where it came from, after a delay.
                    self.failed(&e, "publish not taken");
                    if from_retry {
                        self.retry.push_front(queued);
                    } else {
                        self.fresh.push_front(queued);
                    }
                    self.hold();
                    break;
                }
            }
        }
        self.report();
    }

    /// Waits for the next ack or the oldest publish's timeout, and accounts
    /// for it, and for every other ack already arrived. Pending forever
    /// when nothing is in flight, so it can sit in a `select!`; cancel-safe.
    pub async fn settle_next(&mut self) {
        let Some(deadline) = self.deadline() else {
            return std::future::pending().await;
        };
        // One timer for every publish in flight, moved only when the
        // oldest one's deadline moves to another tick (not at every ack).
        let tick = self.start + (deadline - self.start).as_millis().div_ceil(TIMER_TICK_MS) as u32 * TIMER_TICK;
        if self.armed != Some(tick) {
            self.timer.as_mut().reset(tick);
            self.armed = Some(tick);
        }
        let woke = tokio::select! {
            biased;
            ack = self.transport.acks().next() => ack.ok_or(true),
            () = self.timer.as_mut() => Err(false),
        };
        if woke == Err(true) {
            // The client is gone: everything in flight times out.
            self.timer.as_mut().await;
        }
        let now = Instant::now();
        if let Ok(ack) = woke {
            self.settle(ack, now);
        }
        for _ in 0..ACK_BATCH {
            match self.transport.acks().next().now_or_never() {
                Some(Some(ack)) => self.settle(ack, now),
                _ => break,
            }
        }
        self.expire(now);
        self.report();
    }

    /// When the oldest publish in flight times out.
    fn deadline(&self) -> Option<Instant> {
        self.flights.iter().flatten().next().map(|f| f.sent + self.ack_timeout)
    }

    fn settle(&mut self, (token, result): Ack, now: Instant) {
        let Some(index) = token.checked_sub(self.base).and_then(|i| usize::try_from(i).ok()) else { return };
        let Some(flight) = self.flights.get_mut(index).and_then(Option::take) else {
            // Late: its publish timed out and was sent again.
            return;
        };
        self.live -= 1;
        while let Some(None) = self.flights.front() {
            self.flights.pop_front();
            self.base += 1;
        }
        match result {
            Ok(stored) => {
                self.failures_in_row = 0;
                let m = &flight.queued.message;
                self.stats.acked(stored.duplicate, now - flight.sent, now - m.received);
                if !stored.duplicate && m.is_gap() {
                    self.stats.gap();
                }
            }
            Err(e) if e.permanent => self.reject(flight.queued, &e),
            Err(e) => {
                self.failed(&e, "no ack");
                self.requeue(flight.queued);
                self.hold();
            }
        }
    }

    /// Fails every publish whose ack is overdue at `now`: sent again.
    fn expire(&mut self, now: Instant) {
        while let Some(Some(f)) = self.flights.front() {
            if f.sent + self.ack_timeout > now {
                break;
            }
            let token = self.base;
            self.settle((token, Err(Refusal::transient(format!("no ack within {:?}", self.ack_timeout)))), now);
        }
    }

    /// Puts a failed message back in the retry queue at its place in the order.
    fn requeue(&mut self, queued: Queued) {
        let at = self.retry.partition_point(|q| q.order < queued.order);
        self.retry.insert(at, queued);
    }

    fn reject(&mut self, queued: Queued, e: &Refusal) {
        let m = &queued.message;
        tracing::error!(subject = %m.subject, bytes = m.payload.len(), error = %e.reason, "message rejected: no server can store it; a marker takes its place");
        self.rejected += 1;
        self.stats.rejected();
        if queued.marker {
            return;
        }
        let subject = if e.bad_subject { self.fallback_subject.clone() } else { m.subject.clone() };
        let marker = m.rejected(subject, &e.reason);
        self.requeue(Queued { order: queued.order, message: marker, marker: true });
    }

    /// A publish that may pass later failed: counted, logged at debug, and
    /// as a warning at most every [`WARN_EVERY`].
    fn failed(&mut self, e: &Refusal, what: &str) {
        self.stats.retried();
        tracing::debug!(error = %e.reason, "{what}; sending again");
        self.failures_unreported += 1;
        let now = Instant::now();
        if self.last_warn.is_none_or(|t| now.duration_since(t) >= WARN_EVERY) {
            tracing::warn!(error = %e.reason, failures = self.failures_unreported, "publishes failing ({what}); sending them again");
            self.last_warn = Some(now);
            self.failures_unreported = 0;
        }
    }

    fn hold(&mut self) {
        let delay = FIRST_RETRY.saturating_mul(1 << self.failures_in_row.min(5)).min(MAX_RETRY);
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        self.hold_until = Some(Instant::now() + delay);
    }

    fn report(&self) {
        self.stats.in_flight(self.live, self.backlog());
    }
}

mod nats;
pub use nats::Nats;

#[cfg(test)]
mod tests;
