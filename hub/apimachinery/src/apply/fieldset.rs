//! Field sets: the fields of an object a manager owns, their `FieldsV1` encoding, and
//! how to derive, compare and prune them.

use std::collections::BTreeSet;
use std::ops::Bound;

use serde_json::{Map, Value};

use crate::patch::{ListStrategy, PatchSchema};
use crate::value::{canonical_json, json_eq};

/// One step of a field path.
///
/// The derived order (fields, then keys, then values, then indexes) matches the
/// order Kubernetes serializes `FieldsV1` in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PathElement {
    /// A field of a map: `f:name`.
    Field(String),
    /// An item of an associative list, by the canonical JSON of its key fields: `k:{"name":"web"}`.
    Key(String),
    /// An item of a set list, by its canonical JSON: `v:"finalizer"`.
    Value(String),
    /// An item of a list by position: `i:0` (read, never produced).
    Index(usize),
}

impl PathElement {
    fn encode(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Result<Self, String> {
        let parse_json = |text: &str| {
            serde_json::from_str::<Value>(text).map_err(|e| format!("bad path element {s:?}: {e}"))
        };
        match s.split_at_checked(2) {
            Some(("f:", name)) => Ok(PathElement::Field(name.to_string())),
            Some(("k:", text)) => match parse_json(text)? {
                key @ Value::Object(_) => Ok(PathElement::Key(canonical_json(&key))),
                _ => Err(format!(
                    "bad path element {s:?}: a key must be a JSON object"
                )),
            },
            Some(("v:", text)) => Ok(PathElement::Value(canonical_json(&parse_json(text)?))),
            Some(("i:", index)) => index
                .parse()
                .map(PathElement::Index)
                .map_err(|_| format!("bad path element {s:?}: not an index")),
            _ => Err(format!("bad path element {s:?}")),
        }
    }

    /// The path element as Kubernetes prints it in conflicts: `.image`, `[name="web"]`, `[="x"]`.
    fn display(&self) -> String {
        match self {
            PathElement::Field(f) => format!(".{f}"),
            PathElement::Key(k) => {
                let fields = match serde_json::from_str::<Value>(k) {
                    Ok(Value::Object(m)) => m
                        .iter()
                        .map(|(name, v)| format!("{name}={v}"))
                        .collect::<Vec<_>>(),
                    _ => vec![k.clone()],
                };
                format!("[{}]", fields.join(","))
            }
            PathElement::Value(v) => format!("[={v}]"),
            PathElement::Index(i) => format!("[{i}]"),
        }
    }
}

/// A path from the object root.
pub(crate) type Path = Vec<PathElement>;

/// A path as Kubernetes prints it: `.spec.containers[name="web"].image`.
pub(crate) fn path_string(path: &[PathElement]) -> String {
    path.iter().map(PathElement::display).collect()
}

/// A set of field paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet(BTreeSet<Path>);

impl FieldSet {
    pub(crate) fn insert(&mut self, path: Path) {
        self.0.insert(path);
    }

    pub(crate) fn contains(&self, path: &[PathElement]) -> bool {
        self.0.contains(path)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Path> {
        self.0.iter()
    }

    pub(crate) fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.union(&other.0).cloned().collect())
    }

    pub(crate) fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.difference(&other.0).cloned().collect())
    }

    pub(crate) fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.intersection(&other.0).cloned().collect())
    }

    /// Whether some member lies strictly below `prefix`.
    pub(crate) fn has_descendants(&self, prefix: &[PathElement]) -> bool {
        // Descendants sort right after their prefix.
        self.0
            .range::<[PathElement], _>((Bound::Excluded(prefix), Bound::Unbounded))
            .next()
            .is_some_and(|p| p.len() > prefix.len() && p.starts_with(prefix))
    }

    /// The `FieldsV1` JSON form: nested `f:`/`k:`/`v:` keys, `{}` for leaves and `"."`
    /// marking a member that also has members below it.
    pub(crate) fn to_fields_v1(&self) -> Value {
        let mut root = Map::new();
        for path in &self.0 {
            let mut node = &mut root;
            for (i, elem) in path.iter().enumerate() {
                let entry = node
                    .entry(elem.encode())
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(child) = entry else { break };
                if i + 1 < path.len() && self.0.contains(&path[..=i]) && !child.contains_key(".") {
                    child.insert(".".to_string(), Value::Object(Map::new()));
                }
                node = child;
            }
        }
        Value::Object(root)
    }

    /// Parses the `FieldsV1` JSON form.
    pub(crate) fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        fn walk(
            obj: &Map<String, Value>,
            prefix: &mut Path,
            set: &mut FieldSet,
        ) -> Result<(), String> {
            for (k, child) in obj {
                if k == "." {
                    if !prefix.is_empty() {
                        set.insert(prefix.clone());
                    }
                    continue;
                }
                prefix.push(PathElement::decode(k)?);
                match child {
                    Value::Object(m) if m.is_empty() => set.insert(prefix.clone()),
                    Value::Object(m) => walk(m, prefix, set)?,
                    _ => return Err(format!("fieldsV1 entry {k:?} must be an object")),
                }
                prefix.pop();
            }
            Ok(())
        }
        let Value::Object(obj) = v else {
            return Err("fieldsV1 must be an object".to_string());
        };
        let mut set = FieldSet::default();
        walk(obj, &mut Vec::new(), &mut set)?;
        Ok(set)
    }
}

