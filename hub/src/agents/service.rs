//! The gRPC service: discovery, enrollment and the per-cluster work stream.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use flotilla_proto::v1::agent_hub_server::{AgentHub, AgentHubServer};
use flotilla_proto::v1::{
    AgentMessage, DiscoverRequest, DiscoverResponse, EnrollRequest, EnrollResponse, HubMessage,
    Progress, ProxyDown, ProxyListenRequest, ProxyRequest, ProxyUp, RenewRequest, RenewResponse,
    SnapshotBegin, SnapshotEnd, WorkDelete, WorkStatus, WorkUpsert, agent_message, hub_message,
};
use flotilla_store::{Event, EventKind, StoreError};
use futures::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::{Connection, Shared, limits, status, work};
use crate::api::meta;
use crate::pki::Pki;

/// How long an agent has to say `Hello` after opening the stream.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// Works listed per store page in a snapshot.
const SNAPSHOT_PAGE: usize = 500;

/// The configured gRPC server for `shared`.
/// gRPC calls one agent connection may have open at once (an agent uses a few).
const MAX_CALLS_PER_CONNECTION: usize = 64;

/// The agent gRPC server; TLS handshakes may take `handshake_timeout`.
pub fn server(
    shared: Arc<Shared>,
    pki: &Pki,
    handshake_timeout: Duration,
) -> Result<tonic::transport::server::Router, tonic::transport::Error> {
    use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            &pki.serving_cert_pem,
            &pki.serving_key_pem,
        ))
        .client_ca_root(Certificate::from_pem(&pki.ca_cert_pem))
        // Discovery and enrollment come before the agent has a certificate.
        .client_auth_optional(true)
        .timeout(handshake_timeout);
    let shared_streams = shared.tunnels.max_streams();
    let svc = AgentHubServer::new(Service { shared })
        .max_decoding_message_size(flotilla_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(flotilla_proto::MAX_MESSAGE_BYTES);
    Ok(Server::builder()
        .tls_config(tls)?
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .tcp_keepalive(Some(Duration::from_secs(60)))
        .concurrency_limit_per_connection(MAX_CALLS_PER_CONNECTION)
        .initial_stream_window_size(flotilla_proto::proxy::STREAM_WINDOW)
        .initial_connection_window_size(flotilla_proto::proxy::connection_window(shared_streams))
        .add_service(svc))
}

/// The agent service.
#[derive(Debug)]
pub struct Service {
    shared: Arc<Shared>,
}

/// Who is calling, from the verified client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Cluster name (CN).
    pub cluster: String,
    /// Cluster uid at enrollment (O).
    pub uid: String,
    /// Credential generation (OU; 0 when absent).
    pub generation: u64,
}

/// Reads CN and O from a DER certificate.
pub fn identity_of(der: &[u8]) -> Option<PeerIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let cn = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let o = subject
        .iter_organization()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(PeerIdentity {
        cluster: cn,
        uid: o,
        generation: flotilla_proto::enrollment::credential_generation(
            subject
                .iter_organizational_unit()
                .next()
                .and_then(|ou| ou.as_str().ok()),
        ),
    })
}

fn peer_identity<T>(req: &Request<T>) -> Result<PeerIdentity, Status> {
    let certs = req.peer_certs().ok_or_else(|| {
        Status::unauthenticated(
            "a cluster client certificate is required: enroll with a bootstrap token first",
        )
    })?;
    certs
        .first()
        .and_then(|c| identity_of(c.as_ref()))
        .ok_or_else(|| Status::unauthenticated("the client certificate names no cluster"))
}

/// `RESOURCE_EXHAUSTED` when `cluster` is over its rate for `kind`.
fn refuse_if_limited(shared: &Shared, cluster: &str, kind: limits::Kind) -> Result<(), Status> {
    match shared.limits.take(cluster, kind) {
        None => Ok(()),
        Some(wait) => Err(Status::resource_exhausted(format!(
            "cluster {cluster} is over its {kind:?} rate; retry in {} s",
            wait.as_secs().max(1)
        ))),
    }
}

