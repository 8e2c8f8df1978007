//! The dependencies distributor (`propagateDeps`): a binding whose policy propagates
//! dependencies gets an "attached" binding for each object its template depends on (the
//! ConfigMaps, Secrets, ServiceAccount and PVCs a workload references, as Karmada's
//! interpreter finds them). An attached binding has no placement of its own; its
//! `spec.requiredBy` holds a snapshot `{namespace, name, clusters}` of every binding that
//! needs it, and the renderer sends it to the union of those clusters (and of its own
//! `spec.clusters` if a policy claims the object too).
//!
//! Key: the depending (independent) binding's key. Each key edits only its own entry in the
//! attached bindings, so several workloads can share one ConfigMap.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::cache::State;
use super::keys::{binding_key, prefix, split_key};
use super::write::{Write, upsert};

/// One `requiredBy` entry's identity: the depending binding's namespace and name.
fn entry_id(e: &Value) -> (String, String) {
    let s = |k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (s("namespace"), s("name"))
}

/// The binding key a `requiredBy` entry points at.
pub fn required_by_key(e: &Value) -> String {
    let (ns, name) = entry_id(e);
    if ns.is_empty() {
        format!("{}{name}", prefix::CRB)
    } else {
        format!("{}{ns}/{name}", prefix::RB)
    }
}

/// The attached binding key of each dependency `binding` (with its template) wants, with the
/// dependency's template key; empty unless the binding propagates dependencies.
pub fn wanted(state: &State, binding: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if binding.pointer("/metadata/deletionTimestamp").is_some()
        || binding
            .pointer("/spec/propagateDeps")
            .and_then(Value::as_bool)
            != Some(true)
    {
        return out;
    }
    let Some(tkey) = state.template_key_of_binding(binding) else {
        return out;
    };
    for dep in state.deps_of(&tkey) {
        if *dep == tkey || !state.has_template(dep) {
            continue;
        }
        let Some(res) = state.resource_of_key(dep) else {
            continue;
        };
        if let Some((ns, name)) = split_key(res, dep) {
            out.insert(binding_key(&res.kind, ns, name), dep.clone());
        }
    }
    out
}

/// A new attached binding for the dependency `template`.
fn attached(template: &Value, bkey: &str, required_by: Vec<Value>) -> Value {
    let name = crate::api::meta::name(template);
    let ns = template.pointer("/metadata/namespace").cloned();
    let mut resource = json!({
        "apiVersion": template.get("apiVersion"), "kind": template.get("kind"), "name": name,
        "uid": template.pointer("/metadata/uid"),
        "resourceVersion": template.pointer("/metadata/resourceVersion"),
    });
    let mut md = json!({
        "name": super::keys::key_name(bkey),
        "ownerReferences": [{
            "apiVersion": template.get("apiVersion"), "kind": template.get("kind"), "name": name,
            "uid": template.pointer("/metadata/uid"), "controller": true, "blockOwnerDeletion": true,
        }],
    });
    if let Some(ns) = ns {
        resource["namespace"] = ns.clone();
        md["namespace"] = ns;
    }
    json!({
        "apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding", "metadata": md,
        "spec": {"resource": resource, "requiredBy": required_by},
    })
}

