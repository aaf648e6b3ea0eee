//! Bounded on every side, on both runtimes against real sockets:
//!
//! - a server that stops reading: a ping flood and a send loop each stay
//!   within the write budget (the figures the library reports, and the
//!   resident memory of a child process), the sender waits and `try_send`
//!   answers `Full`; a peer that takes nothing for `write_timeout` ends the
//!   link with `WriteTimeout`, which a policy can match;
//! - an `InlineClient` whose owner does not poll it for a while finds the
//!   link's data waiting, not a silence;
//! - `max_attempts` gives up only on attempts that failed to open;
//! - the first `Connected` is on the stream;
//! - a client used only for requests never waits for a reader.

use std::sync::atomic::Ordering;
use std::time::Duration;

use wslink_adapter::{EventFilter, RequestError, Runtime};
use wslink_core::hooks::{Decision, ReconnectPolicy, SessionError};
use wslink_core::{
    BackoffConfig, CloseReason, DisconnectReason, Message, PingConfig, SessionEvent, DEFAULT_WRITE_BUDGET,
};
use wslink_tests::peers::{
    cutting_server, echo_server, flood_message, flood_on_signal_server, large_answer_server, unread_server,
};
use wslink_tests::scenario::{builder, run, until, WAIT};
use wslink_tests::scenarios;

scenarios!(
    a_ping_flood_from_a_peer_that_never_reads_stays_within_the_budget,
    a_send_loop_to_a_peer_that_never_reads_waits_at_the_budget,
    a_peer_that_takes_nothing_ends_the_link_with_a_write_timeout,
    an_inline_owner_that_pauses_does_not_make_the_link_look_dead,
    max_attempts_never_gives_up_on_a_server_that_lets_the_client_in,
    the_first_connected_is_on_the_stream,
    a_request_only_client_never_waits_for_a_reader
);

/// The figures the child printed, by name.
struct Figures(String);

impl Figures {
    fn get(&self, name: &str) -> u64 {
        let value = self.0.split_whitespace().find_map(|kv| kv.strip_prefix(&format!("{name}="))).expect(name);
        match value {
            "true" => 1,
            "false" => 0,
            n => n.parse().expect("a number"),
        }
    }
}

/// Runs `write_stall_child` on this runtime, in `mode`, against `url`.
async fn child<R: Runtime>(mode: &str, url: &str) -> Figures {
    let runtime = if std::any::type_name::<R>().contains("Smol") { "smol" } else { "tokio" };
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_write_stall_child"));
    command.args([runtime, mode, url]).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(50), command.output())
        .await
        .expect("the child finished within 50 s")
        .expect("the child ran");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "child failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    Figures(stdout)
}

/// More than the budget (1 MiB), the read buffers and the runtime's own
/// growth (about 2.5 MB in all here); far less than an unbounded client
/// reaches (the ping flood holds 65 MB of pongs, the send loop 200 MB of
/// messages).
const GROWTH_KB: u64 = 8 << 10;

async fn a_ping_flood_from_a_peer_that_never_reads_stays_within_the_budget<R: Runtime>() {
    let addr = unread_server(500_000).await;
    let f = child::<R>("pings", &format!("ws://{addr}/")).await;
    eprintln!("pings on {}: {}", std::any::type_name::<R>(), f.0.trim());
    let growth = f.get("peak_kb") - f.get("before_kb");
    assert!(growth < GROWTH_KB, "resident memory grew by {growth} kB: {}", f.0);
    assert!(f.get("buffered") <= (DEFAULT_WRITE_BUDGET + 131) as u64, "{}", f.0);
}

async fn a_send_loop_to_a_peer_that_never_reads_waits_at_the_budget<R: Runtime>() {
    let addr = unread_server(0).await;
    let f = child::<R>("sends", &format!("ws://{addr}/")).await;
    eprintln!("sends on {}: {}", std::any::type_name::<R>(), f.0.trim());
    assert_eq!(f.get("waited"), 1, "a send waits once the budget is full: {}", f.0);
    assert_eq!(f.get("full"), 1, "try_send answers Full meanwhile: {}", f.0);
    assert!(f.get("buffered") <= (DEFAULT_WRITE_BUDGET + 1024 + 8) as u64, "{}", f.0);
    let growth = f.get("peak_kb") - f.get("before_kb");
    assert!(growth < GROWTH_KB, "resident memory grew by {growth} kB: {}", f.0);
}

/// Stops on a write timeout, reconnects on anything else.
struct StopOnWriteTimeout;

impl ReconnectPolicy for StopOnWriteTimeout {
    fn on_disconnect(&mut self, reason: &DisconnectReason, _attempt: u32) -> Decision {
        match reason {
            DisconnectReason::WriteTimeout => Decision::Stop,
            _ => Decision::Reconnect,
        }
    }
    fn on_error(&mut self, error: &SessionError) -> Decision {
        assert_eq!(error, &SessionError::WriteTimeout, "the only error here");
        Decision::Reconnect
    }
}

async fn a_peer_that_takes_nothing_ends_the_link_with_a_write_timeout<R: Runtime>() {
    let addr = unread_server(0).await;
    let (client, mut events) = builder::<R>(&format!("ws://{addr}/"))
        .write_budget(64 << 10)
        .write_timeout(Some(Duration::from_millis(300)))
        .policy(StopOnWriteTimeout)
        .connect()
        .await
        .expect("connected");
    // Fill the kernel's buffers and the budget; the sends then wait for room
    // that never comes, until the link ends and they are queued for the next.
    let sender = tokio::spawn(async move {
        let mut refused = None;
        for _ in 0..100_000 {
            if let Err(e) = client.send_text("w".repeat(4096)).await {
                refused = Some(e);
                break;
            }
        }
        refused
    });
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Closed { .. })).await;
    assert!(seen.contains(&SessionEvent::Disconnected { reason: DisconnectReason::WriteTimeout }), "{seen:?}");
    assert_eq!(seen.last(), Some(&SessionEvent::Closed { reason: CloseReason::Stopped }));
    let refused = tokio::time::timeout(WAIT, sender).await.expect("the sender was answered").expect("joined");
    assert!(refused.is_some(), "the waiting send was refused once the session closed");
}

