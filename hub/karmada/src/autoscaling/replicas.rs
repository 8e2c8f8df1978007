//! The replica count a FederatedHPA's metrics ask for, and the whole decision: the Kubernetes
//! HPA algorithm (`replica_calculator.go`, `horizontal.go`) over metrics the member agents
//! aggregate per workload and the hub sums over clusters.
//!
//! Per-pod samples never reach the hub. Every rule of the replica calculator is a sum over pod
//! classes, so the hub computes it exactly from per-class sums ([`ResourceAggregate`],
//! [`PodsAggregate`]), with one exception: on a scale-down with a utilization target above
//! 100 %, Kubernetes counts each pod without a metric at `request × target / 100` rounded down
//! per pod; from the summed requests of those pods the hub rounds once, which can count up to
//! `missing_count − 1` milli-units more in total.
//!
//! Where Karmada's FederatedHPA divides pod-derived counts by `Σ member spec.replicas ÷
//! template replicas` (so that a workload duplicated to N clusters does not scale N-fold),
//! [`HpaInput::member_spec_replicas`] does the same; leave it unset for the plain Kubernetes
//! arithmetic.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::behavior::{
    ConditionStatus, ConditionType, DEFAULT_DOWNSCALE_STABILIZATION_SECONDS, HpaBehavior,
    HpaCondition, HpaHistory, Normalized, PendingScaleEvent, Recommendation, ReplicaBounds,
    ResolvedBehavior, normalize_with_behavior, normalize_without_behavior,
};

/// The controller-wide tolerance (kube-controller-manager's `--horizontal-pod-autoscaler-tolerance`).
pub const DEFAULT_TOLERANCE: f64 = 0.1;

/// Adding two clusters' reports overflowed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the sum of the clusters' {field} overflows")]
pub struct AggregateOverflow {
    /// The field that overflowed.
    pub field: &'static str,
}

/// A per-cluster report the hub adds up over clusters.
pub trait Aggregate: Sized {
    /// `self + other`, field by field, failing on overflow.
    fn checked_add(&self, other: &Self) -> Result<Self, AggregateOverflow>;
}

/// The sum of every cluster's report (zero for none).
pub fn sum_clusters<'a, A>(reports: impl IntoIterator<Item = &'a A>) -> Result<A, AggregateOverflow>
where
    A: Aggregate + Default + 'a,
{
    reports
        .into_iter()
        .try_fold(A::default(), |sum, r| sum.checked_add(r))
}

impl Aggregate for i64 {
    fn checked_add(&self, other: &Self) -> Result<Self, AggregateOverflow> {
        i64::checked_add(*self, *other).ok_or(AggregateOverflow { field: "value" })
    }
}

/// Implements [`Aggregate`] as the checked sum of every listed field.
macro_rules! field_sums {
    ($ty:ident { $($field:ident: $name:literal),* $(,)? }) => {
        impl Aggregate for $ty {
            fn checked_add(&self, o: &Self) -> Result<Self, AggregateOverflow> {
                Ok($ty {
                    $($field: self.$field.checked_add(o.$field)
                        .ok_or(AggregateOverflow { field: $name })?,)*
                })
            }
        }
    };
}

/// One cluster's (or the sum of all clusters') view of a Resource or ContainerResource metric
/// over the pods of one workload. Values are milli-units (millicores, milli-bytes).
///
/// The agent sorts every pod the workload's selector matches into one class, in this order:
/// *ignored* (deleting or `Failed`), *unready* (`Pending`; for `cpu` also the HPA's CPU
/// initialization rules: not Ready, or no full metric window since turning Ready, within
/// `--horizontal-pod-autoscaler-cpu-initialization-period`), *missing* (no metric sample), else
/// *ready*. Requests are the pod's (or the named container's) requests for the resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAggregate {
    /// Summed usage of the ready pods.
    pub usage_sum: i64,
    /// Summed requests of the ready pods.
    pub request_sum: i64,
    /// Pods with a metric, counted ready.
    pub ready_count: u32,
    /// Pods counted unready.
    pub unready_count: u32,
    /// Summed requests of the unready pods.
    pub unready_request_sum: i64,
    /// Pods without a metric.
    pub missing_count: u32,
    /// Summed requests of the pods without a metric.
    pub missing_request_sum: i64,
    /// Deleting or failed pods.
    pub ignored_count: u32,
    /// Pods, of any class, with a container that has no request for the resource.
    pub pods_without_request: u32,
}