type HubStream = Pin<Box<dyn Stream<Item = Result<HubMessage, Status>> + Send>>;
type ProxyRequests = Pin<Box<dyn Stream<Item = Result<ProxyRequest, Status>> + Send>>;
type ProxyDowns = Pin<Box<dyn Stream<Item = Result<ProxyDown, Status>> + Send>>;

/// Removes a proxy listener when its stream is dropped (the agent went away).
struct Unlisten {
    shared: Arc<Shared>,
    cluster: String,
    id: u64,
}

impl Drop for Unlisten {
    fn drop(&mut self) {
        self.shared.tunnels.unlisten(&self.cluster, self.id);
    }
}

#[tonic::async_trait]
impl AgentHub for Service {
    async fn discover(
        &self,
        _req: Request<DiscoverRequest>,
    ) -> Result<Response<DiscoverResponse>, Status> {
        Ok(Response::new(DiscoverResponse {
            ca_pem: self.shared.pki.ca_cert_pem.clone(),
        }))
    }

    async fn enroll(
        &self,
        req: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let r = req.into_inner();
        let cert_pem =
            super::enroll::enroll(&self.shared, &r.cluster_name, &r.token, &r.csr_pem).await?;
        Ok(Response::new(EnrollResponse {
            cert_pem,
            key_pem: String::new(),
            ca_pem: self.shared.pki.ca_cert_pem.clone(),
        }))
    }

    async fn renew(&self, req: Request<RenewRequest>) -> Result<Response<RenewResponse>, Status> {
        let id = peer_identity(&req)?;
        refuse_if_limited(&self.shared, &id.cluster, limits::Kind::Renew)?;
        check_registered(&self.shared, &id).await?;
        let csr = req.into_inner().csr_pem;
        super::enroll::check_csr(&csr)?;
        let cert_pem = self
            .shared
            .pki
            .sign_client_csr(
                &csr,
                &id.cluster,
                &id.uid,
                id.generation,
                self.shared.cert_ttl,
            )
            .map_err(|e| Status::internal(e.to_string()))?;
        tracing::info!(cluster = %id.cluster, "agent certificate renewed");
        Ok(Response::new(RenewResponse { cert_pem }))
    }

    type WorkStreamStream = HubStream;
    type ProxyListenStream = ProxyRequests;
    type ProxyExchangeStream = ProxyDowns;

    async fn proxy_listen(
        &self,
        req: Request<ProxyListenRequest>,
    ) -> Result<Response<ProxyRequests>, Status> {
        let id = peer_identity(&req)?;
        refuse_if_limited(&self.shared, &id.cluster, limits::Kind::Stream)?;
        check_registered(&self.shared, &id).await?;
        let policy = req.into_inner().policy.unwrap_or_default();
        tracing::info!(cluster = %id.cluster, enabled = policy.enabled, allow = ?policy.allow, "cluster proxy listener connected");
        let (listen_id, rx, closed) =
            self.shared
                .tunnels
                .listen(&id.cluster, id.generation, policy);
        let guard = Unlisten {
            shared: self.shared.clone(),
            cluster: id.cluster,
            id: listen_id,
        };
        let out =
            futures::stream::unfold((rx, closed, guard), |(mut rx, closed, guard)| async move {
                let next = tokio::select! {
                    _ = closed.cancelled() => None,
                    m = rx.recv() => m,
                };
                next.map(|m| (m, (rx, closed, guard)))
            });
        Ok(Response::new(Box::pin(out)))
    }

    async fn proxy_exchange(
        &self,
        req: Request<Streaming<ProxyUp>>,
    ) -> Result<Response<ProxyDowns>, Status> {
        let id = peer_identity(&req)?;
        check_registered(&self.shared, &id).await?;
        let rx = self
            .shared
            .tunnels
            .accept(&id.cluster, req.into_inner())
            .await?;
        let out =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        Ok(Response::new(Box::pin(out)))
    }

