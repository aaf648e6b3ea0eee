//! Why the bridge could not start.

use crate::config::ConfigError;

/// Why the bridge could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The configuration is wrong (or an environment variable it names is missing).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The NATS credentials file could not be read.
    #[error("cannot read the NATS credentials file: {0}")]
    Credentials(std::io::Error),
    /// No NATS server could be reached at start.
    #[error("cannot connect to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    /// The stream could not be created or found, after every try.
    #[error("cannot create or find the JetStream stream {stream:?}: {source}")]
    Stream {
        /// The stream's name.
        stream: String,
        /// JetStream's answer.
        source: async_nats::jetstream::context::CreateStreamError,
    },
    /// The stream can never be created or found as configured (JetStream
    /// off, subjects overlapping another stream's, the account's limits):
    /// refused at the first answer, without trying again.
    #[error("the JetStream stream {stream:?} cannot be created: {reason}")]
    StreamRefused {
        /// The stream's name.
        stream: String,
        /// Why, with JetStream's answer.
        reason: String,
    },
    /// The existing stream's configuration could not be read.
    #[error("cannot read the configuration of the JetStream stream {stream:?}: {source}")]
    StreamInfo {
        /// The stream's name.
        stream: String,
        /// JetStream's answer.
        source: async_nats::jetstream::context::RequestError,
    },
    /// The existing stream cannot be used safely: its subjects do not cover
    /// `<subject_prefix>.>`, or its de-duplication window is shorter than the
    /// configured one (a resend or a failover could be stored twice).
    #[error("the JetStream stream {stream:?} does not fit: {reason}")]
    StreamMismatch {
        /// The stream's name.
        stream: String,
        /// What does not fit.
        reason: String,
    },
    /// The subscription that takes publish acks could not be made.
    #[error("cannot subscribe to the publish acks: {0}")]
    Acks(#[from] async_nats::SubscribeError),
    /// A WebSocket endpoint's client could not be built.
    #[error("endpoint {endpoint:?}: {source}")]
    Endpoint {
        /// The endpoint's name.
        endpoint: String,
        /// The builder's error.
        source: wslink_tokio::Error,
    },
}
