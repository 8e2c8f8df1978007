//! Fuzz targets for the decoders and appliers of untrusted input in this crate: label and
//! field selectors, JSON merge patch, JSON patch, strategic merge patch and server-side apply
//! (with the managedFields it reads back). Each replays `tests/fuzz-corpus/<target>/` and then
//! fuzzes for a few seconds (see `fuzz/mod.rs`); the requirement is no panic and no stack
//! overflow on any input.
#![allow(missing_docs, clippy::unwrap_used)]

mod fuzz;

use std::path::PathBuf;

use flotilla_apimachinery::apply::{server_side_apply, update_managed_fields};
use flotilla_apimachinery::patch::{
    PatchSchema, builtin_patch_schema, json_patch, merge_patch, strategic_merge_patch,
};
use flotilla_apimachinery::selector::{FieldSelector, LabelSelector};
use fuzz::{
    Rng, Target, Vocabulary, json_bytes, json_file, mutate_bytes, mutate_json, random_value,
};
use serde_json::{Map, Value, json};

/// The crates' depth limit is 200 levels; generated documents reach a little past it.
const DEEP: usize = 205;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

const VOCAB: Vocabulary = Vocabulary {
    keys: &[
        "apiVersion",
        "kind",
        "metadata",
        "name",
        "namespace",
        "labels",
        "annotations",
        "finalizers",
        "ownerReferences",
        "uid",
        "managedFields",
        "manager",
        "operation",
        "fieldsType",
        "fieldsV1",
        "time",
        "subresource",
        "f:metadata",
        "f:spec",
        "f:replicas",
        "f:containers",
        "f:name",
        "f:image",
        "f:finalizers",
        "k:{\"name\":\"web\"}",
        "k:{\"containerPort\":80,\"protocol\":\"TCP\"}",
        "k:{\"name\":",
        "v:\"a\"",
        "v:1",
        "i:0",
        ".",
        "spec",
        "replicas",
        "selector",
        "matchLabels",
        "matchExpressions",
        "key",
        "operator",
        "values",
        "template",
        "containers",
        "initContainers",
        "image",
        "ports",
        "containerPort",
        "protocol",
        "env",
        "value",
        "volumes",
        "volumeMounts",
        "mountPath",
        "tolerations",
        "status",
        "conditions",
        "type",
        "data",
        "$patch",
        "$retainKeys",
        "$setElementOrder/containers",
        "$setElementOrder/finalizers",
        "$deleteFromPrimitiveList/finalizers",
        "$deleteFromPrimitiveList/containers",
        "op",
        "path",
        "from",
        "kubectl.kubernetes.io/last-applied-configuration",
        "app",
        "",
    ],
    strings: &[
        "replace",
        "delete",
        "merge",
        "add",
        "remove",
        "move",
        "copy",
        "test",
        "",
        "/",
        "/spec",
        "/spec/replicas",
        "/metadata/labels/app",
        "/spec/template/spec/containers/0",
        "/spec/template/spec/containers/-",
        "/spec/template/spec/containers/1/image",
        "/metadata/finalizers/0",
        "/~1",
        "/~0",
        "/a~2",
        "/0",
        "/-",
        "/99999999999999999999",
        "web",
        "nginx",
        "nginx:1.27",
        "Apply",
        "Update",
        "FieldsV1",
        "apps/v1",
        "v1",
        "Deployment",
        "ConfigMap",
        "In",
        "NotIn",
        "Exists",
        "DoesNotExist",
        "Gt",
        "status",
        "scale",
        "kubectl",
        "2026-01-01T00:00:00Z",
        "TCP",
        "k:{\"name\":\"web\"}",
        "{\"spec\":{\"replicas\":1}}",
        "{\"metadata\":{\"labels\":{\"app\":\"web\"}}}",
        "{",
        "example.com/team",
        "a/b/c",
        "\u{0}",
        "é",
    ],
};

