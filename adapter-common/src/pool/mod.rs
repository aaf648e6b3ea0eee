//! A supervised pool of clients to one endpoint, with balanced sends and
//! failover, as ZenWebsocket's `ClientSupervisor`, `send_balanced` and
//! `PoolRouter` give them.
//!
//! Supervision: each member is a task (`member.rs`) that restarts the
//! member's session when it ends (it gave up, its policy stopped it,
//! reconnecting was off), on the member's own backoff schedule, for as long
//! as the member belongs to the pool. The pool grows and shrinks while it
//! runs. Every member's events come out of one stream, tagged with the
//! member's index ([`PoolEvents`]), or are discarded for a pool used only for
//! requests ([`MemberEvents::Discard`]), which then never stalls on a reader.
//! Member indices are never reused.
//!
//! Balancing: each send goes to the healthiest open member: fewest pending
//! requests, then lowest p99 latency, then fewest heartbeat failures, then
//! fewest reconnects. When that member could not send the request (it
//! refused it, or dropped it from its queue unsent), the next healthiest is
//! tried, up to the pool's attempt limit.
//!
//! A request that was sent is not sent again by default: if the connection
//! dies before the response ([`RequestError::ConnectionLost`]) or the response
//! is late ([`RequestError::Timeout`]), the server may have acted on it, and
//! for an order-entry API a second try is a second order. Such an error is
//! returned as it is. [`Pool::request_balanced_idempotent`] is the opt-in for
//! requests that are safe to repeat: it also fails over after a lost
//! connection.

mod events;
mod member;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use wslink_core::SessionState;

pub use events::{MemberEvents, PoolEvent, PoolEvents};
use events::{Merged, MERGED_BATCHES};
use member::{FirstOutcome, MakeFn, Member, Shared};

use crate::builder::Builder;
use crate::client::Client;
use crate::error::Error;
use crate::reply::{ClientError, RequestError, Response};
use crate::runtime::Runtime;

/// Why a balanced call failed on every client tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// No client in the pool is open.
    #[error("no open client in the pool")]
    NoneOpen,
    /// The attempts ended in failure: either every client tried refused the
    /// request, or one failed in a way that forbids another try (a timeout, a
    /// lost connection without the idempotent opt-in, a closed session). The
    /// last error is kept.
    #[error("all {attempts} attempts failed, last: {last}")]
    Exhausted {
        /// Attempts made.
        attempts: usize,
        /// The last failure.
        last: RequestError,
    },
}

/// Configures and starts a [`Pool`].
pub struct PoolBuilder<R: Runtime> {
    make: MakeFn<R>,
    size: usize,
    attempts: usize,
    mode: MemberEvents,
}

impl<R: Runtime> PoolBuilder<R> {
    /// A pool of `size` members (default 2).
    pub fn size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }

    /// How many members a balanced call may try. Default 3.
    pub fn attempts(mut self, attempts: usize) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// What to do with the members' session events (default: all of them
    /// to the stream, which must then be read).
    pub fn member_events(mut self, mode: MemberEvents) -> Self {
        self.mode = mode;
        self
    }

    /// Starts every member in the background and returns at once.
    pub fn start(self) -> (Pool, PoolEvents) {
        let discard = matches!(self.mode, MemberEvents::Discard);
        let (tx, rx) = if discard {
            (None, None)
        } else {
            let (tx, rx) = mpsc::channel(MERGED_BATCHES);
            (Some(tx), Some(rx))
        };
        let shared = Arc::new(Shared::default());
        let (make, mode) = (self.make, self.mode);
        let launch_shared = shared.clone();
        let launch: Launch = Box::new(move |index, merged| {
            let member =
                Member::<R> { shared: launch_shared.clone(), index, make: make.clone(), mode: mode.clone(), merged };
            R::spawn(member.run());
        });
        let inner = Inner { shared, launch, merged: Mutex::new(tx) };
        for _ in 0..self.size {
            inner.add();
        }
        let pool = Pool { inner: Arc::new(inner), attempts: self.attempts };
        (pool, PoolEvents { rx, batch: Vec::new().into_iter() })
    }

    /// Starts every member and waits until each has opened once. If a
    /// member's first session fails before opening, the pool is closed and
    /// that failure returned, as `Builder::connect` does for one client.
    pub async fn connect(self) -> Result<(Pool, PoolEvents), Error> {
        let (pool, events) = self.start();
        match pool.first_outcomes().await {
            Ok(()) => Ok((pool, events)),
            Err(e) => {
                pool.close().await;
                Err(e)
            }
        }
    }
}

/// Starts the member task for a new slot.
type Launch = Box<dyn Fn(usize, Option<Merged>) + Send + Sync>;

