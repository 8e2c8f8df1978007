#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;

fn deployment_schema() -> &'static dyn PatchSchema {
    builtin_patch_schema("apps", "v1", "Deployment").unwrap()
}

fn pod_schema() -> &'static dyn PatchSchema {
    builtin_patch_schema("", "v1", "Pod").unwrap()
}

fn deployment(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": containers}}}
    })
}

fn template_spec(patch: Value) -> Value {
    json!({"spec": {"template": {"spec": patch}}})
}

fn containers_of(obj: &Value) -> &Value {
    &obj["spec"]["template"]["spec"]["containers"]
}

#[test]
fn strategic_container_lists() {
    let live = deployment(json!([
        {"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}]},
        {"name": "sidecar", "image": "envoy:1"}
    ]));
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "kubectl apply image change touches only that container",
            template_spec(json!({
                "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                "containers": [{"image": "nginx:1.27", "name": "web"}]
            })),
            json!([
                {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "envoy:1"}
            ]),
        ),
        (
            "an order list naming one container keeps the other in place",
            template_spec(json!({
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [{"image": "nginx:1.27", "name": "web"}]
            })),
            json!([
                {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "envoy:1"}
            ]),
        ),
        (
            "delete directive removes one container",
            template_spec(json!({
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [{"$patch": "delete", "name": "sidecar"}]
            })),
            json!([{"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}]}]),
        ),
        (
            "new container without an order list goes first, like the Kubernetes server",
            template_spec(json!({"containers": [{"name": "debug", "image": "busybox"}]})),
            json!([
                {"name": "debug", "image": "busybox"},
                {"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "envoy:1"}
            ]),
        ),
        (
            "order list places a new container between live ones",
            template_spec(json!({
                "$setElementOrder/containers": [{"name": "web"}, {"name": "debug"}, {"name": "sidecar"}],
                "containers": [{"name": "debug", "image": "busybox"}]
            })),
            json!([
                {"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}]},
                {"name": "debug", "image": "busybox"},
                {"name": "sidecar", "image": "envoy:1"}
            ]),
        ),
        (
            "order list reorders live containers",
            template_spec(
                json!({"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]}),
            ),
            json!([
                {"name": "sidecar", "image": "envoy:1"},
                {"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}]}
            ]),
        ),
        (
            "null deletes a field inside a merged container",
            template_spec(json!({"containers": [{"name": "web", "ports": null}]})),
            json!([
                {"name": "web", "image": "nginx:1.26"},
                {"name": "sidecar", "image": "envoy:1"}
            ]),
        ),
        (
            "ports merge by containerPort",
            template_spec(
                json!({"containers": [{"name": "web", "ports": [{"containerPort": 443, "name": "https"}]}]}),
            ),
            json!([
                {"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 443, "name": "https"}, {"containerPort": 80}]},
                {"name": "sidecar", "image": "envoy:1"}
            ]),
        ),
        (
            "replace directive in the list swaps the whole list",
            template_spec(
                json!({"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}),
            ),
            json!([{"name": "only", "image": "x"}]),
        ),
        (
            "an item carrying the replace directive is itself dropped, as in Kubernetes",
            template_spec(
                json!({"containers": [{"$patch": "replace", "name": "web", "image": "httpd"}]}),
            ),
            json!([]),
        ),
    ];
    for (name, patch, want) in cases {
        let got = strategic_merge_patch(&live, &patch, deployment_schema())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(containers_of(&got), &want, "{name}");
        assert_eq!(
            got["spec"]["replicas"],
            json!(2),
            "{name}: untouched fields stay"
        );
    }
}

#[test]
fn strategic_maps_and_scalars() {
    let live = json!({
        "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]},
        "spec": {
            "containers": [{"name": "c", "image": "i", "args": ["--a", "--b"], "env": [{"name": "A", "value": "1"}]}],
            "tolerations": [{"key": "k1"}],
            "nodeSelector": {"disk": "ssd"}
        }
    });
    let cases: Vec<(&str, Value, &str, Value)> = vec![
        (
            "null deletes a label",
            json!({"metadata": {"labels": {"a": null}}}),
            "/metadata/labels",
            json!({"b": "2"}),
        ),
        (
            "null for a missing key is ignored",
            json!({"metadata": {"labels": {"zzz": null}}}),
            "/metadata/labels",
            json!({"a": "1", "b": "2"}),
        ),
        (
            "maps merge",
            json!({"metadata": {"labels": {"c": "3"}}}),
            "/metadata/labels",
            json!({"a": "1", "b": "2", "c": "3"}),
        ),
        (
            "$patch replace on a map",
            json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            "/metadata/labels",
            json!({"c": "3"}),
        ),
        (
            "$patch delete on a map empties it",
            json!({"spec": {"nodeSelector": {"$patch": "delete"}}}),
            "/spec/nodeSelector",
            json!({}),
        ),
        (
            "finalizers merge as a set",
            json!({"metadata": {"finalizers": ["y", "z"]}}),
            "/metadata/finalizers",
            json!(["x", "y", "z"]),
        ),
        (
            "finalizers deletion list",
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
            "/metadata/finalizers",
            json!(["y"]),
        ),
        (
            "finalizers order list with addition and deletion",
            json!({"metadata": {"$setElementOrder/finalizers": ["z", "y"], "finalizers": ["z"], "$deleteFromPrimitiveList/finalizers": ["x"]}}),
            "/metadata/finalizers",
            json!(["z", "y"]),
        ),
        (
            "args are replaced",
            json!({"spec": {"containers": [{"name": "c", "args": ["--c"]}]}}),
            "/spec/containers/0/args",
            json!(["--c"]),
        ),
        (
            "tolerations are replaced",
            json!({"spec": {"tolerations": [{"key": "k2"}]}}),
            "/spec/tolerations",
            json!([{"key": "k2"}]),
        ),
        (
            "env merges by name",
            json!({"spec": {"containers": [{"name": "c", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "9"}]}]}}),
            "/spec/containers/0/env",
            json!([{"name": "B", "value": "2"}, {"name": "A", "value": "9"}]),
        ),
        (
            "env deletion through the parallel order list",
            json!({"spec": {"containers": [{"name": "c", "$setElementOrder/env": [], "env": [{"$patch": "delete", "name": "A"}]}]}}),
            "/spec/containers/0/env",
            json!([]),
        ),
        (
            "new nested value drops its nulls and directives",
            json!({"spec": {"affinity": {"nodeAffinity": {"x": null, "y": 1}}, "volumes": [{"name": "v", "emptyDir": {}, "gone": null}]}}),
            "/spec",
            json!({
                "containers": [{"name": "c", "image": "i", "args": ["--a", "--b"], "env": [{"name": "A", "value": "1"}]}],
                "tolerations": [{"key": "k1"}],
                "nodeSelector": {"disk": "ssd"},
                "affinity": {"nodeAffinity": {"y": 1}},
                "volumes": [{"name": "v", "emptyDir": {}}]
            }),
        ),
        (
            "type change replaces",
            json!({"spec": {"nodeSelector": "oops"}}),
            "/spec/nodeSelector",
            json!("oops"),
        ),
    ];
    for (name, patch, pointer, want) in cases {
        let got = strategic_merge_patch(&live, &patch, pod_schema())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.pointer(pointer), Some(&want), "{name}: {got:#}");
    }
}

#[test]
fn strategic_retain_keys() {
    let live =
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}});
    let got = strategic_merge_patch(&live, &patch, deployment_schema()).unwrap();
    assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));

    // A field outside the retained keys is a malformed patch.
    let bad =
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}});
    assert!(matches!(
        strategic_merge_patch(&live, &bad, deployment_schema()),
        Err(PatchError::Invalid(_))
    ));
}

