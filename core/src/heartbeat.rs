//! Liveness of the open connection: protocol pings with a pong deadline, an
//! idle timeout, and an application heartbeat's timing.
//!
//! This is a small timer machine: the session tells it when the connection
//! opens, when bytes or beats arrive and what it sent; it answers with the
//! next deadline and, once one passes, what to do. It never sends by itself.
//!
//! Deadlines past what `Instant` can hold are `None` (never), so no setting
//! can overflow. While the caller has stopped reading (its consumer is
//! behind), no answer can arrive: every timer is frozen, and on resume each
//! is moved later by the pause, but never past a full wait from then. A live
//! link that is paused is never declared dead; a link that died during the
//! pause is found at most `interval + timeout` after reading resumes.

use std::time::{Duration, Instant};

use crate::deadline::{after, postpone};

/// Protocol-level pings.
///
/// Only time spent reading counts: while the adapter pauses reading because
/// the consumer is behind (or the caller reports
/// `Session::handle_reading_paused`), the pong deadline and the next ping
/// wait, so a slow consumer never makes a live link look dead. A link that
/// died during the pause is still found, within `interval + timeout` of
/// reading after it resumes. A consumer that waits, inside its event loop,
/// for an answer that can only arrive through the paused stream (a request's
/// response) is therefore not rescued by the heartbeat: the request's own
/// timeout ends that wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PingConfig {
    /// Time between pings.
    pub interval: Duration,
    /// How long to wait for the pong; shorter than `interval`.
    pub timeout: Duration,
}

/// Timing of an application heartbeat (see `AppHeartbeat`). Paused reading
/// freezes it as it does [`PingConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppHeartbeatConfig {
    /// Time between our pings, or the server's expected beat interval.
    pub interval: Duration,
    /// Extra time allowed for the answer or the server's beat.
    pub timeout: Duration,
}

impl PingConfig {
    /// A ping every `interval`, each answered within `timeout` (shorter than `interval`).
    pub const fn new(interval: Duration, timeout: Duration) -> Self {
        Self { interval, timeout }
    }
}

impl AppHeartbeatConfig {
    /// The application heartbeat's `interval` and the `timeout` allowed on top of it.
    pub const fn new(interval: Duration, timeout: Duration) -> Self {
        Self { interval, timeout }
    }
}

/// What the session's heartbeats have seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HeartbeatHealth {
    /// When the last heartbeat answer (pong, app pong, server beat) arrived.
    pub last_heartbeat: Option<Instant>,
    /// Round trip of the last answered heartbeat.
    pub last_rtt: Option<Duration>,
    /// Round trips measured since the session started (each one set
    /// `last_rtt`): a caller that samples `last_rtt` sees from this whether
    /// a new one came since it last looked.
    pub rtt_samples: u64,
    /// Missed heartbeats since the last answered one.
    pub consecutive_failures: u32,
    /// Missed heartbeats since the session started.
    pub total_failures: u64,
    /// Whether a heartbeat is waiting for its answer.
    pub in_flight: bool,
}

/// What a passed deadline asks of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Send a protocol ping with this payload.
    Ping([u8; 8]),
    /// Send the application heartbeat's ping.
    AppPing,
    /// A pong or beat did not come in time.
    HeartbeatTimeout,
    /// Nothing at all arrived in time.
    IdleTimeout,
}

#[derive(Debug)]
pub(crate) struct Heartbeat {
    ping: Option<PingConfig>,
    app: Option<AppHeartbeatConfig>,
    app_sends_pings: bool,
    idle: Option<Duration>,
    next_ping: Option<Instant>,
    /// The ping waiting for its pong: sequence number, sent at, deadline (`None`: never).
    ping_wait: Option<(u64, Instant, Option<Instant>)>,
    next_app: Option<Instant>,
    /// The app ping or server beat waited for: since, deadline (`None`: never).
    app_wait: Option<(Instant, Option<Instant>)>,
    /// When the idle timer ends (`last receive + idle`), while it runs.
    idle_until: Option<Instant>,
    /// Whether a connection is open (the timers run).
    running: bool,
    /// Since when the caller has not been reading.
    paused_since: Option<Instant>,
    seq: u64,
    health: HeartbeatHealth,
}

impl Heartbeat {
    pub(crate) fn new(ping: Option<PingConfig>, app: Option<AppHeartbeatConfig>, idle: Option<Duration>) -> Self {
        Self {
            ping,
            app,
            app_sends_pings: true,
            idle,
            next_ping: None,
            ping_wait: None,
            next_app: None,
            app_wait: None,
            idle_until: None,
            running: false,
            paused_since: None,
            seq: 0,
            health: HeartbeatHealth::default(),
        }
    }

