//! Transport options (`Builder::socket`) on both runtimes, over loopback:
//! every option read back with getsockopt from the socket the connection
//! runs over (through the `Probe` runtime, which wraps each runtime), on the
//! first connection and a reconnect, and on the link to a proxy; the bound
//! local address is also what the server sees as its peer; the defaults
//! are TCP_NODELAY on and keepalive off, as before the options came.
//! `Connected` carries the upgrade's status. A bound address of one family
//! tries only the host's addresses of that family (and none is a typed
//! error), an address the OS will not bind is a typed connect error, and
//! a value out of range is refused when the client is built.
//!
//! Every wait is on an event, bounded by `WAIT`; every peer is on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use wslink_adapter::{Client, Error, Events, Proxy, Runtime, SocketOptions, TcpKeepalive};
use wslink_core::{CloseCode, ConfigError, DisconnectReason, Message, SessionEvent};
use wslink_tests::peers::{echo_server, echo_server_seeing_peers, unanswering_address};
use wslink_tests::probe::{buffer_kept, sockets_to, Probe};
use wslink_tests::scenario::{builder, run, until};
use wslink_tests::scenarios;
use wslink_tests::tunnels::TunnelProxy;

scenarios!(
    every_option_is_on_the_socket_the_connection_runs_over_and_a_reconnects,
    the_defaults_are_nodelay_on_and_keepalive_off,
    the_options_apply_to_the_link_to_a_proxy,
    a_bound_address_tries_only_the_hosts_addresses_of_its_family,
    an_address_the_os_will_not_bind_is_a_typed_connect_error,
    out_of_range_options_are_refused_when_the_client_is_built,
);

/// A loopback address to connect from that the OS would not choose by
/// itself: Linux answers on all of 127/8; elsewhere 127.0.0.1 (the bound
/// address is then checked, not told apart from the OS's choice).
const LOCAL: IpAddr = match cfg!(target_os = "linux") {
    true => IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    false => IpAddr::V4(Ipv4Addr::LOCALHOST),
};

/// Buffer sizes unlike the OS's defaults (Linux: 16 KiB to send, 128 KiB to receive).
const SEND_BUFFER: usize = 24 * 1024;
const RECV_BUFFER: usize = 48 * 1024;

/// Every option away from its default.
fn options() -> SocketOptions {
    SocketOptions::new()
        .nodelay(false)
        .keepalive(TcpKeepalive::new(Duration::from_secs(41)).interval(Duration::from_secs(7)).retries(5))
        .send_buffer(SEND_BUFFER)
        .recv_buffer(RECV_BUFFER)
        .bind(SocketAddr::new(LOCAL, 0))
}

/// Sends a text and waits for its echo.
async fn echoes(client: &Client, events: &mut Events, text: &str) {
    client.send_text(text).await.expect("sent");
    until(events, |e| matches!(e, SessionEvent::Message(Message::Text(t)) if t.as_str() == text)).await;
}

