//! Cluster failover decisions, as pure functions of plain data: the taints a cluster carries
//! (from its `Ready` condition and from ClusterTaintPolicies), when a binding leaves a cluster
//! with an untolerated `NoExecute` taint, and when the eviction task that keeps the old copy
//! is done.
//!
//! The rule throughout: a failure moves work to where it can run, and the old copy is removed
//! only once the new placement is scheduled and healthy, or its grace period is over. While no
//! new placement could be scheduled, the old copy stays however long that takes.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::scheduler::{ClusterInfo, NOT_READY_TAINT, UNREACHABLE_TAINT};
use crate::selectors::{affinity_matches, tolerates};
use crate::types::{
    ClusterTaintPolicy, Condition, GracefulEvictionTask, MatchCondition, ResourceBindingSpec,
    ResourceBindingStatus, StatePreservation, Taint, Toleration,
};

pub mod gate;
pub mod state;

pub use gate::{EvictionGate, EvictionLimiter, mass_failure};

/// `producer` of the eviction tasks the taint manager creates.
pub const TAINT_MANAGER: &str = "TaintManager";
/// `reason` of an eviction for an untolerated `NoExecute` taint.
pub const TAINT_UNTOLERATED: &str = "TaintUntolerated";
/// `producer` of the eviction tasks application failover creates (Karmada's, for
/// ResourceBindings).
pub const APPLICATION_FAILOVER: &str = "resource-binding-application-failover-controller";
/// `reason` of an eviction for a workload unhealthy longer than its policy tolerates.
pub const APPLICATION_FAILURE: &str = "ApplicationFailure";
/// Application failover's default `decisionConditions.tolerationSeconds`.
pub const DEFAULT_APPLICATION_TOLERATION_SECONDS: i64 = 300;
/// How long a graceful eviction keeps the old copy when neither the task nor the hub says.
pub const DEFAULT_GRACE_PERIOD_SECONDS: i64 = 600;

/// The hub's failover settings.
#[derive(Debug, Clone)]
pub struct FailoverConfig {
    /// Whether `NoExecute` taints evict bindings (Karmada's
    /// `--enable-no-execute-taint-eviction`); off by default.
    pub no_execute_eviction: bool,
    /// Purge mode of a taint eviction when the policy names none.
    pub purge_mode: PurgeMode,
    /// Grace period of a graceful eviction when the task names none.
    pub grace_period_seconds: i64,
    /// No taint eviction before this time: a hub that just started has not heard from the
    /// agents yet, so their silence says nothing about the clusters.
    pub evictions_from: Option<Timestamp>,
    /// The rate of taint evictions, shared by every copy of this config.
    pub eviction_limiter: std::sync::Arc<EvictionLimiter>,
    /// Taint evictions stop while at least this share of the clusters (in percent) is not
    /// ready (see [`mass_failure`]).
    pub eviction_halt_percent: u32,
}

/// Karmada's `--resource-eviction-rate` default: bindings evicted per second.
pub const DEFAULT_EVICTION_RATE: f64 = 0.5;
/// The share of not-ready clusters (percent) at which taint evictions stop by default.
pub const DEFAULT_EVICTION_HALT_PERCENT: u32 = 55;

impl Default for FailoverConfig {
    fn default() -> Self {
        Self {
            no_execute_eviction: false,
            purge_mode: PurgeMode::Gracefully,
            grace_period_seconds: DEFAULT_GRACE_PERIOD_SECONDS,
            evictions_from: None,
            eviction_limiter: std::sync::Arc::new(EvictionLimiter::new(DEFAULT_EVICTION_RATE)),
            eviction_halt_percent: DEFAULT_EVICTION_HALT_PERCENT,
        }
    }
}

/// What happens to the copy in the cluster a binding leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeMode {
    /// Removed at once.
    Directly,
    /// Kept until the new placement is healthy or the grace period is over.
    Gracefully,
    /// Kept until someone clears the task's `suppressDeletion`.
    Never,
}

impl PurgeMode {
    /// Reads a purge mode, legacy names included (`Immediately`, `Graciously`); `None` for
    /// anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Directly" | "Immediately" => Some(Self::Directly),
            "Gracefully" | "Graciously" => Some(Self::Gracefully),
            "Never" => Some(Self::Never),
            _ => None,
        }
    }

    /// The name written into eviction tasks.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Directly => "Directly",
            Self::Gracefully => "Gracefully",
            Self::Never => "Never",
        }
    }
}

