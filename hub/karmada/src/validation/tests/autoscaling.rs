use serde_json::{Value, json};

use super::super::FieldErrorReason::*;
use super::super::*;
use super::run;

fn fhpa(spec: Value) -> Value {
    json!({"apiVersion": "autoscaling.karmada.io/v1alpha1", "kind": "FederatedHPA",
           "metadata": {"name": "web", "namespace": "demo"}, "spec": spec})
}

/// A valid spec with `extra` merged in (a null value removes the field).
fn spec_with(extra: Value) -> Value {
    let mut spec = json!({
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1,
        "maxReplicas": 10,
    });
    if let (Value::Object(s), Value::Object(e)) = (&mut spec, extra) {
        for (k, v) in e {
            if v.is_null() {
                s.remove(&k);
            } else {
                s.insert(k, v);
            }
        }
    }
    fhpa(spec)
}

fn metric(m: Value) -> Value {
    spec_with(json!({"metrics": [m]}))
}

fn behavior(up: Value) -> Value {
    spec_with(json!({"behavior": {"scaleUp": up}}))
}

fn cron(target: Value, rules: Value) -> Value {
    json!({"apiVersion": "autoscaling.karmada.io/v1alpha1", "kind": "CronFederatedHPA",
           "metadata": {"name": "nightly", "namespace": "demo"},
           "spec": {"scaleTargetRef": target, "rules": rules}})
}

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"})
}

fn fhpa_target() -> Value {
    json!({"apiVersion": "autoscaling.karmada.io/v1alpha1", "kind": "FederatedHPA", "name": "web"})
}

#[test]
fn federated_hpa_replicas_and_target() {
    let k = "FederatedHPA";
    run(vec![
        (
            "valid, every metric source",
            k,
            spec_with(json!({"metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "512Mi"}}},
                {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization", "averageUtilization": 50}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps", "selector": {"matchLabels": {"verb": "GET"}}}, "target": {"type": "AverageValue", "averageValue": 100}}},
                {"type": "Object", "object": {"describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"}, "metric": {"name": "requests-per-second"}, "target": {"type": "Value", "value": "2k"}}},
                {"type": "External", "external": {"metric": {"name": "queue_messages_ready"}, "target": {"type": "AverageValue", "averageValue": "30"}}},
                {"type": "External", "external": {"metric": {"name": "queue_lag"}, "target": {"type": "Value", "value": "1"}}},
            ]})),
            vec![],
        ),
        (
            "minimal",
            k,
            spec_with(json!({"minReplicas": null})),
            vec![],
        ),
        (
            "minReplicas 0",
            k,
            spec_with(json!({"minReplicas": 0})),
            vec![("spec.minReplicas", FieldValueInvalid)],
        ),
        (
            "maxReplicas below minReplicas",
            k,
            spec_with(json!({"minReplicas": 5, "maxReplicas": 3})),
            vec![("spec.maxReplicas", FieldValueInvalid)],
        ),
        (
            "maxReplicas 0, minReplicas defaulted to 1",
            k,
            spec_with(json!({"minReplicas": null, "maxReplicas": 0})),
            vec![
                ("spec.maxReplicas", FieldValueInvalid),
                ("spec.maxReplicas", FieldValueInvalid),
            ],
        ),
        (
            "maxReplicas missing",
            k,
            spec_with(json!({"maxReplicas": null})),
            vec![("spec.maxReplicas", FieldValueRequired)],
        ),
        (
            "scaleTargetRef empty",
            k,
            spec_with(json!({"scaleTargetRef": {}})),
            vec![
                ("spec.scaleTargetRef.kind", FieldValueRequired),
                ("spec.scaleTargetRef.name", FieldValueRequired),
            ],
        ),
        (
            "scaleTargetRef names that break a URL",
            k,
            spec_with(
                json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "..", "name": "a/b%"}}),
            ),
            vec![
                ("spec.scaleTargetRef.kind", FieldValueInvalid),
                ("spec.scaleTargetRef.name", FieldValueInvalid),
                ("spec.scaleTargetRef.name", FieldValueInvalid),
            ],
        ),
        (
            "bad metadata name",
            k,
            json!({"kind": "FederatedHPA", "metadata": {"name": "Web"}, "spec": spec_with(json!({}))["spec"]}),
            vec![("metadata.name", FieldValueInvalid)],
        ),
        (
            "status replicas negative",
            k,
            {
                let mut o = spec_with(json!({}));
                o["status"] = json!({"currentReplicas": -1, "desiredReplicas": -2});
                o
            },
            vec![
                ("status.currentReplicas", FieldValueInvalid),
                ("status.desiredReplicas", FieldValueInvalid),
            ],
        ),
    ]);
    let err = validate(
        k,
        &spec_with(json!({"minReplicas": 5, "maxReplicas": 3})),
        true,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.maxReplicas: Invalid value: \"3\": must be greater than or equal to `minReplicas`"
    );
}

