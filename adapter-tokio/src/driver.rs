//! The driver task: one loop per client that does what the session asks and
//! feeds it what happens. It decides nothing itself.
//!
//! Every turn does the same steps, as quinn's driver does: carry out the
//! session's actions, route its events (to awaiting requests, or to the event
//! stream), then wait for the first of: the session's deadline, the transport
//! opening, bytes to read, room to write, a command, room in the event stream.
//! Reading is paused while events wait for room in the stream, so a slow
//! consumer slows the server through TCP instead of growing memory here.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use wslink_core::{Action, CommandError, Session, SessionEvent, SessionState};

use crate::client::{encode_state, ClientError, Command, Reply, RequestError, Response, Snapshot};
use crate::transport::{self, Resolver, Transport};

/// Bytes read per turn; the core copies them into its own buffer.
const READ_SIZE: usize = 64 << 10;
/// How long a closed transport may take to flush its last bytes (a close frame).
const LINGER: Duration = Duration::from_secs(2);

type Connecting = Pin<Box<dyn Future<Output = io::Result<Transport>> + Send>>;

fn now() -> Instant {
    // tokio's clock, so tests with paused time drive the session too.
    tokio::time::Instant::now().into_std()
}

pub(crate) struct Driver {
    pub(crate) session: Session,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::Sender<SessionEvent>,
    pub(crate) state: Arc<AtomicU8>,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) resolver: Option<Resolver>,
}

struct Io {
    connecting: Option<Connecting>,
    reader: Option<ReadHalf<Transport>>,
    writer: Option<WriteHalf<Transport>>,
    out: VecDeque<Vec<u8>>,
    out_pos: usize,
}

#[derive(Default)]
struct Routing {
    pending_events: VecDeque<SessionEvent>,
    waiting: HashMap<u64, oneshot::Sender<Result<Response, RequestError>>>,
    close_waiters: Vec<Reply<()>>,
    paused_since: Option<Instant>,
    paused_total: Duration,
    commands_closed: bool,
    events_closed: bool,
    auto_closing: bool,
}

impl Driver {
    pub(crate) async fn run(self) {
        let Driver { mut session, mut commands, events, state, tls, resolver } = self;
        let mut io = Io { connecting: None, reader: None, writer: None, out: VecDeque::new(), out_pos: 0 };
        let mut r = Routing::default();
        let mut read_buf = vec![0u8; READ_SIZE];
        loop {
            actions(&mut session, &mut io, &tls, &resolver);
            route(&mut session, &mut r, &events, &state);
            if session.state() == SessionState::Closed {
                // `close` returns once the session is closed, even if events still wait to be read.
                for waiter in r.close_waiters.drain(..) {
                    let _ = waiter.send(Ok(()));
                }
                if r.pending_events.is_empty() {
                    break;
                }
            }
            if r.commands_closed && r.events_closed && !r.auto_closing {
                // Nobody holds a handle or the stream: close cleanly.
                r.auto_closing = true;
                let _ = session.close(wslink_core::CloseCode::Normal, "", now());
                continue;
            }
            let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
            let can_read = io.reader.is_some() && r.pending_events.is_empty();
            match (r.pending_events.is_empty(), r.paused_since) {
                (false, None) if io.reader.is_some() => r.paused_since = Some(now()),
                (true, Some(since)) => {
                    r.paused_total += now().saturating_duration_since(since);
                    r.paused_since = None;
                }
                _ => {}
            }
            tokio::select! {
                _ = sleep_until(deadline), if deadline.is_some() => session.handle_timeout(now()),
                opened = async { io.connecting.as_mut().expect("guarded").await }, if io.connecting.is_some() => {
                    io.connecting = None;
                    match opened {
                        Ok(stream) => {
                            let (reader, writer) = tokio::io::split(stream);
                            io.reader = Some(reader);
                            io.writer = Some(writer);
                            session.handle_transport_open(now());
                        }
                        Err(e) => session.handle_transport_error(e.kind(), &e.to_string(), now()),
                    }
                }
                read = async { io.reader.as_mut().expect("guarded").read(&mut read_buf).await }, if can_read => match read {
                    Ok(0) => session.handle_eof(now()),
                    Ok(n) => session.handle_input(&read_buf[..n], now()),
                    Err(e) => session.handle_transport_error(e.kind(), &e.to_string(), now()),
                },
                wrote = async {
                    let chunk = &io.out.front().expect("guarded")[io.out_pos..];
                    io.writer.as_mut().expect("guarded").write(chunk).await
                }, if io.writer.is_some() && !io.out.is_empty() => match wrote {
                    Ok(n) => {
                        io.out_pos += n;
                        if io.out.front().is_some_and(|b| io.out_pos >= b.len()) {
                            io.out.pop_front();
                            io.out_pos = 0;
                        }
                    }
                    Err(e) => session.handle_transport_error(e.kind(), &e.to_string(), now()),
                },
                command = commands.recv(), if !r.commands_closed => match command {
                    Some(command) => execute(&mut session, &mut r, command),
                    None => r.commands_closed = true,
                },
                _ = events.closed(), if !r.events_closed && r.pending_events.is_empty() => {
                    r.events_closed = true;
                }
                permit = events.reserve(), if !r.pending_events.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = r.pending_events.pop_front() {
                            permit.send(event);
                        }
                        while let Some(event) = r.pending_events.pop_front() {
                            if let Err(mpsc::error::TrySendError::Full(event)) = events.try_send(event) {
                                r.pending_events.push_front(event);
                                break;
                            }
                        }
                    }
                    Err(_) => {
                        r.events_closed = true;
                        r.pending_events.clear();
                    }
                },
            }
        }
        close_transport(&mut io);
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Carries out what the session asked of the transport, in order.
fn actions(session: &mut Session, io: &mut Io, tls: &Option<Arc<rustls::ClientConfig>>, resolver: &Option<Resolver>) {
    while let Some(action) = session.poll_action() {
        match action {
            Action::OpenTransport { host, port, tls: secure } => {
                tracing::debug!(%host, port, secure, "opening transport");
                let config = if secure { tls.clone() } else { None };
                match (secure, config) {
                    (true, None) => {
                        let e = io::Error::new(io::ErrorKind::InvalidInput, "wss URL without a TLS configuration");
                        session.handle_transport_error(e.kind(), &e.to_string(), now());
                    }
                    (_, config) => {
                        io.connecting = Some(Box::pin(transport::open(host, port, config, resolver.clone())))
                    }
                }
            }
            Action::Transmit(bytes) => io.out.push_back(bytes),
            Action::CloseTransport => close_transport(io),
        }
    }
}

