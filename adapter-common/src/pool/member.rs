//! The supervision of one pool member: a task that starts the member's
//! session, forwards its events, and when the session ends starts a new one
//! after the delay `wslink_core::Restarts` gives, until the member is removed.
//!
//! Invariants:
//! - The task records what a member's first session came to (open, or why
//!   not) before it forwards anything that could wait for a reader, so
//!   `PoolBuilder::connect` never waits on a stream nobody reads yet.
//! - A removed member's session is closed and its stream read to the end,
//!   so its `Closed` (and every event before it) is forwarded before
//!   `Removed`. The slot is marked removed as soon as the session has
//!   closed, before those events wait for a reader.
//! - The slot's client is the live session's handle while it runs and
//!   `None` otherwise, so balancing never picks an ended session.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use rand::rngs::{StdRng, SysRng};
use rand::SeedableRng;
use tokio::sync::Notify;
use wslink_core::{BackoffConfig, CloseCode, Restarts, SessionEvent};

use super::events::{MemberEvents, Merged, PoolEvent};
use crate::builder::Builder;
use crate::client::{Client, Events};
use crate::error::Error;
use crate::runtime::Runtime;

/// Makes member `index`'s builder; called for every start and restart.
pub(crate) type MakeFn<R> = Arc<dyn Fn(usize) -> Result<Builder<R>, Error> + Send + Sync>;

/// What a member's first session came to, for `connect`.
pub(crate) enum FirstOutcome {
    Waiting,
    Opened,
    Failed(Error),
    /// Taken by `connect` (a failure is handed over once).
    Reported,
}

/// One member as the pool handle and the member task both see it.
pub(crate) struct Slot {
    /// The live session's handle, while one runs.
    pub(crate) client: Option<Client>,
    /// Set once the member is to leave the pool.
    pub(crate) stopping: bool,
    /// The member task has ended: the member is gone.
    pub(crate) removed: bool,
    pub(crate) first: FirstOutcome,
    /// Wakes the member task when `stopping` is set (keeps a permit if it is busy).
    pub(crate) stop: Arc<Notify>,
}

/// The state shared by the pool's handles and its member tasks.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) slots: Mutex<Vec<Slot>>,
    /// Notified whenever a slot's first outcome or removal changes.
    pub(crate) changed: Notify,
}

impl Shared {
    pub(crate) fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        // Nothing panics while holding this lock; if something did, the list is still whole.
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a slot for a new member; returns its index.
    pub(crate) fn add(&self) -> usize {
        let mut slots = self.slots();
        slots.push(Slot {
            client: None,
            stopping: false,
            removed: false,
            first: FirstOutcome::Waiting,
            stop: Arc::new(Notify::new()),
        });
        slots.len() - 1
    }

    /// Asks member `index` to leave; false if it is already leaving or gone.
    pub(crate) fn stop(&self, index: usize) -> bool {
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(index).filter(|s| !s.stopping) else { return false };
        slot.stopping = true;
        slot.stop.notify_one();
        true
    }

    fn update(&self, index: usize, f: impl FnOnce(&mut Slot)) {
        if let Some(slot) = self.slots().get_mut(index) {
            f(slot);
        }
        self.changed.notify_waiters();
    }

    fn stopping(&self, index: usize) -> bool {
        self.slots().get(index).is_none_or(|s| s.stopping)
    }

    /// Records the first session's outcome, if not recorded yet.
    fn first(&self, index: usize, outcome: FirstOutcome) {
        self.update(index, |slot| {
            if matches!(slot.first, FirstOutcome::Waiting) {
                slot.first = outcome;
            }
        });
    }
}

/// What a member task needs: its place, how to build it, where events go.
pub(crate) struct Member<R: Runtime> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) index: usize,
    pub(crate) make: MakeFn<R>,
    pub(crate) mode: MemberEvents,
    pub(crate) merged: Option<Merged>,
}

impl<R: Runtime> Member<R> {
    /// Supervises the member until it is removed.
    pub(crate) async fn run(self) {
        let Member { shared, index, make, mode, merged } = self;
        let task = Task { shared, index, mode, out: Outgoing { merged, outbox: Vec::new(), sending: None } };
        task.run::<R>(make).await;
    }
}

/// A running member task.
struct Task {
    shared: Arc<Shared>,
    index: usize,
    mode: MemberEvents,
    out: Outgoing,
}

