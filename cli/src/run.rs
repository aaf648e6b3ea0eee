//! One run of the client, written once for any [`Runtime`]: build the
//! client from the arguments, send what was asked, then loop over its
//! events, stdin, signals, request outcomes and the status tick until the
//! session has closed.
//!
//! Invariants:
//! - Every way of ending that is ours (count reached, input done, Ctrl-C,
//!   bad input, stdout gone) goes through [`Run::finish_with`]: it records why and
//!   asks the client to close with 1000, and the loop goes on draining
//!   events until the stream ends, so the close handshake completes and
//!   nothing the driver holds is lost. Only a second signal exits at once.
//! - The exit code is decided once, after the event stream has ended, from
//!   why we finished or (if the session ended by itself) from how it closed.
//! - Messages and requests go to the client in command-line order: sends are
//!   awaited one by one, and each request future is polled once, which hands
//!   it to the driver, before the next item.
//! - No source can starve the others: signals, the close and request
//!   outcomes are rare and polled first; events and stdin lines take turns.
//! - The end of stdin waits, up to `--request-timeout`, for what was asked:
//!   `--count` messages, or else one message per line sent (counted from
//!   the first line handed over), so that an echo or RPC server's answers
//!   are read before our close frame, which such a server answers at once.
//! - Nothing printed quotes the URL as typed: notices show the parsed URL's
//!   redacted text (no query), errors about the URL go through `redact.rs`.
//!
//! A run's parts: `configure.rs` builds the client, `state.rs` holds what
//! the run knows, `handle.rs` takes in what comes, `stdin_end.rs` decides
//! when the input is done, `finish.rs` closes and decides the exit code;
//! this file starts the run and holds its loop.

mod configure;
mod finish;
mod handle;
mod state;
mod stdin_end;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_signal::{Signal, Signals};
use futures_lite::future::poll_once;
use futures_lite::Stream;
use wslink_adapter::{Error, RequestError, Response, Runtime};
use wslink_core::SessionEvent;

use self::configure::configure;
use self::state::{Finish, Run};
use crate::args::{Args, Outgoing, StdinMode};
use crate::exit::Exit;
use crate::input::{self, Line};
use crate::output::Console;

/// How often the status line is redrawn: often enough to look live, rarely
/// enough to cost nothing next to a flood.
const STATUS_EVERY: Duration = Duration::from_millis(250);

/// What woke the loop.
enum Wake {
    /// An event, or `None`: the stream has ended.
    Event(Option<SessionEvent>),
    /// A stdin line, or `None`: stdin has ended.
    Line(Option<Line>),
    /// Ctrl-C or SIGTERM; the exit code it asks for.
    Signal(Exit),
    /// The close we asked for has returned.
    Closed,
    /// A `--request`'s outcome, with its method.
    Request(String, Result<Response, RequestError>),
    /// `--request-timeout` has passed since stdin ended with the session open.
    ReplyWaitOver,
    /// Time to redraw the status line.
    Tick,
}

/// Runs the client described by `args` on `R`, writing through `console`
/// (which knows whether the status line is shown).
pub(crate) async fn run<R: Runtime>(args: Args, mut console: Console) -> Exit {
    let builder = match configure::<R>(&args) {
        Ok(b) => b,
        Err((exit, message)) => {
            console.error(message);
            return exit;
        }
    };
    // Before the client starts, so that a Ctrl-C at any point after the
    // first connection closes cleanly instead of killing the process.
    let signals = match Signals::new(watched_signals()) {
        Ok(s) => Some(s),
        Err(e) => {
            console.notice(format!("Ctrl-C will not close cleanly: {e}"));
            None
        }
    };
    let stdin = match args.stdin {
        StdinMode::On => true,
        StdinMode::Off => false,
        StdinMode::Auto => input::stdin_has_input(),
    };
    let lines = if stdin {
        match input::spawn_reader(args.max_message_size) {
            Ok(rx) => Some(rx),
            Err(e) => {
                console.error(format!("cannot read stdin: {e}"));
                return Exit::Failed;
            }
        }
    } else {
        None
    };
    let (client, events) = match builder.start() {
        Ok(started) => started,
        Err(e) => {
            console.error(&e);
            return match e {
                Error::Url(_) | Error::Config(_) => Exit::Usage,
                Error::Tls(_) => Exit::Tls,
                _ => Exit::Failed,
            };
        }
    };
    let mut run = Run::<R>::new(args, console, client, events, lines, signals);
    run.start().await;
    let exit = run.event_loop().await;
    run.console.finish();
    exit
}

