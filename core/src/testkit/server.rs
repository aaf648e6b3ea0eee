//! [`FakeServer`]: a [`Session`], a fake clock and a scripted server at the
//! other end of a fake transport, all in one value.
//!
//! Role: carry out every [`Action`] the session asks for, play the server's
//! side of each transport, and move the clock only when the test says.
//! Invariants: every public method returns with the session's actions all
//! carried out (so `sent()` and the events are up to date); at most one
//! transport exists, as the session promises (a breach panics); the clock
//! never goes backwards and stops at every deadline it passes.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, SeedableRng};
use tungstenite::protocol::frame::coding::Control;

use super::wire::{self, ClientWire};
use super::{Endpoint, Link, Sent, UpgradeRequest};
use crate::{Action, CloseCode, ConfigError, Session, SessionBuilder, SessionState};

/// The seed of the session's random source unless [`FakeServer::with_seed`] names one.
const DEFAULT_SEED: u64 = 42;

/// How many deadlines one `advance_by` may fire before it is taken for a
/// session that keeps rearming a deadline it has already reached.
const MAX_DEADLINES_PER_ADVANCE: usize = 1_000_000;

/// How many rounds of answers (pongs, close replies) one call may exchange
/// with the session; each round needs a new frame from the client.
const MAX_ANSWER_ROUNDS: usize = 10_000;

/// The transport of the moment, as the fake server sees it.
#[derive(Debug)]
pub(super) enum Transport {
    /// None asked for, or the last one closed.
    Down,
    /// Asked for; the test accepts or refuses it.
    Opening,
    /// Open: the server reads the client's bytes.
    Up {
        wire: ClientWire,
        /// Whether the upgrade was answered with 101.
        upgraded: bool,
        /// Whether the server sent its close frame (it then does not answer the client's).
        server_closed: bool,
        /// Nothing is answered or delivered any more.
        blackholed: bool,
    },
}

/// A [`Session`] with a fake clock and a scripted fake server: a test drives
/// the server's side (accept, answer, send, drop, blackhole) and the clock,
/// and reads what the client sent and what the session reported.
///
/// See the [module documentation](super) for a complete example.
///
/// # Panics
///
/// It is a test helper: a step the current state does not allow (accepting
/// a transport nobody asked for, sending before the upgrade), an expectation
/// that fails (`expect_sent`, `expect_event`, `advance` with no deadline),
/// and a client that breaks RFC 6455 or the session's own promises (two
/// transports at once, a write without a transport) panic, with a message
/// that says what was expected and what there was. Every method that can
/// panic says so.
pub struct FakeServer {
    pub(super) session: Session,
    pub(super) origin: Instant,
    pub(super) now: Instant,
    pub(super) transport: Transport,
    /// Answer pings and close frames as a server does.
    pub(super) auto_answer: bool,
    pub(super) endpoint: Option<Endpoint>,
    pub(super) opened: usize,
    pub(super) closed: usize,
    /// What the client wrote and the test has not taken yet.
    pub(super) sent: VecDeque<Sent>,
    /// Frames to deliver to the client once the current drain is over.
    pub(super) answers: Vec<Vec<u8>>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("elapsed", &self.elapsed())
            .field("link", &self.link())
            .field("session", &self.session)
            .field("unread_sent", &self.sent.len())
            .finish_non_exhaustive()
    }
}

impl FakeServer {
    // ----- building -----

    /// Builds the session with a seeded random source (the same seed in every
    /// run, so every run is the same) and starts the fake clock at `origin`.
    ///
    /// The core never reads the clock, so the test gives the origin:
    /// `Instant::now()` is the usual one; nothing reads the clock after it.
    /// The session is idle until [`connect`](Self::connect).
    pub fn new(builder: SessionBuilder, origin: Instant) -> Result<Self, ConfigError> {
        Self::with_seed(builder, DEFAULT_SEED, origin)
    }

    /// Like [`new`](Self::new) with the random source seeded with `seed`
    /// (masking keys, handshake nonces and backoff jitter follow from it).
    pub fn with_seed(builder: SessionBuilder, seed: u64, origin: Instant) -> Result<Self, ConfigError> {
        let session = builder.build(Box::new(StdRng::seed_from_u64(seed)), origin)?;
        Ok(Self {
            session,
            origin,
            now: origin,
            transport: Transport::Down,
            auto_answer: true,
            endpoint: None,
            opened: 0,
            closed: 0,
            sent: VecDeque::new(),
            answers: Vec::new(),
        })
    }

