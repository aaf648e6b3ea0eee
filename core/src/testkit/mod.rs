//! A test kit for code built on [`Session`](crate::Session): a scripted fake
//! server and a fake clock, with no network and no real time. Behind the
//! `testkit` cargo feature (off by default):
//!
//! ```toml
//! [dev-dependencies]
//! wslink-core = { version = "0.1", features = ["testkit"] }
//! ```
//!
//! [`FakeServer`] owns a session, a fake clock and the fake transport. The
//! test plays the server: it accepts or refuses the transport and the
//! upgrade, expects what the client sent ([`expect_sent`](FakeServer::expect_sent),
//! [`expect_request`](FakeServer::expect_request)), answers, sends, pings,
//! drops the connection ([`simulate_disconnect`](FakeServer::simulate_disconnect))
//! or turns it into a black hole ([`blackhole`](FakeServer::blackhole)). It
//! moves the clock: [`advance`](FakeServer::advance) jumps to the session's
//! next deadline and fires it, [`advance_by`](FakeServer::advance_by) lets a
//! span pass, firing every deadline on the way at its own instant. It reads
//! what the session reported: [`next_event`](FakeServer::next_event),
//! [`events`](FakeServer::events), [`expect_event`](FakeServer::expect_event).
//!
//! Invariants: every call returns with the session's actions carried out, so
//! what the client sent and the events are up to date; the clock moves only
//! when the test says, never backwards, and never past a deadline without
//! firing it; the same seed gives the same run (masking keys, nonces, jitter).
//! As a server does, the fake one answers pings with pongs and a close frame
//! with its own ([`set_auto_answer`](FakeServer::set_auto_answer) turns that off).
//!
//! It is a test helper, so a failed expectation or a step the current state
//! does not allow panics with a message that says what was expected and what
//! there was (each method's `# Panics` section says when); the session it
//! drives never panics.
//!
//! A session with an authenticator and a subscription, through a dropped
//! connection and back:
//!
//! ```
//! # // A doctest of a module behind a feature runs only when the feature is on:
//! # // `cargo test -p wslink-core --features testkit --doc`. CI's `cargo test --workspace`
//! # // turns it on through wslink-tests, which depends on wslink-core with "testkit".
//! use std::time::{Duration, Instant};
//! use wslink_core::testkit::FakeServer;
//! use wslink_core::{presets, Session, SessionEvent, SessionState};
//!
//! let builder = Session::builder("wss://exchange.test/ws/api/v2")?
//!     .authenticator(presets::JsonRpcAuth::new("public/auth", |_| r#"{"client_id":"id"}"#.to_owned()));
//! // The core never reads the clock: the test hands the fake clock its origin.
//! let mut kit = FakeServer::new(builder, Instant::now())?;
//! kit.command(|s, now| s.subscribe(&["trades.BTC"], now))?;
//!
//! kit.connect();
//! assert_eq!(kit.endpoint().map(|e| (e.host.as_str(), e.port, e.tls)), Some(("exchange.test", 443, true)));
//! kit.accept(); // the transport opens and the upgrade is answered with 101
//! let auth = kit.expect_request("public/auth");
//! assert_eq!(kit.state(), SessionState::Authenticating, "nothing else before auth succeeds");
//! kit.answer(&auth, r#"{"access_token":"t"}"#);
//! let subscribe = kit.expect_request("public/subscribe");
//! assert!(subscribe.as_bytes().windows(10).any(|w| w == b"trades.BTC"));
//! kit.answer(&subscribe, r#"["trades.BTC"]"#);
//! kit.expect_event(|e| matches!(e, SessionEvent::Subscribed { .. }));
//!
//! kit.simulate_disconnect(); // the server drops TCP
//! kit.expect_event(|e| matches!(e, SessionEvent::Disconnected { .. }));
//! let waited = kit.advance(); // through the backoff: the session asks for a transport again
//! assert!(waited <= Duration::from_millis(250), "the first backoff step, jittered");
//! kit.accept();
//! let auth = kit.expect_request("public/auth"); // authentication first, again
//! kit.answer(&auth, r#"{"access_token":"t2"}"#);
//! kit.expect_request("public/subscribe"); // then the resubscribe
//! assert_eq!(kit.state(), SessionState::Open);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod messages;
mod server;
#[cfg(test)]
mod tests;
mod wire;

use bytes::Bytes;

pub use server::FakeServer;

use crate::{CloseCode, Message};

/// Something the client wrote, as the fake server decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sent {
    /// The upgrade request of a new transport.
    Upgrade(UpgradeRequest),
    /// A text or binary message (fragments joined).
    Message(Message),
    /// A ping, with its payload.
    Ping(Bytes),
    /// A pong, with its payload.
    Pong(Bytes),
    /// A close frame, with its code and reason if it carried them.
    Close(Option<(CloseCode, String)>),
}

/// The client's upgrade request: its request line and headers, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpgradeRequest {
    /// `GET /path HTTP/1.1`.
    pub request_line: String,
    /// Every header as written, values trimmed.
    pub headers: Vec<(String, String)>,
}

impl UpgradeRequest {
    /// The value of the first header called `name` (ASCII case ignored).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The request target: `/path?query`.
    pub fn path(&self) -> &str {
        self.request_line.split(' ').nth(1).unwrap_or_default()
    }
}

/// Where the session asked to connect ([`Action::OpenTransport`](crate::Action::OpenTransport)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host to resolve.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// Whether TLS was asked for (`wss`).
    pub tls: bool,
}

/// The link between the client and the fake server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Link {
    /// No transport: none asked for yet, or the last one closed.
    Down,
    /// The session asked for a transport; the test accepts or refuses it.
    Opening,
    /// The transport is open; the upgrade is not answered yet.
    Upgrading,
    /// Upgraded: messages flow both ways.
    Open,
    /// Open, but nothing flows either way ([`FakeServer::blackhole`]).
    Blackholed,
}

/// JSON-RPC 2.0 helpers for scripts: read a request's id and method, write
/// the answer. They match what the default codec ([`presets::JsonRpc`](crate::presets::JsonRpc)) writes.
pub mod jsonrpc {
    use crate::Message;

    fn parse(message: &Message) -> Option<serde_json::Value> {
        match message {
            Message::Text(t) => serde_json::from_str(t.as_str()).ok(),
            Message::Binary(_) => None,
        }
    }

    /// The numeric `id` of a JSON-RPC text message, if it has one.
    pub fn id(message: &Message) -> Option<u64> {
        parse(message)?.get("id")?.as_u64()
    }

    /// The `method` of a JSON-RPC text message, if it has one.
    pub fn method(message: &Message) -> Option<String> {
        Some(parse(message)?.get("method")?.as_str()?.to_owned())
    }

    /// The `params` of a JSON-RPC text message as compact JSON text, if it has them.
    pub fn params(message: &Message) -> Option<String> {
        Some(parse(message)?.get("params")?.to_string())
    }

    /// A success response: `{"jsonrpc":"2.0","id":<id>,"result":<result>}`, `result` being JSON text.
    pub fn result(id: u64, result: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)
    }

    /// An error response: `{"jsonrpc":"2.0","id":<id>,"error":<error>}`, `error` being JSON text.
    pub fn error(id: u64, error: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{error}}}"#)
    }
}
