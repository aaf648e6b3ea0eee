//! The test kits carry real tests.
//!
//! First, session tests of wslink-core rewritten on `wslink_core::testkit`
//! (moved here from `core/src/session/tests/`, each checking at least what
//! its original did): authentication and resubscription after every
//! reconnect, a request's timeout and late answer, requests lost with the
//! connection and queued ones sent after it, a blackholed pong, and giving up.
//!
//! Then the adapters' mock server (`wslink_adapter::testkit::MockServer`),
//! a real loopback server scripted the same way, on both runtimes through
//! `scenarios!`. Every wait is bounded by a timeout; nothing sleeps.

// The fake clock needs one origin; nothing reads the clock after it.
#![allow(clippy::disallowed_methods)]

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use futures_util::future::join;
use wslink_adapter::testkit::MockServer;
use wslink_adapter::Runtime;
use wslink_core::presets::JsonRpcAuth;
use wslink_core::testkit::{jsonrpc, FakeServer, Link, Sent};
use wslink_core::{
    BackoffConfig, CloseCode, CloseReason, CommandError, DisconnectReason, Message, PingConfig, RequestFailure,
    Session, SessionBuilder, SessionEvent, SessionState,
};
use wslink_tests::scenario::{builder, run, until, WAIT};
use wslink_tests::scenarios;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ----- the sans-IO kit -----

/// The session the core's own tests use: pings off, so only what a test arms runs.
fn session() -> SessionBuilder {
    Session::builder("ws://feed.test:9001/ws").expect("valid URL").ping(None)
}

fn kit(builder: SessionBuilder) -> FakeServer {
    FakeServer::new(builder, Instant::now()).expect("valid config")
}

/// The session asked for the transport its URL names.
fn assert_endpoint(kit: &FakeServer) {
    let endpoint = kit.endpoint().expect("a transport was asked for");
    assert_eq!((endpoint.host.as_str(), endpoint.port, endpoint.tls), ("feed.test", 9001, false));
}

/// Connected and open (no auth), what happened so far taken.
fn open(builder: SessionBuilder) -> FakeServer {
    let mut kit = kit(builder);
    kit.connect();
    assert_endpoint(&kit);
    kit.accept();
    kit.events();
    kit.sent();
    kit
}

