//! FederatedHPA and CronFederatedHPA admission: Karmada's webhooks, which apply the
//! Kubernetes HorizontalPodAutoscaler rules with `minReplicas` of at least 1, and CronJob's
//! schedule and time zone rules. External metrics are accepted.
//!
//! Rules run on the object as written, before [`crate::defaults`] fills it in, so a part that
//! defaulting supplies (`minReplicas`, a direction's `policies`) may be absent.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Errs;
use super::names::{is_dns1123_label, is_qualified_name};
use super::policy::validate_label_selector;
use crate::autoscaling::cron::{Schedule, time_zone};
use crate::quantity::parse_milli;
use crate::types::{
    CronFederatedHPA, CrossVersionObjectReference, FederatedHPA, HPAScalingRules, MetricIdentifier,
    MetricSpec, MetricTarget, Quantity,
};

/// The API group of the autoscaling kinds.
const GROUP: &str = "autoscaling.karmada.io";
/// The apiVersion of a FederatedHPA a CronFederatedHPA may target.
const FHPA_API_VERSION: &str = "autoscaling.karmada.io/v1alpha1";

const MAX_PERIOD_SECONDS: i32 = 1800;
const MAX_STABILIZATION_WINDOW_SECONDS: i32 = 3600;
const MAX_RULE_NAME: usize = 32;
const MAX_HISTORY_LIMIT: i32 = 32;

const METRIC_SOURCE_TYPES: &[&str] = &[
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];
const QUANTITY_FORMAT: &str = "quantities must match the regular expression \
     '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

pub(super) fn validate_federated_hpa(o: &FederatedHPA, raw: &Value, errs: &mut Errs) {
    let s = &o.spec;
    validate_object_ref(&s.scale_target_ref, "spec.scaleTargetRef", errs);
    if let Some(min) = s.min_replicas
        && min < 1
    {
        errs.invalid(
            "spec.minReplicas",
            min,
            "must be greater than or equal to 1",
        );
    }
    if raw.pointer("/spec/maxReplicas").is_none_or(Value::is_null) {
        errs.required("spec.maxReplicas", "");
    } else {
        if s.max_replicas < 1 {
            errs.invalid("spec.maxReplicas", s.max_replicas, "must be greater than 0");
        }
        // Karmada validates after defaulting, where minReplicas is at least 1.
        if s.max_replicas < s.min_replicas.unwrap_or(1) {
            errs.invalid(
                "spec.maxReplicas",
                s.max_replicas,
                "must be greater than or equal to `minReplicas`",
            );
        }
    }
    for (i, m) in s.metrics.iter().enumerate() {
        validate_metric(m, &format!("spec.metrics[{i}]"), errs);
    }
    if let Some(b) = &s.behavior {
        for (dir, rules) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
            if let Some(r) = rules {
                validate_scaling_rules(r, &format!("spec.behavior.{dir}"), errs);
            }
        }
    }
    if let Some(st) = &o.status {
        for (field, v) in [
            ("status.currentReplicas", st.current_replicas),
            ("status.desiredReplicas", st.desired_replicas),
        ] {
            if v < 0 {
                errs.invalid(field, v, "must be greater than or equal to 0");
            }
        }
    }
}

/// A CrossVersionObjectReference: kind and name required, both usable in a URL path.
fn validate_object_ref(r: &CrossVersionObjectReference, base: &str, errs: &mut Errs) {
    for (field, v) in [("kind", &r.kind), ("name", &r.name)] {
        let f = format!("{base}.{field}");
        if v.is_empty() {
            errs.required(&f, "");
        } else {
            validate_path_segment(v, &f, errs);
        }
    }
}

/// Kubernetes' `IsValidPathSegmentName`.
fn validate_path_segment(v: &str, field: &str, errs: &mut Errs) {
    if v == "." || v == ".." {
        errs.invalid(field, v, &format!("may not be '{v}'"));
    }
    for c in ["/", "%"] {
        if v.contains(c) {
            errs.invalid(field, v, &format!("may not contain '{c}'"));
        }
    }
}

