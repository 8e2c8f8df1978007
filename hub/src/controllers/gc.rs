//! The garbage collector: deletes objects whose owners (`ownerReferences`) are all gone,
//! drops references to owners that are gone while others remain, and finishes the
//! `Foreground` and `Orphan` deletions the API started, as kube-controller-manager's
//! garbage collector does.
//!
//! Keys are store keys of any object. [`decide`] works from the cache's owner index; whether
//! an owner still exists is decided on a live read when the write runs ([`verdict`] on what
//! it read), so a cache that lags behind a just-created owner never deletes a dependent.

use std::sync::Arc;

use super::cache::State;
use super::keys::split_key;
use super::write::Write;
use crate::api::deletion::{FOREGROUND_FINALIZER, ORPHAN_FINALIZER, Propagation};
use crate::registry::Resource;

/// An owner as a live read found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// It exists with the referenced uid and is not being deleted in the foreground.
    Present,
    /// It exists and waits, terminating, for its dependents (`foregroundDeletion`).
    WaitingForDependents,
    /// Nothing of that name, or an object of that name with another uid.
    Absent,
    /// Its kind is not served or its scope does not fit: nothing is decided.
    Unresolvable,
}

/// One reference of a dependent with what was found of its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The owner's uid.
    pub uid: String,
    /// `blockOwnerDeletion`.
    pub blocking: bool,
    /// What was found.
    pub state: OwnerState,
}

/// What becomes of a dependent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Keep,
    /// Delete it, in the foreground when an owner waits for it.
    Delete(Propagation),
    /// Remove the references with these owner uids.
    DropOwners(Vec<String>),
}

/// kube-controller-manager's rule for a dependent: with no owner left it goes (in the
/// foreground if an owner it blocks waits for it); with some owners left, references to the
/// missing ones are dropped.
pub fn verdict(refs: &[Checked]) -> Verdict {
    if refs.is_empty() || refs.iter().any(|r| r.state == OwnerState::Unresolvable) {
        return Verdict::Keep;
    }
    let absent: Vec<String> = refs
        .iter()
        .filter(|r| r.state == OwnerState::Absent)
        .map(|r| r.uid.clone())
        .collect();
    if refs.iter().any(|r| r.state == OwnerState::Present) {
        return if absent.is_empty() {
            Verdict::Keep
        } else {
            Verdict::DropOwners(absent)
        };
    }
    let waited_for = refs
        .iter()
        .any(|r| r.state == OwnerState::WaitingForDependents && r.blocking);
    Verdict::Delete(if waited_for {
        Propagation::Foreground
    } else {
        Propagation::Background
    })
}

/// A key's resource, namespace and name.
fn locate(state: &State, key: &str) -> Option<(Arc<Resource>, Option<String>, String)> {
    let res = state.resource_of_key(key)?.clone();
    let (ns, name) = split_key(&res, key)?;
    let (ns, name) = (ns.map(str::to_owned), name.to_owned());
    Some((res, ns, name))
}

