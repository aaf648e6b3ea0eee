//! The demo: a small exchange-like server on loopback and a wslink client that
//! stays connected to it through forced drops.
//!
//! The server speaks JSON-RPC (`public/auth`, `public/subscribe`,
//! `public/get_time`), streams ticks on subscribed channels, and cuts every
//! connection after a few seconds without a close frame. The client
//! authenticates, subscribes, pings, sends a request every half second, and
//! heals each cut: reconnect, re-auth, resubscribe. It prints what happens and
//! a summary, and ends by itself after about 15 seconds.
//!
//! `cargo run -p wslink-tokio --example demo`, or with `-- --record demo.wslink`
//! to record the session (then `cargo run -p wslink-tests --example recording
//! -- demo.wslink` prints it as a timeline and replays it from the file alone:
//! the recording keeps the settings and names the hooks, all presets here).
//! The recording example's tests run this file with shorter timings.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use wslink_tokio::{presets, BackoffConfig, Builder, CloseCode, FileRecorder, Message, PingConfig, SessionEvent};

/// How long the demo runs, and how long its server keeps each connection.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// The client's whole run.
    pub run_for: Duration,
    /// Each connection's life before the server cuts it.
    pub cut_after: Duration,
}

/// The demo's own: 15 s, a cut every 3.5 s.
pub const DEMO: Timings = Timings { run_for: Duration::from_secs(15), cut_after: Duration::from_millis(3500) };

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let record_to = std::env::args().skip_while(|a| a != "--record").nth(1);
    run(DEMO, record_to.as_deref()).await
}

/// The server, and the client against it for `timings.run_for`, recorded
/// into `record_to` when given; prints what happens and a summary.
pub async fn run(timings: Timings, record_to: Option<&str>) -> Result<(), Box<dyn std::error::Error>> {
    let Timings { run_for, cut_after } = timings;
    let start = Instant::now();
    let addr = start_server(cut_after).await?;
    println!("demo server listening on ws://{addr}/ (cuts each connection after {cut_after:?})\n");

    let mut builder = Builder::new(&format!("ws://{addr}/api"))?
        .authenticator(presets::JsonRpcAuth::new("public/auth", |attempt| {
            format!(r#"{{"grant_type":"client_credentials","client_id":"demo","attempt":{attempt}}}"#)
        }))
        .ping(Some(PingConfig::new(Duration::from_secs(1), Duration::from_millis(500))))
        .backoff(BackoffConfig::default().initial(Duration::from_millis(200)));
    let mut recording = None;
    if let Some(path) = record_to {
        let (recorder, file) = FileRecorder::create(path, 64 << 20)?;
        builder = builder.record(recorder);
        recording = Some(file);
    }
    let (client, mut events) = builder.connect().await?;
    let at = |start: Instant| format!("{:>6.2}s", start.elapsed().as_secs_f64());
    client.subscribe(&["trades.BTC-PERPETUAL", "ticker.ETH-PERPETUAL"]).await?;

    let requester = client.clone();
    let requests = tokio::spawn(async move {
        let (mut ok, mut failed) = (0u32, 0u32);
        while start.elapsed() < run_for.saturating_sub(Duration::from_millis(600)) {
            match requester.request("public/get_time", None, Some(Duration::from_secs(2))).await {
                Ok(r) => {
                    ok += 1;
                    if ok % 5 == 1 {
                        // A message shows as its text (a binary one as its size and first bytes).
                        println!("[{}] request public/get_time -> {} in {:.2?}", at(start), r.message, r.rtt);
                    }
                }
                Err(e) => {
                    failed += 1;
                    println!("[{}] request failed: {e}", at(start));
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        (ok, failed)
    });

    let (mut ticks, mut connections) = (0u64, 0u32);
    // `attempt` counts the attempts since the link was last open: 1 is the first try.
    let tries = |attempt: u32| match attempt {
        1 => "first try".to_owned(),
        n => format!("try {n}, after {} that failed", n - 1),
    };
    let deadline = tokio::time::sleep(run_for);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            event = events.recv() => match event {
                Some(SessionEvent::Message(Message::Text(t))) => {
                    ticks += 1;
                    if ticks % 20 == 1 {
                        println!("[{}] tick #{ticks}: {}", at(start), t.as_str());
                    }
                }
                Some(SessionEvent::Disconnected { reason }) => println!("[{}] disconnected: {reason}", at(start)),
                Some(SessionEvent::Reconnecting { attempt, delay }) => {
                    println!("[{}] reconnecting in {delay:.2?} ({})", at(start), tries(attempt))
                }
                Some(SessionEvent::Connected { attempt, .. }) => {
                    // Every connection is on the stream, the first one too.
                    connections += 1;
                    match connections {
                        1 => println!("[{}] connected and authenticated ({})", at(start), tries(attempt)),
                        n => println!("[{}] connected again, re-authenticated (connection {n}, {})", at(start), tries(attempt)),
                    }
                }
                Some(SessionEvent::Subscribed { channels }) => println!("[{}] subscribed {channels:?}", at(start)),
                Some(SessionEvent::Closed { reason }) => {
                    println!("[{}] closed: {reason}", at(start));
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
    }
    let (ok, failed) = requests.await?;
    let metrics = client.metrics().await?;
    let latency = client.latency().await?;
    let health = client.heartbeat_health().await?;
    client.close(CloseCode::Normal, "demo over").await?;
    // The stream ends once the client is gone; then the recording is complete.
    while events.recv().await.is_some() {}
    drop(client);

    let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3));
    println!("\n=== summary after {:.1} s ===", start.elapsed().as_secs_f64());
    println!(
        "connections      {connections} opened in {} attempts ({} of them reconnects after the forced cuts)",
        metrics.session.connects, metrics.session.reconnects
    );
    println!(
        "messages         {} in, {} out; {ticks} ticks delivered",
        metrics.session.messages_in, metrics.session.messages_out
    );
    println!("requests         {ok} answered, {failed} failed (lost with a cut, never replayed)");
    println!(
        "latency          p50 {}  p99 {}  max {}  (n={})",
        ms(latency.p50),
        ms(latency.p99),
        ms(latency.max),
        latency.count
    );
    println!(
        "heartbeat        last rtt {}, consecutive failures {}, total failures {}",
        ms(health.last_rtt),
        health.consecutive_failures,
        health.total_failures
    );
    println!("bytes            {} in, {} out", metrics.session.bytes_in, metrics.session.bytes_out);
    if let (Some(file), Some(path)) = (recording, record_to) {
        let dropped = file.finish()?;
        println!("recording        {path} ({dropped} lines dropped); view it with");
        println!("                 cargo run -p wslink-tests --example recording -- {path}");
    }
    Ok(())
}

/// The exchange-like server: one task per connection, each cut after `cut_after`.
async fn start_server(cut_after: Duration) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let seq = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seq = seq.clone();
            tokio::spawn(async move {
                let _ = serve(tcp, seq, cut_after).await;
            });
        }
    });
    Ok(addr)
}

