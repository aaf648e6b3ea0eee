//! Close frame payloads (RFC 6455 §5.5.1, §7.4): reading the peer's and
//! checking our own before it is sent.

use crate::close_code::CloseCode;
use crate::error::{ProtocolError, SendError};

/// Longest reason that fits in a control frame beside the 2-byte code.
pub(crate) const MAX_REASON_LEN: usize = 123;

/// Reads a received close payload: `CloseCode::Status` (1005) when it carries no code.
pub(crate) fn parse_close_payload(payload: &[u8]) -> Result<(CloseCode, String), ProtocolError> {
    match payload {
        [] => Ok((CloseCode::Status, String::new())),
        [_] => Err(ProtocolError::InvalidClosePayload),
        [hi, lo, reason @ ..] => {
            // The reason is checked first, as tungstenite does, so both report the same fault.
            let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
            let raw = u16::from_be_bytes([*hi, *lo]);
            let code = CloseCode::from(raw);
            if !code.is_allowed() {
                return Err(ProtocolError::InvalidCloseCode(raw));
            }
            Ok((code, reason.to_owned()))
        }
    }
}

/// Checks a close code and reason the caller wants to send.
pub(crate) fn check_outgoing(code: CloseCode, reason: &str) -> Result<(), SendError> {
    if !code.is_allowed() {
        return Err(SendError::InvalidCloseCode(code.into()));
    }
    if reason.len() > MAX_REASON_LEN {
        return Err(SendError::CloseReasonTooLong(reason.len()));
    }
    Ok(())
}

/// The payload of a close frame we send; `None` sends a close without a code.
pub(crate) fn close_payload(code: Option<CloseCode>, reason: &str) -> Vec<u8> {
    let Some(code) = code else { return Vec::new() };
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&u16::from(code).to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_payloads_follow_the_rfc() {
        assert_eq!(parse_close_payload(b""), Ok((CloseCode::Status, String::new())));
        assert_eq!(parse_close_payload(b"\x03\xe8bye"), Ok((CloseCode::Normal, "bye".into())));
        assert_eq!(parse_close_payload(b"\x0f\xa0"), Ok((CloseCode::Library(4000), String::new())));
        assert_eq!(parse_close_payload(b"\x03"), Err(ProtocolError::InvalidClosePayload));
        for bad in [0u16, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2999, 5000, u16::MAX] {
            let payload = bad.to_be_bytes();
            assert_eq!(parse_close_payload(&payload), Err(ProtocolError::InvalidCloseCode(bad)), "{bad}");
        }
        assert_eq!(parse_close_payload(b"\x03\xe8\xff"), Err(ProtocolError::InvalidCloseReason));
    }

    #[test]
    fn outgoing_codes_and_reasons_are_checked() {
        assert_eq!(check_outgoing(CloseCode::Normal, "done"), Ok(()));
        assert_eq!(check_outgoing(CloseCode::Abnormal, ""), Err(SendError::InvalidCloseCode(1006)));
        assert_eq!(check_outgoing(CloseCode::Status, ""), Err(SendError::InvalidCloseCode(1005)));
        assert_eq!(check_outgoing(CloseCode::from(4999), &"r".repeat(123)), Ok(()));
        assert_eq!(check_outgoing(CloseCode::Normal, &"r".repeat(124)), Err(SendError::CloseReasonTooLong(124)));
        assert_eq!(close_payload(Some(CloseCode::Away), "x"), b"\x03\xe9x");
        assert_eq!(close_payload(None, "ignored"), b"");
    }
}
