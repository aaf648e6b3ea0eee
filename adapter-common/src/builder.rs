//! Building a client: the session's settings and hooks (through
//! `wslink_core::SessionBuilder`), plus what only an adapter has: TLS, the
//! TCP sockets' options, the resolver (a function or a future), the
//! caller's own connector, the proxy (by default the environment's, read
//! here and decided by `wslink_core::proxy`), and the size of the event
//! stream (the transport's setters are in `builder/transport.rs`). Generic
//! over the runtime; each adapter names it once
//! (`wslink_tokio::Builder = Builder<Tokio>`).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use wslink_core::proxy::Proxy;
use wslink_core::{
    hooks, BackoffConfig, CloseCode, DeflateConfig, Message, PingConfig, RateLimit, Session, SessionBuilder,
    SessionConfig, WsUrl,
};

use crate::channels::{channels, FirstOutcome};
use crate::client::{encode_state, Client, Events};
use crate::dial::{ConnectFn, Dial, ResolveFn};
use crate::driver::{Driver, Opener};
use crate::error::Error;
use crate::filter::EventFilter;
use crate::inline::InlineClient;
use crate::runtime::{spawn, Runtime, Spawner};
use crate::socket::SocketOptions;
use crate::telemetry::{Settings, Telemetry};
use crate::tls::TlsOptions;

mod transport;

/// Configures and starts a client. Every session setting and hook of
/// `wslink_core` is here, plus TLS, the sockets' options, the resolver and
/// the event buffer.
///
/// ```ignore
/// // With `use wslink_tokio::{presets, Builder};` (or `wslink_smol`):
/// let (client, mut events) = Builder::new("wss://test.deribit.com/ws/api/v2")?
///     .app_heartbeat(presets::DeribitHeartbeat, Duration::from_secs(30), Duration::from_secs(10))
///     .authenticator(presets::JsonRpcAuth::new("public/auth", |_| r#"{"grant_type":"client_credentials"}"#.into()))
///     .connect()
///     .await?;
/// client.subscribe(&["trades.BTC-PERPETUAL.raw"]).await?;
/// let time = client.request("public/get_time", None, None).await;
/// while let Some(event) = events.recv().await {
///     println!("{event:?}");
/// }
/// ```
/// (Compiled as doctests in the adapter crates.)
pub struct Builder<R: Runtime> {
    session: SessionBuilder,
    tls: TlsOptions,
    /// `None`: the environment's proxy variables, read when the client starts.
    proxy: Option<Proxy>,
    /// The URL, for the proxy's decision.
    url: WsUrl,
    /// The caller's resolver, sync ones answering with a ready future.
    resolver: Option<Arc<ResolveFn>>,
    /// The caller's connector: resolving, TCP and the proxy are its.
    connector: Option<Arc<ConnectFn<R>>>,
    spawner: Option<Spawner>,
    event_capacity: usize,
    #[cfg(feature = "record")]
    recorder: Option<Box<dyn wslink_core::record::Recorder>>,
    /// Whether the URL is `wss` (a TLS configuration is built only then).
    secure: bool,
    /// What spans and metrics call this client.
    telemetry: Settings,
    /// Between the starts of connection attempts to a host's addresses.
    attempt_delay: Duration,
    /// The TCP sockets' options.
    socket: SocketOptions,
    /// Which events go to the stream.
    filter: EventFilter,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime> Builder<R> {
    /// A builder for `url` with every default: reconnect with Fresh's backoff,
    /// pings every 15 s, JSON-RPC requests and subscriptions, webpki roots.
    pub fn new(url: &str) -> Result<Self, Error> {
        let parsed = wslink_core::WsUrl::parse(url)?;
        Ok(Self {
            secure: parsed.is_secure(),
            telemetry: Settings::new(&parsed),
            session: Session::builder(url)?,
            tls: TlsOptions::default(),
            proxy: None,
            url: parsed,
            resolver: None,
            connector: None,
            spawner: None,
            event_capacity: 1024,
            #[cfg(feature = "record")]
            recorder: None,
            filter: EventFilter::All,
            attempt_delay: wslink_core::DEFAULT_ATTEMPT_DELAY,
            socket: SocketOptions::new(),
            runtime: PhantomData,
        })
    }

    /// Changes any session setting directly.
    pub fn config(mut self, f: impl FnOnce(&mut SessionConfig)) -> Self {
        self.session = self.session.config(f);
        self
    }

    /// Adds a fixed upgrade header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.session = self.session.header(name, value);
        self
    }

