#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::FieldErrorReason::*;
use super::*;

fn pp(spec: Value) -> Value {
    json!({
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": "p", "namespace": "demo"},
        "spec": spec,
    })
}

fn nginx_sel() -> Value {
    json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"}])
}

fn pp_placement(placement: Value) -> Value {
    pp(json!({"resourceSelectors": nginx_sel(), "placement": placement}))
}

fn op(spec: Value) -> Value {
    json!({
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "OverridePolicy",
        "metadata": {"name": "op", "namespace": "demo"},
        "spec": spec,
    })
}

fn cluster(spec: Value) -> Value {
    json!({"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
           "metadata": {"name": "m1"}, "spec": spec})
}

/// One table row: name, kind, object, expected (field, reason) pairs (empty = valid).
type Case<'a> = (&'a str, &'a str, Value, Vec<(&'a str, FieldErrorReason)>);

fn run(cases: Vec<Case<'_>>) {
    for (name, kind, obj, expected) in cases {
        let got = match validate(kind, &obj, true) {
            Ok(()) => Vec::new(),
            Err(e) => {
                assert!(
                    e.unknown_fields.is_empty(),
                    "{name}: unknown {:?}",
                    e.unknown_fields
                );
                e.invalid
            }
        };
        let got_pairs: Vec<(String, FieldErrorReason)> =
            got.iter().map(|e| (e.field.clone(), e.reason)).collect();
        let want: Vec<(String, FieldErrorReason)> =
            expected.iter().map(|(f, r)| (f.to_string(), *r)).collect();
        assert_eq!(got_pairs, want, "{name}: {got:#?}");
    }
}

