//! The session: one logical client across many connections.
//!
//! It owns a [`Connection`] while one exists and every timer around it
//! (connect, auth, heartbeat, idle, request deadlines, backoff, rate limit),
//! and reports the earliest through `poll_timeout`. It asks the caller to open
//! and close transports through [`Action`]s and tells it what happened through
//! [`SessionEvent`]s.
//!
//! Invariants: at most one transport is open or opening; every request ends
//! exactly once (a `Response` or a `RequestFailed`, or the `Err` of the call);
//! after every reconnect authentication is accepted before subscriptions are
//! sent, and each channel is sent once; nothing is emitted after `Closed`.
//! This file holds the state, the getters and the commands; the rest is a
//! file per idea: `request.rs` (requests and their ids), `subscribe.rs`
//! (the subscription set, and breaks in numbered channels), `reauth.rs`
//! (authenticating again on the open link), `inputs.rs` (transport events,
//! bytes, writes, timers, and
//! where each incoming message goes), `outputs.rs` (what the caller polls),
//! `send.rs` (how the session writes), `lifecycle.rs` (from one connection
//! to the next, and the end), `config.rs` (settings), `builder.rs` (the builder that checks them),
//! `recorded.rs` (what a recording keeps of them) and `tls.rs` (typed TLS
//! and proxy failures).

mod builder;
mod config;
mod hook_set;
mod inputs;
mod lifecycle;
mod outputs;
mod reauth;
#[cfg(feature = "record")]
mod recorded;
mod request;
mod send;
mod subscribe;
// The session's scenarios speak JSON-RPC and record themselves.
#[cfg(all(test, not(feature = "json")))]
mod no_codec_tests;
#[cfg(all(test, feature = "json", feature = "record"))]
mod tests;
mod tls;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::outputs::{Action, Metrics, SessionEvent, SessionState, Traffic};
use crate::reasons::{CloseReason, CommandError, DisconnectReason, RequestFailure};
pub use builder::SessionBuilder;
pub use config::{SessionConfig, DEFAULT_WRITE_BUDGET};

use crate::backlog::WriteBacklog;
use crate::backoff::Backoff;
use crate::connection::Connection;
use crate::deadline::after;
use crate::deflate::CompressionStats;
use crate::heartbeat::{Heartbeat, HeartbeatHealth};
use crate::hooks::Outbound;
use crate::latency::{LatencyStats, LatencyWindow};
use crate::message::Message;
use crate::outbound::{Outbox, Queued};
use crate::queue::release_if_small;
use crate::record::format::Entry;
use crate::record::Tape;
use crate::request_id::RequestId;
use crate::requests::{Purpose, Requests};
use crate::subscriptions::{SubscribeOptions, Subscriptions};
use crate::{CloseCode, RandomSource};
use hook_set::Hooks;

#[derive(Debug, Default)]
struct Counters {
    connects: u64,
    reconnects: u64,
    bytes_in: u64,
    bytes_out: u64,
    messages_in: u64,
    messages_out: u64,
    /// Compression on connections that have ended.
    compression: CompressionStats,
    /// Breaks in numbered channels.
    sequence_gaps: u64,
    sequence_resets: u64,
    /// Times the session became open (a refused certificate means another thing after the first).
    opened: u64,
    /// The `now` of the input that completed the last data message.
    last_message_at: Option<Instant>,
}

