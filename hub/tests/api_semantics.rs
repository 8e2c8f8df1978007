//! API server semantics a real Kubernetes API server has, checked over HTTPS with kube-rs.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use support::HubProcess;

async fn client(hub: &HubProcess) -> Client {
    let kc = Kubeconfig::read_from(&hub.kubeconfig).unwrap();
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

async fn raw(
    client: &Client,
    method: &str,
    path: &str,
    content_type: &str,
    accept: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", content_type)
        .header("Accept", accept)
        .body(body)
        .unwrap();
    match client.request_text(req).await {
        Ok(text) => (200, serde_json::from_str(&text).unwrap_or(Value::Null)),
        Err(kube::Error::Api(s)) => (s.code, json!({"reason": s.reason, "message": s.message})),
        Err(e) => panic!("request failed: {e}"),
    }
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_api_semantics() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let hub = HubProcess::start();
    let c = client(&hub).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");

    // Without credentials only the version and health are readable, as with kube-apiserver.
    let anonymous = {
        let kc = Kubeconfig::read_from(&hub.kubeconfig).unwrap();
        let mut cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap();
        cfg.auth_info = Default::default();
        Client::try_from(cfg).unwrap()
    };
    let (code, body) = raw(
        &anonymous,
        "GET",
        "/version",
        "application/json",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(body["gitVersion"].as_str().is_some(), "{body}");
    // Anything else is refused to anonymous requests, as kube-apiserver refuses it.
    let (code, body) = raw(
        &anonymous,
        "GET",
        "/api/v1/namespaces",
        "application/json",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );

    // Namespaces carry kubernetes.io/metadata.name, which an update cannot take away.
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    let created = nss
        .create(
            &Default::default(),
            &serde_json::from_value(json!({"metadata": {"name": "labelled"}})).unwrap(),
        )
        .await
        .unwrap();
    let label = |n: &k8s_openapi::api::core::v1::Namespace| {
        n.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/metadata.name").cloned())
    };
    assert_eq!(label(&created).as_deref(), Some("labelled"));
    let mut stripped = created.clone();
    stripped.metadata.labels = None;
    let replaced = nss
        .replace("labelled", &Default::default(), &stripped)
        .await
        .unwrap();
    assert_eq!(label(&replaced).as_deref(), Some("labelled"));

    // Bodies over 3 MiB get 413.
    let big = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"x": "a".repeat(3 * 1024 * 1024 + 10)}});
    let (code, body) = raw(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        "application/json",
        serde_json::to_vec(&big).unwrap(),
    )
    .await;
    assert_eq!(code, 413, "{body}");

    // Malformed JSON is a 400, a protobuf-only Accept is a 406, an unknown path a 404.
    let (code, _) = raw(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        "application/json",
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(code, 400);
    let (code, _) = raw(
        &c,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        "application/vnd.kubernetes.protobuf",
        vec![],
    )
    .await;
    assert_eq!(code, 406);
    let (code, _) = raw(
        &c,
        "GET",
        "/apis/nothing.example.com/v1/widgets",
        "application/json",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, 404);

    // Objects in a namespace that does not exist are refused.
    let elsewhere: Api<ConfigMap> = Api::namespaced(c.clone(), "no-such-ns");
    let err = elsewhere
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err}"
    );

    // generateName and dryRun.
    let generated = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap(),
        )
        .await
        .unwrap();
    let name = generated.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    cms.create(
        &dry,
        &serde_json::from_value(json!({"metadata": {"name": "dry"}})).unwrap(),
    )
    .await
    .unwrap();
    assert!(
        cms.get_opt("dry").await.unwrap().is_none(),
        "dry runs store nothing"
    );

    // Generation moves on spec changes only; status writes go through /status only.
    let deps: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let d = deps
        .create(&PostParams::default(), &deployment("gen"))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    let d = deps
        .patch(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1), "labels are not spec");
    let d = deps
        .patch(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(2));
    let d = deps
        .patch(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert!(
        d.status.as_ref().and_then(|s| s.replicas).is_none(),
        "status ignored on the main resource"
    );
    let d = deps
        .patch_status(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(d.status.unwrap().replicas, Some(9));
    assert_eq!(d.spec.unwrap().replicas, Some(3));
    let scale = deps.get_scale("gen").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));

    // Finalizers hold a delete until they are removed.
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    let held = cms.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(
        cms.get_opt("held").await.unwrap().is_none(),
        "removing the last finalizer deletes"
    );

    // deletecollection with a label selector.
    for i in 0..3 {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": format!("batch-{i}"), "labels": {"batch": "yes"}}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    }
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("batch=yes"),
    )
    .await
    .unwrap();
    assert!(
        cms.list(&ListParams::default().labels("batch=yes"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        cms.get_opt(&name).await.unwrap().is_some(),
        "unselected objects stay"
    );

    // Works are read-only for clients.
    let (code, _) = raw(
        &c,
        "DELETE",
        "/apis/work.karmada.io/v1alpha1/namespaces/default/works/x",
        "application/json",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_object_metadata() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let hub = HubProcess::start();
    let c = client(&hub).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "meta-only", "labels": {"a": "b"}}, "data": {"k": "v"}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    const ONE: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
    const LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
    let path = "/api/v1/namespaces/default/configmaps";

    let (code, body) = raw(&c, "GET", &format!("{path}/meta-only"), "", ONE, vec![]).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["kind"], "PartialObjectMetadata", "{body}");
    assert_eq!(body["apiVersion"], "meta.k8s.io/v1", "{body}");
    assert_eq!(body["metadata"]["labels"]["a"], "b", "{body}");
    assert_eq!(body.as_object().unwrap().len(), 3, "only metadata: {body}");

    let (code, body) = raw(&c, "GET", path, "", LIST, vec![]).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["kind"], "PartialObjectMetadataList", "{body}");
    assert_eq!(body["apiVersion"], "meta.k8s.io/v1", "{body}");
    assert!(body["metadata"]["resourceVersion"].is_string(), "{body}");
    let item = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["name"] == "meta-only")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(
        item,
        &json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": item["metadata"].clone()})
    );

    // The wrong shape for the request is 406, as in kube-apiserver.
    let (code, body) = raw(&c, "GET", path, "", ONE, vec![]).await;
    assert_eq!(code, 406, "{body}");
    let (code, body) = raw(&c, "GET", &format!("{path}/meta-only"), "", LIST, vec![]).await;
    assert_eq!(code, 406, "{body}");

    // kube-rs's metadata API (what metadata informers use) reads and watches.
    let listed = cms.list_metadata(&ListParams::default()).await.unwrap();
    assert!(
        listed
            .items
            .iter()
            .any(|m| m.metadata.name.as_deref() == Some("meta-only"))
    );
    let (code, text) = {
        let req = http::Request::builder()
            .uri(format!("{path}?watch=true&timeoutSeconds=1"))
            .header("Accept", ONE)
            .body(vec![])
            .unwrap();
        (200, c.request_text(req).await.unwrap())
    };
    assert_eq!(code, 200);
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ev = events
        .iter()
        .find(|e| e["object"]["metadata"]["name"] == "meta-only")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(ev["type"], "ADDED", "{ev}");
    assert_eq!(ev["object"]["kind"], "PartialObjectMetadata", "{ev}");
    assert!(ev["object"].get("data").is_none(), "{ev}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_get_established_and_names_accepted_conditions() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let hub = HubProcess::start();
    let c = client(&hub).await;
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let crd = |kind: &str, plural: &str| -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "metadata": {"name": format!("{plural}.example.com")},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "shortNames": [format!("{plural}-s")]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
        }))
        .unwrap()
    };
    crds.create(&PostParams::default(), &crd("Widget", "widgets"))
        .await
        .unwrap();
    let out = hub.kubectl(&[
        "wait",
        "--for=condition=established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let got = crds.get("widgets.example.com").await.unwrap();
    let status = serde_json::to_value(got.status.unwrap()).unwrap();
    let cond = |ty: &str| {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == ty)
            .cloned()
            .unwrap_or_else(|| panic!("no {ty}: {status}"))
    };
    assert_eq!(cond("NamesAccepted")["status"], "True", "{status}");
    assert_eq!(cond("NamesAccepted")["reason"], "NoConflicts", "{status}");
    assert_eq!(cond("Established")["reason"], "InitialNamesAccepted");
    assert!(cond("Established")["lastTransitionTime"].is_string());
    assert_eq!(status["acceptedNames"]["kind"], "Widget", "{status}");
    assert_eq!(
        status["acceptedNames"]["listKind"], "WidgetList",
        "{status}"
    );
    assert_eq!(status["storedVersions"], json!(["v1"]), "{status}");

    // Another CRD of the group asking for the same kind is refused its names, not served.
    crds.create(&PostParams::default(), &crd("Widget", "gadgets"))
        .await
        .unwrap();
    let mut refused = None;
    for _ in 0..100 {
        let got = crds.get("gadgets.example.com").await.unwrap();
        let s = serde_json::to_value(got.status).unwrap();
        if s["conditions"].is_array() {
            refused = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let s = refused.expect("the conflicting CRD got no conditions");
    let conds = s["conditions"].as_array().unwrap();
    let names = conds.iter().find(|c| c["type"] == "NamesAccepted").unwrap();
    assert_eq!(names["status"], "False", "{s}");
    assert_eq!(names["reason"], "ListKindConflict", "{s}");
    assert_eq!(names["message"], "\"WidgetList\" is already in use", "{s}");
    let est = conds.iter().find(|c| c["type"] == "Established").unwrap();
    assert_eq!(est["status"], "False", "{s}");
    assert_eq!(est["reason"], "NotAccepted", "{s}");
    let (code, _) = raw(
        &c,
        "GET",
        "/apis/example.com/v1/namespaces/default/gadgets",
        "application/json",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, 404, "a CRD whose names are refused is not served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_gets_the_root_ca_configmap() {
    use base64::Engine as _;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let hub = HubProcess::start();
    let c = client(&hub).await;
    let kc = Kubeconfig::read_from(&hub.kubeconfig).unwrap();
    let ca = kc.clusters[0]
        .cluster
        .as_ref()
        .and_then(|c| c.certificate_authority_data.clone())
        .unwrap();
    let ca = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(ca)
            .unwrap(),
    )
    .unwrap();
    let wait_for = |ns: &'static str, not_uid: Option<String>| {
        let cms: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
        async move {
            for _ in 0..100 {
                if let Some(cm) = cms.get_opt("kube-root-ca.crt").await.unwrap()
                    && cm.metadata.uid != not_uid
                {
                    return cm;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("no kube-root-ca.crt in {ns}");
        }
    };
    // Namespaces that exist at startup, and new ones.
    let cm = wait_for("default", None).await;
    assert_eq!(cm.data.unwrap()["ca.crt"], ca);
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    nss.create(
        &Default::default(),
        &serde_json::from_value(json!({"metadata": {"name": "rootca"}})).unwrap(),
    )
    .await
    .unwrap();
    let cm = wait_for("rootca", None).await;
    assert_eq!(cm.data.as_ref().unwrap()["ca.crt"], ca);
    assert!(
        cm.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubernetes.io/description"))
    );

    // Deleted: published again. Changed: restored.
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "rootca");
    cms.delete("kube-root-ca.crt", &DeleteParams::default())
        .await
        .unwrap();
    let again = wait_for("rootca", cm.metadata.uid.clone()).await;
    assert_eq!(again.data.unwrap()["ca.crt"], ca);
    cms.patch(
        "kube-root-ca.crt",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"ca.crt": "tampered"}})),
    )
    .await
    .unwrap();
    let mut restored = false;
    for _ in 0..100 {
        let cm = cms.get("kube-root-ca.crt").await.unwrap();
        if cm.data.unwrap()["ca.crt"] == ca {
            restored = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(restored, "the changed ConfigMap was not restored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_field_selectors_are_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let hub = HubProcess::start();
    let c = client(&hub).await;
    let get = |path: String| {
        let c = c.clone();
        async move { raw(&c, "GET", &path, "", "application/json", vec![]).await }
    };
    // Each kind's own fields are accepted.
    for path in [
        "/api/v1/namespaces/default/pods?fieldSelector=spec.nodeName%3Dn1,status.phase%3DRunning",
        "/api/v1/namespaces/default/secrets?fieldSelector=type%3DOpaque",
        "/api/v1/namespaces/default/events?fieldSelector=involvedObject.kind%3DPod,reason%3DFailed",
        "/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%3Dx,metadata.namespace%3Ddefault",
        "/api/v1/namespaces?fieldSelector=status.phase%3DActive",
    ] {
        let (code, body) = get(path.to_owned()).await;
        assert_eq!(code, 200, "{path}: {body}");
    }
    // Others are a 400 with kube-apiserver's message, for lists and watches.
    for (path, message) in [
        (
            "/api/v1/namespaces/default/pods?fieldSelector=spec.foo%3Dx",
            "field label not supported: spec.foo",
        ),
        (
            "/api/v1/namespaces/default/pods?watch=true&fieldSelector=spec.foo%3Dx",
            "field label not supported: spec.foo",
        ),
        (
            "/api/v1/namespaces/default/configmaps?fieldSelector=data.k%3Dv",
            "\"data.k\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        ),
        (
            "/apis/batch/v1/namespaces/default/jobs?fieldSelector=status.succeeded%3D1",
            "field label \"status.succeeded\" not supported for batchv1.Job",
        ),
    ] {
        let (code, body) = get(path.to_owned()).await;
        assert_eq!(code, 400, "{path}: {body}");
        assert_eq!(body["message"], message, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_answers_like_kube_apiserver() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let hub = HubProcess::start();
    let c = client(&hub).await;
    let post = |path: &'static str, body: Value| {
        let c = c.clone();
        async move {
            let (code, created) = raw(
                &c,
                "POST",
                path,
                "application/json",
                "application/json",
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
            assert_eq!(code, 200, "{created}");
            created
        }
    };
    let delete = |path: String| {
        let c = c.clone();
        async move { raw(&c, "DELETE", &path, "", "application/json", vec![]).await }
    };
    let cms = "/api/v1/namespaces/default/configmaps";
    let created = post(cms, json!({"metadata": {"name": "gone"}})).await;
    // Removed at once: a Status naming the object (kind is the resource, as in kube).
    let (code, body) = delete(format!("{cms}/gone")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": "gone", "kind": "configmaps",
                "uid": created["metadata"]["uid"].clone()}})
    );
    let deps = "/apis/apps/v1/namespaces/default/deployments";
    post(deps, serde_json::to_value(deployment("gone")).unwrap()).await;
    let (_, body) = delete(format!("{deps}/gone")).await;
    assert_eq!(body["details"]["group"], "apps", "{body}");
    assert_eq!(body["details"]["kind"], "deployments", "{body}");
    // Kinds whose storage returns the deleted object.
    let sas = "/api/v1/namespaces/default/serviceaccounts";
    post(sas, json!({"metadata": {"name": "gone"}})).await;
    let (_, body) = delete(format!("{sas}/gone")).await;
    assert_eq!(body["kind"], "ServiceAccount", "{body}");
    // Held by a finalizer: the object as it now is.
    post(
        cms,
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    let (_, body) = delete(format!("{cms}/held")).await;
    assert_eq!(body["kind"], "ConfigMap", "{body}");
    assert!(body["metadata"]["deletionTimestamp"].is_string(), "{body}");
}

/// Karmada's deletion protection: a labelled object is not deleted, alone or in a collection,
/// until the label is removed.
#[test]
fn protected_objects_are_not_deleted() {
    let hub = HubProcess::start();
    let ok = |args: &[&str]| {
        let o = hub.kubectl(args);
        assert!(
            o.status.success(),
            "kubectl {args:?}: {}",
            support::stderr(&o)
        );
    };
    ok(&["create", "configmap", "keep", "--from-literal=a=b"]);
    ok(&[
        "label",
        "configmap",
        "keep",
        "resourcetemplate.karmada.io/deletion-protected=Always",
    ]);
    for args in [
        &["delete", "configmap", "keep"][..],
        &["delete", "configmaps", "--all"],
    ] {
        let o = hub.kubectl(args);
        assert!(
            !o.status.success(),
            "kubectl {args:?} deleted a protected object"
        );
        assert!(
            support::stderr(&o).contains("This resource is protected, please make sure to remove the label: resourcetemplate.karmada.io/deletion-protected"),
            "{}",
            support::stderr(&o)
        );
        ok(&["get", "configmap", "keep"]);
    }
    ok(&[
        "label",
        "configmap",
        "keep",
        "resourcetemplate.karmada.io/deletion-protected-",
    ]);
    ok(&["delete", "configmap", "keep"]);
}

/// Kinds real charts carry (PriorityClass, StorageClass, IngressClass, RuntimeClass,
/// ResourceQuota, LimitRange) are served, validated and listed by `kubectl api-resources`.
#[test]
fn chart_kinds_are_served() {
    let hub = HubProcess::start();
    let yaml = "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: fast}\nprovisioner: example.com/fast\n---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: nginx}\nspec: {controller: k8s.io/ingress-nginx}\n---\napiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: gvisor}\nhandler: runsc\n---\napiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: default}\nspec: {hard: {pods: '10'}}\n---\napiVersion: v1\nkind: LimitRange\nmetadata: {name: l, namespace: default}\nspec: {limits: [{type: Container, default: {cpu: 500m}}]}\n";
    let o = hub.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(o.status.success(), "{}", support::stderr(&o));
    let o = hub.kubectl(&["get", "pc,sc,ingressclass,runtimeclass", "-o", "name"]);
    let out = support::stdout(&o);
    for want in [
        "priorityclass.scheduling.k8s.io/high",
        "storageclass.storage.k8s.io/fast",
        "ingressclass.networking.k8s.io/nginx",
        "runtimeclass.node.k8s.io/gvisor",
    ] {
        assert!(
            out.contains(want),
            "{want} missing: {out} {}",
            support::stderr(&o)
        );
    }
    let o = hub.kubectl(&["get", "quota,limits", "-n", "default", "-o", "name"]);
    assert!(
        support::stdout(&o).contains("resourcequota/q"),
        "{}",
        support::stderr(&o)
    );
    assert!(support::stdout(&o).contains("limitrange/l"));
    // Decoded as built-ins: a PriorityClass's value is a number.
    let o = hub.kubectl_stdin(
        &["apply", "--validate=false", "-f", "-"],
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: broken}\nvalue: high\n",
    );
    assert!(
        !o.status.success() && support::stderr(&o).contains("Invalid value"),
        "a PriorityClass with a text value: {}",
        support::stderr(&o)
    );
    let o = hub.kubectl(&["api-resources", "--no-headers"]);
    let out = support::stdout(&o);
    for want in [
        "priorityclasses",
        "storageclasses",
        "ingressclasses",
        "runtimeclasses",
        "resourcequotas",
        "limitranges",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(want)),
            "{want} not in api-resources"
        );
    }
}