#[test]
fn strategic_three_way_patch_from_kubectl() {
    // What kubectl sends when the manifest drops an env var and a label and changes the image.
    let live = deployment(json!([{
        "name": "web", "image": "nginx:1.26",
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "resources": {}
    }]));
    let patch = json!({
        "metadata": {"labels": {"app": null}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "B"}],
                "env": [{"$patch": "delete", "name": "A"}],
                "image": "nginx:1.27",
                "name": "web"
            }]
        }}}
    });
    let got = strategic_merge_patch(&live, &patch, deployment_schema()).unwrap();
    assert_eq!(
        containers_of(&got),
        &json!([{"name": "web", "image": "nginx:1.27", "env": [{"name": "B", "value": "2"}], "resources": {}}])
    );
    assert_eq!(got["metadata"]["labels"], json!({}));
}

#[test]
fn strategic_malformed_input() {
    let live = deployment(json!([{"name": "web", "image": "nginx"}]));
    let cases: Vec<(&str, Value)> = vec![
        ("patch is a list", json!([{"op": "add"}])),
        ("patch is a string", json!("x")),
        (
            "unknown $patch in a map",
            json!({"spec": {"$patch": "explode"}}),
        ),
        (
            "unknown $patch in a list item",
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "nope", "name": "x"}]}}}}),
        ),
        (
            "$patch merge in a list",
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}}),
        ),
        (
            "list item without merge key",
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
        ),
        (
            "delete without merge key",
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}}),
        ),
        (
            "scalar where a map item is expected",
            json!({"spec": {"template": {"spec": {"containers": ["web"]}}}}),
        ),
        (
            "list of lists",
            json!({"metadata": {"finalizers": [["a"]]}}),
        ),
        (
            "order list that is not a list",
            json!({"spec": {"template": {"spec": {"$setElementOrder/containers": {"name": "web"}}}}}),
        ),
        (
            "order list with patch list of wrong type",
            json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [], "containers": {"name": "web"}}}}}),
        ),
        (
            "order list contradicting the patch",
            json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "b"}]}}}}),
        ),
        (
            "retainKeys not a list",
            json!({"spec": {"$retainKeys": "x"}}),
        ),
        (
            "deletion list not a list",
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}}),
        ),
        ("unknown directive", json!({"metadata": {"$bogus": 1}})),
        (
            "empty order list field",
            json!({"metadata": {"$setElementOrder/": []}}),
        ),
    ];
    for (name, patch) in cases {
        let got = strategic_merge_patch(&live, &patch, deployment_schema());
        assert!(
            matches!(got, Err(PatchError::Invalid(_))),
            "{name}: {got:?}"
        );
    }
    let not_an_object = strategic_merge_patch(&json!([1]), &json!({}), deployment_schema());
    assert!(matches!(not_an_object, Err(PatchError::Invalid(_))));
}

