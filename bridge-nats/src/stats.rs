//! The bridge's figures: kept here for the process itself (the periodic line,
//! the summary at exit, tests) and pushed through the `metrics` facade, the
//! one wslink's own telemetry uses, to whatever exporter the program installs.
//!
//! | metric | kind | meaning |
//! | --- | --- | --- |
//! | `wslink_bridge_received_total` | counter | messages read from the WebSockets |
//! | `wslink_bridge_published_total` | counter | publishes JetStream stored (acked, not duplicates) |
//! | `wslink_bridge_duplicates_total` | counter | publishes JetStream acked as duplicates (the other replica was first) |
//! | `wslink_bridge_retries_total` | counter | publishes sent again after a failure or a timeout |
//! | `wslink_bridge_gaps_total` | counter | gap messages stored (acked, not duplicates; rejection markers included) |
//! | `wslink_bridge_rejected_total` | counter | messages no server could store, each replaced by a `rejected` marker |
//! | `wslink_bridge_resets_total` | counter | restarts of a channel's numbering seen, each marked `reset` |
//! | `wslink_bridge_backpressure_total` | counter | times the window filled and the bridge stopped reading |
//! | `wslink_bridge_in_flight` | gauge | publishes awaiting their ack |
//! | `wslink_bridge_publish_latency_seconds` | histogram | publish to ack |
//! | `wslink_bridge_lag_seconds` | histogram | WebSocket receive to ack |
//!
//! Invariant: `max_in_flight` never exceeds the configured window; the
//! latency reservoir holds at most [`RESERVOIR`] samples (the most recent).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use serde::Serialize;

/// Latency samples kept for the percentiles.
pub const RESERVOIR: usize = 8192;

/// Live figures, shared between the bridge's loop and whoever reads them.
///
/// The metric handles are registered when it is made: install the
/// `metrics` recorder before making it.
#[derive(Debug)]
pub struct Stats {
    received: AtomicU64,
    published: AtomicU64,
    duplicates: AtomicU64,
    retries: AtomicU64,
    gaps: AtomicU64,
    rejected: AtomicU64,
    resets: AtomicU64,
    backpressure: AtomicU64,
    backpressured: AtomicBool,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    max_backlog: AtomicU64,
    latencies: Mutex<VecDeque<Duration>>,
    metrics: Handles,
}

/// The metric handles, registered once (a lookup per message would cost more than the rest).
#[derive(Debug)]
struct Handles {
    published: Counter,
    duplicates: Counter,
    retries: Counter,
    gaps: Counter,
    rejected: Counter,
    resets: Counter,
    backpressure: Counter,
    in_flight: Gauge,
    latency: Histogram,
    lag: Histogram,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            received: AtomicU64::default(),
            published: AtomicU64::default(),
            duplicates: AtomicU64::default(),
            retries: AtomicU64::default(),
            gaps: AtomicU64::default(),
            rejected: AtomicU64::default(),
            resets: AtomicU64::default(),
            backpressure: AtomicU64::default(),
            backpressured: AtomicBool::default(),
            in_flight: AtomicU64::default(),
            max_in_flight: AtomicU64::default(),
            max_backlog: AtomicU64::default(),
            latencies: Mutex::default(),
            metrics: Handles {
                published: metrics::counter!("wslink_bridge_published_total"),
                duplicates: metrics::counter!("wslink_bridge_duplicates_total"),
                retries: metrics::counter!("wslink_bridge_retries_total"),
                gaps: metrics::counter!("wslink_bridge_gaps_total"),
                rejected: metrics::counter!("wslink_bridge_rejected_total"),
                resets: metrics::counter!("wslink_bridge_resets_total"),
                backpressure: metrics::counter!("wslink_bridge_backpressure_total"),
                in_flight: metrics::gauge!("wslink_bridge_in_flight"),
                latency: metrics::histogram!("wslink_bridge_publish_latency_seconds"),
                lag: metrics::histogram!("wslink_bridge_lag_seconds"),
            },
        }
    }
}

