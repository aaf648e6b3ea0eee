//! The exchange's numbering against real NATS and the loopback mock
//! exchange: holes marked only where no replica stored the numbers, once
//! for all replicas; a numbering that starts again marked and kept;
//! reconnects without a numbering marked by each replica.

mod support;

use std::time::Duration;

use support::exchange::Exchange;
use support::nats::Nats;
use support::*;

const WAIT: Duration = Duration::from_secs(60);

/// The scenarios share two cores with the rest of the suite: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn on<'a>(stored: &'a [Stored], channel: &str) -> Vec<&'a Stored> {
    let subject = format!("feed.mock.{channel}");
    stored.iter().filter(|m| m.subject == subject).collect()
}

fn numbers(on: &[&Stored]) -> Vec<u64> {
    let mut n: Vec<u64> = on.iter().filter(|m| m.kind == "message").filter_map(|m| m.exchange_seq).collect();
    n.sort_unstable();
    n
}

fn markers<'a>(on: &[&'a Stored], reason: &str) -> Vec<&'a Stored> {
    on.iter().copied().filter(|m| m.gap_reason == reason).collect()
}

/// NATS, the exchange, and bridges named `replicas` (each reading the
/// exchange under its own path, one connection each), after 100 messages
/// on each of 3 channels were stored.
struct Scene {
    nats: Nats,
    client: async_nats::Client,
    exchange: Exchange,
    chans: Vec<String>,
    bridges: Vec<InProcess>,
}

impl Scene {
    async fn start(prefix: &str, replicas: &[&str], exchange_ids: bool) -> Self {
        let nats = Nats::single().await;
        let client = nats.client().await;
        let urls = nats.urls();
        let exchange = Exchange::start(16).await;
        let chans = channels(prefix, 3);
        let bridges = replicas
            .iter()
            .map(|r| {
                let url = exchange.url_for(r);
                let setup = Setup { instance: r, connections: 1, exchange_ids, ..setup(&urls, &url, &chans) };
                InProcess::start(setup.config())
            })
            .collect();
        exchange.wait_subscribed(&chans, replicas.len(), WAIT).await;
        feed(&exchange, &chans, 100, 20, Duration::from_millis(2)).await;
        // Without a sequence, a `restart` marker per channel first.
        wait_count(&client, "FEED", if exchange_ids { 300 } else { 303 }, WAIT).await;
        Self { nats, client, exchange, chans, bridges }
    }

    /// `per_channel` more messages on every channel.
    async fn feed(&self, per_channel: u64) {
        feed(&self.exchange, &self.chans, per_channel, 20, Duration::from_millis(2)).await;
    }

    /// Every connection dropped, `lost` messages per channel emitted while
    /// the subscriptions of `held` (every path when empty) wait.
    async fn cut_and_lose(&self, held: &[&str], lost: u64) {
        if held.is_empty() {
            self.exchange.hold_subscriptions();
        }
        for path in held {
            self.exchange.hold_subscriptions_of(path);
        }
        self.exchange.cut_all();
        feed(&self.exchange, &self.chans, lost, lost, Duration::ZERO).await;
    }

    async fn wait_count(&self, want: u64) {
        wait_count(&self.client, "FEED", want, WAIT).await;
    }

    /// Stops the bridges; their summaries and the stream.
    async fn stop(self) -> (Vec<wslink_bridge_nats::Summary>, Vec<Stored>) {
        let mut summaries = Vec::new();
        for b in self.bridges {
            summaries.push(b.stop().await);
        }
        let stored = read_stream(&self.client, "FEED").await;
        drop(self.nats);
        (summaries, stored)
    }
}

