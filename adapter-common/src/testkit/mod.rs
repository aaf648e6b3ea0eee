//! A loopback mock WebSocket server for testing code that uses the adapters
//! (tokio or smol) without a network. Behind the `testkit` cargo feature
//! (off by default); `wslink-tokio` and `wslink-smol` forward a feature of
//! the same name and re-export this module:
//!
//! ```toml
//! [dev-dependencies]
//! wslink-tokio = { version = "0.1", features = ["testkit"] }
//! ```
//!
//! [`MockServer::start`] listens on a free port of 127.0.0.1 with real
//! sockets; tungstenite plays the server's side of the WebSocket. It is
//! scripted like the sans-IO kit (`wslink_core::testkit`): the test waits for
//! a connection, expects what the client sent, sends, closes, cuts the link
//! (drops TCP) or turns it into a black hole (TCP stays open, nothing flows).
//! A responder ([`MockServer::respond_with`]) can answer requests as they come.
//!
//! It runs on plain threads (`std::net`), so it serves any runtime. Every
//! wait takes a timeout and comes in two forms: blocking (`expect_*`), for a
//! test whose client runs on other threads (a multi-threaded runtime, smol's
//! global executor), and async (`expect_*_async`), for a test on a
//! single-threaded runtime, where blocking would stall the client itself;
//! the async form needs no particular runtime.
//!
//! Invariants: the server's threads end when the `MockServer` is dropped
//! (they look at a stop flag at least every 5 ms, and the drop waits for
//! them), so no test process is left with a thread blocked on a socket; the
//! "current" connection, the one `expect_sent`, `send_text`, `close`, `cut`
//! and `blackhole` act on, is the one [`expect_connection`](MockServer::expect_connection)
//! returned last, so a script names the connection it talks to; a command
//! (`send_*`, `close`, `cut`, `blackhole`) returns once that connection's
//! thread has carried it out (within a tick), so what the script does next
//! happens after it.
//!
//! A failed expectation panics with what was expected and what there was,
//! as a test helper does; each method's `# Panics` section says when.
//!
//! A client that subscribes, loses its link, comes back and asks:
//!
//! ```
//! # // Runs with `cargo test -p wslink-adapter --features testkit --doc`; CI's
//! # // `cargo test --workspace` turns the feature on through wslink-tests.
//! use std::time::Duration;
//! use wslink_adapter::testkit::{jsonrpc, MockServer};
//! use wslink_core::Message;
//!
//! let server = MockServer::start();
//! // Answer every request with its method's name, from the server's thread.
//! server.respond_with(|m| {
//!     let (id, method) = (jsonrpc::id(m)?, jsonrpc::method(m)?);
//!     Some(Message::Text(jsonrpc::result(id, &format!("{method:?}")).into()))
//! });
//! let url = server.url(); // ws://127.0.0.1:<port>/
//! # let client = std::thread::spawn(move || {
//! #     // Stands in for a wslink client on any runtime: two connections, one subscribe each.
//! #     for _ in 0..2 {
//! #         let (mut ws, _) = tungstenite::client::connect(url.as_str()).unwrap();
//! #         let subscribe = r#"{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["trades"]}}"#;
//! #         ws.send(tungstenite::Message::text(subscribe)).unwrap();
//! #         while let Ok(m) = ws.read() { if m.is_text() { break } }
//! #         while ws.read().is_ok() {} // until the server cuts the link
//! #     }
//! # });
//! // ... start the client under test with `url` and subscribe ...
//! let wait = Duration::from_secs(10);
//! server.expect_connection(wait);
//! let subscribe = server.expect_sent(wait, |m| jsonrpc::method(m).as_deref() == Some("public/subscribe"));
//! assert_eq!(jsonrpc::params(&subscribe).as_deref(), Some(r#"{"channels":["trades"]}"#));
//! server.cut(); // drop TCP: the client reconnects by itself
//! server.expect_connection(wait);
//! server.expect_sent(wait, |m| jsonrpc::method(m).as_deref() == Some("public/subscribe"));
//! assert_eq!(server.connections(), 2);
//! server.cut();
//! # client.join().unwrap();
//! ```

mod shared;
#[cfg(test)]
mod tests;
mod thread;
mod wait;

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use wslink_core::{CloseCode, Message};

