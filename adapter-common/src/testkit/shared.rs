//! What the script and the server's threads share: the state under one
//! lock, each accepted connection as the script sees it, and the commands
//! the script gives a connection's thread.
//!
//! Invariants: every change is made under the lock and then told to every
//! waiter, blocking or async ([`Shared::notify`]); a panic while the lock
//! is held (a failed expectation) leaves the state usable.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::thread::JoinHandle;

use wslink_core::{CloseCode, Message};

/// What the test and the server's threads share.
pub(super) struct Shared {
    /// Everything else, under one lock.
    pub(super) state: Mutex<State>,
    /// Signalled on every change: a connection, a message, an ending, a command.
    pub(super) changed: Condvar,
    /// Set when the `MockServer` is dropped: every thread ends.
    pub(super) stop: AtomicBool,
}

/// Computes the answer to each message the client sends, on the server's thread.
pub(super) type Responder = Box<dyn FnMut(&Message) -> Option<Message> + Send>;

/// The server's state, as the script and the threads see it.
#[derive(Default)]
pub(super) struct State {
    /// Every connection accepted, in order.
    pub(super) conns: Vec<Conn>,
    /// How many connections `expect_connection` has returned; the last is current.
    pub(super) expected: usize,
    /// Refuse every upgrade with this status.
    pub(super) refuse: Option<u16>,
    /// Upgrades refused so far.
    pub(super) refused: usize,
    /// Answers each message as it arrives, when set.
    pub(super) responder: Option<Responder>,
    /// Async waits to wake on the next change (and at every tick, for their deadlines).
    pub(super) wakers: Vec<Waker>,
    /// The connections' threads, joined when the server stops.
    pub(super) threads: Vec<JoinHandle<()>>,
}

/// One accepted connection, as the script sees it.
pub(super) struct Conn {
    /// Its place in order and its upgrade request.
    pub(super) info: Connection,
    /// Messages the client sent that the script has not taken.
    pub(super) unread: VecDeque<Message>,
    /// Commands for the connection's thread, in order.
    pub(super) commands: VecDeque<Command>,
    /// Commands given so far.
    pub(super) queued: u64,
    /// Commands carried out so far.
    pub(super) applied: u64,
    /// How it ended, once it has.
    pub(super) ended: Option<Ended>,
}

/// What the script asks a connection's thread to do.
pub(super) enum Command {
    /// Send this message to the client.
    Send(Message),
    /// Start the close handshake.
    Close(CloseCode, String),
    /// Drop TCP without a close frame.
    Cut,
    /// Neither read nor write from now on.
    Blackhole,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ended {
    /// A close handshake, with the client's close frame (code and reason, if any).
    Closed(Option<(CloseCode, String)>),
    /// The server cut it ([`MockServer::cut`](super::MockServer::cut)).
    Cut,
    /// The TCP connection ended or failed without a close handshake.
    Dropped(String),
}

/// An accepted connection: its place in order and its upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// 0 for the first connection, 1 for the next …
    pub index: usize,
    /// The request target: `/path?query`.
    pub path: String,
    /// The upgrade request's headers, in order.
    pub headers: Vec<(String, String)>,
}

impl Connection {
    /// The value of the first header called `name` (ASCII case ignored).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Shared {
    /// The state, even after a panic while it was held.
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A script's panic while holding the lock leaves the state usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells every waiter, blocking or async, that something changed.
    pub(super) fn notify(&self, state: &mut State) {
        self.changed.notify_all();
        for waker in state.wakers.drain(..) {
            waker.wake();
        }
    }

    /// Whether the server is stopping: every thread ends.
    pub(super) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
