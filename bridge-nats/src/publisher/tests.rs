use std::pin::Pin;
use std::sync::Mutex;
use std::task::Context;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::envelope::{header, Kind};

/// What the fake does with one publish.
enum Plan {
    /// Taken, acked as stored.
    Ack,
    /// Taken, acked as a duplicate.
    Duplicate,
    /// Not taken (the client's buffer full, NATS away).
    NotTaken,
    /// Not taken: larger than the server's `max_payload`.
    TooLarge,
    /// Taken; the ack comes when the test sends it.
    Later(oneshot::Receiver<Result<Stored, Refusal>>),
    /// Taken; no ack ever comes.
    Silent,
}

/// A transport that follows a plan, one step per publish (then acks
/// everything), and records what it was handed, in order.
struct Fake {
    plan: Arc<Mutex<VecDeque<Plan>>>,
    sent: Arc<Mutex<Vec<Outgoing>>>,
    tx: mpsc::UnboundedSender<Ack>,
    acks: FakeAcks,
}

struct FakeAcks(mpsc::UnboundedReceiver<Ack>);

impl Stream for FakeAcks {
    type Item = Ack;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Ack>> {
        self.0.poll_recv(cx)
    }
}

fn stored(seq: u64, duplicate: bool) -> Result<Stored, Refusal> {
    Ok(Stored { stream_seq: seq, duplicate })
}

impl Transport for Fake {
    type Acks = FakeAcks;

    fn send(&self, message: &Outgoing, token: u64) -> impl Future<Output = Result<(), Refusal>> + Send {
        self.sent.lock().unwrap().push(message.clone());
        let step = self.plan.lock().unwrap().pop_front().unwrap_or(Plan::Ack);
        let tx = self.tx.clone();
        async move {
            match step {
                Plan::Ack => drop(tx.send((token, stored(token, false)))),
                Plan::Duplicate => drop(tx.send((token, stored(token, true)))),
                Plan::NotTaken => return Err(Refusal::transient("broken pipe")),
                Plan::TooLarge => return Err(Refusal::permanent("max payload size exceeded")),
                Plan::Later(rx) => {
                    tokio::spawn(async move {
                        let answer = rx.await.unwrap_or_else(|_| Err(Refusal::transient("dropped")));
                        let _ = tx.send((token, answer));
                    });
                }
                Plan::Silent => {}
            }
            Ok(())
        }
    }

    fn acks(&mut self) -> &mut FakeAcks {
        &mut self.acks
    }
}

struct Handle {
    plan: Arc<Mutex<VecDeque<Plan>>>,
    sent: Arc<Mutex<Vec<Outgoing>>>,
    tx: mpsc::UnboundedSender<Ack>,
}

impl Handle {
    fn plan(&self, steps: impl IntoIterator<Item = Plan>) {
        self.plan.lock().unwrap().extend(steps);
    }

    fn ids(&self) -> Vec<String> {
        self.sent.lock().unwrap().iter().map(|m| m.id.clone()).collect()
    }
}

fn message(id: &str, kind: Kind) -> Outgoing {
    Outgoing {
        subject: Subject::from("p.e.c"),
        id: id.into(),
        kind,
        connection: Arc::from("a/e/0.1/r"),
        seq: 7,
        exchange_seq: Some(41),
        epoch: 2,
        received_ms: 1,
        payload: Bytes::from_static(b"{}"),
        received: Instant::now(),
    }
}

fn data(id: &str) -> Outgoing {
    message(id, Kind::Message)
}

fn gap(id: &str) -> Outgoing {
    message(id, Kind::Gap(crate::envelope::Gap::Sequence { from: 1, to: 2 }))
}

fn publisher(window: usize) -> (Publisher<Fake>, Handle, Arc<Stats>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let fake = Fake { plan: Arc::default(), sent: Arc::default(), tx: tx.clone(), acks: FakeAcks(rx) };
    let handle = Handle { plan: fake.plan.clone(), sent: fake.sent.clone(), tx };
    let stats = Arc::new(Stats::default());
    let p = Publisher::new(fake, window, Duration::from_secs(1), "p.~rejected".into(), stats.clone());
    (p, handle, stats)
}

