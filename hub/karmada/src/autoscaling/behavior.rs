//! How fast a (Federated)HPA may move: `spec.behavior` with the Kubernetes defaults, the
//! stabilization windows over past recommendations, the rate policies over past scale events,
//! and the `AbleToScale` / `ScalingLimited` conditions they set.
//!
//! This is the normalization step of the Kubernetes HPA controller (`horizontal.go`:
//! `normalizeDesiredReplicas` when `spec.behavior` is unset, `normalizeDesiredReplicasWithBehaviors`
//! when it is set), with the controller's in-memory history passed in and out as
//! [`HpaHistory`] and the clock as `now` (Unix seconds).

use serde::{Deserialize, Serialize};

/// The controller's default scale-down stabilization window (kube-controller-manager's
/// `--horizontal-pod-autoscaler-downscale-stabilization`, 5 minutes).
pub const DEFAULT_DOWNSCALE_STABILIZATION_SECONDS: i32 = 300;

/// How a scaling policy counts its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyType {
    /// An absolute number of pods per period.
    Pods,
    /// A percentage of the replicas at the start of the period.
    Percent,
}

/// One `HPAScalingPolicy`: at most `value` pods (or percent) per `period_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicy {
    /// `Pods` or `Percent`.
    #[serde(rename = "type")]
    pub type_: PolicyType,
    /// The step; must be positive.
    pub value: i32,
    /// The look-back period, 1 to 1800 seconds.
    pub period_seconds: i32,
}

/// Which policy wins when several apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    /// The policy allowing the largest change.
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// `HPAScalingRules` as written by the user: every field may be unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRules {
    /// Seconds of past recommendations considered (0 to 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<i32>,
    /// `Max` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,
    /// The policies; the direction's defaults when unset (an empty list stays empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<ScalingPolicy>>,
    /// Tolerance on the usage ratio in this direction (Kubernetes 1.33+); the controller-wide
    /// tolerance when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

/// `HorizontalPodAutoscalerBehavior`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaBehavior {
    /// Rules for scaling up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    /// Rules for scaling down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

/// The default scale-up rules: no stabilization, `Max` of 4 pods or 100 % per 15 s.
pub fn default_scale_up_rules() -> ScalingRules {
    ScalingRules {
        stabilization_window_seconds: Some(0),
        select_policy: Some(SelectPolicy::Max),
        policies: Some(vec![
            ScalingPolicy {
                type_: PolicyType::Pods,
                value: 4,
                period_seconds: 15,
            },
            ScalingPolicy {
                type_: PolicyType::Percent,
                value: 100,
                period_seconds: 15,
            },
        ]),
        tolerance: None,
    }
}

/// The default scale-down rules: the given stabilization window, `Max` of 100 % per 15 s.
pub fn default_scale_down_rules(stabilization_window_seconds: i32) -> ScalingRules {
    ScalingRules {
        stabilization_window_seconds: Some(stabilization_window_seconds),
        select_policy: Some(SelectPolicy::Max),
        policies: Some(vec![ScalingPolicy {
            type_: PolicyType::Percent,
            value: 100,
            period_seconds: 15,
        }]),
        tolerance: None,
    }
}

/// The behavior Kubernetes fills in for `behavior: {}` with the default 300 s scale-down window.
pub fn default_behavior() -> HpaBehavior {
    fill_behavior(
        &HpaBehavior::default(),
        DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
    )
}

fn fill_rules(partial: Option<&ScalingRules>, defaults: ScalingRules) -> ScalingRules {
    let Some(from) = partial else {
        return defaults;
    };
    ScalingRules {
        stabilization_window_seconds: from
            .stabilization_window_seconds
            .or(defaults.stabilization_window_seconds),
        select_policy: from.select_policy.or(defaults.select_policy),
        policies: from.policies.clone().or(defaults.policies),
        tolerance: from.tolerance.or(defaults.tolerance),
    }
}

/// A set behavior with its unset parts filled as Kubernetes does (API defaulting, then the
/// controller's scale-down window for an unset `scaleDown.stabilizationWindowSeconds`).
pub fn fill_behavior(partial: &HpaBehavior, downscale_stabilization_seconds: i32) -> HpaBehavior {
    HpaBehavior {
        scale_up: Some(fill_rules(
            partial.scale_up.as_ref(),
            default_scale_up_rules(),
        )),
        scale_down: Some(fill_rules(
            partial.scale_down.as_ref(),
            default_scale_down_rules(downscale_stabilization_seconds),
        )),
    }
}

