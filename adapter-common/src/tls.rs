//! TLS settings: which roots to trust (webpki's bundled roots by default, the
//! system store, or the caller's own) and an optional client certificate.
//! The crypto provider is rustls's `ring`, named explicitly so no process-wide
//! default has to be installed.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::Error;

/// Where trusted root certificates come from.
#[derive(Debug, Clone, Default)]
pub enum Roots {
    /// Mozilla's roots as bundled by `webpki-roots` (the default: same on every machine).
    #[default]
    WebPki,
    /// The operating system's store, read with `rustls-native-certs`.
    Native,
    /// The caller's own store (a private CA, a test certificate).
    Custom(RootCertStore),
}

/// TLS options for `wss://` URLs.
#[derive(Debug, Default)]
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

    /// Builds the rustls configuration.
    pub(crate) fn build(self) -> Result<Arc<ClientConfig>, Error> {
        if let Some(config) = self.config {
            return Ok(config);
        }
        let roots = match self.roots {
            Roots::WebPki => RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
            Roots::Native => {
                let loaded = rustls_native_certs::load_native_certs();
                let mut store = RootCertStore::empty();
                let (added, _) = store.add_parsable_certificates(loaded.certs);
                if added == 0 {
                    return Err(Error::Tls(format!("no usable system root certificate ({:?})", loaded.errors)));
                }
                store
            }
            Roots::Custom(store) => store,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_root_certificates(roots);
        let config = match self.client_cert {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| Error::Tls(e.to_string()))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}
