//! Reconnect delays: exponential backoff with a cap and full jitter.
//!
//! Two counts, kept apart on purpose:
//! - the **step**: the n-th delay since the last stable connection waits
//!   `min(max, initial * factor^(n-1))`, or with full jitter (the default) a
//!   uniform draw from `[0, that]` taken from the injected random source. It
//!   goes back to the first step only when a connection stayed up for
//!   `reset_after`, so a server that accepts and then cuts every link is not
//!   hammered at the first step (flapping);
//! - the **failures**: attempts in a row that did not open (or did not
//!   authenticate). `max_attempts` bounds this count, and a connection that
//!   opened starts it again, so a client never gives up on a server that
//!   keeps letting it in.
//!
//! The session decides when a connection opened or was stable; this only
//! counts. Any valid config, up to `Duration::MAX` and any finite factor,
//! yields a delay within `[0, max]` and never panics.

use std::time::Duration;

use crate::RandomSource;

/// How reconnect delays grow.
///
/// The defaults are Fresh's schedule, 250 ms, x1.5, capped at 30 s, with full
/// jitter on: when a server restart drops many clients at once, each waits a
/// random part of its step instead of all of them returning at the same
/// instant and knocking the server over again. Set `full_jitter: false` for
/// exact, reproducible delays.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// Delay before the first reconnect.
    pub initial: Duration,
    /// Growth per attempt; at least 1.
    pub factor: f64,
    /// Largest delay.
    pub max: Duration,
    /// Draw each delay uniformly from zero to the computed value ("full jitter"),
    /// so that many clients dropped together do not return together. On by default.
    pub full_jitter: bool,
    /// Give up when this many attempts in a row have failed to open (or to
    /// authenticate), the first attempt included; `None` retries forever. A
    /// connection that opened starts the count again, however soon it ended.
    pub max_attempts: Option<u32>,
    /// A connection open this long sends the delays back to `initial`;
    /// shorter ones keep the schedule growing, so a server that cuts every
    /// link soon after it opens is retried ever more slowly.
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            factor: 1.5,
            max: Duration::from_secs(30),
            full_jitter: true,
            max_attempts: None,
            reset_after: Duration::from_secs(60),
        }
    }
}

/// Each setting by name, for a value built from the defaults:
/// `BackoffConfig::default().initial(..)`.
impl BackoffConfig {
    /// Sets `initial`.
    pub fn initial(mut self, initial: Duration) -> Self {
        self.initial = initial;
        self
    }

    /// Sets `factor`.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Sets `max`.
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Sets `full_jitter`.
    pub fn full_jitter(mut self, full_jitter: bool) -> Self {
        self.full_jitter = full_jitter;
        self
    }

    /// Sets `max_attempts`.
    pub fn max_attempts(mut self, max_attempts: Option<u32>) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets `reset_after`.
    pub fn reset_after(mut self, reset_after: Duration) -> Self {
        self.reset_after = reset_after;
        self
    }
}

/// Counts failed attempts and steps of the schedule, and computes the next delay.
#[derive(Debug)]
pub(crate) struct Backoff {
    config: BackoffConfig,
    /// Attempts in a row that did not open.
    failures: u32,
    /// Delays taken since the last stable connection.
    step: u32,
}

impl Backoff {
    pub(crate) fn new(config: BackoffConfig) -> Self {
        Self { config, failures: 0, step: 0 }
    }

    /// Attempts in a row that failed to open, since the last that opened.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Delays taken since the last stable connection.
    #[cfg(test)]
    pub(crate) fn step(&self) -> u32 {
        self.step
    }

    pub(crate) fn reset_after(&self) -> Duration {
        self.config.reset_after
    }

    /// An attempt opened: the count of failed attempts starts again.
    pub(crate) fn opened(&mut self) {
        self.failures = 0;
    }

    /// A connection stayed up for `reset_after`: the delays start again from `initial`.
    pub(crate) fn stable(&mut self) {
        self.step = 0;
    }

