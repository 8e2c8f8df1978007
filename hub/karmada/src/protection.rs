//! Resource deletion protection: an object labelled
//! `resourcetemplate.karmada.io/deletion-protected: Always` cannot be deleted until the label
//! is removed, as Karmada's `resourcedeletionprotection` webhook enforces.

use serde_json::Value;

/// The label.
pub const DELETION_PROTECTED_LABEL: &str = "resourcetemplate.karmada.io/deletion-protected";
/// The value that protects.
pub const ALWAYS: &str = "Always";

/// Why `obj` may not be deleted, if it is protected (Karmada's webhook message).
pub fn deletion_refusal(obj: &Value) -> Option<String> {
    let protected = obj
        .pointer("/metadata/labels")
        .and_then(|l| l.get(DELETION_PROTECTED_LABEL))
        .and_then(Value::as_str)
        == Some(ALWAYS);
    protected.then(|| {
        format!(
            "admission webhook \"resourcedeletionprotection.karmada.io\" denied the request: This resource is protected, please make sure to remove the label: {DELETION_PROTECTED_LABEL}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_always_protects() {
        let obj = |v: &str| json!({"metadata": {"labels": {DELETION_PROTECTED_LABEL: v}}});
        assert!(deletion_refusal(&obj("Always")).is_some());
        assert!(deletion_refusal(&obj("always")).is_none());
        assert!(deletion_refusal(&json!({"metadata": {}})).is_none());
    }
}
