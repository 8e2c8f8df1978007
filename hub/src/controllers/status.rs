//! Status: Works' reports become the binding's `aggregatedStatus` and `FullyApplied`, and
//! then the template's status by the kind's aggregation rule.

use serde_json::{Value, json};

use super::rendering::{execution_namespace, work_name};
use super::snapshot::{Snapshot, template_key};
use super::{condition, write_status};
use crate::api::error::ApiError;
use crate::api::objects::Objects;

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

/// Rebuilds bindings' aggregated status and the templates' status.
pub async fn reconcile(objects: &Objects, snap: &Snapshot) -> Result<(), ApiError> {
    let reg = objects.registry();
    for b in snap.bindings.values() {
        let group = b
            .pointer("/spec/resource/apiVersion")
            .and_then(Value::as_str)
            .map(|av| av.rsplit_once('/').map(|(g, _)| g).unwrap_or(""))
            .unwrap_or("");
        let kind = b
            .pointer("/spec/resource/kind")
            .and_then(Value::as_str)
            .unwrap_or("");
        let ns = b
            .pointer("/spec/resource/namespace")
            .and_then(Value::as_str);
        let name = b
            .pointer("/spec/resource/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(t) = snap.templates.get(&template_key(group, kind, ns, name)) else {
            continue;
        };
        let wname = work_name(&t.object);
        let mut items: Vec<Value> = b
            .pointer("/spec/clusters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str))
            .map(|c| {
                item(
                    c,
                    snap.works
                        .get(&format!("{}/{wname}", execution_namespace(c))),
                )
            })
            .collect();
        items.sort_by(|a, b| a["clusterName"].as_str().cmp(&b["clusterName"].as_str()));
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
        status["aggregatedStatus"] = Value::Array(items.clone());
        let plural = if b.pointer("/metadata/namespace").is_some() {
            "resourcebindings"
        } else {
            "clusterresourcebindings"
        };
        if let Some(res) = reg.get("work.karmada.io", "v1alpha2", plural) {
            write_status(objects, &res, b, status).await?;
        }
        // The template's status.
        if t.resource.status {
            let generation = t
                .object
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let current = t.object.get("status").cloned().unwrap_or(json!({}));
            if let Some(new) =
                flotilla_karmada::status::aggregate(kind, &current, generation, &items)
                && new != current
            {
                write_status(objects, &t.resource, &t.object, new).await?;
            }
        }
    }
    Ok(())
}
