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

use std::collections::{HashMap, VecDeque};
use std::future::{pending, poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future::{or, poll_once};
use tokio::sync::oneshot;
use tracing::Instrument;
use wslink_core::{Action, CommandError, Message, Session, SessionEvent, SessionState};

use crate::channels::{DriverEnd, FirstOutcome, Gone, NotDelivered};
use crate::client::{encode_state, ClientError, Command, Reply, RequestCommand, RequestError, Response, Snapshot};
use crate::filter::EventFilter;
use crate::telemetry::Telemetry;
use crate::{Resolver, Runtime, Spawner};

/// Reading also pauses once this many payload bytes wait for the consumer, so
/// large messages cannot pile up `event_capacity` deep.
const PENDING_BYTES: usize = 256 << 10;
/// Most commands carried out in one turn (the rest wait for the next, after
/// the deadline and the reads had their say).
const COMMAND_BURST: usize = 64;
/// How long a closed transport may take to flush its last bytes (a close
/// frame), on top of the wait for the server's end of stream.
const LINGER: Duration = Duration::from_secs(2);
/// Most reads of what already waits in the socket before a deadline is
/// judged: a peer that floods control frames (which fill no event queue)
/// cannot hold the deadlines off.
const READS_BEFORE_DEADLINE: usize = 16;

type Opening<R> = Pin<Box<dyn Future<Output = io::Result<(<R as Runtime>::Reader, <R as Runtime>::Writer)>> + Send>>;
/// A transport being closed: its last writes, the server's end of stream, the shutdown.
type Closing = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Everything the driver task owns.
pub(crate) struct Driver {
    /// Boxed: the task's future would otherwise hold the session twice (as
    /// the captured driver and as the loop's local), 4 KB per idle connection.
    pub(crate) session: Box<Session>,
    /// Commands in, event batches out, the state for the handles.
    pub(crate) channels: DriverEnd,
    /// Events the consumer may have waiting before reading pauses.
    pub(crate) event_capacity: usize,
    /// What opening a transport needs: TLS, the resolver, the proxy.
    pub(crate) opener: Opener,
    /// Where the closing connection's flush task runs (the runtime's executor if `None`).
    pub(crate) spawner: Option<Spawner>,
    /// Spans per attempt and, with the `metrics` feature, the pushed metrics.
    pub(crate) telemetry: Telemetry,
    /// Which events go to the stream.
    pub(crate) filter: EventFilter,
    /// `connect` waits for the first outcome: store it for it.
    pub(crate) report_first: bool,
}

struct Io<R: Runtime> {
    opening: Option<Opening<R>>,
    reader: Option<R::Reader>,
    writer: Option<R::Writer>,
    out: VecDeque<Vec<u8>>,
    out_pos: usize,
    /// A write found the socket full; set until the waiting write completes.
    write_blocked: bool,
    /// The last transport's close, when the session has closed: awaited
    /// before the last events go out.
    final_close: Option<Closing>,
    /// Closes of earlier transports, running as tasks of their own: each
    /// says when it is done, and the session's end waits for them too.
    earlier_closes: Vec<oneshot::Receiver<()>>,
}

#[derive(Default)]
struct Routing {
    /// Which events go to the stream.
    keep: EventFilter,
    /// `connect` waits for how the first attempt ends.
    first_pending: bool,
    /// Commands that would write, waiting for room in the write budget.
    held: Held,
    /// Whether the handles were last told the write budget is used up.
    write_full: bool,
    /// Events not yet handed to the stream: the next batch.
    pending_events: Vec<SessionEvent>,
    /// Payload bytes of the messages in `pending_events`.
    pending_bytes: usize,
    waiting: Waiting,
    close_waiters: Vec<Reply<()>>,
    paused_since: Option<Instant>,
    paused_total: Duration,
    commands_closed: bool,
    events_closed: bool,
    auto_closing: bool,
    /// The consumer has caught up with a protocol violation waiting behind
    /// its messages: the session may act on it.
    release_fault: bool,
}

/// The reply channels of requests awaiting their outcome, by id. Made on
/// the first request: an empty map is 48 bytes in every idle client's task,
/// and most clients never make a request.
#[derive(Default)]
#[allow(clippy::box_collection, reason = "the box is the point: 8 bytes in the task instead of 48")]
struct Waiting(Option<Box<HashMap<u64, Replier>>>);

type Replier = oneshot::Sender<Result<Response, RequestError>>;

/// Commands that would write, held in order while the write budget has no
/// room. Made on the first: most clients never fill their budget.
#[derive(Default)]
#[allow(clippy::box_collection, reason = "the box is the point: 8 bytes in the task instead of 32")]
struct Held(Option<Box<VecDeque<Command>>>);

impl Held {
    fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|q| q.is_empty())
    }

    fn push(&mut self, command: Command) {
        self.0.get_or_insert_default().push_back(command);
    }

    fn pop(&mut self) -> Option<Command> {
        let queue = self.0.as_mut()?;
        let command = queue.pop_front();
        if queue.is_empty() {
            self.0 = None;
        }
        command
    }

    /// Takes the posts out, in order (the session closed: they are refused before `Closed`).
    fn take_posts(&mut self) -> Vec<Message> {
        let Some(queue) = self.0.as_mut() else { return Vec::new() };
        let mut posts = Vec::new();
        queue.retain_mut(|command| match command {
            Command::Post(message) => {
                posts.push(std::mem::replace(&mut **message, Message::Binary(bytes::Bytes::new())));
                false
            }
            _ => true,
        });
        if queue.is_empty() {
            self.0 = None;
        }
        posts
    }
}

