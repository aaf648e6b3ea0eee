//! The points where a user shapes a session: how requests are encoded and
//! matched, how subscriptions and authentication are spoken, what an
//! application heartbeat looks like, and what to do when the link fails.
//!
//! Each is a small trait with a JSON-RPC 2.0 preset in `presets`; the session
//! calls them and keeps every decision about timing and state to itself.

use std::time::Duration;

use crate::message::Message;
use crate::reasons::DisconnectReason;
pub use crate::reasons::SessionError;
use crate::record::settings::HookSpec;
use crate::request_id::RequestId;

/// Something the session sends on a hook's behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outbound {
    /// A message sent as it is.
    Message(Message),
    /// A request: the session gives it an id, encodes it with the
    /// [`RequestCodec`] and matches the response.
    Request {
        /// The method name, for example `public/subscribe`.
        method: String,
        /// The parameters as JSON text, if any.
        params: Option<String>,
    },
}

/// Encodes requests and finds the request id in responses.
pub trait RequestCodec: Send {
    /// The message carrying request `id`.
    fn encode(&mut self, id: u64, method: &str, params: Option<&str>) -> Message;
    /// The id of the request this message answers, if it is a response.
    /// Called for incoming messages only while requests are pending or
    /// recently ended, so it must be cheap to say "not a response".
    fn response_id(&self, message: &Message) -> Option<u64>;
    /// Whether a response reports a failure (JSON-RPC's `error` member).
    fn is_error(&self, response: &Message) -> bool;
    /// Checks request parameters before they are queued; `Err` names the problem.
    fn check_params(&self, params: &str) -> Result<(), String> {
        let _ = params;
        Ok(())
    }
    /// The message carrying a request whose wire id is `id`: the caller's own
    /// (a number or a text) or the session's. `None` when this codec cannot
    /// write such an id (the request is then refused with
    /// `CommandError::UnsupportedRequestId`). The default writes numbers
    /// through [`encode`](Self::encode) and refuses text.
    fn encode_with(&mut self, id: &RequestId, method: &str, params: Option<&str>) -> Option<Message> {
        match id {
            RequestId::Number(n) => Some(self.encode(*n, method, params)),
            RequestId::Text(_) => None,
        }
    }
    /// The wire id of the request this message answers, if it is a
    /// response: a number or a text. The default reads numbers through
    /// [`response_id`](Self::response_id).
    fn response_key(&self, message: &Message) -> Option<RequestId> {
        self.response_id(message).map(RequestId::Number)
    }
    /// The id a caller put in a request message of its own making
    /// (`Session::request_message`), if this codec can read one. Default: none.
    fn request_id(&self, message: &Message) -> Option<RequestId> {
        let _ = message;
        None
    }
    /// Whether this codec makes requests at all: `false` only for
    /// [`NoCodec`], the session's codec when none is set and the `json`
    /// feature is off (`request` then answers `CommandError::NoRequestCodec`).
    fn encodes(&self) -> bool {
        true
    }
    /// How a recording names this hook, so that a replay rebuilds it from
    /// the file (`replay::rebuild`): wslink's presets answer their name and
    /// settings. The default, `None`, records it as unnamed, which a replay
    /// from the file refuses, unless the builder names it
    /// (`SessionBuilder::name_hook`).
    fn recorded_as(&self) -> Option<HookSpec> {
        None
    }
}

/// Builds the messages that subscribe to and unsubscribe from channels.
/// One call may carry many channels, as one `public/subscribe` does.
pub trait SubscriptionCodec: Send {
    /// Messages that subscribe to `channels`.
    fn subscribe(&mut self, channels: &[String]) -> Vec<Outbound>;
    /// Messages that unsubscribe from `channels`.
    fn unsubscribe(&mut self, channels: &[String]) -> Vec<Outbound>;
    /// Whether this codec speaks subscriptions at all: `false` only for
    /// [`NoCodec`] (`subscribe` then answers `CommandError::NoSubscriptionCodec`).
    fn speaks(&self) -> bool {
        true
    }
    /// How a recording names this hook, so that a replay rebuilds it from
    /// the file (`replay::rebuild`): wslink's presets answer their name and
    /// settings. The default, `None`, records it as unnamed, which a replay
    /// from the file refuses, unless the builder names it
    /// (`SessionBuilder::name_hook`).
    fn recorded_as(&self) -> Option<HookSpec> {
        None
    }
}

