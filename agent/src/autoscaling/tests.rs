#![allow(clippy::unwrap_used)]
use serde_json::json;

use super::*;

const NOW: &str = "2026-12-01T12:00:00Z";

fn now() -> jiff::Timestamp {
    NOW.parse().unwrap()
}

/// A running pod started `age_s` ago, Ready since `ready_s` ago, requesting `cpu`.
fn pod(name: &str, age_s: i64, ready_s: i64, ready: bool, cpu: &str) -> Value {
    let at = |s: i64| {
        now()
            .checked_sub(jiff::SignedDuration::from_secs(s))
            .unwrap()
            .to_string()
    };
    json!({"metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]},
        "status": {"phase": "Running", "startTime": at(age_s),
            "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": at(ready_s)}]}})
}

fn sample(milli: i64, age_s: i64) -> Sample {
    Sample {
        milli,
        timestamp: now()
            .checked_sub(jiff::SignedDuration::from_secs(age_s))
            .ok(),
        window: Duration::from_secs(10),
    }
}

#[test]
fn resource_sums_group_pods_as_the_hpa() {
    let pods = vec![
        pod("ready", 600, 590, true, "100m"),
        pod("missing", 600, 590, true, "100m"),
        // Within the cpu initialization period, Ready but its sample predates readiness +
        // window: unready.
        pod("young", 60, 5, true, "200m"),
        // Old pod, not ready, that turned unready long after start: still counted ready
        // (the HPA only distrusts a pod's first readiness).
        pod("flapping", 900, 100, false, "100m"),
        {
            let mut p = pod("pending", 10, 10, false, "100m");
            p["status"]["phase"] = json!("Pending");
            p
        },
        {
            let mut p = pod("deleted", 600, 590, true, "100m");
            p["metadata"]["deletionTimestamp"] = json!(NOW);
            p
        },
    ];
    let samples: HashMap<String, Sample> = [
        ("ready", sample(150, 5)),
        ("young", sample(500, 10)),
        ("flapping", sample(80, 5)),
        ("deleted", sample(999, 5)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let s = resource_sums(&pods, &samples, "cpu", None, now());
    assert_eq!(
        (s.ready, s.unready, s.missing, s.ignored),
        (2, 2, 1, 1),
        "{s:?}"
    );
    assert_eq!(s.usage_milli, 230);
    assert_eq!(s.request_milli, 200);
    assert_eq!(s.unready_request_milli, 300);
    assert_eq!(s.missing_request_milli, 100);
    // Memory has no initialization rules: the young pod counts as ready.
    let mem: HashMap<String, Sample> = [("young".to_owned(), sample(1000, 10))].into();
    let m = resource_sums(&pods, &mem, "memory", None, now());
    assert_eq!((m.ready, m.unready, m.missing), (1, 1, 3), "{m:?}");
}

#[test]
fn pods_without_a_request_are_counted_apart() {
    let mut p = pod("p", 600, 590, true, "100m");
    p["spec"]["containers"][0]["resources"] = json!({});
    let samples: HashMap<String, Sample> = [("p".to_owned(), sample(10, 5))].into();
    let s = resource_sums(&[p], &samples, "cpu", None, now());
    assert_eq!((s.ready, s.without_request), (0, 1));
}

#[test]
fn samples_from_pod_metrics() {
    let list = vec![
        json!({"metadata": {"name": "a"}, "timestamp": NOW, "window": "10.5s",
            "containers": [{"name": "app", "usage": {"cpu": "150m", "memory": "10Mi"}},
                           {"name": "side", "usage": {"cpu": "50m", "memory": "1Mi"}}]}),
        json!({"metadata": {"name": "b"}, "timestamp": NOW, "window": "1m0s",
            "containers": [{"name": "app", "usage": {"memory": "10Mi"}}]}),
    ];
    let cpu = resource_samples(&list, "cpu", None);
    assert_eq!(cpu["a"].milli, 200);
    assert_eq!(cpu["a"].window, Duration::from_millis(10_500));
    // A pod with a container lacking the resource has no sample.
    assert!(!cpu.contains_key("b"));
    let side = resource_samples(&list, "cpu", Some("side"));
    assert_eq!(side["a"].milli, 50);
    assert_eq!(
        resource_samples(&list, "memory", None)["b"].window,
        Duration::from_secs(60)
    );
}

#[test]
fn requests_from_an_annotation() {
    let a = json!([
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
        {"type": "ContainerResource", "containerResource": {"name": "memory", "container": "app", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
        {"type": "Pods", "pods": {"metric": {"name": "rps", "selector": {"matchLabels": {"v": "1"}}}, "target": {"type": "AverageValue", "averageValue": "10"}}},
        {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}}},
        {"type": "Object", "object": {"metric": {"name": "hits"}, "describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"}, "target": {"type": "Value", "value": "5"}}},
        {"type": "Unknown"}
    ]);
    let r = parse_requests(&a.to_string());
    assert_eq!(r.len(), 5);
    assert_eq!(
        r[0],
        MetricRequest::Resource {
            name: "cpu".into(),
            container: None
        }
    );
    assert_eq!(
        r[2],
        MetricRequest::Pods {
            name: "rps".into(),
            selector: "v=1".into()
        }
    );
    assert!(parse_requests("not json").is_empty());
}

#[test]
fn selectors_as_strings() {
    let s = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]},
        {"key": "x", "operator": "Exists"}, {"key": "y", "operator": "DoesNotExist"},
        {"key": "z", "operator": "NotIn", "values": ["c"]}]});
    assert_eq!(
        selector_string(&s).unwrap(),
        "app=web,tier in (a,b),x,!y,z notin (c)"
    );
    assert_eq!(
        selector_string(&json!({"matchExpressions": [{"key": "k", "operator": "Near"}]})),
        None
    );
    let t = target_of(
        "w",
        Some("[]"),
        &[json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "demo"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}}})],
    )
    .unwrap();
    assert_eq!(
        (t.workload.group.as_str(), t.selector.as_str()),
        ("apps", "app=web")
    );
    assert!(target_of("w", None, &[json!({})]).is_none());
}

#[test]
fn reports_with_an_unreadable_metric_count_as_failed() {
    let mut r = WorkloadMetricsReport::default();
    assert!(!failed(&r));
    r.pods_metrics.push(PodsMetricSums {
        error: "not served".into(),
        ..Default::default()
    });
    assert!(failed(&r));
}
