//! One run of the client, written once for any [`Runtime`]: build the
//! client from the arguments, send what was asked, then loop over its
//! events, stdin, signals, request outcomes and the status tick until the
//! session has closed.
//!
//! Invariants:
//! - Every way of ending that is ours (count reached, input done, Ctrl-C,
//!   bad input, stdout gone) goes through [`Run::finish`]: it records why and
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

use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_signal::{Signal, Signals};
use futures_lite::future::poll_once;
use futures_lite::Stream;
use tokio::sync::mpsc;
use wslink_adapter::{Builder, Client, Error, Events, RequestError, Response, Roots, Runtime, TlsOptions};
use wslink_core::{CloseCode, CloseReason, DisconnectReason, Message, PingConfig, SessionEvent, SessionState, WsUrl};

use crate::args::{Args, Outgoing, Ping, StdinMode};
use crate::exit::{self, Exit};
use crate::input::{self, Line};
use crate::output::{Console, Record};
use crate::status::StatusInfo;

/// How often the status line is redrawn: often enough to look live, rarely
/// enough to cost nothing next to a flood.
const STATUS_EVERY: Duration = Duration::from_millis(250);

/// A `--request` on its way: its method and the future of its outcome.
type PendingRequest = (String, Pin<Box<dyn Future<Output = Result<Response, RequestError>>>>);

/// Why we asked the client to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
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

/// What woke the loop.
enum Wake {
    Event(Option<SessionEvent>),
    Line(Option<Line>),
    Signal(Exit),
    /// The close we asked for has returned.
    Closed,
    Request(String, Result<Response, RequestError>),
    /// `--request-timeout` has passed since stdin ended with the session open.
    ReplyWaitOver,
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

/// The builder for `args`, or the exit code and message for a setting that
/// cannot be used (a `--cacert` file that cannot be read, say).
fn configure<R: Runtime>(args: &Args) -> Result<Builder<R>, (Exit, String)> {
    let mut b = Builder::<R>::new(&args.url).map_err(|e| (Exit::Usage, e.to_string()))?;
    for (name, value) in &args.headers {
        b = b.header(name, value);
    }
    for protocol in &args.protocols {
        b = b.subprotocol(protocol);
    }
    b = b.reconnect(args.reconnect).max_attempts(args.max_attempts);
    let timeout = args.request_timeout;
    b = b.config(|c| c.request_timeout = timeout);
    if args.max_message_size_given {
        // A frame cannot be larger than the message it carries, and may be as large.
        b = b.max_message_size(args.max_message_size).max_frame_size(args.max_message_size);
    }
    b = match args.ping {
        Ping::Default => b,
        Ping::Off => b.ping(None),
        // The pong deadline must be shorter than the interval; 10 s is the library's default.
        Ping::Every(interval) => b.ping(Some(PingConfig::new(interval, (interval / 2).min(Duration::from_secs(10))))),
    };
    if let Some(method) = &args.subscribe_method {
        let codec = wslink_core::presets::JsonRpcSubscriptions {
            subscribe_method: method.clone().into(),
            ..Default::default()
        };
        b = b.subscription_codec(codec);
    }
    if args.native_roots {
        b = b.tls(TlsOptions::default().roots(Roots::Native));
    }
    if let Some(path) = &args.cacert {
        b = b.tls(TlsOptions::with_roots(read_roots(path).map_err(|e| (Exit::Usage, e))?));
    }
    Ok(b)
}

/// The largest `--cacert` file read: a bundle of every public root is
/// about 250 KB. Past it the file is refused, so that `/dev/zero`, a FIFO
/// that never ends or a wrong file of gigabytes is not read into memory.
pub(crate) const CACERT_LIMIT: u64 = 4 << 20;

/// The root certificates of a PEM file of at most [`CACERT_LIMIT`] bytes,
/// or a sentence saying why not.
fn read_roots(path: &std::path::Path) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::{self, PemObject};
    use rustls::pki_types::CertificateDer;
    use std::io::Read;
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("--cacert {shown}: {e}"))?;
    let mut text = Vec::new();
    file.take(CACERT_LIMIT + 1).read_to_end(&mut text).map_err(|e| format!("--cacert {shown}: {e}"))?;
    if text.len() as u64 > CACERT_LIMIT {
        return Err(format!(
            "--cacert {shown} is larger than {} MiB: not a file of PEM certificates",
            CACERT_LIMIT >> 20
        ));
    }
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&text) {
        let cert = cert.map_err(|e| match e {
            // Its text would quote a line of the file.
            pem::Error::IllegalSectionStart { .. } => format!("--cacert {shown}: a PEM section starts badly"),
            e => format!("--cacert {shown}: {e}"),
        })?;
        store.add(cert).map_err(|e| format!("--cacert {shown}: {e}"))?;
    }
    if store.is_empty() {
        return Err(format!("--cacert {shown}: no certificate in the file"));
    }
    Ok(store)
}

