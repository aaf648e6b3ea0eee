//! The channels' promises, polled by hand with counting wakers.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::AtomicUsize;
use std::task::Wake;

use tokio::sync::oneshot;
use wslink_core::{CloseCode, Message, SessionEvent};

use super::*;

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count::default());
    (count.clone(), Waker::from(count))
}

fn woken(count: &Count) -> usize {
    count.0.load(Ordering::SeqCst)
}

/// A command that says which one it is, and the receiver of its reply.
fn close(tag: &str) -> (Command, oneshot::Receiver<Result<(), crate::reply::ClientError>>) {
    let (tx, rx) = oneshot::channel();
    (Command::Close(Box::new((CloseCode::Normal, tag.to_owned(), tx))), rx)
}

fn tag(command: Command) -> String {
    match command {
        Command::Close(close) => close.1.clone(),
        _ => panic!("not a tagged command"),
    }
}

fn message(text: &str) -> SessionEvent {
    SessionEvent::Message(Message::Text(text.into()))
}

fn poll_send(tx: &CommandSender, command: Command, cx: &mut Context<'_>) -> Poll<Result<(), Gone>> {
    pin!(tx.send(command)).poll(cx)
}

#[test]
fn commands_arrive_in_order_and_a_full_queue_makes_senders_wait() {
    let (tx, driver, _events) = channels(0);
    let (driver_count, driver_waker) = counter();
    let mut driver_cx = Context::from_waker(&driver_waker);
    assert!(driver.poll_command(&mut driver_cx).is_pending());

    let (sender_count, sender_waker) = counter();
    let mut sender_cx = Context::from_waker(&sender_waker);
    for i in 0..COMMAND_CAPACITY {
        assert_eq!(poll_send(&tx, close(&i.to_string()).0, &mut sender_cx), Poll::Ready(Ok(())));
    }
    assert_eq!(woken(&driver_count), 1, "the first command woke the waiting driver");
    let mut blocked = pin!(tx.send(close("last").0));
    assert!(blocked.as_mut().poll(&mut sender_cx).is_pending(), "the queue is full");
    assert!(blocked.as_mut().poll(&mut sender_cx).is_pending(), "polled again, still one waker kept");
    assert_eq!(lock(&tx.shared.commands).blocked.len(), 1);

    assert_eq!(driver.try_command().map(tag).as_deref(), Some("0"));
    assert_eq!(woken(&sender_count), 1, "room woke the blocked sender");
    assert_eq!(blocked.as_mut().poll(&mut sender_cx), Poll::Ready(Ok(())));
    let rest: Vec<String> = std::iter::from_fn(|| driver.try_command()).map(tag).collect();
    assert_eq!(rest.len(), COMMAND_CAPACITY);
    assert_eq!((rest[0].as_str(), rest[COMMAND_CAPACITY - 1].as_str()), ("1", "last"));
    assert!(driver.poll_command(&mut driver_cx).is_pending());
}

#[test]
fn the_driver_hears_none_once_every_sender_is_gone_and_the_queue_is_empty() {
    let (tx, driver, _events) = channels(0);
    let second = tx.clone();
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(poll_send(&second, close("a").0, &mut cx), Poll::Ready(Ok(())));
    drop(tx);
    assert!(matches!(driver.poll_command(&mut cx), Poll::Ready(Some(_))));
    assert!(driver.poll_command(&mut cx).is_pending(), "one sender is left");
    drop(second);
    assert_eq!(woken(&count), 1, "the last sender's going woke the driver");
    assert!(matches!(driver.poll_command(&mut cx), Poll::Ready(None)));
}

#[test]
fn when_the_driver_is_gone_sends_fail_and_queued_commands_are_answered() {
    let (tx, driver, _events) = channels(0);
    let mut cx = Context::from_waker(Waker::noop());
    let (queued, mut reply) = close("queued");
    assert_eq!(poll_send(&tx, queued, &mut cx), Poll::Ready(Ok(())));
    for i in 1..COMMAND_CAPACITY {
        assert_eq!(poll_send(&tx, close(&i.to_string()).0, &mut cx), Poll::Ready(Ok(())));
    }
    let (count, waker) = counter();
    let mut blocked_cx = Context::from_waker(&waker);
    let mut blocked = pin!(tx.send(close("blocked").0));
    assert!(blocked.as_mut().poll(&mut blocked_cx).is_pending());
    drop(driver);
    assert_eq!(woken(&count), 1);
    assert_eq!(blocked.as_mut().poll(&mut blocked_cx), Poll::Ready(Err(Gone)));
    assert!(reply.try_recv().is_err(), "the queued command was dropped: its caller hears Shutdown");
    assert_eq!(poll_send(&tx, close("late").0, &mut cx), Poll::Ready(Err(Gone)));
}

