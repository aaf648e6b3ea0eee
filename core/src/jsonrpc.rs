//! The session's default request and subscription codecs, JSON-RPC 2.0:
//! requests as `{"jsonrpc":"2.0","id":N,"method":..,"params":..}` matched on
//! a top-level numeric `id`, and one subscription request for every channel.
//! They sit with the session's parts, below the session that defaults to
//! them; `presets` offers them beside the other ready-made hooks.
//!
//! JSON is parsed with `serde_json`, and only after a cheap substring test
//! says a message could be a response, so a flood of market data costs a
//! scan or two per message, not a parse.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::Deserialize;

use crate::hooks::{Outbound, RequestCodec, SubscriptionCodec};
use crate::message::Message;
use crate::record::settings::HookSpec;
use crate::request_id::RequestId;

pub(crate) fn text(message: &Message) -> Option<&str> {
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

/// The compact openings of a JSON-RPC request or notification.
const METHOD_FIRST: &str = r#"{"method":"#;
const VERSION_THEN_METHOD: &str = r#"{"jsonrpc":"2.0","method":"#;

pub(crate) fn has(key: &Finder<'_>, text: &str) -> bool {
    key.find(text.as_bytes()).is_some()
}

pub(crate) fn json_string(s: &str) -> String {
    // Serialising a &str cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

/// JSON-RPC 2.0: `{"jsonrpc":"2.0","id":N,"method":..,"params":..}`,
/// matched on a top-level `id`, a number or a string (a caller's own ids
/// may be either; the session's are numbers).
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonRpc;

#[derive(Deserialize)]
pub(crate) struct Envelope {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub(crate) method: Option<String>,
}

pub(crate) fn envelope(message: &Message) -> Option<Envelope> {
    serde_json::from_str(text(message)?).ok()
}

/// A JSON id as a wire id: an unsigned integer or a string (JSON-RPC allows
/// both; other values are not ids the session could have sent).
fn wire_id(id: serde_json::Value) -> Option<RequestId> {
    match id {
        serde_json::Value::Number(n) => n.as_u64().map(RequestId::Number),
        serde_json::Value::String(s) => Some(RequestId::Text(s)),
        _ => None,
    }
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

    fn encode_with(&mut self, id: &RequestId, method: &str, params: Option<&str>) -> Option<Message> {
        match id {
            RequestId::Number(n) => Some(self.encode(*n, method, params)),
            RequestId::Text(t) => {
                let mut out = format!(r#"{{"jsonrpc":"2.0","id":{},"method":{}"#, json_string(t), json_string(method));
                if let Some(params) = params {
                    out.push_str(r#","params":"#);
                    out.push_str(params);
                }
                out.push('}');
                Some(Message::Text(out.into()))
            }
        }
    }

    fn response_id(&self, message: &Message) -> Option<u64> {
        match self.response_key(message)? {
            RequestId::Number(n) => Some(n),
            RequestId::Text(_) => None,
        }
    }

    fn response_key(&self, message: &Message) -> Option<RequestId> {
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
        wire_id(serde_json::from_str::<Envelope>(t).ok()?.id?)
    }

    fn request_id(&self, message: &Message) -> Option<RequestId> {
        wire_id(envelope(message)?.id?)
    }

    fn is_error(&self, response: &Message) -> bool {
        envelope(response).is_some_and(|e| e.error.is_some())
    }

    fn check_params(&self, params: &str) -> Result<(), String> {
        serde_json::from_str::<serde::de::IgnoredAny>(params).map(|_| ()).map_err(|e| e.to_string())
    }

    fn recorded_as(&self) -> Option<HookSpec> {
        Some(HookSpec::new("JsonRpc"))
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
    fn recorded_as(&self) -> Option<HookSpec> {
        let spec = HookSpec::new("JsonRpcSubscriptions").setting("subscribe_method", &*self.subscribe_method);
        Some(spec.setting("unsubscribe_method", &*self.unsubscribe_method))
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
}
