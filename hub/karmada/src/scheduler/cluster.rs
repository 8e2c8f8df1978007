//! What the scheduler knows about one member cluster, and the general capacity estimator.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::quantity::parse_milli;
use crate::types::{Cluster, Taint};

/// The `Ready` condition of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Readiness {
    /// `Ready=True`.
    Ready,
    /// `Ready=False`, or no Ready condition reported yet.
    #[default]
    NotReady,
    /// `Ready=Unknown` (the agent went silent).
    Unknown,
}

/// Free and total resources reported in `status.resourceSummary`, in milli-units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceSummaryInfo {
    /// `allocatable` per resource.
    pub allocatable: BTreeMap<String, i128>,
    /// `allocated` per resource.
    pub allocated: BTreeMap<String, i128>,
    /// `allocating` per resource.
    pub allocating: BTreeMap<String, i128>,
}

impl ResourceSummaryInfo {
    /// Free amount of a resource: allocatable minus allocated minus allocating (never negative,
    /// negative uses count as 0); `None` when the cluster does not report the resource as
    /// allocatable.
    pub fn free(&self, resource: &str) -> Option<i128> {
        let total = *self.allocatable.get(resource)?;
        // The figures are whatever the cluster reported: saturate, and never let a negative
        // use add capacity.
        let used = |m: &BTreeMap<String, i128>| m.get(resource).copied().unwrap_or(0).max(0);
        let used = used(&self.allocated).saturating_add(used(&self.allocating));
        Some(total.saturating_sub(used).max(0))
    }
}

/// Scheduler view of a Cluster object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterInfo {
    /// Cluster name.
    pub name: String,
    /// Cluster labels.
    pub labels: BTreeMap<String, String>,
    /// `spec.provider`.
    pub provider: String,
    /// `spec.region`.
    pub region: String,
    /// `spec.zones` (or the legacy `spec.zone`).
    pub zones: Vec<String>,
    /// `spec.taints`.
    pub taints: Vec<Taint>,
    /// The Ready condition.
    pub readiness: Readiness,
    /// The Cluster object is being deleted.
    pub deleting: bool,
    /// Served kinds as `"<groupVersion>/<Kind>"` (e.g. `apps/v1/Deployment`, `v1/ConfigMap`).
    pub api_enablements: HashSet<String>,
    /// Reported capacity; `None` if never reported.
    pub resource_summary: Option<ResourceSummaryInfo>,
}

/// Key of a served kind in [`ClusterInfo::api_enablements`].
pub fn api_key(api_version: &str, kind: &str) -> String {
    format!("{api_version}/{kind}")
}

fn quantities(m: &BTreeMap<String, crate::types::Quantity>) -> BTreeMap<String, i128> {
    m.iter()
        .filter_map(|(k, q)| parse_milli(&q.0).map(|v| (k.clone(), v)))
        .collect()
}

impl ClusterInfo {
    /// Builds the scheduler view of a typed Cluster.
    pub fn from_cluster(c: &Cluster) -> Self {
        let name = c
            .metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let labels = crate::types::metadata_map(&c.metadata, "labels");
        let deleting = c
            .metadata
            .get("deletionTimestamp")
            .is_some_and(|v| !v.is_null());
        let mut zones = c.spec.zones.clone();
        if zones.is_empty() && !c.spec.zone.is_empty() {
            zones.push(c.spec.zone.clone());
        }
        let status = c.status.clone().unwrap_or_default();
        let readiness = match status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.as_str())
        {
            Some("True") => Readiness::Ready,
            Some("Unknown") => Readiness::Unknown,
            _ => Readiness::NotReady,
        };
        let api_enablements = status
            .api_enablements
            .iter()
            .flat_map(|e| {
                e.resources
                    .iter()
                    .map(|r| api_key(&e.group_version, &r.kind))
            })
            .collect();
        let resource_summary = status
            .resource_summary
            .as_ref()
            .map(|s| ResourceSummaryInfo {
                allocatable: quantities(&s.allocatable),
                allocated: quantities(&s.allocated),
                allocating: quantities(&s.allocating),
            });
        ClusterInfo {
            name,
            labels,
            provider: c.spec.provider.clone(),
            region: c.spec.region.clone(),
            zones,
            taints: c.spec.taints.clone(),
            readiness,
            deleting,
            api_enablements,
            resource_summary,
        }
    }

    /// Builds the scheduler view from a Cluster JSON object (lenient: unknown fields ignored).
    pub fn from_cluster_json(v: &Value) -> Result<Self, serde_json::Error> {
        let c: Cluster = serde_json::from_value(v.clone())?;
        Ok(Self::from_cluster(&c))
    }

    /// The NoSchedule taint the cluster controller derives from readiness
    /// (`cluster.karmada.io/not-ready` / `unreachable`), unless `spec.taints` already has it.
    pub fn readiness_taint(&self) -> Option<Taint> {
        let key = match self.readiness {
            Readiness::Ready => return None,
            Readiness::NotReady => NOT_READY_TAINT,
            Readiness::Unknown => UNREACHABLE_TAINT,
        };
        if self
            .taints
            .iter()
            .any(|t| t.key == key && t.effect == "NoSchedule")
        {
            return None;
        }
        Some(Taint {
            key: key.to_string(),
            value: String::new(),
            effect: "NoSchedule".into(),
            time_added: None,
        })
    }

    /// `spec.taints` plus [`Self::readiness_taint`].
    pub fn effective_taints(&self) -> Vec<Taint> {
        let mut taints = self.taints.clone();
        taints.extend(self.readiness_taint());
        taints
    }

    /// General estimator: how many more replicas with the given per-replica requests
    /// (milli-units) fit into the free resources. 0 when no summary was reported.
    pub fn free_replicas(&self, requests: &BTreeMap<String, i128>) -> i64 {
        let Some(s) = &self.resource_summary else {
            return 0;
        };
        let Some(pods) = s.free("pods") else {
            return 0;
        };
        let mut max = pods / 1000;
        for (r, req) in requests {
            if *req <= 0 || r == "pods" {
                continue;
            }
            match s.free(r) {
                Some(free) => max = max.min(free / req),
                None => return 0,
            }
        }
        i64::try_from(max.max(0)).unwrap_or(i64::MAX)
    }
}