    pub(crate) fn health(&self) -> HeartbeatHealth {
        self.health
    }

    /// The connection is open: start every timer. `app_sends_pings` is false
    /// for server-driven heartbeats, where a missing beat is the failure.
    pub(crate) fn start(&mut self, now: Instant, app_sends_pings: bool) {
        self.app_sends_pings = app_sends_pings;
        self.next_ping = self.ping.and_then(|p| after(now, p.interval));
        self.ping_wait = None;
        self.next_app = self.app.filter(|_| app_sends_pings).and_then(|a| after(now, a.interval));
        self.app_wait = self.app.filter(|_| !app_sends_pings).map(|a| (now, after(now, beat_wait(a))));
        self.idle_until = self.idle.and_then(|idle| after(now, idle));
        self.running = true;
        self.health.in_flight = false;
    }

    /// The caller stopped reading: every timer waits.
    pub(crate) fn pause(&mut self, now: Instant) {
        self.paused_since.get_or_insert(now);
    }

    /// The caller reads again: every deadline moves later by the pause, but
    /// no later than a full wait from `now`.
    pub(crate) fn resume(&mut self, now: Instant) {
        let Some(since) = self.paused_since.take() else { return };
        let paused = now.saturating_duration_since(since);
        if let Some(p) = self.ping {
            self.next_ping = postpone(self.next_ping, paused, now, p.interval);
            if let Some((_, _, deadline)) = self.ping_wait.as_mut() {
                *deadline = postpone(*deadline, paused, now, p.timeout);
            }
        }
        if let Some(a) = self.app {
            self.next_app = postpone(self.next_app, paused, now, a.interval);
            let full = if self.app_sends_pings { a.timeout } else { beat_wait(a) };
            if let Some((_, deadline)) = self.app_wait.as_mut() {
                *deadline = postpone(*deadline, paused, now, full);
            }
        }
        if let Some(idle) = self.idle {
            self.idle_until = postpone(self.idle_until, paused, now, idle);
        }
    }

    /// The connection is gone: no timer runs until the next `start`.
    pub(crate) fn stop(&mut self) {
        self.next_ping = None;
        self.ping_wait = None;
        self.next_app = None;
        self.app_wait = None;
        self.idle_until = None;
        self.running = false;
        self.health.in_flight = false;
    }

    /// Bytes arrived: the idle timer starts again.
    pub(crate) fn on_receive(&mut self, now: Instant) {
        if self.running {
            self.idle_until = self.idle.and_then(|idle| after(now, idle));
        }
    }

    /// A pong arrived; it answers our ping if the payload matches.
    pub(crate) fn on_pong(&mut self, payload: &[u8], now: Instant) {
        if let Some((seq, sent, _)) = self.ping_wait {
            if payload == seq.to_be_bytes() {
                self.ping_wait = None;
                self.answered(Some(now.saturating_duration_since(sent)), now);
            }
        }
    }

    /// The application heartbeat's answer or the server's beat arrived.
    pub(crate) fn on_app_beat(&mut self, now: Instant) {
        let Some(app) = self.app else { return };
        let rtt = match self.app_wait {
            Some((sent, _)) if self.app_sends_pings => Some(now.saturating_duration_since(sent)),
            _ => None,
        };
        self.app_wait = (!self.app_sends_pings).then_some((now, after(now, beat_wait(app))));
        self.answered(rtt, now);
    }

    /// The round trip of a heartbeat request answered through the request machinery.
    pub(crate) fn on_probe_rtt(&mut self, rtt: Duration) {
        self.health.last_rtt = Some(rtt);
        self.health.rtt_samples += 1;
    }

    fn answered(&mut self, rtt: Option<Duration>, now: Instant) {
        self.health.last_heartbeat = Some(now);
        if rtt.is_some() {
            self.health.last_rtt = rtt;
            self.health.rtt_samples += 1;
        }
        self.health.consecutive_failures = 0;
        self.health.in_flight = self.ping_wait.is_some() || (self.app_sends_pings && self.app_wait.is_some());
    }

