//! NATS at start: the connection, and the JetStream stream created or found
//! and checked. What can never pass stops the start at once, with its
//! reason; what may pass (a cluster still electing its JetStream leader) is
//! tried a few times.
//!
//! Errors that never pass (each a [`BridgeError::StreamRefused`]):
//!
//! - JetStream is not enabled: the server says so (errors 10076, 10039), or
//!   nothing answers the JetStream API and the server's own `INFO` says
//!   JetStream is off;
//! - the stream's subjects overlap another stream's (10065), or a stream of
//!   that name exists with another configuration (10058);
//! - the account's limits: streams (10027), storage (10047), resources (10002);
//! - a request JetStream calls malformed (10003, 10025, 10053).
//!
//! Anything else (no answer yet, a timeout, a cluster not ready, 10008 or
//! 10023 while peers join) is tried again, [`TRIES`] times half a second
//! apart. An existing stream that does not fit (its subjects do not cover
//! `<prefix>.>`, or its de-duplication window is shorter than configured)
//! is a [`BridgeError::StreamMismatch`].

use std::time::Duration;

use async_nats::jetstream::context::{CreateStreamError, CreateStreamErrorKind};
use async_nats::jetstream::{self, ErrorCode};

use crate::config::Config;
use crate::error::BridgeError;
use crate::subject;

/// Attempts at creating or finding the stream when the error may pass.
pub const TRIES: u32 = 10;

/// Connects to NATS: the client (sized to hold a window of publishes and of
/// acks) and its JetStream context; creates or checks the stream when
/// `ensure_stream` is on.
pub async fn connect(config: &Config) -> Result<(async_nats::Client, jetstream::Context), BridgeError> {
    let n = &config.nats;
    let mut options = async_nats::ConnectOptions::new()
        .name(format!(
            "wslink-bridge {} shard {}/{}",
            config.bridge.instance, config.bridge.shard, config.bridge.shards
        ))
        .connection_timeout(Duration::from_secs(5))
        // The window bounds what is buffered; the client may hold all of it while reconnecting.
        .client_capacity(n.max_in_flight.saturating_mul(2).max(2048))
        // Every ack of a window arrives on one subscription.
        .subscription_capacity(n.max_in_flight.saturating_mul(2).max(65_536))
        .max_reconnects(None);
    if let (Some(user), Some(password)) = (&n.user, &n.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &n.token {
        options = options.token(token.clone());
    }
    if let Some(file) = &n.credentials_file {
        options = options.credentials_file(file).await.map_err(BridgeError::Credentials)?;
    }
    let client = options.connect(n.urls.clone()).await?;
    let js = jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_millis(n.ack_timeout_ms))
        .build(client.clone());
    if n.ensure_stream {
        ensure(&client, &js, config).await?;
    }
    Ok((client, js))
}

