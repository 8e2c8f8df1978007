//! Strategic merge patch, as the Kubernetes API server applies it.
//!
//! Follows `k8s.io/apimachinery/pkg/util/strategicpatch` with the server-side merge
//! options (parallel lists merged, unmatched nulls ignored), including the ordering
//! rules of `$setElementOrder`. Values that are new to the object go through the same
//! merge against an empty value, so nulls and directives never leak into the result.

use serde_json::{Map, Value};

use super::{ListStrategy, PatchError, PatchSchema};
use crate::value::{json_eq, type_name};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

type JsonMap = Map<String, Value>;

/// Applies `patch` to `target`; both must be JSON objects.
pub(crate) fn apply(
    target: &Value,
    patch: &Value,
    schema: &dyn PatchSchema,
) -> Result<Value, PatchError> {
    let Value::Object(target) = target else {
        return Err(invalid(format!(
            "the object to patch must be a map, got a {}",
            type_name(target)
        )));
    };
    let Value::Object(patch) = patch else {
        return Err(invalid(format!(
            "a strategic merge patch must be a JSON object, got a {}",
            type_name(patch)
        )));
    };
    let merger = Merger { schema };
    merger
        .merge_map(target.clone(), patch, &mut Vec::new())
        .map(Value::Object)
}

fn invalid(msg: String) -> PatchError {
    PatchError::Invalid(msg)
}

/// A field path for messages.
fn show(path: &[&str]) -> String {
    if path.is_empty() {
        "the object root".to_string()
    } else {
        path.join(".")
    }
}

/// The value identifying a list item: its merge key's value, or the item itself for scalars.
fn ident<'a>(item: &'a Value, key: Option<&str>) -> Option<&'a Value> {
    match key {
        Some(k) => item.get(k),
        None => Some(item),
    }
}

fn index_of(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    let id = ident(item, key)?;
    list.iter()
        .position(|v| ident(v, key).is_some_and(|other| json_eq(other, id)))
}

/// Splits `merged` into the items found in `by` and the others, keeping their order.
fn partition(merged: Vec<Value>, by: &[Value], key: Option<&str>) -> (Vec<Value>, Vec<Value>) {
    merged
        .into_iter()
        .partition(|item| index_of(by, item, key).is_some())
}

fn sort_by_order(items: &mut [Value], order: &[Value], key: Option<&str>) {
    items.sort_by_key(|item| index_of(order, item, key).unwrap_or(usize::MAX));
}

/// Orders patch items by `patch_order` and server-only items by `server_order`, then
/// interleaves them: a server-only item goes before a patch item only when the live
/// list has it first.
fn normalize_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    sort_by_order(&mut patch_items, patch_order, key);
    sort_by_order(&mut server_only, server_order, key);
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (index_of(server_order, l, key), index_of(server_order, r, key)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
    out
}

fn is_delete_item(item: &Value) -> bool {
    item.get(DIRECTIVE).and_then(Value::as_str) == Some("delete")
}