fn condition_status<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

/// Whether every match condition holds (an empty list never matches), as Karmada decides it.
pub fn conditions_match(conditions: &[Condition], rules: &[MatchCondition]) -> bool {
    if rules.is_empty() {
        return false;
    }
    rules.iter().all(|rule| {
        let Some(status) = condition_status(conditions, &rule.condition_type) else {
            return false;
        };
        let listed = rule.status_values.iter().any(|v| v == status);
        match rule.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            _ => false,
        }
    })
}

fn same_taint(a: &Taint, key: &str, effect: &str) -> bool {
    a.key == key && a.effect == effect
}

fn add_taint(taints: &mut Vec<Taint>, key: &str, value: &str, effect: &str, now: &str) {
    if !taints.iter().any(|t| same_taint(t, key, effect)) {
        taints.push(Taint {
            key: key.to_owned(),
            value: value.to_owned(),
            effect: effect.to_owned(),
            time_added: Some(now.to_owned()),
        });
    }
}

fn remove_taint(taints: &mut Vec<Taint>, key: &str, effect: &str) {
    taints.retain(|t| !same_taint(t, key, effect));
}

/// The taints a cluster should carry.
///
/// First the readiness taints Karmada's cluster controller keeps (`not-ready` while `Ready` is
/// False, `unreachable` while it is Unknown, both `NoSchedule`), then each ClusterTaintPolicy
/// that targets the cluster, oldest first: its taints are added when its `addOnConditions`
/// match and removed when its `removeOnConditions` match. Added taints are stamped with `now`,
/// as is any `NoExecute` taint that has no time yet (tolerations count from it). `policies`
/// must be in creation order.
pub fn cluster_taints(
    cluster: &ClusterInfo,
    conditions: &[Condition],
    policies: &[&ClusterTaintPolicy],
    now: &str,
) -> Vec<Taint> {
    let mut taints = cluster.taints.clone();
    match condition_status(conditions, "Ready") {
        Some("False") => {
            add_taint(&mut taints, NOT_READY_TAINT, "", "NoSchedule", now);
            remove_taint(&mut taints, UNREACHABLE_TAINT, "NoSchedule");
        }
        Some("Unknown") => {
            add_taint(&mut taints, UNREACHABLE_TAINT, "", "NoSchedule", now);
            remove_taint(&mut taints, NOT_READY_TAINT, "NoSchedule");
        }
        Some("True") => {
            remove_taint(&mut taints, NOT_READY_TAINT, "NoSchedule");
            remove_taint(&mut taints, UNREACHABLE_TAINT, "NoSchedule");
        }
        _ => {}
    }
    for p in policies {
        let spec = &p.spec;
        if spec
            .target_clusters
            .as_ref()
            .is_some_and(|a| !affinity_matches(Some(a), cluster))
        {
            continue;
        }
        if conditions_match(conditions, &spec.add_on_conditions) {
            for t in &spec.taints {
                add_taint(&mut taints, &t.key, &t.value, &t.effect, now);
            }
        }
        if conditions_match(conditions, &spec.remove_on_conditions) {
            for t in &spec.taints {
                remove_taint(&mut taints, &t.key, &t.effect);
            }
        }
    }
    for t in &mut taints {
        if t.effect == "NoExecute" && t.time_added.is_none() {
            t.time_added = Some(now.to_owned());
        }
    }
    taints
}

/// Type of the Cluster status condition that records the cluster's taints.
pub const TAINTED_CONDITION: &str = "Tainted";

/// The `Tainted` condition for a cluster's taints: `(status, reason, message)`. The reason is
/// the strongest effect (`NoExecute`: workloads may be evicted; `NoSchedule`: no new
/// placements; `PreferNoSchedule`), the message lists the taints and when each was added.
pub fn taint_condition(taints: &[Taint]) -> (&'static str, &'static str, String) {
    if taints.is_empty() {
        return ("False", "Untainted", "the cluster carries no taints".into());
    }
    let reason = ["NoExecute", "NoSchedule", "PreferNoSchedule"]
        .into_iter()
        .find(|e| taints.iter().any(|t| t.effect == *e))
        .unwrap_or("Tainted");
    let list: Vec<String> = taints
        .iter()
        .map(|t| match &t.time_added {
            Some(at) => format!("{} (since {at})", describe(t)),
            None => describe(t),
        })
        .collect();
    ("True", reason, list.join(", "))
}

