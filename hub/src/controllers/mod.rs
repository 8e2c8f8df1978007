//! The hub's controllers: from templates and policies to bindings, schedules, Works and
//! status.
//!
//! Shaped like kube-runtime's `Controller`: a reflector keeps an in-memory [`cache`] of the
//! store, fed by one list and then one watch; each store change is mapped by [`triggers`] to
//! the keys it affects; each controller has a keyed [`queue`] and a few workers. A worker
//! reads the cache, asks the controller's pure `decide` function for the writes one key
//! needs, and performs them through the API's object service ([`write`]). A failing key is
//! retried with exponential backoff; a panic in one key is caught, counted and retried, and
//! never stops other keys or controllers. A slow, rate-limited resync revisits every key as a
//! safety net.

pub mod cache;
mod collect;
pub mod controller_revisions;
pub mod cron_fhpa;
pub mod dependencies;
pub mod detector;
pub mod discovery;
pub mod discovery_index;
pub mod failover;
pub mod fhpa;
pub mod gc;
pub mod history;
pub mod hpa_sync;
pub mod keys;
pub mod namespace_lifecycle;
pub mod namespaces;
pub mod owners;
pub mod queue;
pub mod rebalancer;
mod reflector;
pub mod rendering;
mod revisions;
pub mod scaling_index;
pub mod scheduling;
pub mod status;
pub mod triggers;
pub(crate) mod worker;
pub mod write;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::api::objects::Objects;
use crate::metrics::ControllerMetrics;
use cache::State;
use queue::WorkQueue;
use triggers::Keys;
use write::WriteError;

pub use write::MANAGER;

/// Workers per controller: enough concurrent writes for the store's group commit to batch.
const WORKERS: usize = 8;
/// How often the resync task wakes.
const RESYNC_TICK: Duration = Duration::from_secs(10);
/// How long the status aggregator lets a binding's reports gather before it folds them: the
/// clusters of one rollout report within about one agent flush interval (500 ms) of each
/// other, and each fold writes the binding's and the template's status.
pub const STATUS_DEBOUNCE: Duration = Duration::from_millis(250);
/// Keys each controller revisits per resync tick.
const RESYNC_KEYS_PER_TICK: usize = 100;

/// The controllers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Controller {
    /// Policy claims and bindings.
    Detector,
    /// Binding placement.
    Scheduler,
    /// Works per target cluster.
    Renderer,
    /// Status aggregation.
    Status,
    /// Namespace propagation.
    Namespaces,
    /// Attached bindings for the dependencies of bindings that propagate them.
    Dependencies,
    /// Garbage collection by owner references.
    Gc,
    /// Deletion of terminating namespaces' content, then of the namespaces.
    NamespaceLifecycle,
    /// Revision history of Deployment templates.
    History,
    /// Cluster taints from conditions and ClusterTaintPolicies.
    Taints,
    /// Evictions from tainted clusters and eviction tasks.
    Failover,
    /// WorkloadRebalancers.
    Rebalancer,
    /// FederatedHPAs.
    Autoscaler,
    /// CronFederatedHPAs.
    Cron,
    /// Templates scaled by the members' HorizontalPodAutoscalers.
    HpaSync,
    /// Service discovery, by Service.
    Discovery,
}

impl Controller {
    /// All controllers.
    pub const ALL: [Controller; 16] = [
        Controller::Detector,
        Controller::Scheduler,
        Controller::Renderer,
        Controller::Status,
        Controller::Namespaces,
        Controller::Dependencies,
        Controller::Gc,
        Controller::NamespaceLifecycle,
        Controller::History,
        Controller::Taints,
        Controller::Failover,
        Controller::Rebalancer,
        Controller::Autoscaler,
        Controller::Cron,
        Controller::HpaSync,
        Controller::Discovery,
    ];

