//! The scheduler: which clusters get a binding and how many replicas each (pure).
//!
//! [`schedule`] runs, for the `clusterAffinities` term in force (or the single
//! `clusterAffinity`): filter ([`filter`]), order by stickiness and capacity, select by spread
//! constraints, and divide replicas ([`division`], [`webster`]). Every outcome carries a
//! [`Diagnosis`] saying why.

pub mod cluster;
pub mod division;
pub mod filter;
mod spread;
pub mod trigger;
pub mod webster;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

pub use cluster::{
    ClusterInfo, NOT_READY_TAINT, Readiness, ResourceSummaryInfo, UNREACHABLE_TAINT, api_key,
};
pub use division::divide_job_completions;
pub use filter::{FilterReason, FilteredCluster};
pub use trigger::{APPLIED_PLACEMENT_ANNOTATION, RescheduleTrigger, reschedule_trigger};

use crate::quantity::parse_milli;
use crate::types::{
    ClusterAffinity, Placement, Quantity, ResourceBindingSpec, ResourceBindingStatus, TargetCluster,
};
use webster::TieBreak;

/// The effective replica scheduling strategy of a placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Strategy {
    /// Every selected cluster gets all replicas.
    Duplicated,
    /// Divided by static weights (equal when none are given).
    StaticWeight,
    /// Divided by each cluster's free capacity.
    DynamicWeight,
    /// Divided over as few clusters as capacity allows.
    Aggregated,
}

impl Strategy {
    /// The strategy of a placement (absent `replicaScheduling` = Duplicated).
    pub fn of(placement: &Placement) -> Self {
        let Some(rs) = &placement.replica_scheduling else {
            return Strategy::Duplicated;
        };
        if rs.replica_scheduling_type == "Duplicated" {
            return Strategy::Duplicated;
        }
        if rs.replica_division_preference == "Aggregated" {
            return Strategy::Aggregated;
        }
        match &rs.weight_preference {
            Some(w) if !w.dynamic_weight.is_empty() => Strategy::DynamicWeight,
            _ => Strategy::StaticWeight,
        }
    }
}

/// Everything the scheduler needs about one binding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleInput {
    /// The binding's placement.
    pub placement: Placement,
    /// Desired replicas of the template (0 for non-workloads).
    pub replicas: i32,
    /// Resource requests of one replica (`cpu`, `memory`, ...).
    pub replica_requests: BTreeMap<String, Quantity>,
    /// Template apiVersion, e.g. `apps/v1`.
    pub api_version: String,
    /// Template kind, e.g. `Deployment`.
    pub kind: String,
    /// The current result (`spec.clusters`).
    pub previous: Vec<TargetCluster>,
    /// `status.schedulerObservingAffinityName`.
    pub observed_affinity_name: String,
    /// A manual reschedule: ignore the previous split and restart at the first affinity term.
    pub fresh: bool,
    /// The template UID, which seeds the Webster name tie-break.
    pub template_uid: String,
    /// Clusters that are sources of pending graceful eviction tasks.
    pub evicting_clusters: Vec<String>,
}

impl ScheduleInput {
    /// Builds the input from a binding; `fresh` is for the caller to decide.
    pub fn from_binding(
        spec: &ResourceBindingSpec,
        status: Option<&ResourceBindingStatus>,
    ) -> Self {
        ScheduleInput {
            placement: spec.placement.clone().unwrap_or_default(),
            replicas: spec.replicas,
            replica_requests: spec
                .replica_requirements
                .as_ref()
                .map(|r| r.resource_request.clone())
                .unwrap_or_default(),
            api_version: spec.resource.api_version.clone(),
            kind: spec.resource.kind.clone(),
            previous: spec.clusters.clone(),
            observed_affinity_name: status
                .map(|s| s.scheduler_observing_affinity_name.clone())
                .unwrap_or_default(),
            fresh: false,
            template_uid: spec.resource.uid.clone(),
            evicting_clusters: spec
                .graceful_eviction_tasks
                .iter()
                .map(|t| t.from_cluster.clone())
                .collect(),
        }
    }
}

