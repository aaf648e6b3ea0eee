//! What a recording keeps of the session's configuration (format 3), so that
//! a replay rebuilds the session from the file alone: every plain setting,
//! exactly ([`Settings`]), and each hook by name ([`Hook`], [`HookSpec`]).
//!
//! Durations are [`Span`]s (seconds and nanoseconds, exact for any
//! `Duration`, `Duration::MAX` included); the backoff factor is text, which
//! Rust reads back to the same `f64` (a JSON number may lose its last bit).
//! Secrets stay out as in the header's URL: a sensitive header's value is
//! `<redacted>`, and a hook is recorded by its name and non-secret settings
//! only (a [`JsonRpcAuth`](crate::presets::JsonRpcAuth) by its method, never
//! its credentials).
//!
//! These are plain data: the session fills them in when it starts a
//! recording, and `replay::rebuild` turns them back into a builder (with the
//! presets by name, and the user's own hooks from a registry).

use std::collections::BTreeMap;

#[cfg(feature = "record")]
use serde::{Deserialize, Serialize};

#[cfg(feature = "record")]
use crate::{
    backoff::BackoffConfig,
    config::ConnectionConfig,
    deflate::DeflateConfig,
    heartbeat::{AppHeartbeatConfig, PingConfig},
    outbound::RateLimit,
};

/// A duration as whole seconds and nanoseconds, exact for any `Duration`.
pub type Span = (u64, u32);

/// Every plain setting of the recorded session but its URL (the header's
/// `url`): `SessionConfig` field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "record", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub struct Settings {
    /// Offered subprotocols, in order.
    pub subprotocols: Vec<String>,
    /// Offered extensions (beyond permessage-deflate's, which `connection` makes).
    pub extensions: Vec<String>,
    /// Fixed upgrade headers, in order; a sensitive one's value is `<redacted>`.
    pub headers: Vec<(String, String)>,
    /// Limits and timeouts of each connection.
    pub connection: ConnectionSettings,
    /// The reconnect schedule.
    pub backoff: BackoffSettings,
    /// `SessionConfig::reconnect`.
    pub reconnect: bool,
    /// `SessionConfig::reconnect_on_error`.
    pub reconnect_on_error: bool,
    /// `SessionConfig::connect_timeout`.
    pub connect_timeout: Span,
    /// `SessionConfig::auth_timeout`.
    pub auth_timeout: Span,
    /// `SessionConfig::request_timeout`.
    pub request_timeout: Span,
    /// Protocol pings, when on.
    pub ping: Option<Timing>,
    /// `SessionConfig::idle_timeout`.
    pub idle_timeout: Option<Span>,
    /// The application heartbeat's timing, when one is set.
    pub app_heartbeat: Option<Timing>,
    /// `SessionConfig::queue_capacity`.
    pub queue_capacity: usize,
    /// `SessionConfig::queue_while_disconnected`.
    pub queue_while_disconnected: bool,
    /// `SessionConfig::keep_queue_on_disconnect`.
    pub keep_queue_on_disconnect: bool,
    /// `SessionConfig::restore_subscriptions` (absent: on, as before the setting).
    #[cfg_attr(feature = "record", serde(default = "on"))]
    pub restore_subscriptions: bool,
    /// The token bucket, when on.
    pub rate_limit: Option<RateLimitSettings>,
    /// `SessionConfig::control_events`.
    pub control_events: bool,
    /// `SessionConfig::latency_window`.
    pub latency_window: usize,
    /// `SessionConfig::late_response_window`.
    pub late_response_window: Span,
    /// `SessionConfig::write_budget`.
    pub write_budget: usize,
    /// `SessionConfig::write_timeout`.
    pub write_timeout: Option<Span>,
}

/// An interval and the time allowed for its answer (pings, application heartbeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "record", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub struct Timing {
    /// Time between beats.
    pub interval: Span,
    /// Time allowed for the answer.
    pub timeout: Span,
}

