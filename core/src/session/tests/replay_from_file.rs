//! A recording replays from the file alone (format 3): every setting comes
//! back exactly, presets by name and settings, the user's hooks by the name
//! given when recording and a registry; a hook recorded without a name
//! refuses the rebuild, naming it, instead of diverging.

use super::*;
use crate::presets::{self, JsonRpcAuth, JsonRpcSubscriptions};
use crate::record::settings::Hook;
use crate::record::MemoryRecorder;
use crate::replay::{rebuild, replay, replay_file, HookRegistry, RebuildError, Recording, ReplayError, Replayed};
use crate::{BackoffConfig, Message, PingConfig, RateLimit};

const SEED: [u8; 32] = [9; 32];

/// A session with a preset in every slot that has one, its credentials
/// made by a closure, a secret header and a token in the URL.
fn with_presets() -> SessionBuilder {
    let creds = |attempt| format!(r#"{{"client_id":"id","client_secret":"hunter2","attempt":{attempt}}}"#);
    let subscriptions = JsonRpcSubscriptions { subscribe_method: "private/subscribe".into(), ..Default::default() };
    Session::builder("ws://feed.test:9001/ws?token=abc-999")
        .unwrap()
        .ping(Some(PingConfig::new(ms(1500), ms(700))))
        .app_heartbeat(presets::JsonOpHeartbeat, secs(4), ms(1500))
        .authenticator(JsonRpcAuth::new("public/auth", creds))
        .subscription_codec(subscriptions)
        .rate_limit(RateLimit::new(20, 5, ms(250)), Some(Box::new(presets::deribit_cost)))
        .name_hook(Hook::Cost, presets::DERIBIT_COST)
        .backoff(BackoffConfig::default().initial(Duration::new(0, 123_456_789)).factor(4.0 / 3.0))
        .header("Authorization", "Bearer hunter2")
        .header("X-Client", "wslink-tests")
        .config(|c| c.request_timeout = Duration::new(7, 1))
}

/// Answers what the client sent: pings with pongs, op pings with op pongs.
fn answer_beats(f: &mut Fake) {
    for got in f.got() {
        match got {
            Got::Ping(payload) => f.server_pong(&payload),
            Got::Text(t) if t.contains(r#""op":"ping""#) => f.server_text(r#"{"op":"pong"}"#),
            _ => {}
        }
    }
}

/// The request among `texts` with `method`.
fn request_of(texts: &[String], method: &str) -> u64 {
    id_of(texts.iter().find(|t| t.contains(method)).unwrap_or_else(|| panic!("no {method} in {texts:?}")))
}

/// Auth, a subscription, requests, heartbeats, a drop, the reconnect, a close.
fn a_session(b: SessionBuilder) -> (Instant, String) {
    let tape = MemoryRecorder::new(1 << 20);
    let mut f = Fake::new(b.recorder(tape.clone(), SEED));
    f.s.subscribe(&["trades"], f.now).unwrap();
    f.s.connect(f.now).unwrap();
    f.step();
    for round in 0..2 {
        f.establish();
        let auth = request_of(&f.texts(), "public/auth");
        f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{auth},"result":{{"access_token":"t"}}}}"#));
        let texts = f.texts();
        let subscribe = texts.iter().find(|t| t.contains(r#""method":""#) && t.contains("subscribe"));
        let subscribe = id_of(subscribe.expect("resubscribed"));
        f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{subscribe},"result":["trades"]}}"#));
        f.events();
        if round == 0 {
            let id = f.s.request("private/get_positions", Some(r#"{"currency":"BTC"}"#), None, f.now).unwrap();
            f.step();
            f.wait(ms(30));
            f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{id},"result":[]}}"#));
            f.server_text("tick");
            // Pings and heartbeats, answered: bounded by the count.
            for _ in 0..6 {
                f.advance();
                answer_beats(&mut f);
            }
            f.events();
            f.server_drop();
            f.events();
            f.advance();
        }
    }
    f.s.close(CloseCode::Normal, "bye", f.now).unwrap();
    f.step();
    f.input(&[0x88, 0x02, 0x03, 0xE8]);
    f.events();
    (f.t0, lines(&tape))
}

