//! wslink's core in a loop of one's own: plain `std::net` sockets and a
//! blocking wait, no async runtime at all. The whole adapter is this file.
//!
//! The loop: hand each event to the caller, carry out the session's actions
//! (open a TCP connection, through a proxy's tunnel when given one, write,
//! close), then block reading the socket until the session's next deadline,
//! and fire the deadline. The tunnel is the core's `ProxyHandshake`, the
//! same machine the async adapters drive. (TLS is left out to keep it
//! short; wrap the stream in `rustls::StreamOwned` for `wss`.)

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use wslink_core::proxy::{ProxyError, ProxyHandshake, ProxyServer};
use wslink_core::{Action, HappyEyeballs, Session, SessionEvent, DEFAULT_ATTEMPT_DELAY};

/// Longest a connect may block before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves a host and port to addresses.
pub type Resolve<'a> = &'a dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>>;

/// The system's resolver.
pub fn system_resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok((host, port).to_socket_addrs()?.collect())
}

/// Drives `session` until `on_event` returns true or `limit` has passed;
/// returns every event seen. Every transport goes through `proxy`, if given.
/// `on_event` is called with each event, and with `None` once per turn of
/// the loop; it may give the session commands.
pub fn drive(
    session: &mut Session,
    proxy: Option<&ProxyServer>,
    limit: Duration,
    on_event: impl FnMut(&mut Session, Option<&SessionEvent>) -> bool,
) -> Vec<SessionEvent> {
    drive_resolving(session, proxy, &system_resolve, limit, on_event)
}

/// [`drive`], resolving every host (the proxy's too) with `resolve`.
pub fn drive_resolving(
    session: &mut Session,
    proxy: Option<&ProxyServer>,
    resolve: Resolve<'_>,
    limit: Duration,
    mut on_event: impl FnMut(&mut Session, Option<&SessionEvent>) -> bool,
) -> Vec<SessionEvent> {
    let start = Instant::now();
    let mut stream: Option<TcpStream> = None;
    let mut buf = vec![0u8; 64 << 10];
    let mut seen = Vec::new();
    while start.elapsed() < limit {
        while let Some(event) = session.poll_event() {
            let done = on_event(session, Some(&event));
            seen.push(event);
            if done {
                return seen;
            }
        }
        if on_event(session, None) {
            return seen;
        }
        // After the events, so that commands given in `on_event` go out before we wait.
        while let Some(action) = session.poll_action() {
            match action {
                Action::OpenTransport { host, port, tls } => match open(&host, port, tls, proxy, resolve) {
                    Ok(s) => {
                        stream = Some(s);
                        session.handle_transport_open(Instant::now());
                    }
                    Err(Failed::Proxy(e)) => session.handle_proxy_failure(e, Instant::now()),
                    Err(Failed::Io(e)) => session.handle_transport_error(e.kind(), &e.to_string(), Instant::now()),
                },
                Action::Transmit(bytes) => match stream.as_mut().map(|s| s.write_all(&bytes)) {
                    // Written whole: the session counts it out of what waits.
                    Some(Ok(())) => session.handle_written(bytes.len(), Instant::now()),
                    Some(Err(e)) => session.handle_transport_error(e.kind(), &e.to_string(), Instant::now()),
                    None => {}
                },
                Action::CloseTransport { wait_for_server } => {
                    if let Some(mut s) = stream.take() {
                        if let Some(wait) = wait_for_server.filter(|w| !w.is_zero()) {
                            // The server ends TCP first (RFC 6455 §7.1.1): read to its FIN.
                            let _ = s.set_read_timeout(Some(wait));
                            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                        }
                        let _ = s.shutdown(Shutdown::Both);
                    }
                }
            }
        }
        let now = Instant::now();
        let wait = session
            .poll_timeout()
            .map_or(Duration::from_millis(50), |d| d.saturating_duration_since(now))
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        match stream.as_mut() {
            Some(s) => {
                let _ = s.set_read_timeout(Some(wait));
                match s.read(&mut buf) {
                    Ok(0) => session.handle_eof(Instant::now()),
                    Ok(n) => session.handle_input(&buf[..n], Instant::now()),
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                    Err(e) => session.handle_transport_error(e.kind(), &e.to_string(), Instant::now()),
                }
            }
            None => std::thread::sleep(wait),
        }
        session.handle_timeout(Instant::now());
    }
    seen
}

/// Why a transport did not open.
enum Failed {
    Io(io::Error),
    Proxy(ProxyError),
}

