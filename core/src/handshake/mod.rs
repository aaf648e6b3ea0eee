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

/// What the server agreed to in its `101 Switching Protocols` answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpgradeResponse {
    /// The subprotocol the server chose from those offered, if any.
    pub subprotocol: Option<String>,
    /// The extensions the server accepted, each as the server wrote it.
    pub extensions: Vec<String>,
    /// All response headers, values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// permessage-deflate as agreed, when it was offered and accepted.
    pub deflate: Option<DeflateParams>,
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