    /// Offers a subprotocol.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.session = self.session.subprotocol(protocol);
        self
    }

    /// The reconnect schedule.
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.session = self.session.backoff(backoff);
        self
    }

    /// Turns reconnecting off (`false`): the first disconnect closes the
    /// client with `Closed { reason: Stopped }`. On by default.
    pub fn reconnect(mut self, on: bool) -> Self {
        self.session = self.session.reconnect(on);
        self
    }

    /// The largest message accepted (default 64 MiB): a larger one closes the connection with 1009.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.session = self.session.max_message_size(bytes);
        self
    }

    /// The largest frame accepted (default 16 MiB): a larger one closes the connection with 1009.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.session = self.session.max_frame_size(bytes);
        self
    }

    /// Subscribes the subscription set again after every reconnect (`true`,
    /// the default), or not: for servers that restore subscriptions
    /// themselves, where a second subscribe is an error.
    /// `SubscribeOptions::restore` overrides it per subscription.
    pub fn restore_subscriptions(mut self, on: bool) -> Self {
        self.session = self.session.restore_subscriptions(on);
        self
    }

    /// Delivers the server's pings and pongs as `SessionEvent::Ping` and
    /// `SessionEvent::Pong` (off by default; pings are delivered anyway when
    /// `auto_pong` is off, for the user to answer with `Client::pong`).
    pub fn control_events(mut self, on: bool) -> Self {
        self.session = self.session.control_events(on);
        self
    }

    /// Answers the server's pings by itself (`true`, the default), or leaves
    /// them to the user (`false`: each arrives as `SessionEvent::Ping`).
    pub fn auto_pong(mut self, on: bool) -> Self {
        self.session = self.session.config(|c| c.connection.auto_pong = on);
        self
    }

    /// Gives up after `max` attempts in a row that failed to open (the
    /// transport, the upgrade, or authentication failed), the first attempt
    /// included (`None`: never), with `Closed { reason: GaveUp }`. An attempt
    /// that opened starts the count again, however soon its connection
    /// ended; the reconnect delays keep growing until a connection stays up
    /// for `backoff.reset_after` (see `BackoffConfig`).
    pub fn max_attempts(mut self, max: Option<u32>) -> Self {
        self.session = self.session.max_attempts(max);
        self
    }

    /// Protocol pings (`None` turns them off). While reading is paused
    /// because the event stream is full, the pong deadline and the next ping
    /// wait: a slow consumer never makes a live link look dead, and a link
    /// that died meanwhile is found at most `interval + timeout` after the
    /// consumer catches up.
    pub fn ping(mut self, ping: Option<PingConfig>) -> Self {
        self.session = self.session.ping(ping);
        self
    }

    /// Closes the link when nothing arrives for `idle` (time with reading
    /// paused for a slow consumer does not count).
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.session = self.session.idle_timeout(idle);
        self
    }

    /// Offers permessage-deflate (RFC 7692) on every connection; `None`, the
    /// default, does not. What the server agreed to is in
    /// `SessionEvent::Connected`'s response, what it saved in the metrics.
    pub fn compression(mut self, deflate: Option<DeflateConfig>) -> Self {
        self.session = self.session.compression(deflate);
        self
    }

    /// An application heartbeat with its timing.
    pub fn app_heartbeat(
        mut self,
        beat: impl hooks::AppHeartbeat + 'static,
        interval: Duration,
        timeout: Duration,
    ) -> Self {
        self.session = self.session.app_heartbeat(beat, interval, timeout);
        self
    }

    /// Decisions on disconnects and errors.
    pub fn policy(mut self, policy: impl hooks::ReconnectPolicy + 'static) -> Self {
        self.session = self.session.policy(policy);
        self
    }

    /// Decides on every error (the transport, TLS, the handshake, a protocol
    /// violation, a heartbeat, authentication ...) in place of the policy's
    /// `on_error`, whether [`policy`](Self::policy) is set before or after:
    /// for an error that ended the connection, `Decision::Stop` stops the
    /// client (`Closed { reason: Stopped }`) and any other answer leaves the
    /// decision to the policy's `on_disconnect`; an authentication error is
    /// decided by the answer alone. See `wslink_core::hooks::ReconnectPolicy`
    /// for the order.
    pub fn on_error(mut self, f: impl FnMut(&hooks::SessionError) -> hooks::Decision + Send + 'static) -> Self {
        self.session = self.session.on_error(f);
        self
    }

    /// A retry function that decides every reconnect delay, or stops.
    pub fn retry(mut self, f: impl FnMut(&hooks::RetryContext<'_>) -> Option<Duration> + Send + 'static) -> Self {
        self.session = self.session.retry(f);
        self
    }

    /// An authentication step after every upgrade.
    pub fn authenticator(mut self, auth: impl hooks::Authenticator + 'static) -> Self {
        self.session = self.session.authenticator(auth);
        self
    }

    /// How requests are encoded and matched.
    pub fn request_codec(mut self, codec: impl hooks::RequestCodec + 'static) -> Self {
        self.session = self.session.request_codec(codec);
        self
    }

    /// How subscriptions are spoken.
    pub fn subscription_codec(mut self, codec: impl hooks::SubscriptionCodec + 'static) -> Self {
        self.session = self.session.subscription_codec(codec);
        self
    }

    /// Upgrade headers computed for each attempt.
    pub fn headers_fn(mut self, f: impl FnMut(u32) -> Vec<(String, String)> + Send + 'static) -> Self {
        self.session = self.session.headers_fn(f);
        self
    }

    /// Messages sent right after each upgrade.
    pub fn on_upgrade(mut self, f: impl FnMut() -> Vec<Message> + Send + 'static) -> Self {
        self.session = self.session.on_upgrade(f);
        self
    }

    /// Rewrites each user message before it is sent.
    pub fn prepare(mut self, f: impl FnMut(Message) -> Message + Send + 'static) -> Self {
        self.session = self.session.prepare(f);
        self
    }

    /// Like [`prepare`](Self::prepare), and may drop a message (`None`): it
    /// is not sent, and a request dropped so fails at once with `RequestError::Dropped`.
    pub fn prepare_or_drop(mut self, f: impl FnMut(Message) -> Option<Message> + Send + 'static) -> Self {
        self.session = self.session.prepare_or_drop(f);
        self
    }

    /// A token-bucket rate limit with an optional cost per message.
    pub fn rate_limit(mut self, limit: RateLimit, cost: Option<hooks::CostFn>) -> Self {
        self.session = self.session.rate_limit(limit, cost);
        self
    }

    /// Which session events go to the stream (default: all, and the stream
    /// must then be read). A client used only for sends and requests, whose
    /// stream nobody reads, discards them (`EventFilter::Discard`): it never
    /// pauses reading for a reader that does not exist, and `request().await`
    /// gets its response whatever the stream holds.
    pub fn event_filter(mut self, filter: EventFilter) -> Self {
        self.filter = filter;
        self
    }

    /// The most bytes waiting to be written (data, pongs, close) before
    /// `send_*().await` waits and `try_send_*` answers `Full`: the one bound
    /// on the write side's memory whatever the peer does. Default 1 MiB
    /// (`wslink_core::DEFAULT_WRITE_BUDGET`, which says why); one message may
    /// take it past the budget, so a larger message still goes out.
    pub fn write_budget(mut self, bytes: usize) -> Self {
        self.session = self.session.write_budget(bytes);
        self
    }

    /// How long the peer may take none of the bytes waiting to be written
    /// before the connection ends with `DisconnectReason::WriteTimeout`
    /// (default 30 s; `None`: never). A peer that stopped reading is dead
    /// to a sender however much it still says.
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.session = self.session.write_timeout(timeout);
        self
    }

    /// How many events wait for the consumer before reading pauses. Default 1024.
    /// Reading also pauses while 256 KiB of payload waits, whatever the count.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Runs the client's task (and the short task that flushes a closing
    /// connection) with `spawn` instead of the runtime's default executor.
    /// With smol, run it on the executor the consumer runs on, so that
    /// events do not cross threads:
    /// `builder.spawn_with(move |task| executor.spawn(task).detach())`.
    pub fn spawn_with(
        mut self,
        spawn: impl Fn(Pin<Box<dyn Future<Output = ()> + Send>>) + Send + Sync + 'static,
    ) -> Self {
        self.spawner = Some(Arc::new(spawn));
        self
    }

    /// Records the session: every input and output, in the compact
    /// encoding (`wslink_core::record::compact`; the bytes read raw, a run
    /// of messages as one record), into `recorder` (a
    /// [`FileRecorder`](crate::FileRecorder), a
    /// `wslink_core::record::MemoryRecorder`, or your own; it must not
    /// block), one chunk per turn of the driver. Replay it with
    /// `wslink_core::replay`; `Recording::to_lines` shows it as JSON Lines.
    /// The client's random source is then seeded from the OS once and the
    /// seed kept in the recording.
    #[cfg(feature = "record")]
    #[cfg_attr(docsrs, doc(cfg(feature = "record")))]
    pub fn record(mut self, recorder: impl wslink_core::record::Recorder + 'static) -> Self {
        self.recorder = Some(Box::new(recorder));
        self
    }

    /// Names a hook for a recording, so that a replay rebuilds the session
    /// from the file alone and finds the hook by this name in its registry
    /// (`wslink_core::replay::HookRegistry`): a closure hook (`prepare`,
    /// `retry`, `on_error`, `headers_fn`, `on_upgrade`, the rate limit's
    /// cost) or a hook of your own type needs one; presets name themselves.
    /// See `wslink_core::SessionBuilder::name_hook`.
    #[cfg(feature = "record")]
    #[cfg_attr(docsrs, doc(cfg(feature = "record")))]
    pub fn name_hook(mut self, hook: wslink_core::record::Hook, name: impl Into<String>) -> Self {
        self.session = self.session.name_hook(hook, name);
        self
    }

    /// The `client` label of every metric this client pushes (feature
    /// `metrics`; the table is in [`telemetry`](crate::telemetry)). Defaults
    /// to the URL's `host:port`. Give each client, or each group of
    /// clients whose figures should add up (a pool), a name of its own; a
    /// name per connection or per request would make series without bound.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics_label(mut self, name: impl Into<String>) -> Self {
        self.telemetry.label = name.into();
        self
    }

    /// Marks a header's value secret, so a recording redacts it.
    pub fn sensitive_header(mut self, name: impl Into<String>) -> Self {
        self.session = self.session.sensitive_header(name);
        self
    }

    /// The reconnect schedule set so far; a pool restarts a member on it.
    pub(crate) fn backoff_config(&self) -> BackoffConfig {
        self.session.settings().backoff.clone()
    }

    /// Starts the client in a new task of the runtime and returns at once; it
    /// connects, and reconnects, in the background.
    pub fn start(self) -> Result<(Client, Events), Error> {
        let (driver, client, events) = self.build(false)?;
        spawn::<R>(driver.spawner.clone().as_ref(), driver.run());
        Ok((client, events))
    }

    /// Starts the client driven by the task that uses it: no task of its
    /// own, no wake-up across tasks (see [`InlineClient`]). Returns at once;
    /// it connects while the returned client is awaited.
    pub fn start_inline(self) -> Result<InlineClient, Error> {
        self.inline(false)
    }

    /// [`start_inline`](Self::start_inline), then waits for the first
    /// connection to open, as [`connect`](Self::connect) does. Every event,
    /// the first `Connected` included, still comes from `recv`.
    pub async fn connect_inline(self) -> Result<InlineClient, Error> {
        let mut inline = self.inline(true)?;
        let client = inline.client();
        match outcome(inline.drive_until(client.first_outcome()).await) {
            Ok(()) => Ok(inline),
            Err(e) => {
                if matches!(e, Error::Connect(_)) {
                    let _ = inline.close(CloseCode::Normal, "").await;
                }
                Err(e)
            }
        }
    }

    fn inline(self, report_first: bool) -> Result<InlineClient, Error> {
        let (driver, client, events) = self.build(report_first)?;
        let (spawner, spill_limit) = (driver.spawner.clone(), driver.event_capacity);
        let finish: crate::inline::Finish = Box::new(move |rest| spawn::<R>(spawner.as_ref(), rest));
        Ok(InlineClient::new(Box::pin(driver.run()), client, events, spill_limit, finish))
    }

    /// The session, its driver and the handles, not yet running; with
    /// `report_first`, the driver stores how the first attempt ends for `connect`.
    fn build(self, report_first: bool) -> Result<(Driver<R>, Client, Events), Error> {
        self.socket.check()?;
        let now = R::now();
        // The thread's generator is seeded from the OS: a typed error here
        // if the OS has no randomness to give, rather than a panic later.
        let mut seed = [0u8; 32];
        wslink_core::RandomSource::fill(&mut wslink_core::OsRandom::new()?, &mut seed);
        #[cfg_attr(not(feature = "record"), allow(unused_mut))]
        let mut builder = self.session;
        #[cfg(feature = "record")]
        if let Some(recorder) = self.recorder {
            builder = builder.recorder(BoxedRecorder(recorder), seed);
        }
        let proxy = match self.proxy {
            // The connector reaches the host its own way: no proxy, and the environment is not read.
            _ if self.connector.is_some() => Proxy::none(),
            Some(proxy) => proxy,
            None => {
                let (proxy, skipped) = Proxy::from_env_vars(
                    std::env::vars_os()
                        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?))),
                );
                // Each names its variable, never the value (which may hold a password).
                for reason in &skipped {
                    tracing::warn!(%reason, "a proxy environment variable is ignored");
                }
                proxy
            }
        };
        let proxy = proxy.for_url(&self.url).cloned().map(Arc::new);
        let mut session = builder.build(Box::new(ThreadRandom), now)?;
        // Building a TLS configuration parses every root certificate: only
        // for wss, or an https:// proxy (whose certificate the same roots check).
        let tls =
            if self.secure || proxy.as_ref().is_some_and(|p| p.uses_tls()) { Some(self.tls.build()?) } else { None };
        session.connect(now)?;
        let dial = match (self.connector, self.resolver) {
            (Some(connect), _) => Some(Arc::new(Dial::Connect(connect))),
            (None, Some(resolve)) => Some(Arc::new(Dial::Resolve(resolve))),
            (None, None) => None,
        };
        let (commands, channels, events) = channels(encode_state(session.state()));
        let driver = Driver {
            session: Box::new(session),
            channels,
            event_capacity: self.event_capacity,
            opener: Opener {
                tls,
                dial,
                proxy,
                attempt_delay: self.attempt_delay,
                socket: (self.socket != SocketOptions::new()).then(|| Box::new(self.socket)),
            },
            spawner: self.spawner.clone(),
            telemetry: Telemetry::start(self.telemetry),
            filter: self.filter,
            report_first,
        };
        Ok((driver, Client::new(commands), Events { rx: events, batch: std::collections::VecDeque::new() }))
    }

    /// Starts the client and waits for its first connection to open. If the
    /// first attempt fails, the client is shut down and the reason returned;
    /// once connected, it reconnects by itself. The stream holds every event
    /// from the start, the first `Connected` included: reset per-connection
    /// state on each `Connected` and none is missed.
    pub async fn connect(self) -> Result<(Client, Events), Error> {
        let (driver, client, events) = self.build(true)?;
        spawn::<R>(driver.spawner.clone().as_ref(), driver.run());
        match outcome(client.first_outcome().await) {
            Ok(()) => Ok((client, events)),
            Err(e) => {
                if matches!(e, Error::Connect(_)) {
                    let _ = client.close(CloseCode::Normal, "").await;
                }
                Err(e)
            }
        }
    }
}