/// What every handle of one pool shares; dropping the last closes the pool.
struct Inner {
    shared: Arc<Shared>,
    launch: Launch,
    /// The stream's sender for members still to come; `None` once the pool
    /// closes (so the stream ends with the last member) or when discarding.
    merged: Mutex<Option<Merged>>,
}

impl Inner {
    fn merged(&self) -> std::sync::MutexGuard<'_, Option<Merged>> {
        self.merged.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add(&self) -> usize {
        let index = self.shared.add();
        (self.launch)(index, self.merged().clone());
        index
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let count = self.shared.slots().len();
        for index in 0..count {
            self.shared.stop(index);
        }
    }
}

/// A supervised pool of clients to one endpoint (see the module docs).
/// Cloneable; dropping every handle closes every member.
///
/// ```ignore
/// // With `use wslink_tokio::{Builder, MemberEvents, Pool};` (or `wslink_smol`):
/// let (pool, _events) = Pool::builder(|_index| Builder::new("wss://api.example.com/ws"))
///     .size(4)
///     .member_events(MemberEvents::Discard) // requests only: nothing to read
///     .connect()
///     .await?;
/// let (member, response) = pool.request_balanced("public/get_time", None, None).await?;
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
    attempts: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("members", &self.members()).field("attempts", &self.attempts).finish()
    }
}

impl Pool {
    /// A builder for a pool whose member `index` is built by `make(index)`,
    /// at the start and at every restart.
    pub fn builder<R: Runtime>(
        make: impl Fn(usize) -> Result<Builder<R>, Error> + Send + Sync + 'static,
    ) -> PoolBuilder<R> {
        PoolBuilder { make: Arc::new(make), size: 2, attempts: 3, mode: MemberEvents::All }
    }

    /// Starts `size` members from `make`, all events to the stream, and
    /// waits until each has opened once (see [`PoolBuilder::connect`]).
    pub async fn connect<R: Runtime>(
        size: usize,
        make: impl Fn() -> Result<Builder<R>, Error> + Send + Sync + 'static,
    ) -> Result<(Pool, PoolEvents), Error> {
        Self::builder(move |_| make()).size(size).connect().await
    }

    /// How many members a balanced call may try. Default 3.
    pub fn with_attempts(mut self, attempts: usize) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The members in the pool (not leaving), by index.
    pub fn members(&self) -> Vec<usize> {
        let slots = self.inner.shared.slots();
        slots.iter().enumerate().filter(|(_, s)| !s.stopping).map(|(i, _)| i).collect()
    }

    /// How many members the pool has (not counting those leaving).
    pub fn size(&self) -> usize {
        self.members().len()
    }

    /// Member `index`'s current session, while one runs. Closing it does not
    /// remove the member: the pool starts it again (use [`remove`](Self::remove)).
    pub fn client(&self, index: usize) -> Option<Client> {
        self.inner.shared.slots().get(index).filter(|s| !s.stopping).and_then(|s| s.client.clone())
    }

