//! `describe binding`: a binding's placement decision and why, in words.

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::hub::Hub;

/// The annotation where the hub records its last scheduling decision.
const DIAGNOSIS: &str = "scheduling.flotilla.io/diagnosis";

/// API path of `NS/NAME` (a ResourceBinding) or `NAME` (a ClusterResourceBinding).
pub fn binding_path(target: &str) -> Result<String> {
    let base = "/apis/work.karmada.io/v1alpha2";
    match target.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(format!("{base}/namespaces/{ns}/resourcebindings/{name}"))
        }
        None if !target.is_empty() => Ok(format!("{base}/clusterresourcebindings/{target}")),
        _ => bail!(
            "expected NAMESPACE/NAME for a ResourceBinding or NAME for a ClusterResourceBinding, got {target:?}"
        ),
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// Renders a binding for people.
pub fn render(b: &Value) -> String {
    let mut out = String::new();
    let ns = s(b, "/metadata/namespace");
    let name = s(b, "/metadata/name");
    out.push_str(&format!(
        "Name:        {}{name}\n",
        if ns.is_empty() {
            String::new()
        } else {
            format!("{ns}/")
        }
    ));
    out.push_str(&format!(
        "Resource:    {} {}{}\n",
        s(b, "/spec/resource/kind"),
        if ns.is_empty() {
            String::new()
        } else {
            format!("{}/", s(b, "/spec/resource/namespace"))
        },
        s(b, "/spec/resource/name")
    ));
    out.push_str(&format!(
        "Replicas:    {}\n",
        b.pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    ));
    out.push_str("Placement:\n");
    let clusters = b
        .pointer("/spec/clusters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if clusters.is_empty() {
        out.push_str("  (no clusters)\n");
    }
    for c in &clusters {
        match c.get("replicas").and_then(Value::as_i64) {
            Some(r) => out.push_str(&format!("  {:<20} {r} replicas\n", s(c, "/name"))),
            None => out.push_str(&format!("  {}\n", s(c, "/name"))),
        }
    }
    let tasks = b
        .pointer("/spec/gracefulEvictionTasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !tasks.is_empty() {
        out.push_str("Evictions (the old copy stays until the task is done):\n");
    }
    for t in &tasks {
        let replicas = t
            .get("replicas")
            .and_then(Value::as_i64)
            .map(|r| format!("{r} replicas"))
            .unwrap_or_default();
        let mode = match s(t, "/purgeMode") {
            "" => "Gracefully",
            m => m,
        };
        let waits = match mode {
            "Directly" | "Immediately" => "nothing: removed at once".to_owned(),
            "Never" => "suppressDeletion: false on this task".to_owned(),
            _ => match t.get("gracePeriodSeconds").and_then(Value::as_i64) {
                Some(g) => format!(
                    "the new placement to report Healthy, or {g}s once it is scheduled"
                ),
                None => "the new placement to report Healthy, or the hub's grace period once it is scheduled".to_owned(),
            },
        };
        out.push_str(&format!(
            "  {:<20} {replicas:<12} {mode:<10} {} by {} at {}\n    why: {}\n    waits for: {waits}\n",
            s(t, "/fromCluster"),
            s(t, "/reason"),
            s(t, "/producer"),
            s(t, "/creationTimestamp"),
            s(t, "/message"),
        ));
        if let Some(state) = t.get("preservedLabelState").and_then(Value::as_object)
            && !state.is_empty()
        {
            let labels: Vec<String> = state
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            out.push_str(&format!(
                "    carries to the other clusters: {}\n",
                labels.join(", ")
            ));
        }
    }
    if let Some(d) = b
        .pointer(&format!(
            "/metadata/annotations/{}",
            flotilla_proto::SCALE_DECISION_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .and_then(|a| serde_json::from_str::<Value>(a).ok())
    {
        out.push_str(&scaling(&d));
    }
    out.push_str("Conditions:\n");
    for c in b
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str(&format!(
            "  {:<13} {:<6} {:<20} {}\n",
            s(c, "/type"),
            s(c, "/status"),
            s(c, "/reason"),
            s(c, "/message")
        ));
    }
    let diagnosis = b
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(DIAGNOSIS))
        .and_then(Value::as_str)
        .unwrap_or("(not scheduled yet)");
    out.push_str("Why:\n");
    for part in diagnosis.split("; ") {
        out.push_str(&format!("  {part}\n"));
    }
    out.push_str("Members:\n");
    let items = b
        .pointer("/status/aggregatedStatus")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        out.push_str("  (no reports yet)\n");
    }
    for i in &items {
        let applied = if i.get("applied").and_then(Value::as_bool) == Some(true) {
            "applied"
        } else {
            "not applied"
        };
        let mut line = format!(
            "  {:<20} {applied:<12} {}",
            s(i, "/clusterName"),
            s(i, "/health")
        );
        if !s(i, "/appliedMessage").is_empty() {
            line.push_str(&format!("  {}", s(i, "/appliedMessage")));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The last scaling decision of a FederatedHPA and what it saw per cluster.
fn scaling(d: &Value) -> String {
    let n = |p: &str| d.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let mut out = format!(
        "Last scaling:  {} -> {} replicas at {} by FederatedHPA {}\n  reason: {}\n",
        n("/from"),
        n("/to"),
        s(d, "/time"),
        s(d, "/federatedHPA"),
        s(d, "/reason")
    );
    if let Some(clusters) = d.get("clusters").and_then(Value::as_object) {
        for (name, c) in clusters {
            let resources: Vec<String> = c
                .get("resources")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| {
                    format!(
                        "{} {} of {} requested ({} ready, {} unready, {} missing)",
                        s(r, "/name"),
                        s(r, "/usage"),
                        s(r, "/requests"),
                        r["ready"],
                        r["unready"],
                        r["missing"]
                    )
                })
                .collect();
            out.push_str(&format!(
                "  {name:<20} {} pods; {}\n",
                c["pods"],
                resources.join("; ")
            ));
        }
    }
    out
}

/// Fetches and renders a binding.
pub async fn describe_binding(hub: &Hub, target: &str) -> Result<String> {
    let path = binding_path(target)?;
    let b = hub.get(&path).await?.with_context(|| {
        format!(
            "binding {target} not found; list them with `kubectl get rb -A` or `kubectl get crb`"
        )
    })?;
    Ok(render(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_for_namespaced_and_cluster_bindings() {
        assert_eq!(
            binding_path("demo/nginx-deployment").unwrap_or_default(),
            "/apis/work.karmada.io/v1alpha2/namespaces/demo/resourcebindings/nginx-deployment"
        );
        assert_eq!(
            binding_path("crontabs-crd").unwrap_or_default(),
            "/apis/work.karmada.io/v1alpha2/clusterresourcebindings/crontabs-crd"
        );
        for bad in ["", "/x", "a/", "a/b/c"] {
            assert!(binding_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn renders_decision_reasons_and_members() {
        let b = json!({
            "metadata": {"name": "nginx-deployment", "namespace": "demo",
                "annotations": {DIAGNOSIS: "2/3 clusters feasible (StaticWeight); selected m1=2 (weight 1, free 10), m2=3 (weight 2, free 9); filtered m3: AffinityClusterNames"}},
            "spec": {"resource": {"kind": "Deployment", "namespace": "demo", "name": "nginx"}, "replicas": 5,
                "clusters": [{"name": "m1", "replicas": 2}, {"name": "m2", "replicas": 3}]},
            "status": {"conditions": [{"type": "Scheduled", "status": "True", "reason": "Success", "message": "ok"}],
                "aggregatedStatus": [{"clusterName": "m1", "applied": true, "health": "Healthy"},
                    {"clusterName": "m2", "applied": false, "health": "Unknown", "appliedMessage": "conflict"}]}
        });
        let text = render(&b);
        assert!(
            text.contains("Resource:    Deployment demo/nginx"),
            "{text}"
        );
        assert!(text.contains("m1                   2 replicas"), "{text}");
        assert!(
            text.contains("  filtered m3: AffinityClusterNames"),
            "{text}"
        );
        assert!(text.contains("not applied  Unknown  conflict"), "{text}");
        assert!(!text.contains("Evictions"), "{text}");
    }

    #[test]
    fn renders_the_last_scaling_decision() {
        let record = json!({"time": "2026-12-01T12:00:00Z", "federatedHPA": "web", "from": 2, "to": 6,
            "reason": "cpu resource utilization (percentage of request) above target",
            "clusters": {"m1": {"pods": 1, "resources": [{"name": "cpu", "usage": "150m",
                "requests": "100m", "ready": 1, "unready": 0, "missing": 0}]}}});
        let b = json!({"metadata": {"name": "web-deployment", "namespace": "demo",
                "annotations": {flotilla_proto::SCALE_DECISION_ANNOTATION: record.to_string()}},
            "spec": {"resource": {"kind": "Deployment", "namespace": "demo", "name": "web"}}});
        let text = render(&b);
        assert!(
            text.contains(
                "Last scaling:  2 -> 6 replicas at 2026-12-01T12:00:00Z by FederatedHPA web"
            ),
            "{text}"
        );
        assert!(
            text.contains("m1                   1 pods; cpu 150m of 100m requested (1 ready, 0 unready, 0 missing)"),
            "{text}"
        );
    }

    #[test]
    fn renders_eviction_tasks_and_what_they_wait_for() {
        let b = json!({
            "metadata": {"name": "web-deployment", "namespace": "demo"},
            "spec": {"resource": {"kind": "Deployment", "namespace": "demo", "name": "web"}, "replicas": 6,
                "clusters": [{"name": "m2", "replicas": 3}, {"name": "m3", "replicas": 3}],
                "gracefulEvictionTasks": [{"fromCluster": "m1", "purgeMode": "Gracefully", "replicas": 2,
                    "reason": "TaintUntolerated", "producer": "TaintManager",
                    "creationTimestamp": "2026-11-30T12:00:00Z",
                    "preservedLabelState": {"example.com/job": "j-1"},
                    "message": "the cluster has the taint cluster.karmada.io/not-ready:NoExecute"}]}
        });
        let text = render(&b);
        assert!(
            text.contains("m1                   2 replicas   Gracefully TaintUntolerated by TaintManager at 2026-11-30T12:00:00Z"),
            "{text}"
        );
        assert!(text.contains("why: the cluster has the taint"), "{text}");
        assert!(
            text.contains("carries to the other clusters: example.com/job=j-1"),
            "{text}"
        );
        assert!(
            text.contains(
                "waits for: the new placement to report Healthy, or the hub's grace period"
            ),
            "{text}"
        );
    }
}
