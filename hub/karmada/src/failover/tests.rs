#![allow(clippy::unwrap_used)]
use serde_json::{Value, json};

use super::*;
use crate::types::ClusterTaintPolicy;

const NOW: &str = "2026-11-30T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn info(name: &str, taints: Value) -> ClusterInfo {
    ClusterInfo::from_cluster_json(
        &json!({"metadata": {"name": name, "labels": {"tier": "edge"}},
        "spec": {"taints": taints}}),
    )
    .unwrap()
}

fn conditions(ready: &str) -> Vec<Condition> {
    serde_json::from_value(json!([{"type": "Ready", "status": ready}])).unwrap()
}

fn policy(v: Value) -> ClusterTaintPolicy {
    serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": v})).unwrap()
}

fn keys(taints: &[Taint]) -> Vec<String> {
    taints.iter().map(describe).collect()
}

#[test]
fn readiness_taints_follow_the_ready_condition() {
    let c = info("m1", json!([]));
    assert_eq!(
        keys(&cluster_taints(&c, &conditions("False"), &[], NOW)),
        ["cluster.karmada.io/not-ready:NoSchedule"]
    );
    let down = info(
        "m1",
        json!([{"key": "cluster.karmada.io/not-ready", "effect": "NoSchedule"}]),
    );
    assert_eq!(
        keys(&cluster_taints(&down, &conditions("Unknown"), &[], NOW)),
        ["cluster.karmada.io/unreachable:NoSchedule"]
    );
    assert!(cluster_taints(&down, &conditions("True"), &[], NOW).is_empty());
    // A user's taint is left alone.
    let user = info(
        "m1",
        json!([{"key": "maintenance", "effect": "NoSchedule"}]),
    );
    assert_eq!(
        keys(&cluster_taints(&user, &conditions("True"), &[], NOW)),
        ["maintenance:NoSchedule"]
    );
}

#[test]
fn taint_policies_add_and_remove_on_conditions() {
    let p = policy(json!({
        "targetClusters": {"labelSelector": {"matchLabels": {"tier": "edge"}}},
        "addOnConditions": [{"conditionType": "Ready", "operator": "In", "statusValues": ["False", "Unknown"]}],
        "removeOnConditions": [{"conditionType": "Ready", "operator": "In", "statusValues": ["True"]}],
        "taints": [{"key": "cluster.karmada.io/not-ready", "effect": "NoExecute"}]}));
    let c = info("m1", json!([]));
    let tainted = cluster_taints(&c, &conditions("Unknown"), &[&p], NOW);
    assert_eq!(
        keys(&tainted),
        [
            "cluster.karmada.io/unreachable:NoSchedule",
            "cluster.karmada.io/not-ready:NoExecute"
        ]
    );
    assert_eq!(tainted[1].time_added.as_deref(), Some(NOW));
    // Kept (with its time) while neither list matches, removed on Ready=True.
    let c = info("m1", serde_json::to_value(&tainted).unwrap());
    let later = cluster_taints(&c, &conditions("Unknown"), &[&p], "2026-11-30T12:05:00Z");
    assert_eq!(later, tainted);
    assert!(cluster_taints(&c, &conditions("True"), &[&p], NOW).is_empty());
    // Another cluster is not targeted.
    let other = ClusterInfo::from_cluster_json(&json!({"metadata": {"name": "m2"}})).unwrap();
    assert_eq!(
        keys(&cluster_taints(&other, &conditions("False"), &[&p], NOW)),
        ["cluster.karmada.io/not-ready:NoSchedule"]
    );
}

