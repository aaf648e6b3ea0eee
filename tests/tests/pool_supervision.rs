//! The supervising pool on both runtimes, over real sockets: members whose
//! connections or server die come back, the pool grows and shrinks while it
//! runs, its one stream tags every event with the member's index, and a pool
//! used only for requests keeps answering them under a feed nobody reads.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use wslink_adapter::{Error, MemberEvents, Pool, PoolError, PoolEvent, PoolEvents, RequestError, Runtime};
use wslink_core::{CloseReason, SessionEvent};
use wslink_tests::peers::{refusing_server, ExchangeServer};
use wslink_tests::proxy::{Fault, FaultProxy};
use wslink_tests::scenario::{builder, run, WAIT};
use wslink_tests::scenarios;

scenarios!(
    members_come_back_after_their_connections_and_their_server_die,
    the_pool_grows_and_shrinks_while_it_runs,
    a_request_only_pool_answers_through_a_feed_nobody_reads,
    an_unread_stream_of_every_event_pushes_back_on_the_feed,
    a_filtered_stream_carries_only_what_it_keeps,
    connect_fails_fast_when_a_first_session_fails,
    dropping_every_handle_closes_every_member
);

/// Reads the pool's stream until `want` has held for one event of each of
/// `members`; fails after `WAIT`. Returns everything read.
async fn until_each(
    events: &mut PoolEvents,
    members: &[usize],
    mut want: impl FnMut(&PoolEvent) -> Option<usize>,
) -> Vec<PoolEvent> {
    let mut seen = Vec::new();
    let mut left: BTreeSet<usize> = members.iter().copied().collect();
    let done = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            if let Some(i) = want(&event) {
                left.remove(&i);
            }
            seen.push(event);
            if left.is_empty() {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(done, Ok(true), "members {left:?} never got there; saw {seen:?}");
    seen
}

fn connected(e: &PoolEvent) -> Option<usize> {
    match e {
        PoolEvent::Member { index, event: SessionEvent::Connected { .. } } => Some(*index),
        _ => None,
    }
}

async fn members_come_back_after_their_connections_and_their_server_die<R: Runtime>() {
    let server = ExchangeServer::start(true).await;
    let proxy = FaultProxy::start(server.addr).await;
    let url = format!("ws://{}/", proxy.addr);
    // Each session gives up after two failed attempts in a row; the pool then starts it again.
    let (pool, mut events) = Pool::builder(move |_| Ok(builder::<R>(&url).max_attempts(Some(2))))
        .size(3)
        .connect()
        .await
        .expect("pool connected");
    assert_eq!(pool.members(), [0, 1, 2]);

    // Connections die: each session reconnects by itself, no restart.
    server.drop_all();
    let mut dropped = BTreeSet::new();
    let seen = until_each(&mut events, &[0, 1, 2], |e| match e {
        PoolEvent::Member { index, event: SessionEvent::Disconnected { .. } } => {
            dropped.insert(*index);
            None
        }
        PoolEvent::Member { index, event: SessionEvent::Connected { .. } } => dropped.contains(index).then_some(*index),
        _ => None,
    })
    .await;
    let disconnects =
        seen.iter().filter(|e| matches!(e, PoolEvent::Member { event: SessionEvent::Disconnected { .. }, .. }));
    assert!(disconnects.count() >= 3, "each member saw its connection die: {seen:?}");
    assert!(!seen.iter().any(|e| matches!(e, PoolEvent::Restarting { .. })), "{seen:?}");

    // The server is gone: every session gives up, and the pool restarts each.
    proxy.set(Fault::Cut { rst: false });
    until_each(&mut events, &[0, 1, 2], |e| match e {
        PoolEvent::Member { index, event: SessionEvent::Closed { reason: CloseReason::GaveUp { .. } } } => Some(*index),
        _ => None,
    })
    .await;
    until_each(&mut events, &[0, 1, 2], |e| match e {
        PoolEvent::Restarting { index, restarts: 1.., .. } => Some(*index),
        _ => None,
    })
    .await;
    let result = pool.request_balanced("public/get_time", None, None).await;
    assert!(matches!(result, Err(PoolError::NoneOpen) | Err(PoolError::Exhausted { .. })), "{result:?}");

    // The server is back: every member opens again and answers.
    proxy.set(Fault::Pass);
    let seen = until_each(&mut events, &[0, 1, 2], connected).await;
    assert!(seen.iter().any(|e| matches!(e, PoolEvent::Started { restarts: 1.., .. })), "{seen:?}");
    assert_eq!(pool.members(), [0, 1, 2], "the same members, restarted");
    let (_, response) = pool.request_balanced("public/get_time", None, None).await.expect("answered again");
    assert!(!response.is_error);
    pool.close().await;
}

async fn the_pool_grows_and_shrinks_while_it_runs<R: Runtime>() {
    let server = ExchangeServer::start(true).await;
    let url = format!("ws://{}/", server.addr);
    let (pool, mut events) = Pool::connect(2, move || Ok(builder::<R>(&url))).await.expect("pool connected");

    assert_eq!(pool.grow(2), [2, 3]);
    until_each(&mut events, &[2, 3], connected).await;
    assert_eq!(pool.size(), 4);

    // A removed member closes, hands over its last events, and is never chosen again.
    assert!(pool.remove(0).await);
    let seen = until_each(&mut events, &[0], |e| match e {
        PoolEvent::Removed { index } => Some(*index),
        _ => None,
    })
    .await;
    let closed =
        seen.iter().position(|e| matches!(e, PoolEvent::Member { index: 0, event: SessionEvent::Closed { .. } }));
    assert!(closed.is_some_and(|c| c < seen.len() - 1), "Closed before Removed: {seen:?}");
    assert!(!pool.remove(0).await, "already gone");
    for _ in 0..8 {
        let (i, _) = pool.request_balanced("public/get_time", None, None).await.expect("answered");
        assert_ne!(i, 0, "a removed member is never chosen");
    }

    // Shrinking takes the newest; a later growth gets a new index, never a used one.
    assert_eq!(pool.shrink(1).await, [3]);
    assert_eq!(pool.members(), [1, 2]);
    // `shrink` returns once the session has closed; its last events follow in the stream.
    until_each(&mut events, &[3], |e| match e {
        PoolEvent::Removed { index } => Some(*index),
        _ => None,
    })
    .await;
    assert_eq!(pool.grow(1), [4]);
    until_each(&mut events, &[4], connected).await;

    // Closing removes every member, and the stream ends after their last events.
    pool.close().await;
    let rest = tokio::time::timeout(WAIT, async {
        let mut rest = Vec::new();
        while let Some(e) = events.recv().await {
            rest.push(e);
        }
        rest
    })
    .await
    .expect("the stream ends");
    let removed: BTreeSet<usize> =
        rest.iter().filter_map(|e| if let PoolEvent::Removed { index } = e { Some(*index) } else { None }).collect();
    assert_eq!(removed, BTreeSet::from([1, 2, 4]), "{rest:?}");
    assert_eq!(pool.size(), 0);
}

/// Feed messages per round; more than twice what the pool and a member may
/// hold unread (4 batches in the pool's stream, one in the member task's
/// hands, one in the member's stream and one the driver collects: each at
/// most 1024 events plus one read's worth, about 3 200 of these messages),
/// so that a member whose events nobody takes stops reading within one round.
const ROUND: u64 = 50_000;
/// Rounds per connection: 2 x 50 000 = 100 000 feed messages.
const ROUNDS: u64 = 2;

/// A feed server: on each connection it sends `ROUND` feed messages, then
/// waits for a request and answers it, `ROUNDS` times; then it answers
/// requests only. A request is thus answered only after its connection's
/// client read every feed message before it. Counts feed messages written.
async fn feed_server() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind on loopback");
    let addr = listener.local_addr().expect("bound address");
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                let (mut sink, mut stream) = ws.split();
                let (requests_tx, mut requests) = mpsc::channel::<serde_json::Value>(16);
                tokio::spawn(async move {
                    while let Some(Ok(WsMessage::Text(text))) = stream.next().await {
                        let Ok(request) = serde_json::from_str::<serde_json::Value>(text.as_str()) else { return };
                        if requests_tx.send(request).await.is_err() {
                            return;
                        }
                    }
                });
                let mut round = 0;
                loop {
                    if round < ROUNDS {
                        for n in 0..ROUND {
                            let feed = format!(r#"{{"channel":"feed","n":{}}}"#, round * ROUND + n);
                            if sink.feed(WsMessage::text(feed)).await.is_err() {
                                return;
                            }
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        if sink.flush().await.is_err() {
                            return;
                        }
                        round += 1;
                    }
                    let Some(request) = requests.recv().await else { return };
                    let reply = serde_json::json!({"jsonrpc": "2.0", "id": request["id"], "result": "ok"});
                    if sink.send(WsMessage::text(reply.to_string())).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, written)
}

async fn a_request_only_pool_answers_through_a_feed_nobody_reads<R: Runtime>() {
    let (addr, written) = feed_server().await;
    let url = format!("ws://{addr}/");
    let (pool, _unread) = Pool::builder(move |_| Ok(builder::<R>(&url)))
        .size(2)
        .member_events(MemberEvents::Discard)
        .connect()
        .await
        .expect("pool connected");
    // Each answer comes after another round of the feed on its connection:
    // ROUNDS answers on each member mean both read all 100 000 feed messages.
    for index in pool.members() {
        let client = pool.client(index).expect("a live session");
        for k in 0..ROUNDS {
            let answered = client.request("public/get_time", None, Some(WAIT)).await;
            let sent = written.load(Ordering::SeqCst);
            assert!(answered.is_ok(), "member {index}, request {k}, after {sent} feed messages: {answered:?}");
        }
    }
    assert_eq!(written.load(Ordering::SeqCst), 2 * ROUNDS * ROUND, "both connections sent the whole feed");
    // And then some, at the server's pace.
    for _ in 0..10 {
        pool.request_balanced("public/get_time", None, Some(WAIT)).await.expect("answered");
    }
    pool.close().await;
}

/// The control for the test above: keeping every event and not reading them
/// stalls the members, as it should (nothing is dropped unasked), so the
/// first answer behind a round of the feed never comes.
async fn an_unread_stream_of_every_event_pushes_back_on_the_feed<R: Runtime>() {
    let (addr, _written) = feed_server().await;
    let url = format!("ws://{addr}/");
    let (pool, mut events) =
        Pool::builder(move |_| Ok(builder::<R>(&url))).size(1).connect().await.expect("pool connected");
    let stalled = pool.request_balanced("public/get_time", None, Some(Duration::from_secs(2))).await;
    assert_eq!(
        stalled.map(|(i, _)| i),
        Err(PoolError::Exhausted { attempts: 1, last: RequestError::Timeout }),
        "reading stopped behind the unread stream"
    );
    // Reading the stream lets every feed message through, in order.
    let mut next = 0;
    while next < ROUND {
        let event = tokio::time::timeout(WAIT, events.recv()).await.expect("an event").expect("the stream goes on");
        if let PoolEvent::Member { index: 0, event: SessionEvent::Message(m) } = event {
            let text = std::str::from_utf8(m.as_bytes()).expect("text");
            assert_eq!(text, format!(r#"{{"channel":"feed","n":{next}}}"#));
            next += 1;
        }
    }
    pool.close().await;
}

async fn a_filtered_stream_carries_only_what_it_keeps<R: Runtime>() {
    let (addr, _written) = feed_server().await;
    let url = format!("ws://{addr}/");
    let (pool, mut events) = Pool::builder(move |_| Ok(builder::<R>(&url)))
        .size(1)
        .member_events(MemberEvents::only(|e| matches!(e, SessionEvent::Message(_))))
        .connect()
        .await
        .expect("pool connected");
    let first = tokio::time::timeout(WAIT, events.recv()).await.expect("an event");
    assert_eq!(first, Some(PoolEvent::Started { index: 0, restarts: 0 }), "the supervisor's events always go");
    for n in 0..ROUND {
        let event = tokio::time::timeout(WAIT, events.recv()).await.expect("an event").expect("the stream goes on");
        let PoolEvent::Member { index: 0, event: SessionEvent::Message(m) } = event else {
            panic!("only messages are kept, got {event:?} at {n}");
        };
        assert_eq!(m.as_bytes(), format!(r#"{{"channel":"feed","n":{n}}}"#).as_bytes());
    }
    pool.close().await;
}

async fn connect_fails_fast_when_a_first_session_fails<R: Runtime>() {
    let addr = refusing_server().await;
    let url = format!("ws://{addr}/");
    let result = Pool::builder(move |_| Ok(builder::<R>(&url))).size(3).connect().await;
    assert!(matches!(result, Err(Error::Connect(_))), "{result:?}");
    // A builder that fails is reported the same way.
    let result = Pool::builder(|_| wslink_adapter::Builder::<R>::new("http://not-a-websocket")).connect().await;
    assert!(matches!(result, Err(Error::Url(_))), "{result:?}");
}

async fn dropping_every_handle_closes_every_member<R: Runtime>() {
    let server = ExchangeServer::start(true).await;
    let url = format!("ws://{}/", server.addr);
    let (pool, events) = Pool::connect(3, move || Ok(builder::<R>(&url))).await.expect("pool connected");
    let copy = pool.clone();
    drop(pool);
    assert_eq!(copy.size(), 3, "a handle left keeps the pool");
    drop((copy, events));
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            let closes = server.log.lock().expect("log lock").closes.clone();
            if closes.len() == 3 {
                return closes;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every member closed");
    assert!(closed.iter().all(|(_, code)| *code == Some(1000)), "closed cleanly: {closed:?}");
}