#[test]
fn propagation_policy_rules() {
    let fs = |exprs: Value| {
        pp_placement(json!({"clusterAffinity": {"fieldSelector": {"matchExpressions": exprs}}}))
    };
    run(vec![
        (
            "scenario 1 valid",
            "PropagationPolicy",
            pp_placement(json!({"clusterAffinity": {"clusterNames": ["m1", "m2"]}})),
            vec![],
        ),
        (
            "empty selectors",
            "PropagationPolicy",
            pp(json!({"resourceSelectors": []})),
            vec![("spec.resourceSelectors", FieldValueRequired)],
        ),
        (
            "missing spec",
            "PropagationPolicy",
            json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy", "metadata": {"name": "p"}}),
            vec![("spec.resourceSelectors", FieldValueRequired)],
        ),
        (
            "selector without apiVersion/kind",
            "PropagationPolicy",
            pp(json!({"resourceSelectors": [{"name": "x"}]})),
            vec![
                ("spec.resourceSelectors[0].apiVersion", FieldValueRequired),
                ("spec.resourceSelectors[0].kind", FieldValueRequired),
            ],
        ),
        (
            "selector namespace differs",
            "PropagationPolicy",
            pp(
                json!({"resourceSelectors": [{"apiVersion": "v1", "kind": "ConfigMap", "namespace": "other"}]}),
            ),
            vec![("spec.resourceSelectors[0].namespace", FieldValueInvalid)],
        ),
        (
            "scenario 4 valid field selector",
            "PropagationPolicy",
            fs(
                json!([{"key": "provider", "operator": "In", "values": ["aws"]},
                   {"key": "region", "operator": "NotIn", "values": ["us-west"]}]),
            ),
            vec![],
        ),
        (
            "scenario 4 variant key name",
            "PropagationPolicy",
            fs(json!([{"key": "name", "operator": "In", "values": ["m1"]}])),
            vec![(
                "spec.placement.clusterAffinity.fieldSelector.matchExpressions[0].key",
                FieldValueNotSupported,
            )],
        ),
        (
            "scenario 4 variant operator Exists",
            "PropagationPolicy",
            fs(json!([{"key": "zone", "operator": "Exists"}])),
            vec![(
                "spec.placement.clusterAffinity.fieldSelector.matchExpressions[0].operator",
                FieldValueNotSupported,
            )],
        ),
        (
            "bad label selector operator",
            "PropagationPolicy",
            pp_placement(
                json!({"clusterAffinity": {"labelSelector": {"matchExpressions": [{"key": "env", "operator": "Gt", "values": ["1"]}]}}}),
            ),
            vec![(
                "spec.placement.clusterAffinity.labelSelector.matchExpressions[0].operator",
                FieldValueNotSupported,
            )],
        ),
        (
            "label selector In without values",
            "PropagationPolicy",
            pp_placement(
                json!({"clusterAffinity": {"labelSelector": {"matchExpressions": [{"key": "env", "operator": "In"}]}}}),
            ),
            vec![(
                "spec.placement.clusterAffinity.labelSelector.matchExpressions[0].values",
                FieldValueRequired,
            )],
        ),
        (
            "affinity and affinities",
            "PropagationPolicy",
            pp_placement(
                json!({"clusterAffinity": {}, "clusterAffinities": [{"affinityName": "a"}]}),
            ),
            vec![("spec.placement.clusterAffinities", FieldValueInvalid)],
        ),
        (
            "duplicate affinity names",
            "PropagationPolicy",
            pp_placement(
                json!({"clusterAffinities": [{"affinityName": "a"}, {"affinityName": "a"}]}),
            ),
            vec![(
                "spec.placement.clusterAffinities[1].affinityName",
                FieldValueDuplicate,
            )],
        ),
        (
            "affinity name too long",
            "PropagationPolicy",
            pp_placement(json!({"clusterAffinities": [{"affinityName": "a".repeat(33)}]})),
            vec![(
                "spec.placement.clusterAffinities[0].affinityName",
                FieldValueInvalid,
            )],
        ),
        (
            "overflow needs dynamic or aggregated",
            "PropagationPolicy",
            pp_placement(
                json!({"clusterAffinities": [{"affinityName": "a", "overflowAffinities": [{"affinityName": "b"}]}]}),
            ),
            vec![(
                "spec.placement.clusterAffinities[0].overflowAffinities",
                FieldValueInvalid,
            )],
        ),
        (
            "overflow with aggregated ok",
            "PropagationPolicy",
            pp_placement(
                json!({"clusterAffinities": [{"affinityName": "a", "clusterNames": ["m1"],
              "overflowAffinities": [{"affinityName": "b", "clusterNames": ["m2"]}]}],
              "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}}),
            ),
            vec![],
        ),
        (
            "scenario 6 toleration ok",
            "PropagationPolicy",
            pp_placement(
                json!({"clusterTolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}),
            ),
            vec![],
        ),
        (
            "toleration Lt rejected",
            "PropagationPolicy",
            pp_placement(
                json!({"clusterTolerations": [{"key": "a", "operator": "Lt", "value": "1"}]}),
            ),
            vec![(
                "spec.placement.clusterTolerations[0].operator",
                FieldValueNotSupported,
            )],
        ),
        (
            "toleration seconds needs NoExecute",
            "PropagationPolicy",
            pp_placement(
                json!({"clusterTolerations": [{"key": "a", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]}),
            ),
            vec![(
                "spec.placement.clusterTolerations[0].effect",
                FieldValueInvalid,
            )],
        ),
        (
            "toleration bad effect",
            "PropagationPolicy",
            pp_placement(
                json!({"clusterTolerations": [{"operator": "Exists", "effect": "Evict"}]}),
            ),
            vec![(
                "spec.placement.clusterTolerations[0].effect",
                FieldValueNotSupported,
            )],
        ),
        (
            "scenario 17 region without cluster",
            "PropagationPolicy",
            pp_placement(
                json!({"spreadConstraints": [{"spreadByField": "region", "minGroups": 2, "maxGroups": 2}]}),
            ),
            vec![("spec.placement.spreadConstraints", FieldValueInvalid)],
        ),
        (
            "spread region + cluster ok",
            "PropagationPolicy",
            pp_placement(
                json!({"spreadConstraints": [{"spreadByField": "region", "minGroups": 2, "maxGroups": 2},
                                                   {"spreadByField": "cluster", "minGroups": 2}]}),
            ),
            vec![],
        ),
        (
            "spread field and label",
            "PropagationPolicy",
            pp_placement(
                json!({"spreadConstraints": [{"spreadByField": "cluster", "spreadByLabel": "team"}]}),
            ),
            vec![(
                "spec.placement.spreadConstraints[0].spreadByLabel",
                FieldValueInvalid,
            )],
        ),
        (
            "spread min > max",
            "PropagationPolicy",
            pp_placement(
                json!({"spreadConstraints": [{"spreadByField": "cluster", "minGroups": 3, "maxGroups": 2}]}),
            ),
            vec![(
                "spec.placement.spreadConstraints[0].maxGroups",
                FieldValueInvalid,
            )],
        ),
        (
            "spread negative",
            "PropagationPolicy",
            pp_placement(
                json!({"spreadConstraints": [{"spreadByField": "cluster", "minGroups": -1}]}),
            ),
            vec![(
                "spec.placement.spreadConstraints[0].minGroups",
                FieldValueInvalid,
            )],
        ),
        (
            "spread duplicate field",
            "PropagationPolicy",
            pp_placement(
                json!({"spreadConstraints": [{"spreadByField": "cluster"}, {"minGroups": 1}]}),
            ),
            vec![(
                "spec.placement.spreadConstraints[1].spreadByField",
                FieldValueDuplicate,
            )],
        ),
        (
            "spread unknown field value",
            "PropagationPolicy",
            pp_placement(json!({"spreadConstraints": [{"spreadByField": "rack"}]})),
            vec![
                (
                    "spec.placement.spreadConstraints[0].spreadByField",
                    FieldValueNotSupported,
                ),
                ("spec.placement.spreadConstraints", FieldValueInvalid),
            ],
        ),
        (
            "spread by label only ok",
            "PropagationPolicy",
            pp_placement(json!({"spreadConstraints": [{"spreadByLabel": "team", "maxGroups": 2}]})),
            vec![],
        ),
        (
            "division preference",
            "PropagationPolicy",
            pp_placement(
                json!({"replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Balanced"}}),
            ),
            vec![(
                "spec.placement.replicaScheduling.replicaDivisionPreference",
                FieldValueNotSupported,
            )],
        ),
        (
            "scheduling type",
            "PropagationPolicy",
            pp_placement(json!({"replicaScheduling": {"replicaSchedulingType": "Spread"}})),
            vec![(
                "spec.placement.replicaScheduling.replicaSchedulingType",
                FieldValueNotSupported,
            )],
        ),
        (
            "dynamic weight value",
            "PropagationPolicy",
            pp_placement(
                json!({"replicaScheduling": {"weightPreference": {"dynamicWeight": "Cpu"}}}),
            ),
            vec![(
                "spec.placement.replicaScheduling.weightPreference.dynamicWeight",
                FieldValueNotSupported,
            )],
        ),
        (
            "static weight zero",
            "PropagationPolicy",
            pp_placement(
                json!({"replicaScheduling": {"weightPreference": {"staticWeightList": [{"targetCluster": {"clusterNames": ["m1"]}, "weight": 0}]}}}),
            ),
            vec![(
                "spec.placement.replicaScheduling.weightPreference.staticWeightList[0].weight",
                FieldValueInvalid,
            )],
        ),
        (
            "scenario 22 variant preemption needs names",
            "PropagationPolicy",
            pp(
                json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}], "preemption": "Always", "priority": 5}),
            ),
            vec![("spec.resourceSelectors[0].name", FieldValueRequired)],
        ),
        (
            "preemption with names ok",
            "PropagationPolicy",
            pp(json!({"resourceSelectors": nginx_sel(), "preemption": "Always", "priority": 5})),
            vec![],
        ),
        (
            "preemption value",
            "PropagationPolicy",
            pp(json!({"resourceSelectors": nginx_sel(), "preemption": "Sometimes"})),
            vec![("spec.preemption", FieldValueNotSupported)],
        ),
        (
            "conflict resolution",
            "PropagationPolicy",
            pp(json!({"resourceSelectors": nginx_sel(), "conflictResolution": "Merge"})),
            vec![("spec.conflictResolution", FieldValueNotSupported)],
        ),
        (
            "activation preference",
            "PropagationPolicy",
            pp(json!({"resourceSelectors": nginx_sel(), "activationPreference": "Eager"})),
            vec![("spec.activationPreference", FieldValueNotSupported)],
        ),
        (
            "scenario 38 variant failover needs propagateDeps",
            "PropagationPolicy",
            pp(
                json!({"resourceSelectors": nginx_sel(), "failover": {"application": {"decisionConditions": {"tolerationSeconds": 120}, "purgeMode": "Never"}}}),
            ),
            vec![("spec.propagateDeps", FieldValueInvalid)],
        ),
        (
            "failover legacy purge modes",
            "PropagationPolicy",
            pp(
                json!({"resourceSelectors": nginx_sel(), "propagateDeps": true,
                   "failover": {"application": {"purgeMode": "Graciously", "gracePeriodSeconds": 60},
                                "cluster": {"purgeMode": "Immediately"}}}),
            ),
            vec![],
        ),
        (
            "failover grace period only with Gracefully",
            "PropagationPolicy",
            pp(
                json!({"resourceSelectors": nginx_sel(), "propagateDeps": true,
                   "failover": {"application": {"purgeMode": "Directly", "gracePeriodSeconds": 60}}}),
            ),
            vec![(
                "spec.failover.application.gracePeriodSeconds",
                FieldValueForbidden,
            )],
        ),
        (
            "failover negative toleration, bad purge",
            "PropagationPolicy",
            pp(
                json!({"resourceSelectors": nginx_sel(), "propagateDeps": true,
                   "failover": {"application": {"decisionConditions": {"tolerationSeconds": -1}, "purgeMode": "Later"},
                                "cluster": {"purgeMode": "Never"}}}),
            ),
            vec![
                (
                    "spec.failover.application.decisionConditions.tolerationSeconds",
                    FieldValueInvalid,
                ),
                (
                    "spec.failover.application.purgeMode",
                    FieldValueNotSupported,
                ),
                ("spec.failover.cluster.purgeMode", FieldValueNotSupported),
            ],
        ),
        (
            "suspension both",
            "PropagationPolicy",
            pp(
                json!({"resourceSelectors": nginx_sel(), "suspension": {"dispatching": true, "dispatchingOnClusters": {"clusterNames": ["m2"]}}}),
            ),
            vec![("spec.suspension", FieldValueInvalid)],
        ),
        (
            "schedule priority",
            "PropagationPolicy",
            pp(
                json!({"resourceSelectors": nginx_sel(), "schedulePriority": {"priorityClassSource": "PodPriorityClass"}}),
            ),
            vec![
                (
                    "spec.schedulePriority.priorityClassSource",
                    FieldValueNotSupported,
                ),
                (
                    "spec.schedulePriority.priorityClassName",
                    FieldValueRequired,
                ),
            ],
        ),
        (
            "workload affinity same key",
            "PropagationPolicy",
            pp_placement(
                json!({"workloadAffinity": {"affinity": {"groupByLabelKey": "app"}, "antiAffinity": {"groupByLabelKey": "app"}}}),
            ),
            vec![(
                "spec.placement.workloadAffinity.antiAffinity.groupByLabelKey",
                FieldValueInvalid,
            )],
        ),
        (
            "bad name",
            "PropagationPolicy",
            json!({"kind": "PropagationPolicy", "metadata": {"name": "Bad_Name", "namespace": "demo"}, "spec": {"resourceSelectors": nginx_sel()}}),
            vec![("metadata.name", FieldValueInvalid)],
        ),
        (
            "no name",
            "PropagationPolicy",
            json!({"kind": "PropagationPolicy", "metadata": {"namespace": "demo"}, "spec": {"resourceSelectors": nginx_sel()}}),
            vec![("metadata.name", FieldValueRequired)],
        ),
        (
            "cpp any namespace",
            "ClusterPropagationPolicy",
            json!({"kind": "ClusterPropagationPolicy", "metadata": {"name": "c"},
                "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "other"}], "priority": 100}}),
            vec![],
        ),
        (
            "newer optional fields accepted",
            "PropagationPolicy",
            pp(
                json!({"resourceSelectors": nginx_sel(), "association": true, "dependentOverrides": ["op"],
                   "schedulerName": "default-scheduler", "preserveResourcesOnDeletion": true,
                   "schedulePriority": {"priorityClassSource": "KubePriorityClass", "priorityClassName": "high"},
                   "propagateDeps": true,
                   "failover": {"application": {"decisionConditions": {"tolerationSeconds": 0},
                       "statePreservation": {"rules": [{"aliasLabelName": "flink.example.com/job-id", "jsonPath": "{.jobStatus.jobID}"}]}}},
                   "placement": {"workloadAffinity": {"affinity": {"groupByLabelKey": "app"}},
                                 "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
                                    "weightPreference": {"dynamicWeight": "AvailableReplicas"}}}}),
            ),
            vec![],
        ),
    ]);
}

#[test]
fn override_policy_rules() {
    let rule = |overriders: Value| {
        op(
            json!({"resourceSelectors": nginx_sel(), "overrideRules": [{"targetCluster": {"clusterNames": ["m1"]}, "overriders": overriders}]}),
        )
    };
    run(vec![
        (
            "scenario 23 valid",
            "OverridePolicy",
            rule(
                json!({"imageOverrider": [{"component": "Registry", "operator": "replace", "value": "registry.m1.example.com"}],
                     "labelsOverrider": [{"operator": "add", "value": {"site": "m1"}}]}),
            ),
            vec![],
        ),
        (
            "empty selectors allowed",
            "OverridePolicy",
            op(json!({"overrideRules": []})),
            vec![],
        ),
        (
            "legacy form ok",
            "OverridePolicy",
            op(
                json!({"targetCluster": {"clusterNames": ["m1"]}, "overriders": {"plaintext": [{"path": "/spec/replicas", "operator": "replace", "value": 5}]}}),
            ),
            vec![],
        ),
        (
            "legacy and new together",
            "OverridePolicy",
            op(
                json!({"overriders": {"plaintext": [{"path": "/spec/replicas", "operator": "remove"}]}, "overrideRules": [{"overriders": {}}]}),
            ),
            vec![("spec.overrideRules", FieldValueInvalid)],
        ),
        (
            "empty legacy overriders, as Go clients send them, with rules",
            "OverridePolicy",
            op(json!({"overriders": {}, "overrideRules": [{"overriders": {}}]})),
            vec![],
        ),
        (
            "image component",
            "OverridePolicy",
            rule(
                json!({"imageOverrider": [{"component": "Digest", "operator": "update", "predicate": {"path": "spec/x"}}]}),
            ),
            vec![
                (
                    "spec.overrideRules[0].overriders.imageOverrider[0].predicate.path",
                    FieldValueInvalid,
                ),
                (
                    "spec.overrideRules[0].overriders.imageOverrider[0].component",
                    FieldValueNotSupported,
                ),
                (
                    "spec.overrideRules[0].overriders.imageOverrider[0].operator",
                    FieldValueNotSupported,
                ),
            ],
        ),
        (
            "args operator replace not allowed",
            "OverridePolicy",
            rule(
                json!({"argsOverrider": [{"containerName": "nginx", "operator": "replace", "value": ["a"]}]}),
            ),
            vec![(
                "spec.overrideRules[0].overriders.argsOverrider[0].operator",
                FieldValueNotSupported,
            )],
        ),
        (
            "command container required",
            "OverridePolicy",
            rule(json!({"commandOverrider": [{"operator": "add", "value": ["a"]}]})),
            vec![(
                "spec.overrideRules[0].overriders.commandOverrider[0].containerName",
                FieldValueRequired,
            )],
        ),
        (
            "label value invalid",
            "OverridePolicy",
            rule(
                json!({"labelsOverrider": [{"operator": "add", "value": {"site": "not valid!"}}]}),
            ),
            vec![(
                "spec.overrideRules[0].overriders.labelsOverrider[0].value",
                FieldValueInvalid,
            )],
        ),
        (
            "annotation value free",
            "OverridePolicy",
            rule(
                json!({"annotationsOverrider": [{"operator": "add", "value": {"note": "any text at all!"}}]}),
            ),
            vec![],
        ),
        (
            "scenario 28 field overrider ok",
            "OverridePolicy",
            rule(
                json!({"fieldOverrider": [{"fieldPath": "/data/config.yaml", "yaml": [{"subPath": "/app/database/port", "operator": "replace", "value": 3306}]}]}),
            ),
            vec![],
        ),
        (
            "scenario 28 variant json and yaml",
            "OverridePolicy",
            rule(json!({"fieldOverrider": [{"fieldPath": "/data/config.yaml",
             "json": [{"subPath": "/a", "operator": "remove"}],
             "yaml": [{"subPath": "/a", "operator": "remove"}]}]})),
            vec![(
                "spec.overrideRules[0].overriders.fieldOverrider[0]",
                FieldValueInvalid,
            )],
        ),
        (
            "field op value rules",
            "OverridePolicy",
            rule(json!({"fieldOverrider": [{"fieldPath": "/data/x", "json": [
             {"subPath": "/a", "operator": "add"}, {"subPath": "/b", "operator": "remove", "value": 1}]}]})),
            vec![
                (
                    "spec.overrideRules[0].overriders.fieldOverrider[0].json[0].value",
                    FieldValueRequired,
                ),
                (
                    "spec.overrideRules[0].overriders.fieldOverrider[0].json[1].value",
                    FieldValueForbidden,
                ),
            ],
        ),
        (
            "plaintext path",
            "OverridePolicy",
            rule(
                json!({"plaintext": [{"path": "spec/replicas", "operator": "replace", "value": 1}]}),
            ),
            vec![(
                "spec.overrideRules[0].overriders.plaintext[0].path",
                FieldValueInvalid,
            )],
        ),
        (
            "target cluster field selector",
            "OverridePolicy",
            op(
                json!({"overrideRules": [{"targetCluster": {"fieldSelector": {"matchExpressions": [{"key": "name", "operator": "In", "values": ["m1"]}]}}, "overriders": {}}]}),
            ),
            vec![(
                "spec.overrideRules[0].targetCluster.fieldSelector.matchExpressions[0].key",
                FieldValueNotSupported,
            )],
        ),
        (
            "cop valid",
            "ClusterOverridePolicy",
            json!({"kind": "ClusterOverridePolicy", "metadata": {"name": "cop"},
                "spec": {"overrideRules": [{"overriders": {"labelsOverrider": [{"operator": "add", "value": {"owner": "platform"}}]}}]}}),
            vec![],
        ),
    ]);
}

#[test]
fn cluster_and_binding_rules() {
    run(vec![
        (
            "cluster ok",
            "Cluster",
            cluster(
                json!({"syncMode": "Pull", "provider": "aws", "region": "us-east", "zones": ["us-east-1a"],
                        "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
                        "resourceModels": [{"grade": 0, "ranges": [{"name": "cpu", "min": "0", "max": "1"}]},
                                           {"grade": 1, "ranges": [{"name": "cpu", "min": 1, "max": "9223372036854775807"}]}]}),
            ),
            vec![],
        ),
        (
            "cluster sync mode",
            "Cluster",
            cluster(json!({})),
            vec![("spec.syncMode", FieldValueRequired)],
        ),
        (
            "cluster sync mode bad",
            "Cluster",
            cluster(json!({"syncMode": "Both"})),
            vec![("spec.syncMode", FieldValueNotSupported)],
        ),
        (
            "scenario 45 variant zone and zones",
            "Cluster",
            cluster(json!({"syncMode": "Pull", "zone": "z1", "zones": ["z1"]})),
            vec![("spec.zone", FieldValueInvalid)],
        ),
        (
            "scenario 45 zone alone ok",
            "Cluster",
            cluster(json!({"syncMode": "Pull", "zone": "z1"})),
            vec![],
        ),
        (
            "taint effect",
            "Cluster",
            cluster(json!({"syncMode": "Pull", "taints": [{"key": "a", "effect": "Drain"}]})),
            vec![("spec.taints[0].effect", FieldValueNotSupported)],
        ),
        (
            "cluster name too long",
            "Cluster",
            json!({"kind": "Cluster", "metadata": {"name": "a".repeat(49)}, "spec": {"syncMode": "Pull"}}),
            vec![("metadata.name", FieldValueInvalid)],
        ),
        (
            "cluster name with dot",
            "Cluster",
            json!({"kind": "Cluster", "metadata": {"name": "a.b"}, "spec": {"syncMode": "Pull"}}),
            vec![("metadata.name", FieldValueInvalid)],
        ),
        (
            "cluster status round trip",
            "Cluster",
            json!({"kind": "Cluster", "metadata": {"name": "m1"}, "spec": {"syncMode": "Pull"},
                "status": {"kubernetesVersion": "v1.31.0",
                           "apiEnablements": [{"groupVersion": "apps/v1", "resources": [{"name": "deployments", "kind": "Deployment"}]}],
                           "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterReady", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                           "nodeSummary": {"totalNum": 3, "readyNum": 3},
                           "resourceSummary": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": 110},
                                               "allocated": {"cpu": "500m", "pods": "3"},
                                               "allocatableModelings": [{"grade": 0, "count": 1}]}}}),
            vec![],
        ),
        (
            "binding ok",
            "ResourceBinding",
            json!({"kind": "ResourceBinding", "metadata": {"name": "nginx-deployment", "namespace": "demo"},
                "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "nginx", "uid": "u"},
                         "replicas": 3, "clusters": [{"name": "m1", "replicas": 3}],
                         "replicaRequirements": {"resourceRequest": {"cpu": "100m"}},
                         "components": [{"name": "main", "replicas": 1}],
                         "placement": {"clusterAffinity": {"clusterNames": ["m1"]}}},
                "status": {"conditions": [{"type": "Scheduled", "status": "True", "reason": "Success"}],
                           "aggregatedStatus": [{"clusterName": "m1", "applied": true, "health": "Healthy", "status": {"replicas": 3}}]}}),
            vec![],
        ),
        (
            "binding duplicate cluster",
            "ResourceBinding",
            json!({"kind": "ResourceBinding", "metadata": {"name": "b", "namespace": "demo"},
                "spec": {"resource": {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"},
                         "clusters": [{"name": "m1"}, {"name": "m1"}]}}),
            vec![("spec.clusters[1].name", FieldValueDuplicate)],
        ),
        (
            "binding preserved state that cannot be a label",
            "ResourceBinding",
            json!({"kind": "ResourceBinding", "metadata": {"name": "b", "namespace": "demo"},
                "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                         "gracefulEvictionTasks": [{"fromCluster": "m1", "reason": "ApplicationFailure", "producer": "p",
                             "preservedLabelState": {"example.com/job": "has spaces", "example.com/ok": "j-1"}}]}}),
            vec![(
                "spec.gracefulEvictionTasks.preservedLabelState[example.com/job]",
                FieldValueInvalid,
            )],
        ),
        (
            "work ok",
            "Work",
            json!({"kind": "Work", "metadata": {"name": "nginx-1234", "namespace": "karmada-es-m1"},
                "spec": {"workload": {"manifests": [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"}, "spec": {"anything": [1, 2]}}]}}}),
            vec![],
        ),
        (
            "work manifest without kind",
            "Work",
            json!({"kind": "Work", "metadata": {"name": "w", "namespace": "karmada-es-m1"},
                "spec": {"workload": {"manifests": [{"apiVersion": "v1"}]}}}),
            vec![("spec.workload.manifests[0].kind", FieldValueRequired)],
        ),
    ]);
}

#[test]
fn unknown_fields_are_reported_with_paths() {
    let obj = pp(json!({
        "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "foo": 1}],
        "placement": {"bar": true, "clusterAffinity": {"clusterNames": ["m1"], "baz": {}}},
        "extra": null,
    }));
    let err = validate("PropagationPolicy", &obj, true).unwrap_err();
    let mut unknown = err.unknown_fields.clone();
    unknown.sort();
    assert_eq!(
        unknown,
        vec![
            "spec.extra",
            "spec.placement.bar",
            "spec.placement.clusterAffinity.baz",
            "spec.resourceSelectors[0].foo",
        ]
    );
    assert!(err.invalid.is_empty());
    // Not strict: ignored.
    assert!(validate("PropagationPolicy", &obj, false).is_ok());
    // Free-form parts are never unknown.
    let work = json!({"kind": "Work", "metadata": {"name": "w", "labels": {"x": "y"}, "whatever": 1},
        "spec": {"workload": {"manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}, "odd": 1}]}}});
    assert!(validate("Work", &work, true).is_ok());
    let top = json!({"kind": "OverridePolicy", "metadata": {"name": "o"}, "status": {}});
    assert_eq!(
        validate("OverridePolicy", &top, true)
            .unwrap_err()
            .unknown_fields,
        vec!["status"]
    );
}

#[test]
fn type_errors_name_the_field() {
    let obj = pp(json!({"resourceSelectors": nginx_sel(), "priority": "high"}));
    let err = validate("PropagationPolicy", &obj, true).unwrap_err();
    assert_eq!(err.invalid.len(), 1);
    assert_eq!(err.invalid[0].field, "spec.priority");
    assert_eq!(err.invalid[0].reason, FieldValueTypeInvalid);
    let obj = pp(json!({"resourceSelectors": [{"apiVersion": "v1", "kind": 3}]}));
    let err = validate("PropagationPolicy", &obj, true).unwrap_err();
    assert_eq!(err.invalid[0].field, "spec.resourceSelectors[0].kind");
}

#[test]
fn nulls_are_accepted() {
    let obj = pp(
        json!({"resourceSelectors": nginx_sel(), "placement": {"clusterTolerations": null,
        "spreadConstraints": null, "clusterAffinity": {"clusterNames": null}}, "priority": null}),
    );
    assert!(validate("PropagationPolicy", &obj, true).is_ok());
}

#[test]
fn messages_follow_kubernetes_wording() {
    let obj = pp(json!({"resourceSelectors": nginx_sel(), "preemption": "Sometimes"}));
    let err = validate("PropagationPolicy", &obj, true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.preemption: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\""
    );
    assert_eq!(err.invalid[0].reason.as_str(), "FieldValueNotSupported");
}

#[test]
fn served_kinds_are_complete() {
    let kinds: Vec<&str> = served_kinds().iter().map(|k| k.kind).collect();
    for k in [
        "PropagationPolicy",
        "ClusterPropagationPolicy",
        "OverridePolicy",
        "ClusterOverridePolicy",
        "Cluster",
        "ResourceBinding",
        "ClusterResourceBinding",
        "Work",
    ] {
        assert!(kinds.contains(&k), "{k}");
    }
    assert_eq!(kind_info("PropagationPolicy").unwrap().short_names, &["pp"]);
    assert!(!kind_info("Cluster").unwrap().namespaced);
}

fn ctp(spec: Value) -> Value {
    json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "ClusterTaintPolicy",
           "metadata": {"name": "not-ready"}, "spec": spec})
}

fn rebalancer(spec: Value) -> Value {
    json!({"apiVersion": "apps.karmada.io/v1alpha1", "kind": "WorkloadRebalancer",
           "metadata": {"name": "back"}, "spec": spec})
}

#[test]
fn cluster_taint_policy_and_rebalancer_rules() {
    let ready_in = json!([{"conditionType": "Ready", "operator": "In", "statusValues": ["False"]}]);
    run(vec![
        (
            "valid policy",
            "ClusterTaintPolicy",
            ctp(json!({"addOnConditions": ready_in,
                "taints": [{"key": "cluster.karmada.io/not-ready", "effect": "NoExecute"}]})),
            vec![],
        ),
        (
            "no taints",
            "ClusterTaintPolicy",
            ctp(json!({"addOnConditions": ready_in, "taints": []})),
            vec![("spec.taints", FieldValueRequired)],
        ),
        (
            "bad effect, duplicate taint",
            "ClusterTaintPolicy",
            ctp(json!({"taints": [{"key": "k", "effect": "Sometimes"},
                {"key": "d", "effect": "NoSchedule"}, {"key": "d", "effect": "NoSchedule"}]})),
            vec![
                ("spec.taints[0].effect", FieldValueNotSupported),
                ("spec.taints[2]", FieldValueDuplicate),
            ],
        ),
        (
            "bad condition",
            "ClusterTaintPolicy",
            ctp(
                json!({"removeOnConditions": [{"conditionType": "", "operator": "Maybe",
                "statusValues": ["Yes"]}], "taints": [{"key": "k", "effect": "NoSchedule"}]}),
            ),
            vec![
                (
                    "spec.removeOnConditions[0].conditionType",
                    FieldValueRequired,
                ),
                (
                    "spec.removeOnConditions[0].operator",
                    FieldValueNotSupported,
                ),
                (
                    "spec.removeOnConditions[0].statusValues[0]",
                    FieldValueNotSupported,
                ),
            ],
        ),
        (
            "valid rebalancer",
            "WorkloadRebalancer",
            rebalancer(
                json!({"workloads": [{"apiVersion": "apps/v1", "kind": "Deployment",
                "namespace": "demo", "name": "web"}], "ttlSecondsAfterFinished": 60}),
            ),
            vec![],
        ),
        (
            "empty rebalancer, negative ttl",
            "WorkloadRebalancer",
            rebalancer(json!({"workloads": [], "ttlSecondsAfterFinished": -1})),
            vec![
                ("spec.workloads", FieldValueRequired),
                ("spec.ttlSecondsAfterFinished", FieldValueInvalid),
            ],
        ),
        (
            "workload without a name",
            "WorkloadRebalancer",
            rebalancer(json!({"workloads": [{"apiVersion": "apps/v1", "kind": "Deployment"}]})),
            vec![("spec.workloads[0].name", FieldValueRequired)],
        ),
    ]);
}

mod autoscaling;
mod networking;
