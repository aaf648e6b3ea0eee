//! What long-running feed and RPC users need, against a JSON-RPC exchange on
//! Python's `websockets` (`peers/exchange_server.py`), on both runtimes:
//! requests matched by the caller's own ids (numbers and strings), tokens
//! that expire and are refreshed on the open link, numbered feeds whose gaps
//! are reported and acted on (also across a reconnect), and subscriptions
//! the server itself restores.

use std::time::Duration;

use serde_json::Value;
use wslink_adapter::{Client, ClientError, Events, RequestError, Runtime};
use wslink_core::hooks::SessionError;
use wslink_core::presets::JsonRpcAuth;
use wslink_core::{
    CommandError, DisconnectReason, GapAction, Message, RequestId, SequenceRule, SessionEvent, SubscribeOptions,
};
use wslink_tests::python::PythonExchange;
use wslink_tests::scenario::{builder, run, until};
use wslink_tests::scenarios;

scenarios!(
    caller_ids_are_matched_as_numbers_and_strings,
    expiring_tokens_are_refreshed_on_the_open_link,
    a_refused_refresh_reconnects_and_authenticates_afresh,
    feed_gaps_are_reported_and_resubscribed_also_across_a_reconnect,
    a_resuming_server_keeps_subscriptions_the_client_does_not_restore,
);

fn json(message: &Message) -> Value {
    serde_json::from_str(message.as_text().expect("a text message")).expect("JSON")
}

/// Asks the exchange to do something (publish, skip, drop) and waits for its answer.
async fn ask(client: &Client, method: &str, params: &str) {
    let response = client.request(method, Some(params), None).await.expect("the exchange answered");
    assert!(!response.is_error, "{method}: {:?}", response.message);
}

