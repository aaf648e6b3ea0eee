//! Without the `json` feature a session has no codec until one is set:
//! requests and subscriptions are refused at once, typed, and plain
//! messages still go.

#![allow(clippy::disallowed_methods)] // the fake clock's origin

use std::time::Instant;

use rand::{rngs::StdRng, SeedableRng};

use crate::{CommandError, Message, Session};

#[test]
fn requests_and_subscriptions_need_a_codec_and_messages_do_not() {
    let now = Instant::now();
    let mut s = Session::builder("ws://feed.test/").unwrap().build(Box::new(StdRng::seed_from_u64(1)), now).unwrap();
    assert_eq!(s.request("public/get_time", None, None, now), Err(CommandError::NoRequestCodec));
    assert_eq!(s.subscribe(&["trades"], now), Err(CommandError::NoSubscriptionCodec));
    assert_eq!(s.unsubscribe(&["trades"], now), Err(CommandError::NoSubscriptionCodec));
    assert!(s.subscriptions().is_empty(), "nothing was taken");
    assert_eq!(s.send(Message::Text("plain".into()), now), Ok(()), "queued until connected");
}
