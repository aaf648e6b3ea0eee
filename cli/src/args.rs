//! The command line: what `wslink` accepts, parsed by hand with std (a dozen
//! flags do not need a parsing crate), and the `--help` text.
//!
//! Invariant: parsing never panics and never touches the network; every bad
//! input becomes a [`UsageError`] whose message names the flag and the value,
//! and the caller exits with [`Exit::Usage`](crate::exit::Exit::Usage).
//! Values are checked here (numbers, JSON of `--params`, header syntax, the
//! URL's scheme and host) so that a typo is reported before anything connects.

use std::ffi::OsString;

use crate::redact;
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

/// The `--help` text: flags, when a run ends, and the exit codes.
pub(crate) const HELP: &str = "\
wslink: look at a WebSocket feed from the command line, with reconnect and heartbeat.

Usage: wslink URL [OPTIONS]

URL is ws://host[:port]/path or wss://host[:port]/path. It may not carry user:password@;
send credentials in a header (-H 'Authorization: ...'). Error messages and logs never
show a URL's query, a header's value or a proxy's password.

What to send:
  --subscribe CH         add CH to the subscription set (repeatable); it is sent as a
                         JSON-RPC request once connected and again after every reconnect
  --subscribe-method M   the JSON-RPC method that subscribes [default: public/subscribe]
  --send TEXT            send TEXT as a text message once started (repeatable, in order)
  --request METHOD       send a JSON-RPC request and print its response and round trip
  --params JSON          params of the --request before it
  --stdin                send each line of stdin as a text message, even from a terminal
  --no-stdin             never read stdin (by default it is read when it is a pipe or a file)
  --request-timeout SECS how long a --request waits for its response, and the end of stdin
                         for the replies to its lines [default: 10]

What to print (messages on stdout, one per line; notices and errors on stderr):
  --json                 each line a JSON object: time (RFC 3339 UTC), unix_ns, kind
                         (text, binary, response, request_failed), text or base64,
                         and for responses method, id, rtt_ms and error
  --timestamps           prefix plain lines with the receive time (RFC 3339 UTC)
  --count N              exit after N messages from the server
  -q, --quiet            no notices on stderr (connected, disconnected, ...) and no log
                         warnings; errors are still shown
  -v, --verbose          log more to stderr: -v info, -vv debug, -vvv trace (by default
                         warnings); RUST_LOG (e.g. wslink_adapter=debug) replaces the level
  --no-status            no live status line (it is shown only when stderr is a terminal)

Connection:
  --no-reconnect         do not reconnect: the first disconnect ends the run
  --max-attempts N       give up after N attempts in a row that fail to connect (one that
                         connects starts the count again, however soon it is cut);
                         without it the first connection must open at the first attempt
  --ping SECS            protocol ping every SECS seconds [default: 15]
  --no-ping              no protocol pings
  -H, --header 'K: V'    add an upgrade header (repeatable)
  --protocol P           offer subprotocol P (repeatable)
  --cacert FILE          trust the root certificates in this PEM file (wss; at most 4 MiB)
  --native-roots         trust the operating system's root certificates (wss)
  --max-message-size N   refuse a message from the server larger than N bytes (close 1009)
                         and a stdin line longer than that; K, M and G suffixes are KiB,
                         MiB and GiB [default: 64M]
  --runtime tokio|smol   which async runtime drives the client [default: tokio]

  -h, --help             print this help
  -V, --version          print the version

A run ends when --count messages have arrived; when stdin has ended and what it waits
for has come (pending requests, and --count messages or else one message per line sent,
as an echo or an RPC server answers), or --request-timeout after stdin ended, whichever
is first; when every --request has its outcome, if there was nothing else to do (no
--subscribe, --send, --count or stdin); on Ctrl-C; or when the connection ends for good.
It closes with a close frame (1000) before it exits. Without --max-attempts the first
connection must open at the first attempt; after that it reconnects by itself.