async fn caller_ids_are_matched_as_numbers_and_strings<R: Runtime>() {
    let exchange = PythonExchange::start(&[]);
    let (client, _events) = builder::<R>(&format!("ws://{}/", exchange.addr)).connect().await.expect("connected");

    let text = client.request_with_id("order-7f3a", "echo", Some(r#"{"n":1}"#), None).await.expect("answered");
    assert_eq!(json(&text.message)["id"], "order-7f3a");
    assert_eq!(json(&text.message)["result"]["n"], 1);
    let number = client.request_with_id(424_242u64, "echo", Some(r#"{"n":2}"#), None).await.expect("answered");
    assert_eq!(json(&number.message)["id"], 424_242);

    let whole = r#"{"jsonrpc":"2.0","id":"whole-1","method":"echo","params":{"n":3}}"#;
    let response = client.request_message(whole, None).await.expect("answered");
    assert_eq!(json(&response.message)["result"]["n"], 3);
    match client.request_message(r#"{"jsonrpc":"2.0","method":"echo"}"#, None).await {
        Err(RequestError::Rejected(e)) => assert!(e.to_string().contains("no id"), "{e}"),
        other => panic!("a request without an id: {other:?}"),
    }

    // An id still pending is refused; once answered, it is free again.
    let slow = {
        let client = client.clone();
        tokio::spawn(async move { client.request_with_id("slow", "sleep", Some(r#"{"ms":400}"#), None).await })
    };
    // Commands are carried out in order: once a snapshot shows it pending, it is.
    for _ in 0..200 {
        if client.metrics().await.expect("metrics").session.pending_requests == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    match client.request_with_id("slow", "echo", None, None).await {
        Err(RequestError::Rejected(ClientError::Command(CommandError::DuplicateRequestId(id)))) => {
            assert_eq!(id, RequestId::from("slow"));
        }
        other => panic!("a second request with a pending id: {other:?}"),
    }
    let first = slow.await.expect("joined").expect("the slow request was answered");
    assert_eq!(json(&first.message)["result"]["ms"], 400);
    client.request_with_id("slow", "echo", None, None).await.expect("free again");
}

/// An authenticator for the exchange: `secret` is "good" or not.
fn auth(secret: &'static str) -> JsonRpcAuth {
    JsonRpcAuth::new("public/auth", move |_| format!(r#"{{"secret":"{secret}"}}"#))
        .expires_in_at("/result/expires_in")
        .refresh_margin(Duration::from_millis(1500))
}

async fn whoami(client: &Client) -> Value {
    let response = client.request("private/whoami", None, None).await.expect("answered");
    assert!(!response.is_error, "the token is valid: {:?}", response.message);
    json(&response.message)["result"].clone()
}

async fn expiring_tokens_are_refreshed_on_the_open_link<R: Runtime>() {
    // Tokens last 3 s; the client refreshes 1.5 s before.
    let exchange = PythonExchange::start(&["--token-lifetime", "3"]);
    let url = format!("ws://{}/", exchange.addr);
    let (client, mut events) = builder::<R>(&url).authenticator(auth("good")).connect().await.expect("connected");
    let first = whoami(&client).await;
    assert_eq!(first["auths"], 1);
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Reauthenticated { .. })).await;
    assert!(
        matches!(seen.last(), Some(SessionEvent::Reauthenticated { refresh_in: Some(d) }) if *d == Duration::from_millis(1500))
    );
    let refreshed = whoami(&client).await;
    assert_eq!(refreshed["auths"], 2, "authenticated twice on one connection");
    assert_eq!(refreshed["connection"], first["connection"], "the link stayed up");
    assert_ne!(refreshed["token"], first["token"]);
    // Past the first token's lifetime: only the refreshed one is valid.
    let second = until(&mut events, |e| matches!(e, SessionEvent::Reauthenticated { .. })).await;
    assert!(second.iter().all(|e| !matches!(e, SessionEvent::Disconnected { .. })), "{second:?}");
    assert_eq!(whoami(&client).await["auths"], 3);
}

async fn a_refused_refresh_reconnects_and_authenticates_afresh<R: Runtime>() {
    let exchange = PythonExchange::start(&["--token-lifetime", "2", "--refuse-refresh"]);
    let url = format!("ws://{}/", exchange.addr);
    let (client, mut events) = builder::<R>(&url).authenticator(auth("good")).connect().await.expect("connected");
    let first = whoami(&client).await;
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Error(_))).await;
    let rejected = |e: &SessionEvent| matches!(e, SessionEvent::Error(SessionError::AuthRejected(r)) if r.contains("refresh_refused"));
    assert!(seen.last().is_some_and(rejected), "{seen:?}");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    assert!(
        seen.iter().any(|e| matches!(e, SessionEvent::Disconnected { reason: DisconnectReason::Error(_) })),
        "the default policy reconnects: {seen:?}"
    );
    let after = whoami(&client).await;
    assert_ne!(after["connection"], first["connection"]);
    assert_eq!(after["auths"], 1, "the new link authenticated with start");
}

/// Deribit-style notifications numbered per channel at `/params/data/seq`.
fn numbered(on_gap: GapAction) -> SubscribeOptions {
    let rule = SequenceRule::json(Some("/params/channel"), None, "/params/data/seq");
    SubscribeOptions::new().sequence(rule).on_gap(on_gap)
}

/// What the feed showed until `last` arrived: numbers, gaps, resets, subscriptions.
async fn feed_until(events: &mut Events, last: u64) -> Vec<String> {
    let shown = |e: &SessionEvent| match e {
        SessionEvent::Message(m) => json(m)["params"]["data"]["seq"].as_u64().map(|n| n.to_string()),
        SessionEvent::SequenceGap { expected, got, .. } => Some(format!("gap {expected}..{got}")),
        SessionEvent::SequenceReset { last, got, .. } => Some(format!("reset {last}->{got}")),
        SessionEvent::Subscribed { .. } => Some("subscribed".into()),
        SessionEvent::Connected { .. } => Some("connected".into()),
        _ => None,
    };
    let is_last = |e: &SessionEvent| matches!(e, SessionEvent::Message(m) if json(m)["params"]["data"]["seq"] == last);
    until(events, is_last).await.iter().filter_map(shown).collect()
}

async fn feed_gaps_are_reported_and_resubscribed_also_across_a_reconnect<R: Runtime>() {
    let exchange = PythonExchange::start(&[]);
    let (client, mut events) = builder::<R>(&format!("ws://{}/", exchange.addr)).connect().await.expect("connected");
    client.subscribe_with(&["book"], numbered(GapAction::Resubscribe)).await.expect("subscribed");
    until(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
    ask(&client, "test/publish", r#"{"channel":"book","count":3}"#).await;
    ask(&client, "test/skip", r#"{"channel":"book","by":2}"#).await;
    ask(&client, "test/publish", r#"{"channel":"book","count":1}"#).await;
    assert_eq!(feed_until(&mut events, 6).await, ["1", "2", "3", "gap 4..6", "6"]);
    // The resubscribe is confirmed; numbering starts afresh after it.
    until(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
    ask(&client, "test/rewind", r#"{"channel":"book","to":100}"#).await;
    ask(&client, "test/publish", r#"{"channel":"book","count":2}"#).await;
    assert_eq!(feed_until(&mut events, 101).await, ["100", "101"], "no gap after the resubscribe");

    // Across a reconnect: the numbers skipped after it (102, 103) are a gap
    // against the last seen before it (101).
    client.request("test/drop", None, Some(Duration::from_millis(300))).await.expect_err("the link was cut");
    until(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
    ask(&client, "test/skip", r#"{"channel":"book","by":2}"#).await;
    ask(&client, "test/publish", r#"{"channel":"book","count":1}"#).await;
    assert_eq!(feed_until(&mut events, 104).await, ["gap 102..104", "104"]);
    let metrics = client.metrics().await.expect("metrics");
    assert_eq!(metrics.session.sequence_gaps, 2);
}

async fn a_resuming_server_keeps_subscriptions_the_client_does_not_restore<R: Runtime>() {
    let exchange = PythonExchange::start(&["--resume"]);
    let url = format!("ws://{}/?client=desk-1", exchange.addr);
    // Restoring: the second subscribe is refused by a server that resumed.
    let (restoring, mut restoring_events) = builder::<R>(&url).connect().await.expect("connected");
    restoring.subscribe(&["trades"]).await.expect("subscribed");
    until(&mut restoring_events, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
    restoring.request("test/drop", None, Some(Duration::from_millis(300))).await.expect_err("cut");
    let seen = until(&mut restoring_events, |e| matches!(e, SessionEvent::SubscriptionFailed { .. })).await;
    assert!(
        matches!(seen.last(), Some(SessionEvent::SubscriptionFailed { reason, .. }) if reason.contains("already_subscribed"))
    );
    drop(restoring);

    // Not restoring: the feed goes on through the server's own restore.
    let url = format!("ws://{}/?client=desk-2", exchange.addr);
    let (client, mut events) = builder::<R>(&url).restore_subscriptions(false).connect().await.expect("connected");
    client.subscribe(&["ticks"]).await.expect("subscribed");
    until(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
    client.request("test/drop", None, Some(Duration::from_millis(300))).await.expect_err("cut");
    until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    ask(&client, "test/publish", r#"{"channel":"ticks","count":1}"#).await;
    let seen = feed_until(&mut events, 1).await;
    assert_eq!(seen, ["1"], "no subscribe was sent again, and the message came");
}
