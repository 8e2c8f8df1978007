//! Server-side apply and the `metadata.managedFields` bookkeeping of every write.
//!
//! Follows the semantics of Kubernetes' structured-merge-diff at a practical level:
//! fields in an applied configuration become owned by its manager; fields the manager
//! applied before but no longer does are removed unless someone else owns them; a
//! change to a field another manager owns is a conflict unless forced.

mod fieldset;
mod managed;
mod merge;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use self::fieldset::{FieldSet, Path, compare, fields_of, path_string, remove_fields};
use self::managed::{Entry, Operation};
use crate::patch::PatchSchema;
use crate::value::{MAX_DEPTH, canonical_json, exceeds_depth, type_name};

/// The manager Kubernetes credits with fields that existed before the first apply.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// kubectl's client-side apply annotation.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The field manager of `kubectl apply --server-side`, which gets the migration help
/// from client-side apply that Kubernetes gives it.
const KUBECTL: &str = "kubectl";

/// A field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    /// The manager owning the field, like `kubectl-client-side-apply`.
    pub manager: String,
    /// The field as kubectl shows it, like `.spec.replicas` or `.spec.containers[name="web"].image`.
    pub field: String,
    /// `Apply` or `Update`: how the manager came to own the field.
    pub operation: String,
    /// The API version the manager wrote with.
    pub api_version: String,
    /// The subresource the manager wrote through, like `scale`.
    pub subresource: Option<String>,
}

impl FieldConflict {
    /// The manager as Kubernetes names it in messages: `"kubectl" using apps/v1`.
    pub fn manager_description(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == Operation::Update.as_str() {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    /// The `causes[].message` of the conflict Status: `conflict with "kubectl" using apps/v1`.
    pub fn message(&self) -> String {
        format!("conflict with {}", self.manager_description())
    }
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change (409 Conflict; retry with force).
    #[error("{}", conflict_message(.0))]
    Conflict(Vec<FieldConflict>),
    /// The applied configuration is malformed (400 BadRequest or 422 Invalid).
    #[error("{0}")]
    Invalid(String),
}

/// The message Kubernetes gives for apply conflicts.
fn conflict_message(conflicts: &[FieldConflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: {}: {}",
            only.message(),
            only.field
        );
    }
    let mut by_manager: Vec<(String, Vec<&str>)> = Vec::new();
    for c in conflicts {
        let desc = c.manager_description();
        match by_manager.iter_mut().find(|(d, _)| *d == desc) {
            Some((_, fields)) => fields.push(&c.field),
            None => by_manager.push((desc, vec![&c.field])),
        }
    }
    by_manager.sort();
    let lines: Vec<String> = by_manager
        .iter()
        .flat_map(|(desc, fields)| {
            std::iter::once(format!("conflicts with {desc}:"))
                .chain(fields.iter().map(|f| format!("- {f}")))
        })
        .collect();
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

fn invalid(msg: impl Into<String>) -> ApplyError {
    ApplyError::Invalid(msg.into())
}

/// `obj` without `metadata.managedFields`.
fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    obj
}

fn set_managed_fields(obj: &mut Value, entries: &[Entry]) {
    let encoded = managed::encode(entries);
    let empty = encoded.as_array().is_some_and(Vec::is_empty);
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        if empty {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".to_string(), encoded);
        }
    }
}

fn api_version_of(obj: &Value) -> Option<&str> {
    obj.get("apiVersion").and_then(Value::as_str)
}

