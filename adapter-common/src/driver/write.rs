//! The write path: the session's transmits written in order, at once when
//! the socket takes them (before the turn waits), else by the wait's write
//! future; every write reported to the session, which bounds what may wait
//! to be written.
//!
//! Invariant: while a write waits for room in the socket (`write_blocked`),
//! no second write is tried each turn; the wait's write future completes it.

use std::io;

use crate::future::poll_once;
use wslink_core::Session;

use super::state::Io;
use crate::runtime::Runtime;

/// Writes the head of the write queue if the socket takes it without
/// waiting, and accounts for it; returns whether it wrote (or failed), so
/// the turn starts again. The socket almost always takes it at once, and
/// leaving it to the wait would cost a whole turn (every future polled
/// again) per send. With nothing to write, or the socket full, it returns
/// `false`, and a full socket is left to the wait's write future.
pub(super) async fn write_at_once<R: Runtime>(session: &mut Session, io: &mut Io<R>) -> bool {
    let written = match (io.writer.as_mut(), io.out.front()) {
        (Some(writer), Some(chunk)) => poll_once(R::write(writer, &chunk[io.out_pos..])).await,
        _ => None,
    };
    match written {
        Some(result) => {
            on_written::<R>(session, io, result);
            true
        }
        None => {
            io.write_blocked = io.writer.is_some() && !io.out.is_empty();
            false
        }
    }
}

/// Accounts for a write: drops what went out and tells the session, or
/// hands the error to the session.
pub(super) fn on_written<R: Runtime>(session: &mut Session, io: &mut Io<R>, result: io::Result<usize>) {
    match result {
        // A transport that takes nothing of a non-empty buffer is broken; without this the driver would spin.
        Ok(0) => session.handle_transport_error(io::ErrorKind::WriteZero, "the transport took no bytes", R::now()),
        Ok(n) => {
            session.handle_written(n, R::now());
            io.out_pos += n;
            if io.out.front().is_some_and(|b| io.out_pos >= b.len()) {
                if let Some(written) = io.out.pop_front() {
                    // A busy link encodes its next frames into it.
                    session.recycle_transmit(written);
                }
                io.out_pos = 0;
                if !session.is_busy() {
                    // Everything may be written: an idle client keeps no
                    // write queue (a busy one keeps it until its next timer).
                    io.trim();
                }
            }
        }
        Err(e) => session.handle_transport_error(e.kind(), &e.to_string(), R::now()),
    }
}