Exit codes:
  0    done: --count reached, stdin ended, requests answered, or the server closed
       cleanly (code 1000) with --no-reconnect
  1    a --request failed or was answered with an error, fewer than --count messages came
       within --request-timeout after stdin ended, or stdout could not be written
  2    usage: a bad flag, value, URL or --cacert file, or a stdin line that is not UTF-8
       or is longer than --max-message-size
  3    could not connect: the first connection did not open, or --max-attempts attempts
       in a row failed to connect
  4    the connection closed with an error (a close code other than 1000, a dropped
       link, a missed heartbeat) and --no-reconnect was given
  5    the TLS handshake failed (certificate refused, not a TLS server)
  130  interrupted (Ctrl-C), after closing cleanly
  143  terminated (SIGTERM), after closing cleanly

Example:
  wslink wss://test.deribit.com/ws/api/v2 --subscribe trades.BTC-PERPETUAL.raw --json --count 10
";

/// The flags that take no value (so `--json=yes` is refused, not ignored).
const SWITCHES: &[&str] = &[
    "--help",
    "--version",
    "--stdin",
    "--no-stdin",
    "--json",
    "--timestamps",
    "--quiet",
    "--no-status",
    "--no-reconnect",
    "--no-ping",
    "--native-roots",
    "--verbose",
];

/// The default `--request-timeout`: an interactive tool's wait, shorter than
/// the library's 30 s.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses the arguments that follow the program name.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut args = args
        .into_iter()
        .enumerate()
        // The argument is not shown: it may be a secret in another encoding.
        .map(|(i, a)| a.into_string().map_err(|_| UsageError(format!("argument {} is not valid UTF-8", i + 1))));
    let mut url: Option<String> = None;
    let mut a = Args {
        url: String::new(),
        subscribe: Vec::new(),
        subscribe_method: None,
        outgoing: Vec::new(),
        stdin: StdinMode::Auto,
        json: false,
        timestamps: false,
        count: None,
        reconnect: true,
        max_attempts: None,
        ping: Ping::Default,
        headers: Vec::new(),
        protocols: Vec::new(),
        cacert: None,
        native_roots: false,
        runtime: RuntimeKind::Tokio,
        quiet: false,
        verbose: 0,
        request_timeout: DEFAULT_REQUEST_TIMEOUT,
        max_message_size: wslink_core::ConnectionConfig::default().max_message_size,
        max_message_size_given: false,
        no_status: false,
    };
    let mut only_positional = false;
    while let Some(arg) = args.next() {
        let arg = arg?;
        if only_positional || !arg.starts_with('-') || arg == "-" {
            set_url(&mut url, arg)?;
            continue;
        }
        if arg == "--" {
            only_positional = true;
            continue;
        }
        // `-v`, `-vv`, `-vvv`: more each.
        if arg.len() > 1 && arg[1..].bytes().all(|b| b == b'v') {
            a.verbose = a.verbose.saturating_add((arg.len() - 1) as u8);
            continue;
        }
        // `-H'Name: value'`, as curl takes it.
        if let Some(value) = arg.strip_prefix("-H").filter(|v| !v.is_empty()) {
            a.headers.push(header(value)?);
            continue;
        }
        // `--flag=value` and `--flag value` both work.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg.clone(), None),
        };
        if inline.is_some() && SWITCHES.contains(&flag.as_str()) {
            return Err(UsageError(format!("{flag} takes no value")));
        }
        let mut value = || -> Result<String, UsageError> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().unwrap_or_else(|| Err(UsageError(format!("{flag} needs a value")))),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--subscribe" => a.subscribe.push(non_empty(&flag, value()?)?),
            "--subscribe-method" => a.subscribe_method = Some(non_empty(&flag, value()?)?),
            "--send" => a.outgoing.push(Outgoing::Text(value()?)),
            "--request" => a.outgoing.push(Outgoing::Request { method: non_empty(&flag, value()?)?, params: None }),
            "--params" => {
                let json = value()?;
                // The text is not shown (it may hold credentials); serde's error says where.
                if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
                    return Err(UsageError(format!("--params is not JSON: {e}")));
                }
                match a.outgoing.last_mut() {
                    Some(Outgoing::Request { params: p @ None, .. }) => *p = Some(json),
                    Some(Outgoing::Request { .. }) => {
                        return Err(UsageError("--params given twice for one --request".into()));
                    }
                    _ => return Err(UsageError("--params must follow the --request it belongs to".into())),
                }
            }
            "--stdin" => a.stdin = StdinMode::On,
            "--no-stdin" => a.stdin = StdinMode::Off,
            "--json" => a.json = true,
            "--timestamps" => a.timestamps = true,
            "--count" => a.count = Some(positive(&flag, &value()?)?),
            "-q" | "--quiet" => a.quiet = true,
            "--verbose" => a.verbose = a.verbose.saturating_add(1),
            "--request-timeout" => a.request_timeout = seconds(&flag, &value()?)?,
            "--max-message-size" => {
                a.max_message_size = size(&flag, &value()?)?;
                a.max_message_size_given = true;
            }
            "--no-status" => a.no_status = true,
            "--no-reconnect" => a.reconnect = false,
            "--max-attempts" => {
                let n = positive(&flag, &value()?)?;
                let n = u32::try_from(n).map_err(|_| UsageError(format!("{flag} {n} is too large")))?;
                a.max_attempts = Some(n);
            }
            "--ping" => a.ping = Ping::Every(seconds(&flag, &value()?)?),
            "--no-ping" => a.ping = Ping::Off,
            "-H" | "--header" => a.headers.push(header(&value()?)?),
            "--protocol" => a.protocols.push(non_empty(&flag, value()?)?),
            "--cacert" => a.cacert = Some(PathBuf::from(non_empty(&flag, value()?)?)),
            "--native-roots" => a.native_roots = true,
            "--runtime" => {
                a.runtime = match value()?.as_str() {
                    "tokio" => RuntimeKind::Tokio,
                    "smol" => RuntimeKind::Smol,
                    other => return Err(UsageError(format!("--runtime {other:?}: use tokio or smol"))),
                }
            }
            "--insecure" | "-k" => {
                return Err(UsageError(
                    "--insecure is not offered: certificates are always checked; trust a private CA with --cacert FILE"
                        .into(),
                ))
            }
            _ => return Err(UsageError(format!("unknown option {}", shown_flag(&flag)))),
        }
    }
    let Some(url) = url else { return Err(UsageError("no URL given".into())) };
    if let Err(e) = wslink_core::WsUrl::parse(&url) {
        return Err(UsageError(url_error(&url, &e)));
    }
    if a.quiet && a.verbose > 0 {
        return Err(UsageError("-q and -v exclude each other".into()));
    }
    if a.native_roots && a.cacert.is_some() {
        return Err(UsageError("--cacert and --native-roots exclude each other".into()));
    }
    if !a.reconnect && a.max_attempts.is_some() {
        return Err(UsageError("--max-attempts has no meaning with --no-reconnect".into()));
    }
    a.url = url;
    Ok(Command::Run(Box::new(a)))
}