/// What a cluster's `NoExecute` taints mean for a binding placed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoExecute {
    /// None, or all tolerated forever.
    Stay,
    /// Leave now; the message says which taint.
    Evict(String),
    /// Tolerated until then.
    Until(Timestamp),
}

/// A taint as `key[=value]:effect`.
pub fn describe(t: &Taint) -> String {
    if t.value.is_empty() {
        format!("{}:{}", t.key, t.effect)
    } else {
        format!("{}={}:{}", t.key, t.value, t.effect)
    }
}

/// Decides from a cluster's taints and a placement's tolerations (Karmada's taint manager):
/// an untolerated `NoExecute` taint evicts at once; tolerated ones evict when the shortest
/// `tolerationSeconds` of the tolerations that match runs out, counted from the taint's
/// `timeAdded`; a matching toleration without `tolerationSeconds` tolerates that taint
/// forever. A taint without a readable `timeAdded` counts from `now`.
pub fn no_execute(taints: &[Taint], tolerations: &[Toleration], now: Timestamp) -> NoExecute {
    let mut until: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return NoExecute::Evict(format!(
                "the cluster has the taint {} that the placement does not tolerate",
                describe(taint)
            ));
        }
        if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        }
        let seconds = matching
            .iter()
            .filter_map(|t| t.toleration_seconds)
            .min()
            .unwrap_or(0)
            .max(0);
        let added = taint
            .time_added
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .unwrap_or(now);
        let at = added
            .checked_add(SignedDuration::from_secs(seconds))
            .unwrap_or(Timestamp::MAX);
        if at <= now {
            return NoExecute::Evict(format!(
                "the cluster has had the taint {} for longer than the placement tolerates ({seconds}s)",
                describe(taint)
            ));
        }
        until = Some(until.map_or(at, |u| u.min(at)));
    }
    until.map_or(NoExecute::Stay, NoExecute::Until)
}

/// Where an eviction task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// The old copy may go; the message says why.
    Done(String),
    /// Keep it; look again at this time (never, if `None`) or when the binding changes.
    Waiting(Option<Timestamp>, String),
}

/// Whether every target of the binding is applied and reports Healthy, for the generation
/// the scheduler last placed.
pub fn placement_healthy(
    spec: &ResourceBindingSpec,
    status: Option<&ResourceBindingStatus>,
    generation: i64,
) -> bool {
    let Some(status) = status else {
        return false;
    };
    let scheduled = status.scheduler_observed_generation >= generation
        && condition_status(&status.conditions, "Scheduled") == Some("True");
    if !scheduled || spec.clusters.is_empty() {
        return false;
    }
    spec.clusters
        .iter()
        .all(|c| cluster_healthy(status, &c.name, c.replicas))
}

/// Whether the binding's report for `cluster` is applied, Healthy, and for `replicas`.
pub fn cluster_healthy(status: &ResourceBindingStatus, cluster: &str, replicas: i32) -> bool {
    status.aggregated_status.iter().any(|a| {
        a.cluster_name == cluster
            && a.applied
            && a.health == "Healthy"
            && reports_replicas(a.status.as_ref(), replicas)
    })
}

/// Whether a cluster's reported status is for its current share of the replicas: a report
/// from before the cluster's Work was updated is healthy for the old count. Statuses without
/// `replicas` (non-workloads, kinds without the field) are taken as they are.
fn reports_replicas(status: Option<&serde_json::Value>, replicas: i32) -> bool {
    if replicas <= 0 {
        return true;
    }
    match status.and_then(|s| s.get("replicas")) {
        Some(r) => r.as_i64() == Some(i64::from(replicas)),
        None => true,
    }
}

