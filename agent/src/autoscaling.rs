//! Metrics of the workloads the hub autoscales.
//!
//! A Work whose workload a FederatedHPA targets carries the metrics to measure in
//! [`flotilla_proto::METRICS_ANNOTATION`]. Every [`flotilla_proto::METRICS_PERIOD`] the agent
//! reads the member's `metrics.k8s.io` (and `custom.metrics.k8s.io`,
//! `external.metrics.k8s.io` where they are served) for the workload's pods and sends sums,
//! grouped as the Kubernetes HPA groups pods, so the hub can run the HPA algorithm over the
//! pods of every member together. Nothing here listens: the reports go over the work stream.
//!
//! The grouping is pure ([`resource_sums`], [`pods_sums`]); the reads are in
//! [`crate::kube_member`].

use std::collections::HashMap;
use std::time::Duration;

use flotilla_proto::v1::{
    AgentMessage, ManifestIdentifier, PodsMetricSums, ResourceMetricSums, WorkloadMetrics,
    WorkloadMetricsReport, agent_message,
};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::member::{Member, ObjectRef};
use crate::quantity::parse_milli;

/// How long after a pod starts its cpu samples may still be start-up noise (the HPA's
/// `--horizontal-pod-autoscaler-cpu-initialization-period`, 5 minutes).
pub const CPU_INITIALIZATION_PERIOD: Duration = Duration::from_secs(300);
/// How long after a pod starts a readiness change still counts as its first (the HPA's
/// `--horizontal-pod-autoscaler-initial-readiness-delay`, 30 s).
pub const INITIAL_READINESS_DELAY: Duration = Duration::from_secs(30);
/// Most workloads measured per report (the rest wait for the next period).
pub const MAX_TARGETS: usize = 500;

/// One metric a FederatedHPA asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricRequest {
    /// A resource of the whole pod (`cpu`, `memory`), or of one container.
    Resource {
        /// Resource name.
        name: String,
        /// The container, for a ContainerResource metric.
        container: Option<String>,
    },
    /// A custom metric per pod.
    Pods {
        /// Metric name.
        name: String,
        /// Metric label selector (may be empty).
        selector: String,
    },
    /// A custom metric describing one object.
    Object {
        /// Metric name.
        name: String,
        /// Metric label selector (may be empty).
        selector: String,
        /// The described object's apiVersion.
        api_version: String,
        /// Its kind.
        kind: String,
        /// Its name.
        object: String,
    },
    /// A metric from outside the cluster.
    External {
        /// Metric name.
        name: String,
        /// Metric label selector (may be empty).
        selector: String,
    },
}

/// A workload to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureTarget {
    /// Its Work.
    pub work: String,
    /// The workload.
    pub workload: ObjectRef,
    /// Its pods' label selector, as a string (`app=web,tier in (a,b)`).
    pub selector: String,
    /// What to measure.
    pub metrics: Vec<MetricRequest>,
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// A label selector object (`matchLabels`, `matchExpressions`) as a selector string; `None`
/// when it uses an operator Kubernetes does not know.
pub fn selector_string(sel: &Value) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str()?));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = str_at(e, "/key");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            parts.push(match str_at(e, "/operator") {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_owned(),
                "DoesNotExist" => format!("!{key}"),
                _ => return None,
            });
        }
    }
    Some(parts.join(","))
}

