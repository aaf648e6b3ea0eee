//! Finishing a run: why we finish (recorded once) and the close that asks
//! for, then the exit code once the event stream has ended, with what a
//! failed connection is told.
//!
//! Invariants: every way of ending that is ours goes through
//! [`Run::finish_with`], which asks the client to close with 1000 and
//! leaves the loop draining events until the stream ends, so the close
//! handshake completes; the exit code is decided once, after the stream
//! has ended, from why we finished or (if the session ended by itself) from
//! how it closed.

use wslink_adapter::{Error, Runtime};
use wslink_core::{CloseCode, CloseReason, DisconnectReason, WsUrl};

use super::state::{Finish, Run};
use crate::exit::{self, Exit};

impl<R: Runtime> Run<R> {
    /// Records why the run finishes and asks the client to close with 1000;
    /// the loop goes on until the event stream ends. Only the first reason counts.
    pub(super) fn finish_with(&mut self, finish: Finish) {
        if self.finish.is_some() {
            return;
        }
        self.finish = Some(finish);
        // Stdin is done with: its thread sees the channel closed at its next line.
        self.lines = None;
        let client = self.client.clone();
        // A session that has closed already refuses the close: nothing to
        // report, since the event stream ends all the same.
        self.closing = Some(Box::pin(async move {
            let _ = client.close(CloseCode::Normal, "").await;
        }));
    }

    /// The exit code, once the event stream has ended; reports a failed connection.
    pub(super) fn exit_code(&mut self) -> Exit {
        let exit = match self.finish {
            Some(Finish::Count | Finish::InputDone) => Exit::Done,
            Some(Finish::Signal(exit)) => exit,
            Some(Finish::NoConnection(exit)) => exit,
            Some(Finish::BadInput) => Exit::Usage,
            Some(Finish::CountShort) => Exit::Failed,
            Some(Finish::OutputFailed) => Exit::Failed,
            None => match &self.closed {
                Some(closed) => exit::for_session_end(closed, self.last_disconnect.as_ref(), self.ever_connected),
                // The stream ended without `Closed`: the driver is gone.
                None => Exit::Failed,
            },
        };
        match (exit, &self.last_disconnect, &self.closed) {
            (Exit::NoConnection | Exit::Tls, Some(reason), closed) if !self.ever_connected => {
                let message = connect_error(&self.args.url, reason);
                self.console.error(message);
                if let Some(gave_up @ CloseReason::GaveUp { .. }) = closed {
                    self.console.error(gave_up);
                }
            }
            (Exit::NoConnection | Exit::Tls, Some(reason), Some(closed)) => {
                self.console.error(format!("{closed}; the last disconnect: {reason}"));
            }
            (Exit::ClosedWithError, Some(reason), _) => self.console.error(reason),
            _ => {}
        }
        if exit == Exit::Done && (self.request_failed || self.output_failed) {
            return Exit::Failed;
        }
        exit
    }
}

/// Why the first connection failed, as the library says it ("could not
/// connect: ..."), naming the address when the transport did not open, and
/// suggesting `ws://` when a `wss://` URL may point at a plain server.
fn connect_error(url: &str, reason: &DisconnectReason) -> String {
    let Ok(url) = WsUrl::parse(url) else { return Error::Connect(reason.clone()).to_string() };
    let addr = format!("{}:{}", url.host(), url.port());
    match reason {
        DisconnectReason::ConnectFailed { .. } => format!("could not connect to {addr}: {reason}"),
        DisconnectReason::Tls { failure, .. } if !failure.is_certificate() => {
            // The path as `redacted_text` shows it: no query.
            let path = url.redacted_text().splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_default();
            format!(
                "could not connect: {reason}; the server at {addr} may not speak TLS: \
                 for a plain WebSocket server use ws://{addr}{path}"
            )
        }
        _ => Error::Connect(reason.clone()).to_string(),
    }
}
