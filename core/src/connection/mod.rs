//! One RFC 6455 client connection, from the upgrade request to closed, as a
//! state machine without I/O.
//!
//! Invariants: nothing here reads a clock, touches a socket or panics on
//! input; every input (`handle_*`) takes the caller's `now`; the outputs are
//! drained with `poll_transmit`, `poll_event` and `poll_timeout`. After a
//! protocol violation the connection sends one close frame, reads nothing
//! more and is finished. `ConnectionEvent::Closed` is emitted exactly once.
//!
//! A violation read behind good messages waits for them: the messages are
//! delivered first, and the violation is acted on at the first
//! `handle_timeout` after `poll_event` has returned `None`, so answers the
//! caller sent while taking them go out before the close frame (as a
//! blocking client reading one message at a time would send them).
//! Deadlines past what `Instant` holds mean "never"; while the caller does
//! not read (`handle_reading_paused`), the handshake deadline waits.

use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::time::Instant;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::close::{check_outgoing, parse_close_payload};
use crate::config::ConnectionConfig;
use crate::deadline::{after, postpone};
use crate::deflate::{self, CompressionStats, Deflate, DeflateParams};
use crate::error::{
    ConfigError, ConnectionError, DeflateNegotiationError, HandshakeError, ProtocolError, RefusedUpgrade, SendError,
};
use crate::event::{Closed, ConnectionEvent, Initiator};
use crate::frame::{bytes_missing, decode_frame, Frame, FrameRules};
use crate::handshake::{
    parse_response_head, split_extensions, BodyLength, ClientRequest, ResponseHead, UpgradeResponse,
};
use crate::message::{Assembler, Message};
use crate::pool::BufferPool;
use crate::Utf8Bytes;
use crate::{CloseCode, RandomSource};
use large_read::LargeRead;
use partial_text::TextProgress;
use spare_reads::SpareReads;

mod large_read;
mod partial_text;
mod send;
mod spare_reads;

#[cfg(test)]
mod deflate_tests;
#[cfg(test)]
mod read_tests;
#[cfg(test)]
mod tests;

/// Where the connection is in its life, as the caller needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// The upgrade request is out; waiting for the server's `101`.
    Handshaking,
    /// Messages flow both ways.
    Open,
    /// A close frame was sent or received; waiting for the other side.
    Closing,
    /// Finished: flush `poll_transmit`, then close the transport.
    Closed,
}

enum Phase {
    /// Boxed: an open connection (most of its life) does not carry the
    /// request's room.
    Handshaking(Box<(ClientRequest, String)>),
    ReadingRefusal {
        refusal: Box<RefusedUpgrade>,
        body: BodyLength,
    },
    Open,
    /// We sent a close frame and wait for the server's.
    CloseSent,
    /// Both close frames are exchanged; the server should now end the transport.
    AwaitingEof,
    Finished,
}