    /// Whether the server answers the client's pings with pongs and its close
    /// frame with one of its own, as servers do. On by default; turn it off
    /// to answer by hand ([`send_pong`](Self::send_pong), [`send_close`](Self::send_close))
    /// or to leave pings unanswered. A [blackholed](Self::blackhole) link answers nothing either way.
    pub fn set_auto_answer(&mut self, on: bool) {
        self.auto_answer = on;
    }

    // ----- the session and the clock -----

    /// The session, to read its state, metrics and health.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session itself. After changing it directly, call
    /// [`flush`](Self::flush) to carry out what it asked; [`command`](Self::command) does both.
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Runs a command on the session at the fake clock's time, then carries
    /// out what it asked: `kit.command(|s, now| s.subscribe(&["a"], now))`.
    pub fn command<T>(&mut self, f: impl FnOnce(&mut Session, Instant) -> T) -> T {
        let out = f(&mut self.session, self.now);
        self.flush();
        out
    }

    /// The session's state.
    pub fn state(&self) -> SessionState {
        self.session.state()
    }

    /// The fake clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Where the fake clock started.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Fake time since the origin.
    pub fn elapsed(&self) -> Duration {
        self.now - self.origin
    }

    /// Moves the clock to the session's next deadline and fires it; returns
    /// the step. This is how a test lets time pass: backoff delays, pings,
    /// pong deadlines, request timeouts each come at their exact instant.
    ///
    /// # Panics
    ///
    /// If the session has no deadline: nothing would ever happen (an idle
    /// or closed session, or one waiting for the test to accept a step
    /// without a timeout). [`try_advance`](Self::try_advance) returns `None` instead.
    #[track_caller]
    pub fn advance(&mut self) -> Duration {
        match self.try_advance() {
            Some(step) => step,
            None => panic!(
                "advance: the session has no deadline, so no amount of time would change anything \
                 (state {:?}, link {:?}, {:?} after the origin)",
                self.state(),
                self.link(),
                self.elapsed()
            ),
        }
    }

    /// Like [`advance`](Self::advance), but `None` when the session has no deadline.
    pub fn try_advance(&mut self) -> Option<Duration> {
        let deadline = self.session.poll_timeout()?;
        // The session never reports a deadline in the past; were it to, the
        // clock stays put (it never goes backwards) and the timer fires now.
        let step = deadline.saturating_duration_since(self.now);
        self.now = self.now.max(deadline);
        self.session.handle_timeout(self.now);
        self.flush();
        Some(step)
    }

    /// Moves the clock forward by `by`, stopping at every deadline on the way
    /// to fire it at its own instant, as real time would; then fires what is
    /// due at the end.
    ///
    /// # Panics
    ///
    /// If the session keeps reporting deadlines it has already reached
    /// (more than a million within `by`): a session that would spin.
    #[track_caller]
    pub fn advance_by(&mut self, by: Duration) {
        let Some(target) = self.now.checked_add(by) else {
            panic!("advance_by: {by:?} after {:?} is beyond what Instant holds", self.elapsed())
        };
        for _ in 0..MAX_DEADLINES_PER_ADVANCE {
            match self.session.poll_timeout() {
                Some(deadline) if deadline <= target => {
                    self.now = self.now.max(deadline);
                    self.session.handle_timeout(self.now);
                    self.flush();
                }
                _ => {
                    self.now = target;
                    self.session.handle_timeout(self.now);
                    self.flush();
                    return;
                }
            }
        }
        panic!(
            "advance_by: the session reported more than {MAX_DEADLINES_PER_ADVANCE} deadlines within {by:?}; \
             it keeps rearming one it has reached (state {:?})",
            self.state()
        );
    }

    // ----- the client's commands -----

    /// Tells the session to connect; it asks for a transport, which the test
    /// then [accepts](Self::accept_transport) or [refuses](Self::refuse_transport).
    ///
    /// # Panics
    ///
    /// If the session is closed.
    #[track_caller]
    pub fn connect(&mut self) {
        if let Err(e) = self.command(|s, now| s.connect(now)) {
            panic!("connect: the session refused: {e}");
        }
    }

    // ----- the transport -----

    /// The link between client and fake server.
    pub fn link(&self) -> Link {
        match &self.transport {
            Transport::Down => Link::Down,
            Transport::Opening => Link::Opening,
            Transport::Up { blackholed: true, .. } => Link::Blackholed,
            Transport::Up { upgraded: false, .. } => Link::Upgrading,
            Transport::Up { upgraded: true, .. } => Link::Open,
        }
    }

    /// Where the session last asked to connect.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    /// Transports the session has asked for so far.
    pub fn transports_opened(&self) -> usize {
        self.opened
    }

    /// Transports the session has closed so far (given up while opening included).
    pub fn transports_closed(&self) -> usize {
        self.closed
    }

