//! Table tests of override rendering.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::image::{ImageRef, override_image};
use super::*;
use crate::types::ImageOverrider;

fn overriders(v: Value) -> Overriders {
    serde_json::from_value(v).unwrap()
}

/// Applies one Overriders block and returns the result or the error text.
fn run(obj: &Value, o: Value) -> Result<Value, String> {
    let mut out = obj.clone();
    apply_overriders(&mut out, &overriders(o))
        .map(|()| out)
        .map_err(|e| e.with_policy("P").to_string())
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "template": {"spec": {
            "initContainers": [{"name": "init", "image": "busybox:1.36"}],
            "containers": [
                {"name": "app", "image": "myapp:1.0.0", "command": ["run"], "args": ["-v", "--x"]},
                {"name": "side", "image": "docker.io/library/nginx:1.19"}
            ]
        }}}
    })
}

#[test]
fn image_refs_parse_and_print() {
    let cases = [
        ("nginx", ("", "nginx", "")),
        ("nginx:1.19", ("", "nginx", "1.19")),
        ("ubuntu/nginx", ("", "ubuntu/nginx", "")),
        (
            "docker.io/library/nginx:1.19",
            ("docker.io", "library/nginx", "1.19"),
        ),
        ("localhost:5000/app:v1", ("localhost:5000", "app", "v1")),
        ("localhost/app", ("localhost", "app", "")),
        (
            "reg.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            (
                "reg.io",
                "a/b",
                "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ),
        ),
    ];
    for (image, (registry, repository, tag)) in cases {
        let r = ImageRef::parse(image);
        assert_eq!(
            (
                r.registry.as_str(),
                r.repository.as_str(),
                r.tag_or_digest.as_str()
            ),
            (registry, repository, tag),
            "{image}"
        );
        assert_eq!(r.to_string(), image, "round trip of {image}");
    }
}

#[test]
fn image_component_operations() {
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let digested = format!("nginx@{digest}");
    type Case<'a> = (&'a str, &'a str, &'a str, &'a str, Result<String, ()>);
    let cases: Vec<Case> = vec![
        (
            "myapp:1.0.0",
            "Registry",
            "add",
            "test-repo",
            Ok("test-repo/myapp:1.0.0".into()),
        ),
        (
            "reg.io/myapp:1",
            "Registry",
            "add",
            "-cn",
            Ok("reg.io-cn/myapp:1".into()),
        ),
        (
            "docker.io/library/nginx:1.19",
            "Registry",
            "replace",
            "mirror.io",
            Ok("mirror.io/library/nginx:1.19".into()),
        ),
        (
            "nginx:1.19",
            "Registry",
            "replace",
            "mirror.io",
            Ok("mirror.io/nginx:1.19".into()),
        ),
        (
            "localhost:5000/app:v1",
            "Registry",
            "remove",
            "",
            Ok("app:v1".into()),
        ),
        // "ubuntu" is not a registry, so there is nothing to remove.
        (
            "ubuntu/nginx",
            "Registry",
            "remove",
            "",
            Ok("ubuntu/nginx".into()),
        ),
        (
            "reg.io/a/b:1",
            "Repository",
            "replace",
            "busybox",
            Ok("reg.io/busybox:1".into()),
        ),
        (
            "reg.io/app:1",
            "Repository",
            "add",
            "-debug",
            Ok("reg.io/app-debug:1".into()),
        ),
        (
            "nginx:1.19",
            "Tag",
            "add",
            "-alpine",
            Ok("nginx:1.19-alpine".into()),
        ),
        ("nginx", "Tag", "add", "latest", Ok("nginx:latest".into())),
        (
            "nginx:1.19",
            "Tag",
            "replace",
            "1.21",
            Ok("nginx:1.21".into()),
        ),
        (
            "nginx:1.19",
            "Tag",
            "replace",
            digest,
            Ok(format!("nginx@{digest}")),
        ),
        (&digested, "Tag", "replace", "2", Ok("nginx:2".into())),
        ("nginx:1.19", "Tag", "remove", "", Ok("nginx".into())),
        ("nginx:1.19", "Digest", "replace", "x", Err(())),
        ("nginx:1.19", "Tag", "append", "x", Err(())),
    ];
    for (image, component, operator, value, want) in cases {
        let o = ImageOverrider {
            predicate: None,
            component: component.into(),
            operator: operator.into(),
            value: value.into(),
        };
        assert_eq!(
            override_image(image, &o).map_err(|_| ()),
            want,
            "{image} {component} {operator} {value}"
        );
    }
}

