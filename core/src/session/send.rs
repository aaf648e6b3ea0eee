//! How the session writes: user messages through `prepare` and the count,
//! requests marked sent, its own messages (authentication, subscriptions,
//! heartbeats) outside the queue and the rate limit, and the outbound queue
//! flushed as far as the rate limit and the write budget let it.

use super::*;

impl Session {
    /// Sends a user message through `prepare`; false when `prepare` dropped it.
    pub(super) fn send_user(&mut self, message: Message) -> bool {
        let message = match self.hooks.prepare.as_mut() {
            Some(prepare) => prepare(message),
            None => Some(message),
        };
        let Some(message) = message else { return false };
        self.counters.messages_out += 1;
        self.send_raw(&message);
        true
    }

    /// A request left the queue: sent, or ended now if `prepare` dropped it.
    pub(super) fn send_request(&mut self, id: u64, message: Message, now: Instant) {
        if self.send_user(message) {
            self.requests.mark_sent(id, now);
        } else if self.requests.complete(id).is_some() {
            self.emit(SessionEvent::RequestFailed { id, reason: RequestFailure::Dropped });
        }
    }

    pub(super) fn send_raw(&mut self, message: &Message) {
        let Some(conn) = self.conn.as_mut() else { return };
        // The session sends only while the connection is open; a refusal here
        // means it is closing, and its Closed event is already on the way.
        let _ = match message {
            Message::Text(t) => conn.send_text(t.as_str()),
            Message::Binary(b) => conn.send_binary(b),
        };
    }

    pub(super) fn send_internal_all(&mut self, out: Vec<Outbound>, purpose: Purpose, now: Instant) {
        for item in out {
            self.send_internal(item, purpose.clone(), now);
        }
    }

    /// Sends a message on the session's own behalf: not queued, not rate-limited.
    pub(super) fn send_internal(&mut self, out: Outbound, purpose: Purpose, now: Instant) -> Option<u64> {
        match out {
            Outbound::Message(m) => {
                self.send_raw(&m);
                None
            }
            Outbound::Request { method, params } => {
                let deadline =
                    matches!(purpose, Purpose::Subscribe(_)).then(|| after(now, self.config.request_timeout)).flatten();
                let id = self.requests.allocate(purpose, deadline);
                let message = self.hooks.codec.encode(id, &method, params.as_deref());
                self.send_raw(&message);
                self.requests.mark_sent(id, now);
                Some(id)
            }
        }
    }

    /// Sends what the queue, the rate limit and the write budget let out now.
    pub(super) fn flush_outbox(&mut self, now: Instant) {
        while self.sends_flow() && self.has_write_room() {
            match self.outbox.pop_ready(now) {
                Some(Queued::Message(m)) => {
                    self.send_user(m);
                }
                Some(Queued::Request { id, method, params }) => {
                    match self.encode_request(id, &method, params.as_deref()) {
                        Some(message) => self.send_request(id, message, now),
                        // The codec wrote this id when the request was made and
                        // refuses it now: it is never sent, so it ends as dropped.
                        None if self.requests.complete(id).is_some() => {
                            self.emit(SessionEvent::RequestFailed { id, reason: RequestFailure::Dropped });
                        }
                        None => {}
                    }
                }
                Some(Queued::RequestMessage { id, message }) => {
                    if self.requests.is_pending(id) {
                        self.send_request(id, message, now);
                    }
                }
                None => break,
            }
        }
    }
}
