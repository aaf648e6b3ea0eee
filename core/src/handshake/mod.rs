//! The opening handshake of RFC 6455 §4: the client's upgrade request and the
//! verification of the server's response.
//!
//! `request` validates what the caller asks to send (nothing that could inject
//! a header line reaches the wire) and writes the request; `response` reads the
//! server's answer incrementally with `httparse` under a size bound and checks
//! every rule of §4.1 before the connection is declared open.

use crate::deflate::DeflateParams;

mod request;
mod response;

pub use request::ClientRequest;
pub(crate) use response::{parse_response_head, BodyLength, ResponseHead};

/// What the server agreed to in its `101 Switching Protocols` answer. Its
/// `Debug` hides the values of headers that carry credentials or session
/// state (`Set-Cookie`, `Cookie`, `Authorization`, `Proxy-Authorization`),
/// since events are logged and recorded with it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpgradeResponse {
    /// The response's HTTP status: 101 (Switching Protocols), the only one
    /// an upgrade is accepted with; any other is a `RefusedUpgrade`.
    pub status: u16,
    /// The subprotocol the server chose from those offered, if any.
    pub subprotocol: Option<String>,
    /// The extensions the server accepted, each as the server wrote it.
    pub extensions: Vec<String>,
    /// All response headers, values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// permessage-deflate as agreed, when it was offered and accepted.
    pub deflate: Option<DeflateParams>,
}

/// An accepted upgrade with nothing in it: status 101, no headers.
impl Default for UpgradeResponse {
    fn default() -> Self {
        Self { status: 101, subprotocol: None, extensions: Vec::new(), headers: Vec::new(), deflate: None }
    }
}

impl std::fmt::Debug for UpgradeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeResponse")
            .field("status", &self.status)
            .field("subprotocol", &self.subprotocol)
            .field("extensions", &self.extensions)
            .field("headers", &crate::error::ShownHeaders(&self.headers))
            .field("deflate", &self.deflate)
            .finish()
    }
}

/// RFC 7230 §3.2.6 `token`: what header names and subprotocols are made of.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The names of the comma-separated extensions in a header value, with their parameters.
pub(crate) fn split_extensions(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value.split(',').map(str::trim).filter(|e| !e.is_empty()).map(|e| {
        let name = e.split(';').next().unwrap_or_default().trim();
        (name, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RefusedUpgrade;

    #[test]
    fn debug_hides_credentials_and_the_refusals_body() {
        let headers = vec![
            ("Set-Cookie".to_owned(), "session=SERVERSECRET".to_owned()),
            ("authorization".to_owned(), "Bearer TOKEN".to_owned()),
            ("Server".to_owned(), "nginx".to_owned()),
        ];
        let refused = RefusedUpgrade {
            status: 401,
            reason: "Unauthorized".into(),
            headers: headers.clone(),
            body: b"key=KEY".to_vec(),
        };
        let upgraded = UpgradeResponse { headers, ..UpgradeResponse::default() };
        for shown in [format!("{refused:?}"), format!("{upgraded:?}")] {
            assert!(!shown.contains("SECRET") && !shown.contains("TOKEN") && !shown.contains("KEY"), "{shown}");
            assert!(shown.contains(r#"("Server", "nginx")"#) && shown.contains("<redacted>"), "{shown}");
        }
        assert!(format!("{upgraded:?}").starts_with("UpgradeResponse { status: 101, "));
        assert!(format!("{refused:?}").contains("body: <7 bytes>"));
    }
}