/// Runs the publisher as the bridge's loop does until nothing is left (at most 200 turns).
async fn settle_all(p: &mut Publisher<Fake>) {
    for _ in 0..200 {
        if p.in_flight() + p.backlog() == 0 {
            return;
        }
        p.pump().await;
        let hold = p.held_until();
        tokio::select! {
            biased;
            () = p.settle_next(), if p.in_flight() > 0 => {}
            () = tokio::time::sleep_until(hold.unwrap_or_else(Instant::now)), if hold.is_some() => {}
            else => {}
        }
    }
    panic!("the publisher did not settle in 200 turns");
}

#[tokio::test(start_paused = true)]
async fn the_window_bounds_what_is_in_flight() {
    let (mut p, fake, stats) = publisher(2);
    let acks: Vec<_> = (0..5)
        .map(|_| {
            let (tx, rx) = oneshot::channel();
            fake.plan([Plan::Later(rx)]);
            tx
        })
        .collect();
    for i in 0..5 {
        p.push(data(&format!("m{i}")));
    }
    p.pump().await;
    assert_eq!((p.in_flight(), p.backlog(), p.ready()), (2, 3, false));
    assert_eq!(fake.ids(), ["m0", "m1"]);
    for (i, tx) in acks.into_iter().enumerate() {
        let _ = tx.send(stored(i as u64 + 1, false));
    }
    settle_all(&mut p).await;
    assert!(p.ready());
    let s = stats.snapshot();
    assert_eq!((s.published, s.max_in_flight), (5, 2));
}

/// A message the client did not take goes back where it came from: the
/// failures of older messages still in flight are sent again before it.
#[tokio::test(start_paused = true)]
async fn resends_keep_the_order_messages_were_queued_in() {
    let (mut p, fake, stats) = publisher(4);
    let (tx0, rx0) = oneshot::channel();
    fake.plan([Plan::Later(rx0), Plan::NotTaken]);
    for id in ["m0", "m1", "m2"] {
        p.push(data(id));
    }
    p.pump().await;
    // m0 in flight, m1 not taken (held back), m2 not tried yet.
    assert_eq!(fake.ids(), ["m0", "m1"]);
    let _ = tx0.send(Err(Refusal::transient("timed out")));
    p.settle_next().await;
    settle_all(&mut p).await;
    assert_eq!(fake.ids(), ["m0", "m1", "m0", "m1", "m2"]);
    assert_eq!(stats.snapshot().published, 3);
}

/// Acks that fail out of order are sent again in the order first queued.
#[tokio::test(start_paused = true)]
async fn failed_acks_are_sent_again_in_queue_order() {
    let (mut p, fake, _) = publisher(4);
    let (tx0, rx0) = oneshot::channel();
    let (tx1, rx1) = oneshot::channel();
    let (tx0b, rx0b) = oneshot::channel();
    fake.plan([Plan::Later(rx0), Plan::Later(rx1), Plan::Later(rx0b)]);
    p.push(data("m0"));
    p.push(data("m1"));
    p.pump().await;
    let _ = tx0.send(Err(Refusal::transient("timed out")));
    p.settle_next().await;
    // m0 is sent again while m1 is still in flight, then both fail.
    tokio::time::sleep_until(p.held_until().unwrap()).await;
    p.pump().await;
    assert_eq!(fake.ids(), ["m0", "m1", "m0"]);
    let _ = tx1.send(Err(Refusal::transient("timed out")));
    let _ = tx0b.send(Err(Refusal::transient("timed out")));
    p.settle_next().await;
    if p.in_flight() > 0 {
        p.settle_next().await;
    }
    settle_all(&mut p).await;
    assert_eq!(fake.ids()[3..], ["m0", "m1"]);
}

/// Acks that arrive out of order settle their own publishes.
#[tokio::test(start_paused = true)]
async fn acks_out_of_order_settle_their_own_publishes() {
    let (mut p, fake, stats) = publisher(4);
    let (tx0, rx0) = oneshot::channel();
    let (tx1, rx1) = oneshot::channel();
    fake.plan([Plan::Later(rx0), Plan::Later(rx1)]);
    p.push(data("m0"));
    p.push(gap("g1"));
    p.pump().await;
    let _ = tx1.send(stored(9, false));
    p.settle_next().await;
    assert_eq!((p.in_flight(), stats.snapshot().gaps), (1, 1), "the gap, second, was settled first");
    let _ = tx0.send(stored(8, true));
    p.settle_next().await;
    assert_eq!(p.in_flight(), 0);
    let s = stats.snapshot();
    assert_eq!((s.published, s.duplicates), (1, 1));
}

