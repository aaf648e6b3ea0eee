//! A real run recorded on each runtime replays identically, with no socket
//! and no clock: auth, subscriptions, requests, a dropped link, the
//! reconnect. A changed setting diverges at the line where it shows. The
//! file recorder writes the same recording to disk, in the compact
//! encoding: a flood of 256 B messages takes at most 1.2 times its payload.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wslink_adapter::{Builder, FileRecorder, Runtime};
use wslink_core::record::format::Entry;
use wslink_core::record::{MemoryRecorder, Recorder};
use wslink_core::replay::{replay, replay_file, HookRegistry, Recording, Replayed};
use wslink_core::{presets, BackoffConfig, CloseCode, CloseReason, Session, SessionBuilder, SessionEvent};
use wslink_tests::peers::ExchangeServer;
use wslink_tests::scenario::{run, until};
use wslink_tests::scenarios;

scenarios!(
    a_recorded_run_replays_identically_and_a_changed_setting_diverges,
    a_file_recording_replays_too,
    a_recorded_flood_takes_little_more_than_its_payload_on_disk
);

fn backoff() -> BackoffConfig {
    BackoffConfig::default().initial(Duration::from_millis(50))
}

fn auth() -> presets::JsonRpcAuth {
    presets::JsonRpcAuth::new("public/auth", |_| r#"{"client_secret":"s3cret"}"#.to_owned())
}

/// The core builder a replay uses: the settings and hooks the client had.
fn same_session(url: &str) -> SessionBuilder {
    Session::builder(url).expect("valid URL").ping(None).backoff(backoff()).authenticator(auth())
}

/// Connects with auth, subscribes, asks, loses the link, comes back
/// (re-authenticated, resubscribed), asks again, closes.
async fn recorded_run<R: Runtime>(server: &ExchangeServer, recorder: impl Recorder + 'static) {
    let url = format!("ws://{}/", server.addr);
    let (client, mut events) = Builder::<R>::new(&url)
        .expect("valid URL")
        .ping(None)
        .backoff(backoff())
        .authenticator(auth())
        .record(recorder)
        .connect()
        .await
        .expect("connected");
    client.subscribe(&["trades.BTC"]).await.expect("subscribed");
    until(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
    client.request("public/get_time", None, None).await.expect("answered");
    server.drop_all();
    until(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
    client.request("public/get_time", None, None).await.expect("answered after the reconnect");
    client.close(CloseCode::Normal, "bye").await.expect("closed");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Closed { reason: CloseReason::Requested }));
    // The stream's end: the driver (and its session, which holds the recorder) is done.
    assert_eq!(events.recv().await, None);
}

async fn a_recorded_run_replays_identically_and_a_changed_setting_diverges<R: Runtime>() {
    let server = ExchangeServer::start(true).await;
    let url = format!("ws://{}/", server.addr);
    let tape = MemoryRecorder::new(16 << 20);
    recorded_run::<R>(&server, tape.clone()).await;
    assert_eq!(tape.dropped(), 0);
    let bytes = tape.bytes();
    let recording = Recording::parse(&bytes).expect("a valid recording");
    assert!(!bytes.windows(6).any(|w| w == b"s3cret"), "the authenticator's secret stays out");
    assert!(!recording.to_lines().contains("s3cret"), "of its JSON Lines too");
    #[allow(clippy::disallowed_methods)] // any origin: times are relative to it
    let origin = Instant::now();
    match replay(&recording, same_session(&url), origin).expect("valid settings") {
        Replayed::Identical { inputs, outputs } => assert!(inputs > 10 && outputs > 20, "{inputs} {outputs}"),
        other => panic!("{other:?}"),
    }
    // One setting changed: the first backoff. The Reconnecting event shows it.
    let reconnecting = recording
        .lines
        .iter()
        .position(|l| matches!(&l.entry, Entry::Event { ev } if ev.starts_with("Reconnecting")))
        .expect("the reconnect was recorded");
    let slower = backoff().initial(Duration::from_secs(5));
    match replay(&recording, same_session(&url).backoff(slower), origin).expect("valid settings") {
        Replayed::Diverged(d) => assert_eq!(d.line, reconnecting + 2, "{d:?}"),
        other => panic!("{other:?}"),
    }
}

async fn a_file_recording_replays_too<R: Runtime>() {
    let server = ExchangeServer::start(true).await;
    let url = format!("ws://{}/", server.addr);
    // One file per scenario and process (the two runtimes' scenarios may run at once).
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!("wslink-recording-{}-{run}.wslink", std::process::id()));
    let (recorder, file) = FileRecorder::create(&path, 64 << 20).expect("file created");
    recorded_run::<R>(&server, recorder).await;
    assert_eq!(file.finish().expect("written"), 0, "nothing dropped");
    let bytes = std::fs::read(&path).expect("readable");
    let _ = std::fs::remove_file(&path);
    let recording = Recording::parse(&bytes).expect("a valid recording");
    #[allow(clippy::disallowed_methods)]
    let origin = Instant::now();
    assert!(matches!(replay(&recording, same_session(&url), origin), Ok(Replayed::Identical { .. })));
}

/// Messages of the flood, and their size.
const FLOOD: usize = 20_000;
const SIZE: usize = 256;

/// Sends `FLOOD` binary messages of `SIZE` bytes as fast as the client
/// takes them, then closes.
async fn flood_server() -> std::net::SocketAddr {
    use futures_util::SinkExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
        for i in 0..FLOOD {
            let payload: Vec<u8> = (0..SIZE).map(|j| (i + j) as u8).collect();
            if ws.feed(tungstenite::Message::binary(payload)).await.is_err() {
                return;
            }
        }
        let _ = ws.close(None).await;
    });
    addr
}

async fn a_recorded_flood_takes_little_more_than_its_payload_on_disk<R: Runtime>() {
    let addr = flood_server().await;
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!("wslink-flood-{}-{run}.wslink", std::process::id()));
    let (recorder, file) = FileRecorder::create(&path, 64 << 20).expect("file created");
    let (_client, mut events) = Builder::<R>::new(&format!("ws://{addr}/"))
        .expect("valid URL")
        .ping(None)
        .reconnect(false)
        .record(recorder)
        .connect()
        .await
        .expect("connected");
    let mut messages = 0;
    while let Some(event) = events.recv().await {
        messages += usize::from(matches!(event, SessionEvent::Message(_)));
    }
    assert_eq!(messages, FLOOD);
    assert_eq!(file.finish().expect("written"), 0, "nothing dropped");
    let bytes = std::fs::read(&path).expect("readable");
    let _ = std::fs::remove_file(&path);
    // The header (settings and hooks) is about 1.5 KB whatever the flood.
    let header = bytes.iter().position(|&b| b == b'\n').expect("a header line") + 1;
    let payload = FLOOD * SIZE;
    let body = bytes.len() - header;
    assert!(
        body * 10 <= payload * 12,
        "{body} B on disk for {payload} B of payload ({:.3}x)",
        body as f64 / payload as f64
    );
    #[allow(clippy::disallowed_methods)]
    let origin = Instant::now();
    match replay_file(&bytes, HookRegistry::new(), origin) {
        Ok(Replayed::Identical { outputs, .. }) => assert!(outputs > FLOOD, "{outputs}"),
        other => panic!("{other:?}"),
    }
}
