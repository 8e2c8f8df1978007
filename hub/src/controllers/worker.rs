//! The worker loop every keyed controller shares: take a key, process it with panics caught,
//! retry failures with per-key backoff, requeue after the delay a success asks for, count it.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::FutureExt;

use super::queue::{self, WorkQueue};
use crate::metrics::ControllerMetrics;

/// An error from processing one key.
pub(crate) trait KeyError: std::fmt::Display {
    /// Whether the failure is expected and transient (the cache is behind the store), so it is
    /// retried without a warning or an error count.
    fn quiet(&self) -> bool {
        false
    }
}

impl KeyError for super::write::WriteError {
    fn quiet(&self) -> bool {
        matches!(self, super::write::WriteError::Stale(_))
    }
}

impl KeyError for crate::api::error::ApiError {}

/// Takes keys from `q` until it closes. `process` returns after how long the key wants to be
/// looked at again (`None`: only when something changes).
pub(crate) async fn work<F, Fut, E>(
    name: &'static str,
    q: WorkQueue,
    metrics: ControllerMetrics,
    process: F,
) where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Option<Duration>, E>>,
    E: KeyError,
{
    while let Some(key) = q.next().await {
        let started = Instant::now();
        let result = std::panic::AssertUnwindSafe(process(key.clone()))
            .catch_unwind()
            .await;
        let (ok, again) = match result {
            Ok(Ok(again)) => (true, again),
            Ok(Err(e)) if e.quiet() => {
                tracing::debug!(controller = name, key = %key, error = %e, "cache behind the store; retrying");
                (false, None)
            }
            Ok(Err(e)) => {
                tracing::warn!(controller = name, key = %key, error = %e, "reconcile failed; retrying with backoff");
                metrics.error(name);
                (false, None)
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(controller = name, key = %key, panic = %msg, "reconcile panicked; retrying with backoff");
                metrics.error(name);
                (false, None)
            }
        };
        let failures = q.done(&key, ok);
        metrics.processed(name, started.elapsed(), ok, q.depth());
        if !ok {
            metrics.retried(name);
            q.add_after(key, queue::backoff(failures));
        } else if let Some(delay) = again {
            q.add_after(key, delay);
        }
    }
}
