//! Putting manifests into a cluster's Work set, and removing emptied Works.
//!
//! Works are read-only through the API. Hub components write them through [`Objects`] with a
//! `flotilla-` field manager; clients with the admin credential can do the same with a
//! server-side apply using a `flotilla-` field manager (this is what `flotillactl work put`
//! does). Deletion through the API is refused for read-only kinds, so a Work whose manifest
//! list is emptied (`flotillactl work remove`) is deleted by the hub's reaper instead.

use std::sync::Arc;

use flotilla_store::{EventKind, Store, StoreError};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::error::ApiError;
use crate::api::meta;
use crate::api::objects::{Objects, PatchType, WriteOptions};
use crate::registry::Resource;

/// Field manager of everything the agents module writes.
pub const FIELD_MANAGER: &str = "flotilla-hub-agents";

pub(crate) fn opts() -> WriteOptions {
    WriteOptions {
        field_manager: FIELD_MANAGER.into(),
        force: true,
        ..Default::default()
    }
}

pub(crate) fn works() -> Result<Arc<Resource>, ApiError> {
    crate::registry::builtin_resource("work.karmada.io", "v1alpha1", "works")
        .ok_or_else(|| ApiError::internal("works are not served"))
}

/// Creates namespace `name` if it is missing.
pub async fn ensure_namespace(objects: &Objects, name: &str) -> Result<(), ApiError> {
    let ns = crate::registry::builtin_resource("", "v1", "namespaces")
        .ok_or_else(|| ApiError::internal("namespaces are not served"))?;
    let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    match objects.create(&ns, None, obj, &opts()).await {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "AlreadyExists" => Ok(()),
        Err(e) => Err(e),
    }
}

/// Puts `manifest` into `cluster`'s Work set as its own Work and returns the Work's name.
pub async fn put_manifest(
    objects: &Objects,
    cluster: &str,
    manifest: Value,
) -> Result<String, ApiError> {
    let kind = meta::str_at(&manifest, "/kind")
        .unwrap_or_default()
        .to_owned();
    let name = meta::name(&manifest).to_owned();
    if kind.is_empty() || name.is_empty() || meta::str_at(&manifest, "/apiVersion").is_none() {
        return Err(ApiError::bad_request(
            "a manifest needs apiVersion, kind and metadata.name",
        ));
    }
    let work_name =
        flotilla_proto::work_name_for(&kind, meta::str_at(&manifest, "/metadata/namespace"), &name);
    put_work(objects, cluster, &work_name, vec![manifest]).await?;
    Ok(work_name)
}

/// Sets the manifests of Work `work_name` of `cluster`, creating it when missing.
pub async fn put_work(
    objects: &Objects,
    cluster: &str,
    work_name: &str,
    manifests: Vec<Value>,
) -> Result<Value, ApiError> {
    let ns = flotilla_proto::execution_namespace(cluster);
    ensure_namespace(objects, &ns).await?;
    let works = works()?;
    let body = json!({
        "apiVersion": "work.karmada.io/v1alpha1",
        "kind": "Work",
        "metadata": {"name": work_name, "namespace": ns},
        "spec": {"workload": {"manifests": manifests}},
    });
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(objects
        .patch(
            &works,
            Some(&ns),
            work_name,
            PatchType::Apply,
            &bytes,
            None,
            &opts(),
        )
        .await?
        .object)
}

/// Removes Work `work_name` from `cluster`'s Work set; `Ok(false)` when it did not exist.
pub async fn remove_work(
    objects: &Objects,
    cluster: &str,
    work_name: &str,
) -> Result<bool, ApiError> {
    let works = works()?;
    let key = works.key(
        Some(&flotilla_proto::execution_namespace(cluster)),
        work_name,
    );
    match objects.store().delete(&key, None).await {
        Ok(_) => Ok(true),
        Err(StoreError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Removes the Work holding `manifest` (as named by [`put_manifest`]).
pub async fn remove_manifest(
    objects: &Objects,
    cluster: &str,
    manifest: &Value,
) -> Result<bool, ApiError> {
    let kind = meta::str_at(manifest, "/kind").unwrap_or_default();
    let work_name = flotilla_proto::work_name_for(
        kind,
        meta::str_at(manifest, "/metadata/namespace"),
        meta::name(manifest),
    );
    remove_work(objects, cluster, &work_name).await
}

/// Whether a stored Work has no manifests left.
pub fn is_empty_work(work: &Value) -> bool {
    work.pointer("/spec/workload/manifests")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
}

/// Deletes Works whose manifest list is empty, now and whenever one appears.
pub async fn run_reaper(objects: Objects, shutdown: CancellationToken) {
    let Ok(works) = works() else { return };
    let prefix = works.key_prefix();
    let store = objects.store().clone();
    loop {
        let from = store.current_revision();
        if let Ok(page) = store.list(&prefix, None, 0).await {
            for kv in page.items {
                reap(&*store, &kv.key, &kv.value, kv.mod_revision).await;
            }
        }
        let mut events = match store.watch(&prefix, from).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "watching Works for the reaper failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = events.next() => ev,
            };
            match ev {
                Some(Ok(ev)) if ev.kind != EventKind::Deleted => {
                    reap(&*store, &ev.kv.key, &ev.kv.value, ev.kv.mod_revision).await
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
    }
}

async fn reap(store: &dyn Store, key: &str, value: &[u8], rev: u64) {
    let Ok(v) = serde_json::from_slice::<Value>(value) else {
        return;
    };
    if is_empty_work(&v) {
        match store.delete(key, Some(rev)).await {
            Ok(_) => tracing::info!(%key, "removed an emptied Work"),
            Err(StoreError::NotFound(_) | StoreError::Conflict { .. }) => {}
            Err(e) => tracing::warn!(%key, error = %e, "removing an emptied Work failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_works() {
        assert!(is_empty_work(
            &json!({"spec": {"workload": {"manifests": []}}})
        ));
        assert!(is_empty_work(&json!({"spec": {}})));
        assert!(!is_empty_work(
            &json!({"spec": {"workload": {"manifests": [{}]}}})
        ));
    }
}
