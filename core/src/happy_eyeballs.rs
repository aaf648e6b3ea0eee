//! Connecting to a host that resolves to several addresses, as RFC 8305
//! (Happy Eyeballs version 2) describes: the addresses are interleaved by
//! family (the first address's family first, then the other, in turn), the
//! first attempt starts at once, and each next one starts a short delay
//! (the Connection Attempt Delay, 250 ms by default) after the one before,
//! or at once when every attempt started so far has failed. Attempts run
//! side by side; the caller takes the first that connects and drops the
//! rest. An address that never answers (an IPv6 route that goes nowhere, a
//! host that drops the SYN) then costs one delay, not the whole connect
//! timeout, and the other addresses are still tried.
//!
//! Sans-IO like the rest of the core: the caller starts the attempts this
//! says to start, reports those that fail, and waits until
//! [`poll_timeout`](HappyEyeballs::poll_timeout); the overall bound is the
//! caller's (the session's `connect_timeout` covers the whole opening).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::deadline::after;

/// RFC 8305's recommended Connection Attempt Delay.
pub const DEFAULT_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Which address to try next, and when (see the module docs).
///
/// ```
/// use std::net::SocketAddr;
/// use std::time::{Duration, Instant};
/// use wslink_core::HappyEyeballs;
///
/// let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
/// let v6b: SocketAddr = "[2001:db8::2]:443".parse().unwrap();
/// let v4: SocketAddr = "192.0.2.1:443".parse().unwrap();
/// let now = Instant::now();
/// let mut race = HappyEyeballs::new([v6, v6b, v4], Duration::from_millis(250), now);
/// assert_eq!(race.poll_start(now), Some(v6)); // at once
/// assert_eq!(race.poll_start(now), None); // the next waits for the delay
/// assert_eq!(race.poll_timeout(), Some(now + Duration::from_millis(250)));
/// let later = now + Duration::from_millis(250);
/// assert_eq!(race.poll_start(later), Some(v4)); // the other family next
/// race.handle_failure(later); // v6 failed ...
/// race.handle_failure(later); // ... and v4: the last starts at once
/// assert_eq!(race.poll_start(later), Some(v6b));
/// race.handle_failure(later);
/// assert!(race.is_exhausted());
/// ```
#[derive(Debug, Clone)]
pub struct HappyEyeballs {
    /// The addresses in the order they are tried.
    order: Vec<SocketAddr>,
    /// The next address of `order` to start.
    next: usize,
    delay: Duration,
    /// When the next attempt may start while others are still pending.
    next_start: Option<Instant>,
    /// Attempts started and not yet failed.
    pending: usize,
}

impl HappyEyeballs {
    /// A race over `addrs` (in the resolver's order of preference; repeated
    /// addresses are tried once), starting at `now`, with `delay` between
    /// the starts of attempts (zero starts them all at once).
    pub fn new(addrs: impl IntoIterator<Item = SocketAddr>, delay: Duration, now: Instant) -> Self {
        let mut unique: Vec<SocketAddr> = Vec::new();
        for addr in addrs {
            if !unique.contains(&addr) {
                unique.push(addr);
            }
        }
        Self { order: interleave(unique), next: 0, delay, next_start: Some(now), pending: 0 }
    }

    /// The addresses in the order they are tried.
    pub fn order(&self) -> &[SocketAddr] {
        &self.order
    }

    /// The next address to start connecting to at `now`, if one is due: the
    /// first at once, each next one `delay` after the last start, or at once
    /// when no started attempt is still pending. Call it until `None`.
    pub fn poll_start(&mut self, now: Instant) -> Option<SocketAddr> {
        let addr = *self.order.get(self.next)?;
        let due = self.pending == 0 || self.next_start.is_some_and(|t| t <= now);
        if !due {
            return None;
        }
        self.next += 1;
        self.pending += 1;
        self.next_start = after(now, self.delay);
        Some(addr)
    }

    /// One of the started attempts failed at `now`. (One that connected
    /// ends the race: the caller drops the others.)
    pub fn handle_failure(&mut self, now: Instant) {
        self.pending = self.pending.saturating_sub(1);
        if self.pending == 0 {
            // Nothing is pending: the next address need not wait.
            self.next_start = Some(now);
        }
    }

