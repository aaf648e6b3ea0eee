//! What a recording keeps of the session's configuration (format 3): every
//! plain setting and each hook by name, which `replay::rebuild` turns back
//! into a builder. Each struct is taken apart whole (no `..`): a field or a
//! hook added to the session fails to compile here until the recording
//! carries it (and `replay::rebuild` sets it again).

use std::collections::BTreeMap;

use super::config::SessionConfig;
use super::hook_set::Hooks;
use crate::record::settings::{span, Hook, HookSpec, RateLimitSettings, Settings, Timing};

/// The settings as a recording keeps them, sensitive header values redacted.
pub(super) fn settings(config: &SessionConfig, sensitive_headers: &[String]) -> Settings {
    let SessionConfig {
        request,
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
    } = config;
    let shown = request.redacted(sensitive_headers);
    Settings {
        subprotocols: shown.subprotocols().to_vec(),
        extensions: shown.extensions().to_vec(),
        headers: shown.headers().to_vec(),
        connection: connection.into(),
        backoff: backoff.into(),
        reconnect: *reconnect,
        reconnect_on_error: *reconnect_on_error,
        connect_timeout: span(*connect_timeout),
        auth_timeout: span(*auth_timeout),
        request_timeout: span(*request_timeout),
        ping: ping.map(Timing::from),
        idle_timeout: idle_timeout.map(span),
        app_heartbeat: app_heartbeat.map(Timing::from),
        queue_capacity: *queue_capacity,
        queue_while_disconnected: *queue_while_disconnected,
        keep_queue_on_disconnect: *keep_queue_on_disconnect,
        restore_subscriptions: *restore_subscriptions,
        rate_limit: rate_limit.map(RateLimitSettings::from),
        control_events: *control_events,
        latency_window: *latency_window,
        late_response_window: span(*late_response_window),
        write_budget: *write_budget,
        write_timeout: write_timeout.map(span),
    }
}

/// Each hook set, by the name the user gave it, else the name it gives
/// itself (a preset's), else unnamed (`None`).
pub(super) fn hooks(hooks: &Hooks, names: &BTreeMap<Hook, String>) -> BTreeMap<Hook, Option<HookSpec>> {
    let Hooks {
        policy,
        retry,
        on_error,
        codec,
        subscriptions,
        auth,
        app_heartbeat,
        headers,
        on_upgrade,
        prepare,
        cost,
    } = hooks;
    let set: [(Hook, Option<Option<HookSpec>>); 11] = [
        (Hook::Policy, Some(policy.recorded_as())),
        (Hook::Retry, retry.as_ref().map(|_| None)),
        (Hook::OnError, on_error.as_ref().map(|_| None)),
        (Hook::RequestCodec, Some(codec.recorded_as())),
        (Hook::SubscriptionCodec, Some(subscriptions.recorded_as())),
        (Hook::Authenticator, auth.as_ref().map(|a| a.recorded_as())),
        (Hook::AppHeartbeat, app_heartbeat.as_ref().map(|a| a.recorded_as())),
        (Hook::HeadersFn, headers.as_ref().map(|_| None)),
        (Hook::OnUpgrade, on_upgrade.as_ref().map(|_| None)),
        (Hook::Prepare, prepare.as_ref().map(|_| None)),
        (Hook::Cost, cost.as_ref().map(|_| None)),
    ];
    set.into_iter()
        .filter_map(|(hook, own)| {
            let own = own?;
            Some((hook, names.get(&hook).map(HookSpec::new).or(own)))
        })
        .collect()
}
