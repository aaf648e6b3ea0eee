//! What a session asks of its caller (actions), tells it (events), and how
//! it reports its state (metrics): the session's outputs, named below the
//! session so that the recording can describe them.

use std::time::{Duration, Instant};

use crate::deflate::CompressionStats;
use crate::handshake::UpgradeResponse;
use crate::message::Message;
use crate::reasons::{CloseReason, CommandError, DisconnectReason, RequestFailure, SessionError};
use crate::request_id::RequestId;

/// The life of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// Built, or told to stay down (`Decision::Ignore`); waits for `connect`.
    Idle,
    /// The transport (TCP, TLS) is being opened.
    Connecting,
    /// The WebSocket upgrade is under way.
    Handshaking,
    /// The authentication step is under way.
    Authenticating,
    /// Messages flow.
    Open,
    /// The user's close handshake is under way.
    Closing,
    /// Waiting for the next reconnect attempt.
    Backoff,
    /// Finished for good.
    Closed,
}

/// Something the caller must do to the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a transport (resolve, TCP, TLS when `tls`) and report the outcome
    /// with `handle_transport_open` or `handle_transport_error`. A caller
    /// that goes through a proxy opens the tunnel first (with
    /// [`ProxyHandshake`](crate::proxy::ProxyHandshake); [`Proxy::for_url`](crate::proxy::Proxy::for_url)
    /// says which proxy) and reports its failure with `handle_proxy_failure`.
    OpenTransport {
        /// Host to resolve and to name in TLS SNI (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
        /// Whether to run TLS (`wss`).
        tls: bool,
    },
    /// Write these bytes to the open transport, in order.
    Transmit(Vec<u8>),
    /// Close the transport after writing every earlier `Transmit`; feed
    /// nothing more from it to the session.
    CloseTransport {
        /// `Some` once the close handshake is complete: the server should end
        /// the TCP connection first (RFC 6455 §7.1.1, so that it, not the
        /// client, holds TIME_WAIT). After the writes, read and discard until
        /// end of stream, for at most this long (`Duration::MAX`: no limit,
        /// as `close_timeout` asked), then shut the write half down. `None`:
        /// shut down right after the writes.
        wait_for_server: Option<Duration>,
    },
}

