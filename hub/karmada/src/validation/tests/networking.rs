use serde_json::{Value, json};

use super::super::FieldErrorReason::*;
use super::run;

fn mcs(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.karmada.io/v1alpha1", "kind": "MultiClusterService",
           "metadata": {"name": name, "namespace": "demo"}, "spec": spec})
}

fn import(spec: Value) -> Value {
    json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
           "metadata": {"name": "web", "namespace": "demo"}, "spec": spec})
}

fn export(name: &str) -> Value {
    json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
           "metadata": {"name": name, "namespace": "demo"}})
}

#[test]
fn multi_cluster_service() {
    let cross = json!(["CrossCluster"]);
    run(vec![
        (
            "karmada sample",
            "MultiClusterService",
            mcs(
                "web",
                json!({"types": cross, "ports": [{"name": "http", "port": 80}],
                       "providerClusters": [{"name": "member1"}, {"name": "member2"}],
                       "consumerClusters": [{"name": "member3"}]}),
            ),
            vec![],
        ),
        (
            "deprecated fields",
            "MultiClusterService",
            mcs(
                "web",
                json!({"types": cross, "range": {"clusterNames": ["member1"]},
                       "serviceProvisionClusters": ["member1"],
                       "serviceConsumptionClusters": ["member2"]}),
            ),
            vec![],
        ),
        (
            "no types",
            "MultiClusterService",
            mcs("web", json!({})),
            vec![("spec.types", FieldValueRequired)],
        ),
        (
            "unknown type",
            "MultiClusterService",
            mcs("web", json!({"types": ["NodePort"]})),
            vec![("spec.types[0]", FieldValueNotSupported)],
        ),
        (
            "two types",
            "MultiClusterService",
            mcs("web", json!({"types": ["CrossCluster", "LoadBalancer"]})),
            vec![("spec.types", FieldValueInvalid)],
        ),
        (
            "duplicate type",
            "MultiClusterService",
            mcs("web", json!({"types": ["CrossCluster", "CrossCluster"]})),
            vec![("spec.types[1]", FieldValueDuplicate)],
        ),
        (
            "ports",
            "MultiClusterService",
            mcs(
                "web",
                json!({"types": cross, "ports": [{"name": "http", "port": 0},
                                                 {"name": "http", "port": 81},
                                                 {"name": "Bad_Name", "port": 65536}]}),
            ),
            vec![
                ("spec.ports[0].port", FieldValueInvalid),
                ("spec.ports[1].name", FieldValueDuplicate),
                ("spec.ports[2].name", FieldValueInvalid),
                ("spec.ports[2].port", FieldValueInvalid),
            ],
        ),
        (
            "cluster names",
            "MultiClusterService",
            mcs(
                "web",
                json!({"types": cross, "providerClusters": [{"name": ""}, {"name": "a"}, {"name": "a"}],
                       "consumerClusters": [{"name": "Not_A_Cluster"}]}),
            ),
            vec![
                ("spec.providerClusters[0].name", FieldValueRequired),
                ("spec.providerClusters[2].name", FieldValueDuplicate),
                ("spec.consumerClusters[0].name", FieldValueInvalid),
            ],
        ),
        (
            "name is a service name",
            "MultiClusterService",
            mcs("1web", json!({"types": cross})),
            vec![("metadata.name", FieldValueInvalid)],
        ),
    ]);
}

#[test]
fn service_export_and_import() {
    let port = json!([{"name": "http", "protocol": "TCP", "port": 80}]);
    run(vec![
        ("export", "ServiceExport", export("web"), vec![]),
        (
            "export of a name no Service can have",
            "ServiceExport",
            export("9web"),
            vec![("metadata.name", FieldValueInvalid)],
        ),
        (
            "import",
            "ServiceImport",
            import(
                json!({"type": "ClusterSetIP", "ports": port, "ips": ["10.0.0.9"],
                          "sessionAffinity": "None"}),
            ),
            vec![],
        ),
        (
            "headless import without ports",
            "ServiceImport",
            import(json!({"type": "Headless"})),
            vec![],
        ),
        (
            "import type and ports required",
            "ServiceImport",
            import(json!({})),
            vec![
                ("spec.type", FieldValueRequired),
                ("spec.ports", FieldValueRequired),
            ],
        ),
        (
            "import ports",
            "ServiceImport",
            import(json!({"type": "ClusterSetIP",
                          "ports": [{"port": 80, "protocol": "HTTP"}, {"name": "b", "port": 70000}]})),
            vec![
                ("spec.ports[0].name", FieldValueRequired),
                ("spec.ports[0].protocol", FieldValueNotSupported),
                ("spec.ports[1].port", FieldValueInvalid),
            ],
        ),
        (
            "import ips",
            "ServiceImport",
            import(json!({"type": "ClusterSetIP", "ports": port, "ips": ["10.0.0.1", "nope"]})),
            vec![
                ("spec.ips", FieldValueInvalid),
                ("spec.ips[1]", FieldValueInvalid),
            ],
        ),
    ]);
}
