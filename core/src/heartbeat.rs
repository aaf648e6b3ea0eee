//! Liveness of the open connection: protocol pings with a pong deadline, an
//! idle timeout, and an application heartbeat's timing.
//!
//! This is a small timer machine: the session tells it when the connection
//! opens, when bytes or beats arrive and what it sent; it answers with the
//! next deadline and, once one passes, what to do. It never sends by itself.

use std::time::{Duration, Instant};

/// Protocol-level pings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingConfig {
    /// Time between pings.
    pub interval: Duration,
    /// How long to wait for the pong; shorter than `interval`.
    pub timeout: Duration,
}

/// Timing of an application heartbeat (see `AppHeartbeat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppHeartbeatConfig {
    /// Time between our pings, or the server's expected beat interval.
    pub interval: Duration,
    /// Extra time allowed for the answer or the server's beat.
    pub timeout: Duration,
}

/// What the session's heartbeats have seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartbeatHealth {
    /// When the last heartbeat answer (pong, app pong, server beat) arrived.
    pub last_heartbeat: Option<Instant>,
    /// Round trip of the last answered heartbeat.
    pub last_rtt: Option<Duration>,
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
    ping_wait: Option<(u64, Instant, Instant)>,
    next_app: Option<Instant>,
    app_wait: Option<(Instant, Instant)>,
    last_rx: Option<Instant>,
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
            last_rx: None,
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
        self.next_ping = self.ping.map(|p| now + p.interval);
        self.ping_wait = None;
        self.next_app = self.app.filter(|_| app_sends_pings).map(|a| now + a.interval);
        self.app_wait = self.app.filter(|_| !app_sends_pings).map(|a| (now, now + a.interval + a.timeout));
        self.last_rx = Some(now);
        self.health.in_flight = false;
    }

    /// The connection is gone: no timer runs until the next `start`.
    pub(crate) fn stop(&mut self) {
        self.next_ping = None;
        self.ping_wait = None;
        self.next_app = None;
        self.app_wait = None;
        self.last_rx = None;
        self.health.in_flight = false;
    }

    /// Bytes arrived: the idle timer starts again.
    pub(crate) fn on_receive(&mut self, now: Instant) {
        if self.last_rx.is_some() {
            self.last_rx = Some(now);
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
        self.app_wait = (!self.app_sends_pings).then_some((now, now + app.interval + app.timeout));
        self.answered(rtt, now);
    }

    /// The round trip of a heartbeat request answered through the request machinery.
    pub(crate) fn on_probe_rtt(&mut self, rtt: Duration) {
        self.health.last_rtt = Some(rtt);
    }

    fn answered(&mut self, rtt: Option<Duration>, now: Instant) {
        self.health.last_heartbeat = Some(now);
        if rtt.is_some() {
            self.health.last_rtt = rtt;
        }
        self.health.consecutive_failures = 0;
        self.health.in_flight = self.ping_wait.is_some() || (self.app_sends_pings && self.app_wait.is_some());
    }

    /// The next instant `poll` has something to do.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let idle = self.idle.zip(self.last_rx).map(|(idle, rx)| rx + idle);
        [self.next_ping, self.ping_wait.map(|w| w.2), self.next_app, self.app_wait.map(|w| w.1), idle]
            .into_iter()
            .flatten()
            .min()
    }

    /// What is due at `now`, if anything; call until `None`.
    pub(crate) fn poll(&mut self, now: Instant) -> Option<Due> {
        let timed_out = self.ping_wait.is_some_and(|w| w.2 <= now) || self.app_wait.is_some_and(|w| w.1 <= now);
        if timed_out {
            self.health.consecutive_failures += 1;
            self.health.total_failures += 1;
            self.stop();
            return Some(Due::HeartbeatTimeout);
        }
        if self.idle.zip(self.last_rx).is_some_and(|(idle, rx)| rx + idle <= now) {
            self.stop();
            return Some(Due::IdleTimeout);
        }
        if let (Some(at), Some(ping)) = (self.next_ping, self.ping) {
            if at <= now {
                self.seq += 1;
                self.next_ping = Some(now + ping.interval);
                self.ping_wait = Some((self.seq, now, now + ping.timeout));
                self.health.in_flight = true;
                return Some(Due::Ping(self.seq.to_be_bytes()));
            }
        }
        if let (Some(at), Some(app)) = (self.next_app, self.app) {
            if at <= now {
                self.next_app = Some(now + app.interval);
                self.app_wait = Some((now, now + app.timeout));
                self.health.in_flight = true;
                return Some(Due::AppPing);
            }
        }
        None
    }
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
