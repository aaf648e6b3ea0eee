//! What a handle asks of the driver: a [`Command`], each with the channel
//! its answer comes back by.
//!
//! Role: below both the channels that carry commands (`channels.rs`) and
//! the handles that make them (`client.rs`), so neither has to reach into
//! the other for it. Invariant: every variant but `Post` holds one pointer;
//! a post holds its message itself (a hot path's one allocation fewer), so
//! a queued command takes 40 bytes whatever it carries.

use std::time::Duration;

use tokio::sync::oneshot;
use wslink_core::{CloseCode, Message, RequestId, SubscribeOptions};

use crate::reply::{Reply, RequestError, Response, Snapshot};

/// What a handle asks of the driver.
///
/// Every variant but `Post` holds one pointer, so a queued command takes 40 bytes.
pub(crate) enum Command {
    Send(Box<(Message, Reply<()>)>),
    /// A message whose sender does not wait: a refusal becomes a `Refused` event.
    Post(Message),
    Request(Box<RequestCommand>),
    Subscribe(Box<(Vec<String>, SubscribeOptions, Reply<()>)>),
    Unsubscribe(Box<(Vec<String>, Reply<()>)>),
    Reconnect(Reply<()>),
    /// A protocol ping (`true`) or pong with this payload.
    Control(Box<(bool, bytes::Bytes, Reply<()>)>),
    Close(Box<(CloseCode, String, Reply<()>)>),
    Snapshot(oneshot::Sender<Snapshot>),
    /// The `Sink`'s flush: answered once every message handed over before
    /// it has been taken by the session (held behind them while the write
    /// budget has no room, as they are).
    Flush(Reply<()>),
}

/// A request handed to the driver.
pub(crate) struct RequestCommand {
    pub(crate) body: RequestBody,
    pub(crate) timeout: Option<Duration>,
    pub(crate) reply: oneshot::Sender<Result<Response, RequestError>>,
}

/// What a request is made of.
pub(crate) enum RequestBody {
    /// A method and its parameters, with the session's id (`id` `None`) or the caller's.
    Call { id: Option<RequestId>, method: String, params: Option<String> },
    /// The caller's whole request, its id inside.
    Whole(Message),
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_queued_command_takes_40_bytes() {
        assert_eq!(std::mem::size_of::<super::Command>(), 40);
    }
}
