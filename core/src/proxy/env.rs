//! The conventional proxy environment variables, as curl and reqwest read
//! them, applied to values the caller passes in (reading the environment is
//! the caller's I/O; this is the pure rule).
//!
//! - `wss://` URLs: `https_proxy`, then `HTTPS_PROXY`; `ws://` URLs:
//!   `http_proxy`, then `HTTP_PROXY`; either falls back to `all_proxy`,
//!   then `ALL_PROXY`. An empty value counts as unset, and so does one
//!   that is not a usable proxy URL: it is skipped and reported, so that a
//!   variable meant for other programs cannot stop every client.
//! - `no_proxy`, then `NO_PROXY`: see [`NoProxy`].
//! - In a CGI program (`REQUEST_METHOD` is set) `HTTP_PROXY` is skipped:
//!   there a request's `Proxy:` header becomes the variable `HTTP_PROXY`
//!   ("httpoxy", CVE-2016-5385), as Go's `httpproxy` and reqwest have it.
//!   `http_proxy` cannot be set that way and is still read.

use std::net::IpAddr;

use super::{parse_ip, Proxy, ProxyServer, ProxyUrlError, Rule};

/// A `NO_PROXY` list: hosts that are reached directly.
///
/// Entries are separated by commas (and spaces): `*` exempts every host; a
/// domain (`example.com`, `.example.com` or `*.example.com`) exempts itself
/// and every name under it; an IP address exempts itself; a CIDR block
/// (`10.0.0.0/8`, `fd00::/8`) every address in it. A `:port` after a name,
/// an IPv4 address or a bracketed IPv6 one (`[::1]:8080`), brackets around
/// an IPv6 address, and a name's trailing dot (`example.com.`) are ignored.
/// Names match without regard to case; a target named by IP matches only IP
/// and CIDR entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NoProxy {
    all: bool,
    domains: Vec<String>,
    nets: Vec<(IpAddr, u8)>,
}

impl NoProxy {
    /// Reads a list; entries that mean nothing (an empty one, a bad CIDR) are skipped.
    pub fn parse(list: &str) -> Self {
        let mut no_proxy = Self::default();
        for entry in list.split([',', ' ', '\t']).map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                no_proxy.all = true;
            } else if let Some((ip, bits)) = entry.split_once('/') {
                if let (Some(ip), Ok(bits)) = (parse_ip(ip), bits.parse::<u8>()) {
                    if bits <= if ip.is_ipv4() { 32 } else { 128 } {
                        no_proxy.nets.push((ip, bits));
                    }
                }
            } else if let Some(ip) = parse_ip(entry).or_else(|| parse_ip(strip_port(entry))) {
                no_proxy.nets.push((ip, if ip.is_ipv4() { 32 } else { 128 }));
            } else {
                let domain = strip_port(entry).trim_start_matches('*').trim_start_matches('.').trim_end_matches('.');
                let domain = domain.to_ascii_lowercase();
                if !domain.is_empty() {
                    no_proxy.domains.push(domain);
                }
            }
        }
        no_proxy
    }

    /// Whether `host` (a name, or an IP address with or without brackets) is exempt.
    pub fn matches(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        if let Some(ip) = parse_ip(host) {
            return self.nets.iter().any(|&(net, bits)| in_net(ip, net, bits));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter().any(|d| {
            host == *d
                || (host.len() > d.len() && host.ends_with(d.as_str()) && host[..host.len() - d.len()].ends_with('.'))
        })
    }
}

/// `host:port` to `host`, `[v6]:port` and `[v6]` to `v6`; an IPv6 address
/// without brackets is left alone.
fn strip_port(entry: &str) -> &str {
    let digits = |port: &str| port.bytes().all(|b| b.is_ascii_digit());
    if let Some((v6, rest)) = entry.strip_prefix('[').and_then(|e| e.split_once(']')) {
        if rest.is_empty() || rest.strip_prefix(':').is_some_and(digits) {
            return v6;
        }
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => entry,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        (IpAddr::V6(a), IpAddr::V4(b)) => match a.to_ipv4_mapped() {
            Some(a) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
            None => return false,
        },
        (IpAddr::V4(_), IpAddr::V6(_)) => return false,
    };
    let shift = width - u32::from(bits);
    shift >= width || (ip >> shift) == (net >> shift)
}

