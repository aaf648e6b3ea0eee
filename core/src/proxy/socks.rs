//! SOCKS5 (RFC 1928) with no authentication or a user name and password
//! (RFC 1929): a tiny binary protocol, so the machine is written here.
//!
//! Every reply has a known length (the connect reply's follows from its
//! address type), so [`read_limit`](Socks5::read_limit) never lets the
//! caller read past it: the tunnel's first byte stays in the socket.

use super::{BadProxyReply, Credentials, ProxyError, ProxyProtocol, ProxyRefusal, Target};

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0;
const USER_PASSWORD: u8 = 2;
const NO_ACCEPTABLE: u8 = 0xff;

pub(super) struct Socks5 {
    target: Target,
    credentials: Option<Credentials>,
    out: Vec<u8>,
    /// The reply being read.
    reply: Vec<u8>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The greeting was sent; the method choice (2 bytes) is awaited.
    Method,
    /// The credentials were sent; the status (2 bytes) is awaited.
    Auth,
    /// The connect request was sent; its reply is awaited.
    Connect,
    Open,
    Failed,
}

/// Shows the state only: what waits to be written may hold the credentials.
impl std::fmt::Debug for Socks5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socks5").field("state", &self.state).field("reply_bytes", &self.reply.len()).finish()
    }
}

impl Socks5 {
    pub(super) fn new(target: Target, credentials: Option<Credentials>) -> Result<Self, ProxyError> {
        if let Target::Name(host, _) = &target {
            if host.is_empty() || host.len() > 255 {
                return Err(ProxyError::BadTarget(format!(
                    "a SOCKS5 host name has 1 to 255 bytes, not {}",
                    host.len()
                )));
            }
        }
        let out = match credentials {
            Some(_) => vec![VERSION, 2, NO_AUTH, USER_PASSWORD],
            None => vec![VERSION, 1, NO_AUTH],
        };
        Ok(Self { target, credentials, out, reply: Vec::new(), state: State::Method })
    }