/// The metrics of an annotation value (a JSON list of autoscaling/v2 MetricSpecs); unknown
/// metric types are skipped.
pub fn parse_requests(annotation: &str) -> Vec<MetricRequest> {
    let Ok(Value::Array(specs)) = serde_json::from_str::<Value>(annotation) else {
        return Vec::new();
    };
    let sel = |v: &Value, ptr: &str| v.pointer(ptr).and_then(selector_string).unwrap_or_default();
    let mut out = Vec::new();
    for s in &specs {
        let req = match str_at(s, "/type") {
            "Resource" => MetricRequest::Resource {
                name: str_at(s, "/resource/name").to_owned(),
                container: None,
            },
            "ContainerResource" => MetricRequest::Resource {
                name: str_at(s, "/containerResource/name").to_owned(),
                container: Some(str_at(s, "/containerResource/container").to_owned()),
            },
            "Pods" => MetricRequest::Pods {
                name: str_at(s, "/pods/metric/name").to_owned(),
                selector: sel(s, "/pods/metric/selector"),
            },
            "Object" => MetricRequest::Object {
                name: str_at(s, "/object/metric/name").to_owned(),
                selector: sel(s, "/object/metric/selector"),
                api_version: str_at(s, "/object/describedObject/apiVersion").to_owned(),
                kind: str_at(s, "/object/describedObject/kind").to_owned(),
                object: str_at(s, "/object/describedObject/name").to_owned(),
            },
            "External" => MetricRequest::External {
                name: str_at(s, "/external/metric/name").to_owned(),
                selector: sel(s, "/external/metric/selector"),
            },
            _ => continue,
        };
        if !out.contains(&req) {
            out.push(req);
        }
    }
    out
}

/// The workload to measure for a Work, from its first manifest and the Work's annotation.
pub fn target_of(
    work: &str,
    annotation: Option<&str>,
    manifests: &[Value],
) -> Option<MeasureTarget> {
    let annotation = annotation?;
    let m = manifests.first()?;
    let (group, version) = crate::member::group_version(str_at(m, "/apiVersion"));
    let kind = str_at(m, "/kind");
    Some(MeasureTarget {
        work: work.to_owned(),
        workload: ObjectRef {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            resource: String::new(),
            namespace: str_at(m, "/metadata/namespace").to_owned(),
            name: str_at(m, "/metadata/name").to_owned(),
        },
        selector: m
            .pointer("/spec/selector")
            .and_then(selector_string)
            .unwrap_or_default(),
        metrics: parse_requests(annotation),
    })
}

/// One pod's sample of a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Value in milli-units.
    pub milli: i64,
    /// When it was taken.
    pub timestamp: Option<jiff::Timestamp>,
    /// The window it covers.
    pub window: Duration,
}

/// The samples of a resource in a `PodMetricsList`, by pod name: the sum over the pod's
/// containers (or the one container). A pod with a container lacking the resource has none.
pub fn resource_samples(
    pod_metrics: &[Value],
    resource: &str,
    container: Option<&str>,
) -> HashMap<String, Sample> {
    let mut out = HashMap::new();
    for pm in pod_metrics {
        let Some(sum) = container_sum(
            pm.get("containers"),
            &format!("/usage/{resource}"),
            container,
        ) else {
            continue;
        };
        out.insert(
            str_at(pm, "/metadata/name").to_owned(),
            Sample {
                milli: sum,
                timestamp: str_at(pm, "/timestamp").parse().ok(),
                window: window_of(str_at(pm, "/window")),
            },
        );
    }
    out
}

/// A metrics window such as `10s`, `1m0s` or `30.5s`.
fn window_of(s: &str) -> Duration {
    let mut total = 0f64;
    let mut num = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() || ch == '.' {
            num.push(ch);
            continue;
        }
        let n: f64 = num.parse().unwrap_or(0.0);
        num.clear();
        total += match ch {
            'h' => n * 3600.0,
            'm' => n * 60.0,
            's' => n,
            _ => 0.0,
        };
    }
    Duration::try_from_secs_f64(total).unwrap_or_default()
}

fn ready_condition(pod: &Value) -> Option<(bool, Option<jiff::Timestamp>)> {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| str_at(c, "/type") == "Ready")
        .map(|c| {
            (
                str_at(c, "/status") == "True",
                str_at(c, "/lastTransitionTime").parse().ok(),
            )
        })
}

/// How the HPA counts one pod for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Ignored,
    Unready,
    Missing,
    Ready,
}

