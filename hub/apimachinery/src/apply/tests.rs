#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::fieldset::FieldSet;
use super::*;
use crate::patch::builtin_patch_schema;

const T1: &str = "2025-01-01T00:00:00Z";
const T2: &str = "2025-01-02T00:00:00Z";
const T3: &str = "2025-01-03T00:00:00Z";

fn deploy_schema() -> Option<&'static dyn PatchSchema> {
    builtin_patch_schema("apps", "v1", "Deployment")
}

fn deployment(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn entries(obj: &Value) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn owns(obj: &Value, manager: &str, operation: &str, pointer: &str) -> bool {
    entry(obj, manager, operation).is_some_and(|e| e["fieldsV1"].pointer(pointer).is_some())
}

fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    now: &str,
) -> Result<Value, ApplyError> {
    server_side_apply(live, applied, manager, false, now, deploy_schema())
}

#[test]
fn apply_creates_with_fields_v1() {
    let applied = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}
    });
    let got = apply(None, &applied, "kubectl", T1).unwrap();
    assert_eq!(
        got["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}
                }}}}
            }
        }])
    );
    let mut without = got.clone();
    without["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    assert_eq!(without, applied);
}

#[test]
fn conflicts_between_appliers_and_force() {
    let a = apply(
        None,
        &deployment(json!({"replicas": 2, "paused": false})),
        "a",
        T1,
    )
    .unwrap();

    // Same value: shared ownership, no conflict.
    let shared = apply(Some(&a), &deployment(json!({"replicas": 2})), "b", T2).unwrap();
    assert!(owns(&shared, "a", "Apply", "/f:spec/f:replicas"));
    assert!(owns(&shared, "b", "Apply", "/f:spec/f:replicas"));

    // Different value: conflict naming the owner and the field.
    let err = apply(Some(&a), &deployment(json!({"replicas": 3})), "b", T2).unwrap_err();
    let ApplyError::Conflict(conflicts) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(conflicts.len(), 1);
    assert_eq!(
        (conflicts[0].manager.as_str(), conflicts[0].field.as_str()),
        ("a", ".spec.replicas")
    );
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "a": .spec.replicas"#
    );

    // Force takes the field over.
    let forced = server_side_apply(
        Some(&a),
        &deployment(json!({"replicas": 3})),
        "b",
        true,
        T2,
        deploy_schema(),
    )
    .unwrap();
    assert_eq!(forced["spec"]["replicas"], json!(3));
    assert!(owns(&forced, "b", "Apply", "/f:spec/f:replicas"));
    assert!(!owns(&forced, "a", "Apply", "/f:spec/f:replicas"));
    assert!(owns(&forced, "a", "Apply", "/f:spec/f:paused"));

    // Dropping a shared field keeps it while another manager still owns it.
    let dropped = apply(
        Some(&shared),
        &deployment(json!({"paused": false})),
        "a",
        T3,
    )
    .unwrap();
    assert_eq!(dropped["spec"]["replicas"], json!(2));
    assert!(!owns(&dropped, "a", "Apply", "/f:spec/f:replicas"));
    assert!(owns(&dropped, "b", "Apply", "/f:spec/f:replicas"));
}

#[test]
fn several_conflicts_are_grouped_by_manager() {
    let a = apply(
        None,
        &deployment(json!({"replicas": 2, "paused": false, "minReadySeconds": 1})),
        "a",
        T1,
    )
    .unwrap();
    let err = apply(
        Some(&a),
        &deployment(json!({"replicas": 3, "paused": true})),
        "b",
        T2,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.paused\n- .spec.replicas"
    );
}

