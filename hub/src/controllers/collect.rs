//! The garbage collector's writes, which read live what they act on: a dependent's owners
//! (whether each still exists with the referenced uid), and the current object before an
//! owner reference or a finalizer is removed (written with its `resourceVersion` as the
//! precondition).

use serde_json::Value;

use super::gc::{Checked, OwnerState, Verdict, verdict};
use super::write::housekeeping_opts;
use crate::api::deletion::{DeleteOptions, FOREGROUND_FINALIZER};
use crate::api::error::ApiError;
use crate::api::meta;
use crate::api::objects::Objects;
use crate::registry::Resource;

fn is_not_found(e: &ApiError) -> bool {
    e.code.as_u16() == 404
}

/// What a live read finds of the owner a reference names, for a dependent in `ns`.
async fn owner_state(objects: &Objects, ns: Option<&str>, r: &Value) -> Result<Checked, ApiError> {
    let s = |p: &str| r.get(p).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind, name, uid) = (s("apiVersion"), s("kind"), s("name"), s("uid"));
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let registry = objects.registry();
    let res = registry.by_kind(group, version, kind).or_else(|| {
        registry
            .all()
            .into_iter()
            .find(|r| r.group == group && r.kind == kind)
    });
    let blocking = r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true);
    let checked = |state| Checked {
        uid: uid.to_owned(),
        blocking,
        state,
    };
    let Some(res) = res else {
        return Ok(checked(OwnerState::Unresolvable));
    };
    let owner_ns = match (res.namespaced, ns) {
        (true, None) => return Ok(checked(OwnerState::Unresolvable)),
        (true, ns) => ns,
        (false, _) => None,
    };
    match objects.get(&res, owner_ns, name).await {
        Ok(o) if meta::str_at(&o, "/metadata/uid") != Some(uid) => Ok(checked(OwnerState::Absent)),
        Ok(o) => {
            let waiting = o.pointer("/metadata/deletionTimestamp").is_some()
                && o.pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| f.iter().any(|x| x == FOREGROUND_FINALIZER));
            Ok(checked(if waiting {
                OwnerState::WaitingForDependents
            } else {
                OwnerState::Present
            }))
        }
        Err(e) if is_not_found(&e) => Ok(checked(OwnerState::Absent)),
        Err(e) => Err(e),
    }
}

/// Deletes the dependent when its owners are gone, or drops references to the missing ones.
pub async fn collect(
    objects: &Objects,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    let dependent = objects.get(res, ns, name).await?;
    let refs = dependent
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut checked = Vec::with_capacity(refs.len());
    for r in &refs {
        checked.push(owner_state(objects, ns, r).await?);
    }
    match verdict(&checked) {
        Verdict::Keep => Ok(None),
        Verdict::Delete(propagation) => {
            let opts = DeleteOptions {
                precondition_uid: meta::str_at(&dependent, "/metadata/uid").map(str::to_owned),
                propagation,
                ..DeleteOptions::default()
            };
            tracing::info!(kind = %res.kind, namespace = ?ns, %name, ?propagation, "deleting an object whose owners are gone");
            objects.delete(res, ns, name, &opts).await.map(|_| None)
        }
        Verdict::DropOwners(uids) => drop_owners(objects, res, ns, name, &uids).await,
    }
}

/// Removes the references to owners with these uids.
pub async fn drop_owners(
    objects: &Objects,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
    uids: &[String],
) -> Result<Option<Value>, ApiError> {
    let mut obj = objects.get(res, ns, name).await?;
    let Some(refs) = obj
        .pointer_mut("/metadata/ownerReferences")
        .and_then(Value::as_array_mut)
    else {
        return Ok(None);
    };
    let before = refs.len();
    refs.retain(|r| {
        !uids
            .iter()
            .any(|u| r.get("uid").and_then(Value::as_str) == Some(u.as_str()))
    });
    if refs.len() == before {
        return Ok(None);
    }
    if refs.is_empty() {
        meta::metadata_mut(&mut obj).remove("ownerReferences");
    }
    objects
        .update(res, ns, name, obj, None, &housekeeping_opts())
        .await
        .map(|w| Some(w.object))
}

/// Removes a garbage-collector finalizer from the object, if it still has the uid.
pub async fn remove_finalizer(
    objects: &Objects,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
    uid: &str,
    finalizer: &str,
) -> Result<Option<Value>, ApiError> {
    let mut obj = objects.get(res, ns, name).await?;
    if meta::str_at(&obj, "/metadata/uid") != Some(uid) {
        return Ok(None);
    }
    let Some(list) = obj
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    else {
        return Ok(None);
    };
    let before = list.len();
    list.retain(|f| f != finalizer);
    if list.len() == before {
        return Ok(None);
    }
    // Without finalizers a terminating object is removed: nothing stored to hand back.
    let removed = list.is_empty() && obj.pointer("/metadata/deletionTimestamp").is_some();
    objects
        .update(res, ns, name, obj, None, &housekeeping_opts())
        .await
        .map(|w| (!removed).then_some(w.object))
}
