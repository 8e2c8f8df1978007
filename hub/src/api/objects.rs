//! Object semantics shared by every resource: create, read, update, patch and delete with
//! metadata, validation, optimistic concurrency and managed fields.
//!
//! HTTP handlers and the hub's controllers both write through [`Objects`], so every write
//! gets the same treatment.

use std::sync::Arc;

use bytes::Bytes;
use flotilla_apimachinery::{apply, patch, selector};
use flotilla_store::{KeyValue, Store, StoreError};
use serde_json::{Value, json};

use super::deletion::{DeleteOptions, FOREGROUND_FINALIZER, ORPHAN_FINALIZER};
use super::error::{ApiError, Cause};
use super::meta;
use super::validation::{self, FieldValidation};
use crate::registry::{Registry, Resource};

/// Options of a write request.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// `?dryRun=All`.
    pub dry_run: bool,
    /// The field manager (from `?fieldManager=` or the user agent).
    pub field_manager: String,
    /// `?fieldValidation=`.
    pub field_validation: FieldValidation,
    /// `?force=true` for server-side apply.
    pub force: bool,
    /// A create made by server-side apply: the object's `managedFields` (an `Apply` entry
    /// of the field manager) are recorded as they are, not replaced by an `Update` entry.
    pub from_apply: bool,
    /// The writer may change read-only resources (Works, bindings): the hub itself
    /// (controllers, the agent server) or a member of `system:masters` over the API; never
    /// decided by a client-chosen field manager.
    pub privileged: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            field_manager: "flotilla-hub".into(),
            privileged: true,
            field_validation: FieldValidation::Strict,
            force: false,
            from_apply: false,
        }
    }
}

/// The patch formats of `PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 6902.
    Json,
    /// RFC 7396.
    Merge,
    /// Strategic merge patch.
    Strategic,
    /// Server-side apply.
    Apply,
}

impl PatchType {
    /// From a `Content-Type` header.
    pub fn from_content_type(ct: &str) -> Result<Self, ApiError> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            other => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
            ))),
        }
    }
}

/// A write's outcome: the stored object and any warnings.
#[derive(Debug)]
pub struct Written {
    /// The object as stored (or as it would be, for dry runs).
    pub object: Value,
    /// Whether the object was created.
    pub created: bool,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// The object engine.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn Store>,
    registry: Registry,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects").finish_non_exhaustive()
    }
}

fn parse(kv: &KeyValue) -> Result<Value, ApiError> {
    serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object is corrupt: {e}")))
}

fn render(obj: Value) -> flotilla_store::Render {
    Box::new(move |rev| {
        let mut o = obj;
        meta::metadata_mut(&mut o).insert("resourceVersion".into(), json!(rev.to_string()));
        Bytes::from(serde_json::to_vec(&o).unwrap_or_default())
    })
}

fn with_rv(mut obj: Value, rev: u64) -> Value {
    meta::metadata_mut(&mut obj).insert("resourceVersion".into(), json!(rev.to_string()));
    obj
}

fn parse_rv(obj: &Value) -> Result<Option<u64>, ApiError> {
    match meta::str_at(obj, "/metadata/resourceVersion") {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "metadata.resourceVersion: Invalid value: {s:?}: must be a number"
            ))
        }),
    }
}

/// The DaemonSet annotation kube-apiserver keeps equal to the generation of its last
/// template change.
const DAEMONSET_TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// The generation rules: `metadata.generation` rises when the write changes anything outside
/// metadata and status (for a Deployment also its annotations, except the revision, because
/// it hands them to its ReplicaSets), as kube-apiserver's strategies do; a DaemonSet's
/// template generation follows its template.
fn bump_generation(res: &Resource, current: &Value, new: &mut Value) {
    if !uses_generation(res) {
        return;
    }
    let deployment = res.group == "apps" && res.kind == "Deployment";
    // The revision annotation is written by the revision history, as kube's deployment
    // controller writes it through the status subresource: no new generation.
    let annotations = |v: &Value| {
        let mut a = v
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        a.remove(meta::DEPLOYMENT_REVISION_ANNOTATION);
        a
    };
    if meta::spec_of(new) == meta::spec_of(current)
        && !(deployment && annotations(new) != annotations(current))
    {
        return;
    }
    let g = current
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .saturating_add(1);
    meta::metadata_mut(new).insert("generation".into(), json!(g));
    if res.group == "apps"
        && res.kind == "DaemonSet"
        && new.pointer("/spec/template") != current.pointer("/spec/template")
    {
        set_annotation(new, DAEMONSET_TEMPLATE_GENERATION, &g.to_string());
    }
}

fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    let m = meta::metadata_mut(obj);
    let a = m.entry("annotations").or_insert_with(|| json!({}));
    if !a.is_object() {
        *a = json!({});
    }
    a[key] = json!(value);
}

/// Whether `metadata.generation` is kept: for custom and Karmada resources, and for the
/// built-in kinds whose kube-apiserver strategy tracks it (workloads, PDBs, Ingresses,
/// NetworkPolicies, CRDs, admission configuration), not for the others (ConfigMaps, Services,
/// RBAC, quotas, storage and scheduling classes, ...).
fn uses_generation(res: &Resource) -> bool {
    if !res.is_builtin() {
        return true;
    }
    match res.group.as_str() {
        "" => matches!(res.kind.as_str(), "Pod" | "ReplicationController"),
        "apps" => res.kind != "ControllerRevision",
        "batch" | "apiextensions.k8s.io" | "admissionregistration.k8s.io" => true,
        "policy" => res.kind == "PodDisruptionBudget",
        "scheduling.k8s.io" => res.kind == "PriorityClass",
        "networking.k8s.io" => matches!(
            res.kind.as_str(),
            "Ingress" | "NetworkPolicy" | "IngressClass"
        ),
        _ => false,
    }
}

/// A store error of a write to `res`/`name` as the API answers it.
fn store_error(res: &Resource, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict { .. } => conflict_message(res, name),
        StoreError::NotFound(_) => ApiError::not_found(&res.group, &res.plural, name),
        other => other.into(),
    }
}

