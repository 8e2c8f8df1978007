//! Scheduler benchmark: 1,000 clusters, 10,000 bindings with mixed placements, one thread.
//!
//! Reports two figures per decision:
//! - pure: `schedule()` on inputs parsed beforehand;
//! - controller: parse the ResourceBinding JSON, schedule, and serialize what the scheduling
//!   controller writes (`spec.clusters`, the diagnosis annotation and the status with its
//!   `Scheduled` condition). The 1,000 Cluster JSON objects are parsed once per pass, as the
//!   controller does; that cost is reported on its own line.
//!
//! Wall-clock figures suffer when other work shares the cores; the CPU-second figures (from
//! `/proc/thread-self/schedstat`) do much less.
//!
//! Every decision is then checked against a placement computed here from the cluster
//! definitions alone (exact Webster shares by a seat-by-seat loop, exact cluster sets, region
//! counts), and the controller path must agree with the pure one. Any mismatch exits non-zero.
//!
//! Run: `cargo run --release -p flotilla-karmada --example scheduler_bench`
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use flotilla_karmada::scheduler::{ClusterInfo, ScheduleInput, ScheduleOutcome, schedule};
use flotilla_karmada::types::{
    Cluster, Condition, Placement, ResourceBinding, ResourceBindingStatus, TargetCluster,
};
use serde_json::{Value, json};

const CLUSTERS: usize = 1000;
const BINDINGS: usize = 10_000;

