//! The agent's engine: keeps the work stream to the hub, applies what the hub sends, deletes
//! what it removes, and reports status and heartbeats.
//!
//! The engine is one task owning all state, so no locks are needed: hub messages, watch
//! events from the member and timers are handled one at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use flotilla_proto::v1::{
    Ack, AgentMessage, Health, Hello, HubMessage, ManifestIdentifier, ManifestStatus, WorkStatus,
    agent_message, hub_message,
};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::health;
use crate::member::{Member, MemberError, MemberEvent, ObjectRef};
use crate::metrics::Metrics;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The cluster's name.
    pub cluster: String,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// Status changes are collected for this long before they are sent.
    pub debounce: Duration,
    /// Failed applies and deletes are retried this often.
    pub retry: Duration,
}

impl EngineConfig {
    /// Defaults for `cluster`: heartbeat 10 s, debounce 500 ms, retry 5 s.
    pub fn new(cluster: &str) -> Self {
        Self {
            cluster: cluster.to_owned(),
            heartbeat: Duration::from_secs(10),
            debounce: Duration::from_millis(500),
            retry: Duration::from_secs(5),
        }
    }
}

/// What the engine knows of one manifest.
#[derive(Debug, Clone, Default)]
struct ManifestState {
    target: Option<ObjectRef>,
    applied: bool,
    message: String,
    status: Option<Value>,
    health: Option<Health>,
}

/// What the engine knows of one Work.
#[derive(Debug, Clone, Default)]
struct WorkState {
    generation: i64,
    manifests: Vec<Value>,
    overwrite: bool,
    suspended: bool,
    preserve: bool,
    /// The workload to measure, when the hub autoscales it.
    measure: Option<crate::autoscaling::MeasureTarget>,
    /// The Service whose endpoints to report, when the hub exports it.
    export: Option<crate::discovery::ServiceRef>,
    results: Vec<ManifestState>,
    needs_apply: bool,
    /// Failed applies in a row; the next retry waits [`retry_delay`] of it.
    failures: u32,
    /// When the next retry of a failed apply is due.
    retry_at: Option<tokio::time::Instant>,
    dirty: bool,
    reported: Option<WorkStatus>,
}

/// The longest wait between retries of a Work whose apply keeps failing.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// The most failed Works retried at one retry tick, so a mass failure neither floods the
/// member's API server nor holds up the hub's messages and heartbeats.
pub const RETRY_BATCH: usize = 100;

/// The wait before retrying a Work after `failures` failed applies in a row: `base`, doubled
/// with each further failure, at most [`MAX_RETRY_DELAY`].
pub fn retry_delay(base: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    base.saturating_mul(1 << doublings).min(MAX_RETRY_DELAY)
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The hub refused or closed the stream.
    #[error("{}", .0.message())]
    Status(#[from] tonic::Status),
    /// The hub closed the stream.
    #[error("the hub closed the stream")]
    Closed,
}

/// The engine.
pub struct Engine<M: Member> {
    cfg: EngineConfig,
    member: Arc<M>,
    events: mpsc::Receiver<MemberEvent>,
    metrics: Arc<Metrics>,
    works: BTreeMap<String, WorkState>,
    revision: u64,
    snapshot: Option<BTreeSet<String>>,
    scanned: bool,
    pending_deletes: Vec<(String, ObjectRef)>,
    /// The workloads to measure, for the session's metrics task.
    targets: tokio::sync::watch::Sender<Vec<crate::autoscaling::MeasureTarget>>,
    /// The exported Services, for the session's endpoints task.
    exports: tokio::sync::watch::Sender<Vec<crate::discovery::ServiceRef>>,
}

impl<M: Member> std::fmt::Debug for Engine<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("cluster", &self.cfg.cluster)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

fn conflict_overwrite(v: &Value) -> bool {
    v.pointer(&format!(
        "/metadata/annotations/{}",
        flotilla_proto::CONFLICT_RESOLUTION_ANNOTATION.replace('/', "~1")
    ))
    .and_then(Value::as_str)
    .is_some_and(|s| s.eq_ignore_ascii_case("overwrite"))
}

/// The parts of a Work the agent acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkSpec {
    /// `metadata.generation`.
    pub generation: i64,
    /// `spec.workload.manifests`.
    pub manifests: Vec<Value>,
    /// `spec.suspendDispatching`.
    pub suspended: bool,
    /// Conflict resolution `overwrite` on the Work.
    pub overwrite: bool,
    /// `spec.preserveResourcesOnDeletion`: deleting the Work leaves the objects, unmanaged.
    pub preserve: bool,
    /// The metrics to report for its workload ([`flotilla_proto::METRICS_ANNOTATION`]).
    pub metrics: Option<String>,
    /// Whether to report its Service's endpoints ([`flotilla_proto::EXPORT_ANNOTATION`]).
    pub export: Option<String>,
}

