//! `metadata.managedFields` entries: decoding, identity and encoding.

use serde_json::{Map, Value};

use super::fieldset::FieldSet;

/// The operation that produced an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `managedFields` entry with its fields parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) manager: String,
    pub(crate) operation: Operation,
    pub(crate) api_version: String,
    pub(crate) time: Option<String>,
    pub(crate) subresource: Option<String>,
    pub(crate) fields: FieldSet,
}

impl Entry {
    /// Whether two entries belong to the same manager. Appliers keep one entry across
    /// API versions; updaters get one per version, as in Kubernetes.
    pub(crate) fn same_identity(
        &self,
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: Option<&str>,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }

    fn encode(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), Value::String(self.manager.clone()));
        m.insert(
            "operation".into(),
            Value::String(self.operation.as_str().into()),
        );
        m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(time) = &self.time {
            m.insert("time".into(), Value::String(time.clone()));
        }
        m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(sub) = &self.subresource {
            m.insert("subresource".into(), Value::String(sub.clone()));
        }
        Value::Object(m)
    }

    fn decode(v: &Value) -> Option<Entry> {
        let operation = match v.get("operation")?.as_str()? {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return None,
        };
        if v.get("fieldsType")
            .is_some_and(|t| t.as_str() != Some("FieldsV1"))
        {
            return None;
        }
        let fields = match v.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::default(),
            Some(f) => FieldSet::from_fields_v1(f).ok()?,
        };
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Entry {
            manager: text("manager")?,
            operation,
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time"),
            subresource: text("subresource").filter(|s| !s.is_empty()),
            fields,
        })
    }
}

/// The `metadata.managedFields` of `obj`.
pub(crate) fn managed_fields_value(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?
        .get("managedFields")
        .filter(|v| !v.is_null())
}

/// Decodes entries, skipping malformed ones (Kubernetes resets unreadable managed
/// fields rather than failing the write) and merging entries of the same manager.
pub(crate) fn decode(v: Option<&Value>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    let Some(Value::Array(items)) = v else {
        return entries;
    };
    for entry in items.iter().filter_map(Entry::decode) {
        let existing = entries.iter_mut().find(|e| {
            e.same_identity(
                &entry.manager,
                entry.operation,
                &entry.api_version,
                entry.subresource.as_deref(),
            )
        });
        match existing {
            Some(e) => {
                e.fields = e.fields.union(&entry.fields);
                if entry.time > e.time {
                    e.time = entry.time;
                    e.api_version = entry.api_version;
                }
            }
            None => entries.push(entry),
        }
    }
    entries
}

/// Whether a written `managedFields` asks to reset ownership: `[]` or `[{}]`.
pub(crate) fn is_reset(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(items)) => match items.as_slice() {
            [] => true,
            [only] => only.as_object().is_some_and(Map::is_empty),
            _ => false,
        },
        _ => false,
    }
}

/// Encodes entries in the order Kubernetes keeps them (operation, time, manager,
/// version, subresource), dropping entries that own nothing.
pub(crate) fn encode(entries: &[Entry]) -> Value {
    let mut kept: Vec<&Entry> = entries.iter().filter(|e| !e.fields.is_empty()).collect();
    kept.sort_by(|a, b| {
        (
            a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    Value::Array(kept.into_iter().map(Entry::encode).collect())
}