/// Scaling rules with every field decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedRules {
    /// Seconds of past recommendations considered.
    pub stabilization_window_seconds: i32,
    /// Which policy wins.
    pub select_policy: SelectPolicy,
    /// The rate policies.
    pub policies: Vec<ScalingPolicy>,
    /// The direction's own tolerance, if set.
    pub tolerance: Option<f64>,
}

/// A behavior with every field decided, as the normalization uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedBehavior {
    /// Rules for scaling up.
    pub scale_up: ResolvedRules,
    /// Rules for scaling down.
    pub scale_down: ResolvedRules,
}

impl ResolvedBehavior {
    /// Fills `partial` (see [`fill_behavior`]) and fixes every field.
    pub fn resolve(partial: &HpaBehavior, downscale_stabilization_seconds: i32) -> Self {
        let resolve = |rules: Option<ScalingRules>, defaults: ScalingRules| {
            let rules = rules.unwrap_or_else(|| defaults.clone());
            ResolvedRules {
                stabilization_window_seconds: rules
                    .stabilization_window_seconds
                    .or(defaults.stabilization_window_seconds)
                    .unwrap_or(0),
                select_policy: rules.select_policy.unwrap_or(SelectPolicy::Max),
                policies: rules.policies.or(defaults.policies).unwrap_or_default(),
                tolerance: rules.tolerance,
            }
        };
        let filled = fill_behavior(partial, downscale_stabilization_seconds);
        ResolvedBehavior {
            scale_up: resolve(filled.scale_up, default_scale_up_rules()),
            scale_down: resolve(
                filled.scale_down,
                default_scale_down_rules(downscale_stabilization_seconds),
            ),
        }
    }

    /// The longest policy period of one direction (0 without policies).
    fn longest_period(rules: &ResolvedRules) -> i32 {
        rules
            .policies
            .iter()
            .map(|p| p.period_seconds)
            .max()
            .unwrap_or(0)
            .max(0)
    }
}

/// One unstabilized recommendation the controller made (`timestampedRecommendation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// Unix seconds.
    pub at: i64,
    /// The replica count the metrics asked for.
    pub replicas: i32,
}

/// One rescale the controller did (`timestampedScaleEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleEvent {
    /// Unix seconds.
    pub at: i64,
    /// Replicas added (in the scale-up list) or removed (in the scale-down list), positive.
    pub change: i32,
    /// Older than the longest policy period when last looked at: its slot may be reused.
    #[serde(default)]
    pub outdated: bool,
}

/// What the controller remembers of one autoscaler between decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaHistory {
    /// Past recommendations (slots older than every window are reused).
    #[serde(default)]
    pub recommendations: Vec<Recommendation>,
    /// Past scale-ups.
    #[serde(default)]
    pub scale_up_events: Vec<ScaleEvent>,
    /// Past scale-downs.
    #[serde(default)]
    pub scale_down_events: Vec<ScaleEvent>,
}

/// The three condition types an HPA reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionType {
    /// Whether the controller can read and write the target's scale, and whether it is backing off.
    AbleToScale,
    /// Whether the metrics gave a replica count.
    ScalingActive,
    /// Whether the count was clamped by min/max replicas or a rate.
    ScalingLimited,
}

/// A condition's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// `"True"`.
    True,
    /// `"False"`.
    False,
}

/// One HPA status condition, without its transition time (the caller keeps that).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HpaCondition {
    /// The condition type.
    #[serde(rename = "type")]
    pub type_: ConditionType,
    /// `True` or `False`.
    pub status: ConditionStatus,
    /// The Kubernetes reason, e.g. `ScaleDownStabilized`.
    pub reason: String,
    /// The Kubernetes message.
    pub message: String,
}

