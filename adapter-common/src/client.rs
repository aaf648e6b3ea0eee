//! The handles: a cloneable [`Client`] that sends commands to the driver
//! task, and the [`Events`] stream the driver fills.
//!
//! Cancel safety: every `Client` method is safe to drop mid-await (inside
//! `select!`, say). A command is handed to the driver whole or not at all, so
//! nothing is half-sent; if the future is dropped after the hand-over, the
//! command still takes effect (a message still goes out, a request still
//! runs to its outcome), only its answer is not awaited. No event is lost: events
//! live in the stream, not in these futures.
//!
//! `Client` is also a `futures::Sink<Message>` (in `sink.rs`).

mod sink;

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;
use wslink_core::{
    CloseCode, HeartbeatHealth, LatencyStats, Message, Metrics, RequestId, SessionEvent, SessionState, SubscribeOptions,
};

use crate::channels::{CommandSender, EventReceiver, FirstOutcome, Gone};
use crate::command::{Command, RequestBody, RequestCommand};
use crate::reply::{ClientError, Reply, RequestError, Response, Snapshot, TrySendError};

/// Adapter-level counters beside the session's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientMetrics {
    /// The session's counters and gauges.
    pub session: Metrics,
    /// Total time reading was paused because the event stream was full.
    pub read_paused: Duration,
}

/// A cloneable handle to a running client. Every method is cancel-safe (see the module docs).
///
/// It is also a [`Sink`](futures_sink::Sink) of [`Message`]s, for
/// `SinkExt::send`, `send_all` and `StreamExt::forward`: `poll_ready` waits
/// for room (the command queue, and the write budget), messages go as
/// [`try_send_text`](Self::try_send_text)'s do, `poll_flush` waits until
/// the session has taken them, `poll_close` closes the session. See the
/// `Sink` implementation for the details.
pub struct Client {
    pub(crate) commands: CommandSender,
    /// The sink's flush or close in progress; made on the sink's first use.
    sink: Option<Box<sink::SinkState>>,
}

impl Clone for Client {
    /// Another handle to the same client; as a sink, it starts with nothing to flush.
    fn clone(&self) -> Self {
        Self { commands: self.commands.clone(), sink: None }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("state", &self.state()).finish_non_exhaustive()
    }
}

pub(crate) fn encode_state(s: SessionState) -> u8 {
    s as u8
}

fn decode_state(v: u8) -> SessionState {
    use SessionState::*;
    [Idle, Connecting, Handshaking, Authenticating, Open, Closing, Backoff, Closed]
        .get(usize::from(v))
        .copied()
        .unwrap_or(Closed)
}

