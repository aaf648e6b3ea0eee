//! The wait at the end of a turn, and what is done with what ends it: the
//! timer moved to the session's deadline, the wait's futures built over
//! their parts of the state, and the wake handled.
//!
//! Invariants: the futures are polled in one fixed order, the deadline
//! first and reading last (reading is what a slow consumer pauses, and what
//! a flood never lets rest); each future borrows only its own part of the
//! state, and all are dropped before the wake is handled; the timer only
//! moves earlier, so an idle timeout that moves later at every read costs no
//! reset, and it stays set while a pause of reading hides the deadlines, so
//! their return costs none either.

use std::future::{pending, poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{Poll, Waker};
use std::time::Instant;

use crate::future::or;
use wslink_core::{ReadRoom, Session};

use super::actions::opened;
use super::commands::{execute, execute_queued, COMMAND_BURST};
use super::read::on_read;
use super::route::deliver;
use super::state::{Io, Routing};
use super::write::on_written;
use crate::channels::{DriverEnd, Gone};
use crate::command::Command;
use crate::runtime::Runtime;

/// What woke the driver.
pub(super) enum Wake<R: Runtime> {
    /// The session's deadline (or an earlier one the timer still holds).
    Deadline,
    /// A handle's command, or `None`: every handle is gone.
    Command(Option<Command>),
    /// The consumer took the last batch (or is gone).
    Room(Result<(), Gone>),
    /// With no batch waiting, the consumer went away.
    EventsClosed,
    /// A write that waited for room in the socket ended.
    Wrote(io::Result<usize>),
    /// The opening of a transport ended.
    Opened(io::Result<(R::Reader, R::Writer)>),
    /// A read ended: how many bytes went into the session's buffer.
    Read(io::Result<usize>),
    /// The consumer came back for more after taking the messages ahead of a violation.
    CaughtUp,
}

/// Moves the timer to the session's deadline when it is set later than
/// that, or not at all, and answers whether the wait awaits it; `set` is
/// where the timer is set (`None`: never, or it has fired). The timer only
/// moves earlier: firing before the session's deadline is harmless
/// (`handle_timeout` finds nothing due and the timer is set again), and it
/// spares a reset on every read while an idle timeout keeps moving later.
/// While the session has no deadline (reading paused for a slow consumer
/// hides the heartbeat's) the timer is not awaited but stays where it is, so
/// the deadline's return after each pause costs no reset: on smol a reset
/// timer is inserted into async-io's reactor again, which wakes the reactor
/// through an eventfd.
#[inline]
pub(super) fn arm_timer<R: Runtime>(session: &Session, timer: Pin<&mut R::Timer>, alarm: &mut Alarm) {
    let (reset, awaited) = timer_move(session.poll_timeout(), alarm.at);
    if let Some(deadline) = reset {
        R::reset(timer, deadline);
        *alarm = Alarm { at: Some(deadline), awaited, polled_by: None };
    }
    alarm.awaited = awaited;
    if !awaited {
        // A timer that fires while it is not awaited wakes a wait that does
        // not look at it: the first wait that awaits it again must poll it,
        // not trust the registration (see `wait`).
        alarm.polled_by = None;
    }
}

/// [`arm_timer`]'s decision, for the session's `deadline` and a timer `set`
/// where it is: where to move the timer, if anywhere, and whether to await it.
fn timer_move(deadline: Option<Instant>, set: Option<Instant>) -> (Option<Instant>, bool) {
    match (deadline, set) {
        (None, _) => (None, false),
        (Some(deadline), Some(at)) if at <= deadline => (None, true),
        (Some(deadline), _) => (Some(deadline), true),
    }
}

/// Where the timer is set, and the task it last registered: once the timer
/// has been polled by a task, it wakes that task when it fires, so until the
/// clock reaches it the wait need not poll it again (each poll of a runtime's
/// timer costs more than reading the clock).
#[derive(Default)]
pub(super) struct Alarm {
    /// The deadline the timer is set to (`None`: never, or it has fired).
    pub(super) at: Option<Instant>,
    /// Whether this wait awaits the timer (`false`: the session has no deadline).
    awaited: bool,
    /// The waker of the task that last polled the timer since it was set.
    polled_by: Option<Waker>,
}

/// Whether `waker` wakes the same task as `current`. `will_wake` alone
/// says no for tokio's `block_on`, which lends a waker whose vtable differs
/// from its clone's (seen by test: same data, other vtable), so the inline
/// client would poll the timer on every wake. The data pointer names what a
/// waker wakes (a task, an executor); a null one names nothing, as in a
/// no-op waker, and is taken as different.
fn same_task(waker: &Waker, current: &Waker) -> bool {
    waker.will_wake(current) || (!current.data().is_null() && waker.data() == current.data())
}

/// The wait's timer branch: the deadline, once the clock reaches it. A
/// struct rather than an `async` block, so that it adds three words to
/// every connection's task, not the block's captured copies.
struct AlarmWait<'a, R: Runtime> {
    timer: Pin<&'a mut R::Timer>,
    alarm: &'a mut Alarm,
    /// Whether this wait has been polled before (see `poll`).
    woken: bool,
}

