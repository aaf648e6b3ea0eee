//! What a run knows: the client and its stream, the input, what was
//! received and printed, and why (and whether) we finished. The steps of a
//! run (`handle.rs`, `stdin_end.rs`, `finish.rs`, the loop in `run.rs`) are
//! methods on [`Run`], each in the file of its idea.
//!
//! Invariant: `finish` is set once, by `finish_with` only; the rest of the
//! run reads it to tell what it still does (a second signal exits at once,
//! a request's failure after it does not fail the run).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use async_signal::Signals;
use tokio::sync::mpsc;
use wslink_adapter::{Client, Events, RequestError, Response, Runtime};
use wslink_core::{CloseReason, DisconnectReason, SessionState, WsUrl};

use crate::args::Args;
use crate::exit::Exit;
use crate::input::Line;
use crate::output::Console;

/// A `--request` on its way: its method and the future of its outcome.
pub(super) type PendingRequest = (String, Pin<Box<dyn Future<Output = Result<Response, RequestError>>>>);

/// Why we asked the client to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Finish {
    /// `--count` messages arrived.
    Count,
    /// Stdin ended, or every request has its outcome, and nothing else was asked.
    InputDone,
    /// A signal; its exit code.
    Signal(Exit),
    /// The first connection failed; the code for it.
    NoConnection(Exit),
    /// A stdin line was not UTF-8, or too long.
    BadInput,
    /// Stdin ended and fewer than `--count` messages came within `--request-timeout`.
    CountShort,
    /// Stdout could not be written.
    OutputFailed,
}

/// The state of a run on the runtime `R`.
pub(super) struct Run<R: Runtime> {
    /// What the command line asked for.
    pub(super) args: Args,
    /// The URL as notices show it: without its query.
    pub(super) shown_url: String,
    /// Stdout for data, stderr for notices, errors and the status line.
    pub(super) console: Console,
    /// The client's handle.
    pub(super) client: Client,
    /// The client's events; the run ends when they do.
    pub(super) events: Events,
    /// Stdin's lines, while stdin is read and not done with.
    pub(super) lines: Option<mpsc::Receiver<Line>>,
    /// Ctrl-C and SIGTERM, unless they could not be watched.
    pub(super) signals: Option<Signals>,
    /// The `--request`s handed over and not yet answered.
    pub(super) requests: Vec<PendingRequest>,
    /// The close we asked for, until it returns.
    pub(super) closing: Option<Pin<Box<dyn Future<Output = ()>>>>,
    /// Why we finished, once we have.
    pub(super) finish: Option<Finish>,
    /// Whether stdin was read and has ended.
    pub(super) stdin_ended: bool,
    /// Whether a request failed or was answered with an error before we finished.
    pub(super) request_failed: bool,
    /// Whether stdout could not be written (nothing more is printed).
    pub(super) output_failed: bool,
    /// Whether a connection has opened.
    pub(super) ever_connected: bool,
    /// Why the last connection ended (or failed to open).
    pub(super) last_disconnect: Option<DisconnectReason>,
    /// How the session closed, once it has.
    pub(super) closed: Option<CloseReason>,
    /// The session's state, as its events last said.
    pub(super) state: SessionState,
    /// Connections opened after the first.
    pub(super) reconnects: u64,
    /// Messages received.
    pub(super) received: u64,
    /// Messages printed (fewer than received once `--count` is reached).
    pub(super) printed: u64,
    /// Events and stdin lines take turns at being polled first.
    pub(super) events_first: bool,
    /// Whether stdin is read (from the start: `lines` is dropped at the end).
    pub(super) stdin_read: bool,
    /// Stdin lines handed to the client.
    pub(super) lines_sent: u64,
    /// `received` when the first stdin line was handed over: what came after is replies.
    pub(super) received_before_lines: Option<u64>,
    /// Runs from the moment stdin has ended with the session open.
    pub(super) reply_wait: Option<Pin<Box<R::Timer>>>,
    /// `--request-timeout` has passed since then.
    pub(super) reply_wait_over: bool,
    /// The status line's tick.
    pub(super) tick: Pin<Box<R::Timer>>,
    /// The runtime whose timers the run uses.
    pub(super) runtime: PhantomData<R>,
}

impl<R: Runtime> Run<R> {
    /// A run that has handed nothing over yet: the session is `Idle`.
    pub(super) fn new(
        args: Args,
        console: Console,
        client: Client,
        events: Events,
        lines: Option<mpsc::Receiver<Line>>,
        signals: Option<Signals>,
    ) -> Self {
        let shown_url = WsUrl::parse(&args.url).map(|u| u.redacted_text()).unwrap_or_default();
        Self {
            stdin_read: lines.is_some(),
            args,
            shown_url,
            console,
            client,
            events,
            lines,
            signals,
            requests: Vec::new(),
            closing: None,
            finish: None,
            stdin_ended: false,
            request_failed: false,
            output_failed: false,
            ever_connected: false,
            last_disconnect: None,
            closed: None,
            state: SessionState::Idle,
            reconnects: 0,
            received: 0,
            printed: 0,
            events_first: true,
            lines_sent: 0,
            received_before_lines: None,
            reply_wait: None,
            reply_wait_over: false,
            tick: Box::pin(R::timer(R::now())),
            runtime: PhantomData,
        }
    }
}
