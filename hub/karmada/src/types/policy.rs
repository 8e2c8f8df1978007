//! `policy.karmada.io/v1alpha1` PropagationPolicy and ClusterPropagationPolicy.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    ClusterAffinity, FieldSelector, LabelSelector, ResourceSelector, Toleration, is_false,
    null_default,
};

/// The spec shared by PropagationPolicy and ClusterPropagationPolicy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PropagationSpec {
    /// Which resource templates this policy may claim (at least one).
    #[serde(default, deserialize_with = "null_default")]
    pub resource_selectors: Vec<ResourceSelector>,
    /// Deprecated; accepted and ignored.
    #[serde(default, skip_serializing_if = "is_false")]
    pub association: bool,
    /// Also propagate the objects the template references (ConfigMaps, Secrets, ...).
    #[serde(default, skip_serializing_if = "is_false")]
    pub propagate_deps: bool,
    /// Where to place the resources.
    #[serde(default)]
    pub placement: Placement,
    /// Explicit priority; the higher wins when several policies match a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// `Always` lets this policy take over templates claimed by lower-priority policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Always", "Never"]))]
    pub preemption: Option<String>,
    /// OverridePolicies that must exist before this policy is applied.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dependent_overrides: Vec<String>,
    /// The scheduler that handles the bindings (default `default-scheduler`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scheduler_name: String,
    /// Application and cluster failover behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverBehavior>,
    /// `Abort` (default) or `Overwrite` when the member already has an unmanaged object.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["Abort", "Overwrite"]))]
    pub conflict_resolution: String,
    /// `Lazy` defers policy edits until the template itself changes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["", "Lazy"]))]
    pub activation_preference: String,
    /// Stop dispatching to all or some clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<Suspension>,
    /// Leave member copies in place when the template is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_resources_on_deletion: Option<bool>,
    /// Scheduling-queue priority of the bindings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_priority: Option<SchedulePriority>,
}

/// Where a resource goes and how its replicas are split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// Hard filter on candidate clusters; cannot be combined with `clusterAffinities`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_affinity: Option<ClusterAffinity>,
    /// Ordered fallback cluster groups.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_affinities: Vec<ClusterAffinityTerm>,
    /// Tolerations of cluster taints.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_tolerations: Vec<Toleration>,
    /// How many clusters or topology groups to select.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub spread_constraints: Vec<SpreadConstraint>,
    /// How replicas are distributed; absent means Duplicated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_scheduling: Option<ReplicaSchedulingStrategy>,
    /// Co-location and anti-affinity of workloads (alpha; accepted, not acted upon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_affinity: Option<WorkloadAffinity>,
}

/// One named cluster group of `clusterAffinities`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAffinityTerm {
    /// Unique name of the group (1-32 characters).
    #[serde(default)]
    pub affinity_name: String,
    /// Cluster labels must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// Cluster provider/region/zones must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<FieldSelector>,
    /// If non-empty, the cluster name must be listed.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_names: Vec<String>,
    /// Clusters never selected.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exclude: Vec<String>,
    /// Supplementary groups that receive replicas the group cannot hold, in order.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub overflow_affinities: Vec<OverflowClusterAffinity>,
}

impl ClusterAffinityTerm {
    /// The term's own cluster affinity.
    pub fn affinity(&self) -> ClusterAffinity {
        ClusterAffinity {
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
            cluster_names: self.cluster_names.clone(),
            exclude: self.exclude.clone(),
        }
    }
}

/// A supplementary cluster group of a `clusterAffinities` term.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverflowClusterAffinity {
    /// Name of the overflow group.
    #[serde(default)]
    pub affinity_name: String,
    /// Cluster labels must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// Cluster provider/region/zones must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<FieldSelector>,
    /// If non-empty, the cluster name must be listed.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_names: Vec<String>,
    /// Clusters never selected.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exclude: Vec<String>,
}

impl OverflowClusterAffinity {
    /// The group's cluster affinity.
    pub fn affinity(&self) -> ClusterAffinity {
        ClusterAffinity {
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
            cluster_names: self.cluster_names.clone(),
            exclude: self.exclude.clone(),
        }
    }
}

/// How clusters are grouped and how many groups are selected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpreadConstraint {
    /// Group by this cluster field: `cluster`, `region`, `zone` or `provider`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["cluster", "region", "zone", "provider"]))]
    pub spread_by_field: String,
    /// Group by this cluster label key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub spread_by_label: String,
    /// Upper bound on selected groups; 0 or unset means no bound.
    #[serde(default, skip_serializing_if = "super::common::is_zero_i32")]
    pub max_groups: i32,
    /// Lower bound on selected groups (default 1).
    #[serde(default, skip_serializing_if = "super::common::is_zero_i32")]
    pub min_groups: i32,
}

