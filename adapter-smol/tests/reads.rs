//! wslink-smol reads into room that the session keeps initialised from
//! read to read: it is zeroed when the buffer is new, not before every
//! read. Seen from the stream's side: futures-io's `poll_read` may write
//! anywhere in the buffer it is given, so the stream here marks the part
//! past what it read, and checks, when the next read's buffer starts where
//! the last read ended, that the mark is still there.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_lite::io::{AsyncRead, AsyncWrite};
use wslink_adapter::testkit::MockServer;
use wslink_smol::{Builder, Message, SessionEvent, Stream};

/// What the stream writes past the bytes it read.
const MARK: u8 = 0xa5;

/// What the stream saw of the buffers it was given.
#[derive(Debug, Default)]
struct Seen {
    /// Where the last read's bytes ended, and how much marked room followed.
    last: Option<(usize, usize)>,
    /// Reads whose buffer started where the last read ended.
    continued: usize,
    /// Of those, reads that found the mark gone (the room zeroed again).
    zeroed: usize,
}

/// A TCP stream that marks the room past each read and checks the mark.
struct Marking {
    io: async_net::TcpStream,
    seen: Arc<Mutex<Seen>>,
}

impl AsyncRead for Marking {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let start = buf.as_ptr() as usize;
        let last = self.seen.lock().expect("not poisoned").last;
        // Judged before the read writes over the front of the buffer.
        let verdict = match last {
            Some((end, left)) if end == start && left > 0 => {
                Some(buf[..left.min(buf.len())].iter().all(|&b| b == MARK))
            }
            _ => None,
        };
        let n = ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
        buf[n..].fill(MARK);
        let mut seen = self.seen.lock().expect("not poisoned");
        if let Some(kept) = verdict {
            seen.continued += 1;
            seen.zeroed += usize::from(!kept);
        }
        seen.last = Some((start + n, buf.len() - n));
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Marking {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

#[test]
fn a_read_never_finds_zeroed_the_room_the_last_read_left() {
    const MESSAGES: usize = 60;
    let server = MockServer::start();
    let (addr, seen) = (server.addr(), Arc::new(Mutex::new(Seen::default())));
    let seen_by_stream = Arc::clone(&seen);
    let builder = Builder::new(&server.url()).expect("url").ping(None).connector(move |_to| {
        let seen = Arc::clone(&seen_by_stream);
        async move {
            let io = async_net::TcpStream::connect(addr).await?;
            Ok(Stream::plain(Marking { io, seen }))
        }
    });
    smol::block_on(async {
        let (client, mut events) = builder.connect().await.expect("connected");
        server.expect_connection(Duration::from_secs(10));
        // One small message a read: each is sent once the last has arrived.
        for i in 0..MESSAGES {
            server.send_binary(vec![i as u8; 20 + i % 7]);
            loop {
                match events.recv().await {
                    Some(SessionEvent::Message(Message::Binary(b))) => {
                        assert_eq!(b.len(), 20 + i % 7);
                        break;
                    }
                    Some(_) => {}
                    None => panic!("the stream ended after {i} messages"),
                }
            }
        }
        drop(client);
    });
    let seen = seen.lock().expect("not poisoned");
    assert_eq!(seen.zeroed, 0, "no read zeroes the room an earlier read left initialised: {seen:?}");
    assert!(seen.continued >= MESSAGES / 2, "most reads start where the last one ended: {seen:?}");
}
