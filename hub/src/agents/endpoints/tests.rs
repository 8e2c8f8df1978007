#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use flotilla_proto::v1::{EndpointPort, EndpointReport, EndpointSliceReport, ServicePortShape};
use serde_json::json;

use super::*;

async fn objects() -> (tempfile::TempDir, Objects) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn flotilla_store::Store> = Arc::new(
        flotilla_store::SledStore::open(dir.path().join("store"), Default::default())
            .await
            .unwrap(),
    );
    let objects = Objects::new(store, crate::registry::Registry::new());
    crate::bootstrap::run(&objects).await.unwrap();
    (dir, objects)
}

async fn create(
    objects: &Objects,
    group: &str,
    version: &str,
    plural: &str,
    ns: Option<&str>,
    v: Value,
) {
    let res = crate::registry::builtin_resource(group, version, plural).unwrap();
    objects
        .create(&res, ns, v, &super::super::work::opts())
        .await
        .unwrap();
}

/// The shop namespace, and a Work exporting shop/web to `cluster`.
async fn setup(objects: &Objects, cluster: &str) {
    create(
        objects,
        "",
        "v1",
        "namespaces",
        None,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    )
    .await;
    super::super::work::ensure_namespace(objects, &flotilla_proto::execution_namespace(cluster))
        .await
        .unwrap();
    let es = flotilla_proto::execution_namespace(cluster);
    create(objects, "work.karmada.io", "v1alpha1", "works", Some(&es), json!({
        "apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
        "metadata": {"name": "web-service", "namespace": es,
                     "annotations": {flotilla_proto::EXPORT_ANNOTATION: "true"}},
        "spec": {"workload": {"manifests": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
             "spec": {"ports": [{"name": "http", "port": 80}]}}]}}})).await;
}

fn service(name: &str, ready: &[bool]) -> ExportedService {
    ExportedService {
        namespace: "shop".into(),
        name: name.into(),
        present: true,
        headless: false,
        ports: vec![ServicePortShape {
            name: "http".into(),
            protocol: "TCP".into(),
            port: 80,
            app_protocol: String::new(),
        }],
        slices: vec![EndpointSliceReport {
            name: format!("{name}-abcde"),
            address_type: "IPv4".into(),
            ports: vec![EndpointPort {
                name: "http".into(),
                protocol: "TCP".into(),
                port: Some(8080),
                app_protocol: String::new(),
            }],
            endpoints: ready
                .iter()
                .enumerate()
                .map(|(i, r)| EndpointReport {
                    addresses: vec![format!("10.0.0.{i}")],
                    ready: Some(*r),
                    zone: "us-east-1a".into(),
                    ..Default::default()
                })
                .collect(),
        }],
        work_name: format!("{name}-service"),
    }
}

