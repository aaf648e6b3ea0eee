//! Telemetry that pushes: `tracing` spans for every connection attempt and,
//! with the cargo feature `metrics`, counters, gauges and histograms through
//! the [`metrics`](https://docs.rs/metrics) facade, for any exporter
//! (Prometheus, StatsD, OpenTelemetry …). What the session counts can still be
//! polled with `Client::metrics()`; this module pushes the same figures, and
//! a few that only the event stream carries, as they change.
//!
//! This is the one place that maps the session's events and figures to
//! metrics and spans: the driver hands it each event, each transport it opens
//! and, once per turn, the session, and decides nothing from it. The core
//! stays sans-IO and never calls the facade.
//!
//! # Metrics (feature `metrics`)
//!
//! Every metric carries the label `client`: `Builder::metrics_label(name)`,
//! or the URL's `host:port` by default, so the number of series is bounded
//! by what you name, never by traffic. Clients that share a label add up: a
//! pool of three clients on one endpoint counts as one, and its gauges are
//! the sums of the three (each client adds and removes its own share).
//!
//! | name | type | labels | what |
//! | --- | --- | --- | --- |
//! | `wslink_connect_attempts_total` | counter | `client` | connection attempts started (a transport asked for) |
//! | `wslink_connects_total` | counter | `client` | connections that opened (upgraded, and authenticated when configured): each `Connected` |
//! | `wslink_disconnects_total` | counter | `client`, `reason` | connections that ended and attempts that failed: each `Disconnected`, by reason (below) |
//! | `wslink_connected` | gauge | `client` | 1 while the client is open, else 0 |
//! | `wslink_reconnect_delay_seconds` | histogram | `client` | the delay before each scheduled reconnect attempt |
//! | `wslink_messages_received_total` | counter | `client` | data messages read, responses and heartbeat traffic included |
//! | `wslink_bytes_received_total` | counter | `client` | bytes read from the transport (after TLS; frame headers and the upgrade response included) |
//! | `wslink_messages_sent_total` | counter | `client` | user messages and requests sent (not the session's own: authentication, subscriptions, heartbeats) |
//! | `wslink_bytes_sent_total` | counter | `client` | bytes handed to the transport (frame headers, the upgrade request and control frames included) |
//! | `wslink_outbound_queue_depth` | gauge | `client` | user messages and requests waiting in the outbound queue (not connected, rate-limited, or the write budget used up) |
//! | `wslink_write_buffered_bytes` | gauge | `client` | bytes waiting to be written (`Metrics::write_buffered`): at the write budget, sends wait |
//! | `wslink_pending_requests` | gauge | `client` | user requests without an outcome yet |
//! | `wslink_request_rtt_seconds` | histogram | `client` | from sending a request to its response: one sample per response |
//! | `wslink_request_failures_total` | counter | `client`, `reason` | requests that ended without a response: `timeout`, `connection_lost`, `dropped`, `session_closed` |
//! | `wslink_heartbeat_rtt_seconds` | histogram | `client` | round trip of each answered heartbeat (protocol ping, or an application heartbeat that measures one) |
//! | `wslink_heartbeat_failures_total` | counter | `client` | heartbeats not answered in time |
//! | `wslink_read_pause_seconds` | histogram | `client` | each pause of reading for a slow consumer, recorded when it ends: its sum is the time paused |
//! | `wslink_reading_paused` | gauge | `client` | 1 while reading is paused for a slow consumer, else 0 |
//! | `wslink_sequence_breaks_total` | counter | `client`, `kind` | breaks in numbered channels' numbering: `gap` (`SessionEvent::SequenceGap`) or `reset` (`SequenceReset`) |
//!
//! The `reason` of a disconnect is one of a fixed set ([`disconnect_reason`]):
//!
//! | `reason` | the connection ended because |
//! | --- | --- |
//! | `connect_timeout` | the transport did not open within `connect_timeout` |
//! | `connect_failed` | the transport could not be opened (DNS, refused, unreachable) |
//! | `tls` | the TLS handshake failed (a refused certificate, a failed negotiation) |
//! | `proxy` | the proxy was unreachable, refused the tunnel, wanted credentials, sent a bad reply, or failed TLS |
//! | `bad_request` | the upgrade request built for the attempt was invalid (`headers_fn`) |
//! | `handshake` | the WebSocket upgrade was refused, failed or timed out |
//! | `auth` | authentication was rejected or not answered in time |
//! | `closed_clean` | a close handshake completed (either side started it) |
//! | `protocol` | the server broke the protocol (the client closed with 1002, 1007, 1009 …) |
//! | `eof` | the transport ended without a close frame |
//! | `transport_error` | reading or writing failed (a reset, a TLS error on a live link) |
//! | `close_timeout` | the server did not answer a close frame in time |
//! | `heartbeat_timeout` | a heartbeat was not answered in time |
//! | `idle_timeout` | nothing arrived within `idle_timeout` |
//! | `write_timeout` | the server took nothing written within `write_timeout` (it stopped reading) |
//! | `error` | another error the reconnect policy chose to reconnect on |
//! | `user_reconnect` | `Client::reconnect` was called |
//! | `sequence_broken` | a numbered channel missed messages and its `GapAction` is `Reconnect` |
//! | `other` | a reason added to `DisconnectReason` after this table |
//!
//! Why these types: `metrics` counters count in whole numbers, so paused time
//! is a histogram of pauses, whose `_sum` is the total in seconds and
//! `_count` the number of pauses. Counters and gauges are read from the
//! session once per turn of the driver (a turn handles one read, so a
//! flood's messages and bytes are added per read, not per message); request
//! round trips and disconnects come from the events, one sample each; a
//! heartbeat round trip is sampled per turn (one heartbeat is in flight at a
//! time). Each handle is registered once, when the client starts: install
//! the recorder before starting clients, or they push to no recorder.
//!
//! # Spans
//!
//! Each connection attempt runs in a span `wslink.connect` at level INFO with
//! the fields `url` (the URL with its query redacted; a URL with
//! credentials never parses, so none can appear) and `attempt` (as
//! `SessionEvent::Connected` and `Reconnecting` count it), and `outcome`,
//! recorded when the attempt ends: `connected`, the disconnect's `reason`,
//! or `closed` when the client was closed during the attempt. It covers
//! resolving, TCP, a proxy's tunnel, TLS, the upgrade and authentication; the attempt's events
//! (opening the transport, connected, disconnected) are emitted inside it.

