//! When a binding must be (re)scheduled (Karmada's scheduling triggers).

use std::collections::HashSet;

use super::Strategy;
use crate::types::{Placement, ResourceBindingSpec, ResourceBindingStatus};

/// Binding annotation holding the placement (JSON) the last scheduling used.
pub const APPLIED_PLACEMENT_ANNOTATION: &str = "policy.karmada.io/applied-placement";

/// Why a binding is scheduled now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RescheduleTrigger {
    /// Never scheduled (no applied placement recorded).
    FirstSchedule,
    /// The placement differs from the applied one.
    PlacementChanged,
    /// The replica count no longer matches the result.
    ReplicasChanged,
    /// `spec.rescheduleTriggeredAt` is later than `status.lastScheduledTime` (fresh mode).
    ManualReschedule,
    /// Duplicated workloads and non-workloads follow the clusters continuously.
    Continuous,
    /// A target cluster is being deleted.
    TargetClusterDeleting,
}

/// Placement with only the `clusterAffinities` term in force, so edits to other terms do not
/// count as a change.
fn comparable(p: &Placement, observed: &str) -> Placement {
    let mut p = p.clone();
    if !p.cluster_affinities.is_empty() {
        let idx = p
            .cluster_affinities
            .iter()
            .position(|t| t.affinity_name == observed)
            .unwrap_or(0);
        p.cluster_affinities = vec![p.cluster_affinities[idx].clone()];
    }
    p
}

