//! Connections through proxies, on both runtimes, over real loopback
//! sockets: `pproxy` (Python, a proxy nobody here wrote) speaking HTTP
//! CONNECT and SOCKS5 with a user name and password, for `ws://` and
//! `wss://` (TLS inside the tunnel), SOCKS4, and HTTP CONNECT over TLS to
//! the proxy (`https://`, so TLS inside TLS for `wss://`); a wrong password; `NO_PROXY`; hostile
//! proxies of our own, each a typed error within the connect timeout; and a
//! reconnect through the proxy after it cut the tunnel. A tracing
//! subscriber catches every span and event of this binary, and no password
//! may appear in them.
//!
//! Every wait is on an event, bounded by `WAIT`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use wslink_adapter::{Builder, Client, Error, Events, Proxy, ProxyError, Runtime, TlsOptions};
use wslink_core::proxy::BadProxyReply;
use wslink_core::{CloseCode, DisconnectReason, Message, SessionEvent, TlsFailure};
use wslink_tests::certs::TestCerts;
use wslink_tests::peers::echo_server;
use wslink_tests::python::PythonProxy;
use wslink_tests::scenario::{builder, run, until, WAIT};
use wslink_tests::scenarios;
use wslink_tests::tunnels::{hostile_proxy, Hostility, TunnelProxy};

scenarios!(
    pproxy_tunnels_ws_and_wss_over_http_connect_with_a_password,
    pproxy_tunnels_ws_and_wss_over_socks5_resolving_remotely_and_locally,
    pproxy_tunnels_ws_over_socks4,
    pproxy_tunnels_ws_and_wss_over_tls_to_an_https_proxy,
    a_wrong_password_is_a_typed_refusal,
    no_proxy_exempts_a_host_from_the_environments_proxy,
    hostile_proxies_are_typed_errors_within_the_connect_timeout,
    a_reconnect_goes_through_the_proxy_again_after_it_cut_the_tunnel,
);

/// pproxy's user; the URLs below spell it percent-encoded (`%75` is `u`).
const USER: &str = "wsuser";
const PASSWORD: &str = "Zq8-s3cret-Xw";
const WRONG: &str = "Zq8-wr0ng-Xw";

/// Sends a text and waits for its echo.
async fn echoes(client: &Client, events: &mut Events, text: &str) {
    client.send_text(text).await.expect("sent");
    let seen = until(events, |e| matches!(e, SessionEvent::Message(Message::Text(t)) if t.as_str() == text)).await;
    assert!(!seen.iter().any(|e| matches!(e, SessionEvent::Disconnected { .. })), "{seen:?}");
}

/// Connects `builder`, checks one echo, closes.
async fn round_trip<R: Runtime>(builder: Builder<R>, what: &str) {
    let (client, mut events) = builder.connect().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    echoes(&client, &mut events, what).await;
    client.close(CloseCode::Normal, "").await.expect("closed");
}

/// The failure of a first attempt, which must be a `Proxy` reason (or the connect timeout).
async fn first_failure<R: Runtime>(builder: Builder<R>) -> DisconnectReason {
    match builder.connect().await {
        Err(Error::Connect(reason)) => reason,
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("connected"),
    }
}

async fn pproxy_tunnels_ws_and_wss_over_http_connect_with_a_password<R: Runtime>() {
    capture_tracing();
    let proxy = PythonProxy::start(Some((USER, PASSWORD)));
    let via = Proxy::http(&format!("http://ws%75ser:{PASSWORD}@{}", proxy.addr)).expect("proxy URL");
    let plain = echo_server(None).await;
    round_trip(builder::<R>(&format!("ws://{plain}/")).proxy(via.clone()), "ws through CONNECT").await;
    let certs = TestCerts::generate();
    let secure = echo_server(Some(certs.server_config())).await;
    let wss = builder::<R>(&format!("wss://{secure}/")).tls(TlsOptions::with_roots(certs.roots()));
    round_trip(wss.proxy(via), "wss through CONNECT").await;
    assert_no_secret_was_traced(&proxy);
}