#[test]
fn a_session_with_presets_replays_from_the_file_alone() {
    let (t0, text) = a_session(with_presets());
    assert!(!text.contains("hunter2") && !text.contains("abc-999"), "no secret in the file");
    match replay_file(&text, HookRegistry::new(), t0) {
        Ok(Replayed::Identical { inputs, outputs }) => assert!(inputs > 30 && outputs > 30, "{inputs} {outputs}"),
        other => panic!("{other:?}"),
    }
    // The same from the compact encoding.
    let compact = Recording::parse(&text).unwrap().to_compact();
    assert!(matches!(replay_file(&compact, HookRegistry::new(), t0), Ok(Replayed::Identical { .. })));
    // What the recording example did before: default settings for the URL
    // (whose redacted query does not even parse as it is).
    let recording = Recording::parse(&text).unwrap();
    assert!(Session::builder(&recording.header.url).is_err());
    let by_url = Session::builder(&recording.header.url.replace("<redacted>", "q")).unwrap();
    assert!(matches!(replay(&recording, by_url, t0), Ok(Replayed::Diverged(_))));
}

#[test]
fn every_setting_comes_back_exactly() {
    let b = Session::builder("ws://feed.test:9001/ws")
        .unwrap()
        .subprotocol("v2.feed")
        .header("X-Client", "wslink-tests")
        .backoff(
            BackoffConfig::default()
                .initial(Duration::new(0, 1))
                .factor(4.0 / 3.0)
                .max(Duration::MAX)
                .full_jitter(false)
                .max_attempts(Some(7))
                .reset_after(Duration::new(u64::MAX, 999_999_999)),
        )
        .reconnect(false)
        .ping(None)
        .idle_timeout(Duration::new(3, 5))
        .app_heartbeat(presets::DeribitHeartbeat, secs(30), Duration::new(9, 999_999_999))
        .rate_limit(RateLimit::new(3, 2, Duration::new(1, 7)), None)
        .write_budget(12_345)
        .write_timeout(None)
        .max_message_size(1 << 30)
        .max_frame_size(usize::MAX)
        .control_events(true)
        .config(|c| {
            c.reconnect_on_error = false;
            c.connect_timeout = Duration::new(1, 2);
            c.auth_timeout = Duration::new(3, 4);
            c.request_timeout = Duration::MAX;
            c.queue_capacity = 3;
            c.queue_while_disconnected = false;
            c.keep_queue_on_disconnect = false;
            c.latency_window = 17;
            c.late_response_window = Duration::new(0, 999);
            c.connection.max_response_head = 999;
            c.connection.refusal_body_limit = 0;
            c.connection.handshake_timeout = None;
            c.connection.close_timeout = Duration::new(2, 1);
            c.connection.fragment_size = Some(4096);
            c.connection.auto_pong = false;
        });
    #[cfg(feature = "deflate")]
    let b = b.compression(Some(
        crate::DeflateConfig::default().server_max_window_bits(Some(10)).client_no_context_takeover(true).level(6),
    ));
    let wanted = format!("{:?}", b.settings());
    let factor = b.settings().backoff.factor;
    let (_, text) = {
        let tape = MemoryRecorder::new(1 << 20);
        let f = Fake::new(b.recorder(tape.clone(), SEED));
        (f.t0, lines(&tape))
    };
    let rebuilt = rebuild(&Recording::parse(&text).unwrap(), HookRegistry::new()).expect("rebuilt from the file");
    assert_eq!(format!("{:?}", rebuilt.settings()), wanted);
    assert_eq!(rebuilt.settings().backoff.factor.to_bits(), factor.to_bits(), "the factor to the last bit");
}

/// The header's settings and hooks, for comparing recordings.
fn header_of(text: &str) -> (String, String) {
    let header = Recording::parse(text).unwrap().header;
    (format!("{:?}", header.settings), format!("{:?}", header.hooks))
}

#[test]
fn each_preset_maps_to_a_name_and_settings_and_back() {
    let builders = [
        with_presets(),
        with_presets().app_heartbeat(presets::DeribitHeartbeat, secs(10), secs(3)),
        Session::builder("ws://feed.test:9001/ws")
            .unwrap()
            .request_codec(crate::hooks::NoCodec)
            .subscription_codec(crate::hooks::NoCodec),
    ];
    for b in builders {
        let tape = MemoryRecorder::new(1 << 20);
        drop(Fake::new(b.recorder(tape.clone(), SEED)));
        let first = lines(&tape);
        let rebuilt = rebuild(&Recording::parse(&first).unwrap(), HookRegistry::new()).expect("presets only");
        let again = MemoryRecorder::new(1 << 20);
        drop(Fake::new(rebuilt.recorder(again.clone(), SEED)));
        assert_eq!(header_of(&lines(&again)), header_of(&first), "recorded, rebuilt, recorded again");
    }
    let text = {
        let tape = MemoryRecorder::new(1 << 20);
        drop(Fake::new(with_presets().recorder(tape.clone(), SEED)));
        lines(&tape)
    };
    let hooks = header_of(&text).1;
    for name in ["DefaultPolicy", "JsonRpc", "private/subscribe", "JsonRpcAuth", "public/auth", "JsonOpHeartbeat"] {
        assert!(hooks.contains(name), "{name} in {hooks}");
    }
    assert!(hooks.contains(presets::DERIBIT_COST));
}