fn annotation(v: &Value, key: &str) -> Option<String> {
    v.pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Reads a Work's JSON.
pub fn parse_work(json: &[u8]) -> Result<WorkSpec, String> {
    let v: Value =
        serde_json::from_slice(json).map_err(|e| format!("the Work is not valid JSON: {e}"))?;
    Ok(WorkSpec {
        generation: v
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        manifests: v
            .pointer("/spec/workload/manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        suspended: v
            .pointer("/spec/suspendDispatching")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        overwrite: conflict_overwrite(&v),
        metrics: annotation(&v, flotilla_proto::METRICS_ANNOTATION),
        export: annotation(&v, flotilla_proto::EXPORT_ANNOTATION),
        preserve: v
            .pointer("/spec/preserveResourcesOnDeletion")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn msg(m: agent_message::Message) -> AgentMessage {
    AgentMessage { message: Some(m) }
}

impl<M: Member> Engine<M> {
    /// An engine for `member`, whose watch events arrive on `events`.
    pub fn new(
        cfg: EngineConfig,
        member: Arc<M>,
        events: mpsc::Receiver<MemberEvent>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            cfg,
            member,
            events,
            metrics,
            works: BTreeMap::new(),
            revision: 0,
            snapshot: None,
            scanned: false,
            pending_deletes: Vec::new(),
            targets: tokio::sync::watch::Sender::new(Vec::new()),
            exports: tokio::sync::watch::Sender::new(Vec::new()),
        }
    }

    /// The last hub revision fully processed.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Runs sessions against the hub until `shutdown`, reconnecting with backoff. Nothing
    /// in the member is touched while the hub is unreachable.
    pub async fn run(mut self, channel: Channel, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(500);
        loop {
            let started = Instant::now();
            self.metrics.sessions.fetch_add(1, Ordering::Relaxed);
            let result = self.session(channel.clone(), &shutdown).await;
            self.metrics.connected.store(false, Ordering::Relaxed);
            if shutdown.is_cancelled() {
                return;
            }
            match &result {
                Err(SessionError::Status(s))
                    if matches!(
                        s.code(),
                        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                    ) =>
                {
                    tracing::error!(error = %s.message(), "the hub refused this agent; retrying slowly");
                    backoff = Duration::from_secs(30);
                }
                Err(e) => tracing::warn!(error = %e, "work stream ended; reconnecting"),
                Ok(()) => {}
            }
            if started.elapsed() > Duration::from_secs(30) && backoff < Duration::from_secs(30) {
                backoff = Duration::from_millis(500);
            }
            // Jitter spreads reconnects of many agents after a hub restart.
            let jitter = Duration::from_millis(u64::from(std::process::id() % 500));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff + jitter) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// One connection to the hub.
    pub async fn session(
        &mut self,
        channel: Channel,
        shutdown: &CancellationToken,
    ) -> Result<(), SessionError> {
        let (tx, rx) = mpsc::channel::<AgentMessage>(256);
        let hello = Hello {
            cluster_name: self.cfg.cluster.clone(),
            resume_revision: self.revision,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let _ = tx.send(msg(agent_message::Message::Hello(hello))).await;
        let outbound = tokio_stream::wrappers::ReceiverStream::new(rx);
        let mut inbound = crate::connect::client(channel)
            .work_stream(outbound)
            .await?
            .into_inner();
        self.metrics.connected.store(true, Ordering::Relaxed);
        tracing::info!(resume = self.revision, "connected to the hub");
        self.snapshot = None;
        for w in self.works.values_mut() {
            w.reported = None;
            w.dirty = true;
        }
        let hb = self.member.heartbeat(true).await;
        send(&tx, agent_message::Message::Heartbeat(hb)).await?;
        // Metrics of autoscaled workloads go out on the same stream, measured by their own
        // task; it ends with the session.
        let measuring = tokio::spawn(crate::autoscaling::run(
            self.member.clone(),
            self.targets.subscribe(),
            tx.clone(),
            flotilla_proto::METRICS_PERIOD,
            self.metrics.clone(),
        ));
        let _stop_measuring = AbortOnDrop(measuring);
        // So do the endpoints of exported Services.
        let reporting = tokio::spawn(crate::discovery::run(
            self.member.clone(),
            self.exports.subscribe(),
            tx.clone(),
            crate::discovery::RESYNC,
            self.metrics.clone(),
        ));
        let _stop_reporting = AbortOnDrop(reporting);
        let mut heartbeat = tokio::time::interval(self.cfg.heartbeat);
        heartbeat.tick().await;
        let mut debounce = tokio::time::interval(self.cfg.debounce);
        let mut retry = tokio::time::interval(self.cfg.retry);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                m = inbound.message() => match m? {
                    Some(m) => self.on_hub(m, &tx).await?,
                    None => return Err(SessionError::Closed),
                },
                Some(ev) = self.events.recv() => self.on_member_event(ev),
                _ = heartbeat.tick() => {
                    let hb = self.member.heartbeat(false).await;
                    send(&tx, agent_message::Message::Heartbeat(hb)).await?;
                }
                _ = debounce.tick() => self.flush_status(&tx).await?,
                _ = retry.tick() => self.retry().await,
            }
        }
    }

    async fn on_hub(
        &mut self,
        m: HubMessage,
        tx: &mpsc::Sender<AgentMessage>,
    ) -> Result<(), SessionError> {
        let Some(m) = m.message else { return Ok(()) };
        let revision = match m {
            hub_message::Message::SnapshotBegin(b) => {
                tracing::info!(works = b.works, "receiving a snapshot");
                self.snapshot = Some(BTreeSet::new());
                return Ok(());
            }
            hub_message::Message::Upsert(u) => {
                if let Some(s) = self.snapshot.as_mut() {
                    s.insert(u.work_name.clone());
                }
                self.upsert(&u.work_name, &u.work_json).await;
                if self.snapshot.is_some() {
                    return Ok(());
                }
                u.revision
            }
            hub_message::Message::Delete(d) => {
                self.remove_work(&d.work_name).await;
                d.revision
            }
            hub_message::Message::SnapshotEnd(e) => {
                let desired = self.snapshot.take().unwrap_or_default();
                self.finish_snapshot(&desired).await;
                e.revision
            }
            hub_message::Message::Progress(p) => p.revision,
        };
        self.revision = self.revision.max(revision);
        self.metrics
            .revision
            .store(self.revision, Ordering::Relaxed);
        send(
            tx,
            agent_message::Message::Ack(Ack {
                revision: self.revision,
            }),
        )
        .await
    }

    async fn finish_snapshot(&mut self, desired: &BTreeSet<String>) {
        let stale: Vec<String> = self
            .works
            .keys()
            .filter(|w| !desired.contains(*w))
            .cloned()
            .collect();
        for w in stale {
            self.remove_work(&w).await;
        }
        if !self.scanned {
            // After a restart the agent does not know what it applied before: find every
            // object it manages and drop those of Works that no longer exist.
            match self.member.managed_objects().await {
                Ok(objs) => {
                    for (work, target) in objs {
                        if !desired.contains(&work) {
                            tracing::info!(%work, %target, "deleting an object of a removed Work");
                            self.delete_object(&work, &target).await;
                        }
                    }
                    self.scanned = true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listing managed objects failed; will retry at the next snapshot")
                }
            }
        }
        self.metrics
            .works
            .store(self.works.len() as u64, Ordering::Relaxed);
    }

    async fn upsert(&mut self, name: &str, json: &[u8]) {
        let spec = match parse_work(json) {
            Ok(s) => s,
            Err(e) => {
                let w = self.works.entry(name.to_owned()).or_default();
                w.results = vec![ManifestState {
                    message: e,
                    ..Default::default()
                }];
                w.dirty = true;
                return;
            }
        };
        let export = crate::discovery::export_of(name, spec.export.as_deref(), &spec.manifests);
        if self.works.get(name).is_some_and(|w| w.export != export) {
            if let Some(w) = self.works.get_mut(name) {
                w.export = export.clone();
            }
            self.publish_exports();
        }
        let measure = crate::autoscaling::target_of(name, spec.metrics.as_deref(), &spec.manifests);
        if self.works.get(name).is_some_and(|w| w.measure != measure) {
            if let Some(w) = self.works.get_mut(name) {
                w.measure = measure.clone();
            }
            self.publish_targets();
        }
        let unchanged = self.works.get(name).is_some_and(|w| {
            w.generation == spec.generation
                && w.manifests == spec.manifests
                && w.suspended == spec.suspended
                && w.overwrite == spec.overwrite
                && w.preserve == spec.preserve
                && !w.needs_apply
        });
        if unchanged {
            return;
        }
        let w = self.works.entry(name.to_owned()).or_default();
        w.generation = spec.generation;
        w.manifests = spec.manifests;
        w.suspended = spec.suspended;
        w.overwrite = spec.overwrite;
        w.preserve = spec.preserve;
        let measured = w.measure.is_some() || measure.is_some();
        w.measure = measure;
        let exported = w.export.is_some() || export.is_some();
        w.export = export;
        w.needs_apply = true;
        if measured {
            self.publish_targets();
        }
        if exported {
            self.publish_exports();
        }
        self.metrics
            .works
            .store(self.works.len() as u64, Ordering::Relaxed);
        self.apply_work(name).await;
    }

    async fn apply_work(&mut self, name: &str) {
        let Some(w) = self.works.get(name).cloned() else {
            return;
        };
        if w.suspended {
            if let Some(ws) = self.works.get_mut(name) {
                ws.needs_apply = false;
                ws.dirty = true;
            }
            return;
        }
        let mut results = Vec::with_capacity(w.manifests.len());
        let mut failed = false;
        for (i, manifest) in w.manifests.iter().enumerate() {
            let overwrite = w.overwrite || conflict_overwrite(manifest);
            let prev = w.results.get(i).cloned().unwrap_or_default();
            match self.member.apply(name, manifest, overwrite).await {
                Ok(a) => {
                    if a.changed {
                        self.metrics.applies.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(work = %name, target = %a.target, "applied");
                    }
                    let (status, health) = observe(&a.target, &a.object);
                    results.push(ManifestState {
                        target: Some(a.target),
                        applied: true,
                        message: String::new(),
                        status,
                        health: Some(health),
                    });
                }
                Err(e) => {
                    // A guard-rail refusal stands until the Work changes: no retries.
                    failed |= !matches!(e, MemberError::Refused { .. });
                    self.metrics.apply_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(work = %name, error = %e, "apply failed");
                    let keep_target = match &e {
                        MemberError::Api(_) => prev.target,
                        // Reported with its identity, so the hub can tell which one.
                        MemberError::Refused { target, .. } => Some((**target).clone()),
                        _ => None,
                    };
                    results.push(ManifestState {
                        target: keep_target,
                        applied: false,
                        message: e.to_string(),
                        status: prev.status,
                        health: None,
                    });
                }
            }
        }
        // Objects the Work no longer lists.
        let kept: BTreeSet<ObjectRef> = results.iter().filter_map(|r| r.target.clone()).collect();
        let dropped: Vec<ObjectRef> = w
            .results
            .iter()
            .filter_map(|r| r.target.clone())
            .filter(|t| !kept.contains(t))
            .collect();
        for t in dropped {
            self.delete_object(name, &t).await;
        }
        if let Some(ws) = self.works.get_mut(name) {
            ws.results = results;
            ws.needs_apply = failed;
            ws.dirty = true;
            if failed {
                ws.failures = ws.failures.saturating_add(1);
                ws.retry_at =
                    Some(tokio::time::Instant::now() + retry_delay(self.cfg.retry, ws.failures));
            } else {
                ws.failures = 0;
                ws.retry_at = None;
            }
        }
    }

    /// Hands the workloads to measure to the metrics task.
    fn publish_targets(&self) {
        let list: Vec<_> = self
            .works
            .values()
            .filter_map(|w| w.measure.clone())
            .collect();
        self.targets.send_if_modified(|t| {
            let changed = *t != list;
            *t = list;
            changed
        });
    }

    fn publish_exports(&self) {
        let mut list: Vec<_> = self
            .works
            .values()
            .filter_map(|w| w.export.clone())
            .collect();
        list.sort();
        list.dedup();
        self.exports.send_if_modified(|t| {
            let changed = *t != list;
            *t = list;
            changed
        });
    }

    async fn remove_work(&mut self, name: &str) {
        let Some(w) = self.works.remove(name) else {
            return;
        };
        if w.measure.is_some() {
            self.publish_targets();
        }
        if w.export.is_some() {
            self.publish_exports();
        }
        for t in w.results.iter().filter_map(|r| r.target.clone()) {
            if w.preserve {
                self.release_object(name, &t).await;
            } else {
                self.delete_object(name, &t).await;
            }
        }
        self.metrics
            .works
            .store(self.works.len() as u64, Ordering::Relaxed);
    }

    /// Leaves an object in the member but stops managing it.
    async fn release_object(&mut self, work: &str, target: &ObjectRef) {
        match self.member.release(work, target).await {
            Ok(()) => tracing::info!(%work, %target, "released (preserveResourcesOnDeletion)"),
            Err(e) => {
                tracing::warn!(%work, %target, error = %e, "release failed; the object stays managed")
            }
        }
    }

    async fn delete_object(&mut self, work: &str, target: &ObjectRef) {
        match self.member.delete(work, target).await {
            Ok(()) => {
                self.metrics.deletes.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%work, %target, "deleted");
            }
            Err(e) => {
                tracing::warn!(%work, %target, error = %e, "delete failed; will retry");
                self.pending_deletes.push((work.to_owned(), target.clone()));
            }
        }
    }

    fn on_member_event(&mut self, ev: MemberEvent) {
        let Some(w) = self.works.get_mut(&ev.work) else {
            return;
        };
        let Some(r) = w
            .results
            .iter_mut()
            .find(|r| r.target.as_ref() == Some(&ev.target))
        else {
            return;
        };
        match ev.object {
            Some(obj) => {
                let (status, health) = observe(&ev.target, &obj);
                if r.status != status || r.health != Some(health) {
                    r.status = status;
                    r.health = Some(health);
                    w.dirty = true;
                }
            }
            None => {
                // Deleted behind the agent's back: put it back.
                tracing::info!(work = %ev.work, target = %ev.target, "managed object was deleted in the member; re-applying");
                r.applied = false;
                w.needs_apply = true;
                w.dirty = true;
            }
        }
    }

    /// Retries the failed Works that are due, longest waiting first, at most
    /// [`RETRY_BATCH`] of them.
    async fn retry(&mut self) {
        let now = tokio::time::Instant::now();
        let mut due: Vec<(Option<tokio::time::Instant>, String)> = self
            .works
            .iter()
            .filter(|(_, w)| w.needs_apply && w.retry_at.is_none_or(|t| t <= now))
            .map(|(n, w)| (w.retry_at, n.clone()))
            .collect();
        due.sort();
        for (_, n) in due.into_iter().take(RETRY_BATCH) {
            self.apply_work(&n).await;
        }
        let pending = std::mem::take(&mut self.pending_deletes);
        for (work, target) in pending {
            // Skip objects that a Work wants again meanwhile.
            let wanted = self
                .works
                .values()
                .any(|w| w.results.iter().any(|r| r.target.as_ref() == Some(&target)));
            if !wanted {
                self.delete_object(&work, &target).await;
            }
        }
    }

    async fn flush_status(&mut self, tx: &mpsc::Sender<AgentMessage>) -> Result<(), SessionError> {
        let mut out = Vec::new();
        for (name, w) in self.works.iter_mut().filter(|(_, w)| w.dirty) {
            w.dirty = false;
            let st = work_status(name, w);
            if w.reported.as_ref() != Some(&st) {
                w.reported = Some(st.clone());
                out.push(st);
            }
        }
        for st in out {
            send(tx, agent_message::Message::Status(st)).await?;
        }
        Ok(())
    }
}

fn observe(target: &ObjectRef, obj: &Value) -> (Option<Value>, Health) {
    (
        health::reflect(&target.group, &target.kind, obj),
        health::health(&target.group, &target.kind, obj),
    )
}

fn work_status(name: &str, w: &WorkState) -> WorkStatus {
    let first_error = w
        .results
        .iter()
        .find(|r| !r.applied)
        .map(|r| r.message.clone());
    let (applied, message) = if w.suspended {
        (false, "dispatching is suspended".to_owned())
    } else {
        match first_error {
            Some(e) => (false, e),
            None => (true, String::new()),
        }
    };
    let manifests = w
        .results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let t = r.target.as_ref()?;
            Some(ManifestStatus {
                identifier: Some(ManifestIdentifier {
                    ordinal: u32::try_from(i).unwrap_or(u32::MAX),
                    group: t.group.clone(),
                    version: t.version.clone(),
                    kind: t.kind.clone(),
                    resource: t.resource.clone(),
                    namespace: t.namespace.clone(),
                    name: t.name.clone(),
                }),
                status_json: r
                    .status
                    .as_ref()
                    .map(|s| serde_json::to_vec(s).unwrap_or_default().into())
                    .unwrap_or_default(),
                health: r.health.unwrap_or(Health::Unknown) as i32,
                applied: r.applied,
                message: r.message.clone(),
            })
        })
        .collect();
    WorkStatus {
        work_name: name.to_owned(),
        observed_generation: w.generation,
        applied,
        message,
        manifests,
    }
}

async fn send(
    tx: &mpsc::Sender<AgentMessage>,
    m: agent_message::Message,
) -> Result<(), SessionError> {
    tx.send(msg(m)).await.map_err(|_| SessionError::Closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_bound() {
        let base = Duration::from_secs(5);
        let waits: Vec<u64> = [1, 2, 3, 4, 5, 6, 100, u32::MAX]
            .into_iter()
            .map(|f| retry_delay(base, f).as_secs())
            .collect();
        assert_eq!(waits, [5, 10, 20, 30, 30, 30, 30, 30]);
        assert_eq!(retry_delay(base, 0), base);
    }

    #[test]
    fn parses_works() -> Result<(), String> {
        let w = parse_work(br#"{"metadata":{"generation":3,"annotations":{"work.karmada.io/conflict-resolution":"overwrite"}},"spec":{"workload":{"manifests":[{"kind":"ConfigMap"}]},"suspendDispatching":true}}"#)?;
        assert_eq!(w.generation, 3);
        assert_eq!(w.manifests.len(), 1);
        assert!(w.suspended);
        assert!(w.overwrite);
        let empty = parse_work(br#"{"metadata":{}}"#)?;
        assert!(empty.manifests.is_empty() && !empty.overwrite && !empty.suspended);
        assert!(!empty.preserve);
        let kept = parse_work(br#"{"metadata":{},"spec":{"preserveResourcesOnDeletion":true}}"#)?;
        assert!(kept.preserve);
        assert!(parse_work(b"nope").is_err());
        Ok(())
    }
}
