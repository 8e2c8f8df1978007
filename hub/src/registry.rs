//! The resources the hub serves: built-in kinds, Karmada kinds and custom resources.
//!
//! The registry is the single source for discovery, OpenAPI, routing and validation.
//! Custom resources are added and removed as CustomResourceDefinitions come and go.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};

mod builtin;

/// How objects of a resource are validated.
#[derive(Clone, Debug)]
pub enum Schema {
    /// A built-in kind decoded by k8s-openapi.
    Builtin,
    /// A Karmada kind validated by `flotilla-karmada`.
    Karmada,
    /// A custom resource with the CRD version's `openAPIV3Schema` (if any).
    Custom(Option<Arc<Value>>),
}

/// One printer column of a custom resource.
#[derive(Clone, Debug)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type (`string`, `integer`, `date`, ...).
    pub type_: String,
    /// Optional format.
    pub format: String,
    /// Description.
    pub description: String,
    /// 0 shows always, above 0 only with `-o wide`.
    pub priority: i64,
    /// Simple JSONPath such as `.spec.replicas`.
    pub json_path: String,
}

/// A served resource (one group/version/plural).
#[derive(Clone, Debug)]
pub struct Resource {
    /// API group; empty for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular resource name.
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names (`deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Whether `/status` is served.
    pub status: bool,
    /// Whether `/scale` is served.
    pub scale: bool,
    /// Whether only the hub writes it (read-only through the API).
    pub read_only: bool,
    /// Whether it is a review that is only created and answered, never stored
    /// (`SelfSubjectAccessReview`, `TokenReview`, ...).
    pub create_only: bool,
    /// The verbs discovery lists for a built-in kind, as kube-apiserver lists them; empty for
    /// the others, whose verbs follow from `read_only` and `create_only`.
    pub verbs: Vec<String>,
    /// How it is validated.
    pub schema: Schema,
    /// Printer columns for custom resources.
    pub printer_columns: Vec<PrinterColumn>,
    /// Field selector labels a custom resource's CRD declares in `selectableFields`
    /// (`spec.color` for `jsonPath: .spec.color`).
    pub selectable_fields: Vec<String>,
}

impl Resource {
    /// Refuses a field selector label the resource cannot select on, with kube-apiserver's
    /// message: built-in kinds take `metadata.name`, `metadata.namespace` and their own
    /// fields; custom resources `metadata.name`, `metadata.namespace` when namespaced, and
    /// their CRD's `selectableFields`.
    pub fn check_field_label(&self, label: &str) -> Result<(), String> {
        let meta = ["metadata.name", "metadata.namespace"];
        let not_supported = || format!("field label not supported: {label}");
        if !matches!(self.schema, Schema::Builtin) {
            let ok = label == "metadata.name"
                || (self.namespaced && label == "metadata.namespace")
                || self.selectable_fields.iter().any(|f| f == label);
            return if ok { Ok(()) } else { Err(not_supported()) };
        }
        let own: &[&str] = match (self.group.as_str(), self.kind.as_str()) {
            ("", "Pod") => &[
                "metadata.name",
                "metadata.namespace",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            ],
            ("", "Event") => &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
                "metadata.namespace",
                "metadata.name",
            ],
            ("", "Namespace") => &["status.phase", "metadata.name"],
            ("", "Secret") => &["type", "metadata.namespace", "metadata.name"],
            ("", "Service") => &[
                "metadata.namespace",
                "metadata.name",
                "spec.clusterIP",
                "spec.type",
            ],
            ("certificates.k8s.io", "CertificateSigningRequest") => {
                &["metadata.name", "spec.signerName"]
            }
            ("batch", "Job") => {
                let ok = matches!(
                    label,
                    "metadata.name" | "metadata.namespace" | "status.successful"
                );
                return if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "field label {label:?} not supported for batchv1.Job"
                    ))
                };
            }
            _ => {
                return if meta.contains(&label) {
                    Ok(())
                } else {
                    Err(format!(
                        "{label:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                    ))
                };
            }
        };
        if own.contains(&label) {
            Ok(())
        } else {
            Err(not_supported())
        }
    }

    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage key prefix of all objects (ends with `/`).
    pub fn key_prefix(&self) -> String {
        let g = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        format!("/{g}/{}/", self.plural)
    }

    /// The storage key prefix for one namespace, or all objects when `None`.
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/", self.key_prefix()),
            _ => self.key_prefix(),
        }
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/{name}", self.key_prefix()),
            _ => format!("{}{name}", self.key_prefix()),
        }
    }

    /// Whether the kind is one of the built-in Kubernetes kinds.
    pub fn is_builtin(&self) -> bool {
        matches!(self.schema, Schema::Builtin)
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    all: bool,
    status: bool,
    scale: bool,
) -> Resource {
    Resource {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if all { vec!["all".into()] } else { vec![] },
        status,
        scale,
        read_only: false,
        create_only: false,
        verbs: vec![],
        schema: Schema::Builtin,
        printer_columns: vec![],
        selectable_fields: vec![],
    }
}

/// A Karmada kind served by the hub.
#[allow(clippy::too_many_arguments)]
fn karmada(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
    read_only: bool,
) -> Resource {
    Resource {
        schema: Schema::Karmada,
        read_only,
        ..builtin(
            group, version, kind, plural, namespaced, short, false, status, false,
        )
    }
}

/// Takes a Karmada kind's table columns and categories from the crate that defines it.
fn with_kind_info(mut r: Resource) -> Resource {
    if let Some(k) = flotilla_karmada::validation::kind_info(&r.kind) {
        r.categories = k.categories.iter().map(|c| c.to_string()).collect();
        r.printer_columns = k
            .printer_columns
            .iter()
            .map(|c| PrinterColumn {
                name: c.name.into(),
                type_: c.type_.into(),
                format: String::new(),
                description: c.description.into(),
                priority: i64::from(c.priority),
                json_path: c.json_path.into(),
            })
            .collect();
    }
    r
}

fn karmada_kinds() -> Vec<Resource> {
    vec![
        with_kind_info(karmada(
            "networking.karmada.io",
            "v1alpha1",
            "MultiClusterService",
            "multiclusterservices",
            true,
            &["mcs"],
            true,
            false,
        )),
        with_kind_info(karmada(
            "multicluster.x-k8s.io",
            "v1alpha1",
            "ServiceExport",
            "serviceexports",
            true,
            &["svcex"],
            true,
            false,
        )),
        with_kind_info(karmada(
            "multicluster.x-k8s.io",
            "v1alpha1",
            "ServiceImport",
            "serviceimports",
            true,
            &["svcim"],
            true,
            false,
        )),
        with_kind_info(karmada(
            "autoscaling.karmada.io",
            "v1alpha1",
            "FederatedHPA",
            "federatedhpas",
            true,
            &["fhpa"],
            true,
            false,
        )),
        with_kind_info(karmada(
            "autoscaling.karmada.io",
            "v1alpha1",
            "CronFederatedHPA",
            "cronfederatedhpas",
            true,
            &["cronfhpa"],
            true,
            false,
        )),
        karmada(
            "policy.karmada.io",
            "v1alpha1",
            "PropagationPolicy",
            "propagationpolicies",
            true,
            &["pp"],
            false,
            false,
        ),
        karmada(
            "policy.karmada.io",
            "v1alpha1",
            "ClusterPropagationPolicy",
            "clusterpropagationpolicies",
            false,
            &["cpp"],
            false,
            false,
        ),
        karmada(
            "policy.karmada.io",
            "v1alpha1",
            "OverridePolicy",
            "overridepolicies",
            true,
            &["op"],
            false,
            false,
        ),
        karmada(
            "policy.karmada.io",
            "v1alpha1",
            "ClusterOverridePolicy",
            "clusteroverridepolicies",
            false,
            &["cop"],
            false,
            false,
        ),
        karmada(
            "policy.karmada.io",
            "v1alpha1",
            "ClusterTaintPolicy",
            "clustertaintpolicies",
            false,
            &[],
            false,
            false,
        ),
        karmada(
            "apps.karmada.io",
            "v1alpha1",
            "WorkloadRebalancer",
            "workloadrebalancers",
            false,
            &[],
            true,
            false,
        ),
        karmada(
            "cluster.karmada.io",
            "v1alpha1",
            "Cluster",
            "clusters",
            false,
            &[],
            true,
            false,
        ),
        karmada(
            "work.karmada.io",
            "v1alpha2",
            "ResourceBinding",
            "resourcebindings",
            true,
            &["rb"],
            true,
            false,
        ),
        karmada(
            "work.karmada.io",
            "v1alpha2",
            "ClusterResourceBinding",
            "clusterresourcebindings",
            false,
            &["crb"],
            true,
            false,
        ),
        karmada(
            "work.karmada.io",
            "v1alpha1",
            "Work",
            "works",
            true,
            &[],
            true,
            true,
        ),
    ]
}

/// Registry errors.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The CRD is malformed.
    #[error("{field}: {message}")]
    InvalidCrd {
        /// Field path.
        field: String,
        /// What is wrong.
        message: String,
    },
}

type Key = (String, String, String);

#[derive(Default)]
struct Inner {
    /// (group, version, plural) -> resource.
    by_path: BTreeMap<Key, Arc<Resource>>,
    /// Changes with every CRD change, so caches (discovery, OpenAPI) can be rebuilt.
    generation: u64,
}

/// The set of served resources. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Inner>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry with the built-in and Karmada kinds.
    pub fn new() -> Self {
        let reg = Self::default();
        if let Ok(mut inner) = reg.inner.write() {
            inner.by_path = BUILTIN.clone();
        }
        reg
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Looks up a resource by group, version and plural.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<Resource>> {
        self.read()
            .by_path
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
            .cloned()
    }

    /// Looks up a resource by group, version and kind.
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<Resource>> {
        self.read()
            .by_path
            .values()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
    }

    /// All resources, ordered by group, version, plural.
    pub fn all(&self) -> Vec<Arc<Resource>> {
        self.read().by_path.values().cloned().collect()
    }

    /// A number that changes whenever the set of resources changes.
    pub fn generation(&self) -> u64 {
        self.read().generation
    }

    /// Serves the resources a CRD defines, replacing what it served before.
    pub fn apply_crd(&self, crd: &Value) -> Result<(), RegistryError> {
        let resources = resources_from_crd(crd)?;
        let mut inner = self.write();
        let group = resources.first().map(|r| r.group.clone());
        let plural = resources.first().map(|r| r.plural.clone());
        inner
            .by_path
            .retain(|(g, _, p), _| Some(g) != group.as_ref() || Some(p) != plural.as_ref());
        for r in resources {
            inner.by_path.insert(
                (r.group.clone(), r.version.clone(), r.plural.clone()),
                Arc::new(r),
            );
        }
        inner.generation += 1;
        Ok(())
    }

    /// Decides which of a CRD's names can be accepted, as kube-apiserver's naming
    /// controller does: a name another CRD of the same group already serves is refused.
    pub fn accept_names(&self, crd: &Value) -> AcceptedNames {
        let group = str_at(crd, "/spec/group").unwrap_or_default();
        let requested = RequestedNames::of(crd);
        let mut resources = std::collections::BTreeSet::new();
        let mut kinds = std::collections::BTreeSet::new();
        for ((g, _, p), r) in &self.read().by_path {
            if g != group || *p == requested.plural || !matches!(r.schema, Schema::Custom(_)) {
                continue;
            }
            resources.insert(r.plural.clone());
            resources.insert(r.singular.clone());
            resources.extend(r.short_names.iter().cloned());
            kinds.insert(r.kind.clone());
            kinds.insert(format!("{}List", r.kind));
        }
        let in_use = |n: &str| format!("{n:?} is already in use");
        let mut names = serde_json::Map::new();
        let mut conflict = None;
        let mut check = |field: &str,
                         value: &str,
                         used: &std::collections::BTreeSet<String>,
                         reason: &'static str| {
            if value.is_empty() {
                return;
            }
            if used.contains(value) {
                conflict = Some((reason, in_use(value)));
            } else {
                names.insert(field.into(), Value::String(value.to_owned()));
            }
        };
        check("plural", &requested.plural, &resources, "PluralConflict");
        check(
            "singular",
            &requested.singular,
            &resources,
            "SingularConflict",
        );
        let taken: Vec<String> = requested
            .short_names
            .iter()
            .filter(|s| resources.contains(*s))
            .map(|s| in_use(s))
            .collect();
        match taken.as_slice() {
            [] if !requested.short_names.is_empty() => {
                names.insert("shortNames".into(), json!(requested.short_names));
            }
            [] => {}
            [one] => conflict = Some(("ShortNamesConflict", one.clone())),
            many => conflict = Some(("ShortNamesConflict", format!("[{}]", many.join(", ")))),
        }
        let mut check = |field: &str, value: &str, reason: &'static str| {
            if kinds.contains(value) {
                conflict = Some((reason, in_use(value)));
            } else {
                names.insert(field.into(), Value::String(value.to_owned()));
            }
        };
        check("kind", &requested.kind, "KindConflict");
        check("listKind", &requested.list_kind, "ListKindConflict");
        if !requested.categories.is_empty() {
            names.insert("categories".into(), json!(requested.categories));
        }
        AcceptedNames {
            names: Value::Object(names),
            conflict,
        }
    }

    /// Stops serving a CRD's resources.
    pub fn remove_crd(&self, crd: &Value) {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut inner = self.write();
        inner.by_path.retain(|(g, _, p), r| {
            !(g == group && p == plural && matches!(r.schema, Schema::Custom(_)))
        });
        inner.generation += 1;
    }
}

/// The outcome of [`Registry::accept_names`].
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedNames {
    /// `status.acceptedNames`: the requested names that are free.
    pub names: Value,
    /// The reason (`KindConflict`, ...) and message of the last refused name, if any.
    pub conflict: Option<(&'static str, String)>,
}

/// A CRD's `spec.names`, with kube-apiserver's defaults for `singular` and `listKind`.
struct RequestedNames {
    plural: String,
    singular: String,
    short_names: Vec<String>,
    kind: String,
    list_kind: String,
    categories: Vec<String>,
}

impl RequestedNames {
    fn of(crd: &Value) -> Self {
        let kind = str_at(crd, "/spec/names/kind")
            .unwrap_or_default()
            .to_owned();
        Self {
            plural: str_at(crd, "/spec/names/plural")
                .unwrap_or_default()
                .to_owned(),
            singular: str_at(crd, "/spec/names/singular")
                .map(str::to_owned)
                .unwrap_or_else(|| kind.to_lowercase()),
            short_names: strings_at(crd, "/spec/names/shortNames"),
            list_kind: str_at(crd, "/spec/names/listKind")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{kind}List")),
            categories: strings_at(crd, "/spec/names/categories"),
            kind,
        }
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn strings_at(v: &Value, ptr: &str) -> Vec<String> {
    crate::api::meta::strings(v.pointer(ptr))
}

/// Domains whose every group belongs to the hub: no CRD may define one.
const RESERVED_DOMAINS: &[&str] = &["karmada.io", "flotilla.io"];

/// The fixed definitions of the kinds the hub serves itself, by (group, version, plural).
static BUILTIN: std::sync::LazyLock<BTreeMap<Key, Arc<Resource>>> =
    std::sync::LazyLock::new(|| {
        builtin::resources()
            .into_iter()
            .chain(karmada_kinds())
            .map(|r| {
                (
                    (r.group.clone(), r.version.clone(), r.plural.clone()),
                    Arc::new(r),
                )
            })
            .collect()
    });

/// The built-in definition of a kind the hub serves itself, whatever CRDs are stored:
/// for code (the agent server, controllers) that must not be redirected by a CRD.
pub fn builtin_resource(group: &str, version: &str, plural: &str) -> Option<Arc<Resource>> {
    BUILTIN
        .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
        .cloned()
}

/// The groups the hub serves itself, from the built-in and Karmada definitions.
static NATIVE_GROUPS: std::sync::LazyLock<std::collections::BTreeSet<String>> =
    std::sync::LazyLock::new(|| BUILTIN.keys().map(|(g, _, _)| g.clone()).collect());

/// Whether `group` is served by the hub itself (a built-in Kubernetes group such as `""`,
/// `apps` or `apiextensions.k8s.io`, or any group under karmada.io or flotilla.io), so a
/// CRD may not define resources in it.
pub fn is_native_group(group: &str) -> bool {
    NATIVE_GROUPS.contains(group)
        || RESERVED_DOMAINS
            .iter()
            .any(|d| group == *d || group.strip_suffix(d).is_some_and(|g| g.ends_with('.')))
}

/// Builds the served resources of a CRD (one per served version). A CRD in a group the
/// hub serves natively is refused: it would replace how the hub serves its own kinds.
pub fn resources_from_crd(crd: &Value) -> Result<Vec<Resource>, RegistryError> {
    let invalid = |field: &str, message: &str| RegistryError::InvalidCrd {
        field: field.to_owned(),
        message: message.to_owned(),
    };
    let group =
        str_at(crd, "/spec/group").ok_or_else(|| invalid("spec.group", "Required value"))?;
    if is_native_group(group) {
        return Err(invalid(
            "spec.group",
            &format!(
                "Forbidden: the group {group:?} is served by the hub itself; a CustomResourceDefinition may not define or replace its resources"
            ),
        ));
    }
    let plural = str_at(crd, "/spec/names/plural")
        .ok_or_else(|| invalid("spec.names.plural", "Required value"))?;
    let kind = str_at(crd, "/spec/names/kind")
        .ok_or_else(|| invalid("spec.names.kind", "Required value"))?;
    let scope =
        str_at(crd, "/spec/scope").ok_or_else(|| invalid("spec.scope", "Required value"))?;
    let namespaced = match scope {
        "Namespaced" => true,
        "Cluster" => false,
        _ => {
            return Err(invalid(
                "spec.scope",
                "Unsupported value: supported values: \"Cluster\", \"Namespaced\"",
            ));
        }
    };
    let name = str_at(crd, "/metadata/name").unwrap_or_default();
    if name != format!("{plural}.{group}") {
        return Err(invalid(
            "metadata.name",
            &format!("must be spec.names.plural+\".\"+spec.group (\"{plural}.{group}\")"),
        ));
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            invalid(
                "spec.versions",
                "Required value: must have exactly one version marked as storage version",
            )
        })?;
    let singular = str_at(crd, "/spec/names/singular")
        .map(str::to_owned)
        .unwrap_or_else(|| kind.to_lowercase());
    let mut out = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let vname = str_at(v, "/name")
            .ok_or_else(|| invalid(&format!("spec.versions[{i}].name"), "Required value"))?;
        if !v.get("served").and_then(Value::as_bool).unwrap_or(false) {
            continue;
        }
        let printer_columns = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: str_at(c, "/name").unwrap_or_default().to_owned(),
                        type_: str_at(c, "/type").unwrap_or("string").to_owned(),
                        format: str_at(c, "/format").unwrap_or_default().to_owned(),
                        description: str_at(c, "/description").unwrap_or_default().to_owned(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                        json_path: str_at(c, "/jsonPath").unwrap_or_default().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Resource {
            group: group.to_owned(),
            version: vname.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            singular: singular.clone(),
            namespaced,
            short_names: strings_at(crd, "/spec/names/shortNames"),
            categories: strings_at(crd, "/spec/names/categories"),
            status: v.pointer("/subresources/status").is_some(),
            scale: v.pointer("/subresources/scale").is_some(),
            read_only: false,
            create_only: false,
            verbs: vec![],
            schema: Schema::Custom(v.pointer("/schema/openAPIV3Schema").cloned().map(Arc::new)),
            printer_columns,
            selectable_fields: v
                .get("selectableFields")
                .and_then(Value::as_array)
                .map(|fields| {
                    fields
                        .iter()
                        .filter_map(|f| str_at(f, "/jsonPath"))
                        .map(|p| p.trim_start_matches('.').to_owned())
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                    "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v0", "served": false, "storage": false}]}
        })
    }

    #[test]
    fn crds_cannot_take_over_native_groups() {
        let reg = Registry::new();
        for (group, plural, kind) in [
            ("work.karmada.io", "works", "Work"),
            ("apps", "deployments", "Deployment"),
            ("apiextensions.k8s.io", "customresourcedefinitions", "X"),
            ("new.karmada.io", "things", "Thing"),
            ("flotilla.io", "things", "Thing"),
        ] {
            let mut c = crd();
            c["spec"]["group"] = json!(group);
            c["spec"]["scope"] = json!("Cluster");
            c["spec"]["names"] = json!({"plural": plural, "kind": kind});
            c["metadata"]["name"] = json!(format!("{plural}.{group}"));
            let err = reg.apply_crd(&c).expect_err(group);
            assert!(
                err.to_string().contains("served by the hub itself"),
                "{err}"
            );
        }
        let work = reg
            .get("work.karmada.io", "v1alpha1", "works")
            .expect("works");
        assert!(
            work.namespaced && !matches!(work.schema, Schema::Custom(_)),
            "Work is served as before"
        );
        // Groups merely ending like a native one are free.
        for group in ["apps.example.com", "notkarmada.io", "example.com"] {
            let mut c = crd();
            c["spec"]["group"] = json!(group);
            c["metadata"]["name"] = json!(format!("widgets.{group}"));
            let applied = reg.apply_crd(&c);
            assert!(applied.is_ok(), "{group}: {applied:?}");
        }
        assert!(builtin_resource("work.karmada.io", "v1alpha1", "works").is_some());
    }

    #[test]
    fn serves_builtins_and_karmada_kinds() {
        let reg = Registry::new();
        let deploy = reg
            .get("apps", "v1", "deployments")
            .expect("deployments served");
        assert!(deploy.scale && deploy.status && deploy.namespaced);
        assert_eq!(deploy.short_names, vec!["deploy"]);
        assert!(
            reg.get("policy.karmada.io", "v1alpha1", "propagationpolicies")
                .is_some()
        );
        assert!(
            reg.by_kind("work.karmada.io", "v1alpha2", "ResourceBinding")
                .is_some()
        );
        assert_eq!(deploy.key(Some("ns1"), "web"), "/apps/deployments/ns1/web");
        let fhpa = reg
            .get("autoscaling.karmada.io", "v1alpha1", "federatedhpas")
            .expect("federatedhpas served");
        assert!(fhpa.namespaced && fhpa.status && !fhpa.scale);
        assert_eq!(fhpa.short_names, vec!["fhpa"]);
        assert_eq!(fhpa.categories, vec!["karmada-io"]);
        let columns: Vec<&str> = fhpa
            .printer_columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            columns,
            [
                "REFERENCE-KIND",
                "REFERENCE-NAME",
                "MINPODS",
                "MAXPODS",
                "REPLICAS",
                "DESIRED",
                "AGE"
            ]
        );
        let cron = reg
            .by_kind("autoscaling.karmada.io", "v1alpha1", "CronFederatedHPA")
            .expect("cronfederatedhpas served");
        assert_eq!(cron.short_names, vec!["cronfhpa"]);
        assert_eq!(cron.printer_columns.len(), 3);
        let ns = reg.get("", "v1", "namespaces").expect("namespaces");
        assert_eq!(ns.key(None, "default"), "/core/namespaces/default");
    }

    #[test]
    fn field_labels_follow_kube_apiserver() {
        let pods = builtin_resource("", "v1", "pods").expect("pods");
        assert!(pods.check_field_label("spec.nodeName").is_ok());
        assert!(pods.check_field_label("metadata.namespace").is_ok());
        assert_eq!(
            pods.check_field_label("spec.foo"),
            Err("field label not supported: spec.foo".into())
        );
        let cms = builtin_resource("", "v1", "configmaps").expect("configmaps");
        assert!(cms.check_field_label("metadata.name").is_ok());
        assert!(cms.check_field_label("data.x").is_err());
        let secrets = builtin_resource("", "v1", "secrets").expect("secrets");
        assert!(secrets.check_field_label("type").is_ok());
        let mut c = crd();
        c["spec"]["versions"][0]["selectableFields"] = json!([{"jsonPath": ".spec.color"}]);
        let r = &resources_from_crd(&c).expect("valid CRD")[0];
        assert!(r.check_field_label("spec.color").is_ok());
        assert!(r.check_field_label("metadata.name").is_ok());
        assert_eq!(
            r.check_field_label("spec.size"),
            Err("field label not supported: spec.size".into())
        );
    }

    #[test]
    fn crd_lifecycle() {
        let reg = Registry::new();
        let before = reg.generation();
        reg.apply_crd(&crd()).expect("valid CRD");
        let r = reg.get("example.com", "v1", "widgets").expect("served");
        assert!(r.status && !r.scale);
        assert_eq!(r.printer_columns[0].json_path, ".spec.size");
        assert!(
            reg.get("example.com", "v0", "widgets").is_none(),
            "unserved version"
        );
        assert!(reg.generation() > before);
        reg.remove_crd(&crd());
        assert!(reg.get("example.com", "v1", "widgets").is_none());
    }

    #[test]
    fn bad_crd_names_field() {
        let mut c = crd();
        c["metadata"]["name"] = json!("wrong");
        match resources_from_crd(&c) {
            Err(RegistryError::InvalidCrd { field, .. }) => assert_eq!(field, "metadata.name"),
            other => panic!("expected InvalidCrd, got {other:?}"),
        }
        let mut c = crd();
        c["spec"]["scope"] = json!("Galaxy");
        assert!(resources_from_crd(&c).is_err());
    }
}
