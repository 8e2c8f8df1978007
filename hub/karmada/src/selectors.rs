//! Matching of label selectors, resource selectors, cluster affinities and tolerations.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::scheduler::ClusterInfo;
use crate::types::{ClusterAffinity, LabelSelector, ResourceSelector, Taint, Toleration};

/// Whether `labels` satisfy the selector (all parts ANDed; empty selector matches all).
/// Unknown operators never match.
pub fn label_selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    sel.match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
        && sel.match_expressions.iter().all(|e| {
            let val = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => val.is_some_and(|v| e.values.contains(v)),
                "NotIn" => val.is_none_or(|v| !e.values.contains(v)),
                "Exists" => val.is_some(),
                "DoesNotExist" => val.is_none(),
                _ => false,
            }
        })
}

/// How specifically a selector matches an object ("implicit priority"); higher is more specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Specificity {
    /// Does not match.
    Mismatch = 0,
    /// Matches by apiVersion and kind only.
    KindOnly = 1,
    /// Matches by label selector.
    LabelSelector = 2,
    /// Matches by name.
    Name = 3,
}

/// The identifying fields of a resource template that selectors look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectKey {
    /// e.g. `apps/v1`.
    pub api_version: String,
    /// e.g. `Deployment`.
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// Object labels.
    pub labels: BTreeMap<String, String>,
}

impl ObjectKey {
    /// Reads the key fields from a Kubernetes object.
    pub fn from_object(obj: &Value) -> Self {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        let meta = obj.get("metadata");
        let labels = meta
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        ObjectKey {
            api_version: s(obj.get("apiVersion")),
            kind: s(obj.get("kind")),
            namespace: s(meta.and_then(|m| m.get("namespace"))),
            name: s(meta.and_then(|m| m.get("name"))),
            labels,
        }
    }
}

/// Specificity of one selector for an object.
pub fn selector_specificity(sel: &ResourceSelector, obj: &ObjectKey) -> Specificity {
    if sel.api_version != obj.api_version || sel.kind != obj.kind {
        return Specificity::Mismatch;
    }
    if !sel.namespace.is_empty() && sel.namespace != obj.namespace {
        return Specificity::Mismatch;
    }
    if !sel.name.is_empty() {
        return if sel.name == obj.name {
            Specificity::Name
        } else {
            Specificity::Mismatch
        };
    }
    match &sel.label_selector {
        None => Specificity::KindOnly,
        Some(ls) if label_selector_matches(ls, &obj.labels) => Specificity::LabelSelector,
        Some(_) => Specificity::Mismatch,
    }
}

/// Best specificity over a selector list (empty list = [`Specificity::Mismatch`]).
pub fn selectors_specificity(sels: &[ResourceSelector], obj: &ObjectKey) -> Specificity {
    sels.iter()
        .map(|s| selector_specificity(s, obj))
        .max()
        .unwrap_or(Specificity::Mismatch)
}

/// Which part of a cluster affinity rejected a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AffinityMismatch {
    /// Listed in `exclude`.
    Excluded,
    /// Not listed in `clusterNames`.
    NotInClusterNames,
    /// Labels do not match `labelSelector`.
    LabelSelector,
    /// provider/region/zones do not match `fieldSelector`.
    FieldSelector,
}

/// Checks a cluster against an affinity; `None` (nil affinity) matches every cluster.
pub fn affinity_check(
    affinity: Option<&ClusterAffinity>,
    cluster: &ClusterInfo,
) -> Result<(), AffinityMismatch> {
    let Some(a) = affinity else { return Ok(()) };
    if a.exclude.iter().any(|n| n == &cluster.name) {
        return Err(AffinityMismatch::Excluded);
    }
    if !a.cluster_names.is_empty() && !a.cluster_names.iter().any(|n| n == &cluster.name) {
        return Err(AffinityMismatch::NotInClusterNames);
    }
    if let Some(ls) = &a.label_selector
        && !label_selector_matches(ls, &cluster.labels)
    {
        return Err(AffinityMismatch::LabelSelector);
    }
    if let Some(fs) = &a.field_selector {
        for e in &fs.match_expressions {
            let ok = match e.key.as_str() {
                "provider" | "region" => {
                    let v = if e.key == "provider" {
                        &cluster.provider
                    } else {
                        &cluster.region
                    };
                    match e.operator.as_str() {
                        "In" => !v.is_empty() && e.values.contains(v),
                        "NotIn" => !e.values.contains(v),
                        _ => false,
                    }
                }
                "zone" => {
                    let overlap = cluster.zones.iter().any(|z| e.values.contains(z));
                    match e.operator.as_str() {
                        "In" => overlap,
                        "NotIn" => !overlap,
                        _ => false,
                    }
                }
                _ => false,
            };
            if !ok {
                return Err(AffinityMismatch::FieldSelector);
            }
        }
    }
    Ok(())
}

