//! The user's outgoing messages: a bounded queue for when they cannot go out
//! yet (not connected, or the rate limit is spent) and an optional token bucket.
//!
//! Invariants: the queue never holds more than its capacity; messages leave in
//! the order they were given; a rate-limited message waits for the refill
//! instant the bucket reports, never for a poll loop.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::message::Message;

/// A token bucket: `capacity` tokens, `refill` more every `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Most tokens the bucket holds (and holds at the start).
    pub capacity: u32,
    /// Tokens added each interval.
    pub refill: u32,
    /// Time between refills.
    pub interval: Duration,
}

impl RateLimit {
    /// A bucket of `capacity` tokens (full at the start), `refill` more every `interval`.
    pub const fn new(capacity: u32, refill: u32, interval: Duration) -> Self {
        Self { capacity, refill, interval }
    }
}

/// A message waiting to go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Queued {
    Message(Message),
    /// A user request, encoded when it leaves so that its id is current.
    Request {
        id: u64,
        method: String,
        params: Option<String>,
    },
    /// A user request the caller wrote whole (its id inside).
    RequestMessage {
        id: u64,
        message: Message,
    },
}

#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    tokens: u64,
    last_refill: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last_refill);
        let intervals = (elapsed.as_nanos() / self.limit.interval.as_nanos().max(1)) as u64;
        if intervals > 0 {
            let added = intervals.saturating_mul(u64::from(self.limit.refill));
            self.tokens = (self.tokens.saturating_add(added)).min(u64::from(self.limit.capacity));
            // Whole intervals only, so the schedule does not drift. `intervals`
            // fits since `elapsed` does, so the product cannot overflow; past
            // what `Instant` holds, the refill instant is simply now.
            let step = self.limit.interval.checked_mul(intervals.min(u64::from(u32::MAX)) as u32);
            self.last_refill = step.and_then(|step| self.last_refill.checked_add(step)).unwrap_or(now);
        }
    }
}

#[derive(Debug)]
pub(crate) struct Outbox {
    queue: VecDeque<(Queued, u32)>,
    capacity: usize,
    bucket: Option<Bucket>,
}

impl Outbox {
    pub(crate) fn new(capacity: usize, limit: Option<RateLimit>, now: Instant) -> Self {
        let bucket = limit.map(|limit| Bucket { limit, tokens: u64::from(limit.capacity), last_refill: now });
        Self { queue: VecDeque::new(), capacity, bucket }
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.queue.len() >= self.capacity
    }

    /// Whether a message of `cost` could ever pass the bucket.
    pub(crate) fn cost_fits(&self, cost: u32) -> bool {
        self.bucket.as_ref().is_none_or(|b| cost <= b.limit.capacity)
    }

    /// Takes the tokens for a message that would go out now, if nothing is
    /// queued ahead of it and the bucket allows.
    pub(crate) fn try_pass(&mut self, cost: u32, now: Instant) -> bool {
        self.queue.is_empty() && self.take(cost, now)
    }

    fn take(&mut self, cost: u32, now: Instant) -> bool {
        let Some(bucket) = self.bucket.as_mut() else { return true };
        bucket.refill(now);
        if bucket.tokens >= u64::from(cost) {
            bucket.tokens -= u64::from(cost);
            true
        } else {
            false
        }
    }

    /// Queues a message; the caller checked `is_full`.
    pub(crate) fn push(&mut self, item: Queued, cost: u32) {
        self.queue.push_back((item, cost));
    }

    /// The next queued item the bucket lets out now.
    pub(crate) fn pop_ready(&mut self, now: Instant) -> Option<Queued> {
        let cost = self.queue.front()?.1;
        if self.take(cost, now) {
            self.queue.pop_front().map(|(item, _)| item)
        } else {
            None
        }
    }

    /// When the bucket next refills, if something waits for it.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let bucket = self.bucket.as_ref()?;
        let (_, cost) = self.queue.front()?;
        let missing = u64::from(*cost).saturating_sub(bucket.tokens);
        if missing == 0 {
            return None;
        }
        let intervals = missing.div_ceil(u64::from(bucket.limit.refill.max(1)));
        // Past what `Duration` or `Instant` holds: the bucket never refills in time (never).
        let wait = bucket.limit.interval.checked_mul(intervals.min(u64::from(u32::MAX)) as u32)?;
        bucket.last_refill.checked_add(wait)
    }

    /// Empties the queue.
    pub(crate) fn drain(&mut self) -> Vec<Queued> {
        self.queue.drain(..).map(|(item, _)| item).collect()
    }

    /// Removes a queued request that ended before it was sent (it timed out).
    pub(crate) fn remove_request(&mut self, id: u64) {
        self.queue.retain(|(item, _)| {
            !matches!(item, Queued::Request { id: queued, .. } | Queued::RequestMessage { id: queued, .. } if *queued == id)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Queued {
        Queued::Message(Message::Text(s.into()))
    }

    #[test]
    fn bucket_lets_out_what_it_holds_then_one_refill_at_a_time() {
        #[allow(clippy::disallowed_methods)] // the fake clock's origin
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut o = Outbox::new(3, Some(RateLimit { capacity: 10, refill: 5, interval: ms(100) }), t0);
        assert!(o.try_pass(5, t0) && o.try_pass(5, t0));
        assert!(!o.try_pass(1, t0), "bucket empty");
        o.push(msg("a"), 5);
        o.push(msg("b"), 10);
        assert!(!o.try_pass(0, t0), "order: nothing passes a queued message");
        assert_eq!(o.next_deadline(), Some(t0 + ms(100)));
        assert_eq!(o.pop_ready(t0 + ms(99)), None);
        assert_eq!(o.pop_ready(t0 + ms(100)), Some(msg("a")));
        assert_eq!(o.next_deadline(), Some(t0 + ms(300)), "10 tokens need two more refills");
        assert_eq!(o.pop_ready(t0 + ms(250)), None);
        assert_eq!(o.pop_ready(t0 + ms(300)), Some(msg("b")));
        assert_eq!(o.next_deadline(), None);
        assert!(!o.cost_fits(11) && o.cost_fits(10));
    }

    #[test]
    fn queue_is_bounded_and_drains_in_order() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut o = Outbox::new(2, None, t0);
        o.push(msg("1"), 1);
        o.push(Queued::Request { id: 9, method: "m".into(), params: None }, 1);
        assert!(o.is_full());
        o.remove_request(9);
        assert_eq!(o.len(), 1);
        assert_eq!(o.drain(), vec![msg("1")]);
    }
}