impl Routing {
    /// Whether nobody reads the stream: the consumer is gone, or every event is discarded.
    fn stream_unread(&self) -> bool {
        self.events_closed || matches!(self.keep, EventFilter::Discard)
    }
}

impl Waiting {
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |map| map.len())
    }

    fn insert(&mut self, id: u64, reply: Replier) {
        self.0.get_or_insert_default().insert(id, reply);
    }

    fn remove(&mut self, id: u64) -> Option<Replier> {
        self.0.as_mut()?.remove(&id)
    }
}

/// What woke the driver.
enum Wake<R: Runtime> {
    Deadline,
    Command(Option<Command>),
    Room(Result<(), Gone>),
    EventsClosed,
    Wrote(io::Result<usize>),
    Opened(io::Result<(R::Reader, R::Writer)>),
    Read(io::Result<usize>),
    CaughtUp,
}

impl Driver {
    /// The driver's loop. Not an `async fn`: that would keep `self` in the
    /// future beside the fields moved out of it (104 bytes per client).
    pub(crate) fn run<R: Runtime>(self) -> impl Future<Output = ()> + Send {
        let Driver { session, channels, event_capacity, opener, spawner, telemetry, filter, report_first } = self;
        let routing = Routing { keep: filter, first_pending: report_first, ..Routing::default() };
        run_loop::<R>(session, channels, event_capacity, opener, spawner, telemetry, routing)
    }
}

