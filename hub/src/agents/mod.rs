//! The hub side of the agent protocol (`flotilla-proto`): the gRPC server on
//! `--agent-listen`, enrollment, each cluster's work stream, status and heartbeat ingestion,
//! and the cluster health monitor.
//!
//! Tasks started by [`start`]: the gRPC server, the cluster watcher (creates each cluster's
//! execution namespace, disconnects agents of deleted clusters), the [`health`] controller
//! (marks clusters `Ready=Unknown` when heartbeats stop, keeps their Leases) and the empty-Work
//! reaper.

pub mod endpoints;
pub mod enroll;
pub mod health;
pub mod limits;
pub mod metrics_book;
pub mod proxy;
pub mod service;
pub mod status;
pub mod work;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_store::EventKind;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::error::ApiError;
use crate::api::meta;
use crate::api::objects::{Objects, PatchType};
use crate::metrics::ControllerMetrics;
use crate::pki::Pki;
use crate::registry::Resource;

/// Agent server errors.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    /// The gRPC server could not be configured.
    #[error("agent server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The PKI failed.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    /// Writing the hub information failed.
    #[error("publishing the hub information: {0}")]
    Api(#[from] ApiError),
}

/// Default lifetime of agent certificates.
pub const DEFAULT_CERT_TTL: Duration = Duration::from_secs(24 * 3600);

/// The credential generation of a Cluster object (see
/// [`flotilla_proto::enrollment::CREDENTIAL_GENERATION_ANNOTATION`]).
pub fn credential_generation(cluster: &Value) -> u64 {
    use flotilla_proto::enrollment::{CREDENTIAL_GENERATION_ANNOTATION, credential_generation};
    credential_generation(
        cluster
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(CREDENTIAL_GENERATION_ANNOTATION))
            .and_then(Value::as_str),
    )
}

/// Configuration of the agent side of the hub.
pub struct AgentsConfig {
    /// The object engine.
    pub objects: Objects,
    /// The hub PKI (signs cluster certificates).
    pub pki: Arc<Pki>,
    /// The address agents should dial (`host:port`), published in `flotilla-hub-info`.
    pub advertise: String,
    /// Heartbeat silence after which a cluster turns `Ready=Unknown`.
    pub grace: Duration,
    /// Metrics of the health controller.
    pub metrics: ControllerMetrics,
    /// Lifetime of signed agent certificates.
    pub cert_ttl: Duration,
    /// The cluster proxy's tunnels (shared with the API).
    pub tunnels: Arc<proxy::Tunnels>,
    /// Workload metrics reported by agents (shared with the controllers).
    pub book: Arc<metrics_book::MetricsBook>,
    /// Counters of exported Services' endpoint reports.
    pub endpoints: crate::metrics::EndpointMetrics,
}

impl std::fmt::Debug for AgentsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentsConfig")
            .field("advertise", &self.advertise)
            .finish_non_exhaustive()
    }
}

impl AgentsConfig {
    /// The configuration for a hub whose agent listener is bound to `agent_addr`.
    pub fn new(
        objects: Objects,
        pki: Arc<Pki>,
        agent_addr: SocketAddr,
        tls_san: &[String],
        grace_seconds: u64,
        metrics: ControllerMetrics,
    ) -> Self {
        Self {
            objects,
            pki,
            advertise: advertise_address(agent_addr, tls_san),
            grace: Duration::from_secs(grace_seconds.max(1)),
            metrics,
            cert_ttl: DEFAULT_CERT_TTL,
            tunnels: Arc::new(proxy::Tunnels::default()),
            book: metrics_book::MetricsBook::new(),
            endpoints: crate::metrics::EndpointMetrics::default(),
        }
    }

    /// The same configuration with agent certificates valid for `ttl` (at least a minute).
    pub fn with_cert_ttl(mut self, ttl: Duration) -> Self {
        self.cert_ttl = ttl.max(Duration::from_secs(60));
        self
    }

    /// The same configuration with the cluster proxy's `tunnels`.
    pub fn with_tunnels(mut self, tunnels: Arc<proxy::Tunnels>) -> Self {
        self.tunnels = tunnels;
        self
    }

    /// The same configuration counting endpoint reports in `endpoints`.
    pub fn with_endpoint_metrics(mut self, endpoints: crate::metrics::EndpointMetrics) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// The same configuration recording workload metrics in `book`.
    pub fn with_metrics_book(mut self, book: Arc<metrics_book::MetricsBook>) -> Self {
        self.book = book;
        self
    }
}