    /// Opens the transport the session asked for; the client then writes its upgrade request.
    ///
    /// # Panics
    ///
    /// If no transport is being opened.
    #[track_caller]
    pub fn accept_transport(&mut self) {
        self.expect_link(Link::Opening, "accept_transport");
        self.transport =
            Transport::Up { wire: ClientWire::default(), upgraded: false, server_closed: false, blackholed: false };
        self.session.handle_transport_open(self.now);
        self.flush();
    }

    /// Fails the transport the session asked for with `kind` (a refused TCP
    /// connection is `ErrorKind::ConnectionRefused`).
    ///
    /// # Panics
    ///
    /// If no transport is being opened.
    #[track_caller]
    pub fn refuse_transport(&mut self, kind: ErrorKind) {
        self.expect_link(Link::Opening, "refuse_transport");
        let message = format!("the fake server refused the transport: {kind}");
        self.session.handle_transport_error(kind, &message, self.now);
        self.flush();
    }

    /// The upgrade request the client wrote on the current transport, to
    /// check its path and headers.
    ///
    /// # Panics
    ///
    /// If the transport is not open or no complete request has arrived.
    #[track_caller]
    pub fn expect_upgrade(&self) -> UpgradeRequest {
        match &self.transport {
            Transport::Up { wire: ClientWire { upgrade: Some(request), .. }, .. } => request.clone(),
            _ => panic!("expect_upgrade: no upgrade request has arrived (link {:?})", self.link()),
        }
    }

    /// Answers the upgrade with `101 Switching Protocols`.
    ///
    /// # Panics
    ///
    /// If no upgrade request waits for an answer.
    #[track_caller]
    pub fn accept_upgrade(&mut self) {
        self.accept_upgrade_with(&[]);
    }

    /// Answers the upgrade with `101 Switching Protocols` and `headers` (a
    /// `Sec-WebSocket-Protocol` the client offered, say). Do not grant
    /// permessage-deflate: the fake server cannot read compressed frames.
    ///
    /// # Panics
    ///
    /// If no upgrade request waits for an answer.
    #[track_caller]
    pub fn accept_upgrade_with(&mut self, headers: &[(&str, &str)]) {
        let request = self.pending_upgrade("accept_upgrade");
        let Some(key) = request.header("Sec-WebSocket-Key") else {
            panic!("accept_upgrade: the client's upgrade request has no Sec-WebSocket-Key: {request:?}")
        };
        let response = wire::switching_protocols(key, headers);
        if let Transport::Up { upgraded, .. } = &mut self.transport {
            *upgraded = true;
        }
        self.deliver(&response);
    }

    /// Refuses the upgrade with `status` (401, 429, 503 …) and an empty body.
    ///
    /// # Panics
    ///
    /// If no upgrade request waits for an answer, or `status` is not a
    /// refusal (outside 100..=999, or 101).
    #[track_caller]
    pub fn refuse_upgrade(&mut self, status: u16) {
        assert!(
            (100..=999).contains(&status) && status != 101,
            "refuse_upgrade: {status} is not a refusal (use a status from 100 to 999 other than 101)"
        );
        self.pending_upgrade("refuse_upgrade");
        self.deliver(&wire::refusal(status));
    }

    /// Transport then upgrade: [`accept_transport`](Self::accept_transport)
    /// and [`accept_upgrade`](Self::accept_upgrade).
    ///
    /// # Panics
    ///
    /// As those two do.
    #[track_caller]
    pub fn accept(&mut self) {
        self.accept_transport();
        self.accept_upgrade();
    }

    /// The server drops the connection without a close frame: the client
    /// reads end of stream (as when a server process dies or a proxy cuts).
    ///
    /// # Panics
    ///
    /// If no transport is open.
    #[track_caller]
    pub fn simulate_disconnect(&mut self) {
        if !matches!(self.transport, Transport::Up { .. }) {
            panic!(
                "simulate_disconnect: no transport is open (link {:?}); a transport being opened is \
                 refused with refuse_transport",
                self.link()
            );
        }
        self.session.handle_eof(self.now);
        self.flush();
    }

    /// From now on, for as long as this connection lasts, nothing flows: the
    /// server answers nothing and what it sends is lost, and what the client
    /// writes vanishes (it is still recorded in [`sent`](Self::sent): it is
    /// what the client did). The transport stays open, as a dead link's TCP
    /// does, so only the session's heartbeat or a timeout can find it. The
    /// next transport the session asks for is a new one, up to the test.
    ///
    /// # Panics
    ///
    /// If no transport is open.
    #[track_caller]
    pub fn blackhole(&mut self) {
        match &mut self.transport {
            Transport::Up { blackholed, .. } => *blackholed = true,
            _ => panic!("blackhole: no transport is open (link {:?})", self.link()),
        }
    }

