#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Read;

use prost_reflect::prost::Message;
use serde_json::json;

use super::*;

fn schema() -> &'static Schema {
    SCHEMA.as_ref().unwrap()
}

/// Builds a Kubernetes protobuf body: the object given in protobuf JSON (protobuf field names,
/// bytes in base64), wrapped in `runtime.Unknown` after the magic, like client-go does.
fn encode(api_version: &str, kind: &str, object: Value) -> Vec<u8> {
    let desc = schema().kind_message(api_version, kind).unwrap();
    let msg = DynamicMessage::deserialize(desc, object).unwrap();
    envelope(api_version, kind, &msg.encode_to_vec(), "")
}

fn envelope(api_version: &str, kind: &str, raw: &[u8], encoding: &str) -> Vec<u8> {
    let unknown = json!({
        "typeMeta": {"apiVersion": api_version, "kind": kind},
        "raw": base64::engine::general_purpose::STANDARD.encode(raw),
        "contentEncoding": encoding,
        "contentType": "",
    });
    let msg = DynamicMessage::deserialize(schema().message(UNKNOWN).unwrap(), unknown).unwrap();
    let mut out = MAGIC.to_vec();
    out.extend(msg.encode_to_vec());
    out
}

/// The ObjectMeta Go's marshaller writes for a new object: every non-pointer field, zero or not.
fn go_meta(name: &str, namespace: &str) -> Value {
    json!({
        "name": name, "generateName": "", "namespace": namespace, "selfLink": "", "uid": "",
        "resourceVersion": "", "generation": "0", "creationTimestamp": {},
    })
}

#[test]
fn the_fields_file_names_real_fields_and_every_custom_type_is_handled() {
    let s = schema();
    for name in CUSTOM_JSON {
        assert!(s.pool.get_message_by_name(name).is_some(), "{name}");
    }
    let mut seen = 0;
    for (message, (custom, rules)) in &s.fields {
        let Some(desc) = s.pool.get_message_by_name(message) else {
            continue;
        };
        seen += 1;
        if *custom {
            assert!(
                CUSTOM_JSON.contains(&message.as_str()),
                "{message} marshals itself"
            );
        }
        for field in rules.keys() {
            assert!(
                desc.get_field_by_name(field).is_some(),
                "{message} has no field {field}"
            );
        }
    }
    assert!(seen > 250, "only {seen} messages matched");
}

/// The JSON names a message's fields produce, with inlined fields flattened.
fn json_names(s: &Schema, desc: &MessageDescriptor) -> BTreeSet<String> {
    let rules = s.fields.get(desc.full_name()).map(|(_, r)| r);
    let mut out = BTreeSet::new();
    for f in desc.fields() {
        let rule = rules
            .and_then(|r| r.get(f.name()))
            .cloned()
            .unwrap_or_default();
        if rule.skip {
            continue;
        }
        if rule.inline {
            let inner = f.kind();
            out.extend(json_names(s, inner.as_message().unwrap()));
        } else {
            out.insert(rule.json.unwrap_or_else(|| f.name().to_owned()));
        }
    }
    out
}

#[test]
fn json_names_match_the_official_openapi_schemas() {
    let mut raw = vec![];
    flate2::read::GzDecoder::new(&include_bytes!("../openapi/builtin.json.gz")[..])
        .read_to_end(&mut raw)
        .unwrap();
    let data: Value = serde_json::from_slice(&raw).unwrap();
    let s = schema();
    let mut compared = 0;
    for (name, def) in data["schemas"].as_object().unwrap() {
        let Some(props) = def.get("properties").and_then(Value::as_object) else {
            continue;
        };
        let proto = format!(
            "k8s.io.{}",
            name.trim_start_matches("io.k8s.")
                .replace("apiextensions-apiserver", "apiextensions_apiserver")
        );
        let Some(desc) = s.pool.get_message_by_name(&proto) else {
            continue;
        };
        if CUSTOM_JSON.contains(&proto.as_str()) {
            continue;
        }
        compared += 1;
        let ours = json_names(s, &desc);
        let official: BTreeSet<String> = props
            .keys()
            // apiVersion and kind of a kind come from the envelope, not from fields.
            .filter(|k| desc.get_field_by_name(k).is_some() || (*k != "apiVersion" && *k != "kind"))
            .cloned()
            .collect();
        assert_eq!(ours, official, "{proto}");
    }
    assert!(compared > 200, "only {compared} schemas compared");
}