/// Decides one eviction task of a binding (Karmada's graceful eviction controller, with
/// Flotilla's rule that no grace period runs out while the binding has no new placement).
pub fn assess_task(
    task: &GracefulEvictionTask,
    spec: &ResourceBindingSpec,
    status: Option<&ResourceBindingStatus>,
    generation: i64,
    config: &FailoverConfig,
    now: Timestamp,
) -> TaskState {
    if spec.clusters.iter().any(|c| c.name == task.from_cluster) {
        return TaskState::Done("the cluster is a target again".into());
    }
    let mode = PurgeMode::parse(&task.purge_mode).unwrap_or(PurgeMode::Gracefully);
    match mode {
        PurgeMode::Directly => return TaskState::Done("purge mode Directly".into()),
        PurgeMode::Never => {
            return if task.suppress_deletion == Some(false) {
                TaskState::Done("suppressDeletion was cleared".into())
            } else {
                TaskState::Waiting(
                    None,
                    "purge mode Never: waits for suppressDeletion: false".into(),
                )
            };
        }
        PurgeMode::Gracefully => {}
    }
    if task.suppress_deletion == Some(true) {
        return TaskState::Waiting(None, "suppressDeletion is set".into());
    }
    if placement_healthy(spec, status, generation) {
        return TaskState::Done("the new placement is healthy".into());
    }
    let scheduled = status.is_some_and(|s| {
        s.scheduler_observed_generation >= generation
            && condition_status(&s.conditions, "Scheduled") == Some("True")
    }) && !spec.clusters.is_empty();
    if !scheduled {
        return TaskState::Waiting(
            None,
            "no new placement is scheduled yet; the old copy stays".into(),
        );
    }
    let grace = task
        .grace_period_seconds
        .map(i64::from)
        .unwrap_or(config.grace_period_seconds)
        .max(0);
    let created = task
        .creation_timestamp
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok());
    let Some(created) = created else {
        return TaskState::Waiting(None, "waiting for the new placement to be healthy".into());
    };
    let deadline = created
        .checked_add(SignedDuration::from_secs(grace))
        .unwrap_or(Timestamp::MAX);
    if deadline <= now {
        return TaskState::Done(format!(
            "the grace period of {grace}s ended before the new placement was healthy"
        ));
    }
    TaskState::Waiting(
        Some(deadline),
        format!("waiting for the new placement to be healthy, at most until {deadline}"),
    )
}

/// One change the failover made to a binding, for Events and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The binding left this cluster.
    Evicted {
        /// The cluster.
        cluster: String,
        /// Why.
        message: String,
    },
    /// The eviction task of this cluster is done: the old copy goes.
    Completed {
        /// The cluster.
        cluster: String,
        /// Why.
        message: String,
    },
    /// The cluster recovered before the binding could be placed anywhere else: it is a
    /// target again, with its old replicas, and its copy was never touched.
    Restored {
        /// The cluster.
        cluster: String,
    },
    /// The binding should leave this cluster but does not yet.
    Postponed {
        /// The cluster.
        cluster: String,
        /// Why not yet.
        message: String,
    },
}

/// How often an eviction that waits for the workload's state or for the fleet to recover is
/// looked at again.
pub const POSTPONED_RECHECK_SECONDS: i64 = 15;

/// Whether the binding has no placement to move to: nothing scheduled, or the last
/// scheduling found no cluster.
fn unplaced(spec: &ResourceBindingSpec, status: Option<&ResourceBindingStatus>) -> bool {
    spec.clusters.is_empty()
        || status.is_some_and(|s| condition_status(&s.conditions, "Scheduled") == Some("False"))
}

/// The failover's decision for one binding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// The new spec, when it changed.
    pub spec: Option<ResourceBindingSpec>,
    /// What changed.
    pub changes: Vec<Change>,
    /// The earliest time something may change without an event (a toleration or a grace
    /// period running out).
    pub recheck_at: Option<Timestamp>,
    /// How many of the evictions were for taints (the ones the eviction rate limits).
    pub taint_evictions: usize,
}

/// What the failover of one binding sees beyond the binding.
#[derive(Debug, Clone, Copy)]
pub struct Surroundings<'a> {
    /// The current view of each cluster by name (the targets and the clusters of the
    /// eviction tasks).
    pub clusters: &'a BTreeMap<&'a str, &'a ClusterInfo>,
    /// Since when the workload has been unhealthy in each cluster (application failover).
    pub unhealthy_since: &'a BTreeMap<&'a str, Timestamp>,
    /// Whether taint evictions may happen now.
    pub taint_evictions: &'a EvictionGate,
}

