//! The session's outputs, as its caller polls them: actions (open, write,
//! close a transport), events (with the fast path that moves a flood's
//! messages straight from the connection's queue), and the next deadline.
//!
//! Invariants: events come out in the order they happened, messages parked
//! in the connection's queue before any event queued after them; every
//! transmit is counted as handed out, against the write budget, when it is
//! polled.

use super::*;

impl Session {
    /// The next thing to do to the transport, in order.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        let action = match self.actions.pop_front() {
            Some(action) => Some(action),
            None => {
                if !self.is_busy() {
                    release_if_small(&mut self.actions);
                }
                self.take_transmit()
            }
        };
        if let (Some(tape), Some(action)) = (self.tape.as_mut(), action.as_ref()) {
            tape.action(action);
        }
        action
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        if self.tape.is_none() {
            return self.next_event();
        }
        let releases = self.fault_next();
        let event = self.next_event();
        if let Some(tape) = self.tape.as_mut() {
            match &event {
                Some(event) => tape.event(event),
                None if releases => tape.caught_up(),
                None => {}
            }
        }
        event
    }

    pub(super) fn next_event(&mut self) -> Option<SessionEvent> {
        // Messages the fast path parked in the connection's queue come after
        // every event queued here (`emit` moves them first); on a flood they
        // are all there is, so they are looked for first.
        if self.parked > 0 && self.events.is_empty() {
            if let Some(message) = self.conn.as_mut().and_then(Connection::pop_message) {
                self.took_parked(1);
                return Some(SessionEvent::Message(message));
            }
        }
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        if !self.is_busy() {
            release_if_small(&mut self.events);
        }
        if let Some(conn) = self.conn.as_mut() {
            conn.release_drained_queue();
            if self.parked == 0 && conn.fault_next() {
                // The caller took every message read before a protocol
                // violation: it is acted on at the next `handle_timeout`.
                let _ = conn.poll_event();
            }
        }
        None
    }

    /// Whether a protocol violation was read behind messages, all of which
    /// the caller has now polled, and the next `poll_event` (which returns
    /// `None`) will make it due: the following `handle_timeout` then sends
    /// the close frame and ends the connection.
    ///
    /// This is the point to let the consumer catch up. A caller whose
    /// consumer takes events on another task waits until the consumer has
    /// taken every event polled so far (and carries out the commands it sent
    /// meanwhile) before calling `poll_event` again, so that answers to those
    /// messages go out before the close frame, as they would from a client
    /// that reads one message at a time.
    pub fn fault_next(&self) -> bool {
        self.events.is_empty() && self.parked == 0 && self.conn.as_ref().is_some_and(Connection::fault_next)
    }

    /// Moves the messages that are next in line (no other event before
    /// them) into `into`, as the `SessionEvent::Message`s that
    /// [`poll_event`](Self::poll_event) would return one by one, and returns
    /// the bytes of their payloads: for a caller that hands events on in
    /// batches, a flood then costs no `poll_event` call per message.
    pub fn poll_messages(&mut self, into: &mut Vec<SessionEvent>) -> usize {
        if !self.events.is_empty() || self.parked == 0 {
            return 0;
        }
        let Some(conn) = self.conn.as_mut() else { return 0 };
        into.reserve(self.parked);
        let mut bytes = 0;
        let tape = &mut self.tape;
        let moved = conn.drain_messages(self.parked, |message| {
            bytes += message.len();
            if let Some(tape) = tape.as_mut() {
                tape.event_message(&message);
            }
            into.push(SessionEvent::Message(message));
        });
        self.took_parked(moved);
        bytes
    }

    /// Queues an event, after the messages still waiting in the connection's
    /// queue: they arrived before whatever this event reports.
    pub(super) fn emit(&mut self, event: SessionEvent) {
        self.take_connection_messages();
        self.events.push_back(event);
    }

    /// Moves the messages parked in the connection's queue to the session's.
    pub(super) fn take_connection_messages(&mut self) {
        if self.parked == 0 {
            return;
        }
        if let Some(conn) = self.conn.as_mut() {
            let events = &mut self.events;
            let moved = conn.drain_messages(self.parked, |message| events.push_back(SessionEvent::Message(message)));
            self.took_parked(moved);
        }
        self.parked = 0;
    }

    /// Messages read so far, counted or still parked: it grows only when an
    /// input completes a message (moving parked ones does not change it).
    pub(super) fn messages_read(&self) -> u64 {
        self.counters.messages_in + self.parked as u64
    }

    /// Accounts for `moved` parked messages taken from the connection's queue.
    pub(super) fn took_parked(&mut self, moved: usize) {
        self.parked -= moved;
        self.counters.messages_in += moved as u64;
    }

    /// When `handle_timeout` must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let outbox = self.sends_flow().then(|| self.outbox.next_deadline()).flatten();
        crate::deadline::earliest(&[
            self.connect_deadline,
            self.backoff_until,
            self.reauth_at,
            // No answer can arrive while the caller does not read.
            self.auth_deadline.filter(|_| self.reading_paused_since.is_none()),
            self.conn.as_ref().and_then(Connection::poll_timeout),
            self.heartbeat.next_deadline(),
            self.requests.next_deadline(),
            outbox,
            self.backlog.next_deadline(),
        ])
    }

    /// Whether data moved on the link since the last timer: small buffers
    /// (queues, a written transmit given back) are kept meanwhile, and the
    /// next timer gives them back. A driver may follow it for its own.
    pub fn is_busy(&self) -> bool {
        self.conn.as_ref().is_some_and(Connection::is_busy)
    }

    /// Gives back the buffer of an `Action::Transmit` once it is written:
    /// while the link is busy the next frames are encoded into it, so that
    /// a request/response link allocates nothing per message. Optional: a
    /// buffer not given back is simply freed.
    pub fn recycle_transmit(&mut self, buf: Vec<u8>) {
        if let Some(conn) = self.conn.as_mut() {
            conn.recycle_transmit(buf);
        }
    }

    /// Whether `poll_action` or `poll_event` has something to give: a driver
    /// that has just reported a write (`handle_written`) and finds nothing
    /// here need not start another turn before it waits.
    pub fn has_output(&self) -> bool {
        !self.actions.is_empty()
            || !self.events.is_empty()
            || self.parked > 0
            || self.conn.as_ref().is_some_and(|c| c.pending_output() > 0 || c.queued_events() > 0)
    }

    /// At a timer: gives back what a busy link kept (see `is_busy`).
    pub(super) fn trim(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.trim();
        }
        release_if_small(&mut self.actions);
        release_if_small(&mut self.events);
    }

    pub(super) fn take_transmit(&mut self) -> Option<Action> {
        let conn = self.conn.as_mut()?;
        let mut out = Vec::new();
        match conn.poll_transmit(&mut out) {
            0 => None,
            n => {
                self.counters.bytes_out += n as u64;
                self.backlog.handed_out(n, self.clock);
                conn.set_write_room(self.backlog.room());
                if let Some(tape) = self.tape.as_mut() {
                    tape.transmit_created(&out);
                }
                Some(Action::Transmit(out))
            }
        }
    }

    /// Queues an action behind every byte the connection has written so far.
    pub(super) fn push_action(&mut self, action: Action) {
        if let Some(transmit) = self.take_transmit() {
            self.actions.push_back(transmit);
        }
        self.actions.push_back(action);
    }
}
