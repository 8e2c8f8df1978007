//! WorkloadRebalancer (`apps.karmada.io/v1alpha1`): each named workload's binding gets
//! `spec.rescheduleTriggeredAt`, so the scheduler places it again from scratch; the result
//! per workload goes into the rebalancer's status, and a finished rebalancer with
//! `ttlSecondsAfterFinished` is deleted when that runs out.
//!
//! Key: the rebalancer's store key.

use std::time::Duration;

use flotilla_karmada::types::{
    ObservedWorkload, RebalancerWorkload, WorkloadRebalancer, WorkloadRebalancerStatus,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::Decision;
use super::cache::State;
use super::keys::binding_key;
use super::write::{self, Write};

/// Result of a workload whose binding was asked to reschedule.
pub const SUCCESSFUL: &str = "Successful";
/// Result of a workload that could not be rebalanced.
pub const FAILED: &str = "Failed";
/// Why: the workload has no binding (it is not propagated, or does not exist).
pub const BINDING_NOT_FOUND: &str = "ReferencedBindingNotFound";

/// The binding key of a rebalanced workload.
fn binding_of(w: &RebalancerWorkload) -> String {
    let ns = (!w.namespace.is_empty()).then_some(w.namespace.as_str());
    binding_key(&w.kind, ns, &w.name)
}

/// What one rebalancer needs at `now`.
pub fn decide(state: &State, key: &str, now: Timestamp) -> Decision {
    let Some(obj) = state.rebalancer(key) else {
        return Decision::default();
    };
    let Some(res) = state.resource_of_key(key).cloned() else {
        return Decision::default();
    };
    let r: WorkloadRebalancer = match serde_json::from_value(obj.clone()) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(rebalancer = key, error = %e, "unreadable WorkloadRebalancer");
            return Decision::default();
        }
    };
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return Decision::default();
    }
    let created = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let generation = obj
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let previous = r
        .status
        .clone()
        .filter(|s| s.observed_generation == generation)
        .unwrap_or_default();
    let mut workloads = r.spec.workloads.clone();
    workloads.sort();
    workloads.dedup();
    let mut out = Decision::default();
    let mut observed = Vec::with_capacity(workloads.len());
    for w in workloads {
        if let Some(done) = previous
            .observed_workloads
            .iter()
            .find(|o| o.workload == w && !o.result.is_empty())
        {
            observed.push(done.clone());
            continue;
        }
        let bkey = binding_of(&w);
        let result = match (state.binding(&bkey), state.binding_resource(&bkey)) {
            (Some(b), Some(bres)) => {
                let asked = b
                    .pointer("/spec/rescheduleTriggeredAt")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if asked < created.as_str() {
                    let name = crate::api::meta::name(&b).to_owned();
                    let ns = b.pointer("/metadata/namespace").and_then(Value::as_str);
                    out.writes.push(Write::merge_patch(
                        &bres,
                        ns,
                        &name,
                        json!({"spec": {"rescheduleTriggeredAt": created}}),
                    ));
                }
                ObservedWorkload {
                    workload: w,
                    result: SUCCESSFUL.into(),
                    reason: String::new(),
                }
            }
            _ => ObservedWorkload {
                workload: w,
                result: FAILED.into(),
                reason: BINDING_NOT_FOUND.into(),
            },
        };
        observed.push(result);
    }
    let finish = previous.finish_time.clone().unwrap_or_else(|| {
        Timestamp::from_second(now.as_second())
            .unwrap_or(now)
            .to_string()
    });
    let status = WorkloadRebalancerStatus {
        observed_workloads: observed,
        observed_generation: generation,
        finish_time: Some(finish.clone()),
    };
    out.writes.extend(write::status(
        &res,
        &obj,
        serde_json::to_value(&status).unwrap_or(json!({})),
    ));
    if let Some(ttl) = r.spec.ttl_seconds_after_finished {
        let expires = finish.parse::<Timestamp>().ok().and_then(|f| {
            f.checked_add(SignedDuration::from_secs(i64::from(ttl.max(0))))
                .ok()
        });
        match expires {
            Some(at) if at > now => {
                let wait = at.duration_since(now).as_secs().max(0);
                out.after = Some(Duration::from_secs(
                    u64::try_from(wait).unwrap_or(0).saturating_add(1),
                ));
            }
            _ => {
                // Finished and expired: only the deletion is left to do.
                out.writes.clear();
                out.writes.push(Write::delete(&res, &obj));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::super::cache::tests::{put, state};
    use super::*;

    const R: &str = "/apps.karmada.io/workloadrebalancers/back";
    const B: &str = "/work.karmada.io/resourcebindings/demo/web-deployment";

    fn rebalancer(status: Value, ttl: Option<i32>) -> Value {
        json!({"apiVersion": "apps.karmada.io/v1alpha1", "kind": "WorkloadRebalancer",
            "metadata": {"name": "back", "generation": 1, "resourceVersion": "9",
                "creationTimestamp": "2026-11-30T12:00:00Z"},
            "spec": {"workloads": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web"},
                {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "gone"}],
                "ttlSecondsAfterFinished": ttl},
            "status": status})
    }

    fn now() -> Timestamp {
        "2026-11-30T12:00:01Z".parse().unwrap()
    }

    #[test]
    fn bindings_are_asked_to_reschedule_and_results_recorded() {
        let mut s = state();
        put(
            &mut s,
            B,
            json!({"apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
                "metadata": {"name": "web-deployment", "namespace": "demo", "resourceVersion": "3"},
                "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web"}}}),
        );
        put(&mut s, R, rebalancer(json!(null), None));
        let d = decide(&s, R, now());
        assert!(matches!(&d.writes[0], Write::Patch { name, patch, .. }
            if name == "web-deployment" && patch["spec"]["rescheduleTriggeredAt"] == "2026-11-30T12:00:00Z"));
        let Write::Status { object, .. } = &d.writes[1] else {
            panic!("{:?}", d.writes)
        };
        assert_eq!(
            object["status"],
            json!({"observedWorkloads": [
                {"workload": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "gone"},
                    "result": "Failed", "reason": "ReferencedBindingNotFound"},
                {"workload": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web"},
                    "result": "Successful"}],
                "observedGeneration": 1, "finishTime": "2026-11-30T12:00:01Z"})
        );
        assert_eq!(d.after, None);
        // Done: nothing more, even though the binding has not changed in the cache.
        put(&mut s, R, rebalancer(object["status"].clone(), None));
        assert!(decide(&s, R, now()).writes.is_empty());
    }

    #[test]
    fn a_finished_rebalancer_goes_when_its_ttl_runs_out() {
        let mut s = state();
        let done = json!({"observedWorkloads": [
            {"workload": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "gone"},
                "result": "Failed", "reason": "ReferencedBindingNotFound"},
            {"workload": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web"},
                "result": "Successful"}],
            "observedGeneration": 1, "finishTime": "2026-11-30T12:00:01Z"});
        put(&mut s, R, rebalancer(done, Some(60)));
        let d = decide(&s, R, now());
        assert!(d.writes.is_empty());
        assert_eq!(d.after, Some(Duration::from_secs(61)));
        let later: Timestamp = "2026-11-30T12:01:01Z".parse().unwrap();
        let d = decide(&s, R, later);
        assert!(matches!(&d.writes[..], [Write::Delete { name, .. }] if name == "back"));
    }
}