    pub(super) fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        out.append(&mut self.out);
        n
    }

    pub(super) fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// The length of the reply awaited, as far as its bytes so far tell.
    fn expected(&self) -> usize {
        match self.state {
            State::Method | State::Auth => 2,
            // VER REP RSV ATYP, then the address (its first byte tells a
            // name's length), then the port.
            State::Connect => match (self.reply.get(3), self.reply.get(4)) {
                (Some(1), _) => 4 + 4 + 2,
                (Some(4), _) => 4 + 16 + 2,
                (Some(3), Some(&len)) => 4 + 1 + usize::from(len) + 2,
                // The address type, and a name's length: then the rest is known.
                _ => 5,
            },
            State::Open | State::Failed => 0,
        }
    }

    pub(super) fn read_limit(&self) -> usize {
        // The reply never passes its expected length while awaited; after the end it is 0.
        self.expected().saturating_sub(self.reply.len())
    }

    pub(super) fn handle_eof(&mut self) -> ProxyError {
        let state = std::mem::replace(&mut self.state, State::Failed);
        self.reply = Vec::new();
        if state == State::Auth {
            // RFC 1929 §2 has the server close the connection after a
            // failure status; some (pproxy) close without sending one.
            return auth_refused(255, "the proxy closed the connection after reading the credentials");
        }
        ProxyError::BadReply(BadProxyReply::Closed)
    }

    pub(super) fn handle_input(&mut self, mut data: &[u8]) -> Result<bool, ProxyError> {
        while !data.is_empty() {
            if matches!(self.state, State::Open | State::Failed) {
                self.state = State::Failed;
                return Err(ProxyError::BadReply(BadProxyReply::DataAfterReply));
            }
            let take = self.read_limit().min(data.len());
            self.reply.extend_from_slice(&data[..take]);
            data = &data[take..];
            if let Err(e) = self.check() {
                self.state = State::Failed;
                self.reply = Vec::new();
                return Err(e);
            }
        }
        Ok(self.state == State::Open)
    }

    /// Acts on the reply so far: checks what is there, and moves on once it is whole.
    fn check(&mut self) -> Result<(), ProxyError> {
        let bad = |b| Err(ProxyError::BadReply(b));
        match (self.state, self.reply.as_slice()) {
            (State::Method, [v, ..]) if *v != VERSION => bad(BadProxyReply::Version(*v)),
            (State::Method, [_, NO_AUTH]) => {
                self.send_connect();
                Ok(())
            }
            (State::Method, [_, USER_PASSWORD]) if self.credentials.is_some() => {
                self.send_credentials();
                Ok(())
            }
            (State::Method, [_, NO_ACCEPTABLE]) => {
                let why = if self.credentials.is_some() {
                    "the proxy accepted none of the offered methods (no authentication, user name and password)"
                } else {
                    "the proxy requires authentication and no credentials were given"
                };
                Err(auth_refused(255, why))
            }
            (State::Method, [_, m]) => bad(BadProxyReply::Method(*m)),
            // RFC 1929 says 1; some servers answer 5, which curl accepts too.
            (State::Auth, [v, ..]) if !matches!(*v, 1 | VERSION) => bad(BadProxyReply::Version(*v)),
            (State::Auth, [_, 0]) => {
                self.send_connect();
                Ok(())
            }
            (State::Auth, [_, status]) => {
                Err(auth_refused(u16::from(*status), "the proxy refused the user name and password"))
            }
            (State::Connect, [v, ..]) if *v != VERSION => bad(BadProxyReply::Version(*v)),
            (State::Connect, [_, rep, ..]) if *rep != 0 => Err(ProxyError::Refused(Box::new(ProxyRefusal {
                protocol: ProxyProtocol::Socks5,
                status: u16::from(*rep),
                reason: reply_text(*rep).to_owned(),
                headers: Vec::new(),
            }))),
            (State::Connect, [_, _, _, atyp, ..]) if !matches!(atyp, 1 | 3 | 4) => {
                bad(BadProxyReply::AddressType(*atyp))
            }
            (State::Connect, reply) if reply.len() == self.expected() && reply.len() > 5 => {
                self.state = State::Open;
                self.reply = Vec::new();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn send_credentials(&mut self) {
        self.state = State::Auth;
        self.reply.clear();
        // Lengths checked when the credentials were set (`ProxyServer::parse`
        // and `with_credentials` refuse others with `CredentialsLength`); clamped all the same.
        let Some(c) = &self.credentials else { return };
        let (user, password) = (clamp(c.user.as_bytes()), clamp(c.password.as_bytes()));
        self.out.push(1);
        self.out.push(user.len() as u8);
        self.out.extend_from_slice(user);
        self.out.push(password.len() as u8);
        self.out.extend_from_slice(password);
    }

    fn send_connect(&mut self) {
        self.state = State::Connect;
        self.reply.clear();
        self.out.extend_from_slice(&[VERSION, 1, 0]);
        let port = match &self.target {
            Target::Ip(std::net::IpAddr::V4(ip), port) => {
                self.out.push(1);
                self.out.extend_from_slice(&ip.octets());
                port
            }
            Target::Ip(std::net::IpAddr::V6(ip), port) => {
                self.out.push(4);
                self.out.extend_from_slice(&ip.octets());
                port
            }
            Target::Name(host, port) => {
                // 1 to 255 bytes: checked in `new`.
                let host = clamp(host.as_bytes());
                self.out.push(3);
                self.out.push(host.len() as u8);
                self.out.extend_from_slice(host);
                port
            }
        };
        self.out.extend_from_slice(&port.to_be_bytes());
    }
}

/// At most 255 bytes, as a one-byte length can say.
fn clamp(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().min(255)]
}

fn auth_refused(status: u16, reason: &str) -> ProxyError {
    ProxyError::AuthRequired(Box::new(ProxyRefusal {
        protocol: ProxyProtocol::Socks5,
        status,
        reason: reason.to_owned(),
        headers: Vec::new(),
    }))
}

/// RFC 1928 §6's reply codes.
fn reply_text(rep: u8) -> &'static str {
    match rep {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}
