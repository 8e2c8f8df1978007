//! Cluster failover on the hub, as two keyed controllers over the cache:
//!
//! - **cluster taints** (keyed by cluster): keeps each cluster's `spec.taints` as its `Ready`
//!   condition and the ClusterTaintPolicies say, and records every change as an Event;
//! - **failover** (keyed by binding): evicts a binding from a cluster whose `NoExecute` taint it
//!   no longer tolerates (when the hub runs with `--enable-no-execute-taint-eviction`) or where
//!   its workload has been unhealthy longer than `failover.application` tolerates, with an
//!   eviction task that keeps the old copy, and ends each task when its new placement is
//!   healthy, its grace period is over, or its purge mode says so.
//!
//! The decisions are [`flotilla_karmada::failover`]'s; this module reads the cache, turns them
//! into writes and says when to look again.

use std::collections::BTreeMap;
use std::time::Duration;

use flotilla_karmada::failover::{self, Change, EvictionGate, Surroundings};
use flotilla_karmada::scheduler::ClusterInfo;
use flotilla_karmada::types::{Condition, ResourceBinding, Taint};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::Decision;
use super::cache::State;
use super::keys::key_name;
use super::rendering::execution_namespace;
use super::write::Write;
use crate::agents::status::HEALTHY_CONDITION;

/// Event reason of a change of a cluster's taints (Karmada's).
pub const TAINTED: &str = "TaintClusterSucceed";
/// Event reason of an eviction of a binding from a cluster (Karmada's).
pub const EVICTED: &str = "EvictWorkloadFromClusterSucceed";
/// Event reason of an eviction task that is done: the old copy is removed.
pub const TASK_DONE: &str = "GracefulEvictionTaskCompleted";
/// Event reason of an evicted cluster placed again because nothing else could be found.
pub const RESTORED: &str = "EvictedClusterRestored";
/// Event reason of an eviction that waits (the workload's state cannot be read yet, or
/// evictions are halted while most clusters are not ready).
pub const POSTPONED: &str = "EvictionPostponed";

/// `now` to whole seconds, as Kubernetes writes times.
fn seconds(now: Timestamp) -> Timestamp {
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

fn taint_list(taints: &[Taint]) -> String {
    taints
        .iter()
        .map(failover::describe)
        .collect::<Vec<_>>()
        .join(",")
}

/// The write that records the cluster's taints in its `Tainted` status condition, if it does
/// not already.
fn taint_condition(
    res: &std::sync::Arc<crate::registry::Resource>,
    object: &Value,
    taints: &[Taint],
) -> Option<Write> {
    let (status, reason, message) = failover::taint_condition(taints);
    let current = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == failover::TAINTED_CONDITION));
    if current.is_some_and(|c| {
        c["status"] == status && c["reason"] == reason && c["message"] == message.as_str()
    }) {
        return None;
    }
    let edit = move |o: &Value| {
        let mut s = o.get("status").cloned().unwrap_or_else(|| json!({}));
        crate::agents::status::set_status_condition(
            &mut s,
            failover::TAINTED_CONDITION,
            status,
            reason,
            &message,
            &crate::api::meta::now(),
        );
        s
    };
    Some(Write::EditStatus {
        res: res.clone(),
        ns: None,
        name: crate::api::meta::name(object).to_owned(),
        edit: std::sync::Arc::new(edit),
    })
}

/// The writes that bring one cluster's taints up to date (cluster key).
pub fn taints(state: &State, key: &str, now: Timestamp) -> Vec<Write> {
    let Some(entry) = state.clusters().get(key_name(key)) else {
        return vec![];
    };
    let Some(res) = state.resource_of_key(key).cloned() else {
        return vec![];
    };
    let conditions: Vec<Condition> = entry
        .object
        .pointer("/status/conditions")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    let now = seconds(now).to_string();
    let want = failover::cluster_taints(&entry.info, &conditions, &state.taint_policies(), &now);
    let recorded = taint_condition(&res, &entry.object, &want);
    if want == entry.info.taints {
        return recorded.into_iter().collect();
    }
    let mut object = (*entry.object).clone();
    if want.is_empty() {
        if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("taints");
        }
    } else {
        object["spec"]["taints"] = serde_json::to_value(&want).unwrap_or(json!([]));
    }
    let message = format!(
        "Update Cluster({}) with taints({}) succeed",
        key_name(key),
        taint_list(&want)
    );
    let mut out = vec![Write::Update {
        res: res.clone(),
        object: object.clone(),
    }];
    out.extend(recorded);
    out.push(Write::Event {
        res,
        object,
        type_: "Normal",
        reason: TAINTED,
        message,
    });
    out
}

