//! The client's builder from the arguments: headers, subprotocols, the
//! reconnect and heartbeat settings, the subscription codec and the roots
//! TLS trusts.
//!
//! Invariant: a setting that cannot be used (a `--cacert` file that cannot
//! be read, is too large or holds no certificate) is an exit code and a
//! sentence before anything connects; the file's text is never quoted.

use std::time::Duration;

use wslink_adapter::{Builder, Roots, Runtime, TlsOptions};
use wslink_core::PingConfig;

use crate::args::{Args, Ping};
use crate::exit::Exit;

/// The builder for `args`, or the exit code and message for a setting that
/// cannot be used (a `--cacert` file that cannot be read, say).
pub(super) fn configure<R: Runtime>(args: &Args) -> Result<Builder<R>, (Exit, String)> {
    let mut b = Builder::<R>::new(&args.url).map_err(|e| (Exit::Usage, e.to_string()))?;
    for (name, value) in &args.headers {
        b = b.header(name, value);
    }
    for protocol in &args.protocols {
        b = b.subprotocol(protocol);
    }
    b = b.reconnect(args.reconnect).max_attempts(args.max_attempts);
    let timeout = args.request_timeout;
    b = b.config(|c| c.request_timeout = timeout);
    if args.max_message_size_given {
        // A frame cannot be larger than the message it carries, and may be as large.
        b = b.max_message_size(args.max_message_size).max_frame_size(args.max_message_size);
    }
    b = match args.ping {
        Ping::Default => b,
        Ping::Off => b.ping(None),
        // The pong deadline must be shorter than the interval; 10 s is the library's default.
        Ping::Every(interval) => b.ping(Some(PingConfig::new(interval, (interval / 2).min(Duration::from_secs(10))))),
    };
    if let Some(method) = &args.subscribe_method {
        let codec = wslink_core::presets::JsonRpcSubscriptions {
            subscribe_method: method.clone().into(),
            ..Default::default()
        };
        b = b.subscription_codec(codec);
    }
    if args.native_roots {
        b = b.tls(TlsOptions::default().roots(Roots::Native));
    }
    if let Some(path) = &args.cacert {
        b = b.tls(TlsOptions::with_roots(read_roots(path).map_err(|e| (Exit::Usage, e))?));
    }
    Ok(b)
}

/// The largest `--cacert` file read: a bundle of every public root is
/// about 250 KB. Past it the file is refused, so that `/dev/zero`, a FIFO
/// that never ends or a wrong file of gigabytes is not read into memory.
pub(crate) const CACERT_LIMIT: u64 = 4 << 20;

/// The root certificates of a PEM file of at most [`CACERT_LIMIT`] bytes,
/// or a sentence saying why not.
fn read_roots(path: &std::path::Path) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::{self, PemObject};
    use rustls::pki_types::CertificateDer;
    use std::io::Read;
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("--cacert {shown}: {e}"))?;
    let mut text = Vec::new();
    file.take(CACERT_LIMIT + 1).read_to_end(&mut text).map_err(|e| format!("--cacert {shown}: {e}"))?;
    if text.len() as u64 > CACERT_LIMIT {
        return Err(format!(
            "--cacert {shown} is larger than {} MiB: not a file of PEM certificates",
            CACERT_LIMIT >> 20
        ));
    }
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&text) {
        let cert = cert.map_err(|e| match e {
            // Its text would quote a line of the file.
            pem::Error::IllegalSectionStart { .. } => format!("--cacert {shown}: a PEM section starts badly"),
            e => format!("--cacert {shown}: {e}"),
        })?;
        store.add(cert).map_err(|e| format!("--cacert {shown}: {e}"))?;
    }
    if store.is_empty() {
        return Err(format!("--cacert {shown}: no certificate in the file"));
    }
    Ok(store)
}