/// The address to advertise: the bound one, or for a wildcard bind the first extra TLS name
/// (agents must dial a name on the serving certificate), else loopback.
pub fn advertise_address(addr: SocketAddr, tls_san: &[String]) -> String {
    if !addr.ip().is_unspecified() {
        return addr.to_string();
    }
    match tls_san.first() {
        Some(h) if h.contains(':') && h.parse::<std::net::Ipv6Addr>().is_ok() => {
            format!("[{h}]:{}", addr.port())
        }
        Some(h) => format!("{h}:{}", addr.port()),
        None => format!("127.0.0.1:{}", addr.port()),
    }
}

/// A connected agent.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) cancel: CancellationToken,
    /// The credential generation of the certificate the stream was opened with.
    pub(crate) generation: u64,
}

/// State shared by the server and the background tasks.
pub struct Shared {
    pub(crate) objects: Objects,
    pub(crate) pki: Arc<Pki>,
    pub(crate) connections: Mutex<HashMap<String, Connection>>,
    pub(crate) last_heard: Mutex<HashMap<String, Instant>>,
    /// Digest of the last heartbeat written to each Cluster's status.
    pub(crate) heartbeats: Mutex<HashMap<String, u64>>,
    pub(crate) acked: Mutex<HashMap<String, u64>>,
    pub(crate) next_id: std::sync::atomic::AtomicU64,
    pub(crate) started: Instant,
    pub(crate) health: health::Health,
    pub(crate) limits: limits::Limiter,
    pub(crate) cert_ttl: Duration,
    pub(crate) tunnels: Arc<proxy::Tunnels>,
    pub(crate) book: Arc<metrics_book::MetricsBook>,
    pub(crate) endpoints: crate::metrics::EndpointMetrics,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// Clusters with a connected agent.
    pub fn connected(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .connections
            .lock()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Closes the stream of `cluster`'s agent if it was opened with a certificate of another
    /// credential generation than `current`.
    pub fn disconnect_revoked(&self, cluster: &str, current: u64) {
        if let Ok(mut c) = self.connections.lock()
            && c.get(cluster)
                .is_some_and(|conn| conn.generation != current)
            && let Some(conn) = c.remove(cluster)
        {
            tracing::warn!(%cluster, "certificate revoked: closing the agent's stream");
            conn.cancel.cancel();
        }
        self.tunnels.close_revoked(cluster, current);
    }

    /// Closes the stream of `cluster`'s agent, if connected.
    pub fn disconnect(&self, cluster: &str) {
        if let Ok(mut c) = self.connections.lock()
            && let Some(conn) = c.remove(cluster)
        {
            conn.cancel.cancel();
        }
        self.tunnels.close(cluster);
    }
}

pub(crate) fn clusters() -> Result<Arc<Resource>, ApiError> {
    crate::registry::builtin_resource("cluster.karmada.io", "v1alpha1", "clusters")
        .ok_or_else(|| ApiError::internal("clusters are not served"))
}

/// Publishes the hub information, starts the agent gRPC server on `listener` and the
/// background tasks; everything stops when `shutdown` fires.
pub async fn start(
    listener: TcpListener,
    gate: Arc<crate::connections::Gate>,
    cfg: AgentsConfig,
    shutdown: CancellationToken,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<Arc<Shared>, AgentsError> {
    publish_hub_info(&cfg.objects, &cfg.pki, &cfg.advertise).await?;
    let shared = Arc::new(Shared {
        objects: cfg.objects.clone(),
        pki: cfg.pki.clone(),
        connections: Mutex::new(HashMap::new()),
        last_heard: Mutex::new(HashMap::new()),
        heartbeats: Mutex::new(HashMap::new()),
        acked: Mutex::new(HashMap::new()),
        next_id: std::sync::atomic::AtomicU64::new(1),
        started: Instant::now(),
        health: health::Health::new(cfg.grace),
        limits: limits::Limiter::default(),
        cert_ttl: cfg.cert_ttl,
        tunnels: cfg.tunnels.clone(),
        book: cfg.book.clone(),
        endpoints: cfg.endpoints.clone(),
    });
    let router = service::server(shared.clone(), &cfg.pki, gate.limits.handshake_timeout)?;
    let sd = shutdown.clone();
    tasks.spawn(async move {
        let incoming = crate::connections::admitted(listener, gate);
        if let Err(e) = router
            .serve_with_incoming_shutdown(incoming, sd.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "the agent server stopped");
        }
    });
    tasks.spawn(watch_clusters(shared.clone(), shutdown.clone()));
    tasks.spawn(health::run(
        shared.clone(),
        cfg.metrics.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(work::run_reaper(cfg.objects.clone(), shutdown));
    tracing::info!(advertise = %cfg.advertise, "agent server started");
    Ok(shared)
}

async fn publish_hub_info(
    objects: &Objects,
    pki: &Pki,
    advertise: &str,
) -> Result<(), AgentsError> {
    use flotilla_proto::enrollment::{HUB_INFO_CONFIGMAP, NAMESPACE};
    let cms = crate::registry::builtin_resource("", "v1", "configmaps")
        .ok_or_else(|| ApiError::internal("configmaps are not served"))?;
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": HUB_INFO_CONFIGMAP, "namespace": NAMESPACE},
        "data": {"agentAddress": advertise, "caHash": pki.ca_hash()?, "caCert": pki.ca_cert_pem},
    });
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.to_string()))?;
    objects
        .patch(
            &cms,
            Some(NAMESPACE),
            HUB_INFO_CONFIGMAP,
            PatchType::Apply,
            &bytes,
            None,
            &work::opts(),
        )
        .await?;
    Ok(())
}