impl ResourceAggregate {
    fn total(&self) -> u64 {
        u64::from(self.ready_count)
            + u64::from(self.unready_count)
            + u64::from(self.missing_count)
            + u64::from(self.ignored_count)
    }
}

field_sums!(ResourceAggregate {
    usage_sum: "usageSum",
    request_sum: "requestSum",
    ready_count: "readyCount",
    unready_count: "unreadyCount",
    unready_request_sum: "unreadyRequestSum",
    missing_count: "missingCount",
    missing_request_sum: "missingRequestSum",
    ignored_count: "ignoredCount",
    pods_without_request: "podsWithoutRequest",
});

/// One cluster's (or all clusters') view of a Pods metric (a custom metric per pod), milli-units.
///
/// Classes as for [`ResourceAggregate`], except that readiness does not matter for Pods
/// metrics: only `Pending` pods are unready.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodsAggregate {
    /// Summed values of the ready pods.
    pub value_sum: i64,
    /// Pods with a value.
    pub ready_count: u32,
    /// `Pending` pods.
    pub unready_count: u32,
    /// Pods without a value.
    pub missing_count: u32,
    /// Deleting or failed pods.
    pub ignored_count: u32,
}

field_sums!(PodsAggregate {
    value_sum: "valueSum",
    ready_count: "readyCount",
    unready_count: "unreadyCount",
    missing_count: "missingCount",
    ignored_count: "ignoredCount",
});

/// The workload's pods and replicas in one cluster (or all clusters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadPods {
    /// The member workload's `status.replicas` (AverageValue targets of Object and External
    /// metrics divide by it).
    pub status_replicas: i32,
    /// Pods the selector matches, whatever their phase.
    pub pods: u32,
    /// Of those, `Running` and `Ready` (Value targets of Object and External metrics scale them).
    pub running_ready_pods: u32,
}

field_sums!(WorkloadPods {
    status_replicas: "statusReplicas",
    pods: "pods",
    running_ready_pods: "runningReadyPods",
});

/// A metric's target (`MetricTarget`), values in milli-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MetricTarget {
    /// `averageUtilization`: percent of the pods' requests.
    Utilization(i32),
    /// `averageValue`: per pod.
    AverageValue(i64),
    /// `value`: for the whole metric.
    Value(i64),
}

/// What the hub could gather for one metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Observation<T> {
    /// The clusters' reports, summed.
    Reported(T),
    /// Nothing usable; the message says why (e.g. "no metrics returned from resource metrics API").
    Unavailable(String),
}

/// One entry of `spec.metrics` with what was observed for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum MetricInput {
    /// A resource of the whole pod.
    Resource {
        /// `cpu`, `memory`, ...
        name: String,
        /// Utilization or AverageValue.
        target: MetricTarget,
        /// The summed aggregate.
        observation: Observation<ResourceAggregate>,
    },
    /// A resource of one container of each pod.
    ContainerResource {
        /// `cpu`, `memory`, ...
        name: String,
        /// The container.
        container: String,
        /// Utilization or AverageValue.
        target: MetricTarget,
        /// The summed aggregate.
        observation: Observation<ResourceAggregate>,
    },
    /// A custom metric per pod.
    Pods {
        /// The metric name.
        name: String,
        /// AverageValue.
        target: MetricTarget,
        /// The summed aggregate.
        observation: Observation<PodsAggregate>,
    },
    /// A custom metric of one object.
    Object {
        /// The metric name.
        name: String,
        /// The described object's kind.
        kind: String,
        /// Value or AverageValue.
        target: MetricTarget,
        /// The value (summed over clusters if each reports one), milli-units.
        observation: Observation<i64>,
    },
    /// An external metric.
    External {
        /// The metric name.
        name: String,
        /// Value or AverageValue.
        target: MetricTarget,
        /// The summed value, milli-units.
        observation: Observation<i64>,
    },
    /// A metric source type this algorithm does not know.
    Unknown {
        /// The type as written.
        source_type: String,
    },
}

