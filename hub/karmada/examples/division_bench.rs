//! Replica division with a huge replica count: one `schedule()` call per strategy with
//! `replicas` (default `i32::MAX`) over 1,000 clusters, timed, with the sum checked.
//!
//! Run: `cargo run --release -p flotilla-karmada --example division_bench [replicas]`
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use flotilla_karmada::scheduler::{
    ClusterInfo, Readiness, ResourceSummaryInfo, ScheduleInput, schedule,
};
use serde_json::json;

fn main() -> ExitCode {
    let replicas: i32 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(i32::MAX);
    // Cluster i: 10,000,000 + 1,000·i free pods, CPU to spare.
    let clusters: Vec<ClusterInfo> = (0..1000)
        .map(|i| {
            let mut s = ResourceSummaryInfo::default();
            s.allocatable
                .insert("pods".into(), (10_000_000 + i128::from(i) * 1000) * 1000);
            s.allocatable.insert("cpu".into(), 1i128 << 60);
            ClusterInfo {
                name: format!("c{i:04}"),
                readiness: Readiness::Ready,
                api_enablements: ["apps/v1/Deployment".to_string()].into_iter().collect(),
                resource_summary: Some(s),
                ..Default::default()
            }
        })
        .collect();
    let list: Vec<_> = (0..1000)
        .map(|i| json!({"targetCluster": {"clusterNames": [format!("c{i:04}")]}, "weight": 1 + i % 7}))
        .collect();
    let cases = [
        (
            "static weights",
            json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "weightPreference": {"staticWeightList": list}}}),
        ),
        (
            "dynamic weights",
            json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted", "weightPreference": {"dynamicWeight": "AvailableReplicas"}}}),
        ),
        (
            "Aggregated",
            json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}}),
        ),
        ("Duplicated", json!({})),
    ];
    let mut ok = true;
    println!("| strategy | clusters used | time |\n|---|---|---|");
    for (name, placement) in cases {
        let input = ScheduleInput {
            placement: serde_json::from_value(placement).unwrap(),
            replicas,
            replica_requests: BTreeMap::from([(
                "cpu".to_string(),
                serde_json::from_value(json!("100m")).unwrap(),
            )]),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            template_uid: "uid-1".into(),
            ..Default::default()
        };
        let t = Instant::now();
        let out = schedule(&input, &clusters);
        let elapsed = t.elapsed();
        let sum: i64 = out.targets.iter().map(|t| i64::from(t.replicas)).sum();
        let want = if name == "Duplicated" {
            i64::from(replicas) * out.targets.len() as i64
        } else {
            i64::from(replicas)
        };
        if !out.scheduled || sum != want {
            eprintln!("{name}: scheduled={} sum {sum}, want {want}", out.scheduled);
            ok = false;
        }
        println!(
            "| {name} | {} | {:.3} ms |",
            out.targets.len(),
            elapsed.as_secs_f64() * 1e3
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
