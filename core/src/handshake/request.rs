//! The client's upgrade request (RFC 6455 §4.1).

use super::is_token;
use crate::error::{ConfigError, UrlError};
use crate::url::WsUrl;

/// Headers the handshake writes itself; a user value would break or duplicate them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
];

/// What to ask the server for: the URL, offered subprotocols and extensions, and extra headers.
///
/// Building never fails on a bad header or subprotocol; [`ClientRequest::validate`]
/// (called when a connection is created) reports the first problem by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    url: WsUrl,
    subprotocols: Vec<String>,
    extensions: Vec<String>,
    headers: Vec<(String, String)>,
}

impl ClientRequest {
    /// A request for `url` with no subprotocols, extensions or extra headers.
    pub fn new(url: &str) -> Result<Self, UrlError> {
        Ok(Self::from_url(WsUrl::parse(url)?))
    }

    /// A request for an already parsed URL.
    pub fn from_url(url: WsUrl) -> Self {
        Self { url, subprotocols: Vec::new(), extensions: Vec::new(), headers: Vec::new() }
    }

    /// Offers a subprotocol; offers keep the order in which they were added.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.subprotocols.push(protocol.into());
        self
    }

    /// Offers an extension, written as it goes in `Sec-WebSocket-Extensions`
    /// (for example `permessage-deflate; client_max_window_bits`).
    pub fn extension(mut self, offer: impl Into<String>) -> Self {
        self.extensions.push(offer.into());
        self
    }

    /// Adds a header to the request (an `Authorization` token, an `Origin` ...).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The URL this request is for.
    pub fn url(&self) -> &WsUrl {
        &self.url
    }

    /// The offered subprotocols.
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// The offered extensions.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The fixed headers, in order (for a recording's settings).
    #[cfg(feature = "record")]
    pub(crate) fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Checks every header, subprotocol and extension offer for values that
    /// could not be sent or could inject lines into the request.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in &self.headers {
            if !is_token(name) {
                return Err(ConfigError::InvalidHeaderName(name.clone()));
            }
            if RESERVED_HEADERS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                return Err(ConfigError::ReservedHeader(name.clone()));
            }
            if has_line_break(value) {
                return Err(ConfigError::InvalidHeaderValue { name: name.clone() });
            }
        }
        for p in &self.subprotocols {
            if !is_token(p) {
                return Err(ConfigError::InvalidSubprotocol(p.clone()));
            }
        }
        for e in &self.extensions {
            if e.trim().is_empty() || has_line_break(e) {
                return Err(ConfigError::InvalidExtensionOffer(e.clone()));
            }
        }
        Ok(())
    }

    /// Writes the request head with the given `Sec-WebSocket-Key`.
    /// The caller has validated the request first.
    /// Whether a header's value is secret: one of `SENSITIVE_HEADERS` or of `extra`.
    pub(crate) fn has_sensitive_header(&self, extra: &[String]) -> bool {
        self.headers.iter().any(|(name, _)| is_sensitive(name, extra))
    }

    /// This request with secret header values and the URL's query replaced
    /// by `<redacted>`, for a recording's header.
    #[cfg(feature = "record")]
    pub(crate) fn redacted(&self, extra: &[String]) -> Self {
        let mut copy = self.clone();
        copy.url = self.url.without_query();
        for (name, value) in &mut copy.headers {
            if is_sensitive(name, extra) {
                *value = "<redacted>".to_owned();
            }
        }
        copy
    }

    pub(crate) fn encode(&self, key: &str, out: &mut Vec<u8>) {
        let mut line = |name: &str, value: &str| {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        line("Host", &self.url.host_header());
        line("Upgrade", "websocket");
        line("Connection", "Upgrade");
        line("Sec-WebSocket-Key", key);
        line("Sec-WebSocket-Version", "13");
        if !self.subprotocols.is_empty() {
            line("Sec-WebSocket-Protocol", &self.subprotocols.join(", "));
        }
        if !self.extensions.is_empty() {
            line("Sec-WebSocket-Extensions", &self.extensions.join(", "));
        }
        for (name, value) in &self.headers {
            line(name, value);
        }
        let head = std::mem::take(out);
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(self.url.resource().as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        out.extend_from_slice(&head);
        out.extend_from_slice(b"\r\n");
    }
}

/// Header names whose values are redacted by default (compared without case).
pub(crate) const SENSITIVE_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

fn has_line_break(value: &str) -> bool {
    value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// Whether a header named `name` carries a secret (compared without case).
fn is_sensitive(name: &str, extra: &[String]) -> bool {
    SENSITIVE_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s)) || extra.iter().any(|s| name.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(req: &ClientRequest) -> String {
        let mut out = Vec::new();
        req.encode("dGhlIHNhbXBsZSBub25jZQ==", &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn request_has_every_handshake_header_in_order() {
        let req = ClientRequest::new("ws://[::1]:9001/feed?a=1")
            .unwrap()
            .subprotocol("json")
            .subprotocol("v2.proto")
            .extension("permessage-deflate; client_max_window_bits")
            .header("Authorization", "Bearer t0k3n");
        req.validate().unwrap();
        assert_eq!(
            encoded(&req),
            "GET /feed?a=1 HTTP/1.1\r\nHost: [::1]:9001\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: json, v2.proto\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
             Authorization: Bearer t0k3n\r\n\r\n"
        );
    }

    #[test]
    fn injection_attempts_are_rejected_by_name() {
        let base = || ClientRequest::new("wss://example.com").unwrap();
        let cases = [
            (base().header("X-A", "v\r\nEvil: 1"), ConfigError::InvalidHeaderValue { name: "X-A".into() }),
            (base().header("X-A", "v\nb"), ConfigError::InvalidHeaderValue { name: "X-A".into() }),
            (base().header("X-A", "v\0"), ConfigError::InvalidHeaderValue { name: "X-A".into() }),
            (base().header("X A", "v"), ConfigError::InvalidHeaderName("X A".into())),
            (base().header("X:A", "v"), ConfigError::InvalidHeaderName("X:A".into())),
            (base().header("", "v"), ConfigError::InvalidHeaderName(String::new())),
            (base().header("sec-websocket-key", "x"), ConfigError::ReservedHeader("sec-websocket-key".into())),
            (base().header("HOST", "x"), ConfigError::ReservedHeader("HOST".into())),
            (base().subprotocol("a b"), ConfigError::InvalidSubprotocol("a b".into())),
            (base().subprotocol(""), ConfigError::InvalidSubprotocol(String::new())),
            (base().extension("x\r\n"), ConfigError::InvalidExtensionOffer("x\r\n".into())),
            (base().extension("  "), ConfigError::InvalidExtensionOffer("  ".into())),
        ];
        for (req, want) in cases {
            assert_eq!(req.validate(), Err(want));
        }
    }
}
