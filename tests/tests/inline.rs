//! The client driven inside the task that awaits it (`InlineClient`), on
//! both runtimes against real peers: the same behaviour as `Client` (echo,
//! requests, reconnect with resubscription, heartbeat), a request answered
//! behind a burst of feed messages while the owner awaits it, handles used
//! from other tasks, and a clean close when it is dropped.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use wslink_adapter::{InlineClient, Runtime};
use wslink_core::{CloseCode, DisconnectReason, Message, PingConfig, SessionEvent};
use wslink_tests::peers::{echo_server, ExchangeServer};
use wslink_tests::proxy::{Fault, FaultProxy};
use wslink_tests::scenario::{builder, run, WAIT};
use wslink_tests::scenarios;

scenarios!(
    echoes_come_back_in_order_and_requests_are_answered,
    it_reconnects_and_subscribes_again_while_awaited,
    a_request_is_answered_behind_a_burst_of_feed_messages,
    a_dead_link_is_found_while_the_owner_awaits_recv,
    a_handle_in_another_task_sends_while_the_owner_awaits,
    dropping_it_closes_the_connection_cleanly
);

/// The next event, within `WAIT`.
async fn next(link: &mut InlineClient) -> SessionEvent {
    tokio::time::timeout(WAIT, link.recv()).await.expect("an event in time").expect("the stream goes on")
}

