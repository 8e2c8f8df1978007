//! Karmada's defaults for policies, applied on every write as its CRD schema defaults and
//! mutating webhook do: `priority: 0`, `preemption: Never`, `conflictResolution: Abort`,
//! `schedulerName: default-scheduler`, and a PropagationPolicy's resource selectors without
//! a namespace get the policy's.

use serde_json::{Value, json};

/// Fills in the defaults of a `kind` object (PropagationPolicy, ClusterPropagationPolicy);
/// other kinds are left as they are.
pub fn apply(kind: &str, obj: &mut Value) {
    if !matches!(kind, "PropagationPolicy" | "ClusterPropagationPolicy") {
        return;
    }
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
}
