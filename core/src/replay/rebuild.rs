//! A recording's session rebuilt from its header (format 3): the settings
//! exactly as recorded, wslink's presets by name and settings, and the
//! user's own hooks from a [`HookRegistry`] by the names given at record
//! time (`SessionBuilder::name_hook`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{replay, Recording, RecordingError, Replayed};
use crate::error::{ConfigError, UrlError};
use crate::handshake::ClientRequest;
use crate::hooks::{
    AppHeartbeat, Authenticator, Decision, DefaultPolicy, NoCodec, ReconnectPolicy, RequestCodec, RetryContext,
    SessionError, SubscriptionCodec,
};
use crate::message::Message;
use crate::record::settings::{duration, Hook, HookSpec, Settings};
use crate::session::{SessionBuilder, SessionConfig};

/// Puts one hook on a builder.
type Attach = Box<dyn FnOnce(SessionBuilder) -> SessionBuilder>;

/// The user's hooks by name, for a replay from the file: each registered
/// under the name given to [`SessionBuilder::name_hook`] when the session
/// was recorded. wslink's presets need no entry (a replay makes them from
/// their recorded name and settings); an entry under a preset's name takes
/// its place.
///
/// Register hooks that decide as the recorded ones did (the same `retry`,
/// `prepare`, cost ...): what they decide is compared. A hook whose output
/// the recording keeps redacted needs only to produce as much: a
/// `headers_fn` any value for each recorded header (the upgrade is
/// compared by its presence), an `on_upgrade` as many messages (their
/// bytes are compared by presence).
#[derive(Default)]
pub struct HookRegistry {
    hooks: BTreeMap<(Hook, String), Attach>,
}

impl std::fmt::Debug for HookRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.hooks.keys().map(|(hook, name)| format!("{hook} {name}"))).finish()
    }
}

impl HookRegistry {
    /// An empty registry: only presets can be rebuilt.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(mut self, hook: Hook, name: impl Into<String>, attach: Attach) -> Self {
        self.hooks.insert((hook, name.into()), attach);
        self
    }

    /// A reconnect policy named `name`.
    pub fn policy(self, name: impl Into<String>, policy: impl ReconnectPolicy + 'static) -> Self {
        self.add(Hook::Policy, name, Box::new(move |b| b.policy(policy)))
    }

    /// A retry function named `name`.
    pub fn retry(
        self,
        name: impl Into<String>,
        retry: impl FnMut(&RetryContext<'_>) -> Option<Duration> + Send + 'static,
    ) -> Self {
        self.add(Hook::Retry, name, Box::new(move |b| b.retry(retry)))
    }

    /// An error hook named `name`.
    pub fn on_error(self, name: impl Into<String>, f: impl FnMut(&SessionError) -> Decision + Send + 'static) -> Self {
        self.add(Hook::OnError, name, Box::new(move |b| b.on_error(f)))
    }

    /// A request codec named `name`.
    pub fn request_codec(self, name: impl Into<String>, codec: impl RequestCodec + 'static) -> Self {
        self.add(Hook::RequestCodec, name, Box::new(move |b| b.request_codec(codec)))
    }

    /// A subscription codec named `name`.
    pub fn subscription_codec(self, name: impl Into<String>, codec: impl SubscriptionCodec + 'static) -> Self {
        self.add(Hook::SubscriptionCodec, name, Box::new(move |b| b.subscription_codec(codec)))
    }

    /// An authenticator named `name`. Its message is recorded redacted and
    /// compared by presence: it needs no credentials, only to send one
    /// message (a request when the recorded one was) for each attempt.
    pub fn authenticator(self, name: impl Into<String>, auth: impl Authenticator + 'static) -> Self {
        self.add(Hook::Authenticator, name, Box::new(move |b| b.authenticator(auth)))
    }

    /// An application heartbeat named `name` (its timing is the recorded one).
    pub fn app_heartbeat(self, name: impl Into<String>, beat: impl AppHeartbeat + 'static) -> Self {
        self.add(Hook::AppHeartbeat, name, Box::new(move |b| with_heartbeat(b, beat)))
    }

    /// A `headers_fn` named `name`.
    pub fn headers_fn(
        self,
        name: impl Into<String>,
        f: impl FnMut(u32) -> Vec<(String, String)> + Send + 'static,
    ) -> Self {
        self.add(Hook::HeadersFn, name, Box::new(move |b| b.headers_fn(f)))
    }

    /// An `on_upgrade` hook named `name`.
    pub fn on_upgrade(self, name: impl Into<String>, f: impl FnMut() -> Vec<Message> + Send + 'static) -> Self {
        self.add(Hook::OnUpgrade, name, Box::new(move |b| b.on_upgrade(f)))
    }

    /// A `prepare` hook named `name`.
    pub fn prepare(self, name: impl Into<String>, f: impl FnMut(Message) -> Message + Send + 'static) -> Self {
        self.add(Hook::Prepare, name, Box::new(move |b| b.prepare(f)))
    }

    /// A `prepare_or_drop` hook named `name` (the `prepare` slot).
    pub fn prepare_or_drop(
        self,
        name: impl Into<String>,
        f: impl FnMut(Message) -> Option<Message> + Send + 'static,
    ) -> Self {
        self.add(Hook::Prepare, name, Box::new(move |b| b.prepare_or_drop(f)))
    }

    /// A rate limit's cost function named `name` (the limit is the recorded one).
    pub fn cost(self, name: impl Into<String>, f: impl Fn(&Message) -> u32 + Send + 'static) -> Self {
        self.add(Hook::Cost, name, Box::new(move |b| with_cost(b, f)))
    }
}