#[test]
fn match_conditions_as_karmada_reads_them() {
    let rule = |op: &str, values: Value| -> Vec<MatchCondition> {
        serde_json::from_value(
            json!([{"conditionType": "Ready", "operator": op, "statusValues": values}]),
        )
        .unwrap()
    };
    assert!(conditions_match(
        &conditions("False"),
        &rule("In", json!(["False"]))
    ));
    assert!(!conditions_match(
        &conditions("True"),
        &rule("In", json!(["False"]))
    ));
    assert!(conditions_match(
        &conditions("True"),
        &rule("NotIn", json!(["False"]))
    ));
    assert!(!conditions_match(&conditions("True"), &[]));
    // A condition the cluster does not have never matches.
    assert!(!conditions_match(&[], &rule("NotIn", json!(["False"]))));
    assert!(!conditions_match(
        &conditions("True"),
        &rule("Maybe", json!(["True"]))
    ));
}

fn tolerations(v: Value) -> Vec<Toleration> {
    serde_json::from_value(v).unwrap()
}

fn taints(v: Value) -> Vec<Taint> {
    serde_json::from_value(v).unwrap()
}

#[test]
fn no_execute_taints_and_tolerations() {
    let t =
        taints(json!([{"key": "k", "effect": "NoExecute", "timeAdded": "2026-11-30T11:59:55Z"}]));
    assert!(matches!(no_execute(&t, &[], now()), NoExecute::Evict(_)));
    let ten = tolerations(
        json!([{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}]),
    );
    assert_eq!(
        no_execute(&t, &ten, now()),
        NoExecute::Until("2026-11-30T12:00:05Z".parse().unwrap())
    );
    let three = tolerations(json!([{"key": "k", "operator": "Exists", "tolerationSeconds": 3}]));
    assert!(matches!(no_execute(&t, &three, now()), NoExecute::Evict(_)));
    let forever = tolerations(json!([{"operator": "Exists"}]));
    assert_eq!(no_execute(&t, &forever, now()), NoExecute::Stay);
    // NoSchedule taints never evict.
    let ns = taints(json!([{"key": "k", "effect": "NoSchedule"}]));
    assert_eq!(no_execute(&ns, &[], now()), NoExecute::Stay);
}

fn spec(v: Value) -> ResourceBindingSpec {
    serde_json::from_value(v).unwrap()
}

fn status(v: Value) -> ResourceBindingStatus {
    serde_json::from_value(v).unwrap()
}

fn binding() -> ResourceBindingSpec {
    spec(json!({
        "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web"},
        "replicas": 6,
        "placement": {"clusterTolerations": [{"key": "cluster.karmada.io/not-ready", "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 10}]},
        "clusters": [{"name": "a", "replicas": 2}, {"name": "b", "replicas": 2}, {"name": "c", "replicas": 2}]}))
}

/// Taint evictions allowed.
const OPEN: EvictionGate = EvictionGate::Open;

fn open<'a>(
    clusters: &'a BTreeMap<&'a str, &'a ClusterInfo>,
    unhealthy_since: &'a BTreeMap<&'a str, Timestamp>,
) -> Surroundings<'a> {
    Surroundings {
        clusters,
        unhealthy_since,
        taint_evictions: &OPEN,
    }
}

fn enabled() -> FailoverConfig {
    FailoverConfig {
        no_execute_eviction: true,
        ..FailoverConfig::default()
    }
}