/// Something that happened in the session.
///
/// Rare events carry their large parts boxed, so that a flood of `Message`s
/// moves small values through the queues and the event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The state changed.
    StateChanged {
        /// The state left.
        from: SessionState,
        /// The state entered.
        to: SessionState,
    },
    /// The server pinged (with `control_events` on, or `auto_pong` off, when
    /// the user answers with `pong`).
    Ping(bytes::Bytes),
    /// The server ponged (with `control_events` on): an answer to the
    /// session's heartbeat or to the user's `ping`.
    Pong(bytes::Bytes),
    /// Open (and authenticated, when configured): messages flow.
    Connected {
        /// Which attempt of its run this is: 1 when the first attempt (of the
        /// session, or after a connection that opened) succeeded, n when n - 1
        /// attempts before it failed to open. Count connections by the
        /// `Connected` events themselves, or `Metrics::connects`.
        attempt: u32,
        /// What the server agreed to: the upgrade response's status (101),
        /// headers, subprotocol and extensions.
        response: Box<UpgradeResponse>,
    },
    /// A message from the server that is neither a response nor heartbeat traffic.
    Message(Message),
    /// The response to a request.
    Response {
        /// The request's id, as `request` returned it.
        id: u64,
        /// The response message.
        message: Message,
        /// From sending the request to its response.
        rtt: Duration,
        /// Whether the codec read it as an error response.
        is_error: bool,
    },
    /// A request ended without a response.
    RequestFailed {
        /// The request's id.
        id: u64,
        /// Why.
        reason: RequestFailure,
    },
    /// The credentials were refreshed on the open link
    /// (`Authenticator::refresh_after`): what waited for them goes out now.
    Reauthenticated {
        /// When the next refresh is due, if the credentials expire again.
        refresh_in: Option<Duration>,
    },
    /// A numbered channel's message started past the next number: `expected`
    /// up to `got - 1` were missed. Comes before that message; the
    /// channel's `GapAction` follows it.
    SequenceGap {
        /// The channel.
        channel: String,
        /// The number that should have come next.
        expected: u64,
        /// The first number the message carried.
        got: u64,
    },
    /// A numbered channel's message ended before the next number: the
    /// numbering restarted, or a message came again. Not accepted silently:
    /// reported as a gap is, and the channel's `GapAction` follows it; the
    /// numbering goes on from this message.
    SequenceReset {
        /// The channel.
        channel: String,
        /// The last number seen before it.
        last: u64,
        /// The first number the message carried.
        got: u64,
    },
    /// A response whose id matches no pending request (a late answer, say).
    /// Responses are looked for while requests are pending or have ended within
    /// `late_response_window`; otherwise the codec is not consulted at all (so a
    /// flood costs nothing) and such a message arrives as `Message`.
    Unmatched {
        /// The id it carries: any number, or a text a request recently
        /// ended with (other text ids arrive as `Message`).
        id: RequestId,
        /// The message.
        message: Message,
    },
    /// The server confirmed a subscription request.
    Subscribed {
        /// The channels it covered.
        channels: Vec<String>,
    },
    /// The server refused a subscription request, or did not answer in time.
    SubscriptionFailed {
        /// The channels it covered (they stay in the set and are sent again on reconnect).
        channels: Vec<String>,
        /// The server's answer, or "timeout".
        reason: String,
    },
    /// The connection ended.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
    /// A reconnect attempt is scheduled.
    Reconnecting {
        /// The attempt that will be made, counted as `Connected::attempt`
        /// counts: 1 after a connection that opened, n after n - 1 attempts
        /// in a row that failed to open.
        attempt: u32,
        /// When, from now.
        delay: Duration,
    },
    /// An error on a live connection that does not end it by itself
    /// (authentication), before the policy's answer. An error that ends the
    /// connection is reported once, as `Disconnected`, whose reason
    /// `SessionError::from_disconnect` turns into the error `on_error` saw.
    Error(SessionError),
    /// A queued message was dropped at a disconnect (`keep_queue_on_disconnect` off) or at close.
    Dropped(Message),
    /// A message handed over without waiting for the session's answer (the
    /// adapters' `Client::try_send_*`) that the session refused: it was not
    /// sent. The session's own `send` returns the error instead; this event
    /// carries it to a caller that did not wait. The adapters stop taking
    /// such messages when the session closes and report those still queued
    /// before `Closed`; with the core alone, a post after `Closed` is
    /// refused after it.
    Refused {
        /// The message, returned.
        message: Message,
        /// Why it was refused.
        error: Box<CommandError>,
    },
    /// The session is finished; nothing follows (but the refusal of a
    /// message [posted](crate::Session::post) after it).
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Counters and gauges of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// The current state.
    pub state: SessionState,
    /// Time spent in it so far.
    pub time_in_state: Duration,
    /// Attempts in a row that failed to open, since the last that opened
    /// (what `max_attempts` bounds).
    pub attempt: u32,
    /// Connection attempts made in all.
    pub connects: u64,
    /// Attempts made after the first.
    pub reconnects: u64,
    /// Bytes read from transports.
    pub bytes_in: u64,
    /// Bytes handed out to be written.
    pub bytes_out: u64,
    /// Messages received (all kinds, heartbeat traffic included).
    pub messages_in: u64,
    /// User messages and requests sent.
    pub messages_out: u64,
    /// User messages waiting in the queue.
    pub queue_len: usize,
    /// User requests without an outcome yet.
    pub pending_requests: usize,
    /// Channels in the subscription set.
    pub subscriptions: usize,
    /// Gaps seen in numbered channels (`SessionEvent::SequenceGap`).
    pub sequence_gaps: u64,
    /// Numbering that went back in numbered channels (`SessionEvent::SequenceReset`).
    pub sequence_resets: u64,
    /// permessage-deflate's work over all connections (zero when it is off).
    pub compression: CompressionStats,
    /// When the last data message (of any kind: heartbeat traffic and
    /// responses too) was read: the `now` of the input that completed it.
    /// `None` until one arrives. Kept across reconnects, so a feed that went
    /// quiet shows how long ago it last spoke.
    pub last_message_at: Option<Instant>,
    /// Bytes waiting to be written (`Session::write_buffered`): at or past
    /// `write_budget`, sends wait.
    pub write_buffered: usize,
}

/// The figures of [`Metrics`] that move with every message, alone: what a
/// caller that samples them on every turn of its loop needs (the adapters'
/// telemetry), at the cost of a few loads instead of a whole `Metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Traffic {
    /// Bytes read from transports (as `Metrics::bytes_in`).
    pub bytes_in: u64,
    /// Bytes handed out to be written (as `Metrics::bytes_out`).
    pub bytes_out: u64,
    /// Messages received (as `Metrics::messages_in`).
    pub messages_in: u64,
    /// User messages and requests sent (as `Metrics::messages_out`).
    pub messages_out: u64,
    /// User messages waiting in the queue (as `Metrics::queue_len`).
    pub queue_len: usize,
    /// Bytes waiting to be written (as `Metrics::write_buffered`).
    pub write_buffered: usize,
}