/// The loop of [`Driver::run`], its parts as arguments. An `async` block,
/// not an `async fn`, which would keep a second copy of its arguments.
#[allow(clippy::manual_async_fn, reason = "an async fn keeps its arguments twice")]
fn run_loop<R: Runtime>(
    mut session: Box<Session>,
    channels: DriverEnd,
    event_capacity: usize,
    opener: Opener,
    spawner: Option<Spawner>,
    mut telemetry: Telemetry,
    mut r: Routing,
) -> impl Future<Output = ()> + Send {
    async move {
        let mut io: Io<R> = Io {
            opening: None,
            reader: None,
            writer: None,
            out: VecDeque::new(),
            out_pos: 0,
            write_blocked: false,
            final_close: None,
            earlier_closes: Vec::new(),
        };
        // One timer for the task's life, moved as the session's deadline moves.
        let mut timer = std::pin::pin!(R::timer(R::now()));
        let mut armed: Option<Instant> = None;
        loop {
            release_held::<R>(&mut session, &mut r, &channels);
            actions::<R>(&mut session, &mut io, &opener, spawner.as_ref(), &mut telemetry);
            route(&mut session, &mut r, &channels, &mut telemetry);
            // Once a turn (a flood's figures go per read, not per message),
            // and before the events go out: whoever sees an event sees the
            // figures that led to it.
            telemetry.turn(&session, r.waiting.len());
            if session.state() != SessionState::Closed {
                deliver(&mut r, &channels);
            }
            if session.state() == SessionState::Closed {
                if let Some(closing) = io.final_close.take() {
                    // Everything written reaches the socket before anyone hears of the close.
                    closing.await;
                }
                for earlier in io.earlier_closes.drain(..) {
                    // Each on its own leash: the close of a connection replaced before.
                    let _ = earlier.await;
                }
                deliver(&mut r, &channels);
                // `close` returns once the session is closed, even if events still wait to be read.
                for waiter in r.close_waiters.drain(..) {
                    let _ = waiter.send(Ok(()));
                }
                if r.pending_events.is_empty() {
                    break;
                }
            }
            if r.commands_closed && r.stream_unread() && !r.auto_closing {
                // Nobody holds a handle or reads the stream: close cleanly.
                r.auto_closing = true;
                let _ = session.close(wslink_core::CloseCode::Normal, "", R::now());
                continue;
            }
            // Write what the session queued before waiting: the socket almost
            // always takes it at once, and leaving it to the wait below would
            // cost a whole turn (every future polled again) per send.
            if !io.write_blocked {
                if let Some(result) = write_now::<R>(&mut io).await {
                    on_written::<R>(&mut session, &mut io, result);
                    continue;
                }
                // The socket is full: the wait's write future takes over, and
                // no second write is tried each turn until it completes.
                io.write_blocked = io.writer.is_some() && !io.out.is_empty();
            }
            let can_read =
                io.reader.is_some() && r.pending_events.len() < event_capacity && r.pending_bytes < PENDING_BYTES;
            account_pause::<R>(&mut session, &mut r, &mut telemetry, io.reader.is_some() && !can_read);
            // A violation waits behind messages: hear when the consumer has taken them.
            let await_consumer = session.fault_next() && r.pending_events.is_empty() && !r.release_fault;

            // The timer only moves earlier: firing before the session's
            // deadline is harmless (`handle_timeout` finds nothing due and the
            // timer is set again), and it spares a reset on every read while
            // an idle timeout keeps moving later.
            match (session.poll_timeout(), armed) {
                (Some(deadline), Some(at)) if at <= deadline => {}
                (Some(deadline), _) => {
                    R::reset(timer.as_mut(), deadline);
                    armed = Some(deadline);
                }
                (None, _) => armed = None,
            }
            // Reads go straight into the session's input buffer.
            let read_buf = if can_read { session.read_room() } else { None };
            let wake: Wake<R> = {
                // Each future borrows its own part of the state; all are dropped before handling.
                let Io { opening, reader, writer, out, out_pos, .. } = &mut io;
                let (commands_closed, events_closed, no_pending) =
                    (r.commands_closed, r.events_closed, r.pending_events.is_empty());
                let channels = &channels;
                let timer = async {
                    match armed {
                        Some(_) => drop(timer.as_mut().await),
                        None => pending().await,
                    }
                    Wake::Deadline
                };
                let command = async {
                    if commands_closed {
                        pending::<()>().await;
                    }
                    Wake::Command(poll_fn(|cx| channels.poll_command(cx)).await)
                };
                let room = async {
                    if no_pending {
                        if events_closed {
                            pending::<()>().await;
                        }
                        poll_fn(|cx| channels.poll_consumer_gone(cx)).await;
                        return Wake::EventsClosed;
                    }
                    Wake::Room(poll_fn(|cx| channels.poll_room(cx)).await)
                };
                let write = async {
                    match (writer.as_mut(), out.front()) {
                        (Some(w), Some(chunk)) => Wake::Wrote(R::write(w, &chunk[*out_pos..]).await),
                        _ => pending().await,
                    }
                };
                let open = async {
                    match opening.as_mut() {
                        Some(opening) => Wake::Opened(opening.await),
                        None => pending().await,
                    }
                };
                let read = async {
                    match (reader.as_mut(), read_buf) {
                        (Some(reader), Some((buf, limit))) => Wake::Read(R::read_buf(reader, buf, limit).await),
                        _ => pending().await,
                    }
                };
                let caught_up = async {
                    if !await_consumer {
                        pending::<()>().await;
                    }
                    poll_fn(|cx| channels.poll_caught_up(cx)).await;
                    Wake::CaughtUp
                };
                or(timer, or(command, or(room, or(write, or(open, or(read, caught_up)))))).await
            };

            match wake {
                Wake::Deadline => {
                    armed = None;
                    read_waiting::<R>(&mut session, &mut io, &mut r, &channels, &mut telemetry, event_capacity).await;
                    session.handle_timeout(R::now());
                }
                Wake::Command(Some(command)) => {
                    let now = R::now();
                    execute(&mut session, &mut r, command, now);
                    // Commands that arrived together are carried out together,
                    // so their frames leave in one write, not one each.
                    for _ in 1..COMMAND_BURST {
                        if session.state() == SessionState::Closed {
                            // `route` refuses the posts still queued ahead of `Closed`.
                            break;
                        }
                        let Some(command) = channels.try_command() else { break };
                        execute(&mut session, &mut r, command, now);
                    }
                }
                Wake::Command(None) => r.commands_closed = true,
                Wake::Room(Ok(())) => deliver(&mut r, &channels),
                Wake::Room(Err(Gone)) | Wake::EventsClosed => {
                    r.events_closed = true;
                    r.pending_events.clear();
                    r.pending_bytes = 0;
                }
                Wake::Wrote(result) => {
                    io.write_blocked = false;
                    on_written::<R>(&mut session, &mut io, result);
                }
                Wake::Opened(Ok((reader, writer))) => {
                    io.opening = None;
                    io.reader = Some(reader);
                    io.writer = Some(writer);
                    session.handle_transport_open(R::now());
                }
                Wake::Opened(Err(e)) => {
                    io.opening = None;
                    if let Some(failure) = crate::tls::failure(&e) {
                        session.handle_tls_failure(failure, R::now());
                    } else if let Some(error) = crate::transport::proxy_failure(&e) {
                        session.handle_proxy_failure(error, R::now());
                    } else {
                        session.handle_transport_error(e.kind(), &e.to_string(), R::now());
                    }
                }
                Wake::Read(Ok(0)) => session.handle_eof(R::now()),
                Wake::Read(Ok(n)) => session.handle_read(n, R::now()),
                Wake::Read(Err(e)) => session.handle_transport_error(e.kind(), &e.to_string(), R::now()),
                Wake::CaughtUp => {
                    // What the consumer sent while taking the messages goes out
                    // before the session acts on the violation behind them.
                    let now = R::now();
                    for _ in 0..COMMAND_BURST {
                        if session.state() == SessionState::Closed {
                            break;
                        }
                        let Some(command) = channels.try_command() else { break };
                        execute(&mut session, &mut r, command, now);
                    }
                    r.release_fault = true;
                }
            }
        }
        if io.writer.is_some() {
            // The session closed without asking (it always asks): close all the same.
            closing::<R>(&mut io, None).await;
        }
    }
}

