//! A loopback mock exchange with a feed: JSON-RPC `public/subscribe`, then
//! every message emitted on a channel goes to every connection subscribed to
//! it, with a per-channel sequence number, so two bridges subscribed to the
//! same channel receive the same messages with the same numbers.
//!
//! Each connection has its own queue and writer, so a bridge that stops
//! reading stalls only its own connections; [`Exchange::backlog`] counts
//! what is queued and not yet written (the backpressure, as the exchange
//! sees it). The feed never drops and never replays: a connection made
//! later gets only what is emitted later.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

struct Shared {
    /// Per connection: its queue and the channels it subscribed to.
    conns: Mutex<Vec<Conn>>,
    /// Per channel: the last number emitted.
    seqs: Mutex<HashMap<String, u64>>,
    max_backlog: AtomicU64,
    /// While true, subscribe requests wait (unanswered, not applied).
    hold: tokio::sync::watch::Sender<bool>,
}

struct Conn {
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
            seqs: Mutex::default(),
            max_backlog: AtomicU64::new(0),
            hold: tokio::sync::watch::Sender::new(false),
        });
        let accept = shared.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let shared = accept.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                        serve(ws, shared).await;
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

    /// Open connections subscribed to `channel`.
    pub fn subscribers(&self, channel: &str) -> usize {
        self.shared.conns.lock().unwrap().iter().filter(|c| c.open && c.channels.contains(channel)).count()
    }

    /// Waits until every channel has exactly `each` open subscribers.
    pub async fn wait_subscribed(&self, channels: &[String], each: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let counts: Vec<usize> = channels.iter().map(|c| self.subscribers(c)).collect();
            if counts.iter().all(|&n| n == each) {
                return;
            }
            assert!(Instant::now() < deadline, "subscribers per channel {counts:?}, wanted {each} each");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Emits the next `n` messages of `channel` to its subscribers; returns the last number.
    pub fn emit(&self, channel: &str, n: u64) -> u64 {
        let mut last = 0;
        for _ in 0..n {
            let seq = {
                let mut seqs = self.shared.seqs.lock().unwrap();
                let s = seqs.entry(channel.to_owned()).or_insert(0);
                *s += 1;
                *s
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
            self.note_backlog();
            last = seq;
        }
        last
    }

    /// Sends `text` as it is to the subscribers of `channel` (a message the
    /// exchange gets wrong: another channel inside, a huge payload).
    pub fn emit_raw(&self, channel: &str, text: String) {
        let conns = self.shared.conns.lock().unwrap();
        for c in conns.iter().filter(|c| c.open && c.channels.contains(channel)) {
            c.send(Message::text(text.clone()));
        }
    }

    /// The last number emitted on `channel`.
    pub fn last_seq(&self, channel: &str) -> u64 {
        self.shared.seqs.lock().unwrap().get(channel).copied().unwrap_or(0)
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

    /// Holds every subscribe request from now on (unanswered, not applied)
    /// until [`release_subscriptions`](Self::release_subscriptions).
    pub fn hold_subscriptions(&self) {
        self.shared.hold.send_replace(true);
    }

    /// Lets held and later subscribe requests through.
    pub fn release_subscriptions(&self) {
        self.shared.hold.send_replace(false);
    }

    /// Subscribe requests waiting while held.
    pub fn held_subscriptions(&self) -> usize {
        self.shared.hold.receiver_count()
    }

    /// The largest backlog seen.
    pub fn max_backlog(&self) -> u64 {
        self.shared.max_backlog.load(Relaxed)
    }

    /// Drops every open connection (no close frame): a reconnect without replay.
    pub fn cut_all(&self) {
        for c in self.shared.conns.lock().unwrap().iter_mut() {
            c.open = false;
            let _ = c.tx.send(Message::Close(None));
            c.channels.clear();
        }
    }

    fn note_backlog(&self) {
        self.shared.max_backlog.fetch_max(self.backlog(), Relaxed);
    }
}

async fn serve(ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, shared: Arc<Shared>) {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let written = Arc::new(AtomicU64::new(0));
    let index = {
        let mut conns = shared.conns.lock().unwrap();
        let queued = Arc::new(AtomicU64::new(0));
        conns.push(Conn { tx, channels: HashSet::new(), open: true, queued, written: written.clone() });
        conns.len() - 1
    };
    let mut writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            // A Close is our cut: end the connection without a handshake.
            if matches!(m, Message::Close(_)) {
                return;
            }
            let data = !matches!(m, Message::Pong(_));
            if sink.send(m).await.is_err() {
                return;
            }
            if data {
                written.fetch_add(1, Relaxed);
            }
        }
    });
    let cut = async {
        while let Some(Ok(m)) = stream.next().await {
            let Message::Text(text) = m else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            let id = v.get("id").cloned().unwrap_or_default();
            if v.get("method").and_then(|m| m.as_str()) == Some("public/subscribe") {
                // Each waiting request holds a receiver, so the test can see it wait.
                let mut hold = shared.hold.subscribe();
                let _ = hold.wait_for(|held| !*held).await;
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
