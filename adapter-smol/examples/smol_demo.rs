//! The smol demo: a wslink client on smol against the test kit's loopback
//! mock server, which answers JSON-RPC requests and cuts the link once.
//!
//! `cargo run -p wslink-smol --example smol_demo`
//!
//! It connects, subscribes, sends requests and prints their latency; the
//! server cuts the connection; the client reconnects and subscribes again by
//! itself; more requests; a summary. It ends by itself in under a second.

use std::time::{Duration, Instant};

use wslink_adapter::testkit::{jsonrpc, MockServer};
use wslink_smol::{BackoffConfig, Builder, CloseCode, Message, SessionEvent};

const WAIT: Duration = Duration::from_secs(10);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(async {
        let start = Instant::now();
        let at = || format!("{:>6.2}s", start.elapsed().as_secs_f64());
        let server = MockServer::start();
        // Every request is answered with its method's name; subscriptions with their channels.
        server.respond_with(|m| {
            let (id, method) = (jsonrpc::id(m)?, jsonrpc::method(m)?);
            let result = if method == "public/subscribe" { r#"["trades"]"#.to_owned() } else { format!("{method:?}") };
            Some(Message::Text(jsonrpc::result(id, &result).into()))
        });
        println!("mock server on {}", server.url());

        let (client, mut events) = Builder::new(&server.url())?
            .backoff(BackoffConfig::default().initial(Duration::from_millis(100)))
            .connect()
            .await?;
        server.expect_connection_async(WAIT).await;
        client.subscribe(&["trades"]).await?;
        subscribed(&mut events, &at).await?;
        for round in 1..=2 {
            for _ in 0..3 {
                let response = client.request("public/get_time", None, None).await?;
                println!("[{}] request answered in {:.2?}: {}", at(), response.rtt, response.message);
            }
            if round == 1 {
                server.cut();
                println!("[{}] the server cut the link", at());
                subscribed(&mut events, &at).await?;
            }
        }
        let latency = client.latency().await?;
        let metrics = client.metrics().await?;
        client.close(CloseCode::Normal, "demo over").await?;
        while events.recv().await.is_some() {}
        // A duration as one (`211.83µs`), `-` when there is none yet.
        let shown = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{d:.2?}"));
        println!(
            "\nsummary: {} connections, {} requests, p50 {}, p99 {}",
            metrics.session.connects,
            latency.count,
            shown(latency.p50),
            shown(latency.p99)
        );
        Ok(())
    })
}

/// Prints what happens until the client is subscribed (again).
async fn subscribed(
    events: &mut wslink_smol::Events,
    at: &impl Fn() -> String,
) -> Result<(), Box<dyn std::error::Error>> {
    loop {
        match events.recv().await {
            Some(SessionEvent::Disconnected { reason }) => println!("[{}] disconnected: {reason}", at()),
            Some(SessionEvent::Reconnecting { attempt, delay }) => {
                println!("[{}] reconnecting in {delay:.2?} (attempt {attempt} since the link was open)", at())
            }
            Some(SessionEvent::Connected { .. }) => println!("[{}] connected", at()),
            Some(SessionEvent::Subscribed { channels }) => {
                println!("[{}] subscribed {channels:?}", at());
                return Ok(());
            }
            Some(_) => {}
            None => return Err("the client ended".into()),
        }
    }
}