    /// The next instant `poll` has something to do.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.paused_since.is_some() {
            return None;
        }
        crate::deadline::earliest(&[
            self.next_ping,
            self.ping_wait.and_then(|w| w.2),
            self.next_app,
            self.app_wait.and_then(|w| w.1),
            self.idle_until,
        ])
    }

    /// What is due at `now`, if anything; call until `None`.
    pub(crate) fn poll(&mut self, now: Instant) -> Option<Due> {
        if self.paused_since.is_some() {
            return None;
        }
        let passed = |deadline: Option<Instant>| deadline.is_some_and(|d| d <= now);
        let timed_out = self.ping_wait.is_some_and(|w| passed(w.2)) || self.app_wait.is_some_and(|w| passed(w.1));
        if timed_out {
            self.health.consecutive_failures += 1;
            self.health.total_failures += 1;
            self.stop();
            return Some(Due::HeartbeatTimeout);
        }
        if passed(self.idle_until) {
            self.stop();
            return Some(Due::IdleTimeout);
        }
        if let (Some(at), Some(ping)) = (self.next_ping, self.ping) {
            if at <= now {
                self.seq += 1;
                self.next_ping = after(now, ping.interval);
                self.ping_wait = Some((self.seq, now, after(now, ping.timeout)));
                self.health.in_flight = true;
                return Some(Due::Ping(self.seq.to_be_bytes()));
            }
        }
        if let (Some(at), Some(app)) = (self.next_app, self.app) {
            if at <= now {
                self.next_app = after(now, app.interval);
                self.app_wait = Some((now, after(now, app.timeout)));
                self.health.in_flight = true;
                return Some(Due::AppPing);
            }
        }
        None
    }
}

/// How long a server-driven beat may take: its interval plus the grace.
fn beat_wait(app: AppHeartbeatConfig) -> Duration {
    app.interval.saturating_add(app.timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn pings_at_the_interval_and_fails_without_pong() {
        #[allow(clippy::disallowed_methods)] // the fake clock's origin
        let t0 = Instant::now();
        let mut h = Heartbeat::new(Some(PingConfig { interval: secs(10), timeout: secs(3) }), None, None);
        assert_eq!(h.next_deadline(), None, "nothing runs before start");
        h.start(t0, true);
        assert_eq!(h.next_deadline(), Some(t0 + secs(10)));
        assert_eq!(h.poll(t0 + secs(9)), None);
        assert_eq!(h.poll(t0 + secs(10)), Some(Due::Ping(1u64.to_be_bytes())));
        assert!(h.health().in_flight);
        assert_eq!(h.next_deadline(), Some(t0 + secs(13)));
        h.on_pong(&2u64.to_be_bytes(), t0 + secs(11));
        assert!(h.health().in_flight, "a pong for another ping does not count");
        h.on_pong(&1u64.to_be_bytes(), t0 + secs(11));
        let health = h.health();
        assert_eq!((health.last_rtt, health.in_flight), (Some(secs(1)), false));
        assert_eq!(h.poll(t0 + secs(20)), Some(Due::Ping(2u64.to_be_bytes())));
        assert_eq!(h.poll(t0 + secs(23)), Some(Due::HeartbeatTimeout));
        assert_eq!((h.health().consecutive_failures, h.health().total_failures), (1, 1));
        assert_eq!(h.next_deadline(), None, "stopped after a failure");
    }

    #[test]
    fn idle_timer_restarts_on_every_receive() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut h = Heartbeat::new(None, None, Some(secs(5)));
        h.start(t0, true);
        h.on_receive(t0 + secs(4));
        assert_eq!(h.next_deadline(), Some(t0 + secs(9)));
        assert_eq!(h.poll(t0 + secs(8)), None);
        assert_eq!(h.poll(t0 + secs(9)), Some(Due::IdleTimeout));
    }

    #[test]
    fn server_driven_beats_must_keep_coming() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut h = Heartbeat::new(None, Some(AppHeartbeatConfig { interval: secs(10), timeout: secs(5) }), None);
        h.start(t0, false);
        assert_eq!(h.next_deadline(), Some(t0 + secs(15)));
        h.on_app_beat(t0 + secs(9));
        assert_eq!(h.next_deadline(), Some(t0 + secs(24)));
        assert_eq!(h.health().last_heartbeat, Some(t0 + secs(9)));
        assert_eq!(h.poll(t0 + secs(24)), Some(Due::HeartbeatTimeout));
    }

    #[test]
    fn app_pings_wait_for_their_pong() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut h = Heartbeat::new(None, Some(AppHeartbeatConfig { interval: secs(10), timeout: secs(2) }), None);
        h.start(t0, true);
        assert_eq!(h.poll(t0 + secs(10)), Some(Due::AppPing));
        h.on_app_beat(t0 + secs(11));
        assert_eq!(h.health().last_rtt, Some(secs(1)));
        assert_eq!(h.poll(t0 + secs(20)), Some(Due::AppPing));
        assert_eq!(h.poll(t0 + secs(22)), Some(Due::HeartbeatTimeout));
    }
}
