//! Huge replica counts and extreme reported quantities: exact sums, no overflow, no per-replica
//! work.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::scheduler::*;

/// `n` clusters `c0000`..; cluster `i` has `10,000,000 + 1,000·i` free pods, label `w=<1+i%7>`
/// and region `r<i%5>`.
fn thousand(n: usize) -> Vec<ClusterInfo> {
    let pods: Vec<i128> = (0..n).map(|i| 10_000_000 + 1_000 * i as i128).collect();
    let clusters = (0..n)
        .map(|i| {
            let w = (1 + i % 7).to_string();
            info(
                &format!("c{i:04}"),
                &[("w", w.as_str())],
                "aws",
                &format!("r{}", i % 5),
                "z",
            )
        })
        .collect();
    let mut clusters = with_free(clusters, &pods);
    for c in &mut clusters {
        if let Some(s) = c.resource_summary.as_mut() {
            s.allocatable.insert("cpu".into(), 1 << 80);
        }
    }
    clusters
}

fn weights_by_label() -> serde_json::Value {
    let list: Vec<serde_json::Value> = (1..=7)
        .map(|w| json!({"targetCluster": {"labelSelector": {"matchLabels": {"w": w.to_string()}}}, "weight": w}))
        .collect();
    json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
        "weightPreference": {"staticWeightList": list}}})
}

fn timed(input: &ScheduleInput, clusters: &[ClusterInfo]) -> ScheduleOutcome {
    let start = Instant::now();
    let out = schedule(input, clusters);
    // The seat-by-seat division took minutes here; the bound leaves room for a loaded debug run.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(out.scheduled, "{}", out.message);
    out
}

fn sum(out: &ScheduleOutcome) -> i64 {
    out.targets.iter().map(|t| i64::from(t.replicas)).sum()
}

#[test]
fn i32_max_replicas_over_a_thousand_clusters() {
    let clusters = thousand(1000);
    let max = i64::from(i32::MAX);

    // Static weights: every share within one seat of its exact quota.
    let out = timed(&input(weights_by_label(), i32::MAX), &clusters);
    assert_eq!(out.targets.len(), 1000);
    assert_eq!(sum(&out), max);
    let total_weight: i128 = (0..1000).map(|i| 1 + i128::from(i % 7)).sum();
    for (i, t) in out.targets.iter().enumerate() {
        let quota = i128::from(i32::MAX) * (1 + i as i128 % 7);
        let share = i128::from(t.replicas) * total_weight;
        assert!((share - quota).abs() < total_weight, "{}", t.name);
    }

    // Dynamic weights: all clusters used, none above its capacity.
    let out = timed(&input(dynamic(), i32::MAX), &clusters);
    assert_eq!(sum(&out), max);
    for t in &out.targets {
        let i: i32 = t.name[1..].parse().unwrap();
        assert!(t.replicas <= 10_000_000 + 1_000 * i, "{}", t.name);
    }
    // Scaling down keeps every cluster at or below its share.
    let down = timed(
        &prev(input(dynamic(), i32::MAX - 1_000), &pairs_of(&out)),
        &clusters,
    );
    assert_eq!(sum(&down), max - 1_000);
    for (a, b) in out.targets.iter().zip(&down.targets) {
        assert!(b.replicas <= a.replicas, "{}", a.name);
    }

    // Aggregated: the fewest clusters (largest first) that hold them.
    let out = timed(&input(aggregated(), i32::MAX), &clusters);
    assert_eq!(sum(&out), max);
    let mut caps: Vec<i64> = (0..1000).map(|i| 10_000_000 + 1_000 * i).collect();
    caps.sort_by(|a, b| b.cmp(a));
    let fewest = caps
        .iter()
        .scan(0i64, |acc, c| {
            let before = *acc;
            *acc += c;
            Some(before)
        })
        .take_while(|before| *before < max)
        .count();
    assert_eq!(out.targets.len(), fewest);

    // Duplicated: every cluster gets all of them.
    let out = timed(&input(json!({}), i32::MAX), &clusters);
    assert_eq!(out.targets.len(), 1000);
    assert!(out.targets.iter().all(|t| t.replicas == i32::MAX));

    // Region spread with dynamic weights.
    let mut spread = dynamic();
    spread["spreadConstraints"] =
        json!([{"spreadByField": "region", "minGroups": 2, "maxGroups": 2}]);
    let out = timed(&input(spread, i32::MAX), &clusters);
    assert_eq!(sum(&out), max);
}

fn pairs_of(out: &ScheduleOutcome) -> Vec<(&str, i32)> {
    out.targets
        .iter()
        .map(|t| (t.name.as_str(), t.replicas))
        .collect()
}