use std::time::Duration;

use tracing::Span;
use wslink_core::{ConnectionError, DisconnectReason, Session, SessionEvent};

/// The `reason` label of a disconnect: one of a small fixed set (the
/// module's table), so that a metric or a log keyed by it stays bounded.
pub fn disconnect_reason(reason: &DisconnectReason) -> &'static str {
    use wslink_core::hooks::SessionError;
    match reason {
        DisconnectReason::ConnectTimeout => "connect_timeout",
        DisconnectReason::ConnectFailed { .. } => "connect_failed",
        DisconnectReason::Tls { .. } => "tls",
        DisconnectReason::Proxy(_) => "proxy",
        DisconnectReason::BadRequest(_) => "bad_request",
        DisconnectReason::Closed(closed) => match &closed.error {
            None => "closed_clean",
            Some(ConnectionError::Handshake(_) | ConnectionError::HandshakeTimeout) => "handshake",
            Some(ConnectionError::Protocol(_)) => "protocol",
            Some(ConnectionError::UnexpectedEof { .. }) => "eof",
            Some(ConnectionError::Transport { .. }) => "transport_error",
            Some(ConnectionError::CloseTimeout) => "close_timeout",
            Some(_) => "other",
        },
        DisconnectReason::HeartbeatTimeout => "heartbeat_timeout",
        DisconnectReason::IdleTimeout => "idle_timeout",
        DisconnectReason::WriteTimeout => "write_timeout",
        DisconnectReason::Error(SessionError::AuthRejected(_) | SessionError::AuthTimeout) => "auth",
        DisconnectReason::Error(_) => "error",
        DisconnectReason::UserReconnect => "user_reconnect",
        DisconnectReason::SequenceBroken { .. } => "sequence_broken",
        _ => "other",
    }
}

/// Every value [`disconnect_reason`] returns, in the table's order.
pub const DISCONNECT_REASONS: [&str; 19] = [
    "connect_timeout",
    "connect_failed",
    "tls",
    "proxy",
    "bad_request",
    "handshake",
    "auth",
    "closed_clean",
    "protocol",
    "eof",
    "transport_error",
    "close_timeout",
    "heartbeat_timeout",
    "idle_timeout",
    "write_timeout",
    "error",
    "user_reconnect",
    "sequence_broken",
    "other",
];

/// A client's telemetry: the span of the attempt under way and, with the
/// `metrics` feature, the client's metric handles.
pub(crate) struct Telemetry {
    /// The span of the connection attempt under way, until it ends.
    attempt: Option<Span>,
    /// Boxed: an idle client's task stays small.
    #[cfg(feature = "metrics")]
    metrics: Box<push::Handles>,
}

