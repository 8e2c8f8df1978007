//! Validation of incoming objects: strict decoding of built-in kinds into k8s-openapi types,
//! Karmada kinds through `flotilla-karmada`, and custom resources against their CRD schema.
//!
//! Unknown fields are found by decoding into the typed form and comparing the re-encoded
//! object with the input: whatever the types dropped is unknown.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{ApiError, Cause};
use crate::registry::{Resource, Schema};

/// How to treat unknown or duplicate fields (`?fieldValidation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop unknown fields and warn.
    Warn,
    /// Reject unknown fields.
    Strict,
}

impl FieldValidation {
    /// Parses the query parameter; the default is `Warn`, as in Kubernetes.
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn or Strict, not {other:?}"
            ))),
        }
    }
}

/// The result of validating an object: the object to store (pruned) and warnings.
#[derive(Debug)]
pub struct Validated {
    /// The object with unknown fields removed.
    pub object: Value,
    /// Warning messages for `Warning` headers.
    pub warnings: Vec<String>,
}

fn roundtrip<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<Value, (String, String)> {
    let typed: T = serde_path_to_error::deserialize(obj.clone()).map_err(|e| {
        let path = e.path().to_string();
        (
            if path == "." { String::new() } else { path },
            e.into_inner().to_string(),
        )
    })?;
    serde_json::to_value(&typed).map_err(|e| (String::new(), e.to_string()))
}

fn decode_builtin(group: &str, kind: &str, obj: &Value) -> Result<Value, (String, String)> {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch, core::v1 as core,
        networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    match (group, kind) {
        ("", "Namespace") => roundtrip::<core::Namespace>(obj),
        ("", "ConfigMap") => roundtrip::<core::ConfigMap>(obj),
        ("", "Secret") => roundtrip::<core::Secret>(obj),
        ("", "Service") => roundtrip::<core::Service>(obj),
        ("", "ServiceAccount") => roundtrip::<core::ServiceAccount>(obj),
        ("", "PersistentVolumeClaim") => roundtrip::<core::PersistentVolumeClaim>(obj),
        ("", "Pod") => roundtrip::<core::Pod>(obj),
        ("apps", "Deployment") => roundtrip::<apps::Deployment>(obj),
        ("apps", "StatefulSet") => roundtrip::<apps::StatefulSet>(obj),
        ("apps", "DaemonSet") => roundtrip::<apps::DaemonSet>(obj),
        ("apps", "ReplicaSet") => roundtrip::<apps::ReplicaSet>(obj),
        ("apps", "ControllerRevision") => roundtrip::<apps::ControllerRevision>(obj),
        ("batch", "Job") => roundtrip::<batch::Job>(obj),
        ("batch", "CronJob") => roundtrip::<batch::CronJob>(obj),
        ("networking.k8s.io", "Ingress") => roundtrip::<networking::Ingress>(obj),
        ("networking.k8s.io", "NetworkPolicy") => roundtrip::<networking::NetworkPolicy>(obj),
        ("rbac.authorization.k8s.io", "Role") => roundtrip::<rbac::Role>(obj),
        ("rbac.authorization.k8s.io", "RoleBinding") => roundtrip::<rbac::RoleBinding>(obj),
        ("rbac.authorization.k8s.io", "ClusterRole") => roundtrip::<rbac::ClusterRole>(obj),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            roundtrip::<rbac::ClusterRoleBinding>(obj)
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            roundtrip::<autoscaling::HorizontalPodAutoscaler>(obj)
        }
        ("policy", "PodDisruptionBudget") => roundtrip::<policy::PodDisruptionBudget>(obj),
        ("discovery.k8s.io", "EndpointSlice") => {
            roundtrip::<k8s_openapi::api::discovery::v1::EndpointSlice>(obj)
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            roundtrip::<k8s_openapi::api::scheduling::v1::PriorityClass>(obj)
        }
        ("storage.k8s.io", "StorageClass") => {
            roundtrip::<k8s_openapi::api::storage::v1::StorageClass>(obj)
        }
        ("networking.k8s.io", "IngressClass") => roundtrip::<networking::IngressClass>(obj),
        ("node.k8s.io", "RuntimeClass") => {
            roundtrip::<k8s_openapi::api::node::v1::RuntimeClass>(obj)
        }
        ("", "ResourceQuota") => roundtrip::<core::ResourceQuota>(obj),
        ("", "LimitRange") => roundtrip::<core::LimitRange>(obj),
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            roundtrip::<k8s_openapi::api::certificates::v1::CertificateSigningRequest>(obj)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            roundtrip::<apiext::CustomResourceDefinition>(obj)
        }
        _ => decode_other_builtin(group, kind, obj),
    }
}