/// The `Scheduled` condition reason of an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ScheduleReason {
    /// Scheduled.
    Success,
    /// No cluster passed the filters.
    NoClusterFit,
    /// Not enough capacity.
    Unschedulable,
    /// Another error, e.g. spread constraints cannot be met.
    SchedulerError,
}

impl ScheduleReason {
    /// The condition reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "Success",
            Self::NoClusterFit => "NoClusterFit",
            Self::Unschedulable => "Unschedulable",
            Self::SchedulerError => "SchedulerError",
        }
    }
}

/// The numbers behind one selected cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateReport {
    /// Cluster name.
    pub cluster: String,
    /// 100 if the cluster already was a target, else 0.
    pub score: i64,
    /// Free replica capacity estimated from the reported resources.
    pub free: i64,
    /// Replicas this binding had there before.
    pub current: i64,
    /// Weight used for the division (static weight, capacity or current replicas).
    pub weight: i64,
    /// Replicas assigned.
    pub replicas: i64,
}

/// Selected clusters named in a [`Diagnosis::summary`]; the rest are counted.
pub const SUMMARY_SELECTED: usize = 10;
/// Rejected clusters a diagnosis names (the others are only counted).
pub const FILTERED_KEPT: usize = 5;

/// Why the scheduler decided what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    /// The effective strategy.
    pub strategy: Strategy,
    /// Total clusters considered.
    pub total_clusters: usize,
    /// Clusters that passed the filters.
    pub feasible: usize,
    /// The first [`FILTERED_KEPT`] clusters rejected by the filters, with the rule.
    pub filtered: Vec<FilteredCluster>,
    /// How many clusters each rule rejected.
    pub filtered_by_reason: BTreeMap<FilterReason, usize>,
    /// The selected clusters and the numbers behind their share.
    pub selected: Vec<CandidateReport>,
}

impl Diagnosis {
    /// How many clusters the filters rejected.
    pub fn filtered_total(&self) -> usize {
        self.filtered_by_reason.values().sum()
    }

    /// A one-line human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}/{} clusters feasible ({:?})",
            self.feasible, self.total_clusters, self.strategy
        );
        if !self.selected.is_empty() {
            // Bounded, so the annotation and condition stay small in large fleets.
            let mut parts: Vec<String> = self
                .selected
                .iter()
                .take(SUMMARY_SELECTED)
                .map(|c| match self.strategy {
                    Strategy::Duplicated => c.cluster.clone(),
                    _ => format!(
                        "{}={} (weight {}, free {})",
                        c.cluster, c.replicas, c.weight, c.free
                    ),
                })
                .collect();
            if self.selected.len() > SUMMARY_SELECTED {
                parts.push(format!(
                    "and {} more",
                    self.selected.len() - SUMMARY_SELECTED
                ));
            }
            s.push_str(&format!("; selected {}", parts.join(", ")));
        }
        if !self.filtered.is_empty() {
            s.push_str(&format!(
                "; filtered {}",
                filtered_summary(&self.filtered, self.filtered_total())
            ));
        }
        s
    }
}

fn filtered_summary(filtered: &[FilteredCluster], total: usize) -> String {
    let mut parts: Vec<String> = filtered
        .iter()
        .map(|f| {
            if f.detail.is_empty() {
                format!("{}: {}", f.cluster, f.reason)
            } else {
                format!("{}: {} {}", f.cluster, f.reason, f.detail)
            }
        })
        .collect();
    if total > filtered.len() {
        parts.push(format!("and {} more", total - filtered.len()));
    }
    parts.join(", ")
}

