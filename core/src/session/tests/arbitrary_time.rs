//! Arbitrary durations in every setting and arbitrary clock jumps: the
//! session never panics, and every request it accepted ends exactly once.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::{BackoffConfig, PingConfig, RateLimit};

/// Any duration; zero rarely, so that most settings pass validation and the
/// session really runs (a zero where a wait must be positive is refused).
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        1 => Just(Duration::ZERO),
        4 => Just(Duration::from_nanos(1)),
        4 => Just(Duration::MAX),
        4 => Just(Duration::MAX - secs(1)),
        4 => (0u64..20_000).prop_map(Duration::from_millis),
        4 => any::<u64>().prop_map(Duration::from_secs),
        4 => any::<u64>().prop_map(Duration::from_nanos),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    /// Jump the clock, firing whatever is due (and skipping nothing else).
    Jump(Duration),
    /// Go to the session's own next deadline.
    Deadline,
    AcceptTransport,
    RefuseTransport,
    Upgrade,
    Request(Option<Duration>),
    Respond,
    Send,
    ServerText,
    ServerDrop,
    Pause,
    Resume,
    Reconnect,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        duration().prop_map(Op::Jump),
        Just(Op::Deadline),
        Just(Op::AcceptTransport),
        Just(Op::RefuseTransport),
        Just(Op::Upgrade),
        prop::option::of(duration()).prop_map(Op::Request),
        Just(Op::Respond),
        Just(Op::Send),
        Just(Op::ServerText),
        Just(Op::ServerDrop),
        Just(Op::Pause),
        Just(Op::Resume),
        Just(Op::Reconnect),
    ]
}

#[derive(Debug, Clone)]
struct Settings {
    connect: Duration,
    request: Duration,
    /// Interval, and the divisor that makes the pong timeout shorter.
    ping: Option<(Duration, u32)>,
    idle: Option<Duration>,
    handshake: Option<Duration>,
    close: Duration,
    backoff: (Duration, Duration, Duration),
    late: Duration,
    rate: Option<Duration>,
    full_jitter: bool,
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        (duration(), duration(), prop::option::of((duration(), 1u32..10)), prop::option::of(duration())),
        (prop::option::of(duration()), duration(), (duration(), duration(), duration()), duration()),
        prop::option::of(duration()),
        any::<bool>(),
    )
        .prop_map(|((connect, request, ping, idle), (handshake, close, backoff, late), rate, full_jitter)| {
            Settings { connect, request, ping, idle, handshake, close, backoff, late, rate, full_jitter }
        })
}

fn configured(s: &Settings) -> SessionBuilder {
    let s = s.clone();
    builder().config(move |c| {
        c.connect_timeout = s.connect;
        c.request_timeout = s.request;
        // Divisor 1 gives a timeout equal to the interval: refused, as it should be.
        c.ping = s.ping.map(|(interval, divisor)| PingConfig { interval, timeout: interval / divisor });
        c.idle_timeout = s.idle;
        c.connection.handshake_timeout = s.handshake;
        c.connection.close_timeout = s.close;
        let (initial, extra, reset_after) = s.backoff;
        let max = initial.saturating_add(extra);
        c.backoff = BackoffConfig { initial, max, reset_after, full_jitter: s.full_jitter, ..BackoffConfig::default() };
        c.late_response_window = s.late;
        c.rate_limit = s.rate.map(|interval| RateLimit { capacity: 2, refill: 1, interval });
    })
}

/// Counts how each request ended.
fn tally(events: Vec<SessionEvent>, ended: &mut HashMap<u64, u32>) {
    for event in events {
        if let SessionEvent::Response { id, .. } | SessionEvent::RequestFailed { id, .. } = event {
            *ended.entry(id).or_default() += 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_durations_and_clock_jumps(s in settings(), ops in prop::collection::vec(op(), 0..40)) {
        let rng = Box::new(StdRng::seed_from_u64(3));
        let mut f = Fake::new(builder());
        match configured(&s).build(rng, f.t0) {
            Ok(session) => f.s = session,
            // Refused by name: that is the other allowed outcome.
            Err(crate::ConfigError::InvalidValue { .. }) => return Ok(()),
            Err(other) => panic!("{other:?}"),
        }
        let mut accepted = Vec::new();
        let mut ended = HashMap::new();
        f.s.connect(f.now).unwrap();
        f.step();
        for op in ops {
            match op {
                Op::Jump(by) => {
                    let Some(to) = f.now.checked_add(by) else { continue };
                    f.now = to;
                    f.s.handle_timeout(f.now);
                    f.step();
                }
                Op::Deadline => {
                    if let Some(due) = f.s.poll_timeout() {
                        f.now = f.now.max(due);
                        f.s.handle_timeout(f.now);
                        f.step();
                    }
                }
                Op::AcceptTransport if f.transport == Some(false) => f.accept_transport(),
                Op::RefuseTransport if f.transport == Some(false) => f.refuse_transport(),
                Op::Upgrade if f.key.is_some() => f.upgrade(),
                Op::Request(timeout) => {
                    if let Ok(id) = f.s.request("m", None, timeout, f.now) {
                        accepted.push(id);
                    }
                    f.step();
                }
                Op::Respond if f.upgraded => {
                    if let Some(&id) = accepted.last() {
                        f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{id},"result":1}}"#));
                    }
                }
                Op::Send => {
                    let _ = f.s.send(Message::Text("x".into()), f.now);
                    f.step();
                }
                Op::ServerText if f.upgraded => f.server_text("tick"),
                Op::ServerDrop if f.transport == Some(true) => f.server_drop(),
                Op::Pause => f.s.handle_reading_paused(f.now),
                Op::Resume => f.s.handle_reading_resumed(f.now),
                Op::Reconnect => {
                    let _ = f.s.reconnect(f.now);
                    f.step();
                }
                _ => {}
            }
            tally(f.events(), &mut ended);
        }
        // Closing ends everything still pending, whatever the timers say.
        let _ = f.s.close(CloseCode::Normal, "", f.now);
        f.step();
        if f.transport.is_some() {
            f.server_drop();
        }
        tally(f.events(), &mut ended);
        prop_assert_eq!(f.s.state(), SessionState::Closed);
        for id in accepted {
            prop_assert_eq!(ended.get(&id).copied(), Some(1), "request {} ends exactly once", id);
        }
    }
}
