//! Namespace deletion as kube-controller-manager's namespace controller does it: a
//! terminating namespace has everything in it deleted through the API (so finalizers and
//! owner references are honoured), reports what remains in its status conditions, and is
//! removed once it is empty, by dropping the `kubernetes` entry of `spec.finalizers`.
//! Objects under Karmada's deletion protection stay, and hold the namespace, until the label
//! is removed.
//!
//! Keys are namespace keys. The cache knows which namespaces are terminating; a delete of
//! anything in one brings its key back, so a namespace goes as soon as its last object does.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::cache::State;
use super::keys::{key_name, prefix};
use super::write::Write;
use super::write::housekeeping_opts;
use crate::api::deletion::DeleteOptions;
use crate::api::error::ApiError;
use crate::api::meta;
use crate::api::objects::Objects;
use crate::registry::Resource;

/// The finalizer in `spec.finalizers` that the namespace controller removes.
pub const KUBERNETES_FINALIZER: &str = "kubernetes";

/// The writes one key needs.
pub fn decide(state: &State, key: &str) -> Vec<Write> {
    let name = key_name(key);
    match state.resource_of_key(key) {
        Some(res) if key.starts_with(prefix::NAMESPACES) && state.namespace_terminating(name) => {
            vec![Write::FinalizeNamespace {
                res: res.clone(),
                name: name.to_owned(),
            }]
        }
        _ => Vec::new(),
    }
}

/// What is left in a terminating namespace after a round of deletes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Remaining {
    /// `plural.group` (`configmaps.` for core) → objects left.
    pub resources: BTreeMap<String, usize>,
    /// Finalizer → objects left that carry it.
    pub finalizers: BTreeMap<String, usize>,
    /// Delete failures, as messages.
    pub failures: Vec<String>,
}

impl Remaining {
    /// Whether the namespace is empty.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.failures.is_empty()
    }
}

fn condition(ty: &str, status: bool, reason: &str, message: String, previous: &[Value]) -> Value {
    let status = if status { "True" } else { "False" };
    let time = previous
        .iter()
        .find(|c| c["type"] == ty && c["status"] == status)
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(meta::now()));
    let mut c = json!({"type": ty, "status": status, "lastTransitionTime": time, "reason": reason});
    if !message.is_empty() {
        c["message"] = json!(message);
    }
    c
}

/// kube-controller-manager's five deletion conditions for what remains.
pub fn conditions(rem: &Remaining, previous: &[Value]) -> Vec<Value> {
    let list = |m: &BTreeMap<String, usize>, what: &str| {
        m.iter()
            .map(|(k, n)| format!("{k} has {n} {what}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let content = !rem.resources.is_empty();
    let finalizers = !rem.finalizers.is_empty();
    let failed = !rem.failures.is_empty();
    vec![
        condition(
            "NamespaceDeletionDiscoveryFailure",
            false,
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
            previous,
        ),
        condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            false,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
            previous,
        ),
        condition(
            "NamespaceDeletionContentFailure",
            failed,
            if failed {
                "ContentDeletionFailed"
            } else {
                "ContentDeleted"
            },
            if failed {
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    rem.failures.len(),
                    rem.failures.join(", ")
                )
            } else {
                "All content successfully deleted, may be waiting on finalization".into()
            },
            previous,
        ),
        condition(
            "NamespaceContentRemaining",
            content,
            if content {
                "SomeResourcesRemain"
            } else {
                "ContentRemoved"
            },
            if content {
                format!(
                    "Some resources are remaining: {}",
                    list(&rem.resources, "resource instances")
                )
            } else {
                "All content successfully removed".into()
            },
            previous,
        ),
        condition(
            "NamespaceFinalizersRemaining",
            finalizers,
            if finalizers {
                "SomeFinalizersRemain"
            } else {
                "ContentHasNoFinalizers"
            },
            if finalizers {
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    list(&rem.finalizers, "resource instances").replace(" has ", " in ")
                )
            } else {
                "All content-preserving finalizers finished".into()
            },
            previous,
        ),
    ]
}

