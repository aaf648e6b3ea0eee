//! The mock server's threads: one accepts, one per connection serves.
//!
//! Role: the blocking side of [`MockServer`](super::MockServer), on plain
//! `std::net` sockets so it serves a client on any runtime. Invariant: no
//! thread blocks for longer than a tick without looking at the stop flag
//! (the listener polls; each socket reads with a tick's timeout and writes
//! with a bounded one), so dropping the server ends them all promptly.

use std::io::{self, ErrorKind};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::WebSocket;
use wslink_core::Message;

use super::shared::{Command, Conn, Connection, Ended, Shared};

/// How often a waiting thread looks at the stop flag and its commands.
pub(super) const TICK: Duration = Duration::from_millis(5);
/// A client that does not finish its upgrade within this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A write blocked this long (the client does not read) gives up, so the thread can see the stop flag.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Accepts connections until the server stops, then joins their threads.
pub(super) fn accept_loop(listener: TcpListener, shared: &Arc<Shared>) {
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _)) => {
                let worker = shared.clone();
                let spawned =
                    std::thread::Builder::new().name("mock-server-conn".into()).spawn(move || serve(stream, &worker));
                // A thread that cannot start drops its socket: the client sees a failed connection.
                if let Ok(handle) = spawned {
                    shared.lock().threads.push(handle);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let mut state = shared.lock();
                // Async waits look at their deadlines when woken: wake them every tick.
                for waker in state.wakers.drain(..) {
                    waker.wake();
                }
                drop(shared.changed.wait_timeout(state, TICK));
            }
            // A failed accept (the client gave up, descriptors ran out) is
            // the client's to notice; the server keeps listening.
            Err(_) => std::thread::sleep(TICK),
        }
    }
    let threads = std::mem::take(&mut shared.lock().threads);
    for thread in threads {
        let _ = thread.join();
    }
}

/// One connection: the upgrade, then messages until it ends or the server stops.
fn serve(stream: TcpStream, shared: &Arc<Shared>) {
    let Some((mut ws, index)) = upgrade(stream, shared) else { return };
    let mut blackholed = false;
    let ended = loop {
        if shared.stopping() {
            return;
        }
        let commands = std::mem::take(&mut shared.lock().conns[index].commands);
        let carried_out = commands.len() as u64;
        for command in commands {
            match command {
                Command::Cut => {
                    let _ = ws.get_ref().shutdown(Shutdown::Both);
                    finish(shared, index, Ended::Cut);
                    return;
                }
                // Nothing flows through a black hole; only a cut still acts.
                _ if blackholed => {}
                Command::Send(message) => send(&mut ws, message),
                Command::Close(code, reason) => {
                    let code = u16::from(code).into();
                    let _ = ws.close(Some(CloseFrame { code, reason: reason.into() }));
                }
                Command::Blackhole => blackholed = true,
            }
        }
        if carried_out > 0 {
            let mut state = shared.lock();
            state.conns[index].applied += carried_out;
            shared.notify(&mut state);
        }
        if blackholed {
            // Read nothing, answer nothing: wait for the next command or the stop.
            let state = shared.lock();
            if state.conns[index].commands.is_empty() && !shared.stopping() {
                drop(shared.changed.wait_timeout(state, TICK));
            }
            continue;
        }
        match ws.read() {
            Ok(tungstenite::Message::Text(text)) => {
                received(shared, index, &mut ws, Message::Text(text.as_str().into()))
            }
            Ok(tungstenite::Message::Binary(data)) => received(shared, index, &mut ws, Message::Binary(data)),
            Ok(tungstenite::Message::Close(frame)) => {
                // tungstenite answers it on the next read or flush; the read
                // after that reports the end.
                let close = frame.map(|f| (u16::from(f.code).into(), f.reason.as_str().to_owned()));
                shared.lock().conns[index].ended = Some(Ended::Closed(close));
            }
            // Pings are answered by tungstenite itself.
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // A tick without input: push out what is queued (pongs, close replies).
                let _ = ws.flush();
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                let state = shared.lock();
                break state.conns[index].ended.clone().unwrap_or(Ended::Closed(None));
            }
            Err(e) => break Ended::Dropped(e.to_string()),
        }
    };
    // Dropping the socket ends TCP from the server's side, as RFC 6455 §7.1.1 asks.
    drop(ws);
    finish(shared, index, ended);
}

