//! Cluster selection by spread constraints.
//!
//! Flotilla decisions: `maxGroups` 0/unset means no upper bound, and `region`, `zone`,
//! `provider` and `spreadByLabel` all drive group selection. One topology constraint is used
//! for grouping (the first of region, zone, provider, label); further ones only filter.

use std::collections::BTreeMap;

use super::{Candidate, ScheduleReason, Strategy, TermError};
use crate::types::SpreadConstraint;

#[derive(Debug, Clone, Copy)]
struct Bounds {
    min: usize,
    max: usize,
}

fn bounds(sc: &SpreadConstraint) -> Bounds {
    let min = usize::try_from(sc.min_groups.max(1)).unwrap_or(1);
    let max = if sc.max_groups > 0 {
        usize::try_from(sc.max_groups).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    Bounds { min, max }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupBy<'a> {
    Region,
    Zone,
    Provider,
    Label(&'a str),
}

fn group_key(c: &Candidate<'_>, by: GroupBy<'_>) -> String {
    match by {
        GroupBy::Region => c.info.region.clone(),
        // A cluster in several zones is grouped by its first zone in sort order.
        GroupBy::Zone => c.info.zones.iter().min().cloned().unwrap_or_default(),
        GroupBy::Provider => c.info.provider.clone(),
        GroupBy::Label(k) => c.info.labels.get(k).cloned().unwrap_or_default(),
    }
}

/// Selects clusters from `cands` (already ordered by score, available, name).
pub(super) fn select<'a>(
    cands: Vec<Candidate<'a>>,
    constraints: &[SpreadConstraint],
    strategy: Strategy,
    replicas: i64,
) -> Result<Vec<Candidate<'a>>, TermError> {
    // Static weights ignore spread constraints (as in Karmada).
    if constraints.is_empty() || strategy == Strategy::StaticWeight {
        return Ok(cands);
    }
    let mut cluster_bounds = None;
    let mut group: Option<(GroupBy<'_>, Bounds)> = None;
    for field in ["region", "zone", "provider"] {
        if group.is_none()
            && let Some(sc) = constraints.iter().find(|c| c.spread_by_field == field)
        {
            let by = match field {
                "region" => GroupBy::Region,
                "zone" => GroupBy::Zone,
                _ => GroupBy::Provider,
            };
            group = Some((by, bounds(sc)));
        }
    }
    for sc in constraints {
        if sc.spread_by_field == "cluster"
            || (sc.spread_by_field.is_empty() && sc.spread_by_label.is_empty())
        {
            cluster_bounds = Some(bounds(sc));
        } else if group.is_none() && !sc.spread_by_label.is_empty() {
            group = Some((GroupBy::Label(&sc.spread_by_label), bounds(sc)));
        }
    }
    let cb = cluster_bounds.unwrap_or(Bounds {
        min: 1,
        max: usize::MAX,
    });
    match group {
        None => select_by_cluster(cands, cb, strategy, replicas),
        Some((by, gb)) => select_by_group(cands, by, gb, cb, strategy, replicas),
    }
}

fn select_by_cluster<'a>(
    cands: Vec<Candidate<'a>>,
    cb: Bounds,
    strategy: Strategy,
    replicas: i64,
) -> Result<Vec<Candidate<'a>>, TermError> {
    if cands.len() < cb.min {
        return Err(TermError::new(
            ScheduleReason::SchedulerError,
            format!(
                "{} feasible clusters are fewer than the spread constraint's minGroups {}",
                cands.len(),
                cb.min
            ),
        ));
    }
    let n = cands.len().min(cb.max);
    let mut chosen: Vec<Candidate<'a>> = cands[..n].to_vec();
    let mut rest: Vec<Candidate<'a>> = cands[n..].to_vec();
    let needs_capacity =
        matches!(strategy, Strategy::DynamicWeight | Strategy::Aggregated) && replicas > 0;
    if needs_capacity {
        let sum = |v: &[Candidate<'_>]| {
            v.iter()
                .map(Candidate::available)
                .fold(0i64, i64::saturating_add)
        };
        // Swap in the largest remaining clusters from the end of the list until capacity suffices.
        let mut pos = chosen.len();
        while sum(&chosen) < replicas && pos > 0 {
            pos -= 1;
            let best = rest
                .iter()
                .enumerate()
                .max_by(|a, b| {
                    a.1.available()
                        .cmp(&b.1.available())
                        .then(b.1.info.name.cmp(&a.1.info.name))
                })
                .map(|(i, c)| (i, c.available()));
            if let Some((i, avail)) = best
                && avail > chosen[pos].available()
            {
                std::mem::swap(&mut chosen[pos], &mut rest[i]);
            }
        }
        if sum(&chosen) < replicas {
            return Err(TermError::new(
                ScheduleReason::Unschedulable,
                format!(
                    "the {} selected clusters can hold {} replicas, {} needed",
                    chosen.len(),
                    sum(&chosen),
                    replicas
                ),
            ));
        }
    }
    Ok(chosen)
}

