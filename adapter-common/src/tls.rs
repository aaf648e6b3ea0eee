//! TLS settings: which roots to trust (webpki's bundled roots by default, the
//! system store, or the caller's own) and an optional client certificate.
//! The crypto provider is rustls's `ring`, named explicitly so no process-wide
//! default has to be installed.
//!
//! And what a failed handshake becomes: the runtimes pass the handshake's
//! error through [`tls_handshake_error`], which types it as a
//! [`TlsFailure`] while it still knows the host; the driver finds it again
//! with [`failure`] and reports it to the session, so that a reconnect policy
//! can match it instead of parsing a message.

use std::io;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use wslink_core::TlsFailure;

/// The TLS server name (SNI, and the name the certificate must carry) for `host`.
pub fn tls_server_name(host: &str) -> io::Result<rustls::pki_types::ServerName<'static>> {
    rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("TLS server name {host:?}: {e}")))
}

/// Where trusted root certificates come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Roots {
    /// Mozilla's roots as bundled by `webpki-roots` (the default: same on
    /// every machine). Feature `webpki-roots`.
    #[cfg(feature = "webpki-roots")]
    #[cfg_attr(docsrs, doc(cfg(feature = "webpki-roots")))]
    WebPki,
    /// The operating system's store, read with `rustls-native-certs`.
    /// Feature `native-roots`.
    #[cfg(feature = "native-roots")]
    #[cfg_attr(docsrs, doc(cfg(feature = "native-roots")))]
    Native,
    /// The caller's own store (a private CA, a test certificate).
    Custom(RootCertStore),
}

/// Mozilla's roots when the `webpki-roots` feature is on, else the
/// system's (`native-roots`), else an empty store: with neither feature, a
/// program gives its roots (`TlsOptions::with_roots`) or every certificate
/// is refused as `UnknownIssuer`.
impl Default for Roots {
    fn default() -> Self {
        #[cfg(feature = "webpki-roots")]
        return Self::WebPki;
        #[cfg(all(not(feature = "webpki-roots"), feature = "native-roots"))]
        return Self::Native;
        #[cfg(not(any(feature = "webpki-roots", feature = "native-roots")))]
        return Self::Custom(RootCertStore::empty());
    }
}

/// TLS options for `wss://` URLs.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// Trusted roots.
    pub roots: Roots,
    /// A client certificate chain and its key, for servers that ask for one.
    pub client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// A complete rustls configuration, used as it is instead of the fields above.
    pub config: Option<Arc<ClientConfig>>,
}

impl TlsOptions {
    /// Trust exactly these roots.
    pub fn with_roots(roots: RootCertStore) -> Self {
        Self { roots: Roots::Custom(roots), ..Self::default() }
    }

    /// Where trusted roots come from: `TlsOptions::default().roots(Roots::Native)`.
    pub fn roots(mut self, roots: Roots) -> Self {
        self.roots = roots;
        self
    }

    /// A client certificate chain and its key, for servers that ask for one.
    pub fn client_cert(mut self, chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        self.client_cert = Some((chain, key));
        self
    }

    /// A complete rustls configuration, used as it is instead of the other settings.
    pub fn config(mut self, config: Arc<ClientConfig>) -> Self {
        self.config = Some(config);
        self
    }