#[test]
fn federated_hpa_metric_sources() {
    let k = "FederatedHPA";
    let cpu = |target: Value| {
        metric(json!({"type": "Resource", "resource": {"name": "cpu", "target": target}}))
    };
    run(vec![
        (
            "type missing",
            k,
            metric(
                json!({"resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}),
            ),
            vec![("spec.metrics[0].type", FieldValueRequired)],
        ),
        (
            "type unknown",
            k,
            metric(json!({"type": "Custom"})),
            vec![("spec.metrics[0].type", FieldValueNotSupported)],
        ),
        (
            "source for the type missing",
            k,
            metric(json!({"type": "Pods"})),
            vec![("spec.metrics[0].pods", FieldValueRequired)],
        ),
        (
            "another source besides the type's",
            k,
            metric(json!({"type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1"}}})),
            vec![("spec.metrics[0].pods", FieldValueForbidden)],
        ),
        (
            "only another source",
            k,
            metric(json!({"type": "External",
                "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1"}}})),
            vec![("spec.metrics[0].external", FieldValueRequired)],
        ),
        (
            "resource name missing",
            k,
            metric(
                json!({"type": "Resource", "resource": {"target": {"type": "Utilization", "averageUtilization": 50}}}),
            ),
            vec![("spec.metrics[0].resource.name", FieldValueRequired)],
        ),
        (
            "resource name not a container resource",
            k,
            metric(
                json!({"type": "Resource", "resource": {"name": "pods", "target": {"type": "AverageValue", "averageValue": "1"}}}),
            ),
            vec![("spec.metrics[0].resource.name", FieldValueInvalid)],
        ),
        (
            "extended and huge-page resources",
            k,
            spec_with(json!({"metrics": [
                {"type": "Resource", "resource": {"name": "example.com/gpu", "target": {"type": "AverageValue", "averageValue": "1"}}},
                {"type": "Resource", "resource": {"name": "hugepages-2Mi", "target": {"type": "AverageValue", "averageValue": "1"}}},
            ]})),
            vec![],
        ),
        (
            "utilization 0",
            k,
            cpu(json!({"type": "Utilization", "averageUtilization": 0})),
            vec![(
                "spec.metrics[0].resource.target.averageUtilization",
                FieldValueInvalid,
            )],
        ),
        (
            "neither utilization nor average value",
            k,
            cpu(json!({"type": "Utilization"})),
            vec![(
                "spec.metrics[0].resource.target.averageUtilization",
                FieldValueRequired,
            )],
        ),
        (
            "both utilization and average value",
            k,
            cpu(json!({"type": "Utilization", "averageUtilization": 50, "averageValue": "100m"})),
            vec![(
                "spec.metrics[0].resource.target.averageValue",
                FieldValueForbidden,
            )],
        ),
        (
            "target type without its field",
            k,
            cpu(json!({"type": "AverageValue", "averageUtilization": 50})),
            vec![(
                "spec.metrics[0].resource.target.averageValue",
                FieldValueRequired,
            )],
        ),
        (
            "target type missing",
            k,
            cpu(json!({"averageUtilization": 50})),
            vec![("spec.metrics[0].resource.target.type", FieldValueRequired)],
        ),
        (
            "target type unknown",
            k,
            cpu(json!({"type": "Percent", "averageUtilization": 50})),
            vec![("spec.metrics[0].resource.target.type", FieldValueInvalid)],
        ),
        (
            "target type the source does not take",
            k,
            cpu(json!({"type": "Value", "averageUtilization": 50})),
            vec![(
                "spec.metrics[0].resource.target.type",
                FieldValueNotSupported,
            )],
        ),
        (
            "quantities must be positive and well formed",
            k,
            cpu(json!({"type": "AverageValue", "averageValue": "0"})),
            vec![(
                "spec.metrics[0].resource.target.averageValue",
                FieldValueInvalid,
            )],
        ),
        (
            "malformed quantity",
            k,
            metric(json!({"type": "Object", "object": {
                "describedObject": {"kind": "Ingress", "name": "main"}, "metric": {"name": "rps"},
                "target": {"type": "Value", "value": "lots"}}})),
            vec![("spec.metrics[0].object.target.value", FieldValueInvalid)],
        ),
        (
            "object without target values and described object",
            k,
            metric(
                json!({"type": "Object", "object": {"metric": {"name": "rps"}, "target": {"type": "Value"}}}),
            ),
            vec![
                (
                    "spec.metrics[0].object.describedObject.kind",
                    FieldValueRequired,
                ),
                (
                    "spec.metrics[0].object.describedObject.name",
                    FieldValueRequired,
                ),
                (
                    "spec.metrics[0].object.target.averageValue",
                    FieldValueRequired,
                ),
            ],
        ),
        (
            "pods metric needs an average value and a name",
            k,
            metric(
                json!({"type": "Pods", "pods": {"metric": {"name": ""}, "target": {"type": "Value", "value": "1"}}}),
            ),
            vec![
                ("spec.metrics[0].pods.metric.name", FieldValueRequired),
                ("spec.metrics[0].pods.target.type", FieldValueNotSupported),
                (
                    "spec.metrics[0].pods.target.averageValue",
                    FieldValueRequired,
                ),
            ],
        ),
        (
            "container resource without a valid container",
            k,
            metric(
                json!({"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "App_1",
                "target": {"type": "Utilization", "averageUtilization": 50}}}),
            ),
            vec![(
                "spec.metrics[0].containerResource.container",
                FieldValueInvalid,
            )],
        ),
        (
            "container resource container missing",
            k,
            metric(
                json!({"type": "ContainerResource", "containerResource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}),
            ),
            vec![(
                "spec.metrics[0].containerResource.container",
                FieldValueRequired,
            )],
        ),
        (
            "external with both value and average value",
            k,
            metric(
                json!({"type": "External", "external": {"metric": {"name": "lag"},
                "target": {"type": "Value", "value": "1", "averageValue": "2"}}}),
            ),
            vec![("spec.metrics[0].external.target.value", FieldValueForbidden)],
        ),
        (
            "external without a value",
            k,
            metric(
                json!({"type": "External", "external": {"metric": {"name": "lag"}, "target": {"type": "Value"}}}),
            ),
            vec![(
                "spec.metrics[0].external.target.averageValue",
                FieldValueRequired,
            )],
        ),
        (
            "metric selector is a label selector",
            k,
            metric(json!({"type": "External", "external": {
                "metric": {"name": "lag", "selector": {"matchExpressions": [{"key": "q", "operator": "Gt"}]}},
                "target": {"type": "Value", "value": "1"}}})),
            vec![(
                "spec.metrics[0].external.metric.selector.matchExpressions[0].operator",
                FieldValueNotSupported,
            )],
        ),
    ]);
}

