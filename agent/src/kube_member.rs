//! The member cluster through its Kubernetes API.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_proto::v1::{ApiEnablement, ApiResource as ProtoResource, Heartbeat};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy,
};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::guard::{GuardRails, Target};
use crate::member::{self, Applied, Member, MemberError, MemberEvent, ObjectRef};
use crate::quantity::ResourceSum;

/// The field manager of everything the agent applies.
pub const FIELD_MANAGER: &str = "flotilla-agent";
/// How often discovery is refreshed for heartbeats even when nothing asks for it: a CRD
/// installed in the member reaches the hub's API enablements (and so becomes schedulable)
/// within this plus one heartbeat. Aggregated discovery is two requests.
const DISCOVERY_MAX_AGE: Duration = Duration::from_secs(30);
/// Page size when summing nodes and pods.
const PAGE: u32 = 500;

/// A member cluster reached through `client`.
pub struct KubeMember {
    client: Client,
    discovery: tokio::sync::Mutex<Option<(Arc<Discovery>, Instant)>>,
    namespaces: Mutex<HashSet<String>>,
    watched: Mutex<HashSet<(String, String, String)>>,
    events: mpsc::Sender<MemberEvent>,
    shutdown: CancellationToken,
    enablements_hash: Mutex<String>,
    version: Mutex<Option<String>>,
    guard: GuardRails,
    exports: crate::discovery::watches::Watches,
}

impl std::fmt::Debug for KubeMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeMember").finish_non_exhaustive()
    }
}

fn api_err(e: kube::Error) -> MemberError {
    MemberError::Api(match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.reason),
        other => other.to_string(),
    })
}

