//! The TCP sockets wslink opens itself, and their options
//! ([`SocketOptions`]: TCP_NODELAY, TCP keepalive, the buffer sizes, a local
//! address to connect from), written once for every runtime: the shared
//! code makes each socket with socket2, sets the options, binds it when
//! asked and starts its non-blocking connect ([`start_connect`]); the
//! runtime only waits for the connect to finish
//! ([`Runtime::tcp_connect`](crate::Runtime::tcp_connect)).
//!
//! The options apply to every TCP connection wslink makes: to the server,
//! or to the proxy when the URL goes through one. A connector of the
//! caller's (`Builder::connector`) opens its streams itself: they do not
//! apply to those.
//!
//! Role: an I/O detail of the adapters, so it lives here and not in the
//! core; the checks of the values ([`SocketOptions::check`]) are pure and
//! run when the client is built.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use wslink_core::ConfigError;

/// TCP keepalive probes ([`SocketOptions::keepalive`]): the OS probes a
/// connection that has been idle for `time`, every `interval`, and drops
/// it after `retries` probes go unanswered, so that a peer that vanished
/// (a NAT that forgot the flow, a host that lost power) is found even with
/// the session's heartbeats off, and middleboxes keep an idle flow open.
///
/// The OS counts these in whole seconds: a fraction of a second is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpKeepalive {
    /// How long the connection is idle before the first probe
    /// (`TCP_KEEPIDLE`, `TCP_KEEPALIVE` on macOS): 1 to 32 767 s.
    pub time: Duration,
    /// Between two probes (`TCP_KEEPINTVL`), 1 to 32 767 s; `None`: the
    /// OS's (75 s on Linux). Ignored where the OS has no such setting
    /// (OpenBSD, Haiku and a few more).
    pub interval: Option<Duration>,
    /// How many probes go unanswered before the connection is dropped
    /// (`TCP_KEEPCNT`), 1 to 127; `None`: the OS's (9 on Linux). Ignored
    /// where the OS has no such setting, as `interval`.
    pub retries: Option<u32>,
}

impl TcpKeepalive {
    /// Probes after `time` idle, at the OS's interval and count.
    pub const fn new(time: Duration) -> Self {
        Self { time, interval: None, retries: None }
    }

    /// Probes every `interval` once they start.
    pub const fn interval(self, interval: Duration) -> Self {
        Self { interval: Some(interval), ..self }
    }

    /// Drops the connection after `retries` unanswered probes.
    pub const fn retries(self, retries: u32) -> Self {
        Self { retries: Some(retries), ..self }
    }

    /// The same for socket2.
    fn to_socket2(self) -> socket2::TcpKeepalive {
        let params = socket2::TcpKeepalive::new().with_time(self.time);
        // The systems where socket2 sets the interval and the count (its own list, less a few rare ones).
        #[cfg(any(
            target_os = "android",
            target_os = "dragonfly",
            target_os = "freebsd",
            target_os = "fuchsia",
            target_os = "illumos",
            target_os = "ios",
            target_os = "linux",
            target_os = "macos",
            target_os = "netbsd",
            target_os = "tvos",
            target_os = "watchos",
            target_os = "windows",
        ))]
        let params = {
            let params = match self.interval {
                Some(interval) => params.with_interval(interval),
                None => params,
            };
            match self.retries {
                Some(retries) => params.with_retries(retries),
                None => params,
            }
        };
        params
    }
}