/// What the builder passes on for telemetry.
pub(crate) struct Settings {
    /// The `client` label of every metric.
    #[cfg(feature = "metrics")]
    pub(crate) label: String,
}

impl Settings {
    /// Settings for `url`: the metrics' label defaults to its `host:port`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(url: &wslink_core::WsUrl) -> Self {
        Self {
            #[cfg(feature = "metrics")]
            label: format!("{}:{}", url.host(), url.port()),
        }
    }
}

impl Telemetry {
    /// The client's telemetry; with `metrics`, registers its handles.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn start(settings: Settings) -> Self {
        Self {
            attempt: None,
            #[cfg(feature = "metrics")]
            metrics: Box::new(push::Handles::register(settings.label)),
        }
    }

    /// The session asked for a transport: a new attempt starts. Returns its
    /// span, for the opening of the transport to run in.
    pub(crate) fn attempt(
        &mut self,
        session: &Session,
        host: &str,
        port: u16,
        secure: bool,
        proxy: Option<&wslink_core::proxy::ProxyServer>,
    ) -> Span {
        let attempt = session.failed_attempts() + 1;
        let span = tracing::info_span!(
            "wslink.connect",
            // The session's URL, not a copy kept by every idle client: attempts are rare.
            url = %session.url().redacted_text(),
            attempt,
            outcome = tracing::field::Empty
        );
        span.in_scope(|| match proxy {
            // The proxy's redacted text: never its credentials.
            Some(proxy) => tracing::debug!(%host, port, secure, proxy = %proxy.redacted_text(), "opening transport"),
            None => tracing::debug!(%host, port, secure, "opening transport"),
        });
        #[cfg(feature = "metrics")]
        self.metrics.attempts.increment(1);
        self.attempt = Some(span.clone());
        span
    }

    /// Logs an event of the session and counts what it reports. Messages
    /// handed over in batches do not come here: the per-turn figures count them.
    pub(crate) fn event(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::Message(_) => {}
            SessionEvent::Connected { attempt, response } => {
                self.in_attempt(|| {
                    tracing::info!(attempt, "connected");
                    if let Some(granted) = response.deflate.and_then(|d| d.client_window_over_granted) {
                        tracing::warn!(
                            granted,
                            "permessage-deflate: client window above our offer; compressing with ours"
                        );
                    }
                });
                self.end_attempt("connected");
            }
            SessionEvent::Disconnected { reason } => {
                let label = disconnect_reason(reason);
                // The sentence, not `Debug`: a refusal's headers and body stay out of the log.
                self.in_attempt(|| tracing::warn!(%reason, reason_label = label, "disconnected"));
                self.end_attempt(label);
            }
            SessionEvent::Reconnecting { attempt, delay } => tracing::info!(attempt, ?delay, "reconnecting"),
            SessionEvent::Closed { reason } => {
                tracing::info!(?reason, "closed");
                // Closed by the user while the attempt was under way (it ended no other way).
                self.end_attempt("closed");
            }
            _ => {}
        }
        #[cfg(feature = "metrics")]
        self.metrics.event(event);
    }

    /// Pushes what changed in the session's figures since the last turn;
    /// `pending` is how many user requests await their outcome (the
    /// driver's count, which is the session's, without a walk over its map).
    #[cfg_attr(not(feature = "metrics"), inline(always), allow(unused_variables))]
    pub(crate) fn turn(&mut self, session: &Session, pending: usize) {
        #[cfg(feature = "metrics")]
        self.metrics.turn(session.traffic(), pending, session.heartbeat_health());
    }

    /// Reading paused for a slow consumer (`None`), or resumed after a pause this long.
    #[cfg_attr(not(feature = "metrics"), inline(always), allow(unused_variables))]
    pub(crate) fn pause(&mut self, ended: Option<Duration>) {
        #[cfg(feature = "metrics")]
        self.metrics.pause(ended);
    }

    /// Runs `f` inside the attempt's span, when one is under way.
    fn in_attempt(&self, f: impl FnOnce()) {
        match &self.attempt {
            Some(span) => span.in_scope(f),
            None => f(),
        }
    }

    /// Records how the attempt ended and closes its span.
    fn end_attempt(&mut self, outcome: &'static str) {
        if let Some(span) = self.attempt.take() {
            span.record("outcome", outcome);
        }
    }
}

