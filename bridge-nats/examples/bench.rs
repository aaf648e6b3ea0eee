//! Throughput and CPU per message of bridge binaries side by side, in one
//! run: each bridge is a process of its own (so its CPU is its own) fed by
//! the loopback mock exchange of the tests (in this process) and
//! publishing into one local single-node NATS with JetStream (file
//! storage). Not part of CI:
//!
//! ```sh
//! cargo build --release -p wslink-bridge-nats --bin wslink-bridge --example bench
//! target/release/examples/bench target/release/wslink-bridge=after /path/to/older/wslink-bridge=before
//! target/release/examples/bench --messages 400000 --padding 32 --window 1024 --runs 5 BIN[=label[+line]]...
//! # `+line` goes into the bridge's `[bridge]` section, as `BIN=two+worker_threads = 2`
//! ```
//!
//! The bridges take turns (A B A B …), each trial on a fresh stream and a
//! fresh exchange numbering, with exchange ids as `Nats-Msg-Id` and the
//! exchange's sequence. A trial counts from the first message emitted to
//! the last one stored (the stream's count, polled every 10 ms), which is
//! what a consumer sees; CPU is user + system time of each process over
//! the same span (`/proc/<pid>/stat`, every thread): the bridge's, the NATS
//! server's, and this process's (the exchange). The configuration uses no
//! key an older binary would refuse. The bridge's publish-to-ack latency
//! comes from the summary it prints on SIGTERM.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::exchange::Exchange;
use support::nats::Nats;

/// Clock ticks of user + system CPU of process `pid` (`self` for this one), all threads.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    ticks(11) + ticks(12)
}

/// Seconds per clock tick (USER_HZ is 100 on Linux).
const TICK: f64 = 0.01;

struct Args {
    messages: u64,
    padding: usize,
    window: usize,
    runs: usize,
    /// Each bridge: its binary, its label, and a line for its `[bridge]` section.
    bridges: Vec<(String, String, String)>,
}

fn args() -> Args {
    let mut a = Args { messages: 400_000, padding: 32, window: 1024, runs: 5, bridges: Vec::new() };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = || it.next().and_then(|v| v.parse::<u64>().ok()).expect("a number after the flag");
        match arg.as_str() {
            "--messages" => a.messages = number(),
            "--padding" => a.padding = number() as usize,
            "--window" => a.window = number() as usize,
            "--runs" => a.runs = number() as usize,
            path => {
                let (path, label) = path.split_once('=').unwrap_or((path, path));
                let (label, extra) = label.split_once('+').unwrap_or((label, ""));
                a.bridges.push((path.to_owned(), label.to_owned(), extra.to_owned()));
            }
        }
    }
    assert!(
        !a.bridges.is_empty(),
        "name at least one bridge binary: bench [--messages N] [--padding B] [--window W] [--runs R] BIN[=label[+toml line for [bridge]]]..."
    );
    a
}

