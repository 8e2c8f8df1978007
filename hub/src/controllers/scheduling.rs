//! The scheduler's controller: fills a binding's `spec.clusters` when one of Karmada's
//! scheduling triggers fires, and records why on the binding.
//!
//! Key: a binding's store key.

use std::collections::HashSet;
use std::sync::Arc;

use flotilla_karmada::scheduler::{
    APPLIED_PLACEMENT_ANNOTATION, ClusterInfo, RescheduleTrigger, ScheduleInput, ScheduleOutcome,
    reschedule_trigger, schedule,
};
use flotilla_karmada::types::{Placement, ResourceBinding};
use serde_json::{Value, json};

use super::cache::State;
use super::write::{Write, condition};

/// Annotation holding the last scheduling decision's explanation.
pub const DIAGNOSIS_ANNOTATION: &str = "scheduling.flotilla.io/diagnosis";
/// Event reason of a scheduling run that placed the binding (Karmada's).
pub const SCHEDULED: &str = "ScheduleBindingSucceed";
/// Event reason of a scheduling run that found no placement (Karmada's).
pub const SCHEDULE_FAILED: &str = "ScheduleBindingFailed";

/// The Events of one scheduling run: a failure on the binding and on its resource template
/// (as Karmada records them), a success that changed the placement on the binding only
/// (Karmada records every run on both; at thousands of bindings that doubles the writes of
/// a fleet-wide change).
fn schedule_events(
    state: &State,
    b: &Value,
    res: &Arc<crate::registry::Resource>,
    out: &ScheduleOutcome,
) -> Vec<Write> {
    let (type_, reason, message) = if out.scheduled {
        let result: Vec<String> = out
            .targets
            .iter()
            .map(|t| format!("{}:{}", t.name, t.replicas))
            .collect();
        (
            "Normal",
            SCHEDULED,
            format!(
                "Binding has been scheduled successfully. Result: {{{}}}",
                result.join(", ")
            ),
        )
    } else {
        let why = if out.message.is_empty() {
            out.diagnosis.summary()
        } else {
            out.message.clone()
        };
        (
            "Warning",
            SCHEDULE_FAILED,
            format!("{why}; the current placement is kept"),
        )
    };
    let mut writes = vec![Write::Event {
        res: res.clone(),
        object: b.clone(),
        type_,
        reason,
        message: message.clone(),
    }];
    if !out.scheduled
        && let Some(tkey) = state.template_key_of_binding(b)
        && let Some(template) = state.template(&tkey)
        && let Some(tres) = state.resource_of_key(&tkey)
    {
        writes.push(Write::Event {
            res: tres.clone(),
            object: template,
            type_,
            reason,
            message,
        });
    }
    writes
}

fn annotation<'a>(b: &'a Value, key: &str) -> Option<&'a str> {
    b.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// The `Scheduled` part of a binding's status after an outcome (or only the observed
/// generation when nothing was scheduled). `stamp`: a requested reschedule ran, so
/// `lastScheduledTime` moves past the request.
fn scheduled_status(b: &Value, outcome: Option<&ScheduleOutcome>, stamp: bool) -> Value {
    let mut status = b.get("status").cloned().unwrap_or(json!({}));
    if let Some(out) = outcome {
        let prev = status
            .get("conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Scheduled"));
        let message = if out.message.is_empty() {
            out.diagnosis.summary()
        } else {
            out.message.clone()
        };
        let scheduled = condition(
            "Scheduled",
            out.scheduled,
            out.reason.as_str(),
            &message,
            prev,
        );
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
        match &out.affinity_name {
            Some(n) => status["schedulerObservingAffinityName"] = json!(n),
            None => {
                if let Some(m) = status.as_object_mut() {
                    m.remove("schedulerObservingAffinityName");
                }
            }
        }
        if out.scheduled && (stamp || status.get("lastScheduledTime").is_none()) {
            status["lastScheduledTime"] = json!(crate::api::meta::now());
        }
    }
    status["schedulerObservedGeneration"] = b
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    status
}

