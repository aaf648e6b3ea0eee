//! Subscriptions and authentication across reconnects. (Auth, then one
//! resubscribe, after every reconnect: `tests/tests/testkit.rs`, on the public test kit.)

use super::*;
use crate::hooks::{Decision, ReconnectPolicy, SessionError};
use crate::presets::JsonRpcAuth;

fn with_auth() -> SessionBuilder {
    builder().authenticator(JsonRpcAuth::new("public/auth", |attempt| format!(r#"{{"attempt":{attempt}}}"#)))
}

fn answer(f: &mut Fake, request: &str, result: &str) {
    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{},{result}}}"#, id_of(request)));
}

#[test]
fn new_channels_go_out_at_once_and_removed_ones_are_unsubscribed() {
    let mut f = Fake::open(builder());
    f.s.subscribe(&["a"], f.now).unwrap();
    f.s.subscribe(&["a", "b"], f.now).unwrap();
    f.s.unsubscribe(&["a", "zzz"], f.now).unwrap();
    f.step();
    let texts = f.texts();
    let params: Vec<(String, &str)> =
        texts.iter().map(|t| (method_of(t), if t.contains(r#"["a"]"#) { "a" } else { "b" })).collect();
    assert_eq!(
        params,
        [("public/subscribe".into(), "a"), ("public/subscribe".into(), "b"), ("public/unsubscribe".into(), "a")]
    );
    assert_eq!(f.s.subscriptions(), ["b"]);
}

#[test]
fn a_refused_subscription_is_reported_and_kept() {
    let mut f = Fake::open(builder());
    f.s.subscribe(&["nope"], f.now).unwrap();
    f.step();
    let texts = f.texts();
    answer(&mut f, &texts[0], r#""error":{"code":11050,"message":"bad_request"}"#);
    match f.events().as_slice() {
        [SessionEvent::SubscriptionFailed { channels, reason }] => {
            assert_eq!(channels, &["nope".to_owned()]);
            assert!(reason.contains("bad_request"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.s.subscriptions(), ["nope"]);
}

struct IgnoreErrors;

impl ReconnectPolicy for IgnoreErrors {
    fn on_error(&mut self, _: &SessionError) -> Decision {
        Decision::Ignore
    }
}

#[test]
fn auth_rejection_and_timeout_follow_the_policy() {
    let mut f = Fake::new(with_auth());
    f.s.connect(f.now).unwrap();
    f.step();
    f.establish();
    let texts = f.texts();
    answer(&mut f, &texts[0], r#""error":{"code":13004,"message":"invalid_credentials"}"#);
    let evs = f.events();
    assert!(matches!(&evs[0], SessionEvent::Error(SessionError::AuthRejected(r)) if r.contains("invalid_credentials")));
    assert!(matches!(&evs[1], SessionEvent::Disconnected { reason: DisconnectReason::Error(_) }));
    assert_eq!(f.s.state(), SessionState::Backoff);
    assert!(f.got().contains(&Got::Close(Some(1000))), "the link was closed politely");

    f.advance();
    f.establish();
    f.got();
    assert_eq!(f.advance(), secs(10), "auth timeout");
    assert_eq!(f.events()[0], SessionEvent::Error(SessionError::AuthTimeout));

    let mut f = Fake::new(with_auth().policy(IgnoreErrors));
    f.s.connect(f.now).unwrap();
    f.step();
    f.establish();
    let texts = f.texts();
    answer(&mut f, &texts[0], r#""error":{"code":1}"#);
    assert_eq!(f.s.state(), SessionState::Open, "Ignore carries on unauthenticated");
}
