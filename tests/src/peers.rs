//! Servers for the scenario tests, built on tokio-tungstenite's server side
//! (a peer nobody here wrote) and, for broken servers, on plain TCP.
//! Each listens on 127.0.0.1 on a free port and lives as a task of the test's runtime.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind on loopback");
    let addr = listener.local_addr().expect("bound address");
    (listener, addr)
}

/// An echo server; with `tls`, over rustls.
pub async fn echo_server(tls: Option<Arc<rustls::ServerConfig>>) -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(config) => {
                        if let Ok(stream) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await {
                            echo(stream).await;
                        }
                    }
                    None => echo(tcp).await,
                }
            });
        }
    });
    addr
}

/// An echo server that keeps the address of every client it accepts, as it
/// sees it (the client's local address: the one it bound, if it bound one).
pub async fn echo_server_seeing_peers() -> (SocketAddr, Arc<Mutex<Vec<SocketAddr>>>) {
    let (listener, addr) = listen().await;
    let peers = Arc::new(Mutex::new(Vec::new()));
    let seen = peers.clone();
    tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            seen.lock().expect("not poisoned").push(peer);
            tokio::spawn(echo(tcp));
        }
    });
    (addr, peers)
}

/// Echoes every data message on `stream`, after the upgrade, until the link ends.
pub async fn echo<S: AsyncRead + AsyncWrite + Unpin>(stream: S) {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().max_message_size(Some(64 << 20));
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else { return };
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
            return;
        }
    }
}

/// What the exchange server saw, per connection.
#[derive(Debug, Default)]
pub struct ExchangeLog {
    /// `(connection number, method)` for every request, in order.
    pub requests: Vec<(usize, String)>,
    /// Close codes received, per connection.
    pub closes: Vec<(usize, Option<u16>)>,
}

/// A JSON-RPC server like an exchange's: `public/auth`, `public/subscribe` and
/// any other method; it can be told to close or drop every connection. It
/// listens on TCP, and serves any other stream handed to [`serve`](Self::serve)
/// (a Unix socket's, an in-memory duplex's) the same way.
pub struct ExchangeServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it saw.
    pub log: Arc<Mutex<ExchangeLog>>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    kill: broadcast::Sender<Kill>,
    answer_requests: bool,
    /// The test's runtime: `serve` may be called from another (a smol client's connector).
    runtime: tokio::runtime::Handle,
}

#[derive(Debug, Clone, Copy)]
enum Kill {
    CloseFrame(u16),
    Drop,
}

impl ExchangeServer {
    /// Starts it; `answer_requests` false leaves methods other than auth and subscribe unanswered.
    pub async fn start(answer_requests: bool) -> Self {
        let (listener, addr) = listen().await;
        let log = Arc::new(Mutex::new(ExchangeLog::default()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (kill, _) = broadcast::channel(8);
        let (log2, conns2, kill2) = (log.clone(), connections.clone(), kill.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = tcp.set_nodelay(true);
                let n = conns2.fetch_add(1, Ordering::SeqCst);
                let (log, kill) = (log2.clone(), kill2.subscribe());
                tokio::spawn(async move {
                    let _ = exchange(tcp, n, log, kill, answer_requests).await;
                });
            }
        });
        Self { addr, log, connections, kill, answer_requests, runtime: tokio::runtime::Handle::current() }
    }

    /// Serves one connection over `stream`, as one accepted on TCP (it
    /// counts, is logged, and is closed or dropped with the others); from
    /// any thread.
    pub fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(&self, stream: S) {
        let n = self.connections.fetch_add(1, Ordering::SeqCst);
        let (log, kill, answer_requests) = (self.log.clone(), self.kill.subscribe(), self.answer_requests);
        self.runtime.spawn(async move {
            let _ = exchange(stream, n, log, kill, answer_requests).await;
        });
    }

    /// Closes every open connection with a close frame carrying `code`.
    pub fn close_all(&self, code: u16) {
        let _ = self.kill.send(Kill::CloseFrame(code));
    }

    /// Drops every open connection without a close frame.
    pub fn drop_all(&self) {
        let _ = self.kill.send(Kill::Drop);
    }