#[test]
fn federated_hpa_behavior() {
    let k = "FederatedHPA";
    run(vec![
        (
            "valid, parts left to defaulting",
            k,
            spec_with(json!({"behavior": {"scaleUp": {"selectPolicy": "Disabled"},
                "scaleDown": {"stabilizationWindowSeconds": 3600, "tolerance": "0.05",
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 1800}]}}})),
            vec![],
        ),
        (
            "explicitly empty policies",
            k,
            behavior(json!({"selectPolicy": "Disabled", "policies": []})),
            vec![("spec.behavior.scaleUp.policies", FieldValueRequired)],
        ),
        (
            "select policy unknown",
            k,
            behavior(json!({"selectPolicy": "Average"})),
            vec![("spec.behavior.scaleUp.selectPolicy", FieldValueNotSupported)],
        ),
        (
            "stabilization window out of range",
            k,
            spec_with(
                json!({"behavior": {"scaleUp": {"stabilizationWindowSeconds": -1},
                "scaleDown": {"stabilizationWindowSeconds": 3601}}}),
            ),
            vec![
                (
                    "spec.behavior.scaleUp.stabilizationWindowSeconds",
                    FieldValueInvalid,
                ),
                (
                    "spec.behavior.scaleDown.stabilizationWindowSeconds",
                    FieldValueInvalid,
                ),
            ],
        ),
        (
            "policy fields",
            k,
            behavior(json!({"policies": [
                {"type": "Replicas", "value": 0, "periodSeconds": 0},
                {"type": "Percent", "value": 10, "periodSeconds": 1801},
                {"value": 1, "periodSeconds": 60},
            ]})),
            vec![
                (
                    "spec.behavior.scaleUp.policies[0].type",
                    FieldValueNotSupported,
                ),
                ("spec.behavior.scaleUp.policies[0].value", FieldValueInvalid),
                (
                    "spec.behavior.scaleUp.policies[0].periodSeconds",
                    FieldValueInvalid,
                ),
                (
                    "spec.behavior.scaleUp.policies[1].periodSeconds",
                    FieldValueInvalid,
                ),
                ("spec.behavior.scaleUp.policies[2].type", FieldValueRequired),
            ],
        ),
        (
            "negative tolerance",
            k,
            behavior(json!({"tolerance": "-0.1"})),
            vec![("spec.behavior.scaleUp.tolerance", FieldValueInvalid)],
        ),
        (
            "malformed tolerance",
            k,
            behavior(json!({"tolerance": "ten percent"})),
            vec![("spec.behavior.scaleUp.tolerance", FieldValueInvalid)],
        ),
    ]);
}

