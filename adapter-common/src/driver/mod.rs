//! The driver task: one loop per client that does what the session asks and
//! feeds it what happens. It decides nothing itself, and it is written once
//! for every runtime: the runtime only opens, reads, writes and sleeps.
//!
//! Every turn does the same steps, as quinn's driver does: carry out the
//! session's actions, route its events (to awaiting requests, or to the event
//! stream), write what is queued if the socket takes it at once, then wait
//! for the first of, in this order: the session's deadline, a command, room
//! in the event stream, room to write, the transport opening, bytes to read.
//! Reading comes last and is paused while `event_capacity` events or 256 KiB
//! of payload wait for the consumer, so a slow consumer slows the server
//! through TCP instead of growing memory here; the session hears of each
//! pause, so that its heartbeats do not take a paused link for a dead one.
//!
//! Two waits for the consumer keep what it is owed: a protocol violation read
//! behind messages is acted on only once the consumer has taken them and
//! come back for more (its answers go out before the close frame), and when
//! the session closes, the last writes, the shutdown and the server's end of
//! stream are awaited before the stream yields its last event, so a program
//! that exits when the stream ends loses nothing it wrote.
//!
//! The write side is bounded by the session's write budget: every write is
//! reported (`handle_written`), and while the budget has no room the
//! commands that would write (sends, requests, pings, subscriptions) wait
//! here, in order, so their callers wait, and posts are refused as `Full`;
//! the session ends a link whose transport takes nothing for `write_timeout`.
//!
//! Bytes already in the socket are read before deadlines are judged: when
//! the timer fires, whatever the socket holds is read first (within the
//! consumer's room), so a driver that was not polled for a while (an
//! `InlineClient` whose owner was busy) never takes a live link for dead.
//!
//! What the driver sees also goes to `telemetry` (each transport it opens,
//! each event, each pause of reading, and the session once a turn), which
//! turns it into spans and metrics; the driver decides nothing from it.
//!
//! A turn, as [`run_loop`] reads: [`release_held`] commands if the write
//! budget has room, carry out the session's [`actions`], [`route`] its
//! events, [`deliver`] them (or, once the session has closed, see it to
//! its [`session_end`]), [`close_if_abandoned`], [`write_at_once`], then
//! [`wait`] and [`handle_wake`] (or [`judge_deadline`]). Each step is in the
//! file of its idea: `actions.rs` (opening and closing transports),
//! `route.rs`, `commands.rs` and `held.rs` (the handles' commands),
//! `write.rs`, `read.rs`, `wait.rs`, `closing.rs`; `state.rs` holds what
//! the steps work on.
//!
//! Memory: an idle client is mostly this task, so its future is kept
//! small. It is an `async` block over the driver's parts, not an `async fn`
//! (which would keep each argument twice), the session is boxed, and what
//! only some clients use is boxed and made on first use (`state.rs`). The
//! steps take `&mut` to the parts they need, so they add nothing to the
//! task; the wait's futures are built by a plain function over their parts
//! of the state, so the task holds them and nothing more.

mod actions;
mod closing;
mod commands;
mod held;
mod read;
mod route;
mod state;
mod wait;
mod write;

use std::future::Future;

use wslink_core::{Session, SessionState};

use self::actions::actions;
use self::closing::{close_if_abandoned, closing, session_end};
use self::commands::release_held;
use self::read::{account_pause, judge_deadline};
use self::route::{deliver, route};
use self::state::{Io, Routing};
use self::wait::{arm_timer, handle_wake, wait, Alarm, Wake};
use self::write::write_at_once;
use crate::channels::DriverEnd;
use crate::filter::EventFilter;
use crate::runtime::{Runtime, Spawner};
use crate::telemetry::Telemetry;

pub(crate) use self::actions::Opener;

/// Everything the driver task owns.
pub(crate) struct Driver<R: Runtime> {
    /// Boxed: the task's future would otherwise hold the session twice (as
    /// the captured driver and as the loop's local), 4 KB per idle connection.
    pub(crate) session: Box<Session>,
    /// Commands in, event batches out, the state for the handles.
    pub(crate) channels: DriverEnd,
    /// Events the consumer may have waiting before reading pauses.
    pub(crate) event_capacity: usize,
    /// What opening a transport needs: TLS, the resolver, the proxy.
    pub(crate) opener: Opener<R>,
    /// Where the closing connection's flush task runs (the runtime's executor if `None`).
    pub(crate) spawner: Option<Spawner>,
    /// Spans per attempt and, with the `metrics` feature, the pushed metrics.
    pub(crate) telemetry: Telemetry,
    /// Which events go to the stream.
    pub(crate) filter: EventFilter,
    /// `connect` waits for the first outcome: store it for it.
    pub(crate) report_first: bool,
}

