//! Reading and verifying the server's handshake response (RFC 6455 §4.1).
//!
//! The head is parsed with `httparse` from the start of the input buffer each
//! time more bytes arrive; the head is small and bounded by
//! `max_head`, so re-parsing costs little and keeps no partial state here.
//! Bytes after the head are not touched: they belong to the frame decoder.

use super::{split_extensions, ClientRequest, UpgradeResponse};
use crate::error::{HandshakeError, RefusedUpgrade};

/// More headers than any sane upgrade response carries; beyond it the response is refused.
const MAX_HEADERS: usize = 64;

/// What the bytes so far say about the response head.
#[derive(Debug)]
pub(crate) enum ResponseHead {
    /// The head has not ended yet.
    Partial,
    /// A valid `101`: the connection is open after `head_len` bytes.
    Accepted { response: UpgradeResponse, head_len: usize },
    /// Any other status: the body (up to `body`) should be read for the user.
    Refused { refusal: Box<RefusedUpgrade>, head_len: usize, body: BodyLength },
}

/// How the body of a refused upgrade ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLength {
    /// `Content-Length` bytes.
    Known(usize),
    /// `Transfer-Encoding: chunked`: until the last-chunk marker.
    Chunked,
    /// Neither: until the server closes.
    UntilEof,
}

/// Parses and verifies the response head at the start of `buf`.
pub(crate) fn parse_response_head(
    buf: &[u8],
    request: &ClientRequest,
    accept_key: &str,
    max_head: usize,
) -> Result<ResponseHead, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= max_head => n,
        Ok(httparse::Status::Complete(_)) => return Err(HandshakeError::ResponseTooLarge { limit: max_head }),
        Ok(httparse::Status::Partial) if buf.len() >= max_head => {
            return Err(HandshakeError::ResponseTooLarge { limit: max_head })
        }
        Ok(httparse::Status::Partial) => return Ok(ResponseHead::Partial),
        Err(e) => return Err(HandshakeError::Malformed(e.to_string())),
    };
    // httparse yields a version and code for every complete head.
    if parsed.version != Some(1) {
        return Err(HandshakeError::HttpVersion);
    }
    let status = parsed.code.unwrap_or_default();
    let headers: Vec<(String, String)> =
        parsed.headers.iter().map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned())).collect();
    if status != 101 {
        let body = body_length(&headers);
        let refusal =
            RefusedUpgrade { status, reason: parsed.reason.unwrap_or_default().to_owned(), headers, body: Vec::new() };
        return Ok(ResponseHead::Refused { refusal: Box::new(refusal), head_len, body });
    }
    let response = verify_upgrade(status, headers, request, accept_key)?;
    Ok(ResponseHead::Accepted { response, head_len })
}

fn verify_upgrade(
    status: u16,
    headers: Vec<(String, String)>,
    request: &ClientRequest,
    accept_key: &str,
) -> Result<UpgradeResponse, HandshakeError> {
    let values =
        |name: &'static str| headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let has_token = |name: &'static str, token: &str| {
        values(name).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token("Upgrade", "websocket") {
        return Err(HandshakeError::UpgradeHeader);
    }
    if !has_token("Connection", "upgrade") {
        return Err(HandshakeError::ConnectionHeader);
    }
    let single = |name: &'static str| -> Result<Option<&str>, HandshakeError> {
        let mut it = values(name);
        let first = it.next();
        match it.next() {
            Some(_) => Err(HandshakeError::DuplicateHeader(name)),
            None => Ok(first),
        }
    };
    if single("Sec-WebSocket-Accept")?.map(str::trim) != Some(accept_key) {
        return Err(HandshakeError::AcceptKey);
    }
    let subprotocol = match single("Sec-WebSocket-Protocol")?.map(str::trim) {
        None => None,
        Some(p) if request.subprotocols().iter().any(|o| o == p) => Some(p.to_owned()),
        Some(p) => return Err(HandshakeError::UnofferedSubprotocol(p.to_owned())),
    };
    let mut extensions = Vec::new();
    for value in values("Sec-WebSocket-Extensions") {
        for (name, full) in split_extensions(value) {
            let offered = request
                .extensions()
                .iter()
                .flat_map(|o| split_extensions(o))
                .any(|(offered, _)| offered.eq_ignore_ascii_case(name));
            if !offered {
                return Err(HandshakeError::UnofferedExtension(name.to_owned()));
            }
            extensions.push(full.to_owned());
        }
    }
    Ok(UpgradeResponse { status, subprotocol, extensions, headers, deflate: None })
}

