//! The replica count each metric asks for: `replica_calculator.go` over the summed
//! aggregates, one proposal per metric ([`propose`], `computeReplicasForMetric`), and the
//! highest of them ([`propose_all`], `computeReplicasForMetrics`).

use serde::{Deserialize, Serialize};

use super::aggregates::{PodsAggregate, ResourceAggregate, WorkloadPods};
use super::behavior::{ConditionStatus, ConditionType, HpaCondition};
use super::replicas::{HpaInput, MetricInput, MetricTarget, Observation, Tolerances};

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
