//! Admission validation of the Karmada kinds: unknown-field detection and value rules.

mod autoscaling;
mod kinds;
pub mod names;
mod networking;
mod objects;
mod policy;

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use kinds::{KindInfo, PrinterColumn, kind_info, served_kinds};

/// Kubernetes `StatusCause` reasons for field errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldErrorReason {
    /// The value is not valid.
    FieldValueInvalid,
    /// A required value is missing.
    FieldValueRequired,
    /// The value is not one of the supported values.
    FieldValueNotSupported,
    /// The value duplicates another one.
    FieldValueDuplicate,
    /// The field may not be set here.
    FieldValueForbidden,
    /// The value has the wrong JSON type (decode error).
    FieldValueTypeInvalid,
}

impl FieldErrorReason {
    /// The reason string Kubernetes puts in `status.details.causes[].reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FieldValueInvalid => "FieldValueInvalid",
            Self::FieldValueRequired => "FieldValueRequired",
            Self::FieldValueNotSupported => "FieldValueNotSupported",
            Self::FieldValueDuplicate => "FieldValueDuplicate",
            Self::FieldValueForbidden => "FieldValueForbidden",
            Self::FieldValueTypeInvalid => "FieldValueTypeInvalid",
        }
    }
}

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `spec.placement.replicaScheduling.replicaDivisionPreference`.
    pub field: String,
    /// Kind of problem.
    pub reason: FieldErrorReason,
    /// Details in Kubernetes wording, e.g. `Unsupported value: "X": supported values: "A", "B"`.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Everything wrong with one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors {
    /// Paths of fields the schema does not know, e.g. `spec.placement.foo` (strict mode only).
    pub unknown_fields: Vec<String>,
    /// Value errors.
    pub invalid: Vec<FieldError>,
}

impl ValidationErrors {
    /// True when nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.unknown_fields.is_empty() && self.invalid.is_empty()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .unknown_fields
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect();
        parts.extend(self.invalid.iter().map(ToString::to_string));
        write!(f, "{}", parts.join(", "))
    }
}

/// Collects field errors with Kubernetes-style messages.
#[derive(Debug, Default)]
pub(crate) struct Errs(pub Vec<FieldError>);

impl Errs {
    fn push(&mut self, field: &str, reason: FieldErrorReason, message: String) {
        self.0.push(FieldError {
            field: field.to_string(),
            reason,
            message,
        });
    }
    pub fn invalid(&mut self, field: &str, value: impl fmt::Display, detail: &str) {
        self.push(
            field,
            FieldErrorReason::FieldValueInvalid,
            format!("Invalid value: \"{value}\": {detail}"),
        );
    }
    pub fn required(&mut self, field: &str, detail: &str) {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        self.push(field, FieldErrorReason::FieldValueRequired, message);
    }
    pub fn not_supported(&mut self, field: &str, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        self.push(
            field,
            FieldErrorReason::FieldValueNotSupported,
            format!(
                "Unsupported value: \"{value}\": supported values: {}",
                list.join(", ")
            ),
        );
    }
    /// Checks `value` against `supported`; empty values are allowed when `allow_empty`.
    pub fn one_of(&mut self, field: &str, value: &str, supported: &[&str], allow_empty: bool) {
        if (allow_empty && value.is_empty()) || supported.contains(&value) {
            return;
        }
        if value.is_empty() {
            self.required(field, "");
        } else {
            self.not_supported(field, value, supported);
        }
    }
    pub fn duplicate(&mut self, field: &str, value: impl fmt::Display) {
        self.push(
            field,
            FieldErrorReason::FieldValueDuplicate,
            format!("Duplicate value: \"{value}\""),
        );
    }
    pub fn forbidden(&mut self, field: &str, detail: &str) {
        self.push(
            field,
            FieldErrorReason::FieldValueForbidden,
            format!("Forbidden: {detail}"),
        );
    }
}

fn format_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", format_path(parent)),
        Path::Map { parent, key } => {
            let p = format_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => format_path(parent),
    }
}

/// Decodes `obj` into `T`, collecting the paths of unknown fields.
///
/// Type errors come back as one `FieldValueTypeInvalid` error with the failing path.
pub fn decode<T: DeserializeOwned>(
    obj: &Value,
    unknown_fields: &mut Vec<String>,
) -> Result<T, FieldError> {
    let mut on_ignored = |path: serde_ignored::Path<'_>| unknown_fields.push(format_path(&path));
    let de = serde_ignored::Deserializer::new(obj, &mut on_ignored);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        FieldError {
            field: if field == "." { String::new() } else { field },
            reason: FieldErrorReason::FieldValueTypeInvalid,
            message: format!("Invalid value: {}", e.inner()),
        }
    })
}

/// Validates one object of a Karmada kind (the whole JSON object incl. apiVersion/kind/metadata).
///
/// `strict` rejects unknown fields (`fieldValidation=Strict`); otherwise they are ignored.
/// Kinds this crate does not serve are accepted unchanged.
pub fn validate(kind: &str, obj: &Value, strict: bool) -> Result<(), ValidationErrors> {
    let mut unknown = Vec::new();
    let mut errs = Errs::default();
    let result = objects::validate_kind(kind, obj, &mut unknown, &mut errs);
    if let Err(e) = result {
        errs.0.push(e);
    }
    let out = ValidationErrors {
        unknown_fields: if strict { unknown } else { Vec::new() },
        invalid: errs.0,
    };
    if out.is_empty() { Ok(()) } else { Err(out) }
}

#[cfg(test)]
mod tests;
