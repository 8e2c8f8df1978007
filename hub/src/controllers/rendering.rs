//! The renderer: each binding's target clusters get a Work holding the template rendered for
//! that cluster (replica revision, then cluster and namespaced overrides), and Works no
//! longer wanted are removed. Targets are the scheduling result plus the clusters of the
//! bindings that need this one ([`super::dependencies`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::cache::State;
use super::keys::{BINDING_LABEL, prefix};
use super::short_hash;
use super::write::{Write, upsert};
/// Annotation on member objects: the template generation they were rendered from.
pub const TEMPLATE_GENERATION: &str = "resourcetemplate.karmada.io/generation";

/// The execution namespace of a cluster.
pub fn execution_namespace(cluster: &str) -> String {
    flotilla_proto::execution_namespace(cluster)
}

fn binding_id(b: &Value) -> String {
    let name = crate::api::meta::name(b);
    let key = match b.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{}{ns}/{name}", prefix::RB),
        None => format!("{}{name}", prefix::CRB),
    };
    super::keys::binding_id(&key)
}

/// Strips what the hub's copy has that a member must not receive.
pub fn prepare_manifest(template: &Value) -> Value {
    let mut m = template.clone();
    if let Some(obj) = m.as_object_mut() {
        obj.remove("status");
    }
    if let Some(md) = m.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "resourceVersion",
            "selfLink",
            "uid",
            "ownerReferences",
            "finalizers",
        ] {
            md.remove(k);
        }
        if let Some(a) = md.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            a.remove(crate::api::meta::DEPLOYMENT_REVISION_ANNOTATION);
            if a.is_empty() {
                md.remove("annotations");
            }
        }
    }
    let kind = template.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind == "Service"
        && let Some(spec) = m.get_mut("spec").and_then(Value::as_object_mut)
        && spec.get("clusterIP").and_then(Value::as_str) != Some("None")
    {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    m
}

/// Applies the cluster's overrides to a manifest already revised for that cluster.
pub fn render_for_cluster(
    manifest: &Value,
    cluster: &Value,
    cluster_overrides: &[Value],
    overrides: &[Value],
) -> Result<Value, String> {
    flotilla_karmada::overrides::apply_overrides(manifest, cluster, cluster_overrides, overrides)
        .map(|r| r.manifest)
        .map_err(|e| e.to_string())
}

fn work_for(
    binding: &Value,
    manifest: Value,
    template: &Value,
    cluster: &str,
    work_name: &str,
) -> Value {
    let mut manifest = manifest;
    let md = crate::api::meta::metadata_mut(&mut manifest);
    let labels = md.entry("labels").or_insert_with(|| json!({}));
    labels["karmada.io/managed"] = json!("true");
    let ann = md.entry("annotations").or_insert_with(|| json!({}));
    ann[TEMPLATE_GENERATION] = json!(
        template
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string()
    );
    ann["work.karmada.io/name"] = json!(work_name);
    ann["work.karmada.io/namespace"] = json!(execution_namespace(cluster));
    let mut spec = json!({"workload": {"manifests": [manifest]}});
    if let Some(c) = binding
        .pointer("/spec/conflictResolution")
        .and_then(Value::as_str)
    {
        spec["workload"]["manifests"][0]["metadata"]["annotations"]["work.karmada.io/conflict-resolution"] =
            json!(c.to_lowercase());
    }
    if binding
        .pointer("/spec/preserveResourcesOnDeletion")
        .and_then(Value::as_bool)
        == Some(true)
    {
        spec["preserveResourcesOnDeletion"] = json!(true);
    }
    if suspended_for(binding, cluster) {
        spec["suspendDispatching"] = json!(true);
    }
    let mut work = json!({
        "apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
        "metadata": {"name": work_name, "namespace": execution_namespace(cluster),
            "labels": {BINDING_LABEL: binding_id(binding)}},
        "spec": spec,
    });
    if let Some(c) = binding
        .pointer("/spec/conflictResolution")
        .and_then(Value::as_str)
    {
        // The agent reads the policy from the Work.
        work["metadata"]["annotations"] =
            json!({"work.karmada.io/conflict-resolution": c.to_lowercase()});
    }
    work
}

