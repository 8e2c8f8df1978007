//! The garbage collector's index: which objects name which owners (`ownerReferences`), and
//! which objects wait, terminating, for the collector (`orphan` and `foregroundDeletion`
//! finalizers). Fed with every store change; objects with neither cost one byte search.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use serde::Deserialize;

use crate::api::deletion::{FOREGROUND_FINALIZER, ORPHAN_FINALIZER};

/// One owner reference as the collector reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    /// The owner's store key; `None` when its kind is not served or its scope cannot hold
    /// it (a cluster-scoped dependent naming a namespaced owner).
    pub key: Option<String>,
    /// The owner's uid.
    pub uid: String,
    /// `blockOwnerDeletion`.
    pub blocking: bool,
}

/// A terminating object the collector must finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its uid.
    pub uid: String,
    /// It carries the `orphan` finalizer: its dependents lose their reference to it.
    pub orphan: bool,
    /// It carries the `foregroundDeletion` finalizer: its dependents are deleted first.
    pub foreground: bool,
}

/// A dependent of an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependent {
    /// Its store key.
    pub key: String,
    /// Whether its reference to the owner blocks the owner's foreground deletion.
    pub blocking: bool,
}

#[derive(Deserialize)]
struct Object {
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Metadata {
    namespace: Option<String>,
    uid: Option<String>,
    deletion_timestamp: Option<serde::de::IgnoredAny>,
    finalizers: Vec<String>,
    owner_references: Vec<RawRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRef {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    block_owner_deletion: Option<bool>,
}

/// From an owner reference's group, kind, namespace (the dependent's) and name to the
/// owner's store key, when the kind is served and its scope fits.
pub trait Resolve {
    /// The owner's key.
    fn owner_key(&self, group: &str, kind: &str, ns: Option<&str>, name: &str) -> Option<String>;
}

impl<F> Resolve for F
where
    F: Fn(&str, &str, Option<&str>, &str) -> Option<String>,
{
    fn owner_key(&self, group: &str, kind: &str, ns: Option<&str>, name: &str) -> Option<String> {
        self(group, kind, ns, name)
    }
}

/// What an object holds that the collector reads.
fn facts(value: &Bytes, resolve: &impl Resolve) -> (Vec<OwnerRef>, Option<Pending>) {
    let has = |needle: &[u8]| memchr::memmem::find(value, needle).is_some();
    if !has(b"\"ownerReferences\"") && !has(b"\"finalizers\"") {
        return (Vec::new(), None);
    }
    let Ok(obj) = serde_json::from_slice::<Object>(value) else {
        return (Vec::new(), None);
    };
    let md = obj.metadata;
    let refs = md
        .owner_references
        .iter()
        .map(|r| {
            let group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
            OwnerRef {
                key: resolve.owner_key(group, &r.kind, md.namespace.as_deref(), &r.name),
                uid: r.uid.clone(),
                blocking: r.block_owner_deletion == Some(true),
            }
        })
        .collect();
    let orphan = md.finalizers.iter().any(|f| f == ORPHAN_FINALIZER);
    let foreground = md.finalizers.iter().any(|f| f == FOREGROUND_FINALIZER);
    let pending = (md.deletion_timestamp.is_some() && (orphan || foreground)).then(|| Pending {
        uid: md.uid.unwrap_or_default(),
        orphan,
        foreground,
    });
    (refs, pending)
}

/// The index.
#[derive(Debug, Default)]
pub struct OwnerIndex {
    /// Dependent key → its owner references.
    owned: HashMap<String, Vec<OwnerRef>>,
    /// Owner key → dependent keys.
    dependents: HashMap<String, BTreeSet<String>>,
    /// Terminating objects waiting for the collector.
    pending: HashMap<String, Pending>,
}

impl OwnerIndex {
    /// Applies one store change (`new` is `None` for a delete; `created` for a create) and
    /// returns the keys the collector must look at.
    pub fn apply(
        &mut self,
        key: &str,
        new: Option<&Bytes>,
        created: bool,
        resolve: &impl Resolve,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let (refs, pending) = match new {
            Some(v) => facts(v, resolve),
            None => (Vec::new(), None),
        };
        let old_refs = self.owned.get(key).cloned().unwrap_or_default();
        let old_pending = self.pending.get(key).cloned();
        if new.is_none() || created {
            // The owner is gone, or a new object took its name: its dependents' owners must
            // be looked at again.
            out.extend(self.dependents.get(key).into_iter().flatten().cloned());
        }
        if refs != old_refs {
            for r in old_refs.iter().chain(&refs) {
                if let Some(k) = &r.key
                    && self.pending.contains_key(k)
                {
                    out.insert(k.clone());
                }
            }
            if !refs.is_empty() {
                out.insert(key.to_owned());
            }
            for r in &old_refs {
                if let Some(k) = &r.key
                    && let Some(set) = self.dependents.get_mut(k)
                {
                    set.remove(key);
                    if set.is_empty() {
                        self.dependents.remove(k);
                    }
                }
            }
            for r in &refs {
                if let Some(k) = &r.key {
                    self.dependents
                        .entry(k.clone())
                        .or_default()
                        .insert(key.to_owned());
                }
            }
            if refs.is_empty() {
                self.owned.remove(key);
            } else {
                self.owned.insert(key.to_owned(), refs);
            }
        } else if created && !refs.is_empty() {
            out.insert(key.to_owned());
        }
        if pending != old_pending {
            match pending {
                Some(p) => {
                    self.pending.insert(key.to_owned(), p);
                    out.insert(key.to_owned());
                }
                None => {
                    self.pending.remove(key);
                }
            }
        }
        out
    }

    /// The owner references of a dependent.
    pub fn owners(&self, key: &str) -> &[OwnerRef] {
        self.owned.get(key).map_or(&[], Vec::as_slice)
    }

    /// The collector's work on a terminating object, if any.
    pub fn pending(&self, key: &str) -> Option<&Pending> {
        self.pending.get(key)
    }

    /// The dependents naming `key` with the owner uid `uid`.
    pub fn dependents(&self, key: &str, uid: &str) -> Vec<Dependent> {
        self.dependents
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|d| {
                let r = self
                    .owners(d)
                    .iter()
                    .find(|r| r.key.as_deref() == Some(key) && r.uid == uid)?;
                Some(Dependent {
                    key: d.clone(),
                    blocking: r.blocking,
                })
            })
            .collect()
    }

    /// Every key the collector has work for (after a relist).
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.owned.keys().chain(self.pending.keys())
    }

