//! Descriptor and memory leaks over 1000 reconnect cycles, on each runtime.
//! Alone in its test binary, and the two runtimes take turns, because
//! descriptors and memory are counted for the whole process.

use std::sync::Mutex;
use std::time::Duration;

use wslink_adapter::Runtime;
use wslink_core::{CloseCode, SessionEvent};
use wslink_tests::peers::echo_server;
use wslink_tests::scenario::{builder, run, until};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn tokio_runtime_a_thousand_reconnect_cycles_leak_no_descriptors_or_memory() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    run(a_thousand_reconnect_cycles_leak_no_descriptors_or_memory::<wslink_tokio::Tokio>());
}

#[test]
fn smol_runtime_a_thousand_reconnect_cycles_leak_no_descriptors_or_memory() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    run(a_thousand_reconnect_cycles_leak_no_descriptors_or_memory::<wslink_smol::Smol>());
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4
}

async fn a_thousand_reconnect_cycles_leak_no_descriptors_or_memory<R: Runtime>() {
    {
        let addr = echo_server(None).await;
        let (client, mut events) = builder::<R>(&format!("ws://{addr}/")).connect().await.expect("connected");
        // The first connection is on the stream: each next `Connected` is a reconnect's.
        until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
        for _ in 0..20 {
            client.reconnect().await.expect("reconnect");
            until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
        }
        let (fds, rss) = (open_fds(), rss_kib());
        for _ in 0..1000 {
            client.reconnect().await.expect("reconnect");
            until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
        }
        // Closed transports flush on a short leash; give them time to finish.
        let mut after = open_fds();
        for _ in 0..300 {
            if after <= fds + 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            after = open_fds();
        }
        assert!(after <= fds + 4, "descriptors grew from {fds} to {after}");
        let grown = rss_kib().saturating_sub(rss);
        assert!(grown < 16 * 1024, "memory grew by {grown} KiB over 1000 cycles");
        let metrics = client.metrics().await.expect("metrics");
        assert_eq!(metrics.session.connects, 1021);
        client.close(CloseCode::Normal, "").await.expect("closed");
    }
}
