//! The proxy machines and rules against scripted replies, hostile ones included.

use super::*;

fn server(url: &str) -> ProxyServer {
    ProxyServer::parse(url).unwrap()
}

fn start(url: &str, host: &str, port: u16, ip: Option<IpAddr>) -> (ProxyHandshake, Vec<u8>) {
    let mut h = ProxyHandshake::new(&server(url), host, port, ip).unwrap();
    let mut out = Vec::new();
    h.poll_transmit(&mut out);
    (h, out)
}

fn sent(h: &mut ProxyHandshake) -> Vec<u8> {
    let mut out = Vec::new();
    h.poll_transmit(&mut out);
    out
}

#[test]
fn proxy_urls_parse_with_defaults_and_decoded_credentials() {
    let p = server("http://us%40er:p%3Ass%20w@Proxy.Example:3128");
    assert_eq!((p.kind(), p.host(), p.port()), (ProxyKind::Http, "proxy.example", 3128));
    assert_eq!(p.credentials, Some(Credentials::new("us@er", "p:ss w")));
    let p = server("proxy.example");
    assert_eq!((p.kind(), p.port(), p.has_credentials()), (ProxyKind::Http, 80, false));
    let p = server("socks5://[::1]/");
    assert_eq!((p.kind(), p.host(), p.port()), (ProxyKind::Socks5 { remote_dns: false }, "::1", 1080));
    assert_eq!(p.redacted_text(), "socks5://[::1]:1080");
    assert_eq!(server("SOCKS5H://h:1").kind(), ProxyKind::Socks5 { remote_dns: true });
    // GNOME's `all_proxy=socks://host:port/`: SOCKS5, the proxy resolving, as GLib reads it.
    let p = server("socks://proxy.example:1081/");
    assert_eq!(
        (p.kind(), p.port(), p.redacted_text()),
        (ProxyKind::Socks5 { remote_dns: true }, 1081, "socks5h://proxy.example:1081".into())
    );
    assert_eq!(Proxy::socks5("socks://h").unwrap(), Proxy::server(server("socks5h://h:1080")));
    let p = server("https://proxy.example");
    assert_eq!((p.kind(), p.port(), p.uses_tls()), (ProxyKind::Https, 443, true));
    assert!(!server("http://proxy.example").uses_tls());
    assert!(Proxy::http("https://proxy.example").is_ok());
    assert_eq!(server("http://u:@h").credentials, Some(Credentials::new("u", "")));
}

#[test]
fn unusable_proxy_urls_are_typed_errors_that_never_quote_the_url() {
    let cases = [
        ("quic://h:1", ProxyUrlError::UnsupportedScheme("quic".into())),
        ("ftp://u:secret@h", ProxyUrlError::UnsupportedScheme("ftp".into())),
        ("http://u:secret@", ProxyUrlError::MissingHost),
        ("http://u:secret@h:0", ProxyUrlError::InvalidPort),
        ("http://u:secret@h:99999", ProxyUrlError::InvalidPort),
        ("http://u:secret@h:1/path", ProxyUrlError::Path),
        ("http://u:secret@h:1?q", ProxyUrlError::Path),
        ("http://u:secret@h a:1", ProxyUrlError::Invalid),
        // No scheme before `://`, but a user name and password: not quoted.
        ("u:secret@h://x", ProxyUrlError::Invalid),
        ("http//u:secret@h://x", ProxyUrlError::Invalid),
        ("1http://u:secret@h", ProxyUrlError::Invalid),
        ("soCKS+v.6-x://u:secret@h", ProxyUrlError::UnsupportedScheme("socks+v.6-x".into())),
        ("http://u:%ff%fe@h", ProxyUrlError::CredentialsNotUtf8),
        ("socks5://:secret@h", ProxyUrlError::CredentialsLength),
    ];
    for (url, want) in cases {
        let got = ProxyServer::parse(url).unwrap_err();
        assert_eq!(got, want, "{url}");
        assert!(!got.to_string().contains("secret"), "{got}");
    }
    let long = format!("socks5://u:{}@h", "x".repeat(256));
    assert_eq!(ProxyServer::parse(&long).unwrap_err(), ProxyUrlError::CredentialsLength);
    // Set afterwards, they are checked alike: never sent empty or cut short.
    let x256 = "x".repeat(256);
    for (user, password) in [("", "pw"), (x256.as_str(), "pw"), ("u", x256.as_str())] {
        let set = server("socks5h://h").with_credentials(Credentials::new(user, password));
        assert_eq!(set.unwrap_err(), ProxyUrlError::CredentialsLength, "{} {}", user.len(), password.len());
    }
    let set = server("socks5h://h").with_credentials(Credentials::new("x".repeat(255), "")).unwrap();
    let mut h = ProxyHandshake::new(&set, "h", 80, None).unwrap();
    let _ = sent(&mut h);
    h.handle_input(&[5, 2]).unwrap();
    assert_eq!(sent(&mut h), [&[1, 255][..], "x".repeat(255).as_bytes(), &[0]].concat());
    // HTTP Basic has no such limit.
    assert!(server("http://h").with_credentials(Credentials::new("", x256.as_str())).is_ok());
    assert!(Proxy::http("socks5://h").is_err());
    assert!(Proxy::socks5("http://h").is_err());
    assert_eq!(Proxy::socks5("h:1").unwrap(), Proxy::server(server("socks5h://h:1")));
}