/// Why `text` is not a URL wslink takes, with what to type instead when it
/// can tell: `ws://` before a bare `host:port`, `ws`/`wss` for `http`/`https`.
/// The URL is shown redacted (see `redact.rs`).
fn url_error(text: &str, error: &wslink_core::UrlError) -> String {
    let shown = redact::url(text);
    // Its text would quote the "port", which `redact::url` hides when it is not a number.
    let port_error;
    let error: &dyn std::fmt::Display = match error {
        wslink_core::UrlError::InvalidPort(_) => {
            port_error = "invalid port: expected a number from 1 to 65535";
            &port_error
        }
        other => other,
    };
    let (scheme, rest) = redact::split_scheme(text);
    let scheme = scheme.trim_end_matches("://").to_ascii_lowercase();
    let suggested = match scheme.as_str() {
        // A bare `host:port/path`; not a path, nor text with spaces.
        "" if text.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '[')
            && !text.contains(char::is_whitespace) =>
        {
            Some(format!("ws://{shown}"))
        }
        "http" => Some(format!("ws://{}", redact::url(rest))),
        "https" => Some(format!("wss://{}", redact::url(rest))),
        _ => None,
    };
    match suggested {
        Some(s) if scheme.is_empty() => {
            format!("{shown:?} is not a WebSocket URL: did you mean {s} (or wss:// for TLS)?")
        }
        Some(s) => format!("{shown:?}: {error} (did you mean {s}?)"),
        None => format!("{shown:?}: {error}"),
    }
}