async fn serve(
    tcp: tokio::net::TcpStream,
    seq: Arc<AtomicU64>,
    cut_after: Duration,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // As an exchange's server does: without it, a reply written while a tick
    // is still unacknowledged waits for the client's delayed ACK (about 40 ms).
    tcp.set_nodelay(true)?;
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    let opened = tokio::time::Instant::now();
    let mut channels: Vec<String> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let cut = tokio::time::sleep_until(opened + cut_after);
    tokio::pin!(cut);
    loop {
        tokio::select! {
            _ = &mut cut => return Ok(()), // drop the TCP connection: no close frame
            _ = tick.tick() => {
                for channel in &channels {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let px = 100.0 + (n % 50) as f64 / 10.0;
                    let note = format!(r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"{channel}","data":{{"seq":{n},"price":{px:.1}}}}}}}"#);
                    ws.send(WsMessage::text(note)).await?;
                }
            }
            incoming = ws.next() => {
                let Some(message) = incoming else { return Ok(()) };
                let WsMessage::Text(text) = message? else { continue };
                let request: serde_json::Value = serde_json::from_str(text.as_str())?;
                let id = &request["id"];
                let result = match request["method"].as_str().unwrap_or_default() {
                    "public/auth" => serde_json::json!({"access_token": "demo-token", "expires_in": 900}),
                    "public/subscribe" => {
                        let wanted = request["params"]["channels"].as_array().cloned().unwrap_or_default();
                        channels.extend(wanted.iter().filter_map(|c| c.as_str().map(str::to_owned)));
                        serde_json::Value::Array(wanted)
                    }
                    "public/get_time" => serde_json::json!(opened.elapsed().as_millis() as u64),
                    other => serde_json::json!({"error": format!("unknown method {other}")}),
                };
                let reply = serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result});
                ws.send(WsMessage::text(reply.to_string())).await?;
            }
        }
    }
}
