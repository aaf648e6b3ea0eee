//! The command line's meaning: what a run of `wslink` is asked to do
//! ([`Args`]), and what else the command line may ask ([`Command`]).
//! `parse.rs` reads the arguments into these; `help.rs` describes them.
//!
//! Invariant: an [`Args`] is whole and checked (the URL parses, numbers are
//! in range, headers are well formed, no two flags contradict each other),
//! so a run never finds a bad setting after it has started.

use std::path::PathBuf;
use std::time::Duration;

/// Which runtime drives the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuntimeKind {
    /// A tokio current-thread runtime (the default).
    Tokio,
    /// `smol::block_on`, the client's task on smol's global executor.
    Smol,
}

/// Whether standard input is read and sent line by line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StdinMode {
    /// When it is a pipe, a socket or a file (not a terminal, not `/dev/null`).
    Auto,
    /// Always (`--stdin`), a terminal included.
    On,
    /// Never (`--no-stdin`).
    Off,
}

/// The protocol heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ping {
    /// The library's default (every 15 s, pong within 10 s).
    Default,
    /// Every so often (`--ping SECS`).
    Every(Duration),
    /// None (`--no-ping`).
    Off,
}

/// Something to send once the client has started, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outgoing {
    /// A text message (`--send`).
    Text(String),
    /// A JSON-RPC request (`--request`, with the `--params` that follow it).
    Request {
        /// The method.
        method: String,
        /// The params as JSON text, already checked to parse.
        params: Option<String>,
    },
}

/// Everything a run needs, as the user asked for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Args {
    /// The `ws://` or `wss://` URL (checked to parse).
    pub(crate) url: String,
    /// Channels for the client's subscription set (`--subscribe`).
    pub(crate) subscribe: Vec<String>,
    /// The JSON-RPC method that subscribes (`--subscribe-method`).
    pub(crate) subscribe_method: Option<String>,
    /// Messages and requests to send after start, in order.
    pub(crate) outgoing: Vec<Outgoing>,
    /// Whether standard input is read.
    pub(crate) stdin: StdinMode,
    /// JSON lines on stdout.
    pub(crate) json: bool,
    /// A receive-time prefix on plain lines.
    pub(crate) timestamps: bool,
    /// Exit after this many messages.
    pub(crate) count: Option<u64>,
    /// Reconnect after a disconnect (default on).
    pub(crate) reconnect: bool,
    /// Give up after this many attempts in a row that failed to connect.
    pub(crate) max_attempts: Option<u32>,
    /// The protocol heartbeat.
    pub(crate) ping: Ping,
    /// Extra upgrade headers.
    pub(crate) headers: Vec<(String, String)>,
    /// Subprotocols to offer.
    pub(crate) protocols: Vec<String>,
    /// A PEM file of root certificates to trust instead of the bundled ones.
    pub(crate) cacert: Option<PathBuf>,
    /// Trust the operating system's root store.
    pub(crate) native_roots: bool,
    /// The runtime.
    pub(crate) runtime: RuntimeKind,
    /// No notices on stderr (errors still go there), and only errors in the log.
    pub(crate) quiet: bool,
    /// How much the log shows: 0 warnings, 1 info, 2 debug, 3 and more trace.
    pub(crate) verbose: u8,
    /// How long a `--request` waits for its response, and the end of stdin
    /// for the replies to its lines (or `--count`).
    pub(crate) request_timeout: Duration,
    /// The largest message received, and the longest stdin line sent.
    pub(crate) max_message_size: usize,
    /// Whether `--max-message-size` was given (else the library's limits stay).
    pub(crate) max_message_size_given: bool,
    /// No live status line even on a terminal.
    pub(crate) no_status: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// Connect and run.
    Run(Box<Args>),
    /// Print the help text.
    Help,
    /// Print the version.
    Version,
}

/// A command line that cannot be used, with a sentence saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The default `--request-timeout`: an interactive tool's wait, shorter than
/// the library's 30 s.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