impl HpaCondition {
    /// A condition from its parts.
    pub fn new(
        type_: ConditionType,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        HpaCondition {
            type_,
            status,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// `AbleToScale` False `FailedUpdateScale`, for the caller whose write of the scale failed.
pub fn failed_update_scale(error: &str) -> HpaCondition {
    HpaCondition::new(
        ConditionType::AbleToScale,
        ConditionStatus::False,
        "FailedUpdateScale",
        format!("the HPA controller was unable to update the target scale: {error}"),
    )
}

/// The replica counts a normalization works between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaBounds {
    /// The target's current `spec.replicas`.
    pub current: i32,
    /// `spec.minReplicas` (defaulted).
    pub min: i32,
    /// `spec.maxReplicas`.
    pub max: i32,
}

/// A normalized recommendation and the two conditions normalization sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Normalized {
    /// The replica count to scale to.
    pub desired_replicas: i32,
    /// `ReadyForNewScale`, `ScaleDownStabilized` or `ScaleUpStabilized`.
    pub able_to_scale: HpaCondition,
    /// `DesiredWithinRange` (False) or the limit that applied (True).
    pub scaling_limited: HpaCondition,
}

fn clamp_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

fn f64_to_i32(v: f64) -> i32 {
    // `as` saturates (and maps NaN to 0), where Go's conversion is undefined.
    v as i32
}

const READY_FOR_NEW_SCALE: &str = "recommended size matches current size";
const SCALE_DOWN_STABILIZED: &str = "recent recommendations were higher than current one, applying the highest recent recommendation";
const SCALE_UP_STABILIZED: &str =
    "recent recommendations were lower than current one, applying the lowest recent recommendation";
const SCALE_UP_LIMIT: &str =
    "the desired replica count is increasing faster than the maximum scale rate";
const SCALE_DOWN_LIMIT: &str =
    "the desired replica count is decreasing faster than the maximum scale rate";
const TOO_MANY: &str = "the desired replica count is more than the maximum replica count";
const TOO_FEW: &str = "the desired replica count is less than the minimum replica count";
const WITHIN_RANGE: &str = "the desired count is within the acceptable range";

fn able(reason: &str, message: &str) -> HpaCondition {
    HpaCondition::new(
        ConditionType::AbleToScale,
        ConditionStatus::True,
        reason,
        message,
    )
}

fn limited(desired: i32, stabilized: i32, reason: &str, message: &str) -> HpaCondition {
    let status = if desired == stabilized {
        ConditionStatus::False
    } else {
        ConditionStatus::True
    };
    HpaCondition::new(ConditionType::ScalingLimited, status, reason, message)
}

/// Records `recommendation` in the slot of `old` or at the end.
fn record(recs: &mut Vec<Recommendation>, old: Option<usize>, recommendation: Recommendation) {
    match old.and_then(|i| recs.get_mut(i)) {
        Some(slot) => *slot = recommendation,
        None => recs.push(recommendation),
    }
}

/// `stabilizeRecommendation`: the highest recommendation of the last `window_seconds`
/// (this one included); records this one, reusing the last slot older than the window.
pub fn stabilize_without_behavior(
    recs: &mut Vec<Recommendation>,
    now: i64,
    window_seconds: i32,
    prenormalized: i32,
) -> i32 {
    let cutoff = now.saturating_sub(i64::from(window_seconds));
    let mut highest = prenormalized;
    let mut old = None;
    for (i, rec) in recs.iter().enumerate() {
        if rec.at < cutoff {
            old = Some(i);
        } else if rec.replicas > highest {
            highest = rec.replicas;
        }
    }
    record(
        recs,
        old,
        Recommendation {
            at: now,
            replicas: prenormalized,
        },
    );
    highest
}

/// `convertDesiredReplicasWithRules`: clamp to min/max and to `max(2 × current, 4)`.
fn convert_with_rules(bounds: ReplicaBounds, desired: i32) -> (i32, &'static str, &'static str) {
    let scale_up_limit = f64_to_i32((2.0 * f64::from(bounds.current)).max(4.0));
    let (maximum, reason, message) = if bounds.max > scale_up_limit {
        (scale_up_limit, "ScaleUpLimit", SCALE_UP_LIMIT)
    } else {
        (bounds.max, "TooManyReplicas", TOO_MANY)
    };
    if desired < bounds.min {
        (bounds.min, "TooFewReplicas", TOO_FEW)
    } else if desired > maximum {
        (maximum, reason, message)
    } else {
        (desired, "DesiredWithinRange", WITHIN_RANGE)
    }
}

/// `normalizeDesiredReplicas`, for an autoscaler without `spec.behavior`: scale-down
/// stabilization over the controller's window, then min/max and the `max(2 × current, 4)` cap.
pub fn normalize_without_behavior(
    recs: &mut Vec<Recommendation>,
    now: i64,
    downscale_window_seconds: i32,
    bounds: ReplicaBounds,
    prenormalized: i32,
) -> Normalized {
    let stabilized = stabilize_without_behavior(recs, now, downscale_window_seconds, prenormalized);
    let able_to_scale = if stabilized != prenormalized {
        able("ScaleDownStabilized", SCALE_DOWN_STABILIZED)
    } else {
        able("ReadyForNewScale", READY_FOR_NEW_SCALE)
    };
    let (desired, reason, message) = convert_with_rules(bounds, stabilized);
    Normalized {
        desired_replicas: desired,
        able_to_scale,
        scaling_limited: limited(desired, stabilized, reason, message),
    }
}

/// `stabilizeRecommendationWithBehaviors`: keeps the target between the lowest recommendation
/// of the scale-up window and the highest of the scale-down window; records this one.
/// Returns the stabilized count and the `AbleToScale` reason and message that describe it.
pub fn stabilize_with_behavior(
    recs: &mut Vec<Recommendation>,
    behavior: &ResolvedBehavior,
    now: i64,
    current: i32,
    prenormalized: i32,
) -> (i32, &'static str, &'static str) {
    let up_cutoff = now.saturating_sub(i64::from(behavior.scale_up.stabilization_window_seconds));
    let down_cutoff =
        now.saturating_sub(i64::from(behavior.scale_down.stabilization_window_seconds));
    let mut up = prenormalized;
    let mut down = prenormalized;
    let mut old = None;
    for (i, rec) in recs.iter().enumerate() {
        if rec.at > up_cutoff {
            up = up.min(rec.replicas);
        }
        if rec.at > down_cutoff {
            down = down.max(rec.replicas);
        }
        if rec.at < up_cutoff && rec.at < down_cutoff {
            old = Some(i);
        }
    }
    let recommendation = current.max(up).min(down);
    record(
        recs,
        old,
        Recommendation {
            at: now,
            replicas: prenormalized,
        },
    );
    if prenormalized >= current {
        (recommendation, "ScaleUpStabilized", SCALE_UP_STABILIZED)
    } else {
        (recommendation, "ScaleDownStabilized", SCALE_DOWN_STABILIZED)
    }
}

/// `getReplicasChangePerPeriod`: the replicas changed by the events of the last `period_seconds`.
pub fn replicas_change_in_period(events: &[ScaleEvent], now: i64, period_seconds: i32) -> i64 {
    let cutoff = now.saturating_sub(i64::from(period_seconds));
    events
        .iter()
        .filter(|e| e.at > cutoff)
        .map(|e| i64::from(e.change))
        .sum()
}

fn period_start(history: &HpaHistory, now: i64, current: i32, policy: &ScalingPolicy) -> i64 {
    let added = replicas_change_in_period(&history.scale_up_events, now, policy.period_seconds);
    let removed = replicas_change_in_period(&history.scale_down_events, now, policy.period_seconds);
    i64::from(current) - added + removed
}

/// `calculateScaleUpLimitWithScalingRules`: the most replicas the scale-up policies allow now.
pub fn scale_up_limit(history: &HpaHistory, rules: &ResolvedRules, now: i64, current: i32) -> i32 {
    let pick: fn(i64, i64) -> i64 = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => i64::min,
        SelectPolicy::Max => i64::max,
    };
    let mut result = if rules.select_policy == SelectPolicy::Min {
        i64::from(i32::MAX)
    } else {
        i64::from(i32::MIN)
    };
    for policy in &rules.policies {
        let start = period_start(history, now, current, policy);
        let proposed = match policy.type_ {
            PolicyType::Pods => start + i64::from(policy.value),
            // Rounded up, or a small percentage of few replicas would never add one.
            PolicyType::Percent => i64::from(f64_to_i32(
                (clamp_i32(start) as f64 * (1.0 + f64::from(policy.value) / 100.0)).ceil(),
            )),
        };
        result = pick(result, proposed);
    }
    clamp_i32(result)
}