/// Label and field selector text.
const SELECTOR_TOKENS: &[&[u8]] = &[
    b"=",
    b"==",
    b"!=",
    b"!",
    b",",
    b" in ",
    b" notin ",
    b"(",
    b")",
    b">",
    b"<",
    b" ",
    b"\\",
    b"\\,",
    b"\\=",
    b"\\!",
    b"app",
    b"example.com/",
    b"a.b-c_d",
    b"metadata.name",
    b"metadata.namespace",
    b"status.phase",
    b"spec.nodeName",
    b"-1",
    b"9223372036854775808",
    b"\xc3\xa9",
    b"\xe2\x80\x8b",
];

fn text_target(name: &'static str) -> Target<String> {
    Target {
        name,
        corpus_root: corpus(),
        decode: |b| String::from_utf8_lossy(b).into_owned(),
        encode: |s| s.as_bytes().to_vec(),
        generate: |rng, seeds| {
            let base = rng.pick(seeds);
            let donor = rng.pick(seeds);
            let bytes = mutate_bytes(rng, base.as_bytes(), donor.as_bytes(), SELECTOR_TOKENS);
            String::from_utf8_lossy(&bytes).into_owned()
        },
    }
}

/// Labels that the selector's own words may match.
fn labels_for(s: &str) -> Map<String, Value> {
    let words: Vec<&str> = s
        .split(|c: char| " ,()!=<>".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    let mut labels = Map::new();
    for pair in words.chunks(2) {
        let value = pair.get(1).copied().unwrap_or("");
        labels.insert(pair[0].to_owned(), Value::String(value.to_owned()));
    }
    labels
}

#[test]
fn fuzz_label_selector() {
    text_target("label_selector").run(|s| {
        if let Ok(sel) = LabelSelector::parse(s) {
            sel.matches(&labels_for(s));
            sel.matches(&Map::new());
            sel.is_empty();
            return true;
        }
        false
    });
}

#[test]
fn fuzz_field_selector() {
    text_target("field_selector").run(|s| {
        if let Ok(sel) = FieldSelector::parse(s) {
            let labels = Value::Object(labels_for(s));
            let obj = json!({
                "metadata": {"name": "web", "namespace": "default", "labels": labels},
                "status": {"phase": "Running"},
                "spec": {"nodeName": 3},
            });
            sel.matches(&obj);
            sel.matches(&Value::Null);
            sel.exact_name();
            return true;
        }
        false
    });
}

fn json_target(name: &'static str) -> Target<Value> {
    Target {
        name,
        corpus_root: corpus(),
        decode: json_file,
        encode: json_bytes,
        generate: |rng, seeds| {
            let base = rng.pick(seeds);
            let donors: Vec<&Value> = seeds.iter().collect();
            mutate_json(rng, base, &donors, &VOCAB, DEEP)
        },
    }
}

#[test]
fn fuzz_label_selector_json() {
    json_target("label_selector_json").run(|v| {
        if let Ok(sel) = LabelSelector::from_label_selector_json(v) {
            let labels = v
                .get("matchLabels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            sel.matches(&labels);
            sel.matches(&Map::new());
            return true;
        }
        false
    });
}

/// A patch case: `{"target": ..., "patch": ...}`, plus `group` and `kind` for the schema.
fn field<'a>(case: &'a Value, name: &str) -> &'a Value {
    case.get(name).unwrap_or(&Value::Null)
}

fn schema_of(case: &Value) -> Option<&'static dyn PatchSchema> {
    let group = field(case, "group").as_str().unwrap_or("apps");
    let kind = field(case, "kind").as_str().unwrap_or("Deployment");
    builtin_patch_schema(group, "v1", kind)
}

#[test]
fn fuzz_merge_patch() {
    json_target("merge_patch").run(|case| {
        let (target, patch) = (field(case, "target"), field(case, "patch"));
        if let Ok(once) = merge_patch(target, patch) {
            // RFC 7396: applying the same merge patch again changes nothing.
            let twice = merge_patch(&once, patch).unwrap();
            assert_eq!(once, twice, "merge patch is not idempotent");
            return true;
        }
        false
    });
}