impl Client {
    /// A handle over the driver's command channel.
    pub(crate) fn new(commands: CommandSender) -> Self {
        Self { commands, sink: None }
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|Gone| ClientError::Shutdown)?;
        rx.await.map_err(|_| ClientError::Shutdown)?
    }

    /// Sends a text message (or queues it while reconnecting). While the
    /// write budget is used up (`Builder::write_budget`: the peer is not
    /// taking what was written), this waits until there is room, in order
    /// with every other send.
    pub async fn send_text(&self, text: impl Into<String>) -> Result<(), ClientError> {
        let message = Message::Text(text.into().into());
        self.ask(|r| Command::Send(Box::new((message, r)))).await
    }

    /// Sends a message as it is (or queues it while reconnecting): an echo
    /// hands back what it received, with no copy.
    pub async fn send(&self, message: Message) -> Result<(), ClientError> {
        self.ask(|r| Command::Send(Box::new((message, r)))).await
    }

    /// Sends a binary message (or queues it while reconnecting).
    pub async fn send_binary(&self, data: impl Into<bytes::Bytes>) -> Result<(), ClientError> {
        let message = Message::Binary(data.into());
        self.ask(|r| Command::Send(Box::new((message, r)))).await
    }

    /// Hands a text message to the driver and returns at once, without
    /// waiting for the session's answer (`send_text` waits for it). The
    /// session sends or queues it as for `send_text`; if it refuses it (not
    /// connected with `queue_while_disconnected` off, its queue full, ...)
    /// the event stream yields `SessionEvent::Refused` with the message and
    /// the reason; one queued and later dropped at a disconnect comes back as
    /// `SessionEvent::Dropped`, as for `send_text`. Messages handed over this
    /// way and with `send_*` go out in the order they were handed over.
    ///
    /// Reports go to the event stream: if it has been dropped, or the
    /// runtime is shut down under the driver task, they go nowhere.
    pub fn try_send_text(&self, text: impl Into<String>) -> Result<(), TrySendError> {
        self.commands.try_post(Message::Text(text.into().into()))
    }

    /// Hands a binary message to the driver without waiting; see [`try_send_text`](Self::try_send_text).
    pub fn try_send_binary(&self, data: impl Into<bytes::Bytes>) -> Result<(), TrySendError> {
        self.commands.try_post(Message::Binary(data.into()))
    }

    /// [`try_send_*`](Self::try_send_text) for an `InlineClient`, which
    /// drives the connection the next time it is awaited: the driver is not
    /// woken (it runs in the caller's own task).
    pub(crate) fn try_post_inline(&self, message: Message) -> Result<(), TrySendError> {
        self.commands.try_post_quietly(message)
    }

    /// Sends a request and waits for its outcome. `params` is JSON text for
    /// the default JSON-RPC codec; `timeout` defaults to the session's.
    ///
    /// The response is read from the same socket as every other message:
    /// if the event stream is kept but not read, reading pauses once it is
    /// full and the response behind the unread messages cannot arrive, so
    /// the request times out. A client used only for requests (and sends)
    /// discards its events (`Builder::event_filter(EventFilter::Discard)`,
    /// or drops its `Events`): it then never waits for a reader, and a
    /// connection its server breaks fails the request at once.
    pub async fn request(
        &self,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Response, RequestError> {
        let body = RequestBody::Call { id: None, method: method.to_owned(), params: params.map(str::to_owned) };
        self.start_request(body, timeout).await
    }

    /// Like [`request`](Self::request), with an id of the caller's own, a
    /// number or a text (`"order-7f3a"`, a UUID): the codec writes it and
    /// the response carrying it ends the request. An id still pending is
    /// refused (`CommandError::DuplicateRequestId`); one the codec cannot
    /// write too (`CommandError::UnsupportedRequestId`; JSON-RPC writes both).
    /// The returned `Response`'s `id` is the session's handle for the
    /// request, not the wire id.
    pub async fn request_with_id(
        &self,
        id: impl Into<RequestId>,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Response, RequestError> {
        let body =
            RequestBody::Call { id: Some(id.into()), method: method.to_owned(), params: params.map(str::to_owned) };
        self.start_request(body, timeout).await
    }

    /// Sends a request the caller wrote whole, its id inside, and waits for
    /// the response that carries that id (ZenWebsocket's `send_message`).
    /// The codec reads the id (JSON-RPC: the top-level `"id"`, a number or a
    /// string); a message without one is refused
    /// (`CommandError::NoRequestId`), as is an id still pending.
    pub async fn request_message(
        &self,
        message: impl Into<Message>,
        timeout: Option<Duration>,
    ) -> Result<Response, RequestError> {
        self.start_request(RequestBody::Whole(message.into()), timeout).await
    }

    async fn start_request(&self, body: RequestBody, timeout: Option<Duration>) -> Result<Response, RequestError> {
        let (tx, rx) = oneshot::channel();
        let command = Command::Request(Box::new(RequestCommand { body, timeout, reply: tx }));
        self.commands.send(command).await.map_err(|Gone| ClientError::Shutdown)?;
        rx.await.map_err(|_| ClientError::Shutdown)?
    }

    /// Adds channels to the subscription set (sent now if open, and after every reconnect).
    pub async fn subscribe(&self, channels: &[&str]) -> Result<(), ClientError> {
        let channels = channels.iter().map(|c| (*c).to_owned()).collect();
        self.ask(|r| Command::Subscribe(Box::new((channels, SubscribeOptions::new(), r)))).await
    }

    /// Adds channels with options of their own: whether a reconnect
    /// subscribes them again (`restore`), and where their sequence numbers
    /// sit (`sequence`), so that a missed or repeated message is reported
    /// (`SessionEvent::SequenceGap`, `SequenceReset`) and acted on
    /// (`on_gap`: tell, resubscribe or reconnect). Channels already in the
    /// set keep the options they were added with.
    pub async fn subscribe_with(&self, channels: &[&str], options: SubscribeOptions) -> Result<(), ClientError> {
        let channels = channels.iter().map(|c| (*c).to_owned()).collect();
        self.ask(|r| Command::Subscribe(Box::new((channels, options, r)))).await
    }

    /// Removes channels from the subscription set.
    pub async fn unsubscribe(&self, channels: &[&str]) -> Result<(), ClientError> {
        let channels = channels.iter().map(|c| (*c).to_owned()).collect();
        self.ask(|r| Command::Unsubscribe(Box::new((channels, r)))).await
    }

    /// Sends a protocol ping (payload at most 125 bytes); its pong arrives as
    /// `SessionEvent::Pong` when the builder turned `control_events` on.
    pub async fn ping(&self, payload: impl Into<bytes::Bytes>) -> Result<(), ClientError> {
        let payload = payload.into();
        self.ask(|r| Command::Control(Box::new((true, payload, r)))).await
    }

    /// Sends a protocol pong: the answer to a `SessionEvent::Ping` when the
    /// connection's `auto_pong` is off.
    pub async fn pong(&self, payload: impl Into<bytes::Bytes>) -> Result<(), ClientError> {
        let payload = payload.into();
        self.ask(|r| Command::Control(Box::new((false, payload, r)))).await
    }

    /// Drops the current connection and connects again at once.
    pub async fn reconnect(&self) -> Result<(), ClientError> {
        self.ask(Command::Reconnect).await
    }

    /// Closes the session for good and waits until it is closed.
    pub async fn close(&self, code: CloseCode, reason: &str) -> Result<(), ClientError> {
        let reason = reason.to_owned();
        self.ask(|r| Command::Close(Box::new((code, reason, r)))).await
    }

    /// The session's state, as of the driver's last turn.
    pub fn state(&self) -> SessionState {
        decode_state(self.commands.state())
    }

    /// How the first connection attempt ended (for `connect`, whose driver stores it).
    pub(crate) async fn first_outcome(&self) -> Option<FirstOutcome> {
        poll_fn(|cx| self.commands.poll_first_outcome(cx)).await
    }

    /// Metrics, latency and health in one round trip to the driver.
    pub(crate) async fn snapshot(&self) -> Result<Snapshot, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Snapshot(tx)).await.map_err(|Gone| ClientError::Shutdown)?;
        rx.await.map_err(|_| ClientError::Shutdown)
    }

    /// Round-trip statistics of requests.
    pub async fn latency(&self) -> Result<LatencyStats, ClientError> {
        Ok(self.snapshot().await?.latency)
    }

    /// What the heartbeats have seen.
    pub async fn heartbeat_health(&self) -> Result<HeartbeatHealth, ClientError> {
        Ok(self.snapshot().await?.health)
    }

    /// Counters and gauges, including how long reading was paused for a slow
    /// consumer and when the last message arrived (`session.last_message_at`).
    pub async fn metrics(&self) -> Result<ClientMetrics, ClientError> {
        let s = self.snapshot().await?;
        Ok(ClientMetrics { session: s.metrics, read_paused: s.read_paused })
    }
}

