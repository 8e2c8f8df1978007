//! FederatedHPAs: the Kubernetes HPA algorithm over the pods of every member cluster.
//!
//! Every [`SYNC_PERIOD`] (and when the autoscaler or its target appears) the controller sums
//! what the agents of the target's clusters last reported ([`MetricsBook`]), asks
//! [`flotilla_karmada::autoscaling::replicas::decide`] for the replica count, writes it to
//! the template's `scale` subresource as [`MANAGER`] (the scheduler then divides the new
//! total as the policy says), and reports status, conditions and Events as the Kubernetes
//! HPA does. The last scaling decision and its inputs are kept on the target's binding
//! ([`DECISION_ANNOTATION`]). Recommendations and scale events (stabilization, rate
//! policies) are kept in memory, as kube-controller-manager keeps them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_karmada::autoscaling::behavior::{HpaBehavior, HpaCondition, HpaHistory};
use flotilla_karmada::autoscaling::replicas::{
    self, HpaInput, MetricInput, MetricTarget, MetricValueStatus, Observation, PodsAggregate,
    ResourceAggregate, WorkloadPods,
};
use flotilla_proto::v1::WorkloadMetricsReport;
use serde_json::{Value, json};

use super::Decision;
use super::cache::State;
use super::keys::prefix;
use super::write::{self, Write};
use crate::agents::metrics_book::MetricsBook;
use crate::registry::Resource;

/// The field manager of the replicas a FederatedHPA sets.
pub const MANAGER: &str = "flotilla-fhpa";
/// How often each FederatedHPA is evaluated (the Kubernetes HPA's sync period).
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);
/// Annotation on a binding: the last scaling decision of its FederatedHPA and its inputs.
pub use flotilla_proto::SCALE_DECISION_ANNOTATION as DECISION_ANNOTATION;

/// What the FederatedHPA controller keeps outside the store.
#[derive(Debug, Default)]
pub struct Live {
    book: Arc<MetricsBook>,
    history: Mutex<HashMap<String, HpaHistory>>,
}

impl Live {
    /// Reading the members' metrics from `book`.
    pub fn new(book: Arc<MetricsBook>) -> Self {
        Self {
            book,
            history: Mutex::default(),
        }
    }

    fn history(&self, key: &str) -> HpaHistory {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.get(key).cloned().unwrap_or_default()
    }

    fn keep(&self, key: &str, history: Option<HpaHistory>) {
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        match history {
            Some(v) => h.insert(key.to_owned(), v),
            None => h.remove(key),
        };
    }
}

/// Reads the cache and the book for one FederatedHPA, decides, and remembers the history.
pub fn reconcile(state: &State, live: &Live, key: &str, now: jiff::Timestamp) -> Decision {
    let Some(fhpa) = state.scaling.get(key) else {
        live.keep(key, None);
        return Decision::default();
    };
    let Some(res) = state.resource_of_key(prefix::FHPA).cloned() else {
        return Decision::default();
    };
    let target_key = state.scaling.target_of(key);
    let template = target_key.and_then(|t| state.template(t));
    let target_res = target_key.and_then(|t| state.resource_of_key(t)).cloned();
    let binding_key = target_key.and_then(|t| state.binding_key_of_template(t));
    let binding = binding_key.as_deref().and_then(|b| state.binding(b));
    let binding_res = binding_key
        .as_deref()
        .and_then(|b| state.binding_resource(b));
    let mut reports = BTreeMap::new();
    if let (Some(t), Some(b)) = (&template, &binding) {
        let s = |p: &str| {
            t.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let group = s("/apiVersion")
            .split_once('/')
            .map(|(g, _)| g.to_owned())
            .unwrap_or_default();
        let wkey = (
            group,
            s("/kind"),
            s("/metadata/namespace"),
            s("/metadata/name"),
        );
        let fresh = live.book.reports(&wkey);
        for c in super::rendering::targets(b) {
            if let Some(e) = fresh.get(&c.name) {
                reports.insert(c.name.clone(), e.report.clone());
            }
        }
    }
    let out = decide(
        &Inputs {
            fhpa: &fhpa,
            res: &res,
            template: template.as_ref(),
            target_res: target_res.as_ref(),
            binding: binding.as_ref().zip(binding_res.as_ref()),
            reports: &reports,
        },
        &live.history(key),
        now,
    );
    live.keep(key, Some(out.history));
    Decision {
        writes: out.writes,
        after: Some(SYNC_PERIOD),
        concurrent: false,
    }
}

/// Everything one decision reads.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The FederatedHPA.
    pub fhpa: &'a Value,
    /// Its resource.
    pub res: &'a Arc<Resource>,
    /// The target template, if it exists.
    pub template: Option<&'a Value>,
    /// The target's resource.
    pub target_res: Option<&'a Arc<Resource>>,
    /// The target's binding and its resource, if it is propagated.
    pub binding: Option<(&'a Value, &'a Arc<Resource>)>,
    /// The fresh reports of the binding's clusters.
    pub reports: &'a BTreeMap<String, Arc<WorkloadMetricsReport>>,
}

