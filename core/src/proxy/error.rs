//! Why a proxy could not be used, typed, so that a reconnect policy can tell
//! a proxy that refused the client from one that is down or broken.
//!
//! Nothing here carries the proxy's credentials: neither the errors nor
//! their `Display` ever hold the user name or the password.

use std::fmt;

/// The proxy protocol that produced a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "record", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ProxyProtocol {
    /// HTTP `CONNECT` (RFC 9110 §9.3.6).
    Http,
    /// SOCKS5 (RFC 1928), with username/password authentication (RFC 1929).
    Socks5,
    /// SOCKS4 and SOCKS4a.
    Socks4,
}

/// A proxy's "no": what it said instead of opening the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "record", derive(serde::Serialize, serde::Deserialize))]
pub struct ProxyRefusal {
    /// Which protocol answered.
    pub protocol: ProxyProtocol,
    /// The HTTP status (407, 403, 502 ...); for SOCKS5 the reply code of
    /// RFC 1928 §6 (1 to 8), the status byte of RFC 1929's authentication
    /// reply, or 255 when the proxy accepted none of the offered methods or
    /// closed the connection after reading the credentials; for SOCKS4 the
    /// reply code (91 to 93).
    pub status: u16,
    /// The HTTP reason phrase, or the meaning of the SOCKS code.
    pub reason: String,
    /// The HTTP reply's headers (`Proxy-Authenticate` ...), values decoded
    /// lossily as UTF-8; empty for SOCKS5.
    pub headers: Vec<(String, String)>,
}

impl fmt::Display for ProxyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol {
            ProxyProtocol::Http => write!(f, "{} {}", self.status, self.reason),
            ProxyProtocol::Socks5 => write!(f, "SOCKS5 code {}: {}", self.status, self.reason),
            ProxyProtocol::Socks4 => write!(f, "SOCKS4 code {}: {}", self.status, self.reason),
        }
    }
}

/// A proxy reply that breaks its protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "record", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum BadProxyReply {
    /// The reply is not HTTP/1.x as `httparse` reads it.
    #[error("the reply is not valid HTTP: {0}")]
    Malformed(String),
    /// The reply's head did not end within the limit
    /// ([`MAX_REPLY_HEAD`](crate::proxy::MAX_REPLY_HEAD)).
    #[error("the reply's head exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The proxy closed the connection before its reply was complete.
    #[error("the proxy closed the connection in the middle of its reply")]
    Closed,
    /// A SOCKS reply whose version byte is not 5 (or neither 1 nor 5 in
    /// the authentication reply: RFC 1929 says 1, some servers answer 5;
    /// or, for SOCKS4, not 0).
    #[error("the SOCKS reply has version {0}")]
    Version(u8),
    /// A SOCKS5 reply with an address type other than 1, 3 or 4.
    #[error("the SOCKS5 reply has address type {0}")]
    AddressType(u8),
    /// The SOCKS5 proxy chose an authentication method the client did not offer.
    #[error("the SOCKS5 proxy chose method {0}, which was not offered")]
    Method(u8),
    /// Bytes followed the proxy's reply before the client had spoken: no
    /// WebSocket or TLS server speaks first, so they are the proxy's.
    #[error("the proxy sent bytes after its reply")]
    DataAfterReply,
}

/// Why the connection through a proxy failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "record", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy could not be reached (its name did not resolve, nothing
    /// listens, the network is unreachable), or the link to it failed before
    /// its reply.
    #[error("the proxy could not be reached ({kind}): {message}")]
    Unreachable {
        /// The I/O error kind the adapter saw.
        #[cfg_attr(feature = "record", serde(with = "crate::io_kind::serde_name"))]
        kind: std::io::ErrorKind,
        /// The adapter's description.
        message: String,
    },
    /// The proxy wants credentials, or refused those given: HTTP 407, or a
    /// SOCKS5 proxy that accepted no offered method or refused the
    /// username and password.
    #[error("the proxy requires authentication ({0})")]
    AuthRequired(Box<ProxyRefusal>),
    /// The proxy refused to open the tunnel: an HTTP status other than 2xx
    /// and 407, or a SOCKS5 reply code other than 0 (not allowed, host
    /// unreachable, connection refused ...).
    #[error("the proxy refused the tunnel ({0})")]
    Refused(Box<ProxyRefusal>),
    /// The proxy's reply breaks its protocol.
    #[error("the proxy's reply is invalid: {0}")]
    BadReply(BadProxyReply),
    /// The TLS handshake with an `https://` proxy failed (its certificate
    /// refused, or no TLS at all).
    #[error("the TLS handshake with the proxy failed: {0}")]
    Tls(crate::TlsFailure),
    /// The target cannot be named in the proxy's protocol (a SOCKS host
    /// name longer than 255 bytes, an IPv6 address to SOCKS4), or the
    /// client resolved a name for `socks5://` or `socks4://` to no address
    /// it can give the proxy (none at all; no IPv4 one for SOCKS4).
    #[error("the target cannot be named to the proxy: {0}")]
    BadTarget(String),
}

/// A proxy URL or setting that cannot be used. Its messages never quote
/// the URL, which may carry a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyUrlError {
    /// The scheme is none of `http`, `https`, `socks5`, `socks5h`,
    /// `socks4`, `socks4a`, `socks` (or not the one the constructor asked for).
    /// Only a valid RFC 3986 scheme is quoted (letters, digits, `+`, `-`,
    /// `.`: no `:` or `@`, so never a password); any other text before
    /// `://` is [`Invalid`](Self::Invalid).
    #[error("unsupported proxy scheme {0:?}: use http://, https://, socks5://, socks5h://, socks4:// or socks4a://")]
    UnsupportedScheme(String),
    /// The text before `://` is not a scheme, or the host and port are
    /// not a valid URI authority.
    #[error("the proxy URL's scheme, host or port is invalid")]
    Invalid,
    /// The URL names no host.
    #[error("the proxy URL has no host")]
    MissingHost,
    /// The port is 0.
    #[error("the proxy URL's port is invalid")]
    InvalidPort,
    /// A proxy URL is a host and port: no path, query or fragment.
    #[error("the proxy URL must not have a path, query or fragment")]
    Path,
    /// The user name or password is not valid UTF-8 once percent-decoded.
    #[error("the proxy URL's credentials are not UTF-8 once percent-decoded")]
    CredentialsNotUtf8,
    /// SOCKS5 (RFC 1929) carries a user name of 1 to 255 bytes and a password of at most 255.
    #[error("SOCKS5 credentials must be 1 to 255 bytes each")]
    CredentialsLength,
    /// `HTTP_PROXY` (upper case) is not read in a CGI program
    /// (`REQUEST_METHOD` is set): there a request's `Proxy:` header sets it
    /// ("httpoxy", CVE-2016-5385). `http_proxy` cannot be set that way.
    #[error("REQUEST_METHOD is set (a CGI program, where a request's Proxy header sets HTTP_PROXY); use http_proxy")]
    Cgi,
    /// An environment variable that [`Proxy::from_env_vars`](crate::proxy::Proxy::from_env_vars)
    /// skipped, as if it were unset.
    #[error("the environment variable {variable} was skipped: {error}")]
    Env {
        /// The variable's name, as it was found.
        variable: String,
        /// Why it was skipped (what is wrong with its value).
        error: Box<ProxyUrlError>,
    },
}