/// An unknown flag as shown: a long one (`--name`, its `=value` already cut
/// off) when it looks like a flag name, else only its first two characters:
/// a short flag may carry its value (`-Xsecret`).
fn shown_flag(flag: &str) -> String {
    let plain =
        flag.starts_with("--") && flag.len() <= 32 && flag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if plain {
        flag.to_owned()
    } else {
        let start: String = flag.chars().take(2).collect();
        if start.len() == flag.len() {
            start
        } else {
            format!("{start}…")
        }
    }
}

fn set_url(url: &mut Option<String>, arg: String) -> Result<(), UsageError> {
    match url {
        // The second argument is not shown: it may be a token meant for a flag.
        Some(first) => Err(UsageError(format!(
            "one URL only: {:?} and a second argument given (a value needs its flag before it)",
            redact::url(first)
        ))),
        None => {
            *url = Some(arg);
            Ok(())
        }
    }
}

fn non_empty(flag: &str, value: String) -> Result<String, UsageError> {
    if value.is_empty() {
        return Err(UsageError(format!("{flag} needs a non-empty value")));
    }
    Ok(value)
}

fn positive(flag: &str, value: &str) -> Result<u64, UsageError> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(UsageError(format!("{flag} {value:?}: expected a whole number from 1 up"))),
    }
}

