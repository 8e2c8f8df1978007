//! The detector: which policy claims each template, and one binding per claimed template.

use std::collections::BTreeSet;

use flotilla_karmada::interpreter;
use flotilla_karmada::matching::{
    ClaimDecision, PolicyCandidate, claim_keys, claim_metadata, decide_claim,
};
use flotilla_karmada::types::{ClusterPropagationPolicy, PropagationPolicy};
use serde_json::{Value, json};

use super::snapshot::{Snapshot, Template};
use super::{delete_quietly, upsert};
use crate::api::error::ApiError;
use crate::api::objects::{Objects, WriteOptions};

/// A policy that may claim templates: its matching view and its object.
struct Claimant<'a> {
    candidate: PolicyCandidate,
    object: &'a Value,
}

fn claimants(snap: &Snapshot) -> Vec<Claimant<'_>> {
    let mut out = Vec::new();
    for p in &snap.policies {
        match serde_json::from_value::<PropagationPolicy>(p.clone()) {
            Ok(pp) => out.push(Claimant {
                candidate: PolicyCandidate::from_pp(&pp),
                object: p,
            }),
            Err(e) => {
                tracing::warn!(policy = %crate::api::meta::name(p), error = %e, "unreadable PropagationPolicy")
            }
        }
    }
    for p in &snap.cluster_policies {
        match serde_json::from_value::<ClusterPropagationPolicy>(p.clone()) {
            Ok(cpp) => out.push(Claimant {
                candidate: PolicyCandidate::from_cpp(&cpp),
                object: p,
            }),
            Err(e) => {
                tracing::warn!(policy = %crate::api::meta::name(p), error = %e, "unreadable ClusterPropagationPolicy")
            }
        }
    }
    out
}

/// The binding name of a template.
pub fn binding_name(t: &Template) -> String {
    format!("{}-{}", t.name(), t.resource.kind.to_lowercase())
}

fn desired_binding(t: &Template, c: &Claimant<'_>, current: Option<&Value>) -> Value {
    let o = &t.object;
    let mut spec = json!({
        "resource": {
            "apiVersion": o.get("apiVersion"), "kind": o.get("kind"),
            "name": t.name(), "uid": o.pointer("/metadata/uid"),
            "resourceVersion": o.pointer("/metadata/resourceVersion"),
        },
        "replicas": interpreter::replicas(o),
        "placement": c.object.pointer("/spec/placement").cloned().unwrap_or(json!({})),
    });
    if let Some(ns) = t.namespace() {
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
        if let Some(v) = c.object.pointer(&format!("/spec/{k}")) {
            spec[k] = v.clone();
        }
    }
    // The scheduler owns the result.
    if let Some(cl) = current.and_then(|b| b.pointer("/spec/clusters")) {
        spec["clusters"] = cl.clone();
    }
    let claim = claim_metadata(&c.candidate);
    let mut md = json!({
        "name": binding_name(t),
        "labels": claim.labels,
        "ownerReferences": [{
            "apiVersion": o.get("apiVersion"), "kind": o.get("kind"), "name": t.name(),
            "uid": o.pointer("/metadata/uid"), "controller": true, "blockOwnerDeletion": true,
        }],
    });
    if let Some(ns) = t.namespace() {
        md["namespace"] = json!(ns);
    }
    if let Some(ann) = current.and_then(|b| b.pointer("/metadata/annotations")) {
        md["annotations"] = ann.clone();
    }
    let (api, kind) = if t.namespace().is_some() {
        ("work.karmada.io/v1alpha2", "ResourceBinding")
    } else {
        ("work.karmada.io/v1alpha2", "ClusterResourceBinding")
    };
    json!({"apiVersion": api, "kind": kind, "metadata": md, "spec": spec})
}

