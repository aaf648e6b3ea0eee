//! A program that exits the moment its event stream ends:
//! `close_and_exit <tokio|smol> <client-closes|server-closes|server-closes-in-backoff> <ws-url>`.
//!
//! It connects, echoes the first eight binary messages the server sends,
//! then either closes with 1000 itself, or prints `echoed` and waits for the
//! server's close: after which it stops (`server-closes`), or waits in a
//! long backoff and closes itself (`server-closes-in-backoff`, so the
//! server's connection is an earlier one when the session ends); it reads the event stream to its
//! end and calls `std::process::exit` at once: no sleep, no drop, nothing
//! that could give a write still under way time to finish.
//! `tests/lifecycle.rs` runs it against a server that checks every echo and
//! the close frame arrived. Exit status 0 means it saw everything it
//! expected; anything else panics.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use wslink_adapter::{Builder, Runtime};
use wslink_core::{CloseCode, Message, SessionEvent};

/// Messages the server sends, each echoed back.
const ECHOES: usize = 8;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [runtime, closer, url] = args.as_slice() else {
        eprintln!("usage: close_and_exit <tokio|smol> <client-closes|server-closes|server-closes-in-backoff> <ws-url>");
        std::process::exit(2);
    };
    let closer = match closer.as_str() {
        "client-closes" => Closer::Client,
        "server-closes" => Closer::Server,
        "server-closes-in-backoff" => Closer::ServerThenClientInBackoff,
        other => {
            eprintln!("unknown closer {other:?}");
            std::process::exit(2);
        }
    };
    match runtime.as_str() {
        "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            rt.block_on(echo_close_exit::<wslink_tokio::Tokio>(url, closer))
        }
        "smol" => block_on(echo_close_exit::<wslink_smol::Smol>(url, closer)),
        other => {
            eprintln!("unknown runtime {other:?}: tokio or smol");
            std::process::exit(2);
        }
    }
}

/// Who ends the session.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Closer {
    Client,
    /// The server closes, and the session ends instead of reconnecting.
    Server,
    /// The server closes, the session waits a minute to reconnect, and the client closes meanwhile.
    ServerThenClientInBackoff,
}

/// Echoes `ECHOES` binary messages, closes (or has the server close),
/// drains the stream and exits.
async fn echo_close_exit<R: Runtime>(url: &str, closer: Closer) -> ! {
    let delay = (closer == Closer::ServerThenClientInBackoff).then_some(std::time::Duration::from_secs(60));
    // Every echo is handed over while the server reads nothing (it waits for
    // the word that they are): a write budget that holds them all, so that
    // none waits for room and the close finds them all still to be written.
    let builder = Builder::<R>::new(url).expect("valid URL").retry(move |_| delay).write_budget(64 << 20);
    let (client, mut events) = builder.connect().await.expect("connected");
    let mut echoed = 0;
    while echoed < ECHOES {
        match events.recv().await {
            Some(SessionEvent::Message(Message::Binary(data))) => {
                client.send_binary(data).await.expect("echo handed over");
                echoed += 1;
            }
            Some(SessionEvent::Message(Message::Text(text))) => panic!("a text message of {} bytes", text.len()),
            Some(SessionEvent::Disconnected { reason }) => panic!("disconnected after {echoed} echoes: {reason:?}"),
            Some(_) => {}
            None => panic!("the stream ended after {echoed} echoes"),
        }
    }
    if closer == Closer::Client {
        client.close(CloseCode::Normal, "bye").await.expect("closed");
    } else {
        // The echoes are handed over, most of them not yet written: the server may close now.
        println!("echoed");
        std::io::Write::flush(&mut std::io::stdout()).expect("stdout");
    }
    if closer == Closer::ServerThenClientInBackoff {
        while !matches!(events.recv().await, Some(SessionEvent::Reconnecting { .. })) {}
        // No transport now: the close ends the session at once, the last connection's close still running.
        client.close(CloseCode::Normal, "bye").await.expect("closed");
    }
    while events.recv().await.is_some() {}
    std::process::exit(0)
}

/// Runs `future` on this thread, which only waits: the client's task runs on
/// smol's global executor and its sockets on async-io's reactor thread.
/// (`smol::block_on` does the same; smol is only a dev-dependency of this
/// package, out of a binary's reach.)
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}
