//! OpenAPI v3 documents for `kubectl explain` and server-side field validation.
//!
//! `/openapi/v3` lists one document per served group-version. kubectl reads the document of a
//! kind's group-version to find its schema (by `x-kubernetes-group-version-kind`) and to see
//! whether the kind's PATCH operation declares `fieldValidation`; if it does, `kubectl apply`
//! and `create` send `fieldValidation=Strict` instead of validating on the client.
//!
//! Built-in kinds use the official Kubernetes path items and schemas, embedded as
//! `openapi/builtin.json.gz` (regenerate with `openapi/generate.sh`). Karmada kinds and custom
//! resources get generated path items around their schemas.

#[cfg(test)]
mod generate;

use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::registry::{Registry, Resource, Schema};

/// The official path items and schemas of the served built-in kinds (gzip-compressed JSON).
const BUILTIN_DATA: &[u8] = include_bytes!("openapi/builtin.json.gz");

const SCHEMA_REF_PREFIX: &str = "#/components/schemas/";
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";
/// Meta kinds whose GVK extension also names the document's group-version.
const PER_GROUP_META_KINDS: &[&str] = &["DeleteOptions", "WatchEvent"];
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DOC: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// The embedded built-in data, as written by the generator.
#[derive(Debug, Default, Deserialize)]
struct BuiltinData {
    /// Component schemas: the closure of everything the built-in paths reference, plus the
    /// apimachinery schemas other kinds refer to.
    schemas: Map<String, Value>,
    /// Path items keyed by the full path (`/apis/apps/v1/namespaces/{namespace}/deployments`).
    paths: Map<String, Value>,
    /// Official query and path parameters by name, reused for generated operations.
    parameters: Map<String, Value>,
}

fn builtin_data() -> &'static BuiltinData {
    static DATA: OnceLock<BuiltinData> = OnceLock::new();
    DATA.get_or_init(|| match decode_builtin(BUILTIN_DATA) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "embedded OpenAPI data is unreadable");
            BuiltinData::default()
        }
    })
}

fn decode_builtin(gz: &[u8]) -> std::io::Result<BuiltinData> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut raw)?;
    Ok(serde_json::from_slice(&raw)?)
}

/// Component schemas of the Karmada kinds (keyed like `io.karmada.policy.v1alpha1.PropagationPolicy`).
fn karmada_schemas() -> &'static Map<String, Value> {
    static SCHEMAS: OnceLock<Map<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(flotilla_karmada::openapi_schemas)
}

#[derive(Debug)]
struct Cached {
    /// The resources the document was built from. The registry replaces a resource's `Arc`
    /// whenever it changes, so the same `Arc`s mean the same document; CRD changes elsewhere
    /// do not rebuild it.
    resources: Vec<Arc<Resource>>,
    bytes: Bytes,
    hash: String,
}

/// Builds and caches OpenAPI v3 documents per group-version.
#[derive(Debug, Default)]
pub struct OpenApiCache {
    docs: Mutex<HashMap<String, Cached>>,
}

impl OpenApiCache {
    /// The `/openapi/v3` index.
    pub fn index(&self, reg: &Registry) -> Value {
        let mut by_gv: BTreeMap<String, Vec<Arc<Resource>>> = BTreeMap::new();
        for r in reg.all() {
            by_gv
                .entry(gv_path(&r.group, &r.version))
                .or_default()
                .push(r);
        }
        let mut paths = Map::new();
        for (p, resources) in &by_gv {
            let (bytes, hash) = self.cached(p, resources);
            if !bytes.is_empty() {
                paths.insert(
                    p.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
                );
            }
        }
        self.lock().retain(|k, _| by_gv.contains_key(k));
        json!({"paths": paths})
    }