#[test]
fn strategic_wrong_shapes_in_the_live_object_do_not_panic() {
    let schema = deployment_schema();
    let lives = [
        json!({"spec": {"template": {"spec": {"containers": "not-a-list"}}}}),
        json!({"spec": {"template": {"spec": {"containers": [1, 2]}}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}}),
        json!({"spec": []}),
        json!({"metadata": {"finalizers": [{"a": 1}]}}),
    ];
    let patches = [
        template_spec(json!({"containers": [{"name": "web", "image": "x"}]})),
        template_spec(
            json!({"$setElementOrder/containers": [{"name": "web"}], "containers": [{"name": "web"}]}),
        ),
        json!({"metadata": {"finalizers": ["a"], "$deleteFromPrimitiveList/finalizers": ["b"]}}),
    ];
    for live in &lives {
        for patch in &patches {
            // Either outcome is fine; it must not panic.
            let _ = strategic_merge_patch(live, patch, schema);
        }
    }
    let fixed = strategic_merge_patch(&lives[0], &patches[0], schema).unwrap();
    assert_eq!(
        containers_of(&fixed),
        &json!([{"name": "web", "image": "x"}])
    );
}

#[test]
fn deep_input_is_refused() {
    let mut deep = json!(1);
    for _ in 0..1_000 {
        deep = json!({"a": deep});
    }
    let base = json!({});
    assert!(matches!(
        strategic_merge_patch(&base, &deep, deployment_schema()),
        Err(PatchError::Invalid(_))
    ));
    assert!(matches!(
        merge_patch(&base, &deep),
        Err(PatchError::Invalid(_))
    ));
    assert!(matches!(
        json_patch(&deep, &json!([])),
        Err(PatchError::Invalid(_))
    ));
}

