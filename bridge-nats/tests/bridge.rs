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
