//! What the connection tells its caller, drained with `Connection::poll_event`.

use bytes::Bytes;

use crate::error::ConnectionError;
use crate::handshake::UpgradeResponse;
use crate::message::Message;
use crate::CloseCode;

/// Something that happened on the connection.
///
/// The rare, large events are boxed so that the common one, `Message`, sets
/// the size: a flood's messages pass through a queue of these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// The server accepted the upgrade; messages can be sent from now on.
    Opened(Box<UpgradeResponse>),
    /// A complete data message.
    Message(Message),
    /// The server pinged; the pong is already queued when `auto_pong` is on.
    Ping(Bytes),
    /// The server answered a ping (or sent an unsolicited pong).
    Pong(Bytes),
    /// The WebSocket is closed: sent once, last of all events.
    Closed(Box<Closed>),
}

/// Which side started the close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// We did: a `close` call, a timeout, a protocol violation by the peer,
    /// or a handshake answer we refused (a wrong accept key, an extension
    /// answer that breaks our offer ...).
    Local,
    /// The server did: its close frame, the transport ending, or a refused
    /// upgrade (a status other than 101).
    Remote,
}

/// How and why the connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Closed {
    /// Who started the close.
    pub initiator: Initiator,
    /// RFC 6455 §7.1.5's close code: the one in the first close frame received,
    /// 1005 (`Status`) if that frame had none, 1006 (`Abnormal`) if none was received.
    pub code: CloseCode,
    /// The reason in that close frame, if any.
    pub reason: String,
    /// The code of the close frame we sent, if we sent one (our own close, an
    /// echo of the server's, or the code of a protocol violation).
    pub sent_code: Option<CloseCode>,
    /// What went wrong; `None` for a clean close handshake.
    pub error: Option<ConnectionError>,
}

impl Closed {
    /// A connection's end, as the connection reports it (for tests and for
    /// a caller that builds the events it matches against).
    pub fn new(
        initiator: Initiator,
        code: CloseCode,
        reason: impl Into<String>,
        sent_code: Option<CloseCode>,
        error: Option<ConnectionError>,
    ) -> Self {
        Self { initiator, code, reason: reason.into(), sent_code, error }
    }

    /// Whether both close frames were exchanged without error.
    pub fn is_clean(&self) -> bool {
        self.error.is_none()
    }
}

/// A sentence: the error, or who closed with which code and reason.
impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.error, self.initiator) {
            (Some(error), _) => return write!(f, "{error}"),
            (None, Initiator::Remote) => write!(f, "the server closed the connection with code {}", self.code)?,
            (None, Initiator::Local) => write!(f, "the client closed the connection with code {}", self.code)?,
        }
        if !self.reason.is_empty() {
            write!(f, " ({:?})", self.reason)?;
        }
        Ok(())
    }
}
