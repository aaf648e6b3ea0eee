//! The connection's read path: bytes in (copied by `handle_input`, or read
//! straight into the connection's buffer through `read_room` and
//! `handle_read`), the upgrade response parsed and checked, frames decoded
//! and assembled into messages, pings answered, and a refused upgrade's
//! body read to its limit.
//!
//! Invariant: nothing is read once the connection awaits the server's end
//! of stream or is finished, and a violation read behind messages is held
//! until they are taken (`closing.rs` acts on it).

use super::*;

impl Connection {
    /// Takes bytes read from the transport.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        if matches!(self.phase, Phase::AwaitingEof | Phase::Finished) {
            return;
        }
        let rest = self.feed_large_read(data);
        self.finish_large_read(now);
        // All of `data` went to an unfinished large frame, or the input is back.
        self.append_input(rest);
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
    /// back to the input buffer. For readers that need initialised memory,
    /// [`read_slice`](Self::read_slice) offers the same room.
    pub fn read_room(&mut self) -> (&mut BytesMut, usize) {
        self.give_back_tail();
        self.read_into_tail = false;
        self.offered = self.prepare_room();
        (&mut self.input, self.offered)
    }

    /// Makes room for the next read (past the input's bytes: its spare
    /// capacity, or the initialised tail) and answers the most bytes it
    /// should bring.
    pub(super) fn prepare_room(&mut self) -> usize {
        self.start_large_read();
        if let Some(large) = self.large.as_ref() {
            // The input is a large frame's payload buffer, with room for the next header.
            let rest = large.len.saturating_sub(self.input.len()) + MAX_SERVER_HEADER;
            return self.room().min(rest);
        }
        let len = self.input.len();
        if self.header_first && len == 0 {
            // Frames of 16 KiB and more are coming: take the next header alone
            // (one more read, where a larger one could bring part of a large
            // payload that would then be copied into its own buffer).
            if self.room() < MAX_SERVER_HEADER {
                self.give_back_tail();
                if !self.input.try_reclaim(MAX_SERVER_HEADER) {
                    self.input = self.spares.take(READ_HINT_MIN);
                }
            }
            return MAX_SERVER_HEADER;
        }
        // A frame whose header is in gets all its room at once, so its bytes
        // move at most once (the part that came with the header).
        let missing = match self.phase {
            Phase::Open | Phase::CloseSent => bytes_missing(&self.input).min(self.config.max_frame_size),
            _ => 0,
        };
        let room = self.room();
        // Room for the rest of the frame, or the read hint, whichever is more;
        // the buffer is sized to that, not beyond. A frame that can end in
        // the room there is reads there, even if that is under the hint:
        // moving it would copy what it has.
        let want = missing.max(self.read_hint.saturating_sub(len)).max(READ_HINT_MIN);
        let fits = missing > 0 && room >= missing;
        // Initialised room (`read_slice`) is kept while it holds half of
        // that: renewing it means zeroing it again, so small reads (a
        // message each, into the least room) share one zeroing.
        let enough = match self.tail.is_empty() {
            true => room >= want,
            false => room >= want / 2,
        };
        if !enough && !fits && self.read_into_tail {
            self.renew_initialised(len + want);
        } else if !enough && !fits {
            self.give_back_tail();
            if !self.input.try_reclaim(want) {
                // Messages still share this buffer (else `try_reclaim` moved its
                // partial frame to the front): another takes over, the partial
                // frame copied into it, and this one waits to be reused.
                let mut next = self.spares.take(len + want);
                next.extend_from_slice(&self.input);
                let replaced = std::mem::replace(&mut self.input, next);
                self.spares.keep(replaced);
            }
        }
        self.room()
    }

    /// The `n` bytes the last read brought, before
    /// [`handle_read`](Self::handle_read) takes them (for a recording).
    pub(crate) fn last_read(&self, n: usize) -> &[u8] {
        match self.read_into_tail {
            true => &self.tail[..n.min(self.tail.len())],
            false => &self.input[self.input.len().saturating_sub(n)..],
        }
    }

    /// `n` bytes were read into the room offered last: appended to
    /// [`read_buffer`](Self::read_buffer) (or [`read_room`](Self::read_room)'s
    /// buffer), or written at the front of [`read_slice`](Self::read_slice).
    /// Process them.
    pub fn handle_read(&mut self, n: usize, now: Instant) {
        if self.read_into_tail {
            self.take_tail_read(n);
        }
        // A read that filled the room offered asks for more next time; one
        // that used under a quarter of it (and of the hint) gives some back.
        if n >= self.offered.min(self.read_hint) {
            self.read_hint = (self.read_hint * 2).min(READ_HINT_MAX);
        } else if n < self.offered.min(self.read_hint) / 4 {
            self.read_hint = (self.read_hint / 2).max(READ_HINT_MIN);
            if self.read_hint < READ_HINT_MAX / 4 {
                // Reads have been small for a while: large spare buffers are not needed.
                self.spares.release(4 * READ_HINT_MIN);
                self.pieces.release();
            }
        }
        if matches!(self.phase, Phase::AwaitingEof | Phase::Finished) {
            self.clear_input();
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
        if self.large.is_none() && self.input.is_empty() && self.room() > 2 * READ_HINT_MAX {
            // A large frame passed; do not keep its buffer while idle.
            self.input = BytesMut::new();
            self.tail = BytesMut::new();
        }
    }

    pub(super) fn process_input(&mut self, now: Instant) {
        if self.fault.is_some() {
            // Bytes after a violation mean nothing.
            self.clear_input();
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
                Phase::AwaitingEof | Phase::Finished => return self.clear_input(),
            }
        }
    }

    /// Puts the extensions the server accepted in force.
    pub(super) fn accept_extensions(&mut self, response: &mut UpgradeResponse) -> Result<(), HandshakeError> {
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

    pub(super) fn process_frames(&mut self, now: Instant) {
        let rules = FrameRules { max_frame_size: self.config.max_frame_size, deflate: self.deflate.is_some() };
        // The text checked as it arrived is the first frame's: whole now, or still not.
        let mut progress = self.text_progress.take();
        if self.read_into_tail {
            if let Err(e) = self.process_lent_frames(rules, &mut progress, now) {
                return self.violation(e, now);
            }
        }
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

    /// The whole frames of a read into initialised memory: they go out as
    /// one piece that comes back when their messages are dropped, so that it
    /// need not be zeroed again (`read_pieces.rs`). Kept out of
    /// `process_frames`, whose loop is the hot path of every other read.
    #[inline(never)]
    fn process_lent_frames(
        &mut self,
        rules: FrameRules,
        progress: &mut Option<TextProgress>,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        let whole = whole_frames(&self.input);
        if whole == 0 {
            return Ok(());
        }
        let mut batch = self.pieces.lend(self.input.split_to(whole));
        while !batch.is_empty() && matches!(self.phase, Phase::Open | Phase::CloseSent) {
            match decode_frame(&mut batch, rules)? {
                Some(frame) => {
                    *progress = None;
                    self.on_frame(frame, now)?;
                }
                // `whole_frames` found them whole.
                None => break,
            }
        }
        Ok(())
    }

    pub(super) fn on_frame(&mut self, frame: Frame, now: Instant) -> Result<(), ProtocolError> {
        match frame.opcode {
            OpCode::Data(data) => self.on_data(data, frame.fin, frame.compressed, frame.payload),
            OpCode::Control(control) => self.on_control(control, frame.payload, now),
        }
    }

    pub(super) fn on_data(
        &mut self,
        data: Data,
        fin: bool,
        compressed: bool,
        payload: Bytes,
    ) -> Result<(), ProtocolError> {
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

    pub(super) fn on_fragment(
        &mut self,
        data: Data,
        fin: bool,
        compressed: bool,
        payload: Bytes,
    ) -> Result<(), ProtocolError> {
        let inflater = self.deflate.as_deref_mut().map(|d| &mut d.inflater);
        if let Some(message) = self.assembler.on_frame(data, fin, compressed, payload, inflater)? {
            self.push_event(ConnectionEvent::Message(message));
        }
        Ok(())
    }

    pub(super) fn on_control(&mut self, control: Control, payload: Bytes, now: Instant) -> Result<(), ProtocolError> {
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

    pub(super) fn read_refusal_body(&mut self) {
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
        let chunked_done = *body == BodyLength::Chunked && refusal.body.ends_with(b"0\r\n\r\n");
        let done = refusal.body.len() >= wanted || chunked_done;
        self.clear_input();
        if done {
            if let Phase::ReadingRefusal { refusal, .. } = std::mem::replace(&mut self.phase, Phase::Finished) {
                self.deadline = None;
                self.emit_refused(refusal);
            }
        }
    }

    pub(super) fn emit_refused(&mut self, refusal: Box<RefusedUpgrade>) {
        let error = ConnectionError::Handshake(HandshakeError::Refused(refusal));
        self.emit_closed(Initiator::Remote, None, error);
    }

    /// The client refuses the server's answer: a local decision (a refused upgrade is the server's).
    pub(super) fn fail_handshake(&mut self, error: HandshakeError) {
        self.phase = Phase::Finished;
        self.deadline = None;
        self.clear_input();
        self.emit_closed(Initiator::Local, None, ConnectionError::Handshake(error));
    }
}
