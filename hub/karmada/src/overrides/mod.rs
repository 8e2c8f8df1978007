//! Rendering a resource template for one member cluster with its OverridePolicies and
//! ClusterOverridePolicies (Karmada's override manager).
//!
//! [`apply_overrides`] is pure: it takes the manifest (already revised with the cluster's replica
//! count), the Cluster object and the policies, and returns the cluster's copy plus the names of
//! the policies that changed it.

mod image;
mod patch;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::scheduler::ClusterInfo;
use crate::selectors::{ObjectKey, Specificity, affinity_matches, selectors_specificity};
use crate::types::{
    CommandArgsOverrider, FieldOverrider, LabelAnnotationOverrider, OverrideSpec, Overriders,
    PlaintextOverrider,
};

/// The result of rendering one manifest for one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The cluster's copy of the manifest.
    pub manifest: Value,
    /// Names of applied policies, in order, e.g. `ClusterOverridePolicy/cop1`,
    /// `OverridePolicy/ns/op1`.
    pub applied: Vec<String>,
}

/// Why a manifest could not be rendered for a cluster.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// The Cluster object could not be read.
    #[error("invalid Cluster object: {0}")]
    InvalidCluster(#[source] serde_json::Error),
    /// A stored policy could not be decoded.
    #[error("{policy}: invalid policy: {source}")]
    InvalidPolicy {
        /// e.g. `OverridePolicy/ns/op1`.
        policy: String,
        /// The decode error.
        #[source]
        source: serde_json::Error,
    },
    /// One overrider failed.
    #[error("{policy}: {overrider} {path}: {reason}")]
    Overrider {
        /// e.g. `OverridePolicy/ns/op1`.
        policy: String,
        /// The overrider kind, e.g. `plaintext`, `imageOverrider`.
        overrider: &'static str,
        /// The path (or container name, label key) the overrider targeted.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// A failure inside one overrider before the policy name is known.
#[derive(Debug)]
pub(crate) struct OpError {
    overrider: &'static str,
    path: String,
    reason: String,
}

impl OpError {
    pub(crate) fn new(overrider: &'static str, path: &str, reason: impl Into<String>) -> Self {
        OpError {
            overrider,
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    fn with_policy(self, policy: &str) -> OverrideError {
        OverrideError::Overrider {
            policy: policy.to_string(),
            overrider: self.overrider,
            path: self.path,
            reason: self.reason,
        }
    }
}

/// A decoded policy that selects the manifest, with what is needed to order it.
struct Candidate {
    display: String,
    name: String,
    specificity: Specificity,
    spec: OverrideSpec,
}

/// Applies the ClusterOverridePolicies then the OverridePolicies of the manifest's namespace that
/// select `manifest` and have rules targeting `cluster` (a Cluster object).
///
/// Within each group policies run by selector specificity ascending (empty selectors first, then
/// kind-only, label selector, name), ties by policy name, so the most specific has the last word.
/// Within a policy, each rule whose `targetCluster` matches runs in list order, its overriders in
/// the fixed order image, command, args, labels, annotations, field, plaintext. Policies being
/// deleted are skipped. Any failing overrider fails the whole rendering.
pub fn apply_overrides(
    manifest: &Value,
    cluster: &Value,
    cluster_overrides: &[Value],
    overrides: &[Value],
) -> Result<Rendered, OverrideError> {
    let cluster = ClusterInfo::from_cluster_json(cluster).map_err(OverrideError::InvalidCluster)?;
    let key = ObjectKey::from_object(manifest);
    let mut out = manifest.clone();
    let mut applied = Vec::new();

    let cops = candidates(cluster_overrides, &key, false)?;
    // Cluster-scoped templates only get ClusterOverridePolicies.
    let ops = if key.namespace.is_empty() {
        Vec::new()
    } else {
        candidates(overrides, &key, true)?
    };
    for c in cops.into_iter().chain(ops) {
        let mut used = false;
        for rule in c.spec.effective_rules() {
            if !affinity_matches(rule.target_cluster.as_ref(), &cluster) {
                continue;
            }
            used = true;
            apply_overriders(&mut out, &rule.overriders).map_err(|e| e.with_policy(&c.display))?;
        }
        if used {
            applied.push(c.display);
        }
    }
    Ok(Rendered {
        manifest: out,
        applied,
    })
}

/// Decodes, filters and orders one group of policies.
fn candidates(
    policies: &[Value],
    key: &ObjectKey,
    namespaced: bool,
) -> Result<Vec<Candidate>, OverrideError> {
    let mut out = Vec::new();
    for p in policies {
        let meta = p.get("metadata");
        let field = |f: &str| {
            meta.and_then(|m| m.get(f))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let name = field("name");
        let namespace = field("namespace");
        if meta
            .and_then(|m| m.get("deletionTimestamp"))
            .is_some_and(|v| !v.is_null())
        {
            continue;
        }
        if namespaced && namespace != key.namespace {
            continue;
        }
        let display = if namespaced {
            format!("OverridePolicy/{namespace}/{name}")
        } else {
            format!("ClusterOverridePolicy/{name}")
        };
        let spec_json = p.get("spec").cloned().unwrap_or(Value::Null);
        let spec: OverrideSpec = if spec_json.is_null() {
            OverrideSpec::default()
        } else {
            serde_json::from_value(spec_json).map_err(|source| OverrideError::InvalidPolicy {
                policy: display.clone(),
                source,
            })?
        };
        let specificity = selectors_specificity(&spec.resource_selectors, key);
        if !spec.resource_selectors.is_empty() && specificity == Specificity::Mismatch {
            continue;
        }
        out.push(Candidate {
            display,
            name,
            specificity,
            spec,
        });
    }
    out.sort_by(|a, b| {
        a.specificity
            .cmp(&b.specificity)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(out)
}

/// Applies one rule's overriders in Karmada's fixed order.
pub(crate) fn apply_overriders(obj: &mut Value, o: &Overriders) -> Result<(), OpError> {
    for io in &o.image_overrider {
        image::apply_image_overrider(obj, io)?;
    }
    for c in &o.command_overrider {
        apply_command_args(obj, c, "command", "commandOverrider")?;
    }
    for c in &o.args_overrider {
        apply_command_args(obj, c, "args", "argsOverrider")?;
    }
    for l in &o.labels_overrider {
        apply_metadata_map(obj, l, "labels", "labelsOverrider")?;
    }
    for a in &o.annotations_overrider {
        apply_metadata_map(obj, a, "annotations", "annotationsOverrider")?;
    }
    for f in &o.field_overrider {
        apply_field_overrider(obj, f)?;
    }
    for p in &o.plaintext {
        apply_plaintext(obj, p)?;
    }
    Ok(())
}

/// The JSON pointer of the container list of the pod template for the kinds Karmada's image and
/// command/args overriders know; `None` for other kinds (those overriders are no-ops there).
pub(crate) fn containers_pointer(obj: &Value) -> Option<&'static str> {
    match obj.get("kind").and_then(Value::as_str)? {
        "Pod" => Some("/spec/containers"),
        "ReplicaSet" | "Deployment" | "DaemonSet" | "StatefulSet" | "Job" => {
            Some("/spec/template/spec/containers")
        }
        _ => None,
    }
}

fn apply_command_args(
    obj: &mut Value,
    c: &CommandArgsOverrider,
    field: &str,
    overrider: &'static str,
) -> Result<(), OpError> {
    let path = format!("{field} of container {:?}", c.container_name);
    if !matches!(c.operator.as_str(), "add" | "remove") {
        return Err(OpError::new(
            overrider,
            &path,
            format!("unknown operator {:?}", c.operator),
        ));
    }
    let Some(ptr) = containers_pointer(obj) else {
        return Ok(());
    };
    let Some(containers) = obj.pointer_mut(ptr).and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for container in containers.iter_mut() {
        if container.get("name").and_then(Value::as_str) != Some(c.container_name.as_str()) {
            continue;
        }
        let Some(container) = container.as_object_mut() else {
            continue;
        };
        let current = container
            .entry(field.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if current.is_null() {
            *current = Value::Array(Vec::new());
        }
        let Some(items) = current.as_array_mut() else {
            return Err(OpError::new(
                overrider,
                &path,
                format!("{field} is not a list"),
            ));
        };
        match c.operator.as_str() {
            "add" => items.extend(c.value.iter().map(|v| Value::String(v.clone()))),
            _ => items.retain(|item| {
                !item
                    .as_str()
                    .is_some_and(|s| c.value.iter().any(|v| v == s))
            }),
        }
    }
    Ok(())
}

fn apply_metadata_map(
    obj: &mut Value,
    o: &LabelAnnotationOverrider,
    field: &str,
    overrider: &'static str,
) -> Result<(), OpError> {
    let path = format!("/metadata/{field}");
    if !matches!(o.operator.as_str(), "add" | "remove" | "replace") {
        return Err(OpError::new(
            overrider,
            &path,
            format!("unknown operator {:?}", o.operator),
        ));
    }
    let Some(root) = obj.as_object_mut() else {
        return Err(OpError::new(overrider, &path, "manifest is not an object"));
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    let Some(meta) = meta.as_object_mut() else {
        return Err(OpError::new(overrider, &path, "metadata is not an object"));
    };
    if o.operator != "add" && !meta.get(field).is_some_and(Value::is_object) {
        // replace/remove only touch keys that exist.
        return Ok(());
    }
    let map = meta
        .entry(field.to_string())
        .or_insert_with(|| Value::Object(Default::default()));
    if map.is_null() {
        *map = Value::Object(Default::default());
    }
    let Some(map) = map.as_object_mut() else {
        return Err(OpError::new(
            overrider,
            &path,
            format!("{field} is not a map"),
        ));
    };
    for (k, v) in &o.value {
        match o.operator.as_str() {
            "add" => {
                map.insert(k.clone(), Value::String(v.clone()));
            }
            "replace" => {
                if let Some(cur) = map.get_mut(k) {
                    *cur = Value::String(v.clone());
                }
            }
            _ => {
                map.remove(k);
            }
        }
    }
    Ok(())
}

fn apply_plaintext(obj: &mut Value, p: &PlaintextOverrider) -> Result<(), OpError> {
    patch::apply_op(obj, &p.operator, &p.path, p.value.as_ref())
        .map_err(|reason| OpError::new("plaintext", &p.path, reason))
}

fn apply_field_overrider(obj: &mut Value, f: &FieldOverrider) -> Result<(), OpError> {
    let err = |reason: String| OpError::new("fieldOverrider", &f.field_path, reason);
    if !f.json.is_empty() && !f.yaml.is_empty() {
        return Err(err("only one of json and yaml may be set".into()));
    }
    if f.json.is_empty() && f.yaml.is_empty() {
        return Ok(());
    }
    if !f.field_path.starts_with('/') {
        return Err(err(
            "fieldPath must be a JSON pointer starting with '/'".into()
        ));
    }
    let Some(target) = obj.pointer_mut(&f.field_path) else {
        return Err(err("field not found".into()));
    };
    let Some(text) = target.as_str() else {
        return Err(err("field is not a string".into()));
    };
    let yaml = f.json.is_empty();
    let mut doc: Value = if yaml {
        serde_saphyr::from_str(text).map_err(|e| err(format!("not valid YAML: {e}")))?
    } else {
        serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?
    };
    let ops = if yaml { &f.yaml } else { &f.json };
    for op in ops {
        patch::apply_op(&mut doc, &op.operator, &op.sub_path, op.value.as_ref()).map_err(
            |reason| {
                OpError::new(
                    "fieldOverrider",
                    &format!("{}#{}", f.field_path, op.sub_path),
                    reason,
                )
            },
        )?;
    }
    let rendered = if yaml {
        serde_saphyr::to_string(&doc).map_err(|e| err(format!("cannot write YAML: {e}")))?
    } else {
        serde_json::to_string(&doc).map_err(|e| err(format!("cannot write JSON: {e}")))?
    };
    *target = Value::String(rendered);
    Ok(())
}
