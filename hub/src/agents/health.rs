//! Cluster health: a keyed controller over clusters, fed by the agents' messages.
//!
//! Liveness lives in memory (the time each agent was last heard from); a heartbeat costs no
//! store read or write. Each cluster key is looked at when its grace period would run out or
//! its Lease is due, never on a timer over the whole fleet:
//!
//! - an agent silent for the grace period turns its Pull cluster `Ready=Unknown` (the one
//!   case that reads the Cluster from the store);
//! - a live agent's Lease (`coordination.k8s.io/v1`, `karmada-cluster/<cluster>`, as Karmada
//!   keeps them) is persisted at most every [`LEASE_EVERY`] (the first time within
//!   [`FIRST_LEASE_WITHIN`], at a random point, so the writes of many clusters spread out),
//!   so the last time a cluster was heard from survives a hub restart at that resolution.
//!
//! A key comes back when an agent is heard from again after a silence (see
//! [`super::Shared::heard`]), when its Cluster is created, changed or deleted, and after the
//! delay its last look asked for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Shared, status, work};
use crate::api::error::ApiError;
use crate::api::meta;
use crate::api::objects::PatchType;
use crate::controllers::queue::WorkQueue;
use crate::metrics::ControllerMetrics;

/// The controller's name in metrics and logs.
pub const NAME: &str = "health";
/// The namespace of the clusters' Leases (Karmada's).
pub const LEASE_NAMESPACE: &str = "karmada-cluster";
/// The longest time between two persisted renewals of a live cluster's Lease.
pub const LEASE_EVERY: Duration = Duration::from_secs(300);
/// A cluster's first Lease write happens within this long of the hub first hearing from it.
pub const FIRST_LEASE_WITHIN: Duration = Duration::from_secs(60);
/// Workers of the health controller.
const WORKERS: usize = 2;

/// The health controller's queue and in-memory state.
#[derive(Debug)]
pub(crate) struct Health {
    pub(crate) queue: WorkQueue,
    pub(crate) grace: Duration,
    /// When each cluster's Lease was last persisted by this hub.
    leases: Mutex<HashMap<String, Instant>>,
}

impl Health {
    pub(crate) fn new(grace: Duration) -> Self {
        Self {
            queue: WorkQueue::new(),
            grace,
            leases: Mutex::new(HashMap::new()),
        }
    }

    /// How long ago this hub persisted the cluster's Lease. A cluster seen for the first time
    /// gets its first write at a random point of the next [`FIRST_LEASE_WITHIN`] (as if its
    /// Lease had been written that much less than [`LEASE_EVERY`] ago), so thousands of agents
    /// connecting at once (a hub restart) spread their Lease writes, and so do all later
    /// renewals.
    fn lease_age(&self, cluster: &str) -> Duration {
        let mut l = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let written = l.entry(cluster.to_owned()).or_insert_with(|| {
            let first_in = FIRST_LEASE_WITHIN.mul_f64(spread(cluster));
            let now = Instant::now();
            now.checked_sub(LEASE_EVERY.saturating_sub(first_in))
                .unwrap_or(now)
        });
        written.elapsed()
    }

    fn lease_written(&self, cluster: &str) {
        if let Ok(mut l) = self.leases.lock() {
            l.insert(cluster.to_owned(), Instant::now());
        }
    }

    fn forget(&self, cluster: &str) {
        if let Ok(mut l) = self.leases.lock() {
            l.remove(cluster);
        }
    }
}

/// What is known in memory of one cluster's agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// Time since the agent was last heard from (since the hub started if never).
    pub silent_for: Duration,
    /// Whether this hub has heard from the agent at all.
    pub ever_heard: bool,
    /// Time since this hub last persisted the cluster's Lease, if it did.
    pub lease_age: Option<Duration>,
}

/// The next step for one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The agent is within its grace period: persist the Lease now if `renew_lease`, and look
    /// again after `recheck`.
    Alive {
        /// Whether the Lease is due.
        renew_lease: bool,
        /// When to look again.
        recheck: Duration,
    },
    /// The grace period ran out: read the Cluster and mark it, unless it is not a Pull
    /// cluster or already marked. Nothing more until the agent is heard again.
    Silent,
}