    /// The methods seen on connection `n`, in order.
    pub fn methods_on(&self, n: usize) -> Vec<String> {
        let log = self.log.lock().expect("log lock");
        log.requests.iter().filter(|(c, _)| *c == n).map(|(_, m)| m.clone()).collect()
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    n: usize,
    log: Arc<Mutex<ExchangeLog>>,
    mut kill: broadcast::Receiver<Kill>,
    answer_requests: bool,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    loop {
        tokio::select! {
            order = kill.recv() => match order {
                Ok(Kill::CloseFrame(code)) => {
                    let frame = CloseFrame { code: CloseCode::from(code), reason: "server closing".into() };
                    ws.close(Some(frame)).await?;
                }
                _ => return Ok(()),
            },
            incoming = ws.next() => {
                let Some(message) = incoming else { return Ok(()) };
                match message? {
                    WsMessage::Text(text) => {
                        let request: serde_json::Value = serde_json::from_str(text.as_str())?;
                        let method = request["method"].as_str().unwrap_or_default().to_owned();
                        log.lock().expect("log lock").requests.push((n, method.clone()));
                        let result = match method.as_str() {
                            "public/auth" => serde_json::json!({"access_token": "t"}),
                            "public/subscribe" => request["params"]["channels"].clone(),
                            _ if answer_requests => serde_json::json!("ok"),
                            _ => continue,
                        };
                        let reply = serde_json::json!({"jsonrpc": "2.0", "id": request["id"], "result": result});
                        ws.send(WsMessage::text(reply.to_string())).await?;
                    }
                    WsMessage::Close(frame) => {
                        log.lock().expect("log lock").closes.push((n, frame.map(|f| u16::from(f.code))));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Answers every connection with `HTTP/1.1 403 Forbidden` and a short body.
pub async fn refusing_server() -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let body = "no token, no entry";
                let response = format!("HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                let _ = tcp.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

/// Accepts TCP and never says anything; holds every socket open until the test ends.
pub async fn silent_server() -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    addr
}

/// After the upgrade, sends 1 KiB binary messages as fast as the client takes
/// them, up to `limit`, counting each completed send.
pub async fn flood_server(limit: u64) -> (SocketAddr, Arc<AtomicU64>) {
    let (listener, addr) = listen().await;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        if let Ok((tcp, _)) = listener.accept().await {
            if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                let payload = bytes::Bytes::from(vec![7u8; 1024]);
                for _ in 0..limit {
                    if ws.send(WsMessage::Binary(payload.clone())).await.is_err() {
                        return;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    });
    (addr, sent)
}

/// A server that agrees to permessage-deflate, writes `wire` (raw frames,
/// typically broken compressed data) to its first client, and reports the
/// code of the close frame the client answers with (`None` if the client
/// closed without one).
pub async fn hostile_deflate_server(wire: Vec<u8>) -> (SocketAddr, tokio::sync::oneshot::Receiver<Option<u16>>) {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let (listener, addr) = listen().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else { return };
        // tungstenite's callback signature fixes the error type.
        #[allow(clippy::result_large_err)]
        let agree = |_: &Request, mut response: Response| {
            let value = "permessage-deflate".parse().expect("a header value");
            response.headers_mut().insert("Sec-WebSocket-Extensions", value);
            Ok(response)
        };
        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, agree).await else { return };
        // Past tungstenite's framing: it knows nothing of RSV1.
        if ws.get_mut().write_all(&wire).await.is_err() {
            return;
        }
        let mut code = None;
        // The client's close frame ends this; so does the link ending, or 20 frames.
        for _ in 0..20 {
            match ws.next().await {
                Some(Ok(WsMessage::Close(frame))) => {
                    code = frame.map(|f| u16::from(f.code));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        let _ = tx.send(code);
    });
    (addr, rx)
}

/// A JSON-RPC server that hangs up on the first `hang_ups` requests it
/// receives, dropping the connection without an answer or a close frame (an
/// order gateway that takes the order and then crashes), and answers every
/// later request with `"ok"`. Returns where it listens and, for each request
/// received, the number of the connection it came on (numbered from 0 in the
/// order they were accepted).
pub async fn hanging_up_server(hang_ups: usize) -> (SocketAddr, Arc<Mutex<Vec<usize>>>) {
    let (listener, addr) = listen().await;
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    tokio::spawn(async move {
        let mut accepted = 0;
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let (n, log) = (accepted, log.clone());
            accepted += 1;
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                while let Some(Ok(message)) = ws.next().await {
                    let WsMessage::Text(text) = message else { continue };
                    let Ok(request) = serde_json::from_str::<serde_json::Value>(text.as_str()) else { continue };
                    let count = {
                        let mut log = log.lock().expect("log lock");
                        log.push(n);
                        log.len()
                    };
                    if count <= hang_ups {
                        // Dropping the socket ends the connection with no answer.
                        return;
                    }
                    let reply = serde_json::json!({"jsonrpc": "2.0", "id": request["id"], "result": "ok"});
                    if ws.send(WsMessage::text(reply.to_string())).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, received)
}

/// What an over-granting deflate server answers to every permessage-deflate offer.
pub const OVER_GRANTING_ANSWER: &str = "permessage-deflate; client_max_window_bits=15";

/// A server that answers every upgrade with [`OVER_GRANTING_ANSWER`], whatever
/// window the client offered (as some deployed servers do, although RFC 7692
/// §7.1.2.2 forbids a window above the offer), then echoes each data message:
/// inflated with a 15-bit window, and sent back compressed with its own
/// 15-bit window (context kept both ways). Written by hand: tungstenite
/// speaks no permessage-deflate. A message that does not inflate gets a
/// close frame with 1007; the client's close frame is echoed.
pub async fn over_granting_deflate_server() -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let _ = over_granting_echo(tcp).await;
            });
        }
    });
    addr
}

async fn over_granting_echo(tcp: TcpStream) -> std::io::Result<()> {
    let mut tcp = tokio::io::BufReader::new(tcp);
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await?);
    }
    let head = String::from_utf8_lossy(&head);
    let key = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-key")))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: {OVER_GRANTING_ANSWER}\r\n\r\n"
    );
    tcp.write_all(response.as_bytes()).await?;
    let mut inflater = zlib_rs::Inflate::new(false, 15);
    let mut deflater = crate::ServerDeflate::new(6, 15);
    // (compressed, opcode, payload) of the message being assembled.
    let mut message: Option<(bool, u8, Vec<u8>)> = None;
    loop {
        let (b0, b1) = (tcp.read_u8().await?, tcp.read_u8().await?);
        let (fin, rsv1, opcode) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x0f);
        let len = match b1 & 0x7f {
            126 => u64::from(tcp.read_u16().await?),
            127 => tcp.read_u64().await?,
            n => u64::from(n),
        };
        let mut mask = [0u8; 4];
        tcp.read_exact(&mut mask).await?;
        let mut payload = vec![0u8; len as usize];
        tcp.read_exact(&mut payload).await?;
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        match opcode {
            8 => {
                tcp.write_all(&crate::server_frame(true, 8, &payload)).await?;
                return Ok(());
            }
            9 | 10 => continue,
            0 => message.as_mut().map(|(_, _, data)| data.extend_from_slice(&payload)).unwrap_or_default(),
            _ => message = Some((rsv1, opcode, payload)),
        }
        if !fin {
            continue;
        }
        let Some((compressed, opcode, data)) = message.take() else { continue };
        let data = if compressed {
            match inflate_message(&mut inflater, &data) {
                Some(data) => data,
                None => {
                    tcp.write_all(&crate::server_frame(true, 8, &1007u16.to_be_bytes())).await?;
                    return Ok(());
                }
            }
        } else {
            data
        };
        let echo = deflater.message([&data[..]]);
        tcp.write_all(&crate::compressed_frame(true, opcode, &echo)).await?;
    }
}