/// A well-formed JSON patch operation over the vocabulary's paths.
fn random_operation(rng: &mut Rng) -> Value {
    let op = *rng.pick(&["add", "remove", "replace", "move", "copy", "test"]);
    let mut m = Map::new();
    m.insert("op".into(), json!(op));
    m.insert("path".into(), json!(rng.pick(PATHS)));
    if matches!(op, "move" | "copy") {
        m.insert("from".into(), json!(rng.pick(PATHS)));
    }
    if matches!(op, "add" | "replace" | "test") {
        m.insert("value".into(), random_value(rng, &VOCAB, 3));
    }
    Value::Object(m)
}

const PATHS: &[&str] = &[
    "",
    "/",
    "/metadata",
    "/metadata/labels",
    "/metadata/labels/app",
    "/metadata/finalizers/0",
    "/metadata/finalizers/-",
    "/spec/replicas",
    "/spec/template/spec/containers/0",
    "/spec/template/spec/containers/1/image",
    "/spec/template/spec/containers/-",
    "/a~0b/c~1d/1",
    "/x/y/z",
    "/0",
    "/-",
    "/01",
    "/18446744073709551616",
];

#[test]
fn fuzz_json_patch() {
    let mut target = json_target("json_patch");
    target.generate = |rng, seeds| {
        let base = rng.pick(seeds);
        let mut case = if rng.one_in(2) {
            base.clone()
        } else {
            let donors: Vec<&Value> = seeds.iter().collect();
            mutate_json(rng, base, &donors, &VOCAB, DEEP)
        };
        // Well-formed operations reach the patch logic instead of the parser.
        if let Some(Value::Array(ops)) = case.get_mut("patch") {
            for _ in 0..=rng.below(3) {
                let op = random_operation(rng);
                if ops.is_empty() || rng.one_in(2) {
                    ops.insert(rng.below(ops.len() + 1), op);
                } else {
                    let i = rng.below(ops.len());
                    ops[i] = op;
                }
            }
        }
        case
    };
    target.run(|case| json_patch(field(case, "target"), field(case, "patch")).is_ok());
}

#[test]
fn fuzz_strategic_merge_patch() {
    json_target("strategic_merge_patch").run(|case| {
        let schema =
            schema_of(case).unwrap_or(builtin_patch_schema("apps", "v1", "Deployment").unwrap());
        strategic_merge_patch(field(case, "target"), field(case, "patch"), schema).is_ok()
    });
}

const T1: &str = "2026-01-01T00:00:00Z";
const T2: &str = "2026-01-01T00:00:01Z";

#[test]
fn fuzz_server_side_apply() {
    json_target("server_side_apply").run(|case| {
        let schema = if field(case, "schemaless").as_bool() == Some(true) {
            None
        } else {
            schema_of(case)
        };
        let live = Some(field(case, "live")).filter(|v| !v.is_null());
        let applied = field(case, "applied");
        let manager = field(case, "manager").as_str().unwrap_or("kubectl");
        let force = field(case, "force").as_bool().unwrap_or(false);
        let _ = update_managed_fields(live, applied, "fuzz-update", T1, schema);
        if let Some(live) = live {
            let _ = update_managed_fields(Some(applied), live, "fuzz-update", T1, schema);
        }
        let Ok(merged) = server_side_apply(live, applied, manager, force, T1, schema) else {
            return false;
        };
        // The result's managedFields are read back by the next writes.
        let _ = server_side_apply(Some(&merged), applied, "other", false, T2, schema);
        let _ = server_side_apply(Some(&merged), applied, manager, false, T2, schema);
        if let Some(live) = live {
            let _ = server_side_apply(Some(&merged), live, "other", true, T2, schema);
        }
        let _ = update_managed_fields(Some(&merged), applied, "fuzz-update", T2, schema);
        true
    });
}
