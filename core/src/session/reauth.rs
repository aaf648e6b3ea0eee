//! Authenticating again on the open link, before the credentials expire.
//!
//! The authenticator says when (`Authenticator::refresh_after`, from the
//! message that accepted it); at that moment the session sends
//! `Authenticator::refresh` and, until the answer, holds what needs the
//! credentials: user messages and requests stay in the outbound queue, and
//! subscription changes wait (the set changes at once). Heartbeats and
//! requests already sent go on. An accepted refresh emits
//! `Reauthenticated` and lets everything out; a refusal or no answer within
//! `auth_timeout` is a `SessionError` (`AuthRejected`, `AuthTimeout`) that
//! `on_error` decides on, as on a new connection: `Ignore` lets everything
//! out and authenticates no more on this link.
//!
//! Invariants: `reauthenticating` only while open; a refresh is scheduled
//! only from an accepted answer, at least [`MIN_REFRESH`] later, and
//! forgotten with the connection.

use super::*;
use crate::hooks::Outbound;

/// The shortest wait before authenticating again, whatever the
/// authenticator says: a server that grants no time does not make the
/// session ask in a loop.
pub(super) const MIN_REFRESH: Duration = Duration::from_secs(1);

impl Session {
    /// Whether user messages, requests and subscription changes go out now.
    pub(super) fn sends_flow(&self) -> bool {
        self.state == SessionState::Open && !self.reauthenticating
    }

    /// Whether the session is authenticating again on the open link (what
    /// needs the credentials waits meanwhile).
    pub fn reauthenticating(&self) -> bool {
        self.reauthenticating
    }

    /// Credentials were accepted with `message`: schedules their refresh.
    pub(super) fn schedule_refresh(&mut self, message: &Message, now: Instant) {
        let after = self.hooks.auth.as_mut().and_then(|a| a.refresh_after(message));
        self.reauth_at = after.and_then(|d| crate::deadline::after(now, d.max(MIN_REFRESH)));
    }

    /// The refresh is due: sends it, and holds what needs the credentials.
    pub(super) fn start_reauth(&mut self, now: Instant) {
        self.reauth_at = None;
        if self.state != SessionState::Open || self.reauthenticating {
            return;
        }
        let Some(auth) = self.hooks.auth.as_mut() else { return };
        let out = auth.refresh();
        if let Some(tape) = self.tape.as_mut() {
            // The refresh carries credentials, as the first message did.
            tape.secret_pending = true;
        }
        self.reauthenticating = true;
        self.auth_deadline = crate::deadline::after(now, self.config.auth_timeout);
        self.auth_request = self.send_internal(out, Purpose::Auth, now);
    }

    /// The refresh ended (accepted, or refused and ignored): lets out what waited.
    pub(super) fn finish_reauth(&mut self, now: Instant) {
        self.reauthenticating = false;
        self.auth_deadline = None;
        self.auth_request = None;
        for (out, purpose) in std::mem::take(&mut self.held_changes) {
            self.send_internal_all(out, purpose, now);
        }
        self.flush_outbox(now);
    }

    /// Sends a subscription change now, or after the refresh under way.
    pub(super) fn send_change(&mut self, out: Vec<Outbound>, purpose: Purpose, now: Instant) {
        if self.reauthenticating {
            self.held_changes.push((out, purpose));
        } else {
            self.send_internal_all(out, purpose, now);
        }
    }

    /// Forgets the refresh with the connection.
    pub(super) fn forget_reauth(&mut self) {
        self.reauth_at = None;
        self.reauthenticating = false;
        self.held_changes.clear();
    }
}
