//! A fault proxy between client and server, on loopback: it passes bytes
//! through, delays them, cuts the connection (RST or FIN), blackholes it
//! (keeps both sockets open and forwards nothing), or truncates it after N
//! bytes from the server (mid-frame, when N falls inside one).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Forward everything after this delay per chunk.
    Delay(Duration),
    /// Keep the sockets open, forward nothing either way.
    Blackhole,
    /// Close both sides now: with a reset (`rst`) or an orderly FIN.
    Cut {
        /// Reset instead of FIN.
        rst: bool,
    },
    /// Forward this many more bytes from the server, then close both sides.
    TruncateAfter(usize),
}

/// A running proxy; set its fault at any time, for every connection through it.
pub struct FaultProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    fault: watch::Sender<Fault>,
    /// Connections accepted so far.
    pub accepted: Arc<Mutex<usize>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream`, passing traffic.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind on loopback");
        let addr = listener.local_addr().expect("bound address");
        let (fault, watcher) = watch::channel(Fault::Pass);
        let accepted = Arc::new(Mutex::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                *counter.lock().expect("counter lock") += 1;
                let watcher = watcher.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, watcher).await;
                    }
                });
            }
        });
        Self { addr, fault, accepted }
    }

    /// Applies `fault` to every current and future connection.
    pub fn set(&self, fault: Fault) {
        let _ = self.fault.send(fault);
    }
}

async fn relay(client: TcpStream, server: TcpStream, mut fault: watch::Receiver<Fault>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let (mut up, mut down) = (vec![0u8; 16 << 10], vec![0u8; 16 << 10]);
    let mut budget: Option<usize> = None;
    loop {
        let current = *fault.borrow_and_update();
        match current {
            Fault::Cut { rst } => {
                if rst {
                    if let (Ok(c), Ok(s)) = (cr.reunite(cw), sr.reunite(sw)) {
                        let _ = c.set_zero_linger();
                        let _ = s.set_zero_linger();
                    }
                }
                return;
            }
            Fault::TruncateAfter(n) if budget.is_none() => budget = Some(n),
            _ => {}
        }
        let blackhole = current == Fault::Blackhole;
        tokio::select! {
            changed = fault.changed() => if changed.is_err() { return },
            read = cr.read(&mut up), if !blackhole => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if let Fault::Delay(d) = current { tokio::time::sleep(d).await; }
                    if sw.write_all(&up[..n]).await.is_err() { return }
                }
            },
            read = sr.read(&mut down), if !blackhole => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if let Fault::Delay(d) = current { tokio::time::sleep(d).await; }
                    let n = match budget { Some(b) => n.min(b), None => n };
                    if cw.write_all(&down[..n]).await.is_err() { return }
                    if let Some(b) = budget.as_mut() {
                        *b -= n;
                        if *b == 0 { return }
                    }
                }
            },
        }
    }
}
