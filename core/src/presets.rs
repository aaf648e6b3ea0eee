//! Ready-made hooks: JSON-RPC 2.0 requests, subscriptions and authentication,
//! the JSON `{"op":"ping"}` heartbeat and Deribit's `test_request` heartbeat,
//! and Deribit's credit costs for the rate limit.
//!
//! JSON is parsed with `serde_json`, and only after a cheap substring test
//! says a message could be of interest, so a flood of market data costs a
//! scan or two per message, not a parse.

use std::borrow::Cow;
use std::sync::LazyLock;
use std::time::Duration;

use memchr::memmem::Finder;
use serde::Deserialize;

use crate::hooks::{AppHeartbeat, AuthCheck, Authenticator, Beat, Outbound, RequestCodec, SubscriptionCodec};
use crate::message::Message;

fn text(message: &Message) -> Option<&str> {
    match message {
        Message::Text(t) => Some(t.as_str()),
        Message::Binary(_) => None,
    }
}

// JSON keys in quotes, with their searchers prepared once: `str::contains`
// builds a searcher on every call, which cost more than the scan itself on
// short messages (about 250 instructions a call on a 100-byte notification).
static RESULT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"result\""));
static ERROR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"error\""));
static ID: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"id\""));
static HEARTBEAT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"heartbeat\""));

/// The compact openings of a JSON-RPC request or notification.
const METHOD_FIRST: &str = r#"{"method":"#;
const VERSION_THEN_METHOD: &str = r#"{"jsonrpc":"2.0","method":"#;

fn has(key: &Finder<'_>, text: &str) -> bool {
    key.find(text.as_bytes()).is_some()
}

fn json_string(s: &str) -> String {
    // Serialising a &str cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

/// JSON-RPC 2.0: `{"jsonrpc":"2.0","id":N,"method":..,"params":..}`, matched on a top-level numeric `id`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonRpc;

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    method: Option<String>,
}

fn envelope(message: &Message) -> Option<Envelope> {
    serde_json::from_str(text(message)?).ok()
}

impl RequestCodec for JsonRpc {
    fn encode(&mut self, id: u64, method: &str, params: Option<&str>) -> Message {
        let mut out = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":{}"#, json_string(method));
        if let Some(params) = params {
            out.push_str(r#","params":"#);
            out.push_str(params);
        }
        out.push('}');
        Message::Text(out.into())
    }

    fn response_id(&self, message: &Message) -> Option<u64> {
        let t = text(message)?;
        // A message that opens with its method is a request or a notification
        // (JSON-RPC 2.0 §4, §5; servers that echo the method in responses put
        // the id first). Most feed messages are notifications written so,
        // which a prefix compare sees for a tenth of the cost of the scans below.
        if t.starts_with(METHOD_FIRST) || t.starts_with(VERSION_THEN_METHOD) {
            return None;
        }
        // A response has an id and a result or an error; most feed messages have neither.
        if !(has(&RESULT, t) || has(&ERROR, t)) || !has(&ID, t) {
            return None;
        }
        // Some servers repeat the method in their responses (`{"id":1,"method":..,"result":..}`):
        // an id with a result or an error is a response wherever `method` stands after it.
        serde_json::from_str::<Envelope>(t).ok()?.id?.as_u64()
    }

    fn is_error(&self, response: &Message) -> bool {
        envelope(response).is_some_and(|e| e.error.is_some())
    }

    fn check_params(&self, params: &str) -> Result<(), String> {
        serde_json::from_str::<serde::de::IgnoredAny>(params).map(|_| ()).map_err(|e| e.to_string())
    }
}

/// JSON-RPC subscriptions: one request carrying every channel, as
/// `{"method":"public/subscribe","params":{"channels":[..]}}`.
#[derive(Debug, Clone)]
pub struct JsonRpcSubscriptions {
    /// The subscribe method, `public/subscribe` by default. A `Cow`: the
    /// defaults cost an idle client no allocation.
    pub subscribe_method: Cow<'static, str>,
    /// The unsubscribe method, `public/unsubscribe` by default.
    pub unsubscribe_method: Cow<'static, str>,
}

impl Default for JsonRpcSubscriptions {
    fn default() -> Self {
        Self {
            subscribe_method: Cow::Borrowed("public/subscribe"),
            unsubscribe_method: Cow::Borrowed("public/unsubscribe"),
        }
    }
}

fn channels_params(channels: &[String]) -> String {
    // Serialising strings cannot fail.
    format!(r#"{{"channels":{}}}"#, serde_json::to_string(channels).unwrap_or_default())
}

impl SubscriptionCodec for JsonRpcSubscriptions {
    fn subscribe(&mut self, channels: &[String]) -> Vec<Outbound> {
        vec![Outbound::Request { method: self.subscribe_method.to_string(), params: Some(channels_params(channels)) }]
    }
    fn unsubscribe(&mut self, channels: &[String]) -> Vec<Outbound> {
        vec![Outbound::Request { method: self.unsubscribe_method.to_string(), params: Some(channels_params(channels)) }]
    }
}

/// Authentication by one JSON-RPC request (Deribit's `public/auth`, say);
/// accepted unless the response carries an `error`.
pub struct JsonRpcAuth {
    method: String,
    params: Box<dyn FnMut(u32) -> String + Send>,
}

impl JsonRpcAuth {
    /// `params` builds the parameters afresh for each attempt (a signature over a timestamp, say).
    pub fn new(method: impl Into<String>, params: impl FnMut(u32) -> String + Send + 'static) -> Self {
        Self { method: method.into(), params: Box::new(params) }
    }
}

impl std::fmt::Debug for JsonRpcAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonRpcAuth").field("method", &self.method).finish_non_exhaustive()
    }
}