    /// Builds the rustls configuration.
    pub(crate) fn build(self) -> Result<Arc<ClientConfig>, TlsSetupError> {
        if let Some(config) = self.config {
            return Ok(config);
        }
        let roots = match self.roots {
            #[cfg(feature = "webpki-roots")]
            Roots::WebPki => RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
            #[cfg(feature = "native-roots")]
            Roots::Native => {
                let loaded = rustls_native_certs::load_native_certs();
                let mut store = RootCertStore::empty();
                let (added, _) = store.add_parsable_certificates(loaded.certs);
                if added == 0 {
                    return Err(TlsSetupError::NoSystemRoots { load_errors: loaded.errors.len() });
                }
                store
            }
            Roots::Custom(store) => store,
        };
        let builder = ClientConfig::builder_with_provider(provider()?)
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Provider)?
            .with_root_certificates(roots);
        let config = match self.client_cert {
            Some((chain, key)) => {
                builder.with_client_auth_cert(chain, key).map_err(TlsSetupError::ClientCertificate)?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// The crypto provider: ring's with the `ring` feature, else aws-lc-rs's
/// with `aws-lc-rs`, else the one the program installed for the process
/// (`CryptoProvider::install_default`).
fn provider() -> Result<Arc<rustls::crypto::CryptoProvider>, TlsSetupError> {
    #[cfg(feature = "ring")]
    return Ok(Arc::new(rustls::crypto::ring::default_provider()));
    #[cfg(all(not(feature = "ring"), feature = "aws-lc-rs"))]
    return Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    return rustls::crypto::CryptoProvider::get_default().cloned().ok_or(TlsSetupError::NoProvider);
}

/// Why a TLS configuration could not be built (`Error::Tls`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// `Roots::Native`: the system's store gave no certificate rustls can use.
    #[error("no usable system root certificate ({load_errors} errors loading the store)")]
    NoSystemRoots {
        /// Errors met while loading the system's store.
        load_errors: usize,
    },
    /// Neither the `ring` nor the `aws-lc-rs` feature is on, and the program
    /// installed no default provider (`CryptoProvider::install_default`).
    #[error("no TLS crypto provider: turn on the `ring` or `aws-lc-rs` feature, or install a default provider")]
    NoProvider,
    /// The crypto provider refused the protocol versions.
    #[error("the TLS provider refused its settings: {0}")]
    Provider(#[source] rustls::Error),
    /// The client certificate and key were refused.
    #[error("the client certificate was refused: {0}")]
    ClientCertificate(#[source] rustls::Error),
}

/// A TLS handshake that failed, carried inside the `io::Error` that the
/// runtime's `connect` returns (its `Display` is the failure's sentence).
#[derive(Debug)]
struct HandshakeFailed(TlsFailure);

impl std::fmt::Display for HandshakeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the TLS handshake failed: {}", self.0)
    }
}

impl std::error::Error for HandshakeFailed {}

/// Types the error of a TLS handshake with `host`, for a runtime's `connect`
/// to return: a rustls error (tokio-rustls and futures-rustls wrap it in the
/// `io::Error`) or the server closing mid-handshake becomes a [`TlsFailure`]
/// the driver reports with `Session::handle_tls_failure`. Other I/O errors (a
/// reset, a timeout) come back as they are: the link failed, not TLS.
pub fn tls_handshake_error(host: &str, error: io::Error) -> io::Error {
    let failure = match error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls_error) => from_rustls(rustls_error, host),
        // tokio-rustls and futures-rustls say "tls handshake eof".
        None if error.kind() == io::ErrorKind::UnexpectedEof => {
            TlsFailure::HandshakeFailure("the server closed the connection during the handshake".to_owned())
        }
        None => return error,
    };
    io::Error::new(io::ErrorKind::InvalidData, HandshakeFailed(failure))
}

/// The TLS failure inside an error from a runtime's `connect`, if it is one.
pub(crate) fn failure(error: &io::Error) -> Option<TlsFailure> {
    error.get_ref()?.downcast_ref::<HandshakeFailed>().map(|h| h.0.clone())
}

/// Maps a rustls error of a handshake with `host` (the name the certificate must carry).
fn from_rustls(error: &rustls::Error, host: &str) -> TlsFailure {
    match error {
        rustls::Error::InvalidCertificate(e) => from_certificate_error(e, host),
        rustls::Error::NoCertificatesPresented => TlsFailure::NoCertificate,
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => TlsFailure::NotTls,
        rustls::Error::AlertReceived(alert) => {
            TlsFailure::HandshakeFailure(format!("the server ended the handshake with the alert {alert:?}"))
        }
        rustls::Error::PeerIncompatible(why) => TlsFailure::HandshakeFailure(format!(
            "the server and the client have no TLS version, cipher suite or feature in common ({why:?})"
        )),
        other => TlsFailure::HandshakeFailure(format!("rustls reported: {other}")),
    }
}

