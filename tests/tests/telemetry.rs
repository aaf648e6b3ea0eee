//! Telemetry that pushes, on both runtimes against real peers: the metrics of
//! `wslink_adapter::telemetry`'s table, caught by a recorder installed for
//! this test binary, and the `wslink.connect` span of every attempt, caught
//! by a tracing subscriber of the same kind.
//!
//! Both are process-wide and the scenarios run in parallel: each client gets
//! a label of its own (`metrics_label`), and each span test its own port, and
//! every assertion looks only at its own series.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use wslink_adapter::telemetry::DISCONNECT_REASONS;
use wslink_adapter::{RequestError, Runtime};
use wslink_core::{
    CloseCode, ConnectionError, DisconnectReason, Message, PingConfig, SequenceRule, SessionEvent, SubscribeOptions,
};
use wslink_tests::peers::{echo_server, flood_server, refusing_server, silent_server, ExchangeServer};
use wslink_tests::python::PythonExchange;
use wslink_tests::scenario::{builder, run, until, WAIT};
use wslink_tests::scenarios;

scenarios!(
    connects_and_disconnects_are_counted_by_reason,
    messages_and_bytes_in_and_out_are_what_went_over_the_wire,
    each_answered_request_is_one_rtt_sample_and_failures_are_counted_by_reason,
    the_outbound_queue_depth_follows_the_queue,
    heartbeat_round_trips_are_sampled,
    read_paused_time_grows_while_the_consumer_stalls,
    each_attempt_runs_in_a_span_with_the_url_redacted_and_its_number,
    breaks_in_a_numbered_feed_are_counted_by_kind,
);

// ----- a recorder for this binary -----

/// Every series registered, by name and labels, and every description.
#[derive(Default)]
struct Captured {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    /// `f64` bits, as the facade's own `AtomicU64` gauge keeps them.
    gauges: Mutex<HashMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<String, Arc<Samples>>>,
    descriptions: Mutex<HashMap<String, String>>,
}

/// A histogram that keeps every sample (the tests compare them one by one).
#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl metrics::HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().expect("samples").push(value);
    }
}

/// `name{label=value,…}`, labels sorted: how the tests name a series.
fn series(key: &Key) -> String {
    let mut labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Captured {
    fn describe_counter(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.descriptions.lock().expect("descriptions").insert(key.as_str().to_owned(), description.to_string());
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe_counter(key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe_counter(key, unit, description);
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut all = self.counters.lock().expect("counters");
        Counter::from_arc(all.entry(series(key)).or_default().clone())
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut all = self.gauges.lock().expect("gauges");
        Gauge::from_arc(all.entry(series(key)).or_default().clone())
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut all = self.histograms.lock().expect("histograms");
        Histogram::from_arc(all.entry(series(key)).or_default().clone())
    }
}

static RECORDER: LazyLock<Captured> = LazyLock::new(Captured::default);

/// Installs the recorder and the span catcher once for this binary; every
/// scenario calls it before it starts a client.
fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        metrics::set_global_recorder(&*RECORDER).expect("the only recorder of this binary");
        tracing::subscriber::set_global_default(Spans).expect("the only subscriber of this binary");
    });
}

/// A label of this scenario's own on this runtime.
fn label<R: Runtime>(scenario: &str) -> String {
    format!("{scenario}@{}", std::any::type_name::<R>())
}

fn counter(name: &str, client: &str) -> u64 {
    counter_by(name, client, None)
}

/// A counter's value (0 if it was never registered).
fn counter_by(name: &str, client: &str, reason: Option<&str>) -> u64 {
    let key = match reason {
        Some(reason) => format!("{name}{{client={client},reason={reason}}}"),
        None => format!("{name}{{client={client}}}"),
    };
    RECORDER.counters.lock().expect("counters").get(&key).map_or(0, |c| c.load(Ordering::SeqCst))
}

fn gauge(name: &str, client: &str) -> f64 {
    let key = format!("{name}{{client={client}}}");
    let gauges = RECORDER.gauges.lock().expect("gauges");
    gauges.get(&key).map_or(0.0, |g| f64::from_bits(g.load(Ordering::SeqCst)))
}