/// What the scheduler writes for one binding, given every cluster's scheduler view.
pub fn decide(state: &State, key: &str, clusters: &[ClusterInfo]) -> Vec<Write> {
    let Some(b) = state.binding(key) else {
        return vec![];
    };
    // An attached binding (propagateDeps) has no placement: it follows its `requiredBy`.
    if b.pointer("/metadata/deletionTimestamp").is_some() || b.pointer("/spec/placement").is_none()
    {
        return vec![];
    }
    let Some(res) = state.binding_resource(key) else {
        return vec![];
    };
    let typed = match serde_json::from_value::<ResourceBinding>(b.clone()) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(binding = key, error = %e, "binding cannot be read; not scheduling it");
            return vec![];
        }
    };
    let applied: Option<Placement> =
        annotation(&b, APPLIED_PLACEMENT_ANNOTATION).and_then(|s| serde_json::from_str(s).ok());
    let deleting: HashSet<String> = clusters
        .iter()
        .filter(|c| c.deleting)
        .map(|c| c.name.clone())
        .collect();
    let trigger = reschedule_trigger(
        &typed.spec,
        typed.status.as_ref(),
        applied.as_ref(),
        &deleting,
    );
    // A lost condition is recomputed, and so is a failure (the clusters may fit now, or the
    // failover put the old placement back).
    let has_condition = b
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Scheduled" && c["status"] == "True")
        });
    let Some(trigger) = trigger else {
        // The result stands. If the write of its condition was lost (the status write after
        // the spec write failed), the condition is recomputed; the targets are kept.
        let outcome = (!has_condition).then(|| {
            let input = ScheduleInput::from_binding(&typed.spec, typed.status.as_ref());
            Arc::new(schedule(&input, clusters))
        });
        let edit: super::write::StatusEdit =
            Arc::new(move |obj: &Value| scheduled_status(obj, outcome.as_deref(), false));
        return Write::edit_status(&res, &b, edit).into_iter().collect();
    };
    let mut input = ScheduleInput::from_binding(&typed.spec, typed.status.as_ref());
    input.fresh = trigger == RescheduleTrigger::ManualReschedule;
    let out = schedule(&input, clusters);
    let targets = serde_json::to_value(&out.targets).unwrap_or(json!([]));
    let targets_value = targets.clone();
    let summary = out.diagnosis.summary();
    let placement = b.pointer("/spec/placement").cloned().unwrap_or(json!({}));
    let placement_text = serde_json::to_string(&placement).unwrap_or_default();
    let mut writes = Vec::new();
    let current_targets = b.pointer("/spec/clusters").cloned().unwrap_or(json!([]));
    let applied_changes =
        out.scheduled && annotation(&b, APPLIED_PLACEMENT_ANNOTATION) != Some(&placement_text);
    if current_targets != targets
        || annotation(&b, DIAGNOSIS_ANNOTATION) != Some(&summary)
        || applied_changes
    {
        let mut new = b.clone();
        new["spec"]["clusters"] = targets;
        new["metadata"]["annotations"][DIAGNOSIS_ANNOTATION] = json!(summary);
        if out.scheduled {
            new["metadata"]["annotations"][APPLIED_PLACEMENT_ANNOTATION] = json!(placement_text);
        }
        writes.push(Write::Update {
            res: res.clone(),
            object: new,
        });
    }
    let events = if out.scheduled && current_targets == targets_value {
        Vec::new()
    } else {
        schedule_events(state, &b, &res, &out)
    };
    let outcome = Arc::new(out);
    let stamp = trigger == RescheduleTrigger::ManualReschedule;
    let edit: super::write::StatusEdit =
        Arc::new(move |obj: &Value| scheduled_status(obj, Some(&outcome), stamp));
    // After a spec update the status always needs writing (the generation moved).
    match writes.is_empty() {
        true => writes.extend(Write::edit_status(&res, &b, edit)),
        false => writes.push(Write::EditStatus {
            res,
            ns: b
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned),
            name: crate::api::meta::name(&b).to_owned(),
            edit,
        }),
    }
    writes.extend(events);
    writes
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::super::cache::tests::{put, state};
    use super::*;

    const B: &str = "/work.karmada.io/resourcebindings/demo/web-deployment";

    fn cluster(name: &str) -> Value {
        json!({"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster", "metadata": {"name": name},
            "spec": {"syncMode": "Pull"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "apiEnablements": [{"groupVersion": "apps/v1", "resources": [{"name": "deployments", "kind": "Deployment"}]}]}})
    }

    fn binding(extra_annotations: Value, clusters: Value) -> Value {
        json!({"apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
            "metadata": {"name": "web-deployment", "namespace": "demo", "generation": 1, "resourceVersion": "5",
                "annotations": extra_annotations},
            "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web", "uid": "u"},
                "replicas": 4, "clusters": clusters,
                "placement": {"clusterAffinity": {"clusterNames": ["m1", "m2"]},
                    "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted"}}}})
    }

    fn with_clusters(s: &mut State) -> Arc<Vec<ClusterInfo>> {
        put(s, "/cluster.karmada.io/clusters/m1", cluster("m1"));
        put(s, "/cluster.karmada.io/clusters/m2", cluster("m2"));
        s.cluster_infos()
    }

    #[test]
    fn first_schedule_divides_and_records_the_applied_placement() {
        let mut s = state();
        let clusters = with_clusters(&mut s);
        put(&mut s, B, binding(json!({}), json!([])));
        let w = decide(&s, B, &clusters);
        match &w[0] {
            Write::Update { object, .. } => {
                assert_eq!(
                    object["spec"]["clusters"],
                    json!([{"name": "m1", "replicas": 2}, {"name": "m2", "replicas": 2}])
                );
                assert!(
                    object["metadata"]["annotations"][APPLIED_PLACEMENT_ANNOTATION]
                        .as_str()
                        .is_some()
                );
            }
            other => panic!("expected an update, got {other:?}"),
        }
        assert!(matches!(&w[1], Write::EditStatus { .. }));
        assert!(
            matches!(&w[2], Write::Event { reason, message, .. }
                if *reason == SCHEDULED && message.ends_with("Result: {m1:2, m2:2}")),
            "{w:?}"
        );
    }

    #[test]
    fn a_failed_schedule_keeps_the_placement_and_says_why() {
        let mut s = state();
        let clusters = with_clusters(&mut s);
        let mut b = binding(json!({}), json!([{"name": "m1", "replicas": 4}]));
        b["spec"]["placement"]["clusterAffinity"]["clusterNames"] = json!(["gone"]);
        put(&mut s, B, b);
        let w = decide(&s, B, &clusters);
        assert!(
            w.iter()
                .any(|w| matches!(w, Write::Event { reason, type_, message, .. }
                if *reason == SCHEDULE_FAILED && *type_ == "Warning"
                    && message.ends_with("the current placement is kept"))),
            "{w:?}"
        );
        assert!(
            !w.iter().any(|w| matches!(w, Write::Update { object, .. }
                if object["spec"]["clusters"] != json!([{"name": "m1", "replicas": 4}]))),
            "{w:?}"
        );
    }

    #[test]
    fn a_scheduled_divided_binding_is_not_rescheduled() {
        let mut s = state();
        let clusters = with_clusters(&mut s);
        let placement = binding(json!({}), json!([]))["spec"]["placement"].to_string();
        let mut b = binding(
            json!({APPLIED_PLACEMENT_ANNOTATION: placement}),
            json!([{"name": "m1", "replicas": 3}, {"name": "m2", "replicas": 1}]),
        );
        b["status"] = json!({"schedulerObservedGeneration": 1});
        put(&mut s, B, b);
        // An uneven split stays as it is: no trigger fired. Its lost condition comes back.
        let w = decide(&s, B, &clusters);
        let [Write::EditStatus { edit, .. }] = &w[..] else {
            panic!("{w:?}")
        };
        let status = edit(&s.binding(B).unwrap());
        assert_eq!(status["conditions"][0]["type"], "Scheduled");
        assert_eq!(status["conditions"][0]["status"], "True");
        let mut b = s.binding(B).unwrap();
        b["status"] = status;
        put(&mut s, B, b);
        assert!(decide(&s, B, &clusters).is_empty());
        assert_eq!(
            s.binding(B).unwrap()["spec"]["clusters"][0]["replicas"],
            3,
            "the split is kept"
        );
    }

    #[test]
    fn a_replica_change_reschedules() {
        let mut s = state();
        let clusters = with_clusters(&mut s);
        let placement = binding(json!({}), json!([]))["spec"]["placement"].to_string();
        let b = binding(
            json!({APPLIED_PLACEMENT_ANNOTATION: placement}),
            json!([{"name": "m1", "replicas": 1}, {"name": "m2", "replicas": 1}]),
        );
        put(&mut s, B, b);
        let w = decide(&s, B, &clusters);
        assert!(
            matches!(&w[0], Write::Update { object, .. } if object["spec"]["clusters"][0]["replicas"] == 2),
            "{w:?}"
        );
    }
}