/// No ack within the timeout: sent again with the same id; the late ack of
/// the first attempt is ignored, the resend's counts once.
#[tokio::test(start_paused = true)]
async fn a_publish_without_an_ack_is_sent_again_and_its_late_ack_ignored() {
    let (mut p, fake, stats) = publisher(4);
    fake.plan([Plan::Silent]);
    p.push(data("m0"));
    p.pump().await;
    // Paused time: settle_next sleeps to the deadline, the clock jumps there.
    p.settle_next().await;
    assert_eq!((p.in_flight(), p.backlog()), (0, 1), "timed out, queued again");
    let _ = fake.tx.send((1, stored(5, false)));
    settle_all(&mut p).await;
    assert_eq!(fake.ids(), ["m0", "m0"]);
    let s = stats.snapshot();
    assert_eq!((s.published, s.duplicates, s.retries), (1, 0, 1), "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn a_message_too_large_is_replaced_by_a_marker_and_the_rest_goes_on() {
    let (mut p, fake, stats) = publisher(4);
    fake.plan([Plan::TooLarge]);
    p.push(data("big"));
    p.push(data("next"));
    settle_all(&mut p).await;
    assert_eq!(fake.ids(), ["big", "rej:big", "next"]);
    assert_eq!(p.rejected(), 1);
    let s = stats.snapshot();
    assert_eq!((s.rejected, s.published, s.gaps, s.retries), (1, 2, 1, 0));
    // The marker carries the original's exchange number and epoch, so a consumer can place it.
    let marker = fake.sent.lock().unwrap()[1].clone();
    let h = marker.headers();
    let get = |n: &str| h.get(n).map(|v| v.as_str().to_owned());
    assert_eq!(get(header::EXCHANGE_SEQ).as_deref(), Some("41"));
    assert_eq!(get(header::EPOCH).as_deref(), Some("2"));
    assert_eq!(get(header::REJECTED_ID).as_deref(), Some("big"));
    assert_eq!(get(header::GAP_REASON).as_deref(), Some("rejected"));
}

#[tokio::test(start_paused = true)]
async fn a_rejected_marker_is_not_marked_again() {
    let (mut p, fake, _) = publisher(4);
    fake.plan([Plan::TooLarge, Plan::TooLarge]);
    p.push(data("big"));
    settle_all(&mut p).await;
    assert_eq!(fake.ids(), ["big", "rej:big"]);
    assert_eq!(p.rejected(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_gap_counts_once_stored_not_when_queued_or_a_duplicate() {
    let (mut p, fake, stats) = publisher(4);
    let (tx, rx) = oneshot::channel();
    fake.plan([Plan::Duplicate, Plan::Later(rx)]);
    p.push(gap("g1"));
    p.push(gap("g2"));
    p.pump().await;
    p.settle_next().await;
    assert_eq!(stats.snapshot().gaps, 0, "a duplicate gap is the other replica's");
    let _ = tx.send(stored(3, false));
    settle_all(&mut p).await;
    assert_eq!(stats.snapshot().gaps, 1);
}

/// Acks for tokens never sent, or sent long ago, change nothing.
#[tokio::test(start_paused = true)]
async fn hostile_acks_are_ignored() {
    let (mut p, fake, stats) = publisher(4);
    let (tx, rx) = oneshot::channel();
    fake.plan([Plan::Later(rx)]);
    p.push(data("m0"));
    p.pump().await;
    for token in [0, 2, 99, u64::MAX] {
        let _ = fake.tx.send((token, stored(1, false)));
    }
    let _ = tx.send(stored(1, false));
    for _ in 0..5 {
        if p.in_flight() == 0 {
            break;
        }
        p.settle_next().await;
    }
    assert_eq!((p.in_flight(), stats.snapshot().published), (0, 1));
}