/// The codec of a session that has none: with the `json` feature off and no
/// `request_codec` or `subscription_codec` set, requests and subscriptions
/// are refused at once with a typed error instead of going out in a format
/// the server does not speak.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCodec;

impl RequestCodec for NoCodec {
    fn encode(&mut self, _id: u64, _method: &str, _params: Option<&str>) -> Message {
        // Never called: the session asks `encodes` first.
        Message::Binary(bytes::Bytes::new())
    }
    fn response_id(&self, _message: &Message) -> Option<u64> {
        None
    }
    fn is_error(&self, _response: &Message) -> bool {
        false
    }
    fn encodes(&self) -> bool {
        false
    }
    fn recorded_as(&self) -> Option<HookSpec> {
        Some(HookSpec::new("NoCodec"))
    }
}

impl SubscriptionCodec for NoCodec {
    fn subscribe(&mut self, _channels: &[String]) -> Vec<Outbound> {
        Vec::new()
    }
    fn unsubscribe(&mut self, _channels: &[String]) -> Vec<Outbound> {
        Vec::new()
    }
    fn speaks(&self) -> bool {
        false
    }
    fn recorded_as(&self) -> Option<HookSpec> {
        Some(HookSpec::new("NoCodec"))
    }
}

/// What an authenticator makes of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthCheck {
    /// Not an answer to the authentication.
    NotMine,
    /// Authenticated: the session opens.
    Accepted,
    /// Refused, with the server's reason.
    Rejected(String),
}

/// The authentication step run after every upgrade, before subscriptions.
pub trait Authenticator: Send {
    /// What to send to authenticate; called afresh for every connection.
    fn start(&mut self, attempt: u32) -> Outbound;
    /// Judges a message. When `start` returned a request, only its matched
    /// response is passed (with `is_error` from the codec); otherwise every message is.
    fn check(&mut self, message: &Message, is_error: bool) -> AuthCheck;
    /// When to authenticate again on the open link, given `accepted` (the
    /// message that accepted the credentials: the answer to `start`, or to
    /// `refresh`): some time before the credentials expire. `None`, the
    /// default: they do not expire, and the session authenticates once per
    /// connection. The session waits at least a second (a server that
    /// grants no time at all does not make it ask in a loop).
    fn refresh_after(&mut self, accepted: &Message) -> Option<Duration> {
        let _ = accepted;
        None
    }
    /// What to send to authenticate again on the open link (judged by
    /// `check` as `start`'s is). The default is `start(1)`: the
    /// credentials made afresh, as for a new connection. An authenticator
    /// that holds a refresh token (kept from `refresh_after`'s message)
    /// sends it here.
    fn refresh(&mut self) -> Outbound {
        self.start(1)
    }
    /// How a recording names this hook, so that a replay rebuilds it from
    /// the file (`replay::rebuild`): wslink's presets answer their name and
    /// settings. The default, `None`, records it as unnamed, which a replay
    /// from the file refuses, unless the builder names it
    /// (`SessionBuilder::name_hook`).
    fn recorded_as(&self) -> Option<HookSpec> {
        None
    }
}

/// What an incoming message means to an application heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Beat {
    /// Not heartbeat traffic: delivered to the user as usual.
    Other,
    /// The answer to our heartbeat ping.
    Pong,
    /// The server's own heartbeat: proof of life, nothing to answer.
    ServerBeat,
    /// The server asks for an answer (Deribit's `test_request`): send this.
    Probe(Outbound),
}