/// How replicas are scheduled over the selected clusters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSchedulingStrategy {
    /// `Duplicated` or `Divided` (default `Divided`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["Duplicated", "Divided"]))]
    pub replica_scheduling_type: String,
    /// `Aggregated` or `Weighted` (default `Weighted` for Divided).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["Aggregated", "Weighted"]))]
    pub replica_division_preference: String,
    /// Static or dynamic weights for `Weighted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_preference: Option<ClusterPreferences>,
}

/// Static weight list or dynamic weight factor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPreferences {
    /// Per-cluster static weights; a cluster matched by several entries takes the maximum.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub static_weight_list: Vec<StaticClusterWeight>,
    /// `AvailableReplicas`: weights are the clusters' free capacity; overrides static weights.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["AvailableReplicas"]))]
    pub dynamic_weight: String,
}

/// A static weight for the clusters matched by an affinity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticClusterWeight {
    /// The clusters this weight applies to.
    #[serde(default)]
    pub target_cluster: ClusterAffinity,
    /// The weight (at least 1).
    #[serde(default)]
    pub weight: i64,
}

/// Workload affinity and anti-affinity groups (alpha).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadAffinity {
    /// Co-locate workloads sharing the label value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<WorkloadAffinityTerm>,
    /// Separate workloads sharing the label value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<WorkloadAffinityTerm>,
}

/// A workload grouping key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadAffinityTerm {
    /// Label key whose value groups workloads.
    #[serde(default)]
    pub group_by_label_key: String,
}

/// Application and cluster failover settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailoverBehavior {
    /// Evict a cluster when the application stays unhealthy there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<ApplicationFailoverBehavior>,
    /// What happens to copies on clusters evicted by NoExecute taints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterFailoverBehavior>,
}

/// Application failover settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationFailoverBehavior {
    /// When failover is triggered.
    #[serde(default)]
    pub decision_conditions: DecisionConditions,
    /// `Directly`, `Gracefully` (default) or `Never`; legacy `Immediately`/`Graciously` accepted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["Directly", "Gracefully", "Never", "Immediately", "Graciously"]))]
    pub purge_mode: String,
    /// How long the old copy is kept with `Gracefully` (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<i32>,
    /// State carried over to the new cluster (alpha).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_preservation: Option<StatePreservation>,
}

/// Conditions of application failover.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionConditions {
    /// Seconds the application must stay unhealthy (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i32>,
}

/// Cluster failover settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterFailoverBehavior {
    /// `Directly` or `Gracefully` (default); legacy names accepted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["Directly", "Gracefully", "Immediately", "Graciously"]))]
    pub purge_mode: String,
    /// State carried over to the new cluster (alpha).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_preservation: Option<StatePreservation>,
}

/// Rules that preserve state across failover.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatePreservation {
    /// The rules.
    #[serde(default, deserialize_with = "null_default")]
    pub rules: Vec<StatePreservationRule>,
}

/// One state preservation rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatePreservationRule {
    /// Label key that carries the preserved value.
    #[serde(default)]
    pub alias_label_name: String,
    /// JSONPath relative to `.status`.
    #[serde(default)]
    pub json_path: String,
}

/// Stop dispatching to all or some clusters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suspension {
    /// `true` stops dispatching to every cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatching: Option<bool>,
    /// Stop dispatching to these clusters only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatching_on_clusters: Option<SuspendClusters>,
}

/// Clusters whose dispatching is suspended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuspendClusters {
    /// Cluster names.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_names: Vec<String>,
}

/// Where the scheduling priority of a binding comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePriority {
    /// `KubePriorityClass`.
    #[serde(default)]
    #[schemars(extend("enum" = ["KubePriorityClass"]))]
    pub priority_class_source: String,
    /// Name of the PriorityClass.
    #[serde(default)]
    pub priority_class_name: String,
}

/// Object metadata as free-form JSON (validated separately).
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// `policy.karmada.io/v1alpha1` PropagationPolicy (namespaced).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PropagationPolicy {
    /// `policy.karmada.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `PropagationPolicy`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// The propagation rules.
    #[serde(default)]
    pub spec: PropagationSpec,
}

/// `policy.karmada.io/v1alpha1` ClusterPropagationPolicy (cluster-scoped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPropagationPolicy {
    /// `policy.karmada.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `ClusterPropagationPolicy`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// The propagation rules.
    #[serde(default)]
    pub spec: PropagationSpec,
}

/// Reads `metadata.<key>` as a string map (labels, annotations).
pub fn metadata_map(metadata: &Metadata, key: &str) -> BTreeMap<String, String> {
    metadata
        .get(key)
        .and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads `metadata.<key>` as a string.
pub fn metadata_str<'a>(metadata: &'a Metadata, key: &str) -> &'a str {
    metadata.get(key).and_then(|v| v.as_str()).unwrap_or("")
}
