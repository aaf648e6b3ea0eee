//! The idioms of the async ecosystem, on both runtimes: `Client` as a
//! `futures::Sink<Message>` (`send_all`, `send`, flush and close; its
//! `poll_ready` waiting for the write budget without spinning, and woken
//! when the budget has room), and a resolver that is a future, awaited
//! while the client's task goes on answering.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::{Sink, SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use wslink_adapter::{Client, ClientError, EventFilter, Runtime};
use wslink_core::{CommandError, Message, SessionEvent, SessionState};
use wslink_tests::peers::echo_server;
use wslink_tests::scenario::{builder, run, until, WAIT};
use wslink_tests::scenarios;

scenarios!(
    the_sink_sends_all_in_order_flushes_and_closes,
    the_sink_waits_for_the_write_budget_and_is_woken_when_it_has_room,
    an_async_resolver_is_awaited_while_the_client_goes_on,
);

async fn the_sink_sends_all_in_order_flushes_and_closes<R: Runtime>() {
    let addr = echo_server(None).await;
    let (client, mut events) = builder::<R>(&format!("ws://{addr}/")).connect().await.expect("connected");
    let mut sink = client.clone();
    let messages: Vec<Message> = (0..200).map(|n| Message::from(format!("message {n}"))).collect();
    sink.send_all(&mut futures_util::stream::iter(messages.clone()).map(Ok)).await.expect("all handed over");
    // `send_all` ends with a flush: the session has taken every message.
    let metrics = client.metrics().await.expect("metrics");
    assert_eq!(metrics.session.messages_out, 200);
    // `Client`'s own `send` and `close` come first; the sink's are `SinkExt`'s.
    SinkExt::send(&mut sink, Message::from("the last")).await.expect("sent and flushed");
    let mut echoed = Vec::new();
    while echoed.len() < 201 {
        let seen = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
        echoed.extend(seen.into_iter().filter_map(|e| match e {
            SessionEvent::Message(m) => Some(m),
            _ => None,
        }));
    }
    let mut want = messages;
    want.push(Message::from("the last"));
    assert_eq!(echoed, want, "every message, in order");

    // Closing the sink closes the client, every clone included.
    SinkExt::close(&mut sink).await.expect("closed");
    assert_eq!(client.state(), SessionState::Closed);
    until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    let after = SinkExt::send(&mut sink, Message::from("too late")).await;
    assert!(matches!(after, Err(ClientError::Command(CommandError::Closed) | ClientError::Shutdown)), "{after:?}");
    // A closed sink closes again without complaint.
    SinkExt::close(&mut sink).await.expect("closed again");
}

/// A waker that counts its wake-ups and says so.
#[derive(Default)]
struct Counter {
    wakes: AtomicUsize,
    woken: Notify,
}

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.woken.notify_one();
    }
}

fn poll_ready(sink: &mut Client, counter: &Arc<Counter>) -> Poll<Result<(), ClientError>> {
    let waker = Waker::from(counter.clone());
    Pin::new(sink).poll_ready(&mut Context::from_waker(&waker))
}

/// A peer that upgrades one connection and reads nothing until `go` is
/// notified, then reads every message, publishing how many it has read.
/// Its receive buffer is small, so the client's writes back up soon.
async fn paused_reader() -> (SocketAddr, Arc<Notify>, watch::Receiver<usize>) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(16 << 10).expect("SO_RCVBUF");
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind on loopback");
    let addr = socket.local_addr().expect("bound address");
    let listener = socket.listen(1).expect("listen");
    let (go, read) = (Arc::new(Notify::new()), watch::channel(0));
    let (signal, counter) = (go.clone(), read.0);
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
        signal.notified().await;
        let mut count = 0;
        while let Some(Ok(message)) = ws.next().await {
            if matches!(message, WsMessage::Binary(_)) {
                count += 1;
                counter.send_replace(count);
            }
        }
    });
    (addr, go, read.1)
}

