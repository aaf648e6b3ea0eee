//! Every duration a user can set through the adapters' builder, per call and
//! in hooks, at `Duration::MAX` ("no timeout") and `Duration::ZERO`, on both
//! runtimes: each is refused when the client is built, naming the field, or
//! the client works (connects, answers a request, closes with `Closed`).
//! Before, `MAX` panicked on the caller's thread or killed the driver task.

use std::time::Duration;

use wslink_adapter::{Builder, Error, RequestError, Runtime};
use wslink_core::{
    presets, BackoffConfig, CloseCode, CloseReason, ConfigError, DisconnectReason, PingConfig, RateLimit, SessionEvent,
    SessionState,
};
use wslink_tests::peers::ExchangeServer;
use wslink_tests::scenario::{builder, run, until};
use wslink_tests::scenarios;

scenarios!(every_setting_at_max_and_zero_is_refused_by_name_or_works, per_call_and_hook_durations_at_max_and_zero);

const MAX: Duration = Duration::MAX;
const ZERO: Duration = Duration::ZERO;

type Setting<R> = Box<dyn Fn(Builder<R>) -> Builder<R>>;

/// Each setting at one value, and the field named when it is refused.
fn settings<R: Runtime>(d: Duration) -> Vec<(&'static str, Option<&'static str>, Setting<R>)> {
    let zero = d.is_zero();
    let when_zero = |field| zero.then_some(field);
    vec![
        (
            "connect_timeout",
            when_zero("connect_timeout"),
            Box::new(move |b: Builder<R>| b.config(move |c| c.connect_timeout = d)),
        ),
        (
            "auth_timeout",
            when_zero("auth_timeout"),
            Box::new(move |b: Builder<R>| {
                b.authenticator(presets::JsonRpcAuth::new("public/auth", |_| "{}".to_owned()))
                    .config(move |c| c.auth_timeout = d)
            }),
        ),
        (
            "request_timeout",
            when_zero("request_timeout"),
            Box::new(move |b: Builder<R>| b.config(move |c| c.request_timeout = d)),
        ),
        (
            "handshake_timeout",
            when_zero("handshake_timeout"),
            Box::new(move |b: Builder<R>| b.config(move |c| c.connection.handshake_timeout = Some(d))),
        ),
        (
            "close_timeout",
            when_zero("close_timeout"),
            Box::new(move |b: Builder<R>| b.config(move |c| c.connection.close_timeout = d)),
        ),
        ("idle_timeout", when_zero("idle_timeout"), Box::new(move |b: Builder<R>| b.idle_timeout(d))),
        (
            "ping.interval",
            when_zero("ping.interval"),
            Box::new(move |b: Builder<R>| b.ping(Some(PingConfig::new(d, Duration::from_secs(1))))),
        ),
        (
            "ping.timeout",
            Some("ping.timeout"),
            Box::new(move |b: Builder<R>| {
                // Never shorter than the interval at MAX, never positive at ZERO: refused either way.
                b.ping(Some(PingConfig::new(Duration::from_secs(5), d)))
            }),
        ),
        (
            "app_heartbeat",
            when_zero("app_heartbeat.interval"),
            Box::new(move |b: Builder<R>| b.app_heartbeat(presets::JsonOpHeartbeat, d, Duration::from_secs(1))),
        ),
        (
            "rate_limit.interval",
            when_zero("rate_limit.interval"),
            Box::new(move |b: Builder<R>| b.rate_limit(RateLimit::new(100, 1, d), None)),
        ),
        (
            "backoff.max",
            when_zero("backoff.max"),
            Box::new(move |b: Builder<R>| {
                b.backoff(BackoffConfig::default().initial(Duration::from_millis(50)).max(d))
            }),
        ),
        (
            "backoff.initial",
            when_zero("backoff.initial"),
            Box::new(move |b: Builder<R>| b.backoff(BackoffConfig::default().initial(d).max(d))),
        ),
        (
            "backoff.reset_after",
            None,
            Box::new(move |b: Builder<R>| b.backoff(BackoffConfig::default().reset_after(d))),
        ),
        ("late_response_window", None, Box::new(move |b: Builder<R>| b.config(move |c| c.late_response_window = d))),
    ]
}