fn suspended_for(binding: &Value, cluster: &str) -> bool {
    let s = binding.pointer("/spec/suspension");
    if s.and_then(|s| s.get("dispatching"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        return true;
    }
    s.and_then(|s| s.pointer("/dispatchingOnClusters/clusterNames"))
        .and_then(Value::as_array)
        .is_some_and(|names| names.iter().any(|n| n == cluster))
}

/// The Work name of an object propagated by a binding.
pub fn work_name(t: &Value) -> String {
    let ns = t
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = crate::api::meta::name(t);
    let kind = t
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_lowercase();
    let base: String = format!("{name}-{kind}").chars().take(200).collect();
    format!("{base}-{}", short_hash(&format!("{ns}/{kind}/{name}")))
}

/// The Work name of a Service's imported endpoints in a consumer (`kind` is `import` for a
/// ServiceImport, `mcs` for a MultiClusterService).
pub fn discovery_work_name(kind: &str, ns: &str, name: &str) -> String {
    let base: String = format!("{kind}-{name}").chars().take(200).collect();
    format!("{base}-{}", short_hash(&format!("{kind}/{ns}/{name}")))
}

/// Names of ConfigMaps, Secrets, ServiceAccounts and PVCs a pod template references.
pub fn dependencies(t: &Value) -> Vec<(&'static str, String)> {
    let spec = t
        .pointer("/spec/template/spec")
        .or_else(|| t.pointer("/spec/jobTemplate/spec/template/spec"))
        .or_else(|| {
            if t.get("kind").and_then(Value::as_str) == Some("Pod") {
                t.get("spec")
            } else {
                None
            }
        });
    let Some(spec) = spec else { return vec![] };
    let mut out = BTreeSet::new();
    if let Some(sa) = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| *s != "default")
    {
        out.insert(("ServiceAccount", sa.to_owned()));
    }
    for v in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = v.pointer("/configMap/name").and_then(Value::as_str) {
            out.insert(("ConfigMap", n.to_owned()));
        }
        if let Some(n) = v.pointer("/secret/secretName").and_then(Value::as_str) {
            out.insert(("Secret", n.to_owned()));
        }
        if let Some(n) = v
            .pointer("/persistentVolumeClaim/claimName")
            .and_then(Value::as_str)
        {
            out.insert(("PersistentVolumeClaim", n.to_owned()));
        }
    }
    for s in spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = s.get("name").and_then(Value::as_str) {
            out.insert(("Secret", n.to_owned()));
        }
    }
    let containers = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| spec.get(*k).and_then(Value::as_array).into_iter().flatten());
    for c in containers {
        for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
            if let Some(n) = e
                .pointer("/valueFrom/configMapKeyRef/name")
                .and_then(Value::as_str)
            {
                out.insert(("ConfigMap", n.to_owned()));
            }
            if let Some(n) = e
                .pointer("/valueFrom/secretKeyRef/name")
                .and_then(Value::as_str)
            {
                out.insert(("Secret", n.to_owned()));
            }
        }
        for e in c
            .get("envFrom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = e.pointer("/configMapRef/name").and_then(Value::as_str) {
                out.insert(("ConfigMap", n.to_owned()));
            }
            if let Some(n) = e.pointer("/secretRef/name").and_then(Value::as_str) {
                out.insert(("Secret", n.to_owned()));
            }
        }
    }
    out.into_iter().collect()
}

/// How often a binding that holds a cluster's old replica count is looked at again.
pub const HOLD_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// What the renderer writes for one binding: the Works its target clusters should hold,
/// and the removal of its Works no longer wanted; with a later look when a cluster keeps its
/// old, higher replica count until the clusters that gain replicas are healthy.
pub fn decide(state: &State, key: &str) -> super::Decision {
    let mut held = false;
    let writes = decide_holding(state, key, &mut held);
    // Each write is one Work (created, updated or deleted): they do not depend on each other.
    super::Decision {
        writes,
        after: held.then_some(HOLD_RECHECK),
        concurrent: true,
    }
}

