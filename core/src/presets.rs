//! Ready-made hooks: JSON-RPC 2.0 requests, subscriptions and authentication,
//! the JSON `{"op":"ping"}` heartbeat and Deribit's `test_request` heartbeat,
//! and Deribit's credit costs for the rate limit.
//!
//! JSON is parsed with `serde_json`, and only after a cheap substring test
//! says a message could be of interest, so a flood of market data costs a
//! scan or two per message, not a parse.

use std::sync::LazyLock;
use std::time::Duration;

use memchr::memmem::Finder;
use serde::Deserialize;

use crate::hooks::{AppHeartbeat, AuthCheck, Authenticator, Beat, Outbound};
use crate::jsonrpc::{envelope, has, text};
pub use crate::jsonrpc::{JsonRpc, JsonRpcSubscriptions};
use crate::message::Message;
use crate::record::settings::HookSpec;

/// The name under which a replay rebuilds [`deribit_cost`] (see there).
pub const DERIBIT_COST: &str = "deribit_cost";

static HEARTBEAT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"heartbeat\""));

/// Authentication by one JSON-RPC request (Deribit's `public/auth`, say);
/// accepted unless the response carries an `error`.
///
/// A recording keeps its method, never its parameters (the credentials): the
/// message is recorded redacted. A replay from the file
/// (`replay::rebuild`) authenticates with the method and no parameters,
/// which is all an identical replay needs: a redacted message is compared by
/// its presence only, the session numbers the request as it did, and the
/// server's recorded answer is what accepts or refuses it.
///
/// Credentials that expire are refreshed on the open link before they do:
/// every [`refresh_every`](Self::refresh_every), or when the lifetime the
/// server grants at [`expires_in_at`](Self::expires_in_at) is nearly spent.
/// The refresh sends the same request, its parameters built afresh.
pub struct JsonRpcAuth {
    method: String,
    /// `None` at replay: the request goes without parameters.
    params: Option<Box<dyn FnMut(u32) -> String + Send>>,
    expiry: Expiry,
}

/// When a [`JsonRpcAuth`]'s credentials expire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Expiry {
    /// Never: authenticated once per connection.
    #[default]
    Never,
    /// Refreshed at this interval.
    Every(Duration),
    /// The server says how long they last, in seconds at this JSON pointer
    /// of its answer; refreshed `margin` before (`None`: a tenth of it).
    Granted { pointer: String, margin: Option<Duration> },
}

impl JsonRpcAuth {
    /// `params` builds the parameters afresh for each attempt (a signature over a timestamp, say).
    pub fn new(method: impl Into<String>, params: impl FnMut(u32) -> String + Send + 'static) -> Self {
        Self { method: method.into(), params: Some(Box::new(params)), expiry: Expiry::Never }
    }

    /// Authenticates again on the open link at this interval (credentials
    /// valid for a fixed time, Binance's listen key kept alive, say).
    pub fn refresh_every(mut self, interval: Duration) -> Self {
        self.expiry = Expiry::Every(interval);
        self
    }

    /// Reads how long the credentials last from the server's answer: whole
    /// seconds at this JSON pointer (Deribit's `/result/expires_in`), and
    /// authenticates again on the open link when a tenth of that is left
    /// (see [`refresh_margin`](Self::refresh_margin)). An answer without it
    /// is taken as credentials that do not expire.
    pub fn expires_in_at(mut self, pointer: &str) -> Self {
        let margin = match &self.expiry {
            Expiry::Granted { margin, .. } => *margin,
            _ => None,
        };
        self.expiry = Expiry::Granted { pointer: pointer.to_owned(), margin };
        self
    }

