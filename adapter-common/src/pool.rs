//! A pool of clients to one endpoint, with balanced sends and failover, as
//! ZenWebsocket's `ClientSupervisor.send_balanced` and `PoolRouter` do.
//!
//! Each send goes to the healthiest open client: fewest pending requests,
//! then lowest p99 latency, then fewest heartbeat failures. When that client
//! refuses or loses the request, the next healthiest is tried, up to the
//! pool's attempt limit.

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
    /// Every attempt failed; the last error is kept.
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
    /// when a client refuses it or loses the connection before the response.
    /// A timeout is returned as it is: the request may have taken effect.
    pub async fn request_balanced(
        &self,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
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
                Err(e @ (RequestError::Rejected(_) | RequestError::ConnectionLost | RequestError::Dropped)) => last = e,
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