#[test]
fn a_tainted_cluster_is_left_after_the_toleration_with_a_graceful_task() {
    let a = info(
        "a",
        json!([{"key": "cluster.karmada.io/not-ready", "effect": "NoExecute", "timeAdded": "2026-11-30T11:59:55Z"}]),
    );
    let b = info("b", json!([]));
    let c = info("c", json!([]));
    let clusters = BTreeMap::from([("a", &a), ("b", &b), ("c", &c)]);
    // Within the toleration: nothing changes, look again when it runs out.
    let d = decide(
        &binding(),
        None,
        1,
        open(&clusters, &BTreeMap::new()),
        &enabled(),
        now(),
    );
    assert_eq!(d.spec, None);
    assert_eq!(d.recheck_at, Some("2026-11-30T12:00:05Z".parse().unwrap()));
    // Off unless enabled.
    let later: Timestamp = "2026-11-30T12:00:06Z".parse().unwrap();
    let d = decide(
        &binding(),
        None,
        1,
        open(&clusters, &BTreeMap::new()),
        &FailoverConfig::default(),
        later,
    );
    assert_eq!(d, Decision::default());
    // After it: a leaves the targets and a task keeps its copy.
    let d = decide(
        &binding(),
        None,
        1,
        open(&clusters, &BTreeMap::new()),
        &enabled(),
        later,
    );
    let next = d.spec.unwrap();
    let names: Vec<&str> = next.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["b", "c"]);
    let task = &next.graceful_eviction_tasks[0];
    assert_eq!(task.from_cluster, "a");
    assert_eq!(task.purge_mode, "Gracefully");
    assert_eq!(task.replicas, Some(2));
    assert_eq!(task.reason, TAINT_UNTOLERATED);
    assert_eq!(task.producer, TAINT_MANAGER);
    assert_eq!(task.clusters_before_failover, ["a", "b", "c"]);
    assert_eq!(
        task.creation_timestamp.as_deref(),
        Some("2026-11-30T12:00:06Z")
    );
    assert!(matches!(&d.changes[..], [Change::Evicted { cluster, .. }] if cluster == "a"));
    // The policy's purge mode wins over the hub's.
    let mut directly = binding();
    directly.failover =
        serde_json::from_value(json!({"cluster": {"purgeMode": "Immediately"}})).unwrap();
    let d = decide(
        &directly,
        None,
        1,
        open(&clusters, &BTreeMap::new()),
        &enabled(),
        later,
    );
    assert_eq!(
        d.spec.unwrap().graceful_eviction_tasks[0].purge_mode,
        "Directly"
    );
}

fn evicted(purge: &str) -> ResourceBindingSpec {
    let mut s = binding();
    s.clusters =
        serde_json::from_value(json!([{"name": "b", "replicas": 3}, {"name": "c", "replicas": 3}]))
            .unwrap();
    s.graceful_eviction_tasks =
        serde_json::from_value(json!([{"fromCluster": "a", "purgeMode": purge,
        "replicas": 2, "reason": "TaintUntolerated", "producer": "TaintManager",
        "creationTimestamp": "2026-11-30T11:55:00Z"}]))
        .unwrap();
    s
}

fn scheduled(health: &str) -> ResourceBindingStatus {
    status(json!({"schedulerObservedGeneration": 2,
        "conditions": [{"type": "Scheduled", "status": "True"}],
        "aggregatedStatus": [
            {"clusterName": "b", "applied": true, "health": "Healthy"},
            {"clusterName": "c", "applied": true, "health": health}]}))
}

#[test]
fn a_graceful_task_ends_when_the_new_placement_is_healthy() {
    let cfg = FailoverConfig::default();
    let s = evicted("Gracefully");
    let task = &s.graceful_eviction_tasks[0];
    let st = scheduled("Unhealthy");
    assert_eq!(
        assess_task(task, &s, Some(&st), 2, &cfg, now()),
        TaskState::Waiting(
            Some("2026-11-30T12:05:00Z".parse().unwrap()),
            "waiting for the new placement to be healthy, at most until 2026-11-30T12:05:00Z"
                .into()
        )
    );
    let st = scheduled("Healthy");
    assert!(matches!(
        assess_task(task, &s, Some(&st), 2, &cfg, now()),
        TaskState::Done(_)
    ));
    // Healthy with the replicas it had before its share grew is a report of the old state.
    let mut old = scheduled("Healthy");
    old.aggregated_status[1].status = Some(json!({"replicas": 2, "readyReplicas": 2}));
    assert!(matches!(
        assess_task(task, &s, Some(&old), 2, &cfg, now()),
        TaskState::Waiting(..)
    ));
    old.aggregated_status[1].status = Some(json!({"replicas": 3, "readyReplicas": 3}));
    assert!(matches!(
        assess_task(task, &s, Some(&old), 2, &cfg, now()),
        TaskState::Done(_)
    ));
    // Healthy for an older generation does not count.
    assert!(matches!(
        assess_task(task, &s, Some(&st), 3, &cfg, now()),
        TaskState::Waiting(..)
    ));
    // The grace period runs out.
    let late: Timestamp = "2026-11-30T12:05:00Z".parse().unwrap();
    let st = scheduled("Unhealthy");
    assert!(matches!(
        assess_task(task, &s, Some(&st), 2, &cfg, late),
        TaskState::Done(_)
    ));
}

