//! How a connection ends: the user's close handshake, the server's close
//! frame answered, a protocol violation failed with its close code, the
//! transport's end or error, and the deadlines (handshake, close, a held
//! violation) fired by `handle_timeout`.
//!
//! Invariant: `ConnectionEvent::Closed` is emitted exactly once, and nothing
//! is sent after the close frame.

use super::*;

impl Connection {
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

    /// A protocol violation was read: while open, it is held until the
    /// caller has taken every message before it (those of earlier reads it
    /// may still be answering), at the latest `close_timeout`; otherwise
    /// the connection fails at once. Nothing more is read either way.
    pub(super) fn violation(&mut self, error: ProtocolError, now: Instant) {
        if matches!(self.phase, Phase::Open) {
            self.clear_input();
            self.large = None;
            let latest = after(now, self.config.close_timeout);
            self.fault = Some(HeldFault { error, read_at: now, latest, due: false });
            return;
        }
        self.fail(error);
    }

    pub(super) fn on_close_frame(&mut self, payload: &[u8], now: Instant) -> Result<(), ProtocolError> {
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
        self.clear_input();
        self.push_event(ConnectionEvent::Closed(Box::new(Closed {
            initiator,
            code,
            reason,
            sent_code: self.sent_code,
            error: None,
        })));
        Ok(())
    }

    /// RFC 6455 §7.1.7, "Fail the WebSocket Connection": one close frame with
    /// the violation's code, then nothing more is read.
    pub(super) fn fail(&mut self, error: ProtocolError) {
        if matches!(self.phase, Phase::Open) {
            self.write_close(Some(error.close_code()), "");
        }
        self.phase = Phase::Finished;
        self.deadline = None;
        self.clear_input();
        self.large = None;
        self.emit_closed(Initiator::Local, None, ConnectionError::Protocol(error));
    }

    pub(super) fn end_transport(&mut self, error: ConnectionError) {
        if let Some(fault) = self.fault.take() {
            // The transport ended behind a violation not yet acted on: the violation is the cause.
            return self.fail(fault.error);
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        self.deadline = None;
        self.clear_input();
        self.large = None;
        match phase {
            Phase::ReadingRefusal { refusal, .. } => self.emit_refused(refusal),
            Phase::Handshaking(_) | Phase::Open => self.emit_closed(Initiator::Remote, None, error),
            Phase::CloseSent => self.emit_closed(Initiator::Local, None, error),
            Phase::AwaitingEof | Phase::Finished => {}
        }
    }

    pub(super) fn emit_closed(&mut self, initiator: Initiator, code: Option<CloseCode>, error: ConnectionError) {
        self.push_event(ConnectionEvent::Closed(Box::new(Closed {
            initiator,
            code: code.unwrap_or(CloseCode::Abnormal),
            reason: String::new(),
            sent_code: self.sent_code,
            error: Some(error),
        })));
    }
}