#[test]
fn image_overrider_targets() {
    let d = deployment();
    // Without a predicate every container is rewritten, init containers are not.
    let got = run(&d, json!({"imageOverrider": [{"component": "Registry", "operator": "replace", "value": "mirror.io"}]})).unwrap();
    assert_eq!(
        got.pointer("/spec/template/spec/containers/0/image")
            .unwrap(),
        "mirror.io/myapp:1.0.0"
    );
    assert_eq!(
        got.pointer("/spec/template/spec/containers/1/image")
            .unwrap(),
        "mirror.io/library/nginx:1.19"
    );
    assert_eq!(
        got.pointer("/spec/template/spec/initContainers/0/image")
            .unwrap(),
        "busybox:1.36"
    );

    // A predicate reaches one image only, init containers included.
    let got = run(&d, json!({"imageOverrider": [{"predicate": {"path": "/spec/template/spec/initContainers/0/image"}, "component": "Tag", "operator": "replace", "value": "1.37"}]})).unwrap();
    assert_eq!(
        got.pointer("/spec/template/spec/initContainers/0/image")
            .unwrap(),
        "busybox:1.37"
    );
    assert_eq!(
        got.pointer("/spec/template/spec/containers/0/image")
            .unwrap(),
        "myapp:1.0.0"
    );

    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let got = run(
        &pod,
        json!({"imageOverrider": [{"component": "Tag", "operator": "add", "value": "1.2"}]}),
    )
    .unwrap();
    assert_eq!(
        got.pointer("/spec/containers/0/image").unwrap(),
        "nginx:1.2"
    );

    // Kinds the default paths do not know are left alone.
    for obj in [
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"image": "x"}}),
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}}}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "empty"}}),
    ] {
        let got = run(&obj, json!({"imageOverrider": [{"component": "Registry", "operator": "add", "value": "r.io"}]})).unwrap();
        assert_eq!(got, obj);
    }

    let errors = [
        (
            json!({"path": "/spec/template/spec/containers/5/image"}),
            "image not found",
        ),
        (
            json!({"path": "/spec/template/spec/containers/0"}),
            "not a string",
        ),
        (json!({"path": "spec/template"}), "JSON pointer"),
    ];
    for (pred, want) in errors {
        let err = run(&d, json!({"imageOverrider": [{"predicate": pred, "component": "Tag", "operator": "replace", "value": "1"}]})).unwrap_err();
        assert!(
            err.contains(want) && err.contains("imageOverrider"),
            "{err}"
        );
    }
}

