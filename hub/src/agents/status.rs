//! Pure conversions from agent reports to Karmada status objects.

use flotilla_proto::v1::{Health, Heartbeat, WorkStatus};
use serde_json::{Map, Value, json};

/// Sets condition `type_` in `conditions`, keeping `lastTransitionTime` when the status
/// does not change.
pub fn set_condition(
    conditions: &mut Vec<Value>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    now: &str,
) {
    let prev = conditions.iter().position(|c| c["type"] == type_);
    let transition = match prev.map(|i| &conditions[i]) {
        Some(c) if c["status"] == status => {
            c["lastTransitionTime"].as_str().unwrap_or(now).to_owned()
        }
        _ => now.to_owned(),
    };
    let mut c = json!({
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    });
    if let Some(g) = observed_generation {
        c["observedGeneration"] = json!(g);
    }
    match prev {
        Some(i) => conditions[i] = c,
        None => conditions.push(c),
    }
}

/// The Work condition that says whether its manifests are healthy, and since when.
pub const HEALTHY_CONDITION: &str = "Healthy";

fn health_name(h: i32) -> &'static str {
    match Health::try_from(h).unwrap_or(Health::Unknown) {
        Health::Healthy => "Healthy",
        Health::Unhealthy => "Unhealthy",
        Health::Unknown | Health::Unspecified => "Unknown",
    }
}

/// The Work `.status` for an agent's report, given the previous status.
pub fn work_status(prev: Option<&Value>, report: &WorkStatus, now: &str) -> Value {
    let mut conditions: Vec<Value> = prev
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (status, reason, message) = if report.applied {
        (
            "True",
            "AppliedSuccessful",
            "Manifest has been successfully applied",
        )
    } else {
        ("False", "AppliedFailed", report.message.as_str())
    };
    set_condition(
        &mut conditions,
        "Applied",
        status,
        reason,
        message,
        Some(report.observed_generation),
        now,
    );
    // When the workload turned unhealthy is what application failover counts from.
    let healths: Vec<&str> = report
        .manifests
        .iter()
        .map(|m| health_name(m.health))
        .collect();
    let (health, reason, message) = if !report.applied {
        ("Unknown", "NotApplied", "the Work is not applied")
    } else if healths.contains(&"Unhealthy") {
        ("False", "WorkloadUnhealthy", "a manifest reports Unhealthy")
    } else if !healths.is_empty() && healths.iter().all(|h| *h == "Healthy") {
        ("True", "WorkloadHealthy", "every manifest reports Healthy")
    } else {
        (
            "Unknown",
            "HealthUnknown",
            "no manifest health reported yet",
        )
    };
    set_condition(
        &mut conditions,
        HEALTHY_CONDITION,
        health,
        reason,
        message,
        Some(report.observed_generation),
        now,
    );
    let manifests: Vec<Value> = report
        .manifests
        .iter()
        .map(|m| {
            let id = m.identifier.clone().unwrap_or_default();
            let mut out = json!({
                "identifier": {
                    "ordinal": id.ordinal,
                    "group": id.group,
                    "version": id.version,
                    "kind": id.kind,
                    "resource": id.resource,
                    "namespace": id.namespace,
                    "name": id.name,
                },
                "health": health_name(m.health),
            });
            if let Ok(v) = serde_json::from_slice::<Value>(&m.status_json)
                && !v.is_null()
            {
                out["status"] = v;
            }
            out
        })
        .collect();
    let mut s = json!({"conditions": conditions});
    if !manifests.is_empty() {
        s["manifestStatuses"] = Value::Array(manifests);
    }
    s
}

fn quantities(m: &std::collections::HashMap<String, String>) -> Value {
    let sorted: std::collections::BTreeMap<_, _> = m.iter().collect();
    Value::Object(
        sorted
            .into_iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<Map<_, _>>(),
    )
}

/// The Cluster `.status` for a heartbeat, given the previous status.
pub fn cluster_status(prev: Option<&Value>, hb: &Heartbeat, now: &str) -> Value {
    let mut s = prev
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let mut conditions: Vec<Value> = s
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if hb.api_reachable {
        set_condition(
            &mut conditions,
            "Ready",
            "True",
            "ClusterReady",
            "cluster is healthy and ready to accept workloads",
            None,
            now,
        );
    } else {
        let msg = if hb.message.is_empty() {
            "cluster is not reachable"
        } else {
            hb.message.as_str()
        };
        set_condition(
            &mut conditions,
            "Ready",
            "False",
            "ClusterNotReachable",
            msg,
            None,
            now,
        );
    }
    if hb.api_enablements_included {
        let mut en: Vec<Value> = hb
            .api_enablements
            .iter()
            .map(|e| {
                let mut rs: Vec<_> = e.resources.iter().map(|r| (r.name.clone(), r.kind.clone())).collect();
                rs.sort();
                json!({
                    "groupVersion": e.group_version,
                    "resources": rs.into_iter().map(|(n, k)| json!({"name": n, "kind": k})).collect::<Vec<_>>(),
                })
            })
            .collect();
        en.sort_by(|a, b| a["groupVersion"].as_str().cmp(&b["groupVersion"].as_str()));
        let complete = !en.is_empty();
        s["apiEnablements"] = Value::Array(en);
        let (st, reason, msg) = if complete {
            ("True", "Complete", "collected complete API resources")
        } else {
            ("False", "Empty", "collected no API resources")
        };
        set_condition(
            &mut conditions,
            "CompleteAPIEnablements",
            st,
            reason,
            msg,
            None,
            now,
        );
    }
    if !hb.kubernetes_version.is_empty() {
        s["kubernetesVersion"] = json!(hb.kubernetes_version);
    }
    if hb.api_reachable {
        s["nodeSummary"] = json!({"totalNum": hb.nodes_total, "readyNum": hb.nodes_ready});
        s["resourceSummary"] = json!({
            "allocatable": quantities(&hb.allocatable),
            "allocating": quantities(&hb.allocating),
            "allocated": quantities(&hb.allocated),
        });
    }
    s["conditions"] = Value::Array(conditions);
    s
}

