//! Prometheus metrics of the hub.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// Counters of the endpoints agents report for exported Services. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct EndpointMetrics {
    services: Family<OutcomeLabel, Counter>,
    slice_writes: Counter,
}

impl EndpointMetrics {
    /// Records one report: Services kept and refused (not exported from the cluster), and
    /// the hub's slice copies written or deleted for it.
    pub fn record(&self, kept: usize, refused: usize, slice_writes: usize) {
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        for (outcome, count) in [("kept", kept), ("refused", refused)] {
            if count > 0 {
                self.services
                    .get_or_create(&OutcomeLabel {
                        outcome: outcome.to_owned(),
                    })
                    .inc_by(n(count));
            }
        }
        self.slice_writes.inc_by(n(slice_writes));
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

fn label(c: &str) -> ControllerLabel {
    ControllerLabel {
        controller: c.to_owned(),
    }
}

/// Metrics of the controllers, per controller (`flotilla_controller_*`). Cheap to clone.
#[derive(Clone, Debug)]
pub struct ControllerMetrics {
    errors: Family<ControllerLabel, Counter>,
    writes: Family<ControllerLabel, Counter>,
    adds: Family<ControllerLabel, Counter>,
    retries: Family<ControllerLabel, Counter>,
    depth: Family<ControllerLabel, Gauge>,
    duration: Family<ControllerLabel, Histogram>,
    last_success: Family<ControllerLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    cached: Family<KindLabel, Gauge>,
}

impl ControllerMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            errors: Family::default(),
            writes: Family::default(),
            adds: Family::default(),
            retries: Family::default(),
            depth: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 18))
            }),
            last_success: Family::default(),
            cached: Family::default(),
        };
        registry.register(
            "errors",
            "Keys whose processing failed or panicked",
            m.errors.clone(),
        );
        registry.register("adds", "Keys added to the queue", m.adds.clone());
        registry.register(
            "writes",
            "Writes (creates, updates, status updates, deletes, Events) the controller made",
            m.writes.clone(),
        );
        registry.register(
            "retries",
            "Keys queued again after a failure",
            m.retries.clone(),
        );
        registry.register("queue_depth", "Keys waiting in the queue", m.depth.clone());
        registry.register(
            "reconcile_duration_seconds",
            "Time to process one key",
            m.duration.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last successfully processed key",
            m.last_success.clone(),
        );
        registry.register(
            "cache_objects",
            "Objects in the controllers' cache by kind",
            m.cached.clone(),
        );
        m
    }

    /// Counts a failed or panicked key.
    pub fn error(&self, c: &str) {
        self.errors.get_or_create(&label(c)).inc();
    }

    /// Counts writes a controller made.
    pub fn wrote(&self, c: &str, n: usize) {
        self.writes
            .get_or_create(&label(c))
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Counts keys added.
    pub fn added(&self, c: &str, n: u64) {
        self.adds.get_or_create(&label(c)).inc_by(n);
    }

    /// Counts a retry.
    pub fn retried(&self, c: &str) {
        self.retries.get_or_create(&label(c)).inc();
    }

    /// Sets the queue depth.
    pub fn depth(&self, c: &str, depth: usize) {
        self.depth
            .get_or_create(&label(c))
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Records one processed key.
    pub fn processed(&self, c: &str, took: Duration, ok: bool, depth: usize) {
        self.duration
            .get_or_create(&label(c))
            .observe(took.as_secs_f64());
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            self.last_success.get_or_create(&label(c)).set(now);
        }
        self.depth(c, depth);
    }

    /// Records the cache's sizes.
    pub fn cache_sizes(&self, templates: usize, bindings: usize, works: usize, clusters: usize) {
        for (k, n) in [
            ("templates", templates),
            ("bindings", bindings),
            ("works", works),
            ("clusters", clusters),
        ] {
            self.cached
                .get_or_create(&KindLabel { kind: k.to_owned() })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    listener: String,
    reason: String,
}

/// Metrics of the listeners' connections (`flotilla_api_connections_*`). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct ConnectionMetrics {
    open: Family<ListenerLabel, Gauge>,
    refused: Family<RefusedLabels, Counter>,
}

impl ConnectionMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "connections_open",
            "Connections open, by listener (api or agent)",
            m.open.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed right after accept because a cap was reached, by listener and reason (total or per_peer)",
            m.refused.clone(),
        );
        m
    }

    fn listener(l: &str) -> ListenerLabel {
        ListenerLabel {
            listener: l.to_owned(),
        }
    }

    /// A connection was admitted.
    pub fn opened(&self, listener: &str) {
        self.open.get_or_create(&Self::listener(listener)).inc();
    }

    /// An admitted connection closed.
    pub fn closed(&self, listener: &str) {
        self.open.get_or_create(&Self::listener(listener)).dec();
    }

    /// A connection was refused.
    pub fn refused(&self, listener: &str, why: crate::connections::Refusal) {
        let reason = match why {
            crate::connections::Refusal::Total => "total",
            crate::connections::Refusal::PerPeer => "per_peer",
        };
        self.refused
            .get_or_create(&RefusedLabels {
                listener: listener.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }
}

/// The hub's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
    watches: Counter,
    proxy_requests: Family<CodeLabel, Counter>,
    proxy_streams: Gauge,
    workload_reports: Counter,
    endpoints: EndpointMetrics,
    controllers: ControllerMetrics,
    connections: ConnectionMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers the hub's metrics.
    pub fn new() -> Self {
        let mut root = Registry::default();
        let controllers =
            ControllerMetrics::register(root.sub_registry_with_prefix("flotilla_controller"));
        let connections =
            ConnectionMetrics::register(root.sub_registry_with_prefix("flotilla_api"));
        let registry = root.sub_registry_with_prefix("flotilla_hub");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let watches = Counter::default();
        registry.register(
            "apiserver_requests",
            "API requests by verb and code",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "API request latency",
            latency.clone(),
        );
        registry.register("apiserver_watches", "Watches started", watches.clone());
        let proxy_requests = Family::<CodeLabel, Counter>::default();
        let proxy_streams = Gauge::default();
        registry.register(
            "proxy_requests",
            "Cluster proxy requests by the status code answered (101: upgraded)",
            proxy_requests.clone(),
        );
        registry.register(
            "proxy_streams",
            "Cluster proxy requests open now (all clusters)",
            proxy_streams.clone(),
        );
        let workload_reports = Counter::default();
        registry.register(
            "workload_metrics_reports",
            "Workload metrics reports received from agents for FederatedHPAs",
            workload_reports.clone(),
        );
        let endpoints = EndpointMetrics::default();
        registry.register(
            "endpoint_services_reported",
            "Exported Services' endpoint reports received from agents, kept or refused (not exported from that cluster)",
            endpoints.services.clone(),
        );
        registry.register(
            "endpoint_slice_writes",
            "The hub's copies of provider clusters' EndpointSlices written or deleted",
            endpoints.slice_writes.clone(),
        );
        Self {
            registry: Arc::new(root),
            requests,
            latency,
            watches,
            proxy_requests,
            proxy_streams,
            workload_reports,
            endpoints,
            controllers,
            connections,
        }
    }

    /// Records one API request.
    pub fn observe_request(&self, verb: &str, code: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                verb: verb.to_owned(),
                code,
            })
            .inc();
        self.latency.observe(took.as_secs_f64());
    }

    /// The controllers' metrics.
    pub fn controllers(&self) -> ControllerMetrics {
        self.controllers.clone()
    }

    /// The listeners' connection metrics.
    pub fn connections(&self) -> ConnectionMetrics {
        self.connections.clone()
    }

    /// Records one cluster proxy request answered with `code`.
    pub fn proxied(&self, code: u16) {
        self.proxy_requests.get_or_create(&CodeLabel { code }).inc();
    }

    /// The gauge of open cluster proxy requests.
    pub fn proxy_streams(&self) -> Gauge {
        self.proxy_streams.clone()
    }

    /// The counter of workload metrics reports received.
    pub fn workload_reports(&self) -> Counter {
        self.workload_reports.clone()
    }

    /// The counters of exported Services' endpoint reports.
    pub fn endpoints(&self) -> EndpointMetrics {
        self.endpoints.clone()
    }

    /// Records a started watch.
    pub fn watch_started(&self) {
        self.watches.inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