/// Inflates one permessage-deflate message (its `00 00 ff ff` tail put back).
fn inflate_message(inflater: &mut zlib_rs::Inflate, data: &[u8]) -> Option<Vec<u8>> {
    const STEP: usize = 64 << 10;
    let input = [data, &[0, 0, 0xff, 0xff]].concat();
    let mut input = &input[..];
    let mut out = Vec::new();
    loop {
        let len = out.len();
        out.resize(len + STEP, 0);
        let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
        inflater.decompress(input, &mut out[len..], zlib_rs::InflateFlush::SyncFlush).ok()?;
        input = &input[(inflater.total_in() - before_in) as usize..];
        let produced = (inflater.total_out() - before_out) as usize;
        out.truncate(len + produced);
        if input.is_empty() && produced < STEP {
            return Some(out);
        }
    }
}

/// After the upgrade, never reads again: writes `pings` ping frames of 125
/// bytes (each payload numbered), then a text message `done`, then holds the
/// socket. Its receive buffer is small, so what the client writes piles up
/// in the client soon. `pings` of 0 writes nothing: a peer that only stopped
/// reading. Returns where it listens.
pub async fn unread_server(pings: usize) -> SocketAddr {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    // Inherited by the accepted sockets: a peer that stopped reading fills fast.
    socket.set_recv_buffer_size(16 << 10).expect("SO_RCVBUF");
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind on loopback");
    let addr = socket.local_addr().expect("bound address");
    let listener = socket.listen(8).expect("listen");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { continue };
            // Past tungstenite: raw frames, and never a read.
            let tcp = ws.get_mut();
            let mut batch = Vec::with_capacity(1000 * 127);
            for n in 0..pings {
                batch.extend_from_slice(&[0x89, 125]);
                batch.extend_from_slice(&(n as u64).to_be_bytes());
                batch.extend_from_slice(&[b'p'; 117]);
                if batch.len() >= 1000 * 127 || n + 1 == pings {
                    if tcp.write_all(&batch).await.is_err() {
                        break;
                    }
                    batch.clear();
                }
            }
            if pings > 0 {
                let _ = tcp.write_all(&[0x81, 4, b'd', b'o', b'n', b'e']).await;
            }
            held.push(ws);
        }
    });
    addr
}