/// The autoscaler's spec and the target's state, everything [`decide`] needs besides history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaInput {
    /// The template's `spec.replicas`.
    pub current_replicas: i32,
    /// `spec.minReplicas`; 1 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    /// `spec.maxReplicas`.
    pub max_replicas: i32,
    /// `spec.metrics` with their observations, in order.
    pub metrics: Vec<MetricInput>,
    /// `spec.behavior` as written; unset means the controller's legacy normalization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HpaBehavior>,
    /// The controller-wide tolerance.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// The controller-wide scale-down stabilization window.
    #[serde(default = "default_downscale_window")]
    pub downscale_stabilization_seconds: i32,
    /// The workload's pods, summed over clusters.
    #[serde(default)]
    pub workload: WorkloadPods,
    /// `Σ member spec.replicas`, for Karmada's calibration (see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_spec_replicas: Option<i32>,
}

fn default_tolerance() -> f64 {
    DEFAULT_TOLERANCE
}

fn default_downscale_window() -> i32 {
    DEFAULT_DOWNSCALE_STABILIZATION_SECONDS
}

/// The usage-ratio band within which nothing changes: `[1 − scale_down, 1 + scale_up]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tolerances {
    /// Below 1.
    pub scale_down: f64,
    /// Above 1.
    pub scale_up: f64,
}

impl Tolerances {
    /// The behavior's per-direction tolerances, else the controller-wide one.
    pub fn for_input(input: &HpaInput) -> Self {
        let rules = input.behavior.as_ref();
        Tolerances {
            scale_down: rules
                .and_then(|b| b.scale_down.as_ref())
                .and_then(|r| r.tolerance)
                .unwrap_or(input.tolerance),
            scale_up: rules
                .and_then(|b| b.scale_up.as_ref())
                .and_then(|r| r.tolerance)
                .unwrap_or(input.tolerance),
        }
    }

    /// Whether `ratio` is too close to 1 to act on.
    pub fn is_within(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }
}

/// The numbers every metric's proposal depends on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposalContext {
    /// The template's `spec.replicas`.
    pub current_replicas: i32,
    /// The workload's pods, summed over clusters.
    pub workload: WorkloadPods,
    /// Pods per template replica (1 unless calibrating).
    pub calibration: f64,
    /// The no-change band.
    pub tolerances: Tolerances,
}

impl ProposalContext {
    /// The context of `input`.
    pub fn for_input(input: &HpaInput) -> Self {
        let current = input.current_replicas;
        let calibration = match input.member_spec_replicas {
            Some(members) if members > 0 && current > 0 => f64::from(members) / f64::from(current),
            _ => 1.0,
        };
        ProposalContext {
            current_replicas: current,
            workload: input.workload,
            calibration,
            tolerances: Tolerances::for_input(input),
        }
    }

    /// `ceil(ratio × pods ÷ calibration)`, saturated to `i32`.
    fn replicas_for(&self, ratio: f64, pods: u64) -> i32 {
        ceil_to_i32(ratio * pods as f64 / self.calibration)
    }
}

fn ceil_to_i32(v: f64) -> i32 {
    // `as` saturates, where Go's conversion of an out-of-range float is undefined.
    v.ceil() as i32
}

fn saturate_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// A metric's current value, as `status.currentMetrics[].*.current` reports it (milli-units).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueStatus {
    /// Percent of requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<i32>,
    /// Per pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<i64>,
    /// Whole metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
}

/// What one metric asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricProposal {
    /// The replica count.
    pub replicas: i32,
    /// How Kubernetes names the metric in conditions, e.g. `cpu resource utilization
    /// (percentage of request)`.
    pub metric_name: String,
    /// The current value.
    pub status: MetricValueStatus,
}

/// Why one metric gave no proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricFailure {
    /// The `ScalingActive` reason, e.g. `FailedGetResourceMetric`.
    pub reason: String,
    /// The `ScalingActive` message.
    pub message: String,
    /// The error as the controller reports it.
    pub error: String,
}

impl MetricFailure {
    fn new(reason: &str, condition_error: &str, error: String) -> Self {
        MetricFailure {
            reason: reason.to_owned(),
            message: format!("the HPA was unable to compute the replica count: {condition_error}"),
            error,
        }
    }

    fn condition(&self) -> HpaCondition {
        HpaCondition::new(
            ConditionType::ScalingActive,
            ConditionStatus::False,
            &self.reason,
            self.message.clone(),
        )
    }
}

const NO_PODS: &str = "no pods returned by selector while calculating replica count";
const NO_READY: &str = "did not receive metrics for targeted pods (pods might be unready)";