/// The result of scheduling one binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleOutcome {
    /// The new `spec.clusters`, sorted by name. On failure the previous result (never cleared).
    pub targets: Vec<TargetCluster>,
    /// Whether scheduling succeeded (`Scheduled=True`).
    pub scheduled: bool,
    /// The `Scheduled` condition reason.
    pub reason: ScheduleReason,
    /// The `Scheduled` condition message.
    pub message: String,
    /// The `clusterAffinities` term in force (`status.schedulerObservingAffinityName`).
    pub affinity_name: Option<String>,
    /// Why.
    pub diagnosis: Diagnosis,
}

/// A feasible cluster with the numbers used for ordering and division.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate<'a> {
    pub info: &'a ClusterInfo,
    /// 100 for an existing target.
    pub score: i64,
    /// Free replica capacity.
    pub free: i64,
    /// Replicas of this binding already there.
    pub current: i64,
}

impl Candidate<'_> {
    /// Free capacity plus the replicas already there (saturating: both come from reports).
    pub fn available(&self) -> i64 {
        self.free.saturating_add(self.current)
    }
}

/// A failed scheduling attempt.
#[derive(Debug, Clone)]
pub(crate) struct TermError {
    pub reason: ScheduleReason,
    pub message: String,
}

impl TermError {
    pub fn new(reason: ScheduleReason, message: impl Into<String>) -> Self {
        TermError {
            reason,
            message: message.into(),
        }
    }
}

/// Schedules one binding over the given clusters.
pub fn schedule(input: &ScheduleInput, clusters: &[ClusterInfo]) -> ScheduleOutcome {
    let strategy = Strategy::of(&input.placement);
    let terms: Vec<(Option<&str>, Option<ClusterAffinity>)> =
        if input.placement.cluster_affinities.is_empty() {
            vec![(None, input.placement.cluster_affinity.clone())]
        } else {
            input
                .placement
                .cluster_affinities
                .iter()
                .map(|t| (Some(t.affinity_name.as_str()), Some(t.affinity())))
                .collect()
        };
    let start = if input.fresh {
        0
    } else {
        terms
            .iter()
            .position(|(n, _)| *n == Some(input.observed_affinity_name.as_str()))
            .unwrap_or(0)
    };
    let requests: BTreeMap<String, i128> = input
        .replica_requests
        .iter()
        .filter_map(|(k, q)| parse_milli(&q.0).map(|v| (k.clone(), v)))
        .collect();
    let mut diagnosis = Diagnosis {
        strategy,
        total_clusters: clusters.len(),
        feasible: 0,
        filtered: Vec::new(),
        filtered_by_reason: BTreeMap::new(),
        selected: Vec::new(),
    };
    let mut failures: Vec<String> = Vec::new();
    let mut last_error = TermError::new(ScheduleReason::NoClusterFit, "no cluster fits");
    for (name, affinity) in &terms[start..] {
        diagnosis.filtered.clear();
        diagnosis.filtered_by_reason.clear();
        diagnosis.selected.clear();
        match schedule_term(
            input,
            clusters,
            affinity.as_ref(),
            strategy,
            &requests,
            &mut diagnosis,
        ) {
            Ok(targets) => {
                let message = format!(
                    "Binding has been scheduled successfully: {}",
                    diagnosis.summary()
                );
                return ScheduleOutcome {
                    targets,
                    scheduled: true,
                    reason: ScheduleReason::Success,
                    message,
                    affinity_name: name.map(str::to_string),
                    diagnosis,
                };
            }
            Err(e) => {
                match name {
                    Some(n) => failures.push(format!("affinity {n}: {}", e.message)),
                    None => failures.push(e.message.clone()),
                }
                last_error = e;
            }
        }
    }
    // Flotilla keeps the current placement when nothing fits (workloads are never removed
    // because scheduling failed); a first schedule propagates nothing.
    let mut targets = input.previous.clone();
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    let observed = if input.observed_affinity_name.is_empty() {
        None
    } else {
        Some(input.observed_affinity_name.clone())
    };
    ScheduleOutcome {
        targets,
        scheduled: false,
        reason: last_error.reason,
        message: failures.join("; "),
        affinity_name: observed,
        diagnosis,
    }
}

