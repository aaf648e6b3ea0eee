//! How a session ends, and how it lives through a pause, on both runtimes,
//! over loopback TCP against peers nobody here wrote (tokio-tungstenite's
//! server) and, for a broken server, raw TCP:
//!
//! - a program that exits the moment its event stream ends loses nothing it
//!   wrote, and ends TCP only after the server has (a child process per
//!   run, killed by its own handle if it hangs);
//! - after a close handshake the server closes TCP first (RFC 6455 §7.1.1),
//!   so TIME_WAIT is the server's, as Linux's `/proc/net/tcp` shows;
//! - a consumer that stops reading does not make a live link look dead, and a
//!   link that dies during the pause is still found;
//! - messages read ahead of a protocol violation are delivered, and what the
//!   consumer sends while taking them goes out before the close frame.
//!
//! Every wait is bounded; the sleeps are the scenarios' premises (a consumer
//! that stalls, a server slow to end TCP), never a wait for something to happen.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use wslink_adapter::{Builder, Events, Runtime};
use wslink_core::{
    CloseCode, CloseReason, ConnectionError, DisconnectReason, Message, PingConfig, ProtocolError, SessionEvent,
    SessionState,
};
use wslink_tests::proxy::{Fault, FaultProxy};
use wslink_tests::scenario::{builder, run, until, WAIT};
use wslink_tests::scenarios;

scenarios!(
    the_server_closes_tcp_first_when_the_client_closes,
    the_server_closes_tcp_first_when_it_closes,
    a_slow_consumer_does_not_make_a_live_link_look_dead,
    a_link_that_dies_during_a_pause_is_still_found,
    messages_before_a_reserved_opcode_are_delivered_and_answered_before_the_close,
    messages_before_invalid_utf8_are_delivered_and_answered_before_the_close,
);

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind on loopback");
    let addr = listener.local_addr().expect("bound address");
    (listener, addr)
}

/// How long the servers keep TCP open after a close handshake before they
/// end it (well within the client's 5 s close timeout): a client that did
/// not wait for the server's end of stream would end TCP first.
const SERVER_LINGER: Duration = Duration::from_millis(300);

/// A client that stops for good when its connection ends, instead of reconnecting.
fn one_connection<R: Runtime>(url: &str) -> Builder<R> {
    builder::<R>(url).retry(|_| None)
}

// ---------------------------------------------------------------------------
// Nothing written is lost when the program exits as its stream ends.

/// Runs of the child per runtime: a close that is not awaited shows in some
/// runs only.
const EXIT_RUNS: usize = 20;
/// Longest one run of the child may take before it is killed and the test fails.
const EXIT_RUN_BOUND: Duration = Duration::from_secs(20);
/// Messages the server sends and expects back, as `close_and_exit` echoes them.
const ECHOES: usize = 8;
const ECHO_SIZE: usize = 1 << 20;

#[test]
fn a_tokio_program_that_exits_as_its_stream_ends_loses_nothing() {
    exit_runs("tokio", Closer::Client);
}

#[test]
fn a_smol_program_that_exits_as_its_stream_ends_loses_nothing() {
    exit_runs("smol", Closer::Client);
}

/// The server closes while the client's echoes still wait to be written (the
/// server has read none of them, so TCP holds them back): the close reply and
/// every echo must still leave before the program exits.
#[test]
fn a_tokio_program_whose_server_closes_mid_echo_loses_nothing() {
    exit_runs("tokio", Closer::Server);
}

#[test]
fn a_smol_program_whose_server_closes_mid_echo_loses_nothing() {
    exit_runs("smol", Closer::Server);
}

/// The same, but the session waits to reconnect and the program closes it
/// then: the close of the connection the server ended is still awaited.
#[test]
fn a_tokio_program_that_closes_in_backoff_after_the_servers_close_loses_nothing() {
    exit_runs_in("tokio", Closer::Server, "server-closes-in-backoff");
}

#[test]
fn a_smol_program_that_closes_in_backoff_after_the_servers_close_loses_nothing() {
    exit_runs_in("smol", Closer::Server, "server-closes-in-backoff");
}

/// The server's messages: 1 MB each, each unlike the others and none
/// periodic, so a lost, repeated or shifted chunk shows.
fn echo_payloads() -> Arc<[bytes::Bytes]> {
    (0..ECHOES).map(|i| (0..ECHO_SIZE).map(|j| (j * 7 + j / 251 + i * 131) as u8).collect::<Vec<u8>>().into()).collect()
}