    /// The document of one group-version path (`apis/apps/v1`, `api/v1`), without query string.
    pub fn document(&self, reg: &Registry, path: &str) -> Option<Bytes> {
        let (group, version) = parse_gv_path(path)?;
        let key = gv_path(group, version);
        let resources: Vec<_> = reg
            .all()
            .into_iter()
            .filter(|r| r.group == group && r.version == version)
            .collect();
        if resources.is_empty() {
            self.lock().remove(&key);
            return None;
        }
        Some(self.cached(&key, &resources).0).filter(|b| !b.is_empty())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.docs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The document and its hash for the resources of one group-version (all of the same
    /// group-version, at least one).
    fn cached(&self, key: &str, resources: &[Arc<Resource>]) -> (Bytes, String) {
        let same = |c: &&Cached| {
            c.resources.len() == resources.len()
                && c.resources
                    .iter()
                    .zip(resources)
                    .all(|(a, b)| Arc::ptr_eq(a, b))
        };
        if let Some(c) = self.lock().get(key).filter(same) {
            return (c.bytes.clone(), c.hash.clone());
        }
        let doc = build_document(resources);
        let bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
        // Only a cache buster for clients; std's hasher is fast even in debug builds.
        let mut h = std::hash::DefaultHasher::new();
        h.write(&bytes);
        let hash = format!("{:016X}", h.finish());
        self.lock().insert(
            key.to_owned(),
            Cached {
                resources: resources.to_vec(),
                bytes: bytes.clone(),
                hash: hash.clone(),
            },
        );
        (bytes, hash)
    }
}

/// `api/v1` for core, `apis/<group>/<version>` otherwise.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn parse_gv_path(path: &str) -> Option<(&str, &str)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["api", v] if !v.is_empty() => Some(("", v)),
        ["apis", g, v] if !g.is_empty() && !v.is_empty() => Some((g, v)),
        _ => None,
    }
}

/// The kinds of path a resource is served under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PathKind {
    /// List across namespaces (namespaced kinds only).
    AllNamespaces,
    /// The collection (list, create, delete collection).
    Collection,
    /// One object.
    Item,
    /// The status subresource.
    Status,
    /// The scale subresource.
    Scale,
}

/// The REST paths of a resource, in OpenAPI template form.
fn resource_paths(r: &Resource) -> Vec<(PathKind, String)> {
    let base = format!("/{}", gv_path(&r.group, &r.version));
    let plural = &r.plural;
    let collection = if r.namespaced {
        format!("{base}/namespaces/{{namespace}}/{plural}")
    } else {
        format!("{base}/{plural}")
    };
    let item = format!("{collection}/{{name}}");
    if r.create_only {
        return vec![(PathKind::Collection, collection)];
    }
    let mut out = Vec::new();
    if r.namespaced {
        out.push((PathKind::AllNamespaces, format!("{base}/{plural}")));
    }
    out.push((PathKind::Collection, collection));
    if r.status {
        out.push((PathKind::Status, format!("{item}/status")));
    }
    if r.scale {
        out.push((PathKind::Scale, format!("{item}/scale")));
    }
    out.push((PathKind::Item, item));
    out
}

/// `policy.karmada.io` -> `io.karmada.policy`.
fn reversed_group(group: &str) -> String {
    group.split('.').rev().collect::<Vec<_>>().join(".")
}

/// The component schema name Kubernetes gives a custom kind (`com.example.v1.Widget`).
fn custom_schema_name(group: &str, version: &str, kind: &str) -> String {
    if group.is_empty() {
        format!("{version}.{kind}")
    } else {
        format!("{}.{version}.{kind}", reversed_group(group))
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{SCHEMA_REF_PREFIX}{name}")})
}

/// Whether a schema's GVK extension names this group/version/kind.
fn has_gvk(schema: &Value, group: &str, version: &str, kind: &str) -> bool {
    schema
        .get("x-kubernetes-group-version-kind")
        .and_then(Value::as_array)
        .is_some_and(|l| {
            l.iter().any(|g| {
                g.get("group").and_then(Value::as_str).unwrap_or_default() == group
                    && g.get("version").and_then(Value::as_str) == Some(version)
                    && g.get("kind").and_then(Value::as_str) == Some(kind)
            })
        })
}

/// The schema of a kind generated around a CRD's (or a missing) `openAPIV3Schema`: adds the
/// GVK extension and the `apiVersion`, `kind` and `metadata` properties, as Kubernetes does.
fn custom_kind_schema(r: &Resource, base: Option<&Value>) -> Value {
    let mut s = match base {
        Some(Value::Object(m)) => m.clone(),
        _ => {
            let mut m = Map::new();
            m.insert(
                "x-kubernetes-preserve-unknown-fields".into(),
                Value::Bool(true),
            );
            m
        }
    };
    s.entry("type").or_insert_with(|| json!("object"));
    let props = s.entry("properties").or_insert_with(|| json!({}));
    if !props.is_object() {
        *props = json!({});
    }
    if let Value::Object(props) = props {
        props.insert(
            "apiVersion".into(),
            json!({"description": API_VERSION_DOC, "type": "string"}),
        );
        props.insert(
            "kind".into(),
            json!({"description": KIND_DOC, "type": "string"}),
        );
        props.insert(
            "metadata".into(),
            json!({"allOf": [schema_ref(OBJECT_META)], "description": METADATA_DOC}),
        );
    }
    s.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([gvk(&r.group, &r.version, &r.kind)]),
    );
    Value::Object(s)
}

