//! `autoscaling.karmada.io/v1alpha1` FederatedHPA and CronFederatedHPA, with the
//! autoscaling/v2 sub-types they embed (metrics, behavior, HPA status).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, LabelSelector, Quantity, is_zero_i32, null_default};
use super::policy::Metadata;

/// `autoscaling.karmada.io/v1alpha1` FederatedHPA (namespaced): the HPA algorithm over the
/// pods of every member cluster a template is propagated to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederatedHPA {
    /// `autoscaling.karmada.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `FederatedHPA`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// What to scale, between which bounds, on which metrics.
    #[serde(default)]
    pub spec: FederatedHPASpec,
    /// What the autoscaler last observed and decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HorizontalPodAutoscalerStatus>,
}

/// The desired behaviour of a FederatedHPA.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederatedHPASpec {
    /// The resource template to scale (through its `scale` subresource); it must be propagated.
    #[serde(default)]
    pub scale_target_ref: CrossVersionObjectReference,
    /// Lower limit of the replicas the autoscaler may set (default 1, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    /// Upper limit of the replicas the autoscaler may set; not below `minReplicas`.
    #[serde(default)]
    pub max_replicas: i32,
    /// The metrics the desired replicas are computed from (the highest recommendation wins);
    /// empty means an average CPU utilization of 80%.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub metrics: Vec<MetricSpec>,
    /// How fast to scale up and down; unset parts take the Kubernetes defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
}

/// autoscaling/v2 CrossVersionObjectReference: an object in the FederatedHPA's namespace.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct CrossVersionObjectReference {
    /// API version of the referent, e.g. `apps/v1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// Kind of the referent, e.g. `Deployment`.
    #[serde(default)]
    pub kind: String,
    /// Name of the referent.
    #[serde(default)]
    pub name: String,
}

/// autoscaling/v2 MetricSpec: one metric source, the one named by `type`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricSpec {
    /// `Resource`, `ContainerResource`, `Pods`, `Object` or `External`.
    #[serde(default, rename = "type")]
    #[schemars(extend("enum" = ["ContainerResource", "External", "Object", "Pods", "Resource"]))]
    pub type_: String,
    /// A metric describing one Kubernetes object (e.g. requests per second of an Ingress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectMetricSource>,
    /// A metric averaged over the target's pods (e.g. transactions per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodsMetricSource>,
    /// A resource (cpu, memory) of the target's pods, as requests and limits count it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceMetricSource>,
    /// A resource of one container of each of the target's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_resource: Option<ContainerResourceMetricSource>,
    /// A metric not tied to any Kubernetes object (e.g. a queue length in a cloud service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalMetricSource>,
}

/// autoscaling/v2 ObjectMetricSource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMetricSource {
    /// The object the metric describes.
    #[serde(default)]
    pub described_object: CrossVersionObjectReference,
    /// The target value (`Value` or `AverageValue`).
    #[serde(default)]
    pub target: MetricTarget,
    /// The metric.
    #[serde(default)]
    pub metric: MetricIdentifier,
}

/// autoscaling/v2 PodsMetricSource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodsMetricSource {
    /// The metric.
    #[serde(default)]
    pub metric: MetricIdentifier,
    /// The target value (`AverageValue` only).
    #[serde(default)]
    pub target: MetricTarget,
}

/// autoscaling/v2 ResourceMetricSource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetricSource {
    /// The resource, e.g. `cpu` or `memory`.
    #[serde(default)]
    pub name: String,
    /// The target value (`Utilization` or `AverageValue`).
    #[serde(default)]
    pub target: MetricTarget,
}

/// autoscaling/v2 ContainerResourceMetricSource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResourceMetricSource {
    /// The resource, e.g. `cpu` or `memory`.
    #[serde(default)]
    pub name: String,
    /// The target value (`Utilization` or `AverageValue`).
    #[serde(default)]
    pub target: MetricTarget,
    /// The container of each pod whose usage counts.
    #[serde(default)]
    pub container: String,
}

/// autoscaling/v2 ExternalMetricSource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricSource {
    /// The metric.
    #[serde(default)]
    pub metric: MetricIdentifier,
    /// The target value (`Value` or `AverageValue`).
    #[serde(default)]
    pub target: MetricTarget,
}

