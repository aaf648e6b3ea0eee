//! Proxies: which one a connection goes through, and the handshakes that
//! open a tunnel through it, as sans-IO machines like the WebSocket one.
//!
//! - [`Proxy`] is the setting: none, one proxy for every URL, or the
//!   conventional environment variables (`HTTPS_PROXY`, `HTTP_PROXY`,
//!   `ALL_PROXY`, `NO_PROXY`, read by the caller and handed in as values, so
//!   the rules are tested without an environment). [`Proxy::for_url`] is the
//!   one decision: which [`ProxyServer`], if any, a URL goes through.
//! - [`ProxyHandshake`] opens the tunnel once the caller has a TCP
//!   connection to the proxy (and, for an `https://` proxy, TLS over it):
//!   HTTP `CONNECT` with `Proxy-Authorization:
//!   Basic` (`http.rs`), SOCKS5 without authentication or with a user
//!   name and password (`socks.rs`), or SOCKS4a and SOCKS4 (`socks4.rs`). The caller writes what
//!   [`poll_transmit`](ProxyHandshake::poll_transmit) gives, reads at most
//!   [`read_limit`](ProxyHandshake::read_limit) bytes and hands them to
//!   [`handle_input`](ProxyHandshake::handle_input) until it answers
//!   `Ok(true)`; then the TCP connection is a tunnel to the target, and TLS
//!   (for `wss`) and the WebSocket handshake run inside it.
//!
//! Invariants: no I/O, no clock (the caller's connect timeout covers the
//! proxy's handshake); no input makes a machine panic or grow past
//! [`MAX_REPLY_HEAD`]; a reply is consumed exactly, never the tunnel's first
//! byte; credentials appear in no `Debug`, `Display` or error.

mod env;
mod error;
mod http;
mod socks;
mod socks4;

use std::fmt;
use std::net::IpAddr;

pub use env::NoProxy;
pub use error::{BadProxyReply, ProxyError, ProxyProtocol, ProxyRefusal, ProxyUrlError};

use crate::WsUrl;

/// The largest HTTP `CONNECT` reply head accepted, in bytes.
pub const MAX_REPLY_HEAD: usize = 16 * 1024;

/// A user name and password for a proxy, percent-decoded from its URL.
/// `Debug` shows the user name only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl Credentials {
    /// Credentials given as they are (not percent-encoded).
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self { user: user.into(), password: password.into() }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("password", &"<redacted>").finish()
    }
}

/// How a proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyKind {
    /// HTTP `CONNECT` (`http://`).
    Http,
    /// HTTP `CONNECT` over TLS to the proxy (`https://`): the proxy's
    /// certificate is checked against the client's roots, and TLS to a
    /// `wss://` server runs inside that TLS.
    Https,
    /// SOCKS5 (`socks5://`: host names resolved by the client;
    /// `socks5h://`, and `socks://`: by the proxy).
    Socks5 {
        /// Whether the proxy resolves the target's host name.
        remote_dns: bool,
    },
    /// SOCKS4 (`socks4://`: host names resolved by the client, IPv4 only)
    /// or SOCKS4a (`socks4a://`: by the proxy). The URL's user name is the
    /// user id; SOCKS4 has no password.
    Socks4 {
        /// Whether the proxy resolves the target's host name (SOCKS4a).
        remote_dns: bool,
    },
}

/// One proxy: how to speak to it, where it is, and the credentials.
/// `Debug` and [`redacted_text`](Self::redacted_text) never show the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyServer {
    kind: ProxyKind,
    host: String,
    port: u16,
    credentials: Option<Credentials>,
}

