//! The log: the `tracing` events of wslink's libraries (a skipped proxy
//! variable, a transport that would not close, connection attempts at -v
//! and more) as plain lines on stderr.
//!
//! Invariants: stdout never gets a log line (it carries data only); the
//! level comes from `-q` / `-v` unless `RUST_LOG` names one, and a `RUST_LOG`
//! that does not parse is reported, not fatal; a log line first clears the
//! status line when one is shown, so the two never mix. What the libraries
//! log holds no secret (the URL's query, header values and proxy
//! credentials are redacted where they log); this module adds nothing.
//!
//! `RUST_LOG` takes `tracing_subscriber`'s `Targets` syntax (`level`,
//! `target=level`, comma-separated: `wslink_adapter=debug,warn`), which needs
//! no regex engine; span and field filters are not supported.

use std::io::{self, Write};

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter for `-q` (`quiet`) and `-v` counted in `verbose`. By default
/// warnings, but not the adapters' per-connection telemetry warnings
/// ("disconnected ..."): the CLI prints each disconnect itself.
pub(crate) fn default_directives(quiet: bool, verbose: u8) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,wslink_adapter::telemetry=error",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    }
}

/// The filter to use: `RUST_LOG` when it is set, not empty and parses, else
/// the default; the second value is a warning to show when `RUST_LOG` did not parse.
pub(crate) fn filter(rust_log: Option<&str>, quiet: bool, verbose: u8) -> (Targets, Option<String>) {
    let default = || default_directives(quiet, verbose).parse::<Targets>().unwrap_or_default();
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        None => (default(), None),
        Some(text) => match text.parse::<Targets>() {
            Ok(targets) => (targets, None),
            Err(e) => (
                default(),
                Some(format!(
                    "RUST_LOG {text:?} does not parse ({e}): use level or target=level, comma-separated; \
                     logging as -q/-v say"
                )),
            ),
        },
    }
}

/// Installs the log on stderr; returns a warning about `RUST_LOG` to show, if any.
pub(crate) fn init(quiet: bool, verbose: u8, status_line: bool) -> Option<String> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (targets, warning) = filter(rust_log.as_deref(), quiet, verbose);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(Stderr { clear_status: status_line })
        .with_ansi(false)
        .without_time();
    // Fails only when a subscriber is installed already: nothing to do then.
    let _ = tracing_subscriber::registry().with(fmt).with(targets).try_init();
    warning
}

/// Makes a writer per log line.
struct Stderr {
    clear_status: bool,
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = StderrLine;

    fn make_writer(&'a self) -> StderrLine {
        StderrLine { clear_status: self.clear_status }
    }
}

/// One log line on stderr, after clearing the status line if it may be drawn.
struct StderrLine {
    clear_status: bool,
}

impl Write for StderrLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut stderr = io::stderr().lock();
        if std::mem::take(&mut self.clear_status) {
            // The status line redraws itself at its next tick.
            stderr.write_all(b"\r\x1b[K")?;
        }
        stderr.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().lock().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    fn level(targets: &Targets, target: &str) -> Option<tracing::Level> {
        [
            tracing::Level::TRACE,
            tracing::Level::DEBUG,
            tracing::Level::INFO,
            tracing::Level::WARN,
            tracing::Level::ERROR,
        ]
        .into_iter()
        .find(|&l| targets.would_enable(target, &l))
    }

    #[test]
    fn quiet_and_verbose_pick_the_level() {
        let at = |quiet, verbose, target| level(&filter(None, quiet, verbose).0, target);
        assert_eq!(at(true, 0, "wslink_adapter::builder"), Some(tracing::Level::ERROR));
        assert_eq!(at(false, 0, "wslink_adapter::builder"), Some(tracing::Level::WARN));
        assert_eq!(at(false, 0, "wslink_adapter::telemetry"), Some(tracing::Level::ERROR));
        assert_eq!(at(false, 1, "wslink_adapter::telemetry"), Some(tracing::Level::INFO));
        assert_eq!(at(false, 2, "anything"), Some(tracing::Level::DEBUG));
        assert_eq!(at(false, 9, "anything"), Some(tracing::Level::TRACE));
    }

    #[test]
    fn rust_log_replaces_the_level_and_a_bad_one_is_reported() {
        let (targets, warning) = filter(Some("wslink_adapter=debug"), true, 0);
        assert_eq!((level(&targets, "wslink_adapter::telemetry"), warning), (Some(tracing::Level::DEBUG), None));
        assert_eq!(level(&targets, "tokio"), None, "targets not named are off");
        let (targets, warning) = filter(Some("off"), false, 3);
        assert_eq!(targets.default_level(), Some(LevelFilter::OFF));
        assert_eq!(warning, None);
        let (targets, _) = filter(Some("  "), false, 1);
        assert_eq!(level(&targets, "x"), Some(tracing::Level::INFO), "an empty RUST_LOG is not set");
        let (targets, warning) = filter(Some("wslink=loud"), false, 0);
        assert_eq!(level(&targets, "x"), Some(tracing::Level::WARN));
        assert!(warning.is_some_and(|w| w.contains("RUST_LOG \"wslink=loud\"")));
    }
}