impl KubeMember {
    /// A member over `client`; watch events of applied objects go to `events`.
    pub fn new(
        client: Client,
        events: mpsc::Sender<MemberEvent>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            exports: crate::discovery::watches::Watches::new(client.clone()),
            client,
            discovery: tokio::sync::Mutex::new(None),
            namespaces: Mutex::new(HashSet::new()),
            watched: Mutex::new(HashSet::new()),
            events,
            shutdown,
            enablements_hash: Mutex::new(String::new()),
            guard: GuardRails::default(),
            version: Mutex::new(None),
        }
    }

    /// The same member, applying only what `guard` allows.
    pub fn with_guard_rails(mut self, guard: GuardRails) -> Self {
        self.guard = guard;
        self
    }

    async fn discovery(&self, refresh: bool) -> Result<Arc<Discovery>, MemberError> {
        let mut d = self.discovery.lock().await;
        if let Some((disc, at)) = d.as_ref()
            && !refresh
            && at.elapsed() < DISCOVERY_MAX_AGE
        {
            return Ok(disc.clone());
        }
        let fresh = Arc::new(
            Discovery::new(self.client.clone())
                .run_aggregated()
                .await
                .map_err(api_err)?,
        );
        *d = Some((fresh.clone(), Instant::now()));
        Ok(fresh)
    }

    async fn resolve(
        &self,
        gvk: &GroupVersionKind,
    ) -> Result<(ApiResource, ApiCapabilities), MemberError> {
        if let Some(r) = self.discovery(false).await?.resolve_gvk(gvk) {
            return Ok(r);
        }
        // CRDs arrive after the agent started: look again before giving up.
        self.discovery(true).await?.resolve_gvk(gvk).ok_or_else(|| {
            MemberError::UnknownKind(format!("{}/{} {}", gvk.group, gvk.version, gvk.kind))
        })
    }

    async fn ensure_namespace(&self, ns: &str) -> Result<(), MemberError> {
        if self
            .namespaces
            .lock()
            .map(|n| n.contains(ns))
            .unwrap_or(false)
        {
            return Ok(());
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        if api.get_opt(ns).await.map_err(api_err)?.is_none() {
            let obj: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))
                .map_err(|e| MemberError::Invalid(e.to_string()))?;
            match api.create(&Default::default(), &obj).await {
                Ok(_) => tracing::info!(namespace = %ns, "created namespace"),
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(api_err(e)),
            }
        }
        if let Ok(mut n) = self.namespaces.lock() {
            n.insert(ns.to_owned());
        }
        Ok(())
    }

    /// The API of `target` when it exists and is managed for `work`.
    async fn managed_api(
        &self,
        work: &str,
        target: &ObjectRef,
    ) -> Result<Option<Api<DynamicObject>>, MemberError> {
        let ar = ApiResource {
            group: target.group.clone(),
            version: target.version.clone(),
            api_version: if target.group.is_empty() {
                target.version.clone()
            } else {
                format!("{}/{}", target.group, target.version)
            },
            kind: target.kind.clone(),
            plural: target.resource.clone(),
        };
        let api = self.api(&ar, &target.namespace);
        let Some(live) = api.get_opt(&target.name).await.map_err(api_err)? else {
            return Ok(None);
        };
        let live = serde_json::to_value(&live).map_err(|e| MemberError::Api(e.to_string()))?;
        Ok(member::belongs_to(&live, work).then_some(api))
    }

    fn api(&self, ar: &ApiResource, namespace: &str) -> Api<DynamicObject> {
        if namespace.is_empty() {
            Api::all_with(self.client.clone(), ar)
        } else {
            Api::namespaced_with(self.client.clone(), namespace, ar)
        }
    }

    /// Watches managed objects of `ar`'s kind (once per kind), forwarding changes.
    fn watch(&self, ar: &ApiResource) {
        let key = (ar.group.clone(), ar.version.clone(), ar.kind.clone());
        let new = self
            .watched
            .lock()
            .map(|mut w| w.insert(key))
            .unwrap_or(false);
        if !new {
            return;
        }
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), ar);
        let cfg = watcher::Config::default().labels(flotilla_proto::WORK_LABEL);
        let tx = self.events.clone();
        let shutdown = self.shutdown.clone();
        let ar = ar.clone();
        tokio::spawn(async move {
            let mut stream = watcher(api, cfg).default_backoff().boxed();
            loop {
                let ev = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    ev = stream.next() => ev,
                };
                let (obj, deleted) = match ev {
                    Some(Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o))) => (o, false),
                    Some(Ok(watcher::Event::Delete(o))) => (o, true),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        tracing::debug!(kind = %ar.kind, error = %e, "watch error; retrying");
                        continue;
                    }
                    None => return,
                };
                let Ok(v) = serde_json::to_value(&obj) else {
                    continue;
                };
                let Some(work) = member::work_of(&v) else {
                    continue;
                };
                let target = ObjectRef {
                    group: ar.group.clone(),
                    version: ar.version.clone(),
                    kind: ar.kind.clone(),
                    resource: ar.plural.clone(),
                    namespace: obj.namespace().unwrap_or_default(),
                    name: obj.name_any(),
                };
                if tx
                    .send(MemberEvent {
                        work,
                        target,
                        object: (!deleted).then_some(v),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }

    async fn enablements(&self) -> Result<Vec<ApiEnablement>, MemberError> {
        let d = self.discovery(false).await?;
        let mut out = Vec::new();
        for g in d.groups() {
            for v in g.versions() {
                let mut resources: Vec<ProtoResource> = g
                    .versioned_resources(v)
                    .into_iter()
                    .filter(|(ar, _)| !ar.plural.contains('/'))
                    .map(|(ar, _)| ProtoResource {
                        name: ar.plural,
                        kind: ar.kind,
                    })
                    .collect();
                resources.sort_by(|a, b| a.name.cmp(&b.name));
                let gv = if g.name().is_empty() {
                    v.to_owned()
                } else {
                    format!("{}/{v}", g.name())
                };
                out.push(ApiEnablement {
                    group_version: gv,
                    resources,
                });
            }
        }
        out.sort_by(|a, b| a.group_version.cmp(&b.group_version));
        Ok(out)
    }

    async fn facts(&self, hb: &mut Heartbeat) -> Result<(), kube::Error> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let mut allocatable = ResourceSum::default();
        let mut lp = ListParams::default().limit(PAGE);
        loop {
            let page = nodes.list(&lp).await?;
            for n in &page.items {
                hb.nodes_total += 1;
                let status = n.status.as_ref();
                let ready = status
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                if ready {
                    hb.nodes_ready += 1;
                }
                for (k, q) in status
                    .and_then(|s| s.allocatable.as_ref())
                    .into_iter()
                    .flatten()
                {
                    allocatable.add(k, &q.0);
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(c) => lp = lp.continue_token(&c),
                None => break,
            }
        }
        let pods: Api<Pod> = Api::all(self.client.clone());
        let (mut allocated, mut allocating) = (ResourceSum::default(), ResourceSum::default());
        let (mut n_allocated, mut n_allocating) = (0i128, 0i128);
        let mut lp = ListParams::default().limit(PAGE);
        loop {
            let page = pods.list(&lp).await?;
            for p in &page.items {
                let phase = p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .unwrap_or("");
                if matches!(phase, "Succeeded" | "Failed") {
                    continue;
                }
                let Some(spec) = p.spec.as_ref() else {
                    continue;
                };
                let bound = spec.node_name.as_deref().is_some_and(|n| !n.is_empty());
                let sum = if bound {
                    &mut allocated
                } else {
                    &mut allocating
                };
                for c in &spec.containers {
                    for (k, q) in c
                        .resources
                        .as_ref()
                        .and_then(|r| r.requests.as_ref())
                        .into_iter()
                        .flatten()
                    {
                        sum.add(k, &q.0);
                    }
                }
                if bound {
                    n_allocated += 1
                } else {
                    n_allocating += 1
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(c) => lp = lp.continue_token(&c),
                None => break,
            }
        }
        allocated.add_units("pods", n_allocated);
        allocating.add_units("pods", n_allocating);
        hb.allocatable = allocatable.to_map();
        hb.allocated = allocated.to_map();
        hb.allocating = allocating.to_map();
        Ok(())
    }
}

impl Member for KubeMember {
    async fn apply(
        &self,
        work: &str,
        manifest: &Value,
        overwrite: bool,
    ) -> Result<Applied, MemberError> {
        let api_version = manifest
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = manifest
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = manifest
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if api_version.is_empty() || kind.is_empty() || name.is_empty() {
            return Err(MemberError::Invalid(
                "a manifest needs apiVersion, kind and metadata.name".into(),
            ));
        }
        let (group, version) = member::group_version(api_version);
        let (ar, caps) = self
            .resolve(&GroupVersionKind::gvk(group, version, kind))
            .await?;
        let namespace = if caps.scope == Scope::Namespaced {
            manifest
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("default")
                .to_owned()
        } else {
            String::new()
        };
        let target = ObjectRef {
            group: ar.group.clone(),
            version: ar.version.clone(),
            kind: ar.kind.clone(),
            resource: ar.plural.clone(),
            namespace: namespace.clone(),
            name: name.to_owned(),
        };
        // The member's own rules come before anything is created (its namespace included).
        if let Err(r) = self.guard.check(Target {
            group: &ar.group,
            kind: &ar.kind,
            namespace: &namespace,
            name,
        }) {
            return Err(MemberError::Refused {
                target: Box::new(target),
                message: r.to_string(),
            });
        }
        let overwrite = self.guard.may_take_over(overwrite);
        if !namespace.is_empty() {
            self.ensure_namespace(&namespace).await?;
        }
        let api = self.api(&ar, &namespace);
        self.watch(&ar);
        let live = match api.get_opt(name).await.map_err(api_err)? {
            Some(l) => Some(serde_json::to_value(&l).map_err(|e| MemberError::Api(e.to_string()))?),
            None => None,
        };
        let manifest = member::retained(manifest, live.as_ref());
        let desired = member::prepare(
            &manifest,
            work,
            (!namespace.is_empty()).then_some(namespace.as_str()),
        )?;
        if let Some(live) = live {
            if !member::is_managed(&live) && !overwrite {
                return Err(MemberError::Conflict(target.to_string()));
            }
            if member::up_to_date(&live, &desired) {
                return Ok(Applied {
                    target,
                    object: live,
                    changed: false,
                });
            }
        }
        let obj: DynamicObject =
            serde_json::from_value(desired).map_err(|e| MemberError::Invalid(e.to_string()))?;
        let applied = api
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&obj),
            )
            .await
            .map_err(api_err)?;
        let object = serde_json::to_value(&applied).map_err(|e| MemberError::Api(e.to_string()))?;
        Ok(Applied {
            target,
            object,
            changed: true,
        })
    }

    async fn delete(&self, work: &str, target: &ObjectRef) -> Result<(), MemberError> {
        let Some(api) = self.managed_api(work, target).await? else {
            tracing::info!(%target, %work, "nothing to delete: the object is absent or not managed by this work");
            return Ok(());
        };
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        match api.delete(&target.name, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(api_err(e)),
        }
    }

    async fn release(&self, work: &str, target: &ObjectRef) -> Result<(), MemberError> {
        let Some(api) = self.managed_api(work, target).await? else {
            return Ok(());
        };
        let patch = serde_json::json!({"metadata": {
            "labels": {flotilla_proto::MANAGED_LABEL: null, flotilla_proto::WORK_LABEL: null},
            "annotations": {
                flotilla_proto::MANIFEST_HASH_ANNOTATION: null,
                flotilla_proto::WORK_NAME_ANNOTATION: null,
                flotilla_proto::WORK_NAMESPACE_ANNOTATION: null,
            },
        }});
        match api
            .patch(
                &target.name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(api_err(e)),
        }
    }

    async fn managed_objects(&self) -> Result<Vec<(String, ObjectRef)>, MemberError> {
        let d = self.discovery(true).await?;
        let mut out = Vec::new();
        let lp = ListParams::default().labels(&format!(
            "{}=true,{}",
            flotilla_proto::MANAGED_LABEL,
            flotilla_proto::WORK_LABEL
        ));
        for g in d.groups() {
            for (ar, caps) in g.recommended_resources() {
                if !caps.supports_operation(verbs::LIST)
                    || !caps.supports_operation(verbs::DELETE)
                    || ar.plural.contains('/')
                {
                    continue;
                }
                let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
                let list = match api.list_metadata(&lp).await {
                    Ok(l) => l,
                    Err(kube::Error::Api(e)) if matches!(e.code, 403..=405) => continue,
                    Err(e) => return Err(api_err(e)),
                };
                for o in list.items {
                    let Some(work) = o
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(flotilla_proto::WORK_NAME_ANNOTATION))
                        .cloned()
                    else {
                        continue;
                    };
                    out.push((
                        work,
                        ObjectRef {
                            group: ar.group.clone(),
                            version: ar.version.clone(),
                            kind: ar.kind.clone(),
                            resource: ar.plural.clone(),
                            namespace: o.metadata.namespace.clone().unwrap_or_default(),
                            name: o.metadata.name.clone().unwrap_or_default(),
                        },
                    ));
                }
            }
        }
        Ok(out)
    }

    async fn measure(
        &self,
        target: &crate::autoscaling::MeasureTarget,
    ) -> flotilla_proto::v1::WorkloadMetricsReport {
        let mut plurals = std::collections::HashMap::new();
        for m in &target.metrics {
            if let crate::autoscaling::MetricRequest::Object {
                api_version, kind, ..
            } = m
            {
                let (group, version) = member::group_version(api_version);
                let gvk = GroupVersionKind::gvk(group, version, kind);
                if let Ok((ar, _)) = self.resolve(&gvk).await {
                    let segment = if ar.group.is_empty() {
                        ar.plural.clone()
                    } else {
                        format!("{}.{}", ar.plural, ar.group)
                    };
                    plurals.insert((api_version.clone(), kind.clone()), segment);
                }
            }
        }
        crate::measure::measure(&self.client, target, &plurals).await
    }

    async fn exported(
        &self,
        services: &[crate::discovery::ServiceRef],
    ) -> std::collections::BTreeMap<crate::discovery::ServiceRef, flotilla_proto::v1::ExportedService>
    {
        self.exports.read(services)
    }

    async fn endpoints_changed(&self) {
        self.exports.changed().await;
    }

    async fn heartbeat(&self, with_enablements: bool) -> Heartbeat {
        let mut hb = Heartbeat::default();
        let req = http::Request::get("/readyz").body(Vec::new());
        let ready = match req {
            Ok(r) => {
                tokio::time::timeout(Duration::from_secs(10), self.client.request_text(r)).await
            }
            Err(_) => return hb,
        };
        match ready {
            Ok(Ok(_)) => hb.api_reachable = true,
            Ok(Err(e)) => {
                hb.message = format!("the member API server is not ready: {e}");
                return hb;
            }
            Err(_) => {
                hb.message = "the member API server did not answer /readyz within 10s".into();
                return hb;
            }
        }
        let cached = self.version.lock().ok().and_then(|v| v.clone());
        hb.kubernetes_version = match cached {
            Some(v) => v,
            None => match self.client.apiserver_version().await {
                Ok(info) => {
                    if let Ok(mut v) = self.version.lock() {
                        *v = Some(info.git_version.clone());
                    }
                    info.git_version
                }
                Err(_) => String::new(),
            },
        };
        if let Ok(en) = self.enablements().await {
            let hash = hex::encode(Sha256::digest(format!("{en:?}").as_bytes()));
            let changed = self.enablements_hash.lock().map(|mut h| {
                let changed = *h != hash;
                *h = hash;
                changed
            });
            if with_enablements || changed.unwrap_or(true) {
                hb.api_enablements = en;
                hb.api_enablements_included = true;
            }
        }
        if let Err(e) = self.facts(&mut hb).await {
            tracing::warn!(error = %e, "collecting node and pod facts failed");
        }
        hb
    }
}