/// `ConnectionConfig`, field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "record", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub struct ConnectionSettings {
    /// Largest frame payload accepted.
    pub max_frame_size: usize,
    /// Largest message accepted.
    pub max_message_size: usize,
    /// Largest handshake response head accepted.
    pub max_response_head: usize,
    /// How much of a refused upgrade's body is kept.
    pub refusal_body_limit: usize,
    /// Time to the server's `101`; `None` waits forever.
    pub handshake_timeout: Option<Span>,
    /// Time allowed for the close handshake.
    pub close_timeout: Span,
    /// Largest fragment of an outgoing message, if they are fragmented.
    pub fragment_size: Option<usize>,
    /// Pings answered automatically.
    pub auto_pong: bool,
    /// permessage-deflate, when offered.
    pub deflate: Option<DeflateSettings>,
}

/// `DeflateConfig`, field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "record", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub struct DeflateSettings {
    /// Our compressor's largest window, in bits.
    pub client_max_window_bits: u8,
    /// The server's largest window asked for, in bits.
    pub server_max_window_bits: Option<u8>,
    /// Our messages compressed each on its own.
    pub client_no_context_takeover: bool,
    /// The server's messages asked to be compressed each on its own.
    pub server_no_context_takeover: bool,
    /// Messages shorter than this go uncompressed.
    pub compress_threshold: usize,
    /// zlib compression level.
    pub level: u8,
    /// zlib memory level.
    pub mem_level: u8,
}

/// `BackoffConfig`, field by field; the factor as text (exact).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "record", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub struct BackoffSettings {
    /// Delay before the first reconnect.
    pub initial: Span,
    /// The factor as Rust prints an `f64` (the shortest text that reads back the same).
    pub factor: String,
    /// Largest delay.
    pub max: Span,
    /// Each delay drawn from zero to the computed value.
    pub full_jitter: bool,
    /// Attempts in a row that may fail to open; `None`: no limit.
    pub max_attempts: Option<u32>,
    /// A connection open this long sends the delays back to `initial`.
    pub reset_after: Span,
}

/// `RateLimit`, field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "record", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub struct RateLimitSettings {
    /// Most tokens the bucket holds.
    pub capacity: u32,
    /// Tokens added each interval.
    pub refill: u32,
    /// Time between refills.
    pub interval: Span,
}

/// A hook of the session, named as the builder method that sets it. A
/// recording's header maps each hook the session had to a [`HookSpec`]
/// (or to `null`: set without a name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "record", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "record", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Hook {
    /// `SessionBuilder::policy` (default: `DefaultPolicy`).
    Policy,
    /// `SessionBuilder::retry`.
    Retry,
    /// `SessionBuilder::on_error`.
    OnError,
    /// `SessionBuilder::request_codec` (default: `JsonRpc`, or `NoCodec` without the `json` feature).
    RequestCodec,
    /// `SessionBuilder::subscription_codec` (default: `JsonRpcSubscriptions`, or `NoCodec`).
    SubscriptionCodec,
    /// `SessionBuilder::authenticator`.
    Authenticator,
    /// `SessionBuilder::app_heartbeat`.
    AppHeartbeat,
    /// `SessionBuilder::headers_fn`.
    HeadersFn,
    /// `SessionBuilder::on_upgrade`.
    OnUpgrade,
    /// `SessionBuilder::prepare` or `prepare_or_drop`.
    Prepare,
    /// The cost function of `SessionBuilder::rate_limit`.
    Cost,
}

impl Hook {
    /// Its name: the builder method's (`"prepare"`, `"on_error"` ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::Retry => "retry",
            Self::OnError => "on_error",
            Self::RequestCodec => "request_codec",
            Self::SubscriptionCodec => "subscription_codec",
            Self::Authenticator => "authenticator",
            Self::AppHeartbeat => "app_heartbeat",
            Self::HeadersFn => "headers_fn",
            Self::OnUpgrade => "on_upgrade",
            Self::Prepare => "prepare",
            Self::Cost => "cost",
        }
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a recording names a hook: a preset of wslink's by its name and
/// settings (`JsonRpcAuth` with `method`), or a name the user gave
/// (`SessionBuilder::name_hook`), under which a replay finds the hook in
/// its registry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "record", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub struct HookSpec {
    /// The preset's name, or the user's.
    pub name: String,
    /// The preset's settings (none for a user's hook); never secrets.
    #[cfg_attr(feature = "record", serde(default, skip_serializing_if = "BTreeMap::is_empty"))]
    pub settings: BTreeMap<String, String>,
}