async fn pproxy_tunnels_ws_and_wss_over_socks5_resolving_remotely_and_locally<R: Runtime>() {
    capture_tracing();
    let proxy = PythonProxy::start(Some((USER, PASSWORD)));
    let plain = echo_server(None).await;
    let certs = TestCerts::for_names(&["feed.test"]);
    let secure = echo_server(Some(certs.server_config())).await;
    // socks5h://: the proxy is told the address as the URL has it.
    let remote = Proxy::socks5(&format!("socks5h://{USER}:{PASSWORD}@{}", proxy.addr)).expect("proxy URL");
    round_trip(builder::<R>(&format!("ws://{plain}/")).proxy(remote), "ws through SOCKS5").await;
    // socks5://: the client resolves `feed.test` itself (our resolver) and names the proxy its address.
    let local = Proxy::socks5(&format!("socks5://{USER}:{PASSWORD}@{}", proxy.addr)).expect("proxy URL");
    let wss = builder::<R>(&format!("wss://feed.test:{}/", secure.port()))
        .tls(TlsOptions::with_roots(certs.roots()))
        .resolver(|_host, port| Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]));
    round_trip(wss.proxy(local), "wss through SOCKS5, resolved locally").await;
    assert_no_secret_was_traced(&proxy);
}

async fn pproxy_tunnels_ws_over_socks4<R: Runtime>() {
    // pproxy speaks SOCKS4 but not 4a: the client names an address (its own resolver's, for a name).
    let proxy = PythonProxy::start(None);
    let echo = echo_server(None).await;
    let via = Proxy::url(&format!("socks4://{}", proxy.addr)).expect("proxy URL");
    round_trip(builder::<R>(&format!("ws://{echo}/")).proxy(via.clone()), "ws through SOCKS4").await;
    let named = |ips: &[IpAddr]| builder::<R>(&format!("ws://feed.test:{}/", echo.port())).resolver(names_to(ips));
    let (v6, v4) = (IpAddr::from(Ipv6Addr::LOCALHOST), IpAddr::from(Ipv4Addr::LOCALHOST));
    // The name resolves to IPv6 first: SOCKS4 is given the IPv4 address behind it.
    round_trip(named(&[v6, v4]).proxy(via.clone()), "ws through SOCKS4, resolved locally").await;
    // No IPv4 address at all (and, for socks5://, none at all): a typed BadTarget, never the name sent.
    let reason = first_failure(named(&[v6]).proxy(via)).await;
    assert!(matches!(reason, DisconnectReason::Proxy(ProxyError::BadTarget(_))), "{reason:?}");
    let socks5 = Proxy::url(&format!("socks5://{}", proxy.addr)).expect("proxy URL");
    let reason = first_failure(named(&[]).proxy(socks5)).await;
    assert!(matches!(reason, DisconnectReason::Proxy(ProxyError::BadTarget(_))), "{reason:?}");
}

/// A resolver: an IP address is itself (the proxy's), every name resolves to `ips`, in order.
fn names_to(ips: &[IpAddr]) -> impl Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync + 'static {
    let ips = ips.to_vec();
    move |host: &str, port: u16| {
        Ok(match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::from((ip, port))],
            Err(_) => ips.iter().map(|&ip| SocketAddr::from((ip, port))).collect(),
        })
    }
}

async fn pproxy_tunnels_ws_and_wss_over_tls_to_an_https_proxy<R: Runtime>() {
    capture_tracing();
    // One CA for the proxy and the server: the client's roots check both.
    let certs = TestCerts::generate();
    let (plain, secure) = (echo_server(None).await, echo_server(Some(certs.server_config())).await);
    let (cert, key) = certs.write_pem(&format!("https-proxy-{}", plain.port()));
    let proxy = PythonProxy::start_tls(Some((USER, PASSWORD)), &cert, &key);
    let via = Proxy::http(&format!("https://{USER}:{PASSWORD}@{}", proxy.addr)).expect("proxy URL");
    let trusting = |url: String| builder::<R>(&url).tls(TlsOptions::with_roots(certs.roots()));
    round_trip(trusting(format!("ws://{plain}/")).proxy(via.clone()), "ws inside TLS to the proxy").await;
    round_trip(trusting(format!("wss://{secure}/")).proxy(via.clone()), "wss: TLS inside TLS").await;
    // A proxy certificate the client's roots do not know: the proxy's TLS failure, typed.
    let strangers = builder::<R>(&format!("ws://{plain}/")).tls(TlsOptions::with_roots(TestCerts::generate().roots()));
    let reason = first_failure(strangers.proxy(via)).await;
    assert_eq!(reason, DisconnectReason::Proxy(ProxyError::Tls(TlsFailure::UnknownIssuer)));
    assert_no_secret_was_traced(&proxy);
}