/// Since when the workload has been unhealthy in each target cluster, from the `Healthy`
/// condition of the binding's Work there.
fn unhealthy_since(state: &State, key: &str, b: &ResourceBinding) -> BTreeMap<String, Timestamp> {
    let mut out = BTreeMap::new();
    for wkey in state.works_of(key) {
        let Some(w) = state.work(&wkey) else {
            continue;
        };
        let ns = w
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(cluster) = b
            .spec
            .clusters
            .iter()
            .find(|c| execution_namespace(&c.name) == ns)
        else {
            continue;
        };
        // A cluster that is not Ready sends no reports: what its Work says is stale.
        let ready = state
            .clusters()
            .get(cluster.name.as_str())
            .is_some_and(|c| c.info.readiness == flotilla_karmada::scheduler::Readiness::Ready);
        if !ready {
            continue;
        }
        let since = w
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c["type"] == HEALTHY_CONDITION && c["status"] == "False")
            .and_then(|c| c["lastTransitionTime"].as_str())
            .and_then(|t| t.parse::<Timestamp>().ok());
        if let Some(since) = since {
            out.insert(cluster.name.clone(), since);
        }
    }
    out
}

/// Evictions and eviction tasks of one binding (binding key).
pub fn bindings(state: &State, key: &str, now: Timestamp) -> Decision {
    let Some(b) = state.binding(key) else {
        return Decision::default();
    };
    if b.pointer("/metadata/deletionTimestamp").is_some() {
        return Decision::default();
    }
    let tasks = b
        .pointer("/spec/gracefulEvictionTasks")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    let application = b.pointer("/spec/failover/application").is_some();
    if !tasks && !application && !state.failover.no_execute_eviction {
        return Decision::default();
    }
    let Some(res) = state.binding_resource(key) else {
        return Decision::default();
    };
    let typed = match serde_json::from_value::<ResourceBinding>(b.clone()) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(binding = key, error = %e, "binding cannot be read; no failover for it");
            return Decision::default();
        }
    };
    let generation = b
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let names = typed.spec.clusters.iter().map(|c| c.name.as_str()).chain(
        typed
            .spec
            .graceful_eviction_tasks
            .iter()
            .map(|t| t.from_cluster.as_str()),
    );
    let clusters: BTreeMap<&str, &ClusterInfo> = names
        .filter_map(|n| {
            state
                .clusters()
                .get_key_value(n)
                .map(|(n, e)| (n.as_str(), e.info.as_ref()))
        })
        .collect();
    let unhealthy_since = if application {
        unhealthy_since(state, key, &typed)
    } else {
        BTreeMap::new()
    };
    let unhealthy: BTreeMap<&str, Timestamp> = unhealthy_since
        .iter()
        .map(|(c, t)| (c.as_str(), *t))
        .collect();
    let now = seconds(now);
    let decide = |gate: &EvictionGate| {
        failover::decide(
            &typed.spec,
            typed.status.as_ref(),
            generation,
            Surroundings {
                clusters: &clusters,
                unhealthy_since: &unhealthy,
                taint_evictions: gate,
            },
            &state.failover,
            now,
        )
    };
    let mut d = decide(&EvictionGate::Open);
    if d.taint_evictions > 0 {
        // Taint evictions are limited: none while most of the fleet is not ready, and at
        // most the configured rate.
        let halted = failover::mass_failure(
            state.clusters().values().map(|e| e.info.as_ref()),
            state.failover.eviction_halt_percent,
        );
        if let Some(why) = halted {
            d = decide(&EvictionGate::Halted(why));
        } else if let Err(at) = state.failover.eviction_limiter.take(now, d.taint_evictions) {
            d = decide(&EvictionGate::Wait(at));
        }
    }
    let mut out = Decision {
        after: d.recheck_at.map(|at| {
            let wait = at.duration_since(now).as_secs().max(0);
            // A second late, so the deadline has passed when the key is looked at.
            Duration::from_secs(u64::try_from(wait).unwrap_or(0).saturating_add(1))
        }),
        ..Decision::default()
    };
    let Some(spec) = d.spec else {
        out.writes.extend(events(&res, &b, d.changes, key));
        return out;
    };
    let mut object = b.clone();
    object["spec"]["clusters"] = serde_json::to_value(&spec.clusters).unwrap_or(json!([]));
    if spec.graceful_eviction_tasks.is_empty() {
        if let Some(s) = object.get_mut("spec").and_then(Value::as_object_mut) {
            s.remove("gracefulEvictionTasks");
        }
    } else {
        object["spec"]["gracefulEvictionTasks"] =
            serde_json::to_value(&spec.graceful_eviction_tasks).unwrap_or(json!([]));
    }
    out.writes.push(Write::Update {
        res: res.clone(),
        object: object.clone(),
    });
    out.writes.extend(events(&res, &object, d.changes, key));
    out
}

