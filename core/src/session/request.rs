//! Requests: made with the session's own ids, with the caller's
//! (`request_with_id`), or written whole by the caller (`request_message`);
//! each sent at once when the link, the rate limit and the write budget let
//! it, else queued, and each ends exactly once (see `requests.rs`).

use super::*;

impl Session {
    /// Sends a request and returns its id; its outcome arrives as a
    /// `Response` or `RequestFailed` event with that id. `timeout` defaults to
    /// `request_timeout` and runs from now, queued or not.
    pub fn request(
        &mut self,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
        now: Instant,
    ) -> Result<u64, CommandError> {
        self.record(now, || {
            let (method, params) = (method.to_owned(), params.map(str::to_owned));
            Entry::Request { method, params, timeout: timeout.map(crate::record::format::span) }
        });
        self.start_request(None, method, params, timeout, now)
    }

    /// Like [`request`](Self::request), with the caller's own wire id (a
    /// number or a text): the codec writes it, and the response that carries
    /// it ends the request. Returns the request's handle, which its
    /// `Response` or `RequestFailed` event carries. An id still pending is
    /// refused (`DuplicateRequestId`), one the codec cannot write too
    /// (`UnsupportedRequestId`).
    pub fn request_with_id(
        &mut self,
        id: impl Into<RequestId>,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
        now: Instant,
    ) -> Result<u64, CommandError> {
        let id = id.into();
        self.record(now, || {
            let (method, params) = (method.to_owned(), params.map(str::to_owned));
            Entry::RequestWithId { id: id.clone(), method, params, timeout: timeout.map(crate::record::format::span) }
        });
        self.start_request(Some(id), method, params, timeout, now)
    }

    /// A request the caller wrote whole, its id inside (ZenWebsocket's
    /// `send_message`): the codec reads the id from `message`
    /// (`RequestCodec::request_id`; JSON-RPC's top-level `"id"`, a number or
    /// a string) and the response that carries it ends the request. Returns
    /// the request's handle. Refused: a message with no id the codec can
    /// read (`NoRequestId`), an id still pending (`DuplicateRequestId`).
    pub fn request_message(
        &mut self,
        message: Message,
        timeout: Option<Duration>,
        now: Instant,
    ) -> Result<u64, CommandError> {
        self.record(now, || {
            let (text, b64) = payload(&message);
            Entry::RequestMessage { text, b64, timeout: timeout.map(crate::record::format::span) }
        });
        let wire = self.hooks.codec.request_id(&message).ok_or(CommandError::NoRequestId)?;
        self.check_not_closed()?;
        let deadline = after(now, timeout.unwrap_or(self.config.request_timeout));
        let id =
            self.requests.allocate_with(wire, Purpose::User, deadline).map_err(CommandError::DuplicateRequestId)?;
        let cost = match self.admit(&message) {
            Ok(cost) => cost,
            Err(e) => {
                self.requests.complete(id);
                return Err(e);
            }
        };
        if self.sends_flow() && self.has_write_room() && self.outbox.try_pass(cost, now) {
            self.send_request(id, message, now);
        } else {
            self.outbox.push(Queued::RequestMessage { id, message }, cost);
        }
        Ok(id)
    }

    /// A request with the session's id (`wire` `None`) or the caller's.
    pub(super) fn start_request(
        &mut self,
        wire: Option<RequestId>,
        method: &str,
        params: Option<&str>,
        timeout: Option<Duration>,
        now: Instant,
    ) -> Result<u64, CommandError> {
        if let Some(p) = params {
            self.hooks.codec.check_params(p).map_err(CommandError::InvalidParams)?;
        }
        if !self.hooks.codec.encodes() {
            return Err(CommandError::NoRequestCodec);
        }
        self.check_not_closed()?;
        let deadline = after(now, timeout.unwrap_or(self.config.request_timeout));
        let id = match wire {
            None => self.requests.allocate(Purpose::User, deadline),
            Some(wire) => {
                self.requests.allocate_with(wire, Purpose::User, deadline).map_err(CommandError::DuplicateRequestId)?
            }
        };
        let Some(message) = self.encode_request(id, method, params) else {
            let wire = self.requests.complete(id).map_or(RequestId::Number(id), |p| p.wire_id(id));
            return Err(CommandError::UnsupportedRequestId(wire));
        };
        let cost = match self.admit(&message) {
            Ok(cost) => cost,
            Err(e) => {
                self.requests.complete(id);
                return Err(e);
            }
        };
        if self.sends_flow() && self.has_write_room() && self.outbox.try_pass(cost, now) {
            self.send_request(id, message, now);
        } else {
            let (method, params) = (method.to_owned(), params.map(str::to_owned));
            self.outbox.push(Queued::Request { id, method, params }, cost);
        }
        Ok(id)
    }

    /// The message of pending request `id`, written with its wire id; `None`
    /// when the codec cannot write that id.
    pub(super) fn encode_request(&mut self, id: u64, method: &str, params: Option<&str>) -> Option<Message> {
        let wire = self.requests.wire(id)?;
        self.hooks.codec.encode_with(&wire, method, params)
    }
}
