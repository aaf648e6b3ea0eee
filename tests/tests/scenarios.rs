//! The scenario suite, written once and run against both adapters: each
//! scenario is generic over the runtime, and `scenarios!` makes one test per
//! scenario in `tokio_runtime` and one in `smol_runtime`.
//!
//! Real peers over loopback TCP and TLS: tokio-tungstenite's server, Python's
//! `websockets` server, broken servers, and the fault proxy. The peers run on
//! a tokio runtime; the client under test runs on the runtime of the module
//! (for smol: smol's executor and async-io's reactor). Every wait is bounded;
//! every server is a task of the test's runtime or a child process killed by
//! its own handle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wslink_adapter::{Error, Pool, RequestError, Runtime, TlsOptions};
use wslink_core::{
    presets, BackoffConfig, CloseCode, CloseReason, DisconnectReason, Message, PingConfig, SessionEvent,
};
use wslink_core::{ConnectionError, HandshakeError};
use wslink_tests::certs::TestCerts;
use wslink_tests::peers::{echo_server, flood_server, refusing_server, silent_server, ExchangeServer};
use wslink_tests::proxy::{Fault, FaultProxy};
use wslink_tests::python::PythonServer;
use wslink_tests::scenario::{builder, run, until, WAIT};
use wslink_tests::scenarios;
use wslink_tokio::Bytes;

scenarios!(
    echo_of_every_size_with_tungstenite_over_ws_and_wss,
    echo_of_every_size_with_python_websockets_over_ws_and_wss,
    server_close_leads_to_reconnect_auth_and_resubscribe_once,
    blackholed_link_times_out_by_heartbeat_and_reconnects,
    refused_upgrade_is_a_typed_error_followed_by_backoff,
    a_server_that_never_answers_hits_the_handshake_timeout,
    unresolvable_host_and_refused_port_are_typed_errors,
    requests_in_flight_fail_with_connection_lost_when_the_server_dies,
    a_slow_consumer_pauses_reading_and_the_server_blocks,
    normal_close_handshake_with_1000,
    the_client_runs_where_spawn_with_puts_it,
    a_request_deadline_before_the_armed_ping_fires_on_time,
    dropping_every_handle_closes_with_1000,
    cancelled_calls_lose_nothing,
    pool_balances_and_fails_over,
    cut_truncated_and_delayed_links_heal,
    messages_handed_over_without_waiting_go_in_order_or_come_back,
    posts_behind_a_close_come_back_before_closed_or_at_once,
);

const SIZES: &[usize] = &[0, 1, 125, 126, 65535, 65536, 300_000, 1 << 20];

async fn echo_every_size<R: Runtime>(url: &str, tls: Option<&TestCerts>) {
    let mut b = builder::<R>(url);
    if let Some(certs) = tls {
        b = b.tls(TlsOptions::with_roots(certs.roots()));
    }
    let (client, mut events) = b.connect().await.expect("connected");
    for &n in SIZES {
        let text: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        client.send_text(text.clone()).await.expect("sent");
        let got = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
        assert_eq!(got.last(), Some(&SessionEvent::Message(Message::Text(text.into()))), "text {n} via {url}");
        let data: Vec<u8> = (0..n).map(|i| (i * 31) as u8).collect();
        client.send_binary(data.clone()).await.expect("sent");
        let got = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
        assert_eq!(
            got.last(),
            Some(&SessionEvent::Message(Message::Binary(Bytes::from(data)))),
            "binary {n} via {url}"
        );
    }
    client.close(CloseCode::Normal, "done").await.expect("closed");
}

async fn echo_of_every_size_with_tungstenite_over_ws_and_wss<R: Runtime>() {
    {
        let certs = TestCerts::generate();
        let plain = echo_server(None).await;
        echo_every_size::<R>(&format!("ws://{plain}/"), None).await;
        let tls = echo_server(Some(certs.server_config())).await;
        echo_every_size::<R>(&format!("wss://{tls}/"), Some(&certs)).await;
    }
}

async fn echo_of_every_size_with_python_websockets_over_ws_and_wss<R: Runtime>() {
    let certs = TestCerts::generate();
    let (cert, key) = certs.write_pem("python");
    let plain = PythonServer::start(None);
    let tls = PythonServer::start(Some((&cert, &key)));
    {
        echo_every_size::<R>(&format!("ws://{}/", plain.addr), None).await;
        echo_every_size::<R>(&format!("wss://localhost:{}/", tls.addr.port()), Some(&certs)).await;
    }
}