fn samples(name: &str, client: &str) -> Vec<f64> {
    let key = format!("{name}{{client={client}}}");
    let histograms = RECORDER.histograms.lock().expect("histograms");
    histograms.get(&key).map(|h| h.0.lock().expect("samples").clone()).unwrap_or_default()
}

/// Waits until `check` holds, looking every few milliseconds; fails after `WAIT`.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < give_up, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every metric of the table, as the telemetry module documents it.
const TABLE: [&str; 19] = [
    "wslink_connect_attempts_total",
    "wslink_connects_total",
    "wslink_disconnects_total",
    "wslink_connected",
    "wslink_reconnect_delay_seconds",
    "wslink_messages_received_total",
    "wslink_bytes_received_total",
    "wslink_messages_sent_total",
    "wslink_bytes_sent_total",
    "wslink_outbound_queue_depth",
    "wslink_write_buffered_bytes",
    "wslink_pending_requests",
    "wslink_request_rtt_seconds",
    "wslink_request_failures_total",
    "wslink_heartbeat_rtt_seconds",
    "wslink_heartbeat_failures_total",
    "wslink_read_pause_seconds",
    "wslink_reading_paused",
    "wslink_sequence_breaks_total",
];

// ----- metrics -----

async fn connects_and_disconnects_are_counted_by_reason<R: Runtime>() {
    install();
    let me = label::<R>("connects");
    let server = ExchangeServer::start(true).await;
    let (client, mut events) =
        builder::<R>(&format!("ws://{}/", server.addr)).metrics_label(&me).connect().await.expect("connected");
    assert_eq!((counter("wslink_connects_total", &me), gauge("wslink_connected", &me)), (1, 1.0));
    // The first connection is on the stream too.
    until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    for name in TABLE {
        let described = RECORDER.descriptions.lock().expect("descriptions").get(name).cloned();
        assert!(described.is_some_and(|d| !d.is_empty()), "{name} has help text for exporters");
    }

    // A clean close by the server, a dropped link, the user's reconnect: three ends, three reconnects.
    let connected = |e: &SessionEvent| matches!(e, SessionEvent::Connected { .. });
    server.close_all(1000);
    let mut seen = until(&mut events, connected).await;
    server.drop_all();
    seen.extend(until(&mut events, connected).await);
    client.reconnect().await.expect("reconnect");
    seen.extend(until(&mut events, connected).await);
    let reasons: Vec<&DisconnectReason> = seen
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Disconnected { reason } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(
        matches!(reasons.as_slice(), [DisconnectReason::Closed(clean), DisconnectReason::Closed(dropped), DisconnectReason::UserReconnect]
            if clean.is_clean() && matches!(dropped.error, Some(ConnectionError::UnexpectedEof { .. }))),
        "{reasons:?}"
    );
    assert_eq!(counter("wslink_connects_total", &me), 4);
    assert_eq!(counter("wslink_connect_attempts_total", &me), 4);
    for reason in DISCONNECT_REASONS {
        let want = u64::from(matches!(reason, "closed_clean" | "eof" | "user_reconnect"));
        assert_eq!(counter_by("wslink_disconnects_total", &me, Some(reason)), want, "{reason}");
    }
    // The two scheduled by backoff (a user's reconnect is at once), with their delays.
    let delays: Vec<f64> = seen
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Reconnecting { delay, .. } => Some(delay.as_secs_f64()),
            _ => None,
        })
        .collect();
    assert_eq!(delays.len(), 2, "{seen:?}");
    assert_eq!(samples("wslink_reconnect_delay_seconds", &me), delays);
    assert_eq!(gauge("wslink_connected", &me), 1.0);

    client.close(CloseCode::Normal, "").await.expect("closed");
    until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert_eq!(gauge("wslink_connected", &me), 0.0, "a closed client is not connected");
}