    async fn work_stream(
        &self,
        req: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<HubStream>, Status> {
        let id = peer_identity(&req)?;
        refuse_if_limited(&self.shared, &id.cluster, limits::Kind::Stream)?;
        check_registered(&self.shared, &id).await?;
        let mut inbound = req.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
            Ok(Ok(Some(AgentMessage {
                message: Some(agent_message::Message::Hello(h)),
            }))) => h,
            Ok(Err(e)) => return Err(e),
            _ => return Err(Status::invalid_argument("the first message must be Hello")),
        };
        if hello.cluster_name != id.cluster {
            return Err(Status::permission_denied(format!(
                "this credential belongs to cluster {}, not {}",
                id.cluster, hello.cluster_name
            )));
        }
        let conn_id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let cancel = CancellationToken::new();
        if let Ok(mut conns) = self.shared.connections.lock() {
            // A new stream of the same cluster replaces the old one (the agent reconnected).
            if let Some(old) = conns.insert(
                id.cluster.clone(),
                Connection {
                    id: conn_id,
                    cancel: cancel.clone(),
                    generation: id.generation,
                },
            ) {
                old.cancel.cancel();
            }
        }
        self.shared.heard(&id.cluster);
        // The first heartbeat of a stream is always written through.
        self.shared.forget_heartbeat(&id.cluster);
        tracing::info!(cluster = %id.cluster, resume = hello.resume_revision, version = %hello.agent_version, "agent connected");
        let (tx, rx) = mpsc::channel::<Result<HubMessage, Status>>(128);
        let shared = self.shared.clone();
        let cluster = id.cluster.clone();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            let reason = tokio::select! {
                _ = c2.cancelled() => Some(Status::permission_denied(format!("the stream of cluster {cluster} was closed by the hub (unregistered or replaced)"))),
                r = send_works(&shared, &cluster, hello.resume_revision, &tx) => r.err(),
            };
            if let Some(s) = reason {
                let _ = tx.send(Err(s)).await;
            }
            c2.cancel();
        });
        let shared = self.shared.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = cancel.cancelled() => break,
                    m = inbound.message() => m,
                };
                match msg {
                    Ok(Some(m)) => {
                        if let Err(e) = handle(&shared, &id, m).await {
                            tracing::warn!(cluster = %id.cluster, error = %e, "agent message rejected");
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            cancel.cancel();
            if let Ok(mut conns) = shared.connections.lock()
                && conns.get(&id.cluster).is_some_and(|c| c.id == conn_id)
            {
                conns.remove(&id.cluster);
            }
            tracing::info!(cluster = %id.cluster, "agent disconnected");
        });
        let out =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        Ok(Response::new(Box::pin(out)))
    }
}

impl Shared {
    /// Records that `cluster`'s agent was heard from now. An agent heard again after a silence
    /// (or for the first time) puts its cluster back on the health controller's queue.
    pub(crate) fn heard(&self, cluster: &str) {
        let revived = match self.last_heard.lock() {
            Ok(mut h) => h
                .insert(cluster.to_owned(), Instant::now())
                .is_none_or(|prev| prev.elapsed() >= self.health.grace),
            Err(_) => false,
        };
        if revived {
            self.health.queue.add(cluster);
        }
    }

    /// Whether `hb` says exactly what the last heartbeat written for `cluster` said.
    fn heartbeat_unchanged(&self, cluster: &str, digest: u64) -> bool {
        self.heartbeats
            .lock()
            .map(|h| h.get(cluster) == Some(&digest))
            .unwrap_or(false)
    }

    fn remember_heartbeat(&self, cluster: &str, digest: u64) {
        if let Ok(mut h) = self.heartbeats.lock() {
            h.insert(cluster.to_owned(), digest);
        }
    }

    /// Makes the next heartbeat of `cluster` be written through (its status changed by
    /// someone else, or a new stream).
    pub(crate) fn forget_heartbeat(&self, cluster: &str) {
        if let Ok(mut h) = self.heartbeats.lock() {
            h.remove(cluster);
        }
    }
}

