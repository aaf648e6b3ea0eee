//! The connection's outputs: bytes to write (`poll_transmit`), events
//! (`poll_event`, and the session's fast path that takes messages straight
//! from the queue), the next deadline (`poll_timeout`), and the pause of
//! reading that holds the deadlines waiting on the peer.
//!
//! Invariant: the event queue holds messages in the order they were read,
//! with `other_events` counting what is not a message.

use super::*;

impl Connection {
    /// Moves every byte queued for the transport into `out` (one write per
    /// poll); returns how many. When `out` is empty its buffer is swapped in, not copied.
    #[must_use]
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.output.len();
        if out.is_empty() {
            std::mem::swap(out, &mut self.output);
        } else {
            out.append(&mut self.output);
        }
        n
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ConnectionEvent> {
        let Some(event) = self.events.pop_front() else {
            if !self.busy {
                crate::queue::release_if_small(&mut self.events);
            }
            if let Some(fault) = self.fault.as_mut() {
                // Everything before the violation is taken: it is due now.
                fault.due = true;
            }
            return None;
        };
        if !matches!(event, ConnectionEvent::Message(_)) {
            self.other_events -= 1;
        }
        Some(event)
    }

    /// Frees the event queue's buffer if it is drained and small (see
    /// `release_if_small`), unless the link is busy (see [`trim`](Self::trim)).
    pub(crate) fn release_drained_queue(&mut self) {
        if !self.busy {
            crate::queue::release_if_small(&mut self.events);
        }
    }

    /// Whether a data message was read or sent since the last
    /// [`trim`](Self::trim): while it is, small buffers are kept for the
    /// next message instead of freed and allocated again.
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// Gives back a buffer [`poll_transmit`](Self::poll_transmit) filled,
    /// once it is written: while the link is busy, the next frames are
    /// encoded into it instead of a new allocation (one buffer of at most
    /// 4 KiB is kept; a larger one is freed).
    pub fn recycle_transmit(&mut self, mut buf: Vec<u8>) {
        if self.busy && self.output.capacity() == 0 && buf.capacity() <= crate::queue::RECYCLE_LIMIT {
            buf.clear();
            self.output = buf;
        }
    }

    /// Frees what a busy link kept (a drained event queue, an empty output
    /// buffer) and marks it idle until its next data message. The session
    /// calls it at each of its timers; a loop of one's own over a bare
    /// connection calls it now and then (on its heartbeat, say).
    pub fn trim(&mut self) {
        self.busy = false;
        crate::queue::release_if_small(&mut self.events);
        if self.output.is_empty() && self.output.capacity() > 0 {
            self.output = Vec::new();
        }
    }

    /// Whether every queued event is a message.
    pub(crate) fn only_messages_queued(&self) -> bool {
        self.other_events == 0
    }

    /// How many messages are queued.
    pub(crate) fn queued_messages(&self) -> usize {
        self.events.len() - self.other_events
    }

    /// How many events at the front of the queue are messages that `plain`
    /// accepts, looking no further than the first that is not.
    pub(crate) fn leading_messages(&self, mut plain: impl FnMut(&Message) -> bool) -> usize {
        self.events.iter().take_while(|e| matches!(e, ConnectionEvent::Message(m) if plain(m))).count()
    }

    /// How many events are queued.
    pub(crate) fn queued_events(&self) -> usize {
        self.events.len()
    }

    pub(super) fn push_event(&mut self, event: ConnectionEvent) {
        if matches!(event, ConnectionEvent::Message(_)) {
            self.busy = true;
        } else {
            self.other_events += 1;
        }
        self.events.push_back(event);
    }

    /// What compression has done on this connection; `None` unless
    /// permessage-deflate is in force.
    pub fn compression_stats(&self) -> Option<CompressionStats> {
        self.deflate.as_ref().map(|d| d.stats())
    }

    /// Hands the messages at the front of the queue, at most `max`, to
    /// `each`, stopping at the first other event; returns how many went (the
    /// session's fast path, one move each).
    pub(crate) fn drain_messages(&mut self, max: usize, mut each: impl FnMut(Message)) -> usize {
        let mut moved = 0;
        while moved < max {
            let Some(message) = self.pop_message() else { break };
            each(message);
            moved += 1;
        }
        moved
    }

    /// The next event if it is a message (the session's fast path).
    pub(crate) fn pop_message(&mut self) -> Option<Message> {
        match self.events.pop_front()? {
            ConnectionEvent::Message(message) => Some(message),
            other => {
                // Rare: a ping, pong or close is next; it stays first.
                self.events.push_front(other);
                None
            }
        }
    }

    /// When `handle_timeout` must next be called, if any timer is armed.
    /// A violation waiting behind taken messages is due at once: the instant
    /// returned is then one that has already passed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(fault) = self.fault.as_ref() {
            return if fault.due { Some(fault.read_at) } else { fault.latest };
        }
        if self.handshake_paused() {
            return None;
        }
        self.deadline
    }

    /// Whether the handshake deadline waits for the caller to read again.
    pub(super) fn handshake_paused(&self) -> bool {
        self.paused_since.is_some() && matches!(self.phase, Phase::Handshaking(_) | Phase::ReadingRefusal { .. })
    }

    /// Whether a protocol violation waits behind messages the caller has
    /// taken, and the next `poll_event` (returning `None`) makes it due.
    pub fn fault_next(&self) -> bool {
        self.events.is_empty() && self.fault.as_ref().is_some_and(|f| !f.due)
    }

    /// The caller stopped reading the transport (its consumer is behind):
    /// the handshake deadline waits, since no answer can arrive. The close
    /// deadline does not: a close asked for ends within `close_timeout`
    /// whatever the consumer does.
    pub fn handle_reading_paused(&mut self, now: Instant) {
        self.paused_since.get_or_insert(now);
    }

    /// The caller reads again: the deadline moves later by the pause, but
    /// no later than a full wait from `now`.
    pub fn handle_reading_resumed(&mut self, now: Instant) {
        let Some(since) = self.paused_since.take() else { return };
        let handshaking = matches!(self.phase, Phase::Handshaking(_) | Phase::ReadingRefusal { .. });
        if let (true, Some(full)) = (handshaking, self.config.handshake_timeout) {
            self.deadline = postpone(self.deadline, now.saturating_duration_since(since), now, full);
        }
    }
}
