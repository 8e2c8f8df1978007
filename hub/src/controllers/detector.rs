//! The detector: which policy claims a template, and the one binding of a claimed template.
//!
//! Key: a template's store key.

use flotilla_karmada::interpreter;
use flotilla_karmada::matching::{
    ClaimDecision, PolicyCandidate, claim_keys, claim_metadata, decide_claim,
};
use serde_json::{Map, Value, json};

use super::cache::{Policy, State};
use super::keys::{binding_key, binding_name, split_key};
use super::write::{Write, upsert};

/// The binding a claimed template should have.
fn desired_binding(
    template: &Value,
    kind: &str,
    policy: &Policy,
    current: Option<&Value>,
) -> Value {
    let o = template;
    let name = crate::api::meta::name(o);
    let ns = o.pointer("/metadata/namespace").and_then(Value::as_str);
    let mut spec = json!({
        "resource": {
            "apiVersion": o.get("apiVersion"), "kind": o.get("kind"),
            "name": name, "uid": o.pointer("/metadata/uid"),
            "resourceVersion": o.pointer("/metadata/resourceVersion"),
        },
        "replicas": interpreter::replicas(o),
        "placement": policy.object.pointer("/spec/placement").cloned().unwrap_or(json!({})),
    });
    if let Some(ns) = ns {
        spec["resource"]["namespace"] = json!(ns);
    }
    if let Some(r) = interpreter::replica_requirements(o).and_then(|r| serde_json::to_value(r).ok())
    {
        spec["replicaRequirements"] = r;
    }
    for k in [
        "propagateDeps",
        "conflictResolution",
        "suspension",
        "preserveResourcesOnDeletion",
        "failover",
        "schedulerName",
    ] {
        if let Some(v) = policy.object.pointer(&format!("/spec/{k}")) {
            spec[k] = v.clone();
        }
    }
    // The scheduler owns the result, the dependencies distributor `requiredBy`, the failover
    // the eviction tasks; a rebalance sets `rescheduleTriggeredAt`.
    for k in [
        "clusters",
        "requiredBy",
        "gracefulEvictionTasks",
        "rescheduleTriggeredAt",
    ] {
        if let Some(v) = current.and_then(|b| b.pointer(&format!("/spec/{k}"))) {
            spec[k] = v.clone();
        }
    }
    let claim = claim_metadata(&policy.candidate);
    let mut md = json!({
        "name": binding_name(kind, name),
        "labels": claim.labels,
        "ownerReferences": [{
            "apiVersion": o.get("apiVersion"), "kind": o.get("kind"), "name": name,
            "uid": o.pointer("/metadata/uid"), "controller": true, "blockOwnerDeletion": true,
        }],
    });
    if let Some(ns) = ns {
        md["namespace"] = json!(ns);
    }
    if let Some(ann) = current.and_then(|b| b.pointer("/metadata/annotations")) {
        md["annotations"] = ann.clone();
    }
    let kind = if ns.is_some() {
        "ResourceBinding"
    } else {
        "ClusterResourceBinding"
    };
    json!({"apiVersion": "work.karmada.io/v1alpha2", "kind": kind, "metadata": md, "spec": spec})
}

