//! Regenerates `builtin.json.gz` from the official Kubernetes OpenAPI v3 spec files
//! (`api/openapi-spec/v3` of the `k8s.io/kubernetes` module). Run through `generate.sh`.
//!
//! Keeps, per served built-in kind, the official path items of the paths the hub serves (see
//! `resource_paths`), the closure of the schemas they reference, every apimachinery schema
//! (for Karmada kinds and custom resources), and the official parameters by name. Content
//! types the hub does not speak (protobuf, CBOR) are dropped.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::{META, collect_refs, resource_paths, schema_closure};
use crate::registry::Registry;

/// Content types the hub does not serve.
fn unsupported_content_type(t: &str) -> bool {
    t.contains("protobuf") || t.contains("cbor")
}

/// Drops unsupported content types from every `content` map.
fn strip_content_types(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(c)) = m.get_mut("content") {
                c.retain(|k, _| !unsupported_content_type(k));
            }
            m.values_mut().for_each(strip_content_types);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_content_types),
        _ => {}
    }
}

/// Collects parameters by name from path items (first seen wins).
fn collect_parameters(item: &Value, out: &mut BTreeMap<String, Value>) {
    let ops = item.as_object().into_iter().flat_map(|m| m.values());
    let lists = std::iter::once(item)
        .chain(ops)
        .filter_map(|o| o.get("parameters")?.as_array());
    for p in lists.flatten() {
        if let Some(name) = p
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| *n != "name")
        {
            out.entry(name.to_owned()).or_insert_with(|| p.clone());
        }
    }
}

fn read_spec(dir: &Path, file: &str) -> Value {
    let path = dir.join(file);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `apis/apps/v1` -> `apis__apps__v1_openapi.json`.
fn spec_file(gv: &str) -> String {
    format!("{}_openapi.json", gv.replace('/', "__"))
}

#[test]
#[ignore = "needs the Kubernetes spec files; run hub/src/api/openapi/generate.sh"]
fn regenerate_builtin_data() {
    let dir =
        std::env::var("K8S_OPENAPI_V3_DIR").expect("K8S_OPENAPI_V3_DIR names api/openapi-spec/v3");
    let dir = Path::new(&dir);
    let source = std::env::var("K8S_SOURCE").unwrap_or_default();

    // Served built-ins by group-version document.
    let mut by_gv: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for r in Registry::new().all().into_iter().filter(|r| r.is_builtin()) {
        by_gv
            .entry(super::gv_path(&r.group, &r.version))
            .or_default()
            .push(r);
    }

    let mut paths = BTreeMap::new();
    let mut parameters = BTreeMap::new();
    let mut schemas = BTreeMap::new();
    for (gv, resources) in &by_gv {
        let spec = read_spec(dir, &spec_file(gv));
        let all_paths = spec["paths"].as_object().expect("paths");
        let all_schemas = spec["components"]["schemas"].as_object().expect("schemas");
        let mut roots = Vec::new();
        for r in resources {
            for (_, p) in resource_paths(r) {
                let mut item = all_paths
                    .get(&p)
                    .unwrap_or_else(|| panic!("{p} not in {gv}"))
                    .clone();
                strip_content_types(&mut item);
                collect_refs(&item, &mut roots);
                collect_parameters(&item, &mut parameters);
                paths.insert(p, item);
            }
        }
        for (name, s) in schema_closure(roots, &[all_schemas]) {
            schemas.entry(name).or_insert(s);
        }
    }
    // Every apimachinery schema of every spec file, for kinds built around ObjectMeta & co.
    let mut spec_files: Vec<String> = std::fs::read_dir(dir)
        .expect("spec dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with("_openapi.json"))
        .collect();
    spec_files.sort_by_key(|f| (f != "api__v1_openapi.json", f.clone()));
    for f in &spec_files {
        let spec = read_spec(dir, f);
        let Some(all) = spec
            .pointer("/components/schemas")
            .and_then(Value::as_object)
        else {
            continue;
        };
        let roots = all
            .keys()
            .filter(|k| k.starts_with("io.k8s.apimachinery."))
            .cloned()
            .collect();
        for (name, s) in schema_closure(roots, &[all]) {
            schemas.entry(name).or_insert(s);
        }
    }
    // Meta kinds list only core/v1 here; documents add their own group-version.
    for (name, s) in schemas.iter_mut() {
        if let (Some(kind), Some(ext)) = (
            name.strip_prefix(META),
            s.get_mut("x-kubernetes-group-version-kind"),
        ) {
            *ext = json!([{"group": "", "kind": kind, "version": "v1"}]);
        }
    }
    let mut dangling = Vec::new();
    collect_refs(
        &Value::Object(schemas.clone().into_iter().collect()),
        &mut dangling,
    );
    collect_refs(
        &Value::Object(paths.clone().into_iter().collect()),
        &mut dangling,
    );
    dangling.retain(|r| !schemas.contains_key(r));
    assert!(dangling.is_empty(), "dangling refs: {dangling:?}");

    let data = json!({
        "source": source,
        "paths": paths.into_iter().collect::<Map<_, _>>(),
        "parameters": parameters.into_iter().collect::<Map<_, _>>(),
        "schemas": schemas.into_iter().collect::<Map<_, _>>(),
    });
    let raw = serde_json::to_vec(&data).expect("serialize");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/openapi/builtin.json.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&raw).expect("compress");
    let bytes = gz.finish().expect("compress");
    std::fs::write(&out, &bytes).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    println!(
        "{}: {} bytes ({} uncompressed)",
        out.display(),
        bytes.len(),
        raw.len()
    );
}