/// One client WebSocket connection, driven by its caller.
///
/// Methods come in four groups, as in quinn-proto:
/// - constructors: [`Connection::new`] (writes the upgrade request) and
///   [`Connection::from_upgraded`] (for a transport already upgraded);
/// - inputs: [`handle_input`](Self::handle_input), [`handle_eof`](Self::handle_eof),
///   [`handle_transport_error`](Self::handle_transport_error), [`handle_timeout`](Self::handle_timeout);
/// - commands: [`send_text`](Self::send_text), [`send_binary`](Self::send_binary),
///   [`ping`](Self::ping), [`pong`](Self::pong), [`close`](Self::close);
/// - outputs: [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
///   [`poll_timeout`](Self::poll_timeout).
///
/// After every input or command, drain the outputs: write what `poll_transmit`
/// gives, deliver the events, and call `handle_timeout` once the instant from
/// `poll_timeout` has passed. `now` must never go backwards. When
/// [`state`](Self::state) is [`ConnectionState::Closed`], flush the last
/// transmit and close the transport.
pub struct Connection {
    config: ConnectionConfig,
    rng: Box<dyn RandomSource>,
    phase: Phase,
    input: BytesMut,
    output: Vec<u8>,
    assembler: Assembler,
    events: VecDeque<ConnectionEvent>,
    /// How many of `events` are not messages (the session's fast path takes
    /// messages straight from this queue while it holds nothing else).
    other_events: usize,
    deadline: Option<Instant>,
    /// A protocol violation read behind messages not yet taken.
    fault: Option<HeldFault>,
    /// Since when the caller has not been reading.
    paused_since: Option<Instant>,
    /// The code of the close frame we sent, once we sent one.
    sent_code: Option<CloseCode>,
    /// How much room `read_buffer` reserves: grows while reads fill it, shrinks when idle.
    read_hint: usize,
    /// The room the last `read_buffer` offered, to judge how full the read came back.
    offered: usize,
    /// Payload buffers for frames larger than a read.
    pool: BufferPool,
    /// permessage-deflate, once the server accepted it.
    deflate: Option<Box<Deflate>>,
    /// Where an outgoing message is compressed before it is framed.
    compressed: Vec<u8>,
    /// A large frame whose payload is being read into a buffer of its own.
    large: Option<LargeRead>,
    /// How far the text frame at the front of `input`, not yet whole, has
    /// been validated (`partial_text.rs`).
    text_progress: Option<TextProgress>,
    /// A large frame just ended where its read ended: the next read takes
    /// only a header, so that a large frame after it is read into its own
    /// buffer from its first payload byte.
    header_first: bool,
    /// Read buffers replaced while messages shared them, for reuse.
    spares: SpareReads,
    /// Most bytes the output may hold before automatic pongs wait (see
    /// [`set_write_room`](Self::set_write_room)).
    write_room: usize,
    /// The payload of the latest ping not yet answered, while the output is
    /// full (boxed: rare, and an idle connection stays small).
    held_pong: Option<Box<Bytes>>,
}

/// A protocol violation held until the messages read before it are taken.
struct HeldFault {
    error: ProtocolError,
    /// When it was read: the instant `poll_timeout` reports once it is due.
    read_at: Instant,
    /// The latest it is acted on, `close_timeout` after it was read, however
    /// slow the caller: input is ignored meanwhile, so the hold is bounded.
    latest: Option<Instant>,
    /// Every message before it was taken (`poll_event` returned `None`).
    due: bool,
}

/// Smallest and largest room `read_buffer` reserves for one read. Large
/// reads on a flood mean fewer calls and fewer TCP window updates (on
/// loopback each update makes the reader's CPU push the sender's next
/// segments): 256 KiB reads cost a quarter less CPU per 256-byte message
/// than 64 KiB ones, once the buffers are reused (`spare_reads.rs`).
const READ_HINT_MIN: usize = 512;
const READ_HINT_MAX: usize = 256 << 10;
/// The longest frame header a server sends: 2 bytes, and 8 of extended length (no mask).
pub(crate) const MAX_SERVER_HEADER: usize = 10;

impl Connection {
    /// Starts a connection: validates `request` and `config` and queues the
    /// upgrade request, keyed from `rng`, for `poll_transmit`.
    pub fn new(
        request: ClientRequest,
        config: ConnectionConfig,
        rng: Box<dyn RandomSource>,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        let request = Self::check(request, &config)?;
        Ok(Self::start(request, config, rng, now))
    }

    /// Validates `request` and `config` for [`start`](Self::start); the
    /// request comes back with the permessage-deflate offer when configured.
    pub(crate) fn check(request: ClientRequest, config: &ConnectionConfig) -> Result<ClientRequest, ConfigError> {
        request.validate()?;
        config.validate()?;
        let raw_deflate_offer = request
            .extensions()
            .iter()
            .flat_map(|e| split_extensions(e))
            .any(|(name, _)| name.eq_ignore_ascii_case(deflate::EXTENSION_NAME));
        if raw_deflate_offer {
            return Err(ConfigError::RawDeflateOffer);
        }
        Ok(match &config.deflate {
            Some(deflate) => request.extension(deflate::offer(deflate)),
            None => request,
        })
    }