/// Every resource a kube-apiserver 1.36 serves by default is served, from admission policies
/// to CSI drivers, decoded as its built-in kind, and only with the verbs kube-apiserver's
/// discovery lists: Namespaces cannot be deleted as a collection, Bindings are refused.
#[test]
fn every_default_builtin_resource_is_served_with_its_verbs() {
    let hub = HubProcess::start();
    let yaml = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: replicas}\nspec:\n  matchConstraints: {resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]}\n  validations: [{expression: 'object.spec.replicas <= 5'}]\n---\napiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: FlowSchema\nmetadata: {name: batch}\nspec: {priorityLevelConfiguration: {name: workload-low}, matchingPrecedence: 500}\n---\napiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata: {name: csi.example.com}\nspec: {attachRequired: false}\n---\napiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {name: e1, namespace: default}\neventTime: '2026-12-02T07:00:00.000000Z'\nreportingController: example.com/c\nreportingInstance: c-1\naction: Scale\nreason: Scaled\ntype: Normal\n---\napiVersion: v1\nkind: PodTemplate\nmetadata: {name: t, namespace: default}\ntemplate: {spec: {containers: [{name: c, image: 'nginx:1.25'}]}}\n";
    let o = hub.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(o.status.success(), "{}", support::stderr(&o));
    let o = hub.kubectl(&[
        "get",
        "validatingadmissionpolicies,flowschemas,csidrivers",
        "-o",
        "name",
    ]);
    let out = support::stdout(&o);
    for want in [
        "validatingadmissionpolicy.admissionregistration.k8s.io/replicas",
        "flowschema.flowcontrol.apiserver.k8s.io/batch",
        "csidriver.storage.k8s.io/csi.example.com",
    ] {
        assert!(
            out.contains(want),
            "{want} missing: {out} {}",
            support::stderr(&o)
        );
    }
    let o = hub.kubectl(&[
        "get",
        "events.events.k8s.io,podtemplates",
        "-n",
        "default",
        "-o",
        "name",
    ]);
    let out = support::stdout(&o);
    assert!(
        out.contains("event.events.k8s.io/e1") && out.contains("podtemplate/t"),
        "{out}"
    );
    // Decoded as built-ins: a CSIDriver's attachRequired is a boolean.
    let o = hub.kubectl_stdin(
        &["apply", "--validate=false", "-f", "-"],
        "apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata: {name: broken.example.com}\nspec: {attachRequired: sometimes}\n",
    );
    assert!(
        !o.status.success() && support::stderr(&o).contains("Invalid value"),
        "a CSIDriver with a text attachRequired: {}",
        support::stderr(&o)
    );
    // Verbs: the check can fail, ConfigMaps are deleted as a collection.
    let o = hub.kubectl(&["delete", "--raw", "/api/v1/namespaces/default/configmaps"]);
    assert!(o.status.success(), "{}", support::stderr(&o));
    let o = hub.kubectl(&["delete", "--raw", "/api/v1/namespaces"]);
    assert!(
        !o.status.success() && support::stderr(&o).contains("MethodNotAllowed"),
        "deleting every Namespace at once: {}",
        support::stderr(&o)
    );
    let o = hub.kubectl(&["get", "ns", "default", "-o", "name"]);
    assert_eq!(support::stdout(&o).trim(), "namespace/default");
    let o = hub.kubectl_stdin(
        &["create", "--raw", "/api/v1/namespaces/default/bindings", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"n1"}}"#,
    );
    assert!(
        !o.status.success() && support::stderr(&o).contains("MethodNotAllowed"),
        "a Binding: {}",
        support::stderr(&o)
    );
}

