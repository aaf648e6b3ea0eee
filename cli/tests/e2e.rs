//! End-to-end tests of the `wslink` binary: each scenario runs the real
//! program as a child process against the loopback mock server, once per
//! runtime (`tokio_runtime_*` and `smol_runtime_*`, which CI counts).
//!
//! Rules kept here: only 127.0.0.1; every wait is bounded (the mock server's
//! expectations take a timeout, the child is killed if it outlives
//! [`WAIT`]); no sleeping in the hope that something happened: each step
//! waits for a condition (a line on stdout, an expectation on the server,
//! the child's exit). Only the child a test started is ever signalled or
//! killed, through its own handle or pid.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wslink_adapter::testkit::{jsonrpc, Ended, MockServer};
use wslink_core::{CloseCode, Message};
use wslink_tests::python::PythonServer;

/// The bound of every wait: long enough for a loaded machine, short enough to fail a stuck test.
const WAIT: Duration = Duration::from_secs(20);

/// Variables that would change what a child does if the test's own
/// environment had them.
const PROXY_AND_LOG_VARIABLES: [&str; 10] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
    "RUST_LOG",
];

/// A running `wslink`, its stdout read line by line and its stderr collected.
struct Wslink {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

/// How a run ended.
struct Finished {
    code: Option<i32>,
    /// Stdout lines not yet taken with [`Wslink::line`].
    lines: Vec<String>,
    stderr: String,
}

impl Wslink {
    /// Starts `wslink --runtime <runtime> <args>` with stdin from `/dev/null`
    /// (which wslink does not read unless told).
    fn start(runtime: &str, args: &[&str]) -> Self {
        Self::spawn(runtime, args, Stdio::null(), &[])
    }

    /// Starts it with stdin a pipe the test writes to.
    fn with_stdin(runtime: &str, args: &[&str]) -> Self {
        Self::spawn(runtime, args, Stdio::piped(), &[])
    }

    /// Starts it with these environment variables added.
    fn with_env(runtime: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(runtime, args, Stdio::null(), env)
    }

    /// Starts it with stdin a pipe; the proxy variables and `RUST_LOG` of the
    /// test's own environment are removed, so that every run sees the same.
    fn spawn(runtime: &str, args: &[&str], stdin: Stdio, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wslink"));
        for name in PROXY_AND_LOG_VARIABLES {
            command.env_remove(name);
        }
        let mut child = command
            .envs(env.iter().copied())
            .args(["--runtime", runtime])
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the wslink binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let stdin = child.stdin.take();
        Self { child, stdin, lines, stderr: Some(stderr) }
    }

    /// The next stdout line.
    #[track_caller]
    fn line(&mut self) -> String {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(e) => {
                let finished = self.kill();
                panic!("no stdout line within {WAIT:?} ({e}); stderr:\n{}", finished.stderr)
            }
        }
    }

    /// Writes to its stdin.
    fn write_stdin(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("started with_stdin");
        stdin.write_all(text.as_bytes()).expect("wslink reads its stdin");
        stdin.flush().expect("stdin flushes");
    }

