#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::scheduler::*;

#[test]
fn affinity_and_filters() {
    let mut tainted = fixture();
    tainted[0]
        .taints
        .push(taint("dedicated", "gpu", "NoSchedule"));
    let tolerate = json!({"clusterTolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]});
    let mut cm = input(json!({}), 0);
    cm.api_version = "v1".into();
    cm.kind = "ConfigMap".into();
    cm.replica_requests.clear();
    let mut x_tainted = fixture();
    x_tainted[2].taints.push(taint("x", "y", "NoSchedule"));
    let mut not_ready = fixture();
    not_ready[1].readiness = Readiness::NotReady;
    let mut unknown = fixture();
    unknown[1].readiness = Readiness::Unknown;
    let mut no_api = fixture();
    no_api[2].api_enablements.clear();
    let mut deleting = fixture();
    deleting[0].deleting = true;
    let mut evicting = input(json!({}), 2);
    evicting.evicting_clusters = vec!["m3".into()];
    let mut no_execute = fixture();
    no_execute[0].taints.push(taint("k", "", "NoExecute"));
    let mut prefer = fixture();
    prefer[0].taints.push(taint("k", "", "PreferNoSchedule"));

    run(vec![
        ok(
            "scenario 1",
            fixture(),
            input(
                json!({"clusterAffinity": {"clusterNames": ["m1", "m2"]}}),
                3,
            ),
            &[("m1", 3), ("m2", 3)],
        ),
        ok(
            "scenario 2",
            fixture(),
            input(
                json!({"clusterAffinity": {"labelSelector": {"matchLabels": {"env": "prod"}}}}),
                3,
            ),
            &[("m1", 3), ("m2", 3)],
        ),
        ok(
            "scenario 3",
            fixture(),
            input(json!({"clusterAffinity": {"exclude": ["m2"]}}), 3),
            &[("m1", 3), ("m3", 3)],
        ),
        ok(
            "scenario 4",
            fixture(),
            input(
                json!({"clusterAffinity": {"fieldSelector": {"matchExpressions": [
            {"key": "provider", "operator": "In", "values": ["aws"]},
            {"key": "region", "operator": "NotIn", "values": ["us-west"]}]}}}),
                3,
            ),
            &[("m1", 3)],
        ),
        ok(
            "zone In",
            fixture(),
            input(
                json!({"clusterAffinity": {"fieldSelector": {"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["us-west-2a", "eu-central-1a"]}]}}}),
                1,
            ),
            &[("m2", 1), ("m3", 1)],
        ),
        ok(
            "scenario 5",
            fixture(),
            input(
                json!({"clusterAffinity": {"labelSelector": {"matchLabels": {"env": "prod"}}, "clusterNames": ["m2", "m3"]}}),
                3,
            ),
            &[("m2", 3)],
        ),
        fail(
            "scenario 5 variant",
            fixture(),
            input(
                json!({"clusterAffinity": {"labelSelector": {"matchLabels": {"env": "prod"}}, "clusterNames": ["m3"]}}),
                3,
            ),
            ScheduleReason::NoClusterFit,
        ),
        ok(
            "scenario 6",
            tainted.clone(),
            input(json!({}), 1),
            &[("m2", 1), ("m3", 1)],
        ),
        ok(
            "scenario 6 variant",
            tainted.clone(),
            input(tolerate, 1),
            &[("m1", 1), ("m2", 1), ("m3", 1)],
        ),
        ok(
            "scenario 7 cfg stays",
            x_tainted.clone(),
            prev(cm.clone(), &[("m1", 0), ("m2", 0), ("m3", 0)]),
            &[("m1", 0), ("m2", 0), ("m3", 0)],
        ),
        ok(
            "scenario 7 cfg2",
            x_tainted,
            cm.clone(),
            &[("m1", 0), ("m2", 0)],
        ),
        ok(
            "NoExecute blocks new placement",
            no_execute,
            input(json!({}), 1),
            &[("m2", 1), ("m3", 1)],
        ),
        ok(
            "PreferNoSchedule ignored",
            prefer,
            input(json!({}), 1),
            &[("m1", 1), ("m2", 1), ("m3", 1)],
        ),
        ok(
            "not ready avoided for new placements",
            not_ready.clone(),
            input(json!({}), 1),
            &[("m1", 1), ("m3", 1)],
        ),
        ok(
            "not ready existing target kept",
            not_ready,
            prev(input(json!({}), 1), &[("m2", 1)]),
            &[("m1", 1), ("m2", 1), ("m3", 1)],
        ),
        ok(
            "unknown readiness avoided",
            unknown,
            input(json!({}), 1),
            &[("m1", 1), ("m3", 1)],
        ),
        ok(
            "API not enabled",
            no_api.clone(),
            input(json!({}), 1),
            &[("m1", 1), ("m2", 1)],
        ),
        ok(
            "API not enabled existing kept",
            no_api,
            prev(input(json!({}), 1), &[("m3", 1)]),
            &[("m1", 1), ("m2", 1), ("m3", 1)],
        ),
        ok(
            "deleting cluster dropped",
            deleting,
            prev(input(json!({}), 1), &[("m1", 1)]),
            &[("m2", 1), ("m3", 1)],
        ),
        ok(
            "eviction source excluded",
            fixture(),
            evicting,
            &[("m1", 2), ("m2", 2)],
        ),
        ok(
            "affinity change drops existing target",
            fixture(),
            prev(
                input(json!({"clusterAffinity": {"clusterNames": ["m2"]}}), 2),
                &[("m1", 2)],
            ),
            &[("m2", 2)],
        ),
        fail(
            "decision 4 keeps placement",
            fixture(),
            prev(
                input(json!({"clusterAffinity": {"clusterNames": ["m9"]}}), 2),
                &[("m1", 2)],
            ),
            ScheduleReason::NoClusterFit,
        ),
        fail(
            "no clusters at all",
            vec![],
            input(json!({}), 2),
            ScheduleReason::NoClusterFit,
        ),
        ok(
            "one cluster",
            vec![info("solo", &[], "", "", "")],
            input(json!({}), 5),
            &[("solo", 5)],
        ),
        ok(
            "scenario 41 ConfigMap Divided",
            fixture(),
            {
                let mut i = cm;
                i.placement = serde_json::from_value(
                    json!({"replicaScheduling": {"replicaSchedulingType": "Divided"}}),
                )
                .unwrap();
                i
            },
            &[("m1", 0), ("m2", 0), ("m3", 0)],
        ),
    ]);
}

#[test]
fn no_fit_message_lists_rules() {
    let out = schedule(
        &input(
            json!({"clusterAffinity": {"clusterNames": ["m1"], "exclude": ["m1"]}}),
            1,
        ),
        &fixture(),
    );
    assert_eq!(out.reason, ScheduleReason::NoClusterFit);
    assert!(
        out.message.contains("0/3 clusters are available"),
        "{}",
        out.message
    );
    assert!(
        out.message
            .contains("1 excluded by clusterAffinity.exclude"),
        "{}",
        out.message
    );
    assert!(
        out.message
            .contains("2 not in clusterAffinity.clusterNames"),
        "{}",
        out.message
    );
    assert_eq!(out.diagnosis.filtered.len(), 3);
}

#[test]
fn cluster_affinities_fallback() {
    let mut tainted = fixture();
    tainted[0]
        .taints
        .push(taint("maintenance", "true", "NoSchedule"));
    let placement = json!({"clusterAffinities": [
        {"affinityName": "primary", "clusterNames": ["m1"]},
        {"affinityName": "backup", "clusterNames": ["m2", "m3"]}]});
    // Scenario 19.
    let out = schedule(&input(placement.clone(), 2), &tainted);
    assert_eq!(result(&out), pairs(&[("m2", 2), ("m3", 2)]));
    assert_eq!(out.affinity_name.as_deref(), Some("backup"));
    // Taint removed: stays on backup.
    let mut again = prev(input(placement.clone(), 2), &[("m2", 2), ("m3", 2)]);
    again.observed_affinity_name = "backup".into();
    let out = schedule(&again, &fixture());
    assert_eq!(result(&out), pairs(&[("m2", 2), ("m3", 2)]));
    assert_eq!(out.affinity_name.as_deref(), Some("backup"));
    // Manual reschedule starts at primary.
    again.fresh = true;
    let out = schedule(&again, &fixture());
    assert_eq!(result(&out), pairs(&[("m1", 2)]));
    assert_eq!(out.affinity_name.as_deref(), Some("primary"));
    // Every term fails: previous kept, observed name unchanged.
    let mut none = prev(
        input(
            json!({"clusterAffinities": [{"affinityName": "a", "clusterNames": ["x"]}, {"affinityName": "b", "clusterNames": ["y"]}]}),
            2,
        ),
        &[("m1", 2)],
    );
    none.observed_affinity_name = "a".into();
    let out = schedule(&none, &fixture());
    assert!(!out.scheduled);
    assert_eq!(result(&out), pairs(&[("m1", 2)]));
    assert!(
        out.message.contains("affinity a") && out.message.contains("affinity b"),
        "{}",
        out.message
    );
}

#[test]
fn hundreds_of_clusters() {
    let clusters: Vec<ClusterInfo> = (0..300)
        .map(|i| {
            info(
                &format!("c{i:03}"),
                &[("env", if i % 2 == 0 { "prod" } else { "dev" })],
                "aws",
                &format!("r{}", i % 7),
                "",
            )
        })
        .collect();
    let out = schedule(
        &input(
            json!({"replicaScheduling": {"replicaSchedulingType": "Divided"}}),
            1000,
        ),
        &clusters,
    );
    assert_eq!(out.targets.len(), 300);
    assert_eq!(out.targets.iter().map(|t| t.replicas).sum::<i32>(), 1000);
    assert!(
        out.targets
            .iter()
            .all(|t| t.replicas == 3 || t.replicas == 4)
    );
    let out = schedule(
        &input(
            json!({"clusterAffinity": {"labelSelector": {"matchLabels": {"env": "prod"}}}}),
            2,
        ),
        &clusters,
    );
    assert_eq!(out.targets.len(), 150);
    let out = schedule(
        &input(
            json!({"replicaScheduling": {"replicaSchedulingType": "Divided"}}),
            10,
        ),
        &clusters,
    );
    assert_eq!(
        out.targets.len(),
        10,
        "clusters with no replicas are dropped"
    );
    assert!(out.diagnosis.summary().len() < 2000 || out.diagnosis.selected.len() == 300);
    let out = schedule(
        &input(
            json!({"spreadConstraints": [{"spreadByField": "region", "minGroups": 3, "maxGroups": 3}, {"spreadByField": "cluster", "minGroups": 3, "maxGroups": 5}]}),
            2,
        ),
        &clusters,
    );
    assert_eq!(out.targets.len(), 5);
    let regions: std::collections::BTreeSet<String> = out
        .targets
        .iter()
        .map(|t| {
            clusters
                .iter()
                .find(|c| c.name == t.name)
                .unwrap()
                .region
                .clone()
        })
        .collect();
    assert_eq!(regions.len(), 3);
}

#[test]
fn diagnosis_explains_the_split() {
    let mut c = fixture();
    c[2].taints.push(taint("dedicated", "gpu", "NoSchedule"));
    let out = schedule(&input(static_weights(&[("m1", 1), ("m2", 2)]), 3), &c);
    assert_eq!(result(&out), pairs(&[("m1", 1), ("m2", 2)]));
    let d = &out.diagnosis;
    assert_eq!(d.filtered[0].cluster, "m3");
    assert_eq!(d.filtered[0].reason, FilterReason::TaintUntolerated);
    assert_eq!(d.filtered[0].detail, "dedicated=gpu:NoSchedule");
    assert_eq!(
        d.selected.iter().map(|s| s.weight).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let summary = d.summary();
    assert!(summary.contains("m2=2 (weight 2"), "{summary}");
    assert!(
        summary.contains("m3: untolerated taint dedicated=gpu:NoSchedule"),
        "{summary}"
    );
    assert!(
        out.message
            .starts_with("Binding has been scheduled successfully")
    );
    // Serialises for an annotation.
    let json = serde_json::to_value(&out.diagnosis).unwrap();
    assert_eq!(json["filtered"][0]["reason"], "TaintUntolerated");
}

#[test]
fn job_completions() {
    type Row<'a> = (i32, &'a [(&'a str, i32)], &'a [i32]);
    let cases: &[Row<'_>] = &[
        (8, &[("A", 2), ("B", 2)], &[4, 4]),
        (10, &[("A", 2), ("B", 3)], &[4, 6]),
        (0, &[("A", 2)], &[0]),
        (5, &[("A", 1)], &[5]),
    ];
    for (completions, t, want) in cases {
        assert_eq!(divide_job_completions(*completions, &targets(t), ""), *want);
    }
}

#[test]
fn from_binding() {
    let spec: ResourceBindingSpec = serde_json::from_value(json!({
        "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "nginx", "uid": "u1"},
        "replicas": 3, "replicaRequirements": {"resourceRequest": {"cpu": "100m"}},
        "clusters": [{"name": "m1", "replicas": 3}],
        "placement": {"clusterAffinity": {"clusterNames": ["m1", "m2"]}},
        "gracefulEvictionTasks": [{"fromCluster": "m3", "reason": "TaintUntolerated", "producer": "TaintManager"}],
    }))
    .unwrap();
    let i = ScheduleInput::from_binding(&spec, None);
    assert_eq!(i.kind, "Deployment");
    assert_eq!(i.template_uid, "u1");
    assert_eq!(i.evicting_clusters, vec!["m3"]);
    let out = schedule(&i, &fixture());
    assert_eq!(result(&out), pairs(&[("m1", 3), ("m2", 3)]));
}