/// The HPA's grouping of a pod (`groupPods` in Kubernetes): deleted or failed pods are
/// ignored, pending pods are unready, pods without a sample are missing; for cpu a pod is
/// also unready while its samples may still be start-up noise.
fn group(pod: &Value, sample: Option<&Sample>, cpu: bool, now: jiff::Timestamp) -> Group {
    if pod.pointer("/metadata/deletionTimestamp").is_some()
        || str_at(pod, "/status/phase") == "Failed"
    {
        return Group::Ignored;
    }
    if str_at(pod, "/status/phase") == "Pending" {
        return Group::Unready;
    }
    let Some(sample) = sample else {
        return Group::Missing;
    };
    if !cpu {
        return Group::Ready;
    }
    let start: Option<jiff::Timestamp> = str_at(pod, "/status/startTime").parse().ok();
    let (Some((ready, transition)), Some(start)) = (ready_condition(pod), start) else {
        return Group::Unready;
    };
    let transition = transition.unwrap_or(start);
    let plus = |t: jiff::Timestamp, d: Duration| {
        jiff::SignedDuration::try_from(d)
            .ok()
            .and_then(|d| t.checked_add(d).ok())
            .unwrap_or(t)
    };
    let unready = if plus(start, CPU_INITIALIZATION_PERIOD) > now {
        !ready
            || sample
                .timestamp
                .is_none_or(|ts| ts < plus(transition, sample.window))
    } else {
        !ready && plus(start, INITIAL_READINESS_DELAY) > transition
    };
    if unready {
        Group::Unready
    } else {
        Group::Ready
    }
}

/// The sum of a quantity (at `ptr` in each container) over the containers of a list (or the
/// one named); `None` when no container counts or one lacks the quantity.
fn container_sum(containers: Option<&Value>, ptr: &str, container: Option<&str>) -> Option<i64> {
    let mut sum: i64 = 0;
    let mut seen = false;
    for c in containers.and_then(Value::as_array).into_iter().flatten() {
        if container.is_some_and(|want| want != str_at(c, "/name")) {
            continue;
        }
        seen = true;
        let q = c
            .pointer(ptr)
            .and_then(Value::as_str)
            .and_then(parse_milli)
            .and_then(|m| i64::try_from(m).ok())?;
        sum = sum.saturating_add(q);
    }
    seen.then_some(sum)
}

/// A pod's request of `resource` (of all its containers, or of one), in milli-units;
/// `None` when a container counted requests nothing of it.
fn request_of(pod: &Value, resource: &str, container: Option<&str>) -> Option<i64> {
    container_sum(
        pod.pointer("/spec/containers"),
        &format!("/resources/requests/{resource}"),
        container,
    )
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The sums of a Resource (or ContainerResource) metric over `pods`, grouped as the HPA does.
pub fn resource_sums(
    pods: &[Value],
    samples: &HashMap<String, Sample>,
    resource: &str,
    container: Option<&str>,
    now: jiff::Timestamp,
) -> ResourceMetricSums {
    let mut out = ResourceMetricSums {
        name: resource.to_owned(),
        container: container.unwrap_or_default().to_owned(),
        ..Default::default()
    };
    let (mut ready, mut unready, mut missing, mut ignored, mut without) = (0, 0, 0, 0, 0);
    for pod in pods {
        let sample = samples.get(str_at(pod, "/metadata/name"));
        let g = group(pod, sample, resource == "cpu", now);
        if g == Group::Ignored {
            ignored += 1;
            continue;
        }
        let Some(request) = request_of(pod, resource, container) else {
            without += 1;
            continue;
        };
        match (g, sample) {
            (Group::Ready, Some(s)) => {
                ready += 1;
                out.usage_milli = out.usage_milli.saturating_add(s.milli);
                out.request_milli = out.request_milli.saturating_add(request);
            }
            (Group::Unready, _) => {
                unready += 1;
                out.unready_request_milli = out.unready_request_milli.saturating_add(request);
            }
            _ => {
                missing += 1;
                out.missing_request_milli = out.missing_request_milli.saturating_add(request);
            }
        }
    }
    out.ready = count(ready);
    out.unready = count(unready);
    out.missing = count(missing);
    out.ignored = count(ignored);
    out.without_request = count(without);
    out
}

/// The sums of a Pods metric over `pods` (`samples` by pod name): readiness does not matter
/// for it, pending pods are unready, pods without a sample missing.
pub fn pods_sums(
    pods: &[Value],
    samples: &HashMap<String, i64>,
    name: &str,
    selector: &str,
) -> PodsMetricSums {
    let mut out = PodsMetricSums {
        name: name.to_owned(),
        selector: selector.to_owned(),
        ..Default::default()
    };
    let (mut ready, mut unready, mut missing, mut ignored) = (0, 0, 0, 0);
    for pod in pods {
        let sample = samples.get(str_at(pod, "/metadata/name")).map(|m| Sample {
            milli: *m,
            timestamp: None,
            window: Duration::ZERO,
        });
        match group(pod, sample.as_ref(), false, jiff::Timestamp::UNIX_EPOCH) {
            Group::Ignored => ignored += 1,
            Group::Unready => unready += 1,
            Group::Missing => missing += 1,
            Group::Ready => {
                ready += 1;
                out.value_milli = out
                    .value_milli
                    .saturating_add(sample.map(|s| s.milli).unwrap_or_default());
            }
        }
    }
    out.ready = count(ready);
    out.unready = count(unready);
    out.missing = count(missing);
    out.ignored = count(ignored);
    out
}

/// The values of a custom or external `MetricValueList` by described pod name (custom) or
/// summed (external: key `""`).
pub fn metric_values(list: &Value) -> HashMap<String, i64> {
    let mut out: HashMap<String, i64> = HashMap::new();
    for item in list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(v) = item
            .get("value")
            .and_then(Value::as_str)
            .and_then(parse_milli)
            .and_then(|m| i64::try_from(m).ok())
        else {
            continue;
        };
        let key = str_at(item, "/describedObject/name").to_owned();
        let e = out.entry(key).or_default();
        *e = e.saturating_add(v);
    }
    out
}