/// Taint key the cluster controller sets on clusters that are not ready.
pub const NOT_READY_TAINT: &str = "cluster.karmada.io/not-ready";
/// Taint key the cluster controller sets on clusters whose status is unknown.
pub const UNREACHABLE_TAINT: &str = "cluster.karmada.io/unreachable";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn cluster(status: Value) -> ClusterInfo {
        ClusterInfo::from_cluster_json(&json!({
            "apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "m1", "labels": {"env": "prod"}},
            "spec": {"syncMode": "Pull", "provider": "aws", "region": "us-east", "zone": "z1"},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn from_json() {
        let c = cluster(json!({
            "conditions": [{"type": "Ready", "status": "True"}],
            "apiEnablements": [{"groupVersion": "apps/v1", "resources": [{"name": "deployments", "kind": "Deployment"}]}],
        }));
        assert_eq!(c.name, "m1");
        assert_eq!(c.zones, vec!["z1"]);
        assert_eq!(c.readiness, Readiness::Ready);
        assert!(c.api_enablements.contains("apps/v1/Deployment"));
        assert!(c.effective_taints().is_empty());
        let c = cluster(json!({}));
        assert_eq!(c.readiness, Readiness::NotReady);
        assert_eq!(c.effective_taints()[0].key, NOT_READY_TAINT);
        let c = cluster(json!({"conditions": [{"type": "Ready", "status": "Unknown"}]}));
        assert_eq!(c.effective_taints()[0].key, UNREACHABLE_TAINT);
    }

    #[test]
    fn general_estimator() {
        let req = |cpu: i128, mem: i128| -> BTreeMap<String, i128> {
            let mut m = BTreeMap::new();
            if cpu > 0 {
                m.insert("cpu".to_string(), cpu);
            }
            if mem > 0 {
                m.insert("memory".to_string(), mem);
            }
            m
        };
        let c = cluster(json!({"resourceSummary": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocated": {"cpu": "1", "memory": "2Gi", "pods": "10"},
            "allocating": {"cpu": "500m", "pods": "2"},
        }}));
        let gi = (1i128 << 30) * 1000;
        let cases = [
            (req(0, 0), 98),       // pods only
            (req(100, 0), 25),     // 2.5 cpu free / 100m
            (req(1000, gi), 2),    // cpu-bound
            (req(100, 2 * gi), 3), // memory-bound: 6Gi / 2Gi
            (req(5000, 0), 0),     // larger than free
        ];
        for (r, want) in cases {
            assert_eq!(c.free_replicas(&r), want, "{r:?}");
        }
        let mut gpu = req(100, 0);
        gpu.insert("nvidia.com/gpu".into(), 1000);
        assert_eq!(c.free_replicas(&gpu), 0, "unreported resource");
        assert_eq!(
            cluster(json!({})).free_replicas(&req(100, 0)),
            0,
            "no summary"
        );
        let over = cluster(
            json!({"resourceSummary": {"allocatable": {"pods": "5"}, "allocated": {"pods": "9"}}}),
        );
        assert_eq!(over.free_replicas(&req(0, 0)), 0, "never negative");
    }
}
