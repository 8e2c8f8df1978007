//! What the agent reports about a member object: the reflected status (Karmada's per-kind
//! subset) and a health verdict, computed kstatus-style on the object's JSON.

use flotilla_proto::v1::Health;
use serde_json::{Map, Value, json};

fn int(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
}

fn condition_is(obj: &Value, type_: &str, status: &str) -> bool {
    condition(obj, type_).is_some_and(|c| c["status"] == status)
}

fn generation_observed(obj: &Value) -> bool {
    match obj.pointer("/metadata/generation").and_then(Value::as_i64) {
        Some(g) => int(obj, "/status/observedGeneration") >= g,
        None => true,
    }
}

fn spec_replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn has_lb_ingress(obj: &Value) -> bool {
    obj.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|i| {
            i.iter()
                .any(|e| e.get("ip").is_some() || e.get("hostname").is_some())
        })
}

/// The health of a member object of `group`/`kind`.
pub fn health(group: &str, kind: &str, obj: &Value) -> Health {
    let ok = |b: bool| {
        if b {
            Health::Healthy
        } else {
            Health::Unhealthy
        }
    };
    match (group, kind) {
        ("apps", "Deployment") => {
            if condition(obj, "Progressing")
                .is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded")
            {
                return Health::Unhealthy;
            }
            let want = spec_replicas(obj);
            ok(generation_observed(obj)
                && int(obj, "/status/replicas") == want
                && int(obj, "/status/updatedReplicas") >= want
                && int(obj, "/status/readyReplicas") >= want
                && int(obj, "/status/availableReplicas") >= want
                && (want == 0 || condition_is(obj, "Available", "True")))
        }
        ("apps", "StatefulSet") => {
            let want = spec_replicas(obj);
            let cur = obj.pointer("/status/currentRevision");
            ok(generation_observed(obj)
                && int(obj, "/status/readyReplicas") >= want
                && int(obj, "/status/currentReplicas") >= want
                && (cur.is_none() || cur == obj.pointer("/status/updateRevision")))
        }
        ("apps", "ReplicaSet") => {
            ok(generation_observed(obj)
                && int(obj, "/status/availableReplicas") >= spec_replicas(obj))
        }
        ("apps", "DaemonSet") => {
            let d = int(obj, "/status/desiredNumberScheduled");
            ok(generation_observed(obj)
                && int(obj, "/status/currentNumberScheduled") == d
                && int(obj, "/status/updatedNumberScheduled") == d
                && int(obj, "/status/numberAvailable") == d
                && int(obj, "/status/numberReady") == d)
        }
        ("batch", "Job") => ok(!condition_is(obj, "Failed", "True")),
        ("", "Pod") => {
            let phase = obj.pointer("/status/phase").and_then(Value::as_str);
            ok(phase == Some("Succeeded")
                || (phase == Some("Running") && condition_is(obj, "Ready", "True")))
        }
        ("", "PersistentVolumeClaim") => ok(obj.pointer("/status/phase") == Some(&json!("Bound"))),
        ("", "Service") => {
            let lb = obj.pointer("/spec/type") == Some(&json!("LoadBalancer"));
            ok(!lb || has_lb_ingress(obj))
        }
        ("networking.k8s.io", "Ingress") => ok(has_lb_ingress(obj)),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            ok(condition_is(obj, "Established", "True"))
        }
        ("policy", "PodDisruptionBudget") => {
            ok(int(obj, "/status/currentHealthy") >= int(obj, "/status/desiredHealthy"))
        }
        _ => Health::Healthy,
    }
}

fn pick(obj: &Value, fields: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for f in fields {
        if let Some(v) = obj.pointer(&format!("/status/{f}")) {
            out.insert((*f).to_owned(), v.clone());
        }
    }
    out
}