/// The client's events, in order. Ends after `SessionEvent::Closed`.
///
/// Reading slowly is safe: when `event_capacity` events (or 256 KiB of
/// payload) wait for you the
/// driver stops reading the socket, and TCP pushes back on the server.
/// Events cross from the driver in batches (all that one read produced), so a
/// flood costs one channel operation per read, not per message.
pub struct Events {
    pub(crate) rx: EventReceiver,
    /// The batch in hand; once emptied, its buffer goes back to the driver
    /// with the next request for a batch.
    pub(crate) batch: VecDeque<SessionEvent>,
}

impl Events {
    /// The next event; `None` once the session has closed and everything was delivered.
    /// Cancel-safe: a batch is taken from the driver only when this completes.
    pub async fn recv(&mut self) -> Option<SessionEvent> {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Every event waiting, as one batch (what is left of the current one, or
    /// the next from the driver); `None` once the stream has ended. Lets a
    /// forwarder (the pool's member task) move events a batch at a time.
    pub(crate) fn poll_batch(&mut self, cx: &mut Context<'_>) -> Poll<Option<Vec<SessionEvent>>> {
        let held = Vec::from(std::mem::take(&mut self.batch));
        if !held.is_empty() {
            return Poll::Ready(Some(held));
        }
        self.rx.poll_batch_giving(cx, held)
    }

    /// See [`EventReceiver::forget_consumer`](crate::channels::EventReceiver::forget_consumer).
    pub(crate) fn forget_waker(&self) {
        self.rx.forget_consumer();
    }

    /// The next event of the batch in hand, without asking the driver for more.
    pub(crate) fn next_in_batch(&mut self) -> Option<SessionEvent> {
        self.batch.pop_front()
    }

    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<SessionEvent>> {
        loop {
            if let Some(event) = self.next_in_batch() {
                return Poll::Ready(Some(event));
            }
            // The emptied buffer goes back: the driver fills it again while
            // the link is busy, and frees it once the link falls idle.
            let spent = Vec::from(std::mem::take(&mut self.batch));
            match self.rx.poll_batch_giving(cx, spent) {
                Poll::Ready(Some(batch)) => self.batch = VecDeque::from(batch),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl futures_core::Stream for Events {
    type Item = SessionEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SessionEvent>> {
        self.poll_event(cx)
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}
