//! The pool's one event stream: every member's session events, tagged with
//! the member's index, and the supervisor's own (a member started, ended and
//! will start again, removed).
//!
//! Reading it is what keeps the members reading their sockets: a member task
//! forwards its session's events here a batch at a time and waits for room,
//! so a consumer that stops reading slows the members, and through TCP their
//! servers, as a single client's `Events` does. A pool whose user wants only
//! requests and sends discards member events instead
//! ([`MemberEvents::Discard`]), or keeps only some ([`MemberEvents::Only`]);
//! nothing then waits for a reader. Dropping the stream discards everything
//! from then on.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;
use wslink_core::SessionEvent;

/// What the pool does with its members' session events: the single
/// client's [`EventFilter`](crate::EventFilter). With `Discard` the
/// supervisor's events are dropped too and the stream ends at once; with
/// `Only` the supervisor's events always go.
pub type MemberEvents = crate::filter::EventFilter;

/// One event of the pool's stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PoolEvent {
    /// An event of member `index`'s session.
    Member {
        /// The member.
        index: usize,
        /// Its session's event.
        event: SessionEvent,
    },
    /// Member `index` started a session: at the pool's start, when the pool
    /// grew, or again after its last session ended.
    Started {
        /// The member.
        index: usize,
        /// Restarts of this member so far (0 for its first session).
        restarts: u32,
    },
    /// Member `index`'s session ended (it gave up, its policy stopped it,
    /// reconnecting was off) or could not be started; a new one starts after `delay`.
    Restarting {
        /// The member.
        index: usize,
        /// When, from now, on the member's own backoff schedule.
        delay: Duration,
        /// Restarts of this member, this one included.
        restarts: u32,
    },
    /// Member `index`'s builder failed (`make` returned an error, or the
    /// client could not start); it is tried again as an ended session is.
    StartFailed {
        /// The member.
        index: usize,
        /// The error, as a sentence.
        error: String,
    },
    /// Member `index` left the pool (removed, shrunk away, or the pool
    /// closed); every event of its session came before this.
    Removed {
        /// The member.
        index: usize,
    },
}

/// Batches from the member tasks to the stream; each task waits for room.
pub(crate) type Merged = mpsc::Sender<Vec<PoolEvent>>;

/// Batches in flight before member tasks wait for the reader (each member's
/// own event buffer comes on top).
pub(crate) const MERGED_BATCHES: usize = 4;

/// The pool's events, in order per member. Ends once the pool has closed
/// (every handle dropped, or `close`) and every member's events were delivered.
pub struct PoolEvents {
    pub(crate) rx: Option<mpsc::Receiver<Vec<PoolEvent>>>,
    pub(crate) batch: std::vec::IntoIter<PoolEvent>,
}

impl PoolEvents {
    /// The next event; `None` once the pool has closed and everything was delivered.
    /// Cancel-safe: a batch is taken only when this completes.
    pub async fn recv(&mut self) -> Option<PoolEvent> {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<PoolEvent>> {
        loop {
            if let Some(event) = self.batch.next() {
                return Poll::Ready(Some(event));
            }
            let Some(rx) = self.rx.as_mut() else { return Poll::Ready(None) };
            match rx.poll_recv(cx) {
                Poll::Ready(Some(batch)) => self.batch = batch.into_iter(),
                Poll::Ready(None) => {
                    self.rx = None;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl futures_core::Stream for PoolEvents {
    type Item = PoolEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PoolEvent>> {
        self.poll_event(cx)
    }
}

impl std::fmt::Debug for PoolEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolEvents").finish_non_exhaustive()
    }
}