/// The figures at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// Messages read from the WebSockets.
    pub received: u64,
    /// Publishes stored by JetStream (data and gap messages, duplicates not counted).
    pub published: u64,
    /// Publishes JetStream acked as duplicates.
    pub duplicates: u64,
    /// Publishes sent again.
    pub retries: u64,
    /// Gap messages stored (duplicates not counted).
    pub gaps: u64,
    /// Messages rejected as impossible to store (each replaced by a marker).
    pub rejected: u64,
    /// Restarts of a channel's numbering seen (each marked `reset`).
    pub resets: u64,
    /// Times the window filled.
    pub backpressure: u64,
    /// Whether reading is paused now.
    pub backpressured: bool,
    /// Publishes awaiting their ack now.
    pub in_flight: u64,
    /// The most ever awaited at once.
    pub max_in_flight: u64,
    /// The most messages ever waiting to be sent again or for a place in the window.
    pub max_backlog: u64,
    /// Publish-to-ack latency over the recent samples, microseconds: p50, p99, max.
    pub latency_us: [u64; 3],
}

impl Stats {
    /// The counter of messages read from `endpoint`, to keep and pass to [`Stats::received`].
    pub(crate) fn endpoint_counter(endpoint: &str) -> Counter {
        metrics::counter!("wslink_bridge_received_total", "endpoint" => endpoint.to_owned())
    }

    /// A message read from a WebSocket (its endpoint's counter).
    pub(crate) fn received(&self, counter: &Counter) {
        self.received.fetch_add(1, Relaxed);
        counter.increment(1);
    }

    /// An ack: stored or a duplicate, after `latency` from its publish and `lag` from its receipt.
    pub(crate) fn acked(&self, duplicate: bool, latency: Duration, lag: Duration) {
        if duplicate {
            self.duplicates.fetch_add(1, Relaxed);
            self.metrics.duplicates.increment(1);
        } else {
            self.published.fetch_add(1, Relaxed);
            self.metrics.published.increment(1);
        }
        self.metrics.latency.record(latency.as_secs_f64());
        self.metrics.lag.record(lag.as_secs_f64());
        let mut samples = self.latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if samples.len() == RESERVOIR {
            samples.pop_front();
        }
        samples.push_back(latency);
    }