fn body_length(headers: &[(String, String)]) -> BodyLength {
    let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
    if header("Transfer-Encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return BodyLength::Chunked;
    }
    match header("Content-Length").and_then(|v| v.parse().ok()) {
        Some(n) => BodyLength::Known(n),
        None => BodyLength::UntilEof,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn request() -> ClientRequest {
        ClientRequest::new("ws://example.com/chat").unwrap().subprotocol("chat").extension("x-test; a=1")
    }

    fn parse(resp: &str) -> Result<ResponseHead, HandshakeError> {
        parse_response_head(resp.as_bytes(), &request(), KEY_ACCEPT, 4096)
    }

    const GOOD: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: x-test; a=1\r\n\r\n";

    #[test]
    fn accepts_a_valid_response_and_leaves_frame_bytes() {
        let mut bytes = GOOD.as_bytes().to_vec();
        bytes.extend_from_slice(b"\x81\x02hi");
        match parse_response_head(&bytes, &request(), KEY_ACCEPT, 4096).unwrap() {
            ResponseHead::Accepted { response, head_len } => {
                assert_eq!(head_len, GOOD.len());
                assert_eq!(response.status, 101);
                assert_eq!(response.subprotocol.as_deref(), Some("chat"));
                assert_eq!(response.extensions, vec!["x-test; a=1".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_prefix_is_partial() {
        for n in 0..GOOD.len() {
            assert!(matches!(parse(&GOOD[..n]), Ok(ResponseHead::Partial)), "prefix {n}");
        }
    }

    #[test]
    fn each_broken_rule_has_its_error() {
        let cases = [
            (GOOD.replace("HTTP/1.1", "HTTP/1.0"), HandshakeError::HttpVersion),
            (GOOD.replace("Upgrade: WebSocket", "Upgrade: h2c"), HandshakeError::UpgradeHeader),
            (GOOD.replace("keep-alive, Upgrade", "keep-alive"), HandshakeError::ConnectionHeader),
            (GOOD.replace("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "AAAA"), HandshakeError::AcceptKey),
            (GOOD.replace("Sec-WebSocket-Accept", "X-Other"), HandshakeError::AcceptKey),
            (GOOD.replace("Protocol: chat", "Protocol: mqtt"), HandshakeError::UnofferedSubprotocol("mqtt".into())),
            (
                GOOD.replace("Protocol: chat", "Protocol: chat, chat"),
                HandshakeError::UnofferedSubprotocol("chat, chat".into()),
            ),
            (
                GOOD.replace("x-test; a=1", "permessage-deflate"),
                HandshakeError::UnofferedExtension("permessage-deflate".into()),
            ),
            (
                GOOD.replace("\r\n\r\n", "\r\nSec-WebSocket-Accept: x\r\n\r\n"),
                HandshakeError::DuplicateHeader("Sec-WebSocket-Accept"),
            ),
        ];
        for (resp, want) in cases {
            assert_eq!(parse(&resp).unwrap_err(), want, "{resp}");
        }
        assert!(matches!(parse("HTTP/1.1 abc\r\n\r\n"), Err(HandshakeError::Malformed(_))));
        assert!(matches!(parse("\0\0\0\0\r\n\r\n"), Err(HandshakeError::Malformed(_))));
    }

    #[test]
    fn head_is_bounded_even_when_it_never_ends() {
        let endless = format!("HTTP/1.1 101 OK\r\nX-Pad: {}", "a".repeat(5000));
        assert_eq!(parse(&endless).unwrap_err(), HandshakeError::ResponseTooLarge { limit: 4096 });
        let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
        assert!(matches!(parse(&format!("HTTP/1.1 101 OK\r\n{many}\r\n")), Err(HandshakeError::Malformed(_))));
    }

    #[test]
    fn refusals_report_status_headers_and_body_length() {
        let r = parse("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nContent-Length: 12\r\n\r\n").unwrap();
        match r {
            ResponseHead::Refused { refusal, body, .. } => {
                assert_eq!((refusal.status, refusal.reason.as_str()), (429, "Too Many Requests"));
                assert_eq!(refusal.headers[0], ("Retry-After".into(), "5".into()));
                assert_eq!(body, BodyLength::Known(12));
            }
            other => panic!("{other:?}"),
        }
        let chunked = parse("HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert!(matches!(chunked, ResponseHead::Refused { body: BodyLength::Chunked, .. }));
        let eof = parse("HTTP/1.1 403 Forbidden\r\n\r\n").unwrap();
        assert!(matches!(eof, ResponseHead::Refused { body: BodyLength::UntilEof, .. }));
    }
}