/// Why a recording's session could not be rebuilt from its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RebuildError {
    /// The recording predates format 3: it keeps its settings only as text
    /// and its hooks not at all. Replay it with [`replay`](super::replay)
    /// and a builder like the recorded session's.
    #[error(
        "a recording of format {format} keeps no settings or hooks: replay it with a builder like the recorded session's"
    )]
    NoSettings {
        /// The recording's format.
        format: u32,
    },
    /// Hooks were set without a name when the session was recorded (a
    /// closure, or a hook of the user's type that does not name itself):
    /// nothing in the file says what they were.
    #[error(
        "recorded without a name, so not rebuilt from the file: {}; name each when recording (SessionBuilder::name_hook) and register it under that name (HookRegistry)",
        list(.hooks)
    )]
    Unnamed {
        /// The hooks, in the order of [`Hook`].
        hooks: Vec<Hook>,
    },
    /// A hook was recorded under a name that is neither registered nor one
    /// of wslink's presets (with this build's features: the JSON presets
    /// need `json`).
    #[error("no {hook} hook named {name:?}: register one under that name (HookRegistry)")]
    UnknownHook {
        /// Which hook.
        hook: Hook,
        /// The recorded name.
        name: String,
    },
    /// A preset was recorded without a setting it needs.
    #[error("the recorded {hook} preset {name:?} lacks its setting {setting:?}")]
    MissingSetting {
        /// Which hook.
        hook: Hook,
        /// The preset.
        name: String,
        /// The setting.
        setting: String,
    },
    /// A recorded setting cannot be read back.
    #[error("the recorded setting {0}")]
    BadSetting(String),
    /// The recorded URL does not parse.
    #[error("the recorded URL: {0}")]
    Url(#[from] UrlError),
}

fn list(hooks: &[Hook]) -> String {
    hooks.iter().map(|h| h.name()).collect::<Vec<_>>().join(", ")
}

/// Why [`replay_file`] could not replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The text is not a valid recording.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// The session cannot be rebuilt from the file.
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
    /// The rebuilt settings are refused.
    #[error("the recorded settings are refused: {0}")]
    Config(#[from] ConfigError),
}