/// A digest of a heartbeat's content (heartbeats carry no time, so equal content means
/// nothing changed).
fn heartbeat_digest(hb: &flotilla_proto::v1::Heartbeat) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut sorted = hb.clone();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for m in [
        &mut sorted.allocatable,
        &mut sorted.allocated,
        &mut sorted.allocating,
    ] {
        let mut kv: Vec<_> = m.drain().collect();
        kv.sort();
        kv.hash(&mut h);
    }
    prost::Message::encode_to_vec(&sorted).hash(&mut h);
    h.finish()
}

/// The credential is valid only while the Cluster it was issued for exists.
async fn check_registered(shared: &Shared, id: &PeerIdentity) -> Result<(), Status> {
    let res = super::clusters().map_err(|e| Status::internal(e.message))?;
    match shared.objects.get(&res, None, &id.cluster).await {
        Ok(c)
            if meta::str_at(&c, "/metadata/uid") == Some(id.uid.as_str())
                && id.generation != super::credential_generation(&c) =>
        {
            Err(Status::unauthenticated(format!(
                "the certificate of cluster {} was revoked (`flotillactl revoke cluster`); enroll again with a new token from `flotillactl register cluster {}`",
                id.cluster, id.cluster
            )))
        }
        Ok(c) if meta::str_at(&c, "/metadata/uid") == Some(id.uid.as_str()) => Ok(()),
        Ok(_) => Err(Status::unauthenticated(format!(
            "the credential of cluster {} was revoked (the cluster was registered again); enroll with a new token",
            id.cluster
        ))),
        Err(e) if e.code.as_u16() == 404 => Err(Status::unauthenticated(format!(
            "cluster {} is not registered on the hub (unregistered); its credential is revoked",
            id.cluster
        ))),
        Err(e) => Err(Status::unavailable(e.message)),
    }
}

