//! The session's configuration: every plain setting, with its defaults and
//! the checks that refuse what cannot work (the builder is `builder.rs`).

use std::time::Duration;

use crate::backoff::BackoffConfig;
use crate::config::ConnectionConfig;
use crate::error::ConfigError;
use crate::handshake::ClientRequest;
use crate::heartbeat::{AppHeartbeatConfig, PingConfig};
use crate::outbound::RateLimit;

/// The default [`SessionConfig::write_budget`]: 1 MiB. Enough to keep a
/// socket busy between two turns of a driver at any rate one connection
/// reaches (the kernel's send buffer, up to 4 MiB on Linux, holds more on top
/// of it), yet small enough that a thousand connections to peers that
/// stopped reading hold at most 1 GiB between them.
pub const DEFAULT_WRITE_BUDGET: usize = 1 << 20;

/// Every plain setting of a session. Built through [`SessionBuilder`](super::SessionBuilder).
///
/// Any duration may be `Duration::MAX`, which means "never" (a deadline past
/// what `Instant` holds is never reached); values that cannot work, such as
/// a zero timeout, are refused by [`validate`](Self::validate) with the field's name.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// URL, subprotocols, extensions and fixed headers of every upgrade.
    pub request: ClientRequest,
    /// Limits and timeouts of each connection.
    pub connection: ConnectionConfig,
    /// The reconnect schedule.
    pub backoff: BackoffConfig,
    /// When false, the session never reconnects by itself: the first
    /// connection that ends (or attempt that fails) closes it with
    /// `Closed { reason: Stopped }`, whatever the policy says. Default true.
    pub reconnect: bool,
    /// When false, a connection that ends in an error (anything but a clean
    /// close by the server) stops the session instead of reconnecting.
    pub reconnect_on_error: bool,
    /// Time allowed for the transport to open (TCP and TLS). Default 10 s.
    pub connect_timeout: Duration,
    /// Time allowed for authentication to be accepted. Default 10 s.
    pub auth_timeout: Duration,
    /// Default deadline of a request. Default 30 s.
    pub request_timeout: Duration,
    /// Protocol pings; default every 15 s with a 10 s pong deadline. Time
    /// spent with reading paused (the consumer is behind) does not count, so
    /// a slow consumer never makes a live link look dead (see [`PingConfig`]).
    pub ping: Option<PingConfig>,
    /// Close the link when nothing arrives for this long. Default off. Like
    /// the pings, it waits while reading is paused.
    pub idle_timeout: Option<Duration>,
    /// Timing of the application heartbeat, when one is set.
    pub app_heartbeat: Option<AppHeartbeatConfig>,
    /// Most user messages waiting to go out. Default 1024.
    pub queue_capacity: usize,
    /// Queue messages while not connected (true, default) or refuse them at once.
    pub queue_while_disconnected: bool,
    /// Keep unsent messages across a disconnect and send them after the
    /// reconnect (true, default), or drop them with a `Dropped` event.
    pub keep_queue_on_disconnect: bool,
    /// Subscribe the subscription set again after every reconnect (true,
    /// default). Off for protocols whose server restores subscriptions
    /// itself (session resumption), where a second subscribe is an error;
    /// `SubscribeOptions::restore` overrides it per subscription.
    pub restore_subscriptions: bool,
    /// Token-bucket limit on user messages. Default none.
    pub rate_limit: Option<RateLimit>,
    /// Deliver the pings and pongs the server sends as `SessionEvent::Ping`
    /// and `SessionEvent::Pong`. Default off. Pings are delivered anyway
    /// when `connection.auto_pong` is off, since the user must then answer
    /// them (`Session::pong`).
    pub control_events: bool,
    /// How many round trips the latency statistics keep. Default 1024.
    pub latency_window: usize,
    /// How long an ended request's id is remembered, so that its late response
    /// is reported as `Unmatched`. Default 60 s.
    pub late_response_window: Duration,
    /// Most bytes handed out to be written and not yet written (data,
    /// pongs, close: everything), the one bound on the write side's memory.
    /// Default 1 MiB. At or past it, user messages wait in the outbound
    /// queue (the adapters' `send_*` wait, `try_send_*` answer `Full`),
    /// automatic pongs answer only the latest ping, and an application
    /// heartbeat's answers wait likewise, until the caller reports writes
    /// (`Session::handle_written`). One message may take it past the budget
    /// while below it, so a message larger than the budget still goes out.
    pub write_budget: usize,
    /// The transport must take at least one waiting byte within this long,
    /// or the connection ends with `DisconnectReason::WriteTimeout`: a peer
    /// that reads nothing is as dead as one that says nothing. Default 30 s;
    /// `None` never ends a connection for it.
    pub write_timeout: Option<Duration>,
}

