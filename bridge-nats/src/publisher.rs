//! Publishing into JetStream with a bounded window of acks in flight.
//!
//! Every message is handed to a [`Transport`] (JetStream's
//! `publish_with_headers` in the bridge, a fake in the tests) and its ack
//! future is kept, in order, until JetStream answers. At most `window` acks
//! are awaited at once; while the window is full, or while messages wait to
//! be sent again, [`Publisher::ready`] is false and the bridge stops reading
//! its WebSocket event streams, which in turn stop reading their sockets:
//! the exchange's TCP sends slow down, and nothing grows without bound here.
//!
//! A publish that fails for a reason that may pass (no ack within the
//! timeout, the connection to NATS lost, JetStream unavailable, the stream
//! missing or full) is sent again with the same `Nats-Msg-Id`, after a delay
//! that doubles from 100 ms up to 2 s while failures go on: if the first
//! attempt was stored after all, JetStream takes the second for a
//! duplicate, so retrying loses nothing and doubles nothing. Such failures
//! are logged as a warning at most every 10 s, with the error's kind. Every
//! message keeps the place it was queued in: failed messages are sent again
//! in the order they were first queued, before anything queued later, and a
//! message that the client did not take goes back where it came from.
//!
//! A publish that can never succeed (the message larger than the server's
//! `max_payload` or the stream's message limit, a subject the client
//! refuses) is **rejected**: it is counted (`rejected`) and a small marker
//! takes its place on the subject (`Wslink-Kind: gap`, `Wslink-Gap-Reason:
//! rejected`, the original id in `Wslink-Rejected-Id`), so one message
//! cannot stall the bridge and its loss is never silent.
//!
//! Invariants: `in_flight() <= window`; the backlog holds at most `window`
//! failed messages plus the gap messages and the one message of the event
//! being handled, since nothing new is read while it is not empty.

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::time::Instant;

use crate::envelope;
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

/// An ack on its way: JetStream's answer to one publish.
pub type Ack = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// The hand-over of one publish to the client.
pub type Handover<'a> = Pin<Box<dyn Future<Output = Result<Ack, PublishError>> + Send + 'a>>;

/// Where publishes go: JetStream in the bridge, a fake in the tests.
pub trait Transport: Send + Sync + 'static {
    /// Hands `message` to the client; its ack future, or why it was not taken.
    fn publish(&self, message: &Outgoing) -> Handover<'_>;
}

impl Transport for async_nats::jetstream::Context {
    fn publish(&self, message: &Outgoing) -> Handover<'_> {
        let (subject, headers, payload) = (message.subject.clone(), message.headers.clone(), message.payload.clone());
        Box::pin(async move {
            let ack = self.publish_with_headers(subject, headers, payload).await?;
            Ok(Box::pin(ack.into_future()) as Ack)
        })
    }
}

/// Whether `e` can never pass by sending the same message again.
pub fn is_permanent(e: &PublishError) -> bool {
    match e.kind() {
        PublishErrorKind::MaxPayloadExceeded => true,
        PublishErrorKind::Other => {
            let source = std::error::Error::source(e);
            source.is_some_and(|s| {
                s.downcast_ref::<async_nats::SubjectError>().is_some()
                    || s.downcast_ref::<async_nats::jetstream::Error>().is_some_and(|j| {
                        j.error_code() == async_nats::jetstream::ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM
                    })
            })
        }
        _ => false,
    }
}

/// A message in the publisher, with its place in the order.
struct Queued {
    /// Its place: messages are sent, and sent again, in this order.
    order: u64,
    message: Outgoing,
    /// A rejection marker (never replaced by another marker).
    marker: bool,
}

type AckResult = (Queued, Instant, Result<PublishAck, PublishError>);
type AckFuture = Pin<Box<dyn Future<Output = AckResult> + Send>>;

const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest delay before a failed publish is sent again.
pub const MAX_RETRY: Duration = Duration::from_secs(2);
/// Failing publishes are logged as a warning at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The window of publishes awaiting their acks, and the backlog.
pub struct Publisher<T: Transport = async_nats::jetstream::Context> {
    transport: T,
    window: usize,
    in_flight: FuturesOrdered<AckFuture>,
    /// Failed publishes, by their place in the order; sent before `fresh`.
    retry: VecDeque<Queued>,
    /// Messages not yet handed to the client, in order.
    fresh: VecDeque<Queued>,
    next_order: u64,
    /// No send before this, after a failure.
    hold_until: Option<Instant>,
    failures_in_row: u32,
    rejected: u64,
    /// Where a rejection marker goes when the original's subject was refused.
    fallback_subject: String,
    /// The last warning about failing publishes, and failures since.
    last_warn: Option<Instant>,
    failures_unreported: u64,
    /// How long handing a message to the client may take (its buffer is full while NATS is away).
    send_timeout: Duration,
    stats: Arc<Stats>,
}