fn validate_metric(m: &MetricSpec, base: &str, errs: &mut Errs) {
    let present: Vec<&str> = [
        ("object", m.object.is_some()),
        ("pods", m.pods.is_some()),
        ("resource", m.resource.is_some()),
        ("containerResource", m.container_resource.is_some()),
        ("external", m.external.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    let expected = match m.type_.as_str() {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        "External" => "external",
        "" => {
            errs.required(&format!("{base}.type"), "must specify a metric source type");
            ""
        }
        other => {
            errs.not_supported(&format!("{base}.type"), other, METRIC_SOURCE_TYPES);
            ""
        }
    };
    if !expected.is_empty() && !present.contains(&expected) {
        errs.required(
            &format!("{base}.{expected}"),
            "must populate information for the given metric source",
        );
    }
    if present.len() > 1 {
        for p in present.iter().filter(|p| **p != expected) {
            errs.forbidden(
                &format!("{base}.{p}"),
                "must populate the given metric source only",
            );
        }
    }
    let before = errs.0.len();
    let target = match expected {
        "object" => m.object.as_ref().map(|src| {
            let f = format!("{base}.object");
            validate_object_ref(&src.described_object, &format!("{f}.describedObject"), errs);
            validate_metric_id(&src.metric, &format!("{f}.metric"), errs);
            validate_target(&src.target, &f, &["Value", "AverageValue"], errs);
            if src.target.value.is_none() && src.target.average_value.is_none() {
                errs.required(
                    &format!("{f}.target.averageValue"),
                    "must set either a target value or averageValue",
                );
            }
            (&src.target, f)
        }),
        "pods" => m.pods.as_ref().map(|src| {
            let f = format!("{base}.pods");
            validate_metric_id(&src.metric, &format!("{f}.metric"), errs);
            validate_target(&src.target, &f, &["AverageValue"], errs);
            if src.target.average_value.is_none() {
                errs.required(
                    &format!("{f}.target.averageValue"),
                    "must specify a positive target averageValue",
                );
            }
            (&src.target, f)
        }),
        "resource" => m.resource.as_ref().map(|src| {
            let f = format!("{base}.resource");
            validate_resource_name(&src.name, &format!("{f}.name"), errs);
            validate_utilization_target(&src.target, &f, errs);
            (&src.target, f)
        }),
        "containerResource" => m.container_resource.as_ref().map(|src| {
            let f = format!("{base}.containerResource");
            validate_resource_name(&src.name, &format!("{f}.name"), errs);
            if src.container.is_empty() {
                errs.required(&format!("{f}.container"), "must specify a container");
            } else if !is_dns1123_label(&src.container) {
                errs.invalid(
                    &format!("{f}.container"),
                    &src.container,
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric \
                     characters or '-', and must start and end with an alphanumeric character",
                );
            }
            validate_utilization_target(&src.target, &f, errs);
            (&src.target, f)
        }),
        "external" => m.external.as_ref().map(|src| {
            let f = format!("{base}.external");
            validate_metric_id(&src.metric, &format!("{f}.metric"), errs);
            validate_target(&src.target, &f, &["Value", "AverageValue"], errs);
            let t = &src.target;
            if t.value.is_none() && t.average_value.is_none() {
                errs.required(
                    &format!("{f}.target.averageValue"),
                    "must set either a target value for metric or a per-pod target",
                );
            } else if t.value.is_some() && t.average_value.is_some() {
                errs.forbidden(
                    &format!("{f}.target.value"),
                    "may not set both a target value for metric and a per-pod target",
                );
            }
            (&src.target, f)
        }),
        _ => None,
    };
    // With nothing else wrong, the field the target type names must be the one set.
    if let Some((t, f)) = target
        && errs.0.len() == before
    {
        let (field, set) = match t.type_.as_str() {
            "Utilization" => ("averageUtilization", t.average_utilization.is_some()),
            "Value" => ("value", t.value.is_some()),
            _ => ("averageValue", t.average_value.is_some()),
        };
        if !set {
            errs.required(
                &format!("{f}.target.{field}"),
                &format!("must be set for a target of type {}", t.type_),
            );
        }
    }
}

/// Resource and ContainerResource targets: a utilization or an average value, not both.
fn validate_utilization_target(t: &MetricTarget, base: &str, errs: &mut Errs) {
    validate_target(t, base, &["Utilization", "AverageValue"], errs);
    match (t.average_utilization.is_some(), t.average_value.is_some()) {
        (false, false) => errs.required(
            &format!("{base}.target.averageUtilization"),
            "must set either a target raw value or a target utilization",
        ),
        (true, true) => errs.forbidden(
            &format!("{base}.target.averageValue"),
            "may not set both a target raw value and a target utilization",
        ),
        _ => {}
    }
}

/// A resource name: `cpu`, `memory`, `ephemeral-storage`, `hugepages-<size>`, or a
/// domain-prefixed extended resource.
fn validate_resource_name(name: &str, field: &str, errs: &mut Errs) {
    if name.is_empty() {
        errs.required(field, "must specify a resource name");
    } else if !name.contains('/') {
        let standard = matches!(name, "cpu" | "memory" | "ephemeral-storage")
            || name
                .strip_prefix("hugepages-")
                .is_some_and(|s| !s.is_empty());
        if !standard {
            errs.invalid(field, name, "must be a standard resource for containers");
        }
    } else if !is_qualified_name(name) {
        errs.invalid(
            field,
            name,
            "must be a qualified name such as `example.com/gpu`",
        );
    }
}

fn validate_metric_id(id: &MetricIdentifier, base: &str, errs: &mut Errs) {
    let f = format!("{base}.name");
    if id.name.is_empty() {
        errs.required(&f, "must specify a metric name");
    } else {
        validate_path_segment(&id.name, &f, errs);
    }
    if let Some(sel) = &id.selector {
        validate_label_selector(sel, &format!("{base}.selector"), errs);
    }
}

/// The target of the source at `base`; `allowed` are the target types that source takes.
fn validate_target(t: &MetricTarget, base: &str, allowed: &[&str], errs: &mut Errs) {
    let f = format!("{base}.target");
    match t.type_.as_str() {
        "" => errs.required(&format!("{f}.type"), "must specify a metric target type"),
        "Utilization" | "Value" | "AverageValue" => {
            errs.one_of(&format!("{f}.type"), &t.type_, allowed, false);
        }
        other => errs.invalid(
            &format!("{f}.type"),
            other,
            "must be either Utilization, Value, or AverageValue",
        ),
    }
    for (field, q) in [("value", &t.value), ("averageValue", &t.average_value)] {
        if let Some(q) = q {
            match parse_milli(&q.0) {
                None => errs.invalid(&format!("{f}.{field}"), &q.0, QUANTITY_FORMAT),
                Some(v) if v <= 0 => {
                    errs.invalid(&format!("{f}.{field}"), &q.0, "must be positive")
                }
                Some(_) => {}
            }
        }
    }
    if let Some(u) = t.average_utilization
        && u < 1
    {
        errs.invalid(
            &format!("{f}.averageUtilization"),
            u,
            "must be greater than 0",
        );
    }
}

fn validate_scaling_rules(r: &HPAScalingRules, base: &str, errs: &mut Errs) {
    if let Some(w) = r.stabilization_window_seconds {
        let f = format!("{base}.stabilizationWindowSeconds");
        if w < 0 {
            errs.invalid(&f, w, "must be greater than or equal to zero");
        } else if w > MAX_STABILIZATION_WINDOW_SECONDS {
            errs.invalid(
                &f,
                w,
                &format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            );
        }
    }
    if let Some(p) = &r.select_policy {
        errs.one_of(
            &format!("{base}.selectPolicy"),
            p,
            &["Disabled", "Max", "Min"],
            false,
        );
    }
    // Absent policies get the direction's defaults; an explicitly empty list stays empty.
    if let Some(policies) = &r.policies {
        if policies.is_empty() {
            errs.required(
                &format!("{base}.policies"),
                "must specify at least one Policy",
            );
        }
        for (i, p) in policies.iter().enumerate() {
            let f = format!("{base}.policies[{i}]");
            errs.one_of(&format!("{f}.type"), &p.type_, &["Percent", "Pods"], false);
            if p.value <= 0 {
                errs.invalid(&format!("{f}.value"), p.value, "must be greater than zero");
            }
            if p.period_seconds <= 0 {
                errs.invalid(
                    &format!("{f}.periodSeconds"),
                    p.period_seconds,
                    "must be greater than zero",
                );
            } else if p.period_seconds > MAX_PERIOD_SECONDS {
                errs.invalid(
                    &format!("{f}.periodSeconds"),
                    p.period_seconds,
                    &format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
                );
            }
        }
    }
    if let Some(Quantity(q)) = &r.tolerance {
        let f = format!("{base}.tolerance");
        match parse_milli(q) {
            None => errs.invalid(&f, q, QUANTITY_FORMAT),
            Some(v) if v < 0 => errs.invalid(&f, q, "must be greater than or equal to 0"),
            Some(_) => {}
        }
    }
}

pub(super) fn validate_cron_federated_hpa(o: &CronFederatedHPA, raw: &Value, errs: &mut Errs) {
    let s = &o.spec;
    let target = &s.scale_target_ref;
    let group = target.api_version.split_once('/').map_or("", |(g, _)| g);
    let scales_fhpa = group == GROUP;
    if scales_fhpa {
        if target.kind != "FederatedHPA" {
            errs.invalid(
                "spec.scaleTargetRef.kind",
                &target.kind,
                &format!(
                    "invalid scaleTargetRef kind: {}, only support FederatedHPA",
                    target.kind
                ),
            );
            return;
        }
        if target.api_version != FHPA_API_VERSION {
            errs.not_supported(
                "spec.scaleTargetRef.apiVersion",
                &target.api_version,
                &[FHPA_API_VERSION],
            );
        }
    }
    validate_object_ref(target, "spec.scaleTargetRef", errs);
    if raw.pointer("/spec/rules").is_none_or(Value::is_null) {
        errs.required("spec.rules", "");
    }
    let mut names = BTreeSet::new();
    for (i, r) in s.rules.iter().enumerate() {
        let f = format!("spec.rules[{i}]");
        if r.name.is_empty() {
            errs.required(&format!("{f}.name"), "");
        } else if r.name.chars().count() > MAX_RULE_NAME {
            errs.invalid(
                &format!("{f}.name"),
                &r.name,
                &format!("must be no more than {MAX_RULE_NAME} characters"),
            );
        }
        if !names.insert(r.name.as_str()) {
            errs.duplicate(&format!("{f}.name"), &r.name);
        }
        if r.schedule.is_empty() {
            errs.required(&format!("{f}.schedule"), "");
        } else if let Err(e) = Schedule::parse(&r.schedule) {
            errs.invalid(&format!("{f}.schedule"), &r.schedule, &e.to_string());
        }
        if let Some(tz) = &r.time_zone
            && let Err(e) = time_zone(tz)
        {
            errs.invalid(&format!("{f}.timeZone"), tz, &e.to_string());
        }
        for (field, v, min) in [
            ("successfulHistoryLimit", r.successful_history_limit, 1),
            ("failedHistoryLimit", r.failed_history_limit, 0),
        ] {
            if let Some(v) = v
                && !(min..=MAX_HISTORY_LIMIT).contains(&v)
            {
                errs.invalid(
                    &format!("{f}.{field}"),
                    v,
                    &format!("must be between {min} and {MAX_HISTORY_LIMIT}, inclusive"),
                );
            }
        }
        if scales_fhpa {
            if r.target_min_replicas.is_none() && r.target_max_replicas.is_none() {
                errs.required(
                    &format!("{f}.targetMaxReplicas"),
                    "targetMinReplicas and targetMaxReplicas cannot be nil at the same time \
                     if you want to scale FederatedHPA",
                );
            }
            for (field, v) in [
                ("targetMinReplicas", r.target_min_replicas),
                ("targetMaxReplicas", r.target_max_replicas),
            ] {
                if let Some(v) = v
                    && v <= 0
                {
                    errs.invalid(&format!("{f}.{field}"), v, "must be greater than 0");
                }
            }
            if let (Some(min), Some(max)) = (r.target_min_replicas, r.target_max_replicas)
                && min > max
                && max > 0
            {
                errs.invalid(
                    &format!("{f}.targetMinReplicas"),
                    min,
                    "must be less than or equal to targetMaxReplicas",
                );
            }
        } else {
            match r.target_replicas {
                None => errs.required(
                    &format!("{f}.targetReplicas"),
                    &format!(
                        "targetReplicas cannot be nil if you want to scale {}",
                        target.kind
                    ),
                ),
                Some(v) if v < 0 => errs.invalid(
                    &format!("{f}.targetReplicas"),
                    v,
                    "must be greater than or equal to 0",
                ),
                Some(_) => {}
            }
        }
    }
}