/// Takes `target` out of the binding's clusters and records the eviction: `task` carries the
/// mode, reason and producer; the rest (cluster, replicas, the clusters before, the state
/// the rules preserve, the time) is filled in here. A cluster already being evicted keeps
/// its task. Returns whether it evicted: when the rules cannot read the workload's state
/// there yet, the eviction waits.
#[allow(clippy::too_many_arguments)]
fn evict(
    spec: &ResourceBindingSpec,
    status: Option<&ResourceBindingStatus>,
    preservation: Option<&StatePreservation>,
    next: &mut ResourceBindingSpec,
    out: &mut Decision,
    target: &crate::types::TargetCluster,
    task: GracefulEvictionTask,
    message: String,
    now: Timestamp,
) -> bool {
    let reported = status.and_then(|s| {
        s.aggregated_status
            .iter()
            .find(|a| a.cluster_name == target.name)
            .and_then(|a| a.status.as_ref())
    });
    let preserved = match preservation.map(|p| state::preserve(p, reported)) {
        None => BTreeMap::new(),
        Some(Ok(labels)) => labels,
        Some(Err(e)) => {
            out.changes.push(Change::Postponed {
                cluster: target.name.clone(),
                message: format!(
                    "{message}; the eviction waits to preserve the workload's state: {e}"
                ),
            });
            let at = now
                .checked_add(SignedDuration::from_secs(POSTPONED_RECHECK_SECONDS))
                .unwrap_or(Timestamp::MAX);
            out.recheck_at = Some(out.recheck_at.map_or(at, |a| a.min(at)));
            return false;
        }
    };
    next.clusters.retain(|c| c.name != target.name);
    if !next
        .graceful_eviction_tasks
        .iter()
        .any(|t| t.from_cluster == target.name)
    {
        next.graceful_eviction_tasks.push(GracefulEvictionTask {
            from_cluster: target.name.clone(),
            replicas: (spec.replicas > 0).then_some(target.replicas),
            message: message.clone(),
            clusters_before_failover: spec.clusters.iter().map(|c| c.name.clone()).collect(),
            preserved_label_state: preserved,
            creation_timestamp: Some(now.to_string()),
            ..task
        });
    }
    out.changes.push(Change::Evicted {
        cluster: target.name.clone(),
        message,
    });
    true
}

