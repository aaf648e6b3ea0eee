//! A certificate authority and a server certificate for 127.0.0.1, made fresh
//! for each test run with rcgen: nothing secret is committed, and the client
//! trusts the CA through a custom root store.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA and a leaf certificate it signed for `127.0.0.1` and `localhost`.
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
}

impl TestCerts {
    /// Generates a fresh CA and server certificate.
    pub fn generate() -> Self {
        let ca_key = KeyPair::generate().expect("key generation");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA self-signed");
        let issuer = Issuer::new(ca_params, &ca_key);
        let leaf_key = KeyPair::generate().expect("key generation");
        let leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("leaf params");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf signed by the CA");
        Self {
            ca: ca_cert.der().clone(),
            chain: vec![leaf.der().clone(), ca_cert.der().clone()],
            key: leaf_key.serialize_der(),
            chain_pem: format!("{}{}", leaf.pem(), ca_cert.pem()),
            key_pem: leaf_key.serialize_pem(),
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