use self::shared::{Command, Shared, State};
use self::wait::{ended, take_connection, take_sent};

pub use self::shared::{Connection, Ended};
pub use wslink_core::testkit::jsonrpc;

/// A loopback WebSocket server driven by a test script. See the
/// [module documentation](self) for an example.
///
/// # Panics
///
/// It is a test helper: [`start`](Self::start) panics if no port can be
/// bound, an `expect_*` call panics when its timeout passes without what it
/// waits for (listing what there was), and a command with no current
/// connection panics. Each method says when.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Listens on a free port of 127.0.0.1.
    ///
    /// # Panics
    ///
    /// If no port can be bound; [`try_start`](Self::try_start) returns the error instead.
    #[track_caller]
    pub fn start() -> Self {
        match Self::try_start() {
            Ok(server) => server,
            Err(e) => panic!("MockServer::start: cannot listen on 127.0.0.1: {e}"),
        }
    }

    /// Listens on a free port of 127.0.0.1, or says why it cannot.
    pub fn try_start() -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        // Accept polls, so the thread sees the stop flag within a tick.
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let acceptor = std::thread::Builder::new().name(format!("mock-server-{}", addr.port())).spawn({
            let shared = shared.clone();
            move || thread::accept_loop(listener, &shared)
        })?;
        Ok(Self { addr, shared, acceptor: Some(acceptor) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:<port>/`, to give the client.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Upgrades accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().conns.len()
    }

    /// Upgrades refused so far (see [`refuse_upgrades`](Self::refuse_upgrades)).
    pub fn refused(&self) -> usize {
        self.shared.lock().refused
    }

    /// From now on, refuses every upgrade with `status` (`None`: accepts them again).
    ///
    /// # Panics
    ///
    /// If `status` is not an HTTP status from 100 to 999, or is 101.
    #[track_caller]
    pub fn refuse_upgrades(&self, status: Option<u16>) {
        if let Some(status) = status {
            assert!(
                (100..=999).contains(&status) && status != 101,
                "refuse_upgrades: {status} is not a refusal (use a status from 100 to 999 other than 101)"
            );
        }
        self.shared.lock().refuse = status;
    }

    /// Answers each message any client sends, as it arrives, with what
    /// `responder` returns (`None`: no answer). It runs on the server's
    /// threads, so a script on a single-threaded runtime need not wait for
    /// requests to answer them. Messages answered are still recorded for
    /// [`expect_sent`](Self::expect_sent).
    pub fn respond_with(&self, responder: impl FnMut(&Message) -> Option<Message> + Send + 'static) {
        self.shared.lock().responder = Some(Box::new(responder));
    }

    // ----- waits -----

    /// Waits for the next connection not yet returned, and makes it the
    /// current one. Connections arrive in order; a test that expects each
    /// one sees them all.
    ///
    /// # Panics
    ///
    /// If none arrives within `timeout`.
    #[track_caller]
    pub fn expect_connection(&self, timeout: Duration) -> Connection {
        wait::until(&self.shared, "expect_connection", timeout, take_connection)
    }

    /// [`expect_connection`](Self::expect_connection) for async tests, on any runtime.
    ///
    /// # Panics
    ///
    /// If none arrives within `timeout`.
    #[track_caller]
    pub fn expect_connection_async(&self, timeout: Duration) -> impl Future<Output = Connection> + '_ {
        wait::until_async(&self.shared, "expect_connection_async", timeout, take_connection)
    }

    /// Waits for the current connection to carry a message from the client
    /// that matches `predicate`, and returns it. It and every message before
    /// it are taken: expectations read forward.
    ///
    /// # Panics
    ///
    /// If there is no current connection (call [`expect_connection`](Self::expect_connection)
    /// first), or no such message arrives within `timeout`; the panic lists
    /// the messages not yet taken.
    #[track_caller]
    pub fn expect_sent(&self, timeout: Duration, mut predicate: impl FnMut(&Message) -> bool) -> Message {
        wait::until(&self.shared, "expect_sent", timeout, |state| take_sent(state, &mut predicate))
    }

    /// [`expect_sent`](Self::expect_sent) for async tests, on any runtime.
    ///
    /// # Panics
    ///
    /// As `expect_sent`.
    #[track_caller]
    pub fn expect_sent_async<'a>(
        &'a self,
        timeout: Duration,
        mut predicate: impl FnMut(&Message) -> bool + 'a,
    ) -> impl Future<Output = Message> + 'a {
        wait::until_async(&self.shared, "expect_sent_async", timeout, move |state| take_sent(state, &mut predicate))
    }

    /// Waits for the current connection to end, and says how: the client's
    /// close frame in a close handshake, a cut, or a dropped link. (A
    /// [blackholed](Self::blackhole) connection reads nothing, so it never
    /// sees its end.)
    ///
    /// # Panics
    ///
    /// If there is no current connection, or it does not end within `timeout`.
    #[track_caller]
    pub fn expect_disconnect(&self, timeout: Duration) -> Ended {
        wait::until(&self.shared, "expect_disconnect", timeout, ended)
    }

    /// [`expect_disconnect`](Self::expect_disconnect) for async tests, on any runtime.
    ///
    /// # Panics
    ///
    /// As `expect_disconnect`.
    #[track_caller]
    pub fn expect_disconnect_async(&self, timeout: Duration) -> impl Future<Output = Ended> + '_ {
        wait::until_async(&self.shared, "expect_disconnect_async", timeout, ended)
    }

    /// The messages the client sent on the current connection that no
    /// expectation took, taken now (empty without a current connection).
    pub fn sent(&self) -> Vec<Message> {
        let mut state = self.shared.lock();
        let current = state.expected.checked_sub(1);
        current.map(|i| state.conns[i].unread.drain(..).collect()).unwrap_or_default()
    }

    // ----- commands to the current connection -----

    /// Sends a text message to the client.
    ///
    /// # Panics
    ///
    /// If there is no current connection, or its thread does not carry the
    /// command out within 10 s (a write blocked on a client that does not
    /// read). A connection that has ended takes the message and loses it, as
    /// a real socket would.
    #[track_caller]
    pub fn send_text(&self, text: &str) {
        wait::apply(&self.shared, "send_text", Command::Send(Message::Text(text.into())));
    }

    /// Sends a binary message to the client.
    ///
    /// # Panics
    ///
    /// As [`send_text`](Self::send_text).
    #[track_caller]
    pub fn send_binary(&self, data: impl Into<bytes::Bytes>) {
        wait::apply(&self.shared, "send_binary", Command::Send(Message::Binary(data.into())));
    }

    /// Sends a message of either kind to the client.
    ///
    /// # Panics
    ///
    /// As [`send_text`](Self::send_text).
    #[track_caller]
    pub fn send(&self, message: Message) {
        wait::apply(&self.shared, "send", Command::Send(message));
    }

    /// Starts the close handshake from the server with `code` and `reason`;
    /// the server drops TCP once the client answers.
    ///
    /// # Panics
    ///
    /// As [`send_text`](Self::send_text).
    #[track_caller]
    pub fn close(&self, code: CloseCode, reason: &str) {
        wait::apply(&self.shared, "close", Command::Close(code, reason.to_owned()));
    }

    /// Drops the TCP connection without a close frame: the client reads end
    /// of stream, as when a server dies or a proxy cuts.
    ///
    /// # Panics
    ///
    /// As [`send_text`](Self::send_text).
    #[track_caller]
    pub fn cut(&self) {
        wait::apply(&self.shared, "cut", Command::Cut);
    }

    /// From now on the current connection neither reads nor writes (no
    /// pongs, no answers), but its TCP connection stays open: only the
    /// client's heartbeat or a timeout can find it dead.
    ///
    /// # Panics
    ///
    /// As [`send_text`](Self::send_text).
    #[track_caller]
    pub fn blackhole(&self) {
        wait::apply(&self.shared, "blackhole", Command::Blackhole);
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.notify(&mut self.shared.lock());
        if let Some(acceptor) = self.acceptor.take() {
            // The acceptor joins the connections' threads before it ends.
            let _ = acceptor.join();
        }
    }
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .field("connections", &state.conns.len())
            .field("current", &state.expected.checked_sub(1))
            .finish_non_exhaustive()
    }
}
