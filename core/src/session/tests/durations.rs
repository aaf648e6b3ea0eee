//! Every duration a user can set, at `Duration::MAX` ("no timeout") and
//! `Duration::ZERO`: each is refused by name, or the session behaves as the
//! value says. None may panic (they used to, adding past what `Instant` holds).

use super::*;
use crate::hooks::{Decision, ReconnectPolicy};
use crate::presets::JsonRpcAuth;
use crate::{AppHeartbeatConfig, BackoffConfig, ConfigError, PingConfig, RateLimit};

const MAX: Duration = Duration::MAX;
const ZERO: Duration = Duration::ZERO;

/// Builds `b`, or returns the field validation named.
fn build(b: SessionBuilder) -> Result<Fake, &'static str> {
    let rng = Box::new(StdRng::seed_from_u64(1));
    match b.build(rng, Instant::now()) {
        Ok(s) => {
            let mut f = Fake::new(builder());
            f.s = s;
            Ok(f)
        }
        Err(ConfigError::InvalidValue { field, .. }) => Err(field),
        Err(other) => panic!("{other:?}"),
    }
}

fn refused(b: SessionBuilder, field: &str) {
    assert_eq!(build(b).err(), Some(field), "{field}");
}

/// Connects, opens and drains, as `Fake::open` does.
fn opened(b: SessionBuilder) -> Fake {
    let mut f = build(b).expect("accepted");
    f.s.connect(f.now).unwrap();
    f.step();
    f.establish();
    f.events();
    f.got();
    f
}

/// The server drops the link; returns the `Reconnecting` delay.
fn drop_and_delay(f: &mut Fake) -> Duration {
    f.server_drop();
    let delays: Vec<Duration> = f
        .events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::Reconnecting { delay, .. } => Some(delay),
            _ => None,
        })
        .collect();
    assert_eq!(delays.len(), 1, "one reconnect scheduled");
    delays[0]
}

#[test]
fn connect_handshake_and_auth_timeouts() {
    refused(builder().config(|c| c.connect_timeout = ZERO), "connect_timeout");
    let mut f = build(builder().config(|c| c.connect_timeout = MAX)).unwrap();
    f.s.connect(f.now).unwrap();
    f.step();
    assert_eq!(f.s.poll_timeout(), None, "a transport that never opens is waited for");

    refused(builder().config(|c| c.connection.handshake_timeout = Some(ZERO)), "handshake_timeout");
    let mut f = build(builder().config(|c| c.connection.handshake_timeout = Some(MAX))).unwrap();
    f.s.connect(f.now).unwrap();
    f.step();
    f.accept_transport();
    assert_eq!((f.s.state(), f.s.poll_timeout()), (SessionState::Handshaking, None));

    let auth = || builder().authenticator(JsonRpcAuth::new("public/auth", |_| "{}".into()));
    refused(auth().config(|c| c.auth_timeout = ZERO), "auth_timeout");
    let f = opened(auth().config(|c| c.auth_timeout = MAX));
    assert_eq!((f.s.state(), f.s.poll_timeout()), (SessionState::Authenticating, None));
}

#[test]
fn request_timeouts_in_config_and_per_call() {
    refused(builder().config(|c| c.request_timeout = ZERO), "request_timeout");
    let mut f = opened(builder().config(|c| c.request_timeout = MAX));
    let id = f.s.request("m", None, None, f.now).unwrap();
    f.step();
    assert_eq!(f.s.poll_timeout(), None, "no deadline");
    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{id},"result":1}}"#));
    assert!(matches!(f.events().as_slice(), [SessionEvent::Response { id: got, .. }] if *got == id));

    let mut f = opened(builder());
    let never = f.s.request("m", None, Some(MAX), f.now).unwrap();
    let at_once = f.s.request("m", None, Some(ZERO), f.now).unwrap();
    f.step();
    assert_eq!(f.s.poll_timeout(), Some(f.now), "the zero timeout is due now");
    f.advance();
    assert_eq!(f.events(), [SessionEvent::RequestFailed { id: at_once, reason: RequestFailure::Timeout }]);
    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{never},"result":1}}"#));
    assert!(matches!(f.events().as_slice(), [SessionEvent::Response { id, .. }] if *id == never));
}

#[test]
fn late_response_window() {
    for window in [MAX, ZERO] {
        let mut f = opened(builder().config(|c| c.late_response_window = window));
        let id = f.s.request("m", None, Some(ms(10)), f.now).unwrap();
        f.step();
        f.advance();
        assert_eq!(f.events(), [SessionEvent::RequestFailed { id, reason: RequestFailure::Timeout }]);
        if window == MAX {
            assert_eq!(f.s.poll_timeout(), None, "the id is kept as long as the window allows");
        }
        f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{id},"result":1}}"#));
        let late = f.events();
        match window {
            MAX => assert!(matches!(late.as_slice(), [SessionEvent::Unmatched { .. }]), "{late:?}"),
            _ => assert!(matches!(late.as_slice(), [SessionEvent::Message(_)]), "{late:?}"),
        }
    }
}