fn check_target(target: i64, source: &str) -> Result<(), String> {
    if target > 0 {
        Ok(())
    } else {
        Err(format!(
            "invalid {source} metric source: the target must be greater than zero"
        ))
    }
}

/// Percent utilization, truncated as Kubernetes does and clamped to `i32`.
fn utilization_percent(usage: i128, requests: i128) -> Result<i32, String> {
    if requests == 0 {
        return Err("no metrics returned matched known pods".to_owned());
    }
    let pct = usage * 100 / requests;
    Ok(i32::try_from(pct).unwrap_or(if pct < 0 { i32::MIN } else { i32::MAX }))
}

/// `GetResourceReplicas`: the replica count and the (utilization, average value) it saw.
fn utilization_replicas(
    agg: &ResourceAggregate,
    resource: &str,
    target: i32,
    ctx: &ProposalContext,
) -> Result<(i32, i32, i64), String> {
    check_target(i64::from(target), "resource")?;
    if agg.total() == 0 {
        return Err(NO_PODS.to_owned());
    }
    if agg.ready_count == 0 {
        return Err(NO_READY.to_owned());
    }
    if agg.pods_without_request > 0 {
        return Err(format!(
            "missing request for {resource} in {} pod(s)",
            agg.pods_without_request
        ));
    }
    let usage = i128::from(agg.usage_sum);
    let requests = i128::from(agg.request_sum);
    let utilization = utilization_percent(usage, requests)?;
    let raw = saturate_i64(usage / i128::from(agg.ready_count));
    let ratio = f64::from(utilization) / f64::from(target);
    let current = ctx.current_replicas;

    let scale_up_with_unready = agg.unready_count > 0 && ratio > 1.0;
    if !scale_up_with_unready && agg.missing_count == 0 {
        if ctx.tolerances.is_within(ratio) {
            return Ok((current, utilization, raw));
        }
        return Ok((
            ctx.replicas_for(ratio, u64::from(agg.ready_count)),
            utilization,
            raw,
        ));
    }

    let mut usage_total = usage;
    let mut request_total = requests;
    let mut pods = u64::from(agg.ready_count);
    let missing_requests = i128::from(agg.missing_request_sum);
    if agg.missing_count > 0 {
        if ratio < 1.0 {
            // Scale-down: pods without a metric count at 100 % of their request, or at the
            // target when it is higher.
            usage_total += missing_requests * i128::from(target.max(100)) / 100;
            request_total += missing_requests;
            pods += u64::from(agg.missing_count);
        } else if ratio > 1.0 {
            // Scale-up: at 0.
            request_total += missing_requests;
            pods += u64::from(agg.missing_count);
        }
    }
    if scale_up_with_unready {
        request_total += i128::from(agg.unready_request_sum);
        pods += u64::from(agg.unready_count);
    }
    let new_ratio = f64::from(utilization_percent(usage_total, request_total)?) / f64::from(target);
    if ctx.tolerances.is_within(new_ratio)
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        // Too small a change, or the conservative counting turned the direction round.
        return Ok((current, utilization, raw));
    }
    let replicas = ctx.replicas_for(new_ratio, pods);
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok((current, utilization, raw));
    }
    Ok((replicas, utilization, raw))
}

/// The pod classes a per-pod value metric is computed over.
struct PlainPods {
    sum: i64,
    ready: u32,
    unready: u32,
    missing: u32,
    total: u64,
}