/// Waits for the next `Connected` and checks the upgrade's status.
async fn connected(events: &mut Events) {
    let seen = until(events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    let Some(SessionEvent::Connected { response, .. }) = seen.last() else { unreachable!() };
    assert_eq!(response.status, 101, "{response:?}");
}

/// Checks that a socket carried every option of [`options`], as the OS reports them.
fn carries_the_options(socket: &wslink_tests::probe::SocketSeen) {
    assert_eq!(socket.local.ip(), LOCAL, "{socket:?}");
    assert!(!socket.nodelay, "{socket:?}");
    assert!(socket.keepalive, "{socket:?}");
    if let Some(timing) = socket.keepalive_timing {
        assert_eq!(timing, (Duration::from_secs(41), Duration::from_secs(7), 5), "{socket:?}");
    }
    assert_eq!(socket.send_buffer, buffer_kept(SEND_BUFFER, true), "{socket:?}");
    assert_eq!(socket.recv_buffer, buffer_kept(RECV_BUFFER, false), "{socket:?}");
}

async fn every_option_is_on_the_socket_the_connection_runs_over_and_a_reconnects<R: Runtime>() {
    let (server, peers) = echo_server_seeing_peers().await;
    let (client, mut events) =
        builder::<Probe<R>>(&format!("ws://{server}/")).socket(options()).connect().await.expect("connected");
    connected(&mut events).await;
    echoes(&client, &mut events, "first").await;
    client.reconnect().await.expect("reconnect");
    connected(&mut events).await;
    echoes(&client, &mut events, "second").await;
    let sockets = sockets_to(server);
    assert_eq!(sockets.len(), 2, "{sockets:?}");
    for socket in &sockets {
        carries_the_options(socket);
    }
    // The probed sockets are the ones the server accepted: the same local addresses, in order.
    let seen_by_server = peers.lock().expect("not poisoned").clone();
    assert_eq!(sockets.iter().map(|s| s.local).collect::<Vec<_>>(), seen_by_server);
    client.close(CloseCode::Normal, "").await.expect("closed");
}

async fn the_defaults_are_nodelay_on_and_keepalive_off<R: Runtime>() {
    let server = echo_server(None).await;
    let (client, mut events) = builder::<Probe<R>>(&format!("ws://{server}/")).connect().await.expect("connected");
    connected(&mut events).await;
    let sockets = sockets_to(server);
    let [socket] = sockets.as_slice() else { panic!("{sockets:?}") };
    assert!(socket.nodelay && !socket.keepalive, "{socket:?}");
    assert_eq!(socket.local.ip(), Ipv4Addr::LOCALHOST, "the OS's choice: {socket:?}");
    client.close(CloseCode::Normal, "").await.expect("closed");
}

async fn the_options_apply_to_the_link_to_a_proxy<R: Runtime>() {
    let proxy = TunnelProxy::start().await;
    let server = echo_server(None).await;
    let via = Proxy::http(&proxy.addr.to_string()).expect("proxy URL");
    let (client, mut events) = builder::<Probe<R>>(&format!("ws://{server}/"))
        .proxy(via)
        .socket(options())
        .connect()
        .await
        .expect("connected through the proxy");
    connected(&mut events).await;
    echoes(&client, &mut events, "tunnelled").await;
    let sockets = sockets_to(proxy.addr);
    let [socket] = sockets.as_slice() else { panic!("{sockets:?}") };
    carries_the_options(socket);
    assert_eq!(sockets_to(server), vec![], "no socket of the client's to the server itself");
    client.close(CloseCode::Normal, "").await.expect("closed");
}

/// The connect failure of a first attempt.
fn connect_failure(outcome: Result<(Client, Events), Error>) -> (std::io::ErrorKind, String) {
    match outcome {
        Err(Error::Connect(DisconnectReason::ConnectFailed { kind, message })) => (kind, message),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("connected"),
    }
}

async fn a_bound_address_tries_only_the_hosts_addresses_of_its_family<R: Runtime>() {
    let (dead_v6, _held) = unanswering_address(true).await;
    let good = echo_server(None).await;
    // The IPv6 address first, and the next attempt 30 s after it: the
    // client connects over IPv4 at once (a socket bound to an IPv4 address
    // cannot reach an IPv6 one, so that address is not tried at all).
    let (client, mut events) = builder::<R>("ws://feed.test/")
        .resolver(move |_, _| Ok(vec![dead_v6, good]))
        .connection_attempt_delay(Duration::from_secs(30))
        .config(|c| c.connect_timeout = Duration::from_secs(5))
        .socket(SocketOptions::new().bind(SocketAddr::new(LOCAL, 0)))
        .connect()
        .await
        .expect("connected over IPv4 at once");
    echoes(&client, &mut events, "v4").await;
    client.close(CloseCode::Normal, "").await.expect("closed");
    // A host with no address of the bound family: typed, without trying any.
    let v4_bound = builder::<R>("ws://feed.test/")
        .resolver(move |_, _| Ok(vec![dead_v6]))
        .socket(SocketOptions::new().bind(SocketAddr::new(LOCAL, 0)));
    let (kind, message) = connect_failure(v4_bound.connect().await);
    assert_eq!(kind, std::io::ErrorKind::AddrNotAvailable, "{message}");
    assert!(message.contains("feed.test has no IPv4 address"), "{message}");
    let v6_bound = builder::<R>("ws://feed.test/")
        .resolver(move |_, _| Ok(vec![good]))
        .socket(SocketOptions::new().bind(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0)));
    let (kind, message) = connect_failure(v6_bound.connect().await);
    assert_eq!(kind, std::io::ErrorKind::AddrNotAvailable, "{message}");
    assert!(message.contains("feed.test has no IPv6 address"), "{message}");
}

async fn an_address_the_os_will_not_bind_is_a_typed_connect_error<R: Runtime>() {
    let server = echo_server(None).await;
    // TEST-NET-3 (RFC 5737): never one of this machine's addresses.
    let (kind, message) = connect_failure(
        builder::<R>(&format!("ws://{server}/"))
            .socket(SocketOptions::new().bind("203.0.113.7:0".parse().expect("an address")))
            .connect()
            .await,
    );
    assert_eq!(kind, std::io::ErrorKind::AddrNotAvailable, "{message}");
    assert!(message.contains("binding to 203.0.113.7:0"), "{message}");
}

async fn out_of_range_options_are_refused_when_the_client_is_built<R: Runtime>() {
    let server = echo_server(None).await;
    let url = format!("ws://{server}/");
    let cases = [
        (SocketOptions::new().send_buffer(0), "socket.send_buffer"),
        (SocketOptions::new().recv_buffer(0), "socket.recv_buffer"),
        (SocketOptions::new().keepalive(TcpKeepalive::new(Duration::ZERO)), "socket.keepalive.time"),
        (
            SocketOptions::new().keepalive(TcpKeepalive::new(Duration::from_secs(1)).retries(0)),
            "socket.keepalive.retries",
        ),
    ];
    for (options, named) in cases {
        for outcome in [
            builder::<R>(&url).socket(options).connect().await.map(|_| ()),
            builder::<R>(&url).socket(options).start().map(|_| ()),
        ] {
            match outcome {
                Err(Error::Config(ConfigError::InvalidValue { field, .. })) => assert_eq!(field, named),
                other => panic!("{named}: {other:?}"),
            }
        }
    }
}