/// `current`'s `requiredBy` with the entry of `owner` replaced by `entry` (or removed), in
/// a stable order.
pub fn merged_required_by(
    current: Option<&Value>,
    owner: &str,
    entry: Option<Value>,
) -> Vec<Value> {
    let mut by: BTreeMap<(String, String), Value> = current
        .and_then(|b| b.pointer("/spec/requiredBy"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| required_by_key(e) != owner)
        .map(|e| (entry_id(e), e.clone()))
        .collect();
    if let Some(e) = entry {
        by.insert(entry_id(&e), e);
    }
    by.into_values().collect()
}

/// What the distributor writes for one depending binding.
pub fn decide(state: &State, key: &str) -> Vec<Write> {
    let Some(res) = state.binding_resource(key) else {
        return vec![];
    };
    let binding = state.binding(key);
    let wanted = binding
        .as_ref()
        .map(|b| wanted(state, b))
        .unwrap_or_default();
    let entry = binding.as_ref().map(|b| {
        json!({
            "namespace": b.pointer("/metadata/namespace").cloned().unwrap_or(json!("")),
            "name": b.pointer("/metadata/name"),
            "clusters": b.pointer("/spec/clusters").cloned().unwrap_or(json!([])),
        })
    });
    let mut keys: BTreeSet<String> = state.attached_to(key).into_iter().collect();
    keys.extend(wanted.keys().cloned());
    let mut out = Vec::new();
    for akey in keys {
        let current = state.binding(&akey);
        let mine = wanted.get(&akey).and(entry.clone());
        let required_by = merged_required_by(current.as_ref(), key, mine);
        match current {
            None => {
                let Some(template) = wanted.get(&akey).and_then(|t| state.template(t)) else {
                    continue;
                };
                out.push(Write::Create {
                    res: res.clone(),
                    object: attached(&template, &akey, required_by),
                });
            }
            Some(cur) => {
                let had = cur
                    .pointer("/spec/requiredBy")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if had == required_by {
                    continue;
                }
                if required_by.is_empty() && cur.pointer("/spec/placement").is_none() {
                    out.push(Write::delete(&res, &cur));
                    continue;
                }
                let mut want = cur.clone();
                if required_by.is_empty() {
                    if let Some(spec) = want.get_mut("spec").and_then(Value::as_object_mut) {
                        spec.remove("requiredBy");
                    }
                } else {
                    want["spec"]["requiredBy"] = Value::Array(required_by);
                }
                out.extend(upsert(&res, want, Some(&cur)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::cache::tests::{put, state};
    use super::*;

    const T: &str = "/apps/deployments/demo/web";
    const T2: &str = "/apps/deployments/demo/api";
    const B: &str = "/work.karmada.io/resourcebindings/demo/web-deployment";
    const B2: &str = "/work.karmada.io/resourcebindings/demo/api-deployment";
    const CM: &str = "/core/configmaps/demo/cfg";
    const A: &str = "/work.karmada.io/resourcebindings/demo/cfg-configmap";

    fn deployment(name: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "demo", "uid": format!("u-{name}")},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx",
                "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}}}})
    }

    fn binding(name: &str, deps: bool, clusters: &[&str]) -> Value {
        let cl: Vec<Value> = clusters
            .iter()
            .map(|c| json!({"name": c, "replicas": 1}))
            .collect();
        json!({"metadata": {"name": format!("{name}-deployment"), "namespace": "demo"},
            "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": name},
                "propagateDeps": deps, "placement": {}, "clusters": cl}})
    }

    fn setup(deps: bool) -> State {
        let mut s = state();
        put(&mut s, T, deployment("web"));
        put(&mut s, B, binding("web", deps, &["m1", "m2"]));
        put(
            &mut s,
            CM,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "demo", "uid": "u-cfg", "resourceVersion": "3"}}),
        );
        s
    }

    fn object(w: &Write) -> Value {
        match w {
            Write::Create { object, .. } | Write::Update { object, .. } => object.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_dependency_gets_an_attached_binding_following_the_clusters() {
        let mut s = setup(true);
        let w = decide(&s, B);
        assert_eq!(w.len(), 1, "{w:?}");
        let a = object(&w[0]);
        assert_eq!(a["metadata"]["name"], "cfg-configmap");
        assert_eq!(a["spec"]["resource"]["kind"], "ConfigMap");
        assert!(
            a["spec"].get("placement").is_none(),
            "no placement of its own"
        );
        assert_eq!(
            a["spec"]["requiredBy"],
            json!([{"namespace": "demo", "name": "web-deployment",
                "clusters": [{"name": "m1", "replicas": 1}, {"name": "m2", "replicas": 1}]}])
        );
        put(&mut s, A, a);
        assert!(decide(&s, B).is_empty(), "nothing rewritten");
    }

    #[test]
    fn two_workloads_share_one_attached_binding_and_the_last_one_out_deletes_it() {
        let mut s = setup(true);
        put(&mut s, T2, deployment("api"));
        put(&mut s, B2, binding("api", true, &["m3"]));
        let a = object(&decide(&s, B)[0]);
        put(&mut s, A, a);
        let a = object(&decide(&s, B2)[0]);
        let names: Vec<&str> = a["spec"]["requiredBy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["api-deployment", "web-deployment"]);
        put(&mut s, A, a);
        // propagateDeps turned off on web: only its entry goes.
        put(&mut s, B, binding("web", false, &["m1", "m2"]));
        let a = object(&decide(&s, B)[0]);
        assert_eq!(a["spec"]["requiredBy"].as_array().unwrap().len(), 1);
        put(&mut s, A, a);
        // The other workload is deleted: the attached binding goes with its last entry.
        s.delete(B2);
        let w = decide(&s, B2);
        assert!(
            matches!(w.as_slice(), [Write::Delete { name, .. }] if name == "cfg-configmap"),
            "{w:?}"
        );
    }

    #[test]
    fn a_claimed_dependency_keeps_its_placement_when_the_last_entry_goes() {
        let mut s = setup(true);
        let mut a = object(&decide(&s, B)[0]);
        a["spec"]["placement"] = json!({});
        put(&mut s, A, a);
        put(&mut s, B, binding("web", false, &["m1"]));
        let a = object(&decide(&s, B)[0]);
        assert!(a["spec"].get("requiredBy").is_none());
        assert_eq!(a["spec"]["placement"], json!({}));
    }

    #[test]
    fn missing_dependencies_and_policies_without_propagate_deps_want_nothing() {
        let mut s = setup(false);
        assert!(decide(&s, B).is_empty());
        put(&mut s, B, binding("web", true, &["m1"]));
        s.delete(CM);
        assert!(decide(&s, B).is_empty());
    }
}