#[test]
fn command_and_args_overriders() {
    let d = deployment();
    let c0 = "/spec/template/spec/containers/0";
    let c1 = "/spec/template/spec/containers/1";
    let cases: Vec<(Value, &str, Value)> = vec![
        (
            json!({"commandOverrider": [{"containerName": "app", "operator": "add", "value": ["--debug"]}]}),
            "/spec/template/spec/containers/0/command",
            json!(["run", "--debug"]),
        ),
        (
            json!({"commandOverrider": [{"containerName": "side", "operator": "add", "value": ["nginx", "-g"]}]}),
            "/spec/template/spec/containers/1/command",
            json!(["nginx", "-g"]),
        ),
        (
            json!({"argsOverrider": [{"containerName": "app", "operator": "remove", "value": ["-v", "--absent"]}]}),
            "/spec/template/spec/containers/0/args",
            json!(["--x"]),
        ),
        (
            json!({"argsOverrider": [{"containerName": "side", "operator": "remove", "value": ["-v"]}]}),
            "/spec/template/spec/containers/1/args",
            json!([]),
        ),
        (
            json!({"argsOverrider": [{"containerName": "app", "operator": "add", "value": ["a"]}, {"containerName": "app", "operator": "add", "value": ["b"]}]}),
            "/spec/template/spec/containers/0/args",
            json!(["-v", "--x", "a", "b"]),
        ),
    ];
    for (o, ptr, want) in cases {
        let got = run(&d, o.clone()).unwrap();
        assert_eq!(got.pointer(ptr).unwrap(), &want, "{o}");
    }
    // Other containers are untouched; an unknown container is a no-op.
    let got = run(
        &d,
        json!({"commandOverrider": [{"containerName": "app", "operator": "add", "value": ["x"]}]}),
    )
    .unwrap();
    assert_eq!(got.pointer(c1), d.pointer(c1));
    let got = run(
        &d,
        json!({"commandOverrider": [{"containerName": "nope", "operator": "add", "value": ["x"]}]}),
    )
    .unwrap();
    assert_eq!(got, d);
    let got = run(
        &d,
        json!({"commandOverrider": [{"containerName": "init", "operator": "add", "value": ["x"]}]}),
    )
    .unwrap();
    assert_eq!(got, d, "init containers are not matched");

    let err = run(&d, json!({"commandOverrider": [{"containerName": "app", "operator": "replace", "value": ["x"]}]})).unwrap_err();
    assert!(err.contains("unknown operator"), "{err}");
    let mut bad = d.clone();
    bad.pointer_mut(c0).unwrap()["command"] = json!("run");
    let err = run(
        &bad,
        json!({"commandOverrider": [{"containerName": "app", "operator": "add", "value": ["x"]}]}),
    )
    .unwrap_err();
    assert!(err.contains("not a list"), "{err}");
}

#[test]
fn label_and_annotation_overriders() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}});
    let cases = [
        (
            json!({"labelsOverrider": [{"operator": "add", "value": {"a": "9", "c": "3"}}]}),
            json!({"a": "9", "b": "2", "c": "3"}),
        ),
        (
            json!({"labelsOverrider": [{"operator": "replace", "value": {"a": "9", "c": "3"}}]}),
            json!({"a": "9", "b": "2"}),
        ),
        (
            json!({"labelsOverrider": [{"operator": "remove", "value": {"a": "", "c": ""}}]}),
            json!({"b": "2"}),
        ),
        (
            json!({"labelsOverrider": [{"operator": "add", "value": {"x": "1"}}, {"operator": "remove", "value": {"x": ""}}]}),
            json!({"a": "1", "b": "2"}),
        ),
    ];
    for (o, want) in cases {
        let got = run(&obj, o.clone()).unwrap();
        assert_eq!(got.pointer("/metadata/labels").unwrap(), &want, "{o}");
    }
    // Annotations are created by add, and not by replace/remove.
    let got = run(
        &obj,
        json!({"annotationsOverrider": [{"operator": "add", "value": {"k": "v"}}]}),
    )
    .unwrap();
    assert_eq!(
        got.pointer("/metadata/annotations").unwrap(),
        &json!({"k": "v"})
    );
    for op in ["replace", "remove"] {
        let got = run(
            &obj,
            json!({"annotationsOverrider": [{"operator": op, "value": {"k": "v"}}]}),
        )
        .unwrap();
        assert_eq!(got, obj, "{op}");
    }
    // The pod template's labels are not the object's.
    let d = deployment();
    let got = run(
        &d,
        json!({"labelsOverrider": [{"operator": "add", "value": {"tier": "x"}}]}),
    )
    .unwrap();
    assert_eq!(got.pointer("/metadata/labels/tier").unwrap(), "x");
    assert!(got.pointer("/spec/template/metadata").is_none());

    let err = run(
        &obj,
        json!({"labelsOverrider": [{"operator": "merge", "value": {"k": "v"}}]}),
    )
    .unwrap_err();
    assert!(
        err.contains("labelsOverrider") && err.contains("unknown operator"),
        "{err}"
    );
    let bad = json!({"kind": "ConfigMap", "metadata": {"labels": "oops"}});
    assert!(
        run(
            &bad,
            json!({"labelsOverrider": [{"operator": "add", "value": {"k": "v"}}]})
        )
        .is_err()
    );
}

