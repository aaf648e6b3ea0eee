//! The session's inputs: transport events, bytes, and timers; the routing of
//! each incoming message; and the lifecycle from one connection to the next.

use std::time::Instant;

use super::{Action, CloseReason, DisconnectReason, RequestFailure, Session, SessionEvent, SessionState};
use crate::connection::{Connection, ConnectionState};
use crate::deadline::after;
use crate::event::ConnectionEvent;
use crate::heartbeat::Due;
use crate::hooks::{AuthCheck, Beat, Decision, RetryContext, SessionError};
use crate::message::Message;
use crate::outbound::Queued;
use crate::record::format::Entry;
use crate::requests::{Pending, Purpose};
use crate::UpgradeResponse;

impl Session {
    // ----- inputs -----

    /// The transport asked for by `OpenTransport` is open (TCP and TLS done).
    pub fn handle_transport_open(&mut self, now: Instant) {
        self.record(now, || Entry::Open);
        if self.state != SessionState::Connecting {
            return;
        }
        self.connect_deadline = None;
        let mut request = self.config.request.clone();
        let attempt = self.backoff.failures() + 1;
        if let Some(headers) = self.hooks.headers.as_mut() {
            for (name, value) in headers(attempt) {
                request = request.header(name, value);
            }
        }
        if let Some(tape) = self.tape.as_mut() {
            // The upgrade request carries what the user marked secret.
            // The URL's query may carry a token too (the header redacts it).
            tape.secret_pending = self.hooks.headers.is_some()
                || request.has_sensitive_header(&self.sensitive_headers)
                || request.url().resource().contains('?');
        }
        match Connection::check(request, &self.config.connection) {
            Ok(request) => {
                // The connection keys its frames with the session's random
                // source (one generator per client, not two); `drop_transport`
                // takes it back.
                let rng = std::mem::replace(&mut self.rng, Box::new(super::Lent));
                let mut conn = Connection::start(request, self.config.connection.clone(), rng, now);
                conn.set_write_room(self.backlog.room());
                if self.reading_paused_since.is_some() {
                    conn.handle_reading_paused(now);
                }
                self.conn = Some(conn);
                self.set_state(SessionState::Handshaking, now);
            }
            Err(e) => self.disconnect(DisconnectReason::BadRequest(e), None, now),
        }
    }

    /// The transport failed: it could not open, or it broke.
    pub fn handle_transport_error(&mut self, kind: std::io::ErrorKind, message: &str, now: Instant) {
        self.clock = now;
        let mut kind = kind;
        if let Some(tape) = self.tape.as_mut() {
            // A kind a replay cannot name (std's unstable ones, such as a
            // DNS failure's) is `Other` in a recorded session, so that the
            // replay sees what the recording did.
            kind = crate::io_kind::from_name(&format!("{kind:?}"));
            tape.input(Entry::Error { kind: format!("{kind:?}"), msg: message.to_owned() }, now);
        }
        self.transport_error(kind, message, now);
    }

    /// A transport error, however it was reported.
    pub(super) fn transport_error(&mut self, kind: std::io::ErrorKind, message: &str, now: Instant) {
        match self.conn.as_mut() {
            Some(conn) => {
                conn.handle_transport_error(kind, message, now);
                self.pump(now);
            }
            None if self.state == SessionState::Connecting => {
                let reason = DisconnectReason::ConnectFailed { kind, message: message.to_owned() };
                self.disconnect(reason, None, now);
            }
            None => {}
        }
    }

    /// The transport reached end of stream.
    pub fn handle_eof(&mut self, now: Instant) {
        self.record(now, || Entry::Eof);
        if let Some(conn) = self.conn.as_mut() {
            conn.handle_eof(now);
            self.pump(now);
        }
    }

