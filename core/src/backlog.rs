//! The write side's budget: bytes the session handed out to be written
//! (`Action::Transmit`) that the caller has not yet reported written
//! (`Session::handle_written`), and how long the transport has taken none
//! of them.
//!
//! A small timer machine, like the heartbeat: the session tells it what it
//! handed out and what was written; it answers whether there is room for
//! more and when the write timeout falls due. Invariants: the count never
//! goes below zero (a report of more than was handed out counts as all of
//! it); the deadline runs only while bytes wait, and every report of
//! progress moves it a full timeout from then; a transport that ends takes
//! its bytes with it, so the count starts again from zero.

use std::time::{Duration, Instant};

use crate::deadline::after;

/// Bytes waiting to be written, against a budget, with a write timeout.
#[derive(Debug)]
pub(crate) struct WriteBacklog {
    budget: usize,
    timeout: Option<Duration>,
    /// Handed out and not yet reported written.
    unwritten: usize,
    /// When the transport must have taken a byte, while bytes wait.
    deadline: Option<Instant>,
}

impl WriteBacklog {
    pub(crate) fn new(budget: usize, timeout: Option<Duration>) -> Self {
        Self { budget, timeout, unwritten: 0, deadline: None }
    }

    /// Bytes handed out and not yet written.
    pub(crate) fn unwritten(&self) -> usize {
        self.unwritten
    }

    /// Whether more may be written while `more` bytes also wait (the
    /// connection's own, not yet handed out): the budget is not reached. One
    /// message may pass it; the next waits until the writes bring it below.
    pub(crate) fn has_room(&self, more: usize) -> bool {
        self.unwritten.saturating_add(more) < self.budget
    }

    /// How many more bytes fit below the budget.
    pub(crate) fn room(&self) -> usize {
        self.budget.saturating_sub(self.unwritten)
    }

    /// `n` bytes were handed out at `now`. The write timeout starts when
    /// bytes begin to wait; while they already do, it keeps running from the
    /// last progress.
    pub(crate) fn handed_out(&mut self, n: usize, now: Instant) {
        if n == 0 {
            return;
        }
        if self.unwritten == 0 {
            self.deadline = self.timeout.and_then(|t| after(now, t));
        }
        self.unwritten = self.unwritten.saturating_add(n);
    }

    /// The caller wrote `n` bytes at `now`.
    pub(crate) fn written(&mut self, n: usize, now: Instant) {
        self.unwritten -= n.min(self.unwritten);
        if self.unwritten == 0 {
            self.deadline = None;
        } else if n > 0 {
            self.deadline = self.timeout.and_then(|t| after(now, t));
        }
    }

    /// The transport ended: what waited for it is gone with it.
    pub(crate) fn reset(&mut self) {
        self.unwritten = 0;
        self.deadline = None;
    }

    /// When the write timeout falls due, while bytes wait.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the transport took nothing for the whole write timeout.
    pub(crate) fn stalled(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // the fake clock's origin
    fn origin() -> Instant {
        Instant::now()
    }

    #[test]
    fn the_budget_admits_until_reached_and_one_message_may_pass_it() {
        let t0 = origin();
        let mut b = WriteBacklog::new(100, None);
        assert!(b.has_room(99) && !b.has_room(100));
        b.handed_out(99, t0);
        assert!(b.has_room(0) && !b.has_room(1));
        b.handed_out(5_000, t0); // one large message went while there was room
        assert_eq!((b.unwritten(), b.room()), (5_099, 0));
        assert!(!b.has_room(0));
        b.written(5_000, t0);
        assert!(b.has_room(0) && b.room() == 1);
        b.written(1_000, t0);
        assert_eq!(b.unwritten(), 0, "more reported than handed out counts as all of it");
    }

    #[test]
    fn the_write_timeout_runs_only_while_bytes_wait_and_restarts_on_progress() {
        let t0 = origin();
        let s = Duration::from_secs;
        let mut b = WriteBacklog::new(1 << 20, Some(s(30)));
        assert_eq!(b.next_deadline(), None);
        b.handed_out(10, t0);
        assert_eq!(b.next_deadline(), Some(t0 + s(30)));
        b.handed_out(10, t0 + s(5));
        assert_eq!(b.next_deadline(), Some(t0 + s(30)), "more bytes waiting do not restart it");
        b.written(0, t0 + s(20));
        assert_eq!(b.next_deadline(), Some(t0 + s(30)), "a write of nothing is no progress");
        b.written(5, t0 + s(20));
        assert_eq!(b.next_deadline(), Some(t0 + s(50)), "progress restarts it");
        assert!(!b.stalled(t0 + s(49)) && b.stalled(t0 + s(50)));
        b.written(15, t0 + s(21));
        assert_eq!(b.next_deadline(), None, "nothing waits");
        b.handed_out(1, t0 + s(22));
        b.reset();
        assert_eq!((b.unwritten(), b.next_deadline()), (0, None));
    }

    #[test]
    fn a_timeout_past_what_instant_holds_never_falls_due() {
        let t0 = origin();
        let mut b = WriteBacklog::new(1, Some(Duration::MAX));
        b.handed_out(1, t0);
        assert_eq!(b.next_deadline(), None);
        let mut off = WriteBacklog::new(1, None);
        off.handed_out(1, t0);
        assert!(!off.stalled(t0 + Duration::from_secs(1 << 30)));
    }
}