#[test]
fn no_grace_period_runs_out_while_nothing_new_is_scheduled() {
    let cfg = FailoverConfig::default();
    let s = evicted("Gracefully");
    let task = &s.graceful_eviction_tasks[0];
    let failed = status(json!({"schedulerObservedGeneration": 2,
        "conditions": [{"type": "Scheduled", "status": "False", "reason": "NoClusterFit"}]}));
    let much_later: Timestamp = "2026-12-30T00:00:00Z".parse().unwrap();
    assert_eq!(
        assess_task(task, &s, Some(&failed), 2, &cfg, much_later),
        TaskState::Waiting(
            None,
            "no new placement is scheduled yet; the old copy stays".into()
        )
    );
    let mut empty = s.clone();
    empty.clusters.clear();
    assert!(matches!(
        assess_task(
            task,
            &empty,
            Some(&scheduled("Healthy")),
            2,
            &cfg,
            much_later
        ),
        TaskState::Waiting(None, _)
    ));
}

#[test]
fn purge_modes() {
    let cfg = FailoverConfig::default();
    let st = scheduled("Unhealthy");
    let s = evicted("Immediately");
    assert!(matches!(
        assess_task(&s.graceful_eviction_tasks[0], &s, Some(&st), 2, &cfg, now()),
        TaskState::Done(_)
    ));
    let mut s = evicted("Never");
    s.graceful_eviction_tasks[0].suppress_deletion = Some(true);
    let late: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
    assert!(matches!(
        assess_task(
            &s.graceful_eviction_tasks[0],
            &s,
            Some(&scheduled("Healthy")),
            2,
            &cfg,
            late
        ),
        TaskState::Waiting(None, _)
    ));
    s.graceful_eviction_tasks[0].suppress_deletion = Some(false);
    assert!(matches!(
        assess_task(&s.graceful_eviction_tasks[0], &s, Some(&st), 2, &cfg, now()),
        TaskState::Done(_)
    ));
    // Back in the targets: the task is void.
    let mut back = evicted("Gracefully");
    back.clusters
        .push(serde_json::from_value(json!({"name": "a", "replicas": 1})).unwrap());
    assert!(matches!(
        assess_task(
            &back.graceful_eviction_tasks[0],
            &back,
            None,
            2,
            &cfg,
            now()
        ),
        TaskState::Done(_)
    ));
}

#[test]
fn decide_drops_done_tasks_and_keeps_waiting_ones() {
    let clusters = BTreeMap::new();
    let s = evicted("Gracefully");
    let d = decide(
        &s,
        Some(&scheduled("Healthy")),
        2,
        open(&clusters, &BTreeMap::new()),
        &FailoverConfig::default(),
        now(),
    );
    assert!(d.spec.unwrap().graceful_eviction_tasks.is_empty());
    assert!(matches!(&d.changes[..], [Change::Completed { cluster, .. }] if cluster == "a"));
    let d = decide(
        &s,
        Some(&scheduled("Unhealthy")),
        2,
        open(&clusters, &BTreeMap::new()),
        &FailoverConfig::default(),
        now(),
    );
    assert_eq!(d.spec, None);
    assert_eq!(d.recheck_at, Some("2026-11-30T12:05:00Z".parse().unwrap()));
}

