//! Table tests of status reflection and aggregation.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;

fn item(cluster: &str, status: Option<Value>) -> Value {
    let mut i = json!({"clusterName": cluster, "applied": status.is_some(), "health": "Healthy"});
    if let Some(s) = status {
        i["status"] = s;
    }
    i
}

/// A member Deployment status rendered from template generation `tgen`.
fn dep(
    replicas: i64,
    updated: i64,
    ready: i64,
    available: i64,
    observed: i64,
    generation: i64,
    tgen: i64,
) -> Value {
    json!({
        "replicas": replicas, "updatedReplicas": updated, "readyReplicas": ready,
        "availableReplicas": available, "unavailableReplicas": replicas - available,
        "observedGeneration": observed, "generation": generation, "resourceTemplateGeneration": tgen
    })
}

#[test]
fn deployment_sums_match_the_documented_example() {
    // Reference 3.4: m1 gets 2 (both ready), m2 gets 4 (3 ready, 1 unavailable).
    let items = [
        item("m1", Some(dep(2, 2, 2, 2, 1, 1, 5))),
        item("m2", Some(dep(4, 4, 3, 3, 1, 1, 5))),
    ];
    let current =
        json!({"conditions": [{"type": "Available", "status": "True"}], "observedGeneration": 4});
    let got = aggregate("Deployment", &current, 5, &items).unwrap();
    assert_eq!(
        got,
        json!({
            "conditions": [{"type": "Available", "status": "True"}],
            "replicas": 6, "updatedReplicas": 6, "readyReplicas": 5,
            "availableReplicas": 5, "unavailableReplicas": 1, "observedGeneration": 5
        })
    );
}

#[test]
fn observed_generation_advances_only_when_every_member_caught_up() {
    let ok = || Some(dep(1, 1, 1, 1, 3, 3, 7));
    let cases: Vec<(&str, Vec<Value>, Value, Option<i64>)> = vec![
        (
            "all caught up",
            vec![item("a", ok()), item("b", ok())],
            json!({}),
            Some(7),
        ),
        (
            "member rendered from a newer template",
            vec![item("a", Some(dep(1, 1, 1, 1, 3, 3, 8)))],
            json!({}),
            Some(7),
        ),
        (
            "member rendered from an older template",
            vec![item("a", ok()), item("b", Some(dep(1, 1, 1, 1, 3, 3, 6)))],
            json!({"observedGeneration": 6}),
            Some(6),
        ),
        (
            "member controller behind",
            vec![item("a", ok()), item("b", Some(dep(1, 1, 1, 1, 2, 3, 7)))],
            json!({"observedGeneration": 6}),
            Some(6),
        ),
        (
            "missing status keeps previous",
            vec![item("a", ok()), item("b", None)],
            json!({"observedGeneration": 6}),
            Some(6),
        ),
        (
            "missing status and no previous",
            vec![item("a", ok()), item("b", None)],
            json!({}),
            None,
        ),
        (
            "no resourceTemplateGeneration",
            vec![item(
                "a",
                Some(json!({"replicas": 1, "observedGeneration": 3, "generation": 3})),
            )],
            json!({"observedGeneration": 2}),
            Some(2),
        ),
        (
            "no member observedGeneration",
            vec![item(
                "a",
                Some(json!({"replicas": 1, "generation": 3, "resourceTemplateGeneration": 7})),
            )],
            json!({}),
            None,
        ),
        (
            "null status",
            vec![json!({"clusterName": "a", "applied": true, "status": null})],
            json!({"observedGeneration": 1}),
            Some(1),
        ),
        // Karmada's rule is vacuously true without members; rollout still waits on the counters.
        (
            "no items",
            vec![],
            json!({"observedGeneration": 6}),
            Some(7),
        ),
    ];
    for (name, items, current, want) in cases {
        for kind in ["Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"] {
            let got = aggregate(kind, &current, 7, &items).unwrap();
            assert_eq!(
                got.get("observedGeneration").and_then(Value::as_i64),
                want,
                "{kind}: {name}"
            );
        }
    }
}

