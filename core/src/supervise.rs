//! When a supervising pool starts a member again after its session ended.
//!
//! A member's session reconnects by itself; it ends only when its policy
//! stopped it, it gave up after `max_attempts`, reconnecting was off, or it
//! could not be built. The pool then starts a new session for the member,
//! after a delay from the member's own backoff schedule, so that a server
//! that refuses everyone is not hammered by a restart loop. Restarts go on
//! for as long as the member belongs to the pool (`max_attempts` bounds one
//! session's attempts, not the supervisor's), and the count starts over once
//! a session stayed open for the schedule's `reset_after`, as a session's own
//! attempt counter does.
//!
//! Sans-IO like the rest of the core: the caller says when a session opened
//! and ended, and gets the delay to wait.

use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::{BackoffConfig, RandomSource};

/// The restart schedule of one pool member.
#[derive(Debug)]
pub struct Restarts {
    backoff: Backoff,
    /// When the current session last opened, if it did.
    opened_at: Option<Instant>,
    restarts: u32,
}

impl Restarts {
    /// A schedule following `backoff` (the member's own reconnect schedule);
    /// its `max_attempts` is ignored: a member is restarted for as long as it
    /// belongs to the pool.
    pub fn new(backoff: BackoffConfig) -> Self {
        let backoff = Backoff::new(BackoffConfig { max_attempts: None, ..backoff });
        Self { backoff, opened_at: None, restarts: 0 }
    }

    /// The member's session opened (`SessionEvent::Connected`) at `now`.
    pub fn opened(&mut self, now: Instant) {
        self.opened_at = Some(now);
    }

    /// The member's session ended (or could not be started) at `now`: returns
    /// how long to wait before starting it again.
    pub fn ended(&mut self, now: Instant, rng: &mut dyn RandomSource) -> Duration {
        if let Some(opened) = self.opened_at.take() {
            if now.saturating_duration_since(opened) >= self.backoff.reset_after() {
                self.backoff.stable();
            }
        }
        self.restarts = self.restarts.saturating_add(1);
        // `max_attempts` is off, so there is always a delay.
        self.backoff.next_delay(true, rng).unwrap_or(Duration::ZERO)
    }

    /// Restarts so far (the first start not counted).
    pub fn restarts(&self) -> u32 {
        self.restarts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    /// The fake clock's origin; only differences from it matter.
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    fn exact() -> BackoffConfig {
        BackoffConfig {
            initial: Duration::from_millis(100),
            factor: 2.0,
            max: Duration::from_secs(1),
            full_jitter: false,
            max_attempts: Some(2),
            reset_after: Duration::from_secs(10),
        }
    }

    #[test]
    fn restarts_follow_the_members_schedule_past_its_max_attempts() {
        let (mut r, mut rng, t0) = (Restarts::new(exact()), StdRng::seed_from_u64(1), origin());
        let ms: Vec<u128> = (0..6).map(|_| r.ended(t0, &mut rng).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(r.restarts(), 6);
    }

    #[test]
    fn a_session_that_stayed_open_long_enough_starts_the_count_over() {
        let (mut r, mut rng, t0) = (Restarts::new(exact()), StdRng::seed_from_u64(1), origin());
        assert_eq!(r.ended(t0, &mut rng), Duration::from_millis(100));
        assert_eq!(r.ended(t0, &mut rng), Duration::from_millis(200));
        // Open for less than reset_after: the count goes on.
        r.opened(t0);
        assert_eq!(r.ended(t0 + Duration::from_secs(9), &mut rng), Duration::from_millis(400));
        // Open for reset_after: the next wait is the first step again.
        r.opened(t0 + Duration::from_secs(9));
        assert_eq!(r.ended(t0 + Duration::from_secs(19), &mut rng), Duration::from_millis(100));
        // An opening counts once: a member that ends again without opening keeps counting.
        assert_eq!(r.ended(t0 + Duration::from_secs(100), &mut rng), Duration::from_millis(200));
    }

    #[test]
    fn extreme_schedules_never_panic() {
        let config = BackoffConfig {
            initial: Duration::MAX,
            factor: f64::MAX,
            max: Duration::MAX,
            full_jitter: true,
            max_attempts: Some(0),
            reset_after: Duration::ZERO,
        };
        let (mut r, mut rng, t0) = (Restarts::new(config), StdRng::seed_from_u64(3), origin());
        for _ in 0..100 {
            r.opened(t0);
            let _ = r.ended(t0, &mut rng);
        }
        assert_eq!(r.restarts(), 100);
    }
}