fn reply(id: u64) -> String {
    jsonrpc::result(id, r#"{"ok":true}"#)
}

fn method_of(text: &str) -> String {
    jsonrpc::method(&Message::Text(text.into())).expect("a JSON-RPC request")
}

fn id_of(text: &str) -> u64 {
    jsonrpc::id(&Message::Text(text.into())).expect("a JSON-RPC request")
}

/// From core/src/session/tests/subscriptions.rs.
#[test]
fn subscriptions_wait_for_auth_and_are_sent_again_once_after_every_reconnect() {
    let auth = JsonRpcAuth::new("public/auth", |attempt| format!(r#"{{"attempt":{attempt}}}"#));
    let mut kit = kit(session().authenticator(auth));
    kit.command(|s, now| s.subscribe(&["trades.BTC", "book.ETH", "trades.BTC"], now)).unwrap();
    assert_eq!(kit.session().subscriptions(), ["trades.BTC", "book.ETH"]);
    kit.connect();
    for attempt in 1..=3u32 {
        assert_endpoint(&kit);
        kit.accept();
        let texts = kit.sent_texts();
        assert_eq!(texts.len(), 1, "only the auth request before auth is accepted: {texts:?}");
        assert_eq!(method_of(&texts[0]), "public/auth");
        assert_eq!(kit.state(), SessionState::Authenticating);
        kit.send_text(&jsonrpc::result(id_of(&texts[0]), r#"{"access_token":"t"}"#));
        let texts = kit.sent_texts();
        assert_eq!(texts.len(), 1, "one subscribe for every channel");
        assert_eq!(method_of(&texts[0]), "public/subscribe");
        assert!(texts[0].contains(r#""channels":["trades.BTC","book.ETH"]"#));
        kit.send_text(&jsonrpc::result(id_of(&texts[0]), r#"["trades.BTC","book.ETH"]"#));
        let evs = kit.events();
        assert!(evs.iter().any(|e| matches!(e, SessionEvent::Connected { .. })));
        assert!(evs.contains(&SessionEvent::Subscribed { channels: vec!["trades.BTC".into(), "book.ETH".into()] }));
        assert_eq!(kit.state(), SessionState::Open, "attempt {attempt}");
        kit.simulate_disconnect();
        kit.advance();
    }
    assert_eq!(kit.transports_opened(), 4);
}

/// From core/src/session/tests/requests.rs.
#[test]
fn a_request_times_out_at_its_deadline_and_its_late_answer_is_unmatched() {
    let mut kit = open(session());
    let id = kit.command(|s, now| s.request("slow", None, Some(secs(2)), now)).unwrap();
    assert_eq!(kit.session().poll_timeout(), Some(kit.now() + secs(2)));
    assert_eq!(kit.advance(), secs(2));
    assert_eq!(kit.events(), [SessionEvent::RequestFailed { id, reason: RequestFailure::Timeout }]);
    kit.send_text(&reply(id));
    assert_eq!(
        kit.events(),
        [SessionEvent::Unmatched { id: wslink_core::RequestId::Number(id), message: Message::Text(reply(id).into()) }]
    );
    assert_eq!(kit.session().metrics(kit.now()).pending_requests, 0);
}

/// From core/src/session/tests/requests.rs.
#[test]
fn sent_requests_fail_on_disconnect_and_queued_ones_go_after_reconnect() {
    let mut kit = open(session());
    let sent = kit.command(|s, now| s.request("a", None, None, now)).unwrap();
    kit.simulate_disconnect();
    let queued = kit.command(|s, now| s.request("b", None, None, now)).unwrap();
    kit.command(|s, now| s.send(Message::Text("queued-msg".into()), now)).unwrap();
    let evs = kit.events();
    assert!(evs.contains(&SessionEvent::RequestFailed { id: sent, reason: RequestFailure::ConnectionLost }));
    assert_eq!(kit.session().metrics(kit.now()).queue_len, 2);
    kit.sent();
    kit.advance();
    kit.accept();
    let texts = kit.sent_texts();
    assert_eq!(texts.len(), 2);
    assert_eq!((id_of(&texts[0]), texts[1].as_str()), (queued, "queued-msg"), "in order, never the lost one");
    kit.send_text(&reply(queued));
    assert!(matches!(kit.events().last(), Some(SessionEvent::Response { id, .. }) if *id == queued));
}

/// From core/src/session/tests/heartbeats.rs.
#[test]
fn a_blackholed_pong_times_out_and_reconnects() {
    let pings = PingConfig::new(secs(15), secs(5));
    // Exact delays: jitter off.
    let mut kit = open(session().ping(Some(pings)).backoff(BackoffConfig::default().full_jitter(false)));
    kit.blackhole();
    assert_eq!(kit.advance(), secs(15));
    assert!(matches!(kit.sent().as_slice(), [Sent::Ping(_)]), "the ping went into the black hole");
    assert_eq!(kit.advance(), secs(5), "pong deadline");
    let evs = kit.events();
    assert_eq!(evs[0], SessionEvent::Disconnected { reason: DisconnectReason::HeartbeatTimeout });
    // The link had opened: the next attempt is the first of a new run.
    assert_eq!(evs[1], SessionEvent::Reconnecting { attempt: 1, delay: ms(250) });
    let h = kit.session().heartbeat_health();
    assert_eq!((h.consecutive_failures, h.total_failures, h.in_flight), (1, 1, false));
    assert_eq!((kit.transports_closed(), kit.link()), (1, Link::Down));
}

/// From core/src/session/tests/lifecycle.rs.
#[test]
fn gives_up_after_max_attempts_with_a_terminal_event() {
    let mut kit = kit(session().max_attempts(Some(3)));
    kit.connect();
    for _ in 0..2 {
        assert_endpoint(&kit);
        kit.refuse_transport(ErrorKind::ConnectionRefused);
        kit.advance();
    }
    kit.refuse_transport(ErrorKind::ConnectionRefused);
    let evs = kit.events();
    assert!(
        matches!(evs.last(), Some(SessionEvent::Closed { reason: CloseReason::GaveUp { attempts: 3 } })),
        "{evs:?}"
    );
    assert_eq!((kit.state(), kit.session().poll_timeout(), kit.transports_opened()), (SessionState::Closed, None, 3));
    assert_eq!(kit.command(|s, now| s.connect(now)), Err(CommandError::Closed));
    assert_eq!(kit.command(|s, now| s.send(Message::Text("x".into()), now)), Err(CommandError::Closed));
}

// ----- the adapters' mock server, on both runtimes -----

scenarios!(
    the_mock_server_scripts_a_subscribe_a_cut_the_resubscribe_and_a_request,
    the_mock_server_answers_by_itself_and_a_black_hole_is_found_by_heartbeat,
);

fn is_method(method: &'static str) -> impl FnMut(&Message) -> bool {
    move |m| jsonrpc::method(m).as_deref() == Some(method)
}

fn id(m: &Message) -> u64 {
    jsonrpc::id(m).expect("a JSON-RPC request")
}

async fn the_mock_server_scripts_a_subscribe_a_cut_the_resubscribe_and_a_request<R: Runtime>() {
    let server = MockServer::start();
    let (client, mut events) = builder::<R>(&server.url()).connect().await.expect("connected");
    server.expect_connection_async(WAIT).await;
    client.subscribe(&["trades.BTC"]).await.expect("subscribed");
    let subscribe = server.expect_sent_async(WAIT, is_method("public/subscribe")).await;
    assert_eq!(jsonrpc::params(&subscribe).as_deref(), Some(r#"{"channels":["trades.BTC"]}"#));
    server.send_text(&jsonrpc::result(id(&subscribe), r#"["trades.BTC"]"#));
    until(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await;

    server.cut();
    let second = server.expect_connection_async(WAIT).await;
    assert_eq!((second.index, second.path.as_str()), (1, "/"));
    let subscribe = server.expect_sent_async(WAIT, is_method("public/subscribe")).await;
    assert_eq!(jsonrpc::params(&subscribe).as_deref(), Some(r#"{"channels":["trades.BTC"]}"#));
    server.send_text(&jsonrpc::result(id(&subscribe), r#"["trades.BTC"]"#));
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
    assert!(seen.iter().any(|e| matches!(e, SessionEvent::Disconnected { reason } if reason.is_error())), "{seen:?}");
    assert!(seen.iter().any(|e| matches!(e, SessionEvent::Connected { .. })), "{seen:?}");

    // The script answers a request while the client waits for it.
    let script = async {
        let request = server.expect_sent_async(WAIT, is_method("public/get_time")).await;
        server.send_text(&jsonrpc::result(id(&request), "1700000000000"));
        id(&request)
    };
    let (response, asked) = join(client.request("public/get_time", None, None), script).await;
    let response = response.expect("answered");
    assert_eq!((response.id, response.is_error), (asked, false));
    assert_eq!(response.message, Message::Text(jsonrpc::result(asked, "1700000000000").into()));
    assert_eq!(server.connections(), 2);

    client.close(CloseCode::Normal, "done").await.expect("closed");
    assert!(matches!(
        server.expect_disconnect_async(WAIT).await,
        wslink_adapter::testkit::Ended::Closed(Some((CloseCode::Normal, _)))
    ));
}

async fn the_mock_server_answers_by_itself_and_a_black_hole_is_found_by_heartbeat<R: Runtime>() {
    let server = MockServer::start();
    // Every request is answered from the server's thread, auth included.
    server.respond_with(|m| Some(Message::Text(jsonrpc::result(jsonrpc::id(m)?, r#"{"access_token":"t"}"#).into())));
    let (client, mut events) = builder::<R>(&server.url())
        .authenticator(JsonRpcAuth::new("public/auth", |_| "{}".to_owned()))
        .ping(Some(PingConfig::new(ms(300), ms(200))))
        .connect()
        .await
        .expect("connected after auth");
    server.expect_connection_async(WAIT).await;
    server.expect_sent_async(WAIT, is_method("public/auth")).await;

    server.blackhole();
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Disconnected { .. })).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Disconnected { reason: DisconnectReason::HeartbeatTimeout }));
    server.expect_connection_async(WAIT).await;
    server.expect_sent_async(WAIT, is_method("public/auth")).await;
    until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    let health = client.heartbeat_health().await.expect("health");
    assert_eq!(health.total_failures, 1);
    client.close(CloseCode::Normal, "").await.expect("closed");
}