#[test]
fn workload_counters_per_kind() {
    let sts = |r: i64, ready: i64| json!({"replicas": r, "readyReplicas": ready, "currentReplicas": r, "updatedReplicas": r, "availableReplicas": ready, "observedGeneration": 1, "generation": 1, "resourceTemplateGeneration": 1});
    let got = aggregate(
        "StatefulSet",
        &json!({"currentRevision": "x"}),
        1,
        &[item("a", Some(sts(2, 2))), item("b", Some(sts(3, 1)))],
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"currentRevision": "x", "replicas": 5, "readyReplicas": 3, "currentReplicas": 5, "updatedReplicas": 5, "availableReplicas": 3, "observedGeneration": 1})
    );

    let ds = |d: i64| json!({"currentNumberScheduled": d, "desiredNumberScheduled": d, "numberReady": d, "numberAvailable": d, "updatedNumberScheduled": d, "numberMisscheduled": 0, "observedGeneration": 2, "generation": 2, "resourceTemplateGeneration": 3});
    let got = aggregate(
        "DaemonSet",
        &json!({}),
        3,
        &[item("a", Some(ds(2))), item("b", Some(ds(1)))],
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"currentNumberScheduled": 3, "numberMisscheduled": 0, "desiredNumberScheduled": 3, "numberReady": 3, "updatedNumberScheduled": 3, "numberAvailable": 3, "observedGeneration": 3})
    );

    let got = aggregate(
        "ReplicaSet",
        &json!({"fullyLabeledReplicas": 1}),
        1,
        &[item("a", Some(json!({"replicas": 2, "readyReplicas": 1})))],
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"fullyLabeledReplicas": 1, "replicas": 2, "readyReplicas": 1})
    );

    // Counters that drop to zero disappear (omitempty), as the API server would print them.
    let current =
        json!({"replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "updatedReplicas": 3});
    let got = aggregate(
        "Deployment",
        &current,
        1,
        &[item("a", Some(dep(0, 0, 0, 0, 1, 1, 1)))],
    )
    .unwrap();
    assert_eq!(got, json!({"observedGeneration": 1}));
}

/// kubectl's Deployment rollout check (`kubectl rollout status`), on the hub template.
fn rollout_complete(template: &Value) -> bool {
    let s = &template["status"];
    let g = |k: &str| s.get(k).and_then(Value::as_i64).unwrap_or(0);
    let spec = template
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    template["metadata"]["generation"].as_i64().unwrap() <= g("observedGeneration")
        && g("updatedReplicas") >= spec
        && g("replicas") <= g("updatedReplicas")
        && g("availableReplicas") >= g("updatedReplicas")
}

/// A member Deployment as the agent sees it, rendered from template generation `tgen`.
fn member(replicas: i64, done: i64, generation: i64, tgen: i64, observed: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "generation": generation, "annotations": {TEMPLATE_GENERATION_ANNOTATION: tgen.to_string()}},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "updatedReplicas": done, "readyReplicas": done, "availableReplicas": done, "observedGeneration": observed}
    })
}

#[test]
fn hub_rollout_status_follows_the_members() {
    let mut template = json!({"metadata": {"generation": 2}, "spec": {"replicas": 6}, "status": {"observedGeneration": 1}});
    let steps = [
        // Members still run the copy of generation 1.
        (vec![member(2, 2, 1, 1, 1), member(4, 4, 1, 1, 1)], false),
        // m2 got the new copy, but its controller has not observed it yet.
        (vec![member(2, 2, 2, 2, 2), member(4, 4, 2, 2, 1)], false),
        // Observed, but pods are still rolling.
        (vec![member(2, 2, 2, 2, 2), member(4, 1, 2, 2, 2)], false),
        (vec![member(2, 2, 2, 2, 2), member(4, 4, 2, 2, 2)], true),
    ];
    for (i, (members, want)) in steps.into_iter().enumerate() {
        let items: Vec<Value> = members
            .iter()
            .enumerate()
            .map(|(n, m)| item(&format!("m{n}"), reflect(m)))
            .collect();
        let status = aggregate("Deployment", &template["status"], 2, &items).unwrap();
        template["status"] = status;
        assert_eq!(
            rollout_complete(&template),
            want,
            "step {i}: {}",
            template["status"]
        );
    }
    // Duplicated placement: every member runs spec.replicas, the sums exceed it and rollout completes.
    let items: Vec<Value> = (0..3)
        .map(|n| item(&format!("m{n}"), reflect(&member(6, 6, 1, 2, 1))))
        .collect();
    let status = aggregate("Deployment", &json!({}), 2, &items).unwrap();
    assert_eq!(status["readyReplicas"], 18);
    template["status"] = status;
    assert!(rollout_complete(&template));
}