fn watched_signals() -> Vec<Signal> {
    #[cfg(unix)]
    return vec![Signal::Int, Signal::Term];
    #[cfg(not(unix))]
    return vec![Signal::Int];
}

/// Why the first connection failed, as the library says it ("could not
/// connect: ..."), naming the address when the transport did not open, and
/// suggesting `ws://` when a `wss://` URL may point at a plain server.
fn connect_error(url: &str, reason: &DisconnectReason) -> String {
    let Ok(url) = WsUrl::parse(url) else { return Error::Connect(reason.clone()).to_string() };
    let addr = format!("{}:{}", url.host(), url.port());
    match reason {
        DisconnectReason::ConnectFailed { .. } => format!("could not connect to {addr}: {reason}"),
        DisconnectReason::Tls { failure, .. } if !failure.is_certificate() => {
            // The path as `redacted_text` shows it: no query.
            let path = url.redacted_text().splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_default();
            format!(
                "could not connect: {reason}; the server at {addr} may not speak TLS: \
                 for a plain WebSocket server use ws://{addr}{path}"
            )
        }
        _ => Error::Connect(reason.clone()).to_string(),
    }
}

/// The state of a run on the runtime `R`.
struct Run<R: Runtime> {
    args: Args,
    /// The URL as notices show it: without its query.
    shown_url: String,
    console: Console,
    client: Client,
    events: Events,
    lines: Option<mpsc::Receiver<Line>>,
    signals: Option<Signals>,
    requests: Vec<PendingRequest>,
    closing: Option<Pin<Box<dyn Future<Output = ()>>>>,
    /// Why we finished, once we have.
    finish: Option<Finish>,
    /// Whether stdin was read and has ended.
    stdin_ended: bool,
    /// Whether a request failed or was answered with an error before we finished.
    request_failed: bool,
    /// Whether stdout could not be written (nothing more is printed).
    output_failed: bool,
    ever_connected: bool,
    last_disconnect: Option<DisconnectReason>,
    closed: Option<CloseReason>,
    state: SessionState,
    reconnects: u64,
    /// Messages received / printed (they differ once `--count` is reached).
    received: u64,
    printed: u64,
    /// Events and stdin lines take turns at being polled first.
    events_first: bool,
    /// Whether stdin is read (from the start: `lines` is dropped at the end).
    stdin_read: bool,
    /// Stdin lines handed to the client.
    lines_sent: u64,
    /// `received` when the first stdin line was handed over: what came after is replies.
    received_before_lines: Option<u64>,
    /// Runs from the moment stdin has ended with the session open.
    reply_wait: Option<Pin<Box<R::Timer>>>,
    /// `--request-timeout` has passed since then.
    reply_wait_over: bool,
    /// The status line's tick.
    tick: Pin<Box<R::Timer>>,
    runtime: PhantomData<R>,
}

impl<R: Runtime> Run<R> {
    fn new(
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

    fn event(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::StateChanged { to, .. } => self.state = to,
            SessionEvent::Connected { attempt, .. } => {
                if self.ever_connected {
                    self.reconnects += 1;
                    self.console.notice(format!("reconnected ({})", tries(attempt)));
                } else {
                    self.console.notice(format!("connected to {}", self.shown_url));
                }
                self.ever_connected = true;
                self.check_input_done();
            }
            SessionEvent::Message(message) | SessionEvent::Unmatched { message, .. } => self.message(&message),
            SessionEvent::Subscribed { channels } => {
                self.console.notice(format!("subscribed to {}", channels.join(", ")))
            }
            SessionEvent::SubscriptionFailed { channels, reason } => {
                self.console.notice(format!("subscribing to {} failed: {reason}", channels.join(", ")));
            }
            SessionEvent::Disconnected { reason } => {
                // Without --max-attempts the first connection must open at
                // once, as `Builder::connect` has it: a wrong URL fails fast.
                if !self.ever_connected && self.args.max_attempts.is_none() && self.finish.is_none() {
                    self.finish_with(Finish::NoConnection(exit::for_connect_failure(&reason)));
                } else {
                    self.console.notice(format!("disconnected: {reason}"));
                }
                self.last_disconnect = Some(reason);
            }
            // Once we are closing, the attempt it schedules will not be made.
            SessionEvent::Reconnecting { attempt, delay } if self.finish.is_none() => {
                self.console.notice(format!("reconnecting in {delay:.1?} ({})", tries(attempt)));
            }
            SessionEvent::Error(e) => self.console.notice(format!("error: {e}")),
            SessionEvent::Dropped(_) => self.console.notice("a queued message was dropped at a disconnect"),
            SessionEvent::Refused { error, .. } => self.console.notice(format!("a message was not sent: {error}")),
            SessionEvent::Closed { reason } => self.closed = Some(reason),
            _ => {}
        }
    }

