//! Round-trip statistics over a bounded window of recent samples.
//!
//! Memory is fixed at the window size whatever the traffic; percentiles are
//! computed on demand by sorting a copy of the window, which is cheap next to
//! how rarely a caller asks.

use std::collections::VecDeque;
use std::time::Duration;

/// A snapshot of round-trip times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LatencyStats {
    /// Samples recorded since the session started (not only those in the window).
    pub count: u64,
    /// The most recent sample.
    pub last: Option<Duration>,
    /// Smallest sample in the window.
    pub min: Option<Duration>,
    /// Largest sample in the window.
    pub max: Option<Duration>,
    /// Median of the window.
    pub p50: Option<Duration>,
    /// 99th percentile of the window.
    pub p99: Option<Duration>,
}

/// The bounded window of samples.
#[derive(Debug)]
pub(crate) struct LatencyWindow {
    samples: VecDeque<Duration>,
    capacity: usize,
    count: u64,
}

impl LatencyWindow {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { samples: VecDeque::new(), capacity: capacity.max(1), count: 0 }
    }

    pub(crate) fn record(&mut self, rtt: Duration) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(rtt);
        self.count += 1;
    }

    pub(crate) fn stats(&self) -> LatencyStats {
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        // Nearest-rank percentile: the smallest sample with at least p% of samples at or below it.
        let rank = |p: f64| {
            let n = sorted.len();
            (n > 0).then(|| sorted[((p * n as f64).ceil() as usize).clamp(1, n) - 1])
        };
        LatencyStats {
            count: self.count,
            last: self.samples.back().copied(),
            min: sorted.first().copied(),
            max: sorted.last().copied(),
            p50: rank(0.50),
            p99: rank(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank_over_the_window_only() {
        let mut w = LatencyWindow::new(100);
        assert_eq!(w.stats(), LatencyStats::default());
        for ms in (1..=200).rev() {
            w.record(Duration::from_millis(ms));
        }
        let s = w.stats();
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis());
        assert_eq!(s.count, 200);
        assert_eq!((ms(s.last), ms(s.min), ms(s.max)), (Some(1), Some(1), Some(100)));
        assert_eq!((ms(s.p50), ms(s.p99)), (Some(50), Some(99)));
        let mut one = LatencyWindow::new(8);
        one.record(Duration::from_millis(7));
        assert_eq!((ms(one.stats().p50), ms(one.stats().p99)), (Some(7), Some(7)));
    }
}