/// Lets the last bytes (a close frame) go out on a short leash, then drops the transport.
fn close_transport(io: &mut Io) {
    io.connecting = None;
    io.reader = None;
    let out: Vec<Vec<u8>> = io.out.drain(..).collect();
    let pos = std::mem::take(&mut io.out_pos);
    if let Some(mut writer) = io.writer.take() {
        tokio::spawn(async move {
            let flush = async {
                for (i, chunk) in out.iter().enumerate() {
                    let start = if i == 0 { pos } else { 0 };
                    writer.write_all(&chunk[start..]).await?;
                }
                writer.shutdown().await
            };
            let _ = tokio::time::timeout(LINGER, flush).await;
        });
    }
}

/// Routes the session's events: request outcomes to their awaiting callers,
/// everything else to the event stream (through the pending queue).
fn route(session: &mut Session, r: &mut Routing, events: &mpsc::Sender<SessionEvent>, state: &AtomicU8) {
    while let Some(event) = session.poll_event() {
        match &event {
            SessionEvent::Response { id, message, rtt, is_error } => {
                if let Some(waiter) = r.waiting.remove(id) {
                    let response = Response { id: *id, message: message.clone(), rtt: *rtt, is_error: *is_error };
                    let _ = waiter.send(Ok(response));
                    continue;
                }
            }
            SessionEvent::RequestFailed { id, reason } => {
                if let Some(waiter) = r.waiting.remove(id) {
                    let _ = waiter.send(Err(RequestError::from(*reason)));
                    continue;
                }
            }
            SessionEvent::StateChanged { to, .. } => state.store(encode_state(*to), Ordering::Release),
            SessionEvent::Connected { attempt, .. } => tracing::info!(attempt, "connected"),
            SessionEvent::Disconnected { reason } => tracing::warn!(?reason, "disconnected"),
            SessionEvent::Reconnecting { attempt, delay } => tracing::info!(attempt, ?delay, "reconnecting"),
            SessionEvent::Closed { reason } => tracing::info!(?reason, "closed"),
            _ => {}
        }
        if r.events_closed {
            continue;
        }
        // Fast path: straight into the stream while it has room and nothing waits ahead.
        if r.pending_events.is_empty() {
            match events.try_send(event) {
                Ok(()) => continue,
                Err(mpsc::error::TrySendError::Full(event)) => r.pending_events.push_back(event),
                Err(mpsc::error::TrySendError::Closed(_)) => r.events_closed = true,
            }
        } else {
            r.pending_events.push_back(event);
        }
    }
}

/// Carries out one command from a handle.
fn execute(session: &mut Session, r: &mut Routing, command: Command) {
    let at = now();
    let answer = |reply: Reply<()>, result: Result<(), CommandError>| {
        let _ = reply.send(result.map_err(ClientError::from));
    };
    match command {
        Command::Send(message, reply) => answer(reply, session.send(message, at)),
        Command::Request { method, params, timeout, reply } => {
            match session.request(&method, params.as_deref(), timeout, at) {
                Ok(id) => {
                    r.waiting.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(RequestError::Rejected(ClientError::Command(e))));
                }
            }
        }
        Command::Subscribe(channels, reply) => {
            let refs: Vec<&str> = channels.iter().map(String::as_str).collect();
            answer(reply, session.subscribe(&refs, at));
        }
        Command::Unsubscribe(channels, reply) => {
            let refs: Vec<&str> = channels.iter().map(String::as_str).collect();
            answer(reply, session.unsubscribe(&refs, at));
        }
        Command::Reconnect(reply) => answer(reply, session.reconnect(at)),
        Command::Close(code, reason, reply) => match session.close(code, &reason, at) {
            Ok(()) => r.close_waiters.push(reply),
            Err(e) => answer(reply, Err(e)),
        },
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