/// `calcPlainMetricReplicas`: the replica count and the average value it saw.
fn plain_replicas(
    pods: &PlainPods,
    target: i64,
    source: &str,
    ctx: &ProposalContext,
) -> Result<(i32, i64), String> {
    check_target(target, source)?;
    if pods.total == 0 {
        return Err(NO_PODS.to_owned());
    }
    if pods.ready == 0 {
        return Err(NO_READY.to_owned());
    }
    let usage = saturate_i64(i128::from(pods.sum) / i128::from(pods.ready));
    let ratio = usage as f64 / target as f64;
    let current = ctx.current_replicas;

    let scale_up_with_unready = pods.unready > 0 && ratio > 1.0;
    if !scale_up_with_unready && pods.missing == 0 {
        if ctx.tolerances.is_within(ratio) {
            return Ok((current, usage));
        }
        return Ok((ctx.replicas_for(ratio, u64::from(pods.ready)), usage));
    }

    let mut total = i128::from(pods.sum);
    let mut count = u64::from(pods.ready);
    if pods.missing > 0 {
        if ratio < 1.0 {
            // Scale-down: pods without a value count at the target.
            total += i128::from(pods.missing) * i128::from(target);
            count += u64::from(pods.missing);
        } else if ratio > 1.0 {
            count += u64::from(pods.missing);
        }
    }
    if scale_up_with_unready {
        count += u64::from(pods.unready);
    }
    let new_usage = saturate_i64(total / i128::from(count));
    let new_ratio = new_usage as f64 / target as f64;
    if ctx.tolerances.is_within(new_ratio)
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok((current, usage));
    }
    let replicas = ctx.replicas_for(new_ratio, count);
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok((current, usage));
    }
    Ok((replicas, usage))
}

/// `getUsageRatioReplicaCount`: a whole-metric ratio applied to the running, ready pods.
fn ratio_replicas(ratio: f64, ctx: &ProposalContext) -> Result<i32, String> {
    let current = ctx.current_replicas;
    if current == 0 {
        // Scaling from zero (minReplicas 0): no pods to count.
        return Ok(ceil_to_i32(ratio));
    }
    if ctx.tolerances.is_within(ratio) {
        return Ok(current);
    }
    if ctx.workload.pods == 0 {
        return Err(format!("unable to calculate ready pods: {NO_PODS}"));
    }
    Ok(ctx.replicas_for(ratio, u64::from(ctx.workload.running_ready_pods)))
}

/// `GetObjectPerPodMetricReplicas` / `GetExternalPerPodMetricReplicas`: a whole-metric value
/// divided over the workload's replicas. Returns the count and the per-replica value.
fn per_replica_replicas(usage: i64, target: i64, ctx: &ProposalContext) -> (i32, i64) {
    let status = ctx.workload.status_replicas;
    let ratio = usage as f64 / (target as f64 * f64::from(status));
    let pods = if ctx.tolerances.is_within(ratio) {
        f64::from(status)
    } else {
        (usage as f64 / target as f64).ceil()
    };
    let average = if status == 0 {
        usage
    } else {
        (usage as f64 / f64::from(status)).ceil() as i64
    };
    (ceil_to_i32(pods / ctx.calibration), average)
}

fn observed<'a, T>(observation: &'a Observation<T>, prefix: &str) -> Result<&'a T, String> {
    match observation {
        Observation::Reported(v) => Ok(v),
        Observation::Unavailable(why) => Err(format!("{prefix}: {why}")),
    }
}

/// Resource and ContainerResource metrics.
fn resource_proposal(
    name: &str,
    container: Option<&str>,
    target: MetricTarget,
    observation: &Observation<ResourceAggregate>,
    ctx: &ProposalContext,
) -> Result<MetricProposal, MetricFailure> {
    let fetched = || {
        observed(
            observation,
            &format!("unable to get metrics for resource {name}"),
        )
    };
    let kind = if container.is_some() {
        "container resource"
    } else {
        "resource"
    };
    let proposal = match target {
        MetricTarget::AverageValue(value) => fetched()
            .and_then(|agg| {
                let pods = PlainPods {
                    sum: agg.usage_sum,
                    ready: agg.ready_count,
                    unready: agg.unready_count,
                    missing: agg.missing_count,
                    total: agg.total(),
                };
                plain_replicas(&pods, value, "resource", ctx)
            })
            .map(|(replicas, usage)| MetricProposal {
                replicas,
                metric_name: format!("{name} resource"),
                status: MetricValueStatus {
                    average_value: Some(usage),
                    ..Default::default()
                },
            })
            .map_err(|e| format!("failed to get {name} usage: {e}")),
        MetricTarget::Utilization(pct) => fetched()
            .and_then(|agg| utilization_replicas(agg, name, pct, ctx))
            .map(|(replicas, utilization, raw)| MetricProposal {
                replicas,
                metric_name: format!("{name} {kind} utilization (percentage of request)"),
                status: MetricValueStatus {
                    average_utilization: Some(utilization),
                    average_value: Some(raw),
                    value: None,
                },
            })
            .map_err(|e| format!("failed to get {name} utilization: {e}")),
        MetricTarget::Value(_) => Err("invalid resource metric source: neither an average \
             utilization target nor an average value (usage) target was set"
            .to_owned()),
    };
    proposal.map_err(|e| match container {
        Some(c) => MetricFailure::new(
            "FailedGetContainerResourceMetric",
            &e,
            format!("failed to get {c} container metric value: {e}"),
        ),
        None => MetricFailure::new(
            "FailedGetResourceMetric",
            &e,
            format!("failed to get {name} resource metric value: {e}"),
        ),
    })
}