/// The `<Kind>List` schema of a generated kind.
fn list_schema(r: &Resource, item: &str) -> Value {
    json!({
        "description": format!("{}List is a list of {}", r.kind, r.kind),
        "properties": {
            "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", r.plural),
                "items": schema_ref(item),
                "type": "array",
            },
            "kind": {"description": KIND_DOC, "type": "string"},
            "metadata": {"allOf": [schema_ref(LIST_META)], "description": LIST_METADATA_DOC},
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": [gvk(&r.group, &r.version, &format!("{}List", r.kind))],
    })
}

/// `policy.karmada.io` + `v1alpha1` -> `PolicyKarmadaIoV1alpha1`, as used in operation ids.
fn op_prefix(group: &str, version: &str) -> String {
    let mut out = String::new();
    for part in group
        .trim_end_matches(".k8s.io")
        .split(['.', '-'])
        .chain([version])
    {
        let mut c = part.chars();
        if let Some(first) = c.next() {
            out.extend(first.to_uppercase());
            out.push_str(c.as_str());
        }
    }
    if group.is_empty() {
        format!("Core{out}")
    } else {
        out
    }
}

fn param(params: &Map<String, Value>, name: &str) -> Value {
    params.get(name).cloned().unwrap_or_else(|| {
        let ty = match name {
            "limit" | "timeoutSeconds" | "gracePeriodSeconds" => "integer",
            "watch" | "allowWatchBookmarks" | "sendInitialEvents" | "force" => "boolean",
            _ => "string",
        };
        json!({"in": "query", "name": name, "schema": {"type": ty, "uniqueItems": true}})
    })
}

fn params(all: &Map<String, Value>, names: &[&str]) -> Value {
    Value::Array(names.iter().map(|n| param(all, n)).collect())
}

const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const DELETE_COLLECTION_PARAMS: &[&str] = &[
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "labelSelector",
    "limit",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];
const DELETE_PARAMS: &[&str] = &["dryRun", "gracePeriodSeconds", "propagationPolicy"];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];

fn content(schema: &str, watch: bool) -> Value {
    let mut m = Map::new();
    m.insert(
        "application/json".into(),
        json!({"schema": schema_ref(schema)}),
    );
    if watch {
        m.insert(
            "application/json;stream=watch".into(),
            json!({"schema": schema_ref(schema)}),
        );
    }
    m.insert(
        "application/yaml".into(),
        json!({"schema": schema_ref(schema)}),
    );
    Value::Object(m)
}

fn responses(schema: &str, codes: &[(&str, &str)], watch: bool) -> Value {
    let mut m = Map::new();
    for (code, desc) in codes {
        m.insert(
            (*code).into(),
            json!({"content": content(schema, watch), "description": desc}),
        );
    }
    m.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(m)
}

/// What one generated operation needs besides the resource.
struct Op<'a> {
    action: &'a str,
    id: String,
    description: String,
    parameters: Option<Value>,
    body: Option<Value>,
    responses: Value,
    gvk: Value,
}

fn operation(tag: &str, op: Op<'_>) -> Value {
    let mut m = Map::new();
    m.insert("description".into(), json!(op.description));
    m.insert("operationId".into(), json!(op.id));
    if let Some(p) = op.parameters {
        m.insert("parameters".into(), p);
    }
    if let Some(b) = op.body {
        m.insert("requestBody".into(), b);
    }
    m.insert("responses".into(), op.responses);
    m.insert("tags".into(), json!([tag]));
    m.insert("x-kubernetes-action".into(), json!(op.action));
    m.insert("x-kubernetes-group-version-kind".into(), op.gvk);
    Value::Object(m)
}

