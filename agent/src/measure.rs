//! Reading an autoscaled workload's metrics from the member's metrics APIs
//! (`metrics.k8s.io`, `custom.metrics.k8s.io`, `external.metrics.k8s.io`), grouped by the
//! pure functions of [`crate::autoscaling`].

use std::collections::HashMap;
use std::time::Duration;

use flotilla_proto::v1::{ResourceMetricSums, ValueMetric, WorkloadMetricsReport};
use kube::Client;
use serde_json::Value;

use crate::autoscaling::{self, MeasureTarget, MetricRequest};

/// Longest wait for one metrics request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pods read per page, and pages read at most, for one workload.
const PAGE: u32 = 1000;
const MAX_PAGES: usize = 20;

/// Percent-encodes a query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn get(client: &Client, path: &str) -> Result<Value, String> {
    let req = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(REQUEST_TIMEOUT, client.request::<Value>(req)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(kube::Error::Api(s))) => Err(format!("{} ({})", s.message, s.reason)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())),
    }
}

async fn list_pods(client: &Client, ns: &str, selector: &str) -> Result<Vec<Value>, String> {
    list(
        client,
        &format!("/api/v1/namespaces/{}/pods", encode(ns)),
        selector,
    )
    .await
    .map_err(|e| {
        if e.is_empty() {
            format!(
                "the workload selects more than {} pods",
                PAGE as usize * MAX_PAGES
            )
        } else {
            e
        }
    })
}

/// Lists the objects at `collection` (a list path without query) matching `selector`, page
/// by page. An empty error means there were more than `PAGE * MAX_PAGES`.
pub(crate) async fn list(
    client: &Client,
    collection: &str,
    selector: &str,
) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    let mut cont = String::new();
    for _ in 0..MAX_PAGES {
        let mut path = format!("{collection}?limit={PAGE}");
        if !selector.is_empty() {
            path.push_str(&format!("&labelSelector={}", encode(selector)));
        }
        if !cont.is_empty() {
            path.push_str(&format!("&continue={}", encode(&cont)));
        }
        let page = get(client, &path).await?;
        if let Some(items) = page.get("items").and_then(Value::as_array) {
            out.extend(items.iter().cloned());
        }
        cont = page
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if cont.is_empty() {
            return Ok(out);
        }
    }
    Err(String::new())
}

fn items(v: &Value) -> Vec<Value> {
    v.get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Measures `target`; `plurals` maps an Object metric's (apiVersion, kind) to its resource
/// path segment (`deployments.apps`).
pub async fn measure(
    client: &Client,
    target: &MeasureTarget,
    plurals: &HashMap<(String, String), String>,
) -> WorkloadMetricsReport {
    let w = &target.workload;
    let mut report = WorkloadMetricsReport {
        timestamp: jiff::Timestamp::now().as_second(),
        ..Default::default()
    };
    if target.selector.is_empty() {
        report.error = format!("{} has no spec.selector to find its pods", w.kind);
        return report;
    }
    let ns = w.namespace.as_str();
    let pods = match list_pods(client, ns, &target.selector).await {
        Ok(p) => p,
        Err(e) => {
            report.error = format!("listing the pods failed: {e}");
            return report;
        }
    };
    report.pods = u32::try_from(pods.len()).unwrap_or(u32::MAX);
    let now = jiff::Timestamp::now();
    let mut pod_metrics: Option<Result<Vec<Value>, String>> = None;
    for m in &target.metrics {
        match m {
            MetricRequest::Resource { name, container } => {
                if pod_metrics.is_none() {
                    let path = format!(
                        "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods?labelSelector={}",
                        encode(ns),
                        encode(&target.selector)
                    );
                    pod_metrics = Some(get(client, &path).await.map(|v| items(&v)));
                }
                let sums = match pod_metrics.as_ref() {
                    Some(Ok(list)) => {
                        let samples =
                            autoscaling::resource_samples(list, name, container.as_deref());
                        autoscaling::resource_sums(&pods, &samples, name, container.as_deref(), now)
                    }
                    Some(Err(e)) => ResourceMetricSums {
                        name: name.clone(),
                        container: container.clone().unwrap_or_default(),
                        error: format!("unable to get metrics for resource {name}: {e}"),
                        ..Default::default()
                    },
                    None => ResourceMetricSums::default(),
                };
                report.resources.push(sums);
            }
            MetricRequest::Pods { name, selector } => {
                let path = format!(
                    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{}/pods/*/{}?labelSelector={}&metricLabelSelector={}",
                    encode(ns),
                    encode(name),
                    encode(&target.selector),
                    encode(selector)
                );
                let mut sums = match get(client, &path).await {
                    Ok(list) => autoscaling::pods_sums(
                        &pods,
                        &autoscaling::metric_values(&list),
                        name,
                        selector,
                    ),
                    Err(e) => flotilla_proto::v1::PodsMetricSums {
                        name: name.clone(),
                        selector: selector.clone(),
                        error: format!("unable to get metric {name}: {e}"),
                        ..Default::default()
                    },
                };
                sums.selector = selector.clone();
                report.pods_metrics.push(sums);
            }
            MetricRequest::Object {
                name,
                selector,
                api_version,
                kind,
                object,
            } => {
                let mut v = ValueMetric {
                    name: name.clone(),
                    selector: selector.clone(),
                    object: format!("{api_version} {kind}/{object}"),
                    ..Default::default()
                };
                match plurals.get(&(api_version.clone(), kind.clone())) {
                    None => v.error = format!("the member does not serve {api_version} {kind}"),
                    Some(plural) => {
                        let path = format!(
                            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{}/{}/{}/{}?metricLabelSelector={}",
                            encode(ns),
                            plural,
                            encode(object),
                            encode(name),
                            encode(selector)
                        );
                        match get(client, &path).await {
                            Ok(list) => {
                                v.value_milli = autoscaling::metric_values(&list)
                                    .values()
                                    .fold(0i64, |a, b| a.saturating_add(*b));
                            }
                            Err(e) => v.error = format!("unable to get metric {name}: {e}"),
                        }
                    }
                }
                report.object_metrics.push(v);
            }
            MetricRequest::External { name, selector } => {
                let mut v = ValueMetric {
                    name: name.clone(),
                    selector: selector.clone(),
                    ..Default::default()
                };
                let path = format!(
                    "/apis/external.metrics.k8s.io/v1beta1/namespaces/{}/{}?labelSelector={}",
                    encode(ns),
                    encode(name),
                    encode(selector)
                );
                match get(client, &path).await {
                    Ok(list) => {
                        v.value_milli = autoscaling::metric_values(&list)
                            .values()
                            .fold(0i64, |a, b| a.saturating_add(*b));
                    }
                    Err(e) => v.error = format!("unable to get external metric {name}: {e}"),
                }
                report.external_metrics.push(v);
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("app=web,tier in (a,b)"),
            "app%3Dweb%2Ctier%20in%20%28a%2Cb%29"
        );
        assert_eq!(encode("plain-1.2_x~"), "plain-1.2_x~");
    }
}
