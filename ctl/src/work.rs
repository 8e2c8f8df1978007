//! `work put` and `work remove`: a manual way to change a cluster's Work set.
//!
//! Works are read-only for ordinary clients; members of `system:masters` (the admin kubeconfig)
//! may write them with a server-side apply. Removal empties the Work's manifest list, and the
//! hub then deletes the Work.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::hub::{Hub, work_path};

/// Field manager of `work put`/`work remove`.
pub const FIELD_MANAGER: &str = "flotilla-ctl";

/// Reads manifests from YAML (several documents, or `kind: List`) or JSON.
pub fn parse_manifests(text: &str) -> Result<Vec<Value>> {
    let docs: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(v) => vec![v],
        Err(_) => serde_saphyr::from_multiple::<Value>(text).context("parsing the manifests")?,
    };
    let mut out = Vec::new();
    for d in docs {
        if d.is_null() {
            continue;
        }
        if d.get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
        {
            out.extend(d["items"].as_array().cloned().unwrap_or_default());
        } else {
            out.push(d);
        }
    }
    for m in &out {
        if m.get("apiVersion").is_none()
            || m.get("kind").is_none()
            || m.pointer("/metadata/name").is_none()
        {
            bail!("every manifest needs apiVersion, kind and metadata.name");
        }
    }
    Ok(out)
}

/// The Work name of a manifest.
pub fn work_name(m: &Value) -> String {
    flotilla_proto::work_name_for(
        m.get("kind").and_then(Value::as_str).unwrap_or_default(),
        m.pointer("/metadata/namespace").and_then(Value::as_str),
        m.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )
}

fn work(cluster: &str, name: &str, manifests: Vec<Value>) -> Value {
    json!({
        "apiVersion": "work.karmada.io/v1alpha1",
        "kind": "Work",
        "metadata": {"name": name, "namespace": flotilla_proto::execution_namespace(cluster)},
        "spec": {"workload": {"manifests": manifests}},
    })
}

/// Puts each manifest into `cluster`'s Work set; returns the Work names.
pub async fn put(hub: &Hub, cluster: &str, manifests: Vec<Value>) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for m in manifests {
        let name = work_name(&m);
        hub.apply(
            &work_path(cluster, &name),
            &work(cluster, &name, vec![m]),
            FIELD_MANAGER,
        )
        .await?;
        names.push(name);
    }
    Ok(names)
}

/// Removes each manifest's Work from `cluster`'s Work set; returns the Work names.
pub async fn remove(hub: &Hub, cluster: &str, manifests: &[Value]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for m in manifests {
        let name = work_name(m);
        if hub.get(&work_path(cluster, &name)).await?.is_some() {
            hub.apply(
                &work_path(cluster, &name),
                &work(cluster, &name, vec![]),
                FIELD_MANAGER,
            )
            .await?;
        }
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests() -> Result<()> {
        let y = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";
        let ms = parse_manifests(y)?;
        assert_eq!(ms.len(), 2);
        assert_eq!(work_name(&ms[0]), "default-a-configmap");
        assert_eq!(work_name(&ms[1]), "web-deployment");
        let list = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}]}"#;
        assert_eq!(parse_manifests(list)?.len(), 1);
        assert!(parse_manifests("apiVersion: v1\nkind: ConfigMap\n").is_err());
        Ok(())
    }
}
