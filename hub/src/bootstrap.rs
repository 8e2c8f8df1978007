//! What a fresh hub contains: the standard namespaces, and the CRDs it must serve again
//! (with their status brought up to date).

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
    let mut names = Vec::new();
    for kv in page.items {
        match serde_json::from_slice::<Value>(&kv.value) {
            Ok(crd) => {
                crate::crd_status::serve(&reg, &crd);
                names.push(crate::api::meta::name(&crd).to_owned());
            }
            Err(e) => tracing::warn!(key = %kv.key, error = %e, "stored CRD is unreadable"),
        }
    }
    for name in names {
        if let Err(e) = crate::crd_status::reconcile(objects, &name).await {
            tracing::warn!(crd = %name, error = %e, "updating a CRD's status failed");
        }
    }
    Ok(())
}
