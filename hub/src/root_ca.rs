//! The `kube-root-ca.crt` ConfigMap in every namespace, holding the hub's CA certificate,
//! as kube-controller-manager's root-ca-cert-publisher keeps it: created with each
//! namespace (and at startup for existing ones), recreated when deleted, restored when
//! changed. It is never propagated to member clusters, which publish their own.

use flotilla_karmada::matching::ROOT_CA_CONFIGMAP;
use flotilla_store::{EventKind, StoreError};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::error::ApiError;
use crate::api::objects::{Objects, WriteOptions};
use crate::registry::builtin_resource;

/// The description kube-controller-manager gives the ConfigMap.
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

fn opts() -> WriteOptions {
    WriteOptions {
        field_manager: "kube-controller-manager".into(),
        privileged: true,
        ..WriteOptions::default()
    }
}

/// Makes sure namespace `ns` holds the ConfigMap with `ca_pem`, unless the namespace is
/// gone or being deleted.
pub async fn ensure(objects: &Objects, ns: &str, ca_pem: &str) -> Result<(), ApiError> {
    let (Some(namespaces), Some(configmaps)) = (
        builtin_resource("", "v1", "namespaces"),
        builtin_resource("", "v1", "configmaps"),
    ) else {
        return Err(ApiError::internal("namespaces or configmaps not served"));
    };
    for _ in 0..5 {
        match objects.get(&namespaces, None, ns).await {
            Ok(n) if n.pointer("/metadata/deletionTimestamp").is_none() => {}
            Ok(_) => return Ok(()),
            Err(e) if e.code == http::StatusCode::NOT_FOUND => return Ok(()),
            Err(e) => return Err(e),
        }
        let data = json!({"ca.crt": ca_pem});
        let result = match objects.get(&configmaps, Some(ns), ROOT_CA_CONFIGMAP).await {
            Ok(cm) if cm.get("data") == Some(&data) => return Ok(()),
            Ok(mut cm) => {
                cm["data"] = data;
                objects
                    .update(&configmaps, Some(ns), ROOT_CA_CONFIGMAP, cm, None, &opts())
                    .await
                    .map(drop)
            }
            Err(e) if e.code == http::StatusCode::NOT_FOUND => {
                let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": ns,
                        "annotations": {"kubernetes.io/description": DESCRIPTION}},
                    "data": data});
                objects
                    .create(&configmaps, Some(ns), cm, &opts())
                    .await
                    .map(drop)
            }
            Err(e) => return Err(e),
        };
        match result {
            Ok(()) => return Ok(()),
            // Written or removed meanwhile: look again.
            Err(e) if matches!(e.code.as_u16(), 404 | 409) => continue,
            // The namespace started terminating meanwhile.
            Err(e) if e.code == http::StatusCode::FORBIDDEN => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn ensure_logged(objects: &Objects, ns: &str, ca_pem: &str) {
    if let Err(e) = ensure(objects, ns, ca_pem).await {
        tracing::warn!(namespace = %ns, error = %e, "publishing the root CA ConfigMap failed");
    }
}

/// Publishes the ConfigMap in every namespace until `shutdown`.
pub async fn run(objects: Objects, ca_pem: String, shutdown: CancellationToken) {
    let Some(namespaces) = builtin_resource("", "v1", "namespaces") else {
        return;
    };
    let cm_prefix = "/core/configmaps/";
    loop {
        // A full pass, then the changes after it; again from the start if the watch ends.
        let revision = objects.store().current_revision();
        let page = objects
            .store()
            .list(&namespaces.list_prefix(None), None, 0)
            .await;
        match page {
            Ok(page) => {
                for kv in page.items {
                    let name = kv.key.rsplit('/').next().unwrap_or_default().to_owned();
                    ensure_logged(&objects, &name, &ca_pem).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing namespaces failed"),
        }
        let ns_events = objects
            .store()
            .watch(&namespaces.list_prefix(None), revision)
            .await;
        let cm_events = objects.store().watch(cm_prefix, revision).await;
        let (Ok(ns_events), Ok(cm_events)) = (ns_events, cm_events) else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
            }
        };
        let mut events = futures::stream::select(ns_events, cm_events);
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = events.next() => ev,
            };
            let ev = match ev {
                None | Some(Err(StoreError::Gone { .. })) => break,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "watching namespaces and ConfigMaps failed");
                    break;
                }
                Some(Ok(ev)) => ev,
            };
            let key = ev.kv.key.as_str();
            let ns = if let Some(name) = key.strip_prefix(namespaces.key_prefix().as_str()) {
                (ev.kind == EventKind::Created).then_some(name)
            } else {
                // `/core/configmaps/<ns>/<name>`: only the published one matters.
                key.strip_prefix(cm_prefix)
                    .and_then(|rest| rest.split_once('/'))
                    .filter(|(_, name)| *name == ROOT_CA_CONFIGMAP)
                    .map(|(ns, _)| ns)
                    .filter(|_| {
                        ev.kind == EventKind::Deleted
                            || serde_json::from_slice::<Value>(&ev.kv.value)
                                .ok()
                                .and_then(|v| v.get("data").cloned())
                                != Some(json!({"ca.crt": ca_pem}))
                    })
            };
            if let Some(ns) = ns {
                let ns = ns.to_owned();
                ensure_logged(&objects, &ns, &ca_pem).await;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
    }
}