/// autoscaling/v2 MetricIdentifier: a metric name and an optional label selector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricIdentifier {
    /// The metric name.
    #[serde(default)]
    pub name: String,
    /// Narrows the metric down to the series with these labels; unset means the name alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// autoscaling/v2 MetricTarget: the value the autoscaler keeps a metric at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricTarget {
    /// `Utilization`, `Value` or `AverageValue`: which of the other fields is the target.
    #[serde(default, rename = "type")]
    #[schemars(extend("enum" = ["Utilization", "Value", "AverageValue"]))]
    pub type_: String,
    /// The target value of the metric as a whole (`Value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Quantity>,
    /// The target value of the metric averaged over the pods (`AverageValue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
    /// The target mean over the pods, in percent of the resource requested (`Utilization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<i32>,
}

/// autoscaling/v2 HorizontalPodAutoscalerBehavior.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscalerBehavior {
    /// Rules for scaling up; unset: no stabilization, at most +4 pods or +100% per 15s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<HPAScalingRules>,
    /// Rules for scaling down; unset: a 300s stabilization window, down to minReplicas at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<HPAScalingRules>,
}

/// autoscaling/v2 HPAScalingRules: the rules for one direction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HPAScalingRules {
    /// Seconds of past recommendations considered (0..3600): the highest one when scaling
    /// down, the lowest one when scaling up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<i32>,
    /// `Max` (default) takes the policy allowing the biggest change, `Min` the smallest,
    /// `Disabled` forbids scaling in this direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Max", "Min", "Disabled"]))]
    pub select_policy: Option<String>,
    /// The limits on the change over a period; unset takes the defaults of the direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<HPAScalingPolicy>>,
    /// Relative difference between the current and the target metric below which nothing
    /// changes (e.g. `0.05`); unset means the controller's (10%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Quantity>,
}

/// autoscaling/v2 HPAScalingPolicy: at most `value` pods or percent per `periodSeconds`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HPAScalingPolicy {
    /// `Pods` or `Percent`.
    #[serde(default, rename = "type")]
    #[schemars(extend("enum" = ["Pods", "Percent"]))]
    pub type_: String,
    /// The change allowed (pods, or percent of the current replicas); above 0.
    #[serde(default)]
    pub value: i32,
    /// The window the policy holds over, 1..1800 seconds.
    #[serde(default)]
    pub period_seconds: i32,
}

/// autoscaling/v2 HorizontalPodAutoscalerStatus.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscalerStatus {
    /// The generation of the FederatedHPA this status is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the replicas were last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<String>,
    /// The replicas of the target as last seen.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub current_replicas: i32,
    /// The replicas the autoscaler last computed.
    #[serde(default)]
    pub desired_replicas: i32,
    /// The last values read of each metric.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub current_metrics: Vec<MetricStatus>,
    /// `AbleToScale`, `ScalingActive` and `ScalingLimited`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<Condition>,
}

/// autoscaling/v2 MetricStatus: the last value of one metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    /// `Resource`, `ContainerResource`, `Pods`, `Object` or `External`.
    #[serde(default, rename = "type")]
    pub type_: String,
    /// An Object metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectMetricStatus>,
    /// A Pods metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodsMetricStatus>,
    /// A Resource metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceMetricStatus>,
    /// A ContainerResource metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_resource: Option<ContainerResourceMetricStatus>,
    /// An External metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalMetricStatus>,
}

/// autoscaling/v2 MetricValueStatus: a metric's value in the form of its target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueStatus {
    /// The value of the metric as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Quantity>,
    /// The value averaged over the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
    /// The mean over the pods, in percent of the resource requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<i32>,
}

/// autoscaling/v2 ObjectMetricStatus.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMetricStatus {
    /// The metric.
    #[serde(default)]
    pub metric: MetricIdentifier,
    /// Its value.
    #[serde(default)]
    pub current: MetricValueStatus,
    /// The object it describes.
    #[serde(default)]
    pub described_object: CrossVersionObjectReference,
}