/// The writes one key needs.
pub fn decide(state: &State, key: &str) -> Vec<Write> {
    let idx = state.owners();
    let mut out = Vec::new();
    if let Some(p) = idx.pending(key)
        && let Some((res, ns, name)) = locate(state, key)
    {
        let dependents = idx.dependents(key, &p.uid);
        if p.orphan {
            for d in &dependents {
                if let Some((res, ns, name)) = locate(state, &d.key) {
                    out.push(Write::DropOwner {
                        res,
                        ns,
                        name,
                        owner_uid: p.uid.clone(),
                    });
                }
            }
            out.push(Write::RemoveFinalizer {
                res,
                ns,
                name,
                uid: p.uid.clone(),
                finalizer: ORPHAN_FINALIZER,
            });
        } else if p.foreground {
            for d in &dependents {
                if let Some((res, ns, name)) = locate(state, &d.key) {
                    out.push(Write::Delete {
                        res,
                        ns,
                        name,
                        propagation: Propagation::Foreground,
                    });
                }
            }
            if dependents.iter().all(|d| !d.blocking) {
                out.push(Write::RemoveFinalizer {
                    res,
                    ns,
                    name,
                    uid: p.uid.clone(),
                    finalizer: FOREGROUND_FINALIZER,
                });
            }
        }
    }
    if !idx.owners(key).is_empty()
        && let Some((res, ns, name)) = locate(state, key)
    {
        out.push(Write::Collect { res, ns, name });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    fn checked(uid: &str, blocking: bool, state: OwnerState) -> Checked {
        Checked {
            uid: uid.into(),
            blocking,
            state,
        }
    }

    #[test]
    fn the_verdicts() {
        use OwnerState::*;
        assert_eq!(verdict(&[]), Verdict::Keep);
        assert_eq!(verdict(&[checked("a", true, Present)]), Verdict::Keep);
        assert_eq!(
            verdict(&[checked("a", true, Absent)]),
            Verdict::Delete(Propagation::Background)
        );
        assert_eq!(
            verdict(&[checked("a", false, Absent), checked("b", false, Present)]),
            Verdict::DropOwners(vec!["a".into()])
        );
        assert_eq!(
            verdict(&[checked("a", true, WaitingForDependents)]),
            Verdict::Delete(Propagation::Foreground)
        );
        assert_eq!(
            verdict(&[checked("a", false, WaitingForDependents)]),
            Verdict::Delete(Propagation::Background),
            "a non-blocking dependent of a foreground deletion goes in the background"
        );
        assert_eq!(
            verdict(&[checked("a", true, Absent), checked("b", true, Unresolvable)]),
            Verdict::Keep,
            "an owner that cannot be looked up keeps the dependent"
        );
    }

    fn state(objects: &[(&str, serde_json::Value)]) -> State {
        let mut s = State::default();
        s.sync_registry(&crate::registry::Registry::new());
        for (k, v) in objects {
            let b = Bytes::from(serde_json::to_vec(v).unwrap());
            s.apply_event(k, Some(&b), 1);
            s.index_owners(k, Some(&b), true);
        }
        s
    }

    const OWNER: &str = "/core/configmaps/a/owner";
    const DEP: &str = "/core/secrets/a/dep";

    fn dep(block: bool) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dep", "namespace": "a",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
            "uid": "u1", "blockOwnerDeletion": block}]}})
    }

    fn owner(finalizers: &[&str]) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner",
            "namespace": "a", "uid": "u1", "deletionTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": finalizers}})
    }

    #[test]
    fn a_dependent_is_checked_live() {
        let s = state(&[(DEP, dep(false))]);
        let w = decide(&s, DEP);
        assert!(
            matches!(&w[..], [Write::Collect { name, .. }] if name == "dep"),
            "{w:?}"
        );
        assert!(decide(&s, OWNER).is_empty());
    }

    #[test]
    fn an_orphaning_owner_frees_its_dependents_then_itself() {
        let s = state(&[(DEP, dep(true)), (OWNER, owner(&["orphan"]))]);
        let w = decide(&s, OWNER);
        assert!(
            matches!(&w[..], [
                Write::DropOwner { name: d, owner_uid, .. },
                Write::RemoveFinalizer { name: o, finalizer: "orphan", .. },
            ] if d == "dep" && o == "owner" && owner_uid == "u1"),
            "{w:?}"
        );
    }

    #[test]
    fn a_foreground_owner_waits_for_blocking_dependents() {
        let s = state(&[(DEP, dep(true)), (OWNER, owner(&["foregroundDeletion"]))]);
        let w = decide(&s, OWNER);
        assert!(
            matches!(&w[..], [Write::Delete { name, propagation: Propagation::Foreground, .. }]
                if name == "dep"),
            "the dependent is deleted and the owner keeps its finalizer: {w:?}"
        );
        let s = state(&[(DEP, dep(false)), (OWNER, owner(&["foregroundDeletion"]))]);
        let w = decide(&s, OWNER);
        assert!(
            matches!(
                &w[..],
                [
                    Write::Delete { .. },
                    Write::RemoveFinalizer {
                        finalizer: "foregroundDeletion",
                        ..
                    },
                ]
            ),
            "a non-blocking dependent does not hold the owner: {w:?}"
        );
        let s = state(&[(OWNER, owner(&["foregroundDeletion"]))]);
        assert!(matches!(
            &decide(&s, OWNER)[..],
            [Write::RemoveFinalizer { .. }]
        ));
    }
}
