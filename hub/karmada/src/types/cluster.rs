//! `cluster.karmada.io/v1alpha1` Cluster.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, Quantity, Taint, is_false, null_default};
use super::policy::Metadata;

/// `cluster.karmada.io/v1alpha1` Cluster: one member cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// `cluster.karmada.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `Cluster`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// Desired cluster settings.
    #[serde(default)]
    pub spec: ClusterSpec,
    /// Reported state of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ClusterStatus>,
}

/// Cluster spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Unique cluster id collected at registration.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `Push` or `Pull`.
    #[serde(default)]
    #[schemars(extend("enum" = ["Push", "Pull"]))]
    pub sync_mode: String,
    /// The member API server endpoint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_endpoint: String,
    /// Secret with the member credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalSecretReference>,
    /// Secret with the impersonation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonator_secret_ref: Option<LocalSecretReference>,
    /// Skip TLS verification of the member API server.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_skip_tls_verification: bool,
    /// Proxy used to reach the member.
    #[serde(default, rename = "proxyURL", skip_serializing_if = "String::is_empty")]
    pub proxy_url: String,
    /// Extra proxy headers.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub proxy_header: BTreeMap<String, String>,
    /// Cloud provider name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
    /// Region name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    /// Deprecated single zone; migrated into `zones`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub zone: String,
    /// Failure zones.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub zones: Vec<String>,
    /// Cluster taints.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub taints: Vec<Taint>,
    /// Node-size buckets for capacity estimation.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_models: Vec<ResourceModel>,
}

/// Reference to a Secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalSecretReference {
    /// Secret namespace.
    #[serde(default)]
    pub namespace: String,
    /// Secret name.
    #[serde(default)]
    pub name: String,
}

/// One grade of the resource model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceModel {
    /// Grade index.
    #[serde(default)]
    pub grade: u32,
    /// Resource ranges of the grade.
    #[serde(default, deserialize_with = "null_default")]
    pub ranges: Vec<ResourceModelRange>,
}

/// One resource range `[min, max)` of a grade.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceModelRange {
    /// `cpu`, `memory`, `storage` or `ephemeral-storage`.
    #[serde(default)]
    pub name: String,
    /// Lower bound (inclusive).
    #[serde(default)]
    pub min: Quantity,
    /// Upper bound (exclusive).
    #[serde(default)]
    pub max: Quantity,
}

/// Cluster status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Member Kubernetes version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubernetes_version: String,
    /// Served group-versions and resources of the member.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub api_enablements: Vec<ApiEnablement>,
    /// `Ready`, `CompleteAPIEnablements`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<Condition>,
    /// Node counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_summary: Option<NodeSummary>,
    /// Resource totals of the member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_summary: Option<ResourceSummary>,
    /// Actions requested by Remedy objects.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub remedy_actions: Vec<String>,
}

/// One served group-version of a member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiEnablement {
    /// e.g. `apps/v1`.
    #[serde(default)]
    pub group_version: String,
    /// Resources of the group-version.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resources: Vec<ApiResourceRef>,
}

/// A served resource (plural name and kind).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiResourceRef {
    /// Plural resource name.
    #[serde(default)]
    pub name: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
}

/// Node counts of a member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSummary {
    /// All nodes.
    #[serde(default)]
    pub total_num: i32,
    /// Ready nodes.
    #[serde(default)]
    pub ready_num: i32,
}

/// Resource totals of a member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSummary {
    /// Sum of node allocatable.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub allocatable: BTreeMap<String, Quantity>,
    /// Requests of pending pods (and their count as `pods`).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub allocating: BTreeMap<String, Quantity>,
    /// Requests of running pods (and their count as `pods`).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub allocated: BTreeMap<String, Quantity>,
    /// Node counts per resource-model grade.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allocatable_modelings: Vec<AllocatableModeling>,
}

/// Number of nodes in one resource-model grade.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocatableModeling {
    /// Grade index.
    #[serde(default)]
    pub grade: u32,
    /// Node count.
    #[serde(default)]
    pub count: i32,
}
