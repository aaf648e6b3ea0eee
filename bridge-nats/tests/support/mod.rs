//! What the bridge's tests share: NATS servers, the mock exchange, bridges
//! in-process and as processes, and reading the stream back.

#![allow(dead_code)]

pub mod exchange;
pub mod nats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wslink_bridge_nats::{Config, Stats, Summary};

/// A bridge's settings for the tests: one endpoint on the mock exchange.
pub struct Setup<'a> {
    pub nats_urls: &'a [String],
    pub exchange_url: &'a str,
    pub channels: &'a [String],
    pub connections: usize,
    pub shard: (u32, u32),
    pub instance: &'a str,
    pub window: usize,
    pub stream_replicas: usize,
    pub ack_timeout_ms: u64,
    pub drain_timeout_ms: u64,
    /// With the exchange's `seq` as id and sequence (true), or hashed ids and no sequence.
    pub exchange_ids: bool,
    /// `bridge.gap_settle_ms`, if set (the bench leaves it out: an older
    /// binary refuses keys it does not know).
    pub gap_settle_ms: Option<u64>,
    /// More lines for the `[[endpoint]]` section.
    pub endpoint_extra: &'a str,
    /// More lines for the `[bridge]` section.
    pub bridge_extra: &'a str,
}

impl Setup<'_> {
    /// The TOML text.
    pub fn toml(&self) -> String {
        let urls: Vec<String> = self.nats_urls.iter().map(|u| format!("{u:?}")).collect();
        let channels: Vec<String> = self.channels.iter().map(|c| format!("{c:?}")).collect();
        let pointers = if self.exchange_ids {
            "id_pointer = \"/params/data/seq\"\nsequence_pointer = \"/params/data/seq\"\n"
        } else {
            ""
        };
        let settle = self.gap_settle_ms.map_or(String::new(), |ms| format!("gap_settle_ms = {ms}\n"));
        let settle = format!("{settle}{}\n", self.bridge_extra);
        format!(
            "[bridge]\nshard = {}\nshards = {}\ninstance = {:?}\ndrain_timeout_ms = {}\nstats_interval_ms = 0\n{settle}\n\
             [nats]\nurls = [{}]\nstream = \"FEED\"\nsubject_prefix = \"feed\"\nmax_in_flight = {}\n\
             stream_replicas = {}\nack_timeout_ms = {}\nduplicate_window_ms = 120000\n\n\
             [[endpoint]]\nname = \"mock\"\nurl = {:?}\nconnections = {}\n{pointers}{}\nchannels = [{}]\n",
            self.shard.0,
            self.shard.1,
            self.instance,
            self.drain_timeout_ms,
            urls.join(", "),
            self.window,
            self.stream_replicas,
            self.ack_timeout_ms,
            self.exchange_url,
            self.connections,
            self.endpoint_extra,
            channels.join(", "),
        )
    }

    pub fn config(&self) -> Config {
        Config::parse(&self.toml()).expect("the test's configuration is valid")
    }
}

/// Defaults for a test: one shard, window 256, single-replica stream.
pub fn setup<'a>(nats_urls: &'a [String], exchange_url: &'a str, channels: &'a [String]) -> Setup<'a> {
    Setup {
        nats_urls,
        exchange_url,
        channels,
        connections: 2,
        shard: (0, 1),
        instance: "a",
        window: 256,
        stream_replicas: 1,
        ack_timeout_ms: 2000,
        drain_timeout_ms: 20_000,
        exchange_ids: true,
        gap_settle_ms: Some(300),
        endpoint_extra: "",
        bridge_extra: "",
    }
}

/// Channel names `c0 … c{n-1}` under a prefix.
pub fn channels(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}.c{i}")).collect()
}

/// A bridge running in this process.
pub struct InProcess {
    pub stats: Arc<Stats>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<Summary, wslink_bridge_nats::BridgeError>>,
}

impl InProcess {
    pub fn start(config: Config) -> Self {
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(wslink_bridge_nats::run(config, stats.clone(), async move {
            let _ = stopped.await;
        }));
        Self { stats, stop: Some(stop), task }
    }

    /// Graceful shutdown; the summary.
    pub async fn stop(mut self) -> Summary {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the bridge drains within 60 s")
            .expect("the bridge task did not panic")
            .expect("the bridge ran")
    }
}

/// The bridge binary as a child process (killed by its handle when dropped).
pub struct Process {
    child: Option<Child>,
    config: PathBuf,
}

impl Process {
    /// Starts `binary` (`env!("CARGO_BIN_EXE_wslink-bridge")` in a test) with `setup`.
    pub fn start(binary: &str, setup: &Setup<'_>) -> Self {
        let dir = nats::temp_dir("bridge-config");
        let config = dir.join("bridge.toml");
        std::fs::write(&config, setup.toml()).expect("write the config");
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Its log (INFO and up) next to its config, quoted when it fails.
            .stderr(Stdio::from(std::fs::File::create(dir.join("bridge.log")).expect("create the bridge's log")))
            .spawn()
            .expect("start wslink-bridge");
        Self { child: Some(child), config }
    }