fn pods_proposal(
    name: &str,
    target: MetricTarget,
    observation: &Observation<PodsAggregate>,
    ctx: &ProposalContext,
) -> Result<MetricProposal, MetricFailure> {
    let proposal = match target {
        MetricTarget::AverageValue(value) => {
            observed(observation, &format!("unable to get metric {name}")).and_then(|agg| {
                let pods = PlainPods {
                    sum: agg.value_sum,
                    ready: agg.ready_count,
                    unready: agg.unready_count,
                    missing: agg.missing_count,
                    total: u64::from(agg.ready_count)
                        + u64::from(agg.unready_count)
                        + u64::from(agg.missing_count)
                        + u64::from(agg.ignored_count),
                };
                plain_replicas(&pods, value, "pods", ctx)
            })
        }
        _ => Err("invalid pods metric source: an average value target is required".to_owned()),
    };
    let (replicas, usage) = proposal.map_err(|e| {
        MetricFailure::new(
            "FailedGetPodsMetric",
            &e,
            format!("failed to get pods metric value: {e}"),
        )
    })?;
    Ok(MetricProposal {
        replicas,
        metric_name: format!("pods metric {name}"),
        status: MetricValueStatus {
            average_value: Some(usage),
            ..Default::default()
        },
    })
}

/// Object and External metrics: one value against a Value or AverageValue target.
fn value_proposal(
    external: bool,
    name: &str,
    metric_name: String,
    target: MetricTarget,
    observation: &Observation<i64>,
    ctx: &ProposalContext,
) -> Result<MetricProposal, MetricFailure> {
    let source = if external { "external" } else { "object" };
    let fetch = if external {
        "unable to get external metric"
    } else {
        "unable to get metric"
    };
    let fetched = |value| {
        check_target(value, source).and_then(|()| observed(observation, &format!("{fetch} {name}")))
    };
    // Each failure as the condition reports it and as the error wraps it.
    let proposal = match target {
        MetricTarget::Value(value) => fetched(value)
            .and_then(|&usage| {
                let status = MetricValueStatus {
                    value: Some(usage),
                    ..Default::default()
                };
                ratio_replicas(usage as f64 / value as f64, ctx).map(|r| (r, status))
            })
            .map_err(|e| match external {
                true => (
                    e.clone(),
                    format!("failed to get external metric {name}: {e}"),
                ),
                false => (e.clone(), e),
            }),
        MetricTarget::AverageValue(value) => fetched(value)
            .map(|&usage| {
                let (replicas, average) = per_replica_replicas(usage, value, ctx);
                (
                    replicas,
                    MetricValueStatus {
                        average_value: Some(average),
                        ..Default::default()
                    },
                )
            })
            .map_err(|e| {
                (
                    e.clone(),
                    format!("failed to get {name} {source} metric: {e}"),
                )
            }),
        MetricTarget::Utilization(_) => {
            let e = format!(
                "invalid {source} metric source: neither a value target nor an average value \
                 target was set"
            );
            Err((e.clone(), e))
        }
    };
    let (replicas, status) = proposal.map_err(|(e, inner)| match external {
        true => MetricFailure::new(
            "FailedGetExternalMetric",
            &e,
            format!("failed to get {name} external metric value: {inner}"),
        ),
        false => MetricFailure::new(
            "FailedGetObjectMetric",
            &e,
            format!("failed to get object metric value: {inner}"),
        ),
    })?;
    Ok(MetricProposal {
        replicas,
        metric_name,
        status,
    })
}