/// An application-level heartbeat (JSON `{"op":"ping"}`, Deribit's `test_request` ...).
/// Heartbeat traffic is consumed by the session and not delivered as messages.
pub trait AppHeartbeat: Send {
    /// Sent once the connection is open (after authentication), for example
    /// Deribit's `public/set_heartbeat` with the interval.
    fn setup(&mut self, interval: Duration) -> Vec<Outbound> {
        let _ = interval;
        Vec::new()
    }
    /// Whether the server drives the beat and we only answer its probes; then
    /// no server beat for interval + timeout is the failure. Default false.
    fn server_driven(&self) -> bool {
        false
    }
    /// Our ping for each interval (not called when `server_driven`).
    fn ping(&mut self) -> Option<Message>;
    /// Classifies an incoming message; must be cheap for non-heartbeat traffic.
    fn classify(&mut self, message: &Message) -> Beat;
    /// How a recording names this hook, so that a replay rebuilds it from
    /// the file (`replay::rebuild`): wslink's presets answer their name and
    /// settings. The default, `None`, records it as unnamed, which a replay
    /// from the file refuses, unless the builder names it
    /// (`SessionBuilder::name_hook`).
    fn recorded_as(&self) -> Option<HookSpec> {
        None
    }
}

/// What to do after a disconnect or an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Reconnect after the backoff delay (or what the retry function says).
    Reconnect,
    /// Reconnect at once, without waiting.
    ReconnectNow,
    /// Reconnect after exactly this delay.
    ReconnectAfter(Duration),
    /// Stop for good: the session closes.
    Stop,
    /// Carry on: after an authentication error, keep the connection as it
    /// is; after a disconnect, stay idle until `connect` or `reconnect` is
    /// called. From `on_error` for an error that ended the connection, it
    /// leaves the decision to `on_disconnect`, as every answer but `Stop` does.
    Ignore,
}

/// User decisions on disconnects and errors, as Fresh's `handle_disconnect`
/// and `handle_error` or WebsockexNova's error handler give them.
///
/// The order, when a connection ends or an attempt fails:
///
/// 1. The session reports it (`SessionEvent::Disconnected`, after the
///    requests it failed).
/// 2. If it ended in an error ([`SessionError::from_disconnect`] is `Some`),
///    [`on_error`](Self::on_error) is called with that error. `Stop` stops the
///    session (`Closed { reason: Stopped }`) and nothing more is asked; any
///    other answer leaves the decision to step 3.
/// 3. [`on_disconnect`](Self::on_disconnect) decides, and a `Reconnect`
///    answer goes through the retry function, if one is set.
///
/// Neither is called when the session has no choice: when the user is
/// closing it, when the configuration stops it (`reconnect` off, or
/// `reconnect_on_error` off and an error), and after the user's `reconnect`
/// (which reconnects at once). A clean close by the server, whatever its
/// close code, is no error: it reaches `on_disconnect` only.
///
/// An authentication error (`AuthRejected`, `AuthTimeout`) does not end the
/// connection by itself: [`on_error`](Self::on_error) alone decides it, at
/// once (`Ignore` keeps the connection, unauthenticated; a reconnect answer
/// closes it and reconnects as told, unless the configuration forbids
/// reconnecting, when it stops), and `on_disconnect` is not called for it.
pub trait ReconnectPolicy: Send {
    /// Called when a connection ends (or an attempt fails) and the session
    /// may reconnect, after [`on_error`](Self::on_error) when it ended in an
    /// error; `attempt` counts the attempts in a row that failed to open,
    /// this one included when it did (0 when the connection that ended had
    /// opened: see [`BackoffConfig::max_attempts`](crate::BackoffConfig::max_attempts)). Default:
    /// reconnect after backoff, except for a certificate refused before the
    /// session was ever open, which stops it (see [`DefaultPolicy`]). An
    /// implementation that overrides this and wants that rule too can call
    /// `DefaultPolicy.on_disconnect`.
    fn on_disconnect(&mut self, reason: &DisconnectReason, attempt: u32) -> Decision {
        let _ = attempt;
        match reason {
            // Misconfiguration: every attempt would meet the same certificate.
            DisconnectReason::Tls { failure, ever_connected: false }
                if failure.is_certificate() && !failure.may_pass_with_time() =>
            {
                Decision::Stop
            }
            _ => Decision::Reconnect,
        }
    }
    /// Called for every error (see the trait's docs for the order). For an
    /// authentication error the answer decides; for an error that ended the
    /// connection, `Stop` stops the session and any other answer leaves the
    /// decision to [`on_disconnect`](Self::on_disconnect) (for a delay that
    /// depends on the error, answer there or in the retry function, through
    /// [`SessionError::from_disconnect`]). Default: `Reconnect`, which
    /// changes nothing.
    ///
    /// Before every error kind reached it, this saw only authentication
    /// errors: an implementation that answers `Stop` without looking at the
    /// error now stops on any failed connection too. Match
    /// `SessionError::AuthRejected(_) | SessionError::AuthTimeout` to keep
    /// that answer for authentication.
    fn on_error(&mut self, error: &SessionError) -> Decision {
        let _ = error;
        Decision::Reconnect
    }
    /// How a recording names this hook, so that a replay rebuilds it from
    /// the file (`replay::rebuild`): wslink's presets answer their name and
    /// settings. The default, `None`, records it as unnamed, which a replay
    /// from the file refuses, unless the builder names it
    /// (`SessionBuilder::name_hook`).
    fn recorded_as(&self) -> Option<HookSpec> {
        None
    }
}