/// One replica; the exchange drops every connection and does not replay
/// what it sent meanwhile (it holds the new subscriptions until the lost
/// messages were emitted, so they are lost whatever the timing). The hole
/// is checked against the stream and marked once per channel, with the
/// missing numbers, after the messages that follow it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hole_nobody_stored_is_marked_with_its_range() {
    let _serial = SERIAL.lock().await;
    let scene = Scene::start("gapseq", &["a"], true).await;
    scene.cut_and_lose(&[], 50).await;
    scene.exchange.release_subscriptions();
    scene.exchange.wait_subscribed(&scene.chans, 1, WAIT).await;
    scene.feed(100).await;
    // 200 messages and one marker per channel.
    scene.wait_count(603).await;
    let chans = scene.chans.clone();
    let (summaries, stored) = scene.stop().await;
    assert_eq!((summaries[0].stats.gaps, summaries[0].unmarked_holes), (3, 0), "{summaries:?}");
    for c in &chans {
        let on = on(&stored, c);
        assert_eq!(numbers(&on), (1..=100).chain(151..=250).collect::<Vec<_>>(), "{c}");
        let gaps = markers(&on, "sequence");
        assert_eq!(gaps.len(), 1, "{c}");
        assert_eq!((gaps[0].gap_from, gaps[0].gap_to), (Some(101), Some(150)), "{c}");
        let at = on.iter().position(|m| m.kind == "gap").expect("the marker");
        assert!(at > 100, "{c}: checked after the settling time, so after the first messages that follow the hole");
    }
}

/// Two replicas, the feed cut for both; replica a is back first and
/// stores 151..=250, replica b only from 251. The only hole in the stream
/// is 101..=150: one marker per channel says so, and nothing claims that
/// 151..=250 are missing (the two markers, [1126, 1451] and
/// [1126, 1553], from replicas back at different times).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_back_at_different_times_mark_one_hole_once() {
    let _serial = SERIAL.lock().await;
    let scene = Scene::start("twoback", &["a", "b"], true).await;
    scene.cut_and_lose(&["a", "b"], 50).await;
    // a is back: 151..=250 reach a only.
    scene.exchange.release_subscriptions_of("a");
    scene.exchange.wait_subscribed_from("a", &scene.chans, WAIT).await;
    scene.feed(100).await;
    scene.wait_count(600 + 3).await;
    // b is back: from 251 on, both.
    scene.exchange.release_subscriptions_of("b");
    scene.exchange.wait_subscribed(&scene.chans, 2, WAIT).await;
    scene.feed(100).await;
    scene.wait_count(900 + 3).await;
    let chans = scene.chans.clone();
    let (summaries, stored) = scene.stop().await;
    assert!(summaries.iter().all(|s| s.unmarked_holes == 0), "{summaries:?}");
    for c in &chans {
        let on = on(&stored, c);
        assert_eq!(numbers(&on), (1..=100).chain(151..=350).collect::<Vec<_>>(), "{c}: each number once");
        let gaps = markers(&on, "sequence");
        let ranges: Vec<_> = gaps.iter().map(|g| (g.gap_from, g.gap_to)).collect();
        assert_eq!(ranges, [(Some(101), Some(150))], "{c}: one marker, only what no replica stored");
    }
}

/// Only replica a's connections are cut; b reads on. a, back, finds in the
/// stream what b stored meanwhile: no hole, no marker (before, a marked
/// the numbers b had stored as missing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_alone_marks_nothing_the_other_stored() {
    let _serial = SERIAL.lock().await;
    let scene = Scene::start("alone", &["a", "b"], true).await;
    scene.exchange.hold_subscriptions_of("a");
    scene.exchange.cut("a");
    scene.feed(50).await;
    scene.wait_count(450).await;
    scene.exchange.release_subscriptions_of("a");
    scene.exchange.wait_subscribed(&scene.chans, 2, WAIT).await;
    scene.feed(100).await;
    scene.wait_count(750).await;
    let chans = scene.chans.clone();
    let (summaries, stored) = scene.stop().await;
    assert!(summaries.iter().all(|s| s.stats.gaps == 0), "{summaries:?}");
    assert_complete_in_order(&stored, &chans, 250);
    assert!(stored.iter().all(|m| m.kind == "message"), "no marker at all");
}