impl SessionConfig {
    /// Defaults for `request`.
    pub fn new(request: ClientRequest) -> Self {
        Self {
            request,
            connection: ConnectionConfig::default(),
            backoff: BackoffConfig::default(),
            reconnect: true,
            reconnect_on_error: true,
            connect_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            ping: Some(PingConfig { interval: Duration::from_secs(15), timeout: Duration::from_secs(10) }),
            idle_timeout: None,
            app_heartbeat: None,
            queue_capacity: 1024,
            queue_while_disconnected: true,
            keep_queue_on_disconnect: true,
            restore_subscriptions: true,
            rate_limit: None,
            control_events: false,
            latency_window: 1024,
            late_response_window: Duration::from_secs(60),
            write_budget: DEFAULT_WRITE_BUDGET,
            write_timeout: Some(Duration::from_secs(30)),
        }
    }

    /// Checks every field; the error names the first one out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason| Err(ConfigError::InvalidValue { field, reason });
        self.request.validate()?;
        self.connection.validate()?;
        let b = &self.backoff;
        if b.initial.is_zero() {
            return invalid("backoff.initial", "must be positive");
        }
        if !(b.factor >= 1.0 && b.factor.is_finite()) {
            return invalid("backoff.factor", "must be a finite number of at least 1");
        }
        if b.max < b.initial {
            return invalid("backoff.max", "must be at least backoff.initial");
        }
        if b.max_attempts == Some(0) {
            return invalid("backoff.max_attempts", "must be at least 1 or None");
        }
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("auth_timeout", self.auth_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if value.is_zero() {
                return invalid(field, "must be positive");
            }
        }
        if let Some(p) = self.ping {
            if p.interval.is_zero() {
                return invalid("ping.interval", "must be positive");
            }
            if p.timeout.is_zero() || p.timeout >= p.interval {
                return invalid("ping.timeout", "must be positive and shorter than ping.interval");
            }
        }
        if let Some(a) = self.app_heartbeat {
            if a.interval.is_zero() {
                return invalid("app_heartbeat.interval", "must be positive");
            }
            if a.timeout.is_zero() || a.timeout >= a.interval {
                return invalid("app_heartbeat.timeout", "must be positive and shorter than app_heartbeat.interval");
            }
        }
        if self.idle_timeout.is_some_and(|d| d.is_zero()) {
            return invalid("idle_timeout", "must be positive or None");
        }
        if self.queue_capacity == 0 {
            return invalid("queue_capacity", "must be at least 1");
        }
        if let Some(r) = self.rate_limit {
            if r.capacity == 0 || r.refill == 0 {
                return invalid("rate_limit", "capacity and refill must be at least 1");
            }
            if r.interval.is_zero() {
                return invalid("rate_limit.interval", "must be positive");
            }
        }
        if self.latency_window == 0 {
            return invalid("latency_window", "must be at least 1");
        }
        if self.write_budget == 0 {
            return invalid("write_budget", "must be at least 1");
        }
        if self.write_timeout.is_some_and(|d| d.is_zero()) {
            return invalid("write_timeout", "must be positive or None");
        }
        Ok(())
    }
}
