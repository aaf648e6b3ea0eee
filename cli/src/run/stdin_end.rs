//! When the input is done: the end of stdin waits, up to
//! `--request-timeout`, for what was asked (`--count` messages, or else one
//! message per line sent, counted from the first line handed over), so
//! that an echo or RPC server's answers are read before our close frame;
//! with stdin not read, the run ends once every request has its outcome,
//! if nothing asked to keep listening.
//!
//! Invariant: the run is finished for its input only while the session is
//! open, so nothing sent still waits in the session's queue.

use wslink_adapter::Runtime;
use wslink_core::SessionState;

use super::state::{Finish, Run};
use crate::args::Outgoing;

impl<R: Runtime> Run<R> {
    /// Ends the run when its input is done: stdin has ended (when read) and
    /// what it waits for has come or `--request-timeout` has passed since;
    /// or, with stdin not read, every request has its outcome and nothing
    /// asked to keep listening.
    ///
    /// Only while the session is open: a close before that would drop the
    /// messages still queued for the connection (stdin may end before the
    /// first connection opens, or while it reconnects). The session flushes
    /// its queue in the same turn it reports `Connected`, so once we have
    /// seen the state `Open` nothing we sent waits in the queue; the check
    /// runs again at every `Connected`, message and request outcome, and
    /// when the wait is over.
    pub(super) fn check_input_done(&mut self) {
        if self.finish.is_some() || !self.requests.is_empty() || self.state != SessionState::Open {
            return;
        }
        if self.stdin_read {
            if !self.stdin_ended {
                return;
            }
            if self.awaited_has_come() || self.reply_wait_over {
                return self.stdin_done();
            }
            if self.reply_wait.is_none() {
                self.reply_wait = Some(Box::pin(R::timer(R::now() + self.args.request_timeout)));
            }
            return;
        }
        if self.args.count.is_some() {
            return;
        }
        let asked_to_listen =
            !self.args.subscribe.is_empty() || self.args.outgoing.iter().any(|o| matches!(o, Outgoing::Text(_)));
        let had_requests = self.args.outgoing.iter().any(|o| matches!(o, Outgoing::Request { .. }));
        if had_requests && !asked_to_listen {
            self.finish_with(Finish::InputDone);
        }
    }

    /// Messages that came after the first stdin line was handed over.
    fn replies(&self) -> u64 {
        self.received_before_lines.map_or(0, |before| self.received - before)
    }

    /// Whether what the end of stdin waits for has come: `--count` messages,
    /// or else a message for each line sent.
    fn awaited_has_come(&self) -> bool {
        match self.args.count {
            Some(n) => self.printed >= n,
            None => self.replies() >= self.lines_sent,
        }
    }

    /// Stdin has ended and the wait after it is over: closes, saying what
    /// did not come. Fewer than `--count` messages fails the run; fewer
    /// replies than lines does not (a server need not answer every line).
    fn stdin_done(&mut self) {
        let waited = self.args.request_timeout;
        if self.awaited_has_come() {
            self.finish_with(Finish::InputDone);
        } else if let Some(n) = self.args.count {
            self.console.error(format!(
                "stdin ended, and {} of --count {n} messages came within {waited:?} (--request-timeout)",
                self.printed
            ));
            self.finish_with(Finish::CountShort);
        } else {
            self.console.notice(format!(
                "stdin ended, and {} of {} replies (a message per line sent) came within {waited:?} \
                 (--request-timeout); closing",
                self.replies(),
                self.lines_sent
            ));
            self.finish_with(Finish::InputDone);
        }
    }
}