async fn an_inline_owner_that_pauses_does_not_make_the_link_look_dead<R: Runtime>() {
    const COUNT: usize = 30_000;
    let (addr, go) = flood_on_signal_server(COUNT).await;
    let ping = PingConfig::new(Duration::from_millis(200), Duration::from_millis(100));
    let mut link = builder::<R>(&format!("ws://{addr}/"))
        .ping(Some(ping))
        .idle_timeout(Duration::from_millis(300))
        .connect_inline()
        .await
        .expect("connected");
    let first = tokio::time::timeout(WAIT, async {
        loop {
            match link.recv().await {
                Some(SessionEvent::Message(m)) => return m,
                Some(_) => {}
                None => panic!("the stream ended"),
            }
        }
    })
    .await
    .expect("the first message");
    assert_eq!(first, Message::Text(flood_message(0).into()));
    // The owner is busy elsewhere for three idle timeouts: the link is not
    // polled, while the server floods it (only now, so that nothing was read
    // ahead to pause reading before the owner's pause began).
    go.notify_one();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut next = 1;
    let rest = tokio::time::timeout(WAIT, async {
        while next < COUNT {
            match link.recv().await {
                Some(SessionEvent::Message(m)) => {
                    assert_eq!(m, Message::Text(flood_message(next).into()), "in order, none lost");
                    next += 1;
                }
                Some(SessionEvent::Disconnected { reason }) => panic!("after {next} messages: {reason:?}"),
                Some(_) => {}
                None => panic!("the stream ended"),
            }
        }
    })
    .await;
    assert!(rest.is_ok(), "{next} of {COUNT} messages in time");
}

async fn max_attempts_never_gives_up_on_a_server_that_lets_the_client_in<R: Runtime>() {
    let (addr, accepted) = cutting_server(Duration::from_millis(100)).await;
    let backoff = BackoffConfig::default().initial(Duration::from_millis(10)).max(Duration::from_millis(50));
    let (_client, mut events) = builder::<R>(&format!("ws://{addr}/"))
        .backoff(backoff)
        .max_attempts(Some(2))
        .connect()
        .await
        .expect("connected");
    let mut connected = 0;
    let seen = until(&mut events, |e| {
        if matches!(e, SessionEvent::Connected { .. }) {
            connected += 1;
        }
        connected == 5 || matches!(e, SessionEvent::Closed { .. })
    })
    .await;
    assert!(!seen.iter().any(|e| matches!(e, SessionEvent::Closed { .. })), "{seen:?}");
    for e in &seen {
        match e {
            SessionEvent::Connected { attempt, .. } | SessionEvent::Reconnecting { attempt, .. } => {
                assert_eq!(*attempt, 1, "no attempt failed to open: {seen:?}")
            }
            _ => {}
        }
    }
    assert!(accepted.load(Ordering::SeqCst) >= 5);
}

async fn the_first_connected_is_on_the_stream<R: Runtime>() {
    let addr = echo_server(None).await;
    let url = format!("ws://{addr}/");
    let (client, mut events) = builder::<R>(&url).connect().await.expect("connected");
    client.send_text("after").await.expect("sent");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
    let connected = seen.iter().position(|e| matches!(e, SessionEvent::Connected { attempt: 1, .. }));
    assert!(connected.is_some(), "the first connection is on the stream: {seen:?}");
    assert!(matches!(seen.first(), Some(SessionEvent::StateChanged { .. })), "from the very start: {seen:?}");

    let mut link = builder::<R>(&url).connect_inline().await.expect("connected");
    let first = tokio::time::timeout(WAIT, async {
        loop {
            match link.recv().await {
                Some(SessionEvent::StateChanged { .. }) => {}
                other => return other,
            }
        }
    })
    .await
    .expect("an event");
    assert!(matches!(first, Some(SessionEvent::Connected { attempt: 1, .. })), "{first:?}");
}

async fn a_request_only_client_never_waits_for_a_reader<R: Runtime>() {
    // A response too large for the client: the connection fails at once,
    // and so does the request, however long the close timeout.
    let addr = large_answer_server(64, 0).await;
    let (client, _events) = builder::<R>(&format!("ws://{addr}/"))
        .max_message_size(32)
        .config(|c| c.connection.close_timeout = Duration::from_secs(3600))
        .event_filter(EventFilter::Discard)
        .connect()
        .await
        .expect("connected");
    let failed = tokio::time::timeout(WAIT, client.request("public/get_time", None, None)).await;
    assert_eq!(failed.expect("ended well before the close timeout"), Err(RequestError::ConnectionLost));

    // Requests answered behind 1.5 MB of feed nobody reads, one after another.
    let addr = large_answer_server(16, 1500).await;
    let (client, _events) =
        builder::<R>(&format!("ws://{addr}/")).event_filter(EventFilter::Discard).connect().await.expect("connected");
    for _ in 0..3 {
        let response = client.request("public/get_time", None, Some(WAIT)).await.expect("answered");
        assert!(!response.is_error);
    }
}