/// One trial's figures.
#[derive(Debug, Clone, Copy)]
struct Trial {
    rate: f64,
    bridge_us: f64,
    nats_us: f64,
    exchange_us: f64,
    p50_us: f64,
    p99_us: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let nats = Nats::single().await;
    let nats_pid = nats.nodes[0].pid().expect("NATS runs").to_string();
    let client = nats.client().await;
    let js = async_nats::jetstream::new(client.clone());
    let chans = support::channels("bench", 16);
    let per_channel = a.messages / chans.len() as u64;
    let total = per_channel * chans.len() as u64;
    let bytes = message_len(a.padding);
    println!(
        "{total} messages of {bytes} B over {} channels, 2 connections, window {}, {} runs each",
        chans.len(),
        a.window,
        a.runs
    );
    let mut results: Vec<Vec<Trial>> = vec![Vec::new(); a.bridges.len()];
    for run in 0..a.runs {
        for (i, (path, label, extra)) in a.bridges.iter().enumerate() {
            let exchange = Exchange::start(a.padding).await;
            let urls = nats.urls();
            let url = exchange.url();
            let setup = support::Setup {
                window: a.window,
                ack_timeout_ms: 10_000,
                gap_settle_ms: None,
                bridge_extra: extra,
                instance: "bench",
                ..support::setup(&urls, &url, &chans)
            };
            let mut bridge = Bridge::start(path, &setup.toml());
            exchange.wait_subscribed(&chans, 1, Duration::from_secs(30)).await;
            let pid = bridge.pid();
            let before = (cpu_ticks(&pid), cpu_ticks(&nats_pid), cpu_ticks("self"));
            let start = Instant::now();
            emit(&exchange, &chans, per_channel).await;
            let deadline = Instant::now() + Duration::from_secs(600);
            while support::stream_count(&client, "FEED").await < total {
                assert!(Instant::now() < deadline, "not stored within 10 minutes");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let elapsed = start.elapsed().as_secs_f64();
            let after = (cpu_ticks(&pid), cpu_ticks(&nats_pid), cpu_ticks("self"));
            let summary = bridge.stop();
            let per = |ticks: u64| ticks as f64 * TICK * 1e6 / total as f64;
            let latency = |i: usize| summary["summary"]["stats"]["latency_us"][i].as_f64().unwrap_or(f64::NAN);
            let t = Trial {
                rate: total as f64 / elapsed,
                bridge_us: per(after.0 - before.0),
                nats_us: per(after.1 - before.1),
                exchange_us: per(after.2 - before.2),
                p50_us: latency(0),
                p99_us: latency(1),
            };
            println!(
                "run {run} {label}: {:.0} msg/s ({elapsed:.2} s), CPU per message: bridge {:.2} us, NATS {:.2} us, exchange {:.2} us; publish latency p50 {:.0} us p99 {:.0} us",
                t.rate, t.bridge_us, t.nats_us, t.exchange_us, t.p50_us, t.p99_us
            );
            results[i].push(t);
            js.delete_stream("FEED").await.expect("delete the stream");
        }
    }
    println!("\n| bridge | msg/s min / median / max | bridge CPU µs per message min / median / max | NATS CPU µs per message (median) | exchange CPU µs per message (median) | publish latency p50 / p99 (median) |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for ((_, label, _), trials) in a.bridges.iter().zip(&results) {
        let stat = |f: fn(&Trial) -> f64| {
            let mut v: Vec<f64> = trials.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            (v[0], v[v.len() / 2], v[v.len() - 1])
        };
        let (r, b) = (stat(|t| t.rate), stat(|t| t.bridge_us));
        println!(
            "| {label} | {:.0} / {:.0} / {:.0} | {:.2} / {:.2} / {:.2} | {:.2} | {:.2} | {:.1} / {:.1} ms |",
            r.0,
            r.1,
            r.2,
            b.0,
            b.1,
            b.2,
            stat(|t| t.nats_us).1,
            stat(|t| t.exchange_us).1,
            stat(|t| t.p50_us).1 / 1e3,
            stat(|t| t.p99_us).1 / 1e3,
        );
    }
}

/// Emits `per_channel` messages on every channel, in rounds, so the
/// exchange's queues never hold more than about 20 000 at once.
async fn emit(exchange: &Exchange, chans: &[String], per_channel: u64) {
    let mut sent = 0;
    while sent < per_channel {
        let n = 500.min(per_channel - sent);
        for c in chans {
            exchange.emit(c, n);
        }
        sent += n;
        let drained_by = Instant::now() + Duration::from_secs(120);
        while exchange.backlog() > 20_000 {
            assert!(Instant::now() < drained_by, "the exchange's backlog did not drain within 2 minutes");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// A bridge binary running one trial.
struct Bridge {
    child: Option<Child>,
    dir: std::path::PathBuf,
}

impl Bridge {
    fn start(path: &str, toml: &str) -> Self {
        let dir = support::nats::temp_dir("bench-bridge");
        let config = dir.join("bridge.toml");
        std::fs::write(&config, toml).expect("write the config");
        let log = std::fs::File::create(dir.join("bridge.log")).expect("create the log");
        let child = Command::new(path)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("start {path}: {e}"));
        Self { child: Some(child), dir }
    }

    fn pid(&self) -> String {
        self.child.as_ref().map(|c| c.id().to_string()).unwrap_or_default()
    }

    /// SIGTERM; the summary it prints (waits at most 60 s).
    fn stop(&mut self) -> serde_json::Value {
        let Some(mut child) = self.child.take() else { return serde_json::Value::Null };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        let mut text = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut text);
        }
        text.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn message_len(padding: usize) -> usize {
    r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"bench.c10","data":{"seq":1000,"pad":""}}}"#.len()
        + padding
}
