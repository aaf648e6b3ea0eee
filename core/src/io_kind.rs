//! `io::ErrorKind` by name, as recordings write it (its `Debug` name): a
//! leaf at the bottom of the core, so that everything that serializes a
//! transport's error (the proxy's errors, the session's recording, the
//! replay) names kinds the same way. A name this build does not know is
//! `Other`, so a recording from a newer std still reads.

use std::io::ErrorKind;

/// The kinds a recording may name (std's unstable ones are `Other`).
const NAMED: [ErrorKind; 22] = [
    ErrorKind::NotFound,
    ErrorKind::PermissionDenied,
    ErrorKind::ConnectionRefused,
    ErrorKind::ConnectionReset,
    ErrorKind::HostUnreachable,
    ErrorKind::NetworkUnreachable,
    ErrorKind::ConnectionAborted,
    ErrorKind::NotConnected,
    ErrorKind::AddrInUse,
    ErrorKind::AddrNotAvailable,
    ErrorKind::NetworkDown,
    ErrorKind::BrokenPipe,
    ErrorKind::AlreadyExists,
    ErrorKind::WouldBlock,
    ErrorKind::InvalidInput,
    ErrorKind::InvalidData,
    ErrorKind::TimedOut,
    ErrorKind::WriteZero,
    ErrorKind::Interrupted,
    ErrorKind::Unsupported,
    ErrorKind::UnexpectedEof,
    ErrorKind::OutOfMemory,
];

/// An I/O error kind from its `Debug` name; `Other` for names this build does not know.
pub(crate) fn from_name(name: &str) -> ErrorKind {
    NAMED.into_iter().find(|k| format!("{k:?}") == name).unwrap_or(ErrorKind::Other)
}

/// `io::ErrorKind` as its `Debug` name, for `#[serde(with = "crate::io_kind::serde_name")]`.
#[cfg(feature = "record")]
pub(crate) mod serde_name {
    /// Writes the kind's name.
    pub(crate) fn serialize<S: serde::Serializer>(kind: &std::io::ErrorKind, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{kind:?}"))
    }

    /// Reads a name back (`Other` when unknown).
    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::io::ErrorKind, D::Error> {
        let name: String = serde::Deserialize::deserialize(d)?;
        Ok(super::from_name(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_kind_reads_back_and_the_rest_are_other() {
        for kind in NAMED {
            assert_eq!(from_name(&format!("{kind:?}")), kind);
        }
        assert_eq!(from_name("QuotaExceeded"), ErrorKind::Other);
        assert_eq!(from_name(""), ErrorKind::Other);
    }
}