#[test]
fn heartbeat_and_idle_timers() {
    let ping = |interval, timeout| builder().ping(Some(PingConfig { interval, timeout }));
    refused(ping(ZERO, ms(1)), "ping.interval");
    refused(ping(secs(1), ZERO), "ping.timeout");
    refused(ping(MAX, MAX), "ping.timeout");
    let f = opened(ping(MAX, MAX - secs(1)));
    assert_eq!(f.s.poll_timeout(), None, "a ping never due");

    // A timeout so long that its deadline is past what `Instant` holds.
    let mut f = opened(ping(MAX - secs(1), MAX - secs(2)));
    f.wait(secs(3600));
    assert_eq!(f.s.state(), SessionState::Open);

    refused(builder().idle_timeout(ZERO), "idle_timeout");
    let mut f = opened(builder().idle_timeout(MAX));
    assert_eq!(f.s.poll_timeout(), None);
    f.server_text("tick");
    assert_eq!(f.s.poll_timeout(), None);

    let beat =
        |interval, timeout| builder().config(move |c| c.app_heartbeat = Some(AppHeartbeatConfig { interval, timeout }));
    refused(beat(ZERO, ms(1)), "app_heartbeat.interval");
    let beats = builder().app_heartbeat(crate::presets::DeribitHeartbeat, MAX, MAX - secs(1));
    let f = opened(beats);
    assert_eq!(f.s.poll_timeout(), None, "server-driven beats: interval + grace saturates to never");
}

#[test]
fn close_timeout() {
    refused(builder().config(|c| c.connection.close_timeout = ZERO), "close_timeout");
    let mut f = opened(builder().config(|c| c.connection.close_timeout = MAX));
    f.s.close(CloseCode::Normal, "bye", f.now).unwrap();
    f.step();
    assert_eq!((f.s.state(), f.s.poll_timeout()), (SessionState::Closing, None));
    f.input(&[0x88, 0x02, 0x03, 0xE8]);
    assert_eq!(f.s.state(), SessionState::Closed);
    assert_eq!(f.last_wait_for_server, Some(MAX), "no timeout: the server's end of stream is waited for");
}

#[test]
fn rate_limit_interval() {
    let limit = |interval| RateLimit { capacity: 1, refill: 1, interval };
    refused(builder().rate_limit(limit(ZERO), None), "rate_limit.interval");
    let mut f = opened(builder().rate_limit(limit(MAX), None));
    f.s.send(Message::Text("first".into()), f.now).unwrap();
    f.s.send(Message::Text("second".into()), f.now).unwrap();
    f.step();
    assert_eq!(f.texts(), ["first"]);
    assert_eq!((f.s.metrics(f.now).queue_len, f.s.poll_timeout()), (1, None), "the bucket never refills in time");
    f.wait(secs(86_400 * 365));
    assert!(f.texts().is_empty());
}

#[test]
fn backoff_bounds_and_stable_period() {
    let exact = |initial, max| BackoffConfig { initial, max, full_jitter: false, ..BackoffConfig::default() };
    refused(builder().backoff(exact(ZERO, secs(1))), "backoff.initial");
    refused(builder().backoff(exact(secs(1), ZERO)), "backoff.max");

    let mut f = opened(builder().backoff(exact(ms(250), MAX)));
    assert_eq!(drop_and_delay(&mut f), ms(250));

    // The first delay past what `Instant` holds: wait for `reconnect`.
    let mut f = opened(builder().backoff(exact(MAX, MAX)));
    assert!(drop_and_delay(&mut f) > secs(1 << 60));
    assert_eq!((f.s.state(), f.s.poll_timeout()), (SessionState::Backoff, None));
    f.s.reconnect(f.now).unwrap();
    f.step();
    assert_eq!(f.s.state(), SessionState::Connecting);

    for reset_after in [MAX, ZERO] {
        let mut f = opened(builder().backoff(BackoffConfig { reset_after, ..exact(ms(250), secs(30)) }));
        drop_and_delay(&mut f);
        f.advance();
        f.establish();
        // With ZERO, any open connection counts as stable: the counter starts again.
        let expected = if reset_after == ZERO { ms(250) } else { ms(375) };
        assert_eq!(drop_and_delay(&mut f), expected);
    }
}

#[test]
fn retry_function_and_policy_delays() {
    let mut f = opened(builder().retry(|_| Some(MAX)));
    assert_eq!(drop_and_delay(&mut f), MAX);
    assert_eq!((f.s.state(), f.s.poll_timeout()), (SessionState::Backoff, None));

    let mut f = opened(builder().retry(|_| Some(ZERO)));
    assert_eq!(drop_and_delay(&mut f), ZERO);
    assert_eq!(f.s.poll_timeout(), Some(f.now), "an attempt due now");
    f.advance();
    assert_eq!(f.s.state(), SessionState::Connecting);

    struct After(Duration);
    impl ReconnectPolicy for After {
        fn on_disconnect(&mut self, _: &DisconnectReason, _: u32) -> Decision {
            Decision::ReconnectAfter(self.0)
        }
    }
    let mut f = opened(builder().policy(After(MAX)));
    assert_eq!(drop_and_delay(&mut f), MAX);
    assert_eq!(f.s.poll_timeout(), None);
}