    /// The controller's name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Detector => "detector",
            Controller::Scheduler => "scheduler",
            Controller::Renderer => "renderer",
            Controller::Status => "status",
            Controller::Namespaces => "namespaces",
            Controller::Dependencies => "dependencies",
            Controller::Gc => "garbage-collector",
            Controller::NamespaceLifecycle => "namespace-lifecycle",
            Controller::History => "revision-history",
            Controller::Taints => "cluster-taints",
            Controller::Failover => "failover",
            Controller::Rebalancer => "workload-rebalancer",
            Controller::Autoscaler => "federated-hpa",
            Controller::Cron => "cron-federated-hpa",
            Controller::HpaSync => "hpa-replicas-syncer",
            Controller::Discovery => "service-discovery",
        }
    }

    /// The writes one key needs, and when to look at it again without an event. `live`
    /// holds what is not in the store: the members' metrics and the autoscalers' history.
    pub fn decide(self, state: &State, live: &fhpa::Live, key: &str) -> Decision {
        #[cfg(test)]
        tests::maybe_panic(self, key);
        match self {
            Controller::Detector => detector::decide(state, key).into(),
            Controller::Scheduler => scheduling::decide(state, key, &state.cluster_infos()).into(),
            Controller::Renderer => rendering::decide(state, key),
            Controller::Status => status::decide(state, key).into(),
            Controller::Namespaces => namespaces::decide(state, key).into(),
            Controller::Dependencies => dependencies::decide(state, key).into(),
            Controller::Gc => gc::decide(state, key).into(),
            Controller::NamespaceLifecycle => namespace_lifecycle::decide(state, key).into(),
            Controller::History => history::decide(state, key).into(),
            Controller::Taints => failover::taints(state, key, jiff::Timestamp::now()).into(),
            Controller::Failover => failover::bindings(state, key, jiff::Timestamp::now()),
            Controller::Rebalancer => rebalancer::decide(state, key, jiff::Timestamp::now()),
            Controller::Autoscaler => fhpa::reconcile(state, live, key, jiff::Timestamp::now()),
            Controller::Cron => cron_fhpa::decide(state, key, jiff::Timestamp::now()),
            Controller::HpaSync => hpa_sync::decide(state, key).into(),
            Controller::Discovery => discovery::decide(state, key),
        }
    }
}

/// What one key needs.
#[derive(Debug, Default)]
pub struct Decision {
    /// The writes, in order.
    pub writes: Vec<write::Write>,
    /// Look at the key again after this long even if nothing changes (a toleration or a
    /// grace period that runs out).
    pub after: Option<Duration>,
    /// The writes are independent of each other and may run at once.
    pub concurrent: bool,
}

impl From<Vec<write::Write>> for Decision {
    fn from(writes: Vec<write::Write>) -> Self {
        Self {
            writes,
            after: None,
            concurrent: false,
        }
    }
}

/// The shared parts: cache, queues, metrics.
#[derive(Debug, Clone)]
pub struct Runtime {
    objects: Objects,
    cache: Arc<RwLock<State>>,
    queues: Arc<[WorkQueue; Controller::ALL.len()]>,
    metrics: ControllerMetrics,
    /// The hub's failover settings, copied into every cache the reflector lists.
    failover: flotilla_karmada::failover::FailoverConfig,
    /// Members' metrics and autoscaling history.
    live: Arc<fhpa::Live>,
}

impl Runtime {
    /// A runtime over the object service.
    pub fn new(objects: Objects, metrics: ControllerMetrics) -> Self {
        Self {
            objects,
            cache: Arc::new(RwLock::new(State::default())),
            queues: Arc::new(std::array::from_fn(|i| {
                if i == Controller::Status as usize {
                    WorkQueue::debounced(STATUS_DEBOUNCE)
                } else {
                    WorkQueue::new()
                }
            })),
            metrics,
            failover: Default::default(),
            live: Arc::new(fhpa::Live::default()),
        }
    }

    fn queue(&self, c: Controller) -> &WorkQueue {
        &self.queues[c as usize]
    }

    /// Enqueues the keys of a change.
    pub fn enqueue(&self, keys: Keys) {
        for (c, set) in [
            (Controller::Detector, keys.detector),
            (Controller::Scheduler, keys.scheduler),
            (Controller::Renderer, keys.renderer),
            (Controller::Status, keys.status),
            (Controller::Namespaces, keys.namespaces),
            (Controller::Dependencies, keys.dependencies),
            (Controller::Gc, keys.gc),
            (Controller::NamespaceLifecycle, keys.namespace_lifecycle),
            (Controller::History, keys.history),
            (Controller::Taints, keys.taints),
            (Controller::Failover, keys.failover),
            (Controller::Rebalancer, keys.rebalancer),
            (Controller::Autoscaler, keys.autoscaler),
            (Controller::Cron, keys.cron),
            (Controller::HpaSync, keys.hpa_sync),
            (Controller::Discovery, keys.discovery),
        ] {
            let q = self.queue(c);
            let mut added = 0u64;
            for k in set {
                if q.add(&k) {
                    added += 1;
                }
            }
            if added > 0 {
                self.metrics.added(c.name(), added);
            }
            self.metrics.depth(c.name(), q.depth());
        }
    }

