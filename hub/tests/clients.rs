//! Client libraries against a real hub process: kube-rs and the official Python client,
//! and durability of acknowledged writes across `kill -9`.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Client, Config, config::KubeConfigOptions, config::Kubeconfig};
use support::HubProcess;

async fn client(hub: &HubProcess) -> Client {
    let kc = Kubeconfig::read_from(&hub.kubeconfig).unwrap();
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"suite": "clients"}},
        "data": {"k": "v"}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_creates_lists_watches_and_patches() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let hub = HubProcess::start();
    let api: Api<ConfigMap> = Api::namespaced(client(&hub).await, "default");
    let created = api
        .create(&PostParams::default(), &cm("one"))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    assert!(created.metadata.uid.is_some());

    let mut watch = api
        .watch(&WatchParams::default().labels("suite=clients"), &rv)
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &cm("two"))
        .await
        .unwrap();
    let patched = api
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"k": "w"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["k"], "w");
    let applied = api
        .patch(
            "three",
            &PatchParams::apply("clients-test"),
            &Patch::Apply(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "three", "labels": {"suite": "clients"}}, "data": {"a": "b"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        applied.metadata.managed_fields.unwrap()[0]
            .manager
            .as_deref(),
        Some("clients-test")
    );

    let mut seen = Vec::new();
    while seen.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(10), watch.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(o)))) => {
                seen.push(format!("ADDED {}", o.metadata.name.unwrap()))
            }
            Ok(Ok(Some(WatchEvent::Modified(o)))) => {
                seen.push(format!("MODIFIED {}", o.metadata.name.unwrap()))
            }
            Ok(Ok(Some(_))) => {}
            other => panic!("watch ended early: {other:?} after {seen:?}"),
        }
    }
    assert_eq!(seen, ["ADDED two", "MODIFIED one", "ADDED three"]);

    let page = api
        .list(&ListParams::default().labels("suite=clients").limit(2))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().expect("a continue token");
    let rest = api
        .list(
            &ListParams::default()
                .labels("suite=clients")
                .limit(2)
                .continue_token(&token),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    let names: BTreeSet<String> = page
        .items
        .iter()
        .chain(&rest.items)
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["one".into(), "two".into(), "three".into()])
    );

    // Stale resourceVersion on update is a conflict.
    let mut stale = created.clone();
    stale.data = Some([("k".to_owned(), "stale".to_owned())].into());
    let err = api
        .replace("one", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!(s.code, 409),
        other => panic!("expected a 409, got {other}"),
    }
}