/// Path items for a kind that has no official ones, modelled on what Kubernetes serves for
/// custom resources.
fn generated_paths(
    r: &Resource,
    kind_schema: &str,
    list_schema: &str,
    all: &Map<String, Value>,
) -> Vec<(String, Value)> {
    let kind = &r.kind;
    let gvk_v = gvk(&r.group, &r.version, kind);
    let prefix = op_prefix(&r.group, &r.version);
    let ns = if r.namespaced { "Namespaced" } else { "" };
    let tag = format!(
        "{}_{}",
        r.group.trim_end_matches(".k8s.io").replace(['.', '-'], "_"),
        r.version
    );
    let tag = tag.trim_start_matches('_').to_owned();
    let body = |schema: &str| json!({"content": {"*/*": {"schema": schema_ref(schema)}}, "required": true});
    let mut patch_types = vec![
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    if r.is_builtin() {
        patch_types.push("application/strategic-merge-patch+json");
    }
    let patch_body = |types: &[&str]| {
        let c: Map<String, Value> = types
            .iter()
            .map(|t| ((*t).to_owned(), json!({"schema": schema_ref(PATCH)})))
            .collect();
        json!({"content": c, "required": true})
    };
    let mut path_params = Vec::new();
    let name_param = json!({
        "description": format!("name of the {kind}"),
        "in": "path", "name": "name", "required": true,
        "schema": {"type": "string", "uniqueItems": true},
    });
    let ns_param = {
        let mut p = param(all, "namespace");
        if let Value::Object(m) = &mut p {
            m.insert("in".into(), json!("path"));
            m.insert("required".into(), json!(true));
        }
        p
    };
    if r.namespaced {
        path_params.push(ns_param);
    }
    let pretty = param(all, "pretty");
    let write_codes: &[(&str, &str)] = &[("200", "OK"), ("201", "Created")];
    let mut out = Vec::new();
    for (pk, path) in resource_paths(r) {
        let mut item = Map::new();
        match pk {
            PathKind::AllNamespaces => {
                item.insert(
                    "get".into(),
                    operation(
                        &tag,
                        Op {
                            action: "list",
                            id: format!("list{prefix}{kind}ForAllNamespaces"),
                            description: format!("list or watch objects of kind {kind}"),
                            parameters: None,
                            body: None,
                            responses: responses(list_schema, &[("200", "OK")], true),
                            gvk: gvk_v.clone(),
                        },
                    ),
                );
                let mut p = params(all, LIST_PARAMS);
                if let Value::Array(a) = &mut p {
                    a.push(pretty.clone());
                }
                item.insert("parameters".into(), p);
            }
            PathKind::Collection => {
                item.insert(
                    "delete".into(),
                    operation(
                        &tag,
                        Op {
                            action: "deletecollection",
                            id: format!("delete{prefix}Collection{ns}{kind}"),
                            description: format!("delete collection of {kind}"),
                            parameters: Some(params(all, DELETE_COLLECTION_PARAMS)),
                            body: Some(
                                json!({"content": {"*/*": {"schema": schema_ref(DELETE_OPTIONS)}}}),
                            ),
                            responses: responses(STATUS, &[("200", "OK")], false),
                            gvk: gvk_v.clone(),
                        },
                    ),
                );
                item.insert(
                    "get".into(),
                    operation(
                        &tag,
                        Op {
                            action: "list",
                            id: format!("list{prefix}{ns}{kind}"),
                            description: format!("list or watch objects of kind {kind}"),
                            parameters: Some(params(all, LIST_PARAMS)),
                            body: None,
                            responses: responses(list_schema, &[("200", "OK")], true),
                            gvk: gvk_v.clone(),
                        },
                    ),
                );
                item.insert(
                    "post".into(),
                    operation(
                        &tag,
                        Op {
                            action: "post",
                            id: format!("create{prefix}{ns}{kind}"),
                            description: format!("create a {kind}"),
                            parameters: Some(params(all, WRITE_PARAMS)),
                            body: Some(body(kind_schema)),
                            responses: responses(
                                kind_schema,
                                &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
                                false,
                            ),
                            gvk: gvk_v.clone(),
                        },
                    ),
                );
                item.insert(
                    "parameters".into(),
                    json!(
                        path_params
                            .iter()
                            .cloned()
                            .chain([pretty.clone()])
                            .collect::<Vec<_>>()
                    ),
                );
            }
            PathKind::Item | PathKind::Status | PathKind::Scale => {
                let (schema, op_gvk, suffix, what) = match pk {
                    PathKind::Scale => (
                        SCALE,
                        gvk("autoscaling", "v1", "Scale"),
                        "Scale",
                        format!("scale of the specified {kind}"),
                    ),
                    PathKind::Status => (
                        kind_schema,
                        gvk_v.clone(),
                        "Status",
                        format!("status of the specified {kind}"),
                    ),
                    _ => (
                        kind_schema,
                        gvk_v.clone(),
                        "",
                        format!("the specified {kind}"),
                    ),
                };
                if pk == PathKind::Item {
                    item.insert("delete".into(), operation(&tag, Op {
                        action: "delete",
                        id: format!("delete{prefix}{ns}{kind}"),
                        description: format!("delete a {kind}"),
                        parameters: Some(params(all, DELETE_PARAMS)),
                        body: Some(json!({"content": {"*/*": {"schema": schema_ref(DELETE_OPTIONS)}}})),
                        responses: responses(STATUS, &[("200", "OK"), ("202", "Accepted")], false),
                        gvk: gvk_v.clone(),
                    }));
                }
                item.insert(
                    "get".into(),
                    operation(
                        &tag,
                        Op {
                            action: "get",
                            id: format!("read{prefix}{ns}{kind}{suffix}"),
                            description: format!("read {what}"),
                            parameters: None,
                            body: None,
                            responses: responses(schema, &[("200", "OK")], false),
                            gvk: op_gvk.clone(),
                        },
                    ),
                );
                item.insert(
                    "patch".into(),
                    operation(
                        &tag,
                        Op {
                            action: "patch",
                            id: format!("patch{prefix}{ns}{kind}{suffix}"),
                            description: format!("partially update {what}"),
                            parameters: Some(params(all, PATCH_PARAMS)),
                            body: Some(patch_body(&patch_types)),
                            responses: responses(schema, write_codes, false),
                            gvk: op_gvk.clone(),
                        },
                    ),
                );
                item.insert(
                    "put".into(),
                    operation(
                        &tag,
                        Op {
                            action: "put",
                            id: format!("replace{prefix}{ns}{kind}{suffix}"),
                            description: format!("replace {what}"),
                            parameters: Some(params(all, WRITE_PARAMS)),
                            body: Some(body(schema)),
                            responses: responses(schema, write_codes, false),
                            gvk: op_gvk,
                        },
                    ),
                );
                let p: Vec<Value> = [name_param.clone()]
                    .into_iter()
                    .chain(path_params.iter().cloned())
                    .chain([pretty.clone()])
                    .collect();
                item.insert("parameters".into(), Value::Array(p));
            }
        }
        out.push((path, Value::Object(item)));
    }
    out
}

/// Adds every `#/components/schemas/` name referenced in `v` to `out`.
fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => {
                        if let Some(n) = r.strip_prefix(SCHEMA_REF_PREFIX) {
                            out.push(n.to_owned());
                        }
                    }
                    _ => collect_refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// The schemas named in `roots` and everything they reference, looked up in `sources` in order.
/// Names found nowhere are left out (a dangling `$ref` is caught by the tests).
fn schema_closure(roots: Vec<String>, sources: &[&Map<String, Value>]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut todo = roots;
    while let Some(name) = todo.pop() {
        if out.contains_key(&name) {
            continue;
        }
        if let Some(s) = sources.iter().find_map(|m| m.get(&name)) {
            collect_refs(s, &mut todo);
            out.insert(name, s.clone());
        }
    }
    out
}

/// The OpenAPI v3 document of the resources of one group-version.
fn build_document(resources: &[Arc<Resource>]) -> Value {
    let (group, version) = resources
        .first()
        .map(|r| (r.group.as_str(), r.version.as_str()))
        .unwrap_or_default();
    let data = builtin_data();
    let karmada = karmada_schemas();
    let mut paths = BTreeMap::new();
    let mut local = Map::new();
    for r in resources {
        if r.is_builtin() {
            let official: Vec<_> = resource_paths(r)
                .into_iter()
                .filter_map(|(_, p)| data.paths.get(&p).map(|i| (p, i.clone())))
                .collect();
            if !official.is_empty() {
                paths.extend(official);
                continue;
            }
        }
        let found = match &r.schema {
            Schema::Karmada => karmada
                .iter()
                .find(|(_, s)| has_gvk(s, &r.group, &r.version, &r.kind))
                .map(|(n, s)| (n.clone(), s.clone())),
            Schema::Builtin => data
                .schemas
                .iter()
                .find(|(_, s)| has_gvk(s, &r.group, &r.version, &r.kind))
                .map(|(n, s)| (n.clone(), s.clone())),
            Schema::Custom(_) => None,
        };
        let (name, schema) = found.unwrap_or_else(|| {
            let base = match &r.schema {
                Schema::Custom(s) => s.as_deref(),
                _ => None,
            };
            (
                custom_schema_name(&r.group, &r.version, &r.kind),
                custom_kind_schema(r, base),
            )
        });
        let list_kind = format!("{}List", r.kind);
        let list = karmada
            .iter()
            .chain(data.schemas.iter())
            .find(|(_, s)| has_gvk(s, &r.group, &r.version, &list_kind))
            .map(|(n, s)| (n.clone(), s.clone()))
            .unwrap_or_else(|| (format!("{name}List"), list_schema(r, &name)));
        paths.extend(generated_paths(r, &name, &list.0, &data.parameters));
        local.insert(name, schema);
        local.insert(list.0, list.1);
    }
    let mut roots: Vec<String> = local.keys().cloned().collect();
    for item in paths.values() {
        collect_refs(item, &mut roots);
    }
    let mut schemas = schema_closure(roots, &[&local, karmada, &data.schemas]);
    // Kubernetes lists DeleteOptions and WatchEvent under core/v1 and the document's own
    // group-version.
    for (name, s) in schemas.iter_mut() {
        let Some(kind) = name
            .strip_prefix(META)
            .filter(|k| PER_GROUP_META_KINDS.contains(k))
        else {
            continue;
        };
        if let Some(ext) = s.get_mut("x-kubernetes-group-version-kind") {
            let mut list = vec![gvk("", "v1", kind)];
            if !group.is_empty() {
                list.push(gvk(group, version, kind));
            }
            *ext = Value::Array(list);
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths.into_iter().collect::<Map<_, _>>(),
        "components": {"schemas": schemas.into_iter().collect::<Map<_, _>>()},
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn doc(cache: &OpenApiCache, reg: &Registry, path: &str) -> Value {
        let b = cache
            .document(reg, path)
            .unwrap_or_else(|| panic!("{path} served"));
        serde_json::from_slice(&b).unwrap()
    }

    fn widget_crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "description": "Widget spec", "properties": {
                            "size": {"type": "integer"},
                            "$ref": {"type": "string", "description": "a field literally named $ref"}}}}}}}]}
        })
    }

    #[test]
    fn embedded_data_decodes_and_covers_every_builtin_path() {
        let data = builtin_data();
        assert!(data.schemas.contains_key(OBJECT_META));
        for r in Registry::new().all().iter().filter(|r| r.is_builtin()) {
            for (_, p) in resource_paths(r) {
                assert!(data.paths.contains_key(&p), "missing official path {p}");
            }
        }
        for name in [
            "fieldValidation",
            "dryRun",
            "fieldManager",
            "force",
            "namespace",
            "pretty",
        ] {
            assert!(data.parameters.contains_key(name), "parameter {name}");
        }
    }

    #[test]
    fn index_lists_every_served_group_version() {
        let reg = Registry::new();
        let cache = OpenApiCache::default();
        let index = cache.index(&reg);
        let paths = index["paths"].as_object().unwrap();
        for want in [
            "api/v1",
            "apis/apps/v1",
            "apis/batch/v1",
            "apis/networking.k8s.io/v1",
            "apis/rbac.authorization.k8s.io/v1",
            "apis/autoscaling/v2",
            "apis/policy/v1",
            "apis/coordination.k8s.io/v1",
            "apis/apiextensions.k8s.io/v1",
            "apis/policy.karmada.io/v1alpha1",
            "apis/cluster.karmada.io/v1alpha1",
            "apis/work.karmada.io/v1alpha1",
            "apis/work.karmada.io/v1alpha2",
            "apis/apps.karmada.io/v1alpha1",
            "apis/autoscaling.karmada.io/v1alpha1",
            "apis/networking.karmada.io/v1alpha1",
            "apis/multicluster.x-k8s.io/v1alpha1",
            "apis/discovery.k8s.io/v1",
        ] {
            let url = paths[want]["serverRelativeURL"]
                .as_str()
                .unwrap_or_else(|| panic!("{want} listed"));
            assert!(
                url.starts_with(&format!("/openapi/v3/{want}?hash=")),
                "{url}"
            );
        }
        assert_eq!(paths.len(), 29, "{:?}", paths.keys().collect::<Vec<_>>());
    }

    #[test]
    fn apps_v1_has_deployment_with_gvk_and_strict_patch() {
        let reg = Registry::new();
        let d = doc(&OpenApiCache::default(), &reg, "apis/apps/v1");
        let deploy = &d["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert!(has_gvk(deploy, "apps", "v1", "Deployment"));
        assert!(d["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"].is_object());
        let patch = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            gvk("apps", "v1", "Deployment")
        );
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains(&"fieldValidation"), "{names:?}");
        assert!(
            patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object()
        );
        // What is served, without protobuf: ReplicaSets (the templates' revision history).
        assert!(
            d["paths"]
                .get("/apis/apps/v1/namespaces/{namespace}/replicasets")
                .is_some()
        );
        assert!(!serde_json::to_string(&d).unwrap().contains("protobuf"));
        // Meta kinds carry core/v1 and the document's group-version.
        let gvks = &d["components"]["schemas"][DELETE_OPTIONS]["x-kubernetes-group-version-kind"];
        assert_eq!(
            gvks,
            &json!([
                gvk("", "v1", "DeleteOptions"),
                gvk("apps", "v1", "DeleteOptions")
            ])
        );
    }

    /// Every PATCH in a document declares fieldValidation, so kubectl never falls back to
    /// client-side validation for any served kind.
    #[test]
    fn every_served_document_is_self_contained_and_patches_declare_field_validation() {
        let reg = Registry::new();
        reg.apply_crd(&widget_crd()).unwrap();
        let cache = OpenApiCache::default();
        let index = cache.index(&reg);
        for gv in index["paths"].as_object().unwrap().keys() {
            let d = doc(&cache, &reg, gv);
            let schemas = d["components"]["schemas"].as_object().unwrap();
            let mut refs = Vec::new();
            collect_refs(&d, &mut refs);
            for r in &refs {
                assert!(schemas.contains_key(r), "{gv}: dangling $ref {r}");
            }
            let paths = d["paths"].as_object().unwrap();
            assert!(!paths.is_empty(), "{gv} has paths");
            for (p, item) in paths {
                if let Some(patch) = item.get("patch") {
                    let ok = patch["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x["name"] == "fieldValidation" && x["in"] == "query");
                    assert!(ok, "{gv} {p}: PATCH without fieldValidation");
                    assert!(
                        patch["x-kubernetes-group-version-kind"].is_object(),
                        "{gv} {p}"
                    );
                }
            }
            for r in reg
                .all()
                .iter()
                .filter(|r| gv_path(&r.group, &r.version) == *gv)
            {
                assert!(
                    schemas
                        .values()
                        .any(|s| has_gvk(s, &r.group, &r.version, &r.kind)),
                    "{gv}: no schema for {}",
                    r.kind
                );
            }
        }
    }

    #[test]
    fn karmada_kinds_get_paths_and_schemas() {
        let reg = Registry::new();
        let cache = OpenApiCache::default();
        let d = doc(&cache, &reg, "apis/policy.karmada.io/v1alpha1");
        let item = &d["paths"]["/apis/policy.karmada.io/v1alpha1/namespaces/{namespace}/propagationpolicies/{name}"];
        assert_eq!(item["patch"]["x-kubernetes-action"], "patch");
        assert!(
            item["patch"]["requestBody"]["content"]["application/apply-patch+yaml"].is_object()
        );
        assert!(
            item["patch"]["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_none()
        );
        assert!(
            d["paths"]["/apis/policy.karmada.io/v1alpha1/clusterpropagationpolicies/{name}"]["put"]
                .is_object()
        );
        assert!(d["paths"].get("/apis/policy.karmada.io/v1alpha1/namespaces/{namespace}/clusterpropagationpolicies").is_none());
        let schemas = d["components"]["schemas"].as_object().unwrap();
        let pp = schemas
            .values()
            .find(|s| has_gvk(s, "policy.karmada.io", "v1alpha1", "PropagationPolicy"))
            .expect("PropagationPolicy schema");
        assert!(pp["properties"]["spec"].is_object(), "{pp}");
        assert!(schemas.contains_key(OBJECT_META));
        // The two work.karmada.io versions are separate documents.
        let v1 = doc(&cache, &reg, "apis/work.karmada.io/v1alpha1");
        let v2 = doc(&cache, &reg, "apis/work.karmada.io/v1alpha2");
        assert!(
            v1["paths"]["/apis/work.karmada.io/v1alpha1/namespaces/{namespace}/works/{name}"]
                .is_object()
        );
        assert!(
            v1["paths"]
                .get("/apis/work.karmada.io/v1alpha1/resourcebindings")
                .is_none()
        );
        assert!(
            v2["paths"]["/apis/work.karmada.io/v1alpha2/clusterresourcebindings/{name}/status"]
                .is_object()
        );
    }

    #[test]
    fn crd_shows_up_in_index_and_document_and_goes_away() {
        let reg = Registry::new();
        let cache = OpenApiCache::default();
        assert!(cache.document(&reg, "apis/example.com/v1").is_none());
        let before = cache.index(&reg);
        let apps = cache.document(&reg, "apis/apps/v1").unwrap();
        reg.apply_crd(&widget_crd()).unwrap();
        // Other group-versions are not rebuilt.
        assert_eq!(
            cache.document(&reg, "apis/apps/v1").unwrap().as_ptr(),
            apps.as_ptr()
        );
        let index = cache.index(&reg);
        assert!(index["paths"]["apis/example.com/v1"]["serverRelativeURL"].is_string());
        // Unchanged group-versions keep their hash.
        assert_eq!(
            index["paths"]["apis/apps/v1"],
            before["paths"]["apis/apps/v1"]
        );
        let d = doc(&cache, &reg, "apis/example.com/v1");
        let w = &d["components"]["schemas"]["com.example.v1.Widget"];
        assert!(has_gvk(w, "example.com", "v1", "Widget"));
        assert_eq!(
            w["properties"]["spec"]["properties"]["size"]["type"],
            "integer"
        );
        assert_eq!(
            w["properties"]["metadata"]["allOf"][0]["$ref"],
            format!("{SCHEMA_REF_PREFIX}{OBJECT_META}")
        );
        assert!(has_gvk(
            &d["components"]["schemas"]["com.example.v1.WidgetList"],
            "example.com",
            "v1",
            "WidgetList"
        ));
        assert!(d["components"]["schemas"][SCALE].is_object());
        let base = "/apis/example.com/v1/namespaces/{namespace}/widgets";
        let patch = &d["paths"][format!("{base}/{{name}}")]["patch"];
        assert_eq!(patch["operationId"], "patchExampleComV1NamespacedWidget");
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(
            names,
            ["dryRun", "fieldManager", "fieldValidation", "force"]
        );
        assert_eq!(
            d["paths"][format!("{base}/{{name}}/scale")]["patch"]["x-kubernetes-group-version-kind"],
            gvk("autoscaling", "v1", "Scale")
        );
        assert_eq!(
            d["paths"][format!("{base}/{{name}}/status")]["put"]["x-kubernetes-action"],
            "put"
        );
        assert_eq!(
            d["paths"]["/apis/example.com/v1/widgets"]["get"]["x-kubernetes-action"],
            "list"
        );
        reg.remove_crd(&widget_crd());
        assert!(
            cache.index(&reg)["paths"]
                .get("apis/example.com/v1")
                .is_none()
        );
        assert!(cache.document(&reg, "apis/example.com/v1").is_none());
    }

    #[test]
    fn crd_without_schema_preserves_unknown_fields() {
        let mut crd = widget_crd();
        crd["spec"]["versions"][0]
            .as_object_mut()
            .unwrap()
            .remove("schema");
        crd["spec"]["scope"] = json!("Cluster");
        let reg = Registry::new();
        reg.apply_crd(&crd).unwrap();
        let d = doc(&OpenApiCache::default(), &reg, "apis/example.com/v1");
        let w = &d["components"]["schemas"]["com.example.v1.Widget"];
        assert_eq!(w["x-kubernetes-preserve-unknown-fields"], true);
        assert_eq!(w["type"], "object");
        assert!(d["paths"]["/apis/example.com/v1/widgets/{name}"]["patch"].is_object());
        assert!(
            d["paths"]
                .get("/apis/example.com/v1/namespaces/{namespace}/widgets")
                .is_none()
        );
    }

    #[test]
    fn gv_paths_parse() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("api/v1", Some(("", "v1"))),
            ("apis/apps/v1", Some(("apps", "v1"))),
            (
                "/apis/policy.karmada.io/v1alpha1",
                Some(("policy.karmada.io", "v1alpha1")),
            ),
            ("apis/apps", None),
            ("apis//v1", None),
            ("api", None),
            ("apis/apps/v1/deployments", None),
            ("", None),
        ];
        for (p, want) in cases {
            assert_eq!(parse_gv_path(p), *want, "{p}");
        }
        let reg = Registry::new();
        assert!(
            OpenApiCache::default()
                .document(&reg, "apis/nope.example/v1")
                .is_none()
        );
    }

    #[test]
    fn names_and_ids() {
        assert_eq!(
            custom_schema_name("policy.karmada.io", "v1alpha1", "PropagationPolicy"),
            "io.karmada.policy.v1alpha1.PropagationPolicy"
        );
        assert_eq!(
            custom_schema_name("example.com", "v1", "Widget"),
            "com.example.v1.Widget"
        );
        assert_eq!(
            op_prefix("rbac.authorization.k8s.io", "v1"),
            "RbacAuthorizationV1"
        );
        assert_eq!(
            op_prefix("policy.karmada.io", "v1alpha1"),
            "PolicyKarmadaIoV1alpha1"
        );
        assert_eq!(
            op_prefix("my-group.example.com", "v2"),
            "MyGroupExampleComV2"
        );
        assert_eq!(op_prefix("", "v1"), "CoreV1");
    }
}