async fn handle(shared: &Shared, id: &PeerIdentity, m: AgentMessage) -> Result<(), Status> {
    match m.message {
        Some(agent_message::Message::Ack(a)) => {
            shared.heard(&id.cluster);
            if let Ok(mut acked) = shared.acked.lock() {
                acked.insert(id.cluster.clone(), a.revision);
            }
            Ok(())
        }
        Some(agent_message::Message::Heartbeat(mut hb)) => {
            shared
                .limits
                .wait(
                    &id.cluster,
                    limits::Kind::Heartbeat,
                    prost::Message::encoded_len(&hb),
                )
                .await;
            shared.heard(&id.cluster);
            limits::check_heartbeat(&hb)
                .map_err(|e| Status::invalid_argument(format!("heartbeat refused: {e}")))?;
            // Capacity that cannot be true never steers scheduling: it is left out, and the
            // Cluster says why.
            let capacity_problem = limits::capacity_problem(&hb);
            if capacity_problem.is_some() {
                hb.allocatable.clear();
                hb.allocated.clear();
                hb.allocating.clear();
            }
            // Liveness is kept in memory: an unchanged heartbeat costs no store read or write.
            let digest = heartbeat_digest(&hb);
            if shared.heartbeat_unchanged(&id.cluster, digest) {
                return Ok(());
            }
            let res = super::clusters().map_err(|e| Status::internal(e.message))?;
            // Read, fold, write over the version read; a concurrent status write means read
            // again.
            let mut attempt = 0;
            loop {
                attempt += 1;
                let cluster = shared
                    .objects
                    .get(&res, None, &id.cluster)
                    .await
                    .map_err(|e| Status::not_found(e.message))?;
                if meta::str_at(&cluster, "/metadata/uid") != Some(id.uid.as_str()) {
                    shared.disconnect(&id.cluster);
                    return Err(Status::unauthenticated("credential revoked"));
                }
                let mut new = status::cluster_status(cluster.get("status"), &hb, &meta::now());
                status::flag_capacity(&mut new, capacity_problem.as_deref(), &meta::now());
                if cluster.get("status") == Some(&new) {
                    break;
                }
                match super::write_cluster_status(&shared.objects, &res, &cluster, new).await {
                    Ok(()) => break,
                    Err(e) if e.reason == "Conflict" && attempt < 5 => continue,
                    Err(e) => return Err(Status::internal(e.message)),
                }
            }
            shared.remember_heartbeat(&id.cluster, digest);
            Ok(())
        }
        Some(agent_message::Message::Status(ws)) => {
            shared
                .limits
                .wait(
                    &id.cluster,
                    limits::Kind::Status,
                    prost::Message::encoded_len(&ws),
                )
                .await;
            shared.heard(&id.cluster);
            limits::check_work_status(&ws)
                .map_err(|e| Status::invalid_argument(format!("work status refused: {e}")))?;
            // Status is written only into the certificate's own execution namespace.
            let ns = flotilla_proto::execution_namespace(&id.cluster);
            let res = work::works().map_err(|e| Status::internal(e.message))?;
            let current = match shared.objects.get(&res, Some(&ns), &ws.work_name).await {
                Ok(w) => w,
                Err(e) if e.code.as_u16() == 404 => return Ok(()),
                Err(e) => return Err(Status::unavailable(e.message)),
            };
            let new = status::work_status(current.get("status"), &ws, &meta::now());
            if current.get("status") == Some(&new) {
                return Ok(());
            }
            let obj = serde_json::json!({
                "apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
                "metadata": {"name": ws.work_name, "namespace": ns}, "status": new,
            });
            shared
                .objects
                .update(
                    &res,
                    Some(&ns),
                    &ws.work_name,
                    obj,
                    Some("status"),
                    &work::opts(),
                )
                .await
                .map_err(|e| Status::internal(e.message))?;
            report_refusals(shared, &id.cluster, &current, &ws).await;
            Ok(())
        }
        Some(agent_message::Message::Metrics(m)) => {
            shared
                .limits
                .wait(
                    &id.cluster,
                    limits::Kind::Status,
                    prost::Message::encoded_len(&m),
                )
                .await;
            shared.heard(&id.cluster);
            // Kept under the certificate's own cluster only.
            shared
                .book
                .record(&id.cluster, m.reports)
                .map_err(|e| Status::invalid_argument(format!("metrics refused: {e}")))
        }
        Some(agent_message::Message::Endpoints(r)) => {
            shared
                .limits
                .wait(
                    &id.cluster,
                    limits::Kind::Status,
                    prost::Message::encoded_len(&r),
                )
                .await;
            shared.heard(&id.cluster);
            super::endpoints::check(&r)
                .map_err(|e| Status::invalid_argument(format!("endpoints refused: {e}")))?;
            // Written only as the certificate's own cluster's copies.
            let folded = super::endpoints::fold(&shared.objects, &id.cluster, &r)
                .await
                .map_err(|e| Status::unavailable(e.message))?;
            shared.endpoints.record(
                r.services.len().saturating_sub(folded.refused),
                folded.refused,
                folded.written.saturating_add(folded.deleted),
            );
            if folded.refused > 0 {
                tracing::warn!(
                    cluster = %id.cluster,
                    refused = folded.refused,
                    "endpoints of Services the hub does not export from this cluster were ignored"
                );
            }
            Ok(())
        }
        Some(agent_message::Message::Hello(_)) => {
            Err(Status::invalid_argument("Hello may only be sent once"))
        }
        None => Ok(()),
    }
}