impl<T: Transport> Publisher<T> {
    /// A publisher on `transport` awaiting at most `window` acks at once;
    /// handing one message to the client waits at most `send_timeout` (then
    /// it is sent again later), so the loop keeps answering shutdown while
    /// NATS is away. Rejection markers whose own subject was refused go to
    /// `fallback_subject`.
    pub fn new(
        transport: T,
        window: usize,
        send_timeout: Duration,
        fallback_subject: String,
        stats: Arc<Stats>,
    ) -> Self {
        Self {
            transport,
            window: window.max(1),
            in_flight: FuturesOrdered::new(),
            retry: VecDeque::new(),
            fresh: VecDeque::new(),
            next_order: 0,
            hold_until: None,
            failures_in_row: 0,
            rejected: 0,
            fallback_subject,
            last_warn: None,
            failures_unreported: 0,
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
            let (queued, from_retry) = match self.retry.pop_front() {
                Some(q) => (q, true),
                None => match self.fresh.pop_front() {
                    Some(q) => (q, false),
                    None => break,
                },
            };
            let sent = Instant::now();
            // A send cut short by the timeout was not handed over (tokio's channel send is cancel-safe).
            let result = tokio::time::timeout(self.send_timeout, self.transport.publish(&queued.message))
                .await
                .unwrap_or_else(|_| Err(PublishError::new(PublishErrorKind::TimedOut)));
            match result {
                Ok(ack) => self.in_flight.push_back(Box::pin(async move { (queued, sent, ack.await) })),
                Err(e) if is_permanent(&e) => self.reject(queued, &e),
                Err(e) => {
                    // Not handed to the client at all: back where it came from, after a delay.
                    self.failed(&queued, &e, "publish not taken");
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

    /// Waits for the oldest ack and accounts for it: stored, duplicate,
    /// rejected, or failed (then queued to be sent again in its place).
    /// Pending forever when nothing is in flight, so it can sit in a `select!`.
    pub async fn settle_next(&mut self) {
        let Some((queued, sent, result)) = self.in_flight.next().await else {
            return std::future::pending().await;
        };
        match result {
            Ok(ack) => {
                self.failures_in_row = 0;
                let now = Instant::now();
                self.stats.acked(ack.duplicate, now - sent, now - queued.message.received);
                if !ack.duplicate && envelope::is_gap(&queued.message) {
                    self.stats.gap();
                }
            }
            Err(e) if is_permanent(&e) => self.reject(queued, &e),
            Err(e) => {
                self.failed(&queued, &e, "no ack");
                self.requeue(queued);
                self.hold();
            }
        }
        self.report();
    }

    /// Puts a failed message back in the retry queue at its place in the order.
    fn requeue(&mut self, queued: Queued) {
        let at = self.retry.partition_point(|q| q.order < queued.order);
        self.retry.insert(at, queued);
    }

    fn reject(&mut self, queued: Queued, e: &PublishError) {
        let m = &queued.message;
        tracing::error!(subject = %m.subject, bytes = m.payload.len(), error = %e, "message rejected: no server can store it; a marker takes its place");
        self.rejected += 1;
        self.stats.rejected();
        if queued.marker {
            return;
        }
        let subject = if e.kind() == PublishErrorKind::Other
            && std::error::Error::source(e).is_some_and(|s| s.downcast_ref::<async_nats::SubjectError>().is_some())
        {
            self.fallback_subject.clone()
        } else {
            m.subject.clone()
        };
        let marker = envelope::rejected(&subject, m, &e.kind().to_string());
        self.requeue(Queued { order: queued.order, message: marker, marker: true });
    }

    /// A publish that may pass later failed: counted, logged at debug, and
    /// as a warning at most every [`WARN_EVERY`].
    fn failed(&mut self, queued: &Queued, e: &PublishError, what: &str) {
        self.stats.retried();
        tracing::debug!(subject = %queued.message.subject, error = %e, "{what}; sending again");
        self.failures_unreported += 1;
        let now = Instant::now();
        if self.last_warn.is_none_or(|t| now.duration_since(t) >= WARN_EVERY) {
            tracing::warn!(kind = ?e.kind(), error = %e, failures = self.failures_unreported, "publishes failing ({what}); sending them again");
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
        self.stats.in_flight(self.in_flight.len(), self.backlog());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::sync::oneshot;

    use super::*;
    use crate::envelope::header;

    /// What the fake does with one publish.
    enum Plan {
        /// Taken, acked as stored.
        Ack,
        /// Taken, acked as a duplicate.
        Duplicate,
        /// Not taken (the client's buffer full, NATS away).
        NotTaken,
        /// Not taken: larger than the server's `max_payload`.
        TooLarge,
        /// Taken; the ack comes when the test sends it.
        Later(oneshot::Receiver<Result<PublishAck, PublishError>>),
    }

    /// A transport that follows a plan, one step per publish (then acks
    /// everything), and records the ids it was handed, in order.
    #[derive(Default, Clone)]
    struct Fake {
        plan: Arc<Mutex<VecDeque<Plan>>>,
        sent: Arc<Mutex<Vec<String>>>,
    }

    fn ack(duplicate: bool) -> PublishAck {
        serde_json::from_str(&format!(r#"{{"stream":"S","seq":1,"duplicate":{duplicate}}}"#)).unwrap()
    }

    impl Transport for Fake {
        fn publish(&self, message: &Outgoing) -> Handover<'_> {
            let id = message.headers.get(header::MSG_ID).map(|v| v.as_str().to_owned()).unwrap_or_default();
            self.sent.lock().unwrap().push(id);
            let step = self.plan.lock().unwrap().pop_front().unwrap_or(Plan::Ack);
            Box::pin(async move {
                match step {
                    Plan::Ack => Ok(Box::pin(async { Ok(ack(false)) }) as Ack),
                    Plan::Duplicate => Ok(Box::pin(async { Ok(ack(true)) }) as Ack),
                    Plan::NotTaken => Err(PublishError::new(PublishErrorKind::BrokenPipe)),
                    Plan::TooLarge => Err(PublishError::new(PublishErrorKind::MaxPayloadExceeded)),
                    Plan::Later(rx) => Ok(Box::pin(async move {
                        rx.await.unwrap_or_else(|_| Err(PublishError::new(PublishErrorKind::BrokenPipe)))
                    }) as Ack),
                }
            })
        }
    }

    fn message(id: &str, kind: &str) -> Outgoing {
        let mut headers = HeaderMap::new();
        headers.insert(header::MSG_ID, id);
        headers.insert(header::KIND, kind);
        headers.insert(header::SEQ, "7");
        Outgoing { subject: "p.e.c".into(), headers, payload: Bytes::from_static(b"{}"), received: Instant::now() }
    }

    fn publisher(fake: &Fake, window: usize) -> (Publisher<Fake>, Arc<Stats>) {
        let stats = Arc::new(Stats::default());
        (Publisher::new(fake.clone(), window, Duration::from_secs(1), "p.~rejected".into(), stats.clone()), stats)
    }

    /// Runs the publisher as the bridge's loop does until nothing is left (at most 10 s).
    async fn settle_all(p: &mut Publisher<Fake>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while p.in_flight() + p.backlog() > 0 {
            assert!(Instant::now() < deadline, "the publisher did not settle");
            p.pump().await;
            let hold = p.held_until();
            tokio::select! {
                biased;
                () = p.settle_next(), if p.in_flight() > 0 => {}
                () = tokio::time::sleep_until(hold.unwrap_or_else(Instant::now)), if hold.is_some() => {}
                () = tokio::time::sleep(Duration::from_millis(1)), if hold.is_none() && p.in_flight() == 0 => {}
            }
        }
    }

    fn sent(fake: &Fake) -> Vec<String> {
        fake.sent.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn the_window_bounds_what_is_in_flight() {
        let fake = Fake::default();
        let mut acks = Vec::new();
        for _ in 0..5 {
            let (tx, rx) = oneshot::channel();
            fake.plan.lock().unwrap().push_back(Plan::Later(rx));
            acks.push(tx);
        }
        let (mut p, stats) = publisher(&fake, 2);
        for i in 0..5 {
            p.push(message(&format!("m{i}"), "message"));
        }
        p.pump().await;
        assert_eq!((p.in_flight(), p.backlog(), p.ready()), (2, 3, false));
        assert_eq!(sent(&fake), ["m0", "m1"]);
        for tx in acks {
            let _ = tx.send(Ok(ack(false)));
        }
        settle_all(&mut p).await;
        assert!(p.ready());
        let s = stats.snapshot();
        assert_eq!((s.published, s.max_in_flight), (5, 2));
    }

    /// A message the client did not take goes back where it came from: the
    /// failures of older messages still in flight are sent again before it.
    #[tokio::test]
    async fn resends_keep_the_order_messages_were_queued_in() {
        let fake = Fake::default();
        let (tx0, rx0) = oneshot::channel();
        fake.plan.lock().unwrap().extend([Plan::Later(rx0), Plan::NotTaken]);
        let (mut p, stats) = publisher(&fake, 4);
        for id in ["m0", "m1", "m2"] {
            p.push(message(id, "message"));
        }
        p.pump().await;
        // m0 in flight, m1 not taken (held back), m2 not tried yet.
        assert_eq!(sent(&fake), ["m0", "m1"]);
        let _ = tx0.send(Err(PublishError::new(PublishErrorKind::TimedOut)));
        p.settle_next().await;
        settle_all(&mut p).await;
        assert_eq!(sent(&fake), ["m0", "m1", "m0", "m1", "m2"]);
        assert_eq!(stats.snapshot().published, 3);
    }

    /// Acks that fail out of order are sent again in the order first queued.
    #[tokio::test]
    async fn failed_acks_are_sent_again_in_queue_order() {
        let fake = Fake::default();
        let (tx0, rx0) = oneshot::channel();
        let (tx1, rx1) = oneshot::channel();
        let (tx0b, rx0b) = oneshot::channel();
        fake.plan.lock().unwrap().extend([Plan::Later(rx0), Plan::Later(rx1), Plan::Later(rx0b)]);
        let (mut p, _) = publisher(&fake, 4);
        p.push(message("m0", "message"));
        p.push(message("m1", "message"));
        p.pump().await;
        let _ = tx0.send(Err(PublishError::new(PublishErrorKind::TimedOut)));
        p.settle_next().await;
        // m0 is sent again while m1 is still in flight, then both fail.
        tokio::time::sleep_until(p.held_until().unwrap()).await;
        p.pump().await;
        assert_eq!(sent(&fake), ["m0", "m1", "m0"]);
        let _ = tx1.send(Err(PublishError::new(PublishErrorKind::TimedOut)));
        let _ = tx0b.send(Err(PublishError::new(PublishErrorKind::TimedOut)));
        p.settle_next().await;
        p.settle_next().await;
        settle_all(&mut p).await;
        assert_eq!(sent(&fake)[3..], ["m0", "m1"]);
    }

    #[tokio::test]
    async fn a_message_too_large_is_replaced_by_a_marker_and_the_rest_goes_on() {
        let fake = Fake::default();
        fake.plan.lock().unwrap().extend([Plan::TooLarge]);
        let (mut p, stats) = publisher(&fake, 4);
        p.push(message("big", "message"));
        p.push(message("next", "message"));
        settle_all(&mut p).await;
        assert_eq!(sent(&fake), ["big", "rej:big", "next"]);
        assert_eq!(p.rejected(), 1);
        let s = stats.snapshot();
        assert_eq!((s.rejected, s.published, s.gaps, s.retries), (1, 2, 1, 0));
    }

    #[tokio::test]
    async fn a_rejected_marker_is_not_marked_again() {
        let fake = Fake::default();
        fake.plan.lock().unwrap().extend([Plan::TooLarge, Plan::TooLarge]);
        let (mut p, _) = publisher(&fake, 4);
        p.push(message("big", "message"));
        settle_all(&mut p).await;
        assert_eq!(sent(&fake), ["big", "rej:big"]);
        assert_eq!(p.rejected(), 2);
    }

    #[tokio::test]
    async fn a_gap_counts_once_stored_not_when_queued_or_a_duplicate() {
        let fake = Fake::default();
        let (tx, rx) = oneshot::channel();
        fake.plan.lock().unwrap().extend([Plan::Duplicate, Plan::Later(rx)]);
        let (mut p, stats) = publisher(&fake, 4);
        p.push(message("g1", "gap"));
        p.push(message("g2", "gap"));
        p.pump().await;
        p.settle_next().await;
        assert_eq!(stats.snapshot().gaps, 0, "a duplicate gap is the other replica's");
        let _ = tx.send(Ok(ack(false)));
        settle_all(&mut p).await;
        assert_eq!(stats.snapshot().gaps, 1);
    }

    #[test]
    fn permanent_errors_are_told_apart() {
        assert!(is_permanent(&PublishError::new(PublishErrorKind::MaxPayloadExceeded)));
        assert!(is_permanent(&PublishError::with_source(
            PublishErrorKind::Other,
            async_nats::SubjectError::InvalidFormat
        )));
        for kind in [PublishErrorKind::TimedOut, PublishErrorKind::BrokenPipe, PublishErrorKind::StreamNotFound] {
            assert!(!is_permanent(&PublishError::new(kind)));
        }
    }
}
