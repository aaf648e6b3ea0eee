//! Deadline arithmetic that cannot overflow, and the rule for deadlines that
//! wait on the peer while the caller has stopped reading.
//!
//! Every duration a user can set is allowed to be huge (`Duration::MAX` is a
//! natural way to say "no timeout"): a deadline past what `Instant` can hold
//! is `None`, which everywhere in the core means "never".

use std::time::{Duration, Instant};

/// `now + duration`, or `None` (never) when that is past what `Instant` holds.
pub(crate) fn after(now: Instant, duration: Duration) -> Option<Instant> {
    now.checked_add(duration)
}

/// The earliest of `deadlines` (`None`, never, when all are). A fold over
/// a slice rather than `into_iter().flatten().min()` on an array, which
/// copied the array and cost about twice as much on every driver turn.
pub(crate) fn earliest(deadlines: &[Option<Instant>]) -> Option<Instant> {
    let mut first: Option<Instant> = None;
    for deadline in deadlines.iter().flatten() {
        if first.is_none_or(|f| *deadline < f) {
            first = Some(*deadline);
        }
    }
    first
}

/// Moves `deadline` later by `paused`, the time the caller did not read, but
/// never past `now + full` (`full` is the whole wait the deadline was set
/// with): time spent paused does not count, and a wait that began during the
/// pause starts again no later than now.
pub(crate) fn postpone(deadline: Option<Instant>, paused: Duration, now: Instant, full: Duration) -> Option<Instant> {
    let deadline = deadline?;
    match (deadline.checked_add(paused), after(now, full)) {
        (Some(moved), Some(cap)) => Some(moved.min(cap)),
        (Some(moved), None) => Some(moved),
        (None, cap) => cap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_deadline_skips_the_absent_ones() {
        #[allow(clippy::disallowed_methods)] // the fake clock's origin
        let now = Instant::now();
        let (a, b) = (Some(now + Duration::from_secs(2)), Some(now + Duration::from_secs(1)));
        assert_eq!(earliest(&[None, a, None, b, None]), b);
        assert_eq!(earliest(&[a]), a);
        assert_eq!(earliest(&[None, None]), None);
        assert_eq!(earliest(&[]), None);
    }

    #[test]
    fn past_the_range_is_never() {
        #[allow(clippy::disallowed_methods)] // the fake clock's origin
        let t0 = Instant::now();
        assert_eq!(after(t0, Duration::MAX), None);
        assert_eq!(after(t0, Duration::ZERO), Some(t0));
    }

    #[test]
    fn a_pause_moves_a_deadline_but_not_past_a_full_wait_from_now() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // Set at t0 for t0+10; paused 5 s from t0+2: due at t0+15.
        assert_eq!(postpone(Some(t0 + s(10)), s(5), t0 + s(7), s(10)), Some(t0 + s(15)));
        // Set during a long pause: no later than a full wait from the resume.
        assert_eq!(postpone(Some(t0 + s(10)), s(100), t0 + s(100), s(10)), Some(t0 + s(110)));
        assert_eq!(postpone(Some(t0 + s(50)), s(100), t0 + s(100), s(10)), Some(t0 + s(110)));
        assert_eq!(postpone(None, s(1), t0, s(1)), None);
        assert_eq!(postpone(Some(t0), Duration::MAX, t0, s(3)), Some(t0 + s(3)));
        assert_eq!(postpone(Some(t0), s(1), t0, Duration::MAX), Some(t0 + s(1)));
    }
}