/// Bodies kubectl v1.37 sent for `kubectl create ...` (from `-v=10`), and what the same command
/// prints with `--dry-run=client -o json` (nulls dropped).
#[test]
fn real_kubectl_bodies_decode_to_the_json_kubectl_would_send() {
    let cases = [
        (
            "create deployment capd --image=nginx:1.25 --replicas=3 --port=8080",
            concat!(
                "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412c2010a210a04636170641200",
                "1a0022002a003200380042005a0b0a03617070120463617064128e010803120d0a0b0a0361707012",
                "04636170641a730a1d0a0012001a0022002a003200380042005a0b0a036170701204636170641252",
                "12340a056e67696e78120a6e67696e783a312e32352a00320b0a00100018903f22002a0042006a00",
                "7200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2",
                "010022020a00280038001a0c0800100018002000280038001a002200",
            ),
            json!({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"capd","labels":{"app":"capd"}},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"capd"}},"template":{"metadata":{"labels":{"app":"capd"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.25","ports":[{"containerPort":8080}],"resources":{}}]}},"strategy":{}},"status":{}}),
        ),
        (
            "create service clusterip caps --tcp=80:8080 --tcp=443:https",
            concat!(
                "6b3873000a0d0a0276311207536572766963651290010a210a046361707312001a0022002a003200",
                "380042005a0b0a0361707012046361707312670a1b0a0738302d3830383012035443501850220708",
                "0010903f1a0028000a220a093434332d6874747073120354435018bb03220b080110001a05687474",
                "70732800120b0a036170701204636170731a002209436c757374657249503a00420052005a006000",
                "68001a020a001a002200",
            ),
            json!({"kind":"Service","apiVersion":"v1","metadata":{"name":"caps","labels":{"app":"caps"}},"spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080},{"name":"443-https","protocol":"TCP","port":443,"targetPort":"https"}],"selector":{"app":"caps"},"type":"ClusterIP"},"status":{"loadBalancer":{}}}),
        ),
        (
            "create secret generic capsec --from-literal=k='v a l'",
            concat!(
                "6b3873000a0c0a027631120653656372657412260a160a0663617073656312001a0022002a003200",
                "38004200120a0a016b1205762061206c1a001a002200",
            ),
            json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":"capsec"},"data":{"k":"diBhIGw="}}),
        ),
        (
            "create pdb cappdb --selector=app=web --max-unavailable=1",
            concat!(
                "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e427564676574123c",
                "0a160a0663617070646212001a0022002a003200380042001216120c0a0a0a036170701203776562",
                "1a06080010011a001a0a080018002000280030001a002200",
            ),
            json!({"kind":"PodDisruptionBudget","apiVersion":"policy/v1","metadata":{"name":"cappdb"},"spec":{"selector":{"matchLabels":{"app":"web"}},"maxUnavailable":1},"status":{"disruptionsAllowed":0,"currentHealthy":0,"desiredHealthy":0,"expectedPods":0}}),
        ),
    ];
    for (command, hex_body, want) in cases {
        let body = hex::decode(hex_body).unwrap();
        assert_eq!(decode_request(&body).unwrap(), want, "{command}");
    }
}

#[test]
fn configmap_with_go_zero_fields() {
    let body = encode(
        "v1",
        "ConfigMap",
        json!({
            "metadata": go_meta("cm", ""),
            "data": {"b": "2", "a": "1"},
            "binaryData": {"bin": "AAEC"},
        }),
    );
    assert_eq!(
        decode_request(&body).unwrap(),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm"},
            "data": {"a": "1", "b": "2"},
            "binaryData": {"bin": "AAEC"},
        })
    );
}

#[test]
fn secret_bytes_are_base64() {
    let body = encode(
        "v1",
        "Secret",
        json!({
            "metadata": go_meta("s", "team"),
            "data": {"password": base64::engine::general_purpose::STANDARD.encode(b"p\x00ss\xff")},
            "type": "Opaque",
        }),
    );
    let v = decode_request(&body).unwrap();
    assert_eq!(v["metadata"], json!({"name": "s", "namespace": "team"}));
    assert_eq!(v["data"]["password"], "cABzc/8=");
    assert_eq!(v["type"], "Opaque");
}

#[test]
fn service_ports_int_or_string_and_zero_values() {
    let body = encode(
        "v1",
        "Service",
        json!({
            "metadata": go_meta("s", ""),
            "spec": {
                "ports": [
                    {"name": "a", "protocol": "TCP", "port": 80,
                     "targetPort": {"type": "0", "intVal": 8080, "strVal": ""}, "nodePort": 0},
                    {"name": "b", "protocol": "TCP", "port": 0,
                     "targetPort": {"type": "1", "intVal": 0, "strVal": "http"}, "nodePort": 0},
                    {"name": "", "protocol": "", "port": 81,
                     "targetPort": {"type": "0", "intVal": 0, "strVal": ""}, "nodePort": 0},
                ],
                "selector": {"app": "s"},
                "clusterIP": "", "type": "ClusterIP", "sessionAffinity": "",
                "externalName": "", "externalTrafficPolicy": "",
                "healthCheckNodePort": 0, "publishNotReadyAddresses": false,
            },
            "status": {"loadBalancer": {}},
        }),
    );
    assert_eq!(
        decode_request(&body).unwrap(),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {
                "ports": [
                    {"name": "a", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    // port has no omitempty: Go writes 0 into JSON too.
                    {"name": "b", "protocol": "TCP", "port": 0, "targetPort": "http"},
                    {"port": 81},
                ],
                "selector": {"app": "s"},
                "type": "ClusterIP",
            },
            "status": {"loadBalancer": {}},
        })
    );
}

#[test]
fn deployment_pointers_keep_explicit_zeros_and_quantities_stay_strings() {
    let body = encode(
        "apps/v1",
        "Deployment",
        json!({
            "metadata": go_meta("web", "default"),
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": go_meta("", ""),
                    "spec": {
                        "containers": [{
                            "name": "nginx", "image": "nginx", "workingDir": "",
                            "resources": {
                                "limits": {"memory": {"string": "128Mi"}},
                                "requests": {"cpu": {"string": "100m"}},
                            },
                            "terminationMessagePath": "", "imagePullPolicy": "",
                            "stdin": false, "stdinOnce": false, "tty": false,
                        }],
                        "automountServiceAccountToken": false,
                        "restartPolicy": "", "dnsPolicy": "", "hostNetwork": false,
                        "volumes": [{"name": "v", "volumeSource": {"emptyDir": {"medium": "", "sizeLimit": {"string": "1Gi"}}}}],
                    },
                },
                "strategy": {},
                "minReadySeconds": 0,
                "paused": false,
            },
            "status": {},
        }),
    );
    assert_eq!(
        decode_request(&body).unwrap(),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {},
                    "spec": {
                        "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}],
                        "containers": [{
                            "name": "nginx", "image": "nginx",
                            "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "100m"}},
                        }],
                        "automountServiceAccountToken": false,
                    },
                },
                "strategy": {},
            },
            "status": {},
        })
    );
}

