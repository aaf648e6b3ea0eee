//! The calls a newcomer reaches for first, on both runtimes against real
//! peers: reconnecting turned off in one call, an echo that sends back the
//! message it received, and the message size limit on the builder.

use wslink_adapter::{RequestError, Runtime};
use wslink_core::{CloseReason, ConnectionError, DisconnectReason, Message, ProtocolError, SessionEvent};
use wslink_tests::peers::{echo_server, ExchangeServer};
use wslink_tests::scenario::{builder, run, until};
use wslink_tests::scenarios;
use wslink_tokio::Bytes;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

scenarios!(
    with_reconnect_off_a_dropped_link_closes_the_client,
    an_echo_sends_back_the_message_it_received,
    a_message_over_the_builders_limit_closes_with_1009,
    pings_and_pongs_reach_the_user_who_can_answer_by_hand,
    prepare_may_drop_a_message_and_a_dropped_request_fails_at_once
);

async fn with_reconnect_off_a_dropped_link_closes_the_client<R: Runtime>() {
    let server = ExchangeServer::start(true).await;
    let (_client, mut events) =
        builder::<R>(&format!("ws://{}/", server.addr)).reconnect(false).connect().await.expect("connected");
    server.drop_all();
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert!(seen.iter().any(|e| matches!(e, SessionEvent::Disconnected { .. })), "{seen:?}");
    assert!(!seen.iter().any(|e| matches!(e, SessionEvent::Reconnecting { .. })), "{seen:?}");
    assert_eq!(seen.last(), Some(&SessionEvent::Closed { reason: CloseReason::Stopped }));
    assert_eq!(events.recv().await, None, "the stream ends");
}

async fn an_echo_sends_back_the_message_it_received<R: Runtime>() {
    let addr = echo_server(None).await;
    let (client, mut events) = builder::<R>(&format!("ws://{addr}/")).connect().await.expect("connected");
    let first = Message::Binary(Bytes::from_static(b"tick 1"));
    client.send(first.clone()).await.expect("sent");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
    let Some(SessionEvent::Message(received)) = seen.last().cloned() else { unreachable!("until stops at a message") };
    assert_eq!(received, first);
    // The message received goes back as it is: no copy into a new buffer.
    client.send(received.clone()).await.expect("echoed");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Message(received)));
    client.close(wslink_core::CloseCode::Normal, "").await.expect("closed");
}

async fn a_message_over_the_builders_limit_closes_with_1009<R: Runtime>() {
    let addr = echo_server(None).await;
    let (client, mut events) = builder::<R>(&format!("ws://{addr}/"))
        .max_message_size(1000)
        .reconnect(false)
        .connect()
        .await
        .expect("connected");
    client.send_binary(vec![7u8; 1000]).await.expect("sent");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
    assert!(matches!(seen.last(), Some(SessionEvent::Message(m)) if m.len() == 1000), "at the limit: accepted");
    client.send_binary(vec![7u8; 1001]).await.expect("sent");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    let closed = seen.iter().find_map(|e| match e {
        SessionEvent::Disconnected { reason: DisconnectReason::Closed(c) } => Some(c.clone()),
        _ => None,
    });
    let closed = closed.expect("a disconnect with the close");
    assert_eq!(closed.sent_code.map(u16::from), Some(1009), "{closed:?}");
    assert!(
        matches!(
            closed.error,
            Some(ConnectionError::Protocol(ProtocolError::MessageTooLarge { size: 1001, limit: 1000 }))
        ),
        "{closed:?}"
    );
}

/// A server that pings the client once, then reports the first pong it reads
/// (tungstenite answers the client's pings by itself while it reads).
async fn pinging_server() -> (std::net::SocketAddr, tokio::sync::oneshot::Receiver<Vec<u8>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind on loopback");
    let addr = listener.local_addr().expect("bound address");
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
        if ws.send(WsMessage::Ping(Bytes::from_static(b"srv"))).await.is_err() {
            return;
        }
        let mut tx = Some(tx);
        while let Some(Ok(message)) = ws.next().await {
            if let (WsMessage::Pong(payload), Some(tx)) = (message, tx.take()) {
                let _ = tx.send(payload.to_vec());
            }
        }
    });
    (addr, rx)
}

async fn pings_and_pongs_reach_the_user_who_can_answer_by_hand<R: Runtime>() {
    let (addr, pong) = pinging_server().await;
    let (client, mut events) = builder::<R>(&format!("ws://{addr}/"))
        .control_events(true)
        .auto_pong(false)
        .connect()
        .await
        .expect("connected");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Ping(_))).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Ping(Bytes::from_static(b"srv"))));
    client.pong(Bytes::from_static(b"srv")).await.expect("answered by hand");
    let answered = tokio::time::timeout(wslink_tests::scenario::WAIT, pong).await.expect("in time").expect("a pong");
    assert_eq!(answered, b"srv");
    client.ping(Bytes::from_static(b"mine")).await.expect("pinged");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Pong(_))).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Pong(Bytes::from_static(b"mine"))));
    client.close(wslink_core::CloseCode::Normal, "").await.expect("closed");
}

async fn prepare_may_drop_a_message_and_a_dropped_request_fails_at_once<R: Runtime>() {
    let addr = echo_server(None).await;
    let (client, mut events) = builder::<R>(&format!("ws://{addr}/"))
        .prepare_or_drop(|m| match &m {
            Message::Text(t) if t.as_str() == "skip" || t.as_str().contains("private/") => None,
            _ => Some(m),
        })
        .connect()
        .await
        .expect("connected");
    client.send_text("skip").await.expect("handed over");
    assert_eq!(client.request("private/buy", None, None).await, Err(RequestError::Dropped));
    client.send_text("keep").await.expect("sent");
    // The echo server echoes what it got: only "keep" came.
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
    assert_eq!(seen.last(), Some(&SessionEvent::Message(Message::Text("keep".into()))));
    client.close(wslink_core::CloseCode::Normal, "").await.expect("closed");
    let rest = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert!(!rest.iter().any(|e| matches!(e, SessionEvent::Message(_))), "nothing else was echoed: {rest:?}");
}
