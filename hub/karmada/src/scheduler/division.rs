//! Replica division: static weights, dynamic weights, Aggregated, and Job completions.

use super::webster::{TieBreak, apportion};
use super::{Candidate, ScheduleReason, Strategy, TermError};
use crate::selectors::affinity_matches;
use crate::types::{Placement, TargetCluster};

/// Replicas and the weight used, per selected cluster (same order as the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assignment {
    pub replicas: Vec<i64>,
    pub weights: Vec<i64>,
}

fn apportion_over(
    seats: i64,
    cands: &[&Candidate<'_>],
    weights: &[i64],
    tie: TieBreak,
) -> Vec<i64> {
    let parties: Vec<(&str, i64)> = cands
        .iter()
        .zip(weights)
        .map(|(c, w)| (c.info.name.as_str(), *w))
        .collect();
    apportion(seats, &parties, tie)
}

/// Static weights of the selected clusters: the maximum over matching `staticWeightList`
/// entries, 0 when none matches; all 1 when no weights are given or none is positive.
pub(crate) fn static_weights(placement: &Placement, selected: &[Candidate<'_>]) -> Vec<i64> {
    let list = placement
        .replica_scheduling
        .as_ref()
        .and_then(|r| r.weight_preference.as_ref())
        .map(|w| w.static_weight_list.as_slice())
        .unwrap_or(&[]);
    let weights: Vec<i64> = selected
        .iter()
        .map(|c| {
            list.iter()
                .filter(|e| affinity_matches(Some(&e.target_cluster), c.info))
                .map(|e| e.weight.max(0))
                .max()
                .unwrap_or(0)
        })
        .collect();
    if weights.iter().all(|w| *w == 0) {
        vec![1; selected.len()]
    } else {
        weights
    }
}

/// Sum of reported quantities, saturating at `i64::MAX` (capacity figures come from the
/// clusters and may be anything).
fn saturating_sum(values: impl IntoIterator<Item = i64>) -> i64 {
    values.into_iter().fold(0, i64::saturating_add)
}

/// Shortest prefix of `order` whose `weight` sum reaches `need`.
fn shortest_prefix(order: &[usize], weight: impl Fn(usize) -> i64, need: i64) -> Vec<usize> {
    let mut sum: i64 = 0;
    let mut out = Vec::new();
    for &i in order {
        if sum >= need {
            break;
        }
        sum = sum.saturating_add(weight(i));
        out.push(i);
    }
    out
}

/// Divides `replicas` over the selected clusters according to `strategy` (not Duplicated).
pub(crate) fn divide(
    strategy: Strategy,
    placement: &Placement,
    selected: &[Candidate<'_>],
    replicas: i64,
    fresh: bool,
    tie: TieBreak,
) -> Result<Assignment, TermError> {
    let n = selected.len();
    let name = |i: usize| selected[i].info.name.as_str();
    if strategy == Strategy::StaticWeight {
        let weights = static_weights(placement, selected);
        let refs: Vec<&Candidate<'_>> = selected.iter().collect();
        let replicas = apportion_over(replicas, &refs, &weights, tie);
        return Ok(Assignment { replicas, weights });
    }
    let aggregated = strategy == Strategy::Aggregated;
    let mut out = Assignment {
        replicas: vec![0; n],
        weights: vec![0; n],
    };
    // Apportions `seats` over `idx` with the given weights, adding to `base`.
    let pour = |out: &mut Assignment,
                idx: &[usize],
                weight: &dyn Fn(usize) -> i64,
                seats: i64,
                base: &dyn Fn(usize) -> i64| {
        let refs: Vec<&Candidate<'_>> = idx.iter().map(|&i| &selected[i]).collect();
        let w: Vec<i64> = idx.iter().map(|&i| weight(i)).collect();
        let shares = apportion_over(seats, &refs, &w, tie);
        for (k, &i) in idx.iter().enumerate() {
            out.replicas[i] = base(i).saturating_add(shares[k]);
            out.weights[i] = w[k];
        }
    };
    let insufficient = |have: i64, need: i64| {
        TermError::new(
            ScheduleReason::Unschedulable,
            format!(
                "insufficient capacity: the selected clusters can take {have} more replicas, {need} needed"
            ),
        )
    };
    let by_desc = |key: &dyn Fn(usize) -> i64| {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| key(b).cmp(&key(a)).then(name(a).cmp(name(b))));
        order
    };

    if fresh {
        let avail = |i: usize| selected[i].available();
        let total = saturating_sum((0..n).map(avail));
        if total < replicas {
            return Err(insufficient(total, replicas));
        }
        let idx = if aggregated {
            shortest_prefix(&by_desc(&avail), avail, replicas)
        } else {
            (0..n).collect()
        };
        pour(&mut out, &idx, &avail, replicas, &|_| 0);
        return Ok(out);
    }
    // Steady mode: previous entries on clusters still selected are kept.
    let current = |i: usize| selected[i].current;
    let assigned = saturating_sum((0..n).map(current));
    if assigned < replicas {
        let delta = replicas.saturating_sub(assigned);
        let free = |i: usize| selected[i].free;
        let total = saturating_sum((0..n).map(free));
        if total < delta {
            return Err(insufficient(total, delta));
        }
        let idx = if aggregated {
            // Clusters that already hold replicas go first, keeping the free-capacity order.
            let mut order = by_desc(&free);
            order.sort_by_key(|&i| selected[i].current == 0);
            shortest_prefix(&order, free, delta)
        } else {
            (0..n).collect()
        };
        for i in 0..n {
            out.replicas[i] = current(i);
        }
        pour(&mut out, &idx, &free, delta, &current);
    } else if assigned > replicas {
        let held: Vec<usize> = (0..n).filter(|&i| current(i) > 0).collect();
        let idx = if aggregated {
            let order: Vec<usize> = by_desc(&current)
                .into_iter()
                .filter(|&i| current(i) > 0)
                .collect();
            shortest_prefix(&order, current, replicas)
        } else {
            held
        };
        pour(&mut out, &idx, &current, replicas, &|_| 0);
    } else {
        for i in 0..n {
            out.replicas[i] = current(i);
            out.weights[i] = current(i);
        }
    }
    Ok(out)
}

/// Splits a Job's `completions` over its target clusters, weighted by each cluster's
/// parallelism (its replicas), with the same Webster rule. Returns completions per target in
/// input order.
pub fn divide_job_completions(
    completions: i32,
    targets: &[TargetCluster],
    template_uid: &str,
) -> Vec<i32> {
    let parties: Vec<(&str, i64)> = targets
        .iter()
        .map(|t| (t.name.as_str(), i64::from(t.replicas)))
        .collect();
    apportion(
        i64::from(completions),
        &parties,
        TieBreak::from_uid(template_uid),
    )
    .into_iter()
    .map(|v| i32::try_from(v).unwrap_or(i32::MAX))
    .collect()
}
