//! Exit codes, and how the end of a session maps to one.
//!
//! Invariant: the codes here are the ones `--help` and the README list; a
//! script may rely on them, so a code never changes meaning. The mapping is
//! a pure function of what the session reported, unit-tested below.

use std::process::ExitCode;

use wslink_core::{CloseCode, CloseReason, DisconnectReason};

/// How `wslink` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: done as asked.
    Done,
    /// 1: a `--request` failed or was answered with an error, or stdout could not be written.
    Failed,
    /// 2: a bad flag, value or URL.
    Usage,
    /// 3: the first connection did not open, or it gave up after `--max-attempts`.
    NoConnection,
    /// 4: the connection closed with an error and was not to be reconnected.
    ClosedWithError,
    /// 5: the TLS handshake failed.
    Tls,
    /// 130: Ctrl-C (SIGINT), after closing cleanly.
    Interrupted,
    /// 143: SIGTERM, after closing cleanly.
    Terminated,
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::NoConnection => 3,
            Exit::ClosedWithError => 4,
            Exit::Tls => 5,
            Exit::Interrupted => 130,
            Exit::Terminated => 143,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// The code for a connection attempt that failed before the session was
/// ever open: TLS has its own, anything else could not connect.
pub(crate) fn for_connect_failure(reason: &DisconnectReason) -> Exit {
    match reason {
        DisconnectReason::Tls { .. } => Exit::Tls,
        _ => Exit::NoConnection,
    }
}

/// The code for a session that closed by itself (not at our request):
/// `closed` is its reason, `last` the last disconnect before it, and
/// `ever_connected` whether any connection opened.
pub(crate) fn for_session_end(closed: &CloseReason, last: Option<&DisconnectReason>, ever_connected: bool) -> Exit {
    if let Some(reason @ DisconnectReason::Tls { .. }) = last {
        return for_connect_failure(reason);
    }
    match closed {
        CloseReason::GaveUp { .. } => Exit::NoConnection,
        // Our own close is decided by the caller; reaching here means the
        // session says so without us asking, which only a clean end explains.
        CloseReason::Requested => Exit::Done,
        _ if !ever_connected => Exit::NoConnection,
        _ => match last {
            Some(DisconnectReason::Closed(c)) if c.is_clean() && c.code == CloseCode::Normal => Exit::Done,
            _ => Exit::ClosedWithError,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wslink_core::{Closed, ConnectionError, Initiator, TlsFailure};

    fn closed_by_server(code: CloseCode, error: Option<ConnectionError>) -> DisconnectReason {
        DisconnectReason::Closed(Box::new(Closed::new(Initiator::Remote, code, String::new(), Some(code), error)))
    }

    #[test]
    fn the_codes_are_the_documented_ones() {
        let all = [
            (Exit::Done, 0),
            (Exit::Failed, 1),
            (Exit::Usage, 2),
            (Exit::NoConnection, 3),
            (Exit::ClosedWithError, 4),
            (Exit::Tls, 5),
            (Exit::Interrupted, 130),
            (Exit::Terminated, 143),
        ];
        for (exit, code) in all {
            assert_eq!(exit.code(), code, "{exit:?}");
            assert!(crate::help::HELP.contains(&format!("\n  {code} ")), "--help lists {code}");
        }
    }

    #[test]
    fn a_session_end_maps_to_its_code() {
        let refused =
            DisconnectReason::ConnectFailed { kind: std::io::ErrorKind::ConnectionRefused, message: "refused".into() };
        let tls = DisconnectReason::Tls { failure: TlsFailure::NotTls, ever_connected: false };
        let normal = closed_by_server(CloseCode::Normal, None);
        let away = closed_by_server(CloseCode::Away, None);
        let error_code = closed_by_server(CloseCode::Error, None);
        let transport = closed_by_server(
            CloseCode::Abnormal,
            Some(ConnectionError::Transport { kind: std::io::ErrorKind::UnexpectedEof, message: "eof".into() }),
        );
        let stopped = CloseReason::Stopped;
        assert_eq!(for_connect_failure(&refused), Exit::NoConnection);
        assert_eq!(for_connect_failure(&tls), Exit::Tls);
        assert_eq!(for_session_end(&stopped, Some(&refused), false), Exit::NoConnection);
        assert_eq!(for_session_end(&stopped, Some(&tls), false), Exit::Tls);
        assert_eq!(for_session_end(&CloseReason::GaveUp { attempts: 3 }, Some(&tls), true), Exit::Tls);
        assert_eq!(for_session_end(&CloseReason::GaveUp { attempts: 3 }, Some(&normal), true), Exit::NoConnection);
        assert_eq!(for_session_end(&stopped, Some(&normal), true), Exit::Done);
        assert_eq!(for_session_end(&stopped, Some(&away), true), Exit::ClosedWithError);
        assert_eq!(for_session_end(&stopped, Some(&error_code), true), Exit::ClosedWithError);
        assert_eq!(for_session_end(&stopped, Some(&transport), true), Exit::ClosedWithError);
        assert_eq!(for_session_end(&stopped, Some(&DisconnectReason::HeartbeatTimeout), true), Exit::ClosedWithError);
    }
}
