//! Connecting, backoff, giving up, the stable-period reset, user decisions,
//! the retry function, forced reconnects, closing, and metrics. (Giving up
//! after `max_attempts`: `tests/tests/testkit.rs`, on the public test kit.)

use super::*;
use crate::hooks::{Decision, ReconnectPolicy, SessionError};
use crate::{BackoffConfig, CloseCode, PingConfig};

fn reconnect_delays(events: &[SessionEvent]) -> Vec<Duration> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Reconnecting { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect()
}

#[test]
fn connects_through_every_state_in_order() {
    let mut f = Fake::new(builder());
    assert_eq!(f.s.state(), SessionState::Idle);
    assert_eq!(f.s.poll_timeout(), None, "an idle session has no timer");
    f.s.connect(f.now).unwrap();
    f.step();
    assert_eq!((f.opened, f.s.state()), (1, SessionState::Connecting));
    assert_eq!(f.s.poll_timeout(), Some(f.now + secs(10)), "connect timeout");
    f.establish();
    let states: Vec<SessionState> = std::iter::from_fn(|| f.s.poll_event())
        .filter_map(|e| match e {
            SessionEvent::StateChanged { to, .. } => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(states, [SessionState::Connecting, SessionState::Handshaking, SessionState::Open]);
    assert!(matches!(&f.got()[..], [Got::Upgrade { .. }]));
}

#[test]
fn backoff_follows_fresh_schedule_with_exact_deadlines() {
    let mut f = Fake::new(builder().backoff(BackoffConfig { full_jitter: false, ..Default::default() }));
    f.s.connect(f.now).unwrap();
    f.step();
    let mut delays = Vec::new();
    for _ in 0..14 {
        f.refuse_transport();
        let evs = f.events();
        let delay = reconnect_delays(&evs)[0];
        assert_eq!(f.s.state(), SessionState::Backoff);
        assert_eq!(f.s.poll_timeout(), Some(f.now + delay), "the backoff deadline is the reported delay");
        assert_eq!(f.advance(), delay);
        assert_eq!(f.s.state(), SessionState::Connecting);
        delays.push(delay.as_millis());
    }
    assert_eq!(delays, [250, 375, 562, 843, 1265, 1898, 2847, 4271, 6407, 9610, 14416, 21624, 30000, 30000]);
    assert_eq!(f.s.metrics(f.now).reconnects, 14);
    assert_eq!(f.opened, 15);
}

#[test]
fn jittered_delays_stay_within_the_schedule() {
    let backoff = BackoffConfig { full_jitter: true, ..Default::default() };
    let mut f = Fake::new(builder().backoff(backoff));
    f.s.connect(f.now).unwrap();
    f.step();
    for n in 0..12 {
        f.refuse_transport();
        let delay = reconnect_delays(&f.events())[0].as_secs_f64();
        let bound = (0.25 * 1.5f64.powi(n)).min(30.0);
        assert!(delay <= bound, "attempt {n}: {delay} > {bound}");
        f.advance();
    }
}

#[test]
fn by_default_sessions_seeded_apart_wait_apart() {
    // Two clients dropped by the same restart must not come back in lockstep.
    let first_delay = |seed| {
        let mut f = Fake::with_seed(builder(), seed);
        f.s.connect(f.now).unwrap();
        f.step();
        f.refuse_transport();
        reconnect_delays(&f.events())[0]
    };
    let (a, b) = (first_delay(1), first_delay(2));
    assert_ne!(a, b, "the default draws each delay from the session's random source");
    assert!(a <= ms(250) && b <= ms(250), "{a:?} {b:?} stay within the first step of the schedule");
}

#[test]
fn a_delay_too_long_for_the_clock_waits_for_a_reconnect_command() {
    let backoff = BackoffConfig {
        initial: Duration::MAX,
        max: Duration::MAX,
        factor: 1e300,
        full_jitter: false,
        ..Default::default()
    };
    let mut f = Fake::new(builder().backoff(backoff));
    f.s.connect(f.now).unwrap();
    f.step();
    f.refuse_transport();
    assert_eq!(f.s.state(), SessionState::Backoff);
    assert_eq!(reconnect_delays(&f.events()), [Duration::MAX]);
    assert_eq!(f.s.poll_timeout(), None, "no deadline the clock can hold");
    f.s.reconnect(f.now).unwrap();
    f.step();
    assert_eq!((f.s.state(), f.opened), (SessionState::Connecting, 2), "a reconnect command still starts one");
}

#[test]
fn each_connection_is_keyed_and_each_backoff_jittered_from_the_session_random_source() {
    // The connection borrows the session's generator and gives it back when
    // it ends: keys must differ and jitter must stay random across reconnects.
    let backoff = BackoffConfig { full_jitter: true, ..Default::default() };
    let mut f = Fake::new(builder().backoff(backoff));
    f.s.connect(f.now).unwrap();
    f.step();
    let (mut keys, mut delays) = (Vec::new(), Vec::new());
    for _ in 0..6 {
        f.accept_transport();
        keys.push(f.key.clone().expect("an upgrade request"));
        f.upgrade();
        f.server_drop();
        delays.push(reconnect_delays(&f.events())[0]);
        f.advance();
    }
    let zero_key = data_encoding::BASE64.encode(&[0u8; 16]);
    assert!(!keys.contains(&zero_key), "{keys:?}");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 6, "every attempt has its own key");
    assert!(delays.iter().filter(|d| d.is_zero()).count() <= 1, "jitter is drawn, not zero: {delays:?}");
}

#[test]
fn connect_timeout_closes_the_attempt() {
    let mut f = Fake::new(builder());
    f.s.connect(f.now).unwrap();
    f.step();
    assert_eq!(f.advance(), secs(10));
    let evs = f.events();
    assert_eq!(evs[0], SessionEvent::Disconnected { reason: DisconnectReason::ConnectTimeout });
    assert_eq!((f.closed, f.transport), (1, None), "the opening transport is abandoned");
}

#[test]
fn a_stable_connection_resets_the_schedule_and_a_flapping_one_does_not() {
    let backoff = BackoffConfig { reset_after: secs(60), full_jitter: false, ..Default::default() };
    let mut f = Fake::open(builder().backoff(backoff));
    f.wait(secs(59));
    f.server_drop();
    assert_eq!(reconnect_delays(&f.events()), [ms(250)]);
    f.advance();
    f.establish();
    f.wait(secs(59));
    f.server_drop();
    assert_eq!(reconnect_delays(&f.events()), [ms(375)], "59 s is not stable: the delay grows");
    f.advance();
    f.establish();
    f.wait(secs(60));
    f.server_drop();
    assert_eq!(reconnect_delays(&f.events()), [ms(250)], "60 s open resets the count");
}

#[test]
fn max_attempts_counts_attempts_that_failed_to_open_and_an_opened_one_starts_it_again() {
    // A server that lets the client in and cuts it after 3 s, again and
    // again: every attempt opened, so giving up never comes, whatever
    // `max_attempts` says; the delays still grow (it flaps).
    let backoff = BackoffConfig { full_jitter: false, max_attempts: Some(2), ..Default::default() };
    let mut f = Fake::open(builder().backoff(backoff));
    for round in 0..6u32 {
        f.wait(secs(3));
        f.server_drop();
        let events = f.events();
        assert!(
            matches!(events.last(), Some(SessionEvent::Reconnecting { attempt: 1, .. })),
            "round {round}: {events:?}"
        );
        f.advance();
        f.establish();
        let connected = f.events();
        assert!(matches!(connected.as_slice(), [SessionEvent::Connected { attempt: 1, .. }]), "{connected:?}");
    }
    assert_eq!(f.s.metrics(f.now).connects, 7);
    // Then the server refuses: the first failure is the first of a run of two.
    f.server_drop();
    f.events();
    f.advance();
    f.refuse_transport();
    assert!(matches!(f.events().last(), Some(SessionEvent::Reconnecting { attempt: 2, .. })));
    assert_eq!(f.s.metrics(f.now).attempt, 1);
    f.advance();
    f.refuse_transport();
    let events = f.events();
    assert!(
        matches!(events.last(), Some(SessionEvent::Closed { reason: CloseReason::GaveUp { attempts: 2 } })),
        "{events:?}"
    );
}

#[test]
fn an_attempt_that_fails_authentication_counts_as_failed() {
    let auth = crate::presets::JsonRpcAuth::new("public/auth", |_| "{}".into());
    let backoff = BackoffConfig { full_jitter: false, max_attempts: Some(2), ..Default::default() };
    let mut f = Fake::new(builder().backoff(backoff).authenticator(auth));
    f.s.connect(f.now).unwrap();
    f.step();
    for _ in 0..2 {
        f.establish();
        let login = f.texts();
        f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":1,"message":"no"}}}}"#, id_of(&login[0])));
        if f.s.state() != SessionState::Closed {
            f.advance();
        }
    }
    let events = f.events();
    assert!(
        matches!(events.last(), Some(SessionEvent::Closed { reason: CloseReason::GaveUp { attempts: 2 } })),
        "{events:?}"
    );
}

struct Always(Decision);

impl ReconnectPolicy for Always {
    fn on_disconnect(&mut self, _: &DisconnectReason, _: u32) -> Decision {
        self.0
    }
    fn on_error(&mut self, _: &SessionError) -> Decision {
        self.0
    }
}

#[test]
fn each_disconnect_decision_is_followed() {
    let mut f = Fake::open(builder().policy(Always(Decision::ReconnectNow)));
    f.server_drop();
    assert_eq!((f.s.state(), f.opened), (SessionState::Connecting, 2), "no backoff");

    let mut f = Fake::open(builder().policy(Always(Decision::ReconnectAfter(secs(7)))));
    f.server_drop();
    assert_eq!(reconnect_delays(&f.events()), [secs(7)]);
    assert_eq!(f.advance(), secs(7));

    let mut f = Fake::open(builder().policy(Always(Decision::Stop)));
    f.server_drop();
    assert!(matches!(f.events().last(), Some(SessionEvent::Closed { reason: CloseReason::Stopped })));

    let mut f = Fake::open(builder().policy(Always(Decision::Ignore)));
    f.server_drop();
    assert_eq!((f.s.state(), f.s.poll_timeout()), (SessionState::Idle, None));
    f.s.connect(f.now).unwrap();
    f.step();
    assert_eq!(f.opened, 2, "connect after Ignore starts again");
}

#[test]
fn the_retry_function_decides_delays_and_stops() {
    let mut f = Fake::new(builder().retry(|ctx| (ctx.attempt < 3).then(|| secs(u64::from(ctx.attempt)))));
    f.s.connect(f.now).unwrap();
    f.step();
    f.refuse_transport();
    assert_eq!(f.advance(), secs(1));
    f.refuse_transport();
    assert_eq!(f.advance(), secs(2));
    f.refuse_transport();
    assert!(matches!(f.events().last(), Some(SessionEvent::Closed { reason: CloseReason::Stopped })));
}

#[test]
fn reconnect_on_error_off_stops_on_errors_but_not_on_clean_closes() {
    let off = || builder().config(|c| c.reconnect_on_error = false);
    let mut f = Fake::open(off());
    f.input(b"\x88\x02\x03\xe9"); // the server says "going away"
    assert_eq!(f.s.state(), SessionState::Backoff, "a clean close still reconnects");
    let mut f = Fake::open(off());
    f.server_drop();
    assert_eq!(f.s.state(), SessionState::Closed);
}

#[test]
fn forced_reconnect_closes_politely_and_connects_at_once() {
    let mut f = Fake::open(builder());
    let id = f.s.request("public/get_time", None, None, f.now).unwrap();
    f.step();
    f.got();
    f.s.reconnect(f.now).unwrap();
    f.step();
    assert_eq!(f.got(), [Got::Close(Some(1000))]);
    let evs = f.events();
    assert!(evs.contains(&SessionEvent::RequestFailed { id, reason: RequestFailure::ConnectionLost }));
    assert!(evs.contains(&SessionEvent::Disconnected { reason: DisconnectReason::UserReconnect }));
    assert_eq!((f.opened, f.closed, f.s.state()), (2, 1, SessionState::Connecting));
}

#[test]
fn user_close_runs_the_handshake_and_ends_everything() {
    let mut f = Fake::open(builder());
    let id = f.s.request("public/get_time", None, None, f.now).unwrap();
    f.s.close(CloseCode::Normal, "bye", f.now).unwrap();
    f.step();
    assert_eq!(f.s.state(), SessionState::Closing);
    assert_eq!(f.s.send(Message::Text("late".into()), f.now), Err(CommandError::Closed));
    f.input(b"\x88\x02\x03\xe8");
    let evs = f.events();
    assert_eq!(evs[0], SessionEvent::RequestFailed { id, reason: RequestFailure::SessionClosed });
    assert_eq!(evs.last(), Some(&SessionEvent::Closed { reason: CloseReason::Requested }));
    assert_eq!((f.s.state(), f.transport, f.s.poll_timeout()), (SessionState::Closed, None, None));
    let mut texts = f.texts();
    texts.retain(|t| t.contains("get_time"));
    assert_eq!(texts.len(), 1);
    assert!(f.events().is_empty(), "nothing after Closed");
}

#[test]
fn metrics_count_what_happened() {
    let mut f = Fake::open(builder());
    f.s.subscribe(&["a", "b"], f.now).unwrap();
    f.server_text("hello");
    f.s.send(Message::Text("out".into()), f.now).unwrap();
    f.step();
    f.wait(secs(3));
    let m = f.s.metrics(f.now);
    assert_eq!((m.state, m.time_in_state, m.connects, m.reconnects), (SessionState::Open, secs(3), 1, 0));
    assert_eq!((m.messages_in, m.messages_out, m.subscriptions, m.queue_len, m.pending_requests), (1, 1, 2, 0, 0));
    assert!(m.bytes_in > 100 && m.bytes_out > 200, "{m:?}");
}

#[test]
fn per_attempt_headers_and_upgrade_messages() {
    let b = builder()
        .headers_fn(|attempt| vec![("Authorization".into(), format!("Bearer token-{attempt}"))])
        .on_upgrade(|| vec![Message::Text("hello-on-upgrade".into())]);
    let mut f = Fake::new(b);
    f.s.connect(f.now).unwrap();
    f.step();
    f.refuse_transport();
    f.advance();
    f.establish();
    let got = f.got();
    match &got[0] {
        Got::Upgrade { headers } => {
            assert!(headers.contains(&"Authorization: Bearer token-2".to_owned()), "{headers:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(got[1], Got::Text("hello-on-upgrade".into()));
    let bad = builder().headers_fn(|_| vec![("Bad\r\nHeader".into(), "x".into())]);
    let mut f = Fake::new(bad);
    f.s.connect(f.now).unwrap();
    f.step();
    f.accept_transport();
    assert!(matches!(&f.events()[0], SessionEvent::Disconnected { reason: DisconnectReason::BadRequest(_) }));
}

#[test]
fn messages_keep_their_place_around_every_other_event() {
    let text = |s: &str| SessionEvent::Message(Message::Text(s.into()));
    let frame = |s: &str| [&[0x81, s.len() as u8][..], s.as_bytes()].concat();
    // Messages behind the upgrade response come after Connected.
    let mut f = Fake::new(builder());
    f.s.connect(f.now).unwrap();
    f.step();
    f.accept_transport();
    let key = f.key.take().expect("an upgrade request arrived");
    f.upgraded = true;
    let mut bytes = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        tungstenite::handshake::derive_accept_key(key.as_bytes())
    )
    .into_bytes();
    bytes.extend(frame("a"));
    bytes.extend(frame("b"));
    f.input(&bytes);
    let evs = f.events();
    assert!(matches!(evs[0], SessionEvent::Connected { .. }), "{evs:?}");
    assert_eq!(evs[1..], [text("a"), text("b")]);
    // Parked messages (not yet polled) come before a disconnect the next read reports.
    f.input(&[frame("c"), frame("d")].concat());
    assert_eq!(f.s.metrics(f.now).messages_in, 4, "parked messages are counted");
    f.input(&[frame("e"), vec![0x88, 0x02, 0x03, 0xe8]].concat());
    let evs = f.events();
    assert_eq!(evs[..3], [text("c"), text("d"), text("e")], "{evs:?}");
    assert!(matches!(evs[3], SessionEvent::Disconnected { .. }), "{evs:?}");
    // ... and before a timeout fired while they wait.
    let mut f = Fake::open(builder());
    let id = f.s.request("slow", None, Some(ms(100)), f.now).unwrap();
    f.step();
    f.got();
    f.s.handle_input(&frame("f"), f.now);
    f.now += ms(100);
    f.s.handle_timeout(f.now);
    let evs = f.events();
    assert_eq!(evs[0], text("f"), "{evs:?}");
    assert_eq!(evs[1], SessionEvent::RequestFailed { id, reason: RequestFailure::Timeout });
    // ... and before a heartbeat timeout.
    let mut f = Fake::open(builder().ping(Some(PingConfig { interval: ms(100), timeout: ms(50) })));
    f.advance();
    f.s.handle_input(&frame("g"), f.now);
    f.now += ms(50);
    f.s.handle_timeout(f.now);
    let evs = f.events();
    assert_eq!(evs[0], text("g"), "{evs:?}");
    assert_eq!(evs[1], SessionEvent::Disconnected { reason: DisconnectReason::HeartbeatTimeout });
}
