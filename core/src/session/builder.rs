//! The builder that validates a session's settings, naming the field at
//! fault, before a session can exist; and what a recording keeps of them
//! is gathered from here (`recorded.rs`), below the configuration itself.

use std::time::{Duration, Instant};

use super::config::SessionConfig;
use super::hook_set::Hooks;
use crate::backoff::BackoffConfig;
use crate::error::{ConfigError, UrlError};
use crate::handshake::ClientRequest;
use crate::heartbeat::{AppHeartbeatConfig, PingConfig};
use crate::hooks::{
    AppHeartbeat, Authenticator, CostFn, Decision, ReconnectPolicy, RequestCodec, SessionError, SubscriptionCodec,
};
use crate::outbound::RateLimit;
use crate::session::Session;
use crate::RandomSource;

/// Builds a [`Session`]: settings first, then [`SessionBuilder::build`] checks them all.
///
/// ```
/// use std::time::{Duration, Instant};
/// use rand::{rngs::StdRng, SeedableRng};
/// use wslink_core::{presets, Session};
///
/// let session = Session::builder("wss://test.deribit.com/ws/api/v2")?
///     .app_heartbeat(presets::DeribitHeartbeat, Duration::from_secs(30), Duration::from_secs(10))
///     .authenticator(presets::JsonRpcAuth::new("public/auth", |_| {
///         r#"{"grant_type":"client_credentials","client_id":"id","client_secret":"secret"}"#.to_owned()
///     }))
///     .max_attempts(Some(20))
///     .build(Box::new(StdRng::seed_from_u64(7)), Instant::now())?;
/// # let _ = session;
/// # Ok::<(), wslink_core::ConfigError>(())
/// ```
pub struct SessionBuilder {
    config: SessionConfig,
    hooks: Hooks,
    #[cfg(feature = "record")]
    recorder: Option<(Box<dyn crate::record::Recorder>, [u8; 32])>,
    sensitive_headers: Vec<String>,
    /// The names the user gave hooks, for a recording (see `name_hook`).
    #[cfg(feature = "record")]
    hook_names: std::collections::BTreeMap<crate::record::settings::Hook, String>,
}

impl Session {
    /// A builder for a session to `url`, with every default.
    pub fn builder(url: &str) -> Result<SessionBuilder, UrlError> {
        Ok(SessionBuilder::new(SessionConfig::new(ClientRequest::new(url)?)))
    }
}

impl SessionBuilder {
    /// A builder from a complete configuration.
    pub fn new(config: SessionConfig) -> Self {
        let hooks = Hooks::default();
        Self {
            config,
            hooks,
            #[cfg(feature = "record")]
            recorder: None,
            sensitive_headers: Vec::new(),
            #[cfg(feature = "record")]
            hook_names: std::collections::BTreeMap::new(),
        }
    }

    /// Changes any setting directly.
    pub fn config(mut self, f: impl FnOnce(&mut SessionConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// The settings so far, for a caller that schedules around the session
    /// (a pool restarts a member on the member's own backoff schedule).
    pub fn settings(&self) -> &SessionConfig {
        &self.config
    }

    /// Adds a fixed upgrade header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.request = self.config.request.header(name, value);
        self
    }

    /// Offers a subprotocol.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.config.request = self.config.request.subprotocol(protocol);
        self
    }