    /// Every key of every controller (after a relist).
    fn all_keys(&self) -> Keys {
        let st = self.read();
        let mut keys = Keys::default();
        for t in st.template_keys() {
            if t.starts_with(keys::prefix::NAMESPACES) {
                keys.namespaces.insert(t.clone());
            } else {
                if keys::has_history(t) {
                    keys.history.insert(t.clone());
                }
                keys.detector.insert(t.clone());
            }
        }
        for b in st.binding_keys() {
            keys.binding(b);
        }
        keys.gc.extend(st.owners().keys().cloned());
        keys.namespace_lifecycle
            .extend(st.terminating_namespace_keys());
        keys.taints.extend(st.cluster_keys());
        keys.rebalancer.extend(st.rebalancer_keys().cloned());
        keys.discovery.extend(st.discovery_services());
        for k in st.scaling.keys() {
            if k.starts_with(keys::prefix::FHPA) {
                keys.autoscaler.insert(k.clone());
            } else if k.starts_with(keys::prefix::CRON_FHPA) {
                keys.cron.insert(k.clone());
            } else if let Some(t) = st.scaling.target_of(k) {
                keys.hpa_sync.insert(t.to_owned());
            }
        }
        keys
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.cache.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Processes one key: decide from the cache, then write.
    /// Returns how many writes it made and when to look at the key again.
    async fn process(
        &self,
        c: Controller,
        key: &str,
    ) -> Result<(usize, Option<Duration>), WriteError> {
        let mut decision = {
            let st = self.read();
            c.decide(&st, &self.live, key)
        };
        let writes = std::mem::take(&mut decision.writes);
        let n = writes.len();
        if decision.concurrent {
            // Independent writes share the store's group commits instead of waiting for one
            // each.
            let done = futures::future::join_all(
                writes.into_iter().map(|w| write::execute(&self.objects, w)),
            )
            .await;
            for stored in done {
                self.write_through(stored?);
            }
        } else {
            for w in writes {
                let stored = write::execute(&self.objects, w).await?;
                self.write_through(stored);
            }
        }
        Ok((n, decision.after))
    }

    /// Writes a stored object through to the cache, so the next decision on its key does not
    /// act on what it just replaced (the watch event brings the same bytes again later).
    fn write_through(&self, stored: Option<write::Stored>) {
        if let Some(stored) = stored
            && let Some(rev) = stored
                .object
                .pointer("/metadata/resourceVersion")
                .and_then(serde_json::Value::as_str)
                .and_then(|r| r.parse::<u64>().ok())
        {
            let bytes = bytes::Bytes::from(serde_json::to_vec(&stored.object).unwrap_or_default());
            self.write_cache().write_through(&stored.key(), &bytes, rev);
        }
    }

    /// One worker of a controller: takes keys until the queue closes.
    async fn worker(self, c: Controller) {
        let q = self.queue(c).clone();
        let metrics = self.metrics.clone();
        worker::work(c.name(), q, metrics, |key| {
            let rt = self.clone();
            async move {
                let (writes, after) = rt.process(c, &key).await?;
                rt.metrics.wrote(c.name(), writes);
                tracing::debug!(controller = c.name(), key = %key, writes, ?after, "reconciled");
                Ok::<_, WriteError>(after)
            }
        })
        .await
    }

    /// Revisits a slice of every controller's keys each tick, so the whole set is covered
    /// slowly at a bounded rate (without copying the key sets).
    async fn resync(self, shutdown: CancellationToken) {
        let mut after_template: Option<String> = None;
        let mut after_binding: Option<String> = None;
        let mut after_dependent: Option<String> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RESYNC_TICK) => {}
            }
            let (templates, bindings, dependents) = {
                let st = self.read();
                (
                    next_slice(st.template_keys(), after_template.as_deref()),
                    next_slice(st.binding_keys(), after_binding.as_deref()),
                    next_slice(st.owners().keys(), after_dependent.as_deref()),
                )
            };
            after_dependent = dependents
                .last()
                .cloned()
                .filter(|_| dependents.len() == RESYNC_KEYS_PER_TICK);
            after_template = templates
                .last()
                .cloned()
                .filter(|_| templates.len() == RESYNC_KEYS_PER_TICK);
            after_binding = bindings
                .last()
                .cloned()
                .filter(|_| bindings.len() == RESYNC_KEYS_PER_TICK);
            let mut keys = Keys::default();
            for t in templates {
                if t.starts_with(keys::prefix::NAMESPACES) {
                    keys.namespaces.insert(t);
                } else {
                    if keys::has_history(&t) {
                        keys.history.insert(t.clone());
                    }
                    keys.detector.insert(t);
                }
            }
            for b in bindings {
                keys.binding(&b);
            }
            keys.gc.extend(dependents);
            {
                // Terminating namespaces are few; each tick looks at all of them, so one whose
                // content failed to delete is tried again without waiting for an event.
                let st = self.read();
                keys.namespace_lifecycle
                    .extend(st.terminating_namespace_keys());
            }
            self.enqueue(keys);
        }
    }
}