/// Sets one condition in an object's `.status` (made an object if it is not one).
pub fn set_status_condition(
    status: &mut Value,
    type_: &str,
    state: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    if !status.is_object() {
        *status = json!({});
    }
    let mut conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    set_condition(&mut conditions, type_, state, reason, message, None, now);
    status["conditions"] = Value::Array(conditions);
}

/// Flags (or clears) capacity left out of a Cluster's status because the agent reported
/// values that cannot be true: condition `CapacityValid`, set only once a problem was seen.
pub fn flag_capacity(s: &mut Value, problem: Option<&str>, now: &str) {
    let mut conditions: Vec<Value> = s
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let seen = conditions.iter().any(|c| c["type"] == "CapacityValid");
    match problem {
        Some(p) => set_condition(
            &mut conditions,
            "CapacityValid",
            "False",
            "InvalidCapacity",
            &format!("reported capacity ignored: {p}"),
            None,
            now,
        ),
        None if seen => set_condition(
            &mut conditions,
            "CapacityValid",
            "True",
            "Valid",
            "reported capacity is plausible",
            None,
            now,
        ),
        None => return,
    }
    s["conditions"] = Value::Array(conditions);
}

/// What the health monitor should do with a cluster whose agent was last heard from
/// `silent_for` ago: `Some((status, reason, message))` to set `Ready`, `None` to leave it.
pub fn stale_ready(
    ready_status: Option<&str>,
    ever_heard: bool,
    silent_for: std::time::Duration,
    grace: std::time::Duration,
) -> Option<(&'static str, &'static str, String)> {
    if silent_for < grace || ready_status == Some("Unknown") {
        return None;
    }
    let secs = silent_for.as_secs();
    if ever_heard || ready_status.is_some() {
        Some((
            "Unknown",
            "ClusterStatusUnknown",
            format!("cluster agent stopped posting cluster status ({secs}s without a heartbeat)"),
        ))
    } else {
        Some((
            "Unknown",
            "ClusterStatusNeverUpdated",
            "cluster agent never posted cluster status".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use flotilla_proto::v1::{ApiEnablement, ApiResource, ManifestIdentifier, ManifestStatus};

    use super::*;

    #[test]
    fn condition_keeps_transition_time_when_unchanged() {
        let mut c = vec![];
        set_condition(&mut c, "Ready", "True", "ClusterReady", "", None, "t1");
        set_condition(&mut c, "Ready", "True", "ClusterReady", "again", None, "t2");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0]["lastTransitionTime"], "t1");
        assert_eq!(c[0]["message"], "again");
        set_condition(
            &mut c,
            "Ready",
            "False",
            "ClusterNotReachable",
            "down",
            None,
            "t3",
        );
        assert_eq!(c[0]["lastTransitionTime"], "t3");
    }

    #[test]
    fn work_status_from_report() {
        let report = WorkStatus {
            work_name: "w".into(),
            observed_generation: 3,
            applied: true,
            message: String::new(),
            manifests: vec![ManifestStatus {
                identifier: Some(ManifestIdentifier {
                    ordinal: 0,
                    group: "apps".into(),
                    version: "v1".into(),
                    kind: "Deployment".into(),
                    resource: "deployments".into(),
                    namespace: "default".into(),
                    name: "web".into(),
                }),
                status_json: br#"{"availableReplicas":2}"#.to_vec().into(),
                health: Health::Healthy as i32,
                applied: true,
                message: String::new(),
            }],
        };
        let s = work_status(None, &report, "t1");
        assert_eq!(s["conditions"][0]["type"], "Applied");
        assert_eq!(s["conditions"][0]["status"], "True");
        assert_eq!(s["conditions"][0]["observedGeneration"], 3);
        assert_eq!(s["manifestStatuses"][0]["status"]["availableReplicas"], 2);
        assert_eq!(s["manifestStatuses"][0]["health"], "Healthy");
        assert_eq!(
            s["manifestStatuses"][0]["identifier"]["resource"],
            "deployments"
        );
        let failed = WorkStatus {
            applied: false,
            message: "boom".into(),
            manifests: vec![],
            ..report
        };
        let s2 = work_status(Some(&s), &failed, "t2");
        assert_eq!(s2["conditions"][0]["status"], "False");
        assert_eq!(s2["conditions"][0]["reason"], "AppliedFailed");
        assert_eq!(s2["conditions"][0]["message"], "boom");
        assert_eq!(s2["conditions"][0]["lastTransitionTime"], "t2");
        assert!(s2.get("manifestStatuses").is_none());
    }

    #[test]
    fn the_healthy_condition_keeps_when_health_last_changed() {
        let report = |health: Health| WorkStatus {
            work_name: "w".into(),
            observed_generation: 1,
            applied: true,
            message: String::new(),
            manifests: vec![ManifestStatus {
                health: health as i32,
                applied: true,
                ..ManifestStatus::default()
            }],
        };
        let healthy = |s: &Value| s["conditions"][1].clone();
        let s = work_status(None, &report(Health::Healthy), "t1");
        assert_eq!(healthy(&s)["type"], HEALTHY_CONDITION);
        assert_eq!(healthy(&s)["status"], "True");
        let s = work_status(Some(&s), &report(Health::Unhealthy), "t2");
        assert_eq!(healthy(&s)["status"], "False");
        assert_eq!(healthy(&s)["lastTransitionTime"], "t2");
        let s = work_status(Some(&s), &report(Health::Unhealthy), "t3");
        assert_eq!(healthy(&s)["lastTransitionTime"], "t2");
        let s = work_status(Some(&s), &report(Health::Unknown), "t4");
        assert_eq!(healthy(&s)["status"], "Unknown");
    }

    #[test]
    fn cluster_status_from_heartbeats() {
        let hb = Heartbeat {
            api_reachable: true,
            kubernetes_version: "v1.36.3".into(),
            api_enablements_included: true,
            api_enablements: vec![
                ApiEnablement {
                    group_version: "v1".into(),
                    resources: vec![ApiResource {
                        name: "pods".into(),
                        kind: "Pod".into(),
                    }],
                },
                ApiEnablement {
                    group_version: "apps/v1".into(),
                    resources: vec![],
                },
            ],
            nodes_total: 2,
            nodes_ready: 2,
            allocatable: [("cpu".to_owned(), "64".to_owned())].into(),
            ..Default::default()
        };
        let s = cluster_status(None, &hb, "t1");
        assert_eq!(s["kubernetesVersion"], "v1.36.3");
        assert_eq!(s["apiEnablements"][0]["groupVersion"], "apps/v1");
        assert_eq!(s["nodeSummary"]["readyNum"], 2);
        assert_eq!(s["resourceSummary"]["allocatable"]["cpu"], "64");
        let ready = s["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .cloned();
        assert_eq!(ready.map(|r| r["status"].clone()), Some(json!("True")));
        // A heartbeat without enablements keeps the previous ones; an unreachable member
        // turns Ready False and keeps the last known summaries.
        let down = Heartbeat {
            api_reachable: false,
            message: "connection refused".into(),
            ..Default::default()
        };
        let s2 = cluster_status(Some(&s), &down, "t2");
        assert_eq!(s2["apiEnablements"], s["apiEnablements"]);
        assert_eq!(s2["nodeSummary"], s["nodeSummary"]);
        let ready = s2["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["message"], "connection refused");
    }

    #[test]
    fn capacity_flag_appears_only_after_a_problem() {
        let mut s = json!({"conditions": []});
        flag_capacity(&mut s, None, "t0");
        assert_eq!(s["conditions"], json!([]), "no condition while all is well");
        flag_capacity(&mut s, Some("allocatable cpu=-1 is negative"), "t1");
        let c = &s["conditions"][0];
        assert_eq!(
            (c["type"].as_str(), c["status"].as_str()),
            (Some("CapacityValid"), Some("False"))
        );
        assert!(c["message"].as_str().is_some_and(|m| m.contains("cpu=-1")));
        flag_capacity(&mut s, None, "t2");
        assert_eq!(s["conditions"][0]["status"], "True");
    }

    #[test]
    fn stale_ready_rules() {
        let g = Duration::from_secs(40);
        let cases: &[(Option<&str>, bool, u64, Option<&str>)] = &[
            (Some("True"), true, 10, None),
            (Some("True"), true, 40, Some("ClusterStatusUnknown")),
            (Some("False"), true, 100, Some("ClusterStatusUnknown")),
            (Some("Unknown"), true, 100, None),
            (None, false, 100, Some("ClusterStatusNeverUpdated")),
            (None, false, 5, None),
        ];
        for (ready, heard, secs, want) in cases {
            let got = stale_ready(*ready, *heard, Duration::from_secs(*secs), g).map(|(_, r, _)| r);
            assert_eq!(got, *want, "{ready:?} {heard} {secs}");
        }
    }
}