async fn server_close_leads_to_reconnect_auth_and_resubscribe_once<R: Runtime>() {
    {
        let server = ExchangeServer::start(true).await;
        let (client, mut events) = builder::<R>(&format!("ws://{}/", server.addr))
            .authenticator(presets::JsonRpcAuth::new("public/auth", |_| "{}".to_owned()))
            .connect()
            .await
            .expect("connected");
        client.subscribe(&["trades.BTC", "book.ETH"]).await.expect("subscribed");
        until(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
        server.close_all(1001);
        let seen = until(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
        assert!(seen
            .iter()
            .any(|e| matches!(e, SessionEvent::Disconnected { reason: DisconnectReason::Closed(c) } if c.is_clean())));
        assert!(seen.iter().any(|e| matches!(e, SessionEvent::Connected { .. })));
        for n in 0..2 {
            assert_eq!(server.methods_on(n), ["public/auth", "public/subscribe"], "connection {n}");
        }
        client.close(CloseCode::Normal, "").await.expect("closed");
    }
}

async fn blackholed_link_times_out_by_heartbeat_and_reconnects<R: Runtime>() {
    {
        let upstream = echo_server(None).await;
        let proxy = FaultProxy::start(upstream).await;
        let (client, mut events) = builder::<R>(&format!("ws://{}/", proxy.addr))
            .ping(Some(PingConfig::new(Duration::from_millis(300), Duration::from_millis(200))))
            .connect()
            .await
            .expect("connected");
        proxy.set(Fault::Blackhole);
        let seen = until(&mut events, |e| matches!(e, SessionEvent::Disconnected { .. })).await;
        assert_eq!(seen.last(), Some(&SessionEvent::Disconnected { reason: DisconnectReason::HeartbeatTimeout }));
        proxy.set(Fault::Pass);
        until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
        assert_eq!(*proxy.accepted.lock().unwrap(), 2);
        let health = client.heartbeat_health().await.expect("health");
        assert_eq!(health.total_failures, 1);
        client.close(CloseCode::Normal, "").await.expect("closed");
    }
}

async fn refused_upgrade_is_a_typed_error_followed_by_backoff<R: Runtime>() {
    {
        let addr = refusing_server().await;
        let (client, mut events) = builder::<R>(&format!("ws://{addr}/")).start().expect("started");
        let seen = until(&mut events, |e| matches!(e, SessionEvent::Reconnecting { .. })).await;
        let refusal = seen.iter().find_map(|e| match e {
            SessionEvent::Disconnected { reason: DisconnectReason::Closed(c) } => match &c.error {
                Some(ConnectionError::Handshake(HandshakeError::Refused(r))) => Some(r.clone()),
                _ => None,
            },
            _ => None,
        });
        let refusal = refusal.expect("a Refused handshake error");
        assert_eq!((refusal.status, refusal.body.as_slice()), (403, &b"no token, no entry"[..]));
        assert!(matches!(seen.last(), Some(SessionEvent::Reconnecting { attempt: 2, .. })));
        client.close(CloseCode::Normal, "").await.expect("closed");
    }
}

async fn a_server_that_never_answers_hits_the_handshake_timeout<R: Runtime>() {
    {
        let addr = silent_server().await;
        let err = builder::<R>(&format!("ws://{addr}/"))
            .config(|c| c.connection.handshake_timeout = Some(Duration::from_millis(300)))
            .connect()
            .await
            .expect_err("no handshake");
        match err {
            Error::Connect(DisconnectReason::Closed(c)) => {
                assert_eq!(c.error, Some(ConnectionError::HandshakeTimeout))
            }
            other => panic!("{other:?}"),
        }
    }
}

async fn unresolvable_host_and_refused_port_are_typed_errors<R: Runtime>() {
    {
        let err = builder::<R>("ws://unresolvable.test/")
            .resolver(|host, _| Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("no such host {host}"))))
            .connect()
            .await
            .expect_err("cannot resolve");
        assert!(
            matches!(&err, Error::Connect(DisconnectReason::ConnectFailed { kind: std::io::ErrorKind::NotFound, .. })),
            "{err:?}"
        );
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
        let err = builder::<R>(&format!("ws://{free}/")).connect().await.expect_err("refused");
        assert!(
            matches!(
                &err,
                Error::Connect(DisconnectReason::ConnectFailed { kind: std::io::ErrorKind::ConnectionRefused, .. })
            ),
            "{err:?}"
        );
    }
}