    /// When [`poll_start`](Self::poll_start) will next have an address to
    /// start, while attempts are pending and addresses remain (`None`:
    /// nothing more to start until an attempt fails).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.next < self.order.len() {
            self.next_start
        } else {
            None
        }
    }

    /// Every address was tried and every attempt failed.
    pub fn is_exhausted(&self) -> bool {
        self.next >= self.order.len() && self.pending == 0
    }
}

/// RFC 8305 §4: the family of the most preferred address first, then the
/// other, alternating, each family in its own order.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first_v6) = addrs.first().map(SocketAddr::is_ipv6) else { return addrs };
    let count = addrs.len();
    let (mut preferred, mut other): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    preferred.reverse();
    other.reverse();
    let mut order = Vec::with_capacity(count);
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => return order,
            (a, b) => order.extend(a.into_iter().chain(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // the fake clock's origin
    fn origin() -> Instant {
        Instant::now()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_alternate_starting_with_the_first_address_family() {
        let t0 = origin();
        let addrs = ["[::1]:1", "[::2]:1", "[::3]:1", "10.0.0.1:1", "10.0.0.2:1"].map(addr);
        let race = HappyEyeballs::new(addrs, DEFAULT_ATTEMPT_DELAY, t0);
        let expected = ["[::1]:1", "10.0.0.1:1", "[::2]:1", "10.0.0.2:1", "[::3]:1"].map(addr);
        assert_eq!(race.order(), expected);
        let v4_first = HappyEyeballs::new(["10.0.0.1:1", "[::1]:1", "10.0.0.1:1"].map(addr), DEFAULT_ATTEMPT_DELAY, t0);
        assert_eq!(v4_first.order(), ["10.0.0.1:1", "[::1]:1"].map(addr), "repeats are tried once");
    }

    #[test]
    fn a_pending_attempt_holds_the_next_one_for_the_delay_only() {
        let t0 = origin();
        let ms = Duration::from_millis;
        let mut race = HappyEyeballs::new(["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"].map(addr), ms(250), t0);
        assert_eq!(race.poll_start(t0), Some(addr("10.0.0.1:1")));
        assert_eq!(race.poll_start(t0 + ms(249)), None, "the first never answers: wait the delay");
        assert_eq!(race.poll_timeout(), Some(t0 + ms(250)));
        assert_eq!(race.poll_start(t0 + ms(250)), Some(addr("10.0.0.2:1")));
        assert_eq!(race.poll_start(t0 + ms(300)), None);
        // Both pending fail: the last starts at once, not at +500.
        race.handle_failure(t0 + ms(300));
        assert_eq!(race.poll_start(t0 + ms(300)), None, "one is still pending");
        race.handle_failure(t0 + ms(310));
        assert_eq!(race.poll_start(t0 + ms(310)), Some(addr("10.0.0.3:1")));
        assert_eq!(race.poll_timeout(), None, "nothing left to start");
        assert!(!race.is_exhausted());
        race.handle_failure(t0 + ms(320));
        assert!(race.is_exhausted());
    }

    #[test]
    fn no_address_is_exhausted_at_once_and_a_zero_delay_starts_all() {
        let t0 = origin();
        let mut none = HappyEyeballs::new([], DEFAULT_ATTEMPT_DELAY, t0);
        assert_eq!(none.poll_start(t0), None);
        assert!(none.is_exhausted());
        let mut all = HappyEyeballs::new(["10.0.0.1:1", "[::1]:1"].map(addr), Duration::ZERO, t0);
        assert_eq!(std::iter::from_fn(|| all.poll_start(t0)).count(), 2);
        let mut never = HappyEyeballs::new(["10.0.0.1:1", "[::1]:1"].map(addr), Duration::MAX, t0);
        assert!(never.poll_start(t0).is_some());
        assert_eq!(never.poll_timeout(), None, "a delay past the clock waits for a failure");
        never.handle_failure(t0);
        assert!(never.poll_start(t0).is_some());
    }
}
