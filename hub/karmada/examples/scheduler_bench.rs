//! Scheduler benchmark: 1,000 clusters, 10,000 bindings with mixed placements, one thread.
//! Reports decisions per second and the p50/p99 of one decision.
//!
//! Run: `cargo run --release -p flotilla-karmada --example scheduler_bench`
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use flotilla_karmada::scheduler::{ClusterInfo, ScheduleInput, schedule};
use flotilla_karmada::types::Placement;
use serde_json::{Value, json};

fn cluster(i: usize) -> Value {
    json!({
        "apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
        "metadata": {"name": format!("c{i:04}"), "labels": {"env": if i.is_multiple_of(3) { "prod" } else { "dev" }, "tier": format!("t{}", i % 4)}},
        "spec": {"syncMode": "Pull", "provider": if i.is_multiple_of(2) { "aws" } else { "gcp" },
            "region": format!("r{}", i % 10), "zones": [format!("r{}-z{}", i % 10, i % 3)]},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "apiEnablements": [{"groupVersion": "apps/v1", "resources": [{"name": "deployments", "kind": "Deployment"}]}],
            "resourceSummary": {
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "110"},
                "allocated": {"cpu": format!("{}", i % 50), "memory": "16Gi", "pods": format!("{}", i % 100)}
            }
        }
    })
}

fn placements() -> Vec<Value> {
    vec![
        json!({"clusterAffinity": {"labelSelector": {"matchLabels": {"env": "prod"}}}, "spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 3}]}),
        json!({"clusterAffinity": {"clusterNames": ["c0001", "c0002", "c0003"]}, "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
            "weightPreference": {"staticWeightList": [
                {"targetCluster": {"clusterNames": ["c0001"]}, "weight": 1},
                {"targetCluster": {"clusterNames": ["c0002"]}, "weight": 2},
                {"targetCluster": {"clusterNames": ["c0003"]}, "weight": 1}]}}}),
        json!({"clusterAffinity": {"fieldSelector": {"matchExpressions": [{"key": "provider", "operator": "In", "values": ["aws"]}]}},
            "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
            "weightPreference": {"dynamicWeight": "AvailableReplicas"}}}),
        json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}}),
        json!({"replicaScheduling": {"replicaSchedulingType": "Divided"}}),
        json!({"spreadConstraints": [{"spreadByField": "region", "minGroups": 2, "maxGroups": 2}, {"spreadByField": "cluster", "minGroups": 2, "maxGroups": 4}]}),
        json!({"clusterAffinity": {"labelSelector": {"matchLabels": {"tier": "t1"}}, "exclude": ["c0001"]}}),
    ]
}

fn main() {
    let clusters: Vec<ClusterInfo> = (0..1000)
        .map(|i| ClusterInfo::from_cluster_json(&cluster(i)).unwrap())
        .collect();
    let bindings = 10_000;
    let placements: Vec<Placement> = placements()
        .into_iter()
        .map(|p| serde_json::from_value(p).unwrap())
        .collect();
    let inputs: Vec<ScheduleInput> = (0..bindings)
        .map(|i| ScheduleInput {
            placement: placements[i % placements.len()].clone(),
            replicas: 1 + (i % 20) as i32,
            replica_requests: [(
                "cpu".to_owned(),
                serde_json::from_value(json!("100m")).unwrap(),
            )]
            .into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            template_uid: format!("uid-{i}"),
            ..ScheduleInput::default()
        })
        .collect();
    let mut times: Vec<Duration> = Vec::with_capacity(bindings);
    let mut scheduled = 0;
    let start = Instant::now();
    for input in &inputs {
        let t = Instant::now();
        let out = schedule(input, &clusters);
        times.push(t.elapsed());
        scheduled += usize::from(out.scheduled);
    }
    let total = start.elapsed();
    times.sort();
    println!("| measure | result |\n|---|---|");
    println!(
        "| bindings scheduled | {scheduled} of {bindings} over {} clusters |",
        clusters.len()
    );
    println!(
        "| decisions/s (one thread) | {:.0} |",
        bindings as f64 / total.as_secs_f64()
    );
    println!(
        "| p50 / p99 per decision | {:.2} ms / {:.2} ms |",
        times[bindings / 2].as_secs_f64() * 1e3,
        times[bindings * 99 / 100].as_secs_f64() * 1e3
    );
}