    /// SIGKILL: a replica lost with its machine.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then the summary line it prints once drained. Waits at
    /// most 60 s for the exit (polling, never blocked on `wait`), then kills
    /// it by its handle and fails.
    pub fn terminate(&mut self) -> serde_json::Value {
        use std::io::Read;
        let mut child = self.child.take().expect("a running bridge");
        let pid = child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the bridge did not exit within 60 s of SIGTERM: killed");
                }
            }
        };
        let mut text = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut text);
        }
        let line =
            text.lines().rev().find(|l| l.contains("summary")).unwrap_or_else(|| panic!("no summary in {text:?}"));
        assert!(status.success(), "the bridge exited with {status}: {line}");
        serde_json::from_str(line).expect("a JSON summary")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = self.config.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// One message read back from the stream.
#[derive(Debug, Clone)]
pub struct Stored {
    pub subject: String,
    pub id: String,
    pub kind: String,
    pub epoch: u32,
    pub exchange_seq: Option<u64>,
    pub connection: String,
    pub gap_reason: String,
    pub gap_from: Option<u64>,
    pub gap_to: Option<u64>,
}

/// Messages in stream `name` now.
pub async fn stream_count(client: &async_nats::Client, name: &str) -> u64 {
    let js = async_nats::jetstream::new(client.clone());
    match js.get_stream(name).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Polls until the stream holds `want` messages; fails after `within`,
/// or at once if it holds more.
pub async fn wait_count(client: &async_nats::Client, name: &str, want: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let n = stream_count(client, name).await;
        assert!(n <= want, "the stream holds {n} messages, more than the {want} sent");
        if n == want {
            return;
        }
        assert!(Instant::now() < deadline, "the stream holds {n} of {want} messages after {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every message of the stream, in stream order.
pub async fn read_stream(client: &async_nats::Client, name: &str) -> Vec<Stored> {
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js.get_stream(name).await.expect("the stream exists");
    let total = stream.info().await.expect("stream info").state.messages as usize;
    let consumer = stream.create_consumer(OrderedConfig::default()).await.expect("an ordered consumer");
    let mut messages = consumer.messages().await.expect("consume");
    let mut out = Vec::with_capacity(total);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while out.len() < total {
        let m = tokio::time::timeout_at(deadline, messages.next())
            .await
            .expect("the stream is read within 60 s")
            .expect("the consumer goes on")
            .expect("a message");
        let header = |n: &str| m.headers.as_ref().and_then(|h| h.get(n)).map(|v| v.as_str().to_owned());
        out.push(Stored {
            subject: m.subject.to_string(),
            id: header("Nats-Msg-Id").unwrap_or_default(),
            kind: header("Wslink-Kind").unwrap_or_default(),
            epoch: header("Wslink-Epoch").and_then(|s| s.parse().ok()).unwrap_or(0),
            exchange_seq: header("Wslink-Exchange-Seq").and_then(|s| s.parse().ok()),
            connection: header("Wslink-Connection").unwrap_or_default(),
            gap_reason: header("Wslink-Gap-Reason").unwrap_or_default(),
            gap_from: header("Wslink-Gap-From").and_then(|s| s.parse().ok()),
            gap_to: header("Wslink-Gap-To").and_then(|s| s.parse().ok()),
        });
    }
    out
}

/// The data messages' exchange numbers, per subject, in stream order.
pub fn by_subject(stored: &[Stored]) -> BTreeMap<String, Vec<u64>> {
    let mut map: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for m in stored.iter().filter(|m| m.kind == "message") {
        map.entry(m.subject.clone()).or_default().push(m.exchange_seq.unwrap_or(0));
    }
    map
}

/// Asserts that every channel holds each of `1..=n` exactly once, in any
/// order; returns the numbers per channel in stream order.
pub fn assert_complete(stored: &[Stored], channels: &[String], n: u64) -> BTreeMap<String, Vec<u64>> {
    let map = by_subject(stored);
    for c in channels {
        let mut got = map.get(&format!("feed.mock.{c}")).cloned().unwrap_or_default();
        got.sort_unstable();
        assert_eq!(got, (1..=n).collect::<Vec<_>>(), "{c}: every number once");
    }
    map
}

/// Asserts that every channel holds exactly `1..=n` in order.
pub fn assert_complete_in_order(stored: &[Stored], channels: &[String], n: u64) {
    for c in channels {
        let subject = format!("feed.mock.{c}");
        let on: Vec<&Stored> = stored.iter().filter(|m| m.subject == subject && m.kind == "message").collect();
        let got: Vec<u64> = on.iter().map(|m| m.exchange_seq.unwrap_or(0)).collect();
        let want: Vec<u64> = (1..=n).collect();
        if got != want {
            let missing: Vec<u64> = want.iter().filter(|s| !got.contains(s)).copied().take(20).collect();
            let first = got.iter().zip(&want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
            let around: Vec<String> = on[first.saturating_sub(3)..(first + 4).min(on.len())]
                .iter()
                .map(|m| format!("{:?} from {}", m.exchange_seq, m.connection))
                .collect();
            panic!(
                "{subject}: {} messages, {n} expected; first missing {missing:?}; first difference at {first}: {around:?}",
                got.len()
            );
        }
    }
}

/// Emits `per_channel` messages on every channel, in rounds of `batch`
/// per channel, pausing `pause` between rounds (a paced feed, not a wait).
pub async fn feed(exchange: &exchange::Exchange, channels: &[String], per_channel: u64, batch: u64, pause: Duration) {
    let mut sent = 0;
    while sent < per_channel {
        let n = batch.min(per_channel - sent);
        for c in channels {
            exchange.emit(c, n);
        }
        sent += n;
        tokio::time::sleep(pause).await;
    }
}
