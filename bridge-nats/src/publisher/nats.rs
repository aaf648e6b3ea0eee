//! The [`Transport`] into JetStream: a core NATS publish with a reply
//! subject per message, and one subscription for every ack.
//!
//! JetStream answers a publish that has a reply subject with its ack
//! (`{"stream":…,"seq":…,"duplicate":…}` or `{"error":{…}}`) on that
//! subject, and the server answers with a 503 status when no stream takes
//! the subject. The reply subjects are `<inbox>.<token>` under an inbox of
//! this process, so one wildcard subscription receives every ack and the
//! token in its subject says which publish it answers. The subscription's
//! buffer must hold a window of acks (the bridge sizes it so); an ack lost
//! anyway times out and its message is sent again, de-duplicated.

use std::fmt::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_nats::client::PublishErrorKind;
use async_nats::jetstream::ErrorCode;
use async_nats::{Client, StatusCode, Subject, Subscriber};
use futures_util::stream::Stream;

use super::{Ack, Refusal, Stored, Transport};
use crate::envelope::Outgoing;

/// Publishes through a NATS client, acks through one subscription.
#[derive(Debug)]
pub struct Nats {
    client: Client,
    /// `<inbox>.`: the reply subjects' common part.
    inbox: String,
    acks: Acks,
}

impl Nats {
    /// Subscribes to this process's ack inbox on `client`.
    pub async fn new(client: Client) -> Result<Self, async_nats::SubscribeError> {
        let inbox = format!("{}.", client.new_inbox());
        let subscriber = client.subscribe(format!("{inbox}*")).await?;
        let acks = Acks { subscriber, prefix: inbox.len() };
        Ok(Self { client, inbox, acks })
    }
}

impl Transport for Nats {
    type Acks = Acks;

    fn send(&self, message: &Outgoing, token: u64) -> impl std::future::Future<Output = Result<(), Refusal>> + Send {
        let mut reply = String::with_capacity(self.inbox.len() + 20);
        reply.push_str(&self.inbox);
        let _ = write!(reply, "{token}");
        let publish = self.client.publish_with_reply_and_headers(
            message.subject.clone(),
            Subject::from(reply),
            message.headers(),
            message.payload.clone(),
        );
        async move {
            publish.await.map_err(|e| match e.kind() {
                PublishErrorKind::MaxPayloadExceeded => Refusal::permanent(e.to_string()),
                PublishErrorKind::InvalidSubject => Refusal { bad_subject: true, ..Refusal::permanent(e.to_string()) },
                PublishErrorKind::Send => Refusal::transient(e.to_string()),
            })
        }
    }

    fn acks(&mut self) -> &mut Acks {
        &mut self.acks
    }
}

/// The acks, read from the inbox subscription.
#[derive(Debug)]
pub struct Acks {
    subscriber: Subscriber,
    /// Where the token starts in a reply subject.
    prefix: usize,
}

impl Stream for Acks {
    type Item = Ack;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Ack>> {
        loop {
            let Some(m) = std::task::ready!(Pin::new(&mut self.subscriber).poll_next(cx)) else {
                return Poll::Ready(None);
            };
            // Anything on the inbox that is not an ack of ours (no number after it) is skipped.
            let token = m.subject.get(self.prefix..).and_then(|t| t.parse::<u64>().ok());
            if let Some(token) = token {
                return Poll::Ready(Some((token, answer(m.status, &m.payload))));
            }
        }
    }
}

/// JetStream's ack, in the fields the bridge reads.
#[derive(serde::Deserialize)]
struct Answer {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    duplicate: bool,
    error: Option<ApiError>,
}

#[derive(serde::Deserialize)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

/// What an ack says: stored, or why not (a status, an error, or bytes that are no ack).
pub(crate) fn answer(status: Option<StatusCode>, payload: &[u8]) -> Result<Stored, Refusal> {
    if status == Some(StatusCode::NO_RESPONDERS) {
        return Err(Refusal::transient("no responders: no stream takes the subject (yet)"));
    }
    match serde_json::from_slice::<Answer>(payload) {
        Ok(Answer { error: Some(e), .. }) => {
            let reason = format!("JetStream error {}: {}", e.err_code, e.description);
            let too_large = ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM.0 == e.err_code;
            Err(if too_large { Refusal::permanent(reason) } else { Refusal::transient(reason) })
        }
        Ok(Answer { seq, duplicate, error: None }) if seq > 0 => Ok(Stored { stream_seq: seq, duplicate }),
        Ok(_) => Err(Refusal::transient("an ack without a sequence")),
        Err(e) => Err(Refusal::transient(format!("not an ack ({e}), status {status:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_and_refusals_are_read() {
        assert_eq!(answer(None, br#"{"stream":"S","seq":7}"#), Ok(Stored { stream_seq: 7, duplicate: false }));
        assert_eq!(
            answer(None, br#"{"stream":"S","seq":7,"duplicate":true}"#),
            Ok(Stored { stream_seq: 7, duplicate: true })
        );
        let big = answer(
            None,
            br#"{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"}}"#,
        );
        assert!(big.is_err_and(|e| e.permanent && e.reason.contains("10054")));
        let full =
            answer(None, br#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}"#);
        assert!(full.is_err_and(|e| !e.permanent));
        assert!(answer(Some(StatusCode::NO_RESPONDERS), b"").is_err_and(|e| !e.permanent));
        for hostile in [&b""[..], b"{", b"\xff", br#"{"seq":-1}"#, br#"{"seq":0}"#, br#"[1,2]"#, b"null"] {
            assert!(answer(None, hostile).is_err_and(|e| !e.permanent), "{hostile:?}");
        }
    }
}