/// `calculateScaleDownLimitWithBehaviors`: the fewest replicas the scale-down policies allow now.
pub fn scale_down_limit(
    history: &HpaHistory,
    rules: &ResolvedRules,
    now: i64,
    current: i32,
) -> i32 {
    let pick: fn(i64, i64) -> i64 = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        // The smallest change down is the highest floor.
        SelectPolicy::Min => i64::max,
        SelectPolicy::Max => i64::min,
    };
    let mut result = if rules.select_policy == SelectPolicy::Min {
        i64::from(i32::MIN)
    } else {
        i64::from(i32::MAX)
    };
    for policy in &rules.policies {
        let start = period_start(history, now, current, policy);
        let proposed = match policy.type_ {
            PolicyType::Pods => start - i64::from(policy.value),
            // Truncated toward zero, as Go's int32 conversion does.
            PolicyType::Percent => i64::from(f64_to_i32(
                clamp_i32(start) as f64 * (1.0 - f64::from(policy.value) / 100.0),
            )),
        };
        result = pick(result, proposed);
    }
    clamp_i32(result)
}

/// `convertDesiredReplicasWithBehaviorRate`: clamps a stabilized recommendation to min/max and
/// to what the policies allow given the past scale events.
pub fn convert_with_behavior_rate(
    history: &HpaHistory,
    behavior: &ResolvedBehavior,
    now: i64,
    bounds: ReplicaBounds,
    desired: i32,
) -> (i32, &'static str, &'static str) {
    if desired > bounds.current {
        // Past events may already exceed the policy: then no further scale-up for now.
        let limit =
            scale_up_limit(history, &behavior.scale_up, now, bounds.current).max(bounds.current);
        let (maximum, reason, message) = if bounds.max > limit {
            (limit, "ScaleUpLimit", SCALE_UP_LIMIT)
        } else {
            (bounds.max, "TooManyReplicas", TOO_MANY)
        };
        if desired > maximum {
            return (maximum, reason, message);
        }
    } else if desired < bounds.current {
        let limit = scale_down_limit(history, &behavior.scale_down, now, bounds.current)
            .min(bounds.current);
        let (minimum, reason, message) = if bounds.min < limit {
            (limit, "ScaleDownLimit", SCALE_DOWN_LIMIT)
        } else {
            (bounds.min, "TooFewReplicas", TOO_FEW)
        };
        if desired < minimum {
            return (minimum, reason, message);
        }
    }
    (desired, "DesiredWithinRange", WITHIN_RANGE)
}