impl<R: Runtime> Driver<R> {
    /// The driver's loop. Not an `async fn`: that would keep `self` in the
    /// future beside the fields moved out of it (104 bytes per client).
    pub(crate) fn run(self) -> impl Future<Output = ()> + Send {
        let Driver { session, channels, event_capacity, opener, spawner, telemetry, filter, report_first } = self;
        let routing = Routing { keep: filter, first_pending: report_first, ..Routing::default() };
        run_loop::<R>(session, channels, event_capacity, opener, spawner, telemetry, routing)
    }
}

/// Whether a write just reported calls for another turn before the wait:
/// the session has something to give (the write made room for a held pong
/// or queued messages, or the link failed), held commands have room now,
/// or the write budget's fullness changed for the handles. Usually not: a request/response link then takes
/// one turn per message instead of two.
fn turn_again(session: &Session, r: &Routing) -> bool {
    let room = session.has_write_room();
    session.has_output() || (!r.held.is_empty() && room) || (!r.held.is_empty() || !room) != r.write_full
}

/// The loop of [`Driver::run`], its parts as arguments: a turn is the
/// steps below, in this order, until the session has closed and the
/// consumer has every event. An `async` block, not an `async fn`, which
/// would keep a second copy of its arguments.
#[allow(clippy::manual_async_fn, reason = "an async fn keeps its arguments twice")]
fn run_loop<R: Runtime>(
    mut session: Box<Session>,
    channels: DriverEnd,
    event_capacity: usize,
    opener: Opener<R>,
    spawner: Option<Spawner>,
    mut telemetry: Telemetry,
    mut r: Routing,
) -> impl Future<Output = ()> + Send {
    async move {
        let mut io: Io<R> = Io::new();
        // One timer for the task's life, moved as the session's deadline moves.
        let mut timer = std::pin::pin!(R::timer(R::now()));
        let mut alarm = Alarm::default();
        loop {
            release_held::<R>(&mut session, &mut r, &channels);
            actions::<R>(&mut session, &mut io, &opener, spawner.as_ref(), &mut telemetry);
            route(&mut session, &mut r, &channels, &mut telemetry);
            // Once a turn (a flood's figures go per read, not per message),
            // and before the events go out: whoever sees an event sees the
            // figures that led to it.
            telemetry.turn(&session, r.waiting.len());
            if session.state() != SessionState::Closed {
                deliver(&mut r, &channels, session.is_busy());
            } else if session_end(&mut io, &mut r, &channels).await {
                break;
            }
            if close_if_abandoned::<R>(&mut session, &mut r) {
                continue;
            }
            if !io.write_blocked && write_at_once::<R>(&mut session, &mut io).await && turn_again(&session, &r) {
                continue;
            }
            let can_read = io.reader.is_some() && r.consumer_has_room(event_capacity);
            account_pause::<R>(&mut session, &mut r, &mut telemetry, io.reader.is_some() && !can_read);
            let await_consumer = r.awaits_consumer(&session);
            arm_timer::<R>(&session, timer.as_mut(), &mut alarm);
            // What this turn recorded goes to the recorder before the wait.
            session.flush_recording();
            // Reads go straight into the session's input buffer.
            let read_room = if can_read { session.next_read() } else { None };
            let wake = wait::<R>(&mut io, &r, &channels, timer.as_mut(), &mut alarm, read_room, await_consumer);
            match wake.await {
                Wake::Deadline => {
                    alarm = Alarm::default();
                    judge_deadline::<R>(&mut session, &mut io, &mut r, &channels, &mut telemetry, event_capacity).await;
                }
                wake => handle_wake::<R>(wake, &mut session, &mut io, &mut r, &channels),
            }
        }
        if io.writer.is_some() {
            // The session closed without asking (it always asks): close all the same.
            closing::<R>(&mut io, None).await;
        }
    }
}
