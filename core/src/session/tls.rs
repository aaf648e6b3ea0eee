//! The session's TLS and proxy inputs: a handshake that failed, typed, so
//! that the reconnect policy can tell a refused certificate or a refusing
//! proxy from a bad link.

use std::time::Instant;

use super::{DisconnectReason, Session, SessionState};
use crate::TlsFailure;

impl Session {
    /// The TLS handshake of the transport asked for by `OpenTransport`
    /// failed: report it here rather than through
    /// [`handle_transport_error`](Self::handle_transport_error), so that it
    /// becomes [`DisconnectReason::Tls`] and the policy can match it.
    ///
    /// Reported once the WebSocket handshake has begun (a TLS error on a
    /// live connection), it ends that connection as a transport error with
    /// the failure's text.
    pub fn handle_tls_failure(&mut self, failure: TlsFailure, now: Instant) {
        self.record(now, || crate::record::format::Entry::Tls { failure: failure.clone() });
        if self.conn.is_some() {
            return self.transport_error(std::io::ErrorKind::InvalidData, &failure.to_string(), now);
        }
        if self.state == SessionState::Connecting {
            let reason = DisconnectReason::Tls { failure, ever_connected: self.counters.opened > 0 };
            self.disconnect(reason, None, now);
        }
    }

    /// The proxy the transport asked for by `OpenTransport` goes through
    /// failed before the tunnel opened (see [`crate::proxy`]): report it
    /// here rather than through [`handle_transport_error`](Self::handle_transport_error),
    /// so that it becomes [`DisconnectReason::Proxy`] and the policy can
    /// match it. Ignored unless the session is connecting (a proxy has no
    /// say once the tunnel is open: its failures are the transport's).
    pub fn handle_proxy_failure(&mut self, error: crate::proxy::ProxyError, now: Instant) {
        self.record(now, || crate::record::format::Entry::Proxy { error: error.clone() });
        if self.conn.is_none() && self.state == SessionState::Connecting {
            self.disconnect(DisconnectReason::Proxy(error), None, now);
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // each test's fake clock needs an origin
mod tests {
    use std::time::{Duration, Instant};

    use rand::{rngs::StdRng, SeedableRng};

    use crate::{Action, CloseReason, DisconnectReason, Session, SessionEvent, SessionState, TlsFailure};

    fn session(now: Instant) -> Session {
        let mut s =
            Session::builder("wss://example.com/").unwrap().build(Box::new(StdRng::seed_from_u64(7)), now).unwrap();
        s.connect(now).unwrap();
        s
    }

    fn events(s: &mut Session) -> Vec<SessionEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn actions(s: &mut Session) -> Vec<Action> {
        std::iter::from_fn(|| s.poll_action()).collect()
    }

    /// Opens the transport and completes the upgrade with a valid answer.
    fn open(s: &mut Session, now: Instant) {
        s.handle_transport_open(now);
        let request = actions(s)
            .into_iter()
            .find_map(|a| match a {
                Action::Transmit(bytes) => Some(String::from_utf8(bytes).unwrap()),
                _ => None,
            })
            .unwrap();
        let key = request.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap();
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            tungstenite::handshake::derive_accept_key(key.as_bytes())
        );
        s.handle_input(answer.as_bytes(), now);
        assert_eq!(s.state(), SessionState::Open);
    }

    #[test]
    fn a_certificate_refused_before_the_first_open_stops_the_session() {
        let now = Instant::now();
        let mut s = session(now);
        let _ = events(&mut s);
        s.handle_tls_failure(TlsFailure::UnknownIssuer, now);
        let reason = DisconnectReason::Tls { failure: TlsFailure::UnknownIssuer, ever_connected: false };
        let evs = events(&mut s);
        assert!(evs.contains(&SessionEvent::Disconnected { reason }), "{evs:?}");
        assert_eq!(evs.last(), Some(&SessionEvent::Closed { reason: CloseReason::Stopped }), "{evs:?}");
        assert_eq!(s.state(), SessionState::Closed);
    }

    #[test]
    fn a_failed_negotiation_before_the_first_open_is_retried() {
        let now = Instant::now();
        let mut s = session(now);
        let _ = events(&mut s);
        // Also the refusals that may pass with time: a clock behind, stale revocation data.
        let failures = [
            TlsFailure::NotTls,
            TlsFailure::HandshakeFailure("the server sent an alert".into()),
            TlsFailure::NotYetValid,
            TlsFailure::RevocationUnknown,
        ];
        for failure in failures {
            s.handle_tls_failure(failure.clone(), now);
            let evs = events(&mut s);
            let reason = DisconnectReason::Tls { failure, ever_connected: false };
            assert!(evs.contains(&SessionEvent::Disconnected { reason }), "{evs:?}");
            assert!(matches!(evs.last(), Some(SessionEvent::Reconnecting { .. })), "{evs:?}");
            let at = s.poll_timeout().unwrap();
            s.handle_timeout(at);
            assert_eq!(s.state(), SessionState::Connecting);
        }
    }

    #[test]
    fn a_certificate_refused_after_the_session_was_open_is_retried_with_backoff() {
        let mut now = Instant::now();
        let mut s = session(now);
        open(&mut s, now);
        // The server goes away; its replacement presents a certificate we refuse.
        now += Duration::from_secs(5);
        s.handle_eof(now);
        let at = s.poll_timeout().unwrap();
        s.handle_timeout(at);
        let _ = events(&mut s);
        for attempt in 2..5 {
            s.handle_tls_failure(TlsFailure::Expired, at);
            let evs = events(&mut s);
            let reason = DisconnectReason::Tls { failure: TlsFailure::Expired, ever_connected: true };
            assert!(evs.contains(&SessionEvent::Disconnected { reason }), "{evs:?}");
            assert!(
                // The connection that dropped had opened: the failed attempts count from the first refusal.
                matches!(evs.last(), Some(SessionEvent::Reconnecting { attempt: a, delay }) if *a == attempt && !delay.is_zero()),
                "{evs:?}"
            );
            let at = s.poll_timeout().unwrap();
            s.handle_timeout(at);
            assert_eq!(s.state(), SessionState::Connecting);
        }
    }

    #[test]
    fn a_tls_failure_on_a_live_connection_is_a_transport_error() {
        let now = Instant::now();
        let mut s = session(now);
        open(&mut s, now);
        let _ = events(&mut s);
        s.handle_tls_failure(TlsFailure::HandshakeFailure("bad record MAC".into()), now);
        let evs = events(&mut s);
        assert!(
            evs.iter().any(|e| matches!(e, SessionEvent::Disconnected { reason: DisconnectReason::Closed(c) }
                if c.error.as_ref().is_some_and(|e| e.to_string().ends_with("bad record MAC")))),
            "{evs:?}"
        );
        assert!(matches!(evs.last(), Some(SessionEvent::Reconnecting { .. })), "{evs:?}");
    }

    #[test]
    fn a_proxy_failure_while_connecting_is_typed_and_retried() {
        use crate::hooks::SessionError;
        use crate::proxy::{BadProxyReply, ProxyError};
        let now = Instant::now();
        let mut s = session(now);
        let _ = events(&mut s);
        let error = ProxyError::BadReply(BadProxyReply::Version(4));
        s.handle_proxy_failure(error.clone(), now);
        let evs = events(&mut s);
        let reason = DisconnectReason::Proxy(error.clone());
        assert_eq!(SessionError::from_disconnect(&reason), Some(SessionError::Proxy(error.clone())));
        assert!(evs.contains(&SessionEvent::Disconnected { reason }), "{evs:?}");
        assert!(matches!(evs.last(), Some(SessionEvent::Reconnecting { .. })), "{evs:?}");
        // Once the tunnel is open, the proxy has no say.
        let at = s.poll_timeout().unwrap();
        s.handle_timeout(at);
        open(&mut s, at);
        let _ = events(&mut s);
        s.handle_proxy_failure(error, at);
        assert!(events(&mut s).is_empty());
        assert_eq!(s.state(), SessionState::Open);
    }
}