#[test]
fn a_recovered_cluster_is_restored_when_nothing_else_was_found() {
    let mut s = binding();
    s.clusters.clear();
    s.graceful_eviction_tasks =
        serde_json::from_value(json!([{"fromCluster": "a", "purgeMode": "Gracefully",
        "replicas": 2, "reason": "TaintUntolerated", "producer": "TaintManager",
        "creationTimestamp": "2026-11-30T11:55:00Z"}]))
        .unwrap();
    let failed = status(json!({"schedulerObservedGeneration": 2,
        "conditions": [{"type": "Scheduled", "status": "False"}]}));
    let tainted = info(
        "a",
        json!([{"key": "cluster.karmada.io/not-ready", "effect": "NoExecute", "timeAdded": "2026-11-30T11:50:00Z"}]),
    );
    let clusters = BTreeMap::from([("a", &tainted)]);
    let d = decide(
        &s,
        Some(&failed),
        2,
        open(&clusters, &BTreeMap::new()),
        &enabled(),
        now(),
    );
    assert_eq!(d.spec, None, "still tainted: the task waits");
    let healthy = info("a", json!([]));
    let clusters = BTreeMap::from([("a", &healthy)]);
    let d = decide(
        &s,
        Some(&failed),
        2,
        open(&clusters, &BTreeMap::new()),
        &enabled(),
        now(),
    );
    let next = d.spec.unwrap();
    assert_eq!(next.clusters[0].name, "a");
    assert_eq!(next.clusters[0].replicas, 2);
    assert!(next.graceful_eviction_tasks.is_empty());
    assert_eq!(
        d.changes,
        [Change::Restored {
            cluster: "a".into()
        }]
    );
    // Once placed elsewhere, a recovery changes nothing: the task runs its course.
    let placed = evicted("Gracefully");
    let d = decide(
        &placed,
        Some(&scheduled("Unhealthy")),
        2,
        open(&clusters, &BTreeMap::new()),
        &enabled(),
        now(),
    );
    assert_eq!(d.spec, None);
}

#[test]
fn an_app_unhealthy_longer_than_tolerated_leaves_the_cluster() {
    let mut s = binding();
    s.failover = serde_json::from_value(json!({"application": {
        "decisionConditions": {"tolerationSeconds": 30}, "purgeMode": "Gracefully", "gracePeriodSeconds": 120}}))
    .unwrap();
    let clusters = BTreeMap::new();
    let since: Timestamp = "2026-11-30T11:59:45Z".parse().unwrap();
    let unhealthy = BTreeMap::from([("b", since)]);
    // Unhealthy for 15 s of the 30 tolerated: look again when they are up. Works even with
    // cluster eviction off: application failover is the policy's to enable.
    let cfg = FailoverConfig::default();
    let d = decide(&s, None, 1, open(&clusters, &unhealthy), &cfg, now());
    assert_eq!(d.spec, None);
    assert_eq!(d.recheck_at, Some("2026-11-30T12:00:15Z".parse().unwrap()));
    let later: Timestamp = "2026-11-30T12:00:15Z".parse().unwrap();
    let d = decide(&s, None, 1, open(&clusters, &unhealthy), &cfg, later);
    let next = d.spec.unwrap();
    let names: Vec<&str> = next.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    let task = &next.graceful_eviction_tasks[0];
    assert_eq!(task.from_cluster, "b");
    assert_eq!(task.reason, APPLICATION_FAILURE);
    assert_eq!(task.producer, APPLICATION_FAILOVER);
    assert_eq!(task.grace_period_seconds, Some(120));
    // Without failover.application, unhealthy clusters stay.
    let d = decide(
        &binding(),
        None,
        1,
        open(&clusters, &unhealthy),
        &cfg,
        later,
    );
    assert_eq!(d, Decision::default());
}