/// The step for a cluster, given what is known in memory.
pub fn step(l: Liveness, grace: Duration, lease_every: Duration) -> Step {
    let Some(left) = grace.checked_sub(l.silent_for).filter(|d| !d.is_zero()) else {
        return Step::Silent;
    };
    if !l.ever_heard {
        return Step::Alive {
            renew_lease: false,
            recheck: left,
        };
    }
    let lease_left = l
        .lease_age
        .and_then(|age| lease_every.checked_sub(age))
        .filter(|d| !d.is_zero());
    match lease_left {
        Some(lease_left) => Step::Alive {
            renew_lease: false,
            recheck: left.min(lease_left),
        },
        None => Step::Alive {
            renew_lease: true,
            recheck: left.min(lease_every),
        },
    }
}

/// A number in `[0, 1)` that differs between clusters and hub runs.
fn spread(cluster: &str) -> f64 {
    use std::hash::BuildHasher;
    let h = std::collections::hash_map::RandomState::new().hash_one(cluster);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The Lease of `cluster`, renewed at `renew_time` (a MicroTime).
pub fn lease(cluster: &str, grace: Duration, renew_time: &str) -> Value {
    let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": cluster, "namespace": LEASE_NAMESPACE},
        "spec": {
            "holderIdentity": cluster,
            "leaseDurationSeconds": seconds,
            "renewTime": renew_time,
        },
    })
}

/// `ago` before now, as a Kubernetes MicroTime (RFC 3339 with six fraction digits, UTC).
fn micro_time(ago: Duration) -> String {
    let now = jiff::Timestamp::now();
    let at = jiff::SignedDuration::try_from(ago)
        .ok()
        .and_then(|d| now.checked_sub(d).ok())
        .unwrap_or(now);
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn liveness(shared: &Shared, cluster: &str) -> Liveness {
    let heard = shared
        .last_heard
        .lock()
        .ok()
        .and_then(|h| h.get(cluster).copied());
    Liveness {
        silent_for: heard.unwrap_or(shared.started).elapsed(),
        ever_heard: heard.is_some(),
        lease_age: heard.map(|_| shared.health.lease_age(cluster)),
    }
}

/// Looks at one cluster; returns when to look again.
#[tracing::instrument(level = "debug", skip(shared))]
async fn process(shared: &Shared, cluster: &str) -> Result<Option<Duration>, ApiError> {
    let l = liveness(shared, cluster);
    match step(l, shared.health.grace, LEASE_EVERY) {
        Step::Alive {
            renew_lease,
            recheck,
        } => {
            if renew_lease {
                renew(shared, cluster, l.silent_for).await?;
            }
            Ok(Some(recheck))
        }
        Step::Silent => {
            mark_silent(shared, cluster, l).await?;
            Ok(None)
        }
    }
}

async fn renew(shared: &Shared, cluster: &str, silent_for: Duration) -> Result<(), ApiError> {
    let res = leases()?;
    let body = lease(cluster, shared.health.grace, &micro_time(silent_for));
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.to_string()))?;
    shared
        .objects
        .patch(
            &res,
            Some(LEASE_NAMESPACE),
            cluster,
            PatchType::Apply,
            &bytes,
            None,
            &work::opts(),
        )
        .await?;
    shared.health.lease_written(cluster);
    Ok(())
}

/// Deletes `cluster`'s Lease (the cluster was removed).
pub(crate) async fn remove_lease(shared: &Shared, cluster: &str) {
    shared.health.forget(cluster);
    let Ok(res) = leases() else { return };
    match shared
        .objects
        .delete(&res, Some(LEASE_NAMESPACE), cluster, &Default::default())
        .await
    {
        Ok(_) => {}
        Err(e) if e.code.as_u16() == 404 => {}
        Err(e) => tracing::warn!(%cluster, error = %e, "removing the cluster's lease failed"),
    }
}