/// The recorded session's builder, from the file alone: its settings as
/// recorded, wslink's presets by name and settings, and every hook named by
/// the user taken from `registry`. Refused with a typed error when a hook
/// had no name ([`RebuildError::Unnamed`]), when a name is not found, and
/// for a recording older than format 3 (which needs the caller's builder).
///
/// What the file cannot hold is replaced by what keeps the replay the same:
/// a sensitive header's value and the URL's query are `<redacted>` (the
/// upgrade is recorded redacted then, and compared by presence), and a
/// [`JsonRpcAuth`](crate::presets::JsonRpcAuth) asks with its method and no
/// parameters (its message is recorded redacted and compared by presence).
pub fn rebuild(recording: &Recording, mut registry: HookRegistry) -> Result<SessionBuilder, RebuildError> {
    let header = &recording.header;
    let settings = header.settings.as_ref().ok_or(RebuildError::NoSettings { format: header.wslink_recording })?;
    let unnamed: Vec<Hook> = header.hooks.iter().filter(|(_, spec)| spec.is_none()).map(|(hook, _)| *hook).collect();
    if !unnamed.is_empty() {
        return Err(RebuildError::Unnamed { hooks: unnamed });
    }
    let mut builder = SessionBuilder::new(config(&header.url, settings)?);
    for (hook, spec) in &header.hooks {
        // Every `None` was refused above.
        let Some(spec) = spec else { continue };
        builder = match registry.hooks.remove(&(*hook, spec.name.clone())) {
            // Named again, so that a recording of the replayed session names it too
            // (a hook that names itself with settings says so itself).
            Some(attach) if spec.settings.is_empty() => attach(builder).name_hook(*hook, spec.name.clone()),
            Some(attach) => attach(builder),
            None => preset(*hook, spec)?(builder),
        };
    }
    Ok(builder)
}

/// Parses `data` as a recording (either encoding: a file's bytes, or
/// JSON Lines text), rebuilds its session ([`rebuild`]) with the hooks in
/// `registry`, and replays it with `origin` as the recorded session's start.
///
/// ```
/// use std::time::Instant;
/// use rand::{rngs::StdRng, SeedableRng};
/// use wslink_core::record::{settings::Hook, MemoryRecorder};
/// use wslink_core::replay::{replay_file, HookRegistry, Replayed};
/// use wslink_core::{Message, Session};
///
/// let tag = |m: Message| m; // a closure hook: named, so that a replay finds it
/// let tape = MemoryRecorder::new(1 << 20);
/// let t0 = Instant::now();
/// let mut session = Session::builder("ws://feed.test/ws")?
///     .prepare(tag)
///     .name_hook(Hook::Prepare, "tag")
///     .recorder(tape.clone(), [7; 32])
///     .build(Box::new(StdRng::seed_from_u64(0)), t0)?;
/// session.connect(t0)?;
/// while session.poll_action().is_some() {}
/// session.flush_recording(); // what the session recorded, to the recorder
///
/// let registry = HookRegistry::new().prepare("tag", tag);
/// let replayed = replay_file(tape.bytes(), registry, Instant::now())?;
/// assert!(matches!(replayed, Replayed::Identical { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn replay_file(data: impl AsRef<[u8]>, registry: HookRegistry, origin: Instant) -> Result<Replayed, ReplayError> {
    let recording = Recording::parse(data)?;
    let builder = rebuild(&recording, registry)?;
    Ok(replay(&recording, builder, origin)?)
}