/// The metric handles and what they last pushed.
#[cfg(feature = "metrics")]
mod push {
    use std::sync::Arc;
    use std::time::Duration;

    use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
    use metrics::{Counter, Gauge, Histogram, Unit};
    use wslink_core::{HeartbeatHealth, RequestFailure, SessionEvent, Traffic};

    use super::{disconnect_reason, DISCONNECT_REASONS};

    const REQUEST_FAILURES: [RequestFailure; 4] = [
        RequestFailure::Timeout,
        RequestFailure::ConnectionLost,
        RequestFailure::Dropped,
        RequestFailure::SessionClosed,
    ];

    fn failure_label(failure: RequestFailure) -> &'static str {
        match failure {
            RequestFailure::Timeout => "timeout",
            RequestFailure::ConnectionLost => "connection_lost",
            RequestFailure::Dropped => "dropped",
            RequestFailure::SessionClosed => "session_closed",
            // A reason added to the core after this table: one fixed label, so series stay bounded.
            _ => "other",
        }
    }

    /// One client's handles, registered once: each update is then an atomic
    /// operation on the recorder's side, with no lookup by name. The series
    /// by reason (disconnects, request failures) are registered up front, so
    /// that each exists (at 0) before its first rise, but not kept: they rise
    /// rarely, and a lookup then costs less than 20 handles held by every
    /// idle client.
    pub(super) struct Handles {
        /// The `client` label, shared with every series of this client.
        label: Arc<str>,
        pub(super) attempts: Counter,
        connects: Counter,
        connected: Gauge,
        reconnect_delay: Histogram,
        messages_in: Counter,
        bytes_in: Counter,
        messages_out: Counter,
        bytes_out: Counter,
        queue: Gauge,
        write_buffered: Gauge,
        pending: Gauge,
        request_rtt: Histogram,
        heartbeat_rtt: Histogram,
        heartbeat_failures: Counter,
        read_pause: Histogram,
        reading_paused: Gauge,
        /// What was pushed so far.
        seen: Seen,
    }

    /// The figures as last pushed: counters rise by the difference, and the
    /// gauges, which clients sharing a label share too, move by it.
    #[derive(Default)]
    struct Seen {
        messages_in: u64,
        bytes_in: u64,
        messages_out: u64,
        bytes_out: u64,
        queue: usize,
        write_buffered: usize,
        pending: usize,
        rtt_samples: u64,
        heartbeat_failures: u64,
        paused: bool,
        connected: bool,
    }

    impl Handles {
        pub(super) fn register(label: String) -> Self {
            describe();
            let label: Arc<str> = label.into();
            let c = |name: &'static str| counter!(name, "client" => label.clone());
            let g = |name: &'static str| gauge!(name, "client" => label.clone());
            let h = |name: &'static str| histogram!(name, "client" => label.clone());
            // Registering is what makes a series exist; the handles go.
            for reason in DISCONNECT_REASONS {
                let _ = disconnects(&label, reason);
            }
            for failure in REQUEST_FAILURES {
                let _ = request_failures(&label, failure);
            }
            Self {
                attempts: c("wslink_connect_attempts_total"),
                connects: c("wslink_connects_total"),
                connected: g("wslink_connected"),
                reconnect_delay: h("wslink_reconnect_delay_seconds"),
                messages_in: c("wslink_messages_received_total"),
                bytes_in: c("wslink_bytes_received_total"),
                messages_out: c("wslink_messages_sent_total"),
                bytes_out: c("wslink_bytes_sent_total"),
                queue: g("wslink_outbound_queue_depth"),
                write_buffered: g("wslink_write_buffered_bytes"),
                pending: g("wslink_pending_requests"),
                request_rtt: h("wslink_request_rtt_seconds"),
                heartbeat_rtt: h("wslink_heartbeat_rtt_seconds"),
                heartbeat_failures: c("wslink_heartbeat_failures_total"),
                read_pause: h("wslink_read_pause_seconds"),
                reading_paused: g("wslink_reading_paused"),
                seen: Seen::default(),
                label,
            }
        }

        pub(super) fn event(&mut self, event: &SessionEvent) {
            match event {
                SessionEvent::Response { rtt, .. } => self.request_rtt.record(rtt.as_secs_f64()),
                SessionEvent::RequestFailed { reason, .. } => request_failures(&self.label, *reason).increment(1),
                SessionEvent::Connected { .. } => {
                    self.connects.increment(1);
                    self.set_connected(true);
                }
                SessionEvent::Disconnected { reason } => {
                    disconnects(&self.label, disconnect_reason(reason)).increment(1);
                    self.set_connected(false);
                }
                SessionEvent::Reconnecting { delay, .. } => self.reconnect_delay.record(delay.as_secs_f64()),
                SessionEvent::SequenceGap { .. } => sequence_breaks(&self.label, "gap").increment(1),
                SessionEvent::SequenceReset { .. } => sequence_breaks(&self.label, "reset").increment(1),
                // A close the user asked for ends the connection with no `Disconnected`.
                SessionEvent::Closed { .. } => self.set_connected(false),
                _ => {}
            }
        }

        fn set_connected(&mut self, connected: bool) {
            match (self.seen.connected, connected) {
                (false, true) => self.connected.increment(1.0),
                (true, false) => self.connected.decrement(1.0),
                _ => {}
            }
            self.seen.connected = connected;
        }

        pub(super) fn turn(&mut self, t: Traffic, pending: usize, health: HeartbeatHealth) {
            let seen = &mut self.seen;
            rise(&self.messages_in, &mut seen.messages_in, t.messages_in);
            rise(&self.bytes_in, &mut seen.bytes_in, t.bytes_in);
            rise(&self.messages_out, &mut seen.messages_out, t.messages_out);
            rise(&self.bytes_out, &mut seen.bytes_out, t.bytes_out);
            follow(&self.queue, &mut seen.queue, t.queue_len);
            follow(&self.write_buffered, &mut seen.write_buffered, t.write_buffered);
            follow(&self.pending, &mut seen.pending, pending);
            if health.rtt_samples != seen.rtt_samples {
                seen.rtt_samples = health.rtt_samples;
                if let Some(rtt) = health.last_rtt {
                    self.heartbeat_rtt.record(rtt.as_secs_f64());
                }
            }
            rise(&self.heartbeat_failures, &mut seen.heartbeat_failures, health.total_failures);
        }

        pub(super) fn pause(&mut self, ended: Option<Duration>) {
            match ended {
                None if !self.seen.paused => self.reading_paused.increment(1.0),
                Some(pause) if self.seen.paused => {
                    self.reading_paused.decrement(1.0);
                    self.read_pause.record(pause.as_secs_f64());
                }
                _ => {}
            }
            self.seen.paused = ended.is_none();
        }
    }

    impl Drop for Handles {
        /// Takes this client's share out of the gauges it shares with others.
        fn drop(&mut self) {
            follow(&self.queue, &mut self.seen.queue, 0);
            follow(&self.write_buffered, &mut self.seen.write_buffered, 0);
            follow(&self.pending, &mut self.seen.pending, 0);
            self.set_connected(false);
            if self.seen.paused {
                self.reading_paused.decrement(1.0);
            }
        }
    }

    /// The series of `client`'s disconnects for one reason of the table.
    fn disconnects(client: &Arc<str>, reason: &'static str) -> Counter {
        counter!("wslink_disconnects_total", "client" => client.clone(), "reason" => reason)
    }

    /// The series of `client`'s requests that failed this way.
    fn request_failures(client: &Arc<str>, failure: RequestFailure) -> Counter {
        counter!("wslink_request_failures_total", "client" => client.clone(), "reason" => failure_label(failure))
    }

    /// The series of `client`'s breaks in numbering of one kind (`gap`, `reset`).
    fn sequence_breaks(client: &Arc<str>, kind: &'static str) -> Counter {
        counter!("wslink_sequence_breaks_total", "client" => client.clone(), "kind" => kind)
    }

    /// Adds to `counter` what `now` has over `seen`.
    fn rise(counter: &Counter, seen: &mut u64, now: u64) {
        if now > *seen {
            counter.increment(now - *seen);
            *seen = now;
        }
    }

    /// Moves `gauge` by this client's change from `seen` to `now`.
    fn follow(gauge: &Gauge, seen: &mut usize, now: usize) {
        if now != *seen {
            gauge.increment(now as f64 - *seen as f64);
            *seen = now;
        }
    }

    /// Gives the recorder each metric's help text and unit. Done at every
    /// client's start, not once per process: a recorder installed after the
    /// first client would otherwise never hear them (it is a handful of map
    /// writes, and clients start rarely).
    fn describe() {
        describe_counter!("wslink_connect_attempts_total", "Connection attempts started");
        describe_counter!("wslink_connects_total", "Connections that opened (upgraded, authenticated when configured)");
        describe_counter!("wslink_disconnects_total", "Connections that ended and attempts that failed, by reason");
        describe_gauge!("wslink_connected", "1 while the client is open");
        describe_histogram!(
            "wslink_reconnect_delay_seconds",
            Unit::Seconds,
            "Delay before each scheduled reconnect attempt"
        );
        describe_counter!("wslink_messages_received_total", "Data messages read, responses and heartbeats included");
        describe_counter!("wslink_bytes_received_total", Unit::Bytes, "Bytes read from the transport");
        describe_counter!("wslink_messages_sent_total", "User messages and requests sent");
        describe_counter!("wslink_bytes_sent_total", Unit::Bytes, "Bytes handed to the transport");
        describe_gauge!("wslink_outbound_queue_depth", "User messages and requests waiting in the outbound queue");
        describe_gauge!("wslink_write_buffered_bytes", Unit::Bytes, "Bytes waiting to be written");
        describe_gauge!("wslink_pending_requests", "User requests without an outcome yet");
        describe_histogram!("wslink_request_rtt_seconds", Unit::Seconds, "From sending a request to its response");
        describe_counter!("wslink_request_failures_total", "Requests that ended without a response, by reason");
        describe_histogram!("wslink_heartbeat_rtt_seconds", Unit::Seconds, "Round trip of each answered heartbeat");
        describe_counter!("wslink_heartbeat_failures_total", "Heartbeats not answered in time");
        describe_histogram!(
            "wslink_read_pause_seconds",
            Unit::Seconds,
            "Each pause of reading for a slow consumer; the sum is the time paused"
        );
        describe_gauge!("wslink_reading_paused", "1 while reading is paused for a slow consumer");
        describe_counter!("wslink_sequence_breaks_total", "Breaks in numbered channels' numbering, by kind");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wslink_core::hooks::SessionError;
    use wslink_core::{CloseCode, Closed, ConnectionError, Initiator, ProtocolError};

    fn closed(error: Option<ConnectionError>) -> DisconnectReason {
        let sent_code = None;
        DisconnectReason::Closed(Box::new(Closed::new(
            Initiator::Remote,
            CloseCode::Normal,
            String::new(),
            sent_code,
            error,
        )))
    }

    #[test]
    fn every_disconnect_has_one_label_from_the_table() {
        let cases = [
            (DisconnectReason::ConnectTimeout, "connect_timeout"),
            (
                DisconnectReason::ConnectFailed { kind: std::io::ErrorKind::ConnectionRefused, message: "no".into() },
                "connect_failed",
            ),
            (closed(None), "closed_clean"),
            (closed(Some(ConnectionError::HandshakeTimeout)), "handshake"),
            (closed(Some(ConnectionError::Protocol(ProtocolError::MaskedFrame))), "protocol"),
            (closed(Some(ConnectionError::UnexpectedEof { mid_frame: true })), "eof"),
            (
                closed(Some(ConnectionError::Transport {
                    kind: std::io::ErrorKind::ConnectionReset,
                    message: "reset".into(),
                })),
                "transport_error",
            ),
            (closed(Some(ConnectionError::CloseTimeout)), "close_timeout"),
            (DisconnectReason::HeartbeatTimeout, "heartbeat_timeout"),
            (DisconnectReason::IdleTimeout, "idle_timeout"),
            (DisconnectReason::WriteTimeout, "write_timeout"),
            (DisconnectReason::Error(SessionError::AuthTimeout), "auth"),
            (DisconnectReason::Error(SessionError::AuthRejected("no".into())), "auth"),
            (DisconnectReason::UserReconnect, "user_reconnect"),
            (DisconnectReason::SequenceBroken { channel: "book".into() }, "sequence_broken"),
        ];
        for (reason, label) in cases {
            assert_eq!(disconnect_reason(&reason), label, "{reason:?}");
            assert!(DISCONNECT_REASONS.contains(&label), "{label} is in the table");
        }
        let mut unique = DISCONNECT_REASONS.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), DISCONNECT_REASONS.len(), "no label twice");
    }

    #[test]
    fn spans_show_the_url_without_its_query_and_the_label_defaults_to_host_and_port() {
        let url = wslink_core::WsUrl::parse("wss://Stream.example.com/ws/v2?api_key=secret").unwrap();
        // What `Telemetry::attempt` puts in the span.
        assert_eq!(url.redacted_text(), "wss://stream.example.com/ws/v2?<redacted>");
        #[cfg(feature = "metrics")]
        assert_eq!(Settings::new(&url).label, "stream.example.com:443");
    }
}
