#![allow(clippy::unwrap_used)]

use flotilla_karmada::discovery::stored::stored_slice;
use flotilla_karmada::discovery::{Endpoint, PortShape, ServiceShape, Slice, SlicePort};
use serde_json::{Value, json};

use super::super::cache::tests::{put, state};
use super::super::write::Write;
use super::*;

const SVC: &str = "shop/web";

fn cluster(name: &str, region: &str, ready: bool) -> (String, Value) {
    (
        format!("{}{name}", prefix::CLUSTERS),
        json!({"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": name},
            "spec": {"syncMode": "Pull", "region": region, "zones": [format!("{region}-1a")]},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}),
    )
}

fn shape(port: i32) -> ServiceShape {
    ServiceShape::new(
        false,
        vec![PortShape {
            name: "http".into(),
            protocol: "TCP".into(),
            port,
            app_protocol: None,
        }],
    )
}

/// The hub's copy of `cluster`'s slice of shop/web with one endpoint per `ready` flag.
fn copy(cluster: &str, port: i32, ready: &[bool]) -> (String, Value) {
    let slice = Slice {
        name: format!("web-{cluster}"),
        address_type: "IPv4".into(),
        ports: vec![SlicePort {
            name: Some("http".into()),
            protocol: Some("TCP".into()),
            port: Some(8080),
            app_protocol: None,
        }],
        endpoints: ready
            .iter()
            .enumerate()
            .map(|(i, r)| Endpoint {
                addresses: vec![format!("10.{}.0.{i}", cluster.len())],
                ready: Some(*r),
                ..Default::default()
            })
            .collect(),
    };
    let since = if cluster == "a" {
        "2026-01-01T00:00:00Z"
    } else {
        "2026-01-02T00:00:00Z"
    };
    let v = stored_slice(cluster, "shop", "web", &shape(port), since, &slice);
    (
        format!(
            "{}shop/{}",
            prefix::ENDPOINT_SLICES,
            crate::api::meta::name(&v)
        ),
        v,
    )
}

/// A template and its binding placing it in `clusters`.
fn placed(
    s: &mut State,
    api_version: &str,
    kind: &str,
    plural_prefix: &str,
    obj: Value,
    clusters: &[&str],
) {
    let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
    put(s, &format!("{plural_prefix}shop/{name}"), obj);
    let targets: Vec<Value> = clusters.iter().map(|c| json!({"name": c})).collect();
    put(
        s,
        &format!("{}shop/{name}-{}", prefix::RB, kind.to_lowercase()),
        json!({"apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
            "metadata": {"name": format!("{name}-{}", kind.to_lowercase()), "namespace": "shop"},
            "spec": {"resource": {"apiVersion": api_version, "kind": kind, "namespace": "shop", "name": name},
                     "clusters": targets}}),
    );
}

fn import(s: &mut State, consumers: &[&str]) {
    placed(
        s,
        "multicluster.x-k8s.io/v1alpha1",
        "ServiceImport",
        prefix::SERVICE_IMPORTS,
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7"},
            "spec": {"type": "ClusterSetIP", "ports": [{"name": "http", "protocol": "TCP", "port": 80}]}}),
        consumers,
    );
}

fn base() -> State {
    let mut s = state();
    for (k, v) in [
        cluster("a", "us-east", true),
        cluster("b", "eu-west", true),
        cluster("c", "us-east", true),
    ] {
        put(&mut s, &k, v);
    }
    s
}

/// The Works a decision creates or updates, by `cluster namespace/name`.
fn works(d: &super::super::Decision) -> Vec<(String, Value)> {
    d.writes
        .iter()
        .filter_map(|w| match w {
            Write::Create { object, .. } | Write::Update { object, .. }
                if object["kind"] == "Work" =>
            {
                Some((
                    format!(
                        "{}/{}",
                        object["metadata"]["namespace"].as_str().unwrap(),
                        object["metadata"]["name"].as_str().unwrap()
                    ),
                    object.clone(),
                ))
            }
            _ => None,
        })
        .collect()
}