/// Writes the head of the write queue if the socket takes it without
/// waiting; `None` when there is nothing to write or the socket is full (the
/// wait's write future takes over then).
async fn write_now<R: Runtime>(io: &mut Io<R>) -> Option<io::Result<usize>> {
    let (writer, chunk) = (io.writer.as_mut()?, io.out.front()?);
    poll_once(R::write(writer, &chunk[io.out_pos..])).await
}

/// Accounts for a write: drops what went out and tells the session, or
/// hands the error to the session.
fn on_written<R: Runtime>(session: &mut Session, io: &mut Io<R>, result: io::Result<usize>) {
    match result {
        // A transport that takes nothing of a non-empty buffer is broken; without this the driver would spin.
        Ok(0) => session.handle_transport_error(io::ErrorKind::WriteZero, "the transport took no bytes", R::now()),
        Ok(n) => {
            session.handle_written(n, R::now());
            io.out_pos += n;
            if io.out.front().is_some_and(|b| io.out_pos >= b.len()) {
                io.out.pop_front();
                io.out_pos = 0;
                if io.out.is_empty() {
                    // Everything is written: an idle client keeps no write queue.
                    io.out = VecDeque::new();
                }
            }
        }
        Err(e) => session.handle_transport_error(e.kind(), &e.to_string(), R::now()),
    }
}