/// Records a Warning Event for each manifest the member's guard rails refused: on the Work,
/// and on the hub's template when the Work was rendered from one.
async fn report_refusals(shared: &Shared, cluster: &str, work: &Value, ws: &WorkStatus) {
    for m in ws
        .manifests
        .iter()
        .filter(|m| !m.applied && m.message.starts_with(flotilla_proto::GUARD_RAIL_REFUSAL))
    {
        let message = format!("cluster {cluster}: {}", m.message);
        let mut about = vec![work.clone()];
        if work
            .pointer("/metadata/labels")
            .and_then(|l| l.get(crate::controllers::keys::BINDING_LABEL))
            .is_some()
            && let Some(id) = &m.identifier
            && let Some(res) = shared
                .objects
                .registry()
                .by_kind(&id.group, &id.version, &id.kind)
        {
            let ns = (!id.namespace.is_empty()).then_some(id.namespace.as_str());
            if let Ok(t) = shared.objects.get(&res, ns, &id.name).await {
                about.push(t);
            }
        }
        for object in &about {
            let r = crate::events::Record {
                object,
                type_: "Warning",
                reason: "GuardRailRefused",
                message: &message,
            };
            if let Err(e) = crate::events::record(&shared.objects, &r).await {
                tracing::warn!(%cluster, error = %e, "recording a refusal event failed");
            }
        }
    }
}

/// What the agent reads of a Work besides its spec: its generation, whether it is being
/// deleted, and its annotations (conflict resolution, the metrics to report, whether its
/// Service is exported), none of which the hub's status writes change.
fn agent_view(bytes: &[u8]) -> (Option<i64>, bool, Option<Value>) {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => (
            v.pointer("/metadata/generation").and_then(Value::as_i64),
            v.pointer("/metadata/deletionTimestamp").is_some(),
            v.pointer("/metadata/annotations").cloned(),
        ),
        Err(_) => (None, false, None),
    }
}

/// What to send the agent for one store event.
pub fn message_for(ev: &Event) -> hub_message::Message {
    let name = ev.kv.key.rsplit('/').next().unwrap_or_default().to_owned();
    let revision = ev.kv.mod_revision;
    let (generation, deleting, annotations) = agent_view(&ev.kv.value);
    if ev.kind == EventKind::Deleted || deleting {
        return hub_message::Message::Delete(WorkDelete {
            work_name: name,
            revision,
        });
    }
    // Only spec changes bump the generation; the hub's own status writes do not concern
    // the agent, annotation changes do.
    if ev.kind == EventKind::Updated
        && let Some(prev) = &ev.prev
        && generation.is_some()
        && agent_view(prev) == (generation, false, annotations)
    {
        return hub_message::Message::Progress(Progress { revision });
    }
    hub_message::Message::Upsert(WorkUpsert {
        work_name: name,
        revision,
        work_json: ev.kv.value.clone(),
    })
}

async fn send(
    tx: &mpsc::Sender<Result<HubMessage, Status>>,
    m: hub_message::Message,
) -> Result<(), Status> {
    tx.send(Ok(HubMessage { message: Some(m) }))
        .await
        .map_err(|_| Status::cancelled("agent went away"))
}

/// Streams `cluster`'s Works: a snapshot when `resume` is 0 or too old, then changes.
async fn send_works(
    shared: &Shared,
    cluster: &str,
    resume: u64,
    tx: &mpsc::Sender<Result<HubMessage, Status>>,
) -> Result<(), Status> {
    let res = work::works().map_err(|e| Status::internal(e.message))?;
    let prefix = res.list_prefix(Some(&flotilla_proto::execution_namespace(cluster)));
    let store = shared.objects.store().clone();
    // A revision the hub has not reached is not a resume point: send a snapshot.
    let mut from = if resume > store.current_revision() {
        tracing::warn!(%cluster, resume, "resume revision is ahead of the hub: sending a snapshot");
        0
    } else {
        resume
    };
    loop {
        if from == 0 {
            from = snapshot(&*store, &prefix, tx).await?;
        }
        let mut events = match store.watch(&prefix, from).await {
            Ok(s) => s,
            Err(StoreError::Gone { .. }) => {
                tracing::info!(%cluster, from, "resume point compacted: sending a snapshot");
                from = 0;
                continue;
            }
            Err(e) => return Err(Status::unavailable(e.to_string())),
        };
        loop {
            match events.next().await {
                Some(Ok(ev)) => send(tx, message_for(&ev)).await?,
                Some(Err(StoreError::Gone { .. })) => {
                    from = 0;
                    break;
                }
                Some(Err(e)) => return Err(Status::unavailable(e.to_string())),
                None => return Err(Status::unavailable("the hub is shutting down")),
            }
        }
    }
}