async fn requests_in_flight_fail_with_connection_lost_when_the_server_dies<R: Runtime>() {
    {
        let server = ExchangeServer::start(false).await;
        let (client, _events) = builder::<R>(&format!("ws://{}/", server.addr)).connect().await.expect("connected");
        let calls: Vec<_> = (0..5)
            .map(|i| {
                let c = client.clone();
                tokio::spawn(async move { c.request(&format!("private/order_{i}"), None, None).await })
            })
            .collect();
        for _ in 0..500 {
            if server.methods_on(0).len() == 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(server.methods_on(0).len(), 5, "all five requests reached the server");
        server.drop_all();
        for call in calls {
            assert_eq!(call.await.expect("task"), Err(RequestError::ConnectionLost));
        }
        client.close(CloseCode::Normal, "").await.expect("closed");
    }
}

async fn a_slow_consumer_pauses_reading_and_the_server_blocks<R: Runtime>() {
    {
        let limit = 200_000;
        let (addr, sent) = flood_server(limit).await;
        let (client, mut events) =
            builder::<R>(&format!("ws://{addr}/")).event_capacity(8).connect().await.expect("connected");
        // Read nothing until the server can send no more.
        let mut last = u64::MAX;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = sent.load(Ordering::SeqCst);
            if now == last {
                break;
            }
            last = now;
        }
        let stalled = sent.load(Ordering::SeqCst);
        assert!(stalled < limit, "the server's sends block: {stalled} of {limit}");
        let metrics = client.metrics().await.expect("metrics");
        assert!(metrics.read_paused > Duration::ZERO, "reading was paused");
        assert!(
            metrics.session.messages_in < 1000,
            "the client holds a bounded number: {}",
            metrics.session.messages_in
        );
        // Reading again lets the flood through (the server keeps sending and never reads,
        // so the close below ends by the close timeout).
        let mut got = 0u64;
        while got < stalled + 100 {
            if let Some(SessionEvent::Message(_)) = tokio::time::timeout(WAIT, events.recv()).await.expect("flowing") {
                got += 1;
            }
        }
        client.close(CloseCode::Normal, "").await.expect("closed");
    }
}

async fn normal_close_handshake_with_1000<R: Runtime>() {
    {
        let server = ExchangeServer::start(true).await;
        let (client, mut events) = builder::<R>(&format!("ws://{}/", server.addr)).connect().await.expect("connected");
        client.close(CloseCode::Normal, "bye").await.expect("closed");
        let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
        assert_eq!(seen.last(), Some(&SessionEvent::Closed { reason: CloseReason::Requested }));
        for _ in 0..100 {
            if !server.log.lock().unwrap().closes.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(server.log.lock().unwrap().closes, [(0, Some(1000))]);
        assert!(client.send_text("late").await.is_err(), "handles fail cleanly after close");
    }
}

async fn the_client_runs_where_spawn_with_puts_it<R: Runtime>() {
    let server = ExchangeServer::start(true).await;
    let spawned = Arc::new(AtomicUsize::new(0));
    let count = spawned.clone();
    let (client, mut events) = builder::<R>(&format!("ws://{}/", server.addr))
        .spawn_with(move |task| {
            count.fetch_add(1, Ordering::SeqCst);
            R::spawn(task);
        })
        .connect()
        .await
        .expect("connected");
    assert_eq!(spawned.load(Ordering::SeqCst), 1, "the driver task");
    // The first connection is on the stream: the next `Connected` is the reconnect's.
    until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    client.reconnect().await.expect("reconnecting");
    until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    assert_eq!(spawned.load(Ordering::SeqCst), 2, "and the task that closes the replaced connection");
    client.close(CloseCode::Normal, "bye").await.expect("closed");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Closed { reason: CloseReason::Requested }));
    assert_eq!(spawned.load(Ordering::SeqCst), 2, "the last close runs in the driver, which awaits it");
}