#[test]
fn credentials_appear_in_no_debug_or_display() {
    let p = server("http://alice:hunter2@proxy:3128");
    let proxy = Proxy::server(p.clone());
    for text in [format!("{p:?}"), format!("{proxy:?}"), p.redacted_text(), format!("{:?}", p.credentials)] {
        assert!(!text.contains("hunter2"), "{text}");
    }
    assert_eq!(p.redacted_text(), "http://<credentials>@proxy:3128");
    // Nor the machines, whose pending output holds them (as bytes, which `Debug` would list).
    let h = ProxyHandshake::new(&p, "example.com", 443, None).unwrap();
    assert_eq!(format!("{h:?}"), "ProxyHandshake { inner: Http(HttpConnect { state: Reading, reply_bytes: 0 }) }");
    let mut h = ProxyHandshake::new(&server("socks5h://alice:hunter2@p"), "example.com", 443, None).unwrap();
    let _ = sent(&mut h);
    h.handle_input(&[5, 2]).unwrap();
    assert_eq!(format!("{h:?}"), "ProxyHandshake { inner: Socks5(Socks5 { state: Auth, reply_bytes: 0 }) }");
    let (_, skipped) = Proxy::from_env_vars([("HTTPS_PROXY", "http://alice:hunter2@h:0")]);
    let env = &skipped[0];
    assert!(!env.to_string().contains("hunter2") && env.to_string().contains("HTTPS_PROXY"), "{env}");
}

#[test]
fn http_connect_sends_basic_auth_and_opens_on_2xx_in_pieces() {
    let (mut h, out) = start("http://alice:s3cret@p:8080", "stream.example.com", 443, None);
    let want = format!(
        "CONNECT stream.example.com:443 HTTP/1.1\r\nHost: stream.example.com:443\r\nProxy-Authorization: Basic {}\r\n\r\n",
        data_encoding::BASE64.encode(b"alice:s3cret")
    );
    assert_eq!(String::from_utf8(out).unwrap(), want);
    let reply = b"HTTP/1.0 200 Connection established\r\nProxy-Agent: x\r\n\r\n";
    for (i, b) in reply.iter().enumerate() {
        assert!(h.read_limit() > 0);
        assert_eq!(h.handle_input(&[*b]), Ok(i == reply.len() - 1));
    }
    assert!(h.is_open());
    assert_eq!(h.read_limit(), 0);
    let (_, out) = start("http://p", "::1", 9001, None);
    assert!(out.starts_with(b"CONNECT [::1]:9001 HTTP/1.1\r\nHost: [::1]:9001\r\n\r\n"), "{out:?}");
}