/// How wslink makes its TCP sockets ([`Builder::socket`](crate::Builder::socket)).
/// The default is what wslink always did: `TCP_NODELAY` on, everything
/// else the OS's.
///
/// ```
/// use std::time::Duration;
/// use wslink_adapter::{SocketOptions, TcpKeepalive};
///
/// const OPTIONS: SocketOptions = SocketOptions::new()
///     .keepalive(TcpKeepalive::new(Duration::from_secs(30)).interval(Duration::from_secs(10)).retries(3))
///     .recv_buffer(1 << 20);
/// assert!(OPTIONS.nodelay);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketOptions {
    /// `TCP_NODELAY`: each write goes out at once rather than waiting
    /// (Nagle's algorithm) to be merged with the next. On by default: a
    /// WebSocket client writes whole frames, and a request waiting for the
    /// previous one's acknowledgement costs a round trip. Off saves packets
    /// for a client that sends many small messages and cares little when
    /// each leaves.
    pub nodelay: bool,
    /// TCP keepalive probes (`SO_KEEPALIVE` with its timings); `None`, the
    /// default, leaves keepalive off as the OS does. The session's pings
    /// find a dead link too; keepalive also works with them off, and keeps
    /// an idle flow alive in NAT tables that time out faster than the pings.
    pub keepalive: Option<TcpKeepalive>,
    /// The local address to connect from (the address, and a port unless it
    /// is 0, the default's "any"); `None`, the default, lets the OS choose.
    /// For a host with several addresses or interfaces, or a server that
    /// allows given source addresses. Only the host's addresses of the same
    /// family (IPv4 or IPv6) are tried; a host with none of that family,
    /// or an address the OS refuses to bind (not one of this machine's),
    /// fails the attempt with `ConnectFailed` (kind `AddrNotAvailable`).
    /// A fixed port makes a reconnect wait for the last connection on it
    /// to leave `TIME_WAIT`: leave the port 0.
    pub bind: Option<SocketAddr>,
    /// `SO_SNDBUF`, bytes (1 to 2^31 - 1); `None`, the default: the OS's,
    /// which it grows as the link needs (Linux's autotuning; setting a size
    /// turns that off). The OS may round it (Linux doubles it for its own
    /// bookkeeping, and caps it at `net.core.wmem_max`).
    pub send_buffer: Option<usize>,
    /// `SO_RCVBUF`, bytes (1 to 2^31 - 1); `None`, the default: the OS's,
    /// autotuned as `send_buffer`'s (capped at `net.core.rmem_max`). Set
    /// before the connection opens, so it also sets the window the client
    /// offers.
    pub recv_buffer: Option<usize>,
}

impl SocketOptions {
    /// The default options: `TCP_NODELAY` on, the rest the OS's.
    pub const fn new() -> Self {
        Self { nodelay: true, keepalive: None, bind: None, send_buffer: None, recv_buffer: None }
    }

    /// `TCP_NODELAY` on (the default) or off.
    pub const fn nodelay(self, on: bool) -> Self {
        Self { nodelay: on, ..self }
    }

    /// TCP keepalive probes with these timings.
    pub const fn keepalive(self, keepalive: TcpKeepalive) -> Self {
        Self { keepalive: Some(keepalive), ..self }
    }

    /// Connects from this local address (port 0: any port).
    pub const fn bind(self, local: SocketAddr) -> Self {
        Self { bind: Some(local), ..self }
    }

    /// `SO_SNDBUF`, in bytes.
    pub const fn send_buffer(self, bytes: usize) -> Self {
        Self { send_buffer: Some(bytes), ..self }
    }

    /// `SO_RCVBUF`, in bytes.
    pub const fn recv_buffer(self, bytes: usize) -> Self {
        Self { recv_buffer: Some(bytes), ..self }
    }

