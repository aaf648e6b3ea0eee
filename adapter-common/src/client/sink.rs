//! The [`Client`] as a `futures::Sink<Message>`, for `SinkExt::send`,
//! `send_all` and `StreamExt::forward`.
//!
//! - `poll_ready`: ready once a message would be taken now: the command
//!   queue has room and the session's write budget is not used up (the peer
//!   takes what is written). Otherwise pending, and woken by the driver when
//!   there is room again, never polled in a loop. Once the session has
//!   closed, `ClientError::Command(CommandError::Closed)`; once the driver
//!   has ended, `ClientError::Shutdown`.
//! - `start_send`: hands the message over as `try_send_text` does, without
//!   waiting for the session's answer: a message the session refuses (not
//!   connected with `queue_while_disconnected` off, its queue full ...)
//!   comes back in the event stream as `SessionEvent::Refused`. Messages go
//!   out in the order they were handed over, with those of `send_*` and
//!   `try_send_*`. Another handle may take the room between `poll_ready`
//!   and `start_send`: the message is taken all the same (one past the
//!   bound at most, per handle), never dropped or refused for it.
//! - `poll_flush`: ready once the session has taken every message this
//!   handle handed over before it (each gone into the connection's write
//!   queue, or queued while reconnecting, or refused as an event): what
//!   `send_*().await` waits for. One round trip to the driver per flush,
//!   none when nothing was sent since the last. The driver writes to the
//!   socket as soon as it takes the bytes; a flush does not wait for the
//!   peer to read them. The session closed: `CommandError::Closed`.
//! - `poll_close`: flushes, then closes the session with 1000 and waits
//!   until it has closed, as `close(CloseCode::Normal, "")` does: the whole
//!   client, every clone included, as a WebSocket sink's close ends its
//!   connection (`StreamExt::forward` closes when its stream ends; use
//!   `send_all` to keep the client open). A client already closed closes
//!   with `Ok`.
//!
//! Each clone is a sink of its own: a clone starts with nothing to flush.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::sync::oneshot;
use wslink_core::{CloseCode, CommandError, Message};

use super::Client;
use crate::channels::{Gone, PostClosed};
use crate::command::Command;
use crate::reply::ClientError;

/// What the sink is waiting for: made on its first use, so a handle that
/// is never used as a sink keeps 8 bytes for it.
#[derive(Default)]
pub(super) struct SinkState {
    /// Messages were handed over since the last flush was.
    unflushed: bool,
    /// A flush handed over (or waiting for room in the command queue), and its answer.
    flush: Option<Step>,
    /// The close, likewise.
    close: Option<Step>,
}

/// A command for the driver and the answer it gives.
struct Step {
    /// Still to hand over (the command queue was full).
    command: Option<Command>,
    answer: oneshot::Receiver<Result<(), ClientError>>,
}

impl Step {
    fn new(make: impl FnOnce(oneshot::Sender<Result<(), ClientError>>) -> Command) -> Self {
        let (tx, answer) = oneshot::channel();
        Self { command: Some(make(tx)), answer }
    }

    /// Hands the command over, then waits for its answer.
    fn poll(&mut self, client: &Client, cx: &mut Context<'_>) -> Poll<Result<(), ClientError>> {
        if self.command.is_some() {
            if let Err(Gone) = ready!(client.commands.poll_send(cx, &mut self.command)) {
                return Poll::Ready(Err(ClientError::Shutdown));
            }
        }
        let answer = ready!(Pin::new(&mut self.answer).poll(cx));
        Poll::Ready(answer.unwrap_or(Err(ClientError::Shutdown)))
    }
}

fn closed(why: PostClosed) -> ClientError {
    match why {
        PostClosed::Closed => ClientError::Command(CommandError::Closed),
        PostClosed::Gone => ClientError::Shutdown,
    }
}

impl Client {
    fn sink_state(&mut self) -> &mut SinkState {
        self.sink.get_or_insert_default()
    }

    fn poll_flush_sink(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ClientError>> {
        let Some(mut state) = self.sink.take() else { return Poll::Ready(Ok(())) };
        if state.flush.is_none() && state.unflushed {
            state.flush = Some(Step::new(Command::Flush));
            // Messages handed over from now on are the next flush's.
            state.unflushed = false;
        }
        let done = match state.flush.as_mut() {
            Some(step) => step.poll(self, cx),
            None => Poll::Ready(Ok(())),
        };
        if done.is_ready() {
            state.flush = None;
        }
        self.sink = Some(state);
        done
    }
}

impl futures_sink::Sink<Message> for Client {
    type Error = ClientError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ClientError>> {
        self.commands.poll_post_ready(cx).map_err(closed)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), ClientError> {
        let this = self.get_mut();
        this.commands.post(message).map_err(closed)?;
        this.sink_state().unflushed = true;
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ClientError>> {
        self.get_mut().poll_flush_sink(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ClientError>> {
        let this = self.get_mut();
        // Closed or shut down already: the close below says so, as success.
        let _ = ready!(this.poll_flush_sink(cx));
        let mut state = this.sink.take().unwrap_or_default();
        let step = state.close.get_or_insert_with(|| {
            Step::new(|reply| Command::Close(Box::new((CloseCode::Normal, String::new(), reply))))
        });
        let done = step.poll(this, cx);
        if done.is_ready() {
            state.close = None;
        }
        this.sink = Some(state);
        match ready!(done) {
            Err(ClientError::Command(CommandError::Closed) | ClientError::Shutdown) => Poll::Ready(Ok(())),
            other => Poll::Ready(other),
        }
    }
}