impl Authenticator for JsonRpcAuth {
    fn start(&mut self, attempt: u32) -> Outbound {
        Outbound::Request { method: self.method.clone(), params: Some((self.params)(attempt)) }
    }
    fn check(&mut self, message: &Message, is_error: bool) -> AuthCheck {
        if is_error {
            AuthCheck::Rejected(text(message).unwrap_or("binary response").to_owned())
        } else {
            AuthCheck::Accepted
        }
    }
}

/// The JSON op heartbeat: we send `{"op":"ping"}`, the server answers `{"op":"pong"}`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonOpHeartbeat;

#[derive(Deserialize)]
struct Op<'a> {
    #[serde(borrow)]
    op: Option<&'a str>,
}

impl AppHeartbeat for JsonOpHeartbeat {
    fn ping(&mut self) -> Option<Message> {
        Some(Message::Text(r#"{"op":"ping"}"#.into()))
    }
    fn classify(&mut self, message: &Message) -> Beat {
        match text(message) {
            Some(t) if t.len() < 256 && t.contains("pong") => match serde_json::from_str::<Op<'_>>(t) {
                Ok(Op { op: Some("pong") }) => Beat::Pong,
                _ => Beat::Other,
            },
            _ => Beat::Other,
        }
    }
}

/// Deribit's heartbeat: `public/set_heartbeat` after connect; the server's
/// `heartbeat` notifications prove life, and a `test_request` is answered
/// with a `public/test` request.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeribitHeartbeat;

#[derive(Deserialize)]
struct HeartbeatParams {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Notification {
    method: Option<String>,
    params: Option<HeartbeatParams>,
}

impl AppHeartbeat for DeribitHeartbeat {
    fn setup(&mut self, interval: Duration) -> Vec<Outbound> {
        // Deribit takes whole seconds, at least 10.
        let secs = interval.as_secs().max(10);
        vec![Outbound::Request {
            method: "public/set_heartbeat".into(),
            params: Some(format!(r#"{{"interval":{secs}}}"#)),
        }]
    }
    fn server_driven(&self) -> bool {
        true
    }
    fn ping(&mut self) -> Option<Message> {
        None
    }
    fn classify(&mut self, message: &Message) -> Beat {
        let Some(t) = text(message) else { return Beat::Other };
        if !has(&HEARTBEAT, t) {
            return Beat::Other;
        }
        match serde_json::from_str::<Notification>(t) {
            Ok(Notification { method: Some(m), params: Some(p) }) if m == "heartbeat" => {
                if p.kind == "test_request" {
                    Beat::Probe(Outbound::Request { method: "public/test".into(), params: None })
                } else {
                    Beat::ServerBeat
                }
            }
            _ => Beat::Other,
        }
    }
}

/// Deribit's credit cost of a JSON-RPC message, for the rate limit:
/// `public/*` 1, `private/get_*` 5, `private/set_*` 10, `private/buy|sell` 15, else 1.
pub fn deribit_cost(message: &Message) -> u32 {
    let method = envelope(message).and_then(|e| e.method).unwrap_or_default();
    let name = method.strip_prefix("private/").unwrap_or("");
    if name.starts_with("buy") || name.starts_with("sell") {
        15
    } else if name.starts_with("set_") {
        10
    } else if name.starts_with("get_") {
        5
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Message {
        Message::Text(s.into())
    }

    #[test]
    fn jsonrpc_encodes_and_matches_only_top_level_ids() {
        let mut c = JsonRpc;
        assert_eq!(
            c.encode(7, "public/get_time", Some(r#"{"a":1}"#)),
            t(r#"{"jsonrpc":"2.0","id":7,"method":"public/get_time","params":{"a":1}}"#)
        );
        assert_eq!(c.encode(1, "we\"ird", None), t(r#"{"jsonrpc":"2.0","id":1,"method":"we\"ird"}"#));
        assert_eq!(c.response_id(&t(r#"{"jsonrpc":"2.0","id":7,"result":1}"#)), Some(7));
        assert_eq!(c.response_id(&t(r#"{"result":{"id":3},"id":9}"#)), Some(9));
        assert_eq!(c.response_id(&t(r#"{"method":"subscription","params":{"data":{"id":3}}}"#)), None);
        // A message that opens with its method is a request or notification.
        for m in [
            r#"{"jsonrpc":"2.0","method":"s","params":{"result":1,"id":3}}"#,
            r#"{"jsonrpc":"2.0","method":"m","id":5,"result":1}"#,
            r#"{"method":"m","id":5,"error":{}}"#,
        ] {
            assert_eq!(c.response_id(&t(m)), None, "{m}");
        }
        // A response that repeats its method after the id still matches.
        assert_eq!(c.response_id(&t(r#"{"id":11,"method":"public/get-book","code":0,"result":{}}"#)), Some(11));
        assert_eq!(c.response_id(&t(r#"{ "id":5, "result":1, "method":"m" }"#)), Some(5));
        assert_eq!(c.response_id(&t(r#"{"jsonrpc":"2.0","id":5,"result":{"method":"m"}}"#)), Some(5));
        assert_eq!(c.response_id(&t(r#" {"jsonrpc":"2.0","id":6,"error":{"code":1}}"#)), Some(6));
        assert_eq!(c.response_id(&t(r#"{"result":{"id":3}}"#)), None, "nested id only");
        assert_eq!(c.response_id(&t(r#"{"id":"abc","result":1}"#)), None, "ids we issue are numbers");
        assert_eq!(c.response_id(&t(r#"{"id":1,"result":"#)), None, "truncated JSON");
        assert_eq!(c.response_id(&Message::Binary(bytes::Bytes::from_static(b"{\"id\":1}"))), None);
        assert!(c.is_error(&t(r#"{"id":1,"error":{"code":-32601}}"#)));
        assert!(!c.is_error(&t(r#"{"id":1,"result":null}"#)));
        assert!(c.check_params(r#"{"x":[1,2]}"#).is_ok());
        assert!(c.check_params(r#"{"x":"#).is_err());
    }

    #[test]
    fn subscriptions_go_in_one_request() {
        let mut s = JsonRpcSubscriptions::default();
        let chans = vec!["trades.BTC-PERPETUAL.raw".to_owned(), "book.ETH".to_owned()];
        assert_eq!(
            s.subscribe(&chans),
            vec![Outbound::Request {
                method: "public/subscribe".into(),
                params: Some(r#"{"channels":["trades.BTC-PERPETUAL.raw","book.ETH"]}"#.into())
            }]
        );
    }

    #[test]
    fn heartbeat_presets_classify_their_traffic() {
        let mut op = JsonOpHeartbeat;
        assert_eq!(op.ping(), Some(t(r#"{"op":"ping"}"#)));
        assert_eq!(op.classify(&t(r#"{"op":"pong"}"#)), Beat::Pong);
        assert_eq!(op.classify(&t(r#"{"op":"trade","note":"pong"}"#)), Beat::Other);
        let mut d = DeribitHeartbeat;
        let probe = t(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#);
        assert_eq!(d.classify(&probe), Beat::Probe(Outbound::Request { method: "public/test".into(), params: None }));
        let beat = t(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}"#);
        assert_eq!(d.classify(&beat), Beat::ServerBeat);
        assert_eq!(d.classify(&t(r#"{"method":"subscription","params":{"channel":"heartbeat"}}"#)), Beat::Other);
        assert_eq!(
            d.setup(Duration::from_secs(30)),
            vec![Outbound::Request {
                method: "public/set_heartbeat".into(),
                params: Some(r#"{"interval":30}"#.into())
            }]
        );
    }

    #[test]
    fn deribit_costs() {
        let m = |method: &str| JsonRpc.encode(1, method, None);
        assert_eq!(deribit_cost(&m("public/get_time")), 1);
        assert_eq!(deribit_cost(&m("private/get_positions")), 5);
        assert_eq!(deribit_cost(&m("private/set_heartbeat")), 10);
        assert_eq!(deribit_cost(&m("private/buy")), 15);
        assert_eq!(deribit_cost(&m("private/sell")), 15);
        assert_eq!(deribit_cost(&t("not json")), 1);
    }
}
