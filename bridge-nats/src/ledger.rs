//! Reading the stream back: what the bridge asks JetStream before it
//! decides what a number out of line means, and before it marks a hole.
//!
//! - [`Ledger::tail`]: the last message stored on a channel's subject
//!   (JetStream's `STREAM.MSG.GET` with `last_by_subj`, one request; any
//!   stream answers it, `allow_direct` or not), read into a [`Tail`]: its
//!   epoch and exchange number (a marker's: the number it stands after),
//!   its place in the stream, and when a bridge read it.
//! - [`Ledger::covered`]: the exchange numbers of a hole that the stream
//!   holds on the subject after a given place, as data (any replica's copy)
//!   or already marked missing: an ordered consumer on the subject, headers
//!   only, read to the end of the stream.
//!
//! Both need the `$JS.API` permissions to read the stream (a message get,
//! an ephemeral consumer) besides publishing. Errors come back as text: the
//! tracker asks again after a second.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::{jetstream, HeaderMap, Subject};
use futures_util::StreamExt;

use crate::envelope::header;
use crate::sequence::{Numbering, Ranges, Tail};
use crate::tracker::Check;

/// The stream, as the bridge reads it back.
pub trait Ledger: Clone + Send + Sync + 'static {
    /// The last message stored on `subject`, if any.
    fn tail(&self, subject: Subject) -> impl Future<Output = Result<Option<Tail>, String>> + Send + 'static;

    /// What the stream holds of `check`'s hole after `check.after`, in its
    /// epoch: `None` when that takes more ranges than a [`Ranges`] keeps.
    fn covered(&self, check: &Check) -> impl Future<Output = Result<Option<Ranges>, String>> + Send + 'static;
}

/// The stream in JetStream.
#[derive(Debug, Clone)]
pub struct JetStream {
    js: jetstream::Context,
    stream: String,
    /// How long one message of a check may take to arrive.
    read_timeout: Duration,
}

impl JetStream {
    /// Reads stream `stream` through `js`, waiting at most `read_timeout` for each answer.
    pub fn new(js: jetstream::Context, stream: String, read_timeout: Duration) -> Self {
        Self { js, stream, read_timeout }
    }
}

impl Ledger for JetStream {
    fn tail(&self, subject: Subject) -> impl Future<Output = Result<Option<Tail>, String>> + Send + 'static {
        let this = self.clone();
        async move {
            let stream = this.js.get_stream_no_info(&this.stream).await.map_err(|e| e.to_string())?;
            let get = stream.get_last_raw_message_by_subject(&subject);
            match tokio::time::timeout(this.read_timeout, get).await {
                Err(_) => Err("no answer in time".to_owned()),
                Ok(Ok(m)) => Ok(tail(&m.headers, m.sequence)),
                Ok(Err(e)) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
                Ok(Err(e)) => Err(e.to_string()),
            }
        }
    }

    fn covered(&self, check: &Check) -> impl Future<Output = Result<Option<Ranges>, String>> + Send + 'static {
        let (this, check) = (self.clone(), check.clone());
        async move {
            let stream = this.js.get_stream_no_info(&this.stream).await.map_err(|e| e.to_string())?;
            let config = OrderedConfig {
                filter_subject: check.subject.to_string(),
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: check.after.saturating_add(1) },
                headers_only: true,
                ..OrderedConfig::default()
            };
            let consumer = stream.create_consumer(config).await.map_err(|e| e.to_string())?;
            let mut covered = Ranges::default();
            if consumer.cached_info().num_pending == 0 {
                return Ok(Some(covered));
            }
            let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
            loop {
                let m = match tokio::time::timeout(this.read_timeout, messages.next()).await {
                    Err(_) => return Err("the stream was not read to its end in time".to_owned()),
                    Ok(None) => return Err("the consumer ended".to_owned()),
                    Ok(Some(m)) => m.map_err(|e| e.to_string())?,
                };
                if let Some(headers) = &m.headers {
                    if !cover(headers, &check, &mut covered) {
                        return Ok(None);
                    }
                }
                if m.info().map_err(|e| e.to_string())?.pending == 0 {
                    return Ok(Some(covered));
                }
            }
        }
    }
}

fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.as_str().parse().ok()
}

fn epoch(headers: &HeaderMap) -> u32 {
    headers.get(header::EPOCH).and_then(|v| v.as_str().parse().ok()).unwrap_or(0)
}