async fn a_request_deadline_before_the_armed_ping_fires_on_time<R: Runtime>() {
    // The driver keeps one timer and moves it only earlier: here it is armed
    // for the ping a minute away when a request with a 200 ms deadline comes.
    // The echo server sends the request back, which is not a response.
    let addr = echo_server(None).await;
    let ping = PingConfig::new(Duration::from_secs(60), Duration::from_secs(10));
    let (client, _events) = builder::<R>(&format!("ws://{addr}/")).ping(Some(ping)).connect().await.expect("connected");
    // 25 times the request's deadline, half of what any other timer of the
    // session (the handshake's, 10 s) would take to fire in its place.
    let bound = Duration::from_secs(5);
    let answer = tokio::time::timeout(bound, client.request("public/get_time", None, Some(Duration::from_millis(200))))
        .await
        .expect("the request ended at its own deadline, not a later timer's");
    assert_eq!(answer, Err(RequestError::Timeout));
    client.close(CloseCode::Normal, "").await.expect("closed");
}

async fn dropping_every_handle_closes_with_1000<R: Runtime>() {
    {
        let server = ExchangeServer::start(true).await;
        let (client, events) = builder::<R>(&format!("ws://{}/", server.addr)).connect().await.expect("connected");
        drop(client);
        drop(events);
        for _ in 0..300 {
            if !server.log.lock().unwrap().closes.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(server.log.lock().unwrap().closes, [(0, Some(1000))]);
    }
}

async fn cancelled_calls_lose_nothing<R: Runtime>() {
    {
        let server = ExchangeServer::start(true).await;
        let (client, mut events) = builder::<R>(&format!("ws://{}/", server.addr)).connect().await.expect("connected");
        for i in 0..20 {
            // Drop the request future at once, mid-await.
            let method = format!("m{i}");
            tokio::select! {
                biased;
                _ = std::future::ready(()) => {}
                _ = client.request(&method, None, None) => {}
            }
        }
        let answered = client.request("last", None, None).await.expect("answered");
        assert!(answered.message.as_bytes().starts_with(b"{\"id\""));
        client.send_text("{\"jsonrpc\":\"2.0\",\"method\":\"note\"}").await.expect("sent");
        client.close(CloseCode::Normal, "").await.expect("closed");
        until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    }
}

async fn pool_balances_and_fails_over<R: Runtime>() {
    {
        let server = ExchangeServer::start(true).await;
        let url = format!("ws://{}/", server.addr);
        let (pool, _events) = Pool::connect(3, move || Ok(builder::<R>(&url))).await.expect("pool connected");
        let mut used = std::collections::BTreeSet::new();
        for _ in 0..6 {
            let (i, response) = pool.request_balanced("public/get_time", None, None).await.expect("answered");
            assert!(!response.is_error);
            used.insert(i);
        }
        assert!(pool.remove(0).await, "member 0 left the pool");
        for _ in 0..6 {
            let (i, _) = pool.request_balanced("public/get_time", None, None).await.expect("failover");
            assert_ne!(i, 0, "a closed client is never chosen");
        }
        assert_eq!(pool.send_balanced("{}").await.map(|i| i != 0), Ok(true));
        assert!(!used.is_empty());
    }
}

async fn cut_truncated_and_delayed_links_heal<R: Runtime>() {
    {
        let upstream = echo_server(None).await;
        let proxy = FaultProxy::start(upstream).await;
        let (client, mut events) = builder::<R>(&format!("ws://{}/", proxy.addr)).connect().await.expect("connected");

        proxy.set(Fault::Delay(Duration::from_millis(20)));
        client.send_text("slow but whole").await.expect("sent");
        let seen = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
        assert_eq!(seen.last(), Some(&SessionEvent::Message(Message::Text("slow but whole".into()))));

        // The server's echo of a 1000-byte message is cut after 100 bytes: mid-frame.
        proxy.set(Fault::TruncateAfter(100));
        client.send_text("x".repeat(1000)).await.expect("sent");
        let seen = until(&mut events, |e| matches!(e, SessionEvent::Disconnected { .. })).await;
        match seen.last() {
            Some(SessionEvent::Disconnected { reason: DisconnectReason::Closed(c) }) => {
                assert_eq!(c.error, Some(ConnectionError::UnexpectedEof { mid_frame: true }))
            }
            other => panic!("{other:?}"),
        }
        proxy.set(Fault::Pass);
        until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;

        for rst in [true, false] {
            proxy.set(Fault::Cut { rst });
            let seen = until(&mut events, |e| matches!(e, SessionEvent::Disconnected { .. })).await;
            assert!(
                matches!(seen.last(), Some(SessionEvent::Disconnected { reason: DisconnectReason::Closed(c) }) if !c.is_clean())
            );
            proxy.set(Fault::Pass);
            until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
        }
        client.send_text("after the storm").await.expect("sent");
        let seen = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
        assert_eq!(seen.last(), Some(&SessionEvent::Message(Message::Text("after the storm".into()))));
        client.close(CloseCode::Normal, "").await.expect("closed");
    }
}

async fn messages_handed_over_without_waiting_go_in_order_or_come_back<R: Runtime>() {
    let addr = echo_server(None).await;
    let (client, mut events) = builder::<R>(&format!("ws://{addr}/")).connect().await.expect("connected");
    client.try_send_text("p0").expect("handed over");
    client.send_text("s1").await.expect("sent");
    client.try_send_text("p2").expect("handed over");
    client.try_send_binary(Bytes::from_static(b"p3")).expect("handed over");
    let mut echoed = Vec::new();
    while echoed.len() < 4 {
        if let Some(SessionEvent::Message(m)) =
            until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await.pop()
        {
            echoed.push(m);
        }
    }
    let want = ["p0", "s1", "p2"].map(|t| Message::Text(t.into()));
    assert_eq!(echoed[..3], want, "in the order handed over, waiting or not");
    assert_eq!(echoed[3], Message::Binary(Bytes::from_static(b"p3")));

    client.close(CloseCode::Normal, "").await.expect("closed");
    assert_eq!(
        client.try_send_text("late"),
        Err(wslink_adapter::TrySendError::Closed(Message::Text("late".into()))),
        "after close the message comes back at once"
    );

    // Not connected (the server refuses every upgrade) and not queueing: the
    // session refuses the message, which comes back as an event.
    let addr = refusing_server().await;
    // Exactly 30 s (no jitter), so the client is surely still waiting when the scenario acts.
    let backoff = BackoffConfig::default().initial(Duration::from_secs(30)).full_jitter(false);
    let (client, mut events) = builder::<R>(&format!("ws://{addr}/"))
        .config(|c| c.queue_while_disconnected = false)
        .backoff(backoff)
        .start()
        .expect("started");
    until(&mut events, |e| matches!(e, SessionEvent::Reconnecting { .. })).await;
    client.try_send_text("while-away").expect("handed over");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Refused { .. })).await;
    assert_eq!(
        seen.last(),
        Some(&SessionEvent::Refused {
            message: Message::Text("while-away".into()),
            error: Box::new(wslink_core::CommandError::NotConnected)
        })
    );
    client.close(CloseCode::Normal, "").await.expect("closed");
}

