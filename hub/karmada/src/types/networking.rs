//! Service discovery kinds: `networking.karmada.io/v1alpha1` MultiClusterService and the MCS
//! API's (`multicluster.x-k8s.io/v1alpha1`, KEP-1645) ServiceExport and ServiceImport.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{Condition, null_default};
use super::policy::Metadata;

/// `networking.karmada.io/v1alpha1` MultiClusterService (namespaced, named like the Service it
/// exposes): the Service's endpoints in provider clusters are made reachable from consumer
/// clusters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiClusterService {
    /// `networking.karmada.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `MultiClusterService`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// How the Service is exposed, by which clusters, to which clusters.
    #[serde(default)]
    pub spec: MultiClusterServiceSpec,
    /// Conditions and the regions each consumer is served from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MultiClusterServiceStatus>,
}

/// The desired exposure of a MultiClusterService.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiClusterServiceSpec {
    /// Exposure types: exactly one of `CrossCluster` or `LoadBalancer`; immutable.
    #[serde(default, deserialize_with = "null_default")]
    pub types: Vec<String>,
    /// Ports to expose; empty exposes every port of the Service.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<ExposurePort>,
    /// Deprecated: the clusters the Service is exposed in; use `consumerClusters`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ExposureRange>,
    /// Deprecated: the clusters that run the backends; use `providerClusters`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_provision_clusters: Vec<String>,
    /// Deprecated: the clusters where clients call the Service; use `consumerClusters`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_consumption_clusters: Vec<String>,
    /// Clusters that run the backends; empty means every cluster.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub provider_clusters: Vec<ClusterSelector>,
    /// Clusters where clients call the Service; empty means every cluster.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub consumer_clusters: Vec<ClusterSelector>,
}

/// A port a MultiClusterService exposes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExposurePort {
    /// Name of the port (a DNS-1123 label, unique in the list).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Port number, 1-65535.
    #[serde(default)]
    pub port: i32,
}

/// Deprecated cluster range of a MultiClusterService.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExposureRange {
    /// Cluster names; empty means every cluster.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_names: Vec<String>,
}

/// One cluster, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSelector {
    /// Name of the member cluster.
    #[serde(default)]
    pub name: String,
}

/// Status of a MultiClusterService: `core/v1` ServiceStatus plus where each consumer's
/// backends are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiClusterServiceStatus {
    /// Load balancer ingress (type `LoadBalancer`, set by external controllers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<Value>,
    /// `ServiceApplied`, `EndpointSliceDispatched` and `Conflict`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<Condition>,
    /// For each consumer cluster, the regions and clusters whose endpoints it receives.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub consumers: Vec<ConsumerStatus>,
}

/// Where one consumer cluster's backends are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStatus {
    /// The consumer cluster.
    #[serde(default)]
    pub cluster: String,
    /// Regions of the provider clusters whose endpoints the consumer receives.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub served_from_regions: Vec<String>,
    /// Provider clusters whose endpoints the consumer receives.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub served_from_clusters: Vec<String>,
    /// Ready endpoints the consumer receives.
    #[serde(default)]
    pub ready_endpoints: i32,
}

/// `multicluster.x-k8s.io/v1alpha1` ServiceExport (namespaced, named like a Service): exports
/// the Service from the member clusters the ServiceExport is propagated to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceExport {
    /// `multicluster.x-k8s.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `ServiceExport`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// `Valid` and `Conflict` conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ServiceExportStatus>,
}

/// Status of a ServiceExport.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceExportStatus {
    /// `Valid` (the Service exists and can be exported) and `Conflict` (its clusters disagree
    /// on ports or type).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<Condition>,
}

/// `multicluster.x-k8s.io/v1alpha1` ServiceImport (namespaced): a Service consumed from the
/// clusters that export it; consumers reach it as `derived-<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImport {
    /// `multicluster.x-k8s.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `ServiceImport`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// Type and ports of the imported Service.
    #[serde(default)]
    pub spec: ServiceImportSpec,
    /// The clusters the Service is imported from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ServiceImportStatus>,
}

/// The imported Service's shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImportSpec {
    /// Ports of the imported Service.
    #[serde(default, deserialize_with = "null_default")]
    pub ports: Vec<ServicePort>,
    /// The cluster-set IP (at most one).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ips: Vec<String>,
    /// `ClusterSetIP` or `Headless`.
    #[serde(default, rename = "type")]
    pub type_: String,
    /// `None` or `ClientIP`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session_affinity: String,
    /// Session affinity settings (`core/v1` SessionAffinityConfig).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_config: Option<Value>,
}

/// A port of an imported Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Name of the port; required when there is more than one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// Application protocol of the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// Port number, 1-65535.
    #[serde(default)]
    pub port: i32,
}

/// Status of a ServiceImport.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImportStatus {
    /// The clusters whose endpoints back the import.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub clusters: Vec<SourceStatus>,
    /// `Conflict` when exporting clusters disagree on ports or type.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<Condition>,
}

/// One cluster backing a ServiceImport.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
    /// Name of the exporting cluster.
    #[serde(default)]
    pub cluster: String,
}
