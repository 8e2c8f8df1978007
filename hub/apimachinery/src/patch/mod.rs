//! The three PATCH formats of the Kubernetes API: JSON merge patch (RFC 7396), JSON
//! patch (RFC 6902) and strategic merge patch.

mod schema;
mod strategic;
#[cfg(test)]
mod tests;

pub use schema::{ListStrategy, PatchSchema, builtin_patch_schema};
use serde_json::Value;

use crate::value::{MAX_DEPTH, exceeds_depth, type_name};

/// Kubernetes refuses JSON patches with more operations than this.
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

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
}

impl PatchError {
    /// The HTTP status code the API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::Invalid(_) => 400,
            PatchError::Conflict(_) => 409,
            PatchError::Unprocessable(_) => 422,
        }
    }

    /// The message without the variant prefix, for a `Status` body.
    pub fn message(&self) -> &str {
        match self {
            PatchError::Invalid(m) | PatchError::Conflict(m) | PatchError::Unprocessable(m) => m,
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
        return Err(PatchError::Invalid(format!(
            "the JSON patch has {} operations, more than the {MAX_JSON_PATCH_OPERATIONS} allowed",
            ops.len()
        )));
    }
    check_depth(target, "object")?;
    check_depth(patch, "patch")?;
    let parsed: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::Invalid(format!("the JSON patch is malformed: {e}")))?;
    let mut doc = target.clone();
    // Work on a copy: the crate's undo path would be needed only to restore `doc`.
    json_patch::patch_unsafe(&mut doc, &parsed).map_err(|e| {
        let msg = format!(
            "operation {} ({}) failed at path '{}': {}",
            e.operation,
            op_name(&parsed, e.operation),
            e.path,
            e.kind
        );
        match e.kind {
            json_patch::PatchErrorKind::TestFailed => PatchError::Conflict(msg),
            _ => PatchError::Unprocessable(msg),
        }
    })?;
    Ok(doc)
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
