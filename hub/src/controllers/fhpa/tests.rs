#![allow(clippy::unwrap_used)]
use flotilla_proto::v1::ResourceMetricSums;

use super::*;
use crate::controllers::cache::tests::state;

fn fhpa(min: i64, max: i64) -> Value {
    json!({"apiVersion": "autoscaling.karmada.io/v1alpha1", "kind": "FederatedHPA",
        "metadata": {"name": "web", "namespace": "demo", "resourceVersion": "3", "generation": 1, "uid": "u1"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": min, "maxReplicas": max,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}]}})
}

fn template(replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo"}, "spec": {"replicas": replicas}})
}

fn binding() -> Value {
    json!({"metadata": {"name": "web-deployment", "namespace": "demo"},
        "spec": {"clusters": [{"name": "m1", "replicas": 1}, {"name": "m2", "replicas": 1}]}})
}

/// A cluster's report: `ready` pods of 100m request each, using `usage` milli-cpu in all.
fn report(ready: u32, usage: i64) -> Arc<WorkloadMetricsReport> {
    Arc::new(WorkloadMetricsReport {
        pods: ready,
        resources: vec![ResourceMetricSums {
            name: "cpu".into(),
            usage_milli: usage,
            request_milli: i64::from(ready) * 100,
            ready,
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn resources() -> (Arc<Resource>, Arc<Resource>, Arc<Resource>) {
    let s = state();
    (
        s.resource_of_key(prefix::FHPA).cloned().unwrap(),
        s.resource_of_key(prefix::DEPLOYMENTS).cloned().unwrap(),
        s.resource_of_key(prefix::RB).cloned().unwrap(),
    )
}

fn now() -> jiff::Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

#[test]
fn scales_on_the_pods_of_every_cluster() {
    let (res, deploy, rb) = resources();
    let f = fhpa(2, 10);
    let t = template(2);
    let b = binding();
    // One pod per cluster at 150% of its request: 2 * 1.5 / 0.5 = 6 replicas, limited to
    // max(2 * 2, 4) = 4 in one step (the HPA's rate without a behavior).
    let reports: BTreeMap<String, _> = [
        ("m1".to_owned(), report(1, 150)),
        ("m2".to_owned(), report(1, 150)),
    ]
    .into();
    let out = decide(
        &Inputs {
            fhpa: &f,
            res: &res,
            template: Some(&t),
            target_res: Some(&deploy),
            binding: Some((&b, &rb)),
            reports: &reports,
        },
        &HpaHistory::default(),
        now(),
    );
    assert!(
        matches!(&out.writes[0], Write::Scale { replicas: 4, manager: MANAGER, name, .. } if name == "web"),
        "{:?}",
        out.writes
    );
    assert!(out.writes.iter().any(|w| matches!(
        w,
        Write::Event {
            reason: "SuccessfulRescale",
            ..
        }
    )));
    let Some(Write::Patch { patch, .. }) =
        out.writes.iter().find(|w| matches!(w, Write::Patch { .. }))
    else {
        panic!("no decision record: {:?}", out.writes)
    };
    let record: Value = serde_json::from_str(
        patch["metadata"]["annotations"][DECISION_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (record["from"].as_i64(), record["to"].as_i64()),
        (Some(2), Some(4))
    );
    assert_eq!(record["clusters"]["m2"]["resources"][0]["usage"], "150m");
    let Some(Write::Status { object, .. }) = out.writes.last() else {
        panic!()
    };
    assert_eq!(object["status"]["desiredReplicas"], 4);
    let limited = object["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ScalingLimited")
        .unwrap()
        .clone();
    assert_eq!(
        (limited["status"].as_str(), limited["reason"].as_str()),
        (Some("True"), Some("ScaleUpLimit"))
    );
    assert_eq!(
        object["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
        150
    );
    // With one cluster reporting, only its pod counts: ceil(1 * 1.5 / 0.5) = 3.
    let one: BTreeMap<String, _> = [("m1".to_owned(), report(1, 150))].into();
    let out = decide(
        &Inputs {
            fhpa: &f,
            res: &res,
            template: Some(&t),
            target_res: Some(&deploy),
            binding: Some((&b, &rb)),
            reports: &one,
        },
        &HpaHistory::default(),
        now(),
    );
    assert!(
        matches!(&out.writes[0], Write::Scale { replicas: 3, .. }),
        "{:?}",
        out.writes
    );
}

#[test]
fn no_metrics_scales_nothing_and_says_why() {
    let (res, deploy, rb) = resources();
    let f = fhpa(2, 10);
    let t = template(2);
    let b = binding();
    let out = decide(
        &Inputs {
            fhpa: &f,
            res: &res,
            template: Some(&t),
            target_res: Some(&deploy),
            binding: Some((&b, &rb)),
            reports: &BTreeMap::new(),
        },
        &HpaHistory::default(),
        now(),
    );
    assert!(
        !out.writes.iter().any(|w| matches!(w, Write::Scale { .. })),
        "{:?}",
        out.writes
    );
    let Some(Write::Status { object, .. }) = out.writes.last() else {
        panic!("{:?}", out.writes)
    };
    let active = object["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "ScalingActive")
        .unwrap()
        .clone();
    assert_eq!(active["status"], "False");
    assert_eq!(active["reason"], "FailedGetResourceMetric");
}

#[test]
fn a_missing_or_unpropagated_target_is_reported() {
    let (res, deploy, _) = resources();
    let f = fhpa(2, 10);
    let out = decide(
        &Inputs {
            fhpa: &f,
            res: &res,
            template: None,
            target_res: None,
            binding: None,
            reports: &BTreeMap::new(),
        },
        &HpaHistory::default(),
        now(),
    );
    let Some(Write::Status { object, .. }) = out.writes.last() else {
        panic!("{:?}", out.writes)
    };
    assert_eq!(
        object["status"]["conditions"][0]["reason"],
        "FailedGetScale"
    );
    assert!(
        object["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Deployment/web not found")
    );
    assert!(matches!(
        &out.writes[0],
        Write::Event {
            reason: "FailedGetScale",
            ..
        }
    ));
    let t = template(2);
    let out = decide(
        &Inputs {
            fhpa: &f,
            res: &res,
            template: Some(&t),
            target_res: Some(&deploy),
            binding: None,
            reports: &BTreeMap::new(),
        },
        &HpaHistory::default(),
        now(),
    );
    assert!(!out.writes.iter().any(|w| matches!(w, Write::Scale { .. })));
    let Some(Write::Status { object, .. }) = out.writes.last() else {
        panic!()
    };
    assert!(
        object["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not propagated")
    );
}