/// How server-side apply treats a list.
pub(crate) enum ListKind {
    /// Owned and replaced as a whole.
    Atomic,
    /// Scalars owned one by one (`v:`).
    Set,
    /// Maps owned one by one, identified by these fields (`k:`).
    Map(Vec<String>),
}

/// Whether the map at `path` is owned as a whole (see [`PatchSchema::is_atomic_map`]).
pub(crate) fn is_atomic_map(schema: Option<&dyn PatchSchema>, path: &[&str]) -> bool {
    schema.is_some_and(|s| s.is_atomic_map(path))
}

pub(crate) fn list_kind(schema: Option<&dyn PatchSchema>, path: &[&str]) -> ListKind {
    let Some(schema) = schema else {
        return ListKind::Atomic;
    };
    match schema.list_strategy(path) {
        ListStrategy::Replace => ListKind::Atomic,
        ListStrategy::MergePrimitives => ListKind::Set,
        ListStrategy::Merge { .. } => {
            let keys = schema.list_map_keys(path);
            if keys.is_empty() {
                ListKind::Atomic
            } else {
                ListKind::Map(keys)
            }
        }
    }
}

/// The path element of an associative list item; None when the item is not a map or
/// lacks the first key field.
pub(crate) fn item_key(item: &Value, keys: &[String]) -> Option<PathElement> {
    let m = item.as_object()?;
    m.get(keys.first()?).filter(|v| !v.is_null())?;
    let key: Map<String, Value> = keys
        .iter()
        .filter_map(|k| key_field(m, k).map(|v| (k.clone(), v)))
        .collect();
    Some(PathElement::Key(canonical_json(&Value::Object(key))))
}

/// A key field of a list item. A missing `protocol` (a secondary key of ports) counts
/// as its default `TCP`, as Kubernetes does, so `{port: 80}` and
/// `{port: 80, protocol: TCP}` are the same item.
fn key_field(item: &Map<String, Value>, name: &str) -> Option<Value> {
    match item.get(name) {
        Some(v) if !v.is_null() => Some(v.clone()),
        _ if name == "protocol" => Some(Value::String("TCP".to_string())),
        _ => None,
    }
}

/// The path element of a set list item; None for maps and lists.
pub(crate) fn item_value(item: &Value) -> Option<PathElement> {
    match item {
        Value::Array(_) | Value::Object(_) => None,
        scalar => Some(PathElement::Value(canonical_json(scalar))),
    }
}

fn key_matches(item: &Value, key: &str) -> bool {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(key) else {
        return false;
    };
    let Some(m) = item.as_object() else {
        return false;
    };
    fields
        .iter()
        .all(|(k, v)| key_field(m, k).is_some_and(|iv| json_eq(&iv, v)))
}

