//! The `--help` text: every flag, when a run ends, and the exit codes.
//!
//! Invariant: it says what `parse.rs` accepts and what `exit.rs` returns;
//! a flag or an exit code added there is added here.

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