fn cluster(i: usize) -> Value {
    json!({
        "apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
        "metadata": {"name": name(i), "labels": {"env": if i.is_multiple_of(3) { "prod" } else { "dev" }, "tier": format!("t{}", i % 4)}},
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

fn name(i: usize) -> String {
    format!("c{i:04}")
}

/// Replicas of 100m CPU that fit in cluster `i`, from the numbers in [`cluster`]:
/// min(110 - i%100 pods, (64 - i%50) cores / 100m).
fn available(i: usize) -> i64 {
    let pods = 110 - (i % 100) as i64;
    let cpu = (64 - (i % 50) as i64) * 10;
    pods.min(cpu)
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

fn replicas_of(b: usize) -> i32 {
    1 + (b % 20) as i32
}

fn uid_of(b: usize) -> String {
    format!("uid-{b}")
}

/// The stored ResourceBinding a controller reads.
fn binding_json(b: usize, placement: &Value) -> String {
    serde_json::to_string(&json!({
        "apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
        "metadata": {"name": format!("app-{b}-deployment"), "namespace": "bench", "uid": format!("rb-{b}"),
            "generation": 1, "resourceVersion": format!("{}", 1000 + b)},
        "spec": {
            "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "bench",
                "name": format!("app-{b}"), "uid": uid_of(b)},
            "replicas": replicas_of(b),
            "replicaRequirements": {"resourceRequest": {"cpu": "100m"}},
            "placement": placement,
        }
    }))
    .unwrap()
}

/// What the scheduling controller writes for one decision, serialized.
fn controller_write(out: &ScheduleOutcome, generation: i64) -> Vec<u8> {
    let summary = out.diagnosis.summary();
    let message = if out.message.is_empty() {
        summary.clone()
    } else {
        out.message.clone()
    };
    let status = ResourceBindingStatus {
        scheduler_observed_generation: generation,
        scheduler_observing_affinity_name: out.affinity_name.clone().unwrap_or_default(),
        last_scheduled_time: Some("2026-11-30T08:00:00Z".into()),
        conditions: vec![Condition {
            type_: "Scheduled".into(),
            status: if out.scheduled { "True" } else { "False" }.into(),
            observed_generation: Some(generation),
            last_transition_time: Some("2026-11-30T08:00:00Z".into()),
            reason: out.reason.as_str().into(),
            message,
        }],
        ..Default::default()
    };
    serde_json::to_vec(&json!({
        "metadata": {"annotations": {"scheduling.flotilla.io/diagnosis": summary}},
        "spec": {"clusters": &out.targets},
        "status": status,
    }))
    .unwrap()
}

/// FNV-1a 32-bit, for the Webster name tie-break.
fn fnv32a(s: &str) -> u32 {
    s.bytes().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    })
}

/// Webster / Sainte-Laguë seat by seat, straight from its definition: each seat to the largest
/// `w/(2s+1)`, then fewer seats, then the smaller name (larger for an odd FNV hash of the UID).
/// Returns the non-zero shares, sorted by name.
fn webster(seats: i32, parties: &[(String, i64)], uid: &str) -> Vec<(String, i32)> {
    let larger_wins = !uid.is_empty() && fnv32a(uid) % 2 == 1;
    let mut got = vec![0i64; parties.len()];
    for _ in 0..seats {
        let mut best = 0;
        for k in 1..parties.len() {
            let (a, b) = (&parties[k], &parties[best]);
            let lhs = i128::from(a.1) * i128::from(2 * got[best] + 1);
            let rhs = i128::from(b.1) * i128::from(2 * got[k] + 1);
            let better = lhs > rhs
                || (lhs == rhs
                    && (got[k] < got[best] || (got[k] == got[best] && (a.0 > b.0) == larger_wins)));
            if better {
                best = k;
            }
        }
        got[best] += 1;
    }
    let mut out: Vec<(String, i32)> = parties
        .iter()
        .zip(got)
        .filter(|(_, s)| *s > 0)
        .map(|((n, _), s)| (n.clone(), i32::try_from(s).unwrap()))
        .collect();
    out.sort();
    out
}

/// Clusters in selection order (capacity descending, then name), keeping those matching `keep`.
fn by_capacity(keep: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut v: Vec<usize> = (0..CLUSTERS).filter(|i| keep(*i)).collect();
    v.sort_by(|a, b| available(*b).cmp(&available(*a)).then(a.cmp(b)));
    v
}

fn all_with(clusters: impl IntoIterator<Item = usize>, replicas: i32) -> Vec<(String, i32)> {
    let mut v: Vec<(String, i32)> = clusters.into_iter().map(|i| (name(i), replicas)).collect();
    v.sort();
    v
}

/// Checks one decision against the placement computed from the cluster definitions.
fn check(b: usize, out: &ScheduleOutcome) -> Result<(), String> {
    if !out.scheduled {
        return Err(format!("not scheduled: {}", out.message));
    }
    let r = replicas_of(b);
    let uid = uid_of(b);
    let got: Vec<(String, i32)> = out
        .targets
        .iter()
        .map(|t| (t.name.clone(), t.replicas))
        .collect();
    let want = match b % 7 {
        // Duplicated over the 3 prod clusters with the most capacity.
        0 => all_with(by_capacity(|i| i % 3 == 0).into_iter().take(3), r),
        // Static weights 1:2:1.
        1 => {
            let parties: Vec<(String, i64)> =
                [(1, 1), (2, 2), (3, 1)].map(|(i, w)| (name(i), w)).into();
            webster(r, &parties, &uid)
        }
        // Dynamic weights over the aws clusters by available replicas.
        2 => {
            let parties: Vec<(String, i64)> = by_capacity(|i| i % 2 == 0)
                .into_iter()
                .map(|i| (name(i), available(i)))
                .collect();
            webster(r, &parties, &uid)
        }
        // Aggregated: the fewest clusters by capacity, then weighted by capacity.
        3 => {
            let mut sum = 0;
            let parties: Vec<(String, i64)> = by_capacity(|_| true)
                .into_iter()
                .take_while(|i| {
                    let before = sum;
                    sum += available(*i);
                    before < i64::from(r)
                })
                .map(|i| (name(i), available(i)))
                .collect();
            webster(r, &parties, &uid)
        }
        // Divided with no weights: equal weights over every cluster.
        4 => {
            let parties: Vec<(String, i64)> = (0..CLUSTERS).map(|i| (name(i), 1)).collect();
            webster(r, &parties, &uid)
        }
        // Two regions, two to four clusters, all replicas each.
        5 => {
            let regions: BTreeSet<usize> = got
                .iter()
                .map(|(n, _)| n[1..].parse::<usize>().unwrap() % 10)
                .collect();
            if regions.len() != 2 || !(2..=4).contains(&got.len()) {
                return Err(format!("{} regions in {got:?}", regions.len()));
            }
            got.iter().map(|(n, _)| (n.clone(), r)).collect()
        }
        // tier t1 without c0001.
        _ => all_with((0..CLUSTERS).filter(|i| i % 4 == 1 && *i != 1), r),
    };
    if got == want {
        return Ok(());
    }
    // Only the entries that differ, a few of each.
    let only = |a: &[(String, i32)], b: &[(String, i32)]| -> Vec<String> {
        a.iter()
            .filter(|e| !b.contains(e))
            .take(5)
            .map(|(n, r)| format!("{n}={r}"))
            .collect()
    };
    Err(format!(
        "unexpected {:?}, missing {:?}",
        only(&got, &want),
        only(&want, &got)
    ))
}

/// CPU time of this thread so far (Linux `schedstat`), to tell work from waiting for a core on
/// a busy machine; `None` elsewhere.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Decisions per CPU-second between two [`thread_cpu`] readings.
fn per_cpu_second(before: Option<Duration>, after: Option<Duration>) -> String {
    match (before, after) {
        (Some(b), Some(a)) if a > b => format!("{:.0}", BINDINGS as f64 / (a - b).as_secs_f64()),
        _ => "n/a".into(),
    }
}

fn percentile(sorted: &[Duration], p: usize) -> f64 {
    sorted[sorted.len() * p / 100].as_secs_f64() * 1e3
}

fn main() -> ExitCode {
    let cluster_json: Vec<String> = (0..CLUSTERS)
        .map(|i| serde_json::to_string(&cluster(i)).unwrap())
        .collect();
    let placement_json = placements();
    let binding_json: Vec<String> = (0..BINDINGS)
        .map(|b| binding_json(b, &placement_json[b % placement_json.len()]))
        .collect();

    // Pure: inputs parsed beforehand.
    let clusters: Vec<ClusterInfo> = (0..CLUSTERS)
        .map(|i| ClusterInfo::from_cluster_json(&cluster(i)).unwrap())
        .collect();
    let placements: Vec<Placement> = placement_json
        .iter()
        .map(|p| serde_json::from_value(p.clone()).unwrap())
        .collect();
    let inputs: Vec<ScheduleInput> = (0..BINDINGS)
        .map(|b| ScheduleInput {
            placement: placements[b % placements.len()].clone(),
            replicas: replicas_of(b),
            replica_requests: [(
                "cpu".to_owned(),
                serde_json::from_value(json!("100m")).unwrap(),
            )]
            .into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            template_uid: uid_of(b),
            ..ScheduleInput::default()
        })
        .collect();
    let mut pure_times: Vec<Duration> = Vec::with_capacity(BINDINGS);
    let mut pure_out: Vec<ScheduleOutcome> = Vec::with_capacity(BINDINGS);
    let pure_cpu = thread_cpu();
    let start = Instant::now();
    for input in &inputs {
        let t = Instant::now();
        let out = schedule(input, &clusters);
        pure_times.push(t.elapsed());
        pure_out.push(out);
    }
    let pure_total = start.elapsed();
    let pure_cpu = per_cpu_second(pure_cpu, thread_cpu());

    // Controller: clusters parsed once per pass, then per binding parse, schedule, serialize.
    let mut ctl_times: Vec<Duration> = Vec::with_capacity(BINDINGS);
    let mut ctl_targets: Vec<Vec<TargetCluster>> = Vec::with_capacity(BINDINGS);
    let mut written = 0usize;
    let ctl_cpu = thread_cpu();
    let start = Instant::now();
    let parsed: Vec<ClusterInfo> = cluster_json
        .iter()
        .map(|s| ClusterInfo::from_cluster(&serde_json::from_str::<Cluster>(s).unwrap()))
        .collect();
    let cluster_parse = start.elapsed();
    for text in &binding_json {
        let t = Instant::now();
        let rb: ResourceBinding = serde_json::from_str(text).unwrap();
        let input = ScheduleInput::from_binding(&rb.spec, rb.status.as_ref());
        let out = schedule(&input, &parsed);
        let generation = rb
            .metadata
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let bytes = controller_write(&out, generation);
        ctl_times.push(t.elapsed());
        written += bytes.len();
        ctl_targets.push(out.targets);
    }
    let ctl_total = start.elapsed();
    let ctl_cpu = per_cpu_second(ctl_cpu, thread_cpu());

    // Verification, outside the timed loops.
    let mut mismatches: Vec<String> = Vec::new();
    for (b, out) in pure_out.iter().enumerate() {
        if let Err(e) = check(b, out) {
            mismatches.push(format!("binding {b} (placement {}): {e}", b % 7));
        }
        if ctl_targets[b] != out.targets {
            mismatches.push(format!(
                "binding {b}: the controller path decided differently"
            ));
        }
    }
    let scheduled = pure_out.iter().filter(|o| o.scheduled).count();

    pure_times.sort();
    ctl_times.sort();
    println!("| measure | result |\n|---|---|");
    println!("| bindings scheduled | {scheduled} of {BINDINGS} over {CLUSTERS} clusters |");
    println!(
        "| decisions checked against the expected placement | {} of {BINDINGS}, {} mismatches |",
        pure_out.len(),
        mismatches.len()
    );
    println!(
        "| pure: decisions/s (one thread) | {:.0} |",
        BINDINGS as f64 / pure_total.as_secs_f64()
    );
    println!("| pure: decisions per CPU-second of this thread | {pure_cpu} |");
    println!(
        "| pure: p50 / p99 per decision | {:.2} ms / {:.2} ms |",
        percentile(&pure_times, 50),
        percentile(&pure_times, 99)
    );
    println!(
        "| controller: parse {CLUSTERS} Cluster JSON objects (once per pass) | {:.1} ms |",
        cluster_parse.as_secs_f64() * 1e3
    );
    println!(
        "| controller: decisions/s, one thread, cluster parse included | {:.0} |",
        BINDINGS as f64 / ctl_total.as_secs_f64()
    );
    println!("| controller: decisions per CPU-second of this thread | {ctl_cpu} |");
    println!(
        "| controller: p50 / p99 per decision (parse binding, schedule, serialize) | {:.2} ms / {:.2} ms |",
        percentile(&ctl_times, 50),
        percentile(&ctl_times, 99)
    );
    println!(
        "| controller: bytes written per decision, average | {} |",
        written / BINDINGS
    );
    if mismatches.is_empty() {
        ExitCode::SUCCESS
    } else {
        for m in mismatches.iter().take(10) {
            eprintln!("mismatch: {m}");
        }
        eprintln!("{} mismatches", mismatches.len());
        ExitCode::FAILURE
    }
}