#[test]
fn times_and_renamed_fields() {
    let body = encode(
        "networking.k8s.io/v1",
        "IngressClass",
        json!({
            "metadata": {
                "name": "ic",
                "creationTimestamp": {"seconds": "1700000000"},
                "deletionTimestamp": {"seconds": "0"},
                "managedFields": [{
                    "manager": "m", "operation": "Update", "apiVersion": "v1",
                    "time": {"seconds": "1700000001", "nanos": 5},
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"Raw": base64::engine::general_purpose::STANDARD.encode(br#"{"f:spec":{}}"#)},
                    "subresource": "",
                }],
            },
            "spec": {
                "controller": "example.com/c",
                "parameters": {"aPIGroup": "example.com", "kind": "P", "name": "p"},
            },
        }),
    );
    let v = decode_request(&body).unwrap();
    assert_eq!(v["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(v["metadata"]["deletionTimestamp"], "1970-01-01T00:00:00Z");
    assert_eq!(
        v["metadata"]["managedFields"][0],
        json!({"manager": "m", "operation": "Update", "apiVersion": "v1",
               "time": "2023-11-14T22:13:21Z", "fieldsType": "FieldsV1",
               "fieldsV1": {"f:spec": {}}})
    );
    assert_eq!(
        v["spec"]["parameters"],
        json!({"apiGroup": "example.com", "kind": "P", "name": "p"})
    );
}

#[test]
fn crd_schema_types() {
    let schema_props = json!({
        "type": "object",
        "schema": "",
        "properties": {
            "spec": {
                "type": "object",
                "xKubernetesPreserveUnknownFields": true,
                "default": {"raw": base64::engine::general_purpose::STANDARD.encode(br#"{"a":1}"#)},
                "enum": [{"raw": base64::engine::general_purpose::STANDARD.encode(b"\"x\"")}],
                "additionalProperties": {"allows": true, "schema": {"type": "string"}},
                "additionalItems": {"allows": false},
                "items": {"jSONSchemas": [{"type": "string"}, {"type": "integer"}]},
                "dependencies": {"a": {"property": ["b", "c"]}},
                "maximum": 1.5,
            },
            "status": {"type": "object", "items": {"schema": {"type": "string"}}},
        },
    });
    let body = encode(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        json!({
            "metadata": go_meta("widgets.example.com", ""),
            "spec": {
                "group": "example.com",
                "names": {"plural": "widgets", "kind": "Widget"},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": schema_props},
                }],
            },
        }),
    );
    let v = decode_request(&body).unwrap();
    assert_eq!(
        v["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "default": {"a": 1},
                    "maximum": 1.5,
                    "enum": ["x"],
                    "items": [{"type": "string"}, {"type": "integer"}],
                    "additionalProperties": {"type": "string"},
                    "dependencies": {"a": ["b", "c"]},
                    "additionalItems": false,
                    "x-kubernetes-preserve-unknown-fields": true,
                },
                "status": {"type": "object", "items": {"type": "string"}},
            },
        })
    );
    assert_eq!(v["spec"]["versions"][0]["served"], true);
}