impl ProxyServer {
    /// Parses a proxy URL: `http://`, `https://`, `socks5://`, `socks5h://`,
    /// `socks4://`, `socks4a://` or `socks://`, an optional `user:password@`
    /// (percent-decoded), a host and an optional port (default 80 for HTTP,
    /// 443 for HTTPS, 1080 for SOCKS). Without a scheme it is HTTP, as curl
    /// reads it.
    ///
    /// `socks://` (what GNOME's proxy settings write, `all_proxy=socks://host:port/`)
    /// is read as `socks5h://`, as GLib, which writes it, reads it: its
    /// proxy resolvers try SOCKS5 first (then SOCKS4a, then SOCKS4), and
    /// give the proxy the host name. curl reads `socks://` as `socks4://`;
    /// SOCKS5 is chosen here because it also names IPv6 addresses and host
    /// names, and nearly every SOCKS server speaks it.
    pub fn parse(url: &str) -> Result<Self, ProxyUrlError> {
        let (scheme, rest) = match url.split_once("://") {
            // Not a scheme (RFC 3986 §3.1): the text before `://` may be a
            // user name and password, so it is never quoted in the error.
            Some((scheme, _)) if !is_scheme(scheme) => return Err(ProxyUrlError::Invalid),
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_owned(), url),
        };
        let kind = match scheme.as_str() {
            "http" => ProxyKind::Http,
            "https" => ProxyKind::Https,
            "socks5" => ProxyKind::Socks5 { remote_dns: false },
            "socks5h" | "socks" => ProxyKind::Socks5 { remote_dns: true },
            "socks4" => ProxyKind::Socks4 { remote_dns: false },
            "socks4a" => ProxyKind::Socks4 { remote_dns: true },
            _ => return Err(ProxyUrlError::UnsupportedScheme(scheme)),
        };
        let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        if !matches!(tail, "" | "/") {
            return Err(ProxyUrlError::Path);
        }
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        if host_port.is_empty() {
            return Err(ProxyUrlError::MissingHost);
        }
        let parsed: ::http::uri::Authority = host_port.parse().map_err(|_| ProxyUrlError::Invalid)?;
        if parsed.host().is_empty() {
            return Err(ProxyUrlError::MissingHost);
        }
        // curl's and reqwest's defaults: 80 for HTTP, 443 for HTTPS, 1080 for SOCKS.
        let default_port = match kind {
            ProxyKind::Http => 80,
            ProxyKind::Https => 443,
            ProxyKind::Socks5 { .. } | ProxyKind::Socks4 { .. } => 1080,
        };
        let port = match host_port.get(parsed.host().len()..).and_then(|p| p.strip_prefix(':')) {
            None | Some("") => default_port,
            Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0).ok_or(ProxyUrlError::InvalidPort)?,
        };
        let credentials = userinfo.map(decode_credentials).transpose()?;
        if let Some(c) = &credentials {
            check_credentials(kind, c)?;
        }
        let host = parsed.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        Ok(Self { kind, host, port, credentials })
    }

    /// Sets (or replaces) the credentials, given as they are, checked as
    /// [`parse`](Self::parse) checks a URL's: SOCKS5 (RFC 1929) carries a
    /// user name of 1 to 255 bytes and a password of at most 255, or the
    /// error is [`ProxyUrlError::CredentialsLength`].
    pub fn with_credentials(mut self, credentials: Credentials) -> Result<Self, ProxyUrlError> {
        check_credentials(self.kind, &credentials)?;
        self.credentials = Some(credentials);
        Ok(self)
    }

    /// How the proxy is spoken to.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host, to resolve and connect to (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether credentials are set.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// Whether the connection to the proxy itself is TLS (`https://`).
    pub fn uses_tls(&self) -> bool {
        self.kind == ProxyKind::Https
    }

    /// Whether the client must resolve `target_host` itself and name the
    /// proxy an address (`socks5://` or `socks4://` with a host name):
    /// then pick it with [`target_address`](Self::target_address) and pass
    /// it to [`ProxyHandshake::new`].
    pub fn resolves_locally(&self, target_host: &str) -> bool {
        matches!(self.kind, ProxyKind::Socks5 { remote_dns: false } | ProxyKind::Socks4 { remote_dns: false })
            && parse_ip(target_host).is_none()
    }

    /// Of the target's addresses as the client resolved them (in the
    /// resolver's order), the one to name to this proxy: the first IPv4
    /// address for SOCKS4, which cannot name an IPv6 one; the first of
    /// either family for the others. `None` when none fits; then
    /// [`ProxyHandshake::new`] refuses a host name this proxy does not
    /// resolve with [`ProxyError::BadTarget`]. Every loop (both adapters,
    /// and one of your own) picks through this, so they all choose alike.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use wslink_core::proxy::ProxyServer;
    ///
    /// let resolved: [IpAddr; 2] = ["2001:db8::7".parse()?, "192.0.2.7".parse()?];
    /// let socks4 = ProxyServer::parse("socks4://proxy.internal")?;
    /// assert_eq!(socks4.target_address(resolved), Some(resolved[1]));
    /// let socks5 = ProxyServer::parse("socks5://proxy.internal")?;
    /// assert_eq!(socks5.target_address(resolved), Some(resolved[0]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn target_address(&self, resolved: impl IntoIterator<Item = IpAddr>) -> Option<IpAddr> {
        // An IPv4-mapped IPv6 address is its IPv4 one, which SOCKS4 can name.
        let mut resolved = resolved.into_iter().map(|ip| ip.to_canonical());
        match self.kind {
            ProxyKind::Socks4 { .. } => resolved.find(IpAddr::is_ipv4),
            ProxyKind::Http | ProxyKind::Https | ProxyKind::Socks5 { .. } => resolved.next(),
        }
    }

    /// The proxy as text for logs and spans: scheme, host and port, with
    /// `<credentials>@` in place of the user name and password.
    pub fn redacted_text(&self) -> String {
        let scheme = match self.kind {
            ProxyKind::Http => "http",
            ProxyKind::Https => "https",
            ProxyKind::Socks5 { remote_dns: false } => "socks5",
            ProxyKind::Socks5 { remote_dns: true } => "socks5h",
            ProxyKind::Socks4 { remote_dns: false } => "socks4",
            ProxyKind::Socks4 { remote_dns: true } => "socks4a",
        };
        let auth = if self.credentials.is_some() { "<credentials>@" } else { "" };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{scheme}://{auth}{host}:{}", self.port)
    }
}

/// RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// SOCKS5 (RFC 1929) carries each in a one-byte length, the user name not
/// empty: refused here, so that the machine never sends them cut short.
fn check_credentials(kind: ProxyKind, c: &Credentials) -> Result<(), ProxyUrlError> {
    match kind {
        ProxyKind::Socks5 { .. } if c.user.is_empty() || c.user.len() > 255 || c.password.len() > 255 => {
            Err(ProxyUrlError::CredentialsLength)
        }
        _ => Ok(()),
    }
}

fn decode_credentials(userinfo: &str) -> Result<Credentials, ProxyUrlError> {
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| ProxyUrlError::CredentialsNotUtf8)
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    Ok(Credentials { user: decode(user)?, password: decode(password)? })
}

/// An IP literal, with or without IPv6 brackets.
fn parse_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Which proxy connections go through: none, one for every URL (but those
/// its `NO_PROXY` list exempts), or the environment's choice per URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Proxy {
    rule: Rule,
    no_proxy: NoProxy,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Rule {
    #[default]
    None,
    All(ProxyServer),
    Env {
        http: Option<ProxyServer>,
        https: Option<ProxyServer>,
    },
}

impl Proxy {
    /// No proxy: every connection is direct.
    pub fn none() -> Self {
        Self::default()
    }

    /// Every connection through this HTTP `CONNECT` proxy (`http://` or no
    /// scheme; `https://` for TLS to the proxy).
    pub fn http(url: &str) -> Result<Self, ProxyUrlError> {
        Self::of_kind(url, |k| matches!(k, ProxyKind::Http | ProxyKind::Https), "http or https")
    }

    /// Every connection through this SOCKS5 proxy (`socks5://`, host names
    /// resolved by the client, or `socks5h://`, by the proxy; no scheme: `socks5h`).
    pub fn socks5(url: &str) -> Result<Self, ProxyUrlError> {
        let url = if url.contains("://") { url.to_owned() } else { format!("socks5h://{url}") };
        Self::of_kind(&url, |k| matches!(k, ProxyKind::Socks5 { .. }), "socks5")
    }

    /// Every connection through the proxy this URL names, its scheme saying which kind.
    pub fn url(url: &str) -> Result<Self, ProxyUrlError> {
        Ok(Self::server(ProxyServer::parse(url)?))
    }

    /// Every connection through `server`.
    pub fn server(server: ProxyServer) -> Self {
        Self { rule: Rule::All(server), no_proxy: NoProxy::default() }
    }

    fn of_kind(url: &str, fits: impl Fn(ProxyKind) -> bool, want: &str) -> Result<Self, ProxyUrlError> {
        let server = ProxyServer::parse(url)?;
        if !fits(server.kind) {
            let scheme = url.split_once("://").map_or("http", |(s, _)| s);
            return Err(ProxyUrlError::UnsupportedScheme(format!("{scheme} (expected {want})")));
        }
        Ok(Self::server(server))
    }

    /// Exempts the hosts of a `NO_PROXY`-style list (see [`NoProxy`]), in
    /// place of any list set before (the environment's, for one read from it).
    pub fn no_proxy(mut self, list: &str) -> Self {
        self.no_proxy = NoProxy::parse(list);
        self
    }

    /// The proxy the URL goes through, if any.
    ///
    /// With the environment's setting, a `localhost` or loopback target is
    /// always direct (as Go's `ProxyFromEnvironment` has it: a proxy
    /// elsewhere cannot reach this machine's loopback); a proxy given
    /// explicitly applies to it too.
    pub fn for_url(&self, url: &WsUrl) -> Option<&ProxyServer> {
        let host = url.host_unbracketed();
        let server = match &self.rule {
            Rule::None => return None,
            Rule::All(server) => server,
            Rule::Env { http, https } => {
                if env::is_loopback(host) {
                    return None;
                }
                if url.is_secure() { https } else { http }.as_ref()?
            }
        };
        (!self.no_proxy.matches(host)).then_some(server)
    }
}

/// The target of a tunnel, as the proxy must be told it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Name(String, u16),
    Ip(IpAddr, u16),
}