    /// Every member's current session, by index.
    pub fn clients(&self) -> Vec<(usize, Client)> {
        let slots = self.inner.shared.slots();
        slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.stopping)
            .filter_map(|(i, s)| Some((i, s.client.clone()?)))
            .collect()
    }

    /// Adds `count` members, started in the background; returns their indices.
    pub fn grow(&self, count: usize) -> Vec<usize> {
        (0..count).map(|_| self.inner.add()).collect()
    }

    /// Removes member `index`: closes its session and waits until it has
    /// closed. Its last events, then `PoolEvent::Removed`, follow in the
    /// stream. False if it was not in the pool.
    pub async fn remove(&self, index: usize) -> bool {
        let stopped = self.inner.shared.stop(index);
        self.removed(&[index]).await;
        stopped
    }

    /// Removes the `count` newest members (see [`remove`](Self::remove));
    /// returns their indices.
    pub async fn shrink(&self, count: usize) -> Vec<usize> {
        let mut members = self.members();
        let gone = members.split_off(members.len().saturating_sub(count));
        for &index in &gone {
            self.inner.shared.stop(index);
        }
        self.removed(&gone).await;
        gone
    }

    /// Closes every member and waits until each session has closed; the
    /// event stream ends once it has delivered their last events.
    pub async fn close(&self) {
        self.inner.merged().take();
        let all: Vec<usize> = (0..self.inner.shared.slots().len()).collect();
        for &index in &all {
            self.inner.shared.stop(index);
        }
        self.removed(&all).await;
    }

    /// Waits until each of `indices` is removed.
    async fn removed(&self, indices: &[usize]) {
        self.wait_for(|slots| indices.iter().all(|&i| slots.get(i).is_none_or(|s| s.removed))).await;
    }

    /// Waits until every member's first session opened, or returns the first failure.
    async fn first_outcomes(&self) -> Result<(), Error> {
        let mut failure = None;
        self.wait_for(|slots| {
            if let Some(slot) = slots.iter_mut().find(|s| matches!(s.first, FirstOutcome::Failed(_))) {
                if let FirstOutcome::Failed(e) = std::mem::replace(&mut slot.first, FirstOutcome::Reported) {
                    failure = Some(e);
                }
                return true;
            }
            slots.iter().all(|s| !matches!(s.first, FirstOutcome::Waiting))
        })
        .await;
        failure.map_or(Ok(()), Err)
    }

    /// Waits until `done` holds of the slots (checked under their lock, after
    /// every change a member task makes).
    async fn wait_for(&self, mut done: impl FnMut(&mut Vec<member::Slot>) -> bool) {
        let shared = &self.inner.shared;
        loop {
            let changed = shared.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if done(&mut shared.slots()) {
                return;
            }
            changed.await;
        }
    }

    /// Open members, healthiest first.
    pub async fn ranked(&self) -> Vec<usize> {
        let mut scored = Vec::new();
        for (i, client) in self.clients() {
            if client.state() != SessionState::Open {
                continue;
            }
            let Ok(s) = client.snapshot().await else { continue };
            let p99 = s.latency.p99.unwrap_or(Duration::ZERO);
            let failures = s.health.consecutive_failures;
            scored.push(((s.metrics.pending_requests, p99, failures, s.metrics.reconnects), i));
        }
        scored.sort();
        scored.into_iter().map(|(_, i)| i).collect()
    }

    /// Sends a request on the healthiest open client, failing over to the next
    /// only while the request has not left: the client refused it
    /// ([`RequestError::Rejected`]: not connected, closed, queue full) or
    /// dropped it from its queue unsent ([`RequestError::Dropped`]).
    ///
    /// Once sent, it is never sent again: a [`RequestError::ConnectionLost`] or
    /// a [`RequestError::Timeout`] is returned as it is (in
    /// [`PoolError::Exhausted`]), since the server may have acted on it. For
    /// requests that are safe to repeat, see
    /// [`request_balanced_idempotent`](Self::request_balanced_idempotent).
    pub async fn request_balanced(
        &self,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<(usize, Response), PoolError> {
        self.request_with_failover(method, params, timeout, false).await
    }

    /// As [`request_balanced`](Self::request_balanced), and also fails over
    /// when the connection is lost after the request was sent, so the server
    /// may receive it more than once. Only for requests that are safe to
    /// repeat: reads, or writes the server deduplicates (by a client order
    /// id, say). A timeout is still returned as it is: the request may still
    /// be in progress, and another try would only add load.
    pub async fn request_balanced_idempotent(
        &self,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<(usize, Response), PoolError> {
        self.request_with_failover(method, params, timeout, true).await
    }

    /// Tries the ranked clients in turn; `replay_lost` allows another try after
    /// a request was sent and its connection lost.
    async fn request_with_failover(
        &self,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
        replay_lost: bool,
    ) -> Result<(usize, Response), PoolError> {
        let ranked = self.ranked().await;
        if ranked.is_empty() {
            return Err(PoolError::NoneOpen);
        }
        let mut last = RequestError::Rejected(ClientError::Shutdown);
        let mut tried = 0;
        for i in ranked.into_iter().take(self.attempts) {
            tried += 1;
            let Some(client) = self.client(i) else { continue };
            match client.request(method, params, timeout).await {
                Ok(response) => return Ok((i, response)),
                // It never left this client: the next may send it.
                Err(e @ (RequestError::Rejected(_) | RequestError::Dropped)) => last = e,
                // It left and may have taken effect: only the caller can say a repeat is harmless.
                Err(e @ RequestError::ConnectionLost) if replay_lost => last = e,
                Err(e) => return Err(PoolError::Exhausted { attempts: tried, last: e }),
            }
        }
        Err(PoolError::Exhausted { attempts: tried, last })
    }

    /// Sends a text message on the healthiest open client, failing over when refused.
    pub async fn send_balanced(&self, text: &str) -> Result<usize, PoolError> {
        let ranked = self.ranked().await;
        if ranked.is_empty() {
            return Err(PoolError::NoneOpen);
        }
        let mut last = ClientError::Shutdown;
        let mut tried = 0;
        for i in ranked.into_iter().take(self.attempts) {
            tried += 1;
            let Some(client) = self.client(i) else { continue };
            match client.send_text(text).await {
                Ok(()) => return Ok(i),
                Err(e) => last = e,
            }
        }
        Err(PoolError::Exhausted { attempts: tried, last: RequestError::Rejected(last) })
    }
}