fn job(
    active: i64,
    succeeded: i64,
    failed: i64,
    cond: Option<(&str, &str)>,
    start: Option<&str>,
    done: Option<&str>,
) -> Value {
    let mut s = json!({"active": active, "succeeded": succeeded, "failed": failed});
    if let Some((t, time)) = cond {
        s["conditions"] = json!([{"type": t, "status": "True", "lastTransitionTime": time}]);
    }
    if let Some(t) = start {
        s["startTime"] = json!(t);
    }
    if let Some(t) = done {
        s["completionTime"] = json!(t);
    }
    s
}

const T1: &str = "2024-05-01T10:00:00Z";
const T2: &str = "2024-05-01T10:05:00Z";
const T3: &str = "2024-05-01T10:09:00Z";

#[test]
fn job_aggregation() {
    let running = aggregate(
        "Job",
        &json!({}),
        1,
        &[
            item("a", Some(job(2, 1, 0, None, Some(T2), None))),
            item("b", Some(job(1, 0, 1, None, Some(T1), None))),
        ],
    )
    .unwrap();
    assert_eq!(
        running,
        json!({"active": 3, "succeeded": 1, "failed": 1, "startTime": T1})
    );

    // startTime waits until every member started; the template's own startTime is kept.
    let partial = [
        item("a", Some(job(1, 0, 0, None, Some(T2), None))),
        item("b", None),
    ];
    assert_eq!(
        aggregate("Job", &json!({}), 1, &partial).unwrap(),
        json!({"active": 1})
    );
    assert_eq!(
        aggregate("Job", &json!({"startTime": T3}), 1, &partial).unwrap(),
        json!({"active": 1, "startTime": T3})
    );

    let done = aggregate(
        "Job",
        &json!({"startTime": T1}),
        1,
        &[
            item(
                "a",
                Some(job(0, 2, 0, Some(("Complete", T2)), Some(T1), Some(T2))),
            ),
            item(
                "b",
                Some(job(0, 3, 0, Some(("Complete", T3)), Some(T1), Some(T3))),
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        done,
        json!({"succeeded": 5, "startTime": T1, "completionTime": T3, "conditions": [
            {"type": "Complete", "status": "True", "reason": "Completed", "message": "Job completed", "lastProbeTime": T3, "lastTransitionTime": T3}
        ]})
    );

    // One member still running: not complete, no completionTime.
    let half = aggregate(
        "Job",
        &json!({}),
        1,
        &[
            item(
                "a",
                Some(job(0, 2, 0, Some(("Complete", T2)), Some(T1), Some(T2))),
            ),
            item("b", Some(job(1, 0, 0, None, Some(T1), None))),
        ],
    )
    .unwrap();
    assert!(
        half.get("conditions").is_none() && half.get("completionTime").is_none(),
        "{half}"
    );

    let failed = aggregate(
        "Job",
        &json!({}),
        1,
        &[
            item(
                "a",
                Some(job(0, 0, 6, Some(("Failed", T2)), Some(T1), None)),
            ),
            item(
                "b",
                Some(job(0, 1, 0, Some(("Complete", T3)), Some(T1), Some(T3))),
            ),
            item(
                "c",
                Some(job(0, 0, 6, Some(("Failed", T3)), Some(T1), None)),
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        failed["conditions"],
        json!([{"type": "Failed", "status": "True", "reason": "JobFailed", "message": "Job executed failed in member clusters a,c", "lastProbeTime": T3, "lastTransitionTime": T3}])
    );

    // Once finished the template status is frozen.
    let later = [item("a", Some(job(1, 0, 0, None, Some(T3), None)))];
    assert_eq!(aggregate("Job", &done, 1, &later).unwrap(), done);
    assert_eq!(aggregate("Job", &failed, 1, &later).unwrap(), failed);

    // SuccessCriteriaMet is added only when every member reported it.
    let mut a = job(0, 1, 0, Some(("Complete", T2)), Some(T1), Some(T2));
    a["conditions"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"type": "SuccessCriteriaMet", "status": "True"}));
    let both = aggregate(
        "Job",
        &json!({}),
        1,
        &[item("a", Some(a.clone())), item("b", Some(a.clone()))],
    )
    .unwrap();
    let types: Vec<&str> = both["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
    let one = aggregate(
        "Job",
        &json!({}),
        1,
        &[
            item("a", Some(a)),
            item(
                "b",
                Some(job(0, 1, 0, Some(("Complete", T2)), Some(T1), Some(T2))),
            ),
        ],
    )
    .unwrap();
    assert_eq!(one["conditions"].as_array().unwrap().len(), 1);

    // Without members nothing is complete.
    assert_eq!(aggregate("Job", &json!({}), 1, &[]).unwrap(), json!({}));
}

#[test]
fn cronjob_aggregation() {
    let got = aggregate("CronJob", &json!({"old": 1}), 1, &[
        item("a", Some(json!({"active": [{"name": "j1"}], "lastScheduleTime": T1, "lastSuccessfulTime": T3}))),
        item("b", None),
        item("c", Some(json!({"active": [{"name": "j2"}], "lastScheduleTime": T2}))),
    ])
    .unwrap();
    assert_eq!(
        got,
        json!({"active": [{"name": "j1"}, {"name": "j2"}], "lastScheduleTime": T2, "lastSuccessfulTime": T3})
    );
}

#[test]
fn load_balancer_ingress_union() {
    let lb = |ing: Value| Some(json!({"loadBalancer": {"ingress": ing}}));
    let items = [
        item(
            "a",
            lb(json!([{"ip": "10.0.0.2"}, {"hostname": "a.example.com"}])),
        ),
        item("b", lb(json!([{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]))),
        item("c", Some(json!({"loadBalancer": {}}))),
        item("d", None),
    ];
    let want = json!({"conditions": [], "loadBalancer": {"ingress": [{"hostname": "a.example.com"}, {"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}});
    assert_eq!(
        aggregate("Service", &json!({"conditions": []}), 1, &items).unwrap(),
        want
    );
    assert_eq!(
        aggregate("Ingress", &json!({"conditions": []}), 1, &items).unwrap(),
        want
    );
    // No member reflects a load balancer: not a LoadBalancer Service, status untouched.
    assert_eq!(
        aggregate("Service", &json!({}), 1, &[item("a", None)]),
        None
    );
    // A LoadBalancer Service with no ingress yet.
    assert_eq!(
        aggregate(
            "Service",
            &json!({}),
            1,
            &[item("c", Some(json!({"loadBalancer": {}})))]
        )
        .unwrap(),
        json!({"loadBalancer": {}})
    );
    assert_eq!(
        aggregate("Ingress", &json!({}), 1, &[]).unwrap(),
        json!({"loadBalancer": {}})
    );
}

#[test]
fn pod_phase_and_container_statuses() {
    let p = |phase: &str| Some(json!({"phase": phase}));
    let cases: Vec<(Vec<Value>, Option<&str>)> = vec![
        (
            vec![item("a", p("Running")), item("b", p("Succeeded"))],
            Some("Running"),
        ),
        (
            vec![item("a", p("Running")), item("b", p("Pending"))],
            Some("Pending"),
        ),
        (
            vec![item("a", p("Pending")), item("b", p("Failed"))],
            Some("Failed"),
        ),
        (
            vec![item("a", p("Running")), item("b", None)],
            Some("Pending"),
        ),
        (
            vec![item("a", p("Succeeded")), item("b", p("Succeeded"))],
            Some("Succeeded"),
        ),
        (vec![], None),
    ];
    for (items, want) in cases {
        let got = aggregate("Pod", &json!({"podIP": "1.2.3.4"}), 1, &items).unwrap();
        assert_eq!(got.get("phase").and_then(Value::as_str), want, "{items:?}");
        assert!(got.get("podIP").is_none());
    }
    let c = json!({"name": "app", "ready": true, "restartCount": 3, "image": "x", "state": {"running": {}}});
    let got = aggregate("Pod", &json!({}), 1, &[
        item("a", Some(json!({"phase": "Running", "containerStatuses": [c.clone()], "initContainerStatuses": [c.clone()]}))),
        item("b", Some(json!({"phase": "Running", "containerStatuses": [c]}))),
    ])
    .unwrap();
    let reduced = json!({"name": "app", "ready": true, "state": {"running": {}}});
    assert_eq!(
        got["containerStatuses"],
        json!([reduced.clone(), reduced.clone()])
    );
    assert_eq!(got["initContainerStatuses"], json!([reduced]));
}

#[test]
fn volume_phases() {
    let p = |phase: &str| Some(json!({"phase": phase}));
    let pvc_cases: Vec<(Vec<Value>, &str)> = vec![
        (vec![item("a", p("Bound")), item("b", p("Bound"))], "Bound"),
        (
            vec![item("a", p("Pending")), item("b", p("Bound"))],
            "Pending",
        ),
        (vec![item("a", p("Lost")), item("b", p("Pending"))], "Lost"),
        (vec![item("a", p("Pending")), item("b", p("Lost"))], "Lost"),
        (vec![item("a", None), item("b", p("Bound"))], "Bound"),
        (vec![], "Bound"),
    ];
    for (items, want) in pvc_cases {
        let got = aggregate(
            "PersistentVolumeClaim",
            &json!({"capacity": {"storage": "1Gi"}}),
            1,
            &items,
        )
        .unwrap();
        assert_eq!(
            got,
            json!({"capacity": {"storage": "1Gi"}, "phase": want}),
            "{items:?}"
        );
    }
    let pv_cases: Vec<(Vec<Value>, Option<&str>)> = vec![
        (
            vec![item("a", p("Bound")), item("b", p("Released"))],
            Some("Bound"),
        ),
        (
            vec![item("a", p("Bound")), item("b", p("Available"))],
            Some("Available"),
        ),
        (
            vec![item("a", p("Available")), item("b", None)],
            Some("Pending"),
        ),
        (
            vec![item("a", p("Failed")), item("b", None)],
            Some("Failed"),
        ),
        (vec![], None),
    ];
    for (items, want) in pv_cases {
        let got = aggregate("PersistentVolume", &json!({"phase": "Bound"}), 1, &items).unwrap();
        assert_eq!(got.get("phase").and_then(Value::as_str), want, "{items:?}");
    }
}

#[test]
fn pdb_and_hpa() {
    let pdb = |n: i64, pods: Value| {
        Some(
            json!({"disruptionsAllowed": n, "expectedPods": 2 * n, "desiredHealthy": n, "currentHealthy": n, "disruptedPods": pods}),
        )
    };
    let got = aggregate(
        "PodDisruptionBudget",
        &json!({"observedGeneration": 4}),
        1,
        &[
            item("a", pdb(1, json!({"web-1": T1}))),
            item("b", pdb(2, json!({}))),
            item("c", None),
        ],
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"disruptionsAllowed": 3, "expectedPods": 6, "desiredHealthy": 3, "currentHealthy": 3, "disruptedPods": {"a/web-1": T1}})
    );

    let got = aggregate(
        "HorizontalPodAutoscaler",
        &json!({"conditions": []}),
        1,
        &[
            item(
                "a",
                Some(json!({"currentReplicas": 2, "desiredReplicas": 3})),
            ),
            item(
                "b",
                Some(json!({"currentReplicas": 1, "desiredReplicas": 1})),
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"conditions": [], "currentReplicas": 3, "desiredReplicas": 4})
    );
}

#[test]
fn kinds_without_a_rule() {
    for kind in ["ConfigMap", "Secret", "Namespace", "Widget", ""] {
        assert_eq!(
            aggregate(
                kind,
                &json!({"x": 1}),
                1,
                &[item("a", Some(json!({"y": 2})))]
            ),
            None,
            "{kind}"
        );
    }
}

#[test]
fn reflection_per_kind() {
    let d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"generation": 4, "annotations": {TEMPLATE_GENERATION_ANNOTATION: "9"}},
        "status": {"replicas": 2, "readyReplicas": 2, "observedGeneration": 4, "conditions": [{"type": "Available"}], "collisionCount": 1}
    });
    assert_eq!(
        reflect(&d).unwrap(),
        json!({"replicas": 2, "readyReplicas": 2, "observedGeneration": 4, "generation": 4, "resourceTemplateGeneration": 9})
    );

    let cases: Vec<(Value, Option<Value>)> = vec![
        // Nothing to report yet.
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 1}, "status": {}}),
            None,
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 1}}),
            None,
        ),
        // A bad annotation is ignored rather than guessed.
        (
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"generation": 2, "annotations": {TEMPLATE_GENERATION_ANNOTATION: "x"}}, "status": {"replicas": 1, "observedGeneration": 2, "currentRevision": "r1"}}),
            Some(json!({"replicas": 1, "observedGeneration": 2, "generation": 2})),
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {}, "status": {"numberReady": 0, "desiredNumberScheduled": 0}}),
            Some(json!({"desiredNumberScheduled": 0, "numberReady": 0})),
        ),
        (
            json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"active": 1, "ready": 1, "startTime": T1, "uncountedTerminatedPods": {}}}),
            Some(json!({"active": 1, "startTime": T1})),
        ),
        (
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "ClusterIP"}, "status": {"loadBalancer": {}}}),
            None,
        ),
        (
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}, "conditions": []}}),
            Some(json!({"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}})),
        ),
        (
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "status": {"currentReplicas": 1, "desiredReplicas": 2, "conditions": []}}),
            Some(json!({"currentReplicas": 1, "desiredReplicas": 2})),
        ),
        (
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "status": {"currentHealthy": 1, "desiredHealthy": 1, "observedGeneration": 1}}),
            Some(json!({"desiredHealthy": 1, "currentHealthy": 1})),
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Running", "podIP": "1.2.3.4"}}),
            Some(json!({"phase": "Running", "podIP": "1.2.3.4"})),
        ),
        (
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"a": 1}}),
            Some(json!({"a": 1})),
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {}}),
            None,
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "status": null}),
            None,
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "status": {}}),
            None,
        ),
        (json!("not an object"), None),
    ];
    for (obj, want) in cases {
        assert_eq!(reflect(&obj), want, "{obj}");
    }
}