/// Keeps execution namespaces in step with Clusters and disconnects agents of deleted ones.
async fn watch_clusters(shared: Arc<Shared>, shutdown: CancellationToken) {
    let Ok(res) = clusters() else {
        return;
    };
    let store = shared.objects.store().clone();
    let prefix = res.key_prefix();
    loop {
        let from = store.current_revision();
        let mut existing = std::collections::HashSet::new();
        if let Ok(page) = store.list(&prefix, None, 0).await {
            for kv in page.items {
                if let Ok(v) = serde_json::from_slice::<Value>(&kv.value) {
                    let name = meta::name(&v).to_owned();
                    on_cluster(&shared, &name).await;
                    shared.health.queue.add(&name);
                    existing.insert(name);
                }
            }
        }
        for c in shared
            .connected()
            .into_iter()
            .chain(shared.tunnels.clusters())
        {
            if !existing.contains(&c) {
                shared.disconnect(&c);
            }
        }
        let mut events = match store.watch(&prefix, from).await {
            Ok(s) => s,
            Err(_) => {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = events.next() => ev,
            };
            let Some(Ok(ev)) = ev else { break };
            let Ok(v) = serde_json::from_slice::<Value>(&ev.kv.value) else {
                continue;
            };
            let name = meta::name(&v).to_owned();
            match ev.kind {
                EventKind::Deleted => {
                    tracing::info!(cluster = %name, "cluster removed: disconnecting its agent");
                    shared.disconnect(&name);
                    if let Ok(mut h) = shared.last_heard.lock() {
                        h.remove(&name);
                    }
                    remove_execution_namespace(&shared.objects, &name).await;
                    endpoints::forget_cluster(&shared.objects, &name).await;
                    health::remove_lease(&shared, &name).await;
                    shared.limits.forget(&name);
                }
                EventKind::Created => {
                    on_cluster(&shared, &name).await;
                    shared.health.queue.add(&name);
                }
                EventKind::Updated => {
                    // A changed sync mode or a status written by someone else: look again.
                    shared.health.queue.add(&name);
                    // Revoked certificates lose their stream at once.
                    shared.disconnect_revoked(&name, credential_generation(&v));
                }
            }
        }
    }
}

async fn on_cluster(shared: &Shared, name: &str) {
    if let Err(e) =
        work::ensure_namespace(&shared.objects, &flotilla_proto::execution_namespace(name)).await
    {
        tracing::warn!(cluster = %name, error = %e, "creating the execution namespace failed");
    }
}

async fn remove_execution_namespace(objects: &Objects, cluster: &str) {
    let Some(ns) = crate::registry::builtin_resource("", "v1", "namespaces") else {
        return;
    };
    match objects
        .delete(
            &ns,
            None,
            &flotilla_proto::execution_namespace(cluster),
            &Default::default(),
        )
        .await
    {
        Ok(_) => {}
        Err(e) if e.code.as_u16() == 404 => {}
        Err(e) => tracing::warn!(%cluster, error = %e, "removing the execution namespace failed"),
    }
}

/// Writes a Cluster's status over the version it was computed from (`read`), so a concurrent
/// writer's report (e.g. API enablements sent once per agent session) is never overwritten
/// with an older status: a conflict is returned instead.
pub(crate) async fn write_cluster_status(
    objects: &Objects,
    res: &Resource,
    read: &Value,
    status: Value,
) -> Result<(), ApiError> {
    let name = meta::name(read);
    let rv = read
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or(Value::Null);
    let obj = json!({"apiVersion": res.api_version(), "kind": res.kind,
        "metadata": {"name": name, "resourceVersion": rv}, "status": status});
    objects
        .update(res, None, name, obj, Some("status"), &work::opts())
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_addresses() {
        let any: SocketAddr = "0.0.0.0:7443".parse().expect("addr");
        let lo: SocketAddr = "127.0.0.1:9000".parse().expect("addr");
        assert_eq!(advertise_address(lo, &[]), "127.0.0.1:9000");
        assert_eq!(advertise_address(any, &[]), "127.0.0.1:7443");
        assert_eq!(
            advertise_address(any, &["hub.example".into()]),
            "hub.example:7443"
        );
        assert_eq!(advertise_address(any, &["::1".into()]), "[::1]:7443");
    }
}
