//! The bridge against real NATS servers (from PyPI, with JetStream) and the
//! loopback mock exchange: steady flow, a replica killed, NATS away for
//! 10 s, a node of a three-node cluster restarted, shards rebalanced. The
//! exchange's numbering (holes, restarts) is in `numbering.rs`, settings
//! and refusals at start in `start.rs`.

mod support;

use std::time::Duration;

use support::exchange::Exchange;
use support::nats::Nats;
use support::*;

const WAIT: Duration = Duration::from_secs(60);

/// The binary under test.
const BRIDGE: &str = env!("CARGO_BIN_EXE_wslink-bridge");

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
    let mut a = Process::start(BRIDGE, &Setup { instance: "a", ..setup(&urls, &url, &chans) });
    let mut b = Process::start(BRIDGE, &Setup { instance: "b", ..setup(&urls, &url, &chans) });
    exchange.wait_subscribed(&chans, 2, WAIT).await;
    feed(&exchange, &chans, 800, 20, Duration::from_millis(5)).await;
    a.kill();
    feed(&exchange, &chans, 1200, 20, Duration::from_millis(5)).await;
    let client = nats.client().await;
    wait_count(&client, "FEED", 8000, WAIT).await;
    let summary = b.terminate();
    let stored = read_stream(&client, "FEED").await;
    assert_complete_in_order(&stored, &chans, 2000);
    // Which replica won each race is not the property (one may win them
    // all); that nothing is lost or doubled is, and every stored message
    // came from one of the two.
    let from = |who: &str| stored.iter().filter(|m| m.connection.starts_with(who)).count();
    assert_eq!(from("a/") + from("b/"), stored.len());
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
    nats.nodes[0].restart().await;

    feed(&exchange, &chans, 100, 20, Duration::from_millis(5)).await;
    let per_channel = 200 + rounds * 10 + 100;
    wait_count(&client, "FEED", per_channel * 4, Duration::from_secs(120)).await;
    let summary = bridge.stop().await;
    let stored = read_stream(&client, "FEED").await;
    assert_complete(&stored, &chans, per_channel);
    assert_eq!(summary.stats.gaps, 0, "{summary:?}");
    assert!(summary.stats.backpressure >= 1 && summary.stats.max_in_flight <= window as u64, "{summary:?}");
    eprintln!(
        "NATS away 10 s: {} messages per channel, {} read before the pause, exchange backlog {} at the end of the outage, {} retries",
        per_channel, paused.received, backlog_at_exchange, summary.stats.retries
    );
}

/// Three nodes, a stream replicated on all three; one node is killed under
/// the feed and started again. Nothing is lost and nothing doubled. The
/// whole test is bounded (240 s), each step by [`STEP`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_a_cluster_node_loses_nothing() {
    const STEP: Duration = Duration::from_secs(30);
    let _serial = SERIAL.lock().await;
    let started = std::time::Instant::now();
    let run = async {
        let mut nats = Nats::cluster().await;
        let exchange = Exchange::start(64).await;
        let chans = channels("cluster", 4);
        let urls = nats.urls();
        let bridge = InProcess::start(Setup { stream_replicas: 3, ..setup(&urls, &exchange.url(), &chans) }.config());
        exchange.wait_subscribed(&chans, 1, STEP).await;
        let client = nats.client().await;
        feed(&exchange, &chans, 300, 20, Duration::from_millis(5)).await;
        wait_count(&client, "FEED", 1200, STEP).await;
        // Each node in turn, so the stream's leader and the bridge's own server are among them.
        for node in 0..3 {
            nats.nodes[node].kill();
            feed(&exchange, &chans, 300, 20, Duration::from_millis(5)).await;
            nats.nodes[node].restart().await;
            feed(&exchange, &chans, 100, 20, Duration::from_millis(5)).await;
        }
        let per_channel = 300 + 3 * 400;
        wait_count(&client, "FEED", per_channel * 4, Duration::from_secs(90)).await;
        let summary = bridge.stop().await;
        let stored = read_stream(&client, "FEED").await;
        assert_complete(&stored, &chans, per_channel);
        assert_eq!(summary.stats.gaps, 0, "{summary:?}");
        summary
    };
    let summary =
        tokio::time::timeout(Duration::from_secs(240), run).await.expect("the cluster test ends within 240 s");
    eprintln!("cluster restarts: {} retries, {:?} in all", summary.stats.retries, started.elapsed());
}

