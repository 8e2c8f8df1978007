//! Namespaces: every user namespace on the hub is created in every member cluster.
//!
//! Key: a Namespace's store key. (Each cluster's execution namespace on the hub is created
//! by the agent server when the Cluster appears.)

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::cache::State;
use super::keys::{NAMESPACE_LABEL, key_name, prefix, reserved_namespace};
use super::rendering::{execution_namespace, prepare_manifest, reconcile_works, work_name};
use super::write::Write;

const SKIP_LABEL: &str = "namespace.karmada.io/skip-auto-propagation";

/// Whether a hub namespace is propagated to members.
pub fn propagates(ns: &Value) -> bool {
    let name = crate::api::meta::name(ns);
    !(reserved_namespace(name)
        || name == "default"
        || ns.pointer("/metadata/deletionTimestamp").is_some())
        && ns
            .pointer("/metadata/labels")
            .and_then(|l| l.get(SKIP_LABEL))
            .and_then(Value::as_str)
            != Some("true")
}

/// The owner id of a namespace's Works in the cache.
pub fn owner(name: &str) -> String {
    format!("ns:{name}")
}

/// What the namespace controller writes for one namespace.
pub fn decide(state: &State, key: &str) -> Vec<Write> {
    let Some(works_res) = state.resource_of_key(prefix::WORKS).cloned() else {
        return vec![];
    };
    let name = key_name(key);
    let mut wanted = BTreeMap::new();
    if let Some(ns) = state.template(key)
        && propagates(&ns)
    {
        let mut manifest = prepare_manifest(&ns);
        if let Some(m) = manifest.as_object_mut() {
            m.remove("spec");
        }
        manifest["metadata"]["labels"]["karmada.io/managed"] = json!("true");
        let wname = work_name(&ns);
        for cluster in state.clusters().keys() {
            let w = json!({
                "apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
                "metadata": {"name": wname, "namespace": execution_namespace(cluster),
                    "labels": {NAMESPACE_LABEL: name}},
                "spec": {"workload": {"manifests": [manifest.clone()]}},
            });
            wanted.insert(format!("{}/{wname}", execution_namespace(cluster)), w);
        }
    }
    reconcile_works(state, &works_res, &owner(name), wanted)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::super::cache::tests::{put, state};
    use super::*;

    #[test]
    fn user_namespaces_go_to_every_cluster_and_leave_with_them() {
        let mut s = state();
        let key = "/core/namespaces/demo";
        put(
            &mut s,
            key,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
        );
        put(
            &mut s,
            "/cluster.karmada.io/clusters/m1",
            json!({"metadata": {"name": "m1"}}),
        );
        put(
            &mut s,
            "/cluster.karmada.io/clusters/m2",
            json!({"metadata": {"name": "m2"}}),
        );
        let w = decide(&s, key);
        assert_eq!(w.len(), 2, "{w:?}");
        for write in &w {
            let Write::Create { object, .. } = write else {
                panic!("{write:?}")
            };
            put(
                &mut s,
                &format!(
                    "{}{}/{}",
                    prefix::WORKS,
                    object["metadata"]["namespace"].as_str().unwrap(),
                    object["metadata"]["name"].as_str().unwrap()
                ),
                object.clone(),
            );
        }
        assert!(decide(&s, key).is_empty());
        s.delete("/cluster.karmada.io/clusters/m2");
        let w = decide(&s, key);
        assert!(
            matches!(&w[..], [Write::Delete { ns: Some(ns), .. }] if ns == "karmada-es-m2"),
            "{w:?}"
        );
        // Reserved and opted-out namespaces stay on the hub.
        assert!(!propagates(&json!({"metadata": {"name": "kube-system"}})));
        assert!(!propagates(
            &json!({"metadata": {"name": "x", "labels": {SKIP_LABEL: "true"}}})
        ));
    }
}
