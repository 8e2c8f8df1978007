//! From one store change to the controller keys it affects.
//!
//! Decided from the event's previous and new bytes and the cache's indexes (already updated
//! with the event), so a change costs work in proportion to what it touches, not to what is
//! stored. A write that changes only what no controller reads (a template's status, a
//! binding's status, a cluster's reported capacity) enqueues nothing.

use std::collections::BTreeSet;

use bytes::Bytes;
use flotilla_karmada::scheduler::ClusterInfo;
use flotilla_karmada::selectors::affinity_matches;
use flotilla_karmada::types::Placement;
use serde_json::Value;

use super::cache::{Class, State};
use super::keys::{key_name, key_namespace, policy_id, prefix};

/// The keys to enqueue, per controller.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Keys {
    /// Template keys for the detector.
    pub detector: BTreeSet<String>,
    /// Binding keys for the scheduler.
    pub scheduler: BTreeSet<String>,
    /// Binding keys for the renderer.
    pub renderer: BTreeSet<String>,
    /// Binding keys for the status aggregator.
    pub status: BTreeSet<String>,
    /// Namespace keys for namespace propagation.
    pub namespaces: BTreeSet<String>,
    /// Depending binding keys for the dependencies distributor.
    pub dependencies: BTreeSet<String>,
    /// Object keys for the garbage collector.
    pub gc: BTreeSet<String>,
    /// Namespace keys for the namespace lifecycle controller.
    pub namespace_lifecycle: BTreeSet<String>,
    /// Deployment keys for the revision history.
    pub history: BTreeSet<String>,
    /// Cluster keys for the cluster taints.
    pub taints: BTreeSet<String>,
    /// Binding keys for the failover.
    pub failover: BTreeSet<String>,
    /// WorkloadRebalancer keys.
    pub rebalancer: BTreeSet<String>,
    /// FederatedHPA keys.
    pub autoscaler: BTreeSet<String>,
    /// CronFederatedHPA keys.
    pub cron: BTreeSet<String>,
    /// Keys of templates that HorizontalPodAutoscaler templates scale.
    pub hpa_sync: BTreeSet<String>,
    /// Services (`namespace/name`) for service discovery.
    pub discovery: BTreeSet<String>,
}

impl Keys {
    /// Whether nothing is to be done.
    pub fn is_empty(&self) -> bool {
        self.detector.is_empty()
            && self.scheduler.is_empty()
            && self.renderer.is_empty()
            && self.status.is_empty()
            && self.namespaces.is_empty()
            && self.dependencies.is_empty()
            && self.gc.is_empty()
            && self.namespace_lifecycle.is_empty()
            && self.history.is_empty()
            && self.taints.is_empty()
            && self.failover.is_empty()
            && self.rebalancer.is_empty()
            && self.autoscaler.is_empty()
            && self.cron.is_empty()
            && self.hpa_sync.is_empty()
            && self.discovery.is_empty()
    }

    /// Queues a binding for every controller keyed by bindings.
    pub fn binding(&mut self, key: &str) {
        self.scheduler.insert(key.to_owned());
        self.renderer.insert(key.to_owned());
        self.status.insert(key.to_owned());
        self.dependencies.insert(key.to_owned());
        self.failover.insert(key.to_owned());
    }
}

fn parse(b: Option<&Bytes>) -> Option<Value> {
    b.and_then(|b| serde_json::from_slice(b).ok())
}

/// An object without what the server and status writers change on their own, nor the
/// revision annotation the revision history writes (only the history reads it: it is never
/// propagated, see `rendering`).
fn content(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["resourceVersion", "managedFields", "generation"] {
            md.remove(k);
        }
        if let Some(a) = md.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove(super::history::REVISION_ANNOTATION);
            if a.is_empty() {
                md.remove("annotations");
            }
        }
    }
    v
}

fn content_changed(prev: &Option<Value>, new: &Option<Value>) -> bool {
    match (prev, new) {
        (Some(p), Some(n)) => content(p) != content(n),
        _ => true,
    }
}

/// The scheduler's view of a cluster object, without capacity.
fn fit_view(v: &Value) -> Option<ClusterInfo> {
    ClusterInfo::from_cluster_json(v)
        .ok()
        .map(|c| super::cache::fit_view(&c))
}