fn exit_runs(runtime: &str, closer: Closer) {
    let mode = match closer {
        Closer::Client => "client-closes",
        Closer::Server => "server-closes",
    };
    exit_runs_in(runtime, closer, mode);
}

/// `EXIT_RUNS` runs of `close_and_exit <runtime> <mode>` against a server that closes as `closer` says.
fn exit_runs_in(runtime: &str, closer: Closer, mode: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let (go, go_rx) = mpsc::unbounded_channel();
        let (addr, mut reports) = echo_checking_server(closer, go_rx).await;
        let url = format!("ws://{addr}/");
        for run in 0..EXIT_RUNS {
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_close_and_exit"))
                .args([runtime, mode, url.as_str()])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("the child starts");
            let mut stderr = child.stderr.take().expect("piped stderr");
            let errors = tokio::spawn(async move {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text).await;
                text
            });
            // The child says when its echoes are handed over: then the server may close.
            let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("piped stdout"));
            let go = go.clone();
            tokio::spawn(async move {
                let mut line = String::new();
                while tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut line).await.is_ok_and(|n| n > 0) {
                    if line.trim() == "echoed" {
                        let _ = go.send(());
                    }
                    line.clear();
                }
            });
            let status = match tokio::time::timeout(EXIT_RUN_BOUND, child.wait()).await {
                Ok(status) => status.expect("the child's status"),
                Err(_) => {
                    child.kill().await.expect("the hung child is killed");
                    panic!("run {run} on {runtime} did not exit within {EXIT_RUN_BOUND:?}");
                }
            };
            let errors = errors.await.expect("stderr reader");
            assert!(status.success(), "run {run} on {runtime}: {status}; stderr:\n{errors}");
            let report = tokio::time::timeout(WAIT, reports.recv()).await;
            match report {
                Ok(Some(Ok(()))) => {}
                Ok(Some(Err(lost))) => panic!("run {run} on {runtime}: the server saw {lost}; child stderr:\n{errors}"),
                Ok(None) | Err(_) => panic!("run {run} on {runtime}: no report from the server"),
            }
        }
        assert!(reports.try_recv().is_err(), "one connection per run");
    });
}

/// Per connection (one at a time): sends `ECHOES` messages of 1 MB; when the
/// server closes, waits for the word from `go` (the client has handed its
/// echoes over) and sends a close frame with 1000 before reading anything.
/// Then must read each echo back whole and in order, then a close frame with
/// 1000 (the client's close, or its reply); answers it (tungstenite does, on
/// the next read); after `SERVER_LINGER` in which the client must not end
/// TCP, ends it, must then see the client's end of stream, and reports what
/// went wrong, if anything.
async fn echo_checking_server(
    closer: Closer,
    mut go: mpsc::UnboundedReceiver<()>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Result<(), String>>) {
    let (listener, addr) = listen().await;
    let (tx, rx) = mpsc::unbounded_channel();
    let payloads = echo_payloads();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tx.send(expect_echoes_and_close(tcp, &payloads, closer, &mut go).await);
        }
    });
    (addr, rx)
}