/// autoscaling/v2 PodsMetricStatus.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodsMetricStatus {
    /// The metric.
    #[serde(default)]
    pub metric: MetricIdentifier,
    /// Its value.
    #[serde(default)]
    pub current: MetricValueStatus,
}

/// autoscaling/v2 ResourceMetricStatus.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetricStatus {
    /// The resource.
    #[serde(default)]
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub current: MetricValueStatus,
}

/// autoscaling/v2 ContainerResourceMetricStatus.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResourceMetricStatus {
    /// The resource.
    #[serde(default)]
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub current: MetricValueStatus,
    /// The container.
    #[serde(default)]
    pub container: String,
}

/// autoscaling/v2 ExternalMetricStatus.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricStatus {
    /// The metric.
    #[serde(default)]
    pub metric: MetricIdentifier,
    /// Its value.
    #[serde(default)]
    pub current: MetricValueStatus,
}

/// `autoscaling.karmada.io/v1alpha1` CronFederatedHPA (namespaced): replicas (or a
/// FederatedHPA's bounds) set on a schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CronFederatedHPA {
    /// `autoscaling.karmada.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `CronFederatedHPA`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// The target and its schedules.
    #[serde(default)]
    pub spec: CronFederatedHPASpec,
    /// What each rule did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CronFederatedHPAStatus>,
}

/// The target and schedules of a CronFederatedHPA.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CronFederatedHPASpec {
    /// A FederatedHPA (`autoscaling.karmada.io/v1alpha1`), whose bounds the rules set, or any
    /// object with a `scale` subresource, whose replicas the rules set.
    #[serde(default)]
    pub scale_target_ref: CrossVersionObjectReference,
    /// The schedules.
    #[serde(default, deserialize_with = "null_default")]
    pub rules: Vec<CronFederatedHPARule>,
}

/// One schedule of a CronFederatedHPA and what it sets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CronFederatedHPARule {
    /// Unique within the object, 1-32 characters; keys the execution history (a renamed rule
    /// is a new rule).
    #[serde(default)]
    pub name: String,
    /// When to run, in Kubernetes CronJob syntax (`minute hour day-of-month month
    /// day-of-week`, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`).
    #[serde(default)]
    pub schedule: String,
    /// The replicas to set on a target that is not a FederatedHPA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_replicas: Option<i32>,
    /// The `minReplicas` to set on a FederatedHPA target; unset leaves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_min_replicas: Option<i32>,
    /// The `maxReplicas` to set on a FederatedHPA target; unset leaves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_max_replicas: Option<i32>,
    /// Skip the executions while true (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// IANA time zone of the schedule, e.g. `Europe/Berlin`; unset means the hub's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// How many successful executions to keep in the status, 1..32 (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_history_limit: Option<i32>,
    /// How many failed executions to keep in the status, 0..32 (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_history_limit: Option<i32>,
}

/// What the rules of a CronFederatedHPA did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CronFederatedHPAStatus {
    /// One history per rule.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub execution_histories: Vec<ExecutionHistory>,
}

/// The executions of one rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionHistory {
    /// The rule.
    #[serde(default)]
    pub rule_name: String,
    /// When the rule runs next (RFC 3339); unset while it is suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_execution_time: Option<String>,
    /// The latest successful executions, newest first.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub successful_executions: Vec<SuccessfulExecution>,
    /// The latest failed executions, newest first.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub failed_executions: Vec<FailedExecution>,
}

/// A successful execution of a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuccessfulExecution {
    /// The scheduled time (RFC 3339).
    #[serde(default)]
    pub schedule_time: String,
    /// When it actually ran (RFC 3339).
    #[serde(default)]
    pub execution_time: String,
    /// The replicas set on the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_replicas: Option<i32>,
    /// The `maxReplicas` set on the FederatedHPA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_max_replicas: Option<i32>,
    /// The `minReplicas` set on the FederatedHPA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_min_replicas: Option<i32>,
}

/// A failed execution of a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedExecution {
    /// The scheduled time (RFC 3339).
    #[serde(default)]
    pub schedule_time: String,
    /// When it actually ran (RFC 3339).
    #[serde(default)]
    pub execution_time: String,
    /// Why it failed.
    #[serde(default)]
    pub message: String,
}
