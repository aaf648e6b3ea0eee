//! The fake server's words and what it heard: messages, pings, pongs,
//! closes and raw bytes sent to the client; answers to its requests; what
//! the client sent (decoded); and the session's events, with expectations
//! that fail with what was seen instead.

use bytes::Bytes;
use tungstenite::protocol::frame::coding::Control;

use super::server::{FakeServer, Transport};
use super::wire;
use super::{jsonrpc, Sent};
use crate::{CloseCode, Message, SessionEvent};

impl FakeServer {
    /// Sends a text message to the client.
    ///
    /// # Panics
    ///
    /// If the link is not open (blackholed links take it and lose it).
    #[track_caller]
    pub fn send_text(&mut self, text: &str) {
        self.send_frame("send_text", wire::message_frame(&Message::Text(text.into())));
    }

    /// Sends a binary message to the client.
    ///
    /// # Panics
    ///
    /// If the link is not open (blackholed links take it and lose it).
    #[track_caller]
    pub fn send_binary(&mut self, data: impl Into<Bytes>) {
        self.send_frame("send_binary", wire::message_frame(&Message::Binary(data.into())));
    }

    /// Sends a message of either kind to the client.
    ///
    /// # Panics
    ///
    /// If the link is not open (blackholed links take it and lose it).
    #[track_caller]
    pub fn send(&mut self, message: &Message) {
        self.send_frame("send", wire::message_frame(message));
    }

    /// Sends a ping; the client answers with a pong, seen in [`sent`](Self::sent).
    /// A payload over 125 bytes breaks RFC 6455 on purpose: the client closes with 1002.
    ///
    /// # Panics
    ///
    /// If the link is not open (blackholed links take it and lose it).
    #[track_caller]
    pub fn send_ping(&mut self, payload: impl Into<Bytes>) {
        self.send_frame("send_ping", wire::control_frame(Control::Ping, &payload.into()));
    }

    /// Sends a pong (with auto-answer off, to answer the client's ping late).
    ///
    /// # Panics
    ///
    /// If the link is not open (blackholed links take it and lose it).
    #[track_caller]
    pub fn send_pong(&mut self, payload: impl Into<Bytes>) {
        self.send_frame("send_pong", wire::control_frame(Control::Pong, &payload.into()));
    }

    /// Starts the close handshake from the server's side with `code` and `reason`.
    ///
    /// # Panics
    ///
    /// If the link is not open (blackholed links take it and lose it).
    #[track_caller]
    pub fn send_close(&mut self, code: CloseCode, reason: &str) {
        if let Transport::Up { server_closed, blackholed: false, upgraded: true, .. } = &mut self.transport {
            *server_closed = true;
        }
        self.send_frame("send_close", wire::close_frame(code, reason));
    }

    /// Sends raw bytes as they are, to play a broken or hostile server (a
    /// bad handshake answer, a malformed frame).
    ///
    /// # Panics
    ///
    /// If no transport is open (blackholed links take them and lose them).
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        match &self.transport {
            Transport::Up { blackholed: true, .. } => {}
            Transport::Up { .. } => self.deliver(bytes),
            _ => panic!("send_raw: no transport is open (link {:?})", self.link()),
        }
    }

    /// Answers a JSON-RPC request with `{"jsonrpc":"2.0","id":<its id>,"result":<result>}`;
    /// `result` is JSON text.
    ///
    /// # Panics
    ///
    /// If `request` carries no numeric id, or the link is not open.
    #[track_caller]
    pub fn answer(&mut self, request: &Message, result: &str) {
        let text = jsonrpc::result(Self::id_to_answer(request), result);
        self.send_frame("answer", wire::message_frame(&Message::Text(text.into())));
    }

    /// Answers a JSON-RPC request with `{"jsonrpc":"2.0","id":<its id>,"error":<error>}`;
    /// `error` is JSON text.
    ///
    /// # Panics
    ///
    /// If `request` carries no numeric id, or the link is not open.
    #[track_caller]
    pub fn answer_error(&mut self, request: &Message, error: &str) {
        let text = jsonrpc::error(Self::id_to_answer(request), error);
        self.send_frame("answer_error", wire::message_frame(&Message::Text(text.into())));
    }

    #[track_caller]
    pub(super) fn id_to_answer(request: &Message) -> u64 {
        match jsonrpc::id(request) {
            Some(id) => id,
            None => panic!("answer: the message has no numeric JSON-RPC id: {request:?}"),
        }
    }

    /// Everything the client wrote since the last call (or since the
    /// expectations that consumed it): upgrade requests, messages, pings,
    /// pongs and close frames, in order.
    pub fn sent(&mut self) -> Vec<Sent> {
        self.sent.drain(..).collect()
    }

    /// The text messages the client wrote since the last call; everything
    /// else it wrote in that time is dropped with them.
    pub fn sent_texts(&mut self) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter_map(|sent| match sent {
                Sent::Message(Message::Text(t)) => Some(t.as_str().to_owned()),
                _ => None,
            })
            .collect()
    }

    /// The first message (text or binary) the client wrote, and the test has
    /// not taken yet, that matches `predicate`. It and everything written
    /// before it are taken: expectations read the wire forward, so a later
    /// one sees only what came after.
    ///
    /// # Panics
    ///
    /// If no message matches; the panic lists everything not yet taken.
    #[track_caller]
    pub fn expect_sent(&mut self, mut predicate: impl FnMut(&Message) -> bool) -> Message {
        let found = self.sent.iter().position(|s| matches!(s, Sent::Message(m) if predicate(m)));
        match found {
            Some(at) => match self.sent.drain(..=at).last() {
                Some(Sent::Message(m)) => m,
                // `at` is the position of a message.
                _ => unreachable!("position points at a message"),
            },
            None => panic!(
                "expect_sent: the client sent no matching message (state {:?}, link {:?}); \
                 not yet taken: {:#?}",
                self.state(),
                self.link(),
                self.sent
            ),
        }
    }

    /// [`expect_sent`](Self::expect_sent) for a JSON-RPC request with `method`.
    ///
    /// # Panics
    ///
    /// If no such request was sent; the panic lists everything not yet taken.
    #[track_caller]
    pub fn expect_request(&mut self, method: &str) -> Message {
        self.expect_sent(|m| jsonrpc::method(m).as_deref() == Some(method))
    }

    /// The next event of any kind (`StateChanged` included), or `None`.
    pub fn next_event(&mut self) -> Option<SessionEvent> {
        self.session.poll_event()
    }

    /// Every event waiting, but the `StateChanged` ones (read
    /// [`state`](Self::state), or take them one by one with [`next_event`](Self::next_event)).
    pub fn events(&mut self) -> Vec<SessionEvent> {
        std::iter::from_fn(|| self.session.poll_event())
            .filter(|e| !matches!(e, SessionEvent::StateChanged { .. }))
            .collect()
    }

    /// The first waiting event that matches `predicate`; the events before
    /// it are taken too.
    ///
    /// # Panics
    ///
    /// If none matches; the panic lists the events that were waiting.
    #[track_caller]
    pub fn expect_event(&mut self, mut predicate: impl FnMut(&SessionEvent) -> bool) -> SessionEvent {
        let mut seen = Vec::new();
        while let Some(event) = self.session.poll_event() {
            if predicate(&event) {
                return event;
            }
            seen.push(event);
        }
        panic!(
            "expect_event: no matching event (state {:?}, link {:?}); the events waiting were: {seen:#?}",
            self.state(),
            self.link()
        );
    }
}