#[test]
fn federated_hpa_unknown_fields() {
    let obj = metric(json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 50, "percent": 5}}}));
    let err = validate("FederatedHPA", &obj, true).unwrap_err();
    assert_eq!(
        err.unknown_fields,
        vec!["spec.metrics[0].resource.target.percent"]
    );
    assert!(validate("FederatedHPA", &obj, false).is_ok());
}

#[test]
fn cron_federated_hpa_rules() {
    let k = "CronFederatedHPA";
    let rule = |extra: Value| {
        let mut r = json!({"name": "scale-up", "schedule": "0 8 * * MON-FRI", "targetReplicas": 5});
        if let (Value::Object(r), Value::Object(e)) = (&mut r, extra) {
            for (k, v) in e {
                if v.is_null() {
                    r.remove(&k);
                } else {
                    r.insert(k, v);
                }
            }
        }
        r
    };
    run(vec![
        (
            "valid workload rules",
            k,
            cron(
                deployment(),
                json!([
                    rule(
                        json!({"timeZone": "Europe/Berlin", "successfulHistoryLimit": 32, "failedHistoryLimit": 0})
                    ),
                    rule(
                        json!({"name": "scale-down", "schedule": "@daily", "targetReplicas": 0, "suspend": true})
                    ),
                ]),
            ),
            vec![],
        ),
        (
            "valid FederatedHPA rules",
            k,
            cron(
                fhpa_target(),
                json!([
                    rule(json!({"targetReplicas": null, "targetMinReplicas": 2})),
                    rule(json!({"name": "b", "targetReplicas": null, "targetMaxReplicas": 20})),
                    rule(
                        json!({"name": "c", "targetReplicas": null, "targetMinReplicas": 3, "targetMaxReplicas": 3})
                    ),
                ]),
            ),
            vec![],
        ),
        (
            "names: empty, too long, duplicate",
            k,
            cron(
                deployment(),
                json!([
                    rule(json!({"name": ""})),
                    rule(json!({"name": "a-name-that-is-longer-than-32-chars"})),
                    rule(json!({})),
                    rule(json!({})),
                ]),
            ),
            vec![
                ("spec.rules[0].name", FieldValueRequired),
                ("spec.rules[1].name", FieldValueInvalid),
                ("spec.rules[3].name", FieldValueDuplicate),
            ],
        ),
        (
            "schedules",
            k,
            cron(
                deployment(),
                json!([
                    rule(json!({"name": "a", "schedule": ""})),
                    rule(json!({"name": "b", "schedule": "0 8 * *"})),
                    rule(json!({"name": "c", "schedule": "CRON_TZ=UTC 0 8 * * *"})),
                    rule(json!({"name": "d", "schedule": "@every 5m"})),
                    rule(json!({"name": "e", "schedule": "*/5 * * * *"})),
                ]),
            ),
            vec![
                ("spec.rules[0].schedule", FieldValueRequired),
                ("spec.rules[1].schedule", FieldValueInvalid),
                ("spec.rules[2].schedule", FieldValueInvalid),
                ("spec.rules[3].schedule", FieldValueInvalid),
            ],
        ),
        (
            "time zones",
            k,
            cron(
                deployment(),
                json!([
                    rule(json!({"name": "a", "timeZone": "Mars/Olympus_Mons"})),
                    rule(json!({"name": "b", "timeZone": "Local"})),
                    rule(json!({"name": "c", "timeZone": ""})),
                    rule(json!({"name": "d", "timeZone": "America/New_York"})),
                ]),
            ),
            vec![
                ("spec.rules[0].timeZone", FieldValueInvalid),
                ("spec.rules[1].timeZone", FieldValueInvalid),
                ("spec.rules[2].timeZone", FieldValueInvalid),
            ],
        ),
        (
            "history limits",
            k,
            cron(
                deployment(),
                json!([
                    rule(
                        json!({"name": "a", "successfulHistoryLimit": 0, "failedHistoryLimit": -1})
                    ),
                    rule(
                        json!({"name": "b", "successfulHistoryLimit": 33, "failedHistoryLimit": 33})
                    ),
                ]),
            ),
            vec![
                ("spec.rules[0].successfulHistoryLimit", FieldValueInvalid),
                ("spec.rules[0].failedHistoryLimit", FieldValueInvalid),
                ("spec.rules[1].successfulHistoryLimit", FieldValueInvalid),
                ("spec.rules[1].failedHistoryLimit", FieldValueInvalid),
            ],
        ),
        (
            "workload target needs targetReplicas of at least 0",
            k,
            cron(
                deployment(),
                json!([
                    rule(json!({"name": "a", "targetReplicas": null, "targetMinReplicas": 1})),
                    rule(json!({"name": "b", "targetReplicas": -1})),
                ]),
            ),
            vec![
                ("spec.rules[0].targetReplicas", FieldValueRequired),
                ("spec.rules[1].targetReplicas", FieldValueInvalid),
            ],
        ),
        (
            "FederatedHPA target needs a bound",
            k,
            cron(
                fhpa_target(),
                json!([
                    rule(json!({"name": "a"})),
                    rule(json!({"name": "b", "targetMinReplicas": 0, "targetMaxReplicas": -1})),
                    rule(json!({"name": "c", "targetMinReplicas": 5, "targetMaxReplicas": 4})),
                ]),
            ),
            vec![
                ("spec.rules[0].targetMaxReplicas", FieldValueRequired),
                ("spec.rules[1].targetMinReplicas", FieldValueInvalid),
                ("spec.rules[1].targetMaxReplicas", FieldValueInvalid),
                ("spec.rules[2].targetMinReplicas", FieldValueInvalid),
            ],
        ),
        (
            "another autoscaling kind is refused",
            k,
            cron(
                json!({"apiVersion": "autoscaling.karmada.io/v1alpha1", "kind": "CronFederatedHPA", "name": "x"}),
                json!([rule(json!({}))]),
            ),
            vec![("spec.scaleTargetRef.kind", FieldValueInvalid)],
        ),
        (
            "another autoscaling version is refused",
            k,
            cron(
                json!({"apiVersion": "autoscaling.karmada.io/v1beta1", "kind": "FederatedHPA", "name": "x"}),
                json!([rule(
                    json!({"targetReplicas": null, "targetMinReplicas": 1})
                )]),
            ),
            vec![("spec.scaleTargetRef.apiVersion", FieldValueNotSupported)],
        ),
        (
            "target and rules missing",
            k,
            json!({"kind": "CronFederatedHPA", "metadata": {"name": "n", "namespace": "demo"}, "spec": {}}),
            vec![
                ("spec.scaleTargetRef.kind", FieldValueRequired),
                ("spec.scaleTargetRef.name", FieldValueRequired),
                ("spec.rules", FieldValueRequired),
            ],
        ),
        ("no rules", k, cron(deployment(), json!([])), vec![]),
    ]);
    let obj = cron(
        deployment(),
        json!([rule(json!({"schedule": "0 25 * * *"}))]),
    );
    assert_eq!(
        validate(k, &obj, true).unwrap_err().to_string(),
        "spec.rules[0].schedule: Invalid value: \"0 25 * * *\": hour field \"25\": 25 is above the maximum 23"
    );
    let obj = cron(
        deployment(),
        json!([rule(json!({"timeZone": "Europe/Berln"}))]),
    );
    assert_eq!(
        validate(k, &obj, true).unwrap_err().to_string(),
        "spec.rules[0].timeZone: Invalid value: \"Europe/Berln\": unknown time zone Europe/Berln"
    );
}