/// The exchange starts its numbering again at 0 (a new session), inside
/// the duplicate window, after a cut and then once more without one:
/// every message is stored (the new numbers get new ids, not taken for
/// duplicates of the old ones), and each restart is marked `reset` once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_restarts_its_numbering_is_marked_and_kept() {
    let _serial = SERIAL.lock().await;
    let scene = Scene::start("restart", &["a"], true).await;
    // A failover: the connections drop, the new session numbers from 0.
    scene.cut_and_lose(&[], 0).await;
    scene.exchange.restart_numbering(0);
    scene.exchange.release_subscriptions();
    scene.exchange.wait_subscribed(&scene.chans, 1, WAIT).await;
    scene.feed(100).await;
    // 100 more per channel and a `reset` marker.
    scene.wait_count(300 + 303).await;
    // And again, on the same connection.
    scene.exchange.restart_numbering(0);
    scene.feed(50).await;
    scene.wait_count(603 + 153).await;
    let chans = scene.chans.clone();
    let (summaries, stored) = scene.stop().await;
    let summary = &summaries[0];
    assert_eq!(summary.stats.resets, 6, "{summary:?}");
    assert_eq!((summary.stats.duplicates, summary.unmarked_holes), (0, 0), "{summary:?}");
    for c in &chans {
        let on = on(&stored, c);
        let by_epoch = |e: u32| -> Vec<u64> {
            on.iter().filter(|m| m.kind == "message" && m.epoch == e).filter_map(|m| m.exchange_seq).collect()
        };
        assert_eq!(by_epoch(0), (1..=100).collect::<Vec<_>>(), "{c}");
        assert_eq!(by_epoch(1), (0..100).collect::<Vec<_>>(), "{c}");
        assert_eq!(by_epoch(2), (0..50).collect::<Vec<_>>(), "{c}");
        let resets = markers(&on, "reset");
        assert_eq!(resets.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 2], "{c}");
        assert!(markers(&on, "sequence").is_empty(), "{c}: a restart claims no loss");
        // Each reset marker stands right before the new numbering's first message.
        let at = on.iter().position(|m| m.gap_reason == "reset").expect("a reset");
        assert_eq!((on[at + 1].epoch, on[at + 1].exchange_seq), (1, Some(0)), "{c}");
    }
}

/// Two replicas see the numbering start again: they agree on the epoch,
/// so the new messages are stored once and the restart marked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_agree_on_a_restarted_numbering() {
    let _serial = SERIAL.lock().await;
    let scene = Scene::start("restart2", &["a", "b"], true).await;
    scene.exchange.restart_numbering(1);
    scene.feed(100).await;
    scene.wait_count(603).await;
    let chans = scene.chans.clone();
    let (summaries, stored) = scene.stop().await;
    let resets: u64 = summaries.iter().map(|s| s.stats.resets).sum();
    assert!(resets >= 3, "each channel's restart seen: {summaries:?}");
    for c in &chans {
        let on = on(&stored, c);
        assert_eq!(markers(&on, "reset").len(), 1, "{c}");
        let mut new: Vec<u64> =
            on.iter().filter(|m| m.kind == "message" && m.epoch == 1).filter_map(|m| m.exchange_seq).collect();
        new.sort_unstable();
        assert_eq!(new, (1..=100).collect::<Vec<_>>(), "{c}: each new number once");
    }
}

/// Without an exchange sequence, every re-made connection is marked as a
/// possible gap (and the first connection of the run with a `restart`
/// marker), by the replica that made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_sequence_every_reconnect_is_marked() {
    let _serial = SERIAL.lock().await;
    let scene = Scene::start("gaprec", &["a"], false).await;
    scene.cut_and_lose(&[], 50).await;
    scene.exchange.release_subscriptions();
    scene.exchange.wait_subscribed(&scene.chans, 1, WAIT).await;
    scene.feed(100).await;
    scene.wait_count(606).await;
    let chans = scene.chans.clone();
    let (summaries, stored) = scene.stop().await;
    assert_eq!(summaries[0].stats.gaps, 6, "{summaries:?}");
    for c in &chans {
        let on = on(&stored, c);
        assert_eq!(on[0].gap_reason, "restart", "{c}: the run's first connection");
        let gap = on.iter().position(|m| m.gap_reason == "reconnect").expect("a reconnect marker");
        assert_eq!((on.len(), gap), (202, 101), "{c}: the marker sits where the messages are missing");
    }
}