fn decide_holding(state: &State, key: &str, held: &mut bool) -> Vec<Write> {
    let Some(works_res) = state.resource_of_key(prefix::WORKS).cloned() else {
        return vec![];
    };
    let mut wanted: BTreeMap<String, Value> = BTreeMap::new();
    let mut evicting = BTreeSet::new();
    if let Some(b) = state.binding(key)
        && b.pointer("/metadata/deletionTimestamp").is_none()
    {
        *held = wanted_works(state, key, &b, &mut wanted);
        evicting = kept_by_eviction(&b);
    }
    let mut out = reconcile_works(state, &works_res, key, wanted);
    // The copy in a cluster the binding is being evicted from stays as it is until its
    // eviction task is done (see `failover`).
    if !evicting.is_empty() {
        out.retain(|w| match w {
            Write::Delete { ns: Some(ns), .. } => !evicting.contains(ns),
            _ => true,
        });
    }
    // A Work of a dependency that an attached binding now holds for this one (a Work rendered
    // before dependencies had their own bindings) is left for that binding to take over, so
    // the member object is never deleted and created again.
    let attached: BTreeSet<String> = state
        .attached_to(key)
        .iter()
        .filter_map(|a| state.binding(a))
        .filter_map(|a| a.pointer("/spec/resource").map(resource_id))
        .collect();
    if !attached.is_empty() {
        out.retain(|w| match w {
            Write::Delete { ns, name, .. } => state
                .work(&format!(
                    "{}{}/{name}",
                    prefix::WORKS,
                    ns.as_deref().unwrap_or_default()
                ))
                .and_then(|w| w.pointer("/spec/workload/manifests/0").map(resource_id))
                .is_none_or(|id| !attached.contains(&id)),
            _ => true,
        });
    }
    out
}

/// The execution namespaces of the clusters whose copy an eviction task keeps (every purge
/// mode but `Directly`).
fn kept_by_eviction(b: &Value) -> BTreeSet<String> {
    b.pointer("/spec/gracefulEvictionTasks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| {
            let mode = t.get("purgeMode").and_then(Value::as_str).unwrap_or("");
            flotilla_karmada::failover::PurgeMode::parse(mode)
                != Some(flotilla_karmada::failover::PurgeMode::Directly)
        })
        .filter_map(|t| t.get("fromCluster").and_then(Value::as_str))
        .map(execution_namespace)
        .collect()
}

/// `kind/namespace/name` of an object or of a binding's resource reference.
fn resource_id(v: &Value) -> String {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let (ns, name) = if v.get("metadata").is_some() {
        (s("/metadata/namespace"), s("/metadata/name"))
    } else {
        (s("/namespace"), s("/name"))
    };
    format!("{}/{ns}/{name}", s("/kind"))
}

/// Upserts the wanted Works (by `namespace/name`) and deletes the owner's others.
pub fn reconcile_works(
    state: &State,
    works_res: &std::sync::Arc<crate::registry::Resource>,
    owner: &str,
    wanted: BTreeMap<String, Value>,
) -> Vec<Write> {
    let mut out = Vec::new();
    let wanted_ids: BTreeSet<String> = wanted.keys().cloned().collect();
    for (id, w) in wanted {
        let current = state.work(&format!("{}{id}", prefix::WORKS));
        out.extend(upsert(works_res, w, current.as_ref()));
    }
    for wkey in state.works_of(owner) {
        let id = wkey.strip_prefix(prefix::WORKS).unwrap_or_default();
        if !wanted_ids.contains(id)
            && let Some(w) = state.work(&wkey)
        {
            out.push(Write::delete(works_res, &w));
        }
    }
    out
}

/// A binding's target clusters: its scheduling result, then the clusters of the bindings that
/// need it (`requiredBy`) not already in it (Karmada's union).
pub fn targets(b: &Value) -> Vec<flotilla_karmada::types::TargetCluster> {
    let mut out: Vec<flotilla_karmada::types::TargetCluster> = b
        .pointer("/spec/clusters")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    let required: Vec<flotilla_karmada::types::TargetCluster> = b
        .pointer("/spec/requiredBy")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("clusters"))
        .filter_map(|c| serde_json::from_value::<Vec<_>>(c.clone()).ok())
        .flatten()
        .collect();
    for t in required {
        if !out.iter().any(|o| o.name == t.name) {
            out.push(flotilla_karmada::types::TargetCluster { replicas: 0, ..t });
        }
    }
    out
}

