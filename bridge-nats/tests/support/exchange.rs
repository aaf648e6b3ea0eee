//! A loopback mock exchange with a feed: JSON-RPC `public/subscribe`, then
//! every message emitted on a channel goes to every connection subscribed to
//! it, with a per-channel sequence number, so two bridges subscribed to the
//! same channel receive the same messages with the same numbers.
//!
//! Each connection has its own queue and writer, so a bridge that stops
//! reading stalls only its own connections; [`Exchange::backlog`] counts
//! what is queued and not yet written (the backpressure, as the exchange
//! sees it). The feed never drops and never replays: a connection made
//! later gets only what is emitted later. A connection is known by the path
//! of its URL (`ws://host:port/<path>`), so a test can give each replica its
//! own path and cut or hold one replica's connections only.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::Message;

/// Every path: [`Exchange::hold_subscriptions`] holds them all.
const ALL: &str = "*";

struct Shared {
    /// Per connection: its queue and the channels it subscribed to.
    conns: Mutex<Vec<Conn>>,
    /// Per channel: the next number to emit.
    next: Mutex<HashMap<String, u64>>,
    max_backlog: AtomicU64,
    /// Pings received, over every connection.
    pings: AtomicU64,
    /// Paths whose subscribe requests wait (unanswered, not applied); [`ALL`]: every path.
    hold: tokio::sync::watch::Sender<HashSet<String>>,
}

struct Conn {
    path: String,
    tx: mpsc::UnboundedSender<Message>,
    channels: HashSet<String>,
    open: bool,
    /// Messages queued to it, and written to its socket.
    queued: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl Conn {
    fn send(&self, m: Message) {
        if self.tx.send(m).is_ok() {
            self.queued.fetch_add(1, Relaxed);
        }
    }
}

/// Notes the path of an upgrade request.
struct PathOf(Arc<Mutex<String>>);

impl Callback for PathOf {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        *self.0.lock().unwrap() = request.uri().path().trim_start_matches('/').to_owned();
        Ok(response)
    }
}

/// The running exchange; its tasks end with the runtime.
#[derive(Clone)]
pub struct Exchange {
    addr: SocketAddr,
    shared: Arc<Shared>,
    padding: String,
}

impl Exchange {
    /// Listens on a free loopback port; each message carries `padding` bytes of filler.
    pub async fn start(padding: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind on loopback");
        let addr = listener.local_addr().expect("bound");
        let shared = Arc::new(Shared {
            conns: Mutex::default(),
            next: Mutex::default(),
            max_backlog: AtomicU64::new(0),
            pings: AtomicU64::new(0),
            hold: tokio::sync::watch::Sender::new(HashSet::new()),
        });
        let accept = shared.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let shared = accept.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let path = Arc::new(Mutex::new(String::new()));
                    let callback = PathOf(path.clone());
                    if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await {
                        let path = path.lock().unwrap().clone();
                        serve(ws, shared, path).await;
                    }
                });
            }
        });
        Self { addr, shared, padding: "x".repeat(padding) }
    }

    /// `ws://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// `ws://127.0.0.1:<port>/<path>`: connections known by `path`.
    pub fn url_for(&self, path: &str) -> String {
        format!("ws://{}/{path}", self.addr)
    }

    /// Open connections subscribed to `channel`.
    pub fn subscribers(&self, channel: &str) -> usize {
        self.shared.conns.lock().unwrap().iter().filter(|c| c.open && c.channels.contains(channel)).count()
    }

    /// Open connections of `path` subscribed to `channel`.
    pub fn subscribers_of(&self, path: &str, channel: &str) -> usize {
        let conns = self.shared.conns.lock().unwrap();
        conns.iter().filter(|c| c.open && c.path == path && c.channels.contains(channel)).count()
    }

    /// Connections ever made from `path`.
    pub fn connections_of(&self, path: &str) -> usize {
        self.shared.conns.lock().unwrap().iter().filter(|c| c.path == path).count()
    }

    /// Waits until every channel has exactly `each` open subscribers.
    pub async fn wait_subscribed(&self, channels: &[String], each: usize, within: Duration) {
        self.wait_until(within, "subscribers per channel", || {
            let counts: Vec<usize> = channels.iter().map(|c| self.subscribers(c)).collect();
            counts.iter().all(|&n| n == each).then_some(()).ok_or(format!("{counts:?}, wanted {each} each"))
        })
        .await;
    }

    /// Waits until every channel has a subscriber from `path`.
    pub async fn wait_subscribed_from(&self, path: &str, channels: &[String], within: Duration) {
        self.wait_until(within, "subscribed from the path", || {
            let counts: Vec<usize> = channels.iter().map(|c| self.subscribers_of(path, c)).collect();
            counts.iter().all(|&n| n == 1).then_some(()).ok_or(format!("{path}: {counts:?}"))
        })
        .await;
    }

    /// Polls `done` every 20 ms until it is `Ok`; fails with its last answer after `within`.
    pub async fn wait_until(&self, within: Duration, what: &str, mut done: impl FnMut() -> Result<(), String>) {
        let deadline = Instant::now() + within;
        loop {
            match done() {
                Ok(()) => return,
                Err(last) => assert!(Instant::now() < deadline, "{what} after {within:?}: {last}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Emits the next `n` messages of `channel` to its subscribers; returns the last number.
    pub fn emit(&self, channel: &str, n: u64) -> u64 {
        let mut last = 0;
        for _ in 0..n {
            let seq = {
                let mut next = self.shared.next.lock().unwrap();
                let s = next.entry(channel.to_owned()).or_insert(1);
                *s += 1;
                *s - 1
            };
            let text = format!(
                r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"{channel}","data":{{"seq":{seq},"pad":"{}"}}}}}}"#,
                self.padding
            );
            let conns = self.shared.conns.lock().unwrap();
            for c in conns.iter().filter(|c| c.open && c.channels.contains(channel)) {
                c.send(Message::text(text.clone()));
            }
            drop(conns);
            last = seq;
        }
        self.note_backlog();
        last
    }

    /// The exchange starts its numbering again: the next message of every
    /// channel is numbered `first` (a new session, a failover).
    pub fn restart_numbering(&self, first: u64) {
        for next in self.shared.next.lock().unwrap().values_mut() {
            *next = first;
        }
    }

    /// Sends `text` as it is to the subscribers of `channel` (a message the
    /// exchange gets wrong: another channel inside, a huge payload).
    pub fn emit_raw(&self, channel: &str, text: String) {
        let conns = self.shared.conns.lock().unwrap();
        for c in conns.iter().filter(|c| c.open && c.channels.contains(channel)) {
            c.send(Message::text(text.clone()));
        }
    }

    /// Messages queued to open connections and not yet written to their sockets.
    pub fn backlog(&self) -> u64 {
        let conns = self.shared.conns.lock().unwrap();
        conns.iter().filter(|c| c.open).map(|c| c.queued.load(Relaxed).saturating_sub(c.written.load(Relaxed))).sum()
    }

    /// Messages written to sockets, over every connection ever made.
    pub fn written(&self) -> u64 {
        self.shared.conns.lock().unwrap().iter().map(|c| c.written.load(Relaxed)).sum()
    }

    /// Pings received, over every connection.
    pub fn pings(&self) -> u64 {
        self.shared.pings.load(Relaxed)
    }

    /// Holds every subscribe request from now on (unanswered, not applied)
    /// until [`release_subscriptions`](Self::release_subscriptions).
    pub fn hold_subscriptions(&self) {
        self.hold_subscriptions_of(ALL);
    }

    /// Holds the subscribe requests of `path`'s connections.
    pub fn hold_subscriptions_of(&self, path: &str) {
        self.shared.hold.send_modify(|held| {
            held.insert(path.to_owned());
        });
    }

    /// Lets every held and later subscribe request through.
    pub fn release_subscriptions(&self) {
        self.shared.hold.send_modify(HashSet::clear);
    }

    /// Lets `path`'s held and later subscribe requests through (unless every path is held).
    pub fn release_subscriptions_of(&self, path: &str) {
        self.shared.hold.send_modify(|held| {
            held.remove(path);
        });
    }

    /// The largest backlog seen.
    pub fn max_backlog(&self) -> u64 {
        self.shared.max_backlog.load(Relaxed)
    }

    /// Drops every open connection (no close frame): a reconnect without replay.
    pub fn cut_all(&self) {
        self.cut_where(|_| true);
    }

    /// Drops the open connections of `path`.
    pub fn cut(&self, path: &str) {
        self.cut_where(|c| c.path == path);
    }

    fn cut_where(&self, which: impl Fn(&Conn) -> bool) {
        for c in self.shared.conns.lock().unwrap().iter_mut().filter(|c| which(c)) {
            c.open = false;
            let _ = c.tx.send(Message::Close(None));
            c.channels.clear();
        }
    }

    fn note_backlog(&self) {
        self.shared.max_backlog.fetch_max(self.backlog(), Relaxed);
    }
}

