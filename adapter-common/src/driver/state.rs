//! What the driver's turn works on: the transport's side ([`Io`]) and the
//! handles' side ([`Routing`]), kept apart so that each step borrows only the
//! part it needs.
//!
//! Invariant: an idle client pays for none of what it does not use. Its
//! task holds these structs inline, so whatever only some clients need (the
//! awaited requests, the held commands) is boxed and made on first use.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use wslink_core::{Session, SessionEvent};

use super::held::Held;
use crate::filter::EventFilter;
use crate::reply::{Reply, RequestError, Response};
use crate::runtime::Runtime;

/// Reading also pauses once this many payload bytes wait for the consumer, so
/// large messages cannot pile up `event_capacity` deep.
const PENDING_BYTES: usize = 256 << 10;

/// A transport being opened: resolving, TCP, the proxy's tunnel, TLS.
pub(super) type Opening<R> =
    Pin<Box<dyn Future<Output = io::Result<(<R as Runtime>::Reader, <R as Runtime>::Writer)>> + Send>>;
/// A transport being closed: its last writes, the server's end of stream, the shutdown.
pub(super) type Closing = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The transport's side: opening, the two halves, what waits to be written,
/// and the closes still running.
pub(super) struct Io<R: Runtime> {
    /// The transport being opened, if any.
    pub(super) opening: Option<Opening<R>>,
    /// The open transport's read half.
    pub(super) reader: Option<R::Reader>,
    /// The open transport's write half.
    pub(super) writer: Option<R::Writer>,
    /// The session's transmits, in order, not yet written whole.
    pub(super) out: VecDeque<Vec<u8>>,
    /// How much of the first of `out` is written.
    pub(super) out_pos: usize,
    /// A write found the socket full; set until the waiting write completes.
    pub(super) write_blocked: bool,
    /// The last transport's close, when the session has closed: awaited
    /// before the last events go out.
    pub(super) final_close: Option<Closing>,
    /// Closes of earlier transports, running as tasks of their own: each
    /// says when it is done, and the session's end waits for them too.
    pub(super) earlier_closes: Vec<oneshot::Receiver<()>>,
}

impl<R: Runtime> Io<R> {
    /// No transport yet; nothing to write.
    pub(super) fn new() -> Self {
        Io {
            opening: None,
            reader: None,
            writer: None,
            out: VecDeque::new(),
            out_pos: 0,
            write_blocked: false,
            final_close: None,
            earlier_closes: Vec::new(),
        }
    }

    /// Frees the write queue if it is empty (a busy link keeps it between timers).
    pub(super) fn trim(&mut self) {
        if self.out.is_empty() {
            self.out = VecDeque::new();
        }
    }
}

/// The handles' side: where events go, what callers wait for, and how far
/// the consumer is behind.
#[derive(Default)]
pub(super) struct Routing {
    /// Which events go to the stream.
    pub(super) keep: EventFilter,
    /// `connect` waits for how the first attempt ends.
    pub(super) first_pending: bool,
    /// Commands that would write, waiting for room in the write budget.
    pub(super) held: Held,
    /// Whether the handles were last told the write budget is used up.
    pub(super) write_full: bool,
    /// Events not yet handed to the stream: the next batch.
    pub(super) pending_events: Vec<SessionEvent>,
    /// Payload bytes of the messages in `pending_events`.
    pub(super) pending_bytes: usize,
    /// Requests awaiting their outcome.
    pub(super) waiting: Waiting,
    /// Callers of `close`, answered once the session has closed.
    pub(super) close_waiters: Vec<Reply<()>>,
    /// When reading paused for the consumer, while it is paused.
    pub(super) paused_since: Option<Instant>,
    /// The pauses of reading that have ended, added up.
    pub(super) paused_total: Duration,
    /// Every handle is gone: no command will come.
    pub(super) commands_closed: bool,
    /// The consumer is gone: events are no longer kept.
    pub(super) events_closed: bool,
    /// The driver closed the session itself, nobody being left to use it.
    pub(super) auto_closing: bool,
    /// The consumer has caught up with a protocol violation waiting behind
    /// its messages: the session may act on it.
    pub(super) release_fault: bool,
}

impl Routing {
    /// Whether nobody reads the stream: the consumer is gone, or every event is discarded.
    pub(super) fn stream_unread(&self) -> bool {
        self.events_closed || matches!(self.keep, EventFilter::Discard)
    }

    /// Whether the consumer is few enough events and bytes behind for reading to go on.
    #[inline]
    pub(super) fn consumer_has_room(&self, event_capacity: usize) -> bool {
        self.pending_events.len() < event_capacity && self.pending_bytes < PENDING_BYTES
    }

    /// Whether a protocol violation waits behind messages the consumer has
    /// been handed: the wait then hears when it has taken them.
    #[inline]
    pub(super) fn awaits_consumer(&self, session: &Session) -> bool {
        session.fault_next() && self.pending_events.is_empty() && !self.release_fault
    }

    /// The consumer is gone: what waited for it is dropped, and no more is kept.
    pub(super) fn consumer_gone(&mut self) {
        self.events_closed = true;
        self.pending_events.clear();
        self.pending_bytes = 0;
    }
}

/// The reply channels of requests awaiting their outcome, by id. Made on
/// the first request: an empty map is 48 bytes in every idle client's task,
/// and most clients never make a request.
#[derive(Default)]
#[allow(clippy::box_collection, reason = "the box is the point: 8 bytes in the task instead of 48")]
pub(super) struct Waiting(Option<Box<HashMap<u64, Replier>>>);

/// Where a request's outcome goes.
pub(super) type Replier = oneshot::Sender<Result<Response, RequestError>>;

impl Waiting {
    /// How many requests await their outcome.
    pub(super) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |map| map.len())
    }

    /// Awaits the outcome of request `id`.
    pub(super) fn insert(&mut self, id: u64, reply: Replier) {
        self.0.get_or_insert_default().insert(id, reply);
    }

    /// Takes the reply channel of request `id`, if someone awaits it.
    pub(super) fn remove(&mut self, id: u64) -> Option<Replier> {
        self.0.as_mut()?.remove(&id)
    }
}