/// `normalizeDesiredReplicasWithBehaviors`: stabilization windows, then rate policies and
/// min/max. Records the recommendation in `history`.
pub fn normalize_with_behavior(
    history: &mut HpaHistory,
    behavior: &ResolvedBehavior,
    now: i64,
    bounds: ReplicaBounds,
    prenormalized: i32,
) -> Normalized {
    let (stabilized, reason, message) = stabilize_with_behavior(
        &mut history.recommendations,
        behavior,
        now,
        bounds.current,
        prenormalized,
    );
    let able_to_scale = if stabilized != prenormalized {
        able(reason, message)
    } else {
        able("ReadyForNewScale", READY_FOR_NEW_SCALE)
    };
    let (desired, reason, message) =
        convert_with_behavior_rate(history, behavior, now, bounds, stabilized);
    Normalized {
        desired_replicas: desired,
        able_to_scale,
        scaling_limited: limited(desired, stabilized, reason, message),
    }
}

/// A scale event to remember once the new replica count is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingScaleEvent {
    /// Unix seconds of the decision.
    pub at: i64,
    /// Replicas before.
    pub from: i32,
    /// Replicas after.
    pub to: i32,
    /// The longest policy period of the direction taken: older events' slots are reused.
    pub longest_period_seconds: i32,
}

impl PendingScaleEvent {
    /// The event of a rescale `from` → `to` under `behavior`.
    pub fn new(behavior: &ResolvedBehavior, at: i64, from: i32, to: i32) -> Self {
        let rules = if to > from {
            &behavior.scale_up
        } else {
            &behavior.scale_down
        };
        PendingScaleEvent {
            at,
            from,
            to,
            longest_period_seconds: ResolvedBehavior::longest_period(rules),
        }
    }

    /// `storeScaleEvent`: marks events older than the longest period outdated and stores this
    /// one in the last outdated slot, or at the end.
    pub fn store(&self, history: &mut HpaHistory) {
        let up = self.to > self.from;
        let events = if up {
            &mut history.scale_up_events
        } else {
            &mut history.scale_down_events
        };
        let change = if up {
            i64::from(self.to) - i64::from(self.from)
        } else {
            i64::from(self.from) - i64::from(self.to)
        };
        let cutoff = self
            .at
            .saturating_sub(i64::from(self.longest_period_seconds));
        let mut old = None;
        for (i, event) in events.iter_mut().enumerate() {
            if event.at < cutoff {
                event.outdated = true;
            }
            if event.outdated {
                old = Some(i);
            }
        }
        let event = ScaleEvent {
            at: self.at,
            change: clamp_i32(change),
            outdated: false,
        };
        match old.and_then(|i| events.get_mut(i)) {
            Some(slot) => *slot = event,
            None => events.push(event),
        }
    }
}
