//! Reading the command line: the arguments that follow the program name
//! into a [`Command`], by hand with std (a dozen flags do not need a
//! parsing crate). Each value is checked as it is read (`values.rs`).
//!
//! Invariants: parsing never panics and never touches the network; every
//! bad input becomes a [`UsageError`] whose message names the flag and the
//! value (never a secret: see `values.rs`), and the caller exits with
//! [`Exit::Usage`](crate::exit::Exit::Usage). `--flag value` and
//! `--flag=value` read the same; a switch given a value is refused.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::args::{Args, Command, Outgoing, Ping, RuntimeKind, StdinMode, UsageError, DEFAULT_REQUEST_TIMEOUT};
use crate::redact;
use crate::values::{header, non_empty, positive, seconds, shown_flag, size, url_error};

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

/// Takes `arg` as the URL, unless one was given already.
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
