//! The live status line: state, reconnects, round trips and messages, kept
//! on one line of stderr and redrawn in place.
//!
//! Invariants: it is drawn only when the caller enabled it, which `main`
//! does only when stderr is a terminal (`std::io::IsTerminal`), so a log
//! file or a pipe never receives carriage returns or escape codes; it is
//! redrawn only on the run loop's status tick (a few times a second), not
//! per message; and it is cleared before anything else is written to the
//! terminal, so it never mixes into a data line or a notice.

use std::io::Write;
use std::time::Duration;

use wslink_core::SessionState;

/// What the status line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatusInfo {
    /// The session's state.
    pub(crate) state: SessionState,
    /// Connections opened after the first.
    pub(crate) reconnects: u64,
    /// Round trip of the last `--request` (or subscription) answered.
    pub(crate) rtt: Option<Duration>,
    /// Round trip of the last heartbeat answered.
    pub(crate) heartbeat_rtt: Option<Duration>,
    /// Messages received from the server.
    pub(crate) messages: u64,
}

/// The status text, cut to fit `width` columns (one is left free, so that
/// a terminal that wraps at the last column does not start a new line).
pub(crate) fn format_status(info: &StatusInfo, width: usize) -> String {
    let text = format!(
        "{} | reconnects {} | rtt {} | heartbeat {} | {} message{}",
        state_name(info.state),
        info.reconnects,
        duration(info.rtt),
        duration(info.heartbeat_rtt),
        info.messages,
        if info.messages == 1 { "" } else { "s" }
    );
    text.chars().take(width.saturating_sub(1)).collect()
}

fn state_name(state: SessionState) -> &'static str {
    match state {
        SessionState::Idle => "idle",
        SessionState::Connecting => "connecting",
        SessionState::Handshaking => "handshaking",
        SessionState::Authenticating => "authenticating",
        SessionState::Open => "open",
        SessionState::Closing => "closing",
        SessionState::Backoff => "waiting to reconnect",
        SessionState::Closed => "closed",
        // A state added to the core after this list.
        _ => "busy",
    }
}

/// A round trip as a person reads it: two decimals under 10 ms, one under a second.
fn duration(d: Option<Duration>) -> String {
    let Some(d) = d else { return "-".to_owned() };
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// The status line on stderr, or nothing when disabled.
#[derive(Debug)]
pub(crate) struct StatusLine {
    enabled: bool,
    /// Whether a status text is on the screen now.
    drawn: bool,
    width: usize,
}

impl StatusLine {
    /// A status line that draws only if `enabled`. The width comes from
    /// `COLUMNS` when the shell exports it, else 80: reading the terminal's
    /// size needs an ioctl, and a line cut short is harmless.
    pub(crate) fn new(enabled: bool) -> Self {
        let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).filter(|&w| w > 10).unwrap_or(80);
        Self { enabled, drawn: false, width }
    }

    /// Whether it draws at all.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Draws `info` over the previous status text.
    pub(crate) fn draw(&mut self, info: &StatusInfo) {
        if !self.enabled {
            return;
        }
        let text = format_status(info, self.width);
        // A failed write to the terminal leaves nothing to report it to.
        let _ = write!(std::io::stderr().lock(), "\r{text}\x1b[K");
        self.drawn = true;
    }

    /// Removes the status text, before something else is written to the terminal.
    pub(crate) fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_reads_as_one_short_line() {
        let info = StatusInfo {
            state: SessionState::Open,
            reconnects: 2,
            rtt: Some(Duration::from_micros(1234)),
            heartbeat_rtt: Some(Duration::from_micros(45_600)),
            messages: 1234,
        };
        assert_eq!(format_status(&info, 120), "open | reconnects 2 | rtt 1.23 ms | heartbeat 45.6 ms | 1234 messages");
        let starting =
            StatusInfo { state: SessionState::Backoff, reconnects: 0, rtt: None, heartbeat_rtt: None, messages: 1 };
        assert_eq!(
            format_status(&starting, 120),
            "waiting to reconnect | reconnects 0 | rtt - | heartbeat - | 1 message"
        );
        let slow = StatusInfo { heartbeat_rtt: Some(Duration::from_millis(2500)), ..info };
        assert!(format_status(&slow, 120).contains("heartbeat 2.50 s"));
    }

    #[test]
    fn the_status_fits_the_terminal_and_has_no_line_break() {
        let info = StatusInfo {
            state: SessionState::Authenticating,
            reconnects: u64::MAX,
            rtt: Some(Duration::from_secs(1)),
            heartbeat_rtt: None,
            messages: u64::MAX,
        };
        for width in [0, 1, 20, 40, 80] {
            let text = format_status(&info, width);
            assert!(text.chars().count() < width.max(1), "{width}: {text:?}");
            assert!(!text.contains(['\n', '\r']));
        }
    }

    #[test]
    fn a_disabled_status_line_never_draws() {
        let mut line = StatusLine::new(false);
        let info = StatusInfo { state: SessionState::Open, reconnects: 0, rtt: None, heartbeat_rtt: None, messages: 0 };
        line.draw(&info);
        assert!(!line.drawn);
        line.clear();
        assert!(!line.enabled());
    }
}