    /// Checks every value against its range (the OS's, where they differ
    /// the narrowest, Linux's), so that no attempt fails on a value that
    /// could never work.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason| Err(ConfigError::InvalidValue { field, reason });
        const BUFFER: &str = "must be from 1 to 2147483647 bytes";
        for (field, size) in [("socket.send_buffer", self.send_buffer), ("socket.recv_buffer", self.recv_buffer)] {
            if size.is_some_and(|n| n == 0 || n > i32::MAX as usize) {
                return invalid(field, BUFFER);
            }
        }
        let Some(keepalive) = self.keepalive else { return Ok(()) };
        const SECONDS: &str = "must be from 1 s to 32767 s (the OS counts whole seconds)";
        let seconds = |d: Duration| (1..=32_767).contains(&d.as_secs());
        if !seconds(keepalive.time) {
            return invalid("socket.keepalive.time", SECONDS);
        }
        if keepalive.interval.is_some_and(|d| !seconds(d)) {
            return invalid("socket.keepalive.interval", SECONDS);
        }
        if keepalive.retries.is_some_and(|n| !(1..=127).contains(&n)) {
            return invalid("socket.keepalive.retries", "must be from 1 to 127");
        }
        Ok(())
    }

    /// Whether `addr` can be reached from the bound address: any address
    /// without one, else one of the same family.
    pub(crate) fn reaches(&self, addr: &SocketAddr) -> bool {
        self.bind.is_none_or(|local| local.is_ipv4() == addr.is_ipv4())
    }
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Makes a TCP socket for `addr` with `options`, binds it when asked, and
/// starts its connect without waiting: the socket is non-blocking, and the
/// runtime waits until it is writable, then reads its error.
pub(crate) fn start_connect(addr: SocketAddr, options: &SocketOptions) -> io::Result<std::net::TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(options.nodelay)?;
    if let Some(keepalive) = options.keepalive {
        socket.set_tcp_keepalive(&keepalive.to_socket2())?;
    }
    // Before the connect: the receive buffer sets the window scale the SYN offers.
    if let Some(bytes) = options.send_buffer {
        socket.set_send_buffer_size(bytes)?;
    }
    if let Some(bytes) = options.recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    if let Some(local) = options.bind {
        socket.bind(&local.into()).map_err(|e| io::Error::new(e.kind(), format!("binding to {local}: {e}")))?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if in_progress(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// A non-blocking connect's "started, not finished": `EINPROGRESS` on
/// Unix (std's `ErrorKind::InProgress` is not stable), `WSAEWOULDBLOCK` on Windows.
fn in_progress(error: &io::Error) -> bool {
    #[cfg(unix)]
    if error.raw_os_error() == Some(libc::EINPROGRESS) {
        return true;
    }
    error.kind() == io::ErrorKind::WouldBlock
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use socket2::SockRef;

    use super::*;

    #[test]
    fn out_of_range_values_are_refused_naming_the_field() {
        let keepalive = TcpKeepalive::new(Duration::from_secs(30));
        let cases = [
            (SocketOptions::new().send_buffer(0), "socket.send_buffer"),
            (SocketOptions::new().recv_buffer(0), "socket.recv_buffer"),
            (SocketOptions::new().recv_buffer(1 << 31), "socket.recv_buffer"),
            (SocketOptions::new().keepalive(TcpKeepalive::new(Duration::ZERO)), "socket.keepalive.time"),
            (SocketOptions::new().keepalive(TcpKeepalive::new(Duration::from_millis(999))), "socket.keepalive.time"),
            (SocketOptions::new().keepalive(TcpKeepalive::new(Duration::from_secs(32_768))), "socket.keepalive.time"),
            (
                SocketOptions::new().keepalive(keepalive.interval(Duration::from_millis(500))),
                "socket.keepalive.interval",
            ),
            (SocketOptions::new().keepalive(keepalive.retries(0)), "socket.keepalive.retries"),
            (SocketOptions::new().keepalive(keepalive.retries(128)), "socket.keepalive.retries"),
        ];
        for (options, named) in cases {
            match options.check() {
                Err(ConfigError::InvalidValue { field, .. }) => assert_eq!(field, named, "{options:?}"),
                other => panic!("{options:?}: {other:?}"),
            }
        }
        let good = SocketOptions::new()
            .keepalive(keepalive.interval(Duration::from_secs(1)).retries(127))
            .send_buffer(1)
            .recv_buffer(i32::MAX as usize)
            .bind("127.0.0.1:0".parse().unwrap());
        assert_eq!(good.check(), Ok(()));
        assert_eq!(SocketOptions::default().check(), Ok(()));
    }

    #[test]
    fn the_default_is_nodelay_on_and_the_rest_the_oss() {
        let options = SocketOptions::default();
        assert_eq!(options, SocketOptions::new());
        assert!(options.nodelay);
        assert_eq!(
            (options.keepalive, options.bind, options.send_buffer, options.recv_buffer),
            (None, None, None, None)
        );
    }

    #[test]
    fn a_bound_address_reaches_its_own_family_only() {
        let (v4, v6): (SocketAddr, SocketAddr) = ("127.0.0.1:1".parse().unwrap(), "[::1]:1".parse().unwrap());
        assert!(SocketOptions::new().reaches(&v4) && SocketOptions::new().reaches(&v6));
        let bound = SocketOptions::new().bind("127.0.0.2:0".parse().unwrap());
        assert!(bound.reaches(&v4) && !bound.reaches(&v6));
    }

    /// A loopback address to bind other than the OS's choice: Linux answers
    /// on all of 127/8, other systems on 127.0.0.1 alone.
    const LOCAL: std::net::IpAddr = match cfg!(target_os = "linux") {
        true => std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2)),
        false => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    };

    /// The value the OS keeps for a buffer of `bytes` (Linux doubles it), read from a socket of its own.
    fn kept(bytes: usize, send: bool) -> usize {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        match send {
            true => socket.set_send_buffer_size(bytes).and_then(|()| socket.send_buffer_size()).unwrap(),
            false => socket.set_recv_buffer_size(bytes).and_then(|()| socket.recv_buffer_size()).unwrap(),
        }
    }

    #[test]
    fn the_connecting_socket_carries_every_option_and_connects_from_the_bound_address() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let fresh = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let (send, recv) = (24 * 1024, 48 * 1024);
        // Not the OS's defaults, or the check below could not fail.
        assert_ne!(kept(send, true), fresh.send_buffer_size().unwrap());
        assert_ne!(kept(recv, false), fresh.recv_buffer_size().unwrap());
        assert!(fresh.tcp_nodelay().is_ok_and(|on| !on) && fresh.keepalive().is_ok_and(|on| !on));
        let keepalive = TcpKeepalive::new(Duration::from_secs(41)).interval(Duration::from_secs(7)).retries(5);
        let options = SocketOptions::new()
            .keepalive(keepalive)
            .send_buffer(send)
            .recv_buffer(recv)
            .bind(SocketAddr::new(LOCAL, 0));
        let stream = start_connect(listener.local_addr().unwrap(), &options).unwrap();
        // The kernel completes the handshake for the listener's queue.
        let (_server, peer) = listener.accept().unwrap();
        assert_eq!(stream.local_addr().unwrap(), peer);
        assert_eq!(peer.ip(), LOCAL);
        let socket = SockRef::from(&stream);
        assert!(socket.tcp_nodelay().unwrap());
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.send_buffer_size().unwrap(), kept(send, true));
        assert_eq!(socket.recv_buffer_size().unwrap(), kept(recv, false));
        #[cfg(target_os = "linux")]
        {
            assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(41));
            assert_eq!(socket.tcp_keepalive_interval().unwrap(), Duration::from_secs(7));
            assert_eq!(socket.tcp_keepalive_retries().unwrap(), 5);
        }
        let plain = start_connect(listener.local_addr().unwrap(), &SocketOptions::new().nodelay(false)).unwrap();
        assert!(!SockRef::from(&plain).tcp_nodelay().unwrap());
    }

    #[test]
    fn an_address_that_is_not_this_machines_cannot_be_bound() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // TEST-NET-3 (RFC 5737): never one of this machine's addresses.
        let options = SocketOptions::new().bind("203.0.113.7:0".parse().unwrap());
        let error = start_connect(listener.local_addr().unwrap(), &options).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrNotAvailable, "{error}");
        assert!(error.to_string().starts_with("binding to 203.0.113.7:0: "), "{error}");
    }
}