    /// Records a connection that ended (`failed`: an attempt that did not
    /// open) and returns the delay before the next attempt, or `None` when
    /// `max_attempts` attempts in a row have failed.
    pub(crate) fn next_delay(&mut self, failed: bool, rng: &mut dyn RandomSource) -> Option<Duration> {
        if failed {
            self.failures = self.failures.saturating_add(1);
            if self.config.max_attempts.is_some_and(|max| self.failures >= max) {
                return None;
            }
        }
        self.step = self.step.saturating_add(1);
        // Past 2^31 steps the exponent stops growing; the delay is long capped by then.
        let exponent = i32::try_from(self.step - 1).unwrap_or(i32::MAX);
        let base = self.config.initial.as_secs_f64() * self.config.factor.powi(exponent);
        // An infinite `base` (huge factor or count) is capped here too.
        let capped = base.min(self.config.max.as_secs_f64());
        let delay = if self.config.full_jitter {
            // 53 random bits give a uniform f64 in [0, 1).
            let unit = (u64::from(rng.next_u32()) << 21 ^ u64::from(rng.next_u32())) as f64 / (1u64 << 53) as f64;
            capped * unit
        } else {
            capped
        };
        // A `max` near `Duration::MAX` rounds up in f64 to more seconds than a
        // Duration holds; such a delay is the cap itself.
        Some(Duration::try_from_secs_f64(delay).unwrap_or(self.config.max).min(self.config.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn fresh_schedule_grows_by_half_and_caps_at_30s() {
        let mut b = Backoff::new(BackoffConfig { full_jitter: false, ..Default::default() });
        let mut rng = StdRng::seed_from_u64(0);
        let ms: Vec<u128> = (0..14).map(|_| b.next_delay(true, &mut rng).unwrap().as_millis()).collect();
        assert_eq!(ms, [250, 375, 562, 843, 1265, 1898, 2847, 4271, 6407, 9610, 14416, 21624, 30000, 30000]);
        assert_eq!((b.failures(), b.step()), (14, 14));
        b.stable();
        assert_eq!(b.next_delay(true, &mut rng), Some(Duration::from_millis(250)));
    }

    #[test]
    fn full_jitter_stays_inside_its_bounds_and_varies() {
        let config = BackoffConfig { full_jitter: true, ..Default::default() };
        let mut rng = StdRng::seed_from_u64(9);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut b = Backoff::new(config.clone());
            for n in 1..=20 {
                let bound = (0.25 * 1.5f64.powi(n - 1)).min(30.0);
                let d = b.next_delay(true, &mut rng).unwrap().as_secs_f64();
                assert!((0.0..=bound).contains(&d), "attempt {n}: {d} > {bound}");
                seen.insert(d.to_bits());
            }
        }
        assert!(seen.len() > 3000, "jitter draws should differ");
    }

    #[test]
    fn the_default_jitters() {
        assert!(BackoffConfig::default().full_jitter, "clients dropped together must not return together");
    }

    #[test]
    fn limits_at_the_edge_of_duration_never_panic_and_stay_within_the_cap() {
        let huge = [
            BackoffConfig { max: Duration::MAX, ..Default::default() },
            BackoffConfig { initial: Duration::MAX, max: Duration::MAX, ..Default::default() },
            BackoffConfig { initial: Duration::MAX, max: Duration::MAX, factor: 1e300, ..Default::default() },
            BackoffConfig { factor: 1e300, max: Duration::MAX, ..Default::default() },
            BackoffConfig { initial: Duration::MAX, factor: 1e300, ..Default::default() },
        ];
        let mut rng = StdRng::seed_from_u64(3);
        for config in huge {
            for full_jitter in [false, true] {
                let config = BackoffConfig { full_jitter, ..config.clone() };
                let mut b = Backoff::new(config.clone());
                let delays: Vec<Duration> = (0..300).map(|_| b.next_delay(true, &mut rng).unwrap()).collect();
                assert!(delays.iter().all(|d| *d <= config.max), "{config:?}: {delays:?}");
                if !full_jitter {
                    assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{config:?} never shrinks: {delays:?}");
                    assert_eq!(delays.last(), Some(&config.max), "{config:?} ends at its cap");
                }
            }
        }
    }

    #[test]
    fn a_huge_failure_count_keeps_the_cap() {
        let config = BackoffConfig { full_jitter: false, ..Default::default() };
        let mut rng = StdRng::seed_from_u64(0);
        for failures in [i32::MAX as u32 - 1, i32::MAX as u32, i32::MAX as u32 + 1, u32::MAX - 1, u32::MAX] {
            let mut b = Backoff { config: config.clone(), failures, step: failures };
            assert_eq!(b.next_delay(true, &mut rng), Some(config.max), "after {failures} failures");
        }
    }

    #[test]
    fn gives_up_after_max_attempts() {
        // Two attempts in all: the first failure schedules a retry, the second gives up.
        let mut b = Backoff::new(BackoffConfig { max_attempts: Some(2), ..Default::default() });
        let mut rng = StdRng::seed_from_u64(0);
        assert!(b.next_delay(true, &mut rng).is_some());
        assert_eq!(b.next_delay(true, &mut rng), None);
    }

    #[test]
    fn connections_that_opened_never_use_up_max_attempts_but_keep_the_schedule_growing() {
        // A server that lets the client in and cuts it soon after: the
        // attempts all open, so giving up never comes; the delays still grow
        // (flapping), until a connection stays up for `reset_after`.
        let config = BackoffConfig { max_attempts: Some(2), full_jitter: false, ..Default::default() };
        let mut b = Backoff::new(config);
        let mut rng = StdRng::seed_from_u64(0);
        let ms: Vec<u128> = (0..5)
            .map(|_| {
                b.opened();
                b.next_delay(false, &mut rng).expect("an attempt that opened is no failure").as_millis()
            })
            .collect();
        assert_eq!(ms, [250, 375, 562, 843, 1265]);
        assert_eq!(b.failures(), 0);
        // One failure after an opened link is the first of a new run: not the end yet.
        assert!(b.next_delay(true, &mut rng).is_some());
        assert_eq!(b.failures(), 1);
        b.opened();
        assert!(b.next_delay(true, &mut rng).is_some(), "the count started again when the link opened");
        assert_eq!(b.next_delay(true, &mut rng), None, "two failures in a row");
        b.stable();
        assert_eq!(b.step(), 0);
    }
}