fn sources(work: &Value) -> Vec<String> {
    work["spec"]["workload"]["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "EndpointSlice")
        .map(|m| {
            m["metadata"]["labels"][SOURCE_CLUSTER_LABEL]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn status_of<'a>(d: &'a super::super::Decision, kind: &str) -> Option<&'a Value> {
    d.writes.iter().find_map(|w| match w {
        Write::Status { object, .. } if object["kind"] == kind => Some(&object["status"]),
        _ => None,
    })
}

#[test]
fn an_import_gets_a_derived_service_and_its_regions_endpoints_then_every_region() {
    let mut s = base();
    import(&mut s, &["c"]);
    for (k, v) in [copy("a", 80, &[true]), copy("b", 80, &[true])] {
        put(&mut s, &k, v);
    }
    let d = decide(&s, SVC);
    let w = works(&d);
    assert_eq!(w.len(), 1, "{w:?}");
    let (id, work) = &w[0];
    assert!(id.starts_with("karmada-es-c/import-web-"), "{id}");
    assert_eq!(work["metadata"]["labels"][SERVICE_LABEL], "shop.web");
    let derived = &work["spec"]["workload"]["manifests"][0];
    assert_eq!(derived["metadata"]["name"], "derived-web");
    assert_eq!(derived["spec"]["ports"][0]["port"], 80);
    assert!(derived["spec"].get("selector").is_none());
    assert_eq!(sources(work), ["a"]);
    let slice = &work["spec"]["workload"]["manifests"][1];
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        "derived-web"
    );
    let st = status_of(&d, "ServiceImport").unwrap();
    assert_eq!(st["clusters"], json!([{"cluster": "a"}]));
    // a's only endpoint stops being ready: c is served from every region.
    let (k, v) = copy("a", 80, &[false]);
    put(&mut s, &k, v);
    let d = decide(&s, SVC);
    assert_eq!(sources(&works(&d)[0].1), ["a", "b"]);
    // a is unreachable: its endpoints are left out.
    let (k, v) = cluster("a", "us-east", false);
    put(&mut s, &k, v);
    let d = decide(&s, SVC);
    assert_eq!(sources(&works(&d)[0].1), ["b"]);
}

#[test]
fn a_multi_cluster_service_attaches_slices_to_the_same_name_service_in_consumers() {
    let mut s = base();
    put(
        &mut s,
        &format!("{}{SVC}", prefix::MCS),
        json!({"apiVersion": "networking.karmada.io/v1alpha1", "kind": "MultiClusterService",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "3"},
            "spec": {"types": ["CrossCluster"], "providerClusters": [{"name": "a"}, {"name": "b"}],
                     "consumerClusters": [{"name": "c"}]}}),
    );
    for (k, v) in [copy("a", 80, &[true, true]), copy("b", 80, &[true])] {
        put(&mut s, &k, v);
    }
    assert!(exported_in(&s, SVC, "a") && exported_in(&s, SVC, "b"));
    assert!(!exported_in(&s, SVC, "c"));
    let d = decide(&s, SVC);
    let w = works(&d);
    assert_eq!(w.len(), 1);
    assert!(w[0].0.starts_with("karmada-es-c/mcs-web-"));
    let manifests = w[0].1["spec"]["workload"]["manifests"].as_array().unwrap();
    assert!(manifests.iter().all(|m| m["kind"] == "EndpointSlice"));
    assert_eq!(
        manifests[0]["metadata"]["labels"]["kubernetes.io/service-name"],
        "web"
    );
    let st = status_of(&d, "MultiClusterService").unwrap();
    assert_eq!(
        st["consumers"],
        json!([{"cluster": "c", "servedFromRegions": ["us-east"], "servedFromClusters": ["a"], "readyEndpoints": 2}])
    );
    let dispatched = st["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "EndpointSliceDispatched")
        .unwrap();
    assert_eq!(dispatched["status"], "True");
}

#[test]
fn a_conflicting_export_is_flagged_and_none_of_its_endpoints_are_handed_out() {
    let mut s = base();
    import(&mut s, &["c"]);
    // b (exported later) serves port 8080 instead of 80, and a has no ready endpoint.
    for (k, v) in [copy("a", 80, &[false]), copy("b", 8080, &[true])] {
        put(&mut s, &k, v);
    }
    let d = decide(&s, SVC);
    assert_eq!(sources(&works(&d)[0].1), ["a"]);
    let st = status_of(&d, "ServiceImport").unwrap();
    let conflict = st["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Conflict")
        .unwrap();
    assert_eq!(conflict["status"], "True");
    assert_eq!(conflict["reason"], "PortConflict");
    assert!(
        conflict["message"]
            .as_str()
            .unwrap()
            .contains("b exports ports http:8080/TCP")
    );
}

#[test]
fn an_export_marks_the_service_in_its_clusters_and_reports_a_missing_service() {
    let mut s = base();
    placed(
        &mut s,
        "multicluster.x-k8s.io/v1alpha1",
        "ServiceExport",
        prefix::SERVICE_EXPORTS,
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "5"}}),
        &["a", "b"],
    );
    assert!(exported_in(&s, SVC, "a") && exported_in(&s, SVC, "b"));
    assert!(!exported_in(&s, SVC, "c"));
    let d = decide(&s, SVC);
    let st = status_of(&d, "ServiceExport").unwrap();
    let valid = st["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Valid")
        .unwrap();
    assert_eq!(valid["status"], "False");
    assert_eq!(valid["reason"], "NoService");
}

#[test]
fn without_an_import_or_service_the_discovery_works_go() {
    let mut s = base();
    let (k, v) = copy("a", 80, &[true]);
    put(&mut s, &k, v);
    let wname = discovery_work_name("import", "shop", "web");
    put(
        &mut s,
        &format!("{}karmada-es-c/{wname}", prefix::WORKS),
        json!({"apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
            "metadata": {"name": wname, "namespace": "karmada-es-c", "labels": {SERVICE_LABEL: "shop.web"}},
            "spec": {"workload": {"manifests": []}}}),
    );
    let d = decide(&s, SVC);
    assert!(
        matches!(d.writes.as_slice(), [Write::Delete { name, .. }] if *name == wname),
        "{:?}",
        d.writes
    );
}