fn key_names(key: &str) -> Vec<String> {
    match serde_json::from_str::<Value>(key) {
        Ok(Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn element_matches(item: &Value, elem: &PathElement) -> bool {
    match elem {
        PathElement::Key(k) => key_matches(item, k),
        PathElement::Value(v) => {
            item_value(item).is_some_and(|e| e == PathElement::Value(v.clone()))
        }
        _ => false,
    }
}

/// Metadata the server owns; never part of any manager's fields.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
];

/// The fields set in `obj`. `strict` refuses what an applied configuration may not
/// contain (associative items without keys, duplicates); otherwise such lists count
/// as atomic.
pub(crate) fn fields_of(
    obj: &Value,
    schema: Option<&dyn PatchSchema>,
    strict: bool,
) -> Result<FieldSet, String> {
    let walker = Walker { schema, strict };
    let mut set = FieldSet::default();
    let Value::Object(root) = obj else {
        return Ok(set);
    };
    let mut spath = Vec::new();
    let mut fpath = Vec::new();
    for (k, v) in root {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        if k == "metadata" {
            let Value::Object(meta) = v else { continue };
            spath.push(k.as_str());
            fpath.push(PathElement::Field(k.clone()));
            for (mk, mv) in meta {
                if !SERVER_METADATA.contains(&mk.as_str()) {
                    walker.field(mk, mv, &mut spath, &mut fpath, &mut set)?;
                }
            }
            spath.pop();
            fpath.pop();
            continue;
        }
        walker.field(k, v, &mut spath, &mut fpath, &mut set)?;
    }
    Ok(set)
}

struct Walker<'s> {
    schema: Option<&'s dyn PatchSchema>,
    strict: bool,
}

impl Walker<'_> {
    fn field<'a>(
        &self,
        key: &'a str,
        v: &'a Value,
        spath: &mut Vec<&'a str>,
        fpath: &mut Path,
        set: &mut FieldSet,
    ) -> Result<(), String> {
        spath.push(key);
        fpath.push(PathElement::Field(key.to_string()));
        let result = self.value(v, spath, fpath, set);
        spath.pop();
        fpath.pop();
        result
    }

    fn value<'a>(
        &self,
        v: &'a Value,
        spath: &mut Vec<&'a str>,
        fpath: &mut Path,
        set: &mut FieldSet,
    ) -> Result<(), String> {
        match v {
            Value::Object(m) if !m.is_empty() && !is_atomic_map(self.schema, spath) => {
                for (k, c) in m {
                    self.field(k, c, spath, fpath, set)?;
                }
                Ok(())
            }
            Value::Array(items) => {
                let elems: Option<Vec<PathElement>> = match list_kind(self.schema, spath) {
                    ListKind::Atomic => None,
                    ListKind::Set => items.iter().map(item_value).collect(),
                    ListKind::Map(keys) => {
                        let elems: Option<Vec<PathElement>> =
                            items.iter().map(|i| item_key(i, &keys)).collect();
                        if elems.is_none() && self.strict {
                            return Err(format!(
                                "{}: every item of this list must be a map with the key field {:?}",
                                path_string(fpath),
                                keys[0]
                            ));
                        }
                        elems
                    }
                };
                let Some(elems) = elems else {
                    if self.strict && matches!(list_kind(self.schema, spath), ListKind::Set) {
                        return Err(format!(
                            "{}: items of this list must be scalars",
                            path_string(fpath)
                        ));
                    }
                    set.insert(fpath.clone());
                    return Ok(());
                };
                let unique: BTreeSet<&PathElement> = elems.iter().collect();
                if unique.len() != elems.len() {
                    if self.strict {
                        return Err(format!(
                            "{}: the list has duplicate entries",
                            path_string(fpath)
                        ));
                    }
                    set.insert(fpath.clone());
                    return Ok(());
                }
                for (elem, item) in elems.into_iter().zip(items.iter()) {
                    fpath.push(elem);
                    set.insert(fpath.clone());
                    if let Value::Object(m) = item {
                        for (k, c) in m {
                            self.field(k, c, spath, fpath, set)?;
                        }
                    }
                    fpath.pop();
                }
                Ok(())
            }
            // Scalars, nulls and empty maps are leaves.
            _ => {
                set.insert(fpath.clone());
                Ok(())
            }
        }
    }
}

/// The value at `path` in `root`.
pub(crate) fn lookup<'v>(root: &'v Value, path: &[PathElement]) -> Option<&'v Value> {
    let mut cur = root;
    for elem in path {
        cur = match elem {
            PathElement::Field(f) => cur.get(f)?,
            PathElement::Index(i) => cur.as_array()?.get(*i)?,
            _ => cur
                .as_array()?
                .iter()
                .find(|item| element_matches(item, elem))?,
        };
    }
    Some(cur)
}