/// Runs the taint manager and the eviction tasks over one binding.
///
/// A cluster evicted by its taints comes back as a target when it recovers while the binding
/// has nowhere else to go.
pub fn decide(
    spec: &ResourceBindingSpec,
    status: Option<&ResourceBindingStatus>,
    generation: i64,
    around: Surroundings<'_>,
    config: &FailoverConfig,
    now: Timestamp,
) -> Decision {
    let Surroundings {
        clusters,
        unhealthy_since,
        taint_evictions: gate,
    } = around;
    let mut next = spec.clone();
    let mut out = Decision::default();
    let earliest = |at: &mut Option<Timestamp>, t: Timestamp| {
        *at = Some(at.map_or(t, |a| a.min(t)));
    };

    let settled = config.evictions_from.is_none_or(|from| from <= now);
    if config.no_execute_eviction
        && !settled
        && let Some(from) = config.evictions_from
    {
        earliest(&mut out.recheck_at, from);
    }
    if config.no_execute_eviction && settled {
        let tolerations = spec
            .placement
            .as_ref()
            .map(|p| p.cluster_tolerations.as_slice())
            .unwrap_or_default();
        let behavior = spec.failover.as_ref().and_then(|f| f.cluster.as_ref());
        let purge = behavior
            .and_then(|c| PurgeMode::parse(&c.purge_mode))
            .unwrap_or(config.purge_mode);
        let preservation = behavior.and_then(|c| c.state_preservation.as_ref());
        for target in &spec.clusters {
            let Some(info) = clusters.get(target.name.as_str()) else {
                continue;
            };
            match no_execute(&info.taints, tolerations, now) {
                NoExecute::Stay => {}
                NoExecute::Until(at) => earliest(&mut out.recheck_at, at),
                NoExecute::Evict(message) => match gate {
                    EvictionGate::Open => {
                        let task = GracefulEvictionTask {
                            purge_mode: purge.as_str().into(),
                            reason: TAINT_UNTOLERATED.into(),
                            producer: TAINT_MANAGER.into(),
                            suppress_deletion: (purge == PurgeMode::Never).then_some(true),
                            ..GracefulEvictionTask::default()
                        };
                        if evict(
                            spec,
                            status,
                            preservation,
                            &mut next,
                            &mut out,
                            target,
                            task,
                            message,
                            now,
                        ) {
                            out.taint_evictions += 1;
                        }
                    }
                    EvictionGate::Wait(at) => earliest(&mut out.recheck_at, *at),
                    EvictionGate::Halted(why) => {
                        out.changes.push(Change::Postponed {
                            cluster: target.name.clone(),
                            message: format!("{message}; evictions are halted: {why}"),
                        });
                        earliest(
                            &mut out.recheck_at,
                            now.checked_add(SignedDuration::from_secs(POSTPONED_RECHECK_SECONDS))
                                .unwrap_or(Timestamp::MAX),
                        );
                    }
                },
            }
        }
    }

    // Application failover: a workload unhealthy in a cluster for longer than the policy's
    // toleration leaves that cluster. A hub that just started counts from the end of its
    // startup grace: the reports it holds may predate its outage, and the agents report
    // afresh once they are back.
    if let Some(app) = spec.failover.as_ref().and_then(|f| f.application.as_ref()) {
        let toleration = app
            .decision_conditions
            .toleration_seconds
            .map_or(DEFAULT_APPLICATION_TOLERATION_SECONDS, i64::from)
            .max(0);
        let purge = PurgeMode::parse(&app.purge_mode).unwrap_or(PurgeMode::Gracefully);
        for target in next.clusters.clone() {
            let Some(since) = unhealthy_since.get(target.name.as_str()) else {
                continue;
            };
            let since = config
                .evictions_from
                .map_or(*since, |from| from.max(*since));
            let at = since
                .checked_add(SignedDuration::from_secs(toleration))
                .unwrap_or(Timestamp::MAX);
            if at > now {
                earliest(&mut out.recheck_at, at);
                continue;
            }
            let message = format!(
                "the workload has been unhealthy in the cluster since {since}, longer than the {toleration}s the policy tolerates"
            );
            let task = GracefulEvictionTask {
                purge_mode: purge.as_str().into(),
                reason: APPLICATION_FAILURE.into(),
                producer: APPLICATION_FAILOVER.into(),
                grace_period_seconds: app.grace_period_seconds,
                suppress_deletion: (purge == PurgeMode::Never).then_some(true),
                ..GracefulEvictionTask::default()
            };
            evict(
                spec,
                status,
                app.state_preservation.as_ref(),
                &mut next,
                &mut out,
                &target,
                task,
                message,
                now,
            );
        }
    }

    // Tasks are assessed against the spec as it stood: one just created waits for the
    // scheduler to place its replicas elsewhere.
    let mut kept = Vec::with_capacity(next.graceful_eviction_tasks.len());
    for task in &next.graceful_eviction_tasks {
        let fresh = !spec
            .graceful_eviction_tasks
            .iter()
            .any(|t| t.from_cluster == task.from_cluster);
        if fresh {
            kept.push(task.clone());
            continue;
        }
        let tolerations = spec
            .placement
            .as_ref()
            .map(|p| p.cluster_tolerations.as_slice())
            .unwrap_or_default();
        let recovered = clusters.get(task.from_cluster.as_str()).is_some_and(|c| {
            !matches!(no_execute(&c.taints, tolerations, now), NoExecute::Evict(_))
        });
        if recovered && unplaced(spec, status) && task.producer == TAINT_MANAGER {
            next.clusters.push(crate::types::TargetCluster {
                name: task.from_cluster.clone(),
                replicas: task.replicas.unwrap_or(0),
                components: Vec::new(),
            });
            out.changes.push(Change::Restored {
                cluster: task.from_cluster.clone(),
            });
            continue;
        }
        match assess_task(task, spec, status, generation, config, now) {
            TaskState::Done(message) => out.changes.push(Change::Completed {
                cluster: task.from_cluster.clone(),
                message,
            }),
            TaskState::Waiting(at, _) => {
                if let Some(at) = at {
                    earliest(&mut out.recheck_at, at);
                }
                kept.push(task.clone());
            }
        }
    }
    next.graceful_eviction_tasks = kept;
    if next != *spec {
        out.spec = Some(next);
    }
    out
}

#[cfg(test)]
mod tests;