async fn hub_slices(objects: &Objects) -> Vec<Value> {
    let res = endpoint_slices().unwrap();
    list(objects, &res, None, &LabelSelector::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn reports_become_the_clusters_copies_and_go_when_unexported() {
    let (_dir, objects) = objects().await;
    setup(&objects, "m1").await;
    let r = ServiceEndpoints {
        full: true,
        services: vec![service("web", &[true, false])],
        exported: vec!["shop/web".into()],
    };
    let f = fold(&objects, "m1", &r).await.unwrap();
    assert_eq!(
        f,
        Folded {
            written: 1,
            deleted: 0,
            refused: 0
        }
    );
    let slices = hub_slices(&objects).await;
    assert_eq!(slices.len(), 1);
    let s = &slices[0];
    assert_eq!(s["metadata"]["name"], "imported-m1-web-abcde");
    assert_eq!(s["metadata"]["namespace"], "shop");
    assert_eq!(s["metadata"]["labels"][SOURCE_CLUSTER_LABEL], "m1");
    assert_eq!(s["metadata"]["labels"][MCS_SERVICE_NAME_LABEL], "web");
    assert_eq!(s["endpoints"][1]["conditions"]["ready"], false);
    let since = since_of(s).unwrap().to_owned();
    let shape = flotilla_karmada::discovery::stored::shape_of(s).unwrap();
    assert_eq!(shape.ports[0].port, 80);
    // The same report again writes nothing; a change updates in place and keeps `since`.
    assert_eq!(fold(&objects, "m1", &r).await.unwrap(), Folded::default());
    let r2 = ServiceEndpoints {
        full: false,
        services: vec![service("web", &[true, true])],
        exported: vec![],
    };
    assert_eq!(fold(&objects, "m1", &r2).await.unwrap().written, 1);
    let s = &hub_slices(&objects).await[0];
    assert_eq!(s["endpoints"][1]["conditions"]["ready"], true);
    assert_eq!(since_of(s), Some(since.as_str()));
    // A removed cluster's copies go, and no other cluster's.
    assert_eq!(forget_cluster(&objects, "m2").await, 0);
    assert_eq!(hub_slices(&objects).await.len(), 1);
    assert_eq!(forget_cluster(&objects, "m1").await, 1);
    assert!(hub_slices(&objects).await.is_empty());
    assert_eq!(fold(&objects, "m1", &r).await.unwrap().written, 1);
    // A full report without it removes the copies.
    let gone = ServiceEndpoints {
        full: true,
        services: vec![],
        exported: vec![],
    };
    assert_eq!(fold(&objects, "m1", &gone).await.unwrap().deleted, 1);
    assert!(hub_slices(&objects).await.is_empty());
}

#[tokio::test]
async fn only_services_the_hub_exports_from_that_cluster_are_taken() {
    let (_dir, objects) = objects().await;
    setup(&objects, "m1").await;
    super::super::work::ensure_namespace(&objects, &flotilla_proto::execution_namespace("m2"))
        .await
        .unwrap();
    // m2 has no exporting Work; "api" is exported nowhere.
    let r = ServiceEndpoints {
        full: false,
        services: vec![service("web", &[true])],
        exported: vec![],
    };
    assert_eq!(fold(&objects, "m2", &r).await.unwrap().refused, 1);
    let api = ServiceEndpoints {
        full: false,
        services: vec![service("api", &[true])],
        exported: vec![],
    };
    assert_eq!(fold(&objects, "m1", &api).await.unwrap().refused, 1);
    // A Work of m1 that propagates a Service without exporting it.
    let es = flotilla_proto::execution_namespace("m1");
    create(&objects, "work.karmada.io", "v1alpha1", "works", Some(&es), json!({
        "apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
        "metadata": {"name": "plain-service", "namespace": es},
        "spec": {"workload": {"manifests": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "plain", "namespace": "shop"}}]}}})).await;
    let plain = ServiceEndpoints {
        full: false,
        services: vec![service("plain", &[true])],
        exported: vec![],
    };
    assert_eq!(fold(&objects, "m1", &plain).await.unwrap().refused, 1);
    // A Work exporting another Service does not vouch for this one.
    let mut other = service("plain", &[true]);
    other.work_name = "web-service".into();
    let other = ServiceEndpoints {
        full: false,
        services: vec![other],
        exported: vec![],
    };
    assert_eq!(fold(&objects, "m1", &other).await.unwrap().refused, 1);
    assert!(hub_slices(&objects).await.is_empty());
    // A Service the member no longer has: its copies go.
    let r = ServiceEndpoints {
        full: false,
        services: vec![service("web", &[true])],
        exported: vec![],
    };
    fold(&objects, "m1", &r).await.unwrap();
    let mut absent = service("web", &[]);
    absent.present = false;
    absent.slices.clear();
    let r = ServiceEndpoints {
        full: false,
        services: vec![absent],
        exported: vec![],
    };
    assert_eq!(fold(&objects, "m1", &r).await.unwrap().deleted, 1);
}

#[test]
fn bounds() {
    let ok = ServiceEndpoints {
        full: false,
        services: vec![service("web", &[true])],
        exported: vec![],
    };
    assert!(check(&ok).is_ok());
    let mut many = ok.clone();
    many.services[0].slices[0].endpoints = vec![EndpointReport::default(); MAX_ENDPOINTS + 1];
    assert!(
        check(&many)
            .unwrap_err()
            .contains("more than 1000 endpoints")
    );
    let mut long = ok.clone();
    long.services[0].slices[0].endpoints[0].addresses = vec!["a".repeat(300)];
    assert!(check(&long).is_err());
    let mut services = ok.clone();
    services.exported = vec![String::new(); MAX_SERVICES + 1];
    assert!(check(&services).is_err());
}