async fn the_sink_waits_for_the_write_budget_and_is_woken_when_it_has_room<R: Runtime>() {
    let (addr, go, mut read) = paused_reader().await;
    let (client, _events) = builder::<R>(&format!("ws://{addr}/"))
        .write_budget(16 << 10)
        .event_filter(EventFilter::Discard)
        .connect()
        .await
        .expect("connected");
    let mut sink = client.clone();
    let payload = bytes::Bytes::from(vec![b'x'; 4096]);
    // Hand messages over while the sink is ready. When it is not, a round
    // trip to the driver lets it take what it was handed: a sink waiting
    // for the command queue is woken by that; one still unwoken waits for
    // the write budget, which the peer (reading nothing) leaves used up.
    // The kernel's buffers take a few MiB first: bounded far above that.
    let (mut sent, mut waiting) = (0usize, None);
    for _ in 0..100_000 {
        let counter = Arc::new(Counter::default());
        match poll_ready(&mut sink, &counter) {
            Poll::Ready(result) => {
                result.expect("ready");
                Pin::new(&mut sink).start_send(Message::Binary(payload.clone())).expect("handed over");
                sent += 1;
            }
            Poll::Pending => {
                client.metrics().await.expect("the driver answers");
                if counter.wakes.load(Ordering::SeqCst) == 0 {
                    waiting = Some(counter);
                    break;
                }
            }
        }
    }
    // Pending, and not woken by itself or by the driver's turn: it does not spin.
    let counter = waiting.expect("the sink came to wait for the write budget");

    // The peer reads: the budget has room, and the waiting sink is woken.
    go.notify_one();
    tokio::time::timeout(WAIT, counter.woken.notified()).await.expect("woken when the budget had room");
    assert!(matches!(poll_ready(&mut sink, &Arc::new(Counter::default())), Poll::Ready(Ok(()))));
    let more = (0..100).map(|_| Ok(Message::Binary(payload.clone())));
    sink.send_all(&mut futures_util::stream::iter(more)).await.expect("the rest handed over");
    let total = sent + 100;
    tokio::time::timeout(WAIT, read.wait_for(|n| *n == total)).await.expect("in time").expect("the peer read all");
}

/// A question to the test's resolver, and where its answer goes.
type Query = (String, u16, oneshot::Sender<io::Result<Vec<SocketAddr>>>);

async fn an_async_resolver_is_awaited_while_the_client_goes_on<R: Runtime>() {
    let addr = echo_server(None).await;
    let (ask, mut queries) = mpsc::unbounded_channel::<Query>();
    let (client, mut events) = builder::<R>("ws://feed.test:4242/")
        .resolver_async(move |host, port| {
            let ask = ask.clone();
            async move {
                // Waits for the test to answer: a resolver that blocked would stop the client's task here.
                let (answer, answered) = oneshot::channel();
                ask.send((host, port, answer)).map_err(|_| io::Error::other("the test has gone"))?;
                answered.await.map_err(|_| io::Error::other("no answer"))?
            }
        })
        .start()
        .expect("started");
    for round in 0..2u64 {
        let query = tokio::time::timeout(WAIT, queries.recv()).await.expect("asked in time");
        let (host, port, answer) = query.expect("a question");
        assert_eq!((host.as_str(), port), ("feed.test", 4242));
        // The client's task answers while its resolver's future waits.
        let metrics = client.metrics().await.expect("answered while resolving");
        assert_eq!(metrics.session.connects, round + 1, "this attempt is under way");
        assert_eq!(client.state(), SessionState::Connecting);
        answer.send(Ok(vec![addr])).expect("the resolver waits");
        until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
        client.send_text("resolved").await.expect("sent");
        until(&mut events, |e| matches!(e, SessionEvent::Message(m) if m.as_text() == Some("resolved"))).await;
        if round == 0 {
            // A reconnect resolves again.
            client.reconnect().await.expect("reconnecting");
        }
    }
}
