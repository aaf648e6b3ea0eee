//! A runtime that is another runtime, and reads back the options of every
//! TCP socket the shared code hands it to connect: once connected, through a
//! duplicate of the socket, with socket2 (getsockopt). The options are then
//! checked on the very socket the connection runs over, on both runtimes,
//! with nothing added to wslink's API for the tests.

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::SockRef;
use wslink_adapter::Runtime;

/// `R`, with every TCP socket's options recorded (see [`sockets_to`]).
pub struct Probe<R>(PhantomData<fn() -> R>);

/// What a connected socket carried, as the OS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSeen {
    /// Its local address.
    pub local: SocketAddr,
    /// The address it connected to.
    pub peer: SocketAddr,
    /// `TCP_NODELAY`.
    pub nodelay: bool,
    /// `SO_KEEPALIVE`.
    pub keepalive: bool,
    /// `TCP_KEEPIDLE`, `TCP_KEEPINTVL` and `TCP_KEEPCNT` (read on Linux only).
    pub keepalive_timing: Option<(Duration, Duration, u32)>,
    /// `SO_SNDBUF`.
    pub send_buffer: usize,
    /// `SO_RCVBUF`.
    pub recv_buffer: usize,
}

impl SocketSeen {
    fn read(socket: &std::net::TcpStream) -> io::Result<Self> {
        let s = SockRef::from(socket);
        #[cfg(target_os = "linux")]
        let keepalive_timing = Some((s.tcp_keepalive_time()?, s.tcp_keepalive_interval()?, s.tcp_keepalive_retries()?));
        #[cfg(not(target_os = "linux"))]
        let keepalive_timing = None;
        Ok(Self {
            local: socket.local_addr()?,
            peer: socket.peer_addr()?,
            nodelay: s.tcp_nodelay()?,
            keepalive: s.keepalive()?,
            keepalive_timing,
            send_buffer: s.send_buffer_size()?,
            recv_buffer: s.recv_buffer_size()?,
        })
    }
}

/// Every socket connected through a [`Probe`] runtime in this process.
static SEEN: Mutex<Vec<SocketSeen>> = Mutex::new(Vec::new());

/// The sockets connected to `peer` so far, in order (each test's peers have
/// their own ports, so tests running side by side do not see each other's).
pub fn sockets_to(peer: SocketAddr) -> Vec<SocketSeen> {
    SEEN.lock().expect("not poisoned").iter().filter(|s| s.peer == peer).cloned().collect()
}

/// The value the OS keeps for a buffer size of `bytes` (Linux doubles it),
/// read back from a socket of its own: what a socket given that size reports.
pub fn buffer_kept(bytes: usize, send: bool) -> usize {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    let kept = match send {
        true => socket.set_send_buffer_size(bytes).and_then(|()| socket.send_buffer_size()),
        false => socket.set_recv_buffer_size(bytes).and_then(|()| socket.recv_buffer_size()),
    };
    kept.expect("a buffer size")
}

impl<R: Runtime> Runtime for Probe<R> {
    type Reader = R::Reader;
    type Writer = R::Writer;

    fn now() -> Instant {
        R::now()
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        R::spawn(task)
    }

    type Timer = R::Timer;

    fn timer(deadline: Instant) -> Self::Timer {
        R::timer(deadline)
    }

    fn reset(timer: Pin<&mut Self::Timer>, deadline: Instant) {
        R::reset(timer, deadline)
    }

    type Link = R::Link;

    type Stream = R::Stream;

    fn stream_link(stream: Self::Stream) -> (Self::Link, bool) {
        R::stream_link(stream)
    }

    fn resolve(host: String, port: u16) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send {
        R::resolve(host, port)
    }

    fn tcp_connect(socket: std::net::TcpStream) -> impl Future<Output = io::Result<Self::Link>> + Send {
        // The same socket under a second descriptor: dropping it closes nothing.
        let probe = socket.try_clone();
        async move {
            let link = R::tcp_connect(socket).await?;
            SEEN.lock().expect("not poisoned").push(SocketSeen::read(&probe?)?);
            Ok(link)
        }
    }

    fn link_tls(
        link: Self::Link,
        host: String,
        tls: Arc<rustls::ClientConfig>,
    ) -> impl Future<Output = io::Result<Self::Link>> + Send {
        R::link_tls(link, host, tls)
    }

    fn link_read<'a>(
        link: &'a mut Self::Link,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        R::link_read(link, buf)
    }

    fn link_write_all<'a>(link: &'a mut Self::Link, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a {
        R::link_write_all(link, buf)
    }

    fn secure(
        link: Self::Link,
        host: String,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> impl Future<Output = io::Result<(Self::Reader, Self::Writer)>> + Send {
        R::secure(link, host, tls)
    }

    fn read_buf<'a>(
        reader: &'a mut Self::Reader,
        room: wslink_core::ReadRoom<'a>,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        R::read_buf(reader, room)
    }

    fn write<'a>(writer: &'a mut Self::Writer, buf: &'a [u8]) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        R::write(writer, buf)
    }

    fn write_all<'a>(writer: &'a mut Self::Writer, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a {
        R::write_all(writer, buf)
    }

    fn shutdown(writer: &mut Self::Writer) -> impl Future<Output = io::Result<()>> + Send + '_ {
        R::shutdown(writer)
    }
}