/// Server-side apply of `applied` (the user's intent, parsed from YAML or JSON) by
/// `manager` onto `live` (None creates). Returns the merged object with
/// `metadata.managedFields` maintained; `now` is the RFC 3339 time stamped on the
/// manager's entry. Without a schema (custom resources) lists are atomic.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
    schema: Option<&dyn PatchSchema>,
) -> Result<Value, ApplyError> {
    if manager.is_empty() {
        return Err(invalid("fieldManager is required for apply requests"));
    }
    let Value::Object(applied_map) = applied else {
        return Err(invalid(format!(
            "the applied configuration must be an object, got a {}",
            type_name(applied)
        )));
    };
    if exceeds_depth(applied, MAX_DEPTH) || live.is_some_and(|l| exceeds_depth(l, MAX_DEPTH)) {
        return Err(invalid(format!(
            "the object nests deeper than {MAX_DEPTH} levels"
        )));
    }
    if let Some(live) = live
        && !live.is_object()
    {
        return Err(invalid(format!(
            "the live object must be an object, got a {}",
            type_name(live)
        )));
    }
    match applied_map.get("metadata") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(other) => {
            return Err(invalid(format!(
                "metadata must be an object, got a {}",
                type_name(other)
            )));
        }
    }
    if managed::managed_fields_value(applied).is_some() {
        return Err(invalid("metadata.managedFields must be nil"));
    }
    if let (Some(live_kind), Some(kind)) =
        (live.and_then(|l| l.get("kind")), applied_map.get("kind"))
        && live_kind != kind
    {
        return Err(invalid(format!(
            "the applied kind {kind} does not match the existing object's kind {live_kind}"
        )));
    }

    match apply_once(
        live,
        applied,
        manager,
        force,
        now,
        schema,
        &FieldSet::default(),
    ) {
        Err(ApplyError::Conflict(conflicts)) if manager == KUBECTL => {
            // Kubernetes lets `kubectl apply --server-side` take over fields that
            // client-side apply set and nobody changed since.
            match live.and_then(|l| fields_unchanged_since_last_applied(l, schema)) {
                Some(allowed) => apply_once(live, applied, manager, force, now, schema, &allowed),
                None => Err(ApplyError::Conflict(conflicts)),
            }
        }
        result => result,
    }
}

fn apply_once(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
    schema: Option<&dyn PatchSchema>,
    allowed: &FieldSet,
) -> Result<Value, ApplyError> {
    let mut entries = live
        .map(|l| managed::decode(managed::managed_fields_value(l)))
        .unwrap_or_default();
    let live_obj = live.map_or_else(|| Value::Object(Map::new()), without_managed_fields);
    let api_version = api_version_of(applied)
        .or_else(|| api_version_of(&live_obj))
        .unwrap_or_default()
        .to_string();

    if live.is_some() && entries.is_empty() {
        let fields = fields_of(&live_obj, schema, false).unwrap_or_default();
        entries.push(Entry {
            manager: BEFORE_FIRST_APPLY.to_string(),
            operation: Operation::Update,
            api_version: api_version_of(&live_obj).unwrap_or_default().to_string(),
            time: Some(now.to_string()),
            subresource: None,
            fields,
        });
    }

    let applied_fields = fields_of(applied, schema, true).map_err(ApplyError::Invalid)?;
    let mut merged = merge::merge(&live_obj, applied, schema);

    let me = match entries
        .iter()
        .position(|e| e.same_identity(manager, Operation::Apply, "", None))
    {
        Some(i) => i,
        None => {
            entries.push(Entry {
                manager: manager.to_string(),
                operation: Operation::Apply,
                api_version: api_version.clone(),
                time: None,
                subresource: None,
                fields: FieldSet::default(),
            });
            entries.len() - 1
        }
    };
    let last_set = std::mem::replace(&mut entries[me].fields, applied_fields);
    entries[me].api_version = api_version;

    // Prune what this manager applied last time, dropped now, and nobody else owns.
    if !last_set.is_empty() {
        let keep = entries
            .iter()
            .fold(FieldSet::default(), |acc, e| acc.union(&e.fields));
        remove_fields(&mut merged, &last_set.difference(&keep), &keep);
    }

    let cmp = compare(&live_obj, &merged, schema);
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if i == me {
            continue;
        }
        for path in e.fields.intersection(&changed).iter() {
            if !allowed.contains(path) {
                conflicts.push(conflict(e, path));
            }
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(ApplyError::Conflict(conflicts));
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if i != me {
            e.fields = e.fields.difference(&changed).difference(&cmp.removed);
        }
    }

    let changed_anything =
        merged != live_obj || entries[me].fields != last_set || entries[me].time.is_none();
    if changed_anything {
        entries[me].time = Some(now.to_string());
    }
    if manager == KUBECTL {
        sync_last_applied(&mut merged, applied);
    }
    set_managed_fields(&mut merged, &entries);
    Ok(merged)
}

fn conflict(entry: &Entry, path: &Path) -> FieldConflict {
    FieldConflict {
        manager: entry.manager.clone(),
        field: path_string(path),
        operation: entry.operation.as_str().to_string(),
        api_version: entry.api_version.clone(),
        subresource: entry.subresource.clone(),
    }
}

