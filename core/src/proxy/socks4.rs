//! SOCKS4a: SOCKS4's CONNECT with the host name sent to the proxy (the
//! address `0.0.0.1` says one follows), or SOCKS4 with an IPv4 address.
//! The request carries the URL's user name as the user id (no password);
//! the reply is 8 bytes, read exactly.

use super::{BadProxyReply, Credentials, ProxyError, ProxyProtocol, ProxyRefusal, Target};

const REPLY: usize = 8;
const GRANTED: u8 = 90;

pub(super) struct Socks4 {
    out: Vec<u8>,
    reply: Vec<u8>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Open,
    Failed,
}

/// Shows the state only, as the other machines do.
impl std::fmt::Debug for Socks4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socks4").field("state", &self.state).field("reply_bytes", &self.reply.len()).finish()
    }
}

impl Socks4 {
    pub(super) fn new(target: &Target, credentials: Option<&Credentials>) -> Result<Self, ProxyError> {
        let user = credentials.map_or(&b""[..], |c| c.user.as_bytes());
        if user.contains(&0) {
            return Err(ProxyError::BadTarget("a SOCKS4 user id cannot hold a NUL byte".to_owned()));
        }
        let (ip, port, name) = match target {
            Target::Ip(std::net::IpAddr::V4(ip), port) => (ip.octets(), *port, None),
            Target::Ip(std::net::IpAddr::V6(_), _) => {
                return Err(ProxyError::BadTarget("SOCKS4 cannot name an IPv6 address".to_owned()))
            }
            Target::Name(host, port) => {
                if host.is_empty() || host.len() > 255 || host.contains('\0') {
                    return Err(ProxyError::BadTarget(format!("a SOCKS4a host name of {} bytes", host.len())));
                }
                ([0, 0, 0, 1], *port, Some(host.as_bytes()))
            }
        };
        let mut out = vec![4, 1];
        out.extend_from_slice(&port.to_be_bytes());
        out.extend_from_slice(&ip);
        out.extend_from_slice(user);
        out.push(0);
        if let Some(name) = name {
            out.extend_from_slice(name);
            out.push(0);
        }
        Ok(Self { out, reply: Vec::new(), state: State::Reading })
    }

    pub(super) fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        out.append(&mut self.out);
        n
    }

    pub(super) fn is_open(&self) -> bool {
        self.state == State::Open
    }

    pub(super) fn read_limit(&self) -> usize {
        match self.state {
            State::Reading => REPLY - self.reply.len(),
            State::Open | State::Failed => 0,
        }
    }

    pub(super) fn handle_eof(&mut self) -> ProxyError {
        self.state = State::Failed;
        ProxyError::BadReply(BadProxyReply::Closed)
    }

    pub(super) fn handle_input(&mut self, data: &[u8]) -> Result<bool, ProxyError> {
        if data.is_empty() {
            return Ok(self.is_open());
        }
        let result = self.take(data);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn take(&mut self, data: &[u8]) -> Result<bool, ProxyError> {
        if self.state != State::Reading || data.len() > self.read_limit() {
            return Err(ProxyError::BadReply(BadProxyReply::DataAfterReply));
        }
        self.reply.extend_from_slice(data);
        match self.reply[..] {
            [version, ..] if version != 0 => Err(ProxyError::BadReply(BadProxyReply::Version(version))),
            [_, GRANTED, ..] if self.reply.len() == REPLY => {
                self.state = State::Open;
                Ok(true)
            }
            [_, code, ..] if code != GRANTED => Err(ProxyError::Refused(Box::new(ProxyRefusal {
                protocol: ProxyProtocol::Socks4,
                status: u16::from(code),
                reason: match code {
                    91 => "request rejected or failed",
                    92 => "the proxy could not reach the client's identd",
                    93 => "the client's identd reported another user id",
                    _ => "unassigned reply code",
                }
                .to_owned(),
                headers: Vec::new(),
            }))),
            _ => Ok(false),
        }
    }
}