    fn message(&mut self, message: &Message) {
        self.received += 1;
        if self.args.count.is_some_and(|n| self.printed >= n) || self.output_failed {
            return;
        }
        self.print(&Record::Message(message));
        self.printed += 1;
        if self.args.count.is_some_and(|n| self.printed >= n) {
            self.finish_with(Finish::Count);
        } else if self.stdin_ended {
            self.check_input_done();
        }
    }

    fn print(&mut self, record: &Record<'_>) {
        if self.output_failed {
            return;
        }
        if let Err(e) = self.console.data(record) {
            // A closed pipe (`| head`) is the reader saying it has enough: no message for it.
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                self.console.error(format!("writing to stdout failed: {e}"));
            }
            self.output_failed = true;
            self.finish_with(Finish::OutputFailed);
        }
    }

    async fn line(&mut self, line: Line) {
        match line {
            Line::Text(text) => {
                // Counted before the hand-over: a reply may come as soon as it is out.
                self.received_before_lines.get_or_insert(self.received);
                match self.client.send_text(text).await {
                    Ok(()) => self.lines_sent += 1,
                    Err(e) => self.console.notice(format!("a stdin line was not sent: {e}")),
                }
            }
            Line::NotUtf8(number) => {
                self.console.error(format!("stdin line {number} is not UTF-8 text: only text lines can be sent"));
                self.finish_with(Finish::BadInput);
            }
            Line::TooLong(number) => {
                self.console.error(format!(
                    "stdin line {number} is longer than the message size limit of {} bytes \
                     (--max-message-size); it was not sent, and nothing after it is read",
                    self.args.max_message_size
                ));
                self.finish_with(Finish::BadInput);
            }
            Line::Failed(e) => self.console.error(format!("reading stdin failed: {e}")),
        }
    }

    fn request_done(&mut self, method: String, outcome: Result<Response, RequestError>) {
        let json = self.console.format().json;
        match outcome {
            Ok(response) => {
                self.print(&Record::Response {
                    method: &method,
                    id: response.id,
                    message: &response.message,
                    rtt: response.rtt,
                    is_error: response.is_error,
                });
                if !json {
                    let how = if response.is_error { "with an error" } else { "in" };
                    self.console.notice(format!("{method} answered {how} {:.2?}", response.rtt));
                }
                if response.is_error && self.finish.is_none() {
                    self.request_failed = true;
                }
            }
            Err(e) => {
                if json {
                    self.print(&Record::RequestFailed { method: &method, error: e.to_string() });
                } else {
                    self.console.error(format!("request {method}: {e}"));
                }
                if self.finish.is_none() {
                    self.request_failed = true;
                }
            }
        }
    }

    /// Ends the run when its input is done: stdin has ended (when read) and
    /// what it waits for has come or `--request-timeout` has passed since;
    /// or, with stdin not read, every request has its outcome and nothing
    /// asked to keep listening.
    ///
    /// Only while the session is open: a close before that would drop the
    /// messages still queued for the connection (stdin may end before the
    /// first connection opens, or while it reconnects). The session flushes
    /// its queue in the same turn it reports `Connected`, so once we have
    /// seen the state `Open` nothing we sent waits in the queue; the check
    /// runs again at every `Connected`, message and request outcome, and
    /// when the wait is over.
    fn check_input_done(&mut self) {
        if self.finish.is_some() || !self.requests.is_empty() || self.state != SessionState::Open {
            return;
        }
        if self.stdin_read {
            if !self.stdin_ended {
                return;
            }
            if self.awaited_has_come() || self.reply_wait_over {
                return self.stdin_done();
            }
            if self.reply_wait.is_none() {
                self.reply_wait = Some(Box::pin(R::timer(R::now() + self.args.request_timeout)));
            }
            return;
        }
        if self.args.count.is_some() {
            return;
        }
        let asked_to_listen =
            !self.args.subscribe.is_empty() || self.args.outgoing.iter().any(|o| matches!(o, Outgoing::Text(_)));
        let had_requests = self.args.outgoing.iter().any(|o| matches!(o, Outgoing::Request { .. }));
        if had_requests && !asked_to_listen {
            self.finish_with(Finish::InputDone);
        }
    }

    /// Messages that came after the first stdin line was handed over.
    fn replies(&self) -> u64 {
        self.received_before_lines.map_or(0, |before| self.received - before)
    }

    /// Whether what the end of stdin waits for has come: `--count` messages,
    /// or else a message for each line sent.
    fn awaited_has_come(&self) -> bool {
        match self.args.count {
            Some(n) => self.printed >= n,
            None => self.replies() >= self.lines_sent,
        }
    }

    /// Stdin has ended and the wait after it is over: closes, saying what
    /// did not come. Fewer than `--count` messages fails the run; fewer
    /// replies than lines does not (a server need not answer every line).
    fn stdin_done(&mut self) {
        let waited = self.args.request_timeout;
        if self.awaited_has_come() {
            self.finish_with(Finish::InputDone);
        } else if let Some(n) = self.args.count {
            self.console.error(format!(
                "stdin ended, and {} of --count {n} messages came within {waited:?} (--request-timeout)",
                self.printed
            ));
            self.finish_with(Finish::CountShort);
        } else {
            self.console.notice(format!(
                "stdin ended, and {} of {} replies (a message per line sent) came within {waited:?} \
                 (--request-timeout); closing",
                self.replies(),
                self.lines_sent
            ));
            self.finish_with(Finish::InputDone);
        }
    }

    /// Records why the run finishes and asks the client to close with 1000;
    /// the loop goes on until the event stream ends. Only the first reason counts.
    fn finish_with(&mut self, finish: Finish) {
        if self.finish.is_some() {
            return;
        }
        self.finish = Some(finish);
        // Stdin is done with: its thread sees the channel closed at its next line.
        self.lines = None;
        let client = self.client.clone();
        // A session that has closed already refuses the close: nothing to
        // report, since the event stream ends all the same.
        self.closing = Some(Box::pin(async move {
            let _ = client.close(CloseCode::Normal, "").await;
        }));
    }

    async fn draw_status(&mut self) {
        let rtt = self.client.latency().await.ok().and_then(|l| l.last);
        let heartbeat_rtt = self.client.heartbeat_health().await.ok().and_then(|h| h.last_rtt);
        let info =
            StatusInfo { state: self.state, reconnects: self.reconnects, rtt, heartbeat_rtt, messages: self.received };
        self.console.status(&info);
    }

    /// The exit code, once the event stream has ended; reports a failed connection.
    fn exit_code(&mut self) -> Exit {
        let exit = match self.finish {
            Some(Finish::Count | Finish::InputDone) => Exit::Done,
            Some(Finish::Signal(exit)) => exit,
            Some(Finish::NoConnection(exit)) => exit,
            Some(Finish::BadInput) => Exit::Usage,
            Some(Finish::CountShort) => Exit::Failed,
            Some(Finish::OutputFailed) => Exit::Failed,
            None => match &self.closed {
                Some(closed) => exit::for_session_end(closed, self.last_disconnect.as_ref(), self.ever_connected),
                // The stream ended without `Closed`: the driver is gone.
                None => Exit::Failed,
            },
        };
        match (exit, &self.last_disconnect, &self.closed) {
            (Exit::NoConnection | Exit::Tls, Some(reason), closed) if !self.ever_connected => {
                let message = connect_error(&self.args.url, reason);
                self.console.error(message);
                if let Some(gave_up @ CloseReason::GaveUp { .. }) = closed {
                    self.console.error(gave_up);
                }
            }
            (Exit::NoConnection | Exit::Tls, Some(reason), Some(closed)) => {
                self.console.error(format!("{closed}; the last disconnect: {reason}"));
            }
            (Exit::ClosedWithError, Some(reason), _) => self.console.error(reason),
            _ => {}
        }
        if exit == Exit::Done && (self.request_failed || self.output_failed) {
            return Exit::Failed;
        }
        exit
    }
}

/// What `attempt` of `Connected` and `Reconnecting` counts, in words: the
/// attempts since the link was last open, so 1 is a first try and n follows
/// n - 1 that failed to connect (what `--max-attempts` bounds).
fn tries(attempt: u32) -> String {
    match attempt {
        0 | 1 => "first try".to_owned(),
        n => format!("try {n}, after {} that failed to connect", n - 1),
    }
}
