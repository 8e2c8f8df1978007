//! Status: Works' reports become the binding's `aggregatedStatus` and `FullyApplied`, and
//! then the template's status by the kind's aggregation rule.
//!
//! Key: a binding's store key.

use std::sync::Arc;

use serde_json::{Value, json};

use super::cache::State;
use super::keys::prefix;
use super::rendering::{execution_namespace, work_name};
use super::write::{StatusEdit, Write, condition};

/// One cluster's report for a binding.
fn item(cluster: &str, work: Option<&Value>) -> Value {
    let Some(w) = work else {
        return json!({"clusterName": cluster, "applied": false, "appliedMessage": "Work is not created yet", "health": "Unknown"});
    };
    let applied_cond = w
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Applied"));
    let applied = applied_cond.is_some_and(|c| c["status"] == "True");
    // A report for an older version of the Work says nothing about the health of this one
    // (the failover waits for the new replicas, not for the old ones).
    let current = applied_cond
        .and_then(|c| c.get("observedGeneration"))
        .and_then(Value::as_i64)
        .is_none_or(|g| {
            g >= w
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
        });
    let manifest = w.pointer("/status/manifestStatuses/0");
    let mut out = json!({"clusterName": cluster, "applied": applied});
    if applied {
        if let Some(s) = manifest
            .and_then(|m| m.get("status"))
            .filter(|s| !s.is_null())
        {
            out["status"] = s.clone();
        }
        out["health"] = manifest
            .and_then(|m| m.get("health"))
            .filter(|_| current)
            .cloned()
            .unwrap_or(json!("Unknown"));
    } else {
        let msg = applied_cond
            .and_then(|c| c.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("the agent has not applied the Work yet");
        out["appliedMessage"] = json!(msg);
        out["health"] = json!("Unknown");
    }
    out
}

/// The binding's status with `items` as its aggregated status.
fn binding_status(b: &Value, items: &[Value]) -> Value {
    let all_applied = !items.is_empty() && items.iter().all(|i| i["applied"] == true);
    let mut status = b.get("status").cloned().unwrap_or(json!({}));
    let prev = status
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "FullyApplied"))
        .cloned();
    let (reason, message) = if all_applied {
        (
            "FullyAppliedSuccess",
            "All works have been successfully applied",
        )
    } else {
        (
            "FullyAppliedFailed",
            "Failed to apply all works, see status.aggregatedStatus for details",
        )
    };
    let fully = condition("FullyApplied", all_applied, reason, message, prev.as_ref());
    let mut conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter(|c| c["type"] != "FullyApplied")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    conditions.push(fully);
    status["conditions"] = Value::Array(conditions);
    status["aggregatedStatus"] = Value::Array(items.to_vec());
    status
}

/// The template's status folded from `items` (unchanged when the kind has no rule).
fn template_status(t: &Value, kind: &str, items: &[Value]) -> Value {
    let generation = t
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let current = t.get("status").cloned().unwrap_or(json!({}));
    flotilla_karmada::status::aggregate(kind, &current, generation, items).unwrap_or(current)
}