    /// Sets the reconnect schedule.
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.config.backoff = backoff;
        self
    }

    /// Turns reconnecting off (`false`): the first disconnect closes the
    /// session with `Closed { reason: Stopped }`. On by default.
    pub fn reconnect(mut self, on: bool) -> Self {
        self.config.reconnect = on;
        self
    }

    /// Gives up after `max` attempts in a row that failed to open (the
    /// transport, the upgrade, or authentication failed), the first attempt
    /// included, with `Closed { reason: GaveUp }` (`None`: never). An attempt
    /// that opened starts the count again, however soon its connection
    /// ended: a server that lets the client in is never given up on. (The
    /// reconnect delays follow their own rule: they grow until a connection
    /// stays up for `backoff.reset_after`; see [`BackoffConfig`].)
    pub fn max_attempts(mut self, max: Option<u32>) -> Self {
        self.config.backoff.max_attempts = max;
        self
    }

    /// The most bytes waiting to be written before sends wait (see
    /// [`SessionConfig::write_budget`]; default 1 MiB).
    pub fn write_budget(mut self, bytes: usize) -> Self {
        self.config.write_budget = bytes;
        self
    }

    /// How long the transport may take none of the waiting bytes before the
    /// connection ends with `DisconnectReason::WriteTimeout` (see
    /// [`SessionConfig::write_timeout`]; default 30 s, `None`: never).
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// Protocol pings every `interval`, each answered within `timeout`; `None`
    /// turns them off. Time with reading paused does not count (see [`PingConfig`]).
    pub fn ping(mut self, ping: Option<PingConfig>) -> Self {
        self.config.ping = ping;
        self
    }

    /// Closes the link when nothing arrives for `idle`.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.config.idle_timeout = Some(idle);
        self
    }

    /// The largest message accepted, reassembled and inflated (default 64 MiB):
    /// a larger one closes the connection with 1009.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.connection.max_message_size = bytes;
        self
    }

    /// The largest frame accepted (default 16 MiB): a larger one closes the connection with 1009.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.config.connection.max_frame_size = bytes;
        self
    }

    /// Subscribes again after every reconnect, or not (see `SessionConfig::restore_subscriptions`).
    pub fn restore_subscriptions(mut self, on: bool) -> Self {
        self.config.restore_subscriptions = on;
        self
    }

    /// Delivers the server's pings and pongs as events (see `SessionConfig::control_events`).
    pub fn control_events(mut self, on: bool) -> Self {
        self.config.control_events = on;
        self
    }

    /// Offers permessage-deflate on every connection (`None`, the default, does not).
    pub fn compression(mut self, deflate: Option<crate::DeflateConfig>) -> Self {
        self.config.connection.deflate = deflate;
        self
    }

    /// An application heartbeat with its timing.
    pub fn app_heartbeat(mut self, beat: impl AppHeartbeat + 'static, interval: Duration, timeout: Duration) -> Self {
        self.hooks.app_heartbeat = Some(Box::new(beat));
        self.config.app_heartbeat = Some(AppHeartbeatConfig { interval, timeout });
        self
    }

    /// Decisions on disconnects and errors.
    pub fn policy(mut self, policy: impl ReconnectPolicy + 'static) -> Self {
        self.hooks.policy = Box::new(policy);
        self
    }

    /// Decides on every error (transport, TLS, handshake, protocol,
    /// heartbeat, authentication ...) in place of the policy's
    /// [`on_error`](ReconnectPolicy::on_error), in the order that trait
    /// documents: for an error that ended the connection, `Decision::Stop`
    /// stops the session and any other answer leaves the decision to the
    /// policy's `on_disconnect`; for an authentication error the answer decides.
    ///
    /// Like [`retry`](Self::retry), it is a hook of its own beside the
    /// policy: it replaces the policy's `on_error` whether
    /// [`policy`](Self::policy) is called before or after it, and the policy
    /// still answers `on_disconnect`. Called again, the last function wins.
    pub fn on_error(mut self, f: impl FnMut(&SessionError) -> Decision + Send + 'static) -> Self {
        self.hooks.on_error = Some(Box::new(f));
        self
    }

    /// A retry function that decides every reconnect delay, or stops.
    pub fn retry(
        mut self,
        retry: impl FnMut(&crate::hooks::RetryContext<'_>) -> Option<Duration> + Send + 'static,
    ) -> Self {
        self.hooks.retry = Some(Box::new(retry));
        self
    }

    /// How requests are encoded and responses matched (default JSON-RPC 2.0).
    pub fn request_codec(mut self, codec: impl RequestCodec + 'static) -> Self {
        self.hooks.codec = Box::new(codec);
        self
    }

    /// How subscriptions are spoken (default JSON-RPC `public/subscribe`).
    pub fn subscription_codec(mut self, codec: impl SubscriptionCodec + 'static) -> Self {
        self.hooks.subscriptions = Box::new(codec);
        self
    }

    /// An authentication step after every upgrade, before subscriptions.
    pub fn authenticator(mut self, auth: impl Authenticator + 'static) -> Self {
        self.hooks.auth = Some(Box::new(auth));
        self
    }

    /// Extra upgrade headers computed for each attempt (an expiring token, say).
    pub fn headers_fn(mut self, f: impl FnMut(u32) -> Vec<(String, String)> + Send + 'static) -> Self {
        self.hooks.headers = Some(Box::new(f));
        self
    }

    /// Messages sent right after each upgrade, before authentication.
    pub fn on_upgrade(mut self, f: impl FnMut() -> Vec<crate::Message> + Send + 'static) -> Self {
        self.hooks.on_upgrade = Some(Box::new(f));
        self
    }

    /// Rewrites each user message (requests included) just before it is sent.
    pub fn prepare(mut self, mut f: impl FnMut(crate::Message) -> crate::Message + Send + 'static) -> Self {
        self.hooks.prepare = Some(Box::new(move |m| Some(f(m))));
        self
    }

    /// Like [`prepare`](Self::prepare), and may drop a message (`None`): it
    /// is not sent, and a request dropped so ends at once with
    /// `RequestFailed { reason: Dropped }`.
    pub fn prepare_or_drop(mut self, f: impl FnMut(crate::Message) -> Option<crate::Message> + Send + 'static) -> Self {
        self.hooks.prepare = Some(Box::new(f));
        self
    }

    /// A token-bucket rate limit on user messages, with a cost per message (default 1).
    pub fn rate_limit(mut self, limit: RateLimit, cost: Option<CostFn>) -> Self {
        self.config.rate_limit = Some(limit);
        self.hooks.cost = cost;
        self
    }

    /// Records the session into `recorder` (see [`crate::record`]; the
    /// `record` feature). Its random
    /// source is then a generator seeded with `seed`, which the recording
    /// keeps so that a replay draws the same numbers: the `rng` given to
    /// [`build`](Self::build) is not used. Take the seed from the OS.
    #[cfg(feature = "record")]
    pub fn recorder(mut self, recorder: impl crate::record::Recorder + 'static, seed: [u8; 32]) -> Self {
        self.recorder = Some((Box::new(recorder), seed));
        self
    }

    /// Names a hook for a recording (the `record` feature), so that a replay
    /// from the file alone finds it by this name in its registry
    /// (`replay::HookRegistry`). A closure hook or a hook of your own type
    /// needs one (else a replay from the file refuses, naming it:
    /// `RebuildError::Unnamed`); presets name themselves, and a name given
    /// here takes their place. The name stays with the slot, set before or after the hook.
    #[cfg(feature = "record")]
    pub fn name_hook(mut self, hook: crate::record::settings::Hook, name: impl Into<String>) -> Self {
        self.hook_names.insert(hook, name.into());
        self
    }

    /// Marks a header's value secret: a recording redacts it (as it does
    /// `Authorization`, `Proxy-Authorization` and `Cookie`, and everything
    /// `headers_fn` adds).
    pub fn sensitive_header(mut self, name: impl Into<String>) -> Self {
        self.sensitive_headers.push(name.into());
        self
    }

    /// Validates everything and builds the session, idle until `connect`.
    #[cfg_attr(not(feature = "record"), allow(unused_mut))]
    pub fn build(mut self, rng: Box<dyn RandomSource>, now: Instant) -> Result<Session, ConfigError> {
        self.config.validate()?;
        #[cfg(feature = "record")]
        if let Some((recorder, seed)) = self.recorder.take() {
            return Ok(self.build_recorded(recorder, seed, now));
        }
        let mut session = Session::from_parts(self.config, self.hooks, rng, now);
        session.sensitive_headers = self.sensitive_headers;
        Ok(session)
    }

    /// [`build`](Self::build) with a recording: the header first, and the
    /// random source seeded from the recording's seed.
    #[cfg(feature = "record")]
    fn build_recorded(self, recorder: Box<dyn crate::record::Recorder>, seed: [u8; 32], now: Instant) -> Session {
        let header = crate::record::format::Header {
            wslink_recording: crate::record::format::FORMAT_VERSION,
            wslink: env!("CARGO_PKG_VERSION").to_owned(),
            url: self.config.request.url().redacted_text(),
            // Format 3 keeps the settings themselves, not their `Debug` text.
            config: String::new(),
            seed: data_encoding::HEXLOWER.encode(&seed),
            settings: Some(super::recorded::settings(&self.config, &self.sensitive_headers)),
            hooks: super::recorded::hooks(&self.hooks, &self.hook_names),
            encoding: crate::record::format::Encoding::Compact,
        };
        let rng = Box::new(<rand::rngs::StdRng as rand::SeedableRng>::from_seed(seed));
        let mut session = Session::from_parts(self.config, self.hooks, rng, now);
        session.tape = Some(Box::new(crate::record::Tape::start(recorder, &header, now)));
        session.sensitive_headers = self.sensitive_headers;
        session
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn each_bad_field_is_named() {
        let base = || SessionConfig::new(ClientRequest::new("ws://h/").unwrap());
        let d = Duration::from_secs;
        type Change = Box<dyn Fn(&mut SessionConfig)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|c| c.backoff.factor = 0.5), "backoff.factor"),
            (Box::new(|c| c.backoff.factor = f64::NAN), "backoff.factor"),
            (Box::new(|c| c.backoff.initial = Duration::ZERO), "backoff.initial"),
            (Box::new(move |c| c.backoff.max = d(0) + Duration::from_millis(1)), "backoff.max"),
            (Box::new(|c| c.backoff.max_attempts = Some(0)), "backoff.max_attempts"),
            (Box::new(|c| c.connect_timeout = Duration::ZERO), "connect_timeout"),
            (Box::new(move |c| c.ping = Some(PingConfig { interval: d(0), timeout: d(1) })), "ping.interval"),
            (Box::new(move |c| c.ping = Some(PingConfig { interval: d(5), timeout: d(5) })), "ping.timeout"),
            (
                Box::new(move |c| c.app_heartbeat = Some(AppHeartbeatConfig { interval: d(5), timeout: d(9) })),
                "app_heartbeat.timeout",
            ),
            (Box::new(|c| c.idle_timeout = Some(Duration::ZERO)), "idle_timeout"),
            (Box::new(|c| c.queue_capacity = 0), "queue_capacity"),
            (
                Box::new(move |c| c.rate_limit = Some(RateLimit { capacity: 0, refill: 1, interval: d(1) })),
                "rate_limit",
            ),
            (
                Box::new(|c| c.rate_limit = Some(RateLimit { capacity: 1, refill: 1, interval: Duration::ZERO })),
                "rate_limit.interval",
            ),
            (Box::new(|c| c.latency_window = 0), "latency_window"),
            (Box::new(|c| c.write_budget = 0), "write_budget"),
            (Box::new(|c| c.write_timeout = Some(Duration::ZERO)), "write_timeout"),
            (Box::new(|c| c.connection.close_timeout = Duration::ZERO), "close_timeout"),
        ];
        for (change, field) in cases {
            let mut c = base();
            change(&mut c);
            match SessionBuilder::new(c).build(Box::new(StdRng::seed_from_u64(0)), {
                #[allow(clippy::disallowed_methods)] // the fake clock's origin
                Instant::now()
            }) {
                Err(ConfigError::InvalidValue { field: f, .. }) => assert_eq!(f, field),
                Err(other) => panic!("{field}: {other:?}"),
                Ok(_) => panic!("{field}: accepted"),
            }
        }
        assert!(base().validate().is_ok());
        let bad_header = base().request.header("X\n", "v");
        assert!(matches!(SessionConfig::new(bad_header).validate(), Err(ConfigError::InvalidHeaderName(_))));
    }
}
