//! Credentials that expire: the session authenticates again on the open
//! link before they do, holds what needs them meanwhile, and a refusal or
//! no answer is an error the policy decides on.

use super::*;
use crate::hooks::{Decision, ReconnectPolicy, SessionError};
use crate::presets::JsonRpcAuth;
use crate::record::MemoryRecorder;
use crate::replay::{replay_file, HookRegistry, Replayed};

/// Credentials the server grants for `expires_in` seconds.
fn expiring() -> JsonRpcAuth {
    JsonRpcAuth::new("public/auth", |attempt| format!(r#"{{"secret":"hunter2","attempt":{attempt}}}"#))
        .expires_in_at("/result/expires_in")
}

fn grant(f: &mut Fake, request: &str, expires_in: u64) {
    let id = id_of(request);
    f.server_text(&format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"access_token":"t{id}","expires_in":{expires_in}}}}}"#
    ));
}

/// Connected and authenticated with credentials for `expires_in` seconds.
fn authenticated(b: SessionBuilder, expires_in: u64) -> Fake {
    let mut f = Fake::new(b);
    f.s.connect(f.now).unwrap();
    f.step();
    f.establish();
    let auth = f.texts();
    assert_eq!(method_of(&auth[0]), "public/auth");
    grant(&mut f, &auth[0], expires_in);
    f.events();
    f
}

#[test]
fn the_session_authenticates_again_before_expiry_and_holds_what_needs_it() {
    let mut f = authenticated(builder().authenticator(expiring()), 100);
    f.s.subscribe(&["trades"], f.now).unwrap();
    f.step();
    let subscribe = f.texts();
    assert_eq!(method_of(&subscribe[0]), "public/subscribe");
    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{},"result":["trades"]}}"#, id_of(&subscribe[0])));
    // A tenth of the lifetime before it ends: 90 s after the grant.
    assert_eq!(f.advance(), secs(90));
    let refresh = f.texts();
    assert_eq!(refresh.len(), 1);
    assert_eq!(method_of(&refresh[0]), "public/auth");
    assert!(refresh[0].contains("hunter2"), "built afresh by the same closure");
    assert!(f.s.reauthenticating());
    // Meanwhile: a message, a request and a subscription change wait.
    f.s.send(Message::Text("order".into()), f.now).unwrap();
    let req = f.s.request("private/get_position", None, None, f.now).unwrap();
    f.s.subscribe(&["book"], f.now).unwrap();
    f.step();
    assert!(f.texts().is_empty(), "nothing that needs the credentials goes out");
    assert_eq!(f.s.state(), SessionState::Open, "the link stays open");
    f.wait(ms(40));
    grant(&mut f, &refresh[0], 300);
    assert!(f.events().contains(&SessionEvent::Reauthenticated { refresh_in: Some(secs(270)) }));
    let out = f.texts();
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(method_of(&out[0]), "public/subscribe");
    assert_eq!(out[1], "order");
    assert_eq!(id_of(&out[2]), req);
    assert!(!f.s.reauthenticating());
    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{},"result":["book"]}}"#, id_of(&out[0])));
    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{req},"result":{{}}}}"#));
    assert_eq!(f.advance(), secs(270), "the next refresh follows the new grant");
    assert_eq!(method_of(&f.texts()[0]), "public/auth");
}

#[test]
fn a_refused_refresh_follows_the_policy_and_the_next_link_authenticates_afresh() {
    let mut f = authenticated(builder().authenticator(expiring()), 10);
    f.s.send(Message::Text("queued later".into()), f.now).unwrap();
    f.step();
    f.texts();
    f.advance();
    let refresh = f.texts();
    f.server_text(&format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":13009,"message":"invalid_token"}}}}"#,
        id_of(&refresh[0])
    ));
    let events = f.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::Error(SessionError::AuthRejected(r)) if r.contains("invalid_token"))),
        "{events:?}"
    );
    assert!(matches!(disconnects(&events).as_slice(), [DisconnectReason::Error(SessionError::AuthRejected(_))]));
    // The default policy reconnects; the new link authenticates with start.
    f.advance();
    f.establish();
    let auth = f.texts();
    assert_eq!(method_of(&auth[0]), "public/auth");
    assert!(!f.s.reauthenticating(), "the refresh went with its link");
}

struct Ignore;

impl ReconnectPolicy for Ignore {
    fn on_error(&mut self, _: &SessionError) -> Decision {
        Decision::Ignore
    }
}

#[test]
fn an_unanswered_refresh_times_out_and_ignoring_it_lets_everything_out() {
    let b = builder().authenticator(expiring()).policy(Ignore).config(|c| c.auth_timeout = secs(5));
    let mut f = authenticated(b, 20);
    f.advance();
    assert_eq!(method_of(&f.texts()[0]), "public/auth");
    f.s.send(Message::Text("held".into()), f.now).unwrap();
    f.step();
    assert!(f.texts().is_empty());
    assert_eq!(f.advance(), secs(5));
    assert!(f.events().contains(&SessionEvent::Error(SessionError::AuthTimeout)));
    assert_eq!(f.texts(), ["held"], "ignored: the link goes on as it is");
    assert_eq!(f.s.state(), SessionState::Open);
    assert!(f.s.poll_timeout().is_none(), "no refresh is scheduled after an ignored failure");
}

#[test]
fn fixed_intervals_and_grants_without_time_wait_at_least_a_second() {
    let every = JsonRpcAuth::new("public/auth", |_| "{}".into()).refresh_every(Duration::ZERO);
    let mut f = authenticated(builder().authenticator(every), 0);
    assert_eq!(f.advance(), secs(1));
    assert_eq!(method_of(&f.texts()[0]), "public/auth");
    // An answer without the lifetime: credentials that do not expire.
    let mut g = authenticated(builder().authenticator(expiring()), 0);
    assert_eq!(g.advance(), secs(1), "zero seconds granted: asked again a second later");
    let refresh = g.texts();
    g.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{"access_token":"t"}}}}"#, id_of(&refresh[0])));
    assert!(g.events().contains(&SessionEvent::Reauthenticated { refresh_in: None }));
    assert!(g.s.poll_timeout().is_none());
    let margin = expiring().refresh_margin(secs(30));
    let mut h = authenticated(builder().authenticator(margin), 100);
    assert_eq!(h.advance(), secs(70));
}

#[test]
fn a_session_that_refreshes_replays_from_the_file_alone() {
    let tape = MemoryRecorder::new(1 << 20);
    let b = builder().authenticator(expiring().refresh_margin(secs(5))).recorder(tape.clone(), [4; 32]);
    let mut f = authenticated(b, 50);
    f.advance();
    let refresh = f.texts();
    grant(&mut f, &refresh[0], 50);
    f.events();
    let text = lines(&tape);
    assert!(!text.contains("hunter2"), "the refresh is redacted as the first auth is");
    assert!(text.contains("expires_in_at"), "the preset's refresh settings are kept");
    match replay_file(&text, HookRegistry::new(), f.t0).unwrap() {
        Replayed::Identical { .. } => {}
        other => panic!("{other:?}"),
    }
}
