//! Templates whose member copies a propagated HorizontalPodAutoscaler scales (Karmada's
//! hpa-scale-target-marker and hpa-replicas-syncer).
//!
//! Such a template carries [`flotilla_proto::RETAIN_REPLICAS_LABEL`], so each agent keeps its
//! member's replicas instead of resetting them to the Work's; and the template's replicas
//! follow the sum of the members' (the HorizontalPodAutoscaler template's aggregated
//! `status.currentReplicas`), written through its `scale` subresource as [`MANAGER`]. The
//! label goes when no propagated HorizontalPodAutoscaler scales the template any more.

use serde_json::{Value, json};

use super::cache::State;
use super::keys::prefix;
use super::write::Write;

/// The field manager of the replicas synced from the members.
pub const MANAGER: &str = "flotilla-hpa-sync";

/// The writes one scaled template needs.
pub fn decide(state: &State, key: &str) -> Vec<Write> {
    let Some(template) = state.template(key) else {
        return vec![];
    };
    let Some(res) = state.resource_of_key(key).cloned() else {
        return vec![];
    };
    // The propagated HorizontalPodAutoscalers that scale it.
    let hpas: Vec<Value> = state
        .scaling
        .scaling(key)
        .filter(|k| k.starts_with(prefix::HPAS))
        .filter(|k| {
            state
                .binding_key_of_template(k)
                .and_then(|b| state.binding(&b))
                .is_some_and(|b| !super::rendering::targets(&b).is_empty())
        })
        .filter_map(|k| state.template(k))
        .collect();
    let (want, replicas) = plan(&template, &hpas);
    let ns = template
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    let name = crate::api::meta::name(&template).to_owned();
    let mut out = Vec::new();
    if want != has_label(&template) {
        let value = if want { json!("true") } else { Value::Null };
        out.push(Write::merge_patch(
            &res,
            ns,
            &name,
            json!({"metadata": {"labels": {flotilla_proto::RETAIN_REPLICAS_LABEL: value}}}),
        ));
    }
    if let Some(n) = replicas
        && res.scale
    {
        out.push(Write::Scale {
            res,
            ns: ns.map(str::to_owned),
            name,
            replicas: n,
            manager: MANAGER,
        });
    }
    out
}

fn has_label(template: &Value) -> bool {
    template
        .pointer(&format!(
            "/metadata/labels/{}",
            flotilla_proto::RETAIN_REPLICAS_LABEL.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        == Some("true")
}

/// Whether the template keeps its members' replicas, and the replicas it should have:
/// the sum of the HorizontalPodAutoscalers' reported `currentReplicas`, when they report
/// and it differs from the template's.
pub fn plan(template: &Value, hpas: &[Value]) -> (bool, Option<i64>) {
    if hpas.is_empty() {
        return (false, None);
    }
    let sum = hpas
        .iter()
        .filter_map(|h| h.pointer("/status/currentReplicas").and_then(Value::as_i64))
        .fold(None, |acc: Option<i64>, n| {
            Some(acc.unwrap_or(0).saturating_add(n))
        });
    let current = template.pointer("/spec/replicas").and_then(Value::as_i64);
    (true, sum.filter(|s| *s > 0 && Some(*s) != current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_follow_the_members_sum() {
        let t = json!({"spec": {"replicas": 2}});
        let hpa = |n: i64| json!({"status": {"currentReplicas": n}});
        assert_eq!(plan(&t, &[]), (false, None));
        assert_eq!(plan(&t, &[hpa(5)]), (true, Some(5)));
        assert_eq!(plan(&t, &[hpa(1), hpa(1)]), (true, None));
        // Not reported yet, or nothing running: the template keeps its replicas.
        assert_eq!(plan(&t, &[json!({})]), (true, None));
        assert_eq!(plan(&t, &[hpa(0)]), (true, None));
        assert!(has_label(
            &json!({"metadata": {"labels": {"resourcetemplate.karmada.io/retain-replicas": "true"}}})
        ));
    }
}
