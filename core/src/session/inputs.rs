//! The session's inputs: transport events, bytes, writes and timers, and the
//! routing of each incoming message (authentication, heartbeats, responses,
//! the user's messages). What follows a connection's end is in `lifecycle.rs`.

use std::time::Instant;

use super::{CloseReason, DisconnectReason, RequestFailure, Session, SessionEvent, SessionState};
use crate::connection::{Connection, ConnectionState};
use crate::deadline::after;
use crate::event::ConnectionEvent;
use crate::heartbeat::Due;
use crate::hooks::{AuthCheck, Beat, Decision, SessionError};
use crate::message::Message;
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

    /// The current connection's room for the next read, to take as spare
    /// capacity or as initialised bytes (see [`ReadRoom`](crate::ReadRoom)),
    /// or `None` while there is no connection.
    pub fn next_read(&mut self) -> Option<crate::ReadRoom<'_>> {
        self.conn.as_mut().map(crate::ReadRoom::new)
    }

    /// `n` bytes were read into the room offered last ([`read_buffer`](Self::read_buffer),
    /// [`read_room`](Self::read_room) or [`next_read`](Self::next_read)).
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
        self.trim();
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
        if due(self.reauth_at) {
            self.start_reauth(now);
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
                    self.subscriptions.confirmed(&channels);
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
            // Numbered channels: each message is read by the sequence rules.
            if self.sends_flow() && self.hooks.app_heartbeat.is_none() && !self.subscriptions.numbered() {
                if let Some(conn) = self.conn.as_ref() {
                    let all_parked = if self.requests.matching_needed() {
                        let codec = &self.hooks.codec;
                        self.parked = conn.leading_messages(|m| codec.response_key(m).is_none());
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
        self.reconnect_for_break(now);
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
        let channels = self.subscriptions.to_restore(self.config.restore_subscriptions);
        if !channels.is_empty() {
            let out = self.hooks.subscriptions.subscribe(&channels);
            self.send_internal_all(out, Purpose::Subscribe(channels), now);
        }
        self.flush_outbox(now);
    }

    /// Decides what an incoming message is: auth answer, heartbeat traffic,
    /// a response, or a message for the user.
    fn route(&mut self, message: Message, now: Instant) {
        let authenticating = self.state == SessionState::Authenticating || self.reauthenticating;
        if authenticating && self.auth_request.is_none() {
            let verdict = self.hooks.auth.as_mut().map_or(AuthCheck::NotMine, |a| a.check(&message, false));
            if self.on_auth_verdict(verdict, &message, now) {
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
            if let Some(wire) = self.hooks.codec.response_key(&message) {
                if let Some(pending) =
                    self.requests.handle_of(&wire).and_then(|id| Some((id, self.requests.complete(id)?)))
                {
                    self.on_response(pending.0, pending.1, message, now);
                    return;
                }
                if self.requests.is_late(&wire) {
                    self.emit(SessionEvent::Unmatched { id: wire, message });
                    return;
                }
            }
        }
        let broken = if self.subscriptions.numbered() { self.subscriptions.judge(&message) } else { None };
        match broken {
            None => self.emit(SessionEvent::Message(message)),
            Some(broken) => {
                self.report_break(&broken);
                self.emit(SessionEvent::Message(message));
                self.act_on_break(broken, now);
            }
        }
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
                self.on_auth_verdict(verdict, &message, now);
            }
            Purpose::Subscribe(channels) if is_error => {
                let reason = match &message {
                    Message::Text(t) => t.as_str().to_owned(),
                    Message::Binary(_) => "binary error response".to_owned(),
                };
                self.subscriptions.confirmed(&channels);
                self.emit(SessionEvent::SubscriptionFailed { channels, reason });
            }
            Purpose::Subscribe(channels) => {
                self.subscriptions.confirmed(&channels);
                self.emit(SessionEvent::Subscribed { channels });
            }
            Purpose::Heartbeat => self.heartbeat.on_probe_rtt(rtt),
            Purpose::Unsubscribe(_) | Purpose::Setup => {}
        }
    }

    /// Applies an authentication verdict; returns whether the message was consumed.
    fn on_auth_verdict(&mut self, verdict: AuthCheck, message: &Message, now: Instant) -> bool {
        if self.state != SessionState::Authenticating && !self.reauthenticating {
            // A late verdict (the user is closing, or auth already timed out) changes nothing.
            return verdict != AuthCheck::NotMine;
        }
        match verdict {
            AuthCheck::NotMine => false,
            AuthCheck::Accepted => {
                self.schedule_refresh(message, now);
                if self.reauthenticating {
                    self.finish_reauth(now);
                    let refresh_in = self.reauth_at.map(|at| at.saturating_duration_since(now));
                    self.emit(SessionEvent::Reauthenticated { refresh_in });
                } else {
                    self.become_open(now);
                }
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
            // The link stays as it is: no more refreshes on it.
            Decision::Ignore if self.reauthenticating => self.finish_reauth(now),
            Decision::Ignore => {}
            decision => self.disconnect(DisconnectReason::Error(error), Some(decision), now),
        }
    }

    // ----- lifecycle -----
}