    /// Closes its stdin: end of input.
    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Sends it a signal through `kill`, by the pid of this child only.
    fn signal(&self, signal: &str) {
        let status =
            Command::new("kill").args([format!("-{signal}"), self.child.id().to_string()]).status().expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for it to exit by itself (killing it and failing after [`WAIT`]).
    #[track_caller]
    fn finish(mut self) -> Finished {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.child.try_wait().expect("the child can be waited for") {
                Some(_) => break,
                None if Instant::now() >= deadline => {
                    let finished = self.kill();
                    panic!("wslink did not exit within {WAIT:?}; stderr:\n{}", finished.stderr);
                }
                // Polls the exit status; std has no wait with a timeout.
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        self.collect()
    }

    fn kill(&mut self) -> Finished {
        let _ = self.child.kill();
        self.collect()
    }

    fn collect(&mut self) -> Finished {
        self.stdin = None;
        let code = self.child.wait().expect("the child can be waited for").code();
        let mut lines = Vec::new();
        // The child has exited, so stdout ends: the reader thread drops its sender.
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            lines.push(line);
        }
        let stderr = self.stderr.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default();
        Finished { code, lines, stderr }
    }
}

impl Drop for Wslink {
    fn drop(&mut self) {
        // A test that failed midway leaves no process behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Finished {
    #[track_caller]
    fn assert_code(&self, code: i32) {
        assert_eq!(self.code, Some(code), "exit code; stdout {:?}; stderr:\n{}", self.lines, self.stderr);
        assert!(!self.stderr.contains("panicked"), "wslink panicked:\n{}", self.stderr);
    }
}

fn text(message: &Message) -> Option<&str> {
    match message {
        Message::Text(t) => Some(t.as_str()),
        Message::Binary(_) => None,
    }
}

fn is_subscribe(message: &Message) -> bool {
    jsonrpc::method(message).as_deref() == Some("public/subscribe")
}

#[track_caller]
fn assert_closed_normally(server: &MockServer) {
    match server.expect_disconnect(WAIT) {
        Ended::Closed(Some((CloseCode::Normal, _))) => {}
        other => panic!("expected the client's close frame with 1000, got {other:?}"),
    }
}

/// A port on 127.0.0.1 that refuses connections: bound by us, then freed.
fn refused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

// ----- scenarios, each written once for both runtimes -----

fn messages_in_order_and_count_exits_zero(runtime: &str) {
    let server = MockServer::start();
    let w = Wslink::start(runtime, &[&server.url(), "--send", "hello", "--header", "X-Test: yes", "--count", "3"]);
    let conn = server.expect_connection(WAIT);
    assert_eq!(conn.header("X-Test"), Some("yes"));
    server.expect_sent(WAIT, |m| text(m) == Some("hello"));
    for message in ["one", "two", "three", "four"] {
        server.send_text(message);
    }
    let out = w.finish();
    out.assert_code(0);
    assert_eq!(out.lines, ["one", "two", "three"], "exactly --count messages, in order");
    assert_closed_normally(&server);
}

fn json_lines_carry_the_documented_fields(runtime: &str) {
    let server = MockServer::start();
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let w = Wslink::start(runtime, &[&server.url(), "--json", "--count", "2"]);
    server.expect_connection(WAIT);
    server.send_text(r#"{"price":1.5}"#);
    server.send_binary(vec![0u8, 1, 2, 255]);
    let out = w.finish();
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    out.assert_code(0);
    assert_eq!(out.lines.len(), 2, "{:?}", out.lines);
    let parsed: Vec<serde_json::Value> =
        out.lines.iter().map(|l| serde_json::from_str(l).expect("each line is one JSON object")).collect();
    for line in &parsed {
        let time = line["time"].as_str().expect("time is a string");
        // 2025-01-02T03:04:05.123456Z
        let shape: String = time.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect();
        assert_eq!(shape, "0000-00-00T00:00:00.000000Z", "{time}");
        let ns = u128::from(line["unix_ns"].as_u64().expect("unix_ns is a number"));
        assert!((before..=after).contains(&ns), "unix_ns {ns} outside the run");
    }
    assert_eq!(parsed[0]["kind"], "text");
    assert_eq!(parsed[0]["text"], r#"{"price":1.5}"#);
    assert_eq!(parsed[1]["kind"], "binary");
    assert_eq!(parsed[1]["base64"], "AAEC/w==");
    assert!(parsed[1].get("text").is_none());
}

fn subscribe_is_sent_again_after_a_reconnect(runtime: &str) {
    let server = MockServer::start();
    let mut w = Wslink::start(runtime, &[&server.url(), "--subscribe", "trades", "--count", "2"]);
    server.expect_connection(WAIT);
    let first = server.expect_sent(WAIT, is_subscribe);
    assert_eq!(jsonrpc::params(&first).as_deref(), Some(r#"{"channels":["trades"]}"#));
    server.send_text("before the cut");
    assert_eq!(w.line(), "before the cut");
    server.cut();
    server.expect_connection(WAIT);
    let again = server.expect_sent(WAIT, is_subscribe);
    assert_eq!(jsonrpc::params(&again).as_deref(), Some(r#"{"channels":["trades"]}"#));
    server.send_text("after the cut");
    let out = w.finish();
    out.assert_code(0);
    assert_eq!(out.lines, ["after the cut"]);
    assert!(out.stderr.contains("reconnected"), "{}", out.stderr);
    assert_closed_normally(&server);
}

fn request_prints_its_response_with_rtt(runtime: &str) {
    let server = MockServer::start();
    server.respond_with(|m| {
        let id = jsonrpc::id(m)?;
        (jsonrpc::method(m)? == "public/get_time").then(|| Message::Text(jsonrpc::result(id, "1700000000").into()))
    });
    let w = Wslink::start(
        runtime,
        &[&server.url(), "--request", "public/get_time", "--params", r#"{"tz":"utc"}"#, "--json"],
    );
    server.expect_connection(WAIT);
    let sent = server.expect_sent(WAIT, |m| jsonrpc::method(m).as_deref() == Some("public/get_time"));
    assert_eq!(jsonrpc::params(&sent).as_deref(), Some(r#"{"tz":"utc"}"#));
    // With nothing else to do, it exits once the response is in.
    let out = w.finish();
    out.assert_code(0);
    assert_eq!(out.lines.len(), 1, "{:?}", out.lines);
    let line: serde_json::Value = serde_json::from_str(&out.lines[0]).expect("a JSON line");
    assert_eq!(line["kind"], "response");
    assert_eq!(line["method"], "public/get_time");
    assert_eq!(line["id"].as_u64(), jsonrpc::id(&sent));
    assert_eq!(line["error"], false);
    let rtt = line["rtt_ms"].as_f64().expect("rtt_ms is a number");
    assert!((0.0..WAIT.as_secs_f64() * 1000.0).contains(&rtt), "rtt_ms {rtt}");
    let response: serde_json::Value = serde_json::from_str(line["text"].as_str().expect("text")).expect("JSON-RPC");
    assert_eq!(response["result"], 1_700_000_000);
    assert_closed_normally(&server);
}

fn request_answered_with_an_error_exits_one(runtime: &str) {
    let server = MockServer::start();
    server
        .respond_with(|m| Some(Message::Text(jsonrpc::error(jsonrpc::id(m)?, r#"{"code":13,"message":"no"}"#).into())));
    let w = Wslink::start(runtime, &[&server.url(), "--request", "private/buy"]);
    server.expect_connection(WAIT);
    let out = w.finish();
    out.assert_code(1);
    assert_eq!(out.lines.len(), 1, "{:?}", out.lines);
    assert!(out.lines[0].contains(r#""message":"no""#), "plain output is the response itself: {:?}", out.lines);
    assert!(out.stderr.contains("private/buy answered with an error"), "{}", out.stderr);
}

fn stdin_lines_are_sent_and_its_end_closes_cleanly(runtime: &str) {
    let server = MockServer::start();
    // The server answers one line of three: the close waits --request-timeout for the others.
    let mut w = Wslink::with_stdin(runtime, &[&server.url(), "--request-timeout", "0.2"]);
    w.write_stdin("first\r\n\nsecond\n");
    server.expect_connection(WAIT);
    // Each expectation takes the next message: the order, and no blank line between.
    assert_eq!(text(&server.expect_sent(WAIT, |_| true)), Some("first"));
    assert_eq!(text(&server.expect_sent(WAIT, |_| true)), Some("second"));
    w.write_stdin("third\n");
    server.expect_sent(WAIT, |m| text(m) == Some("third"));
    server.send_text("still printed");
    assert_eq!(w.line(), "still printed");
    w.close_stdin();
    assert_closed_normally(&server);
    w.finish().assert_code(0);
}

fn stdin_ending_before_the_connection_opens_loses_nothing(runtime: &str) {
    let server = MockServer::start();
    server.refuse_upgrades(Some(503));
    let mut w = Wslink::with_stdin(runtime, &[&server.url(), "--max-attempts", "5", "--request-timeout", "0.2"]);
    w.write_stdin("queued one\nqueued two\n");
    w.close_stdin();
    // The first attempt is refused with stdin already over: the lines wait
    // in the queue through the backoff, and the close waits for them.
    let deadline = Instant::now() + WAIT;
    while server.refused() == 0 {
        assert!(Instant::now() < deadline, "no upgrade attempt within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.refuse_upgrades(None);
    server.expect_connection(WAIT);
    assert_eq!(text(&server.expect_sent(WAIT, |_| true)), Some("queued one"));
    assert_eq!(text(&server.expect_sent(WAIT, |_| true)), Some("queued two"));
    assert_closed_normally(&server);
    let out = w.finish();
    out.assert_code(0);
    assert!(!out.stderr.contains("dropped"), "{}", out.stderr);
}

fn usage_errors_exit_two_with_a_message(runtime: &str) {
    let cases: [(&[&str], &str); 5] = [
        (&["ws://127.0.0.1:9/", "--frobnicate"], "unknown option --frobnicate"),
        (&["http://127.0.0.1/"], "unsupported URL scheme \"http\""),
        (&["not a url"], "invalid URL"),
        (&["ws://127.0.0.1:9/", "--count", "many"], "--count \"many\""),
        (&["ws://127.0.0.1:9/", "--params", "{}"], "--params must follow"),
    ];
    for (args, message) in cases {
        let out = Wslink::start(runtime, args).finish();
        out.assert_code(2);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("--help"), "{args:?} points to --help: {}", out.stderr);
        assert!(out.lines.is_empty());
    }
}

fn refused_connection_exits_three(runtime: &str) {
    let addr = format!("127.0.0.1:{}", refused_port());
    let url = format!("ws://{addr}/");
    for extra in [&["--no-reconnect"][..], &[]] {
        let args: Vec<&str> = [url.as_str()].into_iter().chain(extra.iter().copied()).collect();
        let out = Wslink::start(runtime, &args).finish();
        out.assert_code(3);
        let said = format!("could not connect to {addr}: the connection could not be opened");
        assert!(out.stderr.contains(&said), "{}", out.stderr);
    }
}

fn gives_up_after_max_attempts_with_exit_three(runtime: &str) {
    let server = MockServer::start();
    server.refuse_upgrades(Some(503));
    let out = Wslink::start(runtime, &[&server.url(), "--max-attempts", "2"]).finish();
    out.assert_code(3);
    assert_eq!(server.refused(), 2);
    assert!(out.stderr.contains("it gave up after 2 attempts in a row failed to connect"), "{}", out.stderr);
    assert!(out.stderr.contains("503"), "{}", out.stderr);
}

fn max_attempts_never_gives_up_on_links_that_opened(runtime: &str) {
    // Every link opens, subscribes, and is cut: no attempt failed to
    // connect, so `--max-attempts 2` never gives up, however many cuts.
    let server = MockServer::start();
    let w = Wslink::start(runtime, &[&server.url(), "--max-attempts", "2", "--subscribe", "trades"]);
    for _ in 0..4 {
        server.expect_connection(WAIT);
        server.expect_sent(WAIT, is_subscribe);
        server.cut();
    }
    server.expect_connection(WAIT);
    server.expect_sent(WAIT, is_subscribe);
    w.signal("INT");
    assert_closed_normally(&server);
    let out = w.finish();
    out.assert_code(130);
    assert!(!out.stderr.contains("gave up"), "{}", out.stderr);
    assert_eq!(out.stderr.matches("reconnected (first try)").count(), 4, "{}", out.stderr);
}

fn server_closing_with_an_error_code_exits_four(runtime: &str) {
    let server = MockServer::start();
    let w = Wslink::start(runtime, &[&server.url(), "--no-reconnect"]);
    server.expect_connection(WAIT);
    server.close(CloseCode::Error, "overloaded");
    let out = w.finish();
    out.assert_code(4);
    assert!(out.stderr.contains("code 1011 (\"overloaded\")"), "{}", out.stderr);
}

fn server_closing_cleanly_exits_zero(runtime: &str) {
    let server = MockServer::start();
    let w = Wslink::start(runtime, &[&server.url(), "--no-reconnect"]);
    server.expect_connection(WAIT);
    server.send_text("last words");
    server.close(CloseCode::Normal, "bye");
    let out = w.finish();
    out.assert_code(0);
    assert_eq!(out.lines, ["last words"]);
}

fn tls_refused_exits_five(runtime: &str) {
    // The mock server speaks plain WebSocket: a TLS handshake with it fails.
    let server = MockServer::start();
    let url = format!("wss://{}/", server.addr());
    let out = Wslink::start(runtime, &[&url]).finish();
    out.assert_code(5);
    assert!(out.stderr.contains("could not connect: the TLS handshake failed"), "{}", out.stderr);
}

fn ctrl_c_closes_cleanly_and_exits_130(runtime: &str) {
    let server = MockServer::start();
    let w = Wslink::start(runtime, &[&server.url(), "--subscribe", "trades"]);
    server.expect_connection(WAIT);
    // Open: the subscription came (a Ctrl-C during the upgrade would drop
    // the link with no close frame, the upgrade being unfinished).
    server.expect_sent(WAIT, is_subscribe);
    // The signal handler is installed before the client starts, so once
    // the server has the connection a SIGINT is handled, not fatal.
    w.signal("INT");
    assert_closed_normally(&server);
    let out = w.finish();
    out.assert_code(130);
}

fn no_status_line_when_stderr_is_not_a_terminal(runtime: &str) {
    let server = MockServer::start();
    let w = Wslink::start(runtime, &[&server.url(), "--count", "1"]);
    server.expect_connection(WAIT);
    server.send_text("one");
    let out = w.finish();
    out.assert_code(0);
    // The status line is drawn at once when enabled; a pipe must never get it.
    assert!(out.stderr.contains("connected to"), "stderr was captured: {}", out.stderr);
    assert!(!out.stderr.contains('\r') && !out.stderr.contains('\x1b'), "status line on a pipe: {:?}", out.stderr);
    assert_eq!(out.lines, ["one"]);
}

/// What stands for a secret in the hostile inputs below.
const SECRET: &str = "SECRETPW";

#[track_caller]
fn assert_no_secret(out: &Finished, what: &str) {
    assert!(!out.stderr.contains(SECRET), "{what}: a secret reached stderr:\n{}", out.stderr);
    assert!(!out.lines.iter().any(|l| l.contains(SECRET)), "{what}: a secret reached stdout: {:?}", out.lines);
}

fn secrets_in_urls_headers_and_params_are_never_shown(runtime: &str) {
    let refused = format!("127.0.0.1:{}", refused_port());
    let query = format!("ws://{refused}/feed?token={SECRET}");
    let userinfo = format!("ws://alice:{SECRET}@{refused}/");
    let usage: Vec<(Vec<String>, &str)> = vec![
        (vec![userinfo.clone()], "user information"),
        (vec![format!("http://alice:{SECRET}@{refused}/")], "unsupported URL scheme"),
        (vec![format!("alice:{SECRET}@{refused}/feed")], "ws://"),
        (vec![format!("ws://{refused}/#{SECRET}")], "#fragment"),
        (vec![format!("ws://alice:{SECRET}/")], "invalid port"),
        (vec![format!("ws://{refused}/ a?token={SECRET}")], "invalid URL"),
        (vec![query.clone(), userinfo], "one URL only"),
        (vec![query.clone(), "--header".into(), format!("Authorization Bearer {SECRET}")], "--header"),
        (vec![query.clone(), "--header".into(), format!("Authorization=Bearer {SECRET}: x")], "--header"),
        (vec![query.clone(), "--header".into(), format!("X-Key: {SECRET}\rInjected: 1")], "--header"),
        (
            vec![
                query.clone(),
                "--request".into(),
                "public/auth".into(),
                "--params".into(),
                format!(r#"{{"secret":"{SECRET}""#),
            ],
            "--params",
        ),
    ];
    for (args, message) in usage {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = Wslink::start(runtime, &args).finish();
        out.assert_code(2);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert_no_secret(&out, &format!("{args:?}"));
    }
    let out = Wslink::start(runtime, &[&query]).finish();
    out.assert_code(3);
    assert_no_secret(&out, "a refused connection");
    // An open connection with a token in the query, credentials in headers
    // and in a proxy variable, and every log line on: nothing shows them.
    let server = MockServer::start();
    let url = format!("{}?token={SECRET}", server.url());
    let proxy = format!("ftp://bob:{SECRET}@127.0.0.1:1");
    let bearer = format!("Authorization: Bearer {SECRET}");
    let cookie = format!("Cookie: session={SECRET}");
    let w = Wslink::with_env(
        runtime,
        &[&url, "-vvv", "--header", &bearer, "--header", &cookie, "--count", "1"],
        &[("HTTP_PROXY", &proxy)],
    );
    let conn = server.expect_connection(WAIT);
    assert_eq!(conn.header("Authorization"), Some(&*format!("Bearer {SECRET}")), "the header was sent");
    server.send_text("one");
    let out = w.finish();
    out.assert_code(0);
    assert_eq!(out.lines, ["one"]);
    assert!(out.stderr.contains("connected to ws://127.0.0.1:"), "{}", out.stderr);
    assert!(out.stderr.contains("HTTP_PROXY"), "the skipped proxy variable is named: {}", out.stderr);
    assert_no_secret(&out, "an open connection with -vvv");
}

fn cacert_files_are_read_with_a_size_cap(runtime: &str) {
    let dir = std::env::temp_dir().join(format!("wslink-e2e-cacert-{}-{runtime}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let large = dir.join("large.pem");
    std::fs::write(&large, vec![b'A'; 5 << 20]).expect("a large file");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, b"").expect("an empty file");
    let broken = dir.join("broken.pem");
    std::fs::write(&broken, b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").expect("a file");
    let missing = dir.join("missing.pem");
    let url = format!("wss://127.0.0.1:{}/", refused_port());
    let show = |p: &std::path::Path| p.display().to_string();
    let cases = [
        ("/dev/zero".to_owned(), "is larger than"),
        (show(&large), "is larger than"),
        (show(&empty), "no certificate"),
        (show(&broken), "--cacert"),
        (show(&missing), "--cacert"),
        (show(&dir), "--cacert"),
    ];
    for (path, message) in &cases {
        let out = Wslink::start(runtime, &[&url, "--cacert", path]).finish();
        out.assert_code(2);
        assert!(out.stderr.contains(message) && out.stderr.contains(path.as_str()), "{path}: {}", out.stderr);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn warnings_and_logs_go_to_stderr_by_verbosity(runtime: &str) {
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let bad_proxy = ("HTTPS_PROXY", "ftp://proxy.invalid:1");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let args: Vec<&str> = [url.as_str()].into_iter().chain(args.iter().copied()).collect();
        let out = Wslink::with_env(runtime, &args, env).finish();
        out.assert_code(3);
        out.stderr
    };
    let default = run(&[], &[bad_proxy]);
    assert!(default.contains("HTTPS_PROXY") && default.contains("ignored"), "a skipped proxy is a warning: {default}");
    assert!(!default.contains("opening transport"), "no debug lines by default: {default}");
    let quiet = run(&["-q"], &[bad_proxy]);
    assert!(!quiet.contains("HTTPS_PROXY"), "-q hides warnings: {quiet}");
    assert!(quiet.contains("could not connect"), "-q still shows errors: {quiet}");
    let off = run(&[], &[bad_proxy, ("RUST_LOG", "off")]);
    assert!(!off.contains("HTTPS_PROXY"), "RUST_LOG=off: {off}");
    let debug = run(&["-vv"], &[]);
    assert!(debug.contains("opening transport"), "-vv shows debug lines: {debug}");
    let targeted = run(&[], &[("RUST_LOG", "wslink_adapter=debug")]);
    assert!(targeted.contains("opening transport"), "RUST_LOG picks targets: {targeted}");
    let bad = run(&[], &[("RUST_LOG", "wslink=loud")]);
    assert!(bad.contains("RUST_LOG"), "a RUST_LOG that does not parse is named: {bad}");
}

/// Writes up to `total` bytes of one endless line to `w`'s stdin from a
/// thread; returns how many bytes the pipe took before wslink closed it.
fn feed_one_line(w: &mut Wslink, total: usize) -> JoinHandle<usize> {
    let mut stdin = w.stdin.take().expect("started with_stdin");
    std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        let mut written = 0;
        while written < total {
            match stdin.write(&chunk[..chunk.len().min(total - written)]) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        written
    })
}

fn a_stdin_line_over_the_message_limit_is_refused_unread(runtime: &str) {
    // The default limit is 64 MiB; a pipe holds at most 1 MiB, the reader's buffer 8 KiB.
    for (args, limit, total) in
        [(&[][..], 64usize << 20, 80usize << 20), (&["--max-message-size", "1000"][..], 1000, 8 << 20)]
    {
        let server = MockServer::start();
        let url = server.url();
        let all: Vec<&str> = [url.as_str()].into_iter().chain(args.iter().copied()).collect();
        let mut w = Wslink::with_stdin(runtime, &all);
        let writer = feed_one_line(&mut w, total);
        let out = w.finish();
        let written = writer.join().expect("the writer thread");
        assert!(written <= limit + (2 << 20), "{written} bytes of a {total}-byte line were read, limit {limit}");
        out.assert_code(2);
        assert!(out.stderr.contains("stdin line 1 is longer than"), "{}", out.stderr);
        assert!(server.sent().is_empty(), "nothing was sent");
    }
}

fn piped_lines_get_their_replies_before_the_close(runtime: &str) {
    // `printf 'a\nb\n' | wslink URL` against Python's `websockets` echo,
    // which answers a close frame at once, even with echoes still to send:
    // the close waits for one reply per line sent, so every run prints both.
    const RUNS: usize = 20;
    let server = PythonServer::start(None);
    let url = format!("ws://{}/", server.addr);
    let mut missed = Vec::new();
    for run in 0..RUNS {
        let mut w = Wslink::with_stdin(runtime, &[&url]);
        w.write_stdin("a\nb\n");
        w.close_stdin();
        let out = w.finish();
        out.assert_code(0);
        if out.lines != ["a", "b"] {
            missed.push((run, out.lines));
        }
    }
    assert!(missed.is_empty(), "{} of {RUNS} runs lost replies: {missed:?}", missed.len());
}

fn the_wait_for_replies_after_stdin_is_bounded(runtime: &str) {
    // No reply: it closes once the bound has passed, exit 0, and says so.
    let server = MockServer::start();
    let mut w = Wslink::with_stdin(runtime, &[&server.url(), "--request-timeout", "0.2"]);
    w.write_stdin("hello\n");
    w.close_stdin();
    server.expect_connection(WAIT);
    server.expect_sent(WAIT, |m| text(m) == Some("hello"));
    assert_closed_normally(&server);
    let out = w.finish();
    out.assert_code(0);
    assert!(out.stderr.contains("0 of 1 replies"), "{}", out.stderr);
    // With --count, fewer messages than asked within the bound is a failure.
    let server = MockServer::start();
    server.respond_with(|m| Some(m.clone()));
    let mut w = Wslink::with_stdin(runtime, &[&server.url(), "--count", "3", "--request-timeout", "0.2"]);
    w.write_stdin("one\ntwo\n");
    w.close_stdin();
    server.expect_connection(WAIT);
    assert_closed_normally(&server);
    let out = w.finish();
    out.assert_code(1);
    assert_eq!(out.lines, ["one", "two"]);
    assert!(out.stderr.contains("2 of --count 3"), "{}", out.stderr);
}

fn request_timeout_bounds_a_request(runtime: &str) {
    let server = MockServer::start();
    let w = Wslink::start(runtime, &[&server.url(), "--request", "public/never", "--request-timeout", "0.2", "--json"]);
    server.expect_connection(WAIT);
    server.expect_sent(WAIT, |m| jsonrpc::method(m).as_deref() == Some("public/never"));
    let out = w.finish();
    out.assert_code(1);
    assert_eq!(out.lines.len(), 1, "{:?}", out.lines);
    let line: serde_json::Value = serde_json::from_str(&out.lines[0]).expect("a JSON line");
    assert_eq!(line["kind"], "request_failed");
    assert_eq!(line["error"], "the request was not answered in time");
    assert_closed_normally(&server);
}

fn errors_say_what_to_try(runtime: &str) {
    let cases: [(&str, &str); 4] = [
        ("127.0.0.1:8765", "ws://127.0.0.1:8765"),
        ("localhost:8765/feed", "ws://localhost:8765/feed"),
        ("http://127.0.0.1:8765/x", "ws://127.0.0.1:8765/x"),
        ("https://example.com/x", "wss://example.com/x"),
    ];
    for (url, hint) in cases {
        let out = Wslink::start(runtime, &[url]).finish();
        out.assert_code(2);
        assert!(out.stderr.contains(&format!("did you mean {hint}")), "{url}: {}", out.stderr);
    }
    let refused = format!("127.0.0.1:{}", refused_port());
    let out = Wslink::start(runtime, &[&format!("ws://{refused}/")]).finish();
    out.assert_code(3);
    assert!(out.stderr.contains(&format!("could not connect to {refused}")), "{}", out.stderr);
    let server = MockServer::start();
    let out = Wslink::start(runtime, &[&format!("wss://{}/", server.addr())]).finish();
    out.assert_code(5);
    assert!(out.stderr.contains("may not speak TLS"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("ws://{}/", server.addr())), "{}", out.stderr);
}

macro_rules! on_both_runtimes {
    ($($scenario:ident => $tokio:ident, $smol:ident;)*) => {$(
        #[test]
        fn $tokio() {
            $scenario("tokio");
        }
        #[test]
        fn $smol() {
            $scenario("smol");
        }
    )*};
}

on_both_runtimes! {
    messages_in_order_and_count_exits_zero =>
        tokio_runtime_messages_in_order_and_count_exits_zero, smol_runtime_messages_in_order_and_count_exits_zero;
    json_lines_carry_the_documented_fields =>
        tokio_runtime_json_lines_carry_the_documented_fields, smol_runtime_json_lines_carry_the_documented_fields;
    subscribe_is_sent_again_after_a_reconnect =>
        tokio_runtime_subscribe_is_sent_again_after_a_reconnect, smol_runtime_subscribe_is_sent_again_after_a_reconnect;
    request_prints_its_response_with_rtt =>
        tokio_runtime_request_prints_its_response_with_rtt, smol_runtime_request_prints_its_response_with_rtt;
    request_answered_with_an_error_exits_one =>
        tokio_runtime_request_answered_with_an_error_exits_one, smol_runtime_request_answered_with_an_error_exits_one;
    stdin_lines_are_sent_and_its_end_closes_cleanly =>
        tokio_runtime_stdin_lines_are_sent_and_its_end_closes_cleanly,
        smol_runtime_stdin_lines_are_sent_and_its_end_closes_cleanly;
    stdin_ending_before_the_connection_opens_loses_nothing =>
        tokio_runtime_stdin_ending_before_the_connection_opens_loses_nothing,
        smol_runtime_stdin_ending_before_the_connection_opens_loses_nothing;
    usage_errors_exit_two_with_a_message =>
        tokio_runtime_usage_errors_exit_two_with_a_message, smol_runtime_usage_errors_exit_two_with_a_message;
    refused_connection_exits_three =>
        tokio_runtime_refused_connection_exits_three, smol_runtime_refused_connection_exits_three;
    gives_up_after_max_attempts_with_exit_three =>
        tokio_runtime_gives_up_after_max_attempts_with_exit_three,
        smol_runtime_gives_up_after_max_attempts_with_exit_three;
    max_attempts_never_gives_up_on_links_that_opened =>
        tokio_runtime_max_attempts_never_gives_up_on_links_that_opened,
        smol_runtime_max_attempts_never_gives_up_on_links_that_opened;
    server_closing_with_an_error_code_exits_four =>
        tokio_runtime_server_closing_with_an_error_code_exits_four,
        smol_runtime_server_closing_with_an_error_code_exits_four;
    server_closing_cleanly_exits_zero =>
        tokio_runtime_server_closing_cleanly_exits_zero, smol_runtime_server_closing_cleanly_exits_zero;
    tls_refused_exits_five => tokio_runtime_tls_refused_exits_five, smol_runtime_tls_refused_exits_five;
    ctrl_c_closes_cleanly_and_exits_130 =>
        tokio_runtime_ctrl_c_closes_cleanly_and_exits_130, smol_runtime_ctrl_c_closes_cleanly_and_exits_130;
    no_status_line_when_stderr_is_not_a_terminal =>
        tokio_runtime_no_status_line_when_stderr_is_not_a_terminal,
        smol_runtime_no_status_line_when_stderr_is_not_a_terminal;
    secrets_in_urls_headers_and_params_are_never_shown =>
        tokio_runtime_secrets_in_urls_headers_and_params_are_never_shown,
        smol_runtime_secrets_in_urls_headers_and_params_are_never_shown;
    cacert_files_are_read_with_a_size_cap =>
        tokio_runtime_cacert_files_are_read_with_a_size_cap, smol_runtime_cacert_files_are_read_with_a_size_cap;
    warnings_and_logs_go_to_stderr_by_verbosity =>
        tokio_runtime_warnings_and_logs_go_to_stderr_by_verbosity,
        smol_runtime_warnings_and_logs_go_to_stderr_by_verbosity;
    a_stdin_line_over_the_message_limit_is_refused_unread =>
        tokio_runtime_a_stdin_line_over_the_message_limit_is_refused_unread,
        smol_runtime_a_stdin_line_over_the_message_limit_is_refused_unread;
    piped_lines_get_their_replies_before_the_close =>
        tokio_runtime_piped_lines_get_their_replies_before_the_close,
        smol_runtime_piped_lines_get_their_replies_before_the_close;
    the_wait_for_replies_after_stdin_is_bounded =>
        tokio_runtime_the_wait_for_replies_after_stdin_is_bounded,
        smol_runtime_the_wait_for_replies_after_stdin_is_bounded;
    request_timeout_bounds_a_request =>
        tokio_runtime_request_timeout_bounds_a_request, smol_runtime_request_timeout_bounds_a_request;
    errors_say_what_to_try => tokio_runtime_errors_say_what_to_try, smol_runtime_errors_say_what_to_try;
}