#[test]
fn delete_options_use_meta_v1_under_any_group_version() {
    let body = encode(
        "apps/v1",
        "DeleteOptions",
        json!({"gracePeriodSeconds": "0", "preconditions": {"resourceVersion": "12"},
               "propagationPolicy": "Foreground"}),
    );
    assert_eq!(
        decode_request(&body).unwrap(),
        json!({"apiVersion": "apps/v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
               "preconditions": {"resourceVersion": "12"}, "propagationPolicy": "Foreground"})
    );
}

#[test]
fn bad_bodies_are_rejected() {
    let cm = encode("v1", "ConfigMap", json!({"metadata": {"name": "x"}}));
    type Case = (&'static str, Vec<u8>, fn(&ProtobufError) -> bool);
    let cases: Vec<Case> = vec![
        ("json", br#"{"kind":"ConfigMap"}"#.to_vec(), |e| {
            matches!(e, ProtobufError::NoMagic)
        }),
        ("empty", vec![], |e| matches!(e, ProtobufError::NoMagic)),
        ("truncated envelope", cm[..cm.len() - 3].to_vec(), |e| {
            matches!(e, ProtobufError::Envelope(_))
        }),
        ("no typeMeta", MAGIC.to_vec(), |e| {
            matches!(e, ProtobufError::Envelope(_))
        }),
        (
            "unknown kind",
            envelope("example.com/v1", "Widget", b"", ""),
            |e| matches!(e, ProtobufError::UnsupportedKind { .. }),
        ),
        (
            "unknown version",
            envelope("apps/v1beta9", "Deployment", b"", ""),
            |e| matches!(e, ProtobufError::UnsupportedKind { .. }),
        ),
        (
            "kind is not a name",
            envelope("v1", "v1.ConfigMap", b"", ""),
            |e| matches!(e, ProtobufError::UnsupportedKind { .. }),
        ),
        ("gzip", envelope("v1", "ConfigMap", b"", "gzip"), |e| {
            matches!(e, ProtobufError::ContentEncoding(_))
        }),
        (
            "garbage object",
            envelope("v1", "ConfigMap", &[0x0a, 0x05, 0x01], ""),
            |e| matches!(e, ProtobufError::Invalid { .. }),
        ),
    ];
    for (name, body, expected) in cases {
        let err = decode_request(&body).expect_err(name);
        assert!(expected(&err), "{name}: {err:?}");
    }
    let api: ApiError = decode_request(&envelope("example.com/v1", "Widget", b"", ""))
        .unwrap_err()
        .into();
    assert!(
        api.status_body()["message"]
            .as_str()
            .unwrap()
            .contains("send application/json")
    );
}

