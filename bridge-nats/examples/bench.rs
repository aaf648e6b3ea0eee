//! Throughput and publish latency of one bridge process against a local
//! single-node NATS with JetStream (file storage), fed by the loopback mock
//! exchange of the tests. Not part of CI:
//!
//! ```sh
//! cargo run --release -p wslink-bridge-nats --example bench            # 200 000 messages of ~100 B
//! cargo run --release -p wslink-bridge-nats --example bench -- 400000 512 1024   # messages, padding, window
//! ```
//!
//! It prints messages per second (from the first message emitted to the
//! last one stored, which is what a consumer sees), the publish-to-ack
//! latency p50/p99/max over the last 8192 publishes, and the CPU time of
//! this process per message. This process runs the mock exchange too, so
//! its CPU figure is an upper bound for the bridge alone; the NATS server is
//! another process and not counted.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::exchange::Exchange;
use support::nats::Nats;

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (fields 14 and 15 of /proc/self/stat).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let total = args.first().copied().unwrap_or(200_000);
    let padding = args.get(1).copied().unwrap_or(32) as usize;
    let window = args.get(2).copied().unwrap_or(1024) as usize;
    let nats = Nats::single().await;
    let exchange = Exchange::start(padding).await;
    let chans = support::channels("bench", 16);
    let per_channel = total / chans.len() as u64;
    let urls = nats.urls();
    let bridge = support::InProcess::start(
        support::Setup { window, ack_timeout_ms: 10_000, ..support::setup(&urls, &exchange.url(), &chans) }.config(),
    );
    exchange.wait_subscribed(&chans, 1, Duration::from_secs(30)).await;
    let client = nats.client().await;

    let (start, cpu) = (Instant::now(), cpu_seconds());
    // Emitted in rounds so the exchange's queues do not hold everything at once.
    let mut sent = 0;
    while sent < per_channel {
        let n = 500.min(per_channel - sent);
        for c in &chans {
            exchange.emit(c, n);
        }
        sent += n;
        let drained_by = Instant::now() + Duration::from_secs(120);
        while exchange.backlog() > 20_000 {
            assert!(Instant::now() < drained_by, "the exchange's backlog did not drain within 2 minutes");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let want = per_channel * chans.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    while bridge.stats.snapshot().published < want {
        assert!(Instant::now() < deadline, "not stored within 10 minutes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (elapsed, cpu) = (start.elapsed(), cpu_seconds() - cpu);
    let s = bridge.stats.snapshot();
    support::wait_count(&client, "FEED", want, Duration::from_secs(60)).await;
    bridge.stop().await;
    let bytes = exchange_message_len(padding);
    println!(
        "bridge: {want} messages of {bytes} B, window {window}: {:.0} msg/s ({:.2} s), publish latency p50 {} us p99 {} us max {} us, \
         {:.1} us CPU per message in this process (bridge + mock exchange), max in flight {}",
        want as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        s.latency_us[0],
        s.latency_us[1],
        s.latency_us[2],
        cpu * 1e6 / want as f64,
        s.max_in_flight,
    );
}

fn exchange_message_len(padding: usize) -> usize {
    r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"bench.c10","data":{"seq":1000,"pad":""}}}"#.len()
        + padding
}