/// The Events (and log lines) of a binding's failover changes.
fn events(
    res: &std::sync::Arc<crate::registry::Resource>,
    object: &Value,
    changes: Vec<Change>,
    key: &str,
) -> Vec<Write> {
    let mut out = Vec::new();
    for change in changes {
        let (type_, reason, message) = match change {
            Change::Evicted { cluster, message } => {
                tracing::info!(binding = key, cluster, %message, "evicted from cluster");
                (
                    "Normal",
                    EVICTED,
                    format!("Evicted from cluster {cluster}: {message}"),
                )
            }
            Change::Restored { cluster } => {
                tracing::info!(
                    binding = key,
                    cluster,
                    "cluster recovered; placed there again"
                );
                (
                    "Normal",
                    RESTORED,
                    format!(
                        "Cluster {cluster} recovered before the workload could be placed elsewhere; it is a target again"
                    ),
                )
            }
            Change::Completed { cluster, message } => {
                tracing::info!(binding = key, cluster, %message, "eviction task done");
                (
                    "Normal",
                    TASK_DONE,
                    format!("The copy in cluster {cluster} is removed: {message}"),
                )
            }
            Change::Postponed { cluster, message } => {
                tracing::info!(binding = key, cluster, %message, "eviction postponed");
                (
                    "Warning",
                    POSTPONED,
                    format!("Not yet evicted from cluster {cluster}: {message}"),
                )
            }
        };
        out.push(Write::Event {
            res: res.clone(),
            object: object.clone(),
            type_,
            reason,
            message,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::super::cache::tests::{put, state};
    use super::*;

    const C: &str = "/cluster.karmada.io/clusters/m1";
    const B: &str = "/work.karmada.io/resourcebindings/demo/web-deployment";

    fn now() -> Timestamp {
        "2026-11-30T12:00:00.250Z".parse().unwrap()
    }

    fn cluster(ready: &str, taints: Value) -> Value {
        json!({"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "m1", "resourceVersion": "3"},
            "spec": {"syncMode": "Pull", "taints": taints},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}})
    }

    #[test]
    fn a_cluster_gets_its_readiness_taint_and_an_event() {
        let mut s = state();
        put(&mut s, C, cluster("Unknown", json!([])));
        let w = taints(&s, C, now());
        assert_eq!(w.len(), 3, "{w:?}");
        let Write::Update { object, .. } = &w[0] else {
            panic!("{w:?}")
        };
        assert_eq!(
            object["spec"]["taints"],
            json!([{"key": "cluster.karmada.io/unreachable", "effect": "NoSchedule",
                "timeAdded": "2026-11-30T12:00:00Z"}])
        );
        // The status records them too.
        let Write::EditStatus { edit, .. } = &w[1] else {
            panic!("{w:?}")
        };
        let mut object = object.clone();
        object["status"] = edit(&object);
        let tainted = object["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Tainted")
            .unwrap();
        assert_eq!(tainted["status"], "True");
        assert_eq!(tainted["reason"], "NoSchedule");
        assert_eq!(
            tainted["message"],
            "cluster.karmada.io/unreachable:NoSchedule (since 2026-11-30T12:00:00Z)"
        );
        assert!(matches!(&w[2], Write::Event { reason, message, .. }
            if *reason == TAINTED && message.contains("cluster.karmada.io/unreachable:NoSchedule")));
        // Once written, nothing more to do.
        put(&mut s, C, object);
        assert!(taints(&s, C, now()).is_empty());
    }

    #[test]
    fn a_policy_taint_is_added_and_removed() {
        let mut s = state();
        put(
            &mut s,
            "/policy.karmada.io/clustertaintpolicies/p",
            json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "ClusterTaintPolicy",
                "metadata": {"name": "p"},
                "spec": {"addOnConditions": [{"conditionType": "Ready", "operator": "In", "statusValues": ["False"]}],
                    "removeOnConditions": [{"conditionType": "Ready", "operator": "In", "statusValues": ["True"]}],
                    "taints": [{"key": "failed", "effect": "NoExecute"}]}}),
        );
        put(&mut s, C, cluster("False", json!([])));
        let w = taints(&s, C, now());
        let Write::Update { object, .. } = &w[0] else {
            panic!("{w:?}")
        };
        let keys: Vec<&str> = object["spec"]["taints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["cluster.karmada.io/not-ready", "failed"]);
        let mut back = object.clone();
        back["status"]["conditions"][0]["status"] = json!("True");
        put(&mut s, C, back);
        let w = taints(&s, C, now());
        let Write::Update { object, .. } = &w[0] else {
            panic!("{w:?}")
        };
        assert!(object["spec"].get("taints").is_none(), "{object}");
    }

    #[test]
    fn bindings_are_left_alone_unless_failover_is_on_or_a_task_exists() {
        let mut s = state();
        put(
            &mut s,
            C,
            cluster(
                "False",
                json!([{"key": "failed", "effect": "NoExecute", "timeAdded": "2026-11-30T11:00:00Z"}]),
            ),
        );
        let binding = json!({"apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
            "metadata": {"name": "web-deployment", "namespace": "demo", "generation": 1, "resourceVersion": "5"},
            "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web"},
                "replicas": 2, "placement": {}, "clusters": [{"name": "m1", "replicas": 2}]}});
        put(&mut s, B, binding);
        assert!(bindings(&s, B, now()).writes.is_empty());
        s.failover.no_execute_eviction = true;
        let d = bindings(&s, B, now());
        let Write::Update { object, .. } = &d.writes[0] else {
            panic!("{:?}", d.writes)
        };
        assert_eq!(object["spec"]["clusters"], json!([]));
        assert_eq!(
            object["spec"]["gracefulEvictionTasks"][0]["fromCluster"],
            "m1"
        );
        assert!(matches!(&d.writes[1], Write::Event { reason, .. } if *reason == EVICTED));
    }
}