impl Task {
    async fn run<R: Runtime>(mut self, make: MakeFn<R>) {
        let stop = self.shared.slots().get(self.index).map(|s| s.stop.clone()).unwrap_or_default();
        // Only the restart jitter draws from this; a seed from the index will do if the OS fails us.
        let mut rng = StdRng::try_from_rng(&mut SysRng).unwrap_or_else(|_| StdRng::seed_from_u64(self.index as u64));
        let mut restarts: Option<Restarts> = None;
        while !self.shared.stopping(self.index) {
            let count = restarts.as_ref().map_or(0, Restarts::restarts);
            match make(self.index).and_then(|b| {
                let backoff = b.backoff_config();
                b.start().map(|(client, events)| (client, events, backoff))
            }) {
                Ok((client, events, backoff)) => {
                    let schedule = restarts.get_or_insert_with(|| Restarts::new(backoff));
                    self.shared.update(self.index, |slot| slot.client = Some(client.clone()));
                    self.out.outbox.push(PoolEvent::Started { index: self.index, restarts: count });
                    self.follow::<R>(client, events, schedule, &stop).await;
                    self.shared.update(self.index, |slot| slot.client = None);
                }
                Err(error) => {
                    self.out.outbox.push(PoolEvent::StartFailed { index: self.index, error: error.to_string() });
                    self.shared.first(self.index, FirstOutcome::Failed(error));
                    restarts.get_or_insert_with(|| Restarts::new(BackoffConfig::default()));
                }
            }
            if self.shared.stopping(self.index) {
                break;
            }
            let Some(schedule) = restarts.as_mut() else { break };
            let delay = schedule.ended(R::now(), &mut rng);
            self.out.outbox.push(PoolEvent::Restarting { index: self.index, delay, restarts: schedule.restarts() });
            // A delay past what the clock holds waits for removal only.
            let timer = R::now().checked_add(delay).map(R::timer);
            let mut timer = pin!(timer);
            let mut stopped = pin!(stop.notified());
            let out = &mut self.out;
            poll_fn(|cx| {
                // Deliveries go on while waiting, but do not hold the restart up.
                let _ = out.poll_flush(cx, false);
                if stopped.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                match timer.as_mut().as_pin_mut() {
                    Some(t) => t.poll(cx).map(|_| ()),
                    None => Poll::Pending,
                }
            })
            .await;
        }
        self.finish();
        self.out.outbox.push(PoolEvent::Removed { index: self.index });
        poll_fn(|cx| self.out.poll_flush(cx, false)).await;
    }

    /// Forwards one session's events until its stream ends; closes the
    /// session when the member is asked to leave. Takes a batch from the
    /// session only once the last one is on its way, so an unread pool
    /// stream pauses the member's reading.
    async fn follow<R: Runtime>(&mut self, client: Client, mut events: Events, schedule: &mut Restarts, stop: &Notify) {
        let mut stopped = pin!(stop.notified());
        let mut closing: Option<Pin<Box<dyn Future<Output = ()> + Send>>> = None;
        let mut asked_to_stop = false;
        loop {
            let hold = self.first_unknown();
            let batch = poll_fn(|cx| {
                if !asked_to_stop && stopped.as_mut().poll(cx).is_ready() {
                    asked_to_stop = true;
                    let client = client.clone();
                    closing = Some(Box::pin(async move {
                        let _ = client.close(CloseCode::Normal, "removed from the pool").await;
                    }));
                }
                // `close` returns once the session has closed, even with its
                // last events still unread: the member is gone then.
                if closing.as_mut().is_some_and(|close| close.as_mut().poll(cx).is_ready()) {
                    closing = None;
                    self.finish();
                }
                if self.out.poll_flush(cx, hold).is_pending() {
                    return Poll::Pending;
                }
                events.poll_batch(cx)
            })
            .await;
            let Some(batch) = batch else { break };
            for event in batch {
                match &event {
                    SessionEvent::Connected { .. } => {
                        schedule.opened(R::now());
                        self.shared.first(self.index, FirstOutcome::Opened);
                    }
                    SessionEvent::Disconnected { reason } => {
                        self.shared.first(self.index, FirstOutcome::Failed(Error::Connect(reason.clone())));
                    }
                    SessionEvent::Closed { reason } => {
                        self.shared.first(self.index, FirstOutcome::Failed(Error::Closed(reason.clone())));
                        if self.shared.stopping(self.index) {
                            self.finish();
                        }
                    }
                    _ => {}
                }
                if self.mode.keeps(&event) {
                    self.out.outbox.push(PoolEvent::Member { index: self.index, event });
                }
            }
        }
    }

    /// Whether the first session's outcome is still unknown: events are
    /// held until it is, as `connect` may be waiting on it with nobody reading yet.
    fn first_unknown(&self) -> bool {
        self.shared.slots().get(self.index).is_some_and(|s| matches!(s.first, FirstOutcome::Waiting))
    }

    /// Marks the member gone: its session has closed and none will follow.
    /// Before the last events are delivered, so that `remove` and `close`
    /// return even when nobody reads the stream.
    fn finish(&self) {
        self.shared.update(self.index, |slot| {
            slot.removed = true;
            slot.client = None;
        });
    }
}

/// The events on their way to the pool's stream.
struct Outgoing {
    /// `None` when discarding, or once the reader has gone.
    merged: Option<Merged>,
    outbox: Vec<PoolEvent>,
    /// The batch being handed over, waiting for room; true once delivered.
    sending: Option<Pin<Box<dyn Future<Output = bool> + Send>>>,
}

impl Outgoing {
    /// Hands the outbox on, unless `hold`; ready once nothing waits for room.
    fn poll_flush(&mut self, cx: &mut std::task::Context<'_>, hold: bool) -> Poll<()> {
        loop {
            if let Some(sending) = self.sending.as_mut() {
                let delivered = std::task::ready!(sending.as_mut().poll(cx));
                self.sending = None;
                if !delivered {
                    self.merged = None;
                }
            }
            let Some(merged) = self.merged.as_ref() else {
                self.outbox.clear();
                return Poll::Ready(());
            };
            if self.outbox.is_empty() || hold {
                return Poll::Ready(());
            }
            let (merged, batch) = (merged.clone(), std::mem::take(&mut self.outbox));
            self.sending = Some(Box::pin(async move { merged.send(batch).await.is_ok() }));
        }
    }
}