async fn a_wrong_password_is_a_typed_refusal<R: Runtime>() {
    capture_tracing();
    let proxy = PythonProxy::start(Some((USER, PASSWORD)));
    let url = format!("ws://{}/", echo_server(None).await);
    let http = Proxy::http(&format!("http://{USER}:{WRONG}@{}", proxy.addr)).expect("proxy URL");
    match first_failure(builder::<R>(&url).proxy(http)).await {
        DisconnectReason::Proxy(ProxyError::AuthRequired(refusal)) => {
            assert_eq!(refusal.status, 407);
            assert!(refusal.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("proxy-authenticate")));
        }
        other => panic!("{other:?}"),
    }
    let none = Proxy::http(&proxy.addr.to_string()).expect("proxy URL");
    let reason = first_failure(builder::<R>(&url).proxy(none)).await;
    assert!(matches!(reason, DisconnectReason::Proxy(ProxyError::AuthRequired(_))), "{reason:?}");
    // pproxy closes the connection after SOCKS5 credentials it refuses, without a status.
    let socks = Proxy::socks5(&format!("socks5h://{USER}:{WRONG}@{}", proxy.addr)).expect("proxy URL");
    let reason = first_failure(builder::<R>(&url).proxy(socks)).await;
    assert!(matches!(reason, DisconnectReason::Proxy(ProxyError::AuthRequired(_))), "{reason:?}");
    assert!(!reason.to_string().contains(WRONG), "{reason}");
    assert_no_secret_was_traced(&proxy);
}