async fn expect_echoes_and_close(
    tcp: TcpStream,
    payloads: &[bytes::Bytes],
    closer: Closer,
    go: &mut mpsc::UnboundedReceiver<()>,
) -> Result<(), String> {
    let _ = tcp.set_nodelay(true);
    let mut ws = tokio_tungstenite::accept_async(tcp).await.map_err(|e| format!("a failed upgrade: {e}"))?;
    for (i, payload) in payloads.iter().enumerate() {
        ws.send(WsMessage::Binary(payload.clone())).await.map_err(|e| format!("sending {i} failed: {e}"))?;
    }
    if closer == Closer::Server {
        match tokio::time::timeout(WAIT, go.recv()).await {
            Ok(Some(())) => {}
            _ => return Err("no word that the echoes were handed over".into()),
        }
        let close = CloseFrame { code: WsCloseCode::Normal, reason: "".into() };
        ws.send(WsMessage::Close(Some(close))).await.map_err(|e| format!("sending the close failed: {e}"))?;
    }
    for (i, payload) in payloads.iter().enumerate() {
        match next_not_ping(&mut ws).await.map_err(|e| format!("{e} instead of echo {i}"))? {
            WsMessage::Binary(data) if data == payload => {}
            WsMessage::Binary(data) => return Err(format!("echo {i} of {} bytes, not the one sent", data.len())),
            other => return Err(format!("{} instead of echo {i}", describe(&other))),
        }
    }
    match next_not_ping(&mut ws).await.map_err(|e| format!("{e} instead of the close frame"))? {
        WsMessage::Close(Some(frame)) if frame.code == WsCloseCode::Normal => {}
        other => return Err(format!("{} instead of the close frame with 1000", describe(&other))),
    }
    match ws.next().await {
        None => {}
        Some(Ok(other)) => return Err(format!("{} after the close frame", describe(&other))),
        Some(Err(e)) => return Err(format!("an error after the close frame: {e}")),
    }
    // The handshake is done; this server ends TCP after a moment, and the
    // client must wait for that (its stream ends, and it exits, only after).
    let tcp = ws.get_mut();
    let mut byte = [0u8; 1];
    match tokio::time::timeout(SERVER_LINGER, tcp.read(&mut byte)).await {
        Err(_) => {}
        Ok(Ok(0)) => return Err("the client's end of stream before the server's".into()),
        Ok(other) => return Err(format!("{other:?} from the client before the server's end of stream")),
    }
    tcp.shutdown().await.map_err(|e| format!("shutting down failed: {e}"))?;
    match tokio::time::timeout(WAIT, tcp.read(&mut byte)).await {
        Ok(Ok(0)) => Ok(()),
        other => Err(format!("{other:?} instead of the client's end of stream")),
    }
}

/// The next message that is not a ping or pong (the client pings every 15
/// s by default); a bounded number of those is skipped.
async fn next_not_ping(ws: &mut WebSocketStream<TcpStream>) -> Result<WsMessage, String> {
    for _ in 0..16 {
        match ws.next().await {
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            Some(Ok(message)) => return Ok(message),
            Some(Err(e)) => return Err(format!("an error ({e})")),
            None => return Err("the end of the stream".into()),
        }
    }
    Err("sixteen pings in a row".into())
}

/// A message, without a megabyte of payload.
fn describe(message: &WsMessage) -> String {
    match message {
        WsMessage::Binary(data) => format!("a binary message of {} bytes", data.len()),
        WsMessage::Text(text) => format!("a text message of {} bytes", text.len()),
        other => format!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The server closes TCP first, so TIME_WAIT is the server's.

/// Who sends the first close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closer {
    Client,
    /// The server, when the client sends it any message.
    Server,
}

/// Upgrades one connection, reports the client's address, then either waits
/// for the client's close or closes with 1000 when a message comes; reads
/// on until tungstenite ends the stream (the close handshake done), and
/// after `SERVER_LINGER` drops it.
async fn closing_server(closer: Closer) -> (SocketAddr, oneshot::Receiver<SocketAddr>) {
    let (listener, addr) = listen().await;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let Ok((tcp, peer)) = listener.accept().await else { return };
        let _ = tx.send(peer);
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
        if closer == Closer::Server {
            if let Some(Ok(_)) = ws.next().await {
                let frame = CloseFrame { code: WsCloseCode::Normal, reason: "server closing".into() };
                let _ = ws.close(Some(frame)).await;
            }
        }
        // The close handshake ends this; the bound only guards against a peer gone mad.
        for _ in 0..100 {
            if !matches!(ws.next().await, Some(Ok(_))) {
                break;
            }
        }
        // The premise: a server that takes a moment to end TCP. A client that
        // did not wait for its FIN would send its own first, and hold TIME_WAIT.
        tokio::time::sleep(SERVER_LINGER).await;
        drop(ws);
    });
    (addr, rx)
}

async fn the_server_closes_tcp_first_when_the_client_closes<R: Runtime>() {
    let (server, peer) = closing_server(Closer::Client).await;
    let (client, mut events) = one_connection::<R>(&format!("ws://{server}/")).connect().await.expect("connected");
    let peer = tokio::time::timeout(WAIT, peer).await.expect("accepted in time").expect("the client's address");
    client.close(CloseCode::Normal, "bye").await.expect("closed");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Closed { reason: CloseReason::Requested }));
    assert_server_holds_time_wait(server, peer).await;
}