fn schedule_term(
    input: &ScheduleInput,
    clusters: &[ClusterInfo],
    affinity: Option<&ClusterAffinity>,
    strategy: Strategy,
    requests: &BTreeMap<String, i128>,
    diagnosis: &mut Diagnosis,
) -> Result<Vec<TargetCluster>, TermError> {
    let previous: HashSet<&str> = input.previous.iter().map(|t| t.name.as_str()).collect();
    let previous_replicas: HashMap<&str, i64> = input
        .previous
        .iter()
        .map(|t| (t.name.as_str(), i64::from(t.replicas)))
        .collect();
    let evicting: HashSet<&str> = input.evicting_clusters.iter().map(String::as_str).collect();
    let ctx = filter::FilterContext {
        affinity,
        tolerations: &input.placement.cluster_tolerations,
        spread: &input.placement.spread_constraints,
        api_key: filter::template_api_key(&input.api_version, &input.kind),
        previous: &previous,
        evicting: &evicting,
    };
    let workload = input.replicas > 0;
    let mut candidates: Vec<Candidate<'_>> = Vec::with_capacity(clusters.len());
    for c in clusters {
        match filter::check(c, &ctx) {
            Ok(()) => {
                // A negative count in `spec.clusters` holds nothing.
                let current = previous_replicas
                    .get(c.name.as_str())
                    .copied()
                    .unwrap_or(0)
                    .max(0);
                candidates.push(Candidate {
                    info: c,
                    score: if previous.contains(c.name.as_str()) {
                        100
                    } else {
                        0
                    },
                    free: if workload {
                        c.free_replicas(requests)
                    } else {
                        0
                    },
                    current,
                });
            }
            Err(reason) => {
                *diagnosis.filtered_by_reason.entry(reason).or_default() += 1;
                if diagnosis.filtered.len() < FILTERED_KEPT {
                    diagnosis.filtered.push(filter::rejection(c, &ctx, reason));
                }
            }
        }
    }
    diagnosis.feasible = candidates.len();
    if candidates.is_empty() {
        return Err(TermError::new(
            ScheduleReason::NoClusterFit,
            no_fit_message(clusters.len(), &diagnosis.filtered_by_reason),
        ));
    }
    candidates.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.available().cmp(&a.available()))
            .then(a.info.name.cmp(&b.info.name))
    });
    let replicas = i64::from(input.replicas.max(0));
    let selected = spread::select(
        candidates,
        &input.placement.spread_constraints,
        strategy,
        replicas,
    )?;

    let (shares, weights) = if !workload {
        (vec![0; selected.len()], vec![0; selected.len()])
    } else if strategy == Strategy::Duplicated {
        (vec![replicas; selected.len()], vec![0; selected.len()])
    } else {
        let tie = TieBreak::from_uid(&input.template_uid);
        let a = division::divide(
            strategy,
            &input.placement,
            &selected,
            replicas,
            input.fresh,
            tie,
        )?;
        (a.replicas, a.weights)
    };
    let mut targets = Vec::with_capacity(selected.len());
    for ((c, share), weight) in selected.iter().zip(&shares).zip(&weights) {
        diagnosis.selected.push(CandidateReport {
            cluster: c.info.name.clone(),
            score: c.score,
            free: c.free,
            current: c.current,
            weight: *weight,
            replicas: *share,
        });
        // Divided workloads drop clusters that end with no replicas.
        if workload && strategy != Strategy::Duplicated && *share == 0 {
            continue;
        }
        targets.push(TargetCluster {
            name: c.info.name.clone(),
            replicas: i32::try_from(*share).unwrap_or(i32::MAX),
            components: Vec::new(),
        });
    }
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    diagnosis.selected.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    Ok(targets)
}

fn no_fit_message(total: usize, counts: &BTreeMap<FilterReason, usize>) -> String {
    let parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    format!("0/{total} clusters are available: {}", parts.join(", "))
}

#[cfg(test)]
mod tests;