/// Decides whether and why a binding is scheduled, in Karmada's order of checks.
///
/// `applied` is the decoded `policy.karmada.io/applied-placement` annotation (None when
/// absent); `deleting_clusters` are the clusters being deleted. Timestamps are RFC 3339 in UTC
/// and compared as strings. Returns None when only `schedulerObservedGeneration` needs updating.
pub fn reschedule_trigger(
    spec: &ResourceBindingSpec,
    status: Option<&ResourceBindingStatus>,
    applied: Option<&Placement>,
    deleting_clusters: &HashSet<String>,
) -> Option<RescheduleTrigger> {
    let placement = spec.placement.clone().unwrap_or_default();
    let observed = status
        .map(|s| s.scheduler_observing_affinity_name.as_str())
        .unwrap_or("");
    let Some(applied) = applied else {
        return Some(RescheduleTrigger::FirstSchedule);
    };
    if comparable(&placement, observed) != comparable(applied, observed) {
        return Some(RescheduleTrigger::PlacementChanged);
    }
    let strategy = Strategy::of(&placement);
    let workload = spec.replicas > 0;
    if workload {
        let changed = if strategy == Strategy::Duplicated {
            spec.clusters.iter().any(|c| c.replicas != spec.replicas)
        } else {
            spec.clusters
                .iter()
                .map(|c| i64::from(c.replicas))
                .sum::<i64>()
                != i64::from(spec.replicas)
        };
        if changed {
            return Some(RescheduleTrigger::ReplicasChanged);
        }
    }
    if let (Some(at), Some(last)) = (
        spec.reschedule_triggered_at.as_deref(),
        status.and_then(|s| s.last_scheduled_time.as_deref()),
    ) && at > last
    {
        return Some(RescheduleTrigger::ManualReschedule);
    }
    if strategy == Strategy::Duplicated || !workload {
        return Some(RescheduleTrigger::Continuous);
    }
    if spec
        .clusters
        .iter()
        .any(|c| deleting_clusters.contains(&c.name))
    {
        return Some(RescheduleTrigger::TargetClusterDeleting);
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::{Value, json};

    use super::*;

    fn spec(v: Value) -> ResourceBindingSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn triggers() {
        let divided = json!({"replicaScheduling": {"replicaSchedulingType": "Divided"}});
        let p = |v: &Value| -> Placement { serde_json::from_value(v.clone()).unwrap() };
        let base = |replicas: i32, clusters: Value, placement: &Value| {
            spec(
                json!({"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "n"},
                "replicas": replicas, "clusters": clusters, "placement": placement}),
            )
        };
        let none = HashSet::new();
        let deleting: HashSet<String> = ["m1".to_string()].into_iter().collect();
        let terms = json!({"clusterAffinities": [{"affinityName": "a", "clusterNames": ["m1"]}, {"affinityName": "b", "clusterNames": ["m2"]}],
            "replicaScheduling": {"replicaSchedulingType": "Divided"}});
        let mut terms_edited = terms.clone();
        terms_edited["clusterAffinities"][1]["clusterNames"] = json!(["m3"]);
        let status_a: ResourceBindingStatus =
            serde_json::from_value(json!({"schedulerObservingAffinityName": "a",
            "lastScheduledTime": "2026-01-01T00:00:00Z"}))
            .unwrap();
        let status_b: ResourceBindingStatus =
            serde_json::from_value(json!({"schedulerObservingAffinityName": "b"})).unwrap();
        let mut manual = base(4, json!([{"name": "m1", "replicas": 4}]), &divided);
        manual.reschedule_triggered_at = Some("2026-02-01T00:00:00Z".into());
        type Row<'a> = (
            &'a str,
            ResourceBindingSpec,
            Option<&'a ResourceBindingStatus>,
            Option<Placement>,
            &'a HashSet<String>,
            Option<RescheduleTrigger>,
        );
        let cases: Vec<Row<'_>> = vec![
            (
                "first",
                base(3, json!([]), &divided),
                None,
                None,
                &none,
                Some(RescheduleTrigger::FirstSchedule),
            ),
            (
                "placement changed",
                base(3, json!([]), &divided),
                None,
                Some(p(&json!({}))),
                &none,
                Some(RescheduleTrigger::PlacementChanged),
            ),
            (
                "divided sum differs",
                base(5, json!([{"name": "m1", "replicas": 4}]), &divided),
                None,
                Some(p(&divided)),
                &none,
                Some(RescheduleTrigger::ReplicasChanged),
            ),
            (
                "divided steady",
                base(
                    4,
                    json!([{"name": "m1", "replicas": 1}, {"name": "m2", "replicas": 3}]),
                    &divided,
                ),
                None,
                Some(p(&divided)),
                &none,
                None,
            ),
            (
                "duplicated count differs",
                base(3, json!([{"name": "m1", "replicas": 2}]), &json!({})),
                None,
                Some(p(&json!({}))),
                &none,
                Some(RescheduleTrigger::ReplicasChanged),
            ),
            (
                "duplicated always",
                base(3, json!([{"name": "m1", "replicas": 3}]), &json!({})),
                None,
                Some(p(&json!({}))),
                &none,
                Some(RescheduleTrigger::Continuous),
            ),
            (
                "non-workload always",
                base(0, json!([{"name": "m1"}]), &divided),
                None,
                Some(p(&divided)),
                &none,
                Some(RescheduleTrigger::Continuous),
            ),
            (
                "manual",
                manual,
                Some(&status_a),
                Some(p(&divided)),
                &none,
                Some(RescheduleTrigger::ManualReschedule),
            ),
            (
                "target deleting",
                base(4, json!([{"name": "m1", "replicas": 4}]), &divided),
                None,
                Some(p(&divided)),
                &deleting,
                Some(RescheduleTrigger::TargetClusterDeleting),
            ),
            (
                "other term edited",
                base(4, json!([{"name": "m1", "replicas": 4}]), &terms_edited),
                Some(&status_a),
                Some(p(&terms)),
                &none,
                None,
            ),
            (
                "term in force edited",
                base(4, json!([{"name": "m2", "replicas": 4}]), &terms_edited),
                Some(&status_b),
                Some(p(&terms)),
                &none,
                Some(RescheduleTrigger::PlacementChanged),
            ),
        ];
        for (name, s, st, applied, del, want) in cases {
            assert_eq!(
                reschedule_trigger(&s, st, applied.as_ref(), del),
                want,
                "{name}"
            );
        }
    }
}