#[test]
fn merge_patch_cases() {
    let live = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1, "list": [1, 2]}});
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "labels merge and null deletes",
            json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"replicas": 1, "list": [1, 2]}}),
        ),
        (
            "lists are replaced",
            json!({"spec": {"list": [3]}}),
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1, "list": [3]}}),
        ),
        (
            "scale",
            json!({"spec": {"replicas": 5}}),
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 5, "list": [1, 2]}}),
        ),
    ];
    for (name, patch, want) in cases {
        assert_eq!(merge_patch(&live, &patch).unwrap(), want, "{name}");
    }
    assert!(matches!(
        merge_patch(&live, &json!([1])),
        Err(PatchError::Invalid(_))
    ));
    assert!(matches!(
        merge_patch(&live, &Value::Null),
        Err(PatchError::Invalid(_))
    ));
}

#[test]
fn json_patch_cases() {
    let live = json!({"metadata": {"name": "x", "resourceVersion": "5"}, "spec": {"replicas": 1}});
    let ok = json_patch(
        &live,
        &json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": "5"},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}
        ]),
    )
    .unwrap();
    assert_eq!(ok["spec"]["replicas"], json!(3));
    assert_eq!(ok["metadata"]["labels"], json!({"a": "b"}));

    let failed_test = json_patch(
        &live,
        &json!([{"op": "test", "path": "/metadata/resourceVersion", "value": "4"}]),
    );
    assert!(
        matches!(&failed_test, Err(PatchError::Conflict(m)) if m.contains("operation 0 (test)")),
        "{failed_test:?}"
    );

    let missing = json_patch(
        &live,
        &json!([{"op": "add", "path": "/spec/replicas", "value": 1}, {"op": "remove", "path": "/nope"}]),
    );
    assert!(
        matches!(&missing, Err(PatchError::Unprocessable(m)) if m.contains("operation 1 (remove)")),
        "{missing:?}"
    );

    // As kube-apiserver's JSON patch: `replace` sets a member an object lacks; a missing
    // parent, or an array index out of range, still fails.
    let set = json_patch(
        &live,
        &json!([{"op": "replace", "path": "/spec/propagateDeps", "value": true}]),
    )
    .unwrap();
    assert_eq!(set["spec"]["propagateDeps"], json!(true));
    for bad in [
        json!([{"op": "replace", "path": "/status/phase", "value": "x"}]),
        json!([{"op": "replace", "path": "/spec/replicas/0", "value": 1}]),
    ] {
        assert!(
            matches!(json_patch(&live, &bad), Err(PatchError::Unprocessable(_))),
            "{bad}"
        );
    }

    for bad in [
        json!({"op": "add"}),
        json!([{"op": "frobnicate", "path": "/a"}]),
        json!([{"op": "add", "path": "/a"}]),
        json!("x"),
    ] {
        assert!(
            matches!(json_patch(&live, &bad), Err(PatchError::Invalid(_))),
            "{bad}"
        );
    }
    assert_eq!(PatchError::Invalid(String::new()).http_status(), 400);
}

#[test]
fn json_patch_copy_bomb_is_refused_before_it_grows() {
    // Each copy doubles the value: 26 copies of 16 bytes would make 1 GiB.
    let base = json!({"a": ["0123456789abcdef"]});
    let ops: Vec<Value> = (0..26)
        .map(|_| json!({"op": "copy", "from": "/a", "path": "/a/-"}))
        .collect();
    let got = json_patch(&base, &Value::Array(ops));
    assert!(
        matches!(&got, Err(PatchError::Unprocessable(m)) if m.contains("accumulated size increase of copy")),
        "{got:?}"
    );
    assert_eq!(got.unwrap_err().http_status(), 422);
    // A few copies stay within the budget.
    let ops: Vec<Value> = (0..4)
        .map(|_| json!({"op": "copy", "from": "/a", "path": "/a/-"}))
        .collect();
    assert!(json_patch(&base, &Value::Array(ops)).is_ok());
}

#[test]
fn json_patch_operation_count_is_bounded() {
    let base = json!({"a": 1});
    let ops = |n: usize| {
        Value::Array(
            (0..n)
                .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
                .collect(),
        )
    };
    assert!(json_patch(&base, &ops(MAX_JSON_PATCH_OPERATIONS)).is_ok());
    let got = json_patch(&base, &ops(MAX_JSON_PATCH_OPERATIONS + 1));
    assert!(matches!(&got, Err(PatchError::TooLarge(_))), "{got:?}");
    assert_eq!(got.unwrap_err().http_status(), 413);
}