impl<R: Runtime> Future for AlarmWait<'_, R> {
    type Output = Wake<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Wake<R>> {
        let this = self.get_mut();
        let Some(at) = this.alarm.at.filter(|_| this.alarm.awaited) else { return Poll::Pending };
        // On a wait's first poll nothing has woken the task yet: a timer that
        // fired meanwhile has woken it and the next poll looks. Noted on every
        // poll, not only when registered: the poll that registers the timer
        // is the first, and the timer's wake must then reach it.
        let first = !std::mem::replace(&mut this.woken, true);
        let registered = this.alarm.polled_by.as_ref().is_some_and(|w| same_task(w, cx.waker()));
        if registered && (first || R::now() < at) {
            return Poll::Pending;
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(Wake::Deadline),
            Poll::Pending => {
                this.alarm.polled_by = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The wait: the first of, in this order, the deadline (when awaited), a
/// command, room in the event stream, room to write, the transport
/// opening, bytes to read into `read_room` (when given: the consumer has
/// room), the consumer catching up (when `await_consumer`). Built here,
/// not as an `async fn`, so the task keeps only the futures themselves.
pub(super) fn wait<'a, R: Runtime>(
    io: &'a mut Io<R>,
    r: &Routing,
    channels: &'a DriverEnd,
    timer: Pin<&'a mut R::Timer>,
    alarm: &'a mut Alarm,
    read_room: Option<ReadRoom<'a>>,
    await_consumer: bool,
) -> impl Future<Output = Wake<R>> + 'a {
    let Io { opening, reader, writer, out, out_pos, .. } = io;
    let (commands_closed, events_closed, no_pending) =
        (r.commands_closed, r.events_closed, r.pending_events.is_empty());
    let timer = AlarmWait::<R> { timer, alarm, woken: false };
    let command = async move {
        if commands_closed {
            pending::<()>().await;
        }
        Wake::Command(poll_fn(|cx| channels.poll_command(cx)).await)
    };
    let room = async move {
        if no_pending {
            if events_closed {
                pending::<()>().await;
            }
            poll_fn(|cx| channels.poll_consumer_gone(cx)).await;
            return Wake::EventsClosed;
        }
        Wake::Room(poll_fn(|cx| channels.poll_room(cx)).await)
    };
    let write = async move {
        match (writer.as_mut(), out.front()) {
            (Some(w), Some(chunk)) => Wake::Wrote(R::write(w, &chunk[*out_pos..]).await),
            _ => pending().await,
        }
    };
    let open = async move {
        match opening.as_mut() {
            Some(opening) => Wake::Opened(opening.await),
            None => pending().await,
        }
    };
    let read = async move {
        match (reader.as_mut(), read_room) {
            (Some(reader), Some(room)) => Wake::Read(R::read_buf(reader, room).await),
            _ => pending().await,
        }
    };
    let caught_up = async move {
        if !await_consumer {
            pending::<()>().await;
        }
        poll_fn(|cx| channels.poll_caught_up(cx)).await;
        Wake::CaughtUp
    };
    or(timer, or(command, or(room, or(write, or(open, or(read, caught_up))))))
}

/// Handles what woke the driver, but the deadline, which the loop judges
/// with `judge_deadline` (it reads first, and that is awaited).
#[inline]
pub(super) fn handle_wake<R: Runtime>(
    wake: Wake<R>,
    session: &mut Session,
    io: &mut Io<R>,
    r: &mut Routing,
    channels: &DriverEnd,
) {
    match wake {
        Wake::Deadline => {}
        Wake::Command(Some(command)) => {
            let now = R::now();
            execute(session, r, command, now);
            execute_queued(session, r, channels, now, COMMAND_BURST - 1);
        }
        Wake::Command(None) => r.commands_closed = true,
        Wake::Room(Ok(())) => deliver(r, channels, session.is_busy()),
        Wake::Room(Err(Gone)) | Wake::EventsClosed => r.consumer_gone(),
        Wake::Wrote(result) => {
            io.write_blocked = false;
            on_written::<R>(session, io, result);
        }
        Wake::Opened(result) => opened::<R>(session, io, result),
        Wake::Read(result) => {
            on_read::<R>(session, result);
        }
        Wake::CaughtUp => {
            // What the consumer sent while taking the messages goes out
            // before the session acts on the violation behind them.
            execute_queued(session, r, channels, R::now(), COMMAND_BURST);
            r.release_fault = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::timer_move;
    use std::time::{Duration, Instant};

    #[test]
    fn the_timer_moves_only_earlier_and_stays_set_through_a_pause() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // First deadline: set; a later one (an idle timeout moved on by a read): left.
        assert_eq!(timer_move(Some(at(15)), None), (Some(at(15)), true));
        assert_eq!(timer_move(Some(at(16)), Some(at(15))), (None, true));
        // An earlier one: moved.
        assert_eq!(timer_move(Some(at(5)), Some(at(15))), (Some(at(5)), true));
        // Reading paused: no deadline, the timer not awaited and not touched ...
        assert_eq!(timer_move(None, Some(at(15))), (None, false));
        // ... and the deadline back after the pause, later by it: no reset.
        assert_eq!(timer_move(Some(at(17)), Some(at(15))), (None, true));
        // Once it has fired (`set` is `None`), the next deadline sets it again.
        assert_eq!(timer_move(Some(at(30)), None), (Some(at(30)), true));
    }
}