#[test]
fn empty_object_message_has_only_type_meta() {
    let body = envelope("v1", "Namespace", b"", "");
    assert_eq!(
        decode_request(&body).unwrap(),
        json!({"apiVersion": "v1", "kind": "Namespace"})
    );
}

#[test]
fn go_durations() {
    for (nanos, want) in [
        (0, "0s"),
        (1, "1ns"),
        (999, "999ns"),
        (1_500, "1.5µs"),
        (1_000_000, "1ms"),
        (1_234_567, "1.234567ms"),
        (1_000_000_000, "1s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_500_000_000, "1h2m3.5s"),
        (-1_500_000_000, "-1.5s"),
        (i64::MIN, "-2562047h47m16.854775808s"),
    ] {
        assert_eq!(go_duration(nanos), want, "{nanos}");
    }
}

#[test]
fn field_rule_tokens() {
    for (token, name, rule) in [
        ("port", "port", FieldRule::default()),
        (
            "port?",
            "port",
            FieldRule {
                omit_zero: true,
                ..FieldRule::default()
            },
        ),
        (
            "volumeSource=",
            "volumeSource",
            FieldRule {
                inline: true,
                ..FieldRule::default()
            },
        ),
        (
            "raw=-",
            "raw",
            FieldRule {
                skip: true,
                ..FieldRule::default()
            },
        ),
        (
            "ref=$ref?",
            "ref",
            FieldRule {
                json: Some("$ref".into()),
                omit_zero: true,
                ..FieldRule::default()
            },
        ),
    ] {
        assert_eq!(FieldRule::parse(token), (name.to_owned(), rule), "{token}");
    }
}

/// A ControllerRevision whose `data` holds another one, `levels` deep, as protobuf: each
/// level is a few bytes, so a small body nests thousands of levels.
pub(super) fn nested_revisions(levels: usize) -> Vec<u8> {
    let mut body = encode("apps/v1", "ControllerRevision", json!({"revision": "1"}));
    for _ in 0..levels {
        body = encode(
            "apps/v1",
            "ControllerRevision",
            json!({"data": {"raw": base64::engine::general_purpose::STANDARD.encode(&body)}}),
        );
    }
    body
}

#[test]
fn deep_bodies_are_refused_not_a_stack_overflow() {
    // Shallow nesting decodes.
    let v = decode_request(&nested_revisions(3)).unwrap();
    assert_eq!(v["data"]["data"]["data"]["kind"], "ControllerRevision");
    for levels in [MAX_DECODED_DEPTH, 4_000] {
        let err = decode_request(&nested_revisions(levels)).expect_err("too deep");
        assert!(matches!(err, ProtobufError::TooDeep), "{levels}: {err:?}");
        let api: ApiError = err.into();
        assert_eq!(api.code, axum::http::StatusCode::BAD_REQUEST);
    }
    // Embedded JSON counts towards the depth too.
    let mut deep = json!(1);
    for _ in 0..(MAX_DECODED_DEPTH - 1) {
        deep = json!([deep]);
    }
    let raw = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "X", "a": deep})).unwrap();
    let body = encode(
        "apps/v1",
        "ControllerRevision",
        json!({"data": {"raw": base64::engine::general_purpose::STANDARD.encode(&raw)}}),
    );
    assert!(matches!(decode_request(&body), Err(ProtobufError::TooDeep)));
}

#[test]
fn envelope_type_reads_only_the_envelope() {
    let body = nested_revisions(4_000);
    assert_eq!(
        envelope_type(&body).unwrap(),
        ("apps/v1".to_owned(), "ControllerRevision".to_owned())
    );
    assert!(matches!(envelope_type(b"{}"), Err(ProtobufError::NoMagic)));
}
