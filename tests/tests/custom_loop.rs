//! The custom event loop (`std::net`, blocking, no runtime) against a real
//! peer: tokio-tungstenite's server speaking JSON-RPC, which drops the link
//! once; directly, through our minimal HTTP CONNECT proxy, and through
//! pproxy's SOCKS5 with a password, the loop driving the core's proxy machine.

use std::sync::atomic::Ordering;
use std::time::Duration;

use wslink_core::proxy::{ProxyError, ProxyServer};
use wslink_core::{DisconnectReason, SessionEvent};
use wslink_tests::blocking::{drive, drive_resolving, walkthrough};
use wslink_tests::peers::ExchangeServer;
use wslink_tests::python::PythonProxy;
use wslink_tests::tunnels::TunnelProxy;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime")
}

fn walk(server: &ExchangeServer, proxy: Option<&ProxyServer>) {
    let (events, session) = walkthrough(&format!("ws://{}/", server.addr), proxy, || server.drop_all(), false);
    let count = |f: fn(&SessionEvent) -> bool| events.iter().filter(|e| f(e)).count();
    assert_eq!(count(|e| matches!(e, SessionEvent::Connected { .. })), 2, "{events:?}");
    assert_eq!(count(|e| matches!(e, SessionEvent::Subscribed { .. })), 2, "resubscribed after the drop");
    assert_eq!(count(|e| matches!(e, SessionEvent::Disconnected { reason: DisconnectReason::Closed(_) })), 1);
    assert_eq!(count(|e| matches!(e, SessionEvent::Response { .. })), 4, "three before the drop, one after");
    assert!(session.heartbeat_health().last_rtt.is_some(), "pings were answered");
    assert_eq!(&server.methods_on(0)[..2], ["public/auth", "public/subscribe"]);
    assert_eq!(&server.methods_on(1)[..2], ["public/auth", "public/subscribe"]);
}

#[test]
fn a_blocking_loop_connects_subscribes_requests_pings_and_reconnects() {
    let runtime = runtime();
    walk(&runtime.block_on(ExchangeServer::start(true)), None);
}

#[test]
fn a_blocking_loop_reconnects_through_an_http_connect_proxy() {
    let runtime = runtime();
    let server = runtime.block_on(ExchangeServer::start(true));
    let proxy = runtime.block_on(TunnelProxy::start());
    walk(&server, Some(&ProxyServer::parse(&format!("http://{}", proxy.addr)).expect("proxy URL")));
    assert_eq!(proxy.tunnels.load(Ordering::SeqCst), 2, "each connection through its own tunnel");
}

#[test]
fn a_blocking_loop_goes_through_pproxy_socks5_with_a_password_and_reports_a_wrong_one_typed() {
    let runtime = runtime();
    let server = runtime.block_on(ExchangeServer::start(true));
    let proxy = PythonProxy::start(Some(("loop", "l00p-pw")));
    walk(&server, Some(&ProxyServer::parse(&format!("socks5://loop:l00p-pw@{}", proxy.addr)).expect("proxy URL")));
    let wrong = ProxyServer::parse(&format!("socks5h://loop:nope@{}", proxy.addr)).expect("proxy URL");
    let now = std::time::Instant::now();
    let rng = Box::new(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(17));
    let mut session = wslink_core::Session::builder(&format!("ws://{}/", server.addr))
        .expect("valid URL")
        .build(rng, now)
        .expect("valid config");
    session.connect(now).expect("idle session");
    let events = drive(&mut session, Some(&wrong), Duration::from_secs(15), |_, event| {
        matches!(event, Some(SessionEvent::Disconnected { .. }))
    });
    let refused = events.iter().find_map(|e| match e {
        SessionEvent::Disconnected { reason: DisconnectReason::Proxy(error) } => Some(error),
        _ => None,
    });
    assert!(matches!(refused, Some(ProxyError::AuthRequired(_))), "{events:?}");
}

/// The loop picks the address to name a `socks4://` or `socks5://` proxy
/// with the core's `ProxyServer::target_address`, as the adapters do: the
/// IPv4 address behind an IPv6 one for SOCKS4, and a typed `BadTarget`
/// when a name resolves to nothing (never the name sent instead).
#[test]
fn a_blocking_loop_names_the_proxy_the_address_the_core_picks() {
    let runtime = runtime();
    let server = runtime.block_on(ExchangeServer::start(true));
    let proxy = PythonProxy::start(None);
    let url = format!("ws://feed.test:{}/", server.addr.port());
    let first_outcome = |proxy_url: String, addrs: Vec<std::net::IpAddr>| {
        let proxy = ProxyServer::parse(&proxy_url).expect("proxy URL");
        let resolve = move |host: &str, port: u16| -> std::io::Result<Vec<std::net::SocketAddr>> {
            Ok(match host.parse::<std::net::IpAddr>() {
                Ok(ip) => vec![(ip, port).into()],
                Err(_) => addrs.iter().map(|&ip| (ip, port).into()).collect(),
            })
        };
        let now = std::time::Instant::now();
        let rng = Box::new(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(18));
        let mut session =
            wslink_core::Session::builder(&url).expect("valid URL").build(rng, now).expect("valid config");
        session.connect(now).expect("idle session");
        let events = drive_resolving(&mut session, Some(&proxy), &resolve, Duration::from_secs(15), |_, event| {
            matches!(event, Some(SessionEvent::Connected { .. } | SessionEvent::Disconnected { .. }))
        });
        events.into_iter().find(|e| matches!(e, SessionEvent::Connected { .. } | SessionEvent::Disconnected { .. }))
    };
    let (v6, v4) = (std::net::Ipv6Addr::LOCALHOST.into(), std::net::Ipv4Addr::LOCALHOST.into());
    let socks4 = first_outcome(format!("socks4://{}", proxy.addr), vec![v6, v4]);
    assert!(matches!(socks4, Some(SessionEvent::Connected { .. })), "{socks4:?}");
    let socks5 = first_outcome(format!("socks5://{}", proxy.addr), vec![]);
    let bad_target = Some(SessionEvent::Disconnected {
        reason: DisconnectReason::Proxy(ProxyError::BadTarget(format!(
            "feed.test resolved to no address, and socks5://{} is told an address, not a name",
            proxy.addr
        ))),
    });
    assert_eq!(socks5, bad_target);
}
