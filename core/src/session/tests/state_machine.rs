//! A proptest state-machine test: random interleavings of commands, server
//! behaviour (refusals, upgrades, auth answers, responses, drops, closes),
//! and clock jumps, with the session's invariants checked after every step:
//! - at most one transport open or opening (the fake transport asserts it);
//! - every request ends exactly once, and all of them by the end;
//! - `poll_timeout` is never before the current time;
//! - nothing is emitted after `Closed`;
//! - the queue never exceeds its bound;
//! - on every connection the server sees auth before any subscription, never
//!   a duplicate subscription, and once open, exactly the session's set.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::presets::JsonRpcAuth;
use crate::{CloseCode, PingConfig, RateLimit};

const CHANNELS: [&str; 4] = ["trades.A", "trades.B", "book.A", "ticker.C"];

#[derive(Debug, Clone)]
enum Op {
    /// The server does the next thing a healthy server would: accept the
    /// transport, answer the upgrade, accept the authentication.
    Serve,
    Connect,
    Reconnect,
    /// Closes the session when the draw is 0 (one time in eight), so most runs go on.
    Close(u8),
    Send,
    Request(u64),
    Subscribe(usize),
    Unsubscribe(usize),
    AcceptTransport,
    RefuseTransport,
    Upgrade,
    AnswerAuth(bool),
    Answer(usize),
    Feed,
    Pong,
    ServerDrop,
    ServerClose,
    Advance,
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => Just(Op::Serve),
        1 => Just(Op::Connect),
        1 => Just(Op::Reconnect),
        1 => (0u8..8).prop_map(Op::Close),
        6 => Just(Op::Send),
        4 => (100u64..20_000).prop_map(Op::Request),
        2 => (0..CHANNELS.len()).prop_map(Op::Subscribe),
        1 => (0..CHANNELS.len()).prop_map(Op::Unsubscribe),
        1 => Just(Op::AcceptTransport),
        1 => Just(Op::RefuseTransport),
        1 => Just(Op::Upgrade),
        1 => prop::bool::weighted(0.5).prop_map(Op::AnswerAuth),
        6 => (0usize..4).prop_map(Op::Answer),
        3 => Just(Op::Feed),
        2 => Just(Op::Pong),
        1 => Just(Op::ServerDrop),
        1 => Just(Op::ServerClose),
        5 => Just(Op::Advance),
        3 => (1u64..5_000).prop_map(Op::Wait),
    ]
}

/// The fake server's view of one connection.
#[derive(Default)]
struct ServerView {
    authed: bool,
    auth_request: Option<u64>,
    subscribed: BTreeSet<String>,
    requests: Vec<u64>,
    last_ping: Option<Vec<u8>>,
}

struct Model {
    f: Fake,
    view: ServerView,
    issued: BTreeSet<u64>,
    outcomes: BTreeMap<u64, usize>,
    closed: bool,
    queue_capacity: usize,
}