/// What the status aggregator writes for one binding.
pub fn decide(state: &State, key: &str) -> Vec<Write> {
    let Some(b) = state.binding(key) else {
        return vec![];
    };
    let Some(tkey) = state.template_key_of_binding(&b) else {
        return vec![];
    };
    let Some(t) = state.template(&tkey) else {
        return vec![];
    };
    let Some(bres) = state.binding_resource(key) else {
        return vec![];
    };
    let wname = work_name(&t);
    let mut items: Vec<Value> = super::rendering::targets(&b)
        .iter()
        .map(|c| {
            let wkey = format!("{}{}/{wname}", prefix::WORKS, execution_namespace(&c.name));
            item(&c.name, state.work(&wkey).as_ref())
        })
        .collect();
    items.sort_by(|a, b| a["clusterName"].as_str().cmp(&b["clusterName"].as_str()));
    let items = Arc::new(items);
    let mut out = Vec::new();
    let for_binding = items.clone();
    let edit: StatusEdit = Arc::new(move |obj: &Value| binding_status(obj, &for_binding));
    out.extend(Write::edit_status(&bres, &b, edit));
    if let Some(tres) = state.resource_of_key(&tkey).cloned()
        && tres.status
    {
        let kind = tres.kind.clone();
        let edit: StatusEdit = Arc::new(move |obj: &Value| template_status(obj, &kind, &items));
        out.extend(Write::edit_status(&tres, &t, edit));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::super::cache::tests::{put, state};
    use super::*;

    const T: &str = "/apps/deployments/demo/web";
    const B: &str = "/work.karmada.io/resourcebindings/demo/web-deployment";

    fn template() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "demo", "generation": 2},
            "spec": {"replicas": 2}})
    }

    fn binding(status: Value) -> Value {
        json!({"metadata": {"name": "web-deployment", "namespace": "demo"},
            "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web"},
                "clusters": [{"name": "m1", "replicas": 1}, {"name": "m2", "replicas": 1}]},
            "status": status})
    }

    fn work(cluster: &str, ready: i64) -> Value {
        json!({"metadata": {"name": work_name(&template()), "namespace": execution_namespace(cluster),
                "labels": {super::super::keys::BINDING_LABEL: "demo.web-deployment"}},
            "status": {"conditions": [{"type": "Applied", "status": "True"}],
                "manifestStatuses": [{"health": "Healthy", "status": {"replicas": 1, "readyReplicas": ready,
                    "availableReplicas": ready, "updatedReplicas": 1, "observedGeneration": 2}}]}})
    }

    #[test]
    fn a_report_for_an_older_work_has_unknown_health() {
        let mut w = work("m1", 1);
        w["metadata"]["generation"] = json!(3);
        w["status"]["conditions"][0]["observedGeneration"] = json!(2);
        let i = item("m1", Some(&w));
        assert_eq!(i["applied"], true);
        assert_eq!(i["health"], "Unknown");
        w["status"]["conditions"][0]["observedGeneration"] = json!(3);
        assert_eq!(item("m1", Some(&w))["health"], "Healthy");
    }

    fn wkey(cluster: &str) -> String {
        format!(
            "{}{}/{}",
            prefix::WORKS,
            execution_namespace(cluster),
            work_name(&template())
        )
    }

    #[test]
    fn reports_fold_into_binding_and_template() {
        let mut s = state();
        put(&mut s, T, template());
        put(&mut s, B, binding(json!({})));
        put(&mut s, &wkey("m1"), work("m1", 1));
        put(&mut s, &wkey("m2"), work("m2", 1));
        let w = decide(&s, B);
        assert_eq!(w.len(), 2, "{w:?}");
        let (Write::EditStatus { edit: eb, .. }, Write::EditStatus { edit: et, .. }) =
            (&w[0], &w[1])
        else {
            panic!("{w:?}");
        };
        let bs = eb(&binding(json!({})));
        assert_eq!(bs["aggregatedStatus"].as_array().unwrap().len(), 2);
        assert_eq!(bs["conditions"][0]["status"], "True");
        let ts = et(&template());
        assert_eq!(ts["readyReplicas"], 2);
        // Once written, nothing more to do.
        put(&mut s, B, binding(bs));
        let mut t = template();
        t["status"] = ts;
        put(&mut s, T, t);
        assert!(decide(&s, B).is_empty(), "{:?}", decide(&s, B));
    }

    #[test]
    fn one_work_report_reads_only_its_binding() {
        let mut s = state();
        put(&mut s, T, template());
        put(&mut s, B, binding(json!({})));
        put(
            &mut s,
            "/apps/deployments/demo/other",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "other", "namespace": "demo"}}),
        );
        put(
            &mut s,
            "/work.karmada.io/resourcebindings/demo/other-deployment",
            json!({"metadata": {"name": "other-deployment", "namespace": "demo"},
            "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "other"},
                "clusters": [{"name": "m1", "replicas": 1}]}}),
        );
        put(&mut s, &wkey("m1"), work("m1", 1));
        s.reads.lock().unwrap().clear();
        let _ = decide(&s, B);
        let reads = s.reads.lock().unwrap().clone();
        assert!(
            reads.iter().all(|k| !k.contains("other")),
            "read another binding's objects: {reads:?}"
        );
        assert_eq!(reads.len(), 4, "{reads:?}");
    }
}