#[test]
fn no_taint_eviction_while_the_hub_is_starting() {
    let a = info(
        "a",
        json!([{"key": "cluster.karmada.io/not-ready", "effect": "NoExecute", "timeAdded": "2026-11-30T11:00:00Z"}]),
    );
    let clusters = BTreeMap::from([("a", &a)]);
    let starting = FailoverConfig {
        evictions_from: Some("2026-11-30T12:01:00Z".parse().unwrap()),
        ..enabled()
    };
    let d = decide(
        &binding(),
        None,
        1,
        open(&clusters, &BTreeMap::new()),
        &starting,
        now(),
    );
    assert_eq!(d.spec, None);
    assert_eq!(d.recheck_at, Some("2026-11-30T12:01:00Z".parse().unwrap()));
    let later: Timestamp = "2026-11-30T12:01:00Z".parse().unwrap();
    let d = decide(
        &binding(),
        None,
        1,
        open(&clusters, &BTreeMap::new()),
        &starting,
        later,
    );
    assert!(d.spec.is_some());
}

#[test]
fn state_preservation_carries_the_left_clusters_status_or_waits_for_it() {
    let mut s = binding();
    s.failover = serde_json::from_value(json!({"application": {
        "decisionConditions": {"tolerationSeconds": 0}, "purgeMode": "Never",
        "statePreservation": {"rules": [{"aliasLabelName": "example.com/replicas-before", "jsonPath": "{.replicas}"}]}}}))
    .unwrap();
    let clusters = BTreeMap::new();
    let unhealthy = BTreeMap::from([("b", now())]);
    let cfg = FailoverConfig::default();
    // No status from b yet: the eviction waits, says why, and looks again.
    let d = decide(&s, None, 1, open(&clusters, &unhealthy), &cfg, now());
    assert_eq!(d.spec, None);
    assert!(
        matches!(&d.changes[..], [Change::Postponed { cluster, message }]
            if cluster == "b" && message.contains("no status of the workload")),
        "{:?}",
        d.changes
    );
    assert_eq!(d.recheck_at, Some("2026-11-30T12:00:15Z".parse().unwrap()));
    // With b's status: the task carries the value.
    let status: ResourceBindingStatus = serde_json::from_value(json!({"aggregatedStatus": [
        {"clusterName": "b", "applied": true, "health": "Unhealthy", "status": {"replicas": 2}}]}))
    .unwrap();
    let d = decide(
        &s,
        Some(&status),
        1,
        open(&clusters, &unhealthy),
        &cfg,
        now(),
    );
    let task = &d.spec.unwrap().graceful_eviction_tasks[0];
    assert_eq!(
        task.preserved_label_state,
        BTreeMap::from([("example.com/replicas-before".into(), "2".into())])
    );
    assert_eq!(task.suppress_deletion, Some(true));
}

#[test]
fn taint_evictions_wait_for_the_rate_and_stop_while_halted() {
    let a = info(
        "a",
        json!([{"key": "cluster.karmada.io/not-ready", "effect": "NoExecute", "timeAdded": "2026-11-30T11:00:00Z"}]),
    );
    let clusters = BTreeMap::from([("a", &a)]);
    let open_gate = decide(
        &binding(),
        None,
        1,
        open(&clusters, &BTreeMap::new()),
        &enabled(),
        now(),
    );
    assert_eq!(open_gate.taint_evictions, 1);
    let at: Timestamp = "2026-11-30T12:00:02Z".parse().unwrap();
    let none = BTreeMap::new();
    let around = |gate| Surroundings {
        clusters: &clusters,
        unhealthy_since: &none,
        taint_evictions: gate,
    };
    let wait = EvictionGate::Wait(at);
    let d = decide(&binding(), None, 1, around(&wait), &enabled(), now());
    assert_eq!((d.spec, d.taint_evictions), (None, 0));
    assert!(d.changes.is_empty());
    assert_eq!(d.recheck_at, Some(at));
    let halted = EvictionGate::Halted("2 of 3 clusters are not ready".into());
    let d = decide(&binding(), None, 1, around(&halted), &enabled(), now());
    assert_eq!(d.spec, None);
    assert!(
        matches!(&d.changes[..], [Change::Postponed { message, .. }] if message.contains("halted: 2 of 3")),
        "{:?}",
        d.changes
    );
    assert_eq!(d.recheck_at, Some("2026-11-30T12:00:15Z".parse().unwrap()));
}