async fn messages_and_bytes_in_and_out_are_what_went_over_the_wire<R: Runtime>() {
    install();
    let me = label::<R>("bytes");
    let addr = echo_server(None).await;
    let (client, mut events) =
        builder::<R>(&format!("ws://{addr}/")).metrics_label(&me).connect().await.expect("connected");
    // The upgrade's bytes are in already; from here on only the messages go.
    let (out_before, in_before) =
        (counter("wslink_bytes_sent_total", &me), counter("wslink_bytes_received_total", &me));
    assert!(out_before > 0 && in_before > 0, "the upgrade request and response were counted");
    assert_eq!(client.metrics().await.expect("metrics").session.last_message_at, None, "no message yet");
    let before = Instant::now();
    let texts: Vec<String> = (0..20).map(|i| "x".repeat(10 + i)).collect();
    for text in &texts {
        client.send_text(text.clone()).await.expect("sent");
    }
    let mut echoed = 0;
    until(&mut events, |e| {
        echoed += usize::from(matches!(e, SessionEvent::Message(_)));
        echoed == texts.len()
    })
    .await;
    let payload: u64 = texts.iter().map(|t| t.len() as u64).sum();
    let n = texts.len() as u64;
    assert_eq!(counter("wslink_messages_sent_total", &me), n);
    assert_eq!(counter("wslink_messages_received_total", &me), n);
    // Client frames: 2 header bytes and a 4-byte mask each; the server's: 2 header bytes.
    assert_eq!(counter("wslink_bytes_sent_total", &me) - out_before, payload + 6 * n);
    assert_eq!(counter("wslink_bytes_received_total", &me) - in_before, payload + 2 * n);
    let after = Instant::now();
    let polled = client.metrics().await.expect("metrics").session;
    assert_eq!(polled.messages_in, n, "the pushed figures are the polled ones");
    // The clock of both runtimes is the std one (tokio's, unpaused, converts to it).
    let last = polled.last_message_at.expect("the time of the last message read");
    assert!(before <= last && last <= after, "{before:?} <= {last:?} <= {after:?}");
    client.close(CloseCode::Normal, "").await.expect("closed");
}

