//! OpenAPI v3 component schemas of the Karmada kinds, for `/openapi/v3` and `kubectl explain`.
//!
//! Derived from the serde types with schemars (field documentation comes from the doc
//! comments), then renamed to Kubernetes-style dotted names, with `metadata` pointing at
//! `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta` (which the API server adds) and the
//! `x-kubernetes-group-version-kind` extension on each top-level kind.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::types::{
    Cluster, ClusterOverridePolicy, ClusterPropagationPolicy, ClusterResourceBinding,
    ClusterTaintPolicy, CronFederatedHPA, FederatedHPA, MultiClusterService, OverridePolicy,
    PropagationPolicy, ResourceBinding, ServiceExport, ServiceImport, Work, WorkloadRebalancer,
};
use crate::validation::served_kinds;

/// Name of the ObjectMeta schema the API server provides.
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

const APPS_TYPES: &[&str] = &[
    "WorkloadRebalancer",
    "WorkloadRebalancerSpec",
    "RebalancerWorkload",
    "WorkloadRebalancerStatus",
    "ObservedWorkload",
];
const AUTOSCALING_TYPES: &[&str] = &[
    "FederatedHPA",
    "FederatedHPASpec",
    "CrossVersionObjectReference",
    "MetricSpec",
    "ObjectMetricSource",
    "PodsMetricSource",
    "ResourceMetricSource",
    "ContainerResourceMetricSource",
    "ExternalMetricSource",
    "MetricIdentifier",
    "MetricTarget",
    "HorizontalPodAutoscalerBehavior",
    "HPAScalingRules",
    "HPAScalingPolicy",
    "HorizontalPodAutoscalerStatus",
    "MetricStatus",
    "MetricValueStatus",
    "ObjectMetricStatus",
    "PodsMetricStatus",
    "ResourceMetricStatus",
    "ContainerResourceMetricStatus",
    "ExternalMetricStatus",
    "CronFederatedHPA",
    "CronFederatedHPASpec",
    "CronFederatedHPARule",
    "CronFederatedHPAStatus",
    "ExecutionHistory",
    "SuccessfulExecution",
    "FailedExecution",
];
const CLUSTER_TYPES: &[&str] = &[
    "Cluster",
    "ClusterSpec",
    "LocalSecretReference",
    "ResourceModel",
    "ResourceModelRange",
    "ClusterStatus",
    "ApiEnablement",
    "ApiResourceRef",
    "NodeSummary",
    "ResourceSummary",
    "AllocatableModeling",
];

const NETWORKING_TYPES: &[&str] = &[
    "MultiClusterService",
    "MultiClusterServiceSpec",
    "ExposurePort",
    "ExposureRange",
    "ClusterSelector",
    "MultiClusterServiceStatus",
    "ConsumerStatus",
];
const MCS_API_TYPES: &[&str] = &[
    "ServiceExport",
    "ServiceExportStatus",
    "ServiceImport",
    "ServiceImportSpec",
    "ServicePort",
    "ServiceImportStatus",
    "SourceStatus",
];

const WORK_V1ALPHA1_TYPES: &[&str] = &[
    "Work",
    "WorkSpec",
    "WorkloadTemplate",
    "WorkStatus",
    "ManifestStatus",
    "ResourceIdentifier",
];

const WORK_V1ALPHA2_TYPES: &[&str] = &[
    "ResourceBinding",
    "ClusterResourceBinding",
    "ResourceBindingSpec",
    "ResourceBindingStatus",
    "ObjectReference",
    "ReplicaRequirements",
    "NodeClaim",
    "TargetCluster",
    "GracefulEvictionTask",
    "BindingSnapshot",
    "BindingSuspension",
    "BindingSchedulePriority",
    "AggregatedStatusItem",
];