struct Group<'a> {
    key: String,
    members: Vec<Candidate<'a>>,
    score: i64,
}

fn group_score(
    members: &[Candidate<'_>],
    strategy: Strategy,
    replicas: i64,
    gb: Bounds,
    cb: Bounds,
) -> i64 {
    let avg = |v: &[&Candidate<'_>]| {
        if v.is_empty() {
            0
        } else {
            v.iter().map(|c| c.score).sum::<i64>() / v.len() as i64
        }
    };
    if strategy == Strategy::Duplicated || replicas == 0 {
        let fit: Vec<&Candidate<'_>> = members
            .iter()
            .filter(|c| c.available() >= replicas || replicas == 0)
            .collect();
        return 1000 * fit.len() as i64 + avg(&fit);
    }
    let min = i64::try_from(gb.min).unwrap_or(i64::MAX);
    let target = replicas.saturating_add(min - 1) / min;
    let need = cb.min.max(gb.min);
    let mut walked: Vec<&Candidate<'_>> = Vec::new();
    let mut sum: i64 = 0;
    for c in members {
        if walked.len() >= need && sum >= target {
            break;
        }
        sum = sum.saturating_add(c.available());
        walked.push(c);
    }
    sum.min(target)
        .saturating_mul(1000)
        .saturating_add(avg(&walked))
}

fn select_by_group<'a>(
    cands: Vec<Candidate<'a>>,
    by: GroupBy<'_>,
    gb: Bounds,
    cb: Bounds,
    strategy: Strategy,
    replicas: i64,
) -> Result<Vec<Candidate<'a>>, TermError> {
    let mut by_key: BTreeMap<String, Vec<Candidate<'a>>> = BTreeMap::new();
    for c in cands {
        by_key.entry(group_key(&c, by)).or_default().push(c);
    }
    if by_key.len() < gb.min {
        return Err(TermError::new(
            ScheduleReason::SchedulerError,
            format!(
                "{} feasible groups are fewer than the spread constraint's minGroups {}",
                by_key.len(),
                gb.min
            ),
        ));
    }
    let mut groups: Vec<Group<'a>> = by_key
        .into_iter()
        .map(|(key, members)| {
            let score = group_score(&members, strategy, replicas, gb, cb);
            Group {
                key,
                members,
                score,
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.members.len().cmp(&a.members.len()))
            .then(a.key.cmp(&b.key))
    });
    // Take the best groups until both lower bounds hold; fewer groups are preferred.
    let mut chosen: Vec<Group<'a>> = Vec::new();
    let mut clusters = 0;
    for g in groups {
        if chosen.len() >= gb.min && clusters >= cb.min {
            break;
        }
        if chosen.len() == gb.max {
            break;
        }
        clusters += g.members.len();
        chosen.push(g);
    }
    if chosen.len() < gb.min || clusters < cb.min {
        return Err(TermError::new(
            ScheduleReason::SchedulerError,
            format!(
                "no set of at most {} groups holds the {} clusters the spread constraints require",
                if gb.max == usize::MAX {
                    "all".to_string()
                } else {
                    gb.max.to_string()
                },
                cb.min
            ),
        ));
    }
    // The best cluster of each group first, then the others by score, capacity, name.
    let mut result: Vec<Candidate<'a>> = Vec::new();
    let mut others: Vec<Candidate<'a>> = Vec::new();
    for g in &chosen {
        let mut it = g.members.iter();
        if let Some(first) = it.next() {
            result.push(*first);
        }
        others.extend(it.copied());
    }
    others.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.available().cmp(&a.available()))
            .then(a.info.name.cmp(&b.info.name))
    });
    let limit = clusters.min(cb.max).max(result.len());
    for c in others {
        if result.len() >= limit {
            break;
        }
        result.push(c);
    }
    Ok(result)
}