/// Whether a cluster matches an affinity.
pub fn affinity_matches(affinity: Option<&ClusterAffinity>, cluster: &ClusterInfo) -> bool {
    affinity_check(affinity, cluster).is_ok()
}

/// Whether a toleration tolerates a taint, with Kubernetes semantics.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if !t.effect.is_empty() && t.effect != taint.effect {
        return false;
    }
    if !t.key.is_empty() && t.key != taint.key {
        return false;
    }
    match t.operator.as_str() {
        "Exists" => true,
        "" | "Equal" => !t.key.is_empty() && t.value == taint.value,
        _ => false,
    }
}

/// The first `NoSchedule`/`NoExecute` taint no toleration tolerates.
pub fn first_untolerated<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints.iter().find(|taint| {
        matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !tolerations.iter().any(|t| tolerates(t, taint))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn ls(v: serde_json::Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn label_selectors() {
        let labels: BTreeMap<String, String> = [("env".to_string(), "prod".to_string())]
            .into_iter()
            .collect();
        let cases = [
            (json!({}), true),
            (json!({"matchLabels": {"env": "prod"}}), true),
            (json!({"matchLabels": {"env": "dev"}}), false),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["gold"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "Gt", "values": ["1"]}]}),
                false,
            ),
        ];
        for (sel, want) in cases {
            assert_eq!(
                label_selector_matches(&ls(sel.clone()), &labels),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn specificity_of_selectors() {
        let obj = ObjectKey {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: "demo".into(),
            name: "nginx".into(),
            labels: [("app".to_string(), "web".to_string())]
                .into_iter()
                .collect(),
        };
        let sel = |v: serde_json::Value| -> ResourceSelector { serde_json::from_value(v).unwrap() };
        let cases = [
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
                Specificity::KindOnly,
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"}),
                Specificity::Name,
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "other"}),
                Specificity::Mismatch,
            ),
            // A name wins over a non-matching label selector.
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx", "labelSelector": {"matchLabels": {"app": "x"}}}),
                Specificity::Name,
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {"matchLabels": {"app": "web"}}}),
                Specificity::LabelSelector,
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {"matchLabels": {"app": "db"}}}),
                Specificity::Mismatch,
            ),
            (
                json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment"}),
                Specificity::Mismatch,
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "other"}),
                Specificity::Mismatch,
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo"}),
                Specificity::KindOnly,
            ),
        ];
        for (s, want) in cases {
            assert_eq!(selector_specificity(&sel(s.clone()), &obj), want, "{s}");
        }
        assert_eq!(selectors_specificity(&[], &obj), Specificity::Mismatch);
    }

    #[test]
    fn tolerations() {
        let taint = Taint {
            key: "dedicated".into(),
            value: "gpu".into(),
            effect: "NoSchedule".into(),
            time_added: None,
        };
        let tol = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).unwrap() };
        let cases = [
            (
                json!({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}),
                true,
            ),
            (json!({"key": "dedicated", "value": "gpu"}), true),
            (json!({"key": "dedicated", "value": "cpu"}), false),
            (json!({"key": "dedicated", "operator": "Exists"}), true),
            (json!({"operator": "Exists"}), true),
            (json!({"operator": "Exists", "effect": "NoExecute"}), false),
            (json!({"key": "other", "operator": "Exists"}), false),
            (json!({"value": "gpu"}), false),
        ];
        for (t, want) in cases {
            assert_eq!(tolerates(&tol(t.clone()), &taint), want, "{t}");
        }
        let prefer = Taint {
            effect: "PreferNoSchedule".into(),
            ..taint.clone()
        };
        assert!(first_untolerated(&[prefer], &[]).is_none());
        assert!(first_untolerated(std::slice::from_ref(&taint), &[]).is_some());
    }
}
