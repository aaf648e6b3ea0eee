//! `ws://` and `wss://` URLs: what the transport connects to and what the
//! request line and `Host` header say.
//!
//! Parsing is the `http` crate's (`http::Uri`); this module only applies the
//! WebSocket rules of RFC 6455 §3 on top: scheme `ws`/`wss`, default ports 80
//! and 443, no fragment, a path of `/` when none is given.

use crate::error::UrlError;

/// A parsed WebSocket URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    secure: bool,
    host: String,
    port: u16,
    explicit_port: bool,
    resource: String,
}

impl WsUrl {
    /// Parses a `ws://` or `wss://` URL.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        if text.contains('#') {
            return Err(UrlError::Fragment);
        }
        let uri: http::Uri = text.parse().map_err(|e: http::uri::InvalidUri| UrlError::Invalid(e.to_string()))?;
        let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
        let secure = match scheme.as_str() {
            "ws" => false,
            "wss" => true,
            _ => return Err(UrlError::UnsupportedScheme(scheme)),
        };
        let authority = uri.authority().ok_or(UrlError::MissingHost)?;
        if authority.as_str().contains('@') {
            return Err(UrlError::UserInfo);
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let default_port = if secure { 443 } else { 80 };
        // `http` drops a port it cannot read as u16, so read it from the text.
        let port = match authority.as_str().get(host.len()..).and_then(|r| r.strip_prefix(':')) {
            None | Some("") => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(UrlError::InvalidPort(p.to_owned())),
            },
        };
        let resource = match uri.path_and_query() {
            Some(pq) if pq.as_str().starts_with('/') => pq.as_str().to_owned(),
            Some(pq) => format!("/{}", pq.as_str()),
            None => "/".to_owned(),
        };
        Ok(Self { secure, host: host.to_ascii_lowercase(), port, explicit_port: port != default_port, resource })
    }

    /// Whether the transport must be TLS (`wss`).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The host to resolve and to name in TLS SNI. IPv6 literals keep their brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The host without IPv6 brackets, as a resolver or `IpAddr::from_str` wants it.
    pub fn host_unbracketed(&self) -> &str {
        self.host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(&self.host)
    }

    /// The TCP port, defaulted from the scheme when the URL gives none.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path and query for the request line; `/` when the URL has no path.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// This URL with its query, which may carry a token, replaced by `<redacted>`.
    pub(crate) fn without_query(&self) -> WsUrl {
        let mut copy = self.clone();
        if let Some(at) = copy.resource.find('?') {
            copy.resource.truncate(at);
            copy.resource.push_str("?<redacted>");
        }
        copy
    }

    /// The URL as text for logs, traces and recordings: its query, which
    /// may carry a token, replaced by `<redacted>`. It holds no credentials:
    /// a URL with user information (`user:password@`) never parses.
    pub fn redacted_text(&self) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.host_header(), self.without_query().resource)
    }

    /// The `Host` header value: RFC 6455 §4.1 omits the port when it is the scheme's default.
    pub fn host_header(&self) -> String {
        if self.explicit_port {
            format!("{}:{}", self.host, self.port)
        } else {
            self.host.clone()
        }
    }
}

impl std::str::FromStr for WsUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_explicit_ports() {
        let u = WsUrl::parse("ws://example.com").unwrap();
        assert_eq!((u.is_secure(), u.port(), u.resource()), (false, 80, "/"));
        assert_eq!(u.host_header(), "example.com");
        let u = WsUrl::parse("WSS://Example.COM/feed?x=1&y=2").unwrap();
        assert_eq!((u.is_secure(), u.port(), u.resource()), (true, 443, "/feed?x=1&y=2"));
        assert_eq!(u.host(), "example.com");
        let u = WsUrl::parse("wss://example.com:443/").unwrap();
        assert_eq!(u.host_header(), "example.com");
        let u = WsUrl::parse("ws://example.com:443/").unwrap();
        assert_eq!(u.host_header(), "example.com:443");
        let u = WsUrl::parse("ws://127.0.0.1:9001?q").unwrap();
        assert_eq!((u.port(), u.resource(), u.host_header().as_str()), (9001, "/?q", "127.0.0.1:9001"));
    }

    #[test]
    fn redacted_text_hides_the_query_and_keeps_the_rest() {
        let u = WsUrl::parse("wss://Feed.test:9443/ws/v2?token=secret&x=1").unwrap();
        assert_eq!(u.redacted_text(), "wss://feed.test:9443/ws/v2?<redacted>");
        assert_eq!(WsUrl::parse("ws://feed.test/").unwrap().redacted_text(), "ws://feed.test/");
        assert_eq!(WsUrl::parse("wss://[::1]:443").unwrap().redacted_text(), "wss://[::1]/");
        // Credentials never get as far as a URL that could be printed.
        assert_eq!(WsUrl::parse("wss://user:pw@feed.test/").unwrap_err(), UrlError::UserInfo);
        assert_eq!(WsUrl::parse("wss://token@feed.test/").unwrap_err(), UrlError::UserInfo);
    }

    #[test]
    fn ipv6_literals_keep_brackets_in_host_header() {
        let u = WsUrl::parse("ws://[::1]:8080/a").unwrap();
        assert_eq!(u.host(), "[::1]");
        assert_eq!(u.host_unbracketed(), "::1");
        assert_eq!(u.host_header(), "[::1]:8080");
        let u = WsUrl::parse("wss://[2001:db8::1]/").unwrap();
        assert_eq!((u.port(), u.host_header().as_str()), (443, "[2001:db8::1]"));
    }

    #[test]
    fn hostile_and_broken_urls_are_typed_errors() {
        let cases: &[(&str, UrlError)] = &[
            ("http://example.com/", UrlError::UnsupportedScheme("http".into())),
            ("ws://example.com/#frag", UrlError::Fragment),
            ("ws://user:pw@example.com/", UrlError::UserInfo),
            ("ws://example.com:0/", UrlError::InvalidPort("0".into())),
            ("ws://host:99999/", UrlError::InvalidPort("99999".into())),
            ("/just/a/path", UrlError::UnsupportedScheme(String::new())),
        ];
        for (text, want) in cases {
            assert_eq!(&WsUrl::parse(text).unwrap_err(), want, "{text}");
        }
        for text in ["", "ws://", "ws://exa mple.com/", "ws://example.com/a b", "ws://h/\r\nX: y"] {
            assert!(matches!(WsUrl::parse(text), Err(UrlError::Invalid(_))), "{text:?}");
        }
    }
}