#[test]
fn field_overrider_json_and_yaml() {
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {
            "config.json": "{\"db\":{\"host\":\"a\",\"port\":5432},\"tags\":[\"x\"]}",
            "config.yaml": "db:\n  host: a\n  port: 5432\nname: app\n",
            "plain": "not: [valid",
        },
        "binaryData": {"n": 5}
    });
    let got = run(
        &cm,
        json!({"fieldOverrider": [{"fieldPath": "/data/config.json", "json": [
            {"subPath": "/db/host", "operator": "replace", "value": "b"},
            {"subPath": "/tags/-", "operator": "add", "value": "y"},
            {"subPath": "/db/port", "operator": "remove"}
        ]}]}),
    )
    .unwrap();
    let doc: Value =
        serde_json::from_str(got.pointer("/data/config.json").unwrap().as_str().unwrap()).unwrap();
    assert_eq!(doc, json!({"db": {"host": "b"}, "tags": ["x", "y"]}));

    let got = run(
        &cm,
        json!({"fieldOverrider": [{"fieldPath": "/data/config.yaml", "yaml": [
            {"subPath": "/db/host", "operator": "replace", "value": "b"},
            {"subPath": "/db/tls", "operator": "add", "value": {"enabled": true}}
        ]}]}),
    )
    .unwrap();
    let text = got.pointer("/data/config.yaml").unwrap().as_str().unwrap();
    let doc: Value = serde_saphyr::from_str(text).unwrap();
    // Value types survive the round trip (the port stays a number).
    assert_eq!(
        doc,
        json!({"db": {"host": "b", "port": 5432, "tls": {"enabled": true}}, "name": "app"})
    );

    // A key with '/' in it is escaped as ~1 in the field path.
    let escaped = json!({"kind": "ConfigMap", "data": {"a/b.json": "{}"}});
    let got = run(&escaped, json!({"fieldOverrider": [{"fieldPath": "/data/a~1b.json", "json": [{"subPath": "/k", "operator": "add", "value": 1}]}]})).unwrap();
    assert_eq!(got.pointer("/data/a~1b.json").unwrap(), "{\"k\":1}");

    let errors = [
        (
            json!({"fieldPath": "/data/missing", "json": [{"subPath": "/a", "operator": "add", "value": 1}]}),
            "field not found",
        ),
        (
            json!({"fieldPath": "/binaryData/n", "json": [{"subPath": "/a", "operator": "add", "value": 1}]}),
            "not a string",
        ),
        (
            json!({"fieldPath": "/data/plain", "yaml": [{"subPath": "/a", "operator": "add", "value": 1}]}),
            "not valid YAML",
        ),
        (
            json!({"fieldPath": "/data/config.yaml", "json": [{"subPath": "/a", "operator": "add", "value": 1}]}),
            "not valid JSON",
        ),
        (
            json!({"fieldPath": "/data/config.json", "json": [{"subPath": "/nope/x", "operator": "add", "value": 1}]}),
            "/data/config.json#/nope/x",
        ),
        (
            json!({"fieldPath": "/data/config.json", "json": [{"subPath": "/db/zz", "operator": "remove"}]}),
            "not found",
        ),
        (
            json!({"fieldPath": "/data/config.json", "json": [{"subPath": "/db/host", "operator": "replace"}]}),
            "value is required",
        ),
        (
            json!({"fieldPath": "data/config.json", "json": [{"subPath": "/a", "operator": "add", "value": 1}]}),
            "JSON pointer",
        ),
        (
            json!({"fieldPath": "/data/config.json", "json": [{"subPath": "/a", "operator": "add", "value": 1}], "yaml": [{"subPath": "/a", "operator": "add", "value": 1}]}),
            "only one of",
        ),
    ];
    for (f, want) in errors {
        let err = run(&cm, json!({"fieldOverrider": [f.clone()]})).unwrap_err();
        assert!(
            err.contains(want) && err.starts_with("P: fieldOverrider"),
            "{f}: {err}"
        );
    }
}

