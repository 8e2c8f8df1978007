//! `policy.karmada.io/v1alpha1` ClusterTaintPolicy: taints added to and removed from clusters
//! when their status conditions match.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{ClusterAffinity, null_default};
use super::policy::Metadata;

/// `policy.karmada.io/v1alpha1` ClusterTaintPolicy (cluster-scoped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTaintPolicy {
    /// `policy.karmada.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `ClusterTaintPolicy`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// Which clusters, on which conditions, which taints.
    #[serde(default)]
    pub spec: ClusterTaintPolicySpec,
}

/// The rules of a ClusterTaintPolicy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTaintPolicySpec {
    /// The clusters the policy applies to; unset means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_clusters: Option<ClusterAffinity>,
    /// The taints are added when all of these match (none: never added).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub add_on_conditions: Vec<MatchCondition>,
    /// The taints are removed when all of these match (none: never removed).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub remove_on_conditions: Vec<MatchCondition>,
    /// The taints the policy manages.
    #[serde(default, deserialize_with = "null_default")]
    pub taints: Vec<PolicyTaint>,
}

/// A test of one cluster status condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchCondition {
    /// The condition type, e.g. `Ready`.
    #[serde(default)]
    pub condition_type: String,
    /// `In` or `NotIn`.
    #[serde(default)]
    #[schemars(extend("enum" = ["In", "NotIn"]))]
    pub operator: String,
    /// Condition statuses (`True`, `False`, `Unknown`).
    #[serde(default, deserialize_with = "null_default")]
    pub status_values: Vec<String>,
}

/// A taint a ClusterTaintPolicy manages (no time: the controller stamps it when added).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTaint {
    /// Taint key.
    #[serde(default)]
    pub key: String,
    /// `NoSchedule` or `NoExecute`.
    #[serde(default)]
    #[schemars(extend("enum" = ["NoSchedule", "PreferNoSchedule", "NoExecute"]))]
    pub effect: String,
    /// Taint value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}