/// Sends message 0 (`feed n`, padded to 64 bytes), waits for `go`, then
/// sends messages 1 to `count - 1` as fast as the client takes them, then
/// reads (answering pings) until the client leaves. Serves one connection.
pub async fn flood_on_signal_server(count: usize) -> (SocketAddr, Arc<tokio::sync::Notify>) {
    let (listener, addr) = listen().await;
    let go = Arc::new(tokio::sync::Notify::new());
    let signal = go.clone();
    tokio::spawn(async move {
        if let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                if ws.send(WsMessage::text(flood_message(0))).await.is_err() {
                    return;
                }
                signal.notified().await;
                for n in 1..count {
                    if ws.feed(WsMessage::text(flood_message(n))).await.is_err() {
                        return;
                    }
                }
                if ws.flush().await.is_err() {
                    return;
                }
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    (addr, go)
}

/// Message `n` of [`flood_on_signal_server`].
pub fn flood_message(n: usize) -> String {
    format!("feed {n:>8} {}", "x".repeat(50))
}

/// A JSON-RPC server that answers every request with a result of `size`
/// bytes, after `feed` feed messages of 1 KiB.
pub async fn large_answer_server(size: usize, feed: usize) -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                while let Some(Ok(WsMessage::Text(text))) = ws.next().await {
                    let Ok(request) = serde_json::from_str::<serde_json::Value>(text.as_str()) else { return };
                    for n in 0..feed {
                        if ws.feed(WsMessage::text(format!("feed {n:>5} {}", "x".repeat(1013)))).await.is_err() {
                            return;
                        }
                    }
                    let reply = serde_json::json!({"jsonrpc": "2.0", "id": request["id"], "result": "r".repeat(size)});
                    if ws.send(WsMessage::text(reply.to_string())).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Accepts each connection, lets it upgrade, and cuts it (no close frame)
/// after `after`; counts the connections it accepted.
pub async fn cutting_server(after: std::time::Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let (listener, addr) = listen().await;
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                let _ = tokio::time::timeout(after, async { while let Some(Ok(_)) = ws.next().await {} }).await;
            });
        }
    });
    (addr, accepted)
}

/// An address on loopback where a TCP handshake never completes: a listener
/// whose accept queue is full (backlog 0, one connection made and never
/// accepted), so the kernel drops every further SYN. Keep the returned
/// holder alive while the address must stay that way. `v6` listens on `::1`.
pub async fn unanswering_address(v6: bool) -> (SocketAddr, Unanswering) {
    let socket = if v6 { tokio::net::TcpSocket::new_v6() } else { tokio::net::TcpSocket::new_v4() }.expect("a socket");
    let ip: std::net::IpAddr =
        if v6 { std::net::Ipv6Addr::LOCALHOST.into() } else { std::net::Ipv4Addr::LOCALHOST.into() };
    socket.bind(SocketAddr::new(ip, 0)).expect("bind on loopback");
    let addr = socket.local_addr().expect("bound address");
    let listener = socket.listen(0).expect("listen");
    // Fill the queue: connections complete until it is full (one, on Linux);
    // the first that does not is the proof.
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(300)) {
            Ok(stream) => fillers.push(stream),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return (addr, Unanswering { _listener: listener, _fillers: fillers })
            }
            Err(e) => panic!("filling the accept queue of {addr}: {e}"),
        }
    }
    panic!("the accept queue of {addr} never filled");
}

/// Keeps an [`unanswering_address`] unanswering while it lives.
pub struct Unanswering {
    _listener: TcpListener,
    _fillers: Vec<std::net::TcpStream>,
}