/// Whether a placement's cluster affinity (any of its terms) admits the cluster.
fn placement_admits(p: &Placement, c: &ClusterInfo) -> bool {
    if p.cluster_affinities.is_empty() {
        affinity_matches(p.cluster_affinity.as_ref(), c)
    } else {
        p.cluster_affinities
            .iter()
            .any(|t| affinity_matches(Some(&t.affinity()), c))
    }
}

/// Whether a workload's revision history may need a write: it is new, or its spec changed.
/// A change of the revision annotation alone is the history's own write (or a hand edit the
/// periodic resync puts right): looking again would read every record for nothing.
fn history_changed(key: &str, prev: &Option<Value>, new: &Option<Value>) -> bool {
    if !super::keys::has_history(key) || new.is_none() {
        return false;
    }
    let spec = |v: &Option<Value>| v.as_ref().and_then(|v| v.get("spec").cloned());
    prev.is_none() || spec(prev) != spec(new)
}

/// The keys one store change affects. `new` is `None` for a delete.
pub fn keys_for(state: &State, key: &str, prev: Option<&Bytes>, new: Option<&Bytes>) -> Keys {
    let mut out = Keys::default();
    let class = state.classify(key);
    if matches!(class, Class::Other) {
        return out;
    }
    let prev = parse(prev);
    let new = parse(new);
    match class {
        Class::Template(res) => {
            if history_changed(key, &prev, &new) {
                out.history.insert(key.to_owned());
            }
            // An autoscaler whose target appears or goes reports it at once.
            let mut scaled_by_hpa = false;
            for a in state.scaling.scaling(key) {
                if a.starts_with(prefix::HPAS) {
                    scaled_by_hpa = true;
                } else if prev.is_none() || new.is_none() {
                    if a.starts_with(prefix::FHPA) {
                        out.autoscaler.insert(a.clone());
                    } else {
                        out.cron.insert(a.clone());
                    }
                }
            }
            if scaled_by_hpa && content_changed(&prev, &new) {
                out.hpa_sync.insert(key.to_owned());
            }
            // A HorizontalPodAutoscaler's members' replicas (its aggregated status) set its
            // target's, before and after a change of target.
            if key.starts_with(prefix::HPAS) {
                for v in prev.iter().chain(new.iter()) {
                    out.hpa_sync.extend(state.scale_target_key(key, v));
                }
            }
            if !content_changed(&prev, &new) {
                return out;
            }
            discovery_for_template(state, key, &mut out);
            if res.group.is_empty() && res.kind == "Namespace" {
                out.namespaces.insert(key.to_owned());
                return out;
            }
            out.detector.insert(key.to_owned());
            if let Some(b) = state.binding_key_of_template(key)
                && state.binding(&b).is_some()
            {
                out.renderer.insert(b.clone());
                out.status.insert(b.clone());
                // Its dependencies may have changed.
                out.dependencies.insert(b);
            }
            // Workloads that depend on it: a dependency that appears or goes changes their
            // attached bindings.
            if prev.is_none() || new.is_none() {
                for t in state.dependents_of(key) {
                    if let Some(b) = state.binding_key_of_template(&t)
                        && state.binding(&b).is_some()
                    {
                        out.dependencies.insert(b);
                    }
                }
            }
        }
        Class::Policy => {
            if !content_changed(&prev, &new) {
                return out;
            }
            let cluster_scoped = key.starts_with(prefix::CPP);
            let ns = key_namespace(key).filter(|_| !cluster_scoped);
            let id = policy_id(cluster_scoped, ns.unwrap_or(""), key_name(key));
            out.detector.extend(state.claimed_by(&id));
            for p in prev.iter().chain(new.iter()) {
                selected_templates(state, p, ns, &mut out.detector);
            }
        }
        Class::Override => {
            if !content_changed(&prev, &new) {
                return out;
            }
            let scope = if key.starts_with(prefix::OP) {
                key_namespace(key).map(|ns| format!("{}{ns}/", prefix::RB))
            } else {
                None
            };
            out.renderer.extend(
                state
                    .binding_keys()
                    .filter(|b| scope.as_ref().is_none_or(|s| b.starts_with(s.as_str())))
                    .cloned(),
            );
        }
        Class::Cluster => {
            let taint_inputs = |v: &Option<Value>| {
                v.as_ref().map(|v| {
                    (
                        v.pointer("/status/conditions").cloned(),
                        v.pointer("/spec/taints").cloned(),
                        v.pointer("/metadata/labels").cloned(),
                    )
                })
            };
            if new.is_some() && taint_inputs(&prev) != taint_inputs(&new) {
                out.taints.insert(key.to_owned());
            }
            let before = prev.as_ref().and_then(fit_view);
            let after = new.as_ref().and_then(fit_view);
            if before == after {
                return out;
            }
            let name = key_name(key);
            for p in state.placements() {
                let admits = |c: &Option<ClusterInfo>| {
                    c.as_ref()
                        .is_some_and(|c| placement_admits(&p.placement, c))
                };
                if admits(&before) || admits(&after) {
                    out.scheduler.extend(p.bindings.iter().cloned());
                }
            }
            // Readiness and region decide which providers serve which consumers.
            out.discovery.extend(state.discovery_services());
            let on = state.bindings_on(name);
            out.scheduler.extend(on.iter().cloned());
            out.failover.extend(on.iter().cloned());
            out.renderer.extend(on);
            if before.is_none() || after.is_none() {
                out.namespaces.extend(state.namespace_keys());
            }
        }
        Class::TaintPolicy => {
            if content_changed(&prev, &new) {
                out.taints.extend(state.cluster_keys());
            }
        }
        Class::Rebalancer => {
            if new.is_some() && content_changed(&prev, &new) {
                out.rebalancer.insert(key.to_owned());
            }
        }
        Class::Autoscaler => {
            if !content_changed(&prev, &new) {
                return out;
            }
            if key.starts_with(prefix::CRON_FHPA) {
                out.cron.insert(key.to_owned());
                return out;
            }
            if new.is_some() {
                out.autoscaler.insert(key.to_owned());
            }
            // The Works of its targets, before and after, carry the metrics to report.
            let spec = |v: &Option<Value>| v.as_ref().map(|v| v.get("spec").cloned());
            if spec(&prev) != spec(&new) {
                for v in prev.iter().chain(new.iter()) {
                    if let Some(t) = state.scale_target_key(key, v)
                        && let Some(b) = state.binding_key_of_template(&t)
                        && state.binding(&b).is_some()
                    {
                        out.renderer.insert(b);
                    }
                }
            }
        }
        Class::Binding => {
            // An eviction task waits for the new placement's health, which the status says.
            let evicting = new
                .as_ref()
                .and_then(|b| b.pointer("/spec/gracefulEvictionTasks"))
                .and_then(Value::as_array)
                .is_some_and(|t| !t.is_empty());
            // Application failover reads the health the status reports too.
            let application = new
                .as_ref()
                .is_some_and(|b| b.pointer("/spec/failover/application").is_some());
            if (evicting || application)
                && prev.as_ref().and_then(|b| b.get("status"))
                    != new.as_ref().and_then(|b| b.get("status"))
            {
                out.failover.insert(key.to_owned());
            }
            let spec = |v: &Option<Value>| {
                v.as_ref().map(|v| {
                    (
                        v.get("spec").cloned(),
                        v.pointer("/metadata/deletionTimestamp").cloned(),
                    )
                })
            };
            if spec(&prev) != spec(&new) {
                // Where a ServiceExport or ServiceImport is placed is where its Service is
                // exported or imported.
                for b in prev.iter().chain(new.iter()) {
                    if let Some(t) = state.template_key_of_binding(b) {
                        discovery_for_template(state, &t, &mut out);
                    }
                }
                out.binding(key);
                // The depending bindings of an attached one, before and after.
                for b in prev.iter().chain(new.iter()) {
                    for e in b
                        .pointer("/spec/requiredBy")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        out.dependencies
                            .insert(super::dependencies::required_by_key(e));
                    }
                }
            }
            match &new {
                None => {
                    if let Some(t) = prev.as_ref().and_then(|b| state.template_key_of_binding(b)) {
                        out.detector.insert(t);
                    }
                }
                Some(b) => {
                    if let Some(t) = state.template_key_of_binding(b)
                        && !state.has_template(&t)
                    {
                        out.detector.insert(t);
                    }
                }
            }
        }
        Class::Mcs => {
            if content_changed(&prev, &new)
                && let Some(svc) = key.strip_prefix(prefix::MCS)
            {
                out.discovery.insert(svc.to_owned());
                export_changed(state, svc, &mut out);
            }
        }
        Class::ImportedSlice => {
            for v in prev.iter().chain(new.iter()) {
                out.discovery
                    .extend(super::discovery_index::service_of_copy(v));
            }
        }
        Class::Work => {
            let Some(owner) = new
                .as_ref()
                .or(prev.as_ref())
                .and_then(|w| state.work_owner_of(w))
            else {
                return out;
            };
            if let Some(svc) = owner.strip_prefix("svc:") {
                // A discovery Work deleted by hand is written again.
                if new.is_none() {
                    out.discovery.insert(svc.to_owned());
                }
                return out;
            }
            let ns_owner = owner.strip_prefix("ns:").map(str::to_owned);
            match (&prev, &new) {
                (_, None) => match ns_owner {
                    Some(ns) => {
                        out.namespaces.insert(format!("{}{ns}", prefix::NAMESPACES));
                    }
                    None => {
                        out.renderer.insert(owner.clone());
                        out.status.insert(owner);
                    }
                },
                (None, Some(_)) => {
                    if ns_owner.is_none() {
                        out.status.insert(owner);
                    }
                }
                (Some(p), Some(n)) => {
                    if ns_owner.is_none() && p.get("status") != n.get("status") {
                        out.status.insert(owner);
                    }
                }
            }
        }
        Class::Other => {}
    }
    out
}