#[test]
fn plaintext_overrider() {
    let d = deployment();
    let got = run(
        &d,
        json!({"plaintext": [
            {"path": "/spec/replicas", "operator": "replace", "value": 7},
            {"path": "/metadata/labels/zone", "operator": "add", "value": "z1"},
            {"path": "/spec/template/spec/containers/1", "operator": "remove"}
        ]}),
    )
    .unwrap();
    assert_eq!(got.pointer("/spec/replicas").unwrap(), 7);
    assert_eq!(got.pointer("/metadata/labels/zone").unwrap(), "z1");
    assert_eq!(
        got.pointer("/spec/template/spec/containers")
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let err = run(
        &d,
        json!({"plaintext": [{"path": "/spec/paused", "operator": "remove"}]}),
    )
    .unwrap_err();
    assert!(err.starts_with("P: plaintext /spec/paused:"), "{err}");
    assert!(
        run(
            &d,
            json!({"plaintext": [{"path": "/spec/strategy", "operator": "replace", "value": {}}]})
        )
        .is_err()
    );
    assert!(run(&d, json!({"plaintext": [{"path": "/spec/template/spec/containers/9/image", "operator": "replace", "value": "x"}]})).is_err());
}

#[test]
fn overriders_run_in_fixed_order() {
    // plaintext runs last, so it sees the image the image overrider wrote and wins over labels.
    let d = deployment();
    let got = run(
        &d,
        json!({
            "plaintext": [
                {"path": "/metadata/labels/app", "operator": "replace", "value": "from-plaintext"},
                {"path": "/metadata/annotations/img", "operator": "add", "value": "set"}
            ],
            "labelsOverrider": [{"operator": "add", "value": {"app": "from-labels"}}],
            "annotationsOverrider": [{"operator": "add", "value": {"img": "x"}}],
            "imageOverrider": [{"component": "Tag", "operator": "replace", "value": "2"}]
        }),
    )
    .unwrap();
    assert_eq!(
        got.pointer("/metadata/labels/app").unwrap(),
        "from-plaintext"
    );
    assert_eq!(got.pointer("/metadata/annotations/img").unwrap(), "set");
    assert_eq!(
        got.pointer("/spec/template/spec/containers/0/image")
            .unwrap(),
        "myapp:2"
    );
}

// ---- policies ----

fn cluster(name: &str, labels: Value, region: &str) -> Value {
    json!({
        "apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
        "metadata": {"name": name, "labels": labels},
        "spec": {"region": region, "provider": "aws", "zones": ["z1"]}
    })
}

fn label_rule(target: Value, key: &str, value: &str) -> Value {
    json!({"targetCluster": target, "overriders": {"labelsOverrider": [{"operator": "add", "value": {key: value}}]}})
}

fn cop(name: &str, selectors: Value, rules: Value) -> Value {
    json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "ClusterOverridePolicy",
        "metadata": {"name": name}, "spec": {"resourceSelectors": selectors, "overrideRules": rules}})
}

fn op(ns: &str, name: &str, selectors: Value, rules: Value) -> Value {
    json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "OverridePolicy",
        "metadata": {"name": name, "namespace": ns}, "spec": {"resourceSelectors": selectors, "overrideRules": rules}})
}