/// The epoch and number a stored message stands at, if it has one: a data
/// message's or a `rejected` marker's exchange number, the last number of
/// a `sequence` marker's range, the first of a `reset` marker's numbering.
fn position(headers: &HeaderMap) -> Option<Numbering> {
    let last = match headers.get(header::GAP_REASON).map(|v| v.as_str()) {
        None | Some("rejected") => number(headers, header::EXCHANGE_SEQ)?,
        Some("sequence") => number(headers, header::GAP_TO)?,
        Some("reset") => number(headers, header::RESET_FIRST_SEQ)?,
        Some(_) => return None,
    };
    Some(Numbering { epoch: epoch(headers), last })
}

/// The tail a stored message at stream sequence `seq` makes (`None` when
/// it has no number: no sequence configured when it was published).
pub fn tail(headers: &HeaderMap, seq: u64) -> Option<Tail> {
    let read_ms = number(headers, header::RECEIVED);
    Some(Tail { numbering: position(headers)?, stream_seq: seq, read_ms })
}

/// Adds what one stored message covers of `check`'s hole; `false` when
/// `covered` is full.
fn cover(headers: &HeaderMap, check: &Check, covered: &mut Ranges) -> bool {
    if epoch(headers) != check.epoch {
        return true;
    }
    let (from, to) = match headers.get(header::GAP_REASON).map(|v| v.as_str()) {
        None | Some("rejected") => match number(headers, header::EXCHANGE_SEQ) {
            Some(n) => (n, n),
            None => return true,
        },
        Some("sequence") => match (number(headers, header::GAP_FROM), number(headers, header::GAP_TO)) {
            (Some(from), Some(to)) => (from, to),
            _ => return true,
        },
        Some(_) => return true,
    };
    // Only what falls in the hole: the rest would only fill the ranges.
    covered.add(from.max(check.from), to.min(check.to))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, *v);
        }
        h
    }

    fn check(epoch: u32) -> Check {
        let connection: Arc<str> = Arc::from("a/e/0.1/r");
        Check { key: 1, subject: Subject::from("p.e.c"), epoch, from: 100, to: 200, after: 5, connection }
    }

    #[test]
    fn a_tail_is_read_from_data_and_markers() {
        let data = headers(&[(header::EXCHANGE_SEQ, "41"), (header::RECEIVED, "1700")]);
        assert_eq!(
            tail(&data, 9),
            Some(Tail { numbering: Numbering { epoch: 0, last: 41 }, stream_seq: 9, read_ms: Some(1700) })
        );
        let gap = headers(&[
            (header::GAP_REASON, "sequence"),
            (header::GAP_FROM, "3"),
            (header::GAP_TO, "8"),
            (header::EPOCH, "2"),
        ]);
        assert_eq!(tail(&gap, 1).map(|t| t.numbering), Some(Numbering { epoch: 2, last: 8 }));
        let reset = headers(&[(header::GAP_REASON, "reset"), (header::RESET_FIRST_SEQ, "21"), (header::EPOCH, "1")]);
        assert_eq!(tail(&reset, 1).map(|t| t.numbering), Some(Numbering { epoch: 1, last: 21 }));
        let rejected = headers(&[(header::GAP_REASON, "rejected"), (header::EXCHANGE_SEQ, "77")]);
        assert_eq!(tail(&rejected, 1).map(|t| t.numbering.last), Some(77));
        for none in
            [headers(&[]), headers(&[(header::GAP_REASON, "reconnect")]), headers(&[(header::EXCHANGE_SEQ, "x")])]
        {
            assert_eq!(tail(&none, 1), None);
        }
    }

    #[test]
    fn a_check_counts_data_and_markers_of_its_epoch_inside_the_hole() {
        let mut covered = Ranges::default();
        let c = check(1);
        let seen = [
            headers(&[(header::EXCHANGE_SEQ, "120"), (header::EPOCH, "1")]),
            headers(&[(header::EXCHANGE_SEQ, "121"), (header::EPOCH, "1")]),
            headers(&[(header::EXCHANGE_SEQ, "150")]),
            headers(&[(header::EXCHANGE_SEQ, "999"), (header::EPOCH, "1")]),
            headers(&[
                (header::GAP_REASON, "sequence"),
                (header::GAP_FROM, "90"),
                (header::GAP_TO, "110"),
                (header::EPOCH, "1"),
            ]),
            headers(&[(header::GAP_REASON, "rejected"), (header::EXCHANGE_SEQ, "130"), (header::EPOCH, "1")]),
            headers(&[(header::GAP_REASON, "reset"), (header::RESET_FIRST_SEQ, "140"), (header::EPOCH, "1")]),
        ];
        for h in &seen {
            assert!(cover(h, &c, &mut covered));
        }
        assert_eq!(covered.as_slice(), [(100, 110), (120, 121), (130, 130)]);
    }
}