/// The built-in kinds the hub stores as templates and does nothing else with.
fn decode_other_builtin(group: &str, kind: &str, obj: &Value) -> Result<Value, (String, String)> {
    use k8s_openapi::api::{
        admissionregistration::v1 as admission, coordination::v1 as coordination, core::v1 as core,
        events::v1 as events, flowcontrol::v1 as flowcontrol, networking::v1 as networking,
        resource::v1 as resource, storage::v1 as storage,
    };
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
    match (group, kind) {
        ("", "ComponentStatus") => roundtrip::<core::ComponentStatus>(obj),
        ("", "Endpoints") => roundtrip::<core::Endpoints>(obj),
        ("", "Node") => roundtrip::<core::Node>(obj),
        ("", "PersistentVolume") => roundtrip::<core::PersistentVolume>(obj),
        ("", "PodTemplate") => roundtrip::<core::PodTemplate>(obj),
        ("", "ReplicationController") => roundtrip::<core::ReplicationController>(obj),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy") => {
            roundtrip::<admission::MutatingAdmissionPolicy>(obj)
        }
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding") => {
            roundtrip::<admission::MutatingAdmissionPolicyBinding>(obj)
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            roundtrip::<admission::MutatingWebhookConfiguration>(obj)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            roundtrip::<admission::ValidatingAdmissionPolicy>(obj)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            roundtrip::<admission::ValidatingAdmissionPolicyBinding>(obj)
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            roundtrip::<admission::ValidatingWebhookConfiguration>(obj)
        }
        ("apiregistration.k8s.io", "APIService") => roundtrip::<apiregistration::APIService>(obj),
        ("coordination.k8s.io", "Lease") => roundtrip::<coordination::Lease>(obj),
        ("events.k8s.io", "Event") => roundtrip::<events::Event>(obj),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => roundtrip::<flowcontrol::FlowSchema>(obj),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            roundtrip::<flowcontrol::PriorityLevelConfiguration>(obj)
        }
        ("networking.k8s.io", "IPAddress") => roundtrip::<networking::IPAddress>(obj),
        ("networking.k8s.io", "ServiceCIDR") => roundtrip::<networking::ServiceCIDR>(obj),
        ("resource.k8s.io", "DeviceClass") => roundtrip::<resource::DeviceClass>(obj),
        ("resource.k8s.io", "ResourceClaim") => roundtrip::<resource::ResourceClaim>(obj),
        ("resource.k8s.io", "ResourceClaimTemplate") => {
            roundtrip::<resource::ResourceClaimTemplate>(obj)
        }
        ("resource.k8s.io", "ResourceSlice") => roundtrip::<resource::ResourceSlice>(obj),
        ("storage.k8s.io", "CSIDriver") => roundtrip::<storage::CSIDriver>(obj),
        ("storage.k8s.io", "CSINode") => roundtrip::<storage::CSINode>(obj),
        ("storage.k8s.io", "CSIStorageCapacity") => roundtrip::<storage::CSIStorageCapacity>(obj),
        ("storage.k8s.io", "VolumeAttachment") => roundtrip::<storage::VolumeAttachment>(obj),
        ("storage.k8s.io", "VolumeAttributesClass") => {
            roundtrip::<storage::VolumeAttributesClass>(obj)
        }
        _ => Ok(obj.clone()),
    }
}