    /// Bytes read from the transport.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        self.clock = now;
        if let Some(tape) = self.tape.as_mut() {
            tape.read(data, now);
        }
        let Some(conn) = self.conn.as_mut() else { return };
        self.counters.bytes_in += data.len() as u64;
        conn.handle_input(data, now);
        self.heartbeat.on_receive(now);
        self.pump(now);
    }

    /// The current connection's input buffer with room for the next read (see
    /// `Connection::read_buffer`), or `None` while there is no connection.
    pub fn read_buffer(&mut self) -> Option<&mut bytes::BytesMut> {
        self.conn.as_mut().map(Connection::read_buffer)
    }

    /// The current connection's input buffer and the most bytes the next read
    /// should append (see `Connection::read_room`), or `None` while there is
    /// no connection.
    pub fn read_room(&mut self) -> Option<(&mut bytes::BytesMut, usize)> {
        self.conn.as_mut().map(Connection::read_room)
    }

    /// `n` bytes were read into [`read_buffer`](Self::read_buffer).
    pub fn handle_read(&mut self, n: usize, now: Instant) {
        self.clock = now;
        let Some(conn) = self.conn.as_mut() else { return };
        if let Some(tape) = self.tape.as_mut() {
            tape.read(conn.last_read(n), now);
        }
        self.counters.bytes_in += n as u64;
        conn.handle_read(n, now);
        self.heartbeat.on_receive(now);
        self.pump(now);
    }

    /// The caller wrote `n` bytes of the `Action::Transmit`s handed out (in
    /// order; a part of one counts). Every caller reports its writes, as they
    /// complete: this is how the session knows what still waits for the
    /// transport ([`write_buffered`](Self::write_buffered)), holds sends
    /// while the write budget is used up, and ends a connection whose
    /// transport takes nothing for `write_timeout`. A caller that writes
    /// each transmit whole, at once, reports its length right after. Writes
    /// of a transport already closed (`CloseTransport`) are not reported.
    pub fn handle_written(&mut self, n: usize, now: Instant) {
        self.record(now, || Entry::Written { n });
        let had_room = self.has_write_room();
        self.backlog.written(n, now);
        let Some(conn) = self.conn.as_mut() else { return };
        conn.set_write_room(self.backlog.room());
        if !had_room && self.has_write_room() {
            // Room again: what waited for it goes, the heartbeat's answer first.
            if let Some(answer) = self.owed_probe.take() {
                self.send_internal(*answer, Purpose::Heartbeat, now);
            }
            self.flush_outbox(now);
        }
    }

    /// The caller stopped reading the transport because its consumer is
    /// behind. No answer can arrive while it does not read, so every deadline
    /// that waits on the peer waits too: heartbeats (pong, server beat, idle),
    /// authentication, and the connection's handshake. Request deadlines, the
    /// connect timeout, backoff and the close timeout keep running (a close
    /// the user asked for ends in time whatever the consumer does).
    pub fn handle_reading_paused(&mut self, now: Instant) {
        self.record(now, || Entry::Pause);
        if self.reading_paused_since.is_some() {
            return;
        }
        self.reading_paused_since = Some(now);
        self.heartbeat.pause(now);
        if let Some(conn) = self.conn.as_mut() {
            conn.handle_reading_paused(now);
        }
    }

    /// The caller reads again: the waiting deadlines move later by the pause,
    /// none beyond a full wait from `now`, so a link that died during the
    /// pause is still found (at most ping interval + pong timeout from now).
    pub fn handle_reading_resumed(&mut self, now: Instant) {
        self.record(now, || Entry::Resume);
        let Some(since) = self.reading_paused_since.take() else { return };
        self.heartbeat.resume(now);
        if let Some(conn) = self.conn.as_mut() {
            conn.handle_reading_resumed(now);
        }
        let paused = now.saturating_duration_since(since);
        self.auth_deadline = crate::deadline::postpone(self.auth_deadline, paused, now, self.config.auth_timeout);
    }

    /// Fires every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.record(now, || Entry::Timeout);
        let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        if due(self.connect_deadline) {
            self.connect_deadline = None;
            self.disconnect(DisconnectReason::ConnectTimeout, None, now);
        }
        if due(self.backoff_until) {
            self.backoff_until = None;
            self.counters.reconnects += 1;
            self.start_attempt(now);
        }
        if self.backlog.stalled(now) && self.conn.is_some() {
            // The peer takes nothing: no goodbye could reach it either.
            self.disconnect(DisconnectReason::WriteTimeout, None, now);
        }
        if due(self.auth_deadline) && self.reading_paused_since.is_none() {
            self.auth_deadline = None;
            self.on_error(SessionError::AuthTimeout, now);
        }
        if let Some(conn) = self.conn.as_mut() {
            conn.handle_timeout(now);
            self.pump(now);
        }
        while let Some(due) = self.heartbeat.poll(now) {
            match due {
                Due::Ping(payload) => {
                    if let Some(conn) = self.conn.as_mut() {
                        let _ = conn.ping(&payload);
                    }
                }
                Due::AppPing => {
                    if let Some(ping) = self.hooks.app_heartbeat.as_mut().and_then(|h| h.ping()) {
                        self.send_raw(&ping);
                    }
                }
                Due::HeartbeatTimeout => self.disconnect(DisconnectReason::HeartbeatTimeout, None, now),
                Due::IdleTimeout => self.disconnect(DisconnectReason::IdleTimeout, None, now),
            }
        }
        for (id, pending) in self.requests.expire(now) {
            match pending.purpose {
                Purpose::User => {
                    self.outbox.remove_request(id);
                    self.emit(SessionEvent::RequestFailed { id, reason: RequestFailure::Timeout });
                }
                Purpose::Subscribe(channels) => {
                    self.emit(SessionEvent::SubscriptionFailed { channels, reason: "timeout".into() })
                }
                Purpose::Auth | Purpose::Unsubscribe(_) | Purpose::Heartbeat | Purpose::Setup => {}
            }
        }
        self.flush_outbox(now);
    }

    // ----- the connection's events -----

    pub(super) fn pump(&mut self, now: Instant) {
        let read_before = self.messages_read();
        loop {
            // The flood's path: messages that need no routing stay in the
            // connection's queue, and `poll_event` takes them from there: one
            // queue move, not two. While requests are pending the codec looks
            // at each where it lies, and the first response stops the count.
            // Parked messages predate whatever is queued after them.
            self.take_connection_messages();
            if self.state == SessionState::Open && self.hooks.app_heartbeat.is_none() {
                if let Some(conn) = self.conn.as_ref() {
                    let all_parked = if self.requests.matching_needed() {
                        let codec = &self.hooks.codec;
                        self.parked = conn.leading_messages(|m| codec.response_id(m).is_none());
                        self.parked == conn.queued_events()
                    } else {
                        // `take_connection_messages` stops at the first non-message.
                        self.parked = conn.queued_messages();
                        conn.only_messages_queued()
                    };
                    if all_parked {
                        break;
                    }
                }
                // An event (or a response) waits behind the parked messages:
                // move them ahead of it.
                self.take_connection_messages();
            }
            if self.conn.as_ref().is_some_and(Connection::fault_next) {
                // A violation behind messages: it waits until our caller has
                // taken them (see `Session::fault_next`).
                break;
            }
            let Some(event) = self.conn.as_mut().and_then(Connection::poll_event) else { break };
            match event {
                ConnectionEvent::Opened(response) => self.on_upgraded(response, now),
                ConnectionEvent::Message(message) => {
                    self.counters.messages_in += 1;
                    self.route(message, now);
                }
                ConnectionEvent::Pong(payload) => {
                    self.heartbeat.on_pong(&payload, now);
                    if self.config.control_events {
                        self.emit(SessionEvent::Pong(payload));
                    }
                }
                ConnectionEvent::Ping(payload) if self.config.control_events || !self.config.connection.auto_pong => {
                    self.emit(SessionEvent::Ping(payload));
                }
                ConnectionEvent::Closed(closed) => {
                    if self.user_closing {
                        self.finish(CloseReason::Requested, now);
                    } else {
                        self.disconnect(DisconnectReason::Closed(closed), None, now);
                    }
                }
                // Pings are answered by the connection; any other event is informational.
                _ => {}
            }
        }
        if self.messages_read() > read_before {
            self.counters.last_message_at = Some(now);
        }
        if self.conn.as_ref().is_some_and(|c| c.state() == ConnectionState::Closed) {
            self.drop_transport(now);
        }
    }

    fn on_upgraded(&mut self, response: Box<UpgradeResponse>, now: Instant) {
        let upgrade_messages = self.hooks.on_upgrade.as_mut().map(|f| f()).unwrap_or_default();
        if let (Some(tape), false) = (self.tape.as_mut(), upgrade_messages.is_empty()) {
            // Messages sent on upgrade often log in: treated as the authenticator's are.
            tape.secret_pending = true;
        }
        for message in &upgrade_messages {
            self.send_raw(message);
        }
        self.pending_response = Some(response);
        let attempt = self.backoff.failures() + 1;
        let Some(auth) = self.hooks.auth.as_mut() else { return self.become_open(now) };
        let first = auth.start(attempt);
        if let Some(tape) = self.tape.as_mut() {
            // The authenticator's message carries credentials.
            tape.secret_pending = true;
        }
        self.set_state(SessionState::Authenticating, now);
        self.auth_deadline = after(now, self.config.auth_timeout);
        self.auth_request = self.send_internal(first, Purpose::Auth, now);
    }

    fn become_open(&mut self, now: Instant) {
        self.auth_deadline = None;
        self.auth_request = None;
        self.opened_at = Some(now);
        self.counters.opened += 1;
        self.set_state(SessionState::Open, now);
        let server_driven = self.hooks.app_heartbeat.as_ref().is_some_and(|h| h.server_driven());
        self.heartbeat.start(now, !server_driven);
        let response = self.pending_response.take().unwrap_or_default();
        let attempt = self.backoff.failures() + 1;
        // An attempt that opened ends the run of failed ones: `max_attempts` counts afresh.
        self.backoff.opened();
        self.emit(SessionEvent::Connected { attempt, response });
        if let (Some(beat), Some(timing)) = (self.hooks.app_heartbeat.as_mut(), self.config.app_heartbeat) {
            let setup = beat.setup(timing.interval);
            self.send_internal_all(setup, Purpose::Setup, now);
        }
        if !self.subscriptions.is_empty() {
            let channels = self.subscriptions.clone();
            let out = self.hooks.subscriptions.subscribe(&channels);
            self.send_internal_all(out, Purpose::Subscribe(channels), now);
        }
        self.flush_outbox(now);
    }

    /// Decides what an incoming message is: auth answer, heartbeat traffic,
    /// a response, or a message for the user.
    fn route(&mut self, message: Message, now: Instant) {
        if self.state == SessionState::Authenticating && self.auth_request.is_none() {
            let verdict = self.hooks.auth.as_mut().map_or(AuthCheck::NotMine, |a| a.check(&message, false));
            if self.on_auth_verdict(verdict, now) {
                return;
            }
        }
        if let Some(beat) = self.hooks.app_heartbeat.as_mut() {
            match beat.classify(&message) {
                Beat::Other => {}
                Beat::Pong | Beat::ServerBeat => return self.heartbeat.on_app_beat(now),
                Beat::Probe(answer) => {
                    self.heartbeat.on_app_beat(now);
                    if self.has_write_room() {
                        self.send_internal(answer, Purpose::Heartbeat, now);
                    } else {
                        // A peer that asks and does not read gets the latest answer once it reads.
                        self.owed_probe = Some(Box::new(answer));
                    }
                    return;
                }
            }
        }
        if self.requests.matching_needed() {
            if let Some(id) = self.hooks.codec.response_id(&message) {
                match self.requests.complete(id) {
                    Some(pending) => self.on_response(id, pending, message, now),
                    None => self.emit(SessionEvent::Unmatched { id, message }),
                }
                return;
            }
        }
        self.emit(SessionEvent::Message(message));
    }

    fn on_response(&mut self, id: u64, pending: Pending, message: Message, now: Instant) {
        let rtt = pending.sent_at.map(|sent| now.saturating_duration_since(sent)).unwrap_or_default();
        let is_error = self.hooks.codec.is_error(&message);
        match pending.purpose {
            Purpose::User => {
                self.latency.record(rtt);
                self.emit(SessionEvent::Response { id, message, rtt, is_error });
            }
            Purpose::Auth => {
                let verdict = match self.hooks.auth.as_mut().map(|a| a.check(&message, is_error)) {
                    Some(AuthCheck::NotMine) | None if is_error => AuthCheck::Rejected("error response".into()),
                    Some(AuthCheck::NotMine) | None => AuthCheck::Accepted,
                    Some(verdict) => verdict,
                };
                self.on_auth_verdict(verdict, now);
            }
            Purpose::Subscribe(channels) if is_error => {
                let reason = match &message {
                    Message::Text(t) => t.as_str().to_owned(),
                    Message::Binary(_) => "binary error response".to_owned(),
                };
                self.emit(SessionEvent::SubscriptionFailed { channels, reason });
            }
            Purpose::Subscribe(channels) => self.emit(SessionEvent::Subscribed { channels }),
            Purpose::Heartbeat => self.heartbeat.on_probe_rtt(rtt),
            Purpose::Unsubscribe(_) | Purpose::Setup => {}
        }
    }

    /// Applies an authentication verdict; returns whether the message was consumed.
    fn on_auth_verdict(&mut self, verdict: AuthCheck, now: Instant) -> bool {
        if self.state != SessionState::Authenticating {
            // A late verdict (the user is closing, or auth already timed out) changes nothing.
            return verdict != AuthCheck::NotMine;
        }
        match verdict {
            AuthCheck::NotMine => false,
            AuthCheck::Accepted => {
                self.become_open(now);
                true
            }
            AuthCheck::Rejected(reason) => {
                self.on_error(SessionError::AuthRejected(reason), now);
                true
            }
        }
    }

    /// An error on a live connection (authentication): `on_error` alone decides.
    fn on_error(&mut self, error: SessionError, now: Instant) {
        self.emit(SessionEvent::Error(error.clone()));
        match self.ask_on_error(&error) {
            Decision::Ignore if self.state == SessionState::Authenticating => self.become_open(now),
            Decision::Ignore => {}
            decision => self.disconnect(DisconnectReason::Error(error), Some(decision), now),
        }
    }

    // ----- lifecycle -----

    pub(super) fn start_attempt(&mut self, now: Instant) {
        self.backoff_until = None;
        self.counters.connects += 1;
        self.set_state(SessionState::Connecting, now);
        let url = self.config.request.url();
        let action =
            Action::OpenTransport { host: url.host_unbracketed().to_owned(), port: url.port(), tls: url.is_secure() };
        self.push_action(action);
        self.transport = true;
        self.connect_deadline = after(now, self.config.connect_timeout);
    }

    /// Writes what the connection still has, then closes the transport.
    fn drop_transport(&mut self, now: Instant) {
        // Messages read before the end are delivered before what follows it.
        self.take_connection_messages();
        if self.transport {
            // After a complete close handshake the server ends TCP first
            // (RFC 6455 §7.1.1), within a close timeout from the last close frame.
            let wait_for_server = self.conn.as_ref().and_then(|c| c.server_eof_wait(now));
            self.push_action(Action::CloseTransport { wait_for_server });
            self.transport = false;
        }
        // What waited to be written goes with the transport (the caller flushes it, on a leash).
        self.backlog.reset();
        self.owed_probe = None;
        if let Some(conn) = self.conn.take() {
            if let Some(stats) = conn.compression_stats() {
                self.counters.compression.add(&stats);
            }
            self.rng = conn.into_rng();
        }
    }

    /// Ends the current connection (or attempt) and decides what follows.
    pub(super) fn disconnect(&mut self, reason: DisconnectReason, decision: Option<Decision>, now: Instant) {
        let goodbye = match reason {
            // The link still works: say goodbye properly before dropping it.
            DisconnectReason::Error(_) | DisconnectReason::UserReconnect => Some((crate::CloseCode::Normal, "")),
            // The peer may be gone, but a close frame tells one that is merely
            // slow why we leave (if the socket still takes it).
            DisconnectReason::HeartbeatTimeout => Some((crate::CloseCode::Error, "heartbeat timeout")),
            DisconnectReason::IdleTimeout => Some((crate::CloseCode::Error, "idle timeout")),
            _ => None,
        };
        if let (Some((code, text)), Some(conn)) = (goodbye, self.conn.as_mut()) {
            let _ = conn.close(code, text, now);
        }
        self.drop_transport(now);
        self.heartbeat.stop();
        self.connect_deadline = None;
        self.auth_deadline = None;
        self.auth_request = None;
        self.pending_response = None;
        for (id, pending) in self.requests.fail_sent(now) {
            if pending.purpose == Purpose::User {
                self.emit(SessionEvent::RequestFailed { id, reason: RequestFailure::ConnectionLost });
            }
        }
        if !self.config.keep_queue_on_disconnect {
            self.drop_queue(RequestFailure::Dropped, now);
        }
        let opened_at = self.opened_at.take();
        if opened_at.is_some_and(|t| now.saturating_duration_since(t) >= self.backoff.reset_after()) {
            self.backoff.stable();
        }
        // An attempt that never opened (or never authenticated) is a failed one.
        let failed = opened_at.is_none();
        let is_error = reason.is_error();
        self.emit(SessionEvent::Disconnected { reason: reason.clone() });
        if self.user_closing {
            return self.finish(CloseReason::Requested, now);
        }
        let forbidden = !self.config.reconnect || (is_error && !self.config.reconnect_on_error);
        let decision = match decision {
            // The user's own `reconnect` is asked for, whatever the configuration.
            Some(decision) if matches!(reason, DisconnectReason::UserReconnect) => decision,
            // `on_error`'s answer to an authentication error yields to it, as the policy's would.
            _ if forbidden => Decision::Stop,
            Some(decision) => decision,
            None => self.ask_policy(&reason, failed),
        };
        self.apply(decision, &reason, failed, now);
    }

    /// What follows a connection that ended, in the order `ReconnectPolicy`
    /// documents: `on_error` first when it ended in an error, so that one
    /// hook sees every error; its `Stop` is final, and any other answer
    /// leaves the choice to `on_disconnect`, so that a policy written before
    /// `on_error` saw these errors (or the default one) decides as it did.
    fn ask_policy(&mut self, reason: &DisconnectReason, failed: bool) -> Decision {
        if let Some(error) = SessionError::from_disconnect(reason) {
            if self.ask_on_error(&error) == Decision::Stop {
                return Decision::Stop;
            }
        }
        self.hooks.policy.on_disconnect(reason, self.backoff.failures() + u32::from(failed))
    }

    /// The builder's `on_error` function when one is set, else the policy's.
    fn ask_on_error(&mut self, error: &SessionError) -> Decision {
        match self.hooks.on_error.as_mut() {
            Some(on_error) => on_error(error),
            None => self.hooks.policy.on_error(error),
        }
    }

    fn apply(&mut self, decision: Decision, reason: &DisconnectReason, failed: bool, now: Instant) {
        let delay = match decision {
            Decision::Stop => return self.finish(CloseReason::Stopped, now),
            Decision::Ignore => return self.set_state(SessionState::Idle, now),
            Decision::ReconnectNow => {
                self.counters.reconnects += 1;
                return self.start_attempt(now);
            }
            Decision::ReconnectAfter(delay) => delay,
            Decision::Reconnect => {
                let backoff = self.backoff.next_delay(failed, self.rng.as_mut());
                let attempt = self.backoff.failures();
                let chosen = match self.hooks.retry.as_mut() {
                    Some(retry) => retry(&RetryContext { attempt, reason, backoff }),
                    None => backoff,
                };
                match (chosen, self.hooks.retry.is_some()) {
                    (Some(delay), _) => delay,
                    (None, true) => return self.finish(CloseReason::Stopped, now),
                    (None, false) => return self.finish(CloseReason::GaveUp { attempts: attempt }, now),
                }
            }
        };
        self.set_state(SessionState::Backoff, now);
        // A delay past what `Instant` holds (a `Duration::MAX` cap, a retry
        // hook's choice) arms no timer: the session waits in Backoff for
        // `connect` or `reconnect`.
        self.backoff_until = after(now, delay);
        self.emit(SessionEvent::Reconnecting { attempt: self.backoff.failures() + 1, delay });
    }

    fn drop_queue(&mut self, reason: RequestFailure, now: Instant) {
        for item in self.outbox.drain() {
            match item {
                Queued::Message(m) => self.emit(SessionEvent::Dropped(m)),
                Queued::Request { id, .. } => {
                    if self.requests.abandon(id, now).is_some() {
                        self.emit(SessionEvent::RequestFailed { id, reason });
                    }
                }
            }
        }
    }

    /// Closes the session for good.
    pub(super) fn finish(&mut self, reason: CloseReason, now: Instant) {
        self.drop_transport(now);
        self.heartbeat.stop();
        self.connect_deadline = None;
        self.auth_deadline = None;
        self.backoff_until = None;
        self.drop_queue(RequestFailure::SessionClosed, now);
        for (id, pending) in self.requests.take_all(now) {
            if pending.purpose == Purpose::User {
                self.emit(SessionEvent::RequestFailed { id, reason: RequestFailure::SessionClosed });
            }
        }
        self.requests.forget_recent();
        self.set_state(SessionState::Closed, now);
        self.emit(SessionEvent::Closed { reason });
    }
}
