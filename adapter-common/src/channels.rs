//! The channels between the handles and the driver task, sized for what an
//! idle client costs.
//!
//! tokio's bounded `mpsc` allocates its channel state and a first block of
//! 32 slots with every channel: 2.3 KB per client for the commands and the
//! events, used or not, a third of an idle client. Here both directions and
//! the session state share one allocation of about 200 bytes, and the
//! command queue grows only when commands are sent.
//!
//! - Commands: any number of [`CommandSender`]s (one per `Client` clone) and
//!   the driver. At most `COMMAND_CAPACITY` wait; then senders wait for room.
//!   A command is handed over whole or not at all, so a dropped send future
//!   leaves nothing half-sent.
//! - Events: the driver hands over one batch at a time, the next only once
//!   [`EventReceiver`] took the last (the driver collects the next meanwhile
//!   and stops reading when it holds too much, so a slow consumer slows the
//!   server through TCP).
//!
//! - The write side: the driver says whether the session's write budget has
//!   room; while it has none, posts (`try_send_*`) are refused as `Full`
//!   rather than queued, since nothing would take them, and the `Sink`'s
//!   `poll_ready` waits for room (woken when the driver says there is).
//! - The first outcome: when `connect` waits for it, the driver stores how
//!   the first connection attempt ended (open, failed, or the session
//!   closed), for `connect` to take without taking events from the stream.
//!
//! Invariants: every waker is stored under the lock that guards the
//! condition it waits for, so no wake-up is lost; the end that goes away
//! marks it under that lock and wakes the other side; wakers are woken and
//! values dropped after the lock is released.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use wslink_core::{CloseReason, DisconnectReason, Message, SessionEvent};

use crate::command::Command;
use crate::reply::TrySendError;

/// Most commands waiting for the driver before senders wait for room.
const COMMAND_CAPACITY: usize = 256;

/// The other end is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;

/// Why a post cannot be handed over at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostClosed {
    /// The session has closed: posts are refused from then on.
    Closed,
    /// The driver has ended.
    Gone,
}

/// Why a batch was not handed over.
#[derive(Debug, PartialEq)]
pub(crate) enum NotDelivered {
    /// The consumer has not taken the last batch yet.
    Full(Vec<SessionEvent>),
    /// The consumer is gone.
    Gone,
}

/// The commands waiting for the driver, and who waits on them.
#[derive(Default)]
struct CommandQueue {
    queue: VecDeque<Command>,
    senders: usize,
    driver_gone: bool,
    /// Set once the session closed: posts fail from then on, so that
    /// every message it accepted was seen by the driver before `Closed`.
    posts_closed: bool,
    driver: Option<Waker>,
    /// Senders waiting for room.
    blocked: Vec<Waker>,
    /// Sinks waiting for room in the write budget.
    budget: Vec<Waker>,
}

/// How the first connection attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FirstOutcome {
    /// It opened (`Connected`).
    Connected,
    /// It failed (`Disconnected` before any `Connected`).
    Failed(DisconnectReason),
    /// The session closed first.
    Closed(CloseReason),
}

/// The one event batch in flight, and who waits on it.
#[derive(Default)]
struct EventSlot {
    batch: Option<Vec<SessionEvent>>,
    /// A batch's buffer the consumer emptied, for the driver's next batch
    /// (the driver keeps it only while the link is busy, and frees it at its timer).
    spare: Option<Vec<SessionEvent>>,
    driver_gone: bool,
    consumer_gone: bool,
    /// The driver waiting for the consumer to take the batch.
    room: Option<Waker>,
    /// The driver waiting only to hear that the consumer left; kept apart
    /// from `room` so that taking a batch does not wake a driver with
    /// nothing more to hand over.
    gone: Option<Waker>,
    consumer: Option<Waker>,
    /// The consumer took every event handed over and waits for more.
    consumer_waiting: bool,
    /// The driver waiting for the consumer to take everything and come back.
    caught_up: Option<Waker>,
    /// How the first attempt ended, once it did (boxed: most of a client's
    /// life it is `None`, and a reason is large).
    first: Option<Box<FirstOutcome>>,
    /// `connect` waiting for the first outcome.
    first_waiter: Option<Waker>,
}