/// What the first attempt's outcome means for `connect`: open, or the error
/// (after a failed attempt the caller closes the session).
fn outcome(first: Option<FirstOutcome>) -> Result<(), Error> {
    match first {
        Some(FirstOutcome::Connected) => Ok(()),
        Some(FirstOutcome::Failed(reason)) => Err(Error::Connect(reason)),
        Some(FirstOutcome::Closed(reason)) => Err(Error::Closed(reason)),
        None => Err(Error::Closed(wslink_core::CloseReason::Stopped)),
    }
}

/// A boxed recorder handed on as one.
#[cfg(feature = "record")]
struct BoxedRecorder(Box<dyn wslink_core::record::Recorder>);

#[cfg(feature = "record")]
impl wslink_core::record::Recorder for BoxedRecorder {
    fn record(&mut self, chunk: &mut Vec<u8>, lines: u64) {
        self.0.record(chunk, lines);
    }
}

/// The session's randomness (masking keys, backoff jitter), drawn from the
/// thread's generator (`rand::rng()`: ChaCha, seeded from the OS and reseeded
/// as it goes), as RFC 6455 wants masking keys the server cannot predict.
/// A unit: an idle client keeps no generator of its own (a boxed `StdRng`
/// was 320 bytes per client).
struct ThreadRandom;

impl wslink_core::RandomSource for ThreadRandom {
    fn next_u32(&mut self) -> u32 {
        rand::Rng::next_u32(&mut rand::rng())
    }
    fn fill(&mut self, dest: &mut [u8]) {
        rand::Rng::fill_bytes(&mut rand::rng(), dest)
    }
}