/// The first [`RESYNC_KEYS_PER_TICK`] keys after `after`, in order.
fn next_slice<'a>(keys: impl Iterator<Item = &'a String>, after: Option<&str>) -> Vec<String> {
    let mut best: std::collections::BTreeSet<&String> = std::collections::BTreeSet::new();
    for k in keys {
        if after.is_some_and(|a| k.as_str() <= a) {
            continue;
        }
        best.insert(k);
        if best.len() > RESYNC_KEYS_PER_TICK {
            best.pop_last();
        }
    }
    best.into_iter().cloned().collect()
}

/// Runs `task` until `shutdown`, restarting it after a panic or an early end.
pub(crate) async fn supervise<F, Fut>(name: &'static str, shutdown: CancellationToken, task: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let mut handle = tokio::spawn(task());
        let result = tokio::select! {
            _ = shutdown.cancelled() => {
                handle.abort();
                return;
            }
            r = &mut handle => r,
        };
        if shutdown.is_cancelled() {
            return;
        }
        match result {
            Err(e) if e.is_panic() => {
                tracing::error!(task = name, "controller task panicked; restarting");
            }
            _ => tracing::warn!(task = name, "controller task ended; restarting"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Runs the controllers until `shutdown` fires; FederatedHPAs read the members' metrics
/// from `book`.
pub async fn run(
    objects: Objects,
    metrics: ControllerMetrics,
    failover: flotilla_karmada::failover::FailoverConfig,
    book: Arc<crate::agents::metrics_book::MetricsBook>,
    shutdown: CancellationToken,
) {
    let mut rt = Runtime::new(objects, metrics);
    rt.failover = failover;
    rt.live = Arc::new(fhpa::Live::new(book));
    let mut tasks = tokio::task::JoinSet::new();
    {
        let rt = rt.clone();
        let sd = shutdown.clone();
        tasks.spawn(supervise("reflector", shutdown.clone(), move || {
            reflector::run(rt.clone(), sd.clone())
        }));
    }
    for c in Controller::ALL {
        for _ in 0..WORKERS {
            let rt = rt.clone();
            tasks.spawn(supervise(c.name(), shutdown.clone(), move || {
                rt.clone().worker(c)
            }));
        }
    }
    {
        let rt = rt.clone();
        let sd = shutdown.clone();
        tasks.spawn(supervise("resync", shutdown.clone(), move || {
            rt.clone().resync(sd.clone())
        }));
    }
    shutdown.cancelled().await;
    for q in rt.queues.iter() {
        q.close();
    }
    while tasks.join_next().await.is_some() {}
}

/// A short stable hash for object names.
fn short_hash(s: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..4])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Mutex;
    use std::time::Instant;

    use serde_json::{Value, json};

    use super::*;
    use crate::api::objects::WriteOptions;

    /// (controller, key) whose processing panics: the test-only fault hook.
    static PANIC_ON: Mutex<Option<(Controller, String)>> = Mutex::new(None);

    pub(super) fn maybe_panic(c: Controller, key: &str) {
        let hit = PANIC_ON
            .lock()
            .map(|p| p.as_ref().is_some_and(|(pc, pk)| *pc == c && pk == key))
            .unwrap_or(false);
        if hit {
            panic!("injected fault for {} {key}", c.name());
        }
    }

    async fn create(objects: &Objects, group: &str, version: &str, plural: &str, obj: Value) {
        let res = objects.registry().get(group, version, plural).unwrap();
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        objects
            .create(&res, ns.as_deref(), obj, &WriteOptions::default())
            .await
            .unwrap();
    }

    async fn exists(objects: &Objects, plural: &str, ns: &str, name: &str) -> bool {
        let res = objects
            .registry()
            .get(
                "work.karmada.io",
                if plural == "works" {
                    "v1alpha1"
                } else {
                    "v1alpha2"
                },
                plural,
            )
            .unwrap();
        match objects.get(&res, Some(ns), name).await {
            Ok(_) => true,
            Err(e) if e.reason == "NotFound" => false,
            Err(e) => panic!("reading {plural} {ns}/{name}: {e}"),
        }
    }

    fn deployment(name: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "demo"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    }

    #[test]
    fn resync_slices_cover_every_key_once_per_cycle() {
        let keys: Vec<String> = (0..250).map(|i| format!("/k/{i:04}")).collect();
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let slice = next_slice(keys.iter().rev(), after.as_deref());
            assert!(slice.len() <= RESYNC_KEYS_PER_TICK);
            seen.extend(slice.iter().cloned());
            if slice.len() < RESYNC_KEYS_PER_TICK {
                break;
            }
            after = slice.last().cloned();
        }
        assert_eq!(seen, keys);
    }

    /// A panic in one key of one controller is caught, counted and retried, while every
    /// other key and controller keeps propagating.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_key_does_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn flotilla_store::Store> = Arc::new(
            flotilla_store::SledStore::open(dir.path().join("store"), Default::default())
                .await
                .unwrap(),
        );
        let objects = Objects::new(store, crate::registry::Registry::new());
        crate::bootstrap::run(&objects).await.unwrap();
        let metrics = crate::metrics::Metrics::new();
        if let Ok(mut p) = PANIC_ON.lock() {
            *p = Some((
                Controller::Detector,
                "/apps/deployments/demo/broken".to_owned(),
            ));
        }
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            objects.clone(),
            metrics.controllers(),
            Default::default(),
            crate::agents::metrics_book::MetricsBook::new(),
            shutdown.clone(),
        ));
        for ns in ["demo", "karmada-es-m1"] {
            create(
                &objects,
                "",
                "v1",
                "namespaces",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
            .await;
        }
        create(&objects, "cluster.karmada.io", "v1alpha1", "clusters", json!({
            "apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "m1"},
            "spec": {"syncMode": "Pull"}})).await;
        let clusters = objects
            .registry()
            .get("cluster.karmada.io", "v1alpha1", "clusters")
            .unwrap();
        let status = json!({"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "m1"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "ClusterReady", "message": "ok",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                "apiEnablements": [{"groupVersion": "apps/v1", "resources": [{"name": "deployments", "kind": "Deployment"}]}]}});
        objects
            .update(
                &clusters,
                None,
                "m1",
                status,
                Some("status"),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        create(
            &objects,
            "policy.karmada.io",
            "v1alpha1",
            "propagationpolicies",
            json!({
            "apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
            "metadata": {"name": "all", "namespace": "demo"},
            "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
                "placement": {"clusterAffinity": {"clusterNames": ["m1"]}}}}),
        )
        .await;
        create(&objects, "apps", "v1", "deployments", deployment("broken")).await;
        create(&objects, "apps", "v1", "deployments", deployment("web")).await;
        let work = rendering::work_name(&deployment("web"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !exists(&objects, "works", "karmada-es-m1", &work).await {
            assert!(
                Instant::now() < deadline,
                "the healthy template never reached its cluster"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(exists(&objects, "resourcebindings", "demo", "web-deployment").await);
        // The broken key never got a binding, and its panics were counted and retried.
        assert!(!exists(&objects, "resourcebindings", "demo", "broken-deployment").await);
        let text = metrics.render();
        let errors = text
            .lines()
            .find(|l| l.starts_with("flotilla_controller_errors_total{controller=\"detector\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        assert!(errors >= 1.0, "panics not counted:\n{text}");
        // Once the fault is gone the key recovers on its own (retry with backoff).
        if let Ok(mut p) = PANIC_ON.lock() {
            *p = None;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while !exists(&objects, "resourcebindings", "demo", "broken-deployment").await {
            assert!(
                Instant::now() < deadline,
                "the failed key was never retried"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.cancel();
        task.await.unwrap();
    }
}