fn conflict_message(res: &Resource, name: &str) -> ApiError {
    let gr = if res.group.is_empty() {
        res.plural.clone()
    } else {
        format!("{}.{}", res.plural, res.group)
    };
    ApiError::conflict_on(
        &res.group,
        &res.plural,
        name,
        format!(
            "Operation cannot be fulfilled on {gr} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
    )
}

impl Objects {
    /// An engine over `store` serving `registry`'s resources.
    pub fn new(store: Arc<dyn Store>, registry: Registry) -> Self {
        Self { store, registry }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Reads one object.
    pub async fn get(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        Ok(self.get_kv(res, ns, name).await?.1)
    }

    /// Writes a stored object again as it is (with a new resourceVersion), so the store
    /// re-encodes it: re-encrypting Secrets after a key rotation.
    pub async fn rewrite(&self, key: &str) -> Result<(), ApiError> {
        let Some(kv) = self.store.get(key).await? else {
            return Ok(());
        };
        let obj: Value = serde_json::from_slice(&kv.value)
            .map_err(|e| ApiError::internal(format!("{key}: {e}")))?;
        match self
            .store
            .update(key, Some(kv.mod_revision), render(obj))
            .await
        {
            // Written meanwhile: the writer encoded it afresh.
            Ok(_) | Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads one object's stored JSON bytes, for responses that need no changes.
    pub async fn get_raw(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Bytes, ApiError> {
        Ok(self
            .store
            .get(&res.key(ns, name))
            .await?
            .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?
            .value)
    }

    async fn get_kv(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(KeyValue, Value), ApiError> {
        let kv = self
            .store
            .get(&res.key(ns, name))
            .await?
            .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
        let v = parse(&kv)?;
        Ok((kv, v))
    }

    /// Lists objects; returns (items, list revision, continue key).
    pub async fn list(
        &self,
        res: &Resource,
        ns: Option<&str>,
        labels: &selector::LabelSelector,
        fields: &selector::FieldSelector,
        limit: usize,
        continue_after: Option<String>,
    ) -> Result<(Vec<Value>, u64, Option<String>), ApiError> {
        let prefix = res.list_prefix(ns);
        if let Some(name) = fields.exact_name() {
            // One object by name: no scan.
            let rev = self.store.current_revision();
            let items = match ns.or(None) {
                Some(ns) => self
                    .store
                    .get(&res.key(Some(ns), name))
                    .await?
                    .into_iter()
                    .collect(),
                None if !res.namespaced => self
                    .store
                    .get(&res.key(None, name))
                    .await?
                    .into_iter()
                    .collect(),
                None => self.store.list(&prefix, None, 0).await?.items,
            };
            let mut out = Vec::new();
            for kv in &items {
                let v = parse(kv)?;
                if labels.matches(labels_of(&v)) && fields.matches(&v) {
                    out.push(v);
                }
            }
            return Ok((out, rev, None));
        }
        let mut out = Vec::new();
        let mut after = continue_after;
        let mut revision = None;
        loop {
            let want = if limit == 0 { 0 } else { limit - out.len() };
            let page = self.store.list(&prefix, after.as_deref(), want).await?;
            revision.get_or_insert(page.revision);
            for kv in &page.items {
                let v = parse(kv)?;
                if labels.matches(labels_of(&v)) && fields.matches(&v) {
                    out.push(v);
                }
            }
            after = page.continue_after;
            if after.is_none() || (limit > 0 && out.len() >= limit) {
                break;
            }
        }
        Ok((out, revision.unwrap_or(0), after))
    }

    async fn check_namespace(&self, res: &Resource, ns: Option<&str>) -> Result<(), ApiError> {
        if !res.namespaced {
            return Ok(());
        }
        let Some(ns) = ns else {
            return Err(ApiError::bad_request(
                "the namespace of the object is required",
            ));
        };
        let nsres = self
            .registry
            .get("", "v1", "namespaces")
            .ok_or_else(|| ApiError::internal("namespaces not served"))?;
        match self.store.get(&nsres.key(None, ns)).await? {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(kv) => {
                let v = parse(&kv)?;
                if v.pointer("/metadata/deletionTimestamp").is_some() {
                    return Err(ApiError::forbidden(format!(
                        "unable to create new content in namespace {ns} because it is being terminated"
                    )));
                }
                Ok(())
            }
        }
    }

    /// Normalises apiVersion, kind, namespace and name of an incoming object.
    fn prepare(
        &self,
        res: &Resource,
        ns: Option<&str>,
        obj: &mut Value,
        path_name: Option<&str>,
    ) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        check_type_meta(
            res,
            meta::str_at(obj, "/apiVersion").unwrap_or_default(),
            meta::str_at(obj, "/kind").unwrap_or_default(),
        )?;
        if meta::str_at(obj, "/apiVersion").is_none_or(str::is_empty) {
            obj["apiVersion"] = json!(res.api_version());
        }
        if meta::str_at(obj, "/kind").is_none_or(str::is_empty) {
            obj["kind"] = json!(res.kind);
        }
        let body_ns = meta::str_at(obj, "/metadata/namespace").map(str::to_owned);
        let m = meta::metadata_mut(obj);
        if res.namespaced {
            match (ns, body_ns.as_deref()) {
                (Some(p), Some(b)) if !b.is_empty() && p != b => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                (Some(p), _) => {
                    m.insert("namespace".into(), json!(p));
                }
                (None, _) => {
                    return Err(ApiError::bad_request(
                        "a namespace is required for this resource",
                    ));
                }
            }
        } else {
            m.remove("namespace");
        }
        if let Some(pn) = path_name {
            match m.get("name").and_then(Value::as_str) {
                None | Some("") => {
                    m.insert("name".into(), json!(pn));
                }
                Some(n) if n == pn => {}
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "the name of the object does not match the name on the URL",
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_name(res: &Resource, name: &str) -> Result<(), ApiError> {
        if res.group == "rbac.authorization.k8s.io" {
            // RBAC names are path segments (`system:aggregate-to-admin`), as in Kubernetes.
            return match meta::path_segment_problem(name) {
                None => Ok(()),
                Some(why) => Err(ApiError::invalid_in(
                    &res.group,
                    &res.kind,
                    name,
                    vec![Cause {
                        reason: "FieldValueInvalid".into(),
                        message: format!("Invalid value: {name:?}: {why}"),
                        field: "metadata.name".into(),
                    }],
                )),
            };
        }
        let ok = if res.kind == "Namespace" {
            meta::is_dns1123_label(name)
        } else {
            meta::is_dns1123_subdomain(name)
        };
        if ok {
            return Ok(());
        }
        Err(ApiError::invalid_in(
            &res.group,
            &res.kind,
            name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: format!(
                    "Invalid value: {name:?}: {}",
                    if res.kind == "Namespace" {
                        meta::DNS1123_LABEL_MESSAGE
                    } else {
                        meta::DNS1123_SUBDOMAIN_MESSAGE
                    }
                ),
                field: "metadata.name".into(),
            }],
        ))
    }

    /// Creates an object.
    pub async fn create(
        &self,
        res: &Resource,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let applied_fields = opts
            .from_apply
            .then(|| obj.pointer("/metadata/managedFields").cloned())
            .flatten();
        self.prepare(res, ns, &mut obj, None)?;
        let mut generate: Option<String> = None;
        let m = meta::metadata_mut(&mut obj);
        let mut name = match m
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            Some(n) => n.to_owned(),
            None => match m
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                Some(prefix) => {
                    generate = Some(prefix.to_owned());
                    let n = format!("{prefix}{}", meta::random_suffix());
                    m.insert("name".into(), json!(n));
                    n
                }
                None => {
                    return Err(ApiError::invalid_in(
                        &res.group,
                        &res.kind,
                        "",
                        vec![Cause {
                            reason: "FieldValueRequired".into(),
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        }],
                    ));
                }
            },
        };
        Self::check_name(res, &name)?;
        let v = validation::validate(res, &obj, opts.field_validation)?;
        let mut obj = v.object;
        validate_crd(res, &name, &obj)?;
        self.check_namespace(res, ns).await?;
        let now = meta::now();
        let uses_gen = uses_generation(res);
        let m = meta::metadata_mut(&mut obj);
        m.insert("uid".into(), json!(meta::new_uid()));
        m.insert("creationTimestamp".into(), json!(now));
        m.remove("resourceVersion");
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        if res.group == "policy.karmada.io"
            && matches!(
                res.kind.as_str(),
                "PropagationPolicy" | "ClusterPropagationPolicy"
            )
        {
            // Karmada's permanent id: claims on templates refer to it.
            let key = if res.kind == "PropagationPolicy" {
                "propagationpolicy.karmada.io/permanent-id"
            } else {
                "clusterpropagationpolicy.karmada.io/permanent-id"
            };
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if labels.get(key).is_none() {
                labels[key] = json!(meta::new_uid());
            }
        }
        if uses_gen {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        if uses_gen && res.group == "apps" && res.kind == "DaemonSet" {
            set_annotation(&mut obj, DAEMONSET_TEMPLATE_GENERATION, "1");
        }
        label_namespace_name(res, &mut obj, &name);
        let managed = match applied_fields {
            Some(fields) => fields,
            None => {
                apply::update_managed_fields(None, &obj, &opts.field_manager, &now, schema_for(res))
            }
        };
        set_managed_fields(&mut obj, managed);
        // Set by the Namespace strategy after the writer's fields are recorded, so they are
        // nobody's, as in kube-apiserver.
        if res.kind == "Namespace" && res.group.is_empty() {
            obj["status"] = json!({"phase": "Active"});
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
        }
        if opts.dry_run {
            return Ok(Written {
                object: obj,
                created: true,
                warnings: v.warnings,
            });
        }
        // A generated name that is taken is generated again, as kube-apiserver does.
        let mut attempts = 0;
        let kv = loop {
            let key = res.key(ns, &name);
            match self.store.create(&key, render(obj.clone())).await {
                Ok(kv) => break kv,
                Err(StoreError::AlreadyExists(_)) => match &generate {
                    Some(prefix) if attempts < GENERATE_NAME_ATTEMPTS => {
                        attempts += 1;
                        name = format!("{prefix}{}", meta::random_suffix());
                        meta::metadata_mut(&mut obj).insert("name".into(), json!(name));
                        label_namespace_name(res, &mut obj, &name);
                    }
                    _ => return Err(ApiError::already_exists(&res.group, &res.plural, &name)),
                },
                Err(other) => return Err(other.into()),
            }
        };
        Ok(Written {
            object: with_rv(obj, kv.mod_revision),
            created: true,
            warnings: v.warnings,
        })
    }

    /// Replaces an object (PUT), or its status or scale.
    pub async fn update(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        if subresource == Some("scale") {
            let replicas = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "Scale",
                        name,
                        vec![Cause {
                            reason: "FieldValueRequired".into(),
                            message: "Required value".into(),
                            field: "spec.replicas".into(),
                        }],
                    )
                })?;
            let precondition = parse_rv(&obj)?;
            return self
                .set_replicas(res, ns, name, replicas, precondition, opts)
                .await;
        }
        self.prepare(res, ns, &mut obj, Some(name))?;
        let precondition = parse_rv(&obj)?;
        // Without a resourceVersion the update is unconditional: a write that lands between
        // the read and this one (a controller's) is read again, as kube-apiserver's
        // GuaranteedUpdate does, instead of answering 409.
        let mut attempt = 0;
        loop {
            let (kv, current) = self.get_kv(res, ns, name).await?;
            if let Some(p) = precondition
                && p != kv.mod_revision
            {
                return Err(conflict_message(res, name));
            }
            match self
                .replace(res, ns, name, &kv, current, obj.clone(), subresource, opts)
                .await
            {
                Err(e) if e.reason == "Conflict" && precondition.is_none() && attempt < 8 => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Stores `incoming` over `current` (read at `kv`), keeping what the write may not change.
    #[allow(clippy::too_many_arguments)]
    async fn replace(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        kv: &KeyValue,
        current: Value,
        incoming: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        if res.read_only && !opts.privileged {
            return Err(ApiError::method_not_allowed(format!(
                "{} is read-only: the hub maintains it",
                res.plural
            )));
        }
        let mut new = if subresource == Some("approval") {
            crate::auth::csr::with_approval(&current, &incoming)
        } else if subresource == Some("status") {
            // Only the status changes.
            let mut n = current.clone();
            n["status"] = incoming.get("status").cloned().unwrap_or(Value::Null);
            if n["status"].is_null()
                && let Value::Object(m) = &mut n
            {
                m.remove("status");
            }
            n
        } else {
            let v = validation::validate(res, &incoming, opts.field_validation)?;
            let mut n = v.object;
            validate_crd(res, name, &n)?;
            label_namespace_name(res, &mut n, name);
            if res.status {
                match current.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        if let Value::Object(m) = &mut n {
                            m.remove("status");
                        }
                    }
                }
            }
            n
        };
        // Immutable and server-owned metadata.
        let cur_meta = current.get("metadata").cloned().unwrap_or(json!({}));
        let m = meta::metadata_mut(&mut new);
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match cur_meta.get(k) {
                Some(v) => {
                    m.insert(k.into(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        bump_generation(res, &current, &mut new);
        let now = meta::now();
        if !new
            .get("metadata")
            .and_then(|m| m.get("managedFields"))
            .is_some_and(|v| v.is_array() && !v.as_array().is_some_and(Vec::is_empty))
        {
            // A client that sends no managedFields keeps the stored ones.
            if let Some(mf) = cur_meta.get("managedFields") {
                meta::metadata_mut(&mut new).insert("managedFields".into(), mf.clone());
            }
        }
        let managed = apply::update_managed_fields(
            Some(&current),
            &new,
            &opts.field_manager,
            &now,
            schema_for(res),
        );
        set_managed_fields(&mut new, managed);
        self.commit_update(res, ns, name, kv, current, new, opts)
            .await
    }

    /// Final step of every update: unchanged objects are not rewritten; finalizer-free
    /// objects being deleted are removed.
    #[allow(clippy::too_many_arguments)]
    async fn commit_update(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        kv: &KeyValue,
        current: Value,
        mut new: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        meta::metadata_mut(&mut new)
            .insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
        if strip_time(&new) == strip_time(&current) {
            return Ok(Written {
                object: current,
                created: false,
                warnings: vec![],
            });
        }
        if opts.dry_run {
            return Ok(Written {
                object: new,
                created: false,
                warnings: vec![],
            });
        }
        let key = res.key(ns, name);
        let terminating = new.pointer("/metadata/deletionTimestamp").is_some();
        if terminating && !held_by_finalizers(res, &new) {
            let kv = self
                .store
                .delete(&key, Some(kv.mod_revision))
                .await
                .map_err(|e| store_error(res, name, e))?;
            return Ok(Written {
                object: with_rv(new, kv.mod_revision),
                created: false,
                warnings: vec![],
            });
        }
        let out = self
            .store
            .update(&key, Some(kv.mod_revision), render(new.clone()))
            .await
            .map_err(|e| store_error(res, name, e))?;
        Ok(Written {
            object: with_rv(new, out.mod_revision),
            created: false,
            warnings: vec![],
        })
    }

    async fn set_replicas(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        replicas: i64,
        precondition: Option<u64>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale",
                name,
                vec![Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {replicas}: must be greater than or equal to 0"
                    ),
                    field: "spec.replicas".into(),
                }],
            ));
        }
        let (kv, current) = self.get_kv(res, ns, name).await?;
        if precondition.is_some_and(|p| p != kv.mod_revision) {
            return Err(conflict_message(res, name));
        }
        let mut new = current.clone();
        new["spec"]["replicas"] = json!(replicas);
        let w = self
            .replace(res, ns, name, &kv, current, new, None, opts)
            .await?;
        Ok(Written {
            object: scale_of(&w.object),
            ..w
        })
    }

    /// Applies a patch; server-side apply creates absent objects.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        kind: PatchType,
        body: &[u8],
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let patch_doc: Value = match kind {
            PatchType::Apply => parse_yaml_or_json(body)?,
            _ => serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
        };
        if kind == PatchType::Strategic && schema_for(res).is_none() {
            return Err(ApiError::unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        for attempt in 0.. {
            let existing = match self.get_kv(res, ns, name).await {
                Ok(x) => Some(x),
                Err(e)
                    if e.code.as_u16() == 404
                        && kind == PatchType::Apply
                        && subresource.is_none() =>
                {
                    None
                }
                Err(e) => return Err(e),
            };
            let Some((kv, current)) = existing else {
                let mut obj = patch_doc.clone();
                self.prepare(res, ns, &mut obj, Some(name))?;
                let now = meta::now();
                let applied = apply::server_side_apply(
                    None,
                    &obj,
                    &opts.field_manager,
                    opts.force,
                    &now,
                    schema_for(res),
                )
                .map_err(|e| apply_error(res, name, e))?;
                return self
                    .create(
                        res,
                        ns,
                        applied,
                        &WriteOptions {
                            from_apply: true,
                            ..opts.clone()
                        },
                    )
                    .await;
            };
            let base = if subresource == Some("scale") {
                scale_of(&current)
            } else {
                current.clone()
            };
            let patched = match kind {
                PatchType::Json => patch::json_patch(&base, &patch_doc).map_err(patch_error)?,
                PatchType::Merge => patch::merge_patch(&base, &patch_doc).map_err(patch_error)?,
                PatchType::Strategic => {
                    let schema = schema_for(res).ok_or_else(|| {
                        ApiError::unsupported_media_type(
                            "strategic merge patch is not supported for this kind",
                        )
                    })?;
                    patch::strategic_merge_patch(&base, &patch_doc, schema).map_err(patch_error)?
                }
                PatchType::Apply => {
                    let mut obj = patch_doc.clone();
                    self.prepare(res, ns, &mut obj, Some(name))?;
                    apply::server_side_apply(
                        Some(&base),
                        &obj,
                        &opts.field_manager,
                        opts.force,
                        &meta::now(),
                        schema_for(res),
                    )
                    .map_err(|e| apply_error(res, name, e))?
                }
            };
            check_patched_size(&patched)?;
            let precondition = patch_doc
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(p) = &precondition
                && p != &kv.mod_revision.to_string()
            {
                return Err(conflict_message(res, name));
            }
            let result = if subresource == Some("scale") {
                let replicas = patched
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                self.set_replicas(res, ns, name, replicas, Some(kv.mod_revision), opts)
                    .await
            } else {
                let mut p = patched;
                if kind == PatchType::Apply {
                    // Apply computed managedFields itself.
                    let mf = p.pointer("/metadata/managedFields").cloned();
                    let mut w = self
                        .replace_keep_fields(
                            res,
                            ns,
                            name,
                            &kv,
                            current,
                            &mut p,
                            subresource,
                            opts,
                            mf,
                        )
                        .await;
                    if let Ok(ref mut w) = w {
                        w.created = false;
                    }
                    w
                } else {
                    self.replace(res, ns, name, &kv, current, p, subresource, opts)
                        .await
                }
            };
            match result {
                Err(e) if e.reason == "Conflict" && precondition.is_none() && attempt < 8 => {
                    continue;
                }
                other => return other,
            }
        }
        Err(ApiError::internal("unreachable"))
    }

    #[allow(clippy::too_many_arguments)]
    async fn replace_keep_fields(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        kv: &KeyValue,
        current: Value,
        patched: &mut Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
        managed: Option<Value>,
    ) -> Result<Written, ApiError> {
        let mut w_opts = opts.clone();
        // Keep apply's own managedFields: compute the rest of the update normally.
        w_opts.field_manager = opts.field_manager.clone();
        let mut new = patched.take();
        if let Some(mf) = &managed {
            meta::metadata_mut(&mut new).insert("managedFields".into(), mf.clone());
        }
        let v = if subresource == Some("status") {
            let mut n = current.clone();
            n["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            n
        } else {
            let mut n = validation::validate(res, &new, opts.field_validation)?.object;
            if res.status
                && let Some(s) = current.get("status")
            {
                n["status"] = s.clone();
            }
            n
        };
        let mut new = v;
        let cur_meta = current.get("metadata").cloned().unwrap_or(json!({}));
        let m = meta::metadata_mut(&mut new);
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match cur_meta.get(k) {
                Some(v) => {
                    m.insert(k.into(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        if let Some(mf) = managed {
            m.insert("managedFields".into(), mf);
        }
        bump_generation(res, &current, &mut new);
        if res.read_only && !opts.privileged {
            return Err(ApiError::method_not_allowed(format!(
                "{} is read-only: the hub maintains it",
                res.plural
            )));
        }
        self.commit_update(res, ns, name, kv, current, new, opts)
            .await
    }

    /// Deletes an object: marks it terminating while finalizers remain (including the
    /// garbage collector's, for `Foreground` and `Orphan` propagation), removes it otherwise.
    /// Without a `resourceVersion` precondition, a write that lands between the read and the
    /// delete (a controller's) is no reason to fail: the delete is tried again on the new
    /// version, a few times, as kube-apiserver does.
    pub async fn delete(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        const ATTEMPTS: usize = 5;
        let mut attempt = 1;
        loop {
            match self.delete_once(res, ns, name, opts).await {
                Err(e)
                    if e.code.as_u16() == 409
                        && opts.precondition_rv.is_none()
                        && opts.precondition_uid.is_none()
                        && attempt < ATTEMPTS =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn delete_once(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let (kv, current) = self.get_kv(res, ns, name).await?;
        if opts.precondition_rv.is_some_and(|p| p != kv.mod_revision)
            || opts
                .precondition_uid
                .as_deref()
                .is_some_and(|u| Some(u) != meta::str_at(&current, "/metadata/uid"))
        {
            return Err(conflict_message(res, name));
        }
        if opts.dry_run {
            return Ok(current);
        }
        if res.kind == "Namespace" && res.group.is_empty() {
            return self.delete_namespace(res, name, kv, current).await;
        }
        let mut finalizers: Vec<Value> = current
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let before = finalizers.clone();
        if let Some(f) = opts.propagation.finalizer() {
            finalizers.retain(|x| x != ORPHAN_FINALIZER && x != FOREGROUND_FINALIZER);
            finalizers.push(json!(f));
        }
        if !finalizers.is_empty() {
            let terminating = current.pointer("/metadata/deletionTimestamp").is_some();
            if terminating && finalizers == before {
                return Ok(current);
            }
            let mut new = current.clone();
            let md = meta::metadata_mut(&mut new);
            md.insert("finalizers".into(), Value::Array(finalizers));
            if !terminating {
                md.insert("deletionTimestamp".into(), json!(meta::now()));
                md.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            let out = self
                .store
                .update(&kv.key, Some(kv.mod_revision), render(new.clone()))
                .await
                .map_err(|e| store_error(res, name, e))?;
            return Ok(with_rv(new, out.mod_revision));
        }
        let out = self
            .store
            .delete(&kv.key, Some(kv.mod_revision))
            .await
            .map_err(|e| store_error(res, name, e))?;
        if res.kind == "CustomResourceDefinition" {
            self.delete_all_of_crd(&current).await?;
        }
        Ok(with_rv(current, out.mod_revision))
    }

    /// Marks a namespace terminating; the namespace controller deletes what it holds and
    /// then the namespace (`controllers::namespace_lifecycle`). A namespace without
    /// finalizers goes at once, as in kube-apiserver.
    async fn delete_namespace(
        &self,
        res: &Resource,
        name: &str,
        kv: KeyValue,
        current: Value,
    ) -> Result<Value, ApiError> {
        if matches!(name, "default" | "kube-system" | "kube-public") {
            return Err(ApiError::forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        if current.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(current);
        }
        let mut terminating = current.clone();
        meta::metadata_mut(&mut terminating).insert("deletionTimestamp".into(), json!(meta::now()));
        if !held_by_finalizers(res, &terminating) {
            let out = self
                .store
                .delete(&kv.key, Some(kv.mod_revision))
                .await
                .map_err(|e| store_error(res, name, e))?;
            return Ok(with_rv(current, out.mod_revision));
        }
        terminating["status"]["phase"] = json!("Terminating");
        let marked = self
            .store
            .update(&kv.key, Some(kv.mod_revision), render(terminating.clone()))
            .await
            .map_err(|e| store_error(res, name, e))?;
        Ok(with_rv(terminating, marked.mod_revision))
    }

    async fn delete_all_of_crd(&self, crd: &Value) -> Result<(), ApiError> {
        let group = meta::str_at(crd, "/spec/group").unwrap_or_default();
        let plural = meta::str_at(crd, "/spec/names/plural").unwrap_or_default();
        // A CRD stored for a group the hub serves itself (written before such CRDs were
        // refused) never served anything: deleting it must not delete the hub's objects.
        if group.is_empty() || plural.is_empty() || crate::registry::is_native_group(group) {
            return Ok(());
        }
        let page = self
            .store
            .list(&format!("/{group}/{plural}/"), None, 0)
            .await?;
        for item in page.items {
            match self.store.delete(&item.key, None).await {
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Whether finalizers keep a terminating object stored: `metadata.finalizers`, and for a
/// Namespace also `spec.finalizers` (removed by the namespace controller once it is empty).
pub fn held_by_finalizers(res: &Resource, obj: &Value) -> bool {
    let any = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    any("/metadata/finalizers")
        || (res.group.is_empty() && res.kind == "Namespace" && any("/spec/finalizers"))
}

fn labels_of(v: &Value) -> &serde_json::Map<String, Value> {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    v.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(serde_json::Map::new))
}

/// The strategic-merge and apply schema of a resource (built-in kinds only).
pub fn schema_for(res: &Resource) -> Option<&'static dyn patch::PatchSchema> {
    if res.is_builtin() {
        patch::builtin_patch_schema(&res.group, &res.version, &res.kind)
    } else {
        None
    }
}

/// How many more names a create with `generateName` tries when a generated one is taken.
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// The label kube-apiserver keeps on every Namespace: `kubernetes.io/metadata.name` = its
/// name (set on create and on every update, so it cannot be removed or changed).
fn label_namespace_name(res: &Resource, obj: &mut Value, name: &str) {
    if res.kind != "Namespace" || !res.group.is_empty() {
        return;
    }
    let m = meta::metadata_mut(obj);
    let labels = m.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels["kubernetes.io/metadata.name"] = json!(name);
}

fn set_managed_fields(obj: &mut Value, managed: Value) {
    let m = meta::metadata_mut(obj);
    if managed.as_array().is_some_and(|a| !a.is_empty()) {
        m.insert("managedFields".into(), managed);
    } else {
        m.remove("managedFields");
    }
}

/// An object without managedFields timestamps, to detect no-op writes.
fn strip_time(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::Array(mf)) = v.pointer_mut("/metadata/managedFields") {
        for e in mf {
            if let Value::Object(m) = e {
                m.remove("time");
            }
        }
    }
    v
}

/// A CRD must define servable resources, outside the groups the hub serves itself (422).
fn validate_crd(res: &Resource, name: &str, obj: &Value) -> Result<(), ApiError> {
    if res.kind != "CustomResourceDefinition" || res.group != "apiextensions.k8s.io" {
        return Ok(());
    }
    crate::registry::resources_from_crd(obj).map_err(|e| match e {
        crate::registry::RegistryError::InvalidCrd { field, message } => ApiError::invalid_in(
            &res.group,
            &res.kind,
            name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message,
                field,
            }],
        ),
    })?;
    Ok(())
}

/// The rule for the `apiVersion` and `kind` a body declares, from a JSON object or a
/// protobuf envelope: empty means the resource's own; anything else must be it (400, as
/// kube-apiserver).
pub fn check_type_meta(res: &Resource, api_version: &str, kind: &str) -> Result<(), ApiError> {
    let expected = res.api_version();
    if !api_version.is_empty() && api_version != expected {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected})"
        )));
    }
    if !kind.is_empty() && kind != res.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            res.kind
        )));
    }
    Ok(())
}

/// Refuses a patched object whose JSON is larger than a request body may be
/// ([`super::MAX_BODY`]), for every patch type: a small patch must not make an object
/// no client could have sent.
pub fn check_patched_size(patched: &Value) -> Result<(), ApiError> {
    if flotilla_apimachinery::serialized_len(patched) > super::MAX_BODY {
        return Err(ApiError::too_large());
    }
    Ok(())
}

fn patch_error(e: patch::PatchError) -> ApiError {
    match e.http_status() {
        400 => ApiError::bad_request(e.message()),
        413 => ApiError::too_large_because(e.message()),
        409 => ApiError::conflict(e.message()),
        _ => ApiError::unprocessable(e.message()),
    }
}

fn apply_error(res: &Resource, name: &str, e: apply::ApplyError) -> ApiError {
    match e {
        apply::ApplyError::Conflict(ref conflicts) => {
            let mut err = ApiError::conflict(e.to_string());
            err.causes = conflicts
                .iter()
                .map(|c| Cause {
                    reason: "FieldManagerConflict".into(),
                    message: c.message(),
                    field: c.field.clone(),
                })
                .collect();
            err
        }
        apply::ApplyError::Invalid(msg) => ApiError::invalid_in(
            &res.group,
            &res.kind,
            name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: msg,
                field: String::new(),
            }],
        ),
    }
}

/// Parses a YAML or JSON document.
pub fn parse_yaml_or_json(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    super::yaml::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

/// The `autoscaling/v1` Scale view of an object.
pub fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let md = obj.get("metadata").cloned().unwrap_or(json!({}));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": md.get("name"), "namespace": md.get("namespace"), "uid": md.get("uid"),
            "resourceVersion": md.get("resourceVersion"), "creationTimestamp": md.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod limit_tests {
    use super::*;

    #[test]
    fn patched_objects_are_bounded_by_the_body_limit() {
        let small = json!({"metadata": {"name": "a"}});
        assert!(check_patched_size(&small).is_ok());
        let big = json!({"data": {"x": "y".repeat(super::super::MAX_BODY)}});
        let e = check_patched_size(&big).map(|_| ()).unwrap_err();
        assert_eq!(e.code, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn type_meta_must_be_the_resource() {
        let reg = Registry::new();
        let Some(cm) = reg.get("", "v1", "configmaps") else {
            panic!("configmaps are built in");
        };
        assert!(check_type_meta(&cm, "", "").is_ok());
        assert!(check_type_meta(&cm, "v1", "ConfigMap").is_ok());
        for (v, k) in [("v1", "Secret"), ("apps/v1", "ConfigMap")] {
            let e = check_type_meta(&cm, v, k).map(|_| ()).unwrap_err();
            assert_eq!(e.code, axum::http::StatusCode::BAD_REQUEST, "{v} {k}");
        }
    }
}
