//! Carrying out the handles' commands: at once, or held while the write
//! budget has no room, and released in order when it has.
//!
//! Invariants: commands are carried out in the order they were sent; one
//! that would write never overtakes one held before it; a turn carries out
//! at most [`COMMAND_BURST`] of them, so the deadline and the reads have
//! their say between bursts.

use std::time::Instant;

use wslink_core::{CommandError, Session, SessionState};

use super::state::Routing;
use crate::channels::DriverEnd;
use crate::command::{Command, RequestBody, RequestCommand};
use crate::reply::{ClientError, Reply, RequestError, Snapshot};
use crate::runtime::Runtime;

/// Most commands carried out in one turn (the rest wait for the next, after
/// the deadline and the reads had their say).
pub(super) const COMMAND_BURST: usize = 64;

/// Carries out the commands held for room in the write budget while there
/// is room, and tells the handles whether the budget is used up.
pub(super) fn release_held<R: Runtime>(session: &mut Session, r: &mut Routing, channels: &DriverEnd) {
    if !r.held.is_empty() && session.has_write_room() {
        let now = R::now();
        while session.has_write_room() {
            let Some(command) = r.held.pop() else { break };
            carry_out(session, r, command, now);
        }
    }
    let full = !r.held.is_empty() || !session.has_write_room();
    if full != r.write_full {
        r.write_full = full;
        channels.set_write_full(full);
    }
}

/// Carries out up to `most` of the commands already waiting in the channel,
/// without waiting for more: commands that arrived together are carried
/// out together, so their frames leave in one write, not one each. Stops
/// at the session's close (`route` refuses the posts still queued ahead of
/// `Closed`).
#[inline]
pub(super) fn execute_queued(session: &mut Session, r: &mut Routing, channels: &DriverEnd, now: Instant, most: usize) {
    for _ in 0..most {
        if session.state() == SessionState::Closed {
            break;
        }
        let Some(command) = channels.try_command() else { break };
        execute(session, r, command, now);
    }
}

/// Carries out one command from a handle. One that would write waits in
/// `held` while the write budget has no room (or others wait before it).
pub(super) fn execute(session: &mut Session, r: &mut Routing, command: Command, at: Instant) {
    let writes = matches!(
        command,
        Command::Send(_)
            | Command::Post(_)
            | Command::Request(_)
            | Command::Subscribe(_)
            | Command::Unsubscribe(_)
            | Command::Control(_)
            | Command::Flush(_)
    );
    if writes && (!r.held.is_empty() || !session.has_write_room()) {
        r.held.push(command);
        return;
    }
    carry_out(session, r, command, at);
}

/// Carries out one command, now.
fn carry_out(session: &mut Session, r: &mut Routing, command: Command, at: Instant) {
    let answer = |reply: Reply<()>, result: Result<(), CommandError>| {
        let _ = reply.send(result.map_err(ClientError::from));
    };
    match command {
        Command::Send(send) => {
            let (message, reply) = *send;
            answer(reply, session.send(message, at));
        }
        Command::Post(message) => session.post(message, at),
        Command::Request(request) => {
            let RequestCommand { body, timeout, reply } = *request;
            let started = match body {
                RequestBody::Call { id: None, method, params } => {
                    session.request(&method, params.as_deref(), timeout, at)
                }
                RequestBody::Call { id: Some(id), method, params } => {
                    session.request_with_id(id, &method, params.as_deref(), timeout, at)
                }
                RequestBody::Whole(message) => session.request_message(message, timeout, at),
            };
            match started {
                Ok(id) => {
                    r.waiting.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(RequestError::Rejected(ClientError::Command(e))));
                }
            }
        }
        Command::Subscribe(subscribe) => {
            let (channels, options, reply) = *subscribe;
            let refs: Vec<&str> = channels.iter().map(String::as_str).collect();
            answer(reply, session.subscribe_with(&refs, options, at));
        }
        Command::Unsubscribe(unsubscribe) => {
            let (channels, reply) = *unsubscribe;
            let refs: Vec<&str> = channels.iter().map(String::as_str).collect();
            answer(reply, session.unsubscribe(&refs, at));
        }
        Command::Reconnect(reply) => answer(reply, session.reconnect(at)),
        Command::Control(control) => {
            let (ping, payload, reply) = *control;
            answer(reply, if ping { session.ping(&payload, at) } else { session.pong(&payload, at) });
        }
        Command::Close(close) => {
            let (code, reason, reply) = *close;
            match session.close(code, &reason, at) {
                Ok(()) => r.close_waiters.push(reply),
                Err(e) => answer(reply, Err(e)),
            }
        }
        // Every message before it has been taken (sent, queued or refused as an event).
        Command::Flush(reply) => {
            answer(reply, if session.state() == SessionState::Closed { Err(CommandError::Closed) } else { Ok(()) })
        }
        Command::Snapshot(reply) => {
            let paused_now = r.paused_since.map(|s| at.saturating_duration_since(s)).unwrap_or_default();
            let _ = reply.send(Snapshot {
                metrics: session.metrics(at),
                latency: session.latency(),
                health: session.heartbeat_health(),
                read_paused: r.paused_total + paused_now,
            });
        }
    }
}
