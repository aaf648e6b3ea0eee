//! Proxies of our own on loopback: a minimal HTTP CONNECT proxy that tunnels
//! for real (and can cut every tunnel at once), and a hostile one that
//! answers each connection with a scripted misbehaviour.
//!
//! Every read is bounded: a CONNECT head of at most 8 KiB, then plain copying.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Reads a request head up to its blank line (at most 8 KiB); `None` if the client left first.
async fn read_head(tcp: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await.ok().filter(|&n| n > 0)?;
        head.extend_from_slice(&buf[..n]);
        if head.len() > 8192 {
            return None;
        }
    }
    Some(head)
}

/// A minimal HTTP CONNECT proxy (no authentication): the "in-test proxy"
/// of the proxied-connect benchmark, and the one that cuts tunnels. Names
/// under `.test` (RFC 2606's test domain) are reached on 127.0.0.1.
pub struct TunnelProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Tunnels opened so far.
    pub tunnels: Arc<AtomicUsize>,
    cut: watch::Sender<u64>,
}

impl TunnelProxy {
    /// Starts it on a port the OS picks.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind on loopback");
        let addr = listener.local_addr().expect("bound address");
        let tunnels = Arc::new(AtomicUsize::new(0));
        let (cut, cuts) = watch::channel(0u64);
        let count = tunnels.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (count, mut cuts) = (count.clone(), cuts.clone());
                tokio::spawn(async move {
                    cuts.mark_unchanged();
                    let Some((client, server)) = open_tunnel(client).await else { return };
                    count.fetch_add(1, Ordering::SeqCst);
                    tokio::select! {
                        _ = relay(client, server) => {}
                        _ = cuts.changed() => {} // both sockets dropped: the tunnel is cut
                    }
                });
            }
        });
        Self { addr, tunnels, cut }
    }

    /// Closes every open tunnel (both of its sockets).
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

async fn open_tunnel(mut client: TcpStream) -> Option<(TcpStream, TcpStream)> {
    let _ = client.set_nodelay(true);
    let head = read_head(&mut client).await?;
    let line = String::from_utf8_lossy(&head).lines().next()?.to_owned();
    let target = line.strip_prefix("CONNECT ")?.split(' ').next()?.to_owned();
    let target = match target.rsplit_once(':') {
        Some((host, port)) if host.ends_with(".test") => format!("127.0.0.1:{port}"),
        _ => target,
    };
    let Ok(server) = TcpStream::connect(target.as_str()).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n").await;
        return None;
    };
    let _ = server.set_nodelay(true);
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.ok()?;
    Some((client, server))
}

async fn relay(mut client: TcpStream, mut server: TcpStream) {
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// How the hostile proxy answers every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hostility {
    /// Reads what comes and never answers.
    Silent,
    /// Answers the request with these bytes, then reads until the client leaves.
    Answer(Vec<u8>),
    /// Answers the request with these bytes, then closes.
    AnswerAndClose(Vec<u8>),
    /// Answers a 200 head that never ends: header lines past any limit.
    EndlessHead,
    /// SOCKS5: accepts "no authentication", then answers the connect
    /// request with these bytes, then reads until the client leaves.
    SocksConnectReply(Vec<u8>),
}

/// Starts a proxy that answers every connection as `hostility` says.
pub async fn hostile_proxy(hostility: Hostility) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind on loopback");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let hostility = hostility.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                // The client's request (or SOCKS greeting) first.
                if !matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {
                    return;
                }
                match hostility {
                    Hostility::Silent => {}
                    Hostility::Answer(bytes) => {
                        let _ = tcp.write_all(&bytes).await;
                    }
                    Hostility::AnswerAndClose(bytes) => {
                        let _ = tcp.write_all(&bytes).await;
                        return;
                    }
                    Hostility::EndlessHead => {
                        let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\n").await;
                        let line = [b"X-Filler: ".as_slice(), &[b'a'; 1000], b"\r\n"].concat();
                        // Bounded: 1 MiB, far past the client's limit; the client hangs up first.
                        for _ in 0..1024 {
                            if tcp.write_all(&line).await.is_err() {
                                return;
                            }
                        }
                    }
                    Hostility::SocksConnectReply(bytes) => {
                        if tcp.write_all(&[5, 0]).await.is_err() || !matches!(tcp.read(&mut buf).await, Ok(n) if n > 0)
                        {
                            return;
                        }
                        let _ = tcp.write_all(&bytes).await;
                    }
                }
                while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}