async fn posts_behind_a_close_come_back_before_closed_or_at_once<R: Runtime>() {
    // Not connected (the server refuses), so the close ends the session at
    // once, while the posts behind it may still wait in the command queue,
    // be taken by the driver, or find it closed: whichever, each comes back
    // exactly once, and nothing follows `Closed`.
    let addr = refusing_server().await;
    let backoff = BackoffConfig::default().initial(Duration::from_secs(30)).full_jitter(false);
    let (client, mut events) = builder::<R>(&format!("ws://{addr}/")).backoff(backoff).start().expect("started");
    until(&mut events, |e| matches!(e, SessionEvent::Reconnecting { .. })).await;
    let mut close = std::pin::pin!(client.close(CloseCode::Normal, ""));
    // The first poll hands the close over; the posts queue behind it.
    let closed_at_once = futures_lite::future::poll_once(close.as_mut()).await;
    let mut handed_over = Vec::new();
    for i in 0..200 {
        let message = Message::Text(i.to_string().into());
        match client.try_send_text(i.to_string()) {
            Ok(()) => handed_over.push(message),
            Err(e) => assert_eq!(e, wslink_adapter::TrySendError::Closed(message)),
        }
    }
    if closed_at_once.is_none() {
        close.await.expect("closed");
    }
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    let refused: Vec<Message> = seen
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Refused { message, error } => {
                assert_eq!(**error, wslink_core::CommandError::Closed);
                Some(message.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(refused, handed_over, "every post handed over comes back once, in order, before Closed");
    let after = tokio::time::timeout(WAIT, events.recv()).await.expect("the stream ends");
    assert_eq!(after, None, "nothing follows Closed");
}