/// Reads what already waits in the socket, without waiting, before the
/// deadline that woke the driver is judged: at most `READS_BEFORE_DEADLINE`
/// reads, and none past the consumer's room (the pause is then accounted, so
/// the session freezes the deadlines that wait on the peer). A driver that
/// was not polled for a while (an `InlineClient` whose owner was busy) thus
/// finds the link's data, not a silence.
async fn read_waiting<R: Runtime>(
    session: &mut Session,
    io: &mut Io<R>,
    r: &mut Routing,
    channels: &DriverEnd,
    telemetry: &mut Telemetry,
    event_capacity: usize,
) {
    let mut can_read = false;
    for _ in 0..READS_BEFORE_DEADLINE {
        route(session, r, channels, telemetry);
        can_read = r.pending_events.len() < event_capacity && r.pending_bytes < PENDING_BYTES;
        let (Some(reader), true) = (io.reader.as_mut(), can_read) else { break };
        let Some((buf, limit)) = session.read_room() else { break };
        match poll_once(R::read_buf(reader, buf, limit)).await {
            Some(Ok(0)) => {
                session.handle_eof(R::now());
                return;
            }
            Some(Ok(n)) => session.handle_read(n, R::now()),
            Some(Err(e)) => {
                session.handle_transport_error(e.kind(), &e.to_string(), R::now());
                return;
            }
            None => return account_pause::<R>(session, r, telemetry, false),
        }
    }
    account_pause::<R>(session, r, telemetry, io.reader.is_some() && !can_read);
}

/// Carries out the commands held for room in the write budget while there
/// is room, and tells the handles whether the budget is used up.
fn release_held<R: Runtime>(session: &mut Session, r: &mut Routing, channels: &DriverEnd) {
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

/// Starts or ends a pause of reading, and tells the session and the
/// telemetry (now: the driver may sleep through the pause); the clock is
/// read only when one does.
fn account_pause<R: Runtime>(session: &mut Session, r: &mut Routing, telemetry: &mut Telemetry, paused: bool) {
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

/// Hands the waiting events to the stream as one batch, if it has room.
fn deliver(r: &mut Routing, channels: &DriverEnd) {
    if r.pending_events.is_empty() {
        return;
    }
    let count = r.pending_events.len();
    match channels.try_deliver(std::mem::take(&mut r.pending_events)) {
        Ok(()) => {
            r.pending_bytes = 0;
            // The next batch starts with room for as many events as this one
            // had, so it is not regrown (and copied) step by step during the
            // next read; a few events do not pay for a buffer held while the
            // connection idles.
            if count > 8 {
                r.pending_events = Vec::with_capacity(count);
            }
        }
        Err(NotDelivered::Full(batch)) => r.pending_events = batch,
        Err(NotDelivered::Gone) => {
            r.events_closed = true;
            r.pending_bytes = 0;
        }
    }
}

/// What opening a transport needs, decided by the builder.
pub(crate) struct Opener {
    /// Built for a `wss://` URL, and for an `https://` proxy (whose certificate the same roots check).
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) resolver: Option<Resolver>,
    /// The proxy every transport goes through (the builder's decision for the URL), if any.
    pub(crate) proxy: Option<Arc<wslink_core::proxy::ProxyServer>>,
    /// Between the starts of connection attempts to a host's addresses (RFC 8305).
    pub(crate) attempt_delay: Duration,
}

/// Carries out what the session asked of the transport, in order.
fn actions<R: Runtime>(
    session: &mut Session,
    io: &mut Io<R>,
    opener: &Opener,
    spawner: Option<&Spawner>,
    telemetry: &mut Telemetry,
) {
    while let Some(action) = session.poll_action() {
        match action {
            Action::OpenTransport { host, port, tls: secure } => {
                let proxy = opener.proxy.clone();
                let span = telemetry.attempt(session, &host, port, secure, proxy.as_deref());
                // An `https://` proxy's certificate is checked against the same roots.
                let via = proxy.map(|p| {
                    let proxy_tls = if p.uses_tls() { opener.tls.clone() } else { None };
                    (p, proxy_tls)
                });
                let config = if secure { opener.tls.clone() } else { None };
                if secure && config.is_none() {
                    let e = io::Error::new(io::ErrorKind::InvalidInput, "wss URL without a TLS configuration");
                    session.handle_transport_error(e.kind(), &e.to_string(), R::now());
                } else {
                    // Resolving, TCP, the proxy's tunnel and TLS run in the attempt's span.
                    let resolver = opener.resolver.clone();
                    let opening = crate::transport::open::<R>(host, port, config, resolver, via, opener.attempt_delay);
                    let opening = opening.instrument(span);
                    io.opening = Some(Box::pin(opening));
                }
            }
            Action::Transmit(bytes) => io.out.push_back(bytes),
            Action::CloseTransport { wait_for_server } => {
                let closing = closing::<R>(io, wait_for_server);
                if session.state() == SessionState::Closed {
                    io.final_close = Some(closing);
                } else {
                    // The next connection need not wait for this one's goodbye,
                    // but the session's end will.
                    let (done, earlier) = oneshot::channel();
                    io.earlier_closes.retain_mut(|e| matches!(e.try_recv(), Err(oneshot::error::TryRecvError::Empty)));
                    io.earlier_closes.push(earlier);
                    crate::spawn::<R>(spawner, async move {
                        closing.await;
                        let _ = done.send(());
                    });
                }
            }
        }
    }
}

/// Takes the transport out of `io` and returns its close: the last bytes (a
/// close frame) written, then, when asked, the server's end of stream awaited
/// (RFC 6455 §7.1.1: the server closes TCP first), then the write half shut
/// down; all on a leash, so a dead peer cannot hold it.
fn closing<R: Runtime>(io: &mut Io<R>, wait_for_server: Option<Duration>) -> Closing {
    io.opening = None;
    io.write_blocked = false;
    let reader = io.reader.take();
    let out: Vec<Vec<u8>> = io.out.drain(..).collect();
    let pos = std::mem::take(&mut io.out_pos);
    let Some(mut writer) = io.writer.take() else { return Box::pin(async {}) };
    let wait = wait_for_server.unwrap_or_default();
    let leash = LINGER.checked_add(wait).and_then(|l| R::now().checked_add(l));
    Box::pin(async move {
        let close = async {
            for (i, chunk) in out.iter().enumerate() {
                let start = if i == 0 { pos } else { 0 };
                R::write_all(&mut writer, &chunk[start..]).await?;
            }
            if let (Some(mut reader), false) = (reader, wait.is_zero()) {
                let server_ended = async {
                    let mut sink = bytes::BytesMut::with_capacity(4096);
                    loop {
                        sink.clear();
                        if !matches!(R::read_buf(&mut reader, &mut sink, usize::MAX).await, Ok(n) if n > 0) {
                            break;
                        }
                    }
                };
                let waited = async {
                    if let Some(until) = R::now().checked_add(wait) {
                        R::timer(until).await;
                    } else {
                        pending::<()>().await;
                    }
                };
                or(server_ended, waited).await;
            }
            R::shutdown(&mut writer).await
        };
        let leash = async {
            match leash {
                Some(until) => drop(R::timer(until).await),
                None => pending::<()>().await,
            }
            Err(io::Error::new(io::ErrorKind::TimedOut, "the last writes did not finish in time"))
        };
        match or(close, leash).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => tracing::warn!(error = %e, "closing the transport"),
            // The peer is gone: nothing more could be written anyway.
            Err(e) => tracing::debug!(error = %e, "closing the transport"),
        }
    })
}

