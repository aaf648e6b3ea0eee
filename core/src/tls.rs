//! Why a TLS handshake failed, as a typed value a reconnect policy can match.
//!
//! The core runs no TLS (the adapter opens the transport), and depends on no
//! TLS library: the adapter maps its library's error to a [`TlsFailure`] and
//! reports it with [`Session::handle_tls_failure`](crate::Session::handle_tls_failure).
//! Each variant's doc names the rustls error the wslink adapters map to it.
//!
//! The split that matters to a policy is [`TlsFailure::is_certificate`]: a
//! certificate the client refuses is presented again on every attempt until
//! someone changes the server or the client's trust, while a failed
//! negotiation or a broken handshake may pass on the next attempt.

use std::fmt;

/// Why the TLS handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "record", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server's certificate chain leads to no root the client trusts
    /// (rustls `CertificateError::UnknownIssuer`): a self-signed or private
    /// CA certificate the client's roots do not hold.
    UnknownIssuer,
    /// The server's certificate is past its `notAfter` time
    /// (rustls `CertificateError::Expired` and `ExpiredContext`).
    Expired,
    /// The server's certificate is before its `notBefore` time
    /// (rustls `CertificateError::NotValidYet` and `NotValidYetContext`),
    /// or the client's clock is wrong.
    NotYetValid,
    /// The server's certificate names neither the host nor the address the
    /// client connected to (rustls `CertificateError::NotValidForName` and
    /// `NotValidForNameContext`).
    NameMismatch {
        /// The host as the client asked for it (the URL's host).
        expected: String,
        /// The names the certificate carries, when the TLS library reports
        /// them (DNS names and addresses, as written in the certificate).
        presented: Vec<String>,
    },
    /// The server's certificate has been revoked (rustls `CertificateError::Revoked`).
    Revoked,
    /// A certificate in the server's chain is not correctly signed by its
    /// issuer (rustls `CertificateError::BadSignature`): a chain that was
    /// tampered with, or an issuer with the name of a trusted root but
    /// another key.
    BadSignature,
    /// The server presented no certificate at all (rustls `NoCertificatesPresented`).
    NoCertificate,
    /// The certificate's revocation status could not be established
    /// (rustls `CertificateError::UnknownRevocationStatus`,
    /// `ExpiredRevocationList`): the client's revocation data is missing or
    /// stale, which a refresh may fix.
    RevocationUnknown,
    /// The server's certificate was refused for another reason (rustls's
    /// other `CertificateError`s: bad encoding, an unsupported signature
    /// algorithm, a certificate not meant for a TLS server, an unknown
    /// revocation status ...); the text says which.
    OtherCertificate(String),
    /// The server's first answer is not TLS at all (rustls
    /// `InvalidMessage::InvalidContentType`): typically a `wss://` URL that
    /// points at a plain `ws://` or HTTP port.
    NotTls,
    /// The handshake failed without the certificate being refused: the
    /// server ended it with an alert (rustls `AlertReceived`: it refused our
    /// client certificate, or found no protocol version or cipher suite it
    /// accepts), the two sides have nothing in common (rustls
    /// `PeerIncompatible`), the server broke the protocol or closed the
    /// connection mid-handshake. The text reads as a sentence.
    HandshakeFailure(String),
}

impl TlsFailure {
    /// Whether the refusal may pass without anyone touching the server or
    /// the client's trust: a certificate not valid yet (the client's clock
    /// may be behind, as on a machine that booted before its clock was set)
    /// or a revocation status unknown (the revocation data may be stale).
    pub fn may_pass_with_time(&self) -> bool {
        matches!(self, Self::NotYetValid | Self::RevocationUnknown)
    }

    /// Whether the server presents a certificate the client refuses (or
    /// none): it will present the same one on the next attempt, so retrying
    /// helps only once someone fixes the server or the client's trust.
    pub fn is_certificate(&self) -> bool {
        match self {
            Self::UnknownIssuer
            | Self::Expired
            | Self::NotYetValid
            | Self::NameMismatch { .. }
            | Self::Revoked
            | Self::BadSignature
            | Self::NoCertificate
            | Self::RevocationUnknown
            | Self::OtherCertificate(_) => true,
            Self::NotTls | Self::HandshakeFailure(_) => false,
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownIssuer => {
                f.write_str("the server's certificate was issued by an authority the client does not trust")
            }
            Self::Expired => f.write_str("the server's certificate has expired"),
            Self::NotYetValid => {
                f.write_str("the server's certificate is not valid yet (or the client's clock is wrong)")
            }
            Self::NameMismatch { expected, presented } => {
                write!(f, "the server's certificate is not valid for {expected}")?;
                if !presented.is_empty() {
                    write!(f, " (it names {})", presented.join(", "))?;
                }
                Ok(())
            }
            Self::Revoked => f.write_str("the server's certificate has been revoked"),
            Self::BadSignature => f.write_str("the server's certificate is not correctly signed by its issuer"),
            Self::NoCertificate => f.write_str("the server presented no certificate"),
            Self::RevocationUnknown => f.write_str("the revocation status of the server's certificate is unknown"),
            Self::OtherCertificate(why) => write!(f, "the server's certificate was refused: {why}"),
            Self::NotTls => f.write_str("the server did not answer in TLS (is the URL's port a plain ws:// one?)"),
            Self::HandshakeFailure(why) => f.write_str(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_problems_are_told_apart_from_failed_negotiations() {
        let certificate = [
            TlsFailure::UnknownIssuer,
            TlsFailure::Expired,
            TlsFailure::NotYetValid,
            TlsFailure::NameMismatch { expected: "example.com".into(), presented: vec![] },
            TlsFailure::Revoked,
            TlsFailure::BadSignature,
            TlsFailure::NoCertificate,
            TlsFailure::OtherCertificate("it is not correctly encoded".into()),
        ];
        assert!(certificate.iter().all(TlsFailure::is_certificate));
        let negotiation = [TlsFailure::NotTls, TlsFailure::HandshakeFailure("the server sent an alert".into())];
        assert!(!negotiation.iter().any(TlsFailure::is_certificate));
    }

    #[test]
    fn failures_read_as_sentences_with_their_detail() {
        let mismatch = TlsFailure::NameMismatch {
            expected: "example.com".into(),
            presented: vec!["other.example".into(), "127.0.0.1".into()],
        };
        assert_eq!(
            mismatch.to_string(),
            "the server's certificate is not valid for example.com (it names other.example, 127.0.0.1)"
        );
        let bare = TlsFailure::NameMismatch { expected: "example.com".into(), presented: vec![] };
        assert_eq!(bare.to_string(), "the server's certificate is not valid for example.com");
        assert_eq!(TlsFailure::Expired.to_string(), "the server's certificate has expired");
        assert_eq!(
            TlsFailure::OtherCertificate("it is not correctly encoded".into()).to_string(),
            "the server's certificate was refused: it is not correctly encoded"
        );
        let alert =
            TlsFailure::HandshakeFailure("the server ended the handshake with the alert HandshakeFailure".into());
        assert_eq!(alert.to_string(), "the server ended the handshake with the alert HandshakeFailure");
    }
}