#[test]
fn autoscaling_kinds_are_served() {
    let f = kind_info("FederatedHPA").unwrap();
    assert_eq!(
        (f.group, f.plural, f.namespaced),
        ("autoscaling.karmada.io", "federatedhpas", true)
    );
    assert_eq!(f.short_names, &["fhpa"]);
    assert!(f.status_subresource);
    let columns: Vec<(&str, &str)> = f
        .printer_columns
        .iter()
        .map(|c| (c.name, c.json_path))
        .collect();
    assert_eq!(
        columns,
        vec![
            ("REFERENCE-KIND", ".spec.scaleTargetRef.kind"),
            ("REFERENCE-NAME", ".spec.scaleTargetRef.name"),
            ("MINPODS", ".spec.minReplicas"),
            ("MAXPODS", ".spec.maxReplicas"),
            ("REPLICAS", ".status.currentReplicas"),
            ("DESIRED", ".status.desiredReplicas"),
            ("AGE", ".metadata.creationTimestamp"),
        ]
    );
    let c = kind_info("CronFederatedHPA").unwrap();
    assert_eq!(
        (c.plural, c.short_names),
        ("cronfederatedhpas", &["cronfhpa"][..])
    );
    let names: Vec<&str> = c.printer_columns.iter().map(|c| c.name).collect();
    assert_eq!(names, ["REFERENCE-KIND", "REFERENCE-NAME", "AGE"]);
    assert_eq!(c.categories, ["karmada-io"]);
}