/// The handshake that opens a tunnel through a proxy: an HTTP `CONNECT` or
/// a SOCKS5 or SOCKS4 exchange, chosen by the [`ProxyServer`]'s kind.
///
/// ```
/// use wslink_core::proxy::{ProxyHandshake, ProxyServer};
///
/// let proxy = ProxyServer::parse("http://user:secret@proxy.internal:3128")?;
/// let mut tunnel = ProxyHandshake::new(&proxy, "stream.example.com", 443, None)?;
/// let mut wire = Vec::new();
/// tunnel.poll_transmit(&mut wire); // write it to the TCP connection to the proxy
/// assert!(wire.starts_with(b"CONNECT stream.example.com:443 HTTP/1.1\r\n"));
/// let reply = b"HTTP/1.1 200 Connection established\r\n\r\n";
/// assert!(reply.len() <= tunnel.read_limit());
/// assert_eq!(tunnel.handle_input(reply), Ok(true)); // the tunnel is open: TLS and the upgrade go inside
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ProxyHandshake {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Http(http::HttpConnect),
    Socks5(socks::Socks5),
    Socks4(socks4::Socks4),
}

impl ProxyHandshake {
    /// Starts the handshake for a tunnel to `host:port` through `proxy`.
    /// `resolved` is the target's address when the client resolved it
    /// itself ([`ProxyServer::resolves_locally`]; the address picked by
    /// [`ProxyServer::target_address`]); otherwise the proxy is given the
    /// host name. An IP literal host is always sent as an address.
    ///
    /// [`ProxyError::BadTarget`] when the target cannot be named to the
    /// proxy: a host name that this proxy does not resolve and no address
    /// for it (the client found none it could use), a SOCKS host name
    /// longer than 255 bytes, an IPv6 address to SOCKS4.
    pub fn new(proxy: &ProxyServer, host: &str, port: u16, resolved: Option<IpAddr>) -> Result<Self, ProxyError> {
        let target = match (parse_ip(host), resolved) {
            (Some(ip), _) | (None, Some(ip)) => Target::Ip(ip, port),
            // Never the name instead: this proxy expects an address, and may not resolve names at all.
            (None, None) if proxy.resolves_locally(host) => {
                let family = if matches!(proxy.kind, ProxyKind::Socks4 { .. }) { "IPv4 " } else { "" };
                return Err(ProxyError::BadTarget(format!(
                    "{host} resolved to no {family}address, and {} is told an address, not a name",
                    proxy.redacted_text()
                )));
            }
            (None, None) => Target::Name(host.to_owned(), port),
        };
        let inner = match proxy.kind {
            ProxyKind::Http | ProxyKind::Https => {
                Inner::Http(http::HttpConnect::new(&target, proxy.credentials.as_ref()))
            }
            ProxyKind::Socks5 { .. } => Inner::Socks5(socks::Socks5::new(target, proxy.credentials.clone())?),
            ProxyKind::Socks4 { .. } => Inner::Socks4(socks4::Socks4::new(&target, proxy.credentials.as_ref())?),
        };
        Ok(Self { inner })
    }

    /// Appends the bytes to write to the proxy to `out`; returns how many.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        match &mut self.inner {
            Inner::Http(m) => m.poll_transmit(out),
            Inner::Socks5(m) => m.poll_transmit(out),
            Inner::Socks4(m) => m.poll_transmit(out),
        }
    }

    /// The most bytes the next read may take: never past the end of the
    /// proxy's reply for SOCKS, whose lengths are known; up to the head
    /// limit for HTTP. 0 once the tunnel is open or the handshake failed.
    pub fn read_limit(&self) -> usize {
        match &self.inner {
            Inner::Http(m) => m.read_limit(),
            Inner::Socks5(m) => m.read_limit(),
            Inner::Socks4(m) => m.read_limit(),
        }
    }

    /// Bytes read from the proxy. `Ok(true)`: the tunnel is open (write
    /// [`poll_transmit`](Self::poll_transmit)'s output first, if any);
    /// `Ok(false)`: read more (after writing what it gives). An error ends
    /// the handshake for good.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<bool, ProxyError> {
        match &mut self.inner {
            Inner::Http(m) => m.handle_input(data),
            Inner::Socks5(m) => m.handle_input(data),
            Inner::Socks4(m) => m.handle_input(data),
        }
    }

    /// The proxy closed the connection before the tunnel was open.
    pub fn handle_eof(&mut self) -> ProxyError {
        match &mut self.inner {
            Inner::Http(m) => m.handle_eof(),
            Inner::Socks5(m) => m.handle_eof(),
            Inner::Socks4(m) => m.handle_eof(),
        }
    }

    /// Whether the tunnel is open.
    pub fn is_open(&self) -> bool {
        match &self.inner {
            Inner::Http(m) => m.is_open(),
            Inner::Socks5(m) => m.is_open(),
            Inner::Socks4(m) => m.is_open(),
        }
    }
}

#[cfg(test)]
mod tests;