#[test]
fn one_batch_is_in_flight_and_room_wakes_the_driver() {
    let (_tx, driver, events) = channels(0);
    let (driver_count, driver_waker) = counter();
    let mut driver_cx = Context::from_waker(&driver_waker);
    let (consumer_count, consumer_waker) = counter();
    let mut consumer_cx = Context::from_waker(&consumer_waker);

    assert!(events.poll_batch(&mut consumer_cx).is_pending());
    assert_eq!(driver.try_deliver(vec![message("a")]), Ok(()));
    assert_eq!(woken(&consumer_count), 1);
    assert_eq!(driver.try_deliver(vec![message("b")]), Err(NotDelivered::Full(vec![message("b")])));
    assert!(driver.poll_room(&mut driver_cx).is_pending());
    assert_eq!(events.poll_batch(&mut consumer_cx), Poll::Ready(Some(vec![message("a")])));
    assert_eq!(woken(&driver_count), 1, "taking the batch made room");
    assert_eq!(driver.poll_room(&mut driver_cx), Poll::Ready(Ok(())));
    assert_eq!(driver.try_deliver(vec![message("b")]), Ok(()));
    drop(driver);
    assert_eq!(events.poll_batch(&mut consumer_cx), Poll::Ready(Some(vec![message("b")])), "delivered before the end");
    assert_eq!(events.poll_batch(&mut consumer_cx), Poll::Ready(None));
}

#[test]
fn a_consumer_that_goes_away_is_noticed() {
    let (_tx, driver, events) = channels(0);
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(driver.try_deliver(vec![message("a")]), Ok(()));
    assert!(driver.poll_room(&mut cx).is_pending());
    assert!(driver.poll_consumer_gone(&mut cx).is_pending());
    drop(events);
    assert_eq!(woken(&count), 1);
    assert_eq!(driver.poll_room(&mut cx), Poll::Ready(Err(Gone)));
    assert_eq!(driver.poll_consumer_gone(&mut cx), Poll::Ready(()));
    assert_eq!(driver.try_deliver(vec![message("b")]), Err(NotDelivered::Gone));
}

#[test]
fn taking_a_batch_wakes_only_a_driver_that_waits_for_room() {
    let (_tx, driver, events) = channels(0);
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    let (_, consumer_waker) = counter();
    let mut consumer_cx = Context::from_waker(&consumer_waker);
    assert_eq!(driver.try_deliver(vec![message("a")]), Ok(()));
    // The driver has nothing more to hand over: it only listens for the consumer leaving.
    assert!(driver.poll_consumer_gone(&mut cx).is_pending());
    assert_eq!(events.poll_batch(&mut consumer_cx), Poll::Ready(Some(vec![message("a")])));
    assert_eq!(woken(&count), 0, "no turn for a driver with nothing to deliver");
    drop(events);
    assert_eq!(woken(&count), 1, "but it hears that the consumer left");
}

#[test]
fn posts_fail_at_once_when_full_or_closed_and_closing_takes_only_the_queued_posts() {
    let (tx, driver, _events) = channels(0);
    let text = |t: &str| Message::Text(t.into());
    for i in 0..COMMAND_CAPACITY - 2 {
        assert_eq!(tx.try_post(text(&i.to_string())), Ok(()));
    }
    let (command, _reply) = close("kept");
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(poll_send(&tx, command, &mut cx), Poll::Ready(Ok(())));
    assert_eq!(tx.try_post(text("last")), Ok(()));
    assert_eq!(tx.try_post(text("over")), Err(TrySendError::Full(text("over"))), "the message comes back");

    let posts = driver.close_posts();
    assert_eq!(posts.len(), COMMAND_CAPACITY - 1);
    assert_eq!((posts.first(), posts.last()), (Some(&text("0")), Some(&text("last"))), "in order");
    assert_eq!(tx.try_post(text("late")), Err(TrySendError::Closed(text("late"))));
    assert_eq!(driver.try_command().map(tag).as_deref(), Some("kept"), "other commands stay queued");
    assert!(driver.try_command().is_none());
    drop(driver);
    assert_eq!(tx.try_post(text("gone")), Err(TrySendError::Closed(text("gone"))));
}