/// The client works: connects, gets a request answered, schedules a
/// reconnect when the server drops it (so every backoff setting is used),
/// and closes with `Closed { Requested }`.
async fn works<R: Runtime>(b: Builder<R>, server: &ExchangeServer, name: &str) {
    let (client, mut events) = b.connect().await.unwrap_or_else(|e| panic!("{name}: {e}"));
    let response = client.request("public/get_time", None, None).await;
    assert!(response.is_ok(), "{name}: {response:?}");
    server.drop_all();
    until(&mut events, |e| matches!(e, SessionEvent::Reconnecting { .. })).await;
    client.close(CloseCode::Normal, "").await.unwrap_or_else(|e| panic!("{name}: {e}"));
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Closed { reason: CloseReason::Requested }), "{name}");
}

async fn every_setting_at_max_and_zero_is_refused_by_name_or_works<R: Runtime>() {
    let server = ExchangeServer::start(true).await;
    let url = format!("ws://{}/", server.addr);
    for d in [MAX, ZERO] {
        for (name, refused, set) in settings::<R>(d) {
            let b = set(builder::<R>(&url));
            match (refused, b.connect().await) {
                (Some(field), Err(Error::Config(ConfigError::InvalidValue { field: named, .. }))) => {
                    assert_eq!(named, field, "{name} at {d:?}")
                }
                (Some(field), other) => panic!("{name} at {d:?}: expected {field} refused, got {:?}", other.err()),
                (None, Err(e)) => panic!("{name} at {d:?}: {e}"),
                (None, Ok((client, _events))) => {
                    // `connect` consumed the builder: check it works from a fresh one.
                    client.close(CloseCode::Normal, "").await.expect("closed");
                    works::<R>(set(builder::<R>(&url)), &server, &format!("{name} at {d:?}")).await;
                }
            }
        }
    }
}

async fn per_call_and_hook_durations_at_max_and_zero<R: Runtime>() {
    let server = ExchangeServer::start(false).await; // requests are never answered
    let url = format!("ws://{}/", server.addr);
    let (client, _events) = builder::<R>(&url).connect().await.expect("connected");
    assert_eq!(
        client.request("private/buy", None, Some(ZERO)).await,
        Err(RequestError::Timeout),
        "a zero timeout ends at once, as a timeout"
    );
    let never = {
        let client = client.clone();
        tokio::spawn(async move { client.request("private/buy", None, Some(MAX)).await })
    };
    // The request that would never time out ends when the session closes.
    until_pending(&client).await;
    client.close(CloseCode::Normal, "").await.expect("closed");
    assert_eq!(never.await.expect("task"), Err(RequestError::SessionClosed));

    // A retry function that says "not before the end of time": the client waits in backoff.

    let (client, mut events) = builder::<R>(&url).retry(|_| Some(MAX)).connect().await.expect("connected");
    server.drop_all();
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Reconnecting { .. })).await;
    assert!(seen.contains(&SessionEvent::Reconnecting { attempt: 1, delay: MAX }), "{seen:?}");
    assert!(seen.iter().any(|e| matches!(e, SessionEvent::Disconnected { reason: DisconnectReason::Closed(_) })));
    assert_eq!(client.state(), SessionState::Backoff);
    client.reconnect().await.expect("the user can still reconnect");
    until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    client.close(CloseCode::Normal, "").await.expect("closed");

    let (client, mut events) = builder::<R>(&url).retry(|_| Some(ZERO)).connect().await.expect("connected");
    // The first connection is on the stream: the next `Connected` is the reconnect's.
    until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    server.drop_all();
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    assert!(seen.contains(&SessionEvent::Reconnecting { attempt: 1, delay: ZERO }), "{seen:?}");
    client.close(CloseCode::Normal, "").await.expect("closed");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Closed { reason: CloseReason::Requested }));
}

/// Waits (bounded) until the client has a request pending.
async fn until_pending(client: &wslink_adapter::Client) {
    for _ in 0..500 {
        if client.metrics().await.expect("metrics").session.pending_requests > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the request never became pending");
}