/// Checks that the patch list's items appear in the `$setElementOrder` list in the same order.
fn validate_order(
    patch: &[Value],
    order: &[Value],
    key: Option<&str>,
    path: &[&str],
) -> Result<(), PatchError> {
    let items: Vec<&Value> = patch
        .iter()
        .filter(|v| key.is_none() || !is_delete_item(v))
        .collect();
    let (mut pi, mut oi) = (0, 0);
    while pi < items.len() && oi < order.len() {
        let item = items[pi];
        if key.is_some() && item.get(DIRECTIVE).is_some() {
            pi += 1;
            continue;
        }
        let equal = match key {
            Some(k) => match (item.get(k), order[oi].get(k)) {
                (Some(a), Some(b)) => json_eq(a, b),
                _ => {
                    return Err(invalid(format!(
                        "an item of {} or of its $setElementOrder list does not contain the merge key {k}",
                        show(path)
                    )));
                }
            },
            None => json_eq(item, &order[oi]),
        };
        if equal {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() {
        return Err(invalid(format!(
            "the order of the patch list {} does not match its $setElementOrder list",
            show(path)
        )));
    }
    Ok(())
}

#[derive(PartialEq)]
enum ElementKind {
    Scalar,
    Map,
}

/// The common kind of the items of both lists; lists of lists and mixes are refused.
fn element_kind(
    a: &[Value],
    b: &[Value],
    path: &[&str],
) -> Result<Option<ElementKind>, PatchError> {
    let mut kind = None;
    for item in a.iter().chain(b) {
        let this = match item {
            Value::Array(_) => {
                return Err(invalid(format!(
                    "{}: lists of lists are not supported",
                    show(path)
                )));
            }
            Value::Object(_) => ElementKind::Map,
            _ => ElementKind::Scalar,
        };
        match &kind {
            None => kind = Some(this),
            Some(k) if *k != this => {
                return Err(invalid(format!(
                    "{}: list items are not all of the same type",
                    show(path)
                )));
            }
            Some(_) => {}
        }
    }
    Ok(kind)
}

struct Merger<'s> {
    schema: &'s dyn PatchSchema,
}

impl Merger<'_> {
    fn merge_map<'p>(
        &self,
        original: JsonMap,
        patch: &'p JsonMap,
        path: &mut Vec<&'p str>,
    ) -> Result<JsonMap, PatchError> {
        match patch.get(DIRECTIVE) {
            None => self.merge_fields(original, patch, path),
            Some(d) => match d.as_str() {
                // The patch's fields become the whole map.
                Some("replace") => self.merge_fields(JsonMap::new(), patch, path),
                Some("delete") => Ok(JsonMap::new()),
                _ => Err(invalid(format!(
                    "unknown patch type {d} in the map at {}",
                    show(path)
                ))),
            },
        }
    }

    fn merge_fields<'p>(
        &self,
        mut original: JsonMap,
        patch: &'p JsonMap,
        path: &mut Vec<&'p str>,
    ) -> Result<JsonMap, PatchError> {
        if let Some(retain) = patch.get(RETAIN_KEYS) {
            let keys: Vec<&str> = retain
                .as_array()
                .and_then(|a| a.iter().map(Value::as_str).collect())
                .ok_or_else(|| {
                    invalid(format!(
                        "$retainKeys in {} must be a list of strings",
                        show(path)
                    ))
                })?;
            if let Some((k, _)) = patch
                .iter()
                .find(|(k, v)| !v.is_null() && !k.starts_with('$') && !keys.contains(&k.as_str()))
            {
                return Err(invalid(format!(
                    "field {k} in {} is missing from its $retainKeys list",
                    show(path)
                )));
            }
            original.retain(|k, _| keys.contains(&k.as_str()));
        }

        let mut ordered: Vec<&str> = Vec::new();
        for (key, value) in patch {
            if let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) {
                self.set_element_order(&mut original, patch, field, value, path)?;
                ordered.push(field);
            } else if key.starts_with('$')
                && key != DIRECTIVE
                && key != RETAIN_KEYS
                && !key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            {
                return Err(invalid(format!(
                    "unknown directive {key} in {}",
                    show(path)
                )));
            }
        }

        for (key, value) in patch {
            if key.starts_with('$') || ordered.contains(&key.as_str()) {
                continue;
            }
            if value.is_null() {
                original.remove(key);
                continue;
            }
            path.push(key);
            let merged = match (original.get_mut(key).map(std::mem::take), value) {
                (Some(Value::Object(o)), Value::Object(p)) => {
                    Value::Object(self.merge_map(o, p, path)?)
                }
                (Some(Value::Array(o)), Value::Array(p)) => {
                    Value::Array(self.merge_list(o, p, path)?)
                }
                _ => self.fresh(value, path)?,
            };
            path.pop();
            original.insert(key.clone(), merged);
        }

        for (key, value) in patch {
            let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) else {
                continue;
            };
            let Value::Array(to_delete) = value else {
                return Err(invalid(format!("{key} in {} must be a list", show(path))));
            };
            if field.is_empty() {
                return Err(invalid(format!("{key} in {} names no field", show(path))));
            }
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|item| !to_delete.iter().any(|d| json_eq(d, item)));
            }
        }
        Ok(original)
    }

    /// Merges the list `field` together with its `$setElementOrder/field` directive.
    fn set_element_order<'p>(
        &self,
        original: &mut JsonMap,
        patch: &'p JsonMap,
        field: &'p str,
        order: &Value,
        path: &mut Vec<&'p str>,
    ) -> Result<(), PatchError> {
        let Value::Array(order) = order else {
            return Err(invalid(format!(
                "$setElementOrder/{field} in {} must be a list",
                show(path)
            )));
        };
        if field.is_empty() {
            return Err(invalid(format!(
                "$setElementOrder/ in {} names no field",
                show(path)
            )));
        }
        let patch_list = match patch.get(field) {
            None => None,
            Some(Value::Array(a)) => Some(a),
            Some(other) => {
                return Err(invalid(format!(
                    "{field} in {} must be a list to go with $setElementOrder/{field}, got a {}",
                    show(path),
                    type_name(other)
                )));
            }
        };
        let original_list = original.get(field).and_then(Value::as_array).cloned();
        path.push(field);
        let result = self.ordered_list(original_list, patch_list, order, path);
        path.pop();
        if let Some(list) = result? {
            original.insert(field.to_string(), Value::Array(list));
        }
        Ok(())
    }

    fn ordered_list<'p>(
        &self,
        original: Option<Vec<Value>>,
        patch: Option<&'p Vec<Value>>,
        order: &[Value],
        path: &mut Vec<&'p str>,
    ) -> Result<Option<Vec<Value>>, PatchError> {
        let strategy = self.schema.list_strategy(path);
        let key = match &strategy {
            ListStrategy::Replace => {
                // Replaced lists take the patch as it is; the order list adds nothing.
                return match patch {
                    Some(p) => Ok(Some(self.fresh_items(p, path)?)),
                    None => Ok(original),
                };
            }
            ListStrategy::Merge { key } => Some(key.as_str()),
            ListStrategy::MergePrimitives => None,
        };
        if let Some(p) = patch {
            validate_order(p, order, key, path)?;
        }
        let server_order = original.clone().unwrap_or_default();
        let merged = match (original, patch) {
            (Some(o), None) => o,
            (None, Some(p)) => self.merge_list(Vec::new(), p, path)?,
            (Some(o), Some(p)) => self.merge_list(o, p, path)?,
            (None, None) => return Ok(None),
        };
        if merged.iter().any(|item| ident(item, key).is_none()) {
            // Items without their merge key cannot be ordered; keep the merge result.
            return Ok(Some(merged));
        }
        let (in_order, server_only) = partition(merged, order, key);
        Ok(Some(normalize_order(
            in_order,
            server_only,
            order,
            &server_order,
            key,
        )))
    }

    /// A patch value for a field the object does not have, merged against nothing.
    fn fresh<'p>(&self, value: &'p Value, path: &mut Vec<&'p str>) -> Result<Value, PatchError> {
        Ok(match value {
            Value::Object(m) => Value::Object(self.merge_map(JsonMap::new(), m, path)?),
            Value::Array(a) => Value::Array(self.merge_list(Vec::new(), a, path)?),
            other => other.clone(),
        })
    }

    fn fresh_items<'p>(
        &self,
        items: &'p [Value],
        path: &mut Vec<&'p str>,
    ) -> Result<Vec<Value>, PatchError> {
        items
            .iter()
            .map(|item| match item {
                Value::Object(m) => Ok(Value::Object(self.merge_map(JsonMap::new(), m, path)?)),
                other => Ok(other.clone()),
            })
            .collect()
    }

    fn merge_list<'p>(
        &self,
        original: Vec<Value>,
        patch: &'p [Value],
        path: &mut Vec<&'p str>,
    ) -> Result<Vec<Value>, PatchError> {
        match self.schema.list_strategy(path) {
            ListStrategy::Replace => self.fresh_items(patch, path),
            ListStrategy::MergePrimitives => {
                if element_kind(&original, patch, path)? == Some(ElementKind::Map) {
                    return Err(invalid(format!(
                        "{}: cannot merge lists of maps without a merge key",
                        show(path)
                    )));
                }
                Ok(merge_scalars(original, patch))
            }
            ListStrategy::Merge { key } => match element_kind(&original, patch, path)? {
                None => Ok(original),
                Some(ElementKind::Scalar) => Ok(merge_scalars(original, patch)),
                Some(ElementKind::Map) => self.merge_keyed(original, patch, &key, path),
            },
        }
    }

    fn merge_keyed<'p>(
        &self,
        mut original: Vec<Value>,
        patch: &'p [Value],
        key: &str,
        path: &mut Vec<&'p str>,
    ) -> Result<Vec<Value>, PatchError> {
        let missing_key = |path: &[&str]| {
            invalid(format!(
                "an item of {} does not contain the merge key {key}",
                show(path)
            ))
        };
        let mut plain: Vec<&'p JsonMap> = Vec::new();
        let mut replace = false;
        for item in patch {
            let Value::Object(m) = item else { continue };
            match m.get(DIRECTIVE) {
                None => plain.push(m),
                Some(d) => match d.as_str() {
                    Some("delete") => {
                        let id = m.get(key).ok_or_else(|| missing_key(path))?;
                        original.retain(|o| !o.get(key).is_some_and(|v| json_eq(v, id)));
                    }
                    Some("replace") => replace = true,
                    Some("merge") => {
                        return Err(invalid(format!(
                            "{}: merging lists cannot yet be specified in the patch",
                            show(path)
                        )));
                    }
                    _ => {
                        return Err(invalid(format!(
                            "unknown patch type {d} in a list item of {}",
                            show(path)
                        )));
                    }
                },
            }
        }
        if replace {
            return plain
                .into_iter()
                .map(|m| Ok(Value::Object(self.merge_map(JsonMap::new(), m, path)?)))
                .collect();
        }

        let server_order = original.clone();
        let mut merged = original;
        let mut patch_order = Vec::with_capacity(plain.len());
        for m in plain {
            let id = m.get(key).ok_or_else(|| missing_key(path))?;
            patch_order.push(Value::Object(JsonMap::from_iter([(
                key.to_string(),
                id.clone(),
            )])));
            match merged
                .iter()
                .position(|o| o.get(key).is_some_and(|v| json_eq(v, id)))
            {
                Some(i) => {
                    let current = match std::mem::take(&mut merged[i]) {
                        Value::Object(o) => o,
                        _ => JsonMap::new(),
                    };
                    merged[i] = Value::Object(self.merge_map(current, m, path)?);
                }
                None => merged.push(Value::Object(self.merge_map(JsonMap::new(), m, path)?)),
            }
        }
        if merged.iter().any(|item| item.get(key).is_none()) {
            // Live items without the merge key cannot be ordered; keep them in place.
            return Ok(merged);
        }
        let (in_patch, server_only) = partition(merged, &patch_order, Some(key));
        Ok(normalize_order(
            in_patch,
            server_only,
            &patch_order,
            &server_order,
            Some(key),
        ))
    }
}

/// Set union of two scalar lists, ordered like the Kubernetes server does.
fn merge_scalars(original: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for v in original.iter().chain(patch) {
        if !merged.iter().any(|m| json_eq(m, v)) {
            merged.push(v.clone());
        }
    }
    let (in_patch, server_only) = partition(merged, patch, None);
    normalize_order(in_patch, server_only, patch, &original, None)
}