/// Connects to `host:port`, through `proxy`'s tunnel when given.
fn open(
    host: &str,
    port: u16,
    tls: bool,
    proxy: Option<&ProxyServer>,
    resolve: Resolve<'_>,
) -> Result<TcpStream, Failed> {
    if tls {
        let e = io::Error::new(io::ErrorKind::Unsupported, "this example loop speaks ws:// only");
        return Err(Failed::Io(e));
    }
    let Some(proxy) = proxy else { return connect(host, port, resolve).map_err(Failed::Io) };
    if proxy.uses_tls() {
        let e =
            io::Error::new(io::ErrorKind::Unsupported, "this example loop speaks no TLS, to an https:// proxy neither");
        return Err(Failed::Io(e));
    }
    let unreachable = |e: io::Error| {
        Failed::Proxy(ProxyError::Unreachable { kind: e.kind(), message: format!("{}: {e}", proxy.redacted_text()) })
    };
    let mut s = connect(proxy.host(), proxy.port(), resolve).map_err(unreachable)?;
    // `socks5://` and `socks4://`: the address the core picks (none that fits is its `BadTarget`).
    let resolved = match proxy.resolves_locally(host) {
        true => proxy.target_address(resolve(host, port).map_err(Failed::Io)?.iter().map(|a| a.ip())),
        false => None,
    };
    let mut tunnel = ProxyHandshake::new(proxy, host, port, resolved).map_err(Failed::Proxy)?;
    s.set_read_timeout(Some(CONNECT_TIMEOUT)).map_err(Failed::Io)?;
    let (mut out, mut buf) = (Vec::new(), [0u8; 2048]);
    // Bounded: each turn reads a byte or more, and the machine fails past its reply limit.
    loop {
        out.clear();
        tunnel.poll_transmit(&mut out);
        s.write_all(&out).map_err(unreachable)?;
        if tunnel.is_open() {
            return Ok(s);
        }
        // No more than the machine allows: the tunnel's first byte stays in the socket.
        let limit = tunnel.read_limit().clamp(1, buf.len());
        match s.read(&mut buf[..limit]).map_err(unreachable)? {
            0 => return Err(Failed::Proxy(tunnel.handle_eof())),
            n => tunnel.handle_input(&buf[..n]).map_err(Failed::Proxy)?,
        };
    }
}

/// Connects to one of `host`'s addresses, racing them as RFC 8305 says
/// (the core's `HappyEyeballs` decides when each starts): each attempt
/// blocks in a thread of its own, and the first to connect wins; the
/// others finish on their own and are dropped.
fn connect(host: &str, port: u16, resolve: Resolve<'_>) -> io::Result<TcpStream> {
    let mut plan = HappyEyeballs::new(resolve(host, port)?, DEFAULT_ATTEMPT_DELAY, Instant::now());
    let (done, outcomes) = std::sync::mpsc::channel();
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} resolved to no address"));
    while !plan.is_exhausted() {
        while let Some(addr) = plan.poll_start(Instant::now()) {
            let done = done.clone();
            std::thread::spawn(move || done.send((addr, TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT))));
        }
        let wait = plan.poll_timeout().map_or(CONNECT_TIMEOUT, |t| t.saturating_duration_since(Instant::now()));
        match outcomes.recv_timeout(wait) {
            Ok((_, Ok(s))) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Ok((addr, Err(e))) => {
                plan.handle_failure(Instant::now());
                last = io::Error::new(e.kind(), format!("{addr}: {e}"));
            }
            // The next address's turn.
            Err(_) => {}
        }
    }
    Err(last)
}

/// The custom-loop walk-through: connect and authenticate, subscribe, send
/// requests, see pongs, lose the link (`cut` makes the server drop it),
/// reconnect, re-authenticate, resubscribe, and answer one more request.
/// Every transport goes through `proxy`, if given. Returns the events and
/// the session; with `print`, narrates as it goes.
pub fn walkthrough(
    url: &str,
    proxy: Option<&ProxyServer>,
    cut: impl Fn(),
    print: bool,
) -> (Vec<SessionEvent>, Session) {
    use wslink_core::{presets, BackoffConfig, PingConfig};

    let start = Instant::now();
    let mut session = Session::builder(url)
        .expect("valid URL")
        .authenticator(presets::JsonRpcAuth::new("public/auth", |_| r#"{"client_id":"loop"}"#.to_owned()))
        .ping(Some(PingConfig::new(Duration::from_millis(200), Duration::from_millis(150))))
        .backoff(BackoffConfig::default().initial(Duration::from_millis(50)))
        .build(Box::new(wslink_core::OsRandom::new().expect("OS randomness")), start)
        .expect("valid config");
    session.connect(start).expect("idle session");
    let (mut connects, mut answered, mut cut_done) = (0, 0, false);
    let events = drive(&mut session, proxy, Duration::from_secs(20), |s, event| {
        let at = format!("[{:>5.2}s]", start.elapsed().as_secs_f64());
        let now = Instant::now();
        let Some(event) = event else {
            // A quiet turn: once three answers and a pong are in, the server drops the link.
            if connects == 1 && answered >= 3 && !cut_done && s.heartbeat_health().last_rtt.is_some() {
                if print {
                    println!("{at} heartbeat rtt {:?}; the server drops the link now", s.heartbeat_health().last_rtt);
                }
                cut_done = true;
                cut();
            }
            return false;
        };
        match event {
            SessionEvent::Connected { attempt, .. } => {
                connects += 1;
                if print {
                    println!("{at} connected and authenticated (attempt {attempt})");
                }
                if connects == 1 {
                    s.subscribe(&["trades.BTC-PERPETUAL"], now).expect("open");
                }
                s.request("public/get_time", None, None, now).expect("open");
            }
            SessionEvent::Subscribed { channels } if print => println!("{at} subscribed {channels:?}"),
            SessionEvent::Response { id, rtt, .. } => {
                answered += 1;
                if print {
                    println!("{at} response to request {id} in {rtt:?}");
                }
                if connects > 1 {
                    return true;
                }
                if answered < 3 {
                    s.request("public/get_time", None, None, now).expect("open");
                }
            }
            SessionEvent::Disconnected { reason } if print => println!("{at} disconnected: {reason:?}"),
            SessionEvent::Reconnecting { attempt, delay } if print => {
                println!("{at} reconnecting (attempt {attempt}) in {delay:?}")
            }
            _ => {}
        }
        false
    });
    (events, session)
}