fn lookup_mut<'v>(root: &'v mut Value, path: &[PathElement]) -> Option<&'v mut Value> {
    let mut cur = root;
    for elem in path {
        cur = match elem {
            PathElement::Field(f) => cur.get_mut(f)?,
            PathElement::Index(i) => cur.as_array_mut()?.get_mut(*i)?,
            _ => cur
                .as_array_mut()?
                .iter_mut()
                .find(|item| element_matches(item, elem))?,
        };
    }
    Some(cur)
}

/// The maps and lists an update creates: nodes under `added` paths that the old object
/// (as kube-apiserver's typed value of it) does not have, and that are not leaves. The
/// manager that creates one owns it too, which `FieldsV1` shows as `"."` beside its
/// children, as kube-apiserver records an update.
pub(crate) fn created_nodes(
    old: &Value,
    new: &Value,
    added: &FieldSet,
    schema: Option<&dyn PatchSchema>,
) -> FieldSet {
    let mut out = FieldSet::default();
    let mut seen: BTreeSet<&[PathElement]> = BTreeSet::new();
    for path in added.iter() {
        for end in 1..path.len() {
            let node = &path[..end];
            if !matches!(node.last(), Some(PathElement::Field(_))) || !seen.insert(node) {
                continue;
            }
            let is_container = matches!(
                lookup(new, node),
                Some(Value::Object(m)) if !m.is_empty()
            ) || matches!(lookup(new, node), Some(Value::Array(_)));
            if is_container && !exists_in_typed(old, node, schema) {
                out.insert(node.to_vec());
            }
        }
    }
    out
}

/// Whether `path` exists in kube-apiserver's typed value of `obj`: in `obj` itself (even as
/// `null`), or as a field its schema says is present when unset, under a parent that exists.
/// The root and `metadata` (a struct) always exist.
fn exists_in_typed(obj: &Value, path: &[PathElement], schema: Option<&dyn PatchSchema>) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return true;
    };
    if lookup(obj, path).is_some() {
        return true;
    }
    let PathElement::Field(name) = last else {
        return false;
    };
    let names: Vec<&str> = path
        .iter()
        .filter_map(|e| match e {
            PathElement::Field(f) => Some(f.as_str()),
            _ => None,
        })
        .collect();
    let unset_present = name == "metadata" || schema.is_some_and(|s| s.present_when_unset(&names));
    unset_present && exists_in_typed(obj, parent, schema)
}

/// What changed between two versions of an object, as field sets.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) removed: FieldSet,
    pub(crate) modified: FieldSet,
}

pub(crate) fn compare(old: &Value, new: &Value, schema: Option<&dyn PatchSchema>) -> Comparison {
    let old_set = fields_of(old, schema, false).unwrap_or_default();
    let new_set = fields_of(new, schema, false).unwrap_or_default();
    let mut modified = FieldSet::default();
    for path in old_set.intersection(&new_set).iter() {
        if new_set.has_descendants(path) || old_set.has_descendants(path) {
            continue;
        }
        let same = match (lookup(old, path), lookup(new, path)) {
            (Some(a), Some(b)) => json_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        if !same {
            modified.insert(path.clone());
        }
    }
    Comparison {
        added: new_set.difference(&old_set),
        removed: old_set.difference(&new_set),
        modified,
    }
}

/// Removes the fields in `remove` from `obj`, sparing any whose descendants are in
/// `keep`, and the key fields of list items that stay.
pub(crate) fn remove_fields(obj: &mut Value, remove: &FieldSet, keep: &FieldSet) {
    // Deepest paths first, so items go after their own fields were considered.
    for path in remove.iter().rev() {
        if keep.has_descendants(path) {
            continue;
        }
        let Some((last, parent_path)) = path.split_last() else {
            continue;
        };
        if let (PathElement::Field(f), Some(PathElement::Key(k))) = (last, parent_path.last())
            && key_names(k).contains(f)
        {
            continue;
        }
        let Some(parent) = lookup_mut(obj, parent_path) else {
            continue;
        };
        match last {
            PathElement::Field(f) => {
                if let Some(m) = parent.as_object_mut() {
                    m.remove(f);
                }
            }
            PathElement::Index(_) => {}
            elem => {
                if let Some(items) = parent.as_array_mut() {
                    items.retain(|item| !element_matches(item, elem));
                }
            }
        }
    }
}
