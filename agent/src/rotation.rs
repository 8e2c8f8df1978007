//! Certificate rotation: the agent renews its client certificate over the hub connection at
//! 70 to 80% of its lifetime (jittered, so a fleet enrolled together does not renew
//! together), with a new key pair each time. The new credential is stored first, then used
//! from the next connection on; the open stream goes on. A failed renewal is retried with
//! backoff until the certificate expires, so a hub outage shorter than the remaining lifetime
//! costs nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::connect::{self, SharedIdentity};
use crate::credentials::{Credential, CredentialStore};
use crate::metrics::Metrics;

/// Earliest point of a certificate's lifetime at which it is renewed.
pub const RENEW_FROM: f64 = 0.7;
/// Width of the jitter window after [`RENEW_FROM`].
pub const RENEW_JITTER: f64 = 0.1;
/// First retry delay after a failed renewal.
const RETRY_MIN: Duration = Duration::from_secs(5);
/// Longest retry delay.
const RETRY_MAX: Duration = Duration::from_secs(300);

/// When to renew a certificate valid from `not_before` to `not_after` (Unix seconds), with
/// `jitter` in `[0, 1)`: the Unix second at `RENEW_FROM + jitter * RENEW_JITTER` of its
/// lifetime.
pub fn renew_at(not_before: i64, not_after: i64, jitter: f64) -> i64 {
    let life = not_after.saturating_sub(not_before).max(0) as f64;
    let at = life * (RENEW_FROM + jitter.clamp(0.0, 1.0) * RENEW_JITTER);
    not_before.saturating_add(at.round() as i64)
}

/// A number in `[0, 1)` that differs between processes and calls.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What the rotation task needs.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// Hub agent address.
    pub hub: String,
    /// The pinned hub CA.
    pub ca_pem: String,
    /// This cluster.
    pub cluster: String,
    /// The identity the work stream's channel presents.
    pub identity: SharedIdentity,
    /// Where the credential is kept.
    pub store: CredentialStore,
    /// Agent metrics.
    pub metrics: Arc<Metrics>,
}

impl Rotation {
    fn current(&self) -> connect::ClientIdentity {
        self.identity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Renews the certificate whenever it is due, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut retry = RETRY_MIN;
        loop {
            let id = self.current();
            let (not_before, not_after) = match connect::validity(&id.cert_pem) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(error = %e, "the client certificate cannot be read; not rotating it");
                    return;
                }
            };
            self.metrics.certificate_expiry.store(
                u64::try_from(not_after).unwrap_or_default(),
                Ordering::Relaxed,
            );
            let due = renew_at(not_before, not_after, jitter());
            let wait =
                Duration::from_secs(u64::try_from(due.saturating_sub(now_secs())).unwrap_or(0));
            tracing::info!(
                expires = not_after,
                renew_in_secs = wait.as_secs(),
                "client certificate renewal scheduled"
            );
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            // Renew, retrying until it works or the certificate has expired.
            loop {
                match self.renew(&id).await {
                    Ok(new_expiry) => {
                        retry = RETRY_MIN;
                        self.metrics.rotations.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(expires = new_expiry, "client certificate renewed");
                        break;
                    }
                    Err(e) => {
                        let left = not_after.saturating_sub(now_secs());
                        if left <= 0 {
                            tracing::error!(error = %e, "the client certificate expired before it could be renewed; enroll again with a new token");
                            return;
                        }
                        tracing::warn!(error = %e, retry_in_secs = retry.as_secs(), expires_in_secs = left, "renewing the client certificate failed");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(retry) => {}
                        }
                        retry = (retry * 2).min(RETRY_MAX);
                    }
                }
            }
        }
    }

    /// One renewal: new key pair, signed certificate, stored, then presented. Returns the
    /// new expiry.
    async fn renew(&self, current: &connect::ClientIdentity) -> anyhow::Result<i64> {
        let new = connect::renew(&self.hub, &self.ca_pem, &self.cluster, current).await?;
        let (_, not_after) = connect::validity(&new.cert_pem)?;
        self.store
            .save(&Credential {
                ca_pem: self.ca_pem.clone(),
                identity: new.clone(),
            })
            .await?;
        *self.identity.write().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(not_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_falls_in_the_window() {
        // A day-long certificate: between 16.8 h and 19.2 h after it starts.
        let (nb, na) = (1_000_000, 1_000_000 + 86_400);
        assert_eq!(renew_at(nb, na, 0.0), nb + 60_480);
        assert_eq!(renew_at(nb, na, 1.0), nb + 69_120);
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
            let at = renew_at(nb, na, j);
            assert!((nb + 60_480..=nb + 69_120).contains(&at));
        }
        // Out-of-range inputs are clamped, never past the expiry.
        assert!(renew_at(nb, na, 7.0) < na);
        assert_eq!(renew_at(na, nb, 0.5), na);
    }
}