/// Paths present (and not null) in `input` but absent from `typed`.
fn unknown_paths(input: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(tv) => unknown_paths(v, tv, &p, out),
                    None if v.is_null() => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, tv)) in a.iter().zip(b).enumerate() {
                unknown_paths(v, tv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn unknown_field_error(paths: &[String]) -> ApiError {
    let list: Vec<String> = paths
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect();
    ApiError::bad_request(format!("strict decoding error: {}", list.join(", ")))
}

/// Validates `obj` for `res`, returning what to store.
pub fn validate(res: &Resource, obj: &Value, mode: FieldValidation) -> Result<Validated, ApiError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let causes = metadata_causes(obj);
    if !causes.is_empty() {
        return Err(ApiError::invalid_in(&res.group, &res.kind, &name, causes));
    }
    let mut unknown = Vec::new();
    let object = match &res.schema {
        Schema::Builtin => {
            let typed = decode_builtin(&res.group, &res.kind, obj).map_err(|(field, msg)| {
                ApiError::invalid_in(
                    &res.group,
                    &res.kind,
                    &name,
                    vec![Cause {
                        reason: "FieldValueInvalid".into(),
                        message: format!("Invalid value: {msg}"),
                        field,
                    }],
                )
            })?;
            unknown_paths(obj, &typed, "", &mut unknown);
            let mut typed = typed;
            super::defaults::apply(&res.group, &res.kind, &mut typed);
            typed
        }
        Schema::Karmada => {
            if let Err(errs) = flotilla_karmada::validate(&res.kind, obj, true) {
                if !errs.invalid.is_empty() {
                    let causes = errs
                        .invalid
                        .iter()
                        .map(|e| Cause {
                            reason: e.reason.as_str().to_owned(),
                            message: e.message.clone(),
                            field: e.field.clone(),
                        })
                        .collect();
                    return Err(ApiError::invalid_in(&res.group, &res.kind, &name, causes));
                }
                unknown = errs.unknown_fields;
            }
            let mut o = obj.clone();
            for p in &unknown {
                remove_path(&mut o, p);
            }
            flotilla_karmada::defaults::apply(&res.kind, &mut o);
            o
        }
        Schema::Custom(schema) => {
            let mut o = obj.clone();
            if let Some(schema) = schema {
                super::schema_defaults::apply(&mut o, schema);
                let mut causes = Vec::new();
                if let Value::Object(map) = &mut o {
                    for (k, v) in map.iter_mut() {
                        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                            continue;
                        }
                        match schema.pointer(&format!("/properties/{k}")) {
                            Some(s) => check_schema(v, s, k, &mut causes, &mut unknown),
                            None if preserves_unknown(schema) => {}
                            None => unknown.push(k.clone()),
                        }
                    }
                    map.retain(|k, _| !unknown.contains(k));
                }
                if !causes.is_empty() {
                    return Err(ApiError::invalid_in(&res.group, &res.kind, &name, causes));
                }
            }
            o
        }
    };
    if !unknown.is_empty() && mode == FieldValidation::Strict {
        return Err(unknown_field_error(&unknown));
    }
    let mut object = object;
    if res.group.is_empty() && res.kind == "Secret" {
        fold_string_data(&mut object);
    }
    if res.is_builtin() {
        let causes = super::rules::causes(&res.group, &res.kind, &object);
        if !causes.is_empty() {
            return Err(ApiError::invalid_in(&res.group, &res.kind, &name, causes));
        }
    }
    let warnings = if mode == FieldValidation::Warn {
        unknown
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect()
    } else {
        vec![]
    };
    Ok(Validated { object, warnings })
}

/// A Secret's write-only `stringData` merged into `data` (base64, overriding the same keys)
/// and removed, as kube-apiserver stores it.
fn fold_string_data(secret: &mut Value) {
    use base64::Engine;
    let Some(Value::Object(strings)) = secret.as_object_mut().and_then(|o| o.remove("stringData"))
    else {
        return;
    };
    if strings.is_empty() {
        return;
    }
    if !secret.get("data").is_some_and(Value::is_object) {
        secret["data"] = Value::Object(serde_json::Map::new());
    }
    for (k, v) in strings {
        let text = v.as_str().unwrap_or_default();
        secret["data"][k] =
            Value::String(base64::engine::general_purpose::STANDARD.encode(text.as_bytes()));
    }
}