async fn breaks_in_a_numbered_feed_are_counted_by_kind<R: Runtime>() {
    install();
    let me = label::<R>("sequence");
    let exchange = PythonExchange::start(&[]);
    let (client, mut events) =
        builder::<R>(&format!("ws://{}/", exchange.addr)).metrics_label(&me).connect().await.expect("connected");
    let rule = SequenceRule::json(Some("/params/channel"), None, "/params/data/seq");
    client.subscribe_with(&["book"], SubscribeOptions::new().sequence(rule)).await.expect("subscribed");
    until(&mut events, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
    for (method, params) in [
        ("test/publish", r#"{"channel":"book","count":2}"#),
        ("test/skip", r#"{"channel":"book","by":3}"#),
        ("test/publish", r#"{"channel":"book","count":1}"#),
        ("test/rewind", r#"{"channel":"book","to":1}"#),
        ("test/publish", r#"{"channel":"book","count":1}"#),
    ] {
        client.request(method, Some(params), None).await.expect("the exchange answered");
    }
    until(&mut events, |e| matches!(e, SessionEvent::SequenceReset { .. })).await;
    let breaks = |kind: &str| {
        let key = format!("wslink_sequence_breaks_total{{client={me},kind={kind}}}");
        RECORDER.counters.lock().expect("counters").get(&key).map_or(0, |c| c.load(Ordering::SeqCst))
    };
    assert_eq!((breaks("gap"), breaks("reset")), (1, 1));
}

async fn each_answered_request_is_one_rtt_sample_and_failures_are_counted_by_reason<R: Runtime>() {
    install();
    let me = label::<R>("requests");
    // This server answers `public/auth`, and no method it does not know.
    let server = ExchangeServer::start(false).await;
    let (client, _events) =
        builder::<R>(&format!("ws://{}/", server.addr)).metrics_label(&me).connect().await.expect("connected");
    let mut rtts = Vec::new();
    for _ in 0..5 {
        let response = client.request("public/auth", None, None).await.expect("answered");
        rtts.push(response.rtt.as_secs_f64());
    }
    assert_eq!(samples("wslink_request_rtt_seconds", &me), rtts, "one sample per response, its own rtt");

    eventually("nothing pending once answered", || gauge("wslink_pending_requests", &me) == 0.0).await;
    let waiting = client.clone();
    let unanswered = tokio::spawn(async move { waiting.request("private/never", None, Some(WAIT * 2)).await });
    eventually("the pending request shows", || gauge("wslink_pending_requests", &me) == 1.0).await;
    client.reconnect().await.expect("reconnect");
    assert_eq!(unanswered.await.expect("joined"), Err(RequestError::ConnectionLost));
    let timed_out = client.request("private/never", None, Some(Duration::from_millis(50))).await;
    assert_eq!(timed_out, Err(RequestError::Timeout));
    for (reason, want) in [("connection_lost", 1), ("timeout", 1), ("dropped", 0), ("session_closed", 0)] {
        assert_eq!(counter_by("wslink_request_failures_total", &me, Some(reason)), want, "{reason}");
    }
    assert_eq!(samples("wslink_request_rtt_seconds", &me).len(), 5, "failures are no samples");
    eventually("nothing pending", || gauge("wslink_pending_requests", &me) == 0.0).await;
    client.close(CloseCode::Normal, "").await.expect("closed");
}

async fn the_outbound_queue_depth_follows_the_queue<R: Runtime>() {
    install();
    let me = label::<R>("queue");
    // The server never answers the upgrade: messages wait in the queue.
    let addr = silent_server().await;
    let (client, mut events) = builder::<R>(&format!("ws://{addr}/")).metrics_label(&me).start().expect("started");
    for i in 0..3 {
        client.send_text(format!("queued {i}")).await.expect("queued");
    }
    eventually("three queued", || gauge("wslink_outbound_queue_depth", &me) == 3.0).await;
    client.close(CloseCode::Normal, "").await.expect("closed");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert_eq!(seen.iter().filter(|e| matches!(e, SessionEvent::Dropped(_))).count(), 3, "{seen:?}");
    assert_eq!(gauge("wslink_outbound_queue_depth", &me), 0.0, "dropped at close");
    assert_eq!(counter("wslink_messages_sent_total", &me), 0, "none was sent");
}

async fn heartbeat_round_trips_are_sampled<R: Runtime>() {
    install();
    let me = label::<R>("heartbeat");
    let addr = echo_server(None).await;
    let ping = PingConfig::new(Duration::from_millis(100), Duration::from_millis(90));
    let (client, _events) =
        builder::<R>(&format!("ws://{addr}/")).ping(Some(ping)).metrics_label(&me).connect().await.expect("connected");
    let mut health = client.heartbeat_health().await.expect("health");
    let give_up = tokio::time::Instant::now() + WAIT;
    while health.rtt_samples < 2 {
        assert!(tokio::time::Instant::now() < give_up, "two pongs within {WAIT:?}: {health:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        health = client.heartbeat_health().await.expect("health");
    }
    // Each pong read before the health was taken was pushed before it (more may have come since).
    let pushed = samples("wslink_heartbeat_rtt_seconds", &me);
    let last = health.last_rtt.expect("a measured rtt").as_secs_f64();
    assert!(pushed.len() as u64 >= health.rtt_samples, "{pushed:?} for {health:?}");
    assert!(pushed.contains(&last), "the last rtt {last} is among {pushed:?}");
    client.close(CloseCode::Normal, "").await.expect("closed");
}

async fn read_paused_time_grows_while_the_consumer_stalls<R: Runtime>() {
    install();
    let me = label::<R>("paused");
    let total = 2000;
    let (addr, _sent) = flood_server(total).await;
    let (client, mut events) =
        builder::<R>(&format!("ws://{addr}/")).event_capacity(4).metrics_label(&me).connect().await.expect("connected");
    // The consumer stalls: the client stops reading and says so.
    eventually("reading paused", || gauge("wslink_reading_paused", &me) == 1.0).await;
    let mut received = 0;
    until(&mut events, |e| {
        received += u64::from(matches!(e, SessionEvent::Message(Message::Binary(_))));
        received == total
    })
    .await;
    let paused = client.metrics().await.expect("metrics");
    assert_eq!(gauge("wslink_reading_paused", &me), 0.0, "caught up");
    let pauses = samples("wslink_read_pause_seconds", &me);
    let sum: f64 = pauses.iter().sum();
    assert!(!pauses.is_empty() && sum > 0.0, "{pauses:?}");
    // The histogram's sum is the time the client reports as paused.
    assert!((sum - paused.read_paused.as_secs_f64()).abs() < 1e-6, "{sum} vs {:?}", paused.read_paused);
    assert_eq!(counter("wslink_messages_received_total", &me), total, "a flood's messages, counted per read");
    assert!(paused.session.last_message_at.is_some(), "the time of the last message is polled too");
    client.close(CloseCode::Normal, "").await.expect("closed");
}

// ----- spans -----

/// What the span catcher saw of one span: its name and fields, values as `Debug` or `Display` gave them.
#[derive(Debug, Clone, Default)]
struct SpanSeen {
    name: &'static str,
    fields: BTreeMap<String, String>,
}

/// An event and the span it was emitted in.
#[derive(Debug, Clone)]
struct EventSeen {
    message: String,
    fields: BTreeMap<String, String>,
    span: Option<u64>,
}

static SPANS: Mutex<Vec<SpanSeen>> = Mutex::new(Vec::new());
static EVENTS: Mutex<Vec<EventSeen>> = Mutex::new(Vec::new());

thread_local! {
    /// The spans entered on this thread, innermost last.
    static ENTERED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A tracing subscriber that keeps every span of wslink's crates with its
/// fields, and every event with the span it was emitted in.
struct Spans;

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl tracing::Subscriber for Spans {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("wslink")
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut seen = SpanSeen { name: span.metadata().name(), ..SpanSeen::default() };
        span.record(&mut Fields(&mut seen.fields));
        let mut spans = SPANS.lock().expect("spans");
        spans.push(seen);
        tracing::span::Id::from_u64(spans.len() as u64)
    }
    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut spans = SPANS.lock().expect("spans");
        if let Some(seen) = spans.get_mut(span.into_u64() as usize - 1) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let span = match event.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if event.is_contextual() => ENTERED.with(|e| e.borrow().last().copied()),
            None => None,
        };
        let message = fields.remove("message").unwrap_or_default();
        EVENTS.lock().expect("events").push(EventSeen { message, fields, span });
    }
    fn enter(&self, span: &tracing::span::Id) {
        ENTERED.with(|e| e.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, _: &tracing::span::Id) {
        ENTERED.with(|e| e.borrow_mut().pop());
    }
}

/// The `wslink.connect` spans whose URL starts with `url`, with their ids, in order.
fn connect_spans(url: &str) -> Vec<(u64, SpanSeen)> {
    let spans = SPANS.lock().expect("spans");
    (1..)
        .zip(spans.iter().cloned())
        .filter(|(_, s)| s.name == "wslink.connect" && s.fields.get("url").is_some_and(|u| u.starts_with(url)))
        .collect()
}

/// The messages of the events emitted inside span `id`.
fn events_in(id: u64) -> Vec<String> {
    EVENTS.lock().expect("events").iter().filter(|e| e.span == Some(id)).map(|e| e.message.clone()).collect()
}

async fn each_attempt_runs_in_a_span_with_the_url_redacted_and_its_number<R: Runtime>() {
    install();
    // Credentials cannot get into a span: a URL with them is refused at once.
    let refused = wslink_adapter::Builder::<R>::new("ws://user:secret@127.0.0.1:1/").map(|_| ());
    assert!(matches!(refused, Err(wslink_adapter::Error::Url(wslink_core::UrlError::UserInfo))), "{refused:?}");

    let server = ExchangeServer::start(true).await;
    let (client, mut events) =
        builder::<R>(&format!("ws://{}/feed?token=secret", server.addr)).connect().await.expect("connected");
    let url = format!("ws://{}/feed", server.addr);
    // The first connection is on the stream too.
    until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    server.drop_all();
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    let Some(SessionEvent::Connected { attempt: again, .. }) = seen.last() else { unreachable!("until stops there") };
    client.close(CloseCode::Normal, "").await.expect("closed");
    let spans = connect_spans(&url);
    assert_eq!(spans.len(), 2, "one span per attempt: {spans:?}");
    // The attempt as `Connected` counts it: the first, then the one after the drop.
    let numbers = [1, *again];
    for (n, (id, span)) in spans.iter().enumerate() {
        assert_eq!(span.fields.get("url"), Some(&format!("{url}?<redacted>")), "{span:?}");
        assert_eq!(span.fields.get("attempt"), Some(&numbers[n].to_string()), "{span:?}");
        assert_eq!(span.fields.get("outcome").map(String::as_str), Some("connected"), "{span:?}");
        let inside = events_in(*id);
        assert_eq!(inside, ["opening transport", "connected"], "attempt {n}'s events carry its span");
    }
    let leaked = EVENTS.lock().expect("events").iter().any(|e| e.fields.values().any(|v| v.contains("secret")));
    assert!(!leaked, "the token in the query appears in no event");

    // Attempts that fail: numbered 1, 2, 3, each with the reason it ended.
    let addr = refusing_server().await;
    let (_client, mut events) = builder::<R>(&format!("ws://{addr}/")).max_attempts(Some(3)).start().expect("started");
    until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    let spans = connect_spans(&format!("ws://{addr}/"));
    let attempts: Vec<(&str, &str)> = spans
        .iter()
        .map(|(_, s)| (s.fields["attempt"].as_str(), s.fields.get("outcome").map_or("", String::as_str)))
        .collect();
    assert_eq!(attempts, [("1", "handshake"), ("2", "handshake"), ("3", "handshake")]);
    let inside = events_in(spans[0].0);
    assert_eq!(inside, ["opening transport", "disconnected"], "a failed attempt's events carry its span too");

    // An attempt the user ends by closing the client (the server never answers the upgrade).
    let addr = silent_server().await;
    let (client, mut events) = builder::<R>(&format!("ws://{addr}/")).start().expect("started");
    until(&mut events, |e| matches!(e, SessionEvent::StateChanged { to: wslink_core::SessionState::Handshaking, .. }))
        .await;
    client.close(CloseCode::Normal, "").await.expect("closed");
    let spans = connect_spans(&format!("ws://{addr}/"));
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].1.fields.get("outcome").map(String::as_str), Some("closed"), "{spans:?}");
}

// ----- the documented table -----

/// The tables of the telemetry module's docs, as their lines.
fn module_tables() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let module = std::fs::read_to_string(root.join("adapter-common/src/telemetry.rs")).expect("the module");
    module.lines().filter_map(|l| l.strip_prefix("//! ")).filter(|l| l.starts_with('|')).map(str::to_owned).collect()
}

#[test]
fn the_readme_shows_the_modules_tables_and_they_name_every_metric() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("the README");
    let tables = module_tables();
    let section = readme.split("## Telemetry").nth(1).expect("a Telemetry section").split("\n## ").next();
    let in_readme: Vec<&str> = section.expect("its text").lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(in_readme, tables, "the README's tables are the module's, line for line");
    let named: Vec<&str> = tables.iter().filter_map(|l| l.strip_prefix("| `")?.split('`').next()).collect();
    let metrics: Vec<&str> = named.iter().copied().filter(|n| n.starts_with("wslink_")).collect();
    assert_eq!(metrics, TABLE, "the table and the metrics these tests check are the same list");
    let reasons: Vec<&str> = named.iter().copied().filter(|n| !n.starts_with("wslink_") && *n != "reason").collect();
    assert_eq!(reasons, DISCONNECT_REASONS, "the reasons' table is DISCONNECT_REASONS");
}
