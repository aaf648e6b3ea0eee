//! Connecting to a host whose first address never answers (RFC 8305, Happy
//! Eyeballs): on both runtimes and in the own loop of `blocking.rs`, a
//! resolver hands out an address whose TCP handshake never completes (a
//! loopback listener with a full accept queue) before a good one; the
//! client connects through the good one within the connection attempt
//! delay, not after the connect timeout. With every address dead, the
//! connect timeout still bounds the attempt.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use wslink_adapter::{Error, Runtime};
use wslink_core::{DisconnectReason, Session, SessionEvent};
use wslink_tests::peers::{echo_server, unanswering_address};
use wslink_tests::scenario::{builder, run, WAIT};
use wslink_tests::{blocking, scenarios};

scenarios!(
    a_dead_first_address_costs_the_attempt_delay_not_the_connect_timeout,
    a_dead_ipv6_address_gives_way_to_ipv4,
    every_address_dead_is_a_connect_timeout
);

/// A connect timeout far beyond the attempt delay: reaching it means the
/// good address was never tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

async fn a_dead_first_address_costs_the_attempt_delay_not_the_connect_timeout<R: Runtime>() {
    let (dead, _held) = unanswering_address(false).await;
    let good = echo_server(None).await;
    let (client, mut events) = builder::<R>("ws://feed.test/")
        .resolver(move |_, _| Ok(vec![dead, good]))
        .config(|c| c.connect_timeout = CONNECT_TIMEOUT)
        .connect()
        .await
        .expect("connected through the second address");
    client.send_text("through").await.expect("sent");
    let echoed = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(SessionEvent::Message(m)) = events.recv().await {
                return m;
            }
        }
    })
    .await
    .expect("the echo");
    assert_eq!(echoed, wslink_core::Message::Text("through".into()));
}

async fn a_dead_ipv6_address_gives_way_to_ipv4<R: Runtime>() {
    let (dead_v6, _held) = unanswering_address(true).await;
    let (dead_v6b, _held_b) = unanswering_address(true).await;
    let good = echo_server(None).await;
    // Two dead IPv6 addresses first: interleaving tries IPv4 second, not third.
    let (_client, _events) = builder::<R>("ws://feed.test/")
        .resolver(move |_, _| Ok(vec![dead_v6, dead_v6b, good]))
        .connection_attempt_delay(Duration::from_millis(100))
        .config(|c| c.connect_timeout = CONNECT_TIMEOUT)
        .connect()
        .await
        .expect("connected over IPv4");
}

async fn every_address_dead_is_a_connect_timeout<R: Runtime>() {
    let (a, _held_a) = unanswering_address(false).await;
    let (b, _held_b) = unanswering_address(false).await;
    let outcome = builder::<R>("ws://feed.test/")
        .resolver(move |_, _| Ok(vec![a, b]))
        .config(|c| c.connect_timeout = Duration::from_millis(600))
        .connect()
        .await;
    assert!(matches!(outcome, Err(Error::Connect(DisconnectReason::ConnectTimeout))), "{outcome:?}");
}

#[test]
fn the_own_loop_races_addresses_too() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let ((dead, held), good) = rt.block_on(async { (unanswering_address(false).await, echo_server(None).await) });
    let addrs: Vec<SocketAddr> = vec![dead, good];
    let resolve = move |_: &str, _: u16| Ok(addrs.clone());
    let start = Instant::now();
    let mut session = Session::builder("ws://feed.test/")
        .expect("URL")
        .ping(None)
        .config(|c| c.connect_timeout = CONNECT_TIMEOUT)
        .build(Box::new(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1)), start)
        .expect("config");
    session.connect(start).expect("idle");
    // The loop blocks while it connects, and gives one address 5 s: within
    // 4 s, it connected only if the good address did not wait for the dead one.
    let seen = blocking::drive_resolving(&mut session, None, &resolve, Duration::from_secs(4), |_, event| {
        matches!(event, Some(SessionEvent::Connected { .. } | SessionEvent::Disconnected { .. }))
    });
    assert!(matches!(seen.last(), Some(SessionEvent::Connected { .. })), "{seen:?}");
    drop(held);
}