#[test]
fn counter_sums_are_exact_or_clamped() {
    let max = i64::MAX;
    let items = [
        item("a", Some(dep(max, max, max, max, 1, 1, 1))),
        item("b", Some(dep(max, max, 5, max, 1, 1, 1))),
        item("c", Some(dep(-1, 0, i64::MIN, 0, 1, 1, 1))),
    ];
    let got = aggregate("Deployment", &json!({}), 1, &items).unwrap();
    assert_eq!(got["replicas"], json!(max));
    assert_eq!(got["updatedReplicas"], json!(max));
    // Exact when the total fits, whatever the order: MAX + 5 + MIN.
    assert_eq!(got["readyReplicas"], json!(4));
    let job = |n: i64| item("m", Some(json!({"active": n, "succeeded": n, "failed": n})));
    let got = aggregate("Job", &json!({}), 1, &[job(max), job(max)]).unwrap();
    assert_eq!(
        (&got["active"], &got["succeeded"], &got["failed"]),
        (&json!(max), &json!(max), &json!(max))
    );
    let pdb = |n: i64| {
        item(
            "m",
            Some(
                json!({"disruptionsAllowed": n, "expectedPods": n, "desiredHealthy": n, "currentHealthy": n}),
            ),
        )
    };
    let got = aggregate("PodDisruptionBudget", &json!({}), 1, &[pdb(max), pdb(max)]).unwrap();
    assert_eq!(got["expectedPods"], json!(max));
    let got = aggregate(
        "PodDisruptionBudget",
        &json!({}),
        1,
        &[pdb(i64::MIN), pdb(-1)],
    )
    .unwrap();
    assert_eq!(got["expectedPods"], json!(i64::MIN));
    let hpa = |n: i64| {
        item(
            "m",
            Some(json!({"currentReplicas": n, "desiredReplicas": n})),
        )
    };
    let got = aggregate(
        "HorizontalPodAutoscaler",
        &json!({}),
        1,
        &[hpa(max), hpa(max)],
    )
    .unwrap();
    assert_eq!(got["desiredReplicas"], json!(max));
}
