//! kube-apiserver's semantic checks of built-in kinds that decoding cannot make: workload
//! replica counts and selectors, and the keys each Secret type requires. Run after defaulting
//! (and, for Secrets, after `stringData` is folded into `data`), with kube-apiserver's field
//! paths and messages.

use std::collections::BTreeMap;

use flotilla_karmada::selectors::label_selector_matches;
use flotilla_karmada::types::LabelSelector;
use serde_json::Value;

use super::error::Cause;

fn invalid(field: &str, message: String) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message,
        field: field.into(),
    }
}

fn required(field: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: "Required value".into(),
        field: field.into(),
    }
}

/// The causes for which kube-apiserver refuses `obj` of `group`/`kind`; empty when it passes.
pub fn causes(group: &str, kind: &str, obj: &Value) -> Vec<Cause> {
    match (group, kind) {
        ("apps", "Deployment" | "StatefulSet" | "ReplicaSet" | "DaemonSet") => workload(kind, obj),
        ("", "Secret") => secret(obj),
        _ => vec![],
    }
}

/// A workload's replicas are not negative and its selector selects its pod template.
fn workload(kind: &str, obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if kind != "DaemonSet"
        && let Some(n) = obj.pointer("/spec/replicas").and_then(Value::as_i64)
        && n < 0
    {
        out.push(invalid(
            "spec.replicas",
            format!("Invalid value: {n}: must be greater than or equal to 0"),
        ));
    }
    match obj.pointer("/spec/selector") {
        None | Some(Value::Null) => out.push(required("spec.selector")),
        Some(raw) => {
            let labels: BTreeMap<String, String> = obj
                .pointer("/spec/template/metadata/labels")
                .and_then(|l| serde_json::from_value(l.clone()).ok())
                .unwrap_or_default();
            let selector: Option<LabelSelector> = serde_json::from_value(raw.clone()).ok();
            let empty = selector
                .as_ref()
                .is_some_and(|s| s.match_labels.is_empty() && s.match_expressions.is_empty());
            if empty {
                out.push(invalid(
                    "spec.selector",
                    format!(
                        "Invalid value: {raw}: empty selector is invalid for {}",
                        kind.to_lowercase()
                    ),
                ));
            } else if !selector.is_some_and(|s| label_selector_matches(&s, &labels)) {
                let shown = serde_json::to_string(&labels).unwrap_or_default();
                out.push(invalid(
                    "spec.template.metadata.labels",
                    format!("Invalid value: {shown}: `selector` does not match template `labels`"),
                ));
            }
        }
    }
    out
}

/// The `data` keys each Secret type requires.
fn secret(obj: &Value) -> Vec<Cause> {
    let ty = obj.get("type").and_then(Value::as_str).unwrap_or("Opaque");
    let needs: &[&str] = match ty {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        _ => &[],
    };
    let data = obj.get("data").and_then(Value::as_object);
    needs
        .iter()
        .filter(|k| !data.is_some_and(|d| d.contains_key(**k)))
        .map(|k| required(&format!("data[{k}]")))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn messages(c: &[Cause]) -> Vec<String> {
        c.iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn workloads_need_non_negative_replicas_and_a_matching_selector() {
        let good = json!({"spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "a"}}}}});
        assert!(causes("apps", "Deployment", &good).is_empty());
        let bad = json!({"spec": {"replicas": -1, "selector": {"matchLabels": {"app": "other"}},
            "template": {"metadata": {"labels": {"app": "web"}}}}});
        assert_eq!(
            messages(&causes("apps", "Deployment", &bad)),
            [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`",
            ]
        );
        // A DaemonSet has no replicas; set-based selectors are matched too.
        let ds = json!({"spec": {"replicas": -1, "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
            "template": {"metadata": {"labels": {"app": "web"}}}}});
        assert!(causes("apps", "DaemonSet", &ds).is_empty());
        assert_eq!(
            messages(&causes("apps", "StatefulSet", &json!({"spec": {}}))),
            ["spec.selector: Required value"]
        );
        assert!(causes("", "ConfigMap", &bad).is_empty());
    }

    #[test]
    fn secret_types_need_their_keys() {
        let tls = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
        assert_eq!(
            messages(&causes("", "Secret", &tls)),
            ["data[tls.key]: Required value"]
        );
        let tls =
            json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA==", "tls.key": "eA=="}});
        assert!(causes("", "Secret", &tls).is_empty());
        assert!(causes("", "Secret", &json!({"type": "Opaque"})).is_empty());
        assert_eq!(
            messages(&causes(
                "",
                "Secret",
                &json!({"type": "kubernetes.io/dockerconfigjson"})
            )),
            ["data[.dockerconfigjson]: Required value"]
        );
    }
}