    // ----- the server sends -----

    // ----- what the client sent -----

    // ----- what the session reported -----

    // ----- carrying out the session's actions -----

    /// Carries out every action the session asked for (open, write, close a
    /// transport), reading what the client wrote and answering pings and
    /// closes. Every other method does it already; call it after changing
    /// the session through [`session_mut`](Self::session_mut).
    ///
    /// # Panics
    ///
    /// If the session breaks its promises (a second transport while one is
    /// open, a write or a close without a transport) or the client breaks
    /// RFC 6455 in what it writes.
    #[track_caller]
    pub fn flush(&mut self) {
        for _ in 0..MAX_ANSWER_ROUNDS {
            while let Some(action) = self.session.poll_action() {
                self.carry_out(action);
            }
            if self.answers.is_empty() {
                return;
            }
            for answer in std::mem::take(&mut self.answers) {
                // The transport may have closed behind the frame that asked for this answer.
                if matches!(self.transport, Transport::Up { blackholed: false, .. }) {
                    self.session.handle_input(&answer, self.now);
                }
            }
        }
        panic!("flush: the client and the fake server kept answering each other for {MAX_ANSWER_ROUNDS} rounds");
    }

    #[track_caller]
    pub(super) fn carry_out(&mut self, action: Action) {
        match action {
            Action::OpenTransport { host, port, tls } => {
                assert!(
                    matches!(self.transport, Transport::Down),
                    "the session asked for a transport while one is {:?}: it promises at most one",
                    self.link()
                );
                self.endpoint = Some(Endpoint { host, port, tls });
                self.transport = Transport::Opening;
                self.opened += 1;
            }
            Action::Transmit(bytes) => {
                let Transport::Up { wire, upgraded, server_closed, blackholed } = &mut self.transport else {
                    panic!("the session wrote {} bytes without an open transport (link {:?})", bytes.len(), self.link())
                };
                // The fake transport takes every byte at once (a blackholed one too, as a
                // kernel's send buffer would, until it filled).
                self.session.handle_written(bytes.len(), self.now);
                let before = self.sent.len();
                let mut decoded = Vec::new();
                wire.read(&bytes, &mut decoded);
                self.sent.extend(decoded);
                if !self.auto_answer || *blackholed || !*upgraded {
                    return;
                }
                for sent in self.sent.range(before..) {
                    match sent {
                        Sent::Ping(payload) => self.answers.push(wire::control_frame(Control::Pong, payload)),
                        Sent::Close(close) if !*server_closed => {
                            *server_closed = true;
                            let (code, reason) = close.clone().unwrap_or((CloseCode::Normal, String::new()));
                            self.answers.push(wire::close_frame(code, &reason));
                        }
                        _ => {}
                    }
                }
            }
            Action::CloseTransport { .. } => {
                assert!(
                    !matches!(self.transport, Transport::Down),
                    "the session closed a transport that does not exist"
                );
                self.transport = Transport::Down;
                self.closed += 1;
                self.answers.clear();
            }
        }
    }

    /// Hands server bytes to the client and carries out what follows.
    pub(super) fn deliver(&mut self, bytes: &[u8]) {
        self.session.handle_input(bytes, self.now);
        self.flush();
    }

    #[track_caller]
    pub(super) fn send_frame(&mut self, what: &str, frame: Vec<u8>) {
        match self.transport {
            Transport::Up { blackholed: true, .. } => {}
            Transport::Up { upgraded: true, .. } => self.deliver(&frame),
            _ => panic!(
                "{what}: the link is not open (link {:?}, state {:?}); accept the transport and the upgrade first",
                self.link(),
                self.state()
            ),
        }
    }

    #[track_caller]
    pub(super) fn expect_link(&self, want: Link, what: &str) {
        let link = self.link();
        assert!(
            link == want,
            "{what}: the link is {link:?}, not {want:?} (state {:?}); did the session ask for a transport? \
             `connect`, or `advance` through the backoff, makes it ask",
            self.state()
        );
    }

    #[track_caller]
    pub(super) fn pending_upgrade(&self, what: &str) -> UpgradeRequest {
        match &self.transport {
            Transport::Up {
                wire: ClientWire { upgrade: Some(request), .. },
                upgraded: false,
                blackholed: false,
                ..
            } => request.clone(),
            Transport::Up { upgraded: true, .. } => panic!("{what}: the upgrade was answered already"),
            _ => panic!("{what}: no upgrade request waits for an answer (link {:?})", self.link()),
        }
    }
}
