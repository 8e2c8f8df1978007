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
//!
//! The per-cluster reports and their sums are in [`super::aggregates`], the per-metric
//! proposals in [`super::proposals`]; both are re-exported here.

use serde::{Deserialize, Serialize};

pub use super::aggregates::{
    Aggregate, AggregateOverflow, PodsAggregate, ResourceAggregate, WorkloadPods, sum_clusters,
};
use super::behavior::{
    ConditionStatus, ConditionType, DEFAULT_DOWNSCALE_STABILIZATION_SECONDS, HpaBehavior,
    HpaCondition, HpaHistory, Normalized, PendingScaleEvent, Recommendation, ReplicaBounds,
    ResolvedBehavior, normalize_with_behavior, normalize_without_behavior,
};
pub use super::proposals::{
    MetricFailure, MetricProposal, MetricValueStatus, MetricsOutcome, ProposalContext, propose,
    propose_all,
};

/// The controller-wide tolerance (kube-controller-manager's `--horizontal-pod-autoscaler-tolerance`).
pub const DEFAULT_TOLERANCE: f64 = 0.1;

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