fn last_applied_annotation(obj: &Value) -> Option<&str> {
    obj.get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED)?
        .as_str()
}

/// Fields of the client-side apply annotation whose live value still matches it.
fn fields_unchanged_since_last_applied(
    live: &Value,
    schema: Option<&dyn PatchSchema>,
) -> Option<FieldSet> {
    let last: Value = serde_json::from_str(last_applied_annotation(live)?).ok()?;
    if !last.is_object() || exceeds_depth(&last, MAX_DEPTH) {
        return None;
    }
    let live = without_managed_fields(live);
    let fields = fields_of(&last, schema, false).ok()?;
    let cmp = compare(&last, &live, schema);
    Some(fields.difference(&cmp.modified).difference(&cmp.removed))
}

/// Keeps an existing client-side apply annotation in step with what kubectl applied
/// server-side, so a later client-side apply computes the right patch.
fn sync_last_applied(merged: &mut Value, applied: &Value) {
    if last_applied_annotation(merged).is_none() {
        return;
    }
    let mut config = applied.clone();
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        let now_empty = match meta.get_mut("annotations").and_then(Value::as_object_mut) {
            Some(annotations) => {
                annotations.remove(LAST_APPLIED);
                annotations.is_empty()
            }
            None => false,
        };
        if now_empty {
            meta.remove("annotations");
        }
    }
    // As kube-apiserver encodes it (Go's JSON encoder ends with a newline).
    let text = format!("{}\n", canonical_json(&config));
    if let Some(annotations) = merged
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.insert(LAST_APPLIED.to_string(), Value::String(text));
    }
}

/// The `managedFields` to store after a non-apply write (create, update or patch) by
/// `manager`: fields added or changed between `old` (None on create) and `new` become
/// the manager's (operation `Update`) and leave other managers; removed fields leave
/// everyone.
pub fn update_managed_fields(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    now: &str,
    schema: Option<&dyn PatchSchema>,
) -> Value {
    update_managed_fields_for_subresource(old, new, manager, None, now, schema)
}

/// [`update_managed_fields`] for a write through a subresource such as `status` or
/// `scale`, recorded in the entry's `subresource`. Such writes cannot edit
/// `managedFields` themselves.
pub fn update_managed_fields_for_subresource(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
    schema: Option<&dyn PatchSchema>,
) -> Value {
    if exceeds_depth(new, MAX_DEPTH) || old.is_some_and(|o| exceeds_depth(o, MAX_DEPTH)) {
        // Nothing sensible to track on such input; keep what was there.
        return old
            .and_then(managed::managed_fields_value)
            .cloned()
            .unwrap_or_else(|| Value::Array(Vec::new()));
    }
    let old_entries = || {
        old.map(|o| managed::decode(managed::managed_fields_value(o)))
            .unwrap_or_default()
    };
    let written = new.get("metadata").and_then(|m| m.get("managedFields"));
    let mut entries = if subresource.is_some() {
        old_entries()
    } else if managed::is_reset(written) {
        Vec::new()
    } else {
        // A write that carries readable managedFields sets them; otherwise keep the old
        // ones so clients unaware of managedFields do not wipe them.
        let from_new = managed::decode(written);
        if from_new.is_empty() {
            old_entries()
        } else {
            from_new
        }
    };

    let old_obj = old.map_or_else(|| Value::Object(Map::new()), without_managed_fields);
    let new_obj = without_managed_fields(new);
    let cmp = compare(&old_obj, &new_obj, schema);
    let created = fieldset::created_nodes(&old_obj, &new_obj, &cmp.added, schema);
    let changed = cmp.modified.union(&cmp.added).union(&created);
    for e in &mut entries {
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
    }
    if !changed.is_empty() {
        let api_version = api_version_of(new).unwrap_or_default();
        let mine = entries
            .iter_mut()
            .find(|e| e.same_identity(manager, Operation::Update, api_version, subresource));
        match mine {
            Some(e) => {
                e.fields = e.fields.union(&changed);
                e.time = Some(now.to_string());
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: Operation::Update,
                api_version: api_version.to_string(),
                time: Some(now.to_string()),
                subresource: subresource.map(str::to_string),
                fields: changed,
            }),
        }
    }
    managed::encode(&entries)
}