#[test]
fn http_refusals_keep_status_and_headers() {
    let (mut h, _) = start("http://p", "h", 80, None);
    let reply = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n";
    let Err(ProxyError::AuthRequired(r)) = h.handle_input(reply) else { panic!() };
    assert_eq!((r.protocol, r.status, r.reason.as_str()), (ProxyProtocol::Http, 407, "Proxy Authentication Required"));
    assert_eq!(r.headers, vec![("Proxy-Authenticate".to_owned(), "Basic realm=\"x\"".to_owned())]);
    assert_eq!(h.read_limit(), 0);
    let (mut h, _) = start("http://p", "h", 80, None);
    let Err(ProxyError::Refused(r)) = h.handle_input(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno!") else {
        panic!()
    };
    assert_eq!((r.status, r.to_string()), (403, "403 Forbidden".to_owned()));
}

#[test]
fn interim_1xx_replies_are_skipped_within_the_one_head_limit() {
    let (mut h, _) = start("http://p", "h", 80, None);
    assert_eq!(h.handle_input(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), Ok(true));
    // In pieces, with headers, and two of them.
    let (mut h, _) = start("http://p", "h", 80, None);
    assert_eq!(h.handle_input(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 102 Pro"), Ok(false));
    assert_eq!(h.handle_input(b"cessing\r\n\r\n"), Ok(false));
    assert!(h.read_limit() > 0 && !h.is_open());
    assert_eq!(h.handle_input(b"HTTP/1.1 200 Connection established\r\n\r\n"), Ok(true));
    // The final reply decides: a refusal, or data after a 2xx.
    let (mut h, _) = start("http://p", "h", 80, None);
    let reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 407 Proxy Authentication Required\r\n\r\n";
    assert!(matches!(h.handle_input(reply), Err(ProxyError::AuthRequired(r)) if r.status == 407));
    let (mut h, _) = start("http://p", "h", 80, None);
    let reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nearly";
    assert_eq!(h.handle_input(reply), Err(ProxyError::BadReply(BadProxyReply::DataAfterReply)));
    // 101 switches to another protocol: no tunnel.
    let (mut h, _) = start("http://p", "h", 80, None);
    let switched = h.handle_input(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
    assert!(matches!(&switched, Err(ProxyError::Refused(r)) if r.status == 101), "{switched:?}");
    // Endless interim replies: the limit counts them all.
    let endless = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_REPLY_HEAD / 10);
    let (mut h, _) = start("http://p", "h", 80, None);
    let mut result = Ok(false);
    for chunk in endless.chunks(700) {
        result = h.handle_input(&chunk[..chunk.len().min(h.read_limit())]);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(ProxyError::BadReply(BadProxyReply::TooLarge { limit: MAX_REPLY_HEAD })));
    let (mut h, _) = start("http://p", "h", 80, None);
    assert_eq!(h.handle_input(&endless), Err(ProxyError::BadReply(BadProxyReply::TooLarge { limit: MAX_REPLY_HEAD })));
}

#[test]
fn a_head_sent_a_byte_at_a_time_is_parsed_once_per_line_not_once_per_byte() {
    let parses = |h: &ProxyHandshake| match &h.inner {
        Inner::Http(m) => m.parses(),
        other => panic!("{other:?}"),
    };
    let (mut h, _) = start("http://p", "h", 80, None);
    let head = [b"HTTP/1.1 200 OK\r\nX-Slow: ".as_slice(), &[b'a'; 8000], b"\r\nVia: p\r\n\r\n"].concat();
    let (last, bytes) = head.split_last().unwrap();
    for b in bytes {
        assert_eq!(h.handle_input(std::slice::from_ref(b)), Ok(false));
    }
    assert_eq!(h.handle_input(&[*last]), Ok(true));
    // The status line's first bytes, then one per line end (4 of them).
    assert!(parses(&h) <= super::http::STATUS_PREFIX + 4, "{} parses for {} bytes", parses(&h), head.len());
    // Not HTTP: refused at its first bytes, before any line ends.
    let (mut h, _) = start("http://p", "h", 80, None);
    assert!(matches!(h.handle_input(b"SSH-"), Err(ProxyError::BadReply(BadProxyReply::Malformed(_)))));
    // A bare-LF head (which httparse accepts) still completes.
    let (mut h, _) = start("http://p", "h", 80, None);
    assert_eq!(h.handle_input(b"HTTP/1.0 200 OK\n"), Ok(false));
    assert_eq!(h.handle_input(b"\n"), Ok(true));
}

#[test]
fn hostile_http_replies_are_typed_errors() {
    let bad = |input: &[u8]| {
        let (mut h, _) = start("http://p", "h", 80, None);
        h.handle_input(input)
    };
    assert!(matches!(bad(b"SSH-2.0-OpenSSH\r\n\r\n"), Err(ProxyError::BadReply(BadProxyReply::Malformed(_)))));
    assert!(matches!(bad(b"\x05\x00"), Err(ProxyError::BadReply(BadProxyReply::Malformed(_)))));
    assert_eq!(bad(b"HTTP/1.1 200 OK\r\n\r\nearly"), Err(ProxyError::BadReply(BadProxyReply::DataAfterReply)));
    let huge = [b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &vec![b'a'; MAX_REPLY_HEAD]].concat();
    assert_eq!(bad(&huge), Err(ProxyError::BadReply(BadProxyReply::TooLarge { limit: MAX_REPLY_HEAD })));
    // Fed in reads the machine allows: the limit still holds, and nothing grows past it.
    let (mut h, _) = start("http://p", "h", 80, None);
    let mut result = Ok(false);
    for chunk in huge.chunks(1000) {
        result = h.handle_input(&chunk[..chunk.len().min(h.read_limit())]);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(ProxyError::BadReply(BadProxyReply::TooLarge { limit: MAX_REPLY_HEAD })));
    let many: String = (0..100).map(|i| format!("H{i}: v\r\n")).collect();
    assert!(matches!(
        bad(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes()),
        Err(ProxyError::BadReply(BadProxyReply::Malformed(_)))
    ));
    let (mut h, _) = start("http://p", "h", 80, None);
    assert_eq!(h.handle_input(b"HTTP/1.1 200"), Ok(false));
    assert_eq!(h.handle_eof(), ProxyError::BadReply(BadProxyReply::Closed));
    assert_eq!(h.read_limit(), 0);
}

#[test]
fn socks5_no_auth_with_a_name_an_ipv4_and_an_ipv6_target() {
    let (mut h, out) = start("socks5h://p", "example.com", 443, None);
    assert_eq!(out, [5, 1, 0]);
    assert_eq!(h.read_limit(), 2);
    assert_eq!(h.handle_input(&[5, 0]), Ok(false));
    assert_eq!(sent(&mut h), [&[5, 1, 0, 3, 11][..], b"example.com", &[1, 187]].concat());
    // The reply names an IPv6 address: 22 bytes, read in the pieces the machine asks for.
    let reply = [&[5, 0, 0, 4][..], &[0; 16], &[0, 80]].concat();
    assert_eq!(h.read_limit(), 5);
    assert_eq!(h.handle_input(&reply[..5]), Ok(false));
    assert_eq!(h.read_limit(), 17);
    assert_eq!(h.handle_input(&reply[5..]), Ok(true));
    assert_eq!(h.read_limit(), 0);

    let v4 = "10.1.2.3".parse().unwrap();
    let (mut h, _) = start("socks5://p", "feed.test", 80, Some(v4));
    h.handle_input(&[5, 0]).unwrap();
    assert_eq!(sent(&mut h), [5, 1, 0, 1, 10, 1, 2, 3, 0, 80]);
    // A reply naming a host: its length byte tells the rest.
    assert_eq!(h.handle_input(&[5, 0, 0, 3, 3]), Ok(false));
    assert_eq!(h.read_limit(), 5);
    assert_eq!(h.handle_input(b"abc\x00\x50"), Ok(true));

    let (mut h, _) = start("socks5h://p", "[::1]", 80, None);
    h.handle_input(&[5, 0]).unwrap();
    assert_eq!(sent(&mut h)[..4], [5, 1, 0, 4]);
    assert!(server("socks5://p").resolves_locally("example.com"));
    assert!(!server("socks5://p").resolves_locally("127.0.0.1"));
    assert!(!server("socks5h://p").resolves_locally("example.com"));
}

#[test]
fn the_address_named_to_the_proxy_is_chosen_once_and_a_missing_one_is_a_bad_target() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let resolved = [ip("2001:db8::1"), ip("192.0.2.1"), ip("192.0.2.2")];
    // SOCKS4 names IPv4 only: the first IPv4 address, even behind an IPv6 one.
    assert_eq!(server("socks4://p").target_address(resolved), Some(ip("192.0.2.1")));
    assert_eq!(server("socks4://p").target_address([ip("::ffff:192.0.2.9")]), Some(ip("192.0.2.9")));
    assert_eq!(server("socks4://p").target_address([ip("2001:db8::1")]), None);
    // SOCKS5 names either: the resolver's first.
    assert_eq!(server("socks5://p").target_address(resolved), Some(ip("2001:db8::1")));
    assert_eq!(server("socks5://p").target_address([]), None);
    // A host name the proxy does not resolve, with no address: never sent as the name.
    for url in ["socks5://p", "socks4://p"] {
        let refused = ProxyHandshake::new(&server(url), "feed.test", 80, None);
        assert!(matches!(&refused, Err(ProxyError::BadTarget(why)) if why.contains("feed.test")), "{url}: {refused:?}");
    }
    // The proxies that resolve, and IP literals, need none.
    for url in ["socks5h://p", "socks4a://p", "http://p"] {
        assert!(ProxyHandshake::new(&server(url), "feed.test", 80, None).is_ok(), "{url}");
    }
    assert!(ProxyHandshake::new(&server("socks4://p"), "192.0.2.1", 80, None).is_ok());
}

#[test]
fn socks5_user_and_password() {
    let (mut h, out) = start("socks5h://alice:pw@p", "h", 80, None);
    assert_eq!(out, [5, 2, 0, 2]);
    assert_eq!(h.handle_input(&[5, 2]), Ok(false));
    assert_eq!(sent(&mut h), [&[1, 5][..], b"alice", &[2], b"pw"].concat());
    assert_eq!(h.handle_input(&[1, 0]), Ok(false));
    assert_eq!(sent(&mut h)[..4], [5, 1, 0, 3]);
    assert_eq!(h.handle_input(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Ok(true));
    // Refused, or closed after the credentials: both are AuthRequired.
    let (mut h, _) = start("socks5h://alice:pw@p", "h", 80, None);
    h.handle_input(&[5, 2]).unwrap();
    assert!(matches!(h.handle_input(&[1, 1]), Err(ProxyError::AuthRequired(r)) if r.status == 1));
    let (mut h, _) = start("socks5h://alice:pw@p", "h", 80, None);
    h.handle_input(&[5, 2]).unwrap();
    assert!(matches!(h.handle_eof(), ProxyError::AuthRequired(r) if r.status == 255));
    let (mut h, _) = start("socks5h://p", "h", 80, None);
    assert!(matches!(h.handle_input(&[5, 0xff]), Err(ProxyError::AuthRequired(_))));
    // Some servers answer the sub-negotiation with version 5: accepted, as curl does.
    let (mut h, _) = start("socks5h://alice:pw@p", "h", 80, None);
    h.handle_input(&[5, 2]).unwrap();
    let _credentials = sent(&mut h);
    assert_eq!(h.handle_input(&[5, 0]), Ok(false));
    assert_eq!(sent(&mut h)[..4], [5, 1, 0, 3]);
    let (mut h, _) = start("socks5h://alice:pw@p", "h", 80, None);
    h.handle_input(&[5, 2]).unwrap();
    assert!(matches!(h.handle_input(&[5, 1]), Err(ProxyError::AuthRequired(r)) if r.status == 1));
    let (mut h, _) = start("socks5h://alice:pw@p", "h", 80, None);
    h.handle_input(&[5, 2]).unwrap();
    assert_eq!(h.handle_input(&[2, 0]), Err(ProxyError::BadReply(BadProxyReply::Version(2))));
}

#[test]
fn hostile_socks5_replies_are_typed_errors() {
    let after_greeting = |reply: &[u8]| {
        let (mut h, _) = start("socks5h://p", "h", 80, None);
        h.handle_input(reply)
    };
    let bad = |b| Err(ProxyError::BadReply(b));
    assert_eq!(after_greeting(&[4, 0]), bad(BadProxyReply::Version(4)));
    assert_eq!(after_greeting(b"HTTP/1.1 400"), bad(BadProxyReply::Version(b'H')));
    assert_eq!(after_greeting(&[5, 2]), bad(BadProxyReply::Method(2)), "user/password not offered");
    assert_eq!(after_greeting(&[5, 0, 4]), bad(BadProxyReply::Version(4)), "the connect reply in the same read");
    let connect = |reply: &[u8]| {
        let (mut h, _) = start("socks5h://p", "h", 80, None);
        h.handle_input(&[5, 0]).unwrap();
        h.handle_input(reply)
    };
    assert_eq!(connect(&[4, 0, 0, 1]), bad(BadProxyReply::Version(4)));
    assert_eq!(connect(&[5, 0, 0, 9, 0]), bad(BadProxyReply::AddressType(9)));
    assert_eq!(connect(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]), bad(BadProxyReply::DataAfterReply));
    let Err(ProxyError::Refused(r)) = connect(&[5, 5, 0, 1]) else { panic!() };
    assert_eq!((r.status, r.reason.as_str()), (5, "connection refused"));
    let (mut h, _) = start("socks5h://p", "h", 80, None);
    h.handle_input(&[5, 0]).unwrap();
    h.handle_input(&[5, 0, 0]).unwrap();
    assert_eq!(h.handle_eof(), ProxyError::BadReply(BadProxyReply::Closed));
    assert_eq!(h.read_limit(), 0, "after the end (found by the fuzz target)");
    let name = "a".repeat(256);
    assert!(matches!(ProxyHandshake::new(&server("socks5h://p"), &name, 80, None), Err(ProxyError::BadTarget(_))));
}

#[test]
fn no_proxy_matches_suffixes_ips_cidrs_and_star() {
    let n = NoProxy::parse(
        " .corp.example, internal.test:8080,*.wild.test, 10.0.0.0/8,192.168.1.7, [fd00::1], fe80::/10,bad/99",
    );
    for host in ["corp.example", "a.corp.example", "A.B.Corp.Example.", "internal.test", "x.wild.test", "wild.test"] {
        assert!(n.matches(host), "{host}");
    }
    for host in ["xcorp.example", "example", "internal.test.evil", "test", "10.example"] {
        assert!(!n.matches(host), "{host}");
    }
    for ip in ["10.255.0.1", "192.168.1.7", "[fd00::1]", "fd00::1", "fe80::1", "::ffff:10.0.0.1"] {
        assert!(n.matches(ip), "{ip}");
    }
    for ip in ["11.0.0.1", "192.168.1.8", "fd00::2", "::1"] {
        assert!(!n.matches(ip), "{ip}");
    }
    // Bracketed IPv6 with a port, and a name's trailing dot, as the host's is trimmed.
    let n = NoProxy::parse("[::1]:8080, [fd00::2]:443, example.com., .Dot.Test.:8443");
    for host in ["::1", "[::1]", "fd00::2", "example.com", "example.com.", "a.example.com", "x.dot.test"] {
        assert!(n.matches(host), "{host}");
    }
    for host in ["::2", "example.co", "dot.testx"] {
        assert!(!n.matches(host), "{host}");
    }
    assert!(NoProxy::parse("*").matches("anything.example"));
    assert!(NoProxy::parse("0.0.0.0/0").matches("8.8.8.8"));
    assert!(!NoProxy::parse("").matches("a"));
}

#[test]
fn the_environment_picks_a_proxy_per_scheme() {
    let url = |u: &str| WsUrl::parse(u).unwrap();
    let via = |p: &Proxy, u: &str| p.for_url(&url(u)).map(ProxyServer::redacted_text);
    let env = from_env(&[
        ("https_proxy", "http://lower:1"),
        ("HTTPS_PROXY", "http://upper:1"),
        ("HTTP_PROXY", "socks5h://plain:2"),
        ("ALL_PROXY", "socks5://all:3"),
        ("no_proxy", "skip.test"),
        ("PATH", "/usr/bin"),
    ]);
    assert_eq!(via(&env, "wss://a.test/").as_deref(), Some("http://lower:1"));
    assert_eq!(via(&env, "ws://a.test/").as_deref(), Some("socks5h://plain:2"));
    assert_eq!(via(&env, "ws://skip.test/"), None);
    assert_eq!(via(&env, "ws://127.0.0.1:9/"), None, "loopback is direct with the environment's setting");
    assert_eq!(via(&env, "ws://localhost:9/"), None);
    assert_eq!(via(&env, "ws://[::1]:9/"), None);
    let all = from_env(&[("all_proxy", "socks5://all:3"), ("HTTP_PROXY", "")]);
    assert_eq!(via(&all, "wss://a.test/").as_deref(), Some("socks5://all:3"));
    assert_eq!(via(&all, "ws://a.test/").as_deref(), Some("socks5://all:3"));
    let none = from_env(&[("NO_PROXY", "*")]);
    assert_eq!(none, Proxy::none().no_proxy("*"));
    assert_eq!(via(&none, "ws://a.test/"), None);
    assert_eq!(from_env(&[]), Proxy::none());
    let star = from_env(&[("HTTP_PROXY", "p:1"), ("NO_PROXY", "*")]);
    assert_eq!(via(&star, "ws://a.test/"), None);
    // Explicit: loopback goes through it too, unless listed.
    let explicit = Proxy::http("http://p:1").unwrap();
    assert_eq!(via(&explicit, "ws://127.0.0.1:9/").as_deref(), Some("http://p:1"));
    assert_eq!(via(&explicit.no_proxy("127.0.0.0/8"), "ws://127.0.0.1:9/"), None);
}

#[test]
fn in_a_cgi_program_upper_case_http_proxy_is_ignored() {
    let url = WsUrl::parse("ws://a.test/").unwrap();
    // httpoxy: a request's `Proxy: evil:1` header became HTTP_PROXY.
    let (env, skipped) = Proxy::from_env_vars([("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://evil:1")]);
    assert_eq!(env.for_url(&url), None);
    assert_eq!(
        skipped,
        vec![ProxyUrlError::Env { variable: "HTTP_PROXY".into(), error: Box::new(ProxyUrlError::Cgi) }]
    );
    assert!(!skipped[0].to_string().contains("evil"), "{}", skipped[0]);
    // The rest is read: http_proxy (no header can set it), ALL_PROXY, HTTPS_PROXY.
    let (env, _) = Proxy::from_env_vars([
        ("REQUEST_METHOD", ""),
        ("HTTP_PROXY", "http://evil:1"),
        ("ALL_PROXY", "http://all:2"),
        ("HTTPS_PROXY", "http://secure:3"),
    ]);
    assert_eq!(env.for_url(&url).map(ProxyServer::redacted_text).as_deref(), Some("http://all:2"));
    let wss = WsUrl::parse("wss://a.test/").unwrap();
    assert_eq!(env.for_url(&wss).map(ProxyServer::redacted_text).as_deref(), Some("http://secure:3"));
    let lower = from_env(&[("REQUEST_METHOD", "POST"), ("http_proxy", "http://lower:4")]);
    assert_eq!(lower.for_url(&url).map(ProxyServer::redacted_text).as_deref(), Some("http://lower:4"));
    // Not CGI: HTTP_PROXY as ever.
    let plain = from_env(&[("HTTP_PROXY", "http://plain:5")]);
    assert_eq!(plain.for_url(&url).map(ProxyServer::redacted_text).as_deref(), Some("http://plain:5"));
}

/// The environment's setting, which must have skipped no variable.
fn from_env(vars: &[(&str, &str)]) -> Proxy {
    let (proxy, skipped) = Proxy::from_env_vars(vars.iter().copied());
    assert!(skipped.is_empty(), "{vars:?}: {skipped:?}");
    proxy
}

#[test]
fn an_unusable_proxy_variable_is_skipped_and_reported_by_name_only() {
    let url = |u: &str| WsUrl::parse(u).unwrap();
    let via = |p: &Proxy, u: &str| p.for_url(&url(u)).map(ProxyServer::redacted_text);
    let skipped_names = |skipped: &[ProxyUrlError]| -> Vec<String> {
        skipped
            .iter()
            .map(|e| match e {
                ProxyUrlError::Env { variable, .. } => variable.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    // A variable for other programs stops nothing: the next in line applies.
    let (env, skipped) = Proxy::from_env_vars([
        ("ALL_PROXY", "ftp://u:hunter2@p"),
        ("https_proxy", "quic://h:1"),
        ("HTTPS_PROXY", "http://upper:1"),
        ("HTTP_PROXY", "http://u:hunter2@h:0"),
    ]);
    assert_eq!(skipped_names(&skipped), ["ALL_PROXY", "https_proxy", "HTTP_PROXY"]);
    assert_eq!(via(&env, "wss://a.test/").as_deref(), Some("http://upper:1"));
    assert_eq!(via(&env, "ws://a.test/"), None);
    for e in &skipped {
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
    assert!(
        matches!(&skipped[0], ProxyUrlError::Env { error, .. } if **error == ProxyUrlError::UnsupportedScheme("ftp".into()))
    );
    // An unusable lower-case variable falls back to the upper-case one, and ALL_PROXY to none.
    let (env, skipped) = Proxy::from_env_vars([("http_proxy", "http://h:1/path"), ("HTTP_PROXY", "http://upper:2")]);
    assert_eq!(skipped_names(&skipped), ["http_proxy"]);
    assert_eq!(via(&env, "ws://a.test/").as_deref(), Some("http://upper:2"));
    let (env, _) = Proxy::from_env_vars([("all_proxy", "quic://h")]);
    assert_eq!(env, Proxy::none());
    // GNOME's value is usable: SOCKS5 for both schemes.
    let env = from_env(&[("all_proxy", "socks://gnome.test:1080/")]);
    assert_eq!(via(&env, "wss://a.test/").as_deref(), Some("socks5h://gnome.test:1080"));
    // A variable used ahead of an unusable one: the latter is never read.
    assert_eq!(from_env(&[("http_proxy", "p:1"), ("HTTP_PROXY", "quic://h")]), from_env(&[("http_proxy", "p:1")]));
}

#[test]
fn socks4a_sends_the_name_and_socks4_an_address() {
    let (mut h, out) = start("socks4a://alice@p", "example.com", 443, None);
    assert_eq!(out, [&[4, 1, 1, 187, 0, 0, 0, 1][..], b"alice\0example.com\0"].concat());
    assert_eq!(h.read_limit(), 8);
    assert_eq!(h.handle_input(&[0, 90, 0, 0]), Ok(false));
    assert_eq!(h.read_limit(), 4);
    assert_eq!(h.handle_input(&[0, 0, 0, 0]), Ok(true));
    assert_eq!(h.read_limit(), 0);
    let (_, out) = start("socks4://p", "feed.test", 80, Some("10.1.2.3".parse().unwrap()));
    assert_eq!(out, [4, 1, 0, 80, 10, 1, 2, 3, 0]);
    assert!(server("socks4://p").resolves_locally("feed.test"));
    assert!(!server("socks4a://p").resolves_locally("feed.test"));
    assert_eq!(server("socks4a://p").redacted_text(), "socks4a://p:1080");
}

#[test]
fn hostile_socks4_replies_are_typed_errors() {
    let reply = |input: &[u8]| {
        let (mut h, _) = start("socks4a://p", "h", 80, None);
        h.handle_input(input)
    };
    assert_eq!(reply(&[4, 90]), Err(ProxyError::BadReply(BadProxyReply::Version(4))));
    let Err(ProxyError::Refused(r)) = reply(&[0, 91]) else { panic!() };
    assert_eq!(
        (r.protocol, r.status, r.to_string()),
        (ProxyProtocol::Socks4, 91, "SOCKS4 code 91: request rejected or failed".to_owned())
    );
    assert_eq!(reply(&[0, 90, 0, 0, 0, 0, 0, 0, 1]), Err(ProxyError::BadReply(BadProxyReply::DataAfterReply)));
    let (mut h, _) = start("socks4a://p", "h", 80, None);
    assert_eq!(h.handle_input(&[0, 90, 0]), Ok(false));
    assert_eq!(h.handle_eof(), ProxyError::BadReply(BadProxyReply::Closed));
    assert_eq!(h.read_limit(), 0);
    let v6 = ProxyHandshake::new(&server("socks4a://p"), "::1", 80, None);
    assert!(matches!(v6, Err(ProxyError::BadTarget(_))));
}