async fn no_proxy_exempts_a_host_from_the_environments_proxy<R: Runtime>() {
    capture_tracing();
    let echo = echo_server(None).await;
    let url = format!("ws://echo.test:{}/", echo.port());
    let resolver = |_host: &str, port| Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]);
    let dead = closed_port();
    // Exempt: straight to the server, the dead proxy never asked.
    let env = [("HTTP_PROXY", format!("http://{dead}")), ("NO_PROXY", "localhost, .test".to_owned())];
    let exempt = from_env(env);
    round_trip(builder::<R>(&url).resolver(resolver).proxy(exempt), "NO_PROXY").await;
    // Not exempt: through the dead proxy, which cannot be reached.
    let env = [("http_proxy", format!("http://{dead}")), ("no_proxy", "other.test,10.0.0.0/8".to_owned())];
    let proxied = from_env(env);
    match first_failure(builder::<R>(&url).resolver(resolver).proxy(proxied)).await {
        DisconnectReason::Proxy(ProxyError::Unreachable { kind, message }) => {
            assert_eq!(kind, std::io::ErrorKind::ConnectionRefused);
            assert!(message.contains(&dead.to_string()), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // ALL_PROXY to a live proxy, for a name the client resolves (socks5://).
    let proxy = PythonProxy::start(Some((USER, PASSWORD)));
    let env = [("ALL_PROXY", format!("socks5://{USER}:{PASSWORD}@{}", proxy.addr))];
    let all = from_env(env);
    round_trip(builder::<R>(&url).resolver(resolver).proxy(all), "ALL_PROXY").await;
    assert_no_secret_was_traced(&proxy);
}

async fn hostile_proxies_are_typed_errors_within_the_connect_timeout<R: Runtime>() {
    let url = format!("ws://{}/", echo_server(None).await);
    let reply_407 = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n";
    let socks_v4 = [4, 0, 0, 1, 127, 0, 0, 1, 0, 80].to_vec();
    let bad_atyp = [5, 0, 0, 9, 0, 0, 0, 0].to_vec();
    let cases: Vec<(&str, Hostility, Expect)> = vec![
        ("http", Hostility::Silent, |r| *r == DisconnectReason::ConnectTimeout),
        ("socks5h", Hostility::Silent, |r| *r == DisconnectReason::ConnectTimeout),
        ("http", Hostility::Answer(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()), |r| {
            matches!(r, DisconnectReason::Proxy(ProxyError::BadReply(BadProxyReply::Malformed(_))))
        }),
        (
            "http",
            Hostility::Answer(reply_407.to_vec()),
            |r| matches!(r, DisconnectReason::Proxy(ProxyError::AuthRequired(a)) if a.status == 407),
        ),
        (
            "http",
            Hostility::Answer(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n".to_vec()),
            |r| matches!(r, DisconnectReason::Proxy(ProxyError::Refused(a)) if a.status == 502),
        ),
        ("http", Hostility::EndlessHead, |r| {
            matches!(r, DisconnectReason::Proxy(ProxyError::BadReply(BadProxyReply::TooLarge { .. })))
        }),
        ("http", Hostility::AnswerAndClose(b"HTTP/1.1 200 Connection est".to_vec()), |r| {
            *r == DisconnectReason::Proxy(ProxyError::BadReply(BadProxyReply::Closed))
        }),
        ("socks5h", Hostility::Answer(vec![4, 0]), |r| {
            *r == DisconnectReason::Proxy(ProxyError::BadReply(BadProxyReply::Version(4)))
        }),
        ("socks5h", Hostility::Answer(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()), |r| {
            *r == DisconnectReason::Proxy(ProxyError::BadReply(BadProxyReply::Version(b'H')))
        }),
        ("socks5h", Hostility::SocksConnectReply(socks_v4), |r| {
            *r == DisconnectReason::Proxy(ProxyError::BadReply(BadProxyReply::Version(4)))
        }),
        ("socks5h", Hostility::SocksConnectReply(bad_atyp), |r| {
            *r == DisconnectReason::Proxy(ProxyError::BadReply(BadProxyReply::AddressType(9)))
        }),
        ("socks5h", Hostility::AnswerAndClose(vec![5]), |r| {
            *r == DisconnectReason::Proxy(ProxyError::BadReply(BadProxyReply::Closed))
        }),
        ("https", Hostility::Answer(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()), |r| {
            *r == DisconnectReason::Proxy(ProxyError::Tls(TlsFailure::NotTls))
        }),
        ("socks4a", Hostility::Answer(vec![4, 90, 0, 0, 0, 0, 0, 0]), |r| {
            *r == DisconnectReason::Proxy(ProxyError::BadReply(BadProxyReply::Version(4)))
        }),
        (
            "socks4a",
            Hostility::Answer(vec![0, 91, 0, 0, 0, 0, 0, 0]),
            |r| matches!(r, DisconnectReason::Proxy(ProxyError::Refused(a)) if a.status == 91),
        ),
    ];
    for (scheme, hostility, want) in cases {
        let what = format!("{scheme} {hostility:?}");
        // A silent proxy must end in the connect timeout, kept short; the others
        // in their typed error, with room for a loaded machine (CI's two cores).
        let timeout = match hostility {
            Hostility::Silent => Duration::from_millis(500),
            _ => Duration::from_secs(5),
        };
        let proxy = Proxy::url(&format!("{scheme}://{}", hostile_proxy(hostility).await)).expect("proxy URL");
        let b = builder::<R>(&url).proxy(proxy).config(|c| c.connect_timeout = timeout);
        let reason = first_failure(b).await;
        assert!(want(&reason), "{what}: {reason:?}");
    }
}

async fn a_reconnect_goes_through_the_proxy_again_after_it_cut_the_tunnel<R: Runtime>() {
    let proxy = TunnelProxy::start().await;
    let url = format!("ws://{}/", echo_server(None).await);
    let via = Proxy::http(&proxy.addr.to_string()).expect("proxy URL");
    let (client, mut events) = builder::<R>(&url).proxy(via).connect().await.expect("connected");
    echoes(&client, &mut events, "before the cut").await;
    proxy.cut();
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    assert!(seen.iter().any(|e| matches!(e, SessionEvent::Disconnected { .. })), "{seen:?}");
    assert_eq!(proxy.tunnels.load(Ordering::SeqCst), 2, "the reconnect opened a second tunnel");
    echoes(&client, &mut events, "after the cut").await;
    client.close(CloseCode::Normal, "").await.expect("closed");
}

/// The builder's default (no `proxy` call) reads the process's environment:
/// a child process with `HTTP_PROXY` (and then `NO_PROXY`) in its
/// environment connects through our proxy (and then directly); a variable
/// with no usable proxy URL is skipped with a warning naming it, and stops
/// nothing.
#[test]
fn the_process_environment_is_the_builders_default() {
    run(async {
        let proxy = TunnelProxy::start().await;
        let url = format!("ws://echo.test:{}/", echo_server(None).await.port());
        let http_proxy = ("HTTP_PROXY", format!("http://{}", proxy.addr));
        assert_eq!(child(&url, std::slice::from_ref(&http_proxy)).await, "connected");
        assert_eq!(proxy.tunnels.load(Ordering::SeqCst), 1, "through the proxy");
        assert_eq!(child(&url, &[http_proxy.clone(), ("NO_PROXY", "echo.test".into())]).await, "connected");
        assert_eq!(proxy.tunnels.load(Ordering::SeqCst), 1, "NO_PROXY: directly");
        // Unusable: skipped with a warning (the child prints them) that names the variable only.
        let broken = child(&url, &[("HTTP_PROXY", "ftp://user:hunter2@proxy".into())]).await;
        assert!(broken.ends_with("connected") && broken.contains("HTTP_PROXY"), "{broken}");
        assert!(!broken.contains("hunter2"), "{broken}");
        assert_eq!(proxy.tunnels.load(Ordering::SeqCst), 1, "skipped: directly");
        // One that does not apply stops nothing: ALL_PROXY skipped, HTTP_PROXY used.
        let other = child(&url, &[http_proxy.clone(), ("ALL_PROXY", "ftp://user:hunter2@proxy".into())]).await;
        assert!(other.ends_with("connected") && other.contains("ALL_PROXY"), "{other}");
        assert_eq!(proxy.tunnels.load(Ordering::SeqCst), 2, "through the proxy");
    });
}

/// Runs `env_proxy_child` on `url` with `env` (and none of the proxy
/// variables of this process); returns what it printed. Bounded: a child
/// that has not ended within `WAIT` is killed, by its own handle, and the
/// test fails. Its output is a few lines, far below a pipe's buffer, so it
/// is read once the child has ended.
async fn child(url: &str, env: &[(&str, String)]) -> String {
    use std::io::Read;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_env_proxy_child"));
    for name in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY", "REQUEST_METHOD"] {
        command.env_remove(name);
    }
    command.arg(url).envs(env.iter().map(|(k, v)| (k, v))).stdout(std::process::Stdio::piped());
    let mut child = command.spawn().expect("the child started");
    let deadline = tokio::time::Instant::now() + WAIT;
    while child.try_wait().expect("the child's status").is_none() {
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child did not end within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut out = String::new();
    child.stdout.take().expect("piped stdout").read_to_string(&mut out).expect("the child's output");
    out.trim().to_owned()
}

/// The environment's setting from `vars`, which must all be usable.
fn from_env<K: AsRef<str>, V: AsRef<str>>(vars: impl IntoIterator<Item = (K, V)>) -> Proxy {
    let (proxy, skipped) = Proxy::from_env_vars(vars);
    assert!(skipped.is_empty(), "{skipped:?}");
    proxy
}

/// What a hostile case must end in.
type Expect = fn(&DisconnectReason) -> bool;

/// A loopback port that was free a moment ago and has no listener now.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
    listener.local_addr().expect("bound address")
}

// ----- every span and event of this binary, as text -----

static TRACED: Mutex<String> = Mutex::new(String::new());

/// Installs (once) a subscriber that appends every field of every span and
/// event, at every level, to `TRACED`.
fn capture_tracing() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(Catcher).expect("the only subscriber of this binary");
    });
}

/// Fails if a password (or its Basic encoding) reached a span or an event;
/// checks that this scenario's proxy did appear, redacted. `TRACED` is
/// shared by the scenarios running at once: the proxy's address (its port
/// is this scenario's own) tells its lines from theirs.
fn assert_no_secret_was_traced(proxy: &PythonProxy) {
    let traced = TRACED.lock().expect("traced").clone();
    let marker = format!("<credentials>@{}", proxy.addr);
    assert!(traced.contains(&marker), "the proxy is named, redacted, in the attempt's log: {marker}");
    for secret in [PASSWORD, WRONG] {
        let basic = data_encoding::BASE64.encode(format!("{USER}:{secret}").as_bytes());
        assert!(!traced.contains(secret) && !traced.contains(&basic), "a password was traced");
    }
}

struct Catcher;

struct Append;

impl tracing::field::Visit for Append {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let mut traced = TRACED.lock().expect("traced");
        traced.push_str(&format!("{}={value:?}\n", field.name()));
    }
}

impl tracing::Subscriber for Catcher {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        span.record(&mut Append);
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Append);
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        event.record(&mut Append);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
