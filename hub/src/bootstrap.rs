//! What a fresh hub contains: the standard namespaces, and the CRDs it must serve again.

use serde_json::{Value, json};

use crate::api::error::ApiError;
use crate::api::objects::{Objects, WriteOptions};

/// Creates the standard namespaces and re-registers stored CRDs.
pub async fn run(objects: &Objects) -> Result<(), ApiError> {
    let reg = objects.registry().clone();
    let ns = reg
        .get("", "v1", "namespaces")
        .ok_or_else(|| ApiError::internal("namespaces not served"))?;
    for name in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "karmada-system",
        "flotilla-system",
    ] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match objects
            .create(&ns, None, obj, &WriteOptions::default())
            .await
        {
            Ok(_) => {}
            Err(e) if e.reason == "AlreadyExists" => {}
            Err(e) => return Err(e),
        }
    }
    let crds = reg
        .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .ok_or_else(|| ApiError::internal("CRDs not served"))?;
    let page = objects
        .store()
        .list(&crds.list_prefix(None), None, 0)
        .await?;
    for kv in page.items {
        match serde_json::from_slice::<Value>(&kv.value) {
            Ok(crd) => {
                if let Err(e) = reg.apply_crd(&crd) {
                    tracing::warn!(key = %kv.key, error = %e, "stored CRD cannot be served");
                }
            }
            Err(e) => tracing::warn!(key = %kv.key, error = %e, "stored CRD is unreadable"),
        }
    }
    Ok(())
}