impl HookSpec {
    /// A hook named `name`, without settings.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), settings: BTreeMap::new() }
    }

    /// With a setting.
    pub fn setting(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.insert(key.into(), value.into());
        self
    }
}

/// A duration as a [`Span`], and back.
pub(crate) fn span(d: std::time::Duration) -> Span {
    (d.as_secs(), d.subsec_nanos())
}

/// A [`Span`] as a duration (checked when the recording was parsed: the
/// nanoseconds are under a second).
#[cfg(feature = "record")]
pub(crate) fn duration((secs, nanos): Span) -> std::time::Duration {
    std::time::Duration::new(secs, nanos.min(999_999_999))
}

// Each conversion takes its struct apart whole (no `..`): a field added to a
// configuration fails to compile here until the recording carries it.

#[cfg(feature = "record")]
impl From<&ConnectionConfig> for ConnectionSettings {
    fn from(c: &ConnectionConfig) -> Self {
        let ConnectionConfig {
            max_frame_size,
            max_message_size,
            max_response_head,
            refusal_body_limit,
            handshake_timeout,
            close_timeout,
            fragment_size,
            auto_pong,
            deflate,
        } = c;
        Self {
            max_frame_size: *max_frame_size,
            max_message_size: *max_message_size,
            max_response_head: *max_response_head,
            refusal_body_limit: *refusal_body_limit,
            handshake_timeout: handshake_timeout.map(span),
            close_timeout: span(*close_timeout),
            fragment_size: *fragment_size,
            auto_pong: *auto_pong,
            deflate: deflate.as_ref().map(DeflateSettings::from),
        }
    }
}

#[cfg(feature = "record")]
impl ConnectionSettings {
    /// The configuration these settings record.
    pub(crate) fn config(&self) -> ConnectionConfig {
        ConnectionConfig {
            max_frame_size: self.max_frame_size,
            max_message_size: self.max_message_size,
            max_response_head: self.max_response_head,
            refusal_body_limit: self.refusal_body_limit,
            handshake_timeout: self.handshake_timeout.map(duration),
            close_timeout: duration(self.close_timeout),
            fragment_size: self.fragment_size,
            auto_pong: self.auto_pong,
            deflate: self.deflate.as_ref().map(DeflateSettings::config),
        }
    }
}

#[cfg(feature = "record")]
impl From<&DeflateConfig> for DeflateSettings {
    fn from(d: &DeflateConfig) -> Self {
        let DeflateConfig {
            client_max_window_bits,
            server_max_window_bits,
            client_no_context_takeover,
            server_no_context_takeover,
            compress_threshold,
            level,
            mem_level,
        } = d;
        Self {
            client_max_window_bits: *client_max_window_bits,
            server_max_window_bits: *server_max_window_bits,
            client_no_context_takeover: *client_no_context_takeover,
            server_no_context_takeover: *server_no_context_takeover,
            compress_threshold: *compress_threshold,
            level: *level,
            mem_level: *mem_level,
        }
    }
}

#[cfg(feature = "record")]
impl DeflateSettings {
    /// The configuration these settings record.
    pub(crate) fn config(&self) -> DeflateConfig {
        DeflateConfig {
            client_max_window_bits: self.client_max_window_bits,
            server_max_window_bits: self.server_max_window_bits,
            client_no_context_takeover: self.client_no_context_takeover,
            server_no_context_takeover: self.server_no_context_takeover,
            compress_threshold: self.compress_threshold,
            level: self.level,
            mem_level: self.mem_level,
        }
    }
}

