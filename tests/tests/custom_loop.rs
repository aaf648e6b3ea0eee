//! The custom event loop (`std::net`, blocking, no runtime) against a real
//! peer: tokio-tungstenite's server speaking JSON-RPC, which drops the link once.

use wslink_core::{DisconnectReason, SessionEvent};
use wslink_tests::blocking::walkthrough;
use wslink_tests::peers::ExchangeServer;

#[test]
fn a_blocking_loop_connects_subscribes_requests_pings_and_reconnects() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let server = runtime.block_on(ExchangeServer::start(true));
    let (events, session) = walkthrough(&format!("ws://{}/", server.addr), || server.drop_all(), false);
    let count = |f: fn(&SessionEvent) -> bool| events.iter().filter(|e| f(e)).count();
    assert_eq!(count(|e| matches!(e, SessionEvent::Connected { .. })), 2, "{events:?}");
    assert_eq!(count(|e| matches!(e, SessionEvent::Subscribed { .. })), 2, "resubscribed after the drop");
    assert_eq!(count(|e| matches!(e, SessionEvent::Disconnected { reason: DisconnectReason::Closed(_) })), 1);
    assert_eq!(count(|e| matches!(e, SessionEvent::Response { .. })), 4, "three before the drop, one after");
    assert!(session.heartbeat_health().last_rtt.is_some(), "pings were answered");
    assert_eq!(&server.methods_on(0)[..2], ["public/auth", "public/subscribe"]);
    assert_eq!(&server.methods_on(1)[..2], ["public/auth", "public/subscribe"]);
}
