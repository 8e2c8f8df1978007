//! The member cluster as the agent's engine sees it, so the engine can run against a real
//! API server ([`crate::kube_member::KubeMember`]) or an in-memory fake
//! ([`crate::fake::FakeMember`]).

use std::future::Future;

use flotilla_proto::v1::Heartbeat;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Identity of one member object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectRef {
    /// API group (empty for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name.
    pub resource: String,
    /// Namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = if self.group.is_empty() {
            String::new()
        } else {
            format!(".{}", self.group)
        };
        if self.namespace.is_empty() {
            write!(f, "{}{g}/{}", self.resource, self.name)
        } else {
            write!(f, "{}{g}/{}/{}", self.resource, self.namespace, self.name)
        }
    }
}

/// The result of applying one manifest.
#[derive(Debug, Clone)]
pub struct Applied {
    /// What was applied.
    pub target: ObjectRef,
    /// The live object after the apply.
    pub object: Value,
    /// False when the object already matched and nothing was sent to the API server.
    pub changed: bool,
}

/// Why a member operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MemberError {
    /// The object exists and is not managed by Flotilla, and overwriting was not requested.
    #[error(
        "{0} already exists in the member cluster and is not managed by Flotilla; set conflictResolution: Overwrite to take it over"
    )]
    Conflict(String),
    /// The member's guard rails refuse the object.
    #[error("{message}")]
    Refused {
        /// The object refused.
        target: Box<ObjectRef>,
        /// Why, with the rule.
        message: String,
    },
    /// The member does not serve the kind (yet).
    #[error("the member cluster does not serve {0}")]
    UnknownKind(String),
    /// The manifest is unusable.
    #[error("invalid manifest: {0}")]
    Invalid(String),
    /// The member API refused or failed the request.
    #[error("{0}")]
    Api(String),
}

/// A change to a managed member object seen by a watch.
#[derive(Debug, Clone)]
pub struct MemberEvent {
    /// The Work the object belongs to (from its annotation).
    pub work: String,
    /// The object.
    pub target: ObjectRef,
    /// The object now, or `None` when it was deleted.
    pub object: Option<Value>,
}

/// A member cluster.
pub trait Member: Send + Sync + 'static {
    /// Applies `manifest` for `work`, unless it is unchanged; refuses to take over unmanaged
    /// objects unless `overwrite`. Starts watching the object's kind.
    fn apply(
        &self,
        work: &str,
        manifest: &Value,
        overwrite: bool,
    ) -> impl Future<Output = Result<Applied, MemberError>> + Send;
    /// Deletes `target` if it is managed for `work`; absent objects are fine.
    fn delete(
        &self,
        work: &str,
        target: &ObjectRef,
    ) -> impl Future<Output = Result<(), MemberError>> + Send;
    /// Stops managing `target` (removes Flotilla's labels and annotations) if it is managed
    /// for `work`, leaving the object in place; absent objects are fine.
    fn release(
        &self,
        work: &str,
        target: &ObjectRef,
    ) -> impl Future<Output = Result<(), MemberError>> + Send;
    /// Every object in the member that Flotilla manages, with its Work's name.
    fn managed_objects(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, ObjectRef)>, MemberError>> + Send;
    /// Cluster facts; API enablements are included when `with_enablements` or changed.
    fn heartbeat(&self, with_enablements: bool) -> impl Future<Output = Heartbeat> + Send;
    /// The exported Services as the member has them now: every Service of `services` whose
    /// namespace could be read (an absent Service is reported as not present); a Service
    /// whose namespace could not be read is left out.
    fn exported(
        &self,
        services: &[crate::discovery::ServiceRef],
    ) -> impl Future<
        Output = std::collections::BTreeMap<
            crate::discovery::ServiceRef,
            flotilla_proto::v1::ExportedService,
        >,
    > + Send;
    /// Resolves when the exported Services or their EndpointSlices may have changed since
    /// the last [`Member::exported`] (never, for a member that is only read periodically).
    fn endpoints_changed(&self) -> impl Future<Output = ()> + Send;
    /// The metrics of one autoscaled workload (errors are reported in the result).
    fn measure(
        &self,
        target: &crate::autoscaling::MeasureTarget,
    ) -> impl Future<Output = flotilla_proto::v1::WorkloadMetricsReport> + Send;
}

/// Metadata fields the agent never sends to the member.
const STRIPPED_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The object to apply for `manifest` of `work`: server-owned fields removed, Flotilla's
/// labels and annotations added (including the hash of the result), and `namespace` set
/// for namespaced kinds.
pub fn prepare(
    manifest: &Value,
    work: &str,
    namespace: Option<&str>,
) -> Result<Value, MemberError> {
    let mut obj = manifest.clone();
    let Some(map) = obj.as_object_mut() else {
        return Err(MemberError::Invalid(
            "a manifest must be a JSON object".into(),
        ));
    };
    map.remove("status");
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return Err(MemberError::Invalid("metadata must be an object".into()));
    };
    for k in STRIPPED_METADATA {
        meta.remove(*k);
    }
    match namespace {
        Some(ns) => {
            meta.insert("namespace".into(), json!(ns));
        }
        None => {
            meta.remove("namespace");
        }
    }
    let labels = meta
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(l) = labels.as_object_mut() {
        l.insert(flotilla_proto::MANAGED_LABEL.into(), json!("true"));
        l.insert(
            flotilla_proto::WORK_LABEL.into(),
            json!(flotilla_proto::work_label_value(work)),
        );
    }
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(a) = annotations.as_object_mut() {
        a.insert(flotilla_proto::WORK_NAME_ANNOTATION.into(), json!(work));
        a.remove(flotilla_proto::MANIFEST_HASH_ANNOTATION);
    }
    let hash = hex::encode(&Sha256::digest(serde_json::to_vec(&obj).unwrap_or_default())[..16]);
    if let Some(a) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.insert(flotilla_proto::MANIFEST_HASH_ANNOTATION.into(), json!(hash));
    }
    Ok(obj)
}