async fn the_server_closes_tcp_first_when_it_closes<R: Runtime>() {
    let (server, peer) = closing_server(Closer::Server).await;
    let (client, mut events) = one_connection::<R>(&format!("ws://{server}/")).connect().await.expect("connected");
    let peer = tokio::time::timeout(WAIT, peer).await.expect("accepted in time").expect("the client's address");
    client.send_text("close, please").await.expect("sent");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    let clean_1000 = |e: &SessionEvent| {
        matches!(e, SessionEvent::Disconnected { reason: DisconnectReason::Closed(c) }
            if c.is_clean() && c.code == CloseCode::Normal && c.sent_code == Some(CloseCode::Normal))
    };
    assert!(seen.iter().any(clean_1000), "a clean close handshake with 1000: {seen:?}");
    assert_eq!(seen.last(), Some(&SessionEvent::Closed { reason: CloseReason::Stopped }));
    assert_server_holds_time_wait(server, peer).await;
}

/// TCP's TIME_WAIT state in `/proc/net/tcp`.
const TIME_WAIT: u8 = 0x06;

/// A row of Linux's `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TcpRow {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
}

/// Every TCP socket of this network namespace (those in TCP_CLOSE are not listed).
fn tcp_table() -> Vec<TcpRow> {
    let v4 = std::fs::read_to_string("/proc/net/tcp").expect("Linux's /proc/net/tcp");
    // IPv6 may be off; 127.0.0.1 is in the IPv4 table anyway.
    let v6 = std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    // The first line of each names the columns.
    v4.lines().skip(1).chain(v6.lines().skip(1)).filter_map(parse_tcp_row).collect()
}

/// `sl local_address rem_address st ...`, the addresses as `0100007F:1F90`.
fn parse_tcp_row(line: &str) -> Option<TcpRow> {
    let mut fields = line.split_whitespace();
    let _slot = fields.next()?;
    let local = parse_proc_addr(fields.next()?)?;
    let remote = parse_proc_addr(fields.next()?)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    Some(TcpRow { local, remote, state })
}

/// The kernel prints each 32-bit word of the address as it lies in memory,
/// read as a host-order number; the port is plain hex. IPv4-mapped IPv6
/// addresses come out as IPv4.
fn parse_proc_addr(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for word in ip.as_bytes().chunks(8) {
        let word = u32::from_str_radix(std::str::from_utf8(word).ok()?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Waits (polling every 10 ms, up to 5 s) until the server's side of the
/// connection from `client` is in TIME_WAIT and the client's side has left
/// the table or reached TIME_WAIT too (which a simultaneous close would
/// give); then the client's must not be in TIME_WAIT: the server closed first.
async fn assert_server_holds_time_wait(server: SocketAddr, client: SocketAddr) {
    let ours = |table: &[TcpRow]| -> Vec<TcpRow> {
        table
            .iter()
            .filter(|row| (row.local, row.remote) == (server, client) || (row.local, row.remote) == (client, server))
            .copied()
            .collect()
    };
    let server_waits = |rows: &[TcpRow]| rows.iter().any(|row| row.local == server && row.state == TIME_WAIT);
    let client_settled = |rows: &[TcpRow]| rows.iter().all(|row| row.local != client || row.state == TIME_WAIT);
    let mut rows = ours(&tcp_table());
    for _ in 0..500 {
        if server_waits(&rows) && client_settled(&rows) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        rows = ours(&tcp_table());
    }
    assert!(server_waits(&rows), "the server's side {server} is in TIME_WAIT (06): {rows:?}");
    assert!(
        !rows.iter().any(|row| row.local == client && row.state == TIME_WAIT),
        "the client's side {client} is not in TIME_WAIT: {rows:?}"
    );
}

// ---------------------------------------------------------------------------
// Pauses: a slow consumer and a link that dies while it stalls.

/// Pings whose pong deadline a stalled consumer outlasts tenfold.
const PING: PingConfig = PingConfig::new(Duration::from_millis(200), Duration::from_millis(100));
/// Messages the counting server sends.
const COUNT: usize = 20_000;

/// Per connection: sends the texts "0", "1", ... up to `COUNT` as fast as
/// the client takes them (each `send` flushes, pongs included), while
/// another task reads all along, so that tungstenite answers every ping.
async fn counting_server() -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                let (mut sink, mut stream) = ws.split();
                tokio::spawn(async move {
                    for i in 0..COUNT {
                        if sink.send(WsMessage::text(i.to_string())).await.is_err() {
                            return;
                        }
                    }
                });
                // Ends with the connection (tungstenite answers the close and ends the stream).
                while let Some(Ok(_)) = stream.next().await {}
            });
        }
    });
    addr
}

