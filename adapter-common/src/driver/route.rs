//! Routing the session's events and delivering them: request outcomes to
//! their awaiting callers, the first outcome to `connect`, the state to the
//! handles, everything else, as one batch a turn, to the event stream.
//!
//! Invariants: a protocol violation read behind messages is polled from the
//! session only once the consumer has taken those messages (or nobody reads
//! them); posts still queued when the session closes are refused ahead of
//! `Closed`; a batch is handed over whole, only once the consumer took the last.

use wslink_core::{CommandError, Session, SessionEvent, SessionState};

use super::state::Routing;
use crate::channels::{DriverEnd, FirstOutcome, NotDelivered};
use crate::client::encode_state;
use crate::filter::EventFilter;
use crate::reply::{RequestError, Response};
use crate::telemetry::Telemetry;

/// Routes the session's events: request outcomes to their awaiting callers,
/// everything else to the pending queue, which the run loop hands to the
/// event stream (once the session has closed, after the transport's close).
pub(super) fn route(session: &mut Session, r: &mut Routing, channels: &DriverEnd, telemetry: &mut Telemetry) {
    loop {
        if !r.events_closed && matches!(r.keep, EventFilter::All) {
            // A flood's messages go over in one move each, not one `poll_event` each.
            r.pending_bytes += session.poll_messages(&mut r.pending_events);
        }
        if session.fault_next() && !(r.release_fault || r.stream_unread()) {
            // The next poll would let the session act on a violation before
            // the consumer has taken the messages ahead of it.
            break;
        }
        let Some(event) = session.poll_event() else {
            r.release_fault = false;
            break;
        };
        telemetry.event(&event);
        if r.first_pending {
            report_first(session, r, channels, telemetry, &event);
        }
        match &event {
            SessionEvent::Response { id, message, rtt, is_error } => {
                if let Some(waiter) = r.waiting.remove(*id) {
                    let response = Response { id: *id, message: message.clone(), rtt: *rtt, is_error: *is_error };
                    let _ = waiter.send(Ok(response));
                    continue;
                }
            }
            SessionEvent::RequestFailed { id, reason } => {
                if let Some(waiter) = r.waiting.remove(*id) {
                    let _ = waiter.send(Err(RequestError::from(*reason)));
                    continue;
                }
            }
            SessionEvent::StateChanged { to, .. } => {
                channels.set_state(encode_state(*to));
                if *to == SessionState::Closed {
                    // Posts still queued were handed over before the close:
                    // they are refused here, ahead of `Closed`; later ones fail at once.
                    // Held ones were handed over first.
                    let mut unsent = r.held.take_posts();
                    unsent.extend(channels.close_posts());
                    if !r.events_closed {
                        r.pending_events.push(event);
                        let refused =
                            |message| SessionEvent::Refused { message, error: Box::new(CommandError::Closed) };
                        r.pending_events.extend(unsent.into_iter().map(refused));
                    }
                    continue;
                }
            }
            _ => {}
        }
        if r.events_closed || !r.keep.keeps(&event) {
            continue;
        }
        if let SessionEvent::Message(m) = &event {
            r.pending_bytes += m.len();
        }
        r.pending_events.push(event);
    }
}

/// Stores how the first attempt ended, for `connect`, if `event` says it.
/// The figures are pushed first, as a turn pushes them before its events go
/// out: `connect` returns on another task at once, and whoever it returns
/// to sees the upgrade's bytes counted.
fn report_first(
    session: &Session,
    r: &mut Routing,
    channels: &DriverEnd,
    telemetry: &mut Telemetry,
    event: &SessionEvent,
) {
    let first = match event {
        SessionEvent::Connected { .. } => FirstOutcome::Connected,
        SessionEvent::Disconnected { reason } => FirstOutcome::Failed(reason.clone()),
        SessionEvent::Closed { reason } => FirstOutcome::Closed(reason.clone()),
        _ => return,
    };
    telemetry.turn(session, r.waiting.len());
    r.first_pending = false;
    channels.set_first_outcome(first);
}

/// Hands the waiting events to the stream as one batch, if it has room.
/// `busy`: the link carries data (`Session::is_busy`), so the buffer of a
/// batch the consumer emptied is filled again rather than a new one made.
pub(super) fn deliver(r: &mut Routing, channels: &DriverEnd, busy: bool) {
    if r.pending_events.is_empty() {
        return;
    }
    let count = r.pending_events.len();
    match channels.deliver_reusing(std::mem::take(&mut r.pending_events)) {
        Ok(spare) => {
            r.pending_bytes = 0;
            match spare {
                Some(spare) if busy => r.pending_events = spare,
                // The next batch starts with room for as many events as this
                // one had, so it is not regrown (and copied) step by step
                // during the next read; a few events do not pay for a buffer
                // held while the connection idles.
                _ if count > 8 => r.pending_events = Vec::with_capacity(count),
                _ => {}
            }
        }
        Err(NotDelivered::Full(batch)) => r.pending_events = batch,
        Err(NotDelivered::Gone) => {
            r.events_closed = true;
            r.pending_bytes = 0;
        }
    }
}
