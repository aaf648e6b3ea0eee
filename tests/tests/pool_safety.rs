//! The pool never sends a request twice unless told it is safe to: a request
//! that reached a server whose connection then died may have taken effect
//! (for an order-entry API, an order placed), so `request_balanced` returns
//! `ConnectionLost` instead of failing over, and only
//! `request_balanced_idempotent` tries the next client. Both runtimes, real
//! sockets; the server counts what it received.

use std::time::Duration;

use wslink_adapter::{Pool, PoolError, PoolEvent, RequestError, Runtime};
use wslink_core::SessionEvent;
use wslink_tests::peers::hanging_up_server;
use wslink_tests::scenario::{builder, run, WAIT};
use wslink_tests::scenarios;

scenarios!(a_request_lost_after_sending_is_not_sent_again, an_idempotent_request_fails_over_after_a_lost_connection);

/// Long enough for a failover, had there been one, to reach the server.
const SETTLE: Duration = Duration::from_millis(300);

async fn a_request_lost_after_sending_is_not_sent_again<R: Runtime>() {
    let (addr, received) = hanging_up_server(1).await;
    let url = format!("ws://{addr}/");
    let (pool, _events) = Pool::connect(2, move || Ok(builder::<R>(&url))).await.expect("pool connected");
    let result = pool.request_balanced("private/buy", Some(r#"{"amount":1}"#), None).await;
    assert_eq!(
        result.map(|(i, _)| i),
        Err(PoolError::Exhausted { attempts: 1, last: RequestError::ConnectionLost }),
        "the lost order is reported, not placed again"
    );
    tokio::time::sleep(SETTLE).await;
    assert_eq!(received.lock().expect("log lock").len(), 1, "the order reached a server exactly once");
}

async fn an_idempotent_request_fails_over_after_a_lost_connection<R: Runtime>() {
    let (addr, received) = hanging_up_server(1).await;
    let url = format!("ws://{addr}/");
    // Members started one after another, so that member k is connection k.
    let (pool, mut events) = Pool::connect(1, move || Ok(builder::<R>(&url))).await.expect("pool connected");
    assert_eq!(pool.grow(1), [1]);
    let second_open = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            if matches!(event, PoolEvent::Member { index: 1, event: SessionEvent::Connected { .. } }) {
                return true;
            }
        }
        false
    });
    assert_eq!(second_open.await, Ok(true), "member 1 opened");
    let (i, response) =
        pool.request_balanced_idempotent("public/get_time", None, None).await.expect("answered on the other client");
    assert!(!response.is_error);
    tokio::time::sleep(SETTLE).await;
    let on = received.lock().expect("log lock").clone();
    assert_eq!(on.len(), 2, "received twice: lost once, then answered");
    assert_ne!(on[0], on[1], "the second time on another connection");
    assert_eq!(on[1], i, "the answer came from the client that received it second");
}