/// The next message, within `WAIT`; a disconnect fails the scenario.
async fn next_message(events: &mut Events) -> Message {
    let event = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Some(SessionEvent::Message(message)) => return Some(message),
                Some(SessionEvent::Disconnected { reason }) => panic!("the live link was dropped: {reason:?}"),
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await;
    event.expect("a message within WAIT").expect("the stream ended")
}

async fn a_slow_consumer_does_not_make_a_live_link_look_dead<R: Runtime>() {
    let addr = counting_server().await;
    let (client, mut events) =
        builder::<R>(&format!("ws://{addr}/")).ping(Some(PING)).event_capacity(8).connect().await.expect("connected");
    assert_eq!(next_message(&mut events).await, Message::Text("0".into()));
    // The premise: the consumer stalls for ten ping rounds, and reading pauses.
    tokio::time::sleep((PING.interval + PING.timeout) * 10).await;
    for i in 1..COUNT {
        assert_eq!(next_message(&mut events).await, Message::Text(i.to_string().into()), "in order, once each");
    }
    let metrics = client.metrics().await.expect("metrics");
    assert!(metrics.read_paused > Duration::ZERO, "reading was paused");
    // The link is live and its pings are answered.
    let mut answered = false;
    for _ in 0..(WAIT.as_millis() / 10) {
        if client.heartbeat_health().await.expect("health").last_rtt.is_some() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(answered, "a ping was answered");
    client.close(CloseCode::Normal, "").await.expect("closed");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert!(!seen.iter().any(|e| matches!(e, SessionEvent::Disconnected { .. })), "{seen:?}");
}

async fn a_link_that_dies_during_a_pause_is_still_found<R: Runtime>() {
    let upstream = counting_server().await;
    let proxy = FaultProxy::start(upstream).await;
    let (client, mut events) = one_connection::<R>(&format!("ws://{}/", proxy.addr))
        .ping(Some(PING))
        .event_capacity(8)
        .connect()
        .await
        .expect("connected");
    assert_eq!(next_message(&mut events).await, Message::Text("0".into()));
    // The premise: the consumer stalls, reading pauses, and meanwhile the link dies.
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Alive until now, though three pong deadlines passed with reading paused.
    assert_eq!(client.state(), SessionState::Open, "the paused link was not taken for dead");
    let metrics = client.metrics().await.expect("metrics");
    assert!(metrics.read_paused > Duration::ZERO, "reading was paused");
    assert_eq!(metrics.session.connects, 1);
    proxy.set(Fault::Blackhole);
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Disconnected { .. })).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Disconnected { reason: DisconnectReason::HeartbeatTimeout }));
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Closed { reason: CloseReason::Stopped }));
}

// ---------------------------------------------------------------------------
// Messages ahead of a protocol violation, and the answers to them.

/// A frame from the client, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientFrame {
    opcode: u8,
    payload: Vec<u8>,
}

/// Most bytes, and reads, the raw server takes from a client before giving up on it.
const RAW_LIMIT: usize = 1 << 20;
const RAW_READS: usize = 1024;

/// A server with no WebSocket library: it upgrades by hand and, in the same
/// write as the 101 response, sends the text "question" and then `bad` (a
/// broken frame). It then reads the client's frames until end of stream,
/// answering a close frame with one of its own, and reports them in order.
async fn questioning_server(bad: &'static [u8]) -> (SocketAddr, oneshot::Receiver<Vec<ClientFrame>>) {
    let (listener, addr) = listen().await;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let Ok((mut tcp, _)) = listener.accept().await else { return };
        let _ = tcp.set_nodelay(true);
        let mut buf = Vec::new();
        let Some(head_end) = read_request_head(&mut tcp, &mut buf).await else { return };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let Some(key) = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim().eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
        }) else {
            return;
        };
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut out = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes();
        out.extend_from_slice(&[0x81, 0x08]);
        out.extend_from_slice(b"question");
        out.extend_from_slice(bad);
        if tcp.write_all(&out).await.is_err() {
            return;
        }
        buf.drain(..head_end);
        let mut frames = Vec::new();
        for _ in 0..RAW_READS {
            while let Some((frame, used)) = parse_client_frame(&buf) {
                buf.drain(..used);
                if frame.opcode == 0x8 {
                    // Answer the close as a server does (echo its code); the client may be gone already.
                    let mut reply = vec![0x88, frame.payload.len().min(2) as u8];
                    reply.extend_from_slice(&frame.payload[..frame.payload.len().min(2)]);
                    let _ = tcp.write_all(&reply).await;
                }
                frames.push(frame);
            }
            let mut chunk = [0u8; 4096];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) if buf.len() + n <= RAW_LIMIT => buf.extend_from_slice(&chunk[..n]),
                Ok(_) => break,
            }
        }
        let _ = tx.send(frames);
    });
    (addr, rx)
}