/// Events until one matches, within `WAIT`.
async fn until(link: &mut InlineClient, want: impl Fn(&SessionEvent) -> bool) -> Vec<SessionEvent> {
    let mut seen = Vec::new();
    for _ in 0..100_000 {
        let event = next(link).await;
        let done = want(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
    panic!("never came; saw {seen:?}");
}

async fn echoes_come_back_in_order_and_requests_are_answered<R: Runtime>() {
    let addr = echo_server(None).await;
    let mut link = builder::<R>(&format!("ws://{addr}/")).connect_inline().await.expect("connected");
    for i in 0..200 {
        link.send_text(format!("echo {i}")).await.expect("sent");
        let seen = until(&mut link, |e| matches!(e, SessionEvent::Message(_))).await;
        assert_eq!(seen.last(), Some(&SessionEvent::Message(Message::Text(format!("echo {i}").into()))));
    }
    // Pipelined: handed over without waiting, all echoed in order.
    for i in 0..100 {
        link.try_send_text(format!("p{i}")).expect("handed over");
    }
    for i in 0..100 {
        let seen = until(&mut link, |e| matches!(e, SessionEvent::Message(_))).await;
        assert_eq!(seen.last(), Some(&SessionEvent::Message(Message::Text(format!("p{i}").into()))));
    }
    link.close(CloseCode::Normal, "").await.expect("closed");
    until(&mut link, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert_eq!(link.recv().await, None, "the stream ends after Closed");

    let server = ExchangeServer::start(true).await;
    let mut link = builder::<R>(&format!("ws://{}/", server.addr)).connect_inline().await.expect("connected");
    for _ in 0..5 {
        let response = link.request("public/get_time", None, None).await.expect("answered");
        assert!(!response.is_error);
    }
    assert_eq!(link.latency().await.expect("stats").count, 5);
}

async fn it_reconnects_and_subscribes_again_while_awaited<R: Runtime>() {
    let server = ExchangeServer::start(true).await;
    let mut link = builder::<R>(&format!("ws://{}/", server.addr)).connect_inline().await.expect("connected");
    link.subscribe(&["trades.BTC"]).await.expect("subscribed");
    until(&mut link, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
    server.drop_all();
    let seen = until(&mut link, |e| matches!(e, SessionEvent::Subscribed { .. })).await;
    assert!(seen.iter().any(|e| matches!(e, SessionEvent::Disconnected { .. })), "{seen:?}");
    assert!(seen.iter().any(|e| matches!(e, SessionEvent::Connected { .. })), "{seen:?}");
    assert_eq!(server.methods_on(1), ["public/subscribe"], "subscribed again on the new connection");
    let response = link.request("public/get_time", None, None).await.expect("answered after the reconnect");
    assert!(!response.is_error);
}

/// Feed messages of 1 KiB, 1.5 MiB in all: far more than the event buffer
/// and a read hold, so that the response behind them is read only if the
/// driver goes on while the owner awaits the request and not `recv`.
const BURST: usize = 1500;

/// Feed message `n`, 1 KiB.
fn feed(n: usize) -> String {
    format!("feed {n:>5} {}", "x".repeat(1013))
}

/// Answers each request after a burst of `BURST` feed messages.
async fn bursting_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind on loopback");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                while let Some(Ok(WsMessage::Text(text))) = ws.next().await {
                    let Ok(request) = serde_json::from_str::<serde_json::Value>(text.as_str()) else { return };
                    for n in 0..BURST {
                        if ws.feed(WsMessage::text(feed(n))).await.is_err() {
                            return;
                        }
                    }
                    let reply = serde_json::json!({"jsonrpc": "2.0", "id": request["id"], "result": "ok"});
                    if ws.send(WsMessage::text(reply.to_string())).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn a_request_is_answered_behind_a_burst_of_feed_messages<R: Runtime>() {
    let addr = bursting_server().await;
    let mut link =
        builder::<R>(&format!("ws://{addr}/")).event_capacity(1024).connect_inline().await.expect("connected");
    let response = link.request("public/get_time", None, Some(WAIT)).await.expect("answered behind the burst");
    assert!(!response.is_error);
    // Every feed message is still there, in order.
    for n in 0..BURST {
        let seen = until(&mut link, |e| matches!(e, SessionEvent::Message(_))).await;
        assert_eq!(seen.last(), Some(&SessionEvent::Message(Message::Text(feed(n).into()))));
    }
}

async fn a_dead_link_is_found_while_the_owner_awaits_recv<R: Runtime>() {
    let upstream = echo_server(None).await;
    let proxy = FaultProxy::start(upstream).await;
    let ping = PingConfig::new(Duration::from_millis(200), Duration::from_millis(100));
    let mut link =
        builder::<R>(&format!("ws://{}/", proxy.addr)).ping(Some(ping)).connect_inline().await.expect("connected");
    proxy.set(Fault::Blackhole);
    let seen = until(&mut link, |e| matches!(e, SessionEvent::Disconnected { .. })).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Disconnected { reason: DisconnectReason::HeartbeatTimeout }));
    proxy.set(Fault::Pass);
    until(&mut link, |e| matches!(e, SessionEvent::Connected { .. })).await;
}

async fn a_handle_in_another_task_sends_while_the_owner_awaits<R: Runtime>() {
    let addr = echo_server(None).await;
    let mut link = builder::<R>(&format!("ws://{addr}/")).connect_inline().await.expect("connected");
    let handle = link.client();
    let sender = tokio::spawn(async move {
        for i in 0..20 {
            handle.send_text(format!("from afar {i}")).await.expect("sent");
        }
    });
    for i in 0..20 {
        let seen = until(&mut link, |e| matches!(e, SessionEvent::Message(_))).await;
        assert_eq!(seen.last(), Some(&SessionEvent::Message(Message::Text(format!("from afar {i}").into()))));
    }
    sender.await.expect("the sender finished");
}

async fn dropping_it_closes_the_connection_cleanly<R: Runtime>() {
    let server = ExchangeServer::start(true).await;
    let link = builder::<R>(&format!("ws://{}/", server.addr)).connect_inline().await.expect("connected");
    drop(link);
    let closes = tokio::time::timeout(WAIT, async {
        loop {
            let closes = server.log.lock().expect("log lock").closes.clone();
            if !closes.is_empty() {
                return closes;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the server saw a close frame");
    assert_eq!(closes, [(0, Some(1000))]);
}