/// The signals that close the run cleanly: Ctrl-C, and SIGTERM where there is one.
fn watched_signals() -> Vec<Signal> {
    #[cfg(unix)]
    return vec![Signal::Int, Signal::Term];
    #[cfg(not(unix))]
    return vec![Signal::Int];
}

impl<R: Runtime> Run<R> {
    /// Subscribes, then hands over `--send` and `--request` in order. The
    /// session queues them until the connection is open.
    async fn start(&mut self) {
        if !self.args.subscribe.is_empty() {
            let channels: Vec<&str> = self.args.subscribe.iter().map(String::as_str).collect();
            if let Err(e) = self.client.subscribe(&channels).await {
                self.console.error(format!("subscribe: {e}"));
            }
        }
        for item in self.args.outgoing.clone() {
            match item {
                Outgoing::Text(text) => {
                    if let Err(e) = self.client.send_text(text).await {
                        self.console.error(format!("--send: {e}"));
                    }
                }
                Outgoing::Request { method, params } => {
                    let client = self.client.clone();
                    let name = method.clone();
                    let mut future: Pin<Box<dyn Future<Output = Result<Response, RequestError>>>> =
                        Box::pin(async move { client.request(&name, params.as_deref(), None).await });
                    // The first poll hands the request to the driver, in order.
                    match poll_once(&mut future).await {
                        Some(outcome) => self.request_done(method, outcome),
                        None => self.requests.push((method, future)),
                    }
                }
            }
        }
        self.check_input_done();
    }

    /// Handles what wakes it until the event stream ends; returns the exit code.
    async fn event_loop(&mut self) -> Exit {
        loop {
            let wake = poll_fn(|cx| self.poll_wake(cx)).await;
            match wake {
                Wake::Event(None) => break,
                Wake::Event(Some(event)) => self.event(event),
                Wake::Line(Some(line)) => self.line(line).await,
                Wake::Line(None) => {
                    self.lines = None;
                    self.stdin_ended = true;
                    self.check_input_done();
                }
                Wake::Signal(exit) => {
                    if self.finish.is_some() {
                        // A second Ctrl-C: the user does not want to wait for the close.
                        self.console.notice("interrupted again: exiting without waiting for the close");
                        return exit;
                    }
                    self.console.notice("interrupted: closing (Ctrl-C again to exit at once)");
                    self.finish_with(Finish::Signal(exit));
                }
                Wake::Closed => self.closing = None,
                Wake::Request(method, outcome) => {
                    self.request_done(method, outcome);
                    self.check_input_done();
                }
                Wake::ReplyWaitOver => {
                    self.reply_wait_over = true;
                    self.check_input_done();
                }
                Wake::Tick => {
                    self.draw_status().await;
                    R::reset(self.tick.as_mut(), R::now() + STATUS_EVERY);
                }
            }
        }
        self.exit_code()
    }

    /// The first source that is ready: signals, the close and request
    /// outcomes first (they are rare), then the reply wait and the status
    /// tick; events and stdin lines take turns at going first.
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<Wake> {
        if let Some(signals) = self.signals.as_mut() {
            match Pin::new(signals).poll_next(cx) {
                Poll::Ready(Some(Ok(signal))) => {
                    let exit = if signal == Signal::Int { Exit::Interrupted } else { Exit::Terminated };
                    return Poll::Ready(Wake::Signal(exit));
                }
                // The signal pipe failed: signals now take their default action.
                Poll::Ready(Some(Err(_)) | None) => self.signals = None,
                Poll::Pending => {}
            }
        }
        if let Some(closing) = self.closing.as_mut() {
            if closing.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Closed);
            }
        }
        for i in 0..self.requests.len() {
            if let Poll::Ready(outcome) = self.requests[i].1.as_mut().poll(cx) {
                let (method, _) = self.requests.swap_remove(i);
                return Poll::Ready(Wake::Request(method, outcome));
            }
        }
        if let Some(wait) = self.reply_wait.as_mut() {
            if wait.as_mut().poll(cx).is_ready() {
                self.reply_wait = None;
                return Poll::Ready(Wake::ReplyWaitOver);
            }
        }
        if self.console.status_enabled() && self.tick.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Wake::Tick);
        }
        self.events_first = !self.events_first;
        for events_turn in [self.events_first, !self.events_first] {
            if events_turn {
                if let Poll::Ready(event) = Pin::new(&mut self.events).poll_next(cx) {
                    return Poll::Ready(Wake::Event(event));
                }
            } else if let Some(lines) = self.lines.as_mut() {
                if let Poll::Ready(line) = lines.poll_recv(cx) {
                    return Poll::Ready(Wake::Line(line));
                }
            }
        }
        Poll::Pending
    }
}