/// Routes the session's events: request outcomes to their awaiting callers,
/// everything else to the pending queue, which the run loop hands to the
/// event stream (once the session has closed, after the transport's close).
fn route(session: &mut Session, r: &mut Routing, channels: &DriverEnd, telemetry: &mut Telemetry) {
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
            let first = match &event {
                SessionEvent::Connected { .. } => Some(FirstOutcome::Connected),
                SessionEvent::Disconnected { reason } => Some(FirstOutcome::Failed(reason.clone())),
                SessionEvent::Closed { reason } => Some(FirstOutcome::Closed(reason.clone())),
                _ => None,
            };
            if let Some(first) = first {
                r.first_pending = false;
                channels.set_first_outcome(first);
            }
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

/// Carries out one command from a handle. One that would write waits in
/// `held` while the write budget has no room (or others wait before it).
fn execute(session: &mut Session, r: &mut Routing, command: Command, at: Instant) {
    let writes = matches!(
        command,
        Command::Send(_)
            | Command::Post(_)
            | Command::Request(_)
            | Command::Subscribe(_)
            | Command::Unsubscribe(_)
            | Command::Control(_)
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
        Command::Post(message) => session.post(*message, at),
        Command::Request(request) => {
            let RequestCommand { method, params, timeout, reply } = *request;
            match session.request(&method, params.as_deref(), timeout, at) {
                Ok(id) => {
                    r.waiting.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(RequestError::Rejected(ClientError::Command(e))));
                }
            }
        }
        Command::Subscribe(subscribe) => {
            let (channels, reply) = *subscribe;
            let refs: Vec<&str> = channels.iter().map(String::as_str).collect();
            answer(reply, session.subscribe(&refs, at));
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