fn from_certificate_error(error: &CertificateError, host: &str) -> TlsFailure {
    let other = |why: &str| TlsFailure::OtherCertificate(why.to_owned());
    match error {
        CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => TlsFailure::Expired,
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => TlsFailure::NotYetValid,
        CertificateError::NotValidForName => TlsFailure::NameMismatch { expected: host.to_owned(), presented: vec![] },
        CertificateError::NotValidForNameContext { presented, .. } => TlsFailure::NameMismatch {
            expected: host.to_owned(),
            presented: presented.iter().map(|name| plain_name(name)).collect(),
        },
        CertificateError::Revoked => TlsFailure::Revoked,
        CertificateError::BadSignature => TlsFailure::BadSignature,
        CertificateError::BadEncoding => other("it is not correctly encoded"),
        CertificateError::UnhandledCriticalExtension => other("it has a critical extension the client does not know"),
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            other("it is signed with an algorithm the client does not support")
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            other("it is not meant for a TLS server")
        }
        CertificateError::UnknownRevocationStatus
        | CertificateError::ExpiredRevocationList
        | CertificateError::ExpiredRevocationListContext { .. } => TlsFailure::RevocationUnknown,
        CertificateError::ApplicationVerificationFailure => other("the application's verifier refused it"),
        // rustls's own words for the rest (and for variants added later).
        e => TlsFailure::OtherCertificate(e.to_string()),
    }
}

/// webpki reports the names a certificate carries as `DnsName("a.example")`
/// or `IpAddress(127.0.0.1)`; a person reads `a.example` and `127.0.0.1`.
fn plain_name(name: &str) -> String {
    let inner = name
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| name.strip_prefix("IpAddress(").and_then(|n| n.strip_suffix(')')));
    inner.unwrap_or(name).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(error: rustls::Error) -> Option<TlsFailure> {
        failure(&tls_handshake_error("example.com", io::Error::new(io::ErrorKind::InvalidData, error)))
    }

    #[test]
    fn rustls_errors_become_typed_failures() {
        use rustls::pki_types::{ServerName, UnixTime};
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1));
        let cases = [
            (rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer), TlsFailure::UnknownIssuer),
            (rustls::Error::InvalidCertificate(CertificateError::Expired), TlsFailure::Expired),
            (
                rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { time, not_after: time }),
                TlsFailure::Expired,
            ),
            (rustls::Error::InvalidCertificate(CertificateError::NotValidYet), TlsFailure::NotYetValid),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                TlsFailure::NameMismatch { expected: "example.com".into(), presented: vec![] },
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                    expected: ServerName::try_from("example.com").unwrap(),
                    presented: vec!["DnsName(\"other.example\")".into(), "IpAddress(10.0.0.1)".into()],
                }),
                TlsFailure::NameMismatch {
                    expected: "example.com".into(),
                    presented: vec!["other.example".into(), "10.0.0.1".into()],
                },
            ),
            (rustls::Error::InvalidCertificate(CertificateError::Revoked), TlsFailure::Revoked),
            (rustls::Error::InvalidCertificate(CertificateError::BadSignature), TlsFailure::BadSignature),
            (
                rustls::Error::InvalidCertificate(CertificateError::BadEncoding),
                TlsFailure::OtherCertificate("it is not correctly encoded".into()),
            ),
            (rustls::Error::NoCertificatesPresented, TlsFailure::NoCertificate),
            (rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType), TlsFailure::NotTls),
            (
                rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
                TlsFailure::HandshakeFailure("the server ended the handshake with the alert HandshakeFailure".into()),
            ),
        ];
        for (error, want) in cases {
            let what = format!("{error:?}");
            assert_eq!(typed(error), Some(want), "{what}");
        }
        let incompatible = typed(rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon));
        assert!(
            matches!(incompatible, Some(TlsFailure::HandshakeFailure(ref t)) if t.contains("NoCipherSuitesInCommon"))
        );
    }

    #[test]
    fn the_link_failing_mid_handshake_is_not_a_tls_failure_but_the_server_hanging_up_is() {
        let reset = tls_handshake_error("example.com", io::ErrorKind::ConnectionReset.into());
        assert_eq!((reset.kind(), failure(&reset)), (io::ErrorKind::ConnectionReset, None));
        let eof = tls_handshake_error("example.com", io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof"));
        assert!(matches!(failure(&eof), Some(TlsFailure::HandshakeFailure(_))));
        // The io::Error reads as the failure.
        let expired = tls_handshake_error(
            "example.com",
            io::Error::new(io::ErrorKind::InvalidData, rustls::Error::InvalidCertificate(CertificateError::Expired)),
        );
        assert_eq!(expired.to_string(), "the TLS handshake failed: the server's certificate has expired");
        // An error that never went through `tls_handshake_error` is not typed.
        let raw = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::NoCertificatesPresented);
        assert_eq!(failure(&raw), None);
    }
}
