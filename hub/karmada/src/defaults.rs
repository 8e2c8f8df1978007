//! Karmada's defaults, applied on every write as its CRD schema defaults and mutating
//! webhooks do. Policies: `priority: 0`, `preemption: Never`, `conflictResolution: Abort`,
//! `schedulerName: default-scheduler`, and a PropagationPolicy's resource selectors without
//! a namespace get the policy's. FederatedHPA: `minReplicas: 1`, an 80% average CPU
//! utilization metric when there is none, and a `behavior`'s missing parts from the
//! Kubernetes HPA defaults. CronFederatedHPA: each rule keeps 3 successful and 3 failed
//! executions and is not suspended.

use serde_json::{Map, Value, json};

/// Fills in the defaults of a `kind` object (PropagationPolicy, ClusterPropagationPolicy,
/// FederatedHPA, CronFederatedHPA); other kinds are left as they are.
pub fn apply(kind: &str, obj: &mut Value) {
    match kind {
        "PropagationPolicy" | "ClusterPropagationPolicy" => policy(kind, obj),
        "FederatedHPA" => federated_hpa(obj),
        "CronFederatedHPA" => cron_federated_hpa(obj),
        _ => {}
    }
}

/// Sets `field` to `value` when it is absent or null.
fn fill(map: &mut Map<String, Value>, field: &str, value: Value) {
    if map.get(field).is_none_or(Value::is_null) {
        map.insert(field.into(), value);
    }
}

fn policy(kind: &str, obj: &mut Value) {
    let namespace = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for (field, value) in [
        ("priority", json!(0)),
        ("preemption", json!("Never")),
        ("conflictResolution", json!("Abort")),
        ("schedulerName", json!("default-scheduler")),
    ] {
        if spec.get(field).is_none_or(Value::is_null) {
            spec.insert(field.into(), value);
        }
    }
    if kind == "PropagationPolicy"
        && let Some(ns) = namespace
        && let Some(selectors) = spec
            .get_mut("resourceSelectors")
            .and_then(Value::as_array_mut)
    {
        for s in selectors.iter_mut().filter_map(Value::as_object_mut) {
            if s.get("namespace")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                s.insert("namespace".into(), json!(ns));
            }
        }
    }
}

fn federated_hpa(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    fill(spec, "minReplicas", json!(1));
    if spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    // Only a behavior that is there gets its missing parts; none means the controller's.
    let Some(behavior) = spec.get_mut("behavior").and_then(Value::as_object_mut) else {
        return;
    };
    let scale_up = json!({
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ],
    });
    // The scale-down window is left to the controller (300s unless configured otherwise).
    let scale_down = json!({
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    });
    for (direction, defaults) in [("scaleUp", scale_up), ("scaleDown", scale_down)] {
        match behavior.get_mut(direction).and_then(Value::as_object_mut) {
            Some(rules) => {
                if let Value::Object(d) = defaults {
                    for (field, value) in d {
                        fill(rules, &field, value);
                    }
                }
            }
            None => {
                behavior.insert(direction.into(), defaults);
            }
        }
    }
}

fn cron_federated_hpa(obj: &mut Value) {
    let Some(rules) = obj.pointer_mut("/spec/rules").and_then(Value::as_array_mut) else {
        return;
    };
    for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
        fill(rule, "suspend", json!(false));
        fill(rule, "successfulHistoryLimit", json!(3));
        fill(rule, "failedHistoryLimit", json!(3));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_get_karmadas_defaults() {
        let mut pp = json!({"metadata": {"name": "p", "namespace": "demo"}, "spec": {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}, {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "demo"}],
            "priority": 5}});
        apply("PropagationPolicy", &mut pp);
        assert_eq!(pp["spec"]["priority"], 5, "set values stay");
        assert_eq!(pp["spec"]["preemption"], "Never");
        assert_eq!(pp["spec"]["conflictResolution"], "Abort");
        assert_eq!(pp["spec"]["schedulerName"], "default-scheduler");
        assert_eq!(pp["spec"]["resourceSelectors"][0]["namespace"], "demo");
        let mut cpp = json!({"metadata": {"name": "c"}, "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}]}});
        apply("ClusterPropagationPolicy", &mut cpp);
        assert_eq!(cpp["spec"]["priority"], 0);
        assert!(
            cpp["spec"]["resourceSelectors"][0]
                .get("namespace")
                .is_none()
        );
        let mut op = json!({"metadata": {"name": "o", "namespace": "demo"}, "spec": {}});
        apply("OverridePolicy", &mut op);
        assert_eq!(op["spec"], json!({}));
    }

    #[test]
    fn federated_hpa_gets_karmadas_defaults() {
        let mut bare = json!({"metadata": {"name": "f", "namespace": "demo"}, "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 10}});
        apply("FederatedHPA", &mut bare);
        assert_eq!(bare["spec"]["minReplicas"], 1);
        assert_eq!(
            bare["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}])
        );
        assert!(
            bare["spec"].get("behavior").is_none(),
            "no behavior stays none"
        );

        let mut set = json!({"spec": {"minReplicas": 2, "maxReplicas": 10,
            "metrics": [{"type": "Pods", "pods": {"metric": {"name": "qps"},
                "target": {"type": "AverageValue", "averageValue": "10"}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60, "policies": null,
                "tolerance": "0.05"}}}});
        apply("FederatedHPA", &mut set);
        let spec = &set["spec"];
        assert_eq!(spec["minReplicas"], 2, "set values stay");
        assert_eq!(spec["metrics"][0]["type"], "Pods");
        assert_eq!(
            spec["behavior"]["scaleUp"],
            json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}]})
        );
        assert_eq!(
            spec["behavior"]["scaleDown"],
            json!({"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "tolerance": "0.05",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]})
        );

        let mut empty_metrics = json!({"spec": {"maxReplicas": 3, "metrics": [],
            "behavior": {"scaleUp": {"selectPolicy": "Disabled", "policies": []}}}});
        apply("FederatedHPA", &mut empty_metrics);
        assert_eq!(
            empty_metrics["spec"]["metrics"][0]["resource"]["name"],
            "cpu"
        );
        let up = &empty_metrics["spec"]["behavior"]["scaleUp"];
        assert_eq!(up["selectPolicy"], "Disabled");
        assert_eq!(
            up["policies"],
            json!([]),
            "an explicit empty list is not replaced"
        );
        assert_eq!(up["stabilizationWindowSeconds"], 0);
    }

    #[test]
    fn cron_federated_hpa_rules_get_history_limits() {
        let mut c = json!({"spec": {"rules": [
            {"name": "a", "schedule": "@daily", "targetReplicas": 1},
            {"name": "b", "schedule": "@daily", "targetReplicas": 1, "suspend": true,
             "successfulHistoryLimit": 5, "failedHistoryLimit": null},
        ]}});
        apply("CronFederatedHPA", &mut c);
        let rules = &c["spec"]["rules"];
        assert_eq!(rules[0]["successfulHistoryLimit"], 3);
        assert_eq!(rules[0]["failedHistoryLimit"], 3);
        assert_eq!(rules[0]["suspend"], false);
        assert_eq!(rules[1]["successfulHistoryLimit"], 5);
        assert_eq!(rules[1]["failedHistoryLimit"], 3);
        assert_eq!(rules[1]["suspend"], true);
    }
}
