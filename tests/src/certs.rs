//! A certificate authority and a server certificate for 127.0.0.1, made fresh
//! for each test run with rcgen: nothing secret is committed, and the client
//! trusts the CA through a custom root store. Variants with other names or an
//! old validity window play the misconfigured servers of the TLS failure tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The names of the default server certificate.
const LOOPBACK: [&str; 2] = ["127.0.0.1", "localhost"];

/// A day, as (year, month, day).
type Day = (i32, u8, u8);

/// A CA and a leaf certificate it signed (for `127.0.0.1` and `localhost`, unless made otherwise).
pub struct TestCerts {
    /// The CA certificate, to trust.
    pub ca: CertificateDer<'static>,
    /// The server's chain (leaf, then CA).
    pub chain: Vec<CertificateDer<'static>>,
    /// The server's key (PKCS#8 DER).
    pub key: Vec<u8>,
    /// PEM of the chain, for peers that read files.
    pub chain_pem: String,
    /// PEM of the key.
    pub key_pem: String,
    /// The CA's common name: its own for each `TestCerts`, so that a client
    /// trusting another one sees an unknown issuer.
    pub ca_name: String,
}

impl TestCerts {
    /// Generates a fresh CA and server certificate.
    pub fn generate() -> Self {
        Self::make(&LOOPBACK, None, None)
    }

    /// A fresh CA and a server certificate for `names` only.
    pub fn for_names(names: &[&str]) -> Self {
        Self::make(names, None, None)
    }

    /// A fresh CA and a server certificate for `127.0.0.1` and `localhost`
    /// that was valid in 2000 only.
    pub fn expired() -> Self {
        Self::make(&LOOPBACK, Some(((2000, 1, 1), (2001, 1, 1))), None)
    }

    /// A CA with the same name as `trusted`'s but a key of its own, and a
    /// server certificate it signed: to a client trusting `trusted`, a
    /// chain whose signature does not verify.
    pub fn impostor_of(trusted: &TestCerts) -> Self {
        Self::make(&LOOPBACK, None, Some(&trusted.ca_name))
    }

    /// `names` in the leaf; `validity` (first and last day) or
    /// rcgen's default; the CA named `ca_name`, or a fresh name.
    fn make(names: &[&str], validity: Option<(Day, Day)>, ca_name: Option<&str>) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let ca_name = match ca_name {
            Some(name) => name.to_owned(),
            None => format!("wslink test CA {}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)),
        };
        let ca_key = KeyPair::generate().expect("key generation");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.distinguished_name.push(DnType::CommonName, ca_name.as_str());
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA self-signed");
        let issuer = Issuer::new(ca_params, &ca_key);
        let leaf_key = KeyPair::generate().expect("key generation");
        let mut leaf_params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).expect("leaf params");
        if let Some(((y0, m0, d0), (y1, m1, d1))) = validity {
            leaf_params.not_before = rcgen::date_time_ymd(y0, m0, d0);
            leaf_params.not_after = rcgen::date_time_ymd(y1, m1, d1);
        }
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf signed by the CA");
        Self {
            ca: ca_cert.der().clone(),
            chain: vec![leaf.der().clone(), ca_cert.der().clone()],
            key: leaf_key.serialize_der(),
            chain_pem: format!("{}{}", leaf.pem(), ca_cert.pem()),
            key_pem: leaf_key.serialize_pem(),
            ca_name,
        }
    }

    /// A root store holding only the test CA.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).expect("valid CA certificate");
        roots
    }

    /// A rustls server configuration with the test certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("default protocol versions")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .expect("valid server certificate");
        Arc::new(config)
    }

    /// Writes the chain and key as PEM files into a fresh directory under `target/`.
    pub fn write_pem(&self, name: &str) -> (PathBuf, PathBuf) {
        let dir = crate::target_dir().join("wslink-test-certs").join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the cert directory");
        let (cert, key) = (dir.join("chain.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &self.chain_pem).expect("write the chain");
        std::fs::write(&key, &self.key_pem).expect("write the key");
        (cert, key)
    }
}