#[cfg(feature = "record")]
impl From<&BackoffConfig> for BackoffSettings {
    fn from(b: &BackoffConfig) -> Self {
        let BackoffConfig { initial, factor, max, full_jitter, max_attempts, reset_after } = b;
        Self {
            initial: span(*initial),
            factor: factor.to_string(),
            max: span(*max),
            full_jitter: *full_jitter,
            max_attempts: *max_attempts,
            reset_after: span(*reset_after),
        }
    }
}

#[cfg(feature = "record")]
impl BackoffSettings {
    /// The configuration these settings record; `Err` names a factor that is not a number.
    pub(crate) fn config(&self) -> Result<BackoffConfig, String> {
        let factor = self.factor.parse::<f64>().map_err(|e| format!("backoff.factor {:?}: {e}", self.factor))?;
        Ok(BackoffConfig {
            initial: duration(self.initial),
            factor,
            max: duration(self.max),
            full_jitter: self.full_jitter,
            max_attempts: self.max_attempts,
            reset_after: duration(self.reset_after),
        })
    }
}

#[cfg(feature = "record")]
impl From<PingConfig> for Timing {
    fn from(p: PingConfig) -> Self {
        let PingConfig { interval, timeout } = p;
        Self { interval: span(interval), timeout: span(timeout) }
    }
}

#[cfg(feature = "record")]
impl From<AppHeartbeatConfig> for Timing {
    fn from(a: AppHeartbeatConfig) -> Self {
        let AppHeartbeatConfig { interval, timeout } = a;
        Self { interval: span(interval), timeout: span(timeout) }
    }
}

#[cfg(feature = "record")]
impl Timing {
    /// As protocol pings.
    pub(crate) fn ping(self) -> PingConfig {
        PingConfig { interval: duration(self.interval), timeout: duration(self.timeout) }
    }

    /// As an application heartbeat's timing.
    pub(crate) fn app_heartbeat(self) -> AppHeartbeatConfig {
        AppHeartbeatConfig { interval: duration(self.interval), timeout: duration(self.timeout) }
    }
}

#[cfg(feature = "record")]
impl From<RateLimit> for RateLimitSettings {
    fn from(r: RateLimit) -> Self {
        let RateLimit { capacity, refill, interval } = r;
        Self { capacity, refill, interval: span(interval) }
    }
}

#[cfg(feature = "record")]
impl RateLimitSettings {
    /// The limit these settings record.
    pub(crate) fn config(self) -> RateLimit {
        RateLimit { capacity: self.capacity, refill: self.refill, interval: duration(self.interval) }
    }
}

impl Settings {
    /// Every span these settings hold, with where it is, for the check
    /// made when a recording is parsed (nanoseconds under a second).
    #[cfg(feature = "record")]
    pub(crate) fn spans(&self) -> Vec<(&'static str, Span)> {
        let mut out = vec![
            ("connect_timeout", self.connect_timeout),
            ("auth_timeout", self.auth_timeout),
            ("request_timeout", self.request_timeout),
            ("late_response_window", self.late_response_window),
            ("connection.close_timeout", self.connection.close_timeout),
            ("backoff.initial", self.backoff.initial),
            ("backoff.max", self.backoff.max),
            ("backoff.reset_after", self.backoff.reset_after),
        ];
        let optional = [
            ("idle_timeout", self.idle_timeout),
            ("write_timeout", self.write_timeout),
            ("connection.handshake_timeout", self.connection.handshake_timeout),
            ("ping.interval", self.ping.map(|p| p.interval)),
            ("ping.timeout", self.ping.map(|p| p.timeout)),
            ("app_heartbeat.interval", self.app_heartbeat.map(|a| a.interval)),
            ("app_heartbeat.timeout", self.app_heartbeat.map(|a| a.timeout)),
            ("rate_limit.interval", self.rate_limit.map(|r| r.interval)),
        ];
        out.extend(optional.into_iter().filter_map(|(name, span)| Some((name, span?))));
        out
    }
}

/// The default of a setting that was on before it could be turned off.
#[cfg(feature = "record")]
fn on() -> bool {
    true
}