/// Marks a silent Pull cluster `Ready=Unknown` unless it already is.
async fn mark_silent(shared: &Shared, name: &str, l: Liveness) -> Result<(), ApiError> {
    let res = super::clusters()?;
    let cluster = match shared.objects.get(&res, None, name).await {
        Ok(c) => c,
        Err(e) if e.code.as_u16() == 404 => {
            remove_lease(shared, name).await;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if meta::str_at(&cluster, "/spec/syncMode") != Some("Pull") {
        return Ok(());
    }
    let ready = cluster
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str());
    let Some((st, reason, msg)) =
        status::stale_ready(ready, l.ever_heard, l.silent_for, shared.health.grace)
    else {
        return Ok(());
    };
    let mut s = cluster.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut conds: Vec<Value> = s
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    status::set_condition(&mut conds, "Ready", st, reason, &msg, None, &meta::now());
    s["conditions"] = Value::Array(conds);
    tracing::warn!(cluster = %name, %reason, "cluster agent is silent: Ready={st}");
    let written = super::write_cluster_status(&shared.objects, &res, &cluster, s).await;
    // The next heartbeat must be written through to turn the cluster Ready again.
    shared.forget_heartbeat(name);
    written
}

fn leases() -> Result<Arc<crate::registry::Resource>, ApiError> {
    crate::registry::builtin_resource("coordination.k8s.io", "v1", "leases")
        .ok_or_else(|| ApiError::internal("leases are not served"))
}

/// Runs the health controller's workers until `shutdown`.
pub(crate) async fn run(
    shared: Arc<Shared>,
    metrics: ControllerMetrics,
    shutdown: CancellationToken,
) {
    if let Err(e) = work::ensure_namespace(&shared.objects, LEASE_NAMESPACE).await {
        tracing::warn!(error = %e, "creating the lease namespace failed");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let shared = shared.clone();
        let metrics = metrics.clone();
        tasks.spawn(crate::controllers::supervise(
            NAME,
            shutdown.clone(),
            move || {
                let shared = shared.clone();
                let q = shared.health.queue.clone();
                crate::controllers::worker::work(NAME, q, metrics.clone(), move |key| {
                    let shared = shared.clone();
                    async move { process(&shared, &key).await }
                })
            },
        ));
    }
    shutdown.cancelled().await;
    shared.health.queue.close();
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(40);
    const LEASE: Duration = Duration::from_secs(300);

    fn alive(renew_lease: bool, secs: u64) -> Step {
        Step::Alive {
            renew_lease,
            recheck: Duration::from_secs(secs),
        }
    }

    #[test]
    fn steps() {
        let s = Duration::from_secs;
        let cases = [
            // (silent_for, ever_heard, lease_age) → step
            ((s(0), false, None), alive(false, 40)),
            ((s(30), false, None), alive(false, 10)),
            ((s(40), false, None), Step::Silent),
            // First look at a live agent: its Lease is written.
            ((s(5), true, None), alive(true, 35)),
            // Lease written 100 s ago: look again when the grace period would run out.
            ((s(5), true, Some(s(100))), alive(false, 35)),
            // Lease due in 10 s, before the grace period runs out.
            ((s(5), true, Some(s(290))), alive(false, 10)),
            ((s(5), true, Some(s(300))), alive(true, 35)),
            ((s(41), true, Some(s(10))), Step::Silent),
        ];
        for ((silent_for, ever_heard, lease_age), want) in cases {
            let l = Liveness {
                silent_for,
                ever_heard,
                lease_age,
            };
            assert_eq!(step(l, GRACE, LEASE), want, "{l:?}");
        }
    }

    #[test]
    fn lease_and_micro_time() {
        let t = micro_time(Duration::from_secs(2));
        // 2026-11-30T09:42:12.123456Z
        assert_eq!(t.len(), 27, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
        let l = lease("m1", GRACE, &t);
        assert_eq!(l["metadata"]["namespace"], "karmada-cluster");
        assert_eq!(l["spec"]["leaseDurationSeconds"], 40);
        assert_eq!(l["spec"]["renewTime"], t.as_str());
    }
}
