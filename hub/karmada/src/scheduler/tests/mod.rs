#![allow(clippy::unwrap_used)]

mod division;
mod extremes;
mod filters;
mod spread;

use serde_json::{Value, json};

use super::*;
use crate::types::Taint;

pub(super) fn info(
    name: &str,
    labels: &[(&str, &str)],
    provider: &str,
    region: &str,
    zone: &str,
) -> ClusterInfo {
    let mut summary = ResourceSummaryInfo::default();
    summary.allocatable.insert("pods".into(), 1000 * 1000);
    summary.allocatable.insert("cpu".into(), 1000 * 1000);
    summary
        .allocatable
        .insert("memory".into(), 4 * (1i128 << 40) * 1000);
    ClusterInfo {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        provider: provider.into(),
        region: region.into(),
        zones: if zone.is_empty() {
            vec![]
        } else {
            vec![zone.into()]
        },
        taints: vec![],
        readiness: Readiness::Ready,
        deleting: false,
        api_enablements: [
            "apps/v1/Deployment",
            "v1/ConfigMap",
            "v1/Pod",
            "batch/v1/Job",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        resource_summary: Some(summary),
    }
}

/// Fixture F of the reference.
pub(super) fn fixture() -> Vec<ClusterInfo> {
    vec![
        info(
            "m1",
            &[("env", "prod"), ("tier", "gold")],
            "aws",
            "us-east",
            "us-east-1a",
        ),
        info("m2", &[("env", "prod")], "aws", "us-west", "us-west-2a"),
        info(
            "m3",
            &[("env", "dev")],
            "gcp",
            "eu-central",
            "eu-central-1a",
        ),
    ]
}

/// Sets the free capacity (in nginx pods) of each cluster.
pub(super) fn with_free(mut clusters: Vec<ClusterInfo>, free: &[i128]) -> Vec<ClusterInfo> {
    for (c, f) in clusters.iter_mut().zip(free) {
        if let Some(s) = c.resource_summary.as_mut() {
            s.allocatable.insert("pods".into(), f * 1000);
        }
    }
    clusters
}

pub(super) fn taint(key: &str, value: &str, effect: &str) -> Taint {
    Taint {
        key: key.into(),
        value: value.into(),
        effect: effect.into(),
        time_added: None,
    }
}

pub(super) fn input(placement: Value, replicas: i32) -> ScheduleInput {
    ScheduleInput {
        placement: serde_json::from_value(placement).unwrap(),
        replicas,
        replica_requests: [("cpu".to_string(), Quantity("100m".into()))]
            .into_iter()
            .collect(),
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        template_uid: String::new(),
        ..Default::default()
    }
}

pub(super) fn targets(v: &[(&str, i32)]) -> Vec<TargetCluster> {
    v.iter()
        .map(|(n, r)| TargetCluster {
            name: n.to_string(),
            replicas: *r,
            components: vec![],
        })
        .collect()
}

pub(super) fn result(o: &ScheduleOutcome) -> Vec<(String, i32)> {
    o.targets
        .iter()
        .map(|t| (t.name.clone(), t.replicas))
        .collect()
}

pub(super) fn pairs(v: &[(&str, i32)]) -> Vec<(String, i32)> {
    v.iter().map(|(n, r)| (n.to_string(), *r)).collect()
}

pub(super) fn static_weights(w: &[(&str, i64)]) -> Value {
    let list: Vec<Value> = w
        .iter()
        .map(|(n, w)| json!({"targetCluster": {"clusterNames": [n]}, "weight": w}))
        .collect();
    json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
        "weightPreference": {"staticWeightList": list}}})
}

pub(super) fn dynamic() -> Value {
    json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
        "weightPreference": {"dynamicWeight": "AvailableReplicas"}}})
}

pub(super) fn aggregated() -> Value {
    json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}})
}

pub(super) struct Case {
    pub name: &'static str,
    pub clusters: Vec<ClusterInfo>,
    pub input: ScheduleInput,
    /// Expected result; `None` = scheduling fails with `reason`.
    pub want: Option<Vec<(&'static str, i32)>>,
    pub reason: ScheduleReason,
}

pub(super) fn ok(
    name: &'static str,
    clusters: Vec<ClusterInfo>,
    input: ScheduleInput,
    want: &[(&'static str, i32)],
) -> Case {
    Case {
        name,
        clusters,
        input,
        want: Some(want.to_vec()),
        reason: ScheduleReason::Success,
    }
}

pub(super) fn fail(
    name: &'static str,
    clusters: Vec<ClusterInfo>,
    input: ScheduleInput,
    reason: ScheduleReason,
) -> Case {
    Case {
        name,
        clusters,
        input,
        want: None,
        reason,
    }
}

pub(super) fn prev(mut i: ScheduleInput, p: &[(&str, i32)]) -> ScheduleInput {
    i.previous = targets(p);
    i
}

pub(super) fn run(cases: Vec<Case>) {
    for c in cases {
        let out = schedule(&c.input, &c.clusters);
        assert_eq!(out.reason, c.reason, "{}: {}", c.name, out.message);
        match c.want {
            Some(w) => {
                assert!(out.scheduled, "{}", c.name);
                assert_eq!(
                    result(&out),
                    pairs(&w),
                    "{}: {}",
                    c.name,
                    out.diagnosis.summary()
                );
            }
            None => {
                assert!(!out.scheduled, "{}", c.name);
                // Decision 4: the previous result stays.
                let mut p = c.input.previous.clone();
                p.sort_by(|a, b| a.name.cmp(&b.name));
                assert_eq!(out.targets, p, "{}", c.name);
            }
        }
    }
}