/// The default policy: reconnect after backoff on every disconnect and
/// error, with one exception, a certificate the server will keep presenting:
///
/// - A certificate refused ([`TlsFailure::is_certificate`]: unknown issuer,
///   expired, wrong name ...) on a session that has **never been open** stops
///   it at once (`Disconnected { reason: Tls { .. } }`, then
///   `Closed { reason: Stopped }`): the client's trust or the URL is
///   misconfigured, every attempt would meet the same certificate, and
///   failing fast makes that visible at start-up instead of a retry loop.
/// - The same refusal on a session that **was open before** reconnects with
///   backoff, as any other failure: the server's certificate changed under a
///   running client (an expired renewal, a new CA), an operator will fix it,
///   and a client that runs for weeks must heal by itself when they do.
/// - A refusal that may pass with time ([`TlsFailure::may_pass_with_time`]:
///   a certificate not valid yet by the client's clock, a revocation status
///   unknown) and any other TLS failure (an alert, nothing in common, a
///   server that does not speak TLS) is retried: it may pass on a later attempt.
///
/// The session tells the two cases apart by `DisconnectReason::Tls`'s
/// `ever_connected`. To retry refused certificates always, use a policy that
/// answers `Decision::Reconnect`; to stop on every one, match `Tls` yourself.
///
/// [`TlsFailure::is_certificate`]: crate::TlsFailure::is_certificate
/// [`TlsFailure::may_pass_with_time`]: crate::TlsFailure::may_pass_with_time
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultPolicy;

impl ReconnectPolicy for DefaultPolicy {
    fn recorded_as(&self) -> Option<HookSpec> {
        Some(HookSpec::new("DefaultPolicy"))
    }
}

/// What a retry function is told (off_broadway_websocket's `ws_retry_fun`).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RetryContext<'a> {
    /// Attempts in a row that failed to open, this one included when it did
    /// (0 when the connection that ended had opened).
    pub attempt: u32,
    /// Why the last connection ended.
    pub reason: &'a DisconnectReason,
    /// What the backoff schedule would wait, `None` once `max_attempts` is used up.
    pub backoff: Option<Duration>,
}

/// A retry function: the delay before the next attempt, or `None` to stop.
pub type RetryFn = Box<dyn FnMut(&RetryContext<'_>) -> Option<Duration> + Send>;
/// Extra upgrade headers, computed afresh for each attempt (an expiring token, say).
pub type HeadersFn = Box<dyn FnMut(u32) -> Vec<(String, String)> + Send>;
/// Messages to send right after each upgrade, before authentication.
pub type OnUpgradeFn = Box<dyn FnMut() -> Vec<Message> + Send>;
/// Decides on errors in place of the policy's `on_error` (see [`ReconnectPolicy::on_error`]).
pub type OnErrorFn = Box<dyn FnMut(&SessionError) -> Decision + Send>;
/// Rewrites each outgoing user message just before it is sent, or drops it (`None`).
pub type PrepareFn = Box<dyn FnMut(Message) -> Option<Message> + Send>;
/// The rate-limit cost of an outgoing user message, in tokens.
pub type CostFn = Box<dyn Fn(&Message) -> u32 + Send>;