/// Replicas of the workload in a Work.
fn work_replicas(w: &Value) -> Option<i64> {
    w.pointer("/spec/workload/manifests/0/spec/replicas")
        .and_then(Value::as_i64)
}

/// Whether clusters that lose replicas keep their current count for now: some other target
/// (one that gains replicas, is new, or keeps its count) does not report its share Healthy.
/// Replicas move as a surge: nothing is taken away before what replaces it runs. (A target
/// that is unhealthy for reasons of its own holds scale-downs elsewhere back too: the hub
/// cannot tell it from one still starting its new replicas.)
fn hold_shrinking(
    b: &Value,
    targets: &[flotilla_karmada::types::TargetCluster],
    current: &dyn Fn(&str) -> Option<i64>,
) -> bool {
    let status: Option<flotilla_karmada::types::ResourceBindingStatus> = b
        .get("status")
        .and_then(|s| serde_json::from_value(s.clone()).ok());
    let shrinks = targets
        .iter()
        .any(|t| current(&t.name).is_some_and(|c| c > i64::from(t.replicas)));
    shrinks
        && targets.iter().any(|t| {
            current(&t.name).is_none_or(|c| c <= i64::from(t.replicas))
                && !status.as_ref().is_some_and(|s| {
                    flotilla_karmada::failover::cluster_healthy(s, &t.name, t.replicas)
                })
        })
}

/// Adds the Works a binding wants, by `namespace/name`. Returns whether a cluster keeps its
/// old replica count for now (see [`hold_shrinking`]).
fn wanted_works(state: &State, key: &str, b: &Value, wanted: &mut BTreeMap<String, Value>) -> bool {
    let Some(tkey) = state.template_key_of_binding(b) else {
        return false;
    };
    let Some(template) = state.template(&tkey) else {
        return false;
    };
    let targets = targets(b);
    let wname = work_name(&template);
    let measured = state.scaling.metrics_of(&tkey, prefix::FHPA);
    // A Service that may be exported from some of its clusters, as `namespace/name`.
    let exported = tkey.strip_prefix(prefix::SERVICES).map(str::to_owned);
    let current_work = |cluster: &str| {
        state.work(&format!(
            "{}{}/{wname}",
            prefix::WORKS,
            execution_namespace(cluster)
        ))
    };
    let current = |cluster: &str| current_work(cluster).as_ref().and_then(work_replicas);
    let hold = template
        .get("spec")
        .is_some_and(|s| s.get("replicas").is_some())
        && hold_shrinking(b, &targets, &current);
    let divided = b
        .pointer("/spec/placement/replicaScheduling/replicaSchedulingType")
        .and_then(Value::as_str)
        == Some("Divided");
    let uid = template
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // Replica revision (and Job completions split) per target cluster.
    let revised = flotilla_karmada::interpreter::revise_for_targets(
        &prepare_manifest(&template),
        &targets,
        divided,
        uid,
    );
    // State carried from a cluster the workload left (failover statePreservation).
    let tasks: Vec<flotilla_karmada::types::GracefulEvictionTask> = b
        .pointer("/spec/gracefulEvictionTasks")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default();
    let (overrides, cluster_overrides) = if state.has_overrides() {
        (state.overrides(), state.cluster_overrides())
    } else {
        (vec![], vec![])
    };
    for (target, manifest) in targets.iter().zip(revised) {
        let cname = target.name.as_str();
        let Some(cluster) = state.clusters().get(cname) else {
            continue;
        };
        if hold
            && let Some(w) = current_work(cname)
            && work_replicas(&w).is_some_and(|c| c > i64::from(target.replicas))
        {
            wanted.insert(format!("{}/{wname}", execution_namespace(cname)), w);
            continue;
        }
        let rendered = if overrides.is_empty() && cluster_overrides.is_empty() {
            Ok(manifest)
        } else {
            render_for_cluster(&manifest, &cluster.object, &cluster_overrides, &overrides)
        };
        match rendered {
            Ok(mut m) => {
                if let Some(labels) =
                    flotilla_karmada::failover::state::preserved_labels(&tasks, cname)
                {
                    let md = crate::api::meta::metadata_mut(&mut m);
                    let l = md.entry("labels").or_insert_with(|| json!({}));
                    for (k, v) in labels {
                        l[k.as_str()] = json!(v);
                    }
                }
                let mut w = work_for(b, m, &template, cname, &wname);
                if let Some(svc) = &exported
                    && super::discovery::exported_in(state, svc, cname)
                {
                    // The agent reports the Service's endpoints (see `discovery`).
                    w["metadata"]["annotations"][flotilla_proto::EXPORT_ANNOTATION] = json!("true");
                }
                if let Some(metrics) = &measured {
                    // The agent reports these metrics of the workload (see `fhpa`).
                    w["metadata"]["annotations"][flotilla_proto::METRICS_ANNOTATION] =
                        json!(metrics);
                }
                wanted.insert(format!("{}/{wname}", execution_namespace(cname)), w);
            }
            Err(e) => {
                tracing::warn!(binding = key, cluster = cname, error = %e, "rendering failed")
            }
        }
    }
    hold
}