    /// Dependents indexed.
    pub fn len(&self) -> usize {
        self.owned.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.owned.is_empty() && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn resolve(group: &str, kind: &str, ns: Option<&str>, name: &str) -> Option<String> {
        match (group, kind, ns) {
            ("", "ConfigMap", Some(ns)) => Some(format!("/core/configmaps/{ns}/{name}")),
            ("", "Namespace", _) => Some(format!("/core/namespaces/{name}")),
            _ => None,
        }
    }

    fn bytes(v: serde_json::Value) -> Bytes {
        Bytes::from(serde_json::to_vec(&v).unwrap())
    }

    fn dependent(name: &str, owners: &[(&str, &str, bool)]) -> Bytes {
        let refs: Vec<_> = owners
            .iter()
            .map(|(n, uid, block)| {
                json!({"apiVersion": "v1", "kind": "ConfigMap", "name": n, "uid": uid,
                       "blockOwnerDeletion": block})
            })
            .collect();
        bytes(
            json!({"kind": "Secret", "metadata": {"name": name, "namespace": "a",
              "uid": format!("u-{name}"), "ownerReferences": refs}}),
        )
    }

    const OWNER: &str = "/core/configmaps/a/owner";
    const DEP: &str = "/core/secrets/a/dep";

    #[test]
    fn an_owners_delete_brings_its_dependents() {
        let mut idx = OwnerIndex::default();
        let keys = idx.apply(
            DEP,
            Some(&dependent("dep", &[("owner", "u1", true)])),
            true,
            &resolve,
        );
        assert_eq!(
            keys,
            BTreeSet::from([DEP.to_owned()]),
            "a new dependent is checked"
        );
        assert_eq!(
            idx.dependents(OWNER, "u1"),
            vec![Dependent {
                key: DEP.into(),
                blocking: true
            }]
        );
        assert!(idx.dependents(OWNER, "other-uid").is_empty());
        // An unrelated update of the owner touches nothing.
        let owner = bytes(json!({"metadata": {"name": "owner", "namespace": "a", "uid": "u1"}}));
        assert!(idx.apply(OWNER, Some(&owner), false, &resolve).is_empty());
        // Its delete, or a new object of its name, brings the dependent.
        assert_eq!(
            idx.apply(OWNER, None, false, &resolve),
            BTreeSet::from([DEP.to_owned()])
        );
        assert_eq!(
            idx.apply(OWNER, Some(&owner), true, &resolve),
            BTreeSet::from([DEP.to_owned()])
        );
        // The dependent's delete clears the index.
        idx.apply(DEP, None, false, &resolve);
        assert!(idx.is_empty());
        assert!(idx.dependents(OWNER, "u1").is_empty());
    }

    #[test]
    fn objects_without_owners_or_finalizers_are_not_parsed_or_kept() {
        let mut idx = OwnerIndex::default();
        let plain = Bytes::from_static(b"not json, but without the words either");
        assert!(idx.apply(DEP, Some(&plain), true, &resolve).is_empty());
        assert!(idx.is_empty());
    }

    #[test]
    fn a_terminating_owner_with_a_collector_finalizer_is_pending() {
        let mut idx = OwnerIndex::default();
        idx.apply(
            DEP,
            Some(&dependent("dep", &[("owner", "u1", false)])),
            true,
            &resolve,
        );
        let terminating = bytes(json!({"metadata": {"name": "owner", "namespace": "a",
            "uid": "u1", "deletionTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": ["foregroundDeletion", "example.com/keep"]}}));
        assert_eq!(
            idx.apply(OWNER, Some(&terminating), false, &resolve),
            BTreeSet::from([OWNER.to_owned()])
        );
        assert_eq!(
            idx.pending(OWNER),
            Some(&Pending {
                uid: "u1".into(),
                orphan: false,
                foreground: true
            })
        );
        // The dependent losing its reference brings the waiting owner back.
        let freed = bytes(json!({"metadata": {"name": "dep", "namespace": "a"}}));
        assert_eq!(
            idx.apply(DEP, Some(&freed), false, &resolve),
            BTreeSet::from([OWNER.to_owned()])
        );
        assert!(idx.dependents(OWNER, "u1").is_empty());
        // A finalizer without a deletion timestamp is not pending.
        let not_deleting = bytes(json!({"metadata": {"name": "x", "namespace": "a",
            "finalizers": ["orphan"]}}));
        idx.apply("/core/configmaps/a/x", Some(&not_deleting), true, &resolve);
        assert!(idx.pending("/core/configmaps/a/x").is_none());
    }

    #[test]
    fn unserved_owner_kinds_are_kept_unresolved() {
        let mut idx = OwnerIndex::default();
        let v = bytes(
            json!({"metadata": {"name": "dep", "namespace": "a", "ownerReferences": [
            {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "u9"}]}}),
        );
        idx.apply(DEP, Some(&v), true, &resolve);
        assert_eq!(
            idx.owners(DEP),
            &[OwnerRef {
                key: None,
                uid: "u9".into(),
                blocking: false
            }]
        );
    }
}