/// Claims templates, keeps their bindings in step and removes orphaned bindings.
pub async fn reconcile(objects: &Objects, snap: &Snapshot) -> Result<(), ApiError> {
    let reg = objects.registry();
    let rb = reg
        .get("work.karmada.io", "v1alpha2", "resourcebindings")
        .ok_or_else(|| ApiError::internal("resourcebindings not served"))?;
    let crb = reg
        .get("work.karmada.io", "v1alpha2", "clusterresourcebindings")
        .ok_or_else(|| ApiError::internal("clusterresourcebindings not served"))?;
    let all = claimants(snap);
    let candidates: Vec<PolicyCandidate> = all.iter().map(|c| c.candidate.clone()).collect();
    let mut wanted = BTreeSet::new();
    for t in snap.templates.values() {
        // Namespaces propagate by themselves, not through policies.
        if t.resource.group.is_empty() && t.resource.kind == "Namespace" {
            continue;
        }
        if t.object.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let chosen = match decide_claim(&t.object, &candidates, true) {
            ClaimDecision::Keep(p) | ClaimDecision::Claim(p) => p,
            ClaimDecision::Unclaimed => {
                release_claim(objects, t).await?;
                continue;
            }
        };
        let Some(c) = all.iter().find(|c| c.candidate == chosen) else {
            continue;
        };
        claim_template(objects, t, c).await?;
        let key = format!("{}/{}", t.namespace().unwrap_or(""), binding_name(t));
        let current = snap.bindings.get(&key);
        let res = if t.namespace().is_some() { &rb } else { &crb };
        upsert(
            objects,
            res,
            t.namespace(),
            &binding_name(t),
            desired_binding(t, c, current),
            current,
        )
        .await?;
        wanted.insert(key);
    }
    for (key, b) in &snap.bindings {
        if !wanted.contains(key) {
            let res = if b.pointer("/metadata/namespace").is_some() {
                &rb
            } else {
                &crb
            };
            delete_quietly(objects, res, b).await?;
        }
    }
    Ok(())
}

/// Puts the claim labels and annotations on a template, removing any other claim.
async fn claim_template(objects: &Objects, t: &Template, c: &Claimant<'_>) -> Result<(), ApiError> {
    let claim = claim_metadata(&c.candidate);
    let (label_keys, annotation_keys) = claim_keys();
    let mut labels = serde_json::Map::new();
    let mut annotations = serde_json::Map::new();
    for k in label_keys {
        labels.insert(
            (*k).into(),
            claim.labels.get(*k).map_or(Value::Null, |v| json!(v)),
        );
    }
    for k in annotation_keys {
        annotations.insert(
            (*k).into(),
            claim.annotations.get(*k).map_or(Value::Null, |v| json!(v)),
        );
    }
    patch_metadata(objects, t, labels, annotations).await
}

/// Removes claim labels and annotations from a template no policy selects any more.
async fn release_claim(objects: &Objects, t: &Template) -> Result<(), ApiError> {
    let (label_keys, annotation_keys) = claim_keys();
    let labels = label_keys
        .iter()
        .map(|k| ((*k).to_owned(), Value::Null))
        .collect();
    let annotations = annotation_keys
        .iter()
        .map(|k| ((*k).to_owned(), Value::Null))
        .collect();
    patch_metadata(objects, t, labels, annotations).await
}

/// Merge-patches labels and annotations (null removes) when that changes anything.
async fn patch_metadata(
    objects: &Objects,
    t: &Template,
    labels: serde_json::Map<String, Value>,
    annotations: serde_json::Map<String, Value>,
) -> Result<(), ApiError> {
    let current = |field: &str, k: &str| {
        t.object
            .pointer(&format!("/metadata/{field}"))
            .and_then(|m| m.get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let unchanged = labels.iter().all(|(k, v)| current("labels", k) == *v)
        && annotations
            .iter()
            .all(|(k, v)| current("annotations", k) == *v);
    if unchanged {
        return Ok(());
    }
    let patch = json!({"metadata": {"labels": labels, "annotations": annotations}});
    let body = serde_json::to_vec(&patch).unwrap_or_default();
    let opts = WriteOptions {
        field_manager: super::MANAGER.into(),
        ..WriteOptions::default()
    };
    match objects
        .patch(
            &t.resource,
            t.namespace(),
            t.name(),
            crate::api::objects::PatchType::Merge,
            &body,
            None,
            &opts,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "NotFound" || e.reason == "Conflict" => Ok(()),
        Err(e) => Err(e),
    }
}
