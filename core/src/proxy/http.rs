//! HTTP `CONNECT` (RFC 9110 §9.3.6): the request, and its reply parsed with
//! `httparse` as it arrives, within [`MAX_REPLY_HEAD`] bytes.
//!
//! A 2xx opens the tunnel; 407 is [`ProxyError::AuthRequired`], any other
//! status [`ProxyError::Refused`], both with the status, reason and headers.
//! Interim 1xx replies (100 Continue, 102, 103 Early Hints ...) are skipped,
//! as RFC 9110 §15.2 has a client do, and the next head read; every head,
//! the skipped ones too, counts toward the one [`MAX_REPLY_HEAD`] limit.
//! 101 Switching Protocols is no tunnel: a refusal.
//!
//! `httparse` starts again from the head's first byte each time, so it runs
//! only when new bytes can change its answer: while the head's first
//! [`STATUS_PREFIX`] bytes arrive (a reply that is not HTTP fails at once),
//! and when a line ends (a header to check, or the end of the head). A
//! proxy sending its head a byte at a time costs at most one parse per line
//! (httparse refuses the line after [`MAX_HEADERS`]), not one per byte.
//! Bytes after a 2xx head are refused ([`BadProxyReply::DataAfterReply`]):
//! RFC 9110 forbids a body there, and no WebSocket or TLS server speaks first.

use super::{BadProxyReply, Credentials, ProxyError, ProxyProtocol, ProxyRefusal, Target, MAX_REPLY_HEAD};

/// Most headers a reply may carry.
const MAX_HEADERS: usize = 64;

/// A head's first bytes, parsed as they come: `HTTP/1.1 200 ` and a little more.
pub(super) const STATUS_PREFIX: usize = 16;

pub(super) struct HttpConnect {
    /// The request, until written.
    request: Vec<u8>,
    /// The reply so far: interim (1xx) heads, skipped, then the head being read.
    head: Vec<u8>,
    /// Where in `head` the head being read starts (after the interim ones).
    start: usize,
    state: State,
    /// How many times `httparse` ran, for the test that bounds it.
    #[cfg(test)]
    parses: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Open,
    Failed,
}

/// Shows the state only: the request holds the credentials.
impl std::fmt::Debug for HttpConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnect").field("state", &self.state).field("reply_bytes", &self.head.len()).finish()
    }
}

impl HttpConnect {
    pub(super) fn new(target: &Target, credentials: Option<&Credentials>) -> Self {
        let authority = match target {
            Target::Name(host, port) => format!("{host}:{port}"),
            Target::Ip(std::net::IpAddr::V6(ip), port) => format!("[{ip}]:{port}"),
            Target::Ip(ip, port) => format!("{ip}:{port}"),
        };
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
        if let Some(c) = credentials {
            let token = data_encoding::BASE64.encode(format!("{}:{}", c.user, c.password).as_bytes());
            request.extend_from_slice(format!("Proxy-Authorization: Basic {token}\r\n").as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        Self {
            request,
            head: Vec::new(),
            start: 0,
            state: State::Reading,
            #[cfg(test)]
            parses: 0,
        }
    }

    pub(super) fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.request.len();
        out.append(&mut self.request);
        n
    }

    pub(super) fn read_limit(&self) -> usize {
        match self.state {
            State::Reading => MAX_REPLY_HEAD + 1 - self.head.len(),
            State::Open | State::Failed => 0,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.state == State::Open
    }

    pub(super) fn handle_eof(&mut self) -> ProxyError {
        self.state = State::Failed;
        ProxyError::BadReply(BadProxyReply::Closed)
    }

    pub(super) fn handle_input(&mut self, data: &[u8]) -> Result<bool, ProxyError> {
        match self.state {
            State::Reading => {}
            State::Open => return Err(ProxyError::BadReply(BadProxyReply::DataAfterReply)),
            State::Failed => return Err(ProxyError::BadReply(BadProxyReply::Closed)),
        }
        // Never more than the limit and one byte, whatever the caller reads.
        let before = self.head.len();
        let room = MAX_REPLY_HEAD + 1 - before;
        self.head.extend_from_slice(&data[..data.len().min(room)]);
        let overflowed = data.len() > room;
        let result = if overflowed || self.head.len() > MAX_REPLY_HEAD || self.worth_parsing(before) {
            self.parse(overflowed)
        } else {
            Ok(false)
        };
        self.state = match result {
            Ok(true) => State::Open,
            Ok(false) => State::Reading,
            Err(_) => State::Failed,
        };
        if self.state != State::Reading {
            self.head = Vec::new();
        }
        result
    }

    /// Whether the bytes from `from` on can change what `httparse` says of
    /// the head: the head's first bytes, or the end of a line.
    fn worth_parsing(&self, from: usize) -> bool {
        from < self.start + STATUS_PREFIX || self.head[from..].contains(&b'\n')
    }

    /// How many times `httparse` ran.
    #[cfg(test)]
    pub(super) fn parses(&self) -> usize {
        self.parses
    }

    fn parse(&mut self, overflowed: bool) -> Result<bool, ProxyError> {
        // Bounded: each interim head skipped moves `start` on by at least one byte.
        loop {
            #[cfg(test)]
            {
                self.parses += 1;
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut reply = httparse::Response::new(&mut headers);
            let bad = |b| Err(ProxyError::BadReply(b));
            let end = match reply.parse(&self.head[self.start..]) {
                Ok(httparse::Status::Complete(end)) => self.start + end,
                Ok(httparse::Status::Partial) if self.head.len() > MAX_REPLY_HEAD || overflowed => {
                    return bad(BadProxyReply::TooLarge { limit: MAX_REPLY_HEAD })
                }
                Ok(httparse::Status::Partial) => return Ok(false),
                Err(e) => return bad(BadProxyReply::Malformed(e.to_string())),
            };
            if end > MAX_REPLY_HEAD {
                return bad(BadProxyReply::TooLarge { limit: MAX_REPLY_HEAD });
            }
            // httparse sets the status on a complete head.
            let status = reply.code.unwrap_or_default();
            if (100..200).contains(&status) && status != 101 {
                // An interim reply: the final one follows it.
                self.start = end;
                continue;
            }
            if (200..300).contains(&status) {
                return if end < self.head.len() || overflowed { bad(BadProxyReply::DataAfterReply) } else { Ok(true) };
            }
            return Err(refusal(status, &reply));
        }
    }
}

/// A final reply other than 2xx: 407 wants credentials, the rest refuse.
fn refusal(status: u16, reply: &httparse::Response<'_, '_>) -> ProxyError {
    let refusal = Box::new(ProxyRefusal {
        protocol: ProxyProtocol::Http,
        status,
        reason: reply.reason.unwrap_or_default().to_owned(),
        headers: reply
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
    });
    if status == 407 {
        ProxyError::AuthRequired(refusal)
    } else {
        ProxyError::Refused(refusal)
    }
}