    /// A publish failed and will be sent again.
    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Relaxed);
        self.metrics.retries.increment(1);
    }

    /// A gap message was stored (acked, not as a duplicate).
    pub(crate) fn gap(&self) {
        self.gaps.fetch_add(1, Relaxed);
        self.metrics.gaps.increment(1);
    }

    /// A message no server can store was dropped (a marker takes its place).
    pub(crate) fn rejected(&self) {
        self.rejected.fetch_add(1, Relaxed);
        self.metrics.rejected.increment(1);
    }

    /// A channel's numbering restarted.
    pub(crate) fn reset(&self) {
        self.resets.fetch_add(1, Relaxed);
        self.metrics.resets.increment(1);
    }

    /// Publishes awaiting their acks now, and the backlog waiting to be sent.
    pub(crate) fn in_flight(&self, now: usize, backlog: usize) {
        let now = now as u64;
        self.in_flight.store(now, Relaxed);
        self.max_in_flight.fetch_max(now, Relaxed);
        self.max_backlog.fetch_max(backlog as u64, Relaxed);
        self.metrics.in_flight.set(now as f64);
    }

    /// Reading paused (`true`) or resumed; returns whether it changed.
    pub(crate) fn set_backpressured(&self, on: bool) -> bool {
        let changed = self.backpressured.swap(on, Relaxed) != on;
        if changed && on {
            self.backpressure.fetch_add(1, Relaxed);
            self.metrics.backpressure.increment(1);
        }
        changed
    }

    /// The figures now.
    pub fn snapshot(&self) -> Snapshot {
        let mut samples: Vec<Duration> =
            self.latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().copied().collect();
        samples.sort_unstable();
        let at = |q: f64| -> u64 {
            let i = ((samples.len() as f64 - 1.0) * q).round().max(0.0) as usize;
            samples.get(i).map_or(0, |d| d.as_micros() as u64)
        };
        Snapshot {
            received: self.received.load(Relaxed),
            published: self.published.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            retries: self.retries.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            resets: self.resets.load(Relaxed),
            backpressure: self.backpressure.load(Relaxed),
            backpressured: self.backpressured.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            max_in_flight: self.max_in_flight.load(Relaxed),
            max_backlog: self.max_backlog.load(Relaxed),
            latency_us: [at(0.5), at(0.99), at(1.0)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_over_a_bounded_reservoir() {
        let stats = Stats::default();
        for i in 1..=(RESERVOIR as u64 + 100) {
            stats.acked(i % 2 == 0, Duration::from_micros(i), Duration::ZERO);
        }
        let s = stats.snapshot();
        assert_eq!(s.published + s.duplicates, RESERVOIR as u64 + 100);
        assert_eq!(s.latency_us[2], RESERVOIR as u64 + 100);
        assert!(s.latency_us[0] > 100, "the oldest samples left the reservoir");
        assert!(stats.set_backpressured(true));
        assert!(!stats.set_backpressured(true));
        assert!(stats.set_backpressured(false));
        assert_eq!(stats.snapshot().backpressure, 1);
    }
}

#[cfg(test)]
mod facade {
    //! The figures reach whatever recorder the program installs.

    use std::collections::BTreeMap;
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::{Arc, Mutex};

    use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

    use super::*;

    /// Counts what each metric received, by name.
    #[derive(Default, Clone)]
    struct Tally(Arc<Mutex<BTreeMap<String, f64>>>);

    struct Handle(Tally, String);

    impl metrics::CounterFn for Handle {
        fn increment(&self, value: u64) {
            *self.0 .0.lock().unwrap().entry(self.1.clone()).or_default() += value as f64;
        }
        fn absolute(&self, value: u64) {
            self.0 .0.lock().unwrap().insert(self.1.clone(), value as f64);
        }
    }
    impl metrics::GaugeFn for Handle {
        fn increment(&self, value: f64) {
            *self.0 .0.lock().unwrap().entry(self.1.clone()).or_default() += value;
        }
        fn decrement(&self, value: f64) {
            *self.0 .0.lock().unwrap().entry(self.1.clone()).or_default() -= value;
        }
        fn set(&self, value: f64) {
            self.0 .0.lock().unwrap().insert(self.1.clone(), value);
        }
    }
    impl metrics::HistogramFn for Handle {
        fn record(&self, _value: f64) {
            *self.0 .0.lock().unwrap().entry(self.1.clone()).or_default() += 1.0;
        }
    }

    impl Recorder for Tally {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(Arc::new(Handle(self.clone(), key.name().to_owned())))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(Arc::new(Handle(self.clone(), key.name().to_owned())))
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(Arc::new(Handle(self.clone(), key.name().to_owned())))
        }
    }

    #[test]
    fn every_figure_goes_through_the_facade() {
        let tally = Tally::default();
        // The handles are registered with the recorder there when the figures are made.
        let (stats, counter) =
            metrics::with_local_recorder(&tally, || (Stats::default(), Stats::endpoint_counter("ex")));
        stats.received(&counter);
        stats.received(&counter);
        stats.acked(false, Duration::from_millis(1), Duration::from_millis(2));
        stats.acked(true, Duration::from_millis(1), Duration::from_millis(2));
        stats.retried();
        stats.gap();
        stats.rejected();
        stats.reset();
        stats.in_flight(7, 0);
        stats.set_backpressured(true);
        let got = tally.0.lock().unwrap().clone();
        let want = [
            ("wslink_bridge_received_total", 2.0),
            ("wslink_bridge_published_total", 1.0),
            ("wslink_bridge_duplicates_total", 1.0),
            ("wslink_bridge_retries_total", 1.0),
            ("wslink_bridge_gaps_total", 1.0),
            ("wslink_bridge_rejected_total", 1.0),
            ("wslink_bridge_resets_total", 1.0),
            ("wslink_bridge_backpressure_total", 1.0),
            ("wslink_bridge_in_flight", 7.0),
            ("wslink_bridge_publish_latency_seconds", 2.0),
            ("wslink_bridge_lag_seconds", 2.0),
        ];
        for (name, value) in want {
            assert_eq!(got.get(name), Some(&value), "{name} in {got:?}");
        }
        assert_eq!(stats.max_in_flight.load(Relaxed), 7);
    }
}