/// The shard count goes from 3 to 4 under a steady feed: the four new
/// bridges start beside the three old ones (each channel then has two
/// readers, de-duplicated like replicas), then the old ones stop. Every
/// message is stored once; the order holds after the handover (around it,
/// a new reader that joined mid-flow may publish its first messages before
/// a lagging old one publishes the few just before them); about a quarter
/// of the channels moved, each to the new shard, and the rest stayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalancing_from_three_to_four_shards_keeps_every_message() {
    use wslink_bridge_nats::shard::shard_of;
    let _serial = SERIAL.lock().await;
    let nats = Nats::single().await;
    let exchange = Exchange::start(32).await;
    let chans = channels("rebalance", 24);
    let urls = nats.urls();
    let url = exchange.url();
    let names: Vec<String> = (0..4).map(|k| format!("s{k}of3")).chain((0..4).map(|k| format!("s{k}of4"))).collect();
    let start = |k: u32, n: u32| {
        let name = &names[(k + if n == 4 { 4 } else { 0 }) as usize];
        InProcess::start(Setup { shard: (k, n), instance: name, connections: 2, ..setup(&urls, &url, &chans) }.config())
    };
    let old: Vec<InProcess> = (0..3).map(|k| start(k, 3)).collect();
    exchange.wait_subscribed(&chans, 1, WAIT).await;
    feed(&exchange, &chans, 50, 10, Duration::from_millis(5)).await;
    let new: Vec<InProcess> = (0..4).map(|k| start(k, 4)).collect();
    // The feed goes on while both sets read.
    let feeding = {
        let (exchange, chans) = (exchange.clone(), chans.clone());
        tokio::spawn(async move { feed(&exchange, &chans, 150, 10, Duration::from_millis(20)).await })
    };
    exchange.wait_subscribed(&chans, 2, WAIT).await;
    for bridge in old {
        bridge.stop().await;
    }
    exchange.wait_subscribed(&chans, 1, WAIT).await;
    feeding.await.expect("the feed ran");
    feed(&exchange, &chans, 50, 10, Duration::from_millis(5)).await;
    let client = nats.client().await;
    wait_count(&client, "FEED", 250 * 24, WAIT).await;
    for bridge in new {
        bridge.stop().await;
    }
    let stored = read_stream(&client, "FEED").await;
    let map = assert_complete(&stored, &chans, 250);
    for (subject, got) in &map {
        assert_eq!(got[200..], (201..=250).collect::<Vec<_>>()[..], "{subject}: in order after the handover");
    }
    let moved = chans.iter().filter(|c| shard_of("mock", c, 3) != shard_of("mock", c, 4)).count();
    assert!(moved > 0 && moved < chans.len() / 2, "{moved} of {} channels moved", chans.len());
    for c in &chans {
        let last = stored.iter().rev().find(|m| m.subject == format!("feed.mock.{c}")).expect("a message");
        let owner = format!("s{}of4/", shard_of("mock", c, 4));
        assert!(last.connection.starts_with(&owner), "{c}: last from {}, owner {owner}", last.connection);
        if shard_of("mock", c, 3) != shard_of("mock", c, 4) {
            assert_eq!(shard_of("mock", c, 4), 3, "{c} moved between old shards");
        }
    }
}

/// Shutdown in the middle of a burst: the pools close, and everything read
/// before they closed is published and acked before `run` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_everything_read() {
    let _serial = SERIAL.lock().await;
    let nats = Nats::single().await;
    let exchange = Exchange::start(1024).await;
    let chans = channels("drain", 4);
    let urls = nats.urls();
    let bridge = InProcess::start(Setup { window: 32, ..setup(&urls, &exchange.url(), &chans) }.config());
    exchange.wait_subscribed(&chans, 1, WAIT).await;
    // 22 MB: twice what loopback sockets buffer, so the stop comes mid-burst
    // (what the sockets hold when the close is sent is still read and stored).
    feed(&exchange, &chans, 5_000, 5_000, Duration::ZERO).await;
    // Stop as soon as the bridge is busy.
    let deadline = std::time::Instant::now() + WAIT;
    while bridge.stats.snapshot().received < 100 {
        assert!(std::time::Instant::now() < deadline, "the bridge reads");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let summary = bridge.stop().await;
    assert_eq!((summary.undrained, summary.stream_ended), (0, true), "{summary:?}");
    assert_eq!(summary.stats.published, summary.stats.received, "{summary:?}");
    // It stopped in the middle of the burst, and read only what the exchange wrote.
    assert!(summary.stats.received < 20_000, "stopped mid-burst: {summary:?}");
    assert!(summary.stats.received <= exchange.written(), "{summary:?}, {} written", exchange.written());
    let client = nats.client().await;
    assert_eq!(stream_count(&client, "FEED").await, summary.stats.received);
}