/// One logical client that reconnects, re-authenticates and re-subscribes by
/// itself. Build it with [`Session::builder`].
///
/// Drive it like a [`Connection`]: after every input (`handle_*`) or command,
/// drain [`poll_action`](Self::poll_action) (open, write, close the
/// transport), [`poll_event`](Self::poll_event), and call
/// [`handle_timeout`](Self::handle_timeout) once [`poll_timeout`](Self::poll_timeout)
/// has passed. `now` must never go backwards.
///
/// ```
/// use std::time::{Duration, Instant};
/// use rand::{rngs::StdRng, SeedableRng};
/// use wslink_core::{Action, Session, SessionEvent};
///
/// let now = Instant::now();
/// let mut session = Session::builder("wss://stream.example.com/ws")?
///     .build(Box::new(StdRng::seed_from_u64(1)), now)?;
/// session.subscribe(&["trades.BTC-PERPETUAL.raw"], now)?; // sent after every (re)connect
/// let id = session.request("public/get_time", None, None, now)?; // queued until open
/// session.connect(now)?;
/// match session.poll_action() {
///     Some(Action::OpenTransport { host, port, tls }) => {
///         assert_eq!((host.as_str(), port, tls), ("stream.example.com", 443, true));
///     }
///     other => panic!("{other:?}"),
/// }
/// // The adapter could not connect: the session schedules the next attempt
/// // after a random part of the first 250 ms step (full jitter is the default).
/// session.handle_transport_error(std::io::ErrorKind::ConnectionRefused, "refused", now);
/// let delay = std::iter::from_fn(|| session.poll_event())
///     .find_map(|e| match e {
///         SessionEvent::Reconnecting { attempt: 2, delay } => Some(delay),
///         _ => None,
///     })
///     .expect("a reconnect is scheduled");
/// assert!(delay <= Duration::from_millis(250));
/// assert_eq!(session.poll_timeout(), Some(now + delay));
/// assert_eq!(session.metrics(now).queue_len, 1, "request {id} waits for the connection");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Session {
    config: SessionConfig,
    hooks: Hooks,
    /// The random source, lent to the connection while there is one.
    rng: Box<dyn RandomSource>,
    state: SessionState,
    state_since: Instant,
    conn: Option<Connection>,
    /// How many messages at the front of the connection's queue the fast path
    /// left there for `poll_event` (all of them newer than `events`).
    parked: usize,
    /// Whether a transport is open or opening: every `OpenTransport` gets exactly one `CloseTransport`.
    transport: bool,
    connect_deadline: Option<Instant>,
    auth_deadline: Option<Instant>,
    /// Since when the caller has not been reading (`handle_reading_paused`).
    reading_paused_since: Option<Instant>,
    /// The auth request's id when the authenticator speaks through a request.
    auth_request: Option<u64>,
    /// The upgrade response, held until the session opens (after authentication).
    pending_response: Option<Box<crate::UpgradeResponse>>,
    backoff: Backoff,
    backoff_until: Option<Instant>,
    opened_at: Option<Instant>,
    user_closing: bool,
    heartbeat: Heartbeat,
    requests: Requests,
    latency: LatencyWindow,
    subscriptions: Subscriptions,
    outbox: Outbox,
    actions: VecDeque<Action>,
    events: VecDeque<SessionEvent>,
    counters: Counters,
    /// The recording, when one was asked for.
    tape: Option<Box<Tape>>,
    /// Header names the user marked secret (beyond `handshake::SENSITIVE_HEADERS`).
    sensitive_headers: Vec<String>,
    /// Bytes handed out and not yet written, against `write_budget`.
    backlog: WriteBacklog,
    /// An application heartbeat's answer that waits for room to be written
    /// (boxed: rare, and an idle session stays small).
    owed_probe: Option<Box<Outbound>>,
    /// When to authenticate again on the open link (`reauth.rs`).
    reauth_at: Option<Instant>,
    /// Authenticating again on the open link: what needs the credentials waits.
    reauthenticating: bool,
    /// Subscription changes made during a refresh, sent after it.
    held_changes: Vec<(Vec<Outbound>, Purpose)>,
    /// A channel's numbering broke and its `on_gap` says reconnect: done
    /// once the messages read with the one that showed it are out.
    break_reconnect: Option<Box<crate::subscriptions::Break>>,
    /// The `now` of the latest input or command: when bytes handed out
    /// began to wait (`poll_action` takes no `now` of its own).
    clock: Instant,
}