/// The replica count one metric asks for (`computeReplicasForMetric`).
pub fn propose(
    metric: &MetricInput,
    ctx: &ProposalContext,
) -> Result<MetricProposal, MetricFailure> {
    match metric {
        MetricInput::Resource {
            name,
            target,
            observation,
        } => resource_proposal(name, None, *target, observation, ctx),
        MetricInput::ContainerResource {
            name,
            container,
            target,
            observation,
        } => resource_proposal(name, Some(container), *target, observation, ctx),
        MetricInput::Pods {
            name,
            target,
            observation,
        } => pods_proposal(name, *target, observation, ctx),
        MetricInput::Object {
            name,
            kind,
            target,
            observation,
        } => value_proposal(
            false,
            name,
            format!("{kind} metric {name}"),
            *target,
            observation,
            ctx,
        ),
        MetricInput::External {
            name,
            target,
            observation,
        } => value_proposal(
            true,
            name,
            format!("external metric {name}"),
            *target,
            observation,
            ctx,
        ),
        MetricInput::Unknown { source_type } => {
            let e = format!("unknown metric source type \"{source_type}\"");
            Err(MetricFailure::new("InvalidMetricSourceType", &e, e.clone()))
        }
    }
}

/// Every metric's proposal and what they amount to (`computeReplicasForMetrics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsOutcome {
    /// One per metric, in order.
    pub proposals: Vec<Result<MetricProposal, MetricFailure>>,
    /// The highest proposal, unless scaling must wait: every metric failed, or some failed
    /// and the others would scale down.
    pub replicas: Option<i32>,
    /// The metric of the highest proposal.
    pub metric_name: String,
    /// `ValidMetricFound`, or the first failure's condition.
    pub scaling_active: HpaCondition,
    /// `invalid metrics (n invalid out of m), first error is: …` when any failed.
    pub error: Option<String>,
}

/// Proposes for every metric of `input` and takes the highest, as Kubernetes does.
pub fn propose_all(input: &HpaInput) -> MetricsOutcome {
    let ctx = ProposalContext::for_input(input);
    let proposals: Vec<_> = input.metrics.iter().map(|m| propose(m, &ctx)).collect();
    let mut replicas = 0;
    let mut metric_name = String::new();
    let mut failures = proposals.iter().filter_map(|p| p.as_ref().err());
    let first_failure = failures.next().cloned();
    let invalid = usize::from(first_failure.is_some()) + failures.count();
    for proposal in proposals.iter().flatten() {
        if replicas == 0 || proposal.replicas > replicas {
            replicas = proposal.replicas;
            metric_name.clone_from(&proposal.metric_name);
        }
    }
    let error = first_failure.as_ref().map(|f| {
        format!(
            "invalid metrics ({invalid} invalid out of {}), first error is: {}",
            proposals.len(),
            f.error
        )
    });
    if invalid >= proposals.len() || (invalid > 0 && replicas < input.current_replicas) {
        let scaling_active = match &first_failure {
            Some(f) => f.condition(),
            None => {
                MetricFailure::new("InvalidMetricSourceType", "no metrics", "no metrics".into())
                    .condition()
            }
        };
        return MetricsOutcome {
            proposals,
            replicas: None,
            metric_name,
            scaling_active,
            error,
        };
    }
    let scaling_active = HpaCondition::new(
        ConditionType::ScalingActive,
        ConditionStatus::True,
        "ValidMetricFound",
        format!("the HPA was able to successfully calculate a replica count from {metric_name}"),
    );
    MetricsOutcome {
        proposals,
        replicas: Some(replicas),
        metric_name,
        scaling_active,
        error,
    }
}

/// One autoscaling decision: what to write, what to report, what to remember.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The template's replicas after this decision (the current count when not rescaling).
    pub desired_replicas: i32,
    /// Whether to write `desired_replicas` to the template's scale.
    pub rescale: bool,
    /// The `SuccessfulRescale` event's reason, e.g. `cpu resource utilization (percentage of
    /// request) above target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescale_reason: Option<String>,
    /// `status.desiredReplicas`; unset when the metrics failed (keep the previous value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_desired_replicas: Option<i32>,
    /// `status.currentMetrics`, one per metric (unset for a failed one); empty when the metrics
    /// were not consulted.
    pub current_metrics: Vec<Option<MetricValueStatus>>,
    /// Every metric's proposal; empty when the metrics were not consulted.
    pub proposals: Vec<Result<MetricProposal, MetricFailure>>,
    /// `AbleToScale`, assuming the write succeeds (else see [`super::behavior::failed_update_scale`]).
    pub able_to_scale: HpaCondition,
    /// `ScalingActive`; unset means keep the previous condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_active: Option<HpaCondition>,
    /// `ScalingLimited`; unset means keep the previous condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_limited: Option<HpaCondition>,
    /// The metrics' error, if any failed (scaling may still have happened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_error: Option<String>,
    /// The history to keep if the scale is not written (or the write failed).
    pub history: HpaHistory,
    /// The scale event to add once the write succeeded (autoscalers with a behavior only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_scale_event: Option<PendingScaleEvent>,
}

