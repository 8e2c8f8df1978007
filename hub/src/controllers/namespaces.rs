//! Namespaces: every cluster gets its execution namespace on the hub, and every user
//! namespace on the hub is created in every member cluster.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::rendering::{execution_namespace, prepare_manifest, work_name};
use super::snapshot::{Snapshot, reserved_namespace};
use crate::api::error::ApiError;
use crate::api::objects::Objects;

/// Label on Works that propagate a namespace.
pub const NAMESPACE_LABEL: &str = "work.flotilla.io/namespace";
const SKIP_LABEL: &str = "namespace.karmada.io/skip-auto-propagation";

/// Creates `karmada-es-<cluster>` for every cluster.
pub async fn ensure_execution_namespaces(
    objects: &Objects,
    snap: &Snapshot,
) -> Result<(), ApiError> {
    let Some(ns_res) = objects.registry().get("", "v1", "namespaces") else {
        return Ok(());
    };
    for name in snap.cluster_names() {
        let ns = execution_namespace(&name);
        if objects.store().get(&ns_res.key(None, &ns)).await?.is_some() {
            continue;
        }
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        match objects
            .create(&ns_res, None, obj, &super::write_opts())
            .await
        {
            Ok(_) => {}
            Err(e) if e.reason == "AlreadyExists" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether a hub namespace is propagated to members.
pub fn propagates(ns: &Value) -> bool {
    let name = crate::api::meta::name(ns);
    !(reserved_namespace(name)
        || name == "default"
        || ns.pointer("/metadata/deletionTimestamp").is_some())
        && ns
            .pointer(&format!(
                "/metadata/labels/{}",
                SKIP_LABEL.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            != Some("true")
}

/// Adds the Works that create user namespaces in every cluster.
pub fn wanted_namespace_works(snap: &Snapshot, wanted: &mut BTreeMap<String, Value>) {
    let namespaces = snap
        .templates
        .values()
        .filter(|t| t.resource.group.is_empty() && t.resource.kind == "Namespace");
    for ns in namespaces {
        if !propagates(&ns.object) {
            continue;
        }
        let mut manifest = prepare_manifest(&ns.object);
        if let Some(m) = manifest.as_object_mut() {
            m.remove("spec");
        }
        manifest["metadata"]["labels"]["karmada.io/managed"] = json!("true");
        let wname = work_name(&ns.object);
        for cluster in snap.cluster_names() {
            let w = json!({
                "apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
                "metadata": {"name": wname, "namespace": execution_namespace(&cluster),
                    "labels": {NAMESPACE_LABEL: ns.name()}},
                "spec": {"workload": {"manifests": [manifest.clone()]}},
            });
            wanted.insert(format!("{}/{wname}", execution_namespace(&cluster)), w);
        }
    }
}
