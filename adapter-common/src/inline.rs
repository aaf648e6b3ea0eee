//! A client driven inside the task that awaits it, for the common case of
//! one task per connection (a trading strategy, say).
//!
//! [`Client`] runs its connection in a task of its own and talks to it over
//! channels, so every message crosses from that task to the consumer's: two
//! task polls and a wake-up per turn. [`InlineClient`] runs the same driver
//! future (the same code, the same session: reconnect, heartbeat, requests,
//! subscriptions) but polls it from its own methods: `recv`, the `send_*`
//! calls and `request` move the socket and the timers along while they are
//! awaited, and a message the read brings is handed over in the same poll.
//!
//! Invariants:
//! - The connection makes progress only while one of its methods (or the
//!   `Stream`) is being awaited; a task that stops awaiting it for long lets
//!   its heartbeat go unanswered, exactly as a paused reader does (reading
//!   pauses, and a paused reader is never taken for a dead link).
//! - While the owner awaits something other than `recv` (a request, a
//!   send), events keep being taken from the driver into a buffer of at
//!   most `SPILL_BYTES` of messages (and `event_capacity` events), so that a
//!   response behind a burst of feed messages is still read; past that,
//!   reading pauses as usual (the request may then time out) and nothing is
//!   dropped.
//! - Dropping it hands the driver to the runtime to finish: the connection
//!   closes cleanly with 1000, as when every `Client` and `Events` is dropped.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use wslink_core::{
    CloseCode, HeartbeatHealth, LatencyStats, Message, RequestId, SessionEvent, SessionState, SubscribeOptions,
};

use crate::client::{Client, ClientMetrics, Events};
use crate::reply::{ClientError, RequestError, Response, TrySendError};

/// Most message bytes taken aside while the owner awaits a command.
const SPILL_BYTES: usize = 8 << 20;

/// The driver future, boxed.
type DriverFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Hands an unfinished driver to the runtime when the client is dropped.
pub(crate) type Finish = Box<dyn FnOnce(DriverFuture) + Send>;

/// A client whose connection runs in the task that awaits it (see the
/// module docs): `Builder::start_inline` or `Builder::connect_inline`.
///
/// ```ignore
/// let mut link = Builder::new("wss://api.example.com/ws")?.connect_inline().await?;
/// link.subscribe(&["trades.BTC"]).await?;
/// while let Some(event) = link.recv().await {
///     if let SessionEvent::Message(m) = event {
///         link.send_text(decide(&m)).await?;
///     }
/// }
/// ```
pub struct InlineClient {
    driver: Option<DriverFuture>,
    client: Client,
    events: Events,
    /// Events taken from the driver while the owner awaited something else.
    spilled: VecDeque<SessionEvent>,
    /// The fewest events `spilled` may take (the builder's `event_capacity`).
    spill_limit: usize,
    /// Message bytes in `spilled`.
    spilled_bytes: usize,
    finish: Option<Finish>,
}

impl InlineClient {
    pub(crate) fn new(
        driver: DriverFuture,
        client: Client,
        events: Events,
        spill_limit: usize,
        finish: Finish,
    ) -> Self {
        let spilled = VecDeque::new();
        Self { driver: Some(driver), client, events, spilled, spill_limit, spilled_bytes: 0, finish: Some(finish) }
    }