/// Longest label value and name part of a label or annotation key, as in Kubernetes.
const MAX_LABEL_VALUE: usize = 63;
/// Longest prefix (a DNS subdomain) of a label or annotation key.
const MAX_KEY_PREFIX: usize = 253;
/// Most bytes of all annotation keys and values of an object, as in Kubernetes
/// (`TotalAnnotationSizeLimitB`).
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Kubernetes' rules for labels and annotations (the values are not echoed: they may be
/// huge).
fn metadata_causes(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let invalid = |field: String, message: String| Cause {
        reason: "FieldValueInvalid".into(),
        message,
        field,
    };
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(m) = qualified_name_problem(k) {
                causes.push(invalid(
                    "metadata.labels".into(),
                    format!("Invalid value: {}: {m}", short(k)),
                ));
            }
            if let Some(v) = v.as_str()
                && let Some(m) = label_value_problem(v)
            {
                causes.push(invalid(
                    format!("metadata.labels.{}", short(k)),
                    format!("Invalid value: {}: {m}", short(v)),
                ));
            }
        }
    }
    if let Some(annotations) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        let mut total = 0usize;
        for (k, v) in annotations {
            if let Some(m) = qualified_name_problem(k) {
                causes.push(invalid(
                    "metadata.annotations".into(),
                    format!("Invalid value: {}: {m}", short(k)),
                ));
            }
            total = total
                .saturating_add(k.len())
                .saturating_add(v.as_str().map_or(0, str::len));
        }
        if total > MAX_ANNOTATIONS_BYTES {
            causes.push(Cause {
                reason: "FieldValueTooLong".into(),
                message: format!("Too long: may not be more than {MAX_ANNOTATIONS_BYTES} bytes"),
                field: "metadata.annotations".into(),
            });
        }
    }
    causes
}

/// At most 40 characters of `s`, quoted, for a message.
fn short(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{:?}...", &s[..i]),
        None => format!("{s:?}"),
    }
}