/// Reads until the blank line that ends an HTTP request head; its length.
async fn read_request_head(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    let mut chunk = [0u8; 1024];
    for _ in 0..64 {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(at + 4);
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    None
}

/// One whole masked frame from the front of `buf`, and its length on the wire
/// (RFC 6455 §5.2: 2 header bytes, a 16- or 64-bit length, the 4-byte mask).
fn parse_client_frame(buf: &[u8]) -> Option<(ClientFrame, usize)> {
    let (&first, &second) = (buf.first()?, buf.get(1)?);
    let (len, mut at) = match second & 0x7f {
        126 => (u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)), 4),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let mask: [u8; 4] = if second & 0x80 != 0 {
        at += 4;
        buf.get(at - 4..at)?.try_into().ok()?
    } else {
        [0; 4]
    };
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    let payload = buf.get(at..end)?.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
    Some((ClientFrame { opcode: first & 0x0f, payload }, end))
}

/// The client takes "question", answers "answer" while the violation behind
/// it waits, and comes back for more: the server gets the answer, then the
/// close frame with `code`; the client reports the violation, then stops.
async fn violation_after_a_question<R: Runtime>(bad: &'static [u8], code: u16, error: ProtocolError) {
    let (addr, frames) = questioning_server(bad).await;
    let (client, mut events) = one_connection::<R>(&format!("ws://{addr}/")).connect().await.expect("connected");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Message(_) | SessionEvent::Disconnected { .. })).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Message(Message::Text("question".into()))), "delivered: {seen:?}");
    client.send_text("answer").await.expect("the answer is handed over");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    let disconnect = seen.iter().find_map(|e| match e {
        SessionEvent::Disconnected { reason: DisconnectReason::Closed(closed) } => Some(closed),
        _ => None,
    });
    let closed = disconnect.unwrap_or_else(|| panic!("a disconnect for the violation: {seen:?}"));
    assert_eq!(closed.error, Some(ConnectionError::Protocol(error)), "{closed:?}");
    assert_eq!(closed.sent_code.map(u16::from), Some(code), "{closed:?}");
    assert_eq!(seen.last(), Some(&SessionEvent::Closed { reason: CloseReason::Stopped }));

    let frames = tokio::time::timeout(WAIT, frames).await.expect("the client ended the connection").expect("frames");
    assert_eq!(frames.len(), 2, "the answer, then the close frame: {frames:?}");
    assert_eq!(frames[0], ClientFrame { opcode: 0x1, payload: b"answer".to_vec() }, "the answer first");
    assert_eq!(frames[1].opcode, 0x8, "then the close frame: {frames:?}");
    assert_eq!(frames[1].payload.get(..2), Some(&code.to_be_bytes()[..]), "with {code}: {frames:?}");
}

async fn messages_before_a_reserved_opcode_are_delivered_and_answered_before_the_close<R: Runtime>() {
    // FIN and opcode 3, reserved for data frames (RFC 6455 §5.2): 1002.
    violation_after_a_question::<R>(&[0x83, 0x00], 1002, ProtocolError::ReservedOpcode(3)).await;
}

async fn messages_before_invalid_utf8_are_delivered_and_answered_before_the_close<R: Runtime>() {
    // A text frame whose one byte is not UTF-8 (RFC 6455 §8.1): 1007.
    violation_after_a_question::<R>(&[0x81, 0x01, 0xff], 1007, ProtocolError::InvalidUtf8).await;
}
