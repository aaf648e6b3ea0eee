//! wslink's metrics in Prometheus' text format: a client with the feature
//! `metrics` against the test kit's loopback mock server, and the
//! `metrics-exporter-prometheus` recorder rendering what it pushed.
//!
//! `cargo run -p wslink-tests --example prometheus`
//!
//! It subscribes, sends requests and messages, has the server cut the link
//! once (the client reconnects and subscribes again by itself), closes, and
//! prints the scrape page. A service would serve `handle.render()` on its
//! `/metrics` endpoint instead (or turn on the exporter's `http-listener`
//! feature, which brings hyper). It checks its own output, so `.ci/run`
//! catches a metric that went missing; it ends by itself in about a second.

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use wslink_adapter::testkit::{jsonrpc, MockServer};
use wslink_tokio::{BackoffConfig, Builder, CloseCode, Message, PingConfig, SessionEvent};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Installed before any client starts: each client registers its handles when it starts.
    let prometheus = PrometheusBuilder::new()
        // Round trips and delays as Prometheus histograms, which add up across
        // instances (without this they render as summaries with quantiles).
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[0.000_25, 0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0, 60.0],
        )?
        .install_recorder()?;

    let server = MockServer::start();
    server.respond_with(|m| {
        let (id, method) = (jsonrpc::id(m)?, jsonrpc::method(m)?);
        let result = if method == "public/subscribe" { r#"["trades"]"#.to_owned() } else { "42".to_owned() };
        Some(Message::Text(jsonrpc::result(id, &result).into()))
    });
    let (client, mut events) = Builder::new(&server.url())?
        .metrics_label("example")
        .ping(Some(PingConfig::new(Duration::from_millis(50), Duration::from_millis(40))))
        .backoff(BackoffConfig::default().initial(Duration::from_millis(20)))
        .connect()
        .await?;
    server.expect_connection_async(WAIT).await;
    client.subscribe(&["trades"]).await?;
    wait_for(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await?;
    for _ in 0..20 {
        client.request("public/get_time", None, None).await?;
    }
    for i in 0..5 {
        client.send_text(format!("hello {i}")).await?;
        server.send_text(&format!("tick {i}"));
    }
    let mut ticks = 0;
    wait_for(&mut events, |e| {
        ticks += usize::from(matches!(e, SessionEvent::Message(_)));
        ticks == 5
    })
    .await?;
    server.cut();
    wait_for(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await?;
    // A heartbeat or two on the new connection.
    let started = client.heartbeat_health().await?.rtt_samples;
    while client.heartbeat_health().await?.rtt_samples < started + 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.close(CloseCode::Normal, "example over").await?;
    while events.recv().await.is_some() {}

    let page = prometheus.render();
    print!("{page}");
    for line in [
        r#"wslink_connects_total{client="example"} 2"#,
        r#"wslink_messages_sent_total{client="example"} 25"#,
        r#"wslink_request_rtt_seconds_count{client="example"} 20"#,
        r#"wslink_connected{client="example"} 0"#,
        "# HELP wslink_bytes_received_total Bytes read from the transport",
    ] {
        if !page.lines().any(|l| l == line) {
            return Err(format!("the page lacks {line:?}").into());
        }
    }
    // One cut, one disconnect (read as `eof`, or as `transport_error` if a ping met the closed socket).
    let disconnects: f64 = page
        .lines()
        .filter(|l| l.starts_with(r#"wslink_disconnects_total{client="example""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    if disconnects != 1.0 {
        return Err(format!("{disconnects} disconnects counted, not 1").into());
    }
    Ok(())
}

/// Reads events until one matches, within `WAIT`.
async fn wait_for(
    events: &mut wslink_tokio::Events,
    mut want: impl FnMut(&SessionEvent) -> bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            if want(&event) {
                return true;
            }
        }
        false
    })
    .await;
    match found {
        Ok(true) => Ok(()),
        _ => Err("the expected event did not come".into()),
    }
}
