//! The script's waits: for what it expects (a connection, a message, an
//! ending), blocking or as a future, and for the commands it gives a
//! connection to be carried out.
//!
//! Invariants: every wait ends by its timeout at the latest, with a panic
//! that lists what the server has seen (the acceptor wakes async waits at
//! every tick, so their deadlines are seen whatever the runtime); a check
//! runs under the lock, so what it finds cannot change under it.

use std::future::Future;
use std::sync::PoisonError;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wslink_core::Message;

use super::shared::{Command, Connection, Ended, Shared, State};

/// A command not carried out within this means the connection's thread is stuck (a blocked write).
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Gives the current connection's thread `command`, and waits until it
/// has carried it out.
#[track_caller]
pub(super) fn apply(shared: &Shared, what: &str, command: Command) {
    let mut state = shared.lock();
    let Some(current) = state.expected.checked_sub(1) else {
        drop(state);
        panic!("{what}: no current connection; call expect_connection first");
    };
    let conn = &mut state.conns[current];
    conn.commands.push_back(command);
    conn.queued += 1;
    let ticket = conn.queued;
    shared.notify(&mut state);
    // Wait until the connection's thread has carried it out (within a
    // tick), so that what the script does next happens after it: no pong
    // escapes a black hole the script has made.
    let deadline = Instant::now() + APPLY_TIMEOUT;
    loop {
        let conn = &state.conns[current];
        if conn.applied >= ticket || conn.ended.is_some() {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            drop(state);
            panic!("{what}: the connection's thread did not carry it out within {APPLY_TIMEOUT:?}");
        }
        state = shared.changed.wait_timeout(state, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
    }
}

/// Waits, blocking, until `check` finds what it wants.
#[track_caller]
pub(super) fn until<T>(
    shared: &Shared,
    what: &str,
    timeout: Duration,
    mut check: impl FnMut(&mut State) -> Checked<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    let mut state = shared.lock();
    // Each turn returns, panics, or sleeps until a change or the deadline.
    loop {
        let failure = match check(&mut state) {
            Checked::Found(found) => return found,
            Checked::Fail(failure) => failure,
            Checked::Wait => {
                let now = Instant::now();
                if now < deadline {
                    state =
                        shared.changed.wait_timeout(state, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
                    continue;
                }
                describe(&state)
            }
        };
        drop(state);
        panic!("{what}: {failure} (waited up to {timeout:?})");
    }
}

/// Waits, as a future, until `check` finds what it wants. The acceptor
/// thread wakes waiting futures at every tick, so the deadline is seen
/// within a tick of passing whatever the runtime.
#[track_caller]
pub(super) fn until_async<'a, T: 'a>(
    shared: &'a Shared,
    what: &'a str,
    timeout: Duration,
    mut check: impl FnMut(&mut State) -> Checked<T> + 'a,
) -> impl Future<Output = T> + 'a {
    let deadline = Instant::now() + timeout;
    let caller = std::panic::Location::caller();
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        let mut state = shared.lock();
        let failure = match check(&mut state) {
            Checked::Found(found) => return Poll::Ready(found),
            Checked::Fail(failure) => failure,
            Checked::Wait if Instant::now() < deadline => {
                state.wakers.push(cx.waker().clone());
                return Poll::Pending;
            }
            Checked::Wait => describe(&state),
        };
        drop(state);
        panic!("{what} at {caller}: {failure} (waited up to {timeout:?})");
    })
}

/// What a wait's check found.
pub(super) enum Checked<T> {
    /// What the wait waits for.
    Found(T),
    /// Not yet.
    Wait,
    /// Never: the wait cannot succeed (a command with no current connection).
    Fail(String),
}

/// The next connection not yet returned, made the current one.
pub(super) fn take_connection(state: &mut State) -> Checked<Connection> {
    match state.conns.get(state.expected) {
        Some(conn) => {
            let info = conn.info.clone();
            state.expected += 1;
            Checked::Found(info)
        }
        None => Checked::Wait,
    }
}

/// The current connection's first message that matches, and all before it.
pub(super) fn take_sent(state: &mut State, predicate: &mut impl FnMut(&Message) -> bool) -> Checked<Message> {
    let Some(current) = state.expected.checked_sub(1) else {
        return Checked::Fail("no current connection; call expect_connection first".into());
    };
    let unread = &mut state.conns[current].unread;
    match unread.iter().position(&mut *predicate) {
        Some(at) => match unread.drain(..=at).last() {
            Some(message) => Checked::Found(message),
            None => Checked::Wait,
        },
        None => Checked::Wait,
    }
}

/// How the current connection ended, once it has.
pub(super) fn ended(state: &mut State) -> Checked<Ended> {
    let Some(current) = state.expected.checked_sub(1) else {
        return Checked::Fail("no current connection; call expect_connection first".into());
    };
    match &state.conns[current].ended {
        Some(ended) => Checked::Found(ended.clone()),
        None => Checked::Wait,
    }
}

/// What the server has seen, for a failed wait's message.
fn describe(state: &State) -> String {
    let current = state.expected.checked_sub(1);
    let mut out = format!(
        "it did not happen; {} connection(s) accepted, {} expected, {} upgrade(s) refused",
        state.conns.len(),
        state.expected,
        state.refused
    );
    if let Some(conn) = current.map(|i| &state.conns[i]) {
        out.push_str(&format!(
            "; the current connection (#{}) {}, and carries these messages not yet taken: {:#?}",
            conn.info.index,
            match &conn.ended {
                Some(ended) => format!("has ended ({ended:?})"),
                None => "is open".to_owned(),
            },
            conn.unread
        ));
    }
    out
}