/// The recorded configuration. A redacted query (`?<redacted>`) is kept
/// as a query the URL parser takes: the upgrade that carried it was
/// recorded redacted, so only its presence is compared.
fn config(url: &str, settings: &Settings) -> Result<SessionConfig, RebuildError> {
    let Settings {
        subprotocols,
        extensions,
        headers,
        connection,
        backoff,
        reconnect,
        reconnect_on_error,
        connect_timeout,
        auth_timeout,
        request_timeout,
        ping,
        idle_timeout,
        app_heartbeat,
        queue_capacity,
        queue_while_disconnected,
        keep_queue_on_disconnect,
        restore_subscriptions,
        rate_limit,
        control_events,
        latency_window,
        late_response_window,
        write_budget,
        write_timeout,
    } = settings;
    let mut request = match ClientRequest::new(url) {
        Ok(request) => request,
        Err(_) if url.contains("?<redacted>") => ClientRequest::new(&url.replace("?<redacted>", "?redacted"))?,
        Err(e) => return Err(e.into()),
    };
    for protocol in subprotocols {
        request = request.subprotocol(protocol);
    }
    for offer in extensions {
        request = request.extension(offer);
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    Ok(SessionConfig {
        request,
        connection: connection.config(),
        backoff: backoff.config().map_err(RebuildError::BadSetting)?,
        reconnect: *reconnect,
        reconnect_on_error: *reconnect_on_error,
        connect_timeout: duration(*connect_timeout),
        auth_timeout: duration(*auth_timeout),
        request_timeout: duration(*request_timeout),
        ping: ping.map(|p| p.ping()),
        idle_timeout: idle_timeout.map(duration),
        app_heartbeat: app_heartbeat.map(|a| a.app_heartbeat()),
        queue_capacity: *queue_capacity,
        queue_while_disconnected: *queue_while_disconnected,
        keep_queue_on_disconnect: *keep_queue_on_disconnect,
        restore_subscriptions: *restore_subscriptions,
        rate_limit: rate_limit.map(|r| r.config()),
        control_events: *control_events,
        latency_window: *latency_window,
        late_response_window: duration(*late_response_window),
        write_budget: *write_budget,
        write_timeout: write_timeout.map(duration),
    })
}

/// An application heartbeat with the recorded timing (set already).
fn with_heartbeat(b: SessionBuilder, beat: impl AppHeartbeat + 'static) -> SessionBuilder {
    match b.settings().app_heartbeat {
        Some(timing) => b.app_heartbeat(beat, timing.interval, timing.timeout),
        // Recorded without timing, the heartbeat never ran.
        None => b,
    }
}

/// A cost function with the recorded limit (set already).
fn with_cost(b: SessionBuilder, cost: impl Fn(&Message) -> u32 + Send + 'static) -> SessionBuilder {
    match b.settings().rate_limit {
        Some(limit) => b.rate_limit(limit, Some(Box::new(cost))),
        // Without a limit the cost is never asked.
        None => b,
    }
}

/// One of wslink's presets, from its recorded name and settings.
fn preset(hook: Hook, spec: &HookSpec) -> Result<Attach, RebuildError> {
    #[cfg_attr(not(feature = "json"), allow(unused_variables))]
    let setting = |key: &str| {
        spec.settings.get(key).cloned().ok_or_else(|| RebuildError::MissingSetting {
            hook,
            name: spec.name.clone(),
            setting: key.to_owned(),
        })
    };
    #[cfg(feature = "json")]
    use crate::presets;
    let attach: Attach = match (hook, spec.name.as_str()) {
        (Hook::Policy, "DefaultPolicy") => Box::new(|b| b.policy(DefaultPolicy)),
        (Hook::RequestCodec, "NoCodec") => Box::new(|b| b.request_codec(NoCodec)),
        (Hook::SubscriptionCodec, "NoCodec") => Box::new(|b| b.subscription_codec(NoCodec)),
        #[cfg(feature = "json")]
        (Hook::RequestCodec, "JsonRpc") => Box::new(|b| b.request_codec(presets::JsonRpc)),
        #[cfg(feature = "json")]
        (Hook::SubscriptionCodec, "JsonRpcSubscriptions") => {
            let codec = presets::JsonRpcSubscriptions {
                subscribe_method: setting("subscribe_method")?.into(),
                unsubscribe_method: setting("unsubscribe_method")?.into(),
            };
            Box::new(move |b| b.subscription_codec(codec))
        }
        #[cfg(feature = "json")]
        (Hook::Authenticator, "JsonRpcAuth") => {
            let auth = presets::JsonRpcAuth::replaying(setting("method")?)
                .with_recorded_expiry(&spec.settings)
                .map_err(RebuildError::BadSetting)?;
            Box::new(move |b| b.authenticator(auth))
        }
        #[cfg(feature = "json")]
        (Hook::AppHeartbeat, "JsonOpHeartbeat") => Box::new(|b| with_heartbeat(b, presets::JsonOpHeartbeat)),
        #[cfg(feature = "json")]
        (Hook::AppHeartbeat, "DeribitHeartbeat") => Box::new(|b| with_heartbeat(b, presets::DeribitHeartbeat)),
        #[cfg(feature = "json")]
        (Hook::Cost, presets::DERIBIT_COST) => {
            // A function says nothing of itself: named here, as when it was recorded.
            Box::new(|b| with_cost(b, presets::deribit_cost).name_hook(Hook::Cost, presets::DERIBIT_COST))
        }
        _ => return Err(RebuildError::UnknownHook { hook, name: spec.name.clone() }),
    };
    Ok(attach)
}
