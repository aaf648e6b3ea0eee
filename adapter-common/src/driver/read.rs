//! The read path's bookkeeping: what a read's outcome tells the session,
//! the pauses of reading while the consumer is behind, and the reads of
//! what already waits in the socket before a deadline is judged.
//!
//! Invariants: the session hears of every pause of reading when it starts
//! and when it ends, so that its heartbeats do not take a paused link for a
//! dead one; the clock is read only when a pause starts or ends; a deadline
//! is judged only after the socket's waiting bytes are read (within the
//! consumer's room and [`READS_BEFORE_DEADLINE`] reads).

use std::io;

use crate::future::poll_once;
use wslink_core::Session;

use super::route::route;
use super::state::{Io, Routing};
use crate::channels::DriverEnd;
use crate::runtime::Runtime;
use crate::telemetry::Telemetry;

/// Most reads of what already waits in the socket before a deadline is
/// judged: a peer that floods control frames (which fill no event queue)
/// cannot hold the deadlines off.
const READS_BEFORE_DEADLINE: usize = 16;

/// Hands a read's outcome to the session: bytes, the end of stream, or an
/// error. Returns whether the link may still be read.
#[inline]
pub(super) fn on_read<R: Runtime>(session: &mut Session, result: io::Result<usize>) -> bool {
    match result {
        Ok(0) => session.handle_eof(R::now()),
        Ok(n) => {
            session.handle_read(n, R::now());
            return true;
        }
        Err(e) => session.handle_transport_error(e.kind(), &e.to_string(), R::now()),
    }
    false
}

/// Judges the deadline that woke the driver, once what already waits in
/// the socket is read, without waiting: at most `READS_BEFORE_DEADLINE`
/// reads, and none past the consumer's room (the pause is then accounted,
/// so the session freezes the deadlines that wait on the peer). A driver
/// that was not polled for a while (an `InlineClient` whose owner was busy)
/// thus finds the link's data, not a silence.
pub(super) async fn judge_deadline<R: Runtime>(
    session: &mut Session,
    io: &mut Io<R>,
    r: &mut Routing,
    channels: &DriverEnd,
    telemetry: &mut Telemetry,
    event_capacity: usize,
) {
    'read: {
        let mut can_read = false;
        for _ in 0..READS_BEFORE_DEADLINE {
            route(session, r, channels, telemetry);
            can_read = r.consumer_has_room(event_capacity);
            let (Some(reader), true) = (io.reader.as_mut(), can_read) else { break };
            let Some(room) = session.next_read() else { break };
            match poll_once(R::read_buf(reader, room)).await {
                Some(result) => {
                    if !on_read::<R>(session, result) {
                        // The link has ended: nothing more to read, no pause to account.
                        break 'read;
                    }
                }
                None => {
                    account_pause::<R>(session, r, telemetry, false);
                    break 'read;
                }
            }
        }
        account_pause::<R>(session, r, telemetry, io.reader.is_some() && !can_read);
    }
    session.handle_timeout(R::now());
    if !session.is_busy() {
        // The session gave back what its busy link kept (its timer trims it); so does the driver.
        io.trim();
        channels.drop_spare();
    }
}

/// Starts or ends a pause of reading, and tells the session and the
/// telemetry (now: the driver may sleep through the pause); the clock is
/// read only when one does.
pub(super) fn account_pause<R: Runtime>(
    session: &mut Session,
    r: &mut Routing,
    telemetry: &mut Telemetry,
    paused: bool,
) {
    match (paused, r.paused_since) {
        (true, None) => {
            let now = R::now();
            r.paused_since = Some(now);
            session.handle_reading_paused(now);
            telemetry.pause(None);
        }
        (false, Some(since)) => {
            let now = R::now();
            let pause = now.saturating_duration_since(since);
            r.paused_total += pause;
            r.paused_since = None;
            session.handle_reading_resumed(now);
            telemetry.pause(Some(pause));
        }
        _ => {}
    }
}
