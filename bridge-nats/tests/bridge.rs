//! The bridge against real NATS servers (from PyPI, with JetStream) and the
//! loopback mock exchange: steady flow, a replica killed, NATS away for
//! 10 s, a node of a three-node cluster restarted, shards rebalanced.

mod support;

use std::time::Duration;

use support::exchange::Exchange;
use support::nats::Nats;
use support::*;

const WAIT: Duration = Duration::from_secs(60);

/// Every message in is in the stream once, in order per channel; nothing
/// is a duplicate, nothing a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_flow_single_node() {
    let _serial = SERIAL.lock().await;
    let nats = Nats::single().await;
    let exchange = Exchange::start(64).await;
    let chans = channels("steady", 6);
    let urls = nats.urls();
    let bridge = InProcess::start(setup(&urls, &exchange.url(), &chans).config());
    exchange.wait_subscribed(&chans, 1, WAIT).await;
    feed(&exchange, &chans, 500, 50, Duration::from_millis(5)).await;
    let client = nats.client().await;
    wait_count(&client, "FEED", 3000, WAIT).await;
    let summary = bridge.stop().await;
    assert_eq!(summary.undrained, 0);
    assert_eq!((summary.stats.received, summary.stats.published), (3000, 3000), "{summary:?}");
    assert_eq!((summary.stats.duplicates, summary.stats.gaps), (0, 0), "{summary:?}");
    assert!(summary.stats.max_in_flight <= 256, "{summary:?}");
    let stored = read_stream(&client, "FEED").await;
    assert_complete_in_order(&stored, &chans, 500);
}

/// The scenarios share two cores with the rest of the suite: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Two replicas of one shard, as processes; one is killed (SIGKILL) in the
/// middle of the flow. The stream holds every message exactly once, in
/// order per channel: the survivor's copies of what the dead one had
/// published were dropped by JetStream as duplicates, and what the dead one
/// had not published yet came from the survivor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_replica_leaves_no_gap_and_no_duplicate() {
    let _serial = SERIAL.lock().await;
    let nats = Nats::single().await;
    let exchange = Exchange::start(64).await;
    let chans = channels("replica", 4);
    let urls = nats.urls();
    let url = exchange.url();
    let mut a = Process::start(&Setup { instance: "a", ..setup(&urls, &url, &chans) });
    let mut b = Process::start(&Setup { instance: "b", ..setup(&urls, &url, &chans) });
    exchange.wait_subscribed(&chans, 2, WAIT).await;
    feed(&exchange, &chans, 800, 20, Duration::from_millis(5)).await;
    a.kill();
    feed(&exchange, &chans, 1200, 20, Duration::from_millis(5)).await;
    let client = nats.client().await;
    wait_count(&client, "FEED", 8000, WAIT).await;
    let summary = b.terminate();
    let stored = read_stream(&client, "FEED").await;
    assert_complete_in_order(&stored, &chans, 2000);
    let from = |who: &str| stored.iter().filter(|m| m.connection.starts_with(who)).count();
    assert!(from("a/") > 0 && from("b/") > 0, "both replicas published: a {}, b {}", from("a/"), from("b/"));
    let s = &summary["summary"]["stats"];
    assert_eq!(s["received"], 8000, "the survivor read everything: {summary}");
    assert_eq!(s["published"].as_u64().unwrap() + from("a/") as u64, 8000, "{summary}");
    eprintln!("replica failover: a stored {}, b stored {}, b's duplicates {}", from("a/"), from("b/"), s["duplicates"]);
}

/// NATS is killed for 10 s under a steady feed: the window fills, the
/// bridge stops reading (its received count stands still) with at most the
/// window in flight, and once NATS is back every message is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_away_for_ten_seconds_pauses_reading_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let mut nats = Nats::single().await;
    let exchange = Exchange::start(1024).await;
    let chans = channels("away", 4);
    let urls = nats.urls();
    let window = 64;
    let bridge = InProcess::start(Setup { window, ..setup(&urls, &exchange.url(), &chans) }.config());
    exchange.wait_subscribed(&chans, 1, WAIT).await;
    feed(&exchange, &chans, 200, 20, Duration::from_millis(5)).await;
    let client = nats.client().await;
    wait_count(&client, "FEED", 800, WAIT).await;

    nats.nodes[0].kill();
    let away = std::time::Instant::now();
    let mut received_midway = None;
    let mut rounds = 0u64;
    // 10 s of feed, 40 messages of 1 KiB every 50 ms.
    while away.elapsed() < Duration::from_secs(10) {
        for c in &chans {
            exchange.emit(c, 10);
        }
        rounds += 1;
        let s = bridge.stats.snapshot();
        assert!(s.in_flight <= window as u64 && s.max_backlog <= window as u64 + 2, "bounded: {s:?}");
        if received_midway.is_none() && away.elapsed() > Duration::from_secs(5) {
            received_midway = Some(s.received);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let paused = bridge.stats.snapshot();
    assert!(paused.backpressured, "reading is paused while NATS is away: {paused:?}");
    assert_eq!(Some(paused.received), received_midway, "nothing was read in the last 5 s of the outage");
    let backlog_at_exchange = exchange.backlog();
    nats.nodes[0].restart();

    feed(&exchange, &chans, 100, 20, Duration::from_millis(5)).await;
    let per_channel = 200 + rounds * 10 + 100;
    wait_count(&client, "FEED", per_channel * 4, Duration::from_secs(120)).await;
    let summary = bridge.stop().await;
    let stored = read_stream(&client, "FEED").await;
    let map = by_subject(&stored);
    for c in &chans {
        let mut got = map.get(&format!("feed.mock.{c}")).cloned().unwrap_or_default();
        got.sort_unstable();
        assert_eq!(got, (1..=per_channel).collect::<Vec<_>>(), "{c}: every number once");
    }
    assert_eq!(summary.stats.gaps, 0, "{summary:?}");
    assert!(summary.stats.backpressure >= 1 && summary.stats.max_in_flight <= window as u64, "{summary:?}");
    eprintln!(
        "NATS away 10 s: {} messages per channel, {} read before the pause, exchange backlog {} at the end of the outage, {} retries",
        per_channel, paused.received, backlog_at_exchange, summary.stats.retries
    );
}
