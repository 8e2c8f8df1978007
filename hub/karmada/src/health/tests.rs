//! Table tests of member health.

use serde_json::{Value, json};

use super::*;

fn deploy(spec: i64, generation: i64, status: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": generation}, "spec": {"replicas": spec}, "status": status})
}

#[test]
fn deployment_health() {
    use Health::*;
    let done = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
        "conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]});
    let with = |patch: Value| {
        let mut s = done.clone();
        for (k, v) in patch.as_object().into_iter().flatten() {
            s[k] = v.clone();
        }
        s
    };
    let cases = [
        (deploy(3, 2, done.clone()), Healthy),
        (deploy(3, 3, done.clone()), Unhealthy), // generation not observed
        (deploy(4, 2, done.clone()), Unhealthy), // scaling up
        (deploy(3, 2, with(json!({"replicas": 4}))), Unhealthy), // old replica left
        (
            deploy(3, 2, with(json!({"availableReplicas": 2}))),
            Unhealthy,
        ),
        (deploy(3, 2, with(json!({"readyReplicas": 2}))), Unhealthy),
        (deploy(3, 2, with(json!({"updatedReplicas": 2}))), Unhealthy),
        (
            deploy(
                3,
                2,
                with(json!({"conditions": [{"type": "Available", "status": "False"}]})),
            ),
            Unhealthy,
        ),
        (
            deploy(
                3,
                2,
                with(
                    json!({"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
                ),
            ),
            Unhealthy,
        ),
        // Conditions not reported (yet): the counters decide.
        (deploy(3, 2, with(json!({"conditions": null}))), Healthy),
        (deploy(0, 1, json!({"observedGeneration": 1})), Healthy),
        (deploy(1, 1, json!({})), Unhealthy),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "status": {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}}),
            Healthy,
        ),
    ];
    for (i, (obj, want)) in cases.into_iter().enumerate() {
        assert_eq!(health(&obj), want, "case {i}: {obj}");
    }
}

#[test]
fn health_per_kind() {
    use Health::*;
    let sts = |spec: Value, status: Value| json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"generation": 1}, "spec": spec, "status": status});
    let sts_done = json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "currentReplicas": 2, "updatedReplicas": 2, "currentRevision": "r2", "updateRevision": "r2"});
    let ds = |status: Value| json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"generation": 1}, "status": status});
    let cases: Vec<(Value, Health)> = vec![
        (sts(json!({"replicas": 2}), sts_done.clone()), Healthy),
        (sts(json!({"replicas": 3}), sts_done.clone()), Unhealthy),
        (
            sts(
                json!({"replicas": 2}),
                json!({"observedGeneration": 1, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 1, "currentRevision": "r1", "updateRevision": "r2"}),
            ),
            Unhealthy,
        ),
        (
            sts(
                json!({"replicas": 2, "updateStrategy": {"type": "OnDelete"}}),
                json!({"observedGeneration": 1, "readyReplicas": 2, "availableReplicas": 2, "currentRevision": "r1", "updateRevision": "r2"}),
            ),
            Healthy,
        ),
        (
            sts(
                json!({"replicas": 4, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
                json!({"observedGeneration": 1, "readyReplicas": 4, "availableReplicas": 4, "updatedReplicas": 2, "currentRevision": "r1", "updateRevision": "r2"}),
            ),
            Healthy,
        ),
        (
            sts(
                json!({"replicas": 4, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
                json!({"observedGeneration": 1, "readyReplicas": 4, "availableReplicas": 4, "updatedReplicas": 1}),
            ),
            Unhealthy,
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "availableReplicas": 2}}),
            Healthy,
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "availableReplicas": 2}}),
            Unhealthy,
        ),
        (
            ds(
                json!({"observedGeneration": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 2, "numberReady": 2}),
            ),
            Healthy,
        ),
        (
            ds(
                json!({"observedGeneration": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 2, "updatedNumberScheduled": 1, "numberAvailable": 2, "numberReady": 2}),
            ),
            Unhealthy,
        ),
        (
            ds(
                json!({"observedGeneration": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 1, "numberReady": 2}),
            ),
            Unhealthy,
        ),
        (
            ds(json!({"observedGeneration": 1, "desiredNumberScheduled": 0})),
            Healthy,
        ),
        (
            json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"active": 1}}),
            Healthy,
        ),
        (
            json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
            Healthy,
        ),
        (
            json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True"}]}}),
            Unhealthy,
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
            Healthy,
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}}),
            Unhealthy,
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Succeeded"}}),
            Healthy,
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Pending"}}),
            Unhealthy,
        ),
        (
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}}),
            Healthy,
        ),
        (
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}}),
            Unhealthy,
        ),
        (
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "ClusterIP"}}),
            Healthy,
        ),
        (
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}}),
            Unhealthy,
        ),
        (
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": ""}]}}}),
            Unhealthy,
        ),
        (
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}}),
            Healthy,
        ),
        (
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}}),
            Healthy,
        ),
        (
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress"}),
            Unhealthy,
        ),
        (
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "status": {"currentHealthy": 1, "desiredHealthy": 2}}),
            Unhealthy,
        ),
        (
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "status": {"currentHealthy": 2, "desiredHealthy": 2}}),
            Healthy,
        ),
        (
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "status": {"conditions": [{"type": "Established", "status": "True"}]}}),
            Healthy,
        ),
        (
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}),
            Unhealthy,
        ),
        (json!({"apiVersion": "v1", "kind": "ConfigMap"}), Healthy),
        (
            json!({"apiVersion": "example.com/v1", "kind": "Deployment"}),
            Healthy,
        ), // not apps/v1
        (json!({"apiVersion": "v1"}), Unknown),
        (json!(null), Unknown),
    ];
    for (obj, want) in cases {
        assert_eq!(health(&obj), want, "{obj}");
    }
    assert_eq!(Health::Unknown.as_str(), "Unknown");
    assert_eq!(Health::Healthy.to_string(), "Healthy");
    assert_eq!(Health::Unhealthy.as_str(), "Unhealthy");
}

#[test]
fn extreme_counts_do_not_overflow() {
    use Health::*;
    let sts = |replicas: i64, partition: i64, updated: i64| {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"generation": 1},
            "spec": {"replicas": replicas, "updateStrategy": {"rollingUpdate": {"partition": partition}}},
            "status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": updated}})
    };
    let cases = [
        // A partition larger than any count: nothing has to be updated.
        (sts(3, i64::MAX, 0), Healthy),
        (sts(i64::MIN, 1, i64::MIN), Healthy),
        (sts(i64::MAX, 1, i64::MAX), Unhealthy),
        (sts(3, 1, 2), Healthy),
        (sts(3, 1, 1), Unhealthy),
    ];
    for (obj, want) in cases {
        assert_eq!(health(&obj), want, "{obj}");
    }
}