/// Whether the host is this machine's loopback: `localhost` (and names
/// under it) or a loopback address.
pub(super) fn is_loopback(host: &str) -> bool {
    match parse_ip(host) {
        Some(ip) => {
            ip.is_loopback() || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))
        }
        None => {
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            host == "localhost" || host.ends_with(".localhost")
        }
    }
}

impl Proxy {
    /// The setting the conventional environment variables make, from the
    /// variables given (`std::env::vars()`, or a test's own): see the
    /// module's rules. Variables of other names are ignored.
    ///
    /// A variable whose value is not a usable proxy URL is skipped, as if
    /// unset (the next in line applies), and returned in the list beside
    /// the setting as a [`ProxyUrlError::Env`] that names the variable,
    /// never its value (which may hold a password), for the caller to log:
    /// a variable set for other programs (GNOME's `socks://`, curl's
    /// schemes we do not speak) must not stop every client.
    ///
    /// ```
    /// use wslink_core::{proxy::Proxy, WsUrl};
    ///
    /// let env = [
    ///     ("HTTPS_PROXY", "http://proxy.internal:3128"),
    ///     ("NO_PROXY", ".corp.example,10.0.0.0/8"),
    ///     ("HTTP_PROXY", "ftp://user:secret@elsewhere"),
    /// ];
    /// let (proxy, skipped) = Proxy::from_env_vars(env);
    /// let via = |url: &str| proxy.for_url(&WsUrl::parse(url).unwrap()).map(|p| p.redacted_text());
    /// assert_eq!(via("wss://stream.example.com/ws").as_deref(), Some("http://proxy.internal:3128"));
    /// assert_eq!(via("wss://feed.corp.example/ws"), None); // NO_PROXY
    /// assert_eq!(via("wss://10.1.2.3/ws"), None); // NO_PROXY's CIDR
    /// assert_eq!(via("ws://stream.example.com/ws"), None); // HTTP_PROXY skipped, no ALL_PROXY
    /// assert_eq!(skipped.len(), 1);
    /// assert!(skipped[0].to_string().contains("HTTP_PROXY") && !skipped[0].to_string().contains("secret"));
    /// ```
    pub fn from_env_vars<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> (Self, Vec<ProxyUrlError>) {
        const NAMES: [&str; 8] = [
            "https_proxy",
            "HTTPS_PROXY",
            "http_proxy",
            "HTTP_PROXY",
            "all_proxy",
            "ALL_PROXY",
            "no_proxy",
            "NO_PROXY",
        ];
        let mut found: [Option<String>; 8] = Default::default();
        let mut cgi = false;
        for (name, value) in vars {
            cgi |= name.as_ref() == "REQUEST_METHOD";
            if let Some(i) = NAMES.iter().position(|n| *n == name.as_ref()) {
                let value = value.as_ref().trim();
                if !value.is_empty() {
                    found[i] = Some(value.to_owned());
                }
            }
        }
        let mut skipped = Vec::new();
        if cgi && found[3].take().is_some() {
            skipped.push(ProxyUrlError::Env { variable: NAMES[3].to_owned(), error: Box::new(ProxyUrlError::Cgi) });
        }
        // The first usable proxy of the pair `a` (lower case), `a + 1` (upper case).
        let mut first_usable = |a: usize| {
            for i in [a, a + 1] {
                let Some(value) = found[i].as_deref() else { continue };
                match ProxyServer::parse(value) {
                    Ok(server) => return Some(server),
                    Err(e) => skipped.push(ProxyUrlError::Env { variable: NAMES[i].to_owned(), error: Box::new(e) }),
                }
            }
            None
        };
        let all = first_usable(4);
        let https = first_usable(0).or_else(|| all.clone());
        let http = first_usable(2).or(all);
        let no_proxy = found[6].as_deref().or(found[7].as_deref()).map(NoProxy::parse).unwrap_or_default();
        let rule = if http.is_none() && https.is_none() { Rule::None } else { Rule::Env { http, https } };
        (Self { rule, no_proxy }, skipped)
    }
}
