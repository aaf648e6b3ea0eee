//! The user's hooks as the session holds them: one slot per hook, each
//! with a default (JSON-RPC codecs with the `json` feature, the default
//! reconnect policy, nothing else).

use crate::hooks::{
    AppHeartbeat, Authenticator, CostFn, DefaultPolicy, HeadersFn, OnErrorFn, OnUpgradeFn, PrepareFn, ReconnectPolicy,
    RequestCodec, RetryFn, SubscriptionCodec,
};

/// The user's hooks; every one has a default.
pub(crate) struct Hooks {
    pub(crate) policy: Box<dyn ReconnectPolicy>,
    pub(crate) retry: Option<RetryFn>,
    /// Answers in place of `policy.on_error` when set.
    pub(crate) on_error: Option<OnErrorFn>,
    pub(crate) codec: Box<dyn RequestCodec>,
    pub(crate) subscriptions: Box<dyn SubscriptionCodec>,
    pub(crate) auth: Option<Box<dyn Authenticator>>,
    pub(crate) app_heartbeat: Option<Box<dyn AppHeartbeat>>,
    pub(crate) headers: Option<HeadersFn>,
    pub(crate) on_upgrade: Option<OnUpgradeFn>,
    pub(crate) prepare: Option<PrepareFn>,
    pub(crate) cost: Option<CostFn>,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            policy: Box::new(DefaultPolicy),
            retry: None,
            on_error: None,
            codec: default_codec(),
            subscriptions: default_subscriptions(),
            auth: None,
            app_heartbeat: None,
            headers: None,
            on_upgrade: None,
            prepare: None,
            cost: None,
        }
    }
}

/// JSON-RPC 2.0 requests with the `json` feature; none without it.
fn default_codec() -> Box<dyn RequestCodec> {
    #[cfg(feature = "json")]
    return Box::new(crate::jsonrpc::JsonRpc);
    #[cfg(not(feature = "json"))]
    return Box::new(crate::hooks::NoCodec);
}

/// JSON-RPC subscriptions with the `json` feature; none without it.
fn default_subscriptions() -> Box<dyn SubscriptionCodec> {
    #[cfg(feature = "json")]
    return Box::new(crate::jsonrpc::JsonRpcSubscriptions::default());
    #[cfg(not(feature = "json"))]
    return Box::new(crate::hooks::NoCodec);
}