#[test]
fn reapply_removes_dropped_fields() {
    let first = deployment(
        json!({"replicas": 2, "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
        "spec": {"containers": [{"name": "web", "image": "nginx", "args": ["-x"]}, {"name": "side", "image": "envoy"}]}}}),
    );
    let a = apply(None, &first, "a", T1).unwrap();
    let second = deployment(json!({"template": {"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}));
    let got = apply(Some(&a), &second, "a", T2).unwrap();
    assert_eq!(got["spec"].get("replicas"), None);
    assert_eq!(
        got["spec"]["template"]["metadata"]["labels"],
        json!({"app": "web"})
    );
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web", "image": "nginx"}])
    );
    assert_eq!(entries(&got).len(), 1);
    assert_eq!(entries(&got)[0]["time"], json!(T2));

    // Re-applying the same thing changes nothing, not even the time.
    let again = apply(Some(&got), &second, "a", T3).unwrap();
    assert_eq!(again, got);
}

#[test]
fn associative_lists_are_owned_per_item() {
    let a = apply(
        None,
        &deployment(
            json!({"template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}),
        ),
        "a",
        T1,
    )
    .unwrap();
    let b = apply(
        Some(&a),
        &deployment(
            json!({"template": {"spec": {"containers": [{"name": "side", "image": "envoy"}]}}}),
        ),
        "b",
        T2,
    )
    .unwrap();
    let names: Vec<&str> = b["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "side"]);
    assert!(owns(
        &b,
        "b",
        "Apply",
        "/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"side\"}/f:image"
    ));
    assert!(!owns(
        &b,
        "b",
        "Apply",
        "/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"web\"}"
    ));

    // b changing a's container image conflicts on that path.
    let err = apply(
        Some(&b),
        &deployment(
            json!({"template": {"spec": {"containers": [{"name": "web", "image": "httpd"}]}}}),
        ),
        "b",
        T3,
    )
    .unwrap_err();
    let ApplyError::Conflict(c) = err else {
        panic!()
    };
    assert_eq!(
        c[0].field,
        r#".spec.template.spec.containers[name="web"].image"#
    );

    // a dropping its container removes it but leaves b's.
    let a2 = apply(Some(&b), &deployment(json!({"replicas": 1})), "a", T3).unwrap();
    assert_eq!(
        a2["spec"]["template"]["spec"]["containers"],
        json!([{"name": "side", "image": "envoy"}])
    );
}

#[test]
fn set_lists_and_compound_keys() {
    let cm = |finalizers: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": finalizers}});
    let schema = builtin_patch_schema("", "v1", "ConfigMap");
    let a = server_side_apply(None, &cm(json!(["a.io/x"])), "a", false, T1, schema).unwrap();
    let b = server_side_apply(Some(&a), &cm(json!(["b.io/y"])), "b", false, T2, schema).unwrap();
    assert_eq!(b["metadata"]["finalizers"], json!(["a.io/x", "b.io/y"]));
    assert!(owns(
        &b,
        "b",
        "Apply",
        "/f:metadata/f:finalizers/v:\"b.io~1y\""
    ));
    let a2 = server_side_apply(Some(&b), &cm(json!([])), "a", false, T3, schema).unwrap();
    assert_eq!(a2["metadata"]["finalizers"], json!(["b.io/y"]));

    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}});
    let got = server_side_apply(
        None,
        &svc,
        "a",
        false,
        T1,
        builtin_patch_schema("", "v1", "Service"),
    )
    .unwrap();
    let ports = &entries(&got)[0]["fieldsV1"]["f:spec"]["f:ports"];
    assert!(
        ports.get(r#"k:{"port":53,"protocol":"UDP"}"#).is_some(),
        "{ports}"
    );
    assert!(
        ports.get(r#"k:{"port":53,"protocol":"TCP"}"#).is_some(),
        "{ports}"
    );
}

#[test]
fn without_schema_lists_are_atomic() {
    let cr = |items: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"items": items, "size": 1}});
    let a = server_side_apply(None, &cr(json!([{"name": "x"}])), "a", false, T1, None).unwrap();
    assert_eq!(
        entries(&a)[0]["fieldsV1"],
        json!({"f:spec": {"f:items": {}, "f:size": {}}})
    );
    let err =
        server_side_apply(Some(&a), &cr(json!([{"name": "y"}])), "b", false, T2, None).unwrap_err();
    assert!(
        matches!(&err, ApplyError::Conflict(c) if c[0].field == ".spec.items"),
        "{err:?}"
    );
}

#[test]
fn kubectl_scale_then_server_side_apply() {
    // Client-side apply created the object, kubectl scale changed the replicas, then
    // `kubectl apply --server-side` applies a different replica count.
    let applied_config = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},"spec":{"replicas":2,"template":{"spec":{"containers":[{"image":"nginx:1.26","name":"web"}]}}}}"#;
    let mut created = deployment(
        json!({"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}),
    );
    created["metadata"]["annotations"] = json!({LAST_APPLIED: applied_config});
    created["metadata"]["managedFields"] = update_managed_fields(
        None,
        &created,
        "kubectl-client-side-apply",
        T1,
        deploy_schema(),
    );
    assert!(owns(
        &created,
        "kubectl-client-side-apply",
        "Update",
        "/f:spec/f:replicas"
    ));

    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(5);
    scaled["metadata"]["managedFields"] =
        update_managed_fields(Some(&created), &scaled, "kubectl", T2, deploy_schema());
    assert!(owns(&scaled, "kubectl", "Update", "/f:spec/f:replicas"));
    assert!(!owns(
        &scaled,
        "kubectl-client-side-apply",
        "Update",
        "/f:spec/f:replicas"
    ));

    let intent = deployment(
        json!({"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}),
    );
    let err = apply(Some(&scaled), &intent, "kubectl", T3).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas"#
    );
    let ApplyError::Conflict(c) = &err else {
        panic!()
    };
    assert_eq!(c[0].message(), r#"conflict with "kubectl" using apps/v1"#);

    // Another manager also conflicts on the image that client-side apply set.
    let err = apply(Some(&scaled), &intent, "helm", T3).unwrap_err();
    let ApplyError::Conflict(c) = &err else {
        panic!()
    };
    let fields: Vec<(&str, &str)> = c
        .iter()
        .map(|c| (c.manager.as_str(), c.field.as_str()))
        .collect();
    assert!(
        fields.contains(&(
            "kubectl-client-side-apply",
            r#".spec.template.spec.containers[name="web"].image"#
        )),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("kubectl", ".spec.replicas")),
        "{fields:?}"
    );

    // Without the replica change kubectl takes over the client-side fields and
    // refreshes the annotation.
    let intent = deployment(
        json!({"replicas": 5, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}),
    );
    let got = apply(Some(&scaled), &intent, "kubectl", T3).unwrap();
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["image"],
        json!("nginx:1.27")
    );
    assert!(owns(&got, "kubectl", "Apply", "/f:spec/f:replicas"));
    let annotation: Value = serde_json::from_str(
        got["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(annotation, intent);
}

#[test]
fn first_apply_over_unmanaged_object() {
    let live = deployment(json!({"replicas": 2}));
    let err = apply(Some(&live), &deployment(json!({"replicas": 3})), "a", T1).unwrap_err();
    assert!(
        matches!(&err, ApplyError::Conflict(c) if c[0].manager == "before-first-apply"),
        "{err:?}"
    );
    let ok = apply(
        Some(&live),
        &deployment(json!({"replicas": 2, "paused": true})),
        "a",
        T1,
    )
    .unwrap();
    assert!(owns(
        &ok,
        "before-first-apply",
        "Update",
        "/f:spec/f:replicas"
    ));
    assert!(owns(&ok, "a", "Apply", "/f:spec/f:paused"));
}

#[test]
fn apply_refuses_malformed_input() {
    let live = deployment(json!({"replicas": 1}));
    let cases: Vec<(&str, Value, &str)> = vec![
        ("list body", json!([1]), "a"),
        ("string body", json!("x"), "a"),
        (
            "managedFields in body",
            json!({"metadata": {"managedFields": [{"manager": "x"}]}}),
            "a",
        ),
        ("metadata not a map", json!({"metadata": []}), "a"),
        ("no manager", deployment(json!({})), ""),
        (
            "container without name",
            deployment(json!({"template": {"spec": {"containers": [{"image": "x"}]}}})),
            "a",
        ),
        (
            "container that is a string",
            deployment(json!({"template": {"spec": {"containers": ["x"]}}})),
            "a",
        ),
        (
            "duplicate keys",
            deployment(
                json!({"template": {"spec": {"containers": [{"name": "x"}, {"name": "x"}]}}}),
            ),
            "a",
        ),
        (
            "map in a set list",
            json!({"metadata": {"finalizers": [{"a": 1}]}}),
            "a",
        ),
        ("kind change", json!({"kind": "StatefulSet"}), "a"),
    ];
    for (name, applied, manager) in cases {
        let got = server_side_apply(Some(&live), &applied, manager, false, T1, deploy_schema());
        assert!(
            matches!(got, Err(ApplyError::Invalid(_))),
            "{name}: {got:?}"
        );
    }
    assert!(matches!(
        server_side_apply(
            Some(&json!([])),
            &deployment(json!({})),
            "a",
            false,
            T1,
            None
        ),
        Err(ApplyError::Invalid(_))
    ));
}

#[test]
fn wrong_shapes_in_the_live_object_do_not_panic() {
    let lives = [
        json!({"metadata": {"managedFields": "garbage"}, "spec": []}),
        json!({"metadata": {"managedFields": [{"manager": "x", "operation": "Apply", "fieldsV1": {"f:spec": 1}}]}}),
        json!({"metadata": {"managedFields": [{"manager": "x", "operation": "Apply", "fieldsV1": {"k:notjson": {}}}]}}),
        json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}, 5, {"name": "a"}, {"name": "a"}]}}}}),
        json!({"spec": {"template": "x"}}),
    ];
    let applied = deployment(
        json!({"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "y"}]}}}),
    );
    for live in &lives {
        let _ = server_side_apply(Some(live), &applied, "a", true, T1, deploy_schema());
        let _ = update_managed_fields(Some(live), &applied, "a", T1, deploy_schema());
        let _ = update_managed_fields(Some(&applied), live, "a", T1, deploy_schema());
    }
}

#[test]
fn update_tracks_changes() {
    let created = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v", "k2": "v2"}});
    let schema = builtin_patch_schema("", "v1", "ConfigMap");
    let mut obj = created.clone();
    obj["metadata"]["managedFields"] =
        update_managed_fields(None, &created, "kubectl-create", T1, schema);
    assert_eq!(
        obj["metadata"]["managedFields"],
        json!([{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:k": {}, "f:k2": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}}}])
    );

    // kubectl label changes a label: it moves to kubectl-label; removing k2 drops it everywhere.
    let mut edited = obj.clone();
    edited["metadata"]["labels"]["a"] = json!("2");
    edited["data"].as_object_mut().unwrap().remove("k2");
    let managed = update_managed_fields(Some(&obj), &edited, "kubectl-label", T2, schema);
    assert_eq!(
        managed,
        json!([
            {"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {}}}},
            {"manager": "kubectl-label", "operation": "Update", "apiVersion": "v1", "time": T2, "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}}}}}
        ])
    );

    // A write that changes nothing leaves everything as it was.
    edited["metadata"]["managedFields"] = managed.clone();
    assert_eq!(
        update_managed_fields(Some(&edited), &edited, "x", T3, schema),
        managed
    );

    // Writing [{}] resets ownership; [] too.
    let mut reset = edited.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    assert_eq!(
        update_managed_fields(Some(&edited), &reset, "x", T3, schema),
        json!([])
    );

    // A status write records its subresource and cannot edit managedFields.
    let mut status = edited.clone();
    status["status"] = json!({"phase": "x"});
    status["metadata"]["managedFields"] = json!([]);
    let managed = update_managed_fields_for_subresource(
        Some(&edited),
        &status,
        "ctrl",
        Some("status"),
        T3,
        schema,
    );
    let last = managed.as_array().unwrap().last().unwrap();
    assert_eq!(
        (last["manager"].clone(), last["subresource"].clone()),
        (json!("ctrl"), json!("status"))
    );
    assert_eq!(managed.as_array().unwrap().len(), 3);
}

#[test]
fn fields_v1_round_trip() {
    let v = json!({
        "f:metadata": {"f:finalizers": {".": {}, "v:\"a\"": {}}, "f:labels": {"f:app": {}}},
        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}, "f:list": {"i:0": {}}}
    });
    let set = FieldSet::from_fields_v1(&v).unwrap();
    assert_eq!(set.to_fields_v1(), v);
    for bad in [
        json!([]),
        json!({"x:y": {}}),
        json!({"f:a": 1}),
        json!({"k:[1]": {}}),
        json!({"i:x": {}}),
    ] {
        assert!(FieldSet::from_fields_v1(&bad).is_err(), "{bad}");
    }
}

#[test]
fn deep_input_is_refused() {
    let mut deep = json!(1);
    for _ in 0..1_000 {
        deep = json!({"a": deep});
    }
    let applied = deployment(deep.clone());
    assert!(matches!(
        apply(None, &applied, "a", T1),
        Err(ApplyError::Invalid(_))
    ));
    let live = apply(None, &deployment(json!({"replicas": 1})), "a", T1).unwrap();
    assert_eq!(
        update_managed_fields(Some(&live), &applied, "b", T2, deploy_schema()),
        live["metadata"]["managedFields"]
    );
}

/// Label selectors and selector maps are atomic, as in kube-apiserver: owned as one field
/// (`f:selector: {}`), and an apply that drops a key of one replaces the whole map.
#[test]
fn selectors_are_atomic() {
    let first = deployment(json!({
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"spec": {"nodeSelector": {"disk": "ssd", "zone": "a"}}}
    }));
    let live = apply(None, &first, "helm", T1).unwrap();
    let fields = &entry(&live, "helm", "Apply").unwrap()["fieldsV1"];
    assert_eq!(fields["f:spec"]["f:selector"], json!({}), "{fields}");
    assert_eq!(
        fields["f:spec"]["f:template"]["f:spec"]["f:nodeSelector"],
        json!({}),
        "{fields}"
    );
    let second = deployment(json!({
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"spec": {"nodeSelector": {"disk": "ssd"}}}
    }));
    let live = apply(Some(&live), &second, "helm", T2).unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["nodeSelector"],
        json!({"disk": "ssd"})
    );
    // A ConfigMap's data is not a selector: owned key by key (and as a map it created).
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let managed = update_managed_fields(
        None,
        &cm,
        "m",
        T1,
        builtin_patch_schema("", "v1", "ConfigMap"),
    );
    assert_eq!(
        managed[0]["fieldsV1"]["f:data"],
        json!({".": {}, "f:a": {}})
    );
}

/// An update owns the maps and lists it creates, as kube-apiserver records it: `"."` for a
/// new label map, a new rollingUpdate and a new container's ports, none for the fields the
/// typed object always has (`spec`, `template`, `strategy`, `containers`).
#[test]
fn updates_own_the_maps_they_create() {
    let created = deployment(json!({
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
        "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}
    }));
    let managed = update_managed_fields(None, &created, "py", T1, deploy_schema());
    let spec = &managed[0]["fieldsV1"]["f:spec"];
    assert_eq!(spec["f:selector"], json!({}), "{spec}");
    assert!(
        spec.get(".").is_none() && spec["f:template"].get(".").is_none(),
        "{spec}"
    );
    assert!(spec["f:strategy"].get(".").is_none(), "{spec}");
    assert_eq!(
        spec["f:strategy"]["f:rollingUpdate"],
        json!({".": {}, "f:maxSurge": {}})
    );
    assert_eq!(
        spec["f:template"]["f:metadata"]["f:labels"],
        json!({".": {}, "f:app": {}})
    );
    let containers = &spec["f:template"]["f:spec"]["f:containers"];
    assert!(containers.get(".").is_none(), "{containers}");
    let web = &containers["k:{\"name\":\"web\"}"];
    assert!(
        web.get(".").is_some() && web["f:ports"].get(".").is_some(),
        "{web}"
    );
    // Without a schema (custom resources), only metadata is always there.
    let cr = json!({"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"size": 1}});
    let managed = update_managed_fields(None, &cr, "m", T1, None);
    assert_eq!(
        managed[0]["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}}, "f:spec": {".": {}, "f:size": {}}})
    );
}