#[test]
fn target_cluster_matching() {
    let d = deployment();
    let m1 = cluster("m1", json!({"env": "prod"}), "eu");
    let m2 = cluster("m2", json!({"env": "dev"}), "us");
    let targets = [
        (Value::Null, true, true),
        (json!({}), true, true),
        (json!({"clusterNames": ["m1"]}), true, false),
        (json!({"exclude": ["m1"]}), false, true),
        (
            json!({"labelSelector": {"matchLabels": {"env": "dev"}}}),
            false,
            true,
        ),
        (
            json!({"labelSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]}}),
            true,
            true,
        ),
        (
            json!({"fieldSelector": {"matchExpressions": [{"key": "region", "operator": "In", "values": ["eu"]}]}}),
            true,
            false,
        ),
        (
            json!({"fieldSelector": {"matchExpressions": [{"key": "region", "operator": "NotIn", "values": ["eu"]}]}}),
            false,
            true,
        ),
        (
            json!({"fieldSelector": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}}),
            false,
            false,
        ),
        (
            json!({"clusterNames": ["m1", "m2"], "labelSelector": {"matchLabels": {"env": "prod"}}}),
            true,
            false,
        ),
    ];
    for (target, on_m1, on_m2) in targets {
        let rule = if target.is_null() {
            json!({"overriders": {"labelsOverrider": [{"operator": "add", "value": {"hit": "yes"}}]}})
        } else {
            label_rule(target.clone(), "hit", "yes")
        };
        let policy = op("demo", "op1", json!([]), json!([rule]));
        for (c, want) in [(&m1, on_m1), (&m2, on_m2)] {
            let r = apply_overrides(&d, c, &[], std::slice::from_ref(&policy)).unwrap();
            let hit = r.manifest.pointer("/metadata/labels/hit").is_some();
            assert_eq!(hit, want, "{target} on {}", c["metadata"]["name"]);
            let applied: Vec<String> = if want {
                vec!["OverridePolicy/demo/op1".into()]
            } else {
                vec![]
            };
            assert_eq!(r.applied, applied);
        }
    }
}

#[test]
fn policy_order_and_selection() {
    let d = deployment();
    let m1 = cluster("m1", json!({}), "eu");
    let kind_sel = json!([{"apiVersion": "apps/v1", "kind": "Deployment"}]);
    let label_sel = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {"matchLabels": {"app": "web"}}}]);
    let name_sel = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}]);
    let other_sel = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "db"}]);
    let set = |v: &str| json!([label_rule(Value::Null, "winner", v)]);

    // Within a group: empty selectors, kind-only, label, name; ties by name. COPs before OPs.
    let cops = vec![
        cop("z-name", name_sel.clone(), set("cop-name")),
        cop("a-kind", kind_sel.clone(), set("cop-kind")),
        cop("all", json!([]), set("cop-all")),
        cop("b-other", other_sel.clone(), set("cop-other")),
    ];
    let ops = vec![
        op("demo", "b-label", label_sel.clone(), set("op-label")),
        op("demo", "a-name", name_sel.clone(), set("op-name-a")),
        op("demo", "c-name", name_sel.clone(), set("op-name-c")),
        op("demo", "kind", kind_sel.clone(), set("op-kind")),
        op("other", "elsewhere", json!([]), set("op-other-ns")),
    ];
    let r = apply_overrides(&d, &m1, &cops, &ops).unwrap();
    assert_eq!(
        r.applied,
        vec![
            "ClusterOverridePolicy/all",
            "ClusterOverridePolicy/a-kind",
            "ClusterOverridePolicy/z-name",
            "OverridePolicy/demo/kind",
            "OverridePolicy/demo/b-label",
            "OverridePolicy/demo/a-name",
            "OverridePolicy/demo/c-name",
        ]
    );
    assert_eq!(
        r.manifest.pointer("/metadata/labels/winner").unwrap(),
        "op-name-c"
    );

    // Without OPs the most specific COP wins.
    let r = apply_overrides(&d, &m1, &cops, &[]).unwrap();
    assert_eq!(
        r.manifest.pointer("/metadata/labels/winner").unwrap(),
        "cop-name"
    );

    // Input order does not matter.
    let mut rev = cops.clone();
    rev.reverse();
    let mut rev_ops = ops.clone();
    rev_ops.reverse();
    assert_eq!(
        apply_overrides(&d, &m1, &rev, &rev_ops).unwrap(),
        apply_overrides(&d, &m1, &cops, &ops).unwrap()
    );

    // Cluster-scoped templates get only COPs.
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}});
    let r = apply_overrides(
        &ns,
        &m1,
        &[cop("all", json!([]), set("cop-all"))],
        &[op("demo", "x", json!([]), set("op"))],
    )
    .unwrap();
    assert_eq!(r.applied, vec!["ClusterOverridePolicy/all"]);

    // A selector namespace restricts a COP.
    let scoped = cop(
        "scoped",
        json!([{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "prod"}]),
        set("x"),
    );
    assert!(
        apply_overrides(&d, &m1, &[scoped], &[])
            .unwrap()
            .applied
            .is_empty()
    );
}

#[test]
fn rules_within_a_policy_run_in_order() {
    let d = deployment();
    let m1 = cluster("m1", json!({"env": "prod"}), "eu");
    let policy = op(
        "demo",
        "p",
        json!([]),
        json!([
            label_rule(json!({"clusterNames": ["m1"]}), "v", "first"),
            label_rule(json!({"clusterNames": ["m2"]}), "v", "not-m1"),
            label_rule(
                json!({"labelSelector": {"matchLabels": {"env": "prod"}}}),
                "v",
                "third"
            ),
        ]),
    );
    let r = apply_overrides(&d, &m1, &[], &[policy]).unwrap();
    assert_eq!(r.manifest.pointer("/metadata/labels/v").unwrap(), "third");
    assert_eq!(r.applied, vec!["OverridePolicy/demo/p"]);
}