struct Shared {
    /// The session's state as the driver last saw it (`client::encode_state`).
    state: AtomicU8,
    /// The session's write budget has no room: posts are refused as `Full`.
    write_full: AtomicBool,
    commands: Mutex<CommandQueue>,
    events: Mutex<EventSlot>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here panics while holding a lock; if something did, the data is still whole.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Adds `waker` to `list` unless one there already wakes the same task.
fn push_waker(list: &mut Vec<Waker>, waker: &Waker) {
    if !list.iter().any(|w| w.will_wake(waker)) {
        list.push(waker.clone());
    }
}

/// Keeps `waker` in `slot` unless the one there already wakes the same task.
fn store(slot: &mut Option<Waker>, waker: &Waker) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

/// Wakes the driver for a command just queued, after releasing the lock.
fn wake_driver(mut c: MutexGuard<'_, CommandQueue>) {
    let driver = c.driver.take();
    drop(c);
    wake(driver);
}

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// Creates the channels: the handles' sender, the driver's end and the event stream's end.
pub(crate) fn channels(state: u8) -> (CommandSender, DriverEnd, EventReceiver) {
    let shared = Arc::new(Shared {
        state: AtomicU8::new(state),
        write_full: AtomicBool::new(false),
        commands: Mutex::new(CommandQueue { senders: 1, ..CommandQueue::default() }),
        events: Mutex::new(EventSlot::default()),
    });
    (CommandSender { shared: shared.clone() }, DriverEnd { shared: shared.clone() }, EventReceiver { shared })
}

/// A handle's end: sends commands, reads the state.
pub(crate) struct CommandSender {
    shared: Arc<Shared>,
}

impl CommandSender {
    /// Hands `command` to the driver, waiting while the queue is full.
    pub(crate) async fn send(&self, command: Command) -> Result<(), Gone> {
        let mut command = Some(command);
        poll_fn(|cx| self.poll_send(cx, &mut command)).await
    }

    /// Hands the command in `command` (taken from it) to the driver when
    /// the queue has room; pending while it is full.
    pub(crate) fn poll_send(&self, cx: &mut Context<'_>, command: &mut Option<Command>) -> Poll<Result<(), Gone>> {
        let mut c = lock(&self.shared.commands);
        if c.driver_gone {
            return Poll::Ready(Err(Gone));
        }
        if c.queue.len() >= COMMAND_CAPACITY {
            push_waker(&mut c.blocked, cx.waker());
            return Poll::Pending;
        }
        c.queue.extend(command.take());
        wake_driver(c);
        Poll::Ready(Ok(()))
    }