/// Fields admission requires, shown as `-required-` by `kubectl explain`.
const REQUIRED: &[(&str, &[&str])] = &[
    (
        "io.karmada.policy.v1alpha1.PropagationSpec",
        &["resourceSelectors"],
    ),
    (
        "io.karmada.policy.v1alpha1.ResourceSelector",
        &["apiVersion", "kind"],
    ),
    (
        "io.karmada.policy.v1alpha1.FieldSelectorRequirement",
        &["key", "operator"],
    ),
    (
        "io.karmada.policy.v1alpha1.LabelSelectorRequirement",
        &["key", "operator"],
    ),
    (
        "io.karmada.policy.v1alpha1.ClusterAffinityTerm",
        &["affinityName"],
    ),
    (
        "io.karmada.policy.v1alpha1.OverflowClusterAffinity",
        &["affinityName"],
    ),
    (
        "io.karmada.policy.v1alpha1.StaticClusterWeight",
        &["targetCluster", "weight"],
    ),
    (
        "io.karmada.policy.v1alpha1.SchedulePriority",
        &["priorityClassSource", "priorityClassName"],
    ),
    (
        "io.karmada.policy.v1alpha1.PlaintextOverrider",
        &["path", "operator"],
    ),
    (
        "io.karmada.policy.v1alpha1.ImageOverrider",
        &["component", "operator"],
    ),
    (
        "io.karmada.policy.v1alpha1.CommandArgsOverrider",
        &["containerName", "operator"],
    ),
    (
        "io.karmada.policy.v1alpha1.LabelAnnotationOverrider",
        &["operator"],
    ),
    ("io.karmada.policy.v1alpha1.FieldOverrider", &["fieldPath"]),
    (
        "io.karmada.policy.v1alpha1.FieldPatchOperation",
        &["subPath", "operator"],
    ),
    ("io.karmada.policy.v1alpha1.Taint", &["key", "effect"]),
    ("io.karmada.policy.v1alpha1.PolicyTaint", &["key", "effect"]),
    (
        "io.karmada.policy.v1alpha1.MatchCondition",
        &["conditionType", "operator", "statusValues"],
    ),
    (
        "io.karmada.policy.v1alpha1.ClusterTaintPolicySpec",
        &["taints"],
    ),
    ("io.karmada.policy.v1alpha1.ClusterTaintPolicy", &["spec"]),
    ("io.karmada.apps.v1alpha1.WorkloadRebalancer", &["spec"]),
    (
        "io.karmada.apps.v1alpha1.WorkloadRebalancerSpec",
        &["workloads"],
    ),
    (
        "io.karmada.apps.v1alpha1.RebalancerWorkload",
        &["apiVersion", "kind", "name"],
    ),
    ("io.karmada.autoscaling.v1alpha1.FederatedHPA", &["spec"]),
    (
        "io.karmada.autoscaling.v1alpha1.FederatedHPASpec",
        &["scaleTargetRef", "maxReplicas"],
    ),
    (
        "io.karmada.autoscaling.v1alpha1.CrossVersionObjectReference",
        &["kind", "name"],
    ),
    ("io.karmada.autoscaling.v1alpha1.MetricSpec", &["type"]),
    (
        "io.karmada.autoscaling.v1alpha1.ObjectMetricSource",
        &["describedObject", "target", "metric"],
    ),
    (
        "io.karmada.autoscaling.v1alpha1.PodsMetricSource",
        &["metric", "target"],
    ),
    (
        "io.karmada.autoscaling.v1alpha1.ResourceMetricSource",
        &["name", "target"],
    ),
    (
        "io.karmada.autoscaling.v1alpha1.ContainerResourceMetricSource",
        &["name", "target", "container"],
    ),
    (
        "io.karmada.autoscaling.v1alpha1.ExternalMetricSource",
        &["metric", "target"],
    ),
    (
        "io.karmada.autoscaling.v1alpha1.MetricIdentifier",
        &["name"],
    ),
    ("io.karmada.autoscaling.v1alpha1.MetricTarget", &["type"]),
    (
        "io.karmada.autoscaling.v1alpha1.HPAScalingPolicy",
        &["type", "value", "periodSeconds"],
    ),
    (
        "io.karmada.autoscaling.v1alpha1.HorizontalPodAutoscalerStatus",
        &["desiredReplicas"],
    ),
    ("io.karmada.autoscaling.v1alpha1.MetricStatus", &["type"]),
    (
        "io.karmada.autoscaling.v1alpha1.CronFederatedHPA",
        &["spec"],
    ),
    (
        "io.karmada.autoscaling.v1alpha1.CronFederatedHPASpec",
        &["scaleTargetRef", "rules"],
    ),
    (
        "io.karmada.autoscaling.v1alpha1.CronFederatedHPARule",
        &["name", "schedule"],
    ),
    (
        "io.karmada.autoscaling.v1alpha1.ExecutionHistory",
        &["ruleName"],
    ),
    (
        "io.karmada.autoscaling.v1alpha1.SuccessfulExecution",
        &["scheduleTime", "executionTime"],
    ),
    (
        "io.karmada.autoscaling.v1alpha1.FailedExecution",
        &["scheduleTime", "executionTime", "message"],
    ),
    (
        "io.karmada.networking.v1alpha1.MultiClusterService",
        &["spec"],
    ),
    (
        "io.karmada.networking.v1alpha1.MultiClusterServiceSpec",
        &["types"],
    ),
    ("io.karmada.networking.v1alpha1.ExposurePort", &["port"]),
    ("io.karmada.networking.v1alpha1.ClusterSelector", &["name"]),
    ("io.x-k8s.multicluster.v1alpha1.ServiceImport", &["spec"]),
    (
        "io.x-k8s.multicluster.v1alpha1.ServiceImportSpec",
        &["type", "ports"],
    ),
    ("io.x-k8s.multicluster.v1alpha1.ServicePort", &["port"]),
    ("io.x-k8s.multicluster.v1alpha1.SourceStatus", &["cluster"]),
    ("io.karmada.cluster.v1alpha1.ClusterSpec", &["syncMode"]),
    (
        "io.karmada.work.v1alpha2.ResourceBindingSpec",
        &["resource"],
    ),
    (
        "io.karmada.work.v1alpha2.ObjectReference",
        &["apiVersion", "kind", "name"],
    ),
    ("io.karmada.work.v1alpha2.TargetCluster", &["name"]),
];