    /// With [`expires_in_at`](Self::expires_in_at): authenticates again this
    /// long before the credentials expire, rather than when a tenth of their
    /// lifetime is left.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        if let Expiry::Granted { margin: m, .. } = &mut self.expiry {
            *m = Some(margin);
        }
        self
    }

    /// The authenticator a replay rebuilds from a recording: `method`, with
    /// no parameters. The shortest message it could send: the recorded one
    /// was at least as long, so the write budget's count of a transport that
    /// took whole transmits reaches zero at the same reports (see the
    /// replay's module docs).
    #[cfg(feature = "record")]
    pub(crate) fn replaying(method: impl Into<String>) -> Self {
        Self { method: method.into(), params: None, expiry: Expiry::Never }
    }

    /// The refresh settings a recording kept (see `recorded_as`).
    #[cfg(feature = "record")]
    pub(crate) fn with_recorded_expiry(
        mut self,
        settings: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let nanos = |key: &str| -> Result<Option<Duration>, String> {
            settings
                .get(key)
                .map(|v| v.parse::<u64>().map(Duration::from_nanos).map_err(|e| format!("{key} {v:?}: {e}")))
                .transpose()
        };
        if let Some(every) = nanos("refresh_every")? {
            self = self.refresh_every(every);
        }
        if let Some(pointer) = settings.get("expires_in_at") {
            self = self.expires_in_at(pointer);
        }
        if let Some(margin) = nanos("refresh_margin")? {
            self = self.refresh_margin(margin);
        }
        Ok(self)
    }
}

impl std::fmt::Debug for JsonRpcAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonRpcAuth")
            .field("method", &self.method)
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

impl Authenticator for JsonRpcAuth {
    fn start(&mut self, attempt: u32) -> Outbound {
        Outbound::Request { method: self.method.clone(), params: self.params.as_mut().map(|params| params(attempt)) }
    }
    fn check(&mut self, message: &Message, is_error: bool) -> AuthCheck {
        if is_error {
            AuthCheck::Rejected(text(message).unwrap_or("binary response").to_owned())
        } else {
            AuthCheck::Accepted
        }
    }
    fn refresh_after(&mut self, accepted: &Message) -> Option<Duration> {
        match &self.expiry {
            Expiry::Never => None,
            Expiry::Every(interval) => Some(*interval),
            Expiry::Granted { pointer, margin } => {
                use crate::json_pointer::{find_in_str, Pointer, Scalar};
                let [Some(Scalar::Unsigned(secs))] = find_in_str(text(accepted)?, [&Pointer::parse(pointer)])? else {
                    return None;
                };
                let lifetime = Duration::from_secs(secs);
                Some(lifetime.saturating_sub(margin.unwrap_or(lifetime / 10)))
            }
        }
    }
    fn recorded_as(&self) -> Option<HookSpec> {
        let spec = HookSpec::new("JsonRpcAuth").setting("method", &self.method);
        let nanos = |d: &Duration| d.as_nanos().to_string();
        Some(match &self.expiry {
            Expiry::Never => spec,
            Expiry::Every(every) => spec.setting("refresh_every", nanos(every)),
            Expiry::Granted { pointer, margin: None } => spec.setting("expires_in_at", pointer),
            Expiry::Granted { pointer, margin: Some(margin) } => {
                spec.setting("expires_in_at", pointer).setting("refresh_margin", nanos(margin))
            }
        })
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
    fn recorded_as(&self) -> Option<HookSpec> {
        Some(HookSpec::new("JsonOpHeartbeat"))
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
    fn recorded_as(&self) -> Option<HookSpec> {
        Some(HookSpec::new("DeribitHeartbeat"))
    }
}

/// Deribit's credit cost of a JSON-RPC message, for the rate limit:
/// `public/*` 1, `private/get_*` 5, `private/set_*` 10, `private/buy|sell` 15, else 1.
///
/// A function hook says nothing of itself: for a recording to name it, name
/// it [`DERIBIT_COST`] (`name_hook(Hook::Cost, presets::DERIBIT_COST)`),
/// which a replay rebuilds as this function without a registry entry.
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
    use crate::hooks::RequestCodec;

    fn t(s: &str) -> Message {
        Message::Text(s.into())
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