/// Deletes what a terminating namespace holds, records what remains, and removes the
/// namespace once nothing does.
pub async fn finalize(
    objects: &Objects,
    ns_res: &Resource,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    let mut ns = objects.get(ns_res, None, name).await?;
    if ns.pointer("/metadata/deletionTimestamp").is_none() {
        return Ok(None);
    }
    let mut rem = Remaining::default();
    let mut seen = HashSet::new();
    for res in objects.registry().all().iter().filter(|r| r.namespaced) {
        // Every version of a group/plural reads the same stored objects.
        let prefix = res.list_prefix(Some(name));
        if !seen.insert(prefix.clone()) {
            continue;
        }
        let page = objects.store().list(&prefix, None, 0).await?;
        let what = format!("{}.{}", res.plural, res.group);
        for item in page.items {
            let Ok(v) = serde_json::from_slice::<Value>(&item.value) else {
                rem.failures
                    .push(format!("{what}: {} is unreadable", item.key));
                continue;
            };
            let after = if v.pointer("/metadata/deletionTimestamp").is_some() {
                Some(v)
            } else if let Some(why) = flotilla_karmada::protection::deletion_refusal(&v) {
                // Karmada's deletion protection holds inside a terminating namespace too.
                rem.failures
                    .push(format!("{what} {}: {why}", meta::name(&v)));
                Some(v)
            } else {
                match objects
                    .delete(res, Some(name), meta::name(&v), &DeleteOptions::default())
                    .await
                {
                    Ok(o) if crate::api::objects::held_by_finalizers(res, &o) => Some(o),
                    Ok(_) => None,
                    Err(e) if e.code.as_u16() == 404 => None,
                    Err(e) => {
                        rem.failures.push(format!("{what}: {e}"));
                        None
                    }
                }
            };
            if let Some(o) = after {
                *rem.resources.entry(what.clone()).or_default() += 1;
                for f in o
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    *rem.finalizers.entry(f.to_owned()).or_default() += 1;
                }
            }
        }
    }
    let previous = ns
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let conds = conditions(&rem, &previous);
    if !rem.is_empty() {
        if previous != conds {
            ns["status"]["conditions"] = json!(conds);
            objects
                .update(ns_res, None, name, ns, Some("status"), &housekeeping_opts())
                .await?;
        }
        tracing::debug!(namespace = name, remaining = ?rem.resources, "namespace content remains");
        return Ok(None);
    }
    if let Some(list) = ns
        .pointer_mut("/spec/finalizers")
        .and_then(Value::as_array_mut)
    {
        list.retain(|f| f != KUBERNETES_FINALIZER);
    }
    ns["status"]["conditions"] = json!(conds);
    tracing::info!(namespace = name, "namespace empty; removing it");
    objects
        .update(ns_res, None, name, ns, None, &housekeeping_opts())
        .await?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn conditions_say_what_remains() {
        let mut rem = Remaining::default();
        rem.resources.insert("configmaps.".into(), 2);
        rem.finalizers.insert("example.com/hold".into(), 1);
        let c = conditions(&rem, &[]);
        let by = |t: &str| c.iter().find(|c| c["type"] == t).unwrap().clone();
        assert_eq!(by("NamespaceContentRemaining")["status"], "True");
        assert_eq!(
            by("NamespaceContentRemaining")["message"],
            "Some resources are remaining: configmaps. has 2 resource instances"
        );
        assert_eq!(
            by("NamespaceFinalizersRemaining")["message"],
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        );
        assert_eq!(by("NamespaceDeletionContentFailure")["status"], "False");
        let empty = conditions(&Remaining::default(), &c);
        assert!(Remaining::default().is_empty());
        assert_eq!(
            empty
                .iter()
                .find(|c| c["type"] == "NamespaceContentRemaining")
                .unwrap()["reason"],
            "ContentRemoved"
        );
        // An unchanged condition keeps its transition time.
        assert_eq!(
            by("NamespaceDeletionDiscoveryFailure")["lastTransitionTime"],
            empty
                .iter()
                .find(|c| c["type"] == "NamespaceDeletionDiscoveryFailure")
                .unwrap()["lastTransitionTime"]
        );
    }
}