/// Seconds as a decimal number, from a millisecond to a day: beyond that a
/// heartbeat means nothing, and `Duration::from_secs_f64` would panic on
/// infinity or a negative value.
fn seconds(flag: &str, value: &str) -> Result<Duration, UsageError> {
    match value.parse::<f64>() {
        Ok(s) if (0.001..=86_400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(UsageError(format!("{flag} {value:?}: expected seconds from 0.001 to 86400"))),
    }
}

/// A size in bytes: a whole number from 1, with an optional `K`, `M` or `G`
/// (KiB, MiB, GiB; `KiB`, `MB` ... read the same).
fn size(flag: &str, value: &str) -> Result<usize, UsageError> {
    let bad = || UsageError(format!("{flag} {value:?}: expected bytes from 1 up, with an optional K, M or G"));
    let lower = value.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let shift = match &lower[digits.len()..] {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(bad()),
    };
    let n = digits.parse::<usize>().map_err(|_| bad())?;
    match n.checked_mul(1 << shift) {
        Some(bytes) if bytes > 0 => Ok(bytes),
        _ => Err(bad()),
    }
}

/// `Name: value`, as curl and websocat take it, checked here so that a typo
/// is a usage error. Only the name is ever shown, once it is known to be a
/// header name: the value (and text that failed to split into a name) may be
/// a credential.
fn header(text: &str) -> Result<(String, String), UsageError> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(UsageError(format!(
            "--header: expected 'Name: value', and the {} characters given have no colon",
            text.chars().count()
        )));
    };
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() {
        return Err(UsageError("--header: the name before the colon is empty".into()));
    }
    // RFC 9110 §5.6.2: a name is a token.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if let Some((i, c)) = name.chars().enumerate().find(|&(_, c)| !token(c)) {
        let c =
            if c.is_ascii_graphic() || c == ' ' { format!("{c:?}") } else { "a control or non-ASCII character".into() };
        return Err(UsageError(format!(
            "--header: character {} of the name is {c}, which a header name may not hold",
            i + 1
        )));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(UsageError(format!("--header {name}: the value may not hold CR, LF or NUL")));
    }
    Ok((name.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Args, UsageError> {
        match parse(args.iter().map(OsString::from))? {
            Command::Run(a) => Ok(*a),
            other => panic!("expected a run, got {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse(args.iter().map(OsString::from)) {
            Err(UsageError(e)) => e,
            Ok(c) => panic!("expected an error for {args:?}, got {c:?}"),
        }
    }

    #[test]
    fn flags_and_values_in_both_spellings() {
        let a = run(&[
            "ws://127.0.0.1:9001/",
            "--subscribe",
            "trades",
            "--subscribe=book",
            "--send",
            "hello",
            "--request",
            "public/get_time",
            "--params",
            r#"{"a":1}"#,
            "--send=bye",
            "--json",
            "--count=3",
            "--ping",
            "0.5",
            "-H",
            "Authorization: Bearer x:y",
            "--runtime",
            "smol",
            "--max-attempts",
            "4",
        ])
        .unwrap();
        assert_eq!(a.url, "ws://127.0.0.1:9001/");
        assert_eq!(a.subscribe, ["trades", "book"]);
        assert_eq!(
            a.outgoing,
            [
                Outgoing::Text("hello".into()),
                Outgoing::Request { method: "public/get_time".into(), params: Some(r#"{"a":1}"#.into()) },
                Outgoing::Text("bye".into()),
            ]
        );
        assert!(a.json);
        assert_eq!(a.count, Some(3));
        assert_eq!(a.ping, Ping::Every(Duration::from_millis(500)));
        assert_eq!(a.headers, [("Authorization".to_owned(), "Bearer x:y".to_owned())]);
        assert_eq!(a.runtime, RuntimeKind::Smol);
        assert_eq!(a.max_attempts, Some(4));
        assert!(a.reconnect);
    }

    #[test]
    fn help_and_version_win_over_everything_else() {
        assert_eq!(parse(["--bogus", "-h"].map(OsString::from)), Err(UsageError("unknown option --bogus".into())));
        assert_eq!(parse(["ws://x/", "--help"].map(OsString::from)), Ok(Command::Help));
        assert_eq!(parse(["-V"].map(OsString::from)), Ok(Command::Version));
    }

    #[test]
    fn bad_input_is_a_sentence_naming_the_flag() {
        assert_eq!(error(&[]), "no URL given");
        assert_eq!(error(&["ws://x/", "--frobnicate"]), "unknown option --frobnicate");
        assert!(error(&["http://x/"]).contains("unsupported URL scheme"));
        assert!(error(&["ws://x:0/"]).contains("invalid port"));
        assert!(error(&["ws://a/", "ws://b/"]).starts_with(r#"one URL only: "ws://a/" and a second argument"#));
        assert_eq!(error(&["ws://x/", "--count"]), "--count needs a value");
        assert!(error(&["ws://x/", "--count", "0"]).starts_with("--count \"0\""));
        assert!(error(&["ws://x/", "--count", "-3"]).starts_with("--count \"-3\""));
        assert!(error(&["ws://x/", "--ping", "inf"]).starts_with("--ping \"inf\""));
        assert!(error(&["ws://x/", "--ping", "NaN"]).starts_with("--ping \"NaN\""));
        assert!(error(&["ws://x/", "--params", "{}"]).contains("must follow"));
        assert!(error(&["ws://x/", "--request", "m", "--params", "{"]).contains("is not JSON"));
        assert!(error(&["ws://x/", "--request", "m", "--params", "1", "--params", "2"]).contains("twice"));
        assert!(error(&["ws://x/", "--header", "no colon"]).contains("expected 'Name: value'"));
        assert!(error(&["ws://x/", "--runtime", "async-std"]).contains("use tokio or smol"));
        assert!(error(&["ws://x/", "--insecure"]).contains("--cacert"));
        assert!(error(&["ws://x/", "--json=yes"]).contains("takes no value"));
        assert!(error(&["ws://x/", "--no-reconnect", "--max-attempts", "2"]).contains("no meaning"));
        assert!(error(&["ws://x/", "--max-attempts", "99999999999"]).contains("too large"));
    }

    #[test]
    fn new_flags_take_their_values() {
        let a = run(&["ws://x/", "-vv", "--verbose", "--request-timeout", "2.5", "--max-message-size", "64K"]).unwrap();
        assert_eq!((a.verbose, a.request_timeout), (3, Duration::from_millis(2500)));
        assert_eq!((a.max_message_size, a.max_message_size_given), (64 << 10, true));
        let a = run(&["ws://x/"]).unwrap();
        assert_eq!((a.verbose, a.request_timeout, a.max_message_size_given), (0, DEFAULT_REQUEST_TIMEOUT, false));
        assert_eq!(a.max_message_size, 64 << 20);
        for (text, bytes) in [("1", 1), ("10b", 10), ("2k", 2048), ("3MiB", 3 << 20), ("1G", 1 << 30), (" 5 ", 5)] {
            assert_eq!(size("--max-message-size", text), Ok(bytes), "{text}");
        }
        for text in ["0", "0M", "-1", "1T", "k", "", "1.5M", "99999999999999999999G"] {
            assert!(size("--max-message-size", text).is_err(), "{text}");
        }
        assert!(error(&["ws://x/", "-q", "-v"]).contains("exclude each other"));
        assert!(error(&["ws://x/", "--request-timeout", "0"]).starts_with("--request-timeout \"0\""));
        assert!(error(&["ws://x/", "--verbose=2"]).contains("takes no value"));
    }

    #[test]
    fn headers_are_checked_without_showing_their_values() {
        let a = run(&["ws://x/", "-HAuthorization: Bearer a:b", "-H", " X-Y :  z "]).unwrap();
        assert_eq!(
            a.headers,
            [("Authorization".to_owned(), "Bearer a:b".to_owned()), ("X-Y".to_owned(), "z".to_owned())]
        );
        let cases = [
            ("Authorization Bearer SECRET", "no colon"),
            (": SECRET", "empty"),
            ("Authorization=Bearer SECRET: x", "character 14 of the name is '='"),
            ("Bad Name: SECRET", "character 4 of the name is ' '"),
            ("N\u{e9}: SECRET", "a control or non-ASCII character"),
            ("X-Key: SECRET\r\nInjected: 1", "--header X-Key: the value may not hold CR, LF or NUL"),
        ];
        for (text, message) in cases {
            let e = error(&["ws://x/", "--header", text]);
            assert!(e.contains(message) && !e.contains("SECRET"), "{text:?}: {e}");
        }
        assert!(!error(&["ws://x/", "-XSECRET"]).contains("SECRET"), "an unknown flag is cut");
        assert_eq!(error(&["ws://x/", "--frob-nicate"]), "unknown option --frob-nicate");
        let e = error(&["ws://x/", "--request", "m", "--params", r#"{"secret":"SECRET""#]);
        assert!(e.starts_with("--params is not JSON: EOF") && !e.contains("SECRET"), "{e}");
    }

    #[test]
    fn url_errors_hide_secrets_and_suggest_a_scheme() {
        let cases = [
            ("ws://alice:SECRET@127.0.0.1:1/", r#""ws://***@127.0.0.1:1/": user information"#),
            ("127.0.0.1:8765", "did you mean ws://127.0.0.1:8765 (or wss:// for TLS)?"),
            ("[::1]:8765/feed?token=SECRET", "did you mean ws://[::1]:8765/feed?<redacted>"),
            ("alice:SECRET@host:1/", "did you mean ws://***@host:1/"),
            ("HTTP://host:1/x?k=SECRET", "(did you mean ws://host:1/x?<redacted>?)"),
            ("https://alice:SECRET@host/", "(did you mean wss://***@host/?)"),
            ("ws://host/#SECRET", r#""ws://host/#<redacted>": a WebSocket URL must not have a #fragment"#),
            ("ws://user:SECRET/", r#""ws://user:***/": invalid port: expected a number"#),
            ("ws://host:99999/", r#""ws://host:99999/": invalid port"#),
        ];
        for (url, message) in cases {
            let e = error(&[url]);
            assert!(e.contains(message) && !e.contains("SECRET"), "{url}: {e}");
        }
        for url in ["not a url", "/just/a/path", "ftp://host/"] {
            assert!(!error(&[url]).contains("did you mean"), "{url}");
        }
    }

    #[test]
    fn a_double_dash_ends_the_options() {
        assert!(error(&["--", "--json"]).contains("--json"));
        assert_eq!(run(&["--json", "--", "ws://x/"]).unwrap().url, "ws://x/");
    }

    #[cfg(unix)]
    #[test]
    fn an_argument_that_is_not_utf8_is_refused_not_a_panic() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'w', 0xff]);
        let got = parse([OsString::from("ws://x/"), bad]);
        assert!(matches!(got, Err(UsageError(ref e)) if e.starts_with("argument 2 is not valid UTF-8")), "{got:?}");
    }
}
