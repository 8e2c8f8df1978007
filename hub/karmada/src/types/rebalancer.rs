//! `apps.karmada.io/v1alpha1` WorkloadRebalancer: schedule chosen workloads again from scratch.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::null_default;
use super::policy::Metadata;

/// `apps.karmada.io/v1alpha1` WorkloadRebalancer (cluster-scoped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRebalancer {
    /// `apps.karmada.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `WorkloadRebalancer`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// The workloads to reschedule.
    #[serde(default)]
    pub spec: WorkloadRebalancerSpec,
    /// What became of each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<WorkloadRebalancerStatus>,
}

/// The workloads of a rebalance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRebalancerSpec {
    /// The workloads (resource templates) to schedule again.
    #[serde(default, deserialize_with = "null_default")]
    pub workloads: Vec<RebalancerWorkload>,
    /// Delete the rebalancer this long after every workload has a result; unset keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,
}

/// A resource template named by a rebalance.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct RebalancerWorkload {
    /// API version, e.g. `apps/v1`.
    #[serde(default)]
    pub api_version: String,
    /// Kind, e.g. `Deployment`.
    #[serde(default)]
    pub kind: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Namespace (empty for cluster-scoped kinds).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// What a rebalance did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRebalancerStatus {
    /// One result per workload.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub observed_workloads: Vec<ObservedWorkload>,
    /// The generation these results are for.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    /// When every workload had a result (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<String>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The result for one workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedWorkload {
    /// The workload.
    #[serde(default)]
    pub workload: RebalancerWorkload,
    /// `Successful` or `Failed`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["Successful", "Failed"]))]
    pub result: String,
    /// Why it failed, e.g. `ReferencedBindingNotFound`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}