async fn serve(ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, shared: Arc<Shared>, path: String) {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let written = Arc::new(AtomicU64::new(0));
    let index = {
        let mut conns = shared.conns.lock().unwrap();
        let queued = Arc::new(AtomicU64::new(0));
        let path = path.clone();
        conns.push(Conn { path, tx, channels: HashSet::new(), open: true, queued, written: written.clone() });
        conns.len() - 1
    };
    let mut writer = tokio::spawn(async move {
        // What is queued goes out in one write (feed, then flush once the queue is empty).
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            let mut fed = 0u32;
            while let Some(m) = next.take() {
                // A Close is our cut: end the connection without a handshake.
                if matches!(m, Message::Close(_)) {
                    return;
                }
                let data = !matches!(m, Message::Pong(_));
                if sink.feed(m).await.is_err() {
                    return;
                }
                // Counted once handed to the socket's writer (which may write it before the flush).
                written.fetch_add(u64::from(data), Relaxed);
                fed += 1;
                if fed < 256 {
                    next = rx.try_recv().ok();
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let cut = async {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, Message::Ping(_)) {
                shared.pings.fetch_add(1, Relaxed);
            }
            let Message::Text(text) = m else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            let id = v.get("id").cloned().unwrap_or_default();
            if v.get("method").and_then(|m| m.as_str()) == Some("public/subscribe") {
                // Each waiting request holds a receiver, so the test can see it wait.
                let mut hold = shared.hold.subscribe();
                let _ = hold.wait_for(|held| !held.contains(ALL) && !held.contains(&path)).await;
                drop(hold);
                let channels: Vec<String> = v
                    .pointer("/params/channels")
                    .and_then(|c| c.as_array())
                    .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                let reply = serde_json::json!({ "jsonrpc": "2.0", "id": id, "result": channels }).to_string();
                let mut conns = shared.conns.lock().unwrap();
                conns[index].channels.extend(channels);
                // Answered through the same queue, counted like any message.
                conns[index].send(Message::text(reply));
            } else if !id.is_null() {
                let reply = serde_json::json!({ "jsonrpc": "2.0", "id": id, "result": "ok" }).to_string();
                shared.conns.lock().unwrap()[index].send(Message::text(reply));
            }
        }
    };
    tokio::select! {
        () = cut => {}
        _ = &mut writer => {}
    }
    // The writer holds the socket's write half: end it, so the client sees the TCP end at once.
    writer.abort();
    shared.conns.lock().unwrap()[index].open = false;
}