async fn snapshot(
    store: &dyn flotilla_store::Store,
    prefix: &str,
    tx: &mpsc::Sender<Result<HubMessage, Status>>,
) -> Result<u64, Status> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    let mut revision = None;
    loop {
        let page = store
            .list(prefix, after.as_deref(), SNAPSHOT_PAGE)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        // Changes made while paging are replayed by the watch from the first page's revision.
        revision.get_or_insert(page.revision);
        items.extend(page.items);
        match page.continue_after {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let revision = revision.unwrap_or(0);
    send(
        tx,
        hub_message::Message::SnapshotBegin(SnapshotBegin {
            works: items.len() as u64,
        }),
    )
    .await?;
    for kv in items {
        let (_, deleting, _) = agent_view(&kv.value);
        if deleting {
            continue;
        }
        let name = kv.key.rsplit('/').next().unwrap_or_default().to_owned();
        send(
            tx,
            hub_message::Message::Upsert(WorkUpsert {
                work_name: name,
                revision: kv.mod_revision,
                work_json: kv.value,
            }),
        )
        .await?;
    }
    send(
        tx,
        hub_message::Message::SnapshotEnd(SnapshotEnd { revision }),
    )
    .await?;
    Ok(revision)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use flotilla_store::KeyValue;

    use super::*;

    fn ev(kind: EventKind, value: &str, prev: Option<&str>) -> Event {
        Event {
            kind,
            kv: KeyValue {
                key: "/work.karmada.io/works/karmada-es-m1/w1".into(),
                value: Bytes::from(value.to_owned()),
                create_revision: 1,
                mod_revision: 7,
            },
            prev: prev.map(|p| Bytes::from(p.to_owned())),
        }
    }

    #[test]
    fn events_to_messages() {
        let g1 = r#"{"metadata":{"generation":1}}"#;
        let g1s = r#"{"metadata":{"generation":1},"status":{}}"#;
        let g2 = r#"{"metadata":{"generation":2}}"#;
        let del = r#"{"metadata":{"generation":1,"deletionTimestamp":"x"}}"#;
        let measured = r#"{"metadata":{"generation":1,"annotations":{"autoscaling.flotilla.io/metrics":"[]"}}}"#;
        let exported = r#"{"metadata":{"generation":1,"annotations":{"discovery.flotilla.io/export":"true"}}}"#;
        let exported_s = r#"{"metadata":{"generation":1,"annotations":{"discovery.flotilla.io/export":"true"}},"status":{}}"#;
        let kind = |m: hub_message::Message| match m {
            hub_message::Message::Upsert(u) => format!("upsert {} {}", u.work_name, u.revision),
            hub_message::Message::Delete(d) => format!("delete {} {}", d.work_name, d.revision),
            hub_message::Message::Progress(p) => format!("progress {}", p.revision),
            _ => "other".into(),
        };
        let cases = [
            (ev(EventKind::Created, g1, None), "upsert w1 7"),
            (ev(EventKind::Updated, g1s, Some(g1)), "progress 7"),
            (ev(EventKind::Updated, g2, Some(g1)), "upsert w1 7"),
            (ev(EventKind::Updated, del, Some(g1)), "delete w1 7"),
            (ev(EventKind::Deleted, g1, None), "delete w1 7"),
            (ev(EventKind::Updated, "not json", Some(g1)), "upsert w1 7"),
            // The metrics to report change without a new generation.
            (ev(EventKind::Updated, measured, Some(g1)), "upsert w1 7"),
            (ev(EventKind::Updated, g1, Some(measured)), "upsert w1 7"),
            // So does whether its Service is exported.
            (ev(EventKind::Updated, exported, Some(g1)), "upsert w1 7"),
            (ev(EventKind::Updated, g1, Some(exported)), "upsert w1 7"),
            (
                ev(EventKind::Updated, exported_s, Some(exported)),
                "progress 7",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(kind(message_for(&e)), want);
        }
    }
}
