//! Helpers for the scenario suites: a bounded runner with a tokio runtime for
//! the peers, a bounded wait for an event, and a builder with quick backoff.

use std::future::Future;
use std::time::Duration;

use wslink_adapter::{Builder, Events, Runtime};
use wslink_core::{BackoffConfig, SessionEvent};

/// Every scenario ends within this, or fails.
pub const BOUND: Duration = Duration::from_secs(60);
/// Any single awaited event arrives within this, or the scenario fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// Runs a scenario on a fresh multi-threaded tokio runtime (the peers' runtime) within `BOUND`.
pub fn run<F: Future<Output = ()>>(scenario: F) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        tokio::time::timeout(BOUND, scenario).await.expect("scenario finished within its bound");
    });
}

/// Collects events until one matches; fails after `WAIT`.
pub async fn until(events: &mut Events, mut want: impl FnMut(&SessionEvent) -> bool) -> Vec<SessionEvent> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            let done = want(&event);
            seen.push(event);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "expected event never came; saw {seen:?}");
    seen
}

/// A builder with pings off and a 50 ms first backoff.
pub fn builder<R: Runtime>(url: &str) -> Builder<R> {
    Builder::new(url)
        .expect("valid URL")
        .ping(None)
        .backoff(BackoffConfig::default().initial(Duration::from_millis(50)))
}

/// One test per scenario and runtime, with the same names in each module:
/// `tokio_runtime::x` and `smol_runtime::x` for every generic `async fn x<R: Runtime>()`
/// of the calling file (which must also import `run`).
#[macro_export]
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod tokio_runtime {
            $(#[test] fn $name() { super::run(super::$name::<wslink_tokio::Tokio>()) })*
        }
        mod smol_runtime {
            $(#[test] fn $name() { super::run(super::$name::<wslink_smol::Smol>()) })*
        }
    };
}