fn name_part_ok(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn label_value_problem(v: &str) -> Option<String> {
    if v.len() > MAX_LABEL_VALUE {
        return Some(format!("must be no more than {MAX_LABEL_VALUE} characters"));
    }
    if !v.is_empty() && !name_part_ok(v) {
        return Some("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into());
    }
    None
}

fn qualified_name_problem(k: &str) -> Option<String> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= MAX_KEY_PREFIX
            && p.split('.').all(|part| {
                let b = part.as_bytes();
                matches!((b.first(), b.last()), (Some(f), Some(l)) if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric())
                    && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            });
        if !ok {
            return Some(format!(
                "prefix part must be a lowercase DNS subdomain of at most {MAX_KEY_PREFIX} characters"
            ));
        }
    }
    if name.len() > MAX_LABEL_VALUE {
        return Some(format!(
            "name part must be no more than {MAX_LABEL_VALUE} characters"
        ));
    }
    if !name_part_ok(name) {
        return Some("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into());
    }
    None
}

fn remove_path(obj: &mut Value, path: &str) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut cur = obj;
    for p in parts {
        let (key, idx) = match p.find('[') {
            Some(i) => (
                &p[..i],
                p[i + 1..].trim_end_matches(']').parse::<usize>().ok(),
            ),
            None => (p, None),
        };
        let Some(next) = cur.get_mut(key) else { return };
        cur = match idx {
            Some(i) => match next.get_mut(i) {
                Some(n) => n,
                None => return,
            },
            None => next,
        };
    }
    if let Value::Object(m) = cur {
        m.remove(last);
    }
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn type_cause(path: &str, want: &str, got: &Value) -> Cause {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    Cause {
        reason: "FieldValueTypeInvalid".into(),
        message: format!(
            "Invalid value: \"{got}\": {path} in body must be of type {want}: \"{got}\""
        ),
        field: path.to_owned(),
    }
}

/// Checks `v` against an OpenAPI v3 structural schema, pruning unknown fields.
fn check_schema(
    v: &mut Value,
    schema: &Value,
    path: &str,
    causes: &mut Vec<Cause>,
    unknown: &mut Vec<String>,
) {
    if v.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        return;
    }
    if schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true)
    {
        if !(v.is_string() || v.is_i64() || v.is_u64()) {
            causes.push(type_cause(path, "integer or string", v));
        }
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
    let ok = match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    };
    if !ok {
        causes.push(type_cause(path, ty, v));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        causes.push(Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {v}: supported values: {}",
                list.join(", ")
            ),
            field: path.to_owned(),
        });
    }
    match v {
        Value::Object(map) => {
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        causes.push(Cause {
                            reason: "FieldValueRequired".into(),
                            message: "Required value".into(),
                            field: format!("{path}.{r}"),
                        });
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let mut drop = Vec::new();
            for (k, child) in map.iter_mut() {
                let p = format!("{path}.{k}");
                match (props.and_then(|ps| ps.get(k)), additional) {
                    (Some(s), _) | (None, Some(s)) => check_schema(child, s, &p, causes, unknown),
                    (None, None)
                        if preserves_unknown(schema) || props.is_none() && ty.is_empty() => {}
                    (None, None) => {
                        unknown.push(p);
                        drop.push(k.clone());
                    }
                }
            }
            let keep: Map<String, Value> = std::mem::take(map)
                .into_iter()
                .filter(|(k, _)| !drop.contains(k))
                .collect();
            *map = keep;
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    check_schema(item, s, &format!("{path}[{i}]"), causes, unknown);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    }

    #[test]
    fn strict_rejects_unknown_builtin_fields_with_paths() {
        let reg = Registry::new();
        let res = reg.get("apps", "v1", "deployments").expect("served");
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"][0]["imagePolicy"] = json!("x");
        let err = validate(&res, &d, FieldValidation::Strict).expect_err("unknown field");
        assert_eq!(err.code.as_u16(), 400);
        assert!(
            err.message
                .contains("spec.template.spec.containers[0].imagePolicy"),
            "{}",
            err.message
        );
        let ok = validate(&res, &d, FieldValidation::Warn).expect("warn mode accepts");
        assert_eq!(ok.warnings.len(), 1);
        assert!(
            ok.object["spec"]["template"]["spec"]["containers"][0]
                .get("imagePolicy")
                .is_none()
        );
    }

    #[test]
    fn wrong_types_are_invalid_with_field_path() {
        let reg = Registry::new();
        let res = reg.get("apps", "v1", "deployments").expect("served");
        let mut d = deployment();
        d["spec"]["replicas"] = json!("three");
        let err = validate(&res, &d, FieldValidation::Strict).expect_err("bad type");
        assert_eq!(err.code.as_u16(), 422);
        assert_eq!(err.causes[0].field, "spec.replicas");
    }

    #[test]
    fn custom_resources_checked_against_schema() {
        let reg = Registry::new();
        reg.apply_crd(&json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {
                            "size": {"type": "integer"},
                            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}}}]}
        }))
        .expect("crd");
        let res = reg.get("example.com", "v1", "widgets").expect("served");
        let good = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a"},
            "spec": {"size": 3, "junk": 1, "extra": {"anything": true}}});
        let v = validate(&res, &good, FieldValidation::Ignore).expect("pruned");
        assert_eq!(
            v.object["spec"],
            json!({"size": 3, "extra": {"anything": true}})
        );
        let err = validate(&res, &good, FieldValidation::Strict).expect_err("strict");
        assert!(err.message.contains("spec.junk"));
        let bad = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a"},
            "spec": {"size": "big"}});
        let err = validate(&res, &bad, FieldValidation::Strict).expect_err("type");
        assert_eq!(err.causes[0].field, "spec.size");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod metadata_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn labels_and_annotations_follow_kubernetes_rules() {
        let ok = json!({"metadata": {
            "labels": {"app": "web", "app.kubernetes.io/name": "x-1_2.3", "empty": ""},
            "annotations": {"example.com/note": "anything at all: / ! \u{e9}"},
        }});
        assert!(metadata_causes(&ok).is_empty());
        for bad in [
            json!({"metadata": {"labels": {"a": "x".repeat(1 << 20)}}}),
            json!({"metadata": {"labels": {"a": "-x"}}}),
            json!({"metadata": {"labels": {"a b": "x"}}}),
            json!({"metadata": {"labels": {"Upper.Case/a": "x"}}}),
            json!({"metadata": {"annotations": {"big": "x".repeat(MAX_ANNOTATIONS_BYTES)}}}),
        ] {
            let causes = metadata_causes(&bad);
            assert_eq!(causes.len(), 1, "{causes:?}");
            assert!(causes[0].message.len() < 300);
        }
    }
}