/// The upgrade request's target and headers, as the handshake callback saw them.
type Seen = Arc<Mutex<Option<(String, Vec<(String, String)>)>>>;

/// Runs the server's side of the upgrade; registers the connection if it is accepted.
// The callback's error type is tungstenite's, whatever its size.
#[allow(clippy::result_large_err)]
fn upgrade(stream: TcpStream, shared: &Arc<Shared>) -> Option<(WebSocket<TcpStream>, usize)> {
    configure(&stream).ok()?;
    let refuse = shared.lock().refuse;
    let seen: Seen = Arc::default();
    let callback = {
        let (seen, shared) = (seen.clone(), shared.clone());
        move |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
            let headers = request
                .headers()
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
                .collect();
            *seen.lock().unwrap_or_else(PoisonError::into_inner) = Some((request.uri().to_string(), headers));
            match refuse {
                Some(status) => {
                    // Counted before the refusal is written, so a client that reads it sees the count.
                    let mut state = shared.lock();
                    state.refused += 1;
                    shared.notify(&mut state);
                    drop(state);
                    let mut refusal = ErrorResponse::new(None);
                    // `refuse_upgrades` checked the status.
                    *refusal.status_mut() = tungstenite::http::StatusCode::from_u16(status).unwrap_or_default();
                    Err(refusal)
                }
                None => Ok(response),
            }
        }
    };
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut attempt = tungstenite::accept_hdr(stream, callback);
    // Each turn reads for at most a tick; the deadline and the stop flag end it.
    let ws = loop {
        match attempt {
            Ok(ws) => break ws,
            Err(HandshakeError::Interrupted(mid)) if Instant::now() < deadline && !shared.stopping() => {
                attempt = mid.handshake();
            }
            Err(_) => return None,
        }
    };
    let (path, headers) = seen.lock().unwrap_or_else(PoisonError::into_inner).take().unwrap_or_default();
    let mut state = shared.lock();
    let index = state.conns.len();
    state.conns.push(Conn {
        info: Connection { index, path, headers },
        unread: Default::default(),
        commands: Default::default(),
        queued: 0,
        applied: 0,
        ended: None,
    });
    shared.notify(&mut state);
    Some((ws, index))
}

fn configure(stream: &TcpStream) -> io::Result<()> {
    // Some platforms hand accepted sockets the listener's non-blocking mode.
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(TICK))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))
}

/// Records a message from the client and sends the responder's answer.
fn received(shared: &Shared, index: usize, ws: &mut WebSocket<TcpStream>, message: Message) {
    let answer = {
        let mut state = shared.lock();
        let answer = state.responder.as_mut().and_then(|respond| respond(&message));
        state.conns[index].unread.push_back(message);
        shared.notify(&mut state);
        answer
    };
    if let Some(answer) = answer {
        send(ws, answer);
    }
}

fn send(ws: &mut WebSocket<TcpStream>, message: Message) {
    let message = match message {
        Message::Text(text) => tungstenite::Message::text(text.as_str()),
        Message::Binary(data) => tungstenite::Message::Binary(data),
    };
    // A failed write shows as the end of the connection at the next read.
    let _ = ws.send(message);
}

fn finish(shared: &Shared, index: usize, ended: Ended) {
    let mut state = shared.lock();
    let conn = &mut state.conns[index];
    conn.ended.get_or_insert(ended);
    shared.notify(&mut state);
}