/// Marks each text message: a `prepare` hook whose work the digests show.
fn stamp(m: Message) -> Message {
    match m {
        Message::Text(t) => Message::Text(format!("{} ", t.as_str()).into()),
        other => other,
    }
}

/// Doubles the backoff's delay: a `retry` hook whose work the events show.
fn slow(ctx: &crate::hooks::RetryContext<'_>) -> Option<Duration> {
    ctx.backoff.map(|d| d * 2)
}

struct OwnPolicy;
impl crate::hooks::ReconnectPolicy for OwnPolicy {}

#[test]
fn a_hook_recorded_without_a_name_refuses_the_replay_naming_it() {
    let b = with_presets().prepare(stamp).retry(slow).policy(OwnPolicy);
    let (t0, text) = a_session(b);
    let refused = replay_file(&text, HookRegistry::new(), t0);
    let wanted = RebuildError::Unnamed { hooks: vec![Hook::Policy, Hook::Retry, Hook::Prepare] };
    assert_eq!(refused, Err(ReplayError::Rebuild(wanted.clone())));
    let said = wanted.to_string();
    assert!(said.contains("policy, retry, prepare") && said.contains("name_hook"), "{said}");
}

#[test]
fn a_hook_named_when_recording_replays_with_the_one_registered_under_its_name() {
    let b = with_presets()
        .prepare(stamp)
        .name_hook(Hook::Prepare, "stamp")
        .retry(slow)
        .name_hook(Hook::Retry, "slow")
        .policy(OwnPolicy)
        .name_hook(Hook::Policy, "own");
    let (t0, text) = a_session(b);
    let registry = || HookRegistry::new().prepare("stamp", stamp).retry("slow", slow).policy("own", OwnPolicy);
    match replay_file(&text, registry(), t0) {
        Ok(Replayed::Identical { .. }) => {}
        other => panic!("{other:?}"),
    }
    // Not registered: the name is reported.
    let missing = HookRegistry::new().retry("slow", slow).policy("own", OwnPolicy);
    assert_eq!(
        replay_file(&text, missing, t0),
        Err(ReplayError::Rebuild(RebuildError::UnknownHook { hook: Hook::Prepare, name: "stamp".into() }))
    );
    // Registered hooks are the ones used: other ones diverge where they show.
    let other_prepare = HookRegistry::new().prepare("stamp", |m| m).retry("slow", slow).policy("own", OwnPolicy);
    assert!(matches!(replay_file(&text, other_prepare, t0), Ok(Replayed::Diverged(_))));
    let other_retry =
        HookRegistry::new().prepare("stamp", stamp).retry("slow", |ctx| ctx.backoff).policy("own", OwnPolicy);
    match replay_file(&text, other_retry, t0) {
        Ok(Replayed::Diverged(d)) => assert!(d.recorded.contains("Reconnecting"), "{d:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_older_recording_needs_the_callers_builder_and_bad_settings_are_refused() {
    let (t0, text) = a_session(with_presets());
    let (head, rest) = text.split_once('\n').unwrap();
    let mut header: serde_json::Value = serde_json::from_str(head).unwrap();
    header["wslink_recording"] = 2.into();
    let map = header.as_object_mut().unwrap();
    map.remove("settings");
    map.remove("hooks");
    let v2 = format!("{header}\n{rest}");
    let recording = Recording::parse(&v2).expect("format 2 is still read");
    assert_eq!(rebuild(&recording, HookRegistry::new()).err(), Some(RebuildError::NoSettings { format: 2 }));
    let same = with_presets();
    assert!(matches!(replay(&recording, same, t0), Ok(Replayed::Identical { .. })));

    let mut header: serde_json::Value = serde_json::from_str(head).unwrap();
    header["settings"]["connect_timeout"] = serde_json::json!([1, 1_000_000_000]);
    let bad = format!("{header}\n{rest}");
    assert!(
        matches!(Recording::parse(&bad), Err(crate::replay::RecordingError::BadHeader { line: 1, ref reason }) if reason.contains("connect_timeout")),
    );
    let mut header: serde_json::Value = serde_json::from_str(head).unwrap();
    header["hooks"]["authenticator"]["settings"] = serde_json::json!({});
    let bad = format!("{header}\n{rest}");
    let missing = RebuildError::MissingSetting {
        hook: Hook::Authenticator,
        name: "JsonRpcAuth".into(),
        setting: "method".into(),
    };
    assert_eq!(replay_file(&bad, HookRegistry::new(), t0), Err(ReplayError::Rebuild(missing)));
}