    /// Ready once a post would be taken now: the command queue and the
    /// session's write budget have room (woken when they do, never polled
    /// in a loop); `Closed` once the session has closed or the driver is
    /// gone. A reservation in the loose sense: another handle may take the
    /// room meanwhile, and [`post`](Self::post) hands the message over all
    /// the same, one past the bound at most per handle.
    pub(crate) fn poll_post_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), PostClosed>> {
        let mut c = lock(&self.shared.commands);
        if c.driver_gone {
            return Poll::Ready(Err(PostClosed::Gone));
        }
        if c.posts_closed {
            return Poll::Ready(Err(PostClosed::Closed));
        }
        if c.queue.len() >= COMMAND_CAPACITY {
            push_waker(&mut c.blocked, cx.waker());
            return Poll::Pending;
        }
        // Read under the lock that `set_write_full` takes to wake: no wake-up is lost.
        if self.shared.write_full.load(Ordering::Acquire) {
            push_waker(&mut c.budget, cx.waker());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    /// Hands `message` to the driver as a [`Command::Post`], room or not
    /// (after [`poll_post_ready`](Self::poll_post_ready)).
    pub(crate) fn post(&self, message: Message) -> Result<(), PostClosed> {
        let mut c = lock(&self.shared.commands);
        if c.driver_gone {
            return Err(PostClosed::Gone);
        }
        if c.posts_closed {
            return Err(PostClosed::Closed);
        }
        c.queue.push_back(Command::Post(message));
        wake_driver(c);
        Ok(())
    }

    /// Hands `message` to the driver as a [`Command::Post`] if there is room
    /// now (in the command queue, and in the session's write budget),
    /// without waiting.
    pub(crate) fn try_post(&self, message: Message) -> Result<(), TrySendError> {
        self.try_post_waking(message, true)
    }

    /// [`try_post`](Self::try_post) without waking the driver, for an
    /// `InlineClient`, which drives the connection itself the next time it
    /// is awaited: waking it from its own poll would only make the runtime
    /// poll it once more for nothing (on tokio, an `epoll_wait` more per
    /// round trip).
    pub(crate) fn try_post_quietly(&self, message: Message) -> Result<(), TrySendError> {
        self.try_post_waking(message, false)
    }

    fn try_post_waking(&self, message: Message, wake: bool) -> Result<(), TrySendError> {
        let mut c = lock(&self.shared.commands);
        if c.driver_gone || c.posts_closed {
            return Err(TrySendError::Closed(message));
        }
        if c.queue.len() >= COMMAND_CAPACITY || self.shared.write_full.load(Ordering::Acquire) {
            return Err(TrySendError::Full(message));
        }
        c.queue.push_back(Command::Post(message));
        if wake {
            wake_driver(c);
        }
        Ok(())
    }

    /// The state the driver last stored.
    pub(crate) fn state(&self) -> u8 {
        self.shared.state.load(Ordering::Acquire)
    }

    /// Ready with how the first connection attempt ended (taken: it is
    /// told once); `None` if the driver ended without saying.
    pub(crate) fn poll_first_outcome(&self, cx: &mut Context<'_>) -> Poll<Option<FirstOutcome>> {
        let mut e = lock(&self.shared.events);
        if let Some(first) = e.first.take() {
            return Poll::Ready(Some(*first));
        }
        if e.driver_gone {
            return Poll::Ready(None);
        }
        store(&mut e.first_waiter, cx.waker());
        Poll::Pending
    }
}

impl Clone for CommandSender {
    fn clone(&self) -> Self {
        lock(&self.shared.commands).senders += 1;
        Self { shared: self.shared.clone() }
    }
}

impl Drop for CommandSender {
    fn drop(&mut self) {
        let mut c = lock(&self.shared.commands);
        c.senders -= 1;
        let driver = if c.senders == 0 { c.driver.take() } else { None };
        drop(c);
        wake(driver);
    }
}

/// The driver's end: receives commands, hands over event batches, stores the state.
pub(crate) struct DriverEnd {
    shared: Arc<Shared>,
}

impl DriverEnd {
    /// The next command; `None` once every sender is gone and the queue is empty.
    pub(crate) fn poll_command(&self, cx: &mut Context<'_>) -> Poll<Option<Command>> {
        let mut c = lock(&self.shared.commands);
        if c.queue.is_empty() {
            if c.senders == 0 {
                return Poll::Ready(None);
            }
            store(&mut c.driver, cx.waker());
            return Poll::Pending;
        }
        drop(c);
        // Only the driver takes commands, so the queue still holds this one.
        Poll::Ready(self.try_command())
    }

    /// The next command if one waits (no waker is stored).
    pub(crate) fn try_command(&self) -> Option<Command> {
        let mut c = lock(&self.shared.commands);
        let command = c.queue.pop_front()?;
        let blocked = std::mem::take(&mut c.blocked);
        drop(c);
        blocked.into_iter().for_each(Waker::wake);
        Some(command)
    }

    /// Refuses further posts and takes the messages of those still queued
    /// (the session has closed; the driver reports them refused).
    pub(crate) fn close_posts(&self) -> Vec<Message> {
        let mut c = lock(&self.shared.commands);
        c.posts_closed = true;
        // Sinks waiting for the budget hear of the close.
        let budget = std::mem::take(&mut c.budget);
        if !c.queue.iter().any(|command| matches!(command, Command::Post(_))) {
            drop(c);
            budget.into_iter().for_each(Waker::wake);
            return Vec::new();
        }
        let mut posts = Vec::new();
        for command in std::mem::take(&mut c.queue) {
            match command {
                Command::Post(message) => posts.push(message),
                other => c.queue.push_back(other),
            }
        }
        // The queue has room now: senders waiting for it go on.
        let blocked = std::mem::take(&mut c.blocked);
        drop(c);
        blocked.into_iter().chain(budget).for_each(Waker::wake);
        posts
    }

    /// Ready once the consumer took the last batch (`Ok`) or is gone (`Err`).
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<Result<(), Gone>> {
        let mut e = lock(&self.shared.events);
        if e.consumer_gone {
            return Poll::Ready(Err(Gone));
        }
        if e.batch.is_none() {
            return Poll::Ready(Ok(()));
        }
        store(&mut e.room, cx.waker());
        Poll::Pending
    }

    /// Ready once the consumer is gone.
    pub(crate) fn poll_consumer_gone(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut e = lock(&self.shared.events);
        if e.consumer_gone {
            return Poll::Ready(());
        }
        store(&mut e.gone, cx.waker());
        Poll::Pending
    }

    /// Hands `batch` to the consumer if it took the last one.
    #[cfg(test)]
    pub(crate) fn try_deliver(&self, batch: Vec<SessionEvent>) -> Result<(), NotDelivered> {
        self.deliver_reusing(batch).map(drop)
    }

    /// Hands `batch` to the consumer if it took the last one, and takes
    /// back the buffer of a batch it emptied, if it gave one back.
    pub(crate) fn deliver_reusing(&self, batch: Vec<SessionEvent>) -> Result<Option<Vec<SessionEvent>>, NotDelivered> {
        let mut e = lock(&self.shared.events);
        if e.consumer_gone {
            return Err(NotDelivered::Gone);
        }
        if e.batch.is_some() {
            return Err(NotDelivered::Full(batch));
        }
        e.batch = Some(batch);
        e.consumer_waiting = false;
        let consumer = e.consumer.take();
        let spare = e.spare.take();
        drop(e);
        wake(consumer);
        Ok(spare)
    }

    /// Frees a batch buffer the consumer gave back (the link fell idle).
    pub(crate) fn drop_spare(&self) {
        let spare = lock(&self.shared.events).spare.take();
        drop(spare);
    }

    /// Ready once the consumer took every batch and asked for more (it has
    /// handled every event handed over so far), or is gone.
    pub(crate) fn poll_caught_up(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut e = lock(&self.shared.events);
        if e.consumer_gone || (e.batch.is_none() && e.consumer_waiting) {
            return Poll::Ready(());
        }
        store(&mut e.caught_up, cx.waker());
        Poll::Pending
    }

    /// Stores the session's state for the handles.
    pub(crate) fn set_state(&self, state: u8) {
        self.shared.state.store(state, Ordering::Release);
    }

    /// Stores whether the session's write budget is used up (posts are then
    /// refused as `Full`); when it has room again, wakes the sinks waiting for it.
    pub(crate) fn set_write_full(&self, full: bool) {
        self.shared.write_full.store(full, Ordering::Release);
        if !full {
            let budget = std::mem::take(&mut lock(&self.shared.commands).budget);
            budget.into_iter().for_each(Waker::wake);
        }
    }

    /// Stores how the first connection attempt ended, and wakes `connect`.
    pub(crate) fn set_first_outcome(&self, outcome: FirstOutcome) {
        let mut e = lock(&self.shared.events);
        e.first = Some(Box::new(outcome));
        let waiter = e.first_waiter.take();
        drop(e);
        wake(waiter);
    }
}

impl Drop for DriverEnd {
    fn drop(&mut self) {
        let mut c = lock(&self.shared.commands);
        c.driver_gone = true;
        let (queued, blocked) = (std::mem::take(&mut c.queue), std::mem::take(&mut c.blocked));
        let budget = std::mem::take(&mut c.budget);
        drop(c);
        // Dropping a queued command drops its reply sender: its caller hears `Shutdown`.
        drop(queued);
        blocked.into_iter().chain(budget).for_each(Waker::wake);
        let mut e = lock(&self.shared.events);
        e.driver_gone = true;
        let (consumer, first_waiter) = (e.consumer.take(), e.first_waiter.take());
        drop(e);
        wake(consumer);
        wake(first_waiter);
    }
}

/// The event stream's end.
pub(crate) struct EventReceiver {
    shared: Arc<Shared>,
}

impl EventReceiver {
    /// The next batch; `None` once the driver is gone and every batch was taken.
    #[cfg(test)]
    pub(crate) fn poll_batch(&self, cx: &mut Context<'_>) -> Poll<Option<Vec<SessionEvent>>> {
        self.poll_batch_giving(cx, Vec::new())
    }

    /// Forgets the waker the consumer left when it last found nothing: an
    /// `InlineClient` drives the connection in its own poll and looks for
    /// events right after, so a batch handed over meanwhile need not wake
    /// it (the wake would only make the runtime poll it once more, on
    /// tokio an `epoll_wait` more per round trip). It leaves its waker
    /// again if it then finds nothing.
    pub(crate) fn forget_consumer(&self) {
        let waker = lock(&self.shared.events).consumer.take();
        drop(waker);
    }

    /// [`poll_batch`](Self::poll_batch), giving back `spent`, the emptied
    /// buffer of the last batch, for the driver to fill again.
    pub(crate) fn poll_batch_giving(
        &self,
        cx: &mut Context<'_>,
        spent: Vec<SessionEvent>,
    ) -> Poll<Option<Vec<SessionEvent>>> {
        let mut e = lock(&self.shared.events);
        if spent.capacity() > 0 && spent.is_empty() && e.spare.is_none() && !e.driver_gone {
            e.spare = Some(spent);
        }
        if let Some(batch) = e.batch.take() {
            let driver = e.room.take();
            drop(e);
            wake(driver);
            return Poll::Ready(Some(batch));
        }
        if e.driver_gone {
            return Poll::Ready(None);
        }
        store(&mut e.consumer, cx.waker());
        e.consumer_waiting = true;
        let driver = e.caught_up.take();
        drop(e);
        wake(driver);
        Poll::Pending
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        let mut e = lock(&self.shared.events);
        e.consumer_gone = true;
        let (batch, room, gone, caught_up) = (e.batch.take(), e.room.take(), e.gone.take(), e.caught_up.take());
        // One wake-up for a driver that waits on several.
        let gone = gone.filter(|g| !room.as_ref().is_some_and(|r| r.will_wake(g)));
        let caught_up =
            caught_up.filter(|c| ![&room, &gone].iter().any(|w| w.as_ref().is_some_and(|w| w.will_wake(c))));
        drop(e);
        drop(batch);
        wake(room);
        wake(gone);
        wake(caught_up);
    }
}

#[cfg(test)]
mod tests;
