//! Merging an applied configuration into the live object.

use serde_json::{Map, Value};

use super::fieldset::{ListKind, PathElement, is_atomic_map, item_key, item_value, list_kind};
use crate::patch::PatchSchema;

/// Merges `applied` over `live`: maps merge field by field (atomic maps are replaced),
/// `null` removes a field, associative and set lists merge by item, other lists are
/// replaced.
pub(crate) fn merge(live: &Value, applied: &Value, schema: Option<&dyn PatchSchema>) -> Value {
    Merger { schema }.value(Some(live), applied, &mut Vec::new())
}

struct Merger<'s> {
    schema: Option<&'s dyn PatchSchema>,
}

impl Merger<'_> {
    fn value<'a>(
        &self,
        live: Option<&Value>,
        applied: &'a Value,
        path: &mut Vec<&'a str>,
    ) -> Value {
        match applied {
            Value::Object(_) if is_atomic_map(self.schema, path) => applied.clone(),
            Value::Object(fields) => {
                let mut out = match live {
                    Some(Value::Object(m)) => m.clone(),
                    _ => Map::new(),
                };
                for (k, v) in fields {
                    if v.is_null() {
                        out.remove(k);
                        continue;
                    }
                    path.push(k);
                    let merged = self.value(out.get(k), v, path);
                    path.pop();
                    out.insert(k.clone(), merged);
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                let live_items: &[Value] = match live {
                    Some(Value::Array(l)) => l,
                    _ => &[],
                };
                match list_kind(self.schema, path) {
                    ListKind::Atomic => applied.clone(),
                    ListKind::Set => {
                        let ids = |list: &[Value]| list.iter().map(item_value).collect::<Vec<_>>();
                        interleave(live_items, &ids(live_items), items, &ids(items), |_, a| {
                            a.clone()
                        })
                    }
                    ListKind::Map(keys) => {
                        let ids = |list: &[Value]| {
                            list.iter().map(|i| item_key(i, &keys)).collect::<Vec<_>>()
                        };
                        let (live_ids, applied_ids) = (ids(live_items), ids(items));
                        interleave(live_items, &live_ids, items, &applied_ids, |l, a| {
                            self.value(l, a, path)
                        })
                    }
                }
            }
            scalar => scalar.clone(),
        }
    }
}

/// Merges two lists item by item: live-only items keep their place, applied items
/// keep their relative order and are merged with their live counterpart.
fn interleave<'a>(
    live: &[Value],
    live_ids: &[Option<PathElement>],
    applied: &'a [Value],
    applied_ids: &[Option<PathElement>],
    mut merge_item: impl FnMut(Option<&Value>, &'a Value) -> Value,
) -> Value {
    let counterpart = |ai: usize| {
        let id = applied_ids[ai].as_ref()?;
        live_ids
            .iter()
            .position(|l| l.as_ref() == Some(id))
            .map(|li| &live[li])
    };
    let mut out = Vec::with_capacity(live.len() + applied.len());
    let mut next = 0;
    for (li, item) in live.iter().enumerate() {
        let pos = live_ids[li]
            .as_ref()
            .and_then(|id| applied_ids.iter().position(|a| a.as_ref() == Some(id)));
        match pos {
            None => out.push(item.clone()),
            Some(p) if p >= next => {
                for (ai, item) in applied.iter().enumerate().take(p + 1).skip(next) {
                    out.push(merge_item(counterpart(ai), item));
                }
                next = p + 1;
            }
            // Already emitted together with its applied counterpart.
            Some(_) => {}
        }
    }
    for (ai, item) in applied.iter().enumerate().skip(next) {
        out.push(merge_item(counterpart(ai), item));
    }
    Value::Array(out)
}