impl Session {
    fn from_parts(config: SessionConfig, hooks: Hooks, rng: Box<dyn RandomSource>, now: Instant) -> Self {
        Self {
            backoff: Backoff::new(config.backoff.clone()),
            heartbeat: Heartbeat::new(config.ping, config.app_heartbeat, config.idle_timeout),
            requests: Requests::new(config.late_response_window),
            latency: LatencyWindow::new(config.latency_window),
            outbox: Outbox::new(config.queue_capacity, config.rate_limit, now),
            backlog: WriteBacklog::new(config.write_budget, config.write_timeout),
            config,
            hooks,
            rng,
            state: SessionState::Idle,
            state_since: now,
            conn: None,
            parked: 0,
            transport: false,
            connect_deadline: None,
            auth_deadline: None,
            reading_paused_since: None,
            auth_request: None,
            pending_response: None,
            backoff_until: None,
            opened_at: None,
            user_closing: false,
            subscriptions: Subscriptions::default(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            tape: None,
            sensitive_headers: Vec::new(),
            owed_probe: None,
            break_reconnect: None,
            reauth_at: None,
            reauthenticating: false,
            held_changes: Vec::new(),
            clock: now,
        }
    }

    // ----- getters -----

    /// The current state.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// Round-trip statistics of user requests.
    pub fn latency(&self) -> LatencyStats {
        self.latency.stats()
    }

    /// What the heartbeats have seen.
    pub fn heartbeat_health(&self) -> HeartbeatHealth {
        self.heartbeat.health()
    }

    /// The subscription set, in the order channels were added.
    pub fn subscriptions(&self) -> &[String] {
        self.subscriptions.names()
    }

    /// Counters and gauges, with the time in the current state measured to `now`.
    pub fn metrics(&self, now: Instant) -> Metrics {
        Metrics {
            state: self.state,
            time_in_state: now.saturating_duration_since(self.state_since),
            attempt: self.backoff.failures(),
            connects: self.counters.connects,
            reconnects: self.counters.reconnects,
            bytes_in: self.counters.bytes_in,
            bytes_out: self.counters.bytes_out,
            messages_in: self.messages_read(),
            messages_out: self.counters.messages_out,
            queue_len: self.outbox.len(),
            pending_requests: self.requests.user_pending(),
            subscriptions: self.subscriptions.len(),
            sequence_gaps: self.counters.sequence_gaps,
            sequence_resets: self.counters.sequence_resets,
            compression: {
                let mut total = self.counters.compression;
                if let Some(current) = self.conn.as_ref().and_then(Connection::compression_stats) {
                    total.add(&current);
                }
                total
            },
            last_message_at: self.counters.last_message_at,
            write_buffered: self.write_buffered(),
        }
    }

    /// Bytes waiting to be written: framed by the connection, or handed out
    /// in `Action::Transmit` and not yet reported with
    /// [`handle_written`](Self::handle_written).
    pub fn write_buffered(&self) -> usize {
        self.backlog.unwritten() + self.conn.as_ref().map_or(0, Connection::pending_output)
    }

    /// Whether the write budget has room: a user message sent now goes out
    /// (rate limit permitting) rather than waiting in the outbound queue. An
    /// adapter holds its callers' sends while this is false, so that they
    /// wait instead of filling the queue.
    pub fn has_write_room(&self) -> bool {
        self.backlog.has_room(self.conn.as_ref().map_or(0, Connection::pending_output))
    }

    /// The URL every attempt connects to.
    pub fn url(&self) -> &crate::WsUrl {
        self.config.request.url()
    }

    /// Attempts in a row that failed to open so far (`Metrics::attempt`),
    /// without computing the rest of the metrics.
    pub fn failed_attempts(&self) -> u32 {
        self.backoff.failures()
    }

    /// The traffic counters and the queue's length: the part of
    /// [`metrics`](Self::metrics) that moves with every message, cheap
    /// enough to read after every input.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            bytes_in: self.counters.bytes_in,
            bytes_out: self.counters.bytes_out,
            messages_in: self.messages_read(),
            messages_out: self.counters.messages_out,
            queue_len: self.outbox.len(),
            write_buffered: self.write_buffered(),
        }
    }

    // ----- commands -----

    /// Starts connecting, if idle. Does nothing while connecting or connected.
    pub fn connect(&mut self, now: Instant) -> Result<(), CommandError> {
        self.record(now, || Entry::Connect);
        self.check_not_closed()?;
        if matches!(self.state, SessionState::Idle | SessionState::Backoff) {
            self.start_attempt(now);
        }
        Ok(())
    }

    /// Drops the current connection, if any, and connects again at once.
    /// Requests in flight fail with `ConnectionLost`.
    pub fn reconnect(&mut self, now: Instant) -> Result<(), CommandError> {
        self.record(now, || Entry::Reconnect);
        self.check_not_closed()?;
        match self.state {
            SessionState::Idle | SessionState::Backoff => self.start_attempt(now),
            _ => self.disconnect(DisconnectReason::UserReconnect, Some(crate::hooks::Decision::ReconnectNow), now),
        }
        Ok(())
    }

    /// Closes the session for good: a close handshake when open, then
    /// `Closed { reason: Requested }`. Pending requests fail with `SessionClosed`.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), CommandError> {
        self.record(now, || Entry::Close { code: code.into(), reason: reason.to_owned() });
        self.check_not_closed()?;
        crate::close::check_outgoing(code, reason)?;
        self.user_closing = true;
        let handshake_started = self.conn.as_mut().is_some_and(|conn| conn.close(code, reason, now).is_ok());
        if handshake_started && self.conn.as_ref().is_some_and(|c| c.state() == crate::ConnectionState::Closing) {
            self.heartbeat.stop();
            self.auth_deadline = None;
            self.set_state(SessionState::Closing, now);
        } else {
            // Not open yet (or the close ended it at once): there is nothing to wait for.
            self.pump(now);
            if self.state != SessionState::Closed {
                self.finish(CloseReason::Requested, now);
            }
        }
        Ok(())
    }

    /// Sends a message now, or queues it (not connected, rate-limited, or
    /// the write budget is used up: see [`has_write_room`](Self::has_write_room)).
    pub fn send(&mut self, message: Message, now: Instant) -> Result<(), CommandError> {
        self.record(now, || sent(&message, false));
        let cost = self.admit(&message)?;
        self.send_admitted(message, cost, now);
        Ok(())
    }

    /// Like [`send`](Self::send), for a caller that does not wait for the
    /// answer: a refusal becomes a [`SessionEvent::Refused`] event that
    /// carries the message back, instead of an error. A message posted after
    /// the session closed is refused too, so that event follows `Closed`
    /// (the adapters stop taking posts before `Closed` reaches their stream).
    pub fn post(&mut self, message: Message, now: Instant) {
        self.record(now, || sent(&message, true));
        match self.admit(&message) {
            Ok(cost) => self.send_admitted(message, cost, now),
            Err(error) => self.emit(SessionEvent::Refused { message, error: Box::new(error) }),
        }
    }

    fn send_admitted(&mut self, message: Message, cost: u32, now: Instant) {
        if self.sends_flow() && self.has_write_room() && self.outbox.try_pass(cost, now) {
            self.send_user(message);
        } else {
            self.outbox.push(Queued::Message(message), cost);
        }
    }

    /// Sends a protocol ping with `payload` (at most 125 bytes) on the open
    /// connection. The session's own heartbeat pings are separate; the
    /// server's pong comes back as `SessionEvent::Pong` with `control_events` on.
    pub fn ping(&mut self, payload: &[u8], now: Instant) -> Result<(), CommandError> {
        self.record(now, || Entry::Ping { b64: data_encoding::BASE64.encode(payload) });
        self.control(payload, true)
    }

    /// Sends a protocol pong: the answer to a `SessionEvent::Ping` when
    /// `connection.auto_pong` is off (or a one-way heartbeat).
    pub fn pong(&mut self, payload: &[u8], now: Instant) -> Result<(), CommandError> {
        self.record(now, || Entry::Pong { b64: data_encoding::BASE64.encode(payload) });
        self.control(payload, false)
    }

    fn control(&mut self, payload: &[u8], ping: bool) -> Result<(), CommandError> {
        self.check_not_closed()?;
        let conn = self.conn.as_mut().filter(|_| self.state == SessionState::Open).ok_or(CommandError::NotConnected)?;
        if ping {
            conn.ping(payload)?;
        } else {
            conn.pong(payload)?;
        }
        Ok(())
    }

    /// Hands what the recording holds to its recorder (see
    /// [`crate::record`]; nothing without one). A recording gathers records
    /// into chunks and hands one over at this call, at 1 MiB, and when the
    /// session is dropped: call it before waiting for input, as the
    /// adapters do, so that what is recorded reaches the recorder (and the
    /// file) without waiting for more.
    pub fn flush_recording(&mut self) {
        if let Some(tape) = self.tape.as_mut() {
            tape.flush();
        }
    }

    // ----- outputs -----

    // ----- internals shared with drive.rs -----

    /// Notes an input at `now`: the session's clock, and the recording's
    /// line when recording (`entry` is built only then).
    fn record(&mut self, now: Instant, entry: impl FnOnce() -> Entry) {
        self.clock = now;
        if let Some(tape) = self.tape.as_mut() {
            tape.input(entry(), now);
        }
    }

    fn check_not_closed(&self) -> Result<(), CommandError> {
        if self.state == SessionState::Closed || self.user_closing {
            return Err(CommandError::Closed);
        }
        Ok(())
    }

    /// Checks that a user message may be sent or queued; returns its cost.
    fn admit(&self, message: &Message) -> Result<u32, CommandError> {
        self.check_not_closed()?;
        let cost = self.hooks.cost.as_ref().map_or(1, |f| f(message));
        if !self.outbox.cost_fits(cost) {
            return Err(CommandError::CostExceedsCapacity(cost));
        }
        if self.state != SessionState::Open && !self.config.queue_while_disconnected {
            return Err(CommandError::NotConnected);
        }
        if self.outbox.is_full() {
            return Err(CommandError::QueueFull);
        }
        Ok(cost)
    }

    fn set_state(&mut self, to: SessionState, now: Instant) {
        if self.state != to {
            self.emit(SessionEvent::StateChanged { from: self.state, to });
            self.state = to;
            self.state_since = now;
        }
    }
}

/// Stands in for the session's random source while its connection holds it
/// (from `handle_transport_open` to `drop_transport`). Nothing draws from it:
/// backoff jitter, the only other use, follows `drop_transport`.
pub(crate) struct Lent;

impl RandomSource for Lent {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn fill(&mut self, dest: &mut [u8]) {
        dest.fill(0);
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .field("connection", &self.conn)
            .field("pending_requests", &self.requests.len())
            .field("queued", &self.outbox.len())
            .finish_non_exhaustive()
    }
}

/// How a user message handed to `send` or `post` is recorded.
fn sent(message: &Message, post: bool) -> Entry {
    let (text, b64) = payload(message);
    Entry::Send { text, b64, post }
}

/// A message as a recording writes it: its text, or its bytes in base64.
fn payload(message: &Message) -> (Option<String>, Option<String>) {
    match message {
        Message::Text(t) => (Some(t.as_str().to_owned()), None),
        Message::Binary(b) => (None, Some(data_encoding::BASE64.encode(b))),
    }
}