fn full_name(rust_name: &str) -> String {
    let prefix = if APPS_TYPES.contains(&rust_name) {
        "io.karmada.apps.v1alpha1"
    } else if AUTOSCALING_TYPES.contains(&rust_name) {
        "io.karmada.autoscaling.v1alpha1"
    } else if CLUSTER_TYPES.contains(&rust_name) {
        "io.karmada.cluster.v1alpha1"
    } else if NETWORKING_TYPES.contains(&rust_name) {
        "io.karmada.networking.v1alpha1"
    } else if MCS_API_TYPES.contains(&rust_name) {
        "io.x-k8s.multicluster.v1alpha1"
    } else if WORK_V1ALPHA1_TYPES.contains(&rust_name) {
        "io.karmada.work.v1alpha1"
    } else if WORK_V1ALPHA2_TYPES.contains(&rust_name) {
        "io.karmada.work.v1alpha2"
    } else {
        "io.karmada.policy.v1alpha1"
    };
    format!("{prefix}.{rust_name}")
}

/// Rewrites refs to the new names and marks free-form values as preserving unknown fields.
fn rewrite(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                *r = format!("#/components/schemas/{}", full_name(name));
            }
            // A nullable ref comes out as `anyOf: [{$ref}, {nullable}]`; keep only the ref.
            if let Some(Value::Array(any)) = m.get("anyOf")
                && any.len() == 2
                && any.iter().any(|s| s.get("$ref").is_some())
                && let Some(r) = any.iter().find(|s| s.get("$ref").is_some()).cloned()
            {
                m.remove("anyOf");
                m.insert("allOf".into(), json!([r]));
            }
            m.remove("nullable");
            // serde defaults are decode conveniences, not API defaults.
            m.remove("default");
            for (key, child) in m.iter_mut() {
                // `properties` holds names -> schemas; an empty schema there is free-form.
                if key == "properties"
                    && let Value::Object(props) = child
                {
                    for p in props.values_mut() {
                        if p.as_object()
                            .is_some_and(|o| o.is_empty() || only_description(o))
                        {
                            mark_free_form(p);
                        }
                    }
                }
                if key == "items" && child.as_object().is_some_and(|o| o.is_empty()) {
                    mark_free_form(child);
                }
                rewrite(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(rewrite),
        _ => {}
    }
}

fn only_description(o: &Map<String, Value>) -> bool {
    o.keys().all(|k| k == "description")
}

fn mark_free_form(v: &mut Value) {
    if let Value::Object(o) = v {
        o.insert(
            "x-kubernetes-preserve-unknown-fields".into(),
            Value::Bool(true),
        );
    }
}