#[cfg(test)]
mod tests {
    use super::*;

    mod decide {
        #![allow(clippy::unwrap_used)]
        use serde_json::{Value, json};

        use super::super::super::cache::tests::{put, state};
        use super::super::*;

        const T: &str = "/apps/deployments/demo/web";
        const B: &str = "/work.karmada.io/resourcebindings/demo/web-deployment";

        fn template() -> Value {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "demo", "uid": "u", "generation": 1},
                "spec": {"replicas": 4, "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
        }

        fn binding(clusters: Value) -> Value {
            json!({"metadata": {"name": "web-deployment", "namespace": "demo"},
                "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web"},
                    "placement": {"replicaScheduling": {"replicaSchedulingType": "Divided"}},
                    "clusters": clusters}})
        }

        fn store_writes(s: &mut State, writes: Vec<Write>) {
            for w in writes {
                match w {
                    Write::Create { object, .. } | Write::Update { object, .. } => {
                        let key = format!(
                            "{}{}/{}",
                            prefix::WORKS,
                            object["metadata"]["namespace"].as_str().unwrap(),
                            object["metadata"]["name"].as_str().unwrap()
                        );
                        put(s, &key, object);
                    }
                    Write::Delete { ns, name, .. } => {
                        s.delete(&format!("{}{}/{name}", prefix::WORKS, ns.unwrap()))
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }

        #[test]
        fn works_follow_the_binding_and_nothing_is_rewritten() {
            let mut s = state();
            for c in ["m1", "m2"] {
                put(
                    &mut s,
                    &format!("/cluster.karmada.io/clusters/{c}"),
                    json!({"metadata": {"name": c}}),
                );
            }
            put(&mut s, T, template());
            put(
                &mut s,
                B,
                binding(json!([{"name": "m1", "replicas": 3}, {"name": "m2", "replicas": 1}])),
            );
            let w = decide(&s, B).writes;
            assert_eq!(w.len(), 2, "{w:?}");
            let replicas: Vec<i64> =
                w.iter()
                    .map(|w| match w {
                        Write::Create { object, .. } => object["spec"]["workload"]["manifests"][0]
                            ["spec"]["replicas"]
                            .as_i64()
                            .unwrap(),
                        other => panic!("{other:?}"),
                    })
                    .collect();
            assert_eq!(replicas, vec![3, 1]);
            store_writes(&mut s, w);
            assert!(
                decide(&s, B).writes.is_empty(),
                "steady state rewrites: {:?}",
                decide(&s, B).writes
            );
            // Off m2: its Work goes, m1's is updated to the new count.
            put(&mut s, B, binding(json!([{"name": "m1", "replicas": 4}])));
            let w = decide(&s, B).writes;
            assert!(
                matches!(&w[0], Write::Update { object, .. } if object["metadata"]["namespace"] == "karmada-es-m1")
            );
            assert!(matches!(&w[1], Write::Delete { ns: Some(ns), .. } if ns == "karmada-es-m2"));
            store_writes(&mut s, w);
            // The binding goes: so do its Works.
            s.delete(B);
            let w = decide(&s, B).writes;
            assert!(matches!(&w[..], [Write::Delete { .. }]), "{w:?}");
        }

        fn replicas_of(w: &Write) -> (String, i64) {
            match w {
                Write::Create { object, .. } | Write::Update { object, .. } => (
                    object["metadata"]["namespace"].as_str().unwrap().to_owned(),
                    object["spec"]["workload"]["manifests"][0]["spec"]["replicas"]
                        .as_i64()
                        .unwrap(),
                ),
                other => panic!("{other:?}"),
            }
        }

        #[test]
        fn replicas_leave_a_cluster_only_once_their_replacement_is_healthy() {
            let mut s = state();
            for c in ["m1", "m2", "m3"] {
                put(
                    &mut s,
                    &format!("/cluster.karmada.io/clusters/{c}"),
                    json!({"metadata": {"name": c}}),
                );
            }
            put(&mut s, T, template());
            put(
                &mut s,
                B,
                binding(json!([{"name": "m1", "replicas": 2}, {"name": "m2", "replicas": 2}])),
            );
            let w = decide(&s, B).writes;
            store_writes(&mut s, w);
            // m3 joins: it gets its Work, m1 and m2 keep 2 until m3 reports 1 Healthy.
            let moved = json!([{"name": "m1", "replicas": 2}, {"name": "m2", "replicas": 1},
                {"name": "m3", "replicas": 1}]);
            put(&mut s, B, binding(moved.clone()));
            let d = decide(&s, B);
            let changed: Vec<(String, i64)> = d.writes.iter().map(replicas_of).collect();
            assert_eq!(changed, [("karmada-es-m3".to_owned(), 1)]);
            assert_eq!(d.after, Some(HOLD_RECHECK));
            store_writes(&mut s, d.writes);
            // m3's Work has its share now, but m3 does not run it yet: still held.
            let d = decide(&s, B);
            assert!(d.writes.is_empty(), "{:?}", d.writes);
            assert_eq!(d.after, Some(HOLD_RECHECK));
            let mut b = binding(moved);
            b["status"] = json!({"aggregatedStatus": [
                {"clusterName": "m1", "applied": true, "health": "Healthy", "status": {"replicas": 2}},
                {"clusterName": "m3", "applied": true, "health": "Healthy", "status": {"replicas": 1}}]});
            put(&mut s, B, b);
            let d = decide(&s, B);
            let changed: Vec<(String, i64)> = d.writes.iter().map(replicas_of).collect();
            assert_eq!(changed, [("karmada-es-m2".to_owned(), 1)]);
            assert_eq!(d.after, None);
            // A scale-down waits for nothing but the other targets' health.
            store_writes(&mut s, d.writes);
            let mut b = binding(
                json!([{"name": "m1", "replicas": 1}, {"name": "m2", "replicas": 1},
                {"name": "m3", "replicas": 1}]),
            );
            b["status"] = json!({"aggregatedStatus": [
                {"clusterName": "m2", "applied": true, "health": "Healthy", "status": {"replicas": 1}},
                {"clusterName": "m3", "applied": true, "health": "Healthy", "status": {"replicas": 1}}]});
            put(&mut s, B, b);
            let d = decide(&s, B);
            let changed: Vec<(String, i64)> = d.writes.iter().map(replicas_of).collect();
            assert_eq!(changed, [("karmada-es-m1".to_owned(), 1)]);
        }

        #[test]
        fn preserved_state_labels_the_workload_where_it_runs_after_a_failover() {
            let mut s = state();
            for c in ["m1", "m2"] {
                put(
                    &mut s,
                    &format!("/cluster.karmada.io/clusters/{c}"),
                    json!({"metadata": {"name": c}}),
                );
            }
            put(&mut s, T, template());
            let mut b = binding(json!([{"name": "m2", "replicas": 4}]));
            b["spec"]["gracefulEvictionTasks"] = json!([{"fromCluster": "m1", "purgeMode": "Never",
                "suppressDeletion": true, "reason": "ApplicationFailure", "producer": "p",
                "preservedLabelState": {"example.com/job": "j-1"}}]);
            put(&mut s, B, b);
            let w = decide(&s, B).writes;
            let [Write::Create { object, .. }] = &w[..] else {
                panic!("{w:?}")
            };
            assert_eq!(object["metadata"]["namespace"], "karmada-es-m2");
            assert_eq!(
                object["spec"]["workload"]["manifests"][0]["metadata"]["labels"]["example.com/job"],
                "j-1"
            );
        }
    }

    #[test]
    fn dependencies_found_in_pod_templates() {
        let d = json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "serviceAccountName": "runner",
            "volumes": [{"name": "v", "configMap": {"name": "cfg"}}, {"name": "s", "secret": {"secretName": "creds"}},
                {"name": "p", "persistentVolumeClaim": {"claimName": "data"}}],
            "containers": [{"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "token", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "env-cfg"}}]}]}}}});
        let deps = dependencies(&d);
        for want in [
            ("ConfigMap", "cfg"),
            ("ConfigMap", "env-cfg"),
            ("Secret", "creds"),
            ("Secret", "token"),
            ("PersistentVolumeClaim", "data"),
            ("ServiceAccount", "runner"),
        ] {
            assert!(
                deps.contains(&(want.0, want.1.to_owned())),
                "{want:?} missing from {deps:?}"
            );
        }
        assert!(dependencies(&json!({"kind": "ConfigMap", "data": {}})).is_empty());
        // The default service account is never a dependency.
        let d = json!({"kind": "Pod", "spec": {"serviceAccountName": "default", "containers": []}});
        assert!(dependencies(&d).is_empty());
    }

    #[test]
    fn manifests_lose_server_fields() {
        let t = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n", "uid": "u",
            "resourceVersion": "5", "generation": 2, "managedFields": [], "creationTimestamp": "t",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}, "status": {"loadBalancer": {}}});
        let m = prepare_manifest(&t);
        assert_eq!(
            m,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n"},
            "spec": {"ports": [{"port": 80}]}})
        );
        let headless =
            json!({"kind": "Service", "metadata": {"name": "h"}, "spec": {"clusterIP": "None"}});
        assert_eq!(prepare_manifest(&headless)["spec"]["clusterIP"], "None");
    }

    #[test]
    fn work_names_are_stable_and_distinct() {
        let a = json!({"kind": "ConfigMap", "metadata": {"name": "b-c", "namespace": "a"}});
        let b = json!({"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a-b"}});
        assert_eq!(work_name(&a), work_name(&a.clone()));
        assert_ne!(work_name(&a), work_name(&b));
        assert!(crate::api::meta::is_dns1123_subdomain(&work_name(&a)));
        let long =
            json!({"kind": "ConfigMap", "metadata": {"name": "x".repeat(253), "namespace": "n"}});
        assert!(work_name(&long).len() <= 253);
    }

    #[test]
    fn suspension_applies_to_listed_clusters() {
        let b =
            json!({"spec": {"suspension": {"dispatchingOnClusters": {"clusterNames": ["m1"]}}}});
        assert!(suspended_for(&b, "m1"));
        assert!(!suspended_for(&b, "m2"));
        assert!(suspended_for(
            &json!({"spec": {"suspension": {"dispatching": true}}}),
            "m2"
        ));
    }

    #[test]
    fn works_carry_conflict_resolution_and_suspension() {
        let b = json!({"metadata": {"name": "web-deployment", "namespace": "demo"},
            "spec": {"conflictResolution": "Overwrite", "suspension": {"dispatching": true},
                "preserveResourcesOnDeletion": true}});
        let t = json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "demo", "generation": 4}});
        let w = work_for(&b, prepare_manifest(&t), &t, "m1", "web-x");
        assert_eq!(w["metadata"]["namespace"], "karmada-es-m1");
        assert_eq!(
            w["metadata"]["annotations"]["work.karmada.io/conflict-resolution"],
            "overwrite"
        );
        assert_eq!(
            w["metadata"]["labels"][BINDING_LABEL],
            "demo.web-deployment"
        );
        assert_eq!(w["spec"]["suspendDispatching"], true);
        assert_eq!(w["spec"]["preserveResourcesOnDeletion"], true);
        let m = &w["spec"]["workload"]["manifests"][0];
        assert_eq!(m["metadata"]["annotations"][TEMPLATE_GENERATION], "4");
        assert_eq!(m["metadata"]["labels"]["karmada.io/managed"], "true");
    }
}