    /// Moves the connection along: reads, writes, timers, commands. The
    /// caller looks for events right after, so the events' waker is
    /// forgotten first: a batch the driver hands over now wakes no one.
    fn poll_driver(&mut self, cx: &mut Context<'_>) {
        if let Some(driver) = self.driver.as_mut() {
            self.events.forget_waker();
            if driver.as_mut().poll(cx).is_ready() {
                self.driver = None;
            }
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<SessionEvent>> {
        if let Some(event) = self.spilled.pop_front() {
            self.spilled_bytes -= event_bytes(&event);
            return Poll::Ready(Some(event));
        }
        // A batch in hand is handed out without a turn of the driver: a turn
        // per event would cost a flood more than the event itself.
        if let Some(event) = self.events.next_in_batch() {
            return Poll::Ready(Some(event));
        }
        self.poll_driver(cx);
        self.events.poll_event(cx)
    }

    /// Awaits `work` while driving the connection (for `connect_inline`).
    pub(crate) async fn drive_until<T>(&mut self, work: impl Future<Output = T>) -> T {
        self.drive(work).await
    }

    /// Awaits `work` (a command handed to the driver) while driving the
    /// connection, taking events aside within the spill bound.
    async fn drive<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = pin!(work);
        poll_fn(|cx| {
            if let Poll::Ready(done) = work.as_mut().poll(cx) {
                return Poll::Ready(done);
            }
            self.poll_driver(cx);
            if self.spilled.len() < self.spill_limit || self.spilled_bytes < SPILL_BYTES {
                if let Poll::Ready(Some(batch)) = self.events.poll_batch(cx) {
                    self.spilled_bytes += batch.iter().map(event_bytes).sum::<usize>();
                    self.spilled.extend(batch);
                }
            }
            work.as_mut().poll(cx)
        })
        .await
    }

    /// The next event; `None` once the session has closed and everything
    /// was delivered. Drives the connection while it waits. Cancel-safe.
    pub async fn recv(&mut self) -> Option<SessionEvent> {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Sends a text message (or queues it while reconnecting).
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ClientError> {
        let client = self.client.clone();
        self.drive(client.send_text(text)).await
    }

    /// Sends a binary message (or queues it while reconnecting).
    pub async fn send_binary(&mut self, data: impl Into<bytes::Bytes>) -> Result<(), ClientError> {
        let client = self.client.clone();
        self.drive(client.send_binary(data)).await
    }

    /// Sends a message as it is (or queues it while reconnecting).
    pub async fn send(&mut self, message: Message) -> Result<(), ClientError> {
        let client = self.client.clone();
        self.drive(client.send(message)).await
    }

    /// Hands a text message over without waiting for the session's answer
    /// (see `Client::try_send_text`); it goes out the next time this client
    /// is awaited.
    pub fn try_send_text(&self, text: impl Into<String>) -> Result<(), TrySendError> {
        self.client.try_post_inline(Message::Text(text.into().into()))
    }

    /// Hands a binary message over without waiting; see [`try_send_text`](Self::try_send_text).
    pub fn try_send_binary(&self, data: impl Into<bytes::Bytes>) -> Result<(), TrySendError> {
        self.client.try_post_inline(Message::Binary(data.into()))
    }

    /// Sends a request and waits for its outcome, driving the connection meanwhile.
    pub async fn request(
        &mut self,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Response, RequestError> {
        let client = self.client.clone();
        self.drive(client.request(method, params, timeout)).await
    }

    /// A request with the caller's own id (see `Client::request_with_id`),
    /// driving the connection meanwhile.
    pub async fn request_with_id(
        &mut self,
        id: impl Into<RequestId>,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Response, RequestError> {
        let client = self.client.clone();
        self.drive(client.request_with_id(id, method, params, timeout)).await
    }

    /// A request the caller wrote whole (see `Client::request_message`),
    /// driving the connection meanwhile.
    pub async fn request_message(
        &mut self,
        message: impl Into<Message>,
        timeout: Option<Duration>,
    ) -> Result<Response, RequestError> {
        let client = self.client.clone();
        self.drive(client.request_message(message, timeout)).await
    }

    /// Adds channels to the subscription set (sent now if open, and after every reconnect).
    pub async fn subscribe(&mut self, channels: &[&str]) -> Result<(), ClientError> {
        let client = self.client.clone();
        self.drive(client.subscribe(channels)).await
    }

    /// Adds channels with options of their own (see `Client::subscribe_with`).
    pub async fn subscribe_with(&mut self, channels: &[&str], options: SubscribeOptions) -> Result<(), ClientError> {
        let client = self.client.clone();
        self.drive(client.subscribe_with(channels, options)).await
    }

    /// Removes channels from the subscription set.
    pub async fn unsubscribe(&mut self, channels: &[&str]) -> Result<(), ClientError> {
        let client = self.client.clone();
        self.drive(client.unsubscribe(channels)).await
    }

    /// Sends a protocol ping (see `Client::ping`).
    pub async fn ping(&mut self, payload: impl Into<bytes::Bytes>) -> Result<(), ClientError> {
        let client = self.client.clone();
        self.drive(client.ping(payload)).await
    }

    /// Sends a protocol pong (see `Client::pong`).
    pub async fn pong(&mut self, payload: impl Into<bytes::Bytes>) -> Result<(), ClientError> {
        let client = self.client.clone();
        self.drive(client.pong(payload)).await
    }

    /// Drops the current connection and connects again at once.
    pub async fn reconnect(&mut self) -> Result<(), ClientError> {
        let client = self.client.clone();
        self.drive(client.reconnect()).await
    }

    /// Closes the session for good and waits until it is closed; the events
    /// up to `Closed` still come from `recv`.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), ClientError> {
        let client = self.client.clone();
        self.drive(client.close(code, reason)).await
    }

    /// The session's state, as of the driver's last turn.
    pub fn state(&self) -> SessionState {
        self.client.state()
    }

    /// Round-trip statistics of requests.
    pub async fn latency(&mut self) -> Result<LatencyStats, ClientError> {
        let client = self.client.clone();
        self.drive(client.latency()).await
    }

    /// What the heartbeats have seen.
    pub async fn heartbeat_health(&mut self) -> Result<HeartbeatHealth, ClientError> {
        let client = self.client.clone();
        self.drive(client.heartbeat_health()).await
    }

    /// Counters and gauges (see `Client::metrics`).
    pub async fn metrics(&mut self) -> Result<ClientMetrics, ClientError> {
        let client = self.client.clone();
        self.drive(client.metrics()).await
    }

    /// A handle for other tasks. Their commands take effect while this
    /// client is awaited: the connection runs only then.
    pub fn client(&self) -> Client {
        self.client.clone()
    }
}

/// The payload bytes an event holds.
fn event_bytes(event: &SessionEvent) -> usize {
    match event {
        SessionEvent::Message(m) | SessionEvent::Response { message: m, .. } => m.len(),
        _ => 0,
    }
}

impl futures_core::Stream for InlineClient {
    type Item = SessionEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SessionEvent>> {
        self.poll_event(cx)
    }
}

impl Drop for InlineClient {
    fn drop(&mut self) {
        if let (Some(driver), Some(finish)) = (self.driver.take(), self.finish.take()) {
            // The handles drop right after this; the driver, told that
            // nobody is left, closes cleanly in the background.
            finish(driver);
        }
    }
}

impl std::fmt::Debug for InlineClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineClient").field("state", &self.state()).finish_non_exhaustive()
    }
}