/// OpenAPI v3 component schemas keyed by names like `io.karmada.policy.v1alpha1.PropagationPolicy`.
///
/// Every `$ref` resolves within the map except [`OBJECT_META`], which the API server adds.
pub fn openapi_schemas() -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    fn add<T: JsonSchema>(g: &mut schemars::SchemaGenerator) {
        g.subschema_for::<T>();
    }
    add::<PropagationPolicy>(&mut generator);
    add::<ClusterPropagationPolicy>(&mut generator);
    add::<OverridePolicy>(&mut generator);
    add::<ClusterOverridePolicy>(&mut generator);
    add::<ClusterTaintPolicy>(&mut generator);
    add::<WorkloadRebalancer>(&mut generator);
    add::<FederatedHPA>(&mut generator);
    add::<CronFederatedHPA>(&mut generator);
    add::<MultiClusterService>(&mut generator);
    add::<ServiceExport>(&mut generator);
    add::<ServiceImport>(&mut generator);
    add::<Cluster>(&mut generator);
    add::<ResourceBinding>(&mut generator);
    add::<ClusterResourceBinding>(&mut generator);
    add::<Work>(&mut generator);
    let defs = generator.take_definitions(true);

    let mut out = Map::new();
    for (name, mut schema) in defs {
        rewrite(&mut schema);
        out.insert(full_name(&name), schema);
    }
    for (schema, fields) in REQUIRED {
        if let Some(Value::Object(s)) = out.get_mut(*schema) {
            s.insert("required".into(), json!(fields));
        }
    }
    for k in served_kinds() {
        let Some(Value::Object(schema)) = out.get_mut(k.schema_name) else {
            continue;
        };
        schema.insert("type".into(), json!("object"));
        schema.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": k.group, "kind": k.kind, "version": k.version}]),
        );
        if let Some(Value::Object(props)) = schema.get_mut("properties") {
            props.insert(
                "apiVersion".into(),
                json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}),
            );
            props.insert(
                "kind".into(),
                json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}),
            );
            props.insert(
                "metadata".into(),
                json!({
                    "description": "Standard object's metadata.",
                    "default": {},
                    "allOf": [{"$ref": format!("#/components/schemas/{OBJECT_META}")}],
                }),
            );
        }
        if let Some(Value::Array(req)) = schema.get_mut("required") {
            req.retain(|r| r != "metadata");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|c| collect_refs(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| collect_refs(c, out)),
            _ => {}
        }
    }

    #[test]
    fn every_kind_has_a_schema_with_gvk() {
        let schemas = openapi_schemas();
        for k in served_kinds() {
            let s = schemas
                .get(k.schema_name)
                .unwrap_or_else(|| panic!("{}", k.kind));
            let gvk = &s["x-kubernetes-group-version-kind"][0];
            assert_eq!(gvk["group"], k.group);
            assert_eq!(gvk["version"], k.version);
            assert_eq!(gvk["kind"], k.kind);
            assert_eq!(s["type"], "object");
            // A ServiceExport has no spec: its existence exports the Service.
            let has_spec = s["properties"]["spec"].is_object();
            assert_eq!(has_spec, k.kind != "ServiceExport", "{}", k.kind);
        }
    }

    #[test]
    fn every_ref_resolves() {
        let schemas = openapi_schemas();
        let mut refs = Vec::new();
        collect_refs(&Value::Object(schemas.clone()), &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                name == OBJECT_META || schemas.contains_key(name),
                "dangling {r}"
            );
            assert!(name.starts_with("io."), "{name}");
        }
        for (name, _) in REQUIRED {
            assert!(schemas.contains_key(*name), "{name}");
        }
    }

    #[test]
    fn autoscaling_types_are_named_in_their_group() {
        let mut generator = SchemaSettings::openapi3().into_generator();
        generator.subschema_for::<FederatedHPA>();
        generator.subschema_for::<CronFederatedHPA>();
        let shared = [
            "LabelSelector",
            "LabelSelectorRequirement",
            "Quantity",
            "Condition",
        ];
        for name in generator.take_definitions(true).keys() {
            assert!(
                AUTOSCALING_TYPES.contains(&name.as_str()) || shared.contains(&name.as_str()),
                "{name} is missing from AUTOSCALING_TYPES"
            );
        }
        let schemas = openapi_schemas();
        let spec = &schemas["io.karmada.autoscaling.v1alpha1.FederatedHPASpec"];
        assert_eq!(spec["required"], json!(["scaleTargetRef", "maxReplicas"]));
        let metrics = &spec["properties"]["metrics"]["items"]["$ref"];
        assert_eq!(
            metrics,
            "#/components/schemas/io.karmada.autoscaling.v1alpha1.MetricSpec"
        );
        let target = &schemas["io.karmada.autoscaling.v1alpha1.MetricTarget"];
        assert_eq!(
            target["properties"]["type"]["enum"],
            json!(["Utilization", "Value", "AverageValue"])
        );
        let rule = &schemas["io.karmada.autoscaling.v1alpha1.CronFederatedHPARule"];
        assert!(
            rule["properties"]["schedule"]["description"]
                .as_str()
                .unwrap()
                .contains("CronJob")
        );
    }

    #[test]
    fn explain_paths_have_descriptions() {
        let schemas = openapi_schemas();
        let spec = &schemas["io.karmada.policy.v1alpha1.PropagationSpec"];
        let placement = &spec["properties"]["placement"];
        assert!(placement["description"].as_str().unwrap().contains("place"));
        let p = &schemas["io.karmada.policy.v1alpha1.Placement"];
        assert_eq!(p["type"], "object");
        let rs = &schemas["io.karmada.policy.v1alpha1.ReplicaSchedulingStrategy"];
        let pref = &rs["properties"]["replicaDivisionPreference"];
        assert_eq!(pref["enum"], json!(["Aggregated", "Weighted"]));
        let manifests =
            &schemas["io.karmada.work.v1alpha1.WorkloadTemplate"]["properties"]["manifests"];
        assert_eq!(
            manifests["items"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        let pp = &schemas["io.karmada.policy.v1alpha1.PropagationPolicy"];
        assert_eq!(
            pp["properties"]["metadata"]["allOf"][0]["$ref"],
            format!("#/components/schemas/{OBJECT_META}")
        );
    }
}