/// Clusters reporting quantities at the limits of what a summary can hold.
fn extreme_clusters() -> Vec<ClusterInfo> {
    let with = |name: &str, region: &str, allocatable: i128, allocated: i128, allocating: i128| {
        let mut c = info(name, &[], "aws", region, "z");
        let s = c.resource_summary.as_mut().unwrap();
        for r in ["pods", "cpu"] {
            s.allocatable.insert(r.into(), allocatable);
            s.allocated.insert(r.into(), allocated);
            s.allocating.insert(r.into(), allocating);
        }
        c
    };
    vec![
        with("huge-a", "r1", i128::MAX, 0, 0),
        with("huge-b", "r2", i128::MAX, 0, 0),
        with("overcommitted", "r1", 10_000, i128::MAX, i128::MAX),
        with("negative", "r2", -5_000, i128::MIN, i128::MIN),
        with("minimum", "r3", i128::MIN, i128::MAX, 0),
    ]
}

#[test]
fn extreme_reported_quantities() {
    let clusters = extreme_clusters();
    let frees: Vec<i64> = clusters
        .iter()
        .map(|c| c.free_replicas(&[("cpu".to_string(), 100)].into_iter().collect()))
        .collect();
    assert_eq!(frees, vec![i64::MAX, i64::MAX, 0, 0, 0]);

    let mut spread = dynamic();
    spread["spreadConstraints"] = json!([{"spreadByField": "region", "minGroups": 2}]);
    let mut by_cluster = dynamic();
    by_cluster["spreadConstraints"] =
        json!([{"spreadByField": "cluster", "minGroups": 2, "maxGroups": 2}]);
    let mut one_region = clusters.clone();
    one_region[1].region = "r1".into();
    let cases = vec![
        ok(
            "dynamic: equal i64::MAX capacities split evenly",
            clusters.clone(),
            input(dynamic(), i32::MAX),
            &[("huge-a", 1_073_741_824), ("huge-b", 1_073_741_823)],
        ),
        ok(
            "aggregated: one cluster holds everything",
            clusters.clone(),
            input(aggregated(), i32::MAX),
            &[("huge-a", i32::MAX)],
        ),
        ok(
            "region spread sums saturate",
            clusters.clone(),
            input(spread.clone(), i32::MAX),
            &[("huge-a", 1_073_741_824), ("huge-b", 1_073_741_823)],
        ),
        ok(
            "cluster spread sums saturate",
            clusters.clone(),
            input(by_cluster, i32::MAX),
            &[("huge-a", 1_073_741_824), ("huge-b", 1_073_741_823)],
        ),
        ok(
            "group capacity sums saturate",
            one_region,
            input(spread.clone(), 5),
            &[("huge-a", 3), ("huge-b", 2)],
        ),
        ok(
            "kept when the total is unchanged, capacity plus current saturates",
            clusters.clone(),
            prev(input(dynamic(), i32::MAX), &[("huge-a", i32::MAX)]),
            &[("huge-a", i32::MAX)],
        ),
        ok(
            "scale down from i32::MAX",
            clusters.clone(),
            prev(
                input(dynamic(), 3),
                &[("huge-a", i32::MAX), ("huge-b", i32::MAX)],
            ),
            &[("huge-a", 2), ("huge-b", 1)],
        ),
        ok(
            "a negative previous count holds nothing",
            clusters.clone(),
            prev(input(aggregated(), 4), &[("overcommitted", -5)]),
            &[("huge-a", 4)],
        ),
        ok(
            "negative replicas schedule as zero",
            clusters.clone(),
            input(dynamic(), -5),
            &[
                ("huge-a", 0),
                ("huge-b", 0),
                ("minimum", 0),
                ("negative", 0),
                ("overcommitted", 0),
            ],
        ),
        ok(
            "static weights of 0 everywhere count as equal",
            clusters.clone(),
            input(
                static_weights(&[("huge-a", 0), ("huge-b", 0), ("minimum", 0)]),
                i32::MAX,
            ),
            &[
                ("huge-a", 429_496_730),
                ("huge-b", 429_496_730),
                ("minimum", 429_496_729),
                ("negative", 429_496_729),
                ("overcommitted", 429_496_729),
            ],
        ),
        ok(
            "static weights: i64::MAX beside 1",
            clusters.clone(),
            input(
                static_weights(&[("huge-a", i64::MAX), ("huge-b", 1)]),
                i32::MAX,
            ),
            &[("huge-a", i32::MAX)],
        ),
        fail(
            "no capacity anywhere",
            clusters[2..].to_vec(),
            input(dynamic(), 1),
            ScheduleReason::Unschedulable,
        ),
    ];
    run(cases);
}

#[test]
fn job_completions_at_the_limits() {
    type Row<'a> = (i32, &'a [(&'a str, i32)], &'a [i32]);
    let cases: &[Row<'_>] = &[
        (
            i32::MAX,
            &[("A", i32::MAX), ("B", 0), ("C", -3), ("D", 1)],
            &[i32::MAX - 1, 0, 0, 1],
        ),
        (i32::MAX, &[("A", 1), ("B", 1)], &[1 << 30, (1 << 30) - 1]),
        (10, &[("A", 0), ("B", 0), ("C", -1)], &[4, 3, 3]),
        (-7, &[("A", 3)], &[0]),
        (i32::MAX, &[], &[]),
    ];
    for (completions, t, want) in cases {
        let start = Instant::now();
        assert_eq!(
            divide_job_completions(*completions, &targets(t), ""),
            *want,
            "{completions} over {t:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
