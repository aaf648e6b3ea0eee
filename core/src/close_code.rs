//! [`CloseCode`]: the status a close frame carries (RFC 6455 §7.4), a leaf
//! that the errors, the close payloads and the events all name.

use std::fmt;

/// A close status code (RFC 6455 §7.4), wslink's own type: the codes the
/// RFC names, and the ranges it sets apart. Any `u16` converts to one
/// (`CloseCode::from(4000)`), and back (`u16::from(code)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    Normal,
    /// 1001: going away (a server shutting down, a page left).
    Away,
    /// 1002: a protocol error.
    Protocol,
    /// 1003: a kind of data the endpoint cannot accept.
    Unsupported,
    /// 1005: no code was present (never sent on the wire).
    Status,
    /// 1006: the connection ended without a close frame (never sent on the wire).
    Abnormal,
    /// 1007: data inconsistent with its type (text that is not UTF-8).
    Invalid,
    /// 1008: a message violating the endpoint's policy.
    Policy,
    /// 1009: a message too big to process.
    Size,
    /// 1010: the client expected an extension the server did not agree to.
    Extension,
    /// 1011: the server met an unexpected condition.
    Error,
    /// 1012: the server is restarting.
    Restart,
    /// 1013: try again later.
    Again,
    /// 1015: the TLS handshake failed (never sent on the wire).
    Tls,
    /// 1004, 1014 and 1016–2999: reserved by the RFC for future use.
    Reserved(u16),
    /// 3000–3999: registered with IANA (libraries, frameworks).
    Iana(u16),
    /// 4000–4999: private use, by agreement between the endpoints.
    Library(u16),
    /// Anything else (below 1000, or 5000 and above): never valid.
    Bad(u16),
}

impl CloseCode {
    /// Whether the code may appear in a close frame on the wire (1005, 1006,
    /// 1015, the reserved ones and the bad ones may not).
    pub fn is_allowed(self) -> bool {
        !matches!(self, Self::Bad(_) | Self::Reserved(_) | Self::Status | Self::Abnormal | Self::Tls)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        match code {
            1000 => Self::Normal,
            1001 => Self::Away,
            1002 => Self::Protocol,
            1003 => Self::Unsupported,
            1005 => Self::Status,
            1006 => Self::Abnormal,
            1007 => Self::Invalid,
            1008 => Self::Policy,
            1009 => Self::Size,
            1010 => Self::Extension,
            1011 => Self::Error,
            1012 => Self::Restart,
            1013 => Self::Again,
            1015 => Self::Tls,
            1004 | 1014 | 1016..=2999 => Self::Reserved(code),
            3000..=3999 => Self::Iana(code),
            4000..=4999 => Self::Library(code),
            _ => Self::Bad(code),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        match code {
            CloseCode::Normal => 1000,
            CloseCode::Away => 1001,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::Status => 1005,
            CloseCode::Abnormal => 1006,
            CloseCode::Invalid => 1007,
            CloseCode::Policy => 1008,
            CloseCode::Size => 1009,
            CloseCode::Extension => 1010,
            CloseCode::Error => 1011,
            CloseCode::Restart => 1012,
            CloseCode::Again => 1013,
            CloseCode::Tls => 1015,
            CloseCode::Reserved(code) | CloseCode::Iana(code) | CloseCode::Library(code) | CloseCode::Bad(code) => code,
        }
    }
}

/// The number, as the RFC writes it.
impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", u16::from(*self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_agrees_with_tungstenite() {
        for raw in 0..=u16::MAX {
            let ours = CloseCode::from(raw);
            assert_eq!(u16::from(ours), raw);
            let theirs = tungstenite::protocol::frame::coding::CloseCode::from(raw);
            assert_eq!(ours.is_allowed(), theirs.is_allowed(), "{raw}");
            assert_eq!(ours.to_string(), raw.to_string());
        }
    }
}