/// Whether a report, or one of its metrics, says something could not be read.
pub fn failed(r: &WorkloadMetricsReport) -> bool {
    !r.error.is_empty()
        || r.resources.iter().any(|m| !m.error.is_empty())
        || r.pods_metrics.iter().any(|m| !m.error.is_empty())
        || r.object_metrics
            .iter()
            .chain(&r.external_metrics)
            .any(|m| !m.error.is_empty())
}

/// Sends a report of every target each period while the session lasts. Measuring runs
/// apart from the engine's loop, so slow metrics APIs never delay Work.
pub async fn run<M: Member>(
    member: std::sync::Arc<M>,
    mut targets: watch::Receiver<Vec<MeasureTarget>>,
    tx: mpsc::Sender<AgentMessage>,
    period: Duration,
    counters: std::sync::Arc<crate::metrics::Metrics>,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // A new target is measured at once rather than up to a period later.
            r = targets.changed() => {
                if r.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                tick.reset();
            }
        }
        let list: Vec<MeasureTarget> = targets.borrow().iter().take(MAX_TARGETS).cloned().collect();
        if list.is_empty() {
            continue;
        }
        let mut reports: Vec<WorkloadMetricsReport> = Vec::with_capacity(list.len());
        for t in &list {
            let span = tracing::debug_span!("measure", work = %t.work, workload = %t.workload);
            let mut r = member.measure(t).instrument(span).await;
            // Which workload it is about is the engine's to say, whatever the member returns.
            r.work_name = t.work.clone();
            r.workload = Some(ManifestIdentifier {
                ordinal: 0,
                group: t.workload.group.clone(),
                version: t.workload.version.clone(),
                kind: t.workload.kind.clone(),
                resource: t.workload.resource.clone(),
                namespace: t.workload.namespace.clone(),
                name: t.workload.name.clone(),
            });
            if failed(&r) {
                counters
                    .metrics_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            reports.push(r);
        }
        counters.metrics_reports.fetch_add(
            u64::try_from(reports.len()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
        let msg = AgentMessage {
            message: Some(agent_message::Message::Metrics(WorkloadMetrics { reports })),
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