/// The status the agent reports for a member object (Karmada's reflected status): a kind's
/// subset, or the whole `.status`; `None` when there is nothing to report.
pub fn reflect(group: &str, kind: &str, obj: &Value) -> Option<Value> {
    let gens = |mut m: Map<String, Value>| {
        if m.is_empty() {
            return None;
        }
        if let Some(g) = obj.pointer("/metadata/generation") {
            m.insert("generation".into(), g.clone());
        }
        if let Some(g) = obj
            .pointer("/metadata/annotations/resourcetemplate.karmada.io~1generation")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<i64>().ok())
        {
            m.insert("resourceTemplateGeneration".into(), json!(g));
        }
        Some(Value::Object(m))
    };
    match (group, kind) {
        ("apps", "Deployment") => gens(pick(
            obj,
            &[
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
                "observedGeneration",
            ],
        )),
        ("apps", "ReplicaSet") => gens(pick(
            obj,
            &[
                "replicas",
                "readyReplicas",
                "availableReplicas",
                "observedGeneration",
            ],
        )),
        ("apps", "StatefulSet") => gens(pick(
            obj,
            &[
                "availableReplicas",
                "currentReplicas",
                "readyReplicas",
                "replicas",
                "updatedReplicas",
                "observedGeneration",
            ],
        )),
        ("apps", "DaemonSet") => gens(pick(
            obj,
            &[
                "currentNumberScheduled",
                "desiredNumberScheduled",
                "numberAvailable",
                "numberMisscheduled",
                "numberReady",
                "updatedNumberScheduled",
                "numberUnavailable",
                "observedGeneration",
            ],
        )),
        ("batch", "Job") => Some(Value::Object(pick(
            obj,
            &[
                "active",
                "succeeded",
                "failed",
                "conditions",
                "startTime",
                "completionTime",
            ],
        )))
        .filter(|v| v.as_object().is_some_and(|m| !m.is_empty())),
        ("", "Service") => {
            if obj.pointer("/spec/type") == Some(&json!("LoadBalancer")) {
                obj.pointer("/status/loadBalancer")
                    .map(|lb| json!({"loadBalancer": lb}))
            } else {
                None
            }
        }
        ("policy", "PodDisruptionBudget") => Some(Value::Object(pick(
            obj,
            &[
                "disruptionsAllowed",
                "expectedPods",
                "desiredHealthy",
                "currentHealthy",
                "disruptedPods",
            ],
        )))
        .filter(|v| v.as_object().is_some_and(|m| !m.is_empty())),
        ("autoscaling", "HorizontalPodAutoscaler") => Some(Value::Object(pick(
            obj,
            &["currentReplicas", "desiredReplicas"],
        )))
        .filter(|v| v.as_object().is_some_and(|m| !m.is_empty())),
        _ => obj.get("status").filter(|s| !s.is_null()).cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(spec: i64, gen_: i64, status: Value) -> Value {
        json!({"metadata": {"generation": gen_}, "spec": {"replicas": spec}, "status": status})
    }

    #[test]
    fn deployment_health() {
        let avail = json!([{"type": "Available", "status": "True"}]);
        let full = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3, "conditions": avail});
        let cases = [
            (deploy(3, 2, full.clone()), Health::Healthy),
            (deploy(3, 3, full.clone()), Health::Unhealthy),
            (deploy(4, 2, full.clone()), Health::Unhealthy),
            (
                deploy(
                    3,
                    2,
                    json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 2, "conditions": avail}),
                ),
                Health::Unhealthy,
            ),
            (
                deploy(
                    3,
                    2,
                    json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3, "conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
                ),
                Health::Unhealthy,
            ),
            (
                deploy(0, 1, json!({"observedGeneration": 1})),
                Health::Healthy,
            ),
            (deploy(1, 1, json!({})), Health::Unhealthy),
        ];
        for (i, (obj, want)) in cases.into_iter().enumerate() {
            assert_eq!(health("apps", "Deployment", &obj), want, "case {i}");
        }
    }

    #[test]
    fn other_kinds() {
        let cases = [
            ("", "ConfigMap", json!({}), Health::Healthy),
            (
                "",
                "Pod",
                json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
                Health::Healthy,
            ),
            (
                "",
                "Pod",
                json!({"status": {"phase": "Running"}}),
                Health::Unhealthy,
            ),
            (
                "",
                "Pod",
                json!({"status": {"phase": "Succeeded"}}),
                Health::Healthy,
            ),
            (
                "",
                "PersistentVolumeClaim",
                json!({"status": {"phase": "Pending"}}),
                Health::Unhealthy,
            ),
            (
                "",
                "Service",
                json!({"spec": {"type": "ClusterIP"}}),
                Health::Healthy,
            ),
            (
                "",
                "Service",
                json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}}),
                Health::Unhealthy,
            ),
            (
                "",
                "Service",
                json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}),
                Health::Healthy,
            ),
            (
                "batch",
                "Job",
                json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}),
                Health::Unhealthy,
            ),
            (
                "apps",
                "DaemonSet",
                json!({"status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 1, "numberReady": 2}}),
                Health::Unhealthy,
            ),
            (
                "apps",
                "StatefulSet",
                json!({"spec": {"replicas": 2}, "status": {"readyReplicas": 2, "currentReplicas": 2, "currentRevision": "a", "updateRevision": "b"}}),
                Health::Unhealthy,
            ),
            (
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                json!({"status": {"conditions": [{"type": "Established", "status": "True"}]}}),
                Health::Healthy,
            ),
        ];
        for (g, k, obj, want) in cases {
            assert_eq!(health(g, k, &obj), want, "{k} {obj}");
        }
    }

    #[test]
    fn reflected_status() {
        let d = json!({"metadata": {"generation": 4, "annotations": {"resourcetemplate.karmada.io/generation": "7"}},
            "status": {"replicas": 2, "availableReplicas": 2, "observedGeneration": 4, "conditions": []}});
        let r = reflect("apps", "Deployment", &d).unwrap_or_default();
        assert_eq!(
            r,
            json!({"replicas": 2, "availableReplicas": 2, "observedGeneration": 4, "generation": 4, "resourceTemplateGeneration": 7})
        );
        assert_eq!(reflect("apps", "Deployment", &json!({"status": {}})), None);
        assert_eq!(reflect("", "ConfigMap", &json!({"data": {}})), None);
        assert_eq!(
            reflect(
                "",
                "Service",
                &json!({"spec": {"type": "ClusterIP"}, "status": {"loadBalancer": {}}})
            ),
            None
        );
        assert_eq!(
            reflect("example.com", "Widget", &json!({"status": {"a": 1}})),
            Some(json!({"a": 1}))
        );
    }
}
