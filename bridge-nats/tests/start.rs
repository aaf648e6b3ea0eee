//! What the bridge does at start and with its connection settings: errors
//! that can never pass stop it at once with their reason (JetStream off,
//! subjects that overlap another stream's), and an endpoint's ping and idle
//! timeout reach its connections.

mod support;

use std::time::Duration;

use support::exchange::Exchange;
use support::nats::Nats;
use support::*;
use wslink_bridge_nats::BridgeError;

const WAIT: Duration = Duration::from_secs(60);

/// The scenarios share two cores with the rest of the suite: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A server without JetStream: the bridge says so at the first answer
/// (before, it asked ten times over 4.5 s, then gave up with "timed out"
/// or "unavailable"), and the binary exits with 3 and the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_off_stops_the_start_at_once_with_its_reason() {
    let _serial = SERIAL.lock().await;
    let nats = Nats::without_jetstream().await;
    let urls = nats.urls();
    let chans = channels("nojs", 2);
    let config = setup(&urls, "ws://127.0.0.1:1/", &chans).config();
    let stats = std::sync::Arc::new(wslink_bridge_nats::Stats::default());
    let e = wslink_bridge_nats::run(config, stats, std::future::pending()).await.expect_err("no JetStream");
    assert!(matches!(e, BridgeError::StreamRefused { .. }), "{e:?}");
    assert!(e.to_string().contains("JetStream is not enabled"), "{e}");

    let (out, log) = run_binary(&setup(&urls, "ws://127.0.0.1:1/", &chans));
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(log.contains("JetStream is not enabled"), "{log}");
    assert!(!log.contains("not ready"), "no retry of what cannot pass: {log}");
}

/// Another stream already takes the bridge's subjects: refused at once,
/// the overlap named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_subjects_overlap_another_stops_the_start_at_once() {
    use async_nats::jetstream::stream;
    let _serial = SERIAL.lock().await;
    let nats = Nats::single().await;
    let client = nats.client().await;
    let js = async_nats::jetstream::new(client);
    let other = stream::Config { name: "OTHER".into(), subjects: vec!["feed.>".into()], ..Default::default() };
    js.create_stream(other).await.expect("the other stream");
    let urls = nats.urls();
    let chans = channels("overlap", 2);
    let (out, log) = run_binary(&setup(&urls, "ws://127.0.0.1:1/", &chans));
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(log.contains("overlap"), "{log}");
    assert!(!log.contains("not ready"), "no retry of what cannot pass: {log}");
}

/// Runs the binary with `setup` until it exits (at most 60 s); its output and its log.
fn run_binary(setup: &Setup<'_>) -> (std::process::Output, String) {
    use std::process::{Command, Stdio};
    let dir = support::nats::temp_dir("start");
    let path = dir.join("bridge.toml");
    std::fs::write(&path, setup.toml()).expect("write the config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wslink-bridge"))
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wslink-bridge");
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().ok().flatten().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("its output");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let _ = std::fs::remove_dir_all(dir);
    (out, log)
}

/// `ping_interval_ms` reaches the connection: pings come every 200 ms
/// (with the default of 15 s, none would within the 10 s allowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoints_ping_interval_reaches_its_connections() {
    let _serial = SERIAL.lock().await;
    let nats = Nats::single().await;
    let urls = nats.urls();
    let exchange = Exchange::start(16).await;
    let chans = channels("ping", 2);
    let timings = "ping_interval_ms = 200\nping_timeout_ms = 100";
    let url = exchange.url();
    let setup = Setup { connections: 1, endpoint_extra: timings, ..setup(&urls, &url, &chans) };
    let bridge = InProcess::start(setup.config());
    exchange.wait_subscribed(&chans, 1, WAIT).await;
    exchange
        .wait_until(Duration::from_secs(10), "pings", || {
            let n = exchange.pings();
            (n >= 3).then_some(()).ok_or(format!("{n} pings"))
        })
        .await;
    bridge.stop().await;
}

/// `idle_timeout_ms` reaches the connection: a silent exchange (no
/// message, no pong: pings off) gets a new connection (with the default,
/// none: the link would stay).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoints_idle_timeout_remakes_a_silent_connection() {
    let _serial = SERIAL.lock().await;
    let nats = Nats::single().await;
    let urls = nats.urls();
    let exchange = Exchange::start(16).await;
    let chans = channels("idle", 2);
    let url = exchange.url_for("idle");
    let timings = "ping_interval_ms = 0\nidle_timeout_ms = 300\nbackoff_initial_ms = 10\nbackoff_max_ms = 50";
    let setup = Setup { connections: 1, endpoint_extra: timings, ..setup(&urls, &url, &chans) };
    let bridge = InProcess::start(setup.config());
    exchange
        .wait_until(WAIT, "connections", || {
            let n = exchange.connections_of("idle");
            (n >= 3).then_some(()).ok_or(format!("{n} connections"))
        })
        .await;
    bridge.stop().await;
}
