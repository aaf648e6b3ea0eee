//! Carrying out the session's actions on the transport: opening one (and
//! telling the session how that went), queueing the bytes to write, and
//! closing one.
//!
//! Invariants: actions are carried out in the order the session gave
//! them; a transport closed while the session goes on closes in a task of
//! its own (the next connection need not wait for its goodbye), one closed
//! with the session is awaited before the session's end is told.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::Instrument;
use wslink_core::{Action, Session, SessionState};

use super::closing::closing;
use super::state::Io;
use crate::dial::{ConnectTo, Dial};
use crate::runtime::{Runtime, Spawner};
use crate::socket::SocketOptions;
use crate::telemetry::Telemetry;

/// What opening a transport needs, decided by the builder.
pub(crate) struct Opener<R: Runtime> {
    /// Built for a `wss://` URL, and for an `https://` proxy (whose certificate the same roots check).
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// The caller's resolver, or connector, when set (a thin pointer: an
    /// idle client's task keeps 8 bytes for what few clients set).
    pub(crate) dial: Option<Arc<Dial<R>>>,
    /// The proxy every transport goes through (the builder's decision for the URL), if any.
    pub(crate) proxy: Option<Arc<wslink_core::proxy::ProxyServer>>,
    /// Between the starts of connection attempts to a host's addresses (RFC 8305).
    pub(crate) attempt_delay: Duration,
    /// The options of the TCP sockets, when not the default (boxed: an idle
    /// client's task keeps 8 bytes for what few clients set).
    pub(crate) socket: Option<Box<SocketOptions>>,
}

/// Carries out what the session asked of the transport, in order.
pub(super) fn actions<R: Runtime>(
    session: &mut Session,
    io: &mut Io<R>,
    opener: &Opener<R>,
    spawner: Option<&Spawner>,
    telemetry: &mut Telemetry,
) {
    while let Some(action) = session.poll_action() {
        match action {
            Action::OpenTransport { host, port, tls } => open::<R>(session, io, opener, telemetry, host, port, tls),
            Action::Transmit(bytes) => io.out.push_back(bytes),
            Action::CloseTransport { wait_for_server } => close::<R>(session, io, spawner, wait_for_server),
        }
    }
}

/// Starts opening a transport to `host`:`port` (resolving, TCP, the proxy's
/// tunnel and TLS, or the caller's connector and TLS, all in the attempt's
/// span), or tells the session at once why it cannot.
fn open<R: Runtime>(
    session: &mut Session,
    io: &mut Io<R>,
    opener: &Opener<R>,
    telemetry: &mut Telemetry,
    host: String,
    port: u16,
    secure: bool,
) {
    let proxy = opener.proxy.clone();
    let span = telemetry.attempt(session, &host, port, secure, proxy.as_deref());
    // An `https://` proxy's certificate is checked against the same roots.
    let via = proxy.map(|p| {
        let proxy_tls = if p.uses_tls() { opener.tls.clone() } else { None };
        (p, proxy_tls)
    });
    let config = if secure { opener.tls.clone() } else { None };
    if secure && config.is_none() {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "wss URL without a TLS configuration");
        session.handle_transport_error(e.kind(), &e.to_string(), R::now());
    } else if let Some(Dial::Connect(connect)) = opener.dial.as_deref() {
        let to = ConnectTo { host, port, tls: secure, attempt: session.failed_attempts() + 1 };
        let opening = crate::transport::open_stream::<R>(connect.clone(), to, config);
        io.opening = Some(Box::pin(opening.instrument(span)));
    } else {
        let resolver = match opener.dial.as_deref() {
            Some(Dial::Resolve(resolve)) => Some(resolve.clone()),
            _ => None,
        };
        let socket = opener.socket.as_deref().copied().unwrap_or_default();
        let opening = crate::transport::open::<R>(host, port, config, resolver, via, opener.attempt_delay, socket);
        io.opening = Some(Box::pin(opening.instrument(span)));
    }
}

/// Tells the session how the opening ended: the transport is open, or why
/// not (a TLS failure and a proxy's refusal typed, as the session reports them).
pub(super) fn opened<R: Runtime>(session: &mut Session, io: &mut Io<R>, result: io::Result<(R::Reader, R::Writer)>) {
    io.opening = None;
    match result {
        Ok((reader, writer)) => {
            io.reader = Some(reader);
            io.writer = Some(writer);
            session.handle_transport_open(R::now());
        }
        Err(e) => {
            if let Some(failure) = crate::tls::failure(&e) {
                session.handle_tls_failure(failure, R::now());
            } else if let Some(error) = crate::transport::proxy_failure(&e) {
                session.handle_proxy_failure(error, R::now());
            } else {
                session.handle_transport_error(e.kind(), &e.to_string(), R::now());
            }
        }
    }
}

/// Closes the transport: awaited at the session's end when the session has
/// closed, else in a task of its own whose end the session's end awaits.
fn close<R: Runtime>(session: &Session, io: &mut Io<R>, spawner: Option<&Spawner>, wait_for_server: Option<Duration>) {
    let closing = closing::<R>(io, wait_for_server);
    if session.state() == SessionState::Closed {
        io.final_close = Some(closing);
    } else {
        // The next connection need not wait for this one's goodbye,
        // but the session's end will.
        let (done, earlier) = oneshot::channel();
        io.earlier_closes.retain_mut(|e| matches!(e.try_recv(), Err(oneshot::error::TryRecvError::Empty)));
        io.earlier_closes.push(earlier);
        crate::runtime::spawn::<R>(spawner, async move {
            closing.await;
            let _ = done.send(());
        });
    }
}