#[test]
fn python_client_creates_lists_watches_and_patches() {
    let hub = HubProcess::start();
    let script = r#"
import sys
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
apps = client.AppsV1Api()
v1.create_namespaced_config_map("default", {"metadata": {"name": "py", "labels": {"by": "python"}}, "data": {"a": "1"}})
items = v1.list_namespaced_config_map("default", label_selector="by=python").items
assert [i.metadata.name for i in items] == ["py"], items
rv = items[0].metadata.resource_version
v1.patch_namespaced_config_map("py", "default", {"data": {"a": "2"}})
w = watch.Watch()
events = []
for ev in w.stream(v1.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5):
    events.append((ev["type"], ev["object"].metadata.name, ev["object"].data["a"]))
    w.stop()
assert events == [("MODIFIED", "py", "2")], events
dep = {"metadata": {"name": "pyweb"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
       "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
apps.create_namespaced_deployment("default", dep)
apps.patch_namespaced_deployment_scale("pyweb", "default", {"spec": {"replicas": 4}})
assert apps.read_namespaced_deployment("pyweb", "default").spec.replicas == 4
try:
    v1.read_namespaced_config_map("missing", "default")
    raise SystemExit("expected 404")
except client.exceptions.ApiException as e:
    assert e.status == 404, e.status
print("python client ok")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&hub.kubeconfig)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python client failed (pip install kubernetes): {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python client ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_kill_9_and_watch_resumes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let mut hub = HubProcess::start_in(tmp.path(), "127.0.0.1:0");
        let api: Api<ConfigMap> = Api::namespaced(client(&hub).await, "default");
        let acked = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
        let mut writers = Vec::new();
        for w in 0..8 {
            let api = api.clone();
            let acked = acked.clone();
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let name = format!("r{round}-w{w}-{i}");
                    match api.create(&PostParams::default(), &cm(&name)).await {
                        Ok(c) => {
                            let rv = c.metadata.resource_version.unwrap().parse().unwrap();
                            acked.lock().unwrap().push((name, rv));
                        }
                        Err(_) => break,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        hub.kill9();
        for w in writers {
            let _ = w.await;
        }
        let acked = acked.lock().unwrap().clone();
        assert!(
            acked.len() > 10,
            "too few writes acknowledged: {}",
            acked.len()
        );

        let hub = HubProcess::start_in(tmp.path(), "127.0.0.1:0");
        let api: Api<ConfigMap> = Api::namespaced(client(&hub).await, "default");
        let present: BTreeSet<String> = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        let lost: Vec<&String> = acked
            .iter()
            .map(|(n, _)| n)
            .filter(|n| !present.contains(*n))
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged creates lost after kill -9: {lost:?}"
        );

        // A watch from an earlier acknowledged revision replays the later writes.
        let mut sorted = acked.clone();
        sorted.sort_by_key(|(_, rv)| *rv);
        let (_, mid_rv) = sorted[sorted.len() / 2];
        let later: BTreeSet<String> = sorted
            .iter()
            .filter(|(_, rv)| *rv > mid_rv)
            .map(|(n, _)| n.clone())
            .collect();
        let mut stream = api
            .watch(&WatchParams::default().timeout(5), &mid_rv.to_string())
            .await
            .unwrap()
            .boxed();
        let mut replayed = BTreeSet::new();
        while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(6), stream.try_next())
            .await
            .unwrap_or(Ok(None))
        {
            match ev {
                WatchEvent::Added(c) => {
                    replayed.insert(c.metadata.name.unwrap());
                }
                // The log keeps far more than these writes: nothing may be compacted away.
                WatchEvent::Error(e) => panic!("watch from {mid_rv} failed: {e:?}"),
                _ => {}
            }
            if later.is_subset(&replayed) {
                break;
            }
        }
        assert!(
            later.is_subset(&replayed),
            "watch from {mid_rv} missed {:?}",
            later.difference(&replayed).collect::<Vec<_>>()
        );
    }
}

/// The ConfigMap names a watch from `rv` delivers as ADDED until `want` are all seen, and the
/// Status of the first error event, if any.
async fn added_after(
    api: &Api<ConfigMap>,
    rv: u64,
    want: &BTreeSet<String>,
) -> (BTreeSet<String>, Option<Box<kube::core::Status>>) {
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &rv.to_string())
        .await
        .unwrap()
        .boxed();
    let mut added = BTreeSet::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(6), stream.try_next())
        .await
        .unwrap_or(Ok(None))
    {
        match ev {
            WatchEvent::Added(c) => {
                added.insert(c.metadata.name.unwrap());
            }
            WatchEvent::Error(e) => return (added, Some(e)),
            _ => {}
        }
        if want.is_subset(&added) {
            break;
        }
    }
    (added, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_gets_410_only_below_the_compaction_point() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let mut hub = HubProcess::start_in(tmp.path(), "127.0.0.1:0");
    let api: Api<ConfigMap> = Api::namespaced(client(&hub).await, "default");
    let mut written = Vec::new();
    for i in 0..10 {
        let name = format!("c{i}");
        let c = api
            .create(&PostParams::default(), &cm(&name))
            .await
            .unwrap();
        let rv: u64 = c.metadata.resource_version.unwrap().parse().unwrap();
        written.push((name, rv));
    }
    let (_, compact_to) = written[4];
    let later: BTreeSet<String> = written[5..].iter().map(|(n, _)| n.clone()).collect();

    // Before compaction, a watch from an older revision replays everything after it.
    let (added, err) = added_after(&api, written[0].1, &later).await;
    assert!(err.is_none(), "{err:?}");
    assert!(later.is_subset(&added), "{added:?}");

    // Compact the stopped hub's store up to the fifth write, then start it again.
    assert!(hub.terminate().success());
    {
        let store = flotilla_store::SledStore::open(
            tmp.path().join("store"),
            flotilla_store::SledOptions::default(),
        )
        .await
        .unwrap();
        use flotilla_store::Store as _;
        assert_eq!(store.compact(compact_to).await.unwrap(), compact_to);
        store.close().await.unwrap();
    }
    let hub = HubProcess::start_in(tmp.path(), "127.0.0.1:0");
    let api: Api<ConfigMap> = Api::namespaced(client(&hub).await, "default");

    // At the compaction point the watch still resumes and delivers every later write.
    let (added, err) = added_after(&api, compact_to, &later).await;
    assert!(
        err.is_none(),
        "watch from the compaction point failed: {err:?}"
    );
    assert!(
        later.is_subset(&added),
        "watch from {compact_to} missed {:?}",
        later.difference(&added).collect::<Vec<_>>()
    );
    assert!(
        !added.contains("c4"),
        "the write at {compact_to} itself is not after it"
    );

    // Below it the events are gone: 410.
    let (added, err) = added_after(&api, compact_to - 1, &later).await;
    let err = err.unwrap_or_else(|| panic!("no 410 below the compaction point: {added:?}"));
    assert_eq!(err.code, 410, "{err:?}");
    assert_eq!(err.reason, "Expired", "{err:?}");
    // kube-apiserver's wording: the requested version and the oldest one still served.
    assert_eq!(
        err.message,
        format!(
            "too old resource version: {} ({compact_to})",
            compact_to - 1
        ),
        "{err:?}"
    );
    assert!(added.is_empty(), "{added:?}");

    // The error is the only event, and the stream ends at once (well before its timeout).
    let started = std::time::Instant::now();
    let events: Vec<_> = api
        .watch(
            &WatchParams::default().timeout(30),
            &(compact_to - 1).to_string(),
        )
        .await
        .unwrap()
        .collect()
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the stream did not end"
    );
    assert!(
        matches!(events.as_slice(), [Ok(WatchEvent::Error(e))] if e.code == 410),
        "{events:?}"
    );
}
