//! The built-in resource interpreter for replicas: how many replicas a template asks for, what
//! one replica needs, and how a member's copy is revised to its share.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::quantity::parse_milli;
use crate::types::{NodeClaim, Quantity, ReplicaRequirements, TargetCluster, Toleration};

/// Kinds whose replica count the scheduler divides.
pub fn has_replica_reviser(api_version: &str, kind: &str) -> bool {
    matches!(
        (api_version, kind),
        ("apps/v1", "Deployment" | "ReplicaSet" | "StatefulSet") | ("batch/v1", "Job")
    )
}

fn pod_spec(template: &Value) -> Option<&Value> {
    match template.get("kind").and_then(Value::as_str)? {
        "Pod" => template.get("spec"),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            template.pointer("/spec/template/spec")
        }
        "CronJob" => template.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

fn int_at(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(Value::as_i64)
}

/// Replica count of a template: Deployment/ReplicaSet/StatefulSet `spec.replicas` (default 1),
/// Job `min(parallelism, completions)` (parallelism defaults to 1), Pod 1, anything else 0.
pub fn replicas(template: &Value) -> i32 {
    let api_version = template
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = template.get("kind").and_then(Value::as_str).unwrap_or("");
    let n = match (api_version, kind) {
        ("apps/v1", "Deployment" | "ReplicaSet" | "StatefulSet") => {
            int_at(template, "/spec/replicas").unwrap_or(1)
        }
        ("batch/v1", "Job") => {
            let parallelism = int_at(template, "/spec/parallelism").unwrap_or(1);
            match int_at(template, "/spec/completions") {
                Some(c) => parallelism.min(c),
                None => parallelism,
            }
        }
        ("v1", "Pod") => 1,
        _ => 0,
    };
    i32::try_from(n.max(0)).unwrap_or(i32::MAX)
}

fn requests_of(container: &Value) -> BTreeMap<String, i128> {
    container
        .pointer("/resources/requests")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => return None,
                    };
                    parse_milli(&s).map(|q| (k.clone(), q))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Formats milli-units back into a quantity string (`100m`, `2`, `134217728`).
pub fn format_milli(milli: i128) -> String {
    if milli % 1000 == 0 {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

/// Effective per-replica requests of a pod spec: the larger of the sum over containers and the
/// largest init container, per resource, plus `overhead`.
fn effective_requests(spec: &Value) -> BTreeMap<String, i128> {
    let mut sum: BTreeMap<String, i128> = BTreeMap::new();
    for c in spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (k, v) in requests_of(c) {
            let e = sum.entry(k).or_default();
            *e = e.saturating_add(v);
        }
    }
    for c in spec
        .get("initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (k, v) in requests_of(c) {
            let e = sum.entry(k).or_default();
            *e = (*e).max(v);
        }
    }
    if let Some(o) = spec.get("overhead").and_then(Value::as_object) {
        for (k, v) in o {
            if let Some(q) = v.as_str().and_then(parse_milli) {
                let e = sum.entry(k.clone()).or_default();
                *e = e.saturating_add(q);
            }
        }
    }
    sum
}

/// Per-replica requirements of a workload template (requests, node selector, tolerations,
/// required node affinity, priority class); `None` when it has no requests and no constraints.
pub fn replica_requirements(template: &Value) -> Option<ReplicaRequirements> {
    let spec = pod_spec(template)?;
    let resource_request: BTreeMap<String, Quantity> = effective_requests(spec)
        .into_iter()
        .map(|(k, v)| (k, Quantity(format_milli(v))))
        .collect();
    let node_selector: BTreeMap<String, String> = spec
        .get("nodeSelector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let tolerations: Vec<Toleration> = spec
        .get("tolerations")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default();
    let hard_node_affinity = spec
        .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution")
        .cloned();
    let node_claim =
        (!node_selector.is_empty() || !tolerations.is_empty() || hard_node_affinity.is_some())
            .then_some(NodeClaim {
                hard_node_affinity,
                node_selector,
                tolerations,
            });
    if resource_request.is_empty() && node_claim.is_none() {
        return None;
    }
    Some(ReplicaRequirements {
        node_claim,
        resource_request,
        namespace: template
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        priority_class_name: spec
            .get("priorityClassName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    })
}

/// Sets a member copy's replica field to its share: `spec.replicas` for Deployment, ReplicaSet
/// and StatefulSet, `spec.parallelism` for Job. Other kinds are left unchanged.
pub fn revise_replicas(manifest: &mut Value, replicas: i32) {
    let api_version = manifest
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = manifest
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !has_replica_reviser(&api_version, &kind) {
        return;
    }
    let field = if kind == "Job" {
        "parallelism"
    } else {
        "replicas"
    };
    if let Some(obj) = manifest.as_object_mut() {
        let spec = obj.entry("spec").or_insert_with(|| json!({}));
        if let Some(spec) = spec.as_object_mut() {
            spec.insert(field.into(), json!(replicas));
        }
    }
}

/// Renders the replica part of each cluster's copy of a template: the replica field set to the
/// cluster's share and, for a Divided Job with `completions`, completions split by parallelism.
/// Returns one manifest per target, in target order. `divided` tells whether the placement
/// divides replicas (Duplicated copies keep the full completions).
pub fn revise_for_targets(
    template: &Value,
    targets: &[TargetCluster],
    divided: bool,
    template_uid: &str,
) -> Vec<Value> {
    let workload = replicas(template) > 0;
    let completions = int_at(template, "/spec/completions")
        .filter(|_| divided && template.get("kind").and_then(Value::as_str) == Some("Job"));
    let split = completions.map(|c| {
        crate::scheduler::divide_job_completions(
            i32::try_from(c).unwrap_or(i32::MAX),
            targets,
            template_uid,
        )
    });
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut m = template.clone();
            if workload {
                revise_replicas(&mut m, t.replicas);
            }
            if let (Some(split), Some(spec)) =
                (&split, m.get_mut("spec").and_then(Value::as_object_mut))
            {
                spec.insert("completions".into(), json!(split[i]));
            }
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn deploy(replicas: Option<i64>) -> Value {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx", "namespace": "demo"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.25", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                {"name": "sidecar", "image": "s", "resources": {"requests": {"cpu": "50m"}}}],
                "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "500m"}}}]}}}});
        if let Some(r) = replicas {
            d["spec"]["replicas"] = json!(r);
        }
        d
    }

    #[test]
    fn replica_counts() {
        let cases = [
            (deploy(Some(3)), 3),
            (deploy(None), 1),
            (deploy(Some(0)), 0),
            (
                json!({"apiVersion": "batch/v1", "kind": "Job", "spec": {"parallelism": 4, "completions": 8}}),
                4,
            ),
            (
                json!({"apiVersion": "batch/v1", "kind": "Job", "spec": {"parallelism": 4, "completions": 2}}),
                2,
            ),
            (
                json!({"apiVersion": "batch/v1", "kind": "Job", "spec": {}}),
                1,
            ),
            (json!({"apiVersion": "v1", "kind": "Pod", "spec": {}}), 1),
            (json!({"apiVersion": "v1", "kind": "ConfigMap"}), 0),
            (
                json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {}}),
                0,
            ),
            (
                json!({"apiVersion": "example.com/v1", "kind": "Deployment", "spec": {"replicas": 5}}),
                0,
            ),
        ];
        for (t, want) in cases {
            assert_eq!(replicas(&t), want, "{t}");
        }
    }

    #[test]
    fn requirements() {
        let r = replica_requirements(&deploy(Some(1))).unwrap();
        // max(100m + 50m, 500m init) = 500m.
        assert_eq!(r.resource_request["cpu"], Quantity("500m".into()));
        assert_eq!(
            r.resource_request["memory"],
            Quantity((128i64 << 20).to_string())
        );
        assert_eq!(r.namespace, "demo");
        assert!(r.node_claim.is_none());
        let none = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}});
        assert!(replica_requirements(&none).is_none());
        let constrained = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "a"}],
            "nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "k", "operator": "Exists"}], "priorityClassName": "high"}});
        let r = replica_requirements(&constrained).unwrap();
        let claim = r.node_claim.unwrap();
        assert_eq!(claim.node_selector["disk"], "ssd");
        assert_eq!(claim.tolerations.len(), 1);
        assert_eq!(r.priority_class_name, "high");
        assert!(replica_requirements(&json!({"apiVersion": "v1", "kind": "ConfigMap"})).is_none());
    }

    #[test]
    fn requests_saturate_instead_of_overflowing() {
        // Each request is close to the largest quantity the parser accepts.
        let big = "170141183460469231E";
        let t = json!({"apiVersion": "v1", "kind": "Pod", "spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": big, "memory": "1"}}},
                {"name": "b", "resources": {"requests": {"cpu": big, "memory": "-1"}}}],
            "overhead": {"cpu": big}}});
        let r = replica_requirements(&t).unwrap();
        assert_eq!(
            r.resource_request["cpu"],
            Quantity(format!("{}m", i128::MAX))
        );
        assert_eq!(r.resource_request["memory"], Quantity("0".into()));
    }

    #[test]
    fn revision() {
        let t = |n: &str, r: i32| TargetCluster {
            name: n.into(),
            replicas: r,
            components: vec![],
        };
        let out = revise_for_targets(&deploy(Some(7)), &[t("m1", 2), t("m2", 3)], true, "");
        assert_eq!(out[0]["spec"]["replicas"], 2);
        assert_eq!(out[1]["spec"]["replicas"], 3);
        // Scenario 34: parallelism 4 / completions 8 over two clusters.
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"}, "spec": {"parallelism": 4, "completions": 8}});
        let out = revise_for_targets(&job, &[t("m1", 2), t("m2", 2)], true, "");
        assert_eq!(
            (
                out[0]["spec"]["parallelism"].clone(),
                out[0]["spec"]["completions"].clone()
            ),
            (json!(2), json!(4))
        );
        assert_eq!(out[1]["spec"]["completions"], 4);
        // Duplicated Job keeps completions.
        let out = revise_for_targets(&job, &[t("m1", 4)], false, "");
        assert_eq!(out[0]["spec"]["completions"], 8);
        // Work-queue Job (no completions) keeps it unset.
        let wq = json!({"apiVersion": "batch/v1", "kind": "Job", "spec": {"parallelism": 3}});
        let out = revise_for_targets(&wq, &[t("m1", 1), t("m2", 2)], true, "");
        assert!(out[0]["spec"].get("completions").is_none());
        // Non-workloads are copied unchanged.
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}});
        assert_eq!(revise_for_targets(&cm, &[t("m1", 0)], false, "")[0], cm);
        assert_eq!(format_milli(1500), "1500m");
        assert_eq!(format_milli(2000), "2");
    }
}