#[test]
fn legacy_form_deleting_policies_and_errors() {
    let d = deployment();
    let m1 = cluster("m1", json!({}), "eu");
    let m2 = cluster("m2", json!({}), "us");
    let legacy = json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "OverridePolicy",
    "metadata": {"name": "old", "namespace": "demo"},
    "spec": {
        "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
        "targetCluster": {"clusterNames": ["m1"]},
        "overriders": {"plaintext": [{"path": "/spec/replicas", "operator": "replace", "value": 1}]}
    }});
    let r = apply_overrides(&d, &m1, &[], std::slice::from_ref(&legacy)).unwrap();
    assert_eq!(r.manifest.pointer("/spec/replicas").unwrap(), 1);
    assert_eq!(r.applied, vec!["OverridePolicy/demo/old"]);
    let r = apply_overrides(&d, &m2, &[], std::slice::from_ref(&legacy)).unwrap();
    assert_eq!(r.manifest, d);
    assert!(r.applied.is_empty());

    // Policies being deleted are skipped.
    let mut deleting = legacy.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    let r = apply_overrides(&d, &m1, &[], &[deleting]).unwrap();
    assert_eq!(r.manifest, d);

    // A failing overrider names the policy and the path.
    let bad = op(
        "demo",
        "broken",
        json!([]),
        json!([{"overriders": {"plaintext": [{"path": "/spec/missing/x", "operator": "replace", "value": 1}]}}]),
    );
    let err = apply_overrides(&d, &m1, &[], &[bad])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("OverridePolicy/demo/broken: plaintext /spec/missing/x:"),
        "{err}"
    );
    let bad = cop(
        "cbroken",
        json!([]),
        json!([{"overriders": {"imageOverrider": [{"component": "Tag", "operator": "bogus", "value": "1"}]}}]),
    );
    let err = apply_overrides(&d, &m1, &[bad], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("ClusterOverridePolicy/cbroken: imageOverrider"),
        "{err}"
    );

    // Undecodable policies and clusters are errors, not panics.
    let bad =
        json!({"metadata": {"name": "x", "namespace": "demo"}, "spec": {"overrideRules": "nope"}});
    let err = apply_overrides(&d, &m1, &[], &[bad])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("OverridePolicy/demo/x: invalid policy"),
        "{err}"
    );
    let err = apply_overrides(&d, &json!({"spec": {"zones": 5}}), &[], &[]).unwrap_err();
    assert!(matches!(err, OverrideError::InvalidCluster(_)));

    // A policy without spec, or with no rules, changes nothing and is not recorded.
    let empty = json!({"metadata": {"name": "e", "namespace": "demo"}});
    let r = apply_overrides(&d, &m1, &[], &[empty]).unwrap();
    assert_eq!(
        r,
        Rendered {
            manifest: d.clone(),
            applied: vec![]
        }
    );
}

#[test]
fn yaml_round_trip_keeps_scalar_types() {
    let text = "port: \"5432\"\nenabled: \"true\"\nempty: \"\"\nnull_value: null\nmulti: |\n  line one\n  line two\nlist:\n  - 1\n  - \"2\"\nnested:\n  a: 1.5\n";
    let cm = json!({"kind": "ConfigMap", "data": {"c.yaml": text}});
    let got = run(
        &cm,
        json!({"fieldOverrider": [{"fieldPath": "/data/c.yaml", "yaml": [
            {"subPath": "/added", "operator": "add", "value": "0755"}
        ]}]}),
    )
    .unwrap();
    let out = got.pointer("/data/c.yaml").unwrap().as_str().unwrap();
    let doc: Value = serde_saphyr::from_str(out).unwrap();
    assert_eq!(
        doc,
        json!({"port": "5432", "enabled": "true", "empty": "", "null_value": null,
            "multi": "line one\nline two\n", "list": [1, "2"], "nested": {"a": 1.5}, "added": "0755"}),
        "{out}"
    );
}