impl Decision {
    /// The history to keep once the new scale is written.
    pub fn history_after_write(&self) -> HpaHistory {
        let mut history = self.history.clone();
        if let Some(event) = &self.pending_scale_event {
            event.store(&mut history);
        }
        history
    }
}

/// The Kubernetes HPA's reconcile, without I/O: from the spec, the observed metrics and the
/// history, the replica count to write and the status to report. `now` is Unix seconds.
pub fn decide(input: &HpaInput, history: &HpaHistory, now: i64) -> Decision {
    let mut history = history.clone();
    let current = input.current_replicas;
    if history.recommendations.is_empty() {
        history.recommendations.push(Recommendation {
            at: now,
            replicas: current,
        });
    }
    let min = input.min_replicas.unwrap_or(1);
    let max = input.max_replicas;
    let behavior = input
        .behavior
        .as_ref()
        .map(|b| ResolvedBehavior::resolve(b, input.downscale_stabilization_seconds));

    let mut decision = Decision {
        desired_replicas: current,
        rescale: false,
        rescale_reason: None,
        status_desired_replicas: Some(current),
        current_metrics: Vec::new(),
        proposals: Vec::new(),
        able_to_scale: HpaCondition::new(
            ConditionType::AbleToScale,
            ConditionStatus::True,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        ),
        scaling_active: None,
        scaling_limited: None,
        metrics_error: None,
        history,
        pending_scale_event: None,
    };

    let desired = if current == 0 && min != 0 {
        decision.scaling_active = Some(HpaCondition::new(
            ConditionType::ScalingActive,
            ConditionStatus::False,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        ));
        return decision;
    } else if current > max {
        decision.rescale_reason = Some("Current number of replicas above Spec.MaxReplicas".into());
        max
    } else if current < min {
        decision.rescale_reason = Some("Current number of replicas below Spec.MinReplicas".into());
        min
    } else {
        let outcome = propose_all(input);
        decision.current_metrics = outcome
            .proposals
            .iter()
            .map(|p| p.as_ref().ok().map(|p| p.status.clone()))
            .collect();
        decision.proposals = outcome.proposals;
        decision.scaling_active = Some(outcome.scaling_active);
        decision.metrics_error = outcome.error;
        let Some(metric_replicas) = outcome.replicas else {
            decision.status_desired_replicas = None;
            return decision;
        };
        let prenormalized = metric_replicas.max(0);
        let metric = if metric_replicas > 0 {
            outcome.metric_name.as_str()
        } else {
            ""
        };
        if prenormalized > current {
            decision.rescale_reason = Some(format!("{metric} above target"));
        } else if prenormalized < current {
            decision.rescale_reason = Some("All metrics below target".into());
        }
        let bounds = ReplicaBounds { current, min, max };
        let Normalized {
            desired_replicas,
            able_to_scale,
            scaling_limited,
        } = match &behavior {
            Some(b) => {
                normalize_with_behavior(&mut decision.history, b, now, bounds, prenormalized)
            }
            None => normalize_without_behavior(
                &mut decision.history.recommendations,
                now,
                input.downscale_stabilization_seconds,
                bounds,
                prenormalized,
            ),
        };
        decision.able_to_scale = able_to_scale;
        decision.scaling_limited = Some(scaling_limited);
        desired_replicas
    };

    if desired != current {
        decision.desired_replicas = desired;
        decision.status_desired_replicas = Some(desired);
        decision.rescale = true;
        decision.able_to_scale = HpaCondition::new(
            ConditionType::AbleToScale,
            ConditionStatus::True,
            "SucceededRescale",
            format!("the HPA controller was able to update the target scale to {desired}"),
        );
        decision.pending_scale_event = behavior
            .as_ref()
            .map(|b| PendingScaleEvent::new(b, now, current, desired));
    } else {
        decision.rescale_reason = None;
    }
    decision
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