fn channels_of(text: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    v["params"]["channels"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect()
}

impl Model {
    fn new(keep_queue: bool, rate_limited: bool) -> Self {
        let mut b = builder()
            .authenticator(JsonRpcAuth::new("public/auth", |_| "{}".to_owned()))
            .ping(Some(PingConfig { interval: secs(10), timeout: secs(3) }))
            .config(|c| {
                c.queue_capacity = 4;
                c.keep_queue_on_disconnect = keep_queue;
            });
        if rate_limited {
            b = b.rate_limit(RateLimit { capacity: 3, refill: 1, interval: ms(200) }, None);
        }
        Self {
            f: Fake::new(b),
            view: ServerView::default(),
            issued: BTreeSet::new(),
            outcomes: BTreeMap::new(),
            closed: false,
            queue_capacity: 4,
        }
    }

    fn apply(&mut self, op: &Op) {
        let f = &mut self.f;
        let now = f.now;
        match op {
            Op::Serve => {
                if f.transport == Some(false) {
                    f.accept_transport();
                } else if f.transport == Some(true) && f.key.is_some() {
                    f.upgrade();
                } else if let Some(id) = self.view.auth_request.take().filter(|_| f.upgraded) {
                    self.view.authed = true;
                    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#));
                }
            }
            Op::Connect => {
                let _ = f.s.connect(now);
            }
            Op::Reconnect => {
                let _ = f.s.reconnect(now);
            }
            Op::Close(0) => {
                let _ = f.s.close(CloseCode::Normal, "", now);
            }
            Op::Send => {
                let _ = f.s.send(Message::Text("user".into()), now);
            }
            Op::Request(timeout) => {
                if let Ok(id) = f.s.request("m", None, Some(ms(*timeout)), now) {
                    assert!(self.issued.insert(id), "ids are never reused");
                }
            }
            Op::Subscribe(i) => {
                let _ = f.s.subscribe(&[CHANNELS[*i]], now);
            }
            Op::Unsubscribe(i) => {
                let _ = f.s.unsubscribe(&[CHANNELS[*i]], now);
            }
            Op::AcceptTransport if f.transport == Some(false) => f.accept_transport(),
            Op::RefuseTransport if f.transport == Some(false) => f.refuse_transport(),
            Op::Upgrade if f.transport == Some(true) && f.key.is_some() => f.upgrade(),
            Op::AnswerAuth(ok) if f.upgraded => {
                if let Some(id) = self.view.auth_request.take() {
                    let body = if *ok { r#""result":{}"# } else { r#""error":{"code":1}"# };
                    self.view.authed = *ok;
                    f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{id},{body}}}"#));
                }
            }
            Op::Answer(k) if f.upgraded && !self.view.requests.is_empty() => {
                let id = self.view.requests.remove(k % self.view.requests.len());
                f.server_text(&format!(r#"{{"jsonrpc":"2.0","id":{id},"result":1}}"#));
            }
            Op::Feed if f.upgraded => f.server_text(r#"{"method":"subscription","params":{"data":{"id":5}}}"#),
            Op::Pong if f.upgraded => {
                if let Some(p) = self.view.last_ping.take() {
                    f.server_pong(&p);
                }
            }
            Op::ServerDrop if f.transport == Some(true) => f.server_drop(),
            Op::ServerClose if f.upgraded => f.input(b"\x88\x02\x03\xe9"),
            Op::Advance if f.s.poll_timeout().is_some() => {
                f.advance();
            }
            Op::Wait(ms_) => {
                let target = f.now + ms(*ms_);
                // Fire every deadline on the way, as a real loop would.
                while let Some(d) = f.s.poll_timeout().filter(|d| *d <= target) {
                    f.now = d.max(f.now);
                    f.s.handle_timeout(f.now);
                    f.step();
                }
                f.now = target;
            }
            _ => {}
        }
        self.f.step();
        self.observe();
    }

    /// Reads what the server got and what the session said, checking every invariant.
    fn observe(&mut self) {
        for got in self.f.got() {
            match got {
                // A new connection: the server's view starts again.
                Got::Upgrade { .. } => self.view = ServerView::default(),
                Got::Text(t) if t.starts_with(r#"{"jsonrpc""#) => {
                    let method = method_of(&t);
                    let id = id_of(&t);
                    match method.as_str() {
                        "public/auth" => {
                            assert!(!self.view.authed && self.view.subscribed.is_empty(), "auth comes first");
                            self.view.auth_request = Some(id);
                        }
                        "public/subscribe" => {
                            assert!(self.view.authed, "no subscription before auth is accepted: {t}");
                            for c in channels_of(&t) {
                                assert!(self.view.subscribed.insert(c.clone()), "{c} subscribed twice");
                            }
                        }
                        "public/unsubscribe" => {
                            for c in channels_of(&t) {
                                self.view.subscribed.remove(&c);
                            }
                        }
                        _ => self.view.requests.push(id),
                    }
                }
                Got::Ping(p) => self.view.last_ping = Some(p),
                _ => {}
            }
        }
        for event in self.f.events() {
            assert!(!self.closed, "event after Closed: {event:?}");
            match event {
                SessionEvent::Response { id, .. } | SessionEvent::RequestFailed { id, .. } => {
                    assert!(self.issued.contains(&id), "outcome for an unknown request {id}");
                    let n = self.outcomes.entry(id).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "request {id} ended twice");
                }
                SessionEvent::Closed { .. } => self.closed = true,
                _ => {}
            }
        }
        let s = &self.f.s;
        if let Some(deadline) = s.poll_timeout() {
            assert!(deadline >= self.f.now, "poll_timeout is in the past");
        }
        assert!(s.metrics(self.f.now).queue_len <= self.queue_capacity);
        if s.state() == SessionState::Open {
            let set: BTreeSet<String> = s.subscriptions().iter().cloned().collect();
            assert_eq!(self.view.subscribed, set, "the server has exactly the session's subscriptions");
        }
        if self.closed {
            assert_eq!((s.state(), s.poll_timeout(), self.f.transport), (SessionState::Closed, None, None));
        }
    }

    /// Closes the session and checks that every request ended exactly once.
    fn finish(&mut self) {
        let now = self.f.now;
        let _ = self.f.s.close(CloseCode::Normal, "", now);
        self.f.step();
        self.observe();
        // Each step fires the next deadline (request timeouts, then the close
        // timeout); a few dozen cover every timer a run can have armed.
        for _ in 0..64 {
            if self.closed {
                break;
            }
            self.apply(&Op::Advance);
        }
        assert!(self.closed, "the session closes within its close timeout");
        for id in &self.issued {
            assert_eq!(self.outcomes.get(id), Some(&1), "request {id} ended exactly once");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_interleavings_keep_every_invariant(
        ops in prop::collection::vec(op(), 1..80),
        keep_queue in any::<bool>(),
        rate_limited in any::<bool>(),
    ) {
        let mut model = Model::new(keep_queue, rate_limited);
        model.apply(&Op::Connect);
        for op in &ops {
            model.apply(op);
        }
        model.finish();
    }
}

#[test]
fn with_reconnect_off_the_first_disconnect_closes_the_session_whatever_the_policy() {
    struct Always;
    impl crate::hooks::ReconnectPolicy for Always {
        fn on_disconnect(&mut self, _: &DisconnectReason, _: u32) -> crate::hooks::Decision {
            crate::hooks::Decision::ReconnectNow
        }
    }
    for drop in [Fake::server_drop as fn(&mut Fake), |f: &mut Fake| f.input(&[0x88, 0x02, 0x03, 0xE8])] {
        let mut f = Fake::open(builder().reconnect(false).policy(Always));
        drop(&mut f);
        let events = f.events();
        assert!(matches!(events.first(), Some(SessionEvent::Disconnected { .. })), "{events:?}");
        assert_eq!(events.last(), Some(&SessionEvent::Closed { reason: CloseReason::Stopped }), "{events:?}");
        assert!(!events.iter().any(|e| matches!(e, SessionEvent::Reconnecting { .. })));
        assert_eq!((f.opened, f.s.state()), (1, SessionState::Closed));
    }
}
