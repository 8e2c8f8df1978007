//! A consistent-enough view of everything the controllers read in one pass.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use crate::api::error::ApiError;
use crate::api::objects::Objects;
use crate::registry::{Resource, Schema};

/// API groups whose objects are never propagated.
const NEVER_PROPAGATED_GROUPS: &[&str] = &[
    "cluster.karmada.io",
    "policy.karmada.io",
    "work.karmada.io",
    "config.karmada.io",
    "networking.karmada.io",
    "autoscaling.karmada.io",
    "events.k8s.io",
    "coordination.k8s.io",
];

/// Whether templates in this namespace are never propagated.
pub fn reserved_namespace(ns: &str) -> bool {
    matches!(ns, "karmada-system" | "karmada-cluster" | "flotilla-system")
        || ns.starts_with("karmada-es-")
        || ns.starts_with("kube-")
}

/// A resource template: an object users propagate.
#[derive(Debug, Clone)]
pub struct Template {
    /// Its resource.
    pub resource: Arc<Resource>,
    /// The object.
    pub object: Value,
}

impl Template {
    /// Namespace, if namespaced.
    pub fn namespace(&self) -> Option<&str> {
        self.object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }
    /// Name.
    pub fn name(&self) -> &str {
        crate::api::meta::name(&self.object)
    }
}

/// Everything one pass reads.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Cluster objects.
    pub clusters: Vec<Value>,
    /// PropagationPolicies.
    pub policies: Vec<Value>,
    /// ClusterPropagationPolicies.
    pub cluster_policies: Vec<Value>,
    /// OverridePolicies.
    pub overrides: Vec<Value>,
    /// ClusterOverridePolicies.
    pub cluster_overrides: Vec<Value>,
    /// ResourceBindings and ClusterResourceBindings by `namespace/name` (`/name` if cluster-scoped).
    pub bindings: BTreeMap<String, Value>,
    /// Works by `namespace/name`.
    pub works: BTreeMap<String, Value>,
    /// Resource templates by `group/kind/namespace/name`.
    pub templates: BTreeMap<String, Template>,
}

/// The key of a template in [`Snapshot::templates`].
pub fn template_key(group: &str, kind: &str, ns: Option<&str>, name: &str) -> String {
    format!("{group}/{kind}/{}/{name}", ns.unwrap_or(""))
}

async fn list(objects: &Objects, prefix: &str) -> Result<Vec<Value>, ApiError> {
    let page = objects.store().list(prefix, None, 0).await?;
    Ok(page
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect())
}

fn ns_name(v: &Value) -> String {
    format!(
        "{}/{}",
        v.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(""),
        crate::api::meta::name(v)
    )
}

impl Snapshot {
    /// Reads the store.
    pub async fn load(objects: &Objects) -> Result<Self, ApiError> {
        let mut s = Snapshot {
            clusters: list(objects, "/cluster.karmada.io/clusters/").await?,
            policies: list(objects, "/policy.karmada.io/propagationpolicies/").await?,
            cluster_policies: list(objects, "/policy.karmada.io/clusterpropagationpolicies/")
                .await?,
            overrides: list(objects, "/policy.karmada.io/overridepolicies/").await?,
            cluster_overrides: list(objects, "/policy.karmada.io/clusteroverridepolicies/").await?,
            ..Default::default()
        };
        for b in list(objects, "/work.karmada.io/resourcebindings/")
            .await?
            .into_iter()
            .chain(list(objects, "/work.karmada.io/clusterresourcebindings/").await?)
        {
            s.bindings.insert(ns_name(&b), b);
        }
        for w in list(objects, "/work.karmada.io/works/").await? {
            s.works.insert(ns_name(&w), w);
        }
        if s.policies.is_empty()
            && s.cluster_policies.is_empty()
            && s.bindings.is_empty()
            && s.works.is_empty()
            && s.clusters.is_empty()
        {
            // Nothing can propagate: skip reading every template.
            return Ok(s);
        }
        let mut seen_prefixes = BTreeSet::new();
        for res in objects.registry().all() {
            if matches!(res.schema, Schema::Karmada)
                || NEVER_PROPAGATED_GROUPS.contains(&res.group.as_str())
            {
                continue;
            }
            if !seen_prefixes.insert(res.key_prefix()) {
                continue;
            }
            for obj in list(objects, &res.key_prefix()).await? {
                let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
                if ns.is_some_and(reserved_namespace) {
                    continue;
                }
                let key = template_key(&res.group, &res.kind, ns, crate::api::meta::name(&obj));
                s.templates.insert(
                    key,
                    Template {
                        resource: res.clone(),
                        object: obj,
                    },
                );
            }
        }
        Ok(s)
    }

    /// The Ready clusters' names.
    pub fn cluster_names(&self) -> Vec<String> {
        self.clusters
            .iter()
            .map(|c| crate::api::meta::name(c).to_owned())
            .collect()
    }
}
