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
//!
//! This file holds the state and its constructors; the rest is one file per
//! idea: `read.rs` (bytes in, the upgrade, frames to messages), `send.rs`
//! (messages, pings and pongs out), `closing.rs` (every way it ends, and the
//! deadlines), `outputs.rs` (what the caller polls), and the read path's
//! helpers for large frames, spare buffers, text checked as it arrives and
//! room kept initialised for readers that need it (`initialised.rs`).

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
use crate::frame::{bytes_missing, decode_frame, whole_frames, Frame, FrameRules};
use crate::handshake::{
    parse_response_head, split_extensions, BodyLength, ClientRequest, ResponseHead, UpgradeResponse,
};
use crate::message::{Assembler, Message};
use crate::pool::BufferPool;
use crate::Utf8Bytes;
use crate::{CloseCode, RandomSource};
pub use initialised::ReadRoom;
use large_read::LargeRead;
use partial_text::TextProgress;
use read_pieces::ReadPieces;
use spare_reads::SpareReads;

mod closing;
mod initialised;
mod large_read;
mod outputs;
mod partial_text;
mod read;
mod read_pieces;
mod send;
mod spare_reads;

#[cfg(all(test, feature = "deflate"))]
mod deflate_tests;
#[cfg(test)]
mod initialised_tests;
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
    /// Initialised room right after `input`'s bytes, in its allocation:
    /// where reads through `read_slice` go (`initialised.rs`).
    tail: BytesMut,
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
    /// A large frame whose payload is being read into a buffer of its own.
    large: Option<LargeRead>,
    /// How far the text frame at the front of `input`, not yet whole, has
    /// been validated (`partial_text.rs`).
    text_progress: Option<TextProgress>,
    /// A large frame just ended where its read ended: the next read takes
    /// only a header, so that a large frame after it is read into its own
    /// buffer from its first payload byte.
    header_first: bool,
    /// The last room handed out was `read_slice`'s: the read went to `tail`.
    read_into_tail: bool,
    /// Read buffers replaced while messages shared them, for reuse.
    spares: SpareReads,
    /// The same, for reads into initialised memory: lent in pieces and
    /// given back with their bytes still counted (`read_pieces.rs`).
    pieces: ReadPieces,
    /// Most bytes the output may hold before automatic pongs wait (see
    /// [`set_write_room`](Self::set_write_room)).
    write_room: usize,
    /// The payload of the latest ping not yet answered, while the output is
    /// full (boxed: rare, and an idle connection stays small).
    held_pong: Option<Box<Bytes>>,
    /// A data message was read or sent since the last [`trim`](Self::trim):
    /// the event queue and a recycled output buffer are kept while it is,
    /// so that a busy link allocates nothing per message, and given back
    /// by `trim` (or on drain while it is not), so that an idle one holds none.
    busy: bool,
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
        deflate_config.validate()?;
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
            tail: BytesMut::new(),
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
            large: None,
            text_progress: None,
            header_first: false,
            read_into_tail: false,
            spares: SpareReads::default(),
            pieces: ReadPieces::default(),
            write_room: usize::MAX,
            held_pong: None,
            busy: false,
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