    /// Starts a connection with what [`check`](Self::check) passed.
    pub(crate) fn start(
        request: ClientRequest,
        config: ConnectionConfig,
        mut rng: Box<dyn RandomSource>,
        now: Instant,
    ) -> Self {
        let mut nonce = [0u8; 16];
        rng.fill(&mut nonce);
        let key = data_encoding::BASE64.encode(&nonce);
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut output = Vec::new();
        request.encode(&key, &mut output);
        let deadline = config.handshake_timeout.and_then(|t| after(now, t));
        let mut conn = Self::with_phase(config, rng, Phase::Handshaking(Box::new((request, accept))));
        conn.output = output;
        conn.deadline = deadline;
        conn
    }

    /// Ends the connection, giving back the random source it was started with.
    pub(crate) fn into_rng(self) -> Box<dyn RandomSource> {
        self.rng
    }

    /// A connection whose transport has already been upgraded (by another
    /// HTTP client, say): it starts open and emits no `Opened` event.
    pub fn from_upgraded(config: ConnectionConfig, rng: Box<dyn RandomSource>) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::with_phase(config, rng, Phase::Open))
    }

    /// Like [`from_upgraded`](Self::from_upgraded), for a transport whose
    /// upgrade agreed to permessage-deflate with `params`; compression follows
    /// `config.deflate` (its defaults when `None`).
    pub fn from_upgraded_with_deflate(
        config: ConnectionConfig,
        params: DeflateParams,
        rng: Box<dyn RandomSource>,
    ) -> Result<Self, ConfigError> {
        let mut conn = Self::from_upgraded(config, rng)?;
        let deflate_config = conn.config.deflate.clone().unwrap_or_default();
        conn.deflate = Some(Box::new(Deflate::new(&deflate_config, params)));
        Ok(conn)
    }

    fn with_phase(config: ConnectionConfig, rng: Box<dyn RandomSource>, phase: Phase) -> Self {
        Self {
            assembler: Assembler::new(config.max_message_size),
            config,
            rng,
            phase,
            input: BytesMut::new(),
            output: Vec::new(),
            events: VecDeque::new(),
            other_events: 0,
            deadline: None,
            fault: None,
            paused_since: None,
            sent_code: None,
            read_hint: READ_HINT_MIN,
            offered: 0,
            pool: BufferPool::default(),
            deflate: None,
            compressed: Vec::new(),
            large: None,
            text_progress: None,
            header_first: false,
            spares: SpareReads::default(),
            write_room: usize::MAX,
            held_pong: None,
        }
    }

    /// The connection's state.
    pub fn state(&self) -> ConnectionState {
        match self.phase {
            Phase::Handshaking(_) | Phase::ReadingRefusal { .. } => ConnectionState::Handshaking,
            Phase::Open => ConnectionState::Open,
            Phase::CloseSent | Phase::AwaitingEof => ConnectionState::Closing,
            Phase::Finished => ConnectionState::Closed,
        }
    }

    /// Takes bytes read from the transport.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        if matches!(self.phase, Phase::AwaitingEof | Phase::Finished) {
            return;
        }
        let rest = self.feed_large_read(data);
        self.finish_large_read(now);
        // All of `data` went to an unfinished large frame, or the input is back.
        self.input.extend_from_slice(rest);
        self.process_input(now);
        self.check_large_text(now);
    }

    /// The connection's own input buffer, with room reserved for the next read:
    /// read straight into its spare capacity (appending), then call
    /// [`handle_read`](Self::handle_read). This saves the copy `handle_input`
    /// makes; the room grows from 512 B to 256 KiB while reads fill it and
    /// shrinks again when they do not, so an idle connection holds little.
    /// Reading at most [`read_room`](Self::read_room)'s limit saves a copy more.
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        self.read_room().0
    }

    /// The input buffer as [`read_buffer`](Self::read_buffer) gives it, and
    /// the most bytes the next read should append. While a large frame's
    /// payload is read into a buffer of its own, the limit is the rest of the
    /// payload and the largest header a server sends: the payload is then
    /// complete in its buffer with nothing past it to move, and the next
    /// frame's header comes in the same read (so that, in a flood of large
    /// frames, no payload byte is ever copied and each frame takes one read).
    /// Reading more is correct, only slower: bytes past the frame are copied
    /// back to the input buffer.
    pub fn read_room(&mut self) -> (&mut BytesMut, usize) {
        self.start_large_read();
        if let Some(large) = self.large.as_ref() {
            // The input is a large frame's payload buffer, with room for the next header.
            let rest = large.len.saturating_sub(self.input.len()) + MAX_SERVER_HEADER;
            self.offered = (self.input.capacity() - self.input.len()).min(rest);
            return (&mut self.input, self.offered);
        }
        let len = self.input.len();
        if self.header_first && len == 0 {
            // Frames of 16 KiB and more are coming: take the next header alone
            // (one more read, where a larger one could bring part of a large
            // payload that would then be copied into its own buffer).
            if self.input.capacity() < MAX_SERVER_HEADER && !self.input.try_reclaim(MAX_SERVER_HEADER) {
                self.input = self.spares.take(READ_HINT_MIN);
            }
            self.offered = MAX_SERVER_HEADER;
            return (&mut self.input, self.offered);
        }
        // A frame whose header is in gets all its room at once, so its bytes
        // move at most once (the part that came with the header).
        let missing = match self.phase {
            Phase::Open | Phase::CloseSent => bytes_missing(&self.input).min(self.config.max_frame_size),
            _ => 0,
        };
        let room = self.input.capacity() - len;
        // Room for the rest of the frame, or the read hint, whichever is more;
        // the buffer is sized to that, not beyond. A frame that can end in
        // the room there is reads there, even if that is under the hint:
        // moving it would copy what it has.
        let want = missing.max(self.read_hint.saturating_sub(len)).max(READ_HINT_MIN);
        let fits = missing > 0 && room >= missing;
        if room < want && !fits && !self.input.try_reclaim(want) {
            // Messages still share this buffer (else `try_reclaim` moved its
            // partial frame to the front): another takes over, the partial
            // frame copied into it, and this one waits to be reused.
            let mut next = self.spares.take(len + want);
            next.extend_from_slice(&self.input);
            let replaced = std::mem::replace(&mut self.input, next);
            self.spares.keep(replaced);
        }
        self.offered = self.input.capacity() - self.input.len();
        (&mut self.input, self.offered)
    }

    /// The last `n` bytes appended to [`read_buffer`](Self::read_buffer), before
    /// [`handle_read`](Self::handle_read) takes them (for a recording).
    pub(crate) fn last_read(&self, n: usize) -> &[u8] {
        &self.input[self.input.len().saturating_sub(n)..]
    }

    /// `n` bytes were appended to [`read_buffer`](Self::read_buffer): process them.
    pub fn handle_read(&mut self, n: usize, now: Instant) {
        // A read that filled the room offered asks for more next time; one
        // that used under a quarter of it (and of the hint) gives some back.
        if n >= self.offered.min(self.read_hint) {
            self.read_hint = (self.read_hint * 2).min(READ_HINT_MAX);
        } else if n < self.offered.min(self.read_hint) / 4 {
            self.read_hint = (self.read_hint / 2).max(READ_HINT_MIN);
            if self.read_hint < READ_HINT_MAX / 4 {
                // Reads have been small for a while: large spare buffers are not needed.
                self.spares.release(4 * READ_HINT_MIN);
            }
        }
        if matches!(self.phase, Phase::AwaitingEof | Phase::Finished) {
            self.input.clear();
            self.large = None;
            return;
        }
        if self.large.is_none() {
            // The header-only read is done (or was not needed).
            self.header_first = false;
        }
        self.finish_large_read(now);
        self.process_input(now);
        self.check_large_text(now);
        if self.large.is_none() && self.input.is_empty() && self.input.capacity() > 2 * READ_HINT_MAX {
            // A large frame passed; do not keep its buffer while idle.
            self.input = BytesMut::new();
        }
    }

    /// The transport reached end of stream.
    pub fn handle_eof(&mut self, now: Instant) {
        let _ = now;
        let mid_frame = !self.input.is_empty() || self.large.is_some() || self.assembler.in_progress();
        self.end_transport(ConnectionError::UnexpectedEof { mid_frame });
    }

    /// The transport failed (reset, TLS alert ...); `message` is kept for the user.
    pub fn handle_transport_error(&mut self, kind: std::io::ErrorKind, message: impl Into<String>, now: Instant) {
        let _ = now;
        self.end_transport(ConnectionError::Transport { kind, message: message.into() });
    }

    /// Fires the timer reported by `poll_timeout` once `now` has reached it.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.fault.as_ref().is_some_and(|f| f.due || f.latest.is_some_and(|l| l <= now)) {
            if let Some(fault) = self.fault.take() {
                self.fail(fault.error);
            }
            return;
        }
        if self.handshake_paused() || self.deadline.is_none_or(|d| now < d) {
            return;
        }
        self.deadline = None;
        match std::mem::replace(&mut self.phase, Phase::Finished) {
            Phase::Handshaking(_) => self.emit_closed(Initiator::Local, None, ConnectionError::HandshakeTimeout),
            Phase::ReadingRefusal { refusal, .. } => self.emit_refused(refusal),
            Phase::CloseSent => self.emit_closed(Initiator::Local, None, ConnectionError::CloseTimeout),
            Phase::Open | Phase::AwaitingEof | Phase::Finished => {}
        }
    }

    /// Starts the close handshake. Before the upgrade completes there is
    /// nothing to close on the wire: the connection is simply finished.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), SendError> {
        check_outgoing(code, reason)?;
        if let Some(fault) = self.fault.take() {
            // A violation is held: the connection is over; its code, not ours, closes it.
            self.fail(fault.error);
            return Ok(());
        }
        match self.phase {
            Phase::Open => {
                self.write_close(Some(code), reason);
                self.phase = Phase::CloseSent;
                self.deadline = after(now, self.config.close_timeout);
                Ok(())
            }
            Phase::Handshaking(_) | Phase::ReadingRefusal { .. } => {
                self.phase = Phase::Finished;
                self.deadline = None;
                self.push_event(ConnectionEvent::Closed(Box::new(Closed {
                    initiator: Initiator::Local,
                    code: CloseCode::Abnormal,
                    reason: String::new(),
                    sent_code: None,
                    error: None,
                })));
                Ok(())
            }
            Phase::CloseSent | Phase::AwaitingEof | Phase::Finished => Err(SendError::Closed),
        }
    }

    /// Moves every byte queued for the transport into `out` (one write per
    /// poll); returns how many. When `out` is empty its buffer is swapped in, not copied.
    #[must_use]
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.output.len();
        if out.is_empty() {
            std::mem::swap(out, &mut self.output);
        } else {
            out.append(&mut self.output);
        }
        n
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ConnectionEvent> {
        let Some(event) = self.events.pop_front() else {
            crate::queue::release_if_small(&mut self.events);
            if let Some(fault) = self.fault.as_mut() {
                // Everything before the violation is taken: it is due now.
                fault.due = true;
            }
            return None;
        };
        if !matches!(event, ConnectionEvent::Message(_)) {
            self.other_events -= 1;
        }
        Some(event)
    }

    /// Frees the event queue's buffer if it is drained and small (see `release_if_small`).
    pub(crate) fn release_drained_queue(&mut self) {
        crate::queue::release_if_small(&mut self.events);
    }

    /// Whether every queued event is a message.
    pub(crate) fn only_messages_queued(&self) -> bool {
        self.other_events == 0
    }

    /// How many messages are queued.
    pub(crate) fn queued_messages(&self) -> usize {
        self.events.len() - self.other_events
    }

    /// How many events at the front of the queue are messages that `plain`
    /// accepts, looking no further than the first that is not.
    pub(crate) fn leading_messages(&self, mut plain: impl FnMut(&Message) -> bool) -> usize {
        self.events.iter().take_while(|e| matches!(e, ConnectionEvent::Message(m) if plain(m))).count()
    }

    /// How many events are queued.
    pub(crate) fn queued_events(&self) -> usize {
        self.events.len()
    }

    fn push_event(&mut self, event: ConnectionEvent) {
        if !matches!(event, ConnectionEvent::Message(_)) {
            self.other_events += 1;
        }
        self.events.push_back(event);
    }

    /// What compression has done on this connection; `None` unless
    /// permessage-deflate is in force.
    pub fn compression_stats(&self) -> Option<CompressionStats> {
        self.deflate.as_ref().map(|d| d.stats())
    }

    /// Hands the messages at the front of the queue, at most `max`, to
    /// `each`, stopping at the first other event; returns how many went (the
    /// session's fast path, one move each).
    pub(crate) fn drain_messages(&mut self, max: usize, mut each: impl FnMut(Message)) -> usize {
        let mut moved = 0;
        while moved < max {
            let Some(message) = self.pop_message() else { break };
            each(message);
            moved += 1;
        }
        moved
    }

    /// The next event if it is a message (the session's fast path).
    pub(crate) fn pop_message(&mut self) -> Option<Message> {
        match self.events.pop_front()? {
            ConnectionEvent::Message(message) => Some(message),
            other => {
                // Rare: a ping, pong or close is next; it stays first.
                self.events.push_front(other);
                None
            }
        }
    }

    /// When `handle_timeout` must next be called, if any timer is armed.
    /// A violation waiting behind taken messages is due at once: the instant
    /// returned is then one that has already passed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(fault) = self.fault.as_ref() {
            return if fault.due { Some(fault.read_at) } else { fault.latest };
        }
        if self.handshake_paused() {
            return None;
        }
        self.deadline
    }

    /// Whether the handshake deadline waits for the caller to read again.
    fn handshake_paused(&self) -> bool {
        self.paused_since.is_some() && matches!(self.phase, Phase::Handshaking(_) | Phase::ReadingRefusal { .. })
    }

    /// How long from `now` the server may still take to end the transport,
    /// once both close frames are exchanged (`None` before that);
    /// `Duration::MAX` when `close_timeout` is too long for the clock (never).
    pub fn server_eof_wait(&self, now: Instant) -> Option<std::time::Duration> {
        match self.phase {
            Phase::AwaitingEof => {
                Some(self.deadline.map_or(std::time::Duration::MAX, |d| d.saturating_duration_since(now)))
            }
            _ => None,
        }
    }

    /// Whether a protocol violation waits behind messages the caller has
    /// taken, and the next `poll_event` (returning `None`) makes it due.
    pub fn fault_next(&self) -> bool {
        self.events.is_empty() && self.fault.as_ref().is_some_and(|f| !f.due)
    }

    /// The caller stopped reading the transport (its consumer is behind):
    /// the handshake deadline waits, since no answer can arrive. The close
    /// deadline does not: a close asked for ends within `close_timeout`
    /// whatever the consumer does.
    pub fn handle_reading_paused(&mut self, now: Instant) {
        self.paused_since.get_or_insert(now);
    }

    /// The caller reads again: the deadline moves later by the pause, but
    /// no later than a full wait from `now`.
    pub fn handle_reading_resumed(&mut self, now: Instant) {
        let Some(since) = self.paused_since.take() else { return };
        let handshaking = matches!(self.phase, Phase::Handshaking(_) | Phase::ReadingRefusal { .. });
        if let (true, Some(full)) = (handshaking, self.config.handshake_timeout) {
            self.deadline = postpone(self.deadline, now.saturating_duration_since(since), now, full);
        }
    }

    fn process_input(&mut self, now: Instant) {
        if self.fault.is_some() {
            // Bytes after a violation mean nothing.
            self.input.clear();
            return;
        }
        if self.large.is_some() {
            // `input` holds a large frame's payload, not frames.
            return;
        }
        loop {
            match &mut self.phase {
                Phase::Handshaking(handshake) => {
                    let (request, accept) = &**handshake;
                    match parse_response_head(&self.input, request, accept, self.config.max_response_head) {
                        Ok(ResponseHead::Partial) => return,
                        Ok(ResponseHead::Accepted { mut response, head_len }) => {
                            self.input.advance(head_len);
                            if let Err(e) = self.accept_extensions(&mut response) {
                                return self.fail_handshake(e);
                            }
                            self.phase = Phase::Open;
                            self.deadline = None;
                            self.push_event(ConnectionEvent::Opened(Box::new(response)));
                        }
                        Ok(ResponseHead::Refused { refusal, head_len, body }) => {
                            self.input.advance(head_len);
                            self.phase = Phase::ReadingRefusal { refusal, body };
                        }
                        Err(e) => return self.fail_handshake(e),
                    }
                }
                Phase::ReadingRefusal { .. } => return self.read_refusal_body(),
                Phase::Open | Phase::CloseSent => return self.process_frames(now),
                Phase::AwaitingEof | Phase::Finished => return self.input.clear(),
            }
        }
    }

    /// Puts the extensions the server accepted in force.
    fn accept_extensions(&mut self, response: &mut UpgradeResponse) -> Result<(), HandshakeError> {
        let Some(config) = &self.config.deflate else { return Ok(()) };
        let mut accepted = response.extensions.iter().filter(|e| {
            split_extensions(e).next().is_some_and(|(name, _)| name.eq_ignore_ascii_case(deflate::EXTENSION_NAME))
        });
        let Some(answer) = accepted.next() else { return Ok(()) };
        if accepted.next().is_some() {
            return Err(DeflateNegotiationError::AcceptedTwice.into());
        }
        let params = deflate::negotiate(config, answer)?;
        self.deflate = Some(Box::new(Deflate::new(config, params)));
        response.deflate = Some(params);
        Ok(())
    }

    fn process_frames(&mut self, now: Instant) {
        let rules = FrameRules { max_frame_size: self.config.max_frame_size, deflate: self.deflate.is_some() };
        // The text checked as it arrived is the first frame's: whole now, or still not.
        let mut progress = self.text_progress.take();
        while matches!(self.phase, Phase::Open | Phase::CloseSent) {
            let result = match decode_frame(&mut self.input, rules) {
                Ok(None) => return self.check_partial_text(progress, now),
                Ok(Some(frame)) => {
                    progress = None;
                    self.on_frame(frame, now)
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                return self.violation(e, now);
            }
        }
    }

    /// A protocol violation was read: while open, it is held until the
    /// caller has taken every message before it (those of earlier reads it
    /// may still be answering), at the latest `close_timeout`; otherwise
    /// the connection fails at once. Nothing more is read either way.
    fn violation(&mut self, error: ProtocolError, now: Instant) {
        if matches!(self.phase, Phase::Open) {
            self.input.clear();
            self.large = None;
            let latest = after(now, self.config.close_timeout);
            self.fault = Some(HeldFault { error, read_at: now, latest, due: false });
            return;
        }
        self.fail(error);
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) -> Result<(), ProtocolError> {
        match frame.opcode {
            OpCode::Data(data) => self.on_data(data, frame.fin, frame.compressed, frame.payload),
            OpCode::Control(control) => self.on_control(control, frame.payload, now),
        }
    }

    fn on_data(&mut self, data: Data, fin: bool, compressed: bool, payload: Bytes) -> Result<(), ProtocolError> {
        // The common case, a whole uncompressed message in one frame, skips the assembler.
        if fin && !compressed && !self.assembler.in_progress() && payload.len() <= self.config.max_message_size {
            let message = match data {
                Data::Binary => Message::Binary(payload),
                Data::Text => Message::Text(Utf8Bytes::try_from(payload).map_err(|_| ProtocolError::InvalidUtf8)?),
                _ => return self.on_fragment(data, fin, compressed, payload),
            };
            self.push_event(ConnectionEvent::Message(message));
            return Ok(());
        }
        self.on_fragment(data, fin, compressed, payload)
    }

    fn on_fragment(&mut self, data: Data, fin: bool, compressed: bool, payload: Bytes) -> Result<(), ProtocolError> {
        let inflater = self.deflate.as_deref_mut().map(|d| &mut d.inflater);
        if let Some(message) = self.assembler.on_frame(data, fin, compressed, payload, inflater)? {
            self.push_event(ConnectionEvent::Message(message));
        }
        Ok(())
    }

    fn on_control(&mut self, control: Control, payload: Bytes, now: Instant) -> Result<(), ProtocolError> {
        match control {
            Control::Ping => {
                if self.config.auto_pong && matches!(self.phase, Phase::Open) {
                    self.answer_ping(&payload);
                }
                self.push_event(ConnectionEvent::Ping(payload));
            }
            Control::Pong => self.push_event(ConnectionEvent::Pong(payload)),
            Control::Close => self.on_close_frame(&payload, now)?,
            // The frame decoder refuses reserved opcodes before they get here.
            Control::Reserved(op) => return Err(ProtocolError::ReservedOpcode(op)),
        }
        Ok(())
    }

    fn on_close_frame(&mut self, payload: &[u8], now: Instant) -> Result<(), ProtocolError> {
        let (code, reason) = parse_close_payload(payload)?;
        let initiator = if matches!(self.phase, Phase::Open) {
            // Echo the code, as RFC 6455 §5.5.1 suggests; a codeless close gets a codeless answer.
            self.write_close((code != CloseCode::Status).then_some(code), "");
            Initiator::Remote
        } else {
            Initiator::Local
        };
        self.phase = Phase::AwaitingEof;
        self.deadline = after(now, self.config.close_timeout);
        self.input.clear();
        self.push_event(ConnectionEvent::Closed(Box::new(Closed {
            initiator,
            code,
            reason,
            sent_code: self.sent_code,
            error: None,
        })));
        Ok(())
    }

    fn read_refusal_body(&mut self) {
        let limit = self.config.refusal_body_limit;
        let Phase::ReadingRefusal { refusal, body } = &mut self.phase else {
            return;
        };
        let wanted = match *body {
            BodyLength::Known(n) => n.min(limit),
            BodyLength::Chunked | BodyLength::UntilEof => limit,
        };
        let take = (wanted - refusal.body.len().min(wanted)).min(self.input.len());
        refusal.body.extend_from_slice(&self.input[..take]);
        self.input.clear();
        let chunked_done = *body == BodyLength::Chunked && refusal.body.ends_with(b"0\r\n\r\n");
        if refusal.body.len() >= wanted || chunked_done {
            if let Phase::ReadingRefusal { refusal, .. } = std::mem::replace(&mut self.phase, Phase::Finished) {
                self.deadline = None;
                self.emit_refused(refusal);
            }
        }
    }

    fn emit_refused(&mut self, refusal: Box<RefusedUpgrade>) {
        let error = ConnectionError::Handshake(HandshakeError::Refused(refusal));
        self.emit_closed(Initiator::Remote, None, error);
    }

    /// The client refuses the server's answer: a local decision (a refused upgrade is the server's).
    fn fail_handshake(&mut self, error: HandshakeError) {
        self.phase = Phase::Finished;
        self.deadline = None;
        self.input.clear();
        self.emit_closed(Initiator::Local, None, ConnectionError::Handshake(error));
    }

    /// RFC 6455 §7.1.7, "Fail the WebSocket Connection": one close frame with
    /// the violation's code, then nothing more is read.
    fn fail(&mut self, error: ProtocolError) {
        if matches!(self.phase, Phase::Open) {
            self.write_close(Some(error.close_code()), "");
        }
        self.phase = Phase::Finished;
        self.deadline = None;
        self.input.clear();
        self.large = None;
        self.emit_closed(Initiator::Local, None, ConnectionError::Protocol(error));
    }

    fn end_transport(&mut self, error: ConnectionError) {
        if let Some(fault) = self.fault.take() {
            // The transport ended behind a violation not yet acted on: the violation is the cause.
            return self.fail(fault.error);
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        self.deadline = None;
        self.input.clear();
        self.large = None;
        match phase {
            Phase::ReadingRefusal { refusal, .. } => self.emit_refused(refusal),
            Phase::Handshaking(_) | Phase::Open => self.emit_closed(Initiator::Remote, None, error),
            Phase::CloseSent => self.emit_closed(Initiator::Local, None, error),
            Phase::AwaitingEof | Phase::Finished => {}
        }
    }

    fn emit_closed(&mut self, initiator: Initiator, code: Option<CloseCode>, error: ConnectionError) {
        self.push_event(ConnectionEvent::Closed(Box::new(Closed {
            initiator,
            code: code.unwrap_or(CloseCode::Abnormal),
            reason: String::new(),
            sent_code: self.sent_code,
            error: Some(error),
        })));
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("state", &self.state())
            .field("buffered_input", &self.input.len())
            .field("queued_output", &self.output.len())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