/// The manifest to apply over `live`: a workload whose template carries
/// [`flotilla_proto::RETAIN_REPLICAS_LABEL`] keeps the member's replicas, which the member's
/// own HorizontalPodAutoscaler owns (Karmada's `retain` of replicas).
pub fn retained<'a>(manifest: &'a Value, live: Option<&Value>) -> std::borrow::Cow<'a, Value> {
    let retain = manifest
        .pointer(&format!(
            "/metadata/labels/{}",
            flotilla_proto::RETAIN_REPLICAS_LABEL.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        == Some("true");
    match live.and_then(|l| l.pointer("/spec/replicas")) {
        Some(r) if retain && manifest.pointer("/spec/replicas") != Some(r) => {
            let mut m = manifest.clone();
            if let Some(spec) = m.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("replicas".into(), r.clone());
            }
            std::borrow::Cow::Owned(m)
        }
        _ => std::borrow::Cow::Borrowed(manifest),
    }
}

/// Whether a live object is managed by Flotilla.
pub fn is_managed(obj: &Value) -> bool {
    obj.pointer(&format!(
        "/metadata/labels/{}",
        flotilla_proto::MANAGED_LABEL.replace('/', "~1")
    )) == Some(&json!("true"))
}

/// Whether a live object belongs to `work`.
pub fn belongs_to(obj: &Value, work: &str) -> bool {
    is_managed(obj)
        && obj.pointer(&format!(
            "/metadata/labels/{}",
            flotilla_proto::WORK_LABEL.replace('/', "~1")
        )) == Some(&json!(flotilla_proto::work_label_value(work)))
}

/// Whether a live object already carries exactly what `desired` (from [`prepare`]) would apply.
pub fn up_to_date(live: &Value, desired: &Value) -> bool {
    let ptr = format!(
        "/metadata/annotations/{}",
        flotilla_proto::MANIFEST_HASH_ANNOTATION.replace('/', "~1")
    );
    belongs_to(
        live,
        desired
            .pointer(&format!(
                "/metadata/annotations/{}",
                flotilla_proto::WORK_NAME_ANNOTATION.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .unwrap_or_default(),
    ) && live.pointer(&ptr).is_some()
        && live.pointer(&ptr) == desired.pointer(&ptr)
}

/// The work whose name a live object carries.
pub fn work_of(obj: &Value) -> Option<String> {
    obj.pointer(&format!(
        "/metadata/annotations/{}",
        flotilla_proto::WORK_NAME_ANNOTATION.replace('/', "~1")
    ))
    .and_then(Value::as_str)
    .map(str::to_owned)
}

/// Splits `apiVersion` into group and version.
pub fn group_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_strips_and_labels() -> Result<(), MemberError> {
        let m = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "x", "uid": "u", "resourceVersion": "5", "labels": {"app": "a"}},
            "data": {"k": "v"}, "status": {"s": 1}});
        let p = prepare(&m, "w1", Some("x"))?;
        assert!(p.get("status").is_none());
        assert!(p.pointer("/metadata/uid").is_none());
        assert_eq!(p["metadata"]["labels"]["app"], "a");
        assert_eq!(p["metadata"]["labels"]["karmada.io/managed"], "true");
        assert_eq!(p["metadata"]["labels"]["flotilla.io/work"], "w1");
        assert_eq!(p["metadata"]["annotations"]["work.karmada.io/name"], "w1");
        assert!(belongs_to(&p, "w1"));
        assert!(!belongs_to(&p, "w2"));
        assert!(up_to_date(&p, &p));
        // Server-side fields do not change the hash; content does.
        let again = prepare(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x", "labels": {"app": "a"}}, "data": {"k": "v"}}),
            "w1",
            Some("x"),
        )?;
        assert!(up_to_date(&p, &again));
        let changed = prepare(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x", "labels": {"app": "a"}}, "data": {"k": "v2"}}),
            "w1",
            Some("x"),
        )?;
        assert!(!up_to_date(&p, &changed));
        // A cluster-scoped kind loses a stray namespace.
        let ns = prepare(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "namespace": "x"}}),
            "w",
            None,
        )?;
        assert!(ns.pointer("/metadata/namespace").is_none());
        assert!(prepare(&json!([1]), "w", None).is_err());
        assert!(!is_managed(
            &json!({"metadata": {"labels": {"karmada.io/managed": "false"}}})
        ));
        Ok(())
    }

    #[test]
    fn retained_replicas_come_from_the_member() {
        let m = json!({"metadata": {"labels": {"resourcetemplate.karmada.io/retain-replicas": "true"}},
            "spec": {"replicas": 4}});
        let live = json!({"spec": {"replicas": 7}});
        assert_eq!(retained(&m, Some(&live))["spec"]["replicas"], 7);
        assert_eq!(retained(&m, None)["spec"]["replicas"], 4);
        let plain = json!({"spec": {"replicas": 4}});
        assert_eq!(retained(&plain, Some(&live))["spec"]["replicas"], 4);
    }

    #[test]
    fn group_versions() {
        assert_eq!(group_version("v1"), ("", "v1"));
        assert_eq!(group_version("apps/v1"), ("apps", "v1"));
    }
}
