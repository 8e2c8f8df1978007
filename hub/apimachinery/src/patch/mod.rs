//! The three PATCH formats of the Kubernetes API: JSON merge patch (RFC 7396), JSON
//! patch (RFC 6902) and strategic merge patch.

mod schema;
mod strategic;
#[cfg(test)]
mod tests;

pub use schema::{ListStrategy, PatchSchema, builtin_patch_schema};
use serde_json::Value;

use crate::value::{MAX_DEPTH, exceeds_depth, serialized_len, type_name};

/// Kubernetes refuses JSON patches with more operations than this (kube-apiserver's
/// `maxJSONPatchOperations`), with 413.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The most bytes (of compact JSON) all `copy` operations of one JSON patch may copy,
/// as kube-apiserver's `JSONPatchMaxCopyBytes` (3 MiB, its request body limit); over it
/// the patch is refused with 422 before the copy is made.
pub const MAX_JSON_PATCH_COPY_BYTES: usize = 3 * 1024 * 1024;

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The patch document is malformed (400 BadRequest).
    #[error("invalid patch: {0}")]
    Invalid(String),
    /// A JSON patch `test` operation found a different value: the object changed
    /// under the client (409 Conflict).
    #[error("patch precondition failed: {0}")]
    Conflict(String),
    /// The patch is well formed but does not fit the object, such as a JSON patch
    /// path that does not exist (422 UnprocessableEntity).
    #[error("the patch cannot be applied: {0}")]
    Unprocessable(String),
    /// The patch has more operations than allowed (413 RequestEntityTooLarge).
    #[error("the patch is too large: {0}")]
    TooLarge(String),
}

impl PatchError {
    /// The HTTP status code the API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::Invalid(_) => 400,
            PatchError::Conflict(_) => 409,
            PatchError::Unprocessable(_) => 422,
            PatchError::TooLarge(_) => 413,
        }
    }

    /// The message without the variant prefix, for a `Status` body.
    pub fn message(&self) -> &str {
        match self {
            PatchError::Invalid(m)
            | PatchError::Conflict(m)
            | PatchError::Unprocessable(m)
            | PatchError::TooLarge(m) => m,
        }
    }
}

fn check_depth(v: &Value, what: &str) -> Result<(), PatchError> {
    if exceeds_depth(v, MAX_DEPTH) {
        return Err(PatchError::Invalid(format!(
            "the {what} nests deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(())
}

/// Applies an RFC 7396 JSON merge patch: maps merge, `null` deletes, lists are replaced.
pub fn merge_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::Invalid(format!(
            "a merge patch must be a JSON object, got a {}",
            type_name(patch)
        )));
    }
    check_depth(target, "object")?;
    check_depth(patch, "patch")?;
    let mut doc = target.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}

/// Applies an RFC 6902 JSON patch (a list of operations); errors name the failing operation.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError::Invalid(format!(
            "a JSON patch must be a list of operations, got a {}",
            type_name(patch)
        )));
    };
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooLarge(format!(
            "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
            ops.len()
        )));
    }
    check_depth(target, "object")?;
    check_depth(patch, "patch")?;
    let parsed: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::Invalid(format!("the JSON patch is malformed: {e}")))?;
    let mut doc = target.clone();
    let mut copied = 0usize;
    // One operation at a time, so a copy is measured before it is made. Work on a copy
    // of the target: the crate's undo path would be needed only to restore `doc`.
    for (index, op) in parsed.0.iter().enumerate() {
        if let json_patch::PatchOperation::Copy(c) = op
            && let Some(source) = doc.pointer(c.from.as_str())
        {
            copied = copied.saturating_add(serialized_len(source));
            if copied > MAX_JSON_PATCH_COPY_BYTES {
                return Err(PatchError::Unprocessable(format!(
                    "Unable to complete the copy, the accumulated size increase of copy is {copied}, exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}"
                )));
            }
        }
        let replaced;
        let op = match op {
            // kube-apiserver's JSON patch (evanphx/json-patch v4) lets `replace` set a member
            // an object does not have yet; clients rely on it.
            json_patch::PatchOperation::Replace(r) if missing_member(&doc, r.path.as_str()) => {
                replaced = json_patch::PatchOperation::Add(json_patch::AddOperation {
                    path: r.path.clone(),
                    value: r.value.clone(),
                });
                &replaced
            }
            other => other,
        };
        json_patch::patch_unsafe(&mut doc, std::slice::from_ref(op)).map_err(|e| {
            let msg = format!(
                "operation {index} ({}) failed at path '{}': {}",
                op_name(&parsed, index),
                e.path,
                e.kind
            );
            match e.kind {
                json_patch::PatchErrorKind::TestFailed => PatchError::Conflict(msg),
                _ => PatchError::Unprocessable(msg),
            }
        })?;
    }
    Ok(doc)
}

/// Whether `path` names a member its parent object does not have (the parent exists and is
/// an object).
fn missing_member(doc: &Value, path: &str) -> bool {
    let Some((parent, last)) = path.rsplit_once('/') else {
        return false;
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    doc.pointer(parent)
        .and_then(Value::as_object)
        .is_some_and(|m| !m.contains_key(&key))
}

fn op_name(patch: &json_patch::Patch, index: usize) -> &'static str {
    use json_patch::PatchOperation as Op;
    match patch.0.get(index) {
        Some(Op::Add(_)) => "add",
        Some(Op::Remove(_)) => "remove",
        Some(Op::Replace(_)) => "replace",
        Some(Op::Move(_)) => "move",
        Some(Op::Copy(_)) => "copy",
        Some(Op::Test(_)) => "test",
        None => "unknown",
    }
}

/// Applies a strategic merge patch to a built-in kind, using `schema` for list merge keys.
///
/// Supports the `$patch: replace|delete`, `$setElementOrder/<field>`, `$retainKeys`
/// and `$deleteFromPrimitiveList/<field>` directives.
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    schema: &dyn PatchSchema,
) -> Result<Value, PatchError> {
    check_depth(target, "object")?;
    check_depth(patch, "patch")?;
    strategic::apply(target, patch, schema)
}
