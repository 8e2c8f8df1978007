#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::fake::FakeMember;
use crate::member::ObjectRef;

fn web() -> ServiceRef {
    ServiceRef {
        namespace: "shop".into(),
        name: "web".into(),
        work: "web-service".into(),
    }
}

fn service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"clusterIP": "10.96.0.10", "selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
}

fn slice(name: &str, service: &str, ready: &[bool]) -> Value {
    let endpoints: Vec<Value> = ready
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({"addresses": [format!("10.0.0.{i}")], "conditions": {"ready": r},
                   "zone": "us-east-1a", "nodeName": "n1"})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": name, "namespace": "shop",
                        "labels": {"kubernetes.io/service-name": service}},
           "addressType": "IPv4",
           "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
           "endpoints": endpoints})
}

fn obj(kind: &str, group: &str, name: &str) -> ObjectRef {
    ObjectRef {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        resource: format!("{}s", kind.to_lowercase()),
        namespace: "shop".into(),
        name: name.into(),
    }
}

#[test]
fn a_work_exports_its_service_only_with_the_annotation() {
    let manifests = vec![service()];
    assert_eq!(
        export_of("web-service", Some("true"), &manifests),
        Some(web())
    );
    assert_eq!(export_of("web-service", None, &manifests), None);
    assert_eq!(export_of("web-service", Some("false"), &manifests), None);
    let deploy =
        vec![json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}})];
    assert_eq!(export_of("web-service", Some("true"), &deploy), None);
    assert_eq!(export_of("web-service", Some("true"), &[]), None);
}

#[test]
fn reports_carry_the_shape_and_the_endpoints() {
    let r = report(
        &web(),
        Some(&service()),
        &[
            slice("web-b", "web", &[true]),
            slice("web-a", "web", &[false, true]),
        ],
    );
    assert!(r.present);
    assert!(!r.headless);
    assert_eq!(r.ports.len(), 1);
    assert_eq!(
        (
            r.ports[0].name.as_str(),
            r.ports[0].protocol.as_str(),
            r.ports[0].port
        ),
        ("http", "TCP", 80)
    );
    let names: Vec<&str> = r.slices.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web-a", "web-b"]);
    let a = &r.slices[0];
    assert_eq!(a.address_type, "IPv4");
    assert_eq!(a.ports[0].port, Some(8080));
    assert_eq!(a.endpoints[0].ready, Some(false));
    assert_eq!(a.endpoints[1].addresses, ["10.0.0.1"]);
    assert_eq!(a.endpoints[1].zone, "us-east-1a");
    let absent = report(&web(), None, &[]);
    assert!(!absent.present);
    let mut headless = service();
    headless["spec"]["clusterIP"] = json!("None");
    assert!(report(&web(), Some(&headless), &[]).headless);
}

#[test]
fn only_changed_services_are_sent() {
    let a = report(&web(), Some(&service()), &[slice("web-a", "web", &[true])]);
    let other = ServiceRef {
        namespace: "shop".into(),
        name: "api".into(),
        work: "api-service".into(),
    };
    let b = report(&other, None, &[]);
    let sent: BTreeMap<_, _> = [(web(), a.clone()), (other.clone(), b.clone())].into();
    let mut now = sent.clone();
    assert!(changed(&sent, &now).is_empty());
    let a2 = report(&web(), Some(&service()), &[slice("web-a", "web", &[false])]);
    now.insert(web(), a2.clone());
    assert_eq!(changed(&sent, &now), [&a2]);
}

async fn next(rx: &mut mpsc::Receiver<AgentMessage>) -> ServiceEndpoints {
    let m = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a report in time")
        .expect("the task runs");
    match m.message {
        Some(agent_message::Message::Endpoints(e)) => e,
        other => panic!("unexpected message {other:?}"),
    }
}

#[tokio::test]
async fn the_task_sends_everything_then_changes_only() {
    let member = Arc::new(FakeMember::new());
    member.insert(obj("Service", "", "web"), service());
    member.insert(
        obj("EndpointSlice", "discovery.k8s.io", "web-a"),
        slice("web-a", "web", &[true]),
    );
    member.insert(
        obj("EndpointSlice", "discovery.k8s.io", "api-a"),
        slice("api-a", "api", &[true]),
    );
    let (exports, rx_exports) = watch::channel(Vec::new());
    let (tx, mut rx) = mpsc::channel(16);
    let counters = Arc::new(crate::metrics::Metrics::default());
    let task = tokio::spawn(run(
        member.clone(),
        rx_exports,
        tx,
        Duration::from_millis(50),
        counters.clone(),
    ));
    // Nothing exported: one full, empty report.
    let first = next(&mut rx).await;
    assert!(first.full);
    assert!(first.exported.is_empty() && first.services.is_empty());
    exports.send_replace(vec![web()]);
    let full = next(&mut rx).await;
    assert!(full.full);
    assert_eq!(full.exported, ["shop/web"]);
    assert_eq!(full.services.len(), 1);
    // Only the exported Service's slices are read.
    assert_eq!(full.services[0].slices.len(), 1);
    assert_eq!(full.services[0].slices[0].name, "web-a");
    // A readiness change goes out alone; an unchanged period sends nothing.
    member.insert(
        obj("EndpointSlice", "discovery.k8s.io", "web-a"),
        slice("web-a", "web", &[false]),
    );
    let change = next(&mut rx).await;
    assert!(!change.full);
    assert_eq!(change.services[0].slices[0].endpoints[0].ready, Some(false));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err()
    );
    assert_eq!(
        counters
            .endpoint_reports
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    // Another Service exported: the full list, and only the new one's data.
    let api = ServiceRef {
        name: "api".into(),
        work: "api-service".into(),
        ..web()
    };
    exports.send_replace(vec![api.clone(), web()]);
    let more = next(&mut rx).await;
    assert!(more.full);
    assert_eq!(more.exported, ["shop/api", "shop/web"]);
    assert_eq!(more.services.len(), 1);
    assert_eq!(more.services[0].name, "api");
    // Unexported: a full report without it.
    exports.send_replace(Vec::new());
    let gone = next(&mut rx).await;
    assert!(gone.full && gone.exported.is_empty() && gone.services.is_empty());
    // Exported again: its data again.
    exports.send_replace(vec![web()]);
    let again = next(&mut rx).await;
    assert!(again.full && again.services.len() == 1);
    task.abort();
}
