//! The session's lifecycle from one connection to the next: an attempt
//! started, a transport dropped (its bytes flushed by the caller), a
//! connection that ended and what follows it (the user's `on_error`, the
//! policy, the retry function, the backoff schedule), and the end for good.
//!
//! Invariants: every `OpenTransport` gets exactly one `CloseTransport`;
//! every request in flight at a disconnect ends there (`ConnectionLost`),
//! and every one still queued at the end (`SessionClosed`).

use std::time::Instant;

use super::{Action, CloseReason, DisconnectReason, RequestFailure, Session, SessionEvent, SessionState};
use crate::deadline::after;
use crate::hooks::{Decision, RetryContext, SessionError};
use crate::outbound::Queued;
use crate::requests::Purpose;

impl Session {
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
    pub(super) fn drop_transport(&mut self, now: Instant) {
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
            DisconnectReason::Error(_) | DisconnectReason::UserReconnect | DisconnectReason::SequenceBroken { .. } => {
                Some((crate::CloseCode::Normal, ""))
            }
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
        self.forget_reauth();
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
            Some(decision)
                if matches!(reason, DisconnectReason::UserReconnect | DisconnectReason::SequenceBroken { .. }) =>
            {
                decision
            }
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
    pub(super) fn ask_policy(&mut self, reason: &DisconnectReason, failed: bool) -> Decision {
        if let Some(error) = SessionError::from_disconnect(reason) {
            if self.ask_on_error(&error) == Decision::Stop {
                return Decision::Stop;
            }
        }
        self.hooks.policy.on_disconnect(reason, self.backoff.failures() + u32::from(failed))
    }

    /// The builder's `on_error` function when one is set, else the policy's.
    pub(super) fn ask_on_error(&mut self, error: &SessionError) -> Decision {
        match self.hooks.on_error.as_mut() {
            Some(on_error) => on_error(error),
            None => self.hooks.policy.on_error(error),
        }
    }

    pub(super) fn apply(&mut self, decision: Decision, reason: &DisconnectReason, failed: bool, now: Instant) {
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

    pub(super) fn drop_queue(&mut self, reason: RequestFailure, now: Instant) {
        for item in self.outbox.drain() {
            match item {
                Queued::Message(m) => self.emit(SessionEvent::Dropped(m)),
                Queued::Request { id, .. } | Queued::RequestMessage { id, .. } => {
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