/// A Service, ServiceExport or ServiceImport template changed (or where it is placed): its
/// Service's discovery, and for an export, the Service's Works, which say where it is
/// exported.
fn discovery_for_template(state: &State, key: &str, out: &mut Keys) {
    for p in [
        prefix::SERVICES,
        prefix::SERVICE_EXPORTS,
        prefix::SERVICE_IMPORTS,
    ] {
        if let Some(svc) = key.strip_prefix(p) {
            out.discovery.insert(svc.to_owned());
            if p == prefix::SERVICE_EXPORTS {
                export_changed(state, svc, out);
            }
        }
    }
}

/// Where a Service is exported changed: its Works carry the export annotation.
fn export_changed(state: &State, svc: &str, out: &mut Keys) {
    if let Some(b) = state.binding_key_of_template(&format!("{}{svc}", prefix::SERVICES))
        && state.binding(&b).is_some()
    {
        out.renderer.insert(b);
    }
}

/// Adds the templates a policy's resource selectors may select (label selectors are left to
/// the detector).
fn selected_templates(state: &State, policy: &Value, ns: Option<&str>, out: &mut BTreeSet<String>) {
    let selectors = policy
        .pointer("/spec/resourceSelectors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for sel in selectors {
        let av = sel.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let group = av.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let Some(kind) = sel.get("kind").and_then(Value::as_str) else {
            continue;
        };
        let Some(res) = state.resource_of_kind(group, kind) else {
            continue;
        };
        let sel_ns = ns.or_else(|| sel.get("namespace").and_then(Value::as_str));
        let sel_name = sel.get("name").and_then(Value::as_str);
        for t in state.templates_under(&res.key_prefix()) {
            if let Some(n) = sel_ns
                && key_namespace(t) != Some(n)
            {
                continue;
            }
            if let Some(n) = sel_name
                && key_name(t) != n
            {
                continue;
            }
            out.insert(t.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::super::cache::tests::state;
    use super::*;

    fn b(v: Value) -> Bytes {
        Bytes::from(serde_json::to_vec(&v).unwrap())
    }

    fn apply(s: &mut State, key: &str, prev: Option<Value>, new: Option<Value>) -> Keys {
        match &new {
            Some(n) => s.upsert(key, &b(n.clone())),
            None => s.delete(key),
        }
        keys_for(s, key, prev.map(b).as_ref(), new.map(b).as_ref())
    }

    const T: &str = "/apps/deployments/demo/web";
    const B: &str = "/work.karmada.io/resourcebindings/demo/web-deployment";

    fn binding(clusters: Value) -> Value {
        json!({"metadata": {"name": "web-deployment", "namespace": "demo"},
            "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web"},
                "placement": {"clusterAffinity": {"labelSelector": {"matchLabels": {"tier": "edge"}}}},
                "clusters": clusters}})
    }

    fn deployment(image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "demo", "resourceVersion": "1"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    fn seeded() -> State {
        let mut s = state();
        apply(&mut s, T, None, Some(deployment("a")));
        apply(&mut s, B, None, Some(binding(json!([{"name": "m1"}]))));
        s
    }

    #[test]
    fn service_discovery_follows_exports_imports_copies_and_its_own_works() {
        let mut s = state();
        let svc_key = "/core/services/shop/web";
        let svc_binding = "/work.karmada.io/resourcebindings/shop/web-service";
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}});
        let k = apply(&mut s, svc_key, None, Some(svc));
        assert_eq!(k.discovery, BTreeSet::from(["shop/web".to_owned()]));
        apply(
            &mut s,
            svc_binding,
            None,
            Some(
                json!({"metadata": {"name": "web-service", "namespace": "shop"},
            "spec": {"resource": {"apiVersion": "v1", "kind": "Service", "namespace": "shop", "name": "web"}}}),
            ),
        );
        // A ServiceExport is a template; it changes where its Service is exported.
        let export_key = "/multicluster.x-k8s.io/serviceexports/shop/web";
        let export = json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
            "metadata": {"name": "web", "namespace": "shop"}});
        assert!(matches!(s.classify(export_key), Class::Template(_)));
        let k = apply(&mut s, export_key, None, Some(export));
        assert_eq!(k.discovery, BTreeSet::from(["shop/web".to_owned()]));
        assert!(k.renderer.contains(svc_binding), "{k:?}");
        // So does a MultiClusterService (not a template).
        let mcs_key = "/networking.karmada.io/multiclusterservices/shop/web";
        assert_eq!(s.classify(mcs_key), Class::Mcs);
        let k = apply(
            &mut s,
            mcs_key,
            None,
            Some(json!({"metadata": {"name": "web", "namespace": "shop"},
            "spec": {"types": ["CrossCluster"]}})),
        );
        assert_eq!(k.discovery, BTreeSet::from(["shop/web".to_owned()]));
        assert!(k.renderer.contains(svc_binding));
        // A provider's slice copy reaches its Service; an ordinary slice nothing.
        let copy_key = "/discovery.k8s.io/endpointslices/shop/imported-m1-web-x";
        let copy = json!({"metadata": {"name": "imported-m1-web-x", "namespace": "shop",
            "labels": {"endpointslice.kubernetes.io/managed-by": "service-discovery.flotilla.io",
                       "multicluster.kubernetes.io/service-name": "web"}}});
        let k = apply(&mut s, copy_key, None, Some(copy));
        assert_eq!(k.discovery, BTreeSet::from(["shop/web".to_owned()]));
        assert_eq!(s.discovery.copies("shop/web").len(), 1);
        // A discovery Work deleted by hand is written again, and reaches no binding.
        let work_key = "/work.karmada.io/works/karmada-es-m1/import-web-1";
        let work = json!({"metadata": {"name": "import-web-1", "namespace": "karmada-es-m1",
            "labels": {"work.flotilla.io/service": "shop.web"}}});
        apply(&mut s, work_key, None, Some(work.clone()));
        let k = apply(&mut s, work_key, Some(work), None);
        assert_eq!(k.discovery, BTreeSet::from(["shop/web".to_owned()]));
        assert!(k.renderer.is_empty() && k.status.is_empty(), "{k:?}");
    }

    #[test]
    fn a_template_change_reaches_its_binding_but_its_status_does_not() {
        let mut s = seeded();
        let k = apply(&mut s, T, Some(deployment("a")), Some(deployment("b")));
        assert_eq!(k.detector, BTreeSet::from([T.to_owned()]));
        assert_eq!(k.renderer, BTreeSet::from([B.to_owned()]));
        assert!(k.scheduler.is_empty());
        let mut with_status = deployment("b");
        with_status["status"] = json!({"readyReplicas": 1});
        with_status["metadata"]["resourceVersion"] = json!("2");
        let k = apply(&mut s, T, Some(deployment("b")), Some(with_status));
        assert!(k.is_empty(), "{k:?}");
    }

    #[test]
    fn the_revision_annotation_alone_reaches_nothing() {
        let mut s = seeded();
        let mut annotated = deployment("a");
        annotated["metadata"]["annotations"] =
            json!({super::super::history::REVISION_ANNOTATION: "2"});
        let k = apply(&mut s, T, Some(deployment("a")), Some(annotated.clone()));
        assert_eq!(k, Keys::default());
        // Another annotation beside it is content.
        let mut more = annotated.clone();
        more["metadata"]["annotations"]["team"] = json!("web");
        let k = apply(&mut s, T, Some(annotated), Some(more));
        assert_eq!(k.renderer, BTreeSet::from([B.to_owned()]));
    }

    #[test]
    fn a_work_status_touches_only_its_binding() {
        let mut s = seeded();
        let other = "/work.karmada.io/resourcebindings/demo/other-deployment";
        apply(&mut s, other, None, Some(binding(json!([{"name": "m1"}]))));
        let w = "/work.karmada.io/works/karmada-es-m1/web";
        let work = |st: Value| {
            json!({"metadata": {"name": "web", "namespace": "karmada-es-m1",
            "labels": {"work.flotilla.io/binding": "demo.web-deployment"}}, "status": st})
        };
        apply(&mut s, w, None, Some(work(json!({}))));
        let k = apply(
            &mut s,
            w,
            Some(work(json!({}))),
            Some(work(
                json!({"conditions": [{"type": "Applied", "status": "True"}]}),
            )),
        );
        assert_eq!(
            k,
            Keys {
                status: BTreeSet::from([B.to_owned()]),
                ..Keys::default()
            }
        );
    }

    #[test]
    fn a_binding_status_write_enqueues_nothing() {
        let mut s = seeded();
        let mut with_status = binding(json!([{"name": "m1"}]));
        with_status["status"] = json!({"aggregatedStatus": []});
        let k = apply(
            &mut s,
            B,
            Some(binding(json!([{"name": "m1"}]))),
            Some(with_status),
        );
        assert!(k.is_empty(), "{k:?}");
    }

    #[test]
    fn clusters_reach_only_bindings_that_can_use_them() {
        let mut s = seeded();
        let c = "/cluster.karmada.io/clusters/m9";
        let cluster = |labels: Value, cpu: &str| {
            json!({"metadata": {"name": "m9", "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "resourceSummary": {"allocatable": {"cpu": cpu}}}})
        };
        // A cluster the placement does not admit: nothing to schedule.
        let k = apply(&mut s, c, None, Some(cluster(json!({"tier": "core"}), "4")));
        assert!(k.scheduler.is_empty(), "{k:?}");
        // Capacity changes alone: nothing.
        let k = apply(
            &mut s,
            c,
            Some(cluster(json!({"tier": "core"}), "4")),
            Some(cluster(json!({"tier": "core"}), "8")),
        );
        assert!(k.is_empty(), "{k:?}");
        // Relabelled into the placement's group: its bindings are scheduled again.
        let k = apply(
            &mut s,
            c,
            Some(cluster(json!({"tier": "core"}), "8")),
            Some(cluster(json!({"tier": "edge"}), "8")),
        );
        assert_eq!(k.scheduler, BTreeSet::from([B.to_owned()]));
    }

    #[test]
    fn a_policy_reaches_the_templates_it_selects() {
        let mut s = seeded();
        apply(
            &mut s,
            "/apps/deployments/other/x",
            None,
            Some(json!({"metadata": {"name": "x", "namespace": "other"}})),
        );
        let p = json!({"metadata": {"name": "p", "namespace": "demo"},
            "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}]}});
        let k = apply(
            &mut s,
            "/policy.karmada.io/propagationpolicies/demo/p",
            None,
            Some(p),
        );
        assert_eq!(k.detector, BTreeSet::from([T.to_owned()]));
    }
}
