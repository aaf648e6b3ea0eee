//! Closing: a transport's close (its last writes, the server's end of
//! stream, the shutdown), the session's end (what the consumer is owed
//! before its stream ends), and the close the driver makes itself when
//! nobody is left to use the client.
//!
//! Invariants: every close runs on a leash ([`LINGER`] past the wait for
//! the server), so a dead peer cannot hold the task; when the session has
//! closed, every transport's close has finished before the last events go
//! out and `close` returns, so a program that exits when the stream ends
//! loses nothing it wrote.

use std::future::pending;
use std::io;
use std::time::Duration;

use crate::future::or;
use wslink_core::Session;

use super::route::deliver;
use super::state::{Closing, Io, Routing};
use crate::channels::DriverEnd;
use crate::runtime::Runtime;

/// How long a closed transport may take to flush its last bytes (a close
/// frame), on top of the wait for the server's end of stream.
const LINGER: Duration = Duration::from_secs(2);

/// Takes the transport out of `io` and returns its close: the last bytes (a
/// close frame) written, then, when asked, the server's end of stream awaited
/// (RFC 6455 §7.1.1: the server closes TCP first), then the write half shut
/// down; all on a leash, so a dead peer cannot hold it.
pub(super) fn closing<R: Runtime>(io: &mut Io<R>, wait_for_server: Option<Duration>) -> Closing {
    io.opening = None;
    io.write_blocked = false;
    let reader = io.reader.take();
    let out: Vec<Vec<u8>> = io.out.drain(..).collect();
    let pos = std::mem::take(&mut io.out_pos);
    let Some(mut writer) = io.writer.take() else { return Box::pin(async {}) };
    let wait = wait_for_server.unwrap_or_default();
    let leash = LINGER.checked_add(wait).and_then(|l| R::now().checked_add(l));
    Box::pin(async move {
        let close = async {
            for (i, chunk) in out.iter().enumerate() {
                let start = if i == 0 { pos } else { 0 };
                R::write_all(&mut writer, &chunk[start..]).await?;
            }
            if let (Some(mut reader), false) = (reader, wait.is_zero()) {
                let server_ended = async {
                    let mut sink = bytes::BytesMut::with_capacity(4096);
                    loop {
                        let room = wslink_core::ReadRoom::scratch(&mut sink);
                        if !matches!(R::read_buf(&mut reader, room).await, Ok(n) if n > 0) {
                            break;
                        }
                    }
                };
                let waited = async {
                    if let Some(until) = R::now().checked_add(wait) {
                        R::timer(until).await;
                    } else {
                        pending::<()>().await;
                    }
                };
                or(server_ended, waited).await;
            }
            R::shutdown(&mut writer).await
        };
        let leash = async {
            match leash {
                Some(until) => drop(R::timer(until).await),
                None => pending::<()>().await,
            }
            Err(io::Error::new(io::ErrorKind::TimedOut, "the last writes did not finish in time"))
        };
        match or(close, leash).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => tracing::warn!(error = %e, "closing the transport"),
            // The peer is gone: nothing more could be written anyway.
            Err(e) => tracing::debug!(error = %e, "closing the transport"),
        }
    })
}

/// The session has closed: waits for the transports' closes, hands over
/// the events that wait, and answers the callers of `close`. Returns
/// whether the task may end: the consumer has been handed every event.
pub(super) async fn session_end<R: Runtime>(io: &mut Io<R>, r: &mut Routing, channels: &DriverEnd) -> bool {
    if let Some(closing) = io.final_close.take() {
        // Everything written reaches the socket before anyone hears of the close.
        closing.await;
    }
    for earlier in io.earlier_closes.drain(..) {
        // Each on its own leash: the close of a connection replaced before.
        let _ = earlier.await;
    }
    deliver(r, channels, false);
    // `close` returns once the session is closed, even if events still wait to be read.
    for waiter in r.close_waiters.drain(..) {
        let _ = waiter.send(Ok(()));
    }
    r.pending_events.is_empty()
}

/// Closes the session cleanly, once, when nobody holds a handle or reads
/// the stream; returns whether it did (the turn starts again).
pub(super) fn close_if_abandoned<R: Runtime>(session: &mut Session, r: &mut Routing) -> bool {
    if !r.commands_closed || !r.stream_unread() || r.auto_closing {
        return false;
    }
    r.auto_closing = true;
    let _ = session.close(wslink_core::CloseCode::Normal, "", R::now());
    true
}