/// The claim labels and annotations to set (null removes) for `policy`, or to clear.
fn claim_patch(template: &Value, policy: Option<&PolicyCandidate>) -> Option<Value> {
    let (label_keys, annotation_keys) = claim_keys();
    let claim = policy.map(claim_metadata);
    let mut labels = Map::new();
    let mut annotations = Map::new();
    for k in label_keys {
        let v = claim
            .as_ref()
            .and_then(|c| c.labels.get(*k))
            .map_or(Value::Null, |v| json!(v));
        labels.insert((*k).into(), v);
    }
    for k in annotation_keys {
        let v = claim
            .as_ref()
            .and_then(|c| c.annotations.get(*k))
            .map_or(Value::Null, |v| json!(v));
        annotations.insert((*k).into(), v);
    }
    let current = |field: &str, k: &str| {
        template
            .pointer(&format!("/metadata/{field}"))
            .and_then(|m| m.get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let unchanged = labels.iter().all(|(k, v)| current("labels", k) == *v)
        && annotations
            .iter()
            .all(|(k, v)| current("annotations", k) == *v);
    (!unchanged).then(|| json!({"metadata": {"labels": labels, "annotations": annotations}}))
}

/// Whether a binding is needed by others (`spec.requiredBy` is not empty).
fn required_by(b: &Value) -> bool {
    b.pointer("/spec/requiredBy")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty())
}

/// A binding reduced to what an attached binding holds (the policy's claim removed), or
/// `None` if it already is one.
fn attached_only(b: &Value) -> Option<Value> {
    let spec = b.get("spec")?.as_object()?;
    let keep = ["resource", "requiredBy"];
    if spec.keys().all(|k| keep.contains(&k.as_str())) {
        return None;
    }
    let mut want = b.clone();
    want["spec"] = Value::Object(
        spec.iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    if let Some(labels) = want
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        let (label_keys, _) = claim_keys();
        labels.retain(|k, _| !label_keys.contains(&k.as_str()));
    }
    Some(want)
}

/// A binding without its policy's claim labels and annotations (the template is no longer
/// claimed), or `None` if it carries none.
fn unclaimed(b: &Value) -> Option<Value> {
    let (label_keys, annotation_keys) = claim_keys();
    let mut want = b.clone();
    let mut changed = false;
    for (field, keys) in [("labels", label_keys), ("annotations", annotation_keys)] {
        if let Some(m) = want
            .pointer_mut(&format!("/metadata/{field}"))
            .and_then(Value::as_object_mut)
        {
            let before = m.len();
            m.retain(|k, _| !keys.contains(&k.as_str()));
            changed |= m.len() != before;
        }
    }
    changed.then_some(want)
}

/// What the detector writes for one template.
pub fn decide(state: &State, key: &str) -> Vec<Write> {
    let Some(res) = state.resource_of_key(key).cloned() else {
        return vec![];
    };
    // Namespaces propagate by themselves, not through policies.
    if res.group.is_empty() && res.kind == "Namespace" {
        return vec![];
    }
    let Some((ns, name)) = split_key(&res, key) else {
        return vec![];
    };
    let bkey = binding_key(&res.kind, ns, name);
    let Some(binding_res) = state.binding_resource(&bkey) else {
        return vec![];
    };
    let current = state.binding(&bkey);
    let delete_binding = |current: &Option<Value>| match current {
        Some(b) => vec![Write::delete(&binding_res, b)],
        None => vec![],
    };
    let Some(template) = state.template(key) else {
        return delete_binding(&current);
    };
    if template.pointer("/metadata/deletionTimestamp").is_some() {
        return delete_binding(&current);
    }
    let candidates: Vec<PolicyCandidate> =
        state.policies().map(|(_, p)| p.candidate.clone()).collect();
    let chosen = match decide_claim(&template, &candidates, true) {
        ClaimDecision::Keep(p) | ClaimDecision::Claim(p) => p,
        ClaimDecision::Unclaimed => {
            let mut out = match &current {
                // Still a dependency of other workloads: keep it as a bare attached binding.
                Some(b) if required_by(b) => attached_only(b)
                    .and_then(|want| upsert(&binding_res, want, Some(b)))
                    .into_iter()
                    .collect(),
                // Its policy went (or no longer selects it): as in Karmada, the binding and so
                // the running workloads stay; only the claim is removed. Removing a policy
                // never takes an application down.
                Some(b) => unclaimed(b)
                    .and_then(|want| upsert(&binding_res, want, Some(b)))
                    .into_iter()
                    .collect(),
                None => vec![],
            };
            if let Some(patch) = claim_patch(&template, None) {
                out.push(Write::merge_patch(&res, ns, name, patch));
            }
            return out;
        }
    };
    let Some(policy) = state.policy_by_candidate(&chosen) else {
        return vec![];
    };
    let mut out = Vec::new();
    if let Some(patch) = claim_patch(&template, Some(&chosen)) {
        out.push(Write::merge_patch(&res, ns, name, patch));
    }
    let want = desired_binding(&template, &res.kind, policy, current.as_ref());
    out.extend(upsert(&binding_res, want, current.as_ref()));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::super::cache::tests::{put, state};
    use super::*;

    const T: &str = "/apps/deployments/demo/web";
    const B: &str = "/work.karmada.io/resourcebindings/demo/web-deployment";

    fn deployment(annotations: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo", "uid": "u1", "resourceVersion": "7", "annotations": annotations},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    }

    fn policy() -> Value {
        json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
            "metadata": {"name": "p", "namespace": "demo", "labels": {"propagationpolicy.karmada.io/permanent-id": "id1"}},
            "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
                "placement": {"clusterAffinity": {"clusterNames": ["m1"]}}}})
    }

    #[test]
    fn unclaimed_template_without_policy_writes_nothing() {
        let mut s = state();
        put(&mut s, T, deployment(json!({})));
        assert!(decide(&s, T).is_empty());
    }

    #[test]
    fn a_selected_template_is_claimed_and_gets_a_binding() {
        let mut s = state();
        put(&mut s, T, deployment(json!({})));
        put(
            &mut s,
            "/policy.karmada.io/propagationpolicies/demo/p",
            policy(),
        );
        let w = decide(&s, T);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(matches!(&w[0], Write::Patch { name, .. } if name == "web"));
        match &w[1] {
            Write::Create { object, .. } => {
                assert_eq!(object["metadata"]["name"], "web-deployment");
                assert_eq!(object["spec"]["replicas"], 3);
                assert_eq!(
                    object["spec"]["placement"]["clusterAffinity"]["clusterNames"][0],
                    "m1"
                );
            }
            other => panic!("expected a create, got {other:?}"),
        }
    }

    #[test]
    fn steady_state_writes_nothing_and_orphans_are_removed() {
        let mut s = state();
        put(
            &mut s,
            "/policy.karmada.io/propagationpolicies/demo/p",
            policy(),
        );
        put(&mut s, T, deployment(json!({})));
        // Apply the detector's writes as the store would.
        let claimed = {
            let mut t = deployment(json!({}));
            if let Write::Patch { patch, .. } = &decide(&s, T)[0] {
                json_patch::merge(&mut t, patch);
            }
            t
        };
        put(&mut s, T, claimed);
        let binding = match decide(&s, T).pop().unwrap() {
            Write::Create { mut object, .. } => {
                object["metadata"]["resourceVersion"] = json!("9");
                object
            }
            other => panic!("{other:?}"),
        };
        put(&mut s, B, binding);
        assert!(decide(&s, T).is_empty(), "{:?}", decide(&s, T));
        // The policy goes: the binding stays, without the claim, and so does the placement.
        s.delete("/policy.karmada.io/propagationpolicies/demo/p");
        let w = decide(&s, T);
        assert!(
            !w.iter().any(|w| matches!(w, Write::Delete { .. })),
            "removing a policy must not remove the binding: {w:?}"
        );
        let kept = w.iter().find_map(|w| match w {
            Write::Update { object, .. } if object["metadata"]["name"] == "web-deployment" => {
                Some(object)
            }
            _ => None,
        });
        let kept = kept.expect("the binding is rewritten without its claim");
        assert!(kept.pointer("/spec/placement").is_some(), "{kept}");
        let (label_keys, _) = claim_keys();
        for k in label_keys {
            assert!(
                kept.pointer(&format!("/metadata/labels/{}", k.replace('/', "~1")))
                    .is_none(),
                "{k} kept"
            );
        }
        // The template goes: its binding goes.
        s.delete(T);
        let w = decide(&s, T);
        assert!(matches!(&w[..], [Write::Delete { name, .. }] if name == "web-deployment"));
    }
}
