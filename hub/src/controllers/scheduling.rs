//! The scheduler's controller: fills each binding's `spec.clusters` and records why.

use flotilla_karmada::scheduler::{ClusterInfo, ScheduleInput, schedule};
use flotilla_karmada::types::ResourceBinding;
use serde_json::{Value, json};

use super::snapshot::Snapshot;
use super::{condition, write_status};
use crate::api::error::ApiError;
use crate::api::objects::Objects;

/// Annotation holding the last scheduling decision's explanation.
pub const DIAGNOSIS_ANNOTATION: &str = "scheduling.flotilla.io/diagnosis";

/// Schedules every binding whose result or status is out of date.
pub async fn reconcile(objects: &Objects, snap: &Snapshot) -> Result<(), ApiError> {
    let clusters: Vec<ClusterInfo> = snap
        .clusters
        .iter()
        .filter_map(|c| ClusterInfo::from_cluster_json(c).ok())
        .collect();
    let reg = objects.registry();
    for b in snap.bindings.values() {
        if b.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let Ok(typed) = serde_json::from_value::<ResourceBinding>(b.clone()) else {
            tracing::warn!(binding = %crate::api::meta::name(b), "binding cannot be read; skipping");
            continue;
        };
        let input = ScheduleInput::from_binding(&typed.spec, typed.status.as_ref());
        let out = schedule(&input, &clusters);
        let targets = serde_json::to_value(&out.targets).unwrap_or(json!([]));
        let summary = out.diagnosis.summary();
        let res_plural = if b.pointer("/metadata/namespace").is_some() {
            "resourcebindings"
        } else {
            "clusterresourcebindings"
        };
        let Some(res) = reg.get("work.karmada.io", "v1alpha2", res_plural) else {
            continue;
        };
        let current_targets = b.pointer("/spec/clusters").cloned().unwrap_or(json!([]));
        let current_summary = b
            .pointer(&format!(
                "/metadata/annotations/{}",
                DIAGNOSIS_ANNOTATION.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut latest = b.clone();
        if current_targets != targets || current_summary != summary {
            let mut new = b.clone();
            new["spec"]["clusters"] = targets;
            new["metadata"]["annotations"][DIAGNOSIS_ANNOTATION] = json!(summary);
            let ns = b.pointer("/metadata/namespace").and_then(Value::as_str);
            match objects
                .update(
                    &res,
                    ns,
                    crate::api::meta::name(b),
                    new,
                    None,
                    &super::write_opts(),
                )
                .await
            {
                Ok(w) => latest = w.object,
                Err(e) if e.reason == "Conflict" || e.reason == "NotFound" => continue,
                Err(e) => return Err(e),
            }
        }
        let prev_cond = latest
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Scheduled"));
        let message = if out.message.is_empty() {
            summary.clone()
        } else {
            out.message.clone()
        };
        let scheduled = condition(
            "Scheduled",
            out.scheduled,
            out.reason.as_str(),
            &message,
            prev_cond,
        );
        let mut status = latest.get("status").cloned().unwrap_or(json!({}));
        let mut conditions: Vec<Value> = status
            .get("conditions")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter(|c| c["type"] != "Scheduled")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        conditions.insert(0, scheduled);
        status["conditions"] = Value::Array(conditions);
        status["schedulerObservedGeneration"] = latest
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(1));
        match &out.affinity_name {
            Some(n) => status["schedulerObservingAffinityName"] = json!(n),
            None => {
                if let Some(m) = status.as_object_mut() {
                    m.remove("schedulerObservingAffinityName");
                }
            }
        }
        if out.scheduled && status.get("lastScheduledTime").is_none() {
            status["lastScheduledTime"] = json!(crate::api::meta::now());
        }
        write_status(objects, &res, &latest, status).await?;
    }
    Ok(())
}