/// A custom resource gets its CRD schema's defaults on create and update, as from
/// kube-apiserver: absent properties and non-nullable nulls take the `default`, and a
/// defaulted object gets its own properties' defaults.
#[test]
fn custom_resources_get_their_schema_defaults() {
    let hub = HubProcess::start();
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: gadgets.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {plural: gadgets, singular: gadget, kind: Gadget}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            default: {}\n            properties:\n              size: {type: integer, default: 1}\n              mode: {type: string, default: fast}\n              ports:\n                type: array\n                items: {type: object, properties: {port: {type: integer}, protocol: {type: string, default: TCP}}}\n";
    let o = hub.kubectl_stdin(&["apply", "-f", "-"], crd);
    assert!(o.status.success(), "{}", support::stderr(&o));
    assert!(support::eventually(
        std::time::Duration::from_secs(10),
        || { hub.kubectl(&["get", "gadgets"]).status.success() }
    ));
    let o = hub.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: bare, namespace: default}\n---\napiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: some, namespace: default}\nspec: {size: 3, ports: [{port: 80}]}\n",
    );
    assert!(o.status.success(), "{}", support::stderr(&o));
    let spec = |name: &str| -> serde_json::Value {
        let o = hub.kubectl(&["get", "gadget", name, "-o", "jsonpath={.spec}"]);
        serde_json::from_str(&support::stdout(&o)).unwrap_or_default()
    };
    assert_eq!(spec("bare"), serde_json::json!({"mode": "fast", "size": 1}));
    assert_eq!(
        spec("some"),
        serde_json::json!({"mode": "fast", "ports": [{"port": 80, "protocol": "TCP"}], "size": 3})
    );
    // An update that sets a defaulted field to null gets the default again.
    let o = hub.kubectl(&[
        "patch",
        "gadget",
        "some",
        "--type=merge",
        "-p",
        r#"{"spec":{"mode":null,"size":5}}"#,
    ]);
    assert!(o.status.success(), "{}", support::stderr(&o));
    assert_eq!(spec("some")["mode"], "fast");
    assert_eq!(spec("some")["size"], 5);
}