/// The writes of one decision and the history to keep.
#[derive(Debug)]
pub struct Outcome {
    /// Scale, status, Events, the binding's decision record.
    pub writes: Vec<Write>,
    /// Recommendations and scale events.
    pub history: HpaHistory,
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn milli(q: &Value) -> Option<i64> {
    let s = match q {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    flotilla_karmada::quantity::parse_milli(&s).and_then(|m| i64::try_from(m).ok())
}

/// Milli-units as a Kubernetes quantity (`150m`, `2`).
fn quantity(m: i64) -> String {
    if m % 1000 == 0 {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

fn target_of(t: &Value) -> Option<MetricTarget> {
    match str_at(t, "/type") {
        "Utilization" => t
            .get("averageUtilization")
            .and_then(Value::as_i64)
            .and_then(|u| i32::try_from(u).ok())
            .map(MetricTarget::Utilization),
        "AverageValue" => t
            .get("averageValue")
            .and_then(milli)
            .map(MetricTarget::AverageValue),
        "Value" => t.get("value").and_then(milli).map(MetricTarget::Value),
        _ => None,
    }
}

/// Sums the clusters' reports of one metric; `Unavailable` when none has it.
fn summed<A: Default + Clone, T>(
    reports: &BTreeMap<String, Arc<WorkloadMetricsReport>>,
    pick: impl Fn(&WorkloadMetricsReport) -> Option<T>,
    err: impl Fn(&T) -> &str,
    conv: impl Fn(&T) -> A,
    add: impl Fn(&A, &A) -> Option<A>,
    none: &str,
) -> Observation<A> {
    let mut total: Option<A> = None;
    let mut errors = Vec::new();
    for (cluster, r) in reports {
        if !r.error.is_empty() {
            errors.push(format!("{cluster}: {}", r.error));
            continue;
        }
        let Some(m) = pick(r) else { continue };
        if !err(&m).is_empty() {
            errors.push(format!("{cluster}: {}", err(&m)));
            continue;
        }
        let a = conv(&m);
        total = Some(match total {
            None => a,
            Some(t) => match add(&t, &a) {
                Some(s) => s,
                None => return Observation::Unavailable("the clusters' sums overflow".into()),
            },
        });
    }
    match total {
        Some(t) => Observation::Reported(t),
        None if !errors.is_empty() => Observation::Unavailable(errors.join("; ")),
        None => Observation::Unavailable(none.to_owned()),
    }
}

fn add_resource(a: &ResourceAggregate, b: &ResourceAggregate) -> Option<ResourceAggregate> {
    replicas::sum_clusters([a, b]).ok()
}

fn add_pods(a: &PodsAggregate, b: &PodsAggregate) -> Option<PodsAggregate> {
    replicas::sum_clusters([a, b]).ok()
}

/// The HPA algorithm's view of one `spec.metrics` entry and what the clusters reported.
fn metric_input(
    spec: &Value,
    reports: &BTreeMap<String, Arc<WorkloadMetricsReport>>,
) -> MetricInput {
    let ty = str_at(spec, "/type");
    let unknown = || MetricInput::Unknown {
        source_type: ty.to_owned(),
    };
    let resource = |name: &str, container: &str| {
        summed(
            reports,
            |r| {
                r.resources
                    .iter()
                    .find(|m| m.name == name && m.container == container)
                    .cloned()
            },
            |m| m.error.as_str(),
            |m| ResourceAggregate {
                usage_sum: m.usage_milli,
                request_sum: m.request_milli,
                ready_count: m.ready,
                unready_count: m.unready,
                unready_request_sum: m.unready_request_milli,
                missing_count: m.missing,
                missing_request_sum: m.missing_request_milli,
                ignored_count: m.ignored,
                pods_without_request: m.without_request,
            },
            add_resource,
            "no metrics returned from resource metrics API",
        )
    };
    let value = |list: fn(&WorkloadMetricsReport) -> &Vec<flotilla_proto::v1::ValueMetric>,
                 name: &str| {
        summed(
            reports,
            |r| list(r).iter().find(|m| m.name == name).cloned(),
            |m| m.error.as_str(),
            |m| m.value_milli,
            |a, b| a.checked_add(*b),
            "no metrics returned from custom metrics API",
        )
    };
    match ty {
        "Resource" => {
            let name = str_at(spec, "/resource/name");
            let Some(target) = spec.pointer("/resource/target").and_then(target_of) else {
                return unknown();
            };
            MetricInput::Resource {
                name: name.to_owned(),
                target,
                observation: resource(name, ""),
            }
        }
        "ContainerResource" => {
            let name = str_at(spec, "/containerResource/name");
            let container = str_at(spec, "/containerResource/container");
            let Some(target) = spec
                .pointer("/containerResource/target")
                .and_then(target_of)
            else {
                return unknown();
            };
            MetricInput::ContainerResource {
                name: name.to_owned(),
                container: container.to_owned(),
                target,
                observation: resource(name, container),
            }
        }
        "Pods" => {
            let name = str_at(spec, "/pods/metric/name");
            let Some(target) = spec.pointer("/pods/target").and_then(target_of) else {
                return unknown();
            };
            MetricInput::Pods {
                name: name.to_owned(),
                target,
                observation: summed(
                    reports,
                    |r| r.pods_metrics.iter().find(|m| m.name == name).cloned(),
                    |m| m.error.as_str(),
                    |m| PodsAggregate {
                        value_sum: m.value_milli,
                        ready_count: m.ready,
                        unready_count: m.unready,
                        missing_count: m.missing,
                        ignored_count: m.ignored,
                    },
                    add_pods,
                    "no metrics returned from custom metrics API",
                ),
            }
        }
        "Object" => {
            let name = str_at(spec, "/object/metric/name");
            let Some(target) = spec.pointer("/object/target").and_then(target_of) else {
                return unknown();
            };
            MetricInput::Object {
                name: name.to_owned(),
                kind: str_at(spec, "/object/describedObject/kind").to_owned(),
                target,
                observation: value(|r| &r.object_metrics, name),
            }
        }
        "External" => {
            let name = str_at(spec, "/external/metric/name");
            let Some(target) = spec.pointer("/external/target").and_then(target_of) else {
                return unknown();
            };
            MetricInput::External {
                name: name.to_owned(),
                target,
                observation: value(|r| &r.external_metrics, name),
            }
        }
        _ => unknown(),
    }
}

/// `spec.behavior` in the algorithm's types (tolerances are quantities in the API).
fn behavior_of(v: &Value) -> Option<HpaBehavior> {
    let mut b = v.clone();
    for dir in ["scaleUp", "scaleDown"] {
        if let Some(t) = b.pointer(&format!("/{dir}/tolerance")).cloned() {
            let f = milli(&t).map(|m| m as f64 / 1000.0);
            b[dir]["tolerance"] = json!(f);
        }
    }
    serde_json::from_value(b).ok()
}

/// A condition in the API's form, keeping the transition time while its status holds.
fn condition(c: &HpaCondition, previous: &[Value], now: &str) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    let prev = previous.iter().find(|p| p.get("type") == v.get("type"));
    let time = prev
        .filter(|p| p.get("status") == v.get("status"))
        .and_then(|p| p.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    v["lastTransitionTime"] = time;
    v
}

/// `status.currentMetrics[]` of one metric.
fn metric_status(spec: &Value, s: &MetricValueStatus) -> Value {
    let mut current = json!({});
    if let Some(u) = s.average_utilization {
        current["averageUtilization"] = json!(u);
    }
    if let Some(a) = s.average_value {
        current["averageValue"] = json!(quantity(a));
    }
    if let Some(v) = s.value {
        current["value"] = json!(quantity(v));
    }
    let ty = str_at(spec, "/type");
    let field = match ty {
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        "Pods" => "pods",
        "Object" => "object",
        _ => "external",
    };
    let mut source = spec.get(field).cloned().unwrap_or_else(|| json!({}));
    if let Some(o) = source.as_object_mut() {
        o.remove("target");
        o.insert("current".into(), current);
    }
    json!({"type": ty, field: source})
}

/// The pure decision for one FederatedHPA.
pub fn decide(i: &Inputs<'_>, history: &HpaHistory, now: jiff::Timestamp) -> Outcome {
    let now_s = now.to_string();
    let fhpa = i.fhpa;
    let previous: Vec<Value> = fhpa
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut status = fhpa.get("status").cloned().unwrap_or_else(|| json!({}));
    status["observedGeneration"] = fhpa
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let mut writes = Vec::new();
    let event = |type_: &'static str, reason: &'static str, message: String| Write::Event {
        res: i.res.clone(),
        object: fhpa.clone(),
        type_,
        reason,
        message,
    };
    let reference = format!(
        "{}/{}",
        str_at(fhpa, "/spec/scaleTargetRef/kind"),
        str_at(fhpa, "/spec/scaleTargetRef/name")
    );
    // The target must exist, be scalable and be propagated.
    let problem = match (i.template, i.target_res, i.binding) {
        (None, _, _) | (_, None, _) => Some((
            "AbleToScale",
            "FailedGetScale",
            format!(
                "the HPA controller was unable to get the target's current scale: {reference} not found"
            ),
        )),
        (_, Some(r), _) if !r.scale => Some((
            "AbleToScale",
            "FailedGetScale",
            format!(
                "the HPA controller was unable to get the target's current scale: {} has no scale subresource",
                r.kind
            ),
        )),
        (_, _, None) => Some((
            "ScalingActive",
            "FailedGetResourceMetric",
            format!(
                "{reference} is not propagated to any cluster: propagate it with a PropagationPolicy"
            ),
        )),
        _ => None,
    };
    if let Some((ty, reason, message)) = problem {
        let cond = json!({"type": ty, "status": "False", "reason": reason, "message": message});
        let mut conds: Vec<Value> = previous
            .iter()
            .filter(|p| p["type"] != ty)
            .cloned()
            .collect();
        let mut c = cond;
        c["lastTransitionTime"] = previous
            .iter()
            .find(|p| p["type"] == ty && p["status"] == "False" && p["reason"] == reason)
            .and_then(|p| p.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now_s));
        conds.push(c);
        conds.sort_by_key(|c| c["type"].as_str().unwrap_or_default().to_owned());
        let changed = previous != conds;
        status["conditions"] = json!(conds);
        if changed {
            writes.push(event(
                "Warning",
                if reason == "FailedGetScale" {
                    "FailedGetScale"
                } else {
                    "FailedGetResourceMetric"
                },
                message,
            ));
        }
        writes.extend(write::status(i.res, fhpa, status));
        return Outcome {
            writes,
            history: history.clone(),
        };
    }
    let (Some(template), Some(target_res), Some((binding, binding_res))) =
        (i.template, i.target_res, i.binding)
    else {
        return Outcome {
            writes,
            history: history.clone(),
        };
    };
    let current = template
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .and_then(|r| i32::try_from(r).ok())
        .unwrap_or(1);
    let specs: Vec<Value> = match fhpa.pointer("/spec/metrics").and_then(Value::as_array) {
        Some(m) if !m.is_empty() => m.clone(),
        _ => vec![flotilla_karmada::autoscaling::default_metric()],
    };
    let pods: u32 = i
        .reports
        .values()
        .fold(0u32, |a, r| a.saturating_add(r.pods));
    let int = |p: &str| {
        template
            .pointer(p)
            .and_then(Value::as_i64)
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0)
    };
    let input = HpaInput {
        current_replicas: current,
        min_replicas: fhpa
            .pointer("/spec/minReplicas")
            .and_then(Value::as_i64)
            .and_then(|v| i32::try_from(v).ok()),
        max_replicas: fhpa
            .pointer("/spec/maxReplicas")
            .and_then(Value::as_i64)
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(current),
        metrics: specs.iter().map(|s| metric_input(s, i.reports)).collect(),
        behavior: fhpa.pointer("/spec/behavior").and_then(behavior_of),
        tolerance: replicas::DEFAULT_TOLERANCE,
        downscale_stabilization_seconds:
            flotilla_karmada::autoscaling::behavior::DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
        workload: WorkloadPods {
            status_replicas: int("/status/replicas"),
            pods,
            running_ready_pods: u32::try_from(int("/status/readyReplicas")).unwrap_or(0),
        },
        // Karmada's calibration: a workload duplicated to N clusters has N pods per
        // template replica (for a divided one this is 1).
        member_spec_replicas: binding
            .pointer("/spec/clusters")
            .and_then(Value::as_array)
            .map(|c| {
                c.iter()
                    .filter_map(|t| t.get("replicas").and_then(Value::as_i64))
                    .fold(0i64, i64::saturating_add)
            })
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n > 0),
    };
    let d = replicas::decide(&input, history, now.as_second());
    let mut kept = d.history.clone();
    if d.rescale {
        kept = d.history_after_write();
        writes.push(Write::Scale {
            res: target_res.clone(),
            ns: Some(str_at(template, "/metadata/namespace").to_owned()).filter(|s| !s.is_empty()),
            name: str_at(template, "/metadata/name").to_owned(),
            replicas: i64::from(d.desired_replicas),
            manager: MANAGER,
        });
        let reason = d.rescale_reason.clone().unwrap_or_default();
        writes.push(event(
            "Normal",
            "SuccessfulRescale",
            format!("New size: {}; reason: {reason}", d.desired_replicas),
        ));
        status["lastScaleTime"] = json!(now_s);
        let clusters: BTreeMap<&String, Value> = i
            .reports
            .iter()
            .map(|(c, r)| {
                let resources: Vec<Value> = r
                    .resources
                    .iter()
                    .map(|m| {
                        json!({"name": m.name, "usage": quantity(m.usage_milli),
                        "requests": quantity(m.request_milli), "ready": m.ready,
                        "unready": m.unready, "missing": m.missing})
                    })
                    .collect();
                (c, json!({"pods": r.pods, "resources": resources}))
            })
            .collect();
        let record = json!({
            "time": now_s,
            "federatedHPA": str_at(fhpa, "/metadata/name"),
            "from": current, "to": d.desired_replicas, "reason": reason,
            "metrics": d.current_metrics,
            "clusters": clusters,
        });
        writes.push(Write::merge_patch(
            binding_res,
            binding
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
            str_at(binding, "/metadata/name"),
            json!({"metadata": {"annotations": {DECISION_ANNOTATION: record.to_string()}}}),
        ));
    }
    status["currentReplicas"] = json!(current);
    if let Some(n) = d.status_desired_replicas {
        status["desiredReplicas"] = json!(n);
    }
    let current_metrics: Vec<Value> = specs
        .iter()
        .zip(d.current_metrics.iter())
        .filter_map(|(s, m)| m.as_ref().map(|m| metric_status(s, m)))
        .collect();
    if !d.current_metrics.is_empty() {
        status["currentMetrics"] = json!(current_metrics);
    }
    let mut conds: Vec<Value> = vec![condition(&d.able_to_scale, &previous, &now_s)];
    for (c, ty) in [
        (&d.scaling_active, "ScalingActive"),
        (&d.scaling_limited, "ScalingLimited"),
    ] {
        match c {
            Some(c) => conds.push(condition(c, &previous, &now_s)),
            None => conds.extend(previous.iter().find(|p| p["type"] == ty).cloned()),
        }
    }
    // A metric that fails is reported once when it starts failing.
    let was_active = previous
        .iter()
        .find(|p| p["type"] == "ScalingActive")
        .map(|p| (p["status"].clone(), p["reason"].clone()));
    if let Some(c) = &d.scaling_active
        && c.status == flotilla_karmada::autoscaling::behavior::ConditionStatus::False
        && was_active != Some((json!("False"), json!(c.reason)))
    {
        writes.push(event(
            "Warning",
            "FailedComputeMetricsReplicas",
            c.message.clone(),
        ));
    }
    status["conditions"] = json!(conds);
    writes.extend(write::status(i.res, fhpa, status));
    Outcome {
        writes,
        history: kept,
    }
}

#[cfg(test)]
mod tests;
