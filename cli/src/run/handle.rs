//! What comes in, taken in: the session's events (notices, messages, the
//! state, how it ended), stdin lines (sent, or refused with a reason),
//! request outcomes, and the status line's figures.
//!
//! Invariant: nothing printed quotes the URL as typed: notices show the
//! parsed URL's redacted text (no query).

use wslink_adapter::{RequestError, Response, Runtime};
use wslink_core::{Message, SessionEvent};

use super::state::{Finish, Run};
use crate::exit;
use crate::input::Line;
use crate::output::Record;
use crate::status::StatusInfo;

impl<R: Runtime> Run<R> {
    /// Takes in an event: notices, messages, the state, how the session ended.
    pub(super) fn event(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::StateChanged { to, .. } => self.state = to,
            SessionEvent::Connected { attempt, .. } => {
                if self.ever_connected {
                    self.reconnects += 1;
                    self.console.notice(format!("reconnected ({})", tries(attempt)));
                } else {
                    self.console.notice(format!("connected to {}", self.shown_url));
                }
                self.ever_connected = true;
                self.check_input_done();
            }
            SessionEvent::Message(message) | SessionEvent::Unmatched { message, .. } => self.message(&message),
            SessionEvent::Subscribed { channels } => {
                self.console.notice(format!("subscribed to {}", channels.join(", ")))
            }
            SessionEvent::SubscriptionFailed { channels, reason } => {
                self.console.notice(format!("subscribing to {} failed: {reason}", channels.join(", ")));
            }
            SessionEvent::Disconnected { reason } => {
                // Without --max-attempts the first connection must open at
                // once, as `Builder::connect` has it: a wrong URL fails fast.
                if !self.ever_connected && self.args.max_attempts.is_none() && self.finish.is_none() {
                    self.finish_with(Finish::NoConnection(exit::for_connect_failure(&reason)));
                } else {
                    self.console.notice(format!("disconnected: {reason}"));
                }
                self.last_disconnect = Some(reason);
            }
            // Once we are closing, the attempt it schedules will not be made.
            SessionEvent::Reconnecting { attempt, delay } if self.finish.is_none() => {
                self.console.notice(format!("reconnecting in {delay:.1?} ({})", tries(attempt)));
            }
            SessionEvent::Error(e) => self.console.notice(format!("error: {e}")),
            SessionEvent::Dropped(_) => self.console.notice("a queued message was dropped at a disconnect"),
            SessionEvent::Refused { error, .. } => self.console.notice(format!("a message was not sent: {error}")),
            SessionEvent::Closed { reason } => self.closed = Some(reason),
            _ => {}
        }
    }

    /// Prints a message, unless `--count` is reached, and finishes at `--count`.
    fn message(&mut self, message: &Message) {
        self.received += 1;
        if self.args.count.is_some_and(|n| self.printed >= n) || self.output_failed {
            return;
        }
        self.print(&Record::Message(message));
        self.printed += 1;
        if self.args.count.is_some_and(|n| self.printed >= n) {
            self.finish_with(Finish::Count);
        } else if self.stdin_ended {
            self.check_input_done();
        }
    }

    /// Prints a record on stdout; a failed write finishes the run.
    pub(super) fn print(&mut self, record: &Record<'_>) {
        if self.output_failed {
            return;
        }
        if let Err(e) = self.console.data(record) {
            // A closed pipe (`| head`) is the reader saying it has enough: no message for it.
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                self.console.error(format!("writing to stdout failed: {e}"));
            }
            self.output_failed = true;
            self.finish_with(Finish::OutputFailed);
        }
    }

    /// Sends a stdin line, or reports why it cannot be sent.
    pub(super) async fn line(&mut self, line: Line) {
        match line {
            Line::Text(text) => {
                // Counted before the hand-over: a reply may come as soon as it is out.
                self.received_before_lines.get_or_insert(self.received);
                match self.client.send_text(text).await {
                    Ok(()) => self.lines_sent += 1,
                    Err(e) => self.console.notice(format!("a stdin line was not sent: {e}")),
                }
            }
            Line::NotUtf8(number) => {
                self.console.error(format!("stdin line {number} is not UTF-8 text: only text lines can be sent"));
                self.finish_with(Finish::BadInput);
            }
            Line::TooLong(number) => {
                self.console.error(format!(
                    "stdin line {number} is longer than the message size limit of {} bytes \
                     (--max-message-size); it was not sent, and nothing after it is read",
                    self.args.max_message_size
                ));
                self.finish_with(Finish::BadInput);
            }
            Line::Failed(e) => self.console.error(format!("reading stdin failed: {e}")),
        }
    }

    /// Prints a `--request`'s outcome; a failure or an error answer fails the run.
    pub(super) fn request_done(&mut self, method: String, outcome: Result<Response, RequestError>) {
        let json = self.console.format().json;
        match outcome {
            Ok(response) => {
                self.print(&Record::Response {
                    method: &method,
                    id: response.id,
                    message: &response.message,
                    rtt: response.rtt,
                    is_error: response.is_error,
                });
                if !json {
                    let how = if response.is_error { "with an error" } else { "in" };
                    self.console.notice(format!("{method} answered {how} {:.2?}", response.rtt));
                }
                if response.is_error && self.finish.is_none() {
                    self.request_failed = true;
                }
            }
            Err(e) => {
                if json {
                    self.print(&Record::RequestFailed { method: &method, error: e.to_string() });
                } else {
                    self.console.error(format!("request {method}: {e}"));
                }
                if self.finish.is_none() {
                    self.request_failed = true;
                }
            }
        }
    }

    /// Redraws the status line with the latest round trips.
    pub(super) async fn draw_status(&mut self) {
        let rtt = self.client.latency().await.ok().and_then(|l| l.last);
        let heartbeat_rtt = self.client.heartbeat_health().await.ok().and_then(|h| h.last_rtt);
        let info =
            StatusInfo { state: self.state, reconnects: self.reconnects, rtt, heartbeat_rtt, messages: self.received };
        self.console.status(&info);
    }
}

/// What `attempt` of `Connected` and `Reconnecting` counts, in words: the
/// attempts since the link was last open, so 1 is a first try and n follows
/// n - 1 that failed to connect (what `--max-attempts` bounds).
fn tries(attempt: u32) -> String {
    match attempt {
        0 | 1 => "first try".to_owned(),
        n => format!("try {n}, after {} that failed to connect", n - 1),
    }
}
