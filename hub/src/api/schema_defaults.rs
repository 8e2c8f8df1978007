//! Defaulting of custom resources by their CRD's structural schema, as kube-apiserver does it
//! on every write: a property that is absent, or `null` without `nullable: true`, gets its
//! schema's `default`; a `null` without a default and without `nullable` is dropped. Defaults
//! apply top-down, so a defaulted object gets its own properties' defaults too.

use serde_json::Value;

/// Deepest schema nesting followed; CRD schemas are far shallower.
const MAX_DEPTH: usize = 64;

/// Applies the defaults of `schema` (a CRD version's `openAPIV3Schema`) to `obj`, leaving
/// `apiVersion`, `kind` and `metadata` alone.
pub fn apply(obj: &mut Value, schema: &Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, prop) in props {
        if matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        default_property(map, name, prop, 0);
    }
}

fn nullable(schema: &Value) -> bool {
    schema.get("nullable").and_then(Value::as_bool) == Some(true)
}

/// Defaults one property of an object, then what is under it.
fn default_property(
    map: &mut serde_json::Map<String, Value>,
    name: &str,
    schema: &Value,
    depth: usize,
) {
    let default = schema.get("default");
    match map.get(name) {
        None => {
            if let Some(d) = default {
                map.insert(name.to_owned(), d.clone());
            }
        }
        Some(Value::Null) if !nullable(schema) => match default {
            Some(d) => {
                map.insert(name.to_owned(), d.clone());
            }
            None => {
                map.remove(name);
            }
        },
        Some(_) => {}
    }
    if let Some(v) = map.get_mut(name) {
        walk(v, schema, depth + 1);
    }
}

/// Defaults what is under a value of `schema`.
fn walk(v: &mut Value, schema: &Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    default_property(map, name, prop, depth);
                }
            } else if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object())
            {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    default_property(map, &k, extra, depth);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items.iter_mut() {
                    walk(item, item_schema, depth + 1);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "default": {}, "properties": {
                "replicas": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "fast"},
                "note": {"type": "string"},
                "maybe": {"type": "string", "nullable": true, "default": "x"},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "protocol": {"type": "string", "default": "TCP"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "object",
                    "properties": {"weight": {"type": "integer", "default": 10}}}}
            }}
        }})
    }

    #[test]
    fn absent_and_null_properties_get_defaults_top_down() {
        // No spec at all: it defaults to {}, and then its own properties default.
        let mut o = json!({"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"}});
        apply(&mut o, &schema());
        assert_eq!(
            o["spec"],
            json!({"replicas": 1, "mode": "fast", "maybe": "x"})
        );

        let mut o = json!({"spec": {"replicas": 3, "mode": null, "note": null, "maybe": null,
            "ports": [{"port": 80}, {"protocol": "UDP"}], "labels": {"a": {}}}});
        apply(&mut o, &schema());
        let spec = &o["spec"];
        assert_eq!(
            (spec["replicas"].clone(), spec["mode"].clone()),
            (json!(3), json!("fast"))
        );
        assert!(
            spec.get("note").is_none(),
            "a null without default is dropped: {spec}"
        );
        assert_eq!(spec["maybe"], Value::Null, "nullable keeps its null");
        assert_eq!(
            spec["ports"],
            json!([{"port": 80, "protocol": "TCP"}, {"protocol": "UDP"}])
        );
        assert_eq!(spec["labels"]["a"], json!({"weight": 10}));
    }
}