/// NATS is away when the bridge is stopped: the drain deadline passes with
/// messages queued and read into the pools' buffers. The summary counts
/// them (or says the pools' stream had not ended), so the binary exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_cut_short_reports_what_it_lost() {
    let _serial = SERIAL.lock().await;
    let mut nats = Nats::single().await;
    let exchange = Exchange::start(256).await;
    let chans = channels("cut", 4);
    let urls = nats.urls();
    let window = 8;
    let config = Setup { window, drain_timeout_ms: 500, ..setup(&urls, &exchange.url(), &chans) }.config();
    let bridge = InProcess::start(config);
    exchange.wait_subscribed(&chans, 1, WAIT).await;
    nats.nodes[0].kill();
    feed(&exchange, &chans, 500, 500, Duration::ZERO).await;
    let deadline = std::time::Instant::now() + WAIT;
    while !bridge.stats.snapshot().backpressured {
        assert!(std::time::Instant::now() < deadline, "the window fills");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the pools' buffers fill behind the paused reads.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let summary = bridge.stop().await;
    assert!(summary.undrained > 0, "{summary:?}");
    assert!(summary.unread > 0 || !summary.stream_ended, "the pools' buffers are accounted for: {summary:?}");
    assert_eq!(summary.stats.published, 0, "{summary:?}");
}

/// A message whose channel is huge, and one too large for the server,
/// do not stall the bridge: the first goes to a hashed subject, the second
/// is replaced by a `rejected` marker, and what follows is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_channel_or_message_does_not_stall_the_shard() {
    let _serial = SERIAL.lock().await;
    let nats = Nats::single().await;
    let exchange = Exchange::start(16).await;
    let chans = channels("stall", 2);
    let urls = nats.urls();
    let config = Setup { exchange_ids: false, connections: 1, ..setup(&urls, &exchange.url(), &chans) }.config();
    let bridge = InProcess::start(config);
    exchange.wait_subscribed(&chans, 1, WAIT).await;
    let client = nats.client().await;
    // The two `restart` gaps first.
    wait_count(&client, "FEED", 2, WAIT).await;
    let note = |channel: &str, pad: usize| {
        format!(
            r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"{channel}","data":{{"pad":"{}"}}}}}}"#,
            "p".repeat(pad)
        )
    };
    exchange.emit_raw(&chans[0], note(&"x".repeat(5000), 0));
    // Under 1 MiB, over the server's 1 MiB `max_payload` once headers are added.
    exchange.emit_raw(&chans[0], note(&chans[0], (1 << 20) - 150));
    feed(&exchange, &chans, 50, 10, Duration::from_millis(2)).await;
    wait_count(&client, "FEED", 2 + 2 + 100, WAIT).await;
    let summary = bridge.stop().await;
    assert_eq!((summary.undrained, summary.rejected, summary.stats.rejected), (0, 1, 1), "{summary:?}");
    let stored = read_stream(&client, "FEED").await;
    assert_eq!(stored.iter().filter(|m| m.subject.starts_with("feed.mock.~long~")).count(), 1);
    let marker: Vec<&Stored> = stored.iter().filter(|m| m.gap_reason == "rejected").collect();
    assert_eq!(marker.len(), 1);
    assert_eq!(marker[0].subject, format!("feed.mock.{}", chans[0]));
}

/// The binary: a broken file is refused with the field named and status 2;
/// `--print-assignment` lists this shard's channels.
#[test]
fn the_binary_checks_its_configuration_and_prints_its_assignment() {
    use std::process::Command;
    let dir = support::nats::temp_dir("binary");
    let chans = channels("bin", 10);
    let urls = vec!["nats://127.0.0.1:1".to_owned()];
    let good = setup(&urls, "ws://127.0.0.1:1/", &chans).toml();
    let bad = good.replace("max_in_flight = 256", "max_in_flight = 0");
    let (good_path, bad_path) = (dir.join("good.toml"), dir.join("bad.toml"));
    std::fs::write(&good_path, good).unwrap();
    std::fs::write(&bad_path, bad).unwrap();
    let run =
        |args: &[&std::ffi::OsStr]| Command::new(env!("CARGO_BIN_EXE_wslink-bridge")).args(args).output().unwrap();

    let out = run(&["--config".as_ref(), bad_path.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nats.max_in_flight"), "{out:?}");
    let out = run(&["--config".as_ref(), good_path.as_os_str(), "--shard".as_ref(), "2/2".as_ref()]);
    assert_eq!(out.status.code(), Some(2), "shard 2 of 2 does not exist");
    let out = run(&["--config".as_ref(), good_path.as_os_str(), "--nonsense".as_ref()]);
    assert_eq!(out.status.code(), Some(2));

    let mut all = Vec::new();
    for k in 0..3 {
        let shard = format!("{k}/3");
        let out = run(&[
            "--config".as_ref(),
            good_path.as_os_str(),
            "--shard".as_ref(),
            shard.as_ref(),
            "--print-assignment".as_ref(),
        ]);
        assert!(out.status.success(), "{out:?}");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let channel = line.split('\t').nth(2).expect("endpoint, member, channel").to_owned();
            assert_eq!(wslink_bridge_nats::shard::shard_of("mock", &channel, 3), k);
            all.push(channel);
        }
    }
    all.sort();
    let mut want = chans.clone();
    want.sort();
    assert_eq!(all, want, "the shards cover every channel once");
    let _ = std::fs::remove_dir_all(dir);
}