#[test]
fn a_sender_waiting_for_room_goes_on_when_closing_takes_the_posts() {
    let (tx, driver, _events) = channels(0);
    for i in 0..COMMAND_CAPACITY {
        assert_eq!(tx.try_post(Message::Text(i.to_string().into())), Ok(()));
    }
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    let mut blocked = pin!(tx.send(close("waits").0));
    assert!(blocked.as_mut().poll(&mut cx).is_pending(), "the queue is full");
    assert_eq!(driver.close_posts().len(), COMMAND_CAPACITY);
    assert_eq!(woken(&count), 1, "the room made is announced");
    assert_eq!(blocked.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
    assert_eq!(driver.try_command().map(tag).as_deref(), Some("waits"));
}

#[test]
fn the_state_is_shared() {
    let (tx, driver, _events) = channels(3);
    assert_eq!(tx.clone().state(), 3);
    driver.set_state(5);
    assert_eq!(tx.state(), 5);
}

#[test]
fn a_sink_waits_for_the_write_budget_and_hears_when_it_has_room_or_the_session_closed() {
    let (tx, driver, _events) = channels(0);
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(tx.poll_post_ready(&mut cx), Poll::Ready(Ok(())));

    driver.set_write_full(true);
    assert!(tx.poll_post_ready(&mut cx).is_pending());
    assert!(tx.poll_post_ready(&mut cx).is_pending(), "polled again, still one waker kept");
    assert_eq!(woken(&count), 0, "pending without waking itself");
    driver.set_write_full(true);
    assert_eq!(woken(&count), 0, "still full: nobody woken");
    driver.set_write_full(false);
    assert_eq!(woken(&count), 1, "room woke the waiting sink, once");
    assert_eq!(tx.poll_post_ready(&mut cx), Poll::Ready(Ok(())));
    // A post after the reservation is taken whatever the budget says meanwhile.
    driver.set_write_full(true);
    assert_eq!(tx.post(Message::Text("reserved".into())), Ok(()));
    assert!(matches!(driver.try_command(), Some(Command::Post(m)) if m == Message::Text("reserved".into())));

    assert!(tx.poll_post_ready(&mut cx).is_pending());
    assert!(driver.close_posts().is_empty());
    assert_eq!(woken(&count), 2, "the close woke it");
    assert_eq!(tx.poll_post_ready(&mut cx), Poll::Ready(Err(PostClosed::Closed)));
    assert_eq!(tx.post(Message::Text("late".into())), Err(PostClosed::Closed));
    drop(driver);
    assert_eq!(tx.poll_post_ready(&mut cx), Poll::Ready(Err(PostClosed::Gone)));
}

#[test]
fn an_inline_client_driving_itself_is_not_woken_by_its_own_driver() {
    // The inline client's consumer and driver share one task: what the
    // driver hands over while that task polls it must not wake it again.
    let (tx, driver, events) = channels(0);
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    assert!(events.poll_batch(&mut cx).is_pending());
    assert!(driver.poll_command(&mut cx).is_pending());

    assert_eq!(tx.try_post_quietly(Message::Text("ping".into())), Ok(()));
    events.forget_consumer();
    assert_eq!(driver.try_deliver(vec![message("pong")]), Ok(()));
    assert_eq!(woken(&count), 0, "neither the quiet post nor the delivery woke the task");
    assert!(matches!(driver.try_command(), Some(Command::Post(Message::Text(_)))), "the post is queued");
    assert_eq!(events.poll_batch(&mut cx), Poll::Ready(Some(vec![message("pong")])));

    // The waker comes back with the next poll that finds nothing, and a
    // post from any other handle still wakes the driver.
    assert!(events.poll_batch(&mut cx).is_pending());
    assert!(driver.poll_command(&mut cx).is_pending());
    assert_eq!(driver.try_deliver(vec![message("later")]), Ok(()));
    assert_eq!(woken(&count), 1, "a delivery outside the task's own poll wakes it");
    assert_eq!(tx.try_post(Message::Text("other".into())), Ok(()));
    assert_eq!(woken(&count), 2, "an ordinary post wakes the driver");
}
