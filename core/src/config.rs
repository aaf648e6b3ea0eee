//! Limits and timeouts of one connection, checked when the connection is built.
//!
//! Defaults follow tungstenite where it has one (16 MiB frames, 64 MiB
//! messages) so that switching to wslink changes no observable limit.

use std::time::Duration;

use crate::deflate::DeflateConfig;
use crate::error::ConfigError;

/// Limits and timeouts of one connection.
///
/// Start from [`ConnectionConfig::default`] and change fields; a value out of
/// range is refused by [`ConnectionConfig::validate`] with the field's name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Largest frame payload accepted; a longer frame closes with 1009 before
    /// its payload is buffered. Default 16 MiB.
    pub max_frame_size: usize,
    /// Largest message accepted, across its fragments; closes with 1009. Default 64 MiB.
    pub max_message_size: usize,
    /// Largest handshake response head accepted. Default 16 KiB.
    pub max_response_head: usize,
    /// How much of a refused upgrade's body is kept for the error. Default 4 KiB.
    pub refusal_body_limit: usize,
    /// Time from the connection's creation to the server's `101`; `None` waits forever.
    /// Default 10 s.
    pub handshake_timeout: Option<Duration>,
    /// Time allowed for the server to answer our close frame and end the
    /// transport, after which the transport is closed anyway. Default 5 s.
    pub close_timeout: Duration,
    /// When set, outgoing messages longer than this are sent as fragments of at
    /// most this many bytes. Default: never fragment.
    pub fragment_size: Option<usize>,
    /// Answer pings with pongs automatically. Default on.
    pub auto_pong: bool,
    /// Offer permessage-deflate (RFC 7692) with these settings. Default `None`
    /// (off): see [`DeflateConfig`] for why, and for the memory it costs.
    pub deflate: Option<DeflateConfig>,
}

/// Each setting by name, for a value built from the defaults:
/// `ConnectionConfig::default().max_frame_size(..)`.
impl ConnectionConfig {
    /// Sets `max_frame_size`.
    pub fn max_frame_size(mut self, max_frame_size: usize) -> Self {
        self.max_frame_size = max_frame_size;
        self
    }

    /// Sets `max_message_size`.
    pub fn max_message_size(mut self, max_message_size: usize) -> Self {
        self.max_message_size = max_message_size;
        self
    }

    /// Sets `max_response_head`.
    pub fn max_response_head(mut self, max_response_head: usize) -> Self {
        self.max_response_head = max_response_head;
        self
    }

    /// Sets `refusal_body_limit`.
    pub fn refusal_body_limit(mut self, refusal_body_limit: usize) -> Self {
        self.refusal_body_limit = refusal_body_limit;
        self
    }

    /// Sets `handshake_timeout`.
    pub fn handshake_timeout(mut self, handshake_timeout: Option<Duration>) -> Self {
        self.handshake_timeout = handshake_timeout;
        self
    }

    /// Sets `close_timeout`.
    pub fn close_timeout(mut self, close_timeout: Duration) -> Self {
        self.close_timeout = close_timeout;
        self
    }

    /// Sets `fragment_size`.
    pub fn fragment_size(mut self, fragment_size: Option<usize>) -> Self {
        self.fragment_size = fragment_size;
        self
    }

    /// Sets `auto_pong`.
    pub fn auto_pong(mut self, auto_pong: bool) -> Self {
        self.auto_pong = auto_pong;
        self
    }

    /// Sets `deflate`.
    pub fn deflate(mut self, deflate: Option<DeflateConfig>) -> Self {
        self.deflate = deflate;
        self
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_response_head: 16 << 10,
            refusal_body_limit: 4 << 10,
            handshake_timeout: Some(Duration::from_secs(10)),
            close_timeout: Duration::from_secs(5),
            fragment_size: None,
            auto_pong: true,
            deflate: None,
        }
    }
}

impl ConnectionConfig {
    /// Checks every field; the error names the first one out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason| Err(ConfigError::InvalidValue { field, reason });
        if self.max_frame_size == 0 {
            return invalid("max_frame_size", "must be at least 1");
        }
        if self.max_message_size == 0 {
            return invalid("max_message_size", "must be at least 1");
        }
        if self.max_response_head < 128 {
            return invalid("max_response_head", "must be at least 128 bytes");
        }
        if self.handshake_timeout == Some(Duration::ZERO) {
            return invalid("handshake_timeout", "must be positive or None");
        }
        if self.close_timeout.is_zero() {
            return invalid("close_timeout", "must be positive");
        }
        if self.fragment_size == Some(0) {
            return invalid("fragment_size", "must be at least 1 or None");
        }
        self.deflate.as_ref().map_or(Ok(()), DeflateConfig::validate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_each_bad_field_is_named() {
        assert_eq!(ConnectionConfig::default().validate(), Ok(()));
        let d = ConnectionConfig::default;
        let cases = [
            (ConnectionConfig { max_frame_size: 0, ..d() }, "max_frame_size"),
            (ConnectionConfig { max_message_size: 0, ..d() }, "max_message_size"),
            (ConnectionConfig { max_response_head: 10, ..d() }, "max_response_head"),
            (ConnectionConfig { handshake_timeout: Some(Duration::ZERO), ..d() }, "handshake_timeout"),
            (ConnectionConfig { close_timeout: Duration::ZERO, ..d() }, "close_timeout"),
            (ConnectionConfig { fragment_size: Some(0), ..d() }, "fragment_size"),
            (
                ConnectionConfig {
                    deflate: Some(DeflateConfig { client_max_window_bits: 8, ..Default::default() }),
                    ..d()
                },
                "deflate.client_max_window_bits",
            ),
            (
                ConnectionConfig {
                    deflate: Some(DeflateConfig { server_max_window_bits: Some(16), ..Default::default() }),
                    ..d()
                },
                "deflate.server_max_window_bits",
            ),
            (
                ConnectionConfig { deflate: Some(DeflateConfig { level: 10, ..Default::default() }), ..d() },
                "deflate.level",
            ),
            (
                ConnectionConfig { deflate: Some(DeflateConfig { mem_level: 0, ..Default::default() }), ..d() },
                "deflate.mem_level",
            ),
        ];
        for (config, field) in cases {
            // Without the codec, any compression setting is refused as a whole.
            let field = if cfg!(feature = "deflate") || !field.starts_with("deflate") { field } else { "deflate" };
            match config.validate() {
                Err(ConfigError::InvalidValue { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn compression_is_refused_without_the_deflate_feature_and_taken_with_it() {
        let config = ConnectionConfig { deflate: Some(DeflateConfig::default()), ..ConnectionConfig::default() };
        let outcome = config.validate();
        assert_eq!(outcome.is_ok(), cfg!(feature = "deflate"), "{outcome:?}");
        if let Err(error) = outcome {
            let ConfigError::InvalidValue { field, reason } = error else { panic!("{error:?}") };
            assert_eq!(field, "deflate");
            assert!(reason.contains("`deflate` feature"), "{reason}");
        }
    }
}
