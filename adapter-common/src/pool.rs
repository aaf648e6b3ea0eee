//! A pool of clients to one endpoint, with balanced sends and failover, as
//! ZenWebsocket's `ClientSupervisor.send_balanced` and `PoolRouter` do.
//!
//! Each send goes to the healthiest open client: fewest pending requests,
//! then lowest p99 latency, then fewest heartbeat failures. When that client
//! could not send the request (it refused it, or dropped it from its queue
//! unsent), the next healthiest is tried, up to the pool's attempt limit.
//!
//! A request that was sent is not sent again by default: if the connection
//! dies before the response ([`RequestError::ConnectionLost`]) or the response
//! is late ([`RequestError::Timeout`]), the server may have acted on it, and
//! for an order-entry API a second try is a second order. Such an error is
//! returned as it is. [`Pool::request_balanced_idempotent`] is the opt-in for
//! requests that are safe to repeat: it also fails over after a lost
//! connection.

use std::time::Duration;

use wslink_core::SessionState;

use crate::client::{Client, ClientError, Events, RequestError, Response};
use crate::{Builder, Error, Runtime};

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

/// N clients to one endpoint.
#[derive(Debug, Clone)]
pub struct Pool {
    clients: Vec<Client>,
    attempts: usize,
}

impl Pool {
    /// Starts `size` clients from `make` and waits until each is connected;
    /// returns the pool and each client's event stream, in order.
    pub async fn connect<R: Runtime>(
        size: usize,
        make: impl Fn() -> Result<Builder<R>, Error>,
    ) -> Result<(Pool, Vec<Events>), Error> {
        let mut clients = Vec::with_capacity(size);
        let mut events = Vec::with_capacity(size);
        for _ in 0..size.max(1) {
            let (client, stream) = make()?.connect().await?;
            clients.push(client);
            events.push(stream);
        }
        Ok((Pool { clients, attempts: 3 }, events))
    }

    /// A pool over clients started elsewhere.
    pub fn from_clients(clients: Vec<Client>) -> Self {
        Pool { clients, attempts: 3 }
    }

    /// How many clients a balanced call may try. Default 3.
    pub fn with_attempts(mut self, attempts: usize) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The clients, in order.
    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// Open clients, healthiest first.
    pub async fn ranked(&self) -> Vec<usize> {
        let mut scored = Vec::new();
        for (i, client) in self.clients.iter().enumerate() {
            if client.state() != SessionState::Open {
                continue;
            }
            let Ok(m) = client.metrics().await else { continue };
            let p99 = client.latency().await.ok().and_then(|l| l.p99).unwrap_or(Duration::ZERO);
            let failures = client.heartbeat_health().await.map(|h| h.consecutive_failures).unwrap_or(u32::MAX);
            scored.push(((m.session.pending_requests, p99, failures, m.session.reconnects), i));
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
            match self.clients[i].request(method, params, timeout).await {
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
            match self.clients[i].send_text(text).await {
                Ok(()) => return Ok(i),
                Err(e) => last = e,
            }
        }
        Err(PoolError::Exhausted { attempts: tried, last: RequestError::Rejected(last) })
    }
}