/// Creates the stream, or finds it and checks that it fits.
async fn ensure(client: &async_nats::Client, js: &jetstream::Context, config: &Config) -> Result<(), BridgeError> {
    use jetstream::stream;
    let n = &config.nats;
    let want = Duration::from_millis(n.duplicate_window_ms);
    let wildcard = subject::wildcard(&n.subject_prefix);
    let stream_config = stream::Config {
        name: n.stream.clone(),
        subjects: vec![wildcard.clone()],
        duplicate_window: want,
        num_replicas: n.stream_replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    let mut attempt = 1;
    let mut found = loop {
        match js.get_or_create_stream(stream_config.clone()).await {
            Ok(s) => break s,
            Err(e) => {
                if let Some(reason) = never_passes(&e, client.server_info().jetstream) {
                    return Err(BridgeError::StreamRefused { stream: n.stream.clone(), reason });
                }
                if attempt >= TRIES {
                    return Err(BridgeError::Stream { stream: n.stream.clone(), source: e });
                }
                tracing::warn!(attempt, error = %e, "stream not ready; trying again");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let info = found.info().await.map_err(|source| BridgeError::StreamInfo { stream: n.stream.clone(), source })?;
    check(&n.stream, &info.config.subjects, info.config.duplicate_window, &wildcard, want)
}

/// Why `e` can never pass, or `None` when trying again may help;
/// `jetstream_on` is what the server's `INFO` says.
pub fn never_passes(e: &CreateStreamError, jetstream_on: bool) -> Option<String> {
    match e.kind() {
        CreateStreamErrorKind::JetStreamUnavailable if !jetstream_on => Some(
            "JetStream is not enabled on the server (nothing answers its API, and the server says it is off)".into(),
        ),
        CreateStreamErrorKind::EmptyStreamName | CreateStreamErrorKind::InvalidStreamName => {
            Some(format!("the stream's name is refused: {e}"))
        }
        CreateStreamErrorKind::JetStream(err) => {
            let why = match err.error_code() {
                ErrorCode::JETSTREAM_NOT_ENABLED | ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT => {
                    "JetStream is not enabled for this account or server"
                }
                ErrorCode::STREAM_SUBJECT_OVERLAP => "its subjects overlap those of another stream",
                ErrorCode::STREAM_NAME_EXIST => "a stream of this name exists with another configuration",
                ErrorCode::MAXIMUM_STREAMS_LIMIT
                | ErrorCode::STORAGE_RESOURCES_EXCEEDED
                | ErrorCode::ACCOUNT_RESOURCES_EXCEEDED => "the account's limits do not allow it",
                ErrorCode::BAD_REQUEST | ErrorCode::INVALID_JSON | ErrorCode::STREAM_LIMITS => {
                    "JetStream refuses its configuration"
                }
                _ => return None,
            };
            Some(format!("{why} ({err})"))
        }
        _ => None,
    }
}

/// Whether a stream with `subjects` and de-duplication `window` can take
/// the bridge's subjects (`wildcard`) with at least the `want`ed window.
pub fn check(
    stream: &str,
    subjects: &[String],
    window: Duration,
    wildcard: &str,
    want: Duration,
) -> Result<(), BridgeError> {
    let mismatch = |reason: String| Err(BridgeError::StreamMismatch { stream: stream.to_owned(), reason });
    if !subjects.iter().any(|s| subject::covers(s, wildcard)) {
        return mismatch(format!("its subjects {subjects:?} do not cover {wildcard:?}"));
    }
    if window < want {
        return mismatch(format!(
            "its duplicate window {window:?} is shorter than nats.duplicate_window_ms ({want:?}): a resend could be stored twice"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_that_does_not_fit_is_refused() {
        let ok = |subjects: &[&str], window_s: u64| {
            let subjects: Vec<String> = subjects.iter().map(|s| (*s).to_owned()).collect();
            check("S", &subjects, Duration::from_secs(window_s), "feed.>", Duration::from_secs(120))
        };
        assert!(ok(&["feed.>"], 120).is_ok());
        assert!(ok(&["other.>", ">"], 300).is_ok());
        assert!(ok(&["*.>"], 120).is_ok());
        let short = ok(&["feed.>"], 60).unwrap_err();
        assert!(matches!(short, BridgeError::StreamMismatch { .. }) && short.to_string().contains("duplicate window"));
        for subjects in [&["feed.mock.>"][..], &["feed.*"], &["other.>"], &[]] {
            let e = ok(subjects, 120).unwrap_err();
            assert!(e.to_string().contains("do not cover"), "{subjects:?}: {e}");
        }
    }

    fn js_error(code: u64) -> CreateStreamError {
        let e: jetstream::Error =
            serde_json::from_str(&format!(r#"{{"code":400,"err_code":{code},"description":"d"}}"#)).expect("an error");
        CreateStreamError::new(CreateStreamErrorKind::JetStream(e))
    }

    #[test]
    fn errors_that_never_pass_are_told_apart() {
        for code in [10076, 10039, 10065, 10058, 10027, 10047, 10002, 10003] {
            assert!(never_passes(&js_error(code), true).is_some(), "{code}");
        }
        let overlap = never_passes(&js_error(10065), true).unwrap();
        assert!(overlap.contains("overlap"), "{overlap}");
        // A cluster not ready yet, peers still joining: may pass.
        for code in [10008, 10023, 10004] {
            assert!(never_passes(&js_error(code), true).is_none(), "{code}");
        }
        let unavailable = CreateStreamError::new(CreateStreamErrorKind::JetStreamUnavailable);
        assert!(never_passes(&unavailable, false).is_some_and(|r| r.contains("not enabled")));
        assert!(never_passes(&unavailable, true).is_none(), "no answer yet from a JetStream server may pass");
        assert!(never_passes(&CreateStreamError::new(CreateStreamErrorKind::TimedOut), false).is_none());
    }
}
