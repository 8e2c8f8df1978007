//! API benchmark: starts a release hub process and measures acknowledged creates/s, gets/s,
//! list latency at 10k objects, watch fan-out to 100 watchers and the hub's RSS.
//!
//! Run: `cargo run --release -p flotilla-hub --example api_bench [-- --objects 10000]`
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        serde_json::json!({"metadata": {"name": name}, "data": {"key": "value"}}),
    )
    .unwrap()
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let objects: usize = std::env::args()
        .skip_while(|a| a != "--objects")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let hub_bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("flotilla-hub");
    assert!(
        hub_bin.exists(),
        "build the hub first: cargo build --release -p flotilla-hub"
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(&hub_bin)
        .args([
            "--data-dir",
            tmp.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--agent-listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let kubeconfig = line.split_whitespace().last().unwrap().to_owned();
    let kc = Kubeconfig::read_from(&kubeconfig).unwrap();
    let client = Client::try_from(
        Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pid = child.id();
    let rss_idle = rss_mib(pid);

    // Creates with 64 concurrent clients.
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let api = api.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= objects {
                    break;
                }
                api.create(&PostParams::default(), &cm(&format!("cm-{i:06}")))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let create_rate = objects as f64 / start.elapsed().as_secs_f64();
    let rss_loaded = rss_mib(pid);

    // Gets with 64 concurrent clients.
    let gets = 40_000usize;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let api = api.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= gets {
                    break;
                }
                api.get(&format!("cm-{:06}", i % objects)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let get_rate = gets as f64 / start.elapsed().as_secs_f64();

    // List latency over all objects.
    let mut list_ms = Vec::new();
    for _ in 0..5 {
        let s = Instant::now();
        let l = api.list(&ListParams::default()).await.unwrap();
        assert_eq!(l.items.len(), objects);
        list_ms.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    list_ms.sort_by(f64::total_cmp);

    // Watch fan-out: 100 watchers, time until all have seen one new write.
    let rv = api
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut watchers = Vec::new();
    for _ in 0..100 {
        let api = api.clone();
        let rv = rv.clone();
        watchers.push(tokio::spawn(async move {
            let mut s = api
                .watch(&WatchParams::default().fields("metadata.name=fanout"), &rv)
                .await
                .unwrap()
                .boxed();
            while let Ok(Some(ev)) = s.try_next().await {
                if matches!(ev, WatchEvent::Added(_)) {
                    return Instant::now();
                }
            }
            panic!("watch ended");
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = Instant::now();
    api.create(&PostParams::default(), &cm("fanout"))
        .await
        .unwrap();
    let mut last = Duration::ZERO;
    for w in watchers {
        last = last.max(w.await.unwrap().duration_since(sent));
    }

    // Pipeline: one template and a policy to 100 Ready clusters, until all 100 Works exist.
    let pipeline = pipeline_to_clusters(&client, 100).await;

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        .unwrap_or_default();
    println!(
        "machine: {} cores, {cpu}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("| measure | result |\n|---|---|");
    println!("| acknowledged creates/s (64 clients, {objects} objects) | {create_rate:.0} |");
    println!("| gets/s (64 clients) | {get_rate:.0} |");
    println!(
        "| list {objects} objects, median | {:.1} ms |",
        list_ms[list_ms.len() / 2]
    );
    println!(
        "| watch fan-out to 100 watchers, last delivery | {:.1} ms |",
        last.as_secs_f64() * 1000.0
    );
    println!("| hub RSS idle / at {objects} objects | {rss_idle:.0} MiB / {rss_loaded:.0} MiB |");
    println!(
        "| template create to Work in all 100 clusters | {:.0} ms |",
        pipeline.as_secs_f64() * 1000.0
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Registers `n` Ready clusters, then measures from creating a Deployment (claimed by a
/// policy that selects every cluster) until each cluster has its Work.
async fn pipeline_to_clusters(client: &Client, n: usize) -> Duration {
    use kube::api::{DynamicObject, Patch, PatchParams};
    use kube::core::{ApiResource, GroupVersionKind};
    let gvk = |g: &str, v: &str, k: &str| ApiResource::from_gvk(&GroupVersionKind::gvk(g, v, k));
    let clusters: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &gvk("cluster.karmada.io", "v1alpha1", "Cluster"),
    );
    for i in 0..n {
        let name = format!("bench-{i:03}");
        let c: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": name}, "spec": {"syncMode": "Pull", "region": format!("r{}", i % 5)}
        }))
        .unwrap();
        clusters.create(&PostParams::default(), &c).await.unwrap();
        let status = serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Bench", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "apiEnablements": [{"groupVersion": "apps/v1", "resources": [{"name": "deployments", "kind": "Deployment"}]}]}});
        clusters
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .unwrap();
    }
    let pps: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &gvk("policy.karmada.io", "v1alpha1", "PropagationPolicy"),
    );
    let pp: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy", "metadata": {"name": "bench"},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "bench"}], "placement": {}}
    }))
    .unwrap();
    pps.create(&PostParams::default(), &pp).await.unwrap();
    let works: Api<DynamicObject> =
        Api::all_with(client.clone(), &gvk("work.karmada.io", "v1alpha1", "Work"));
    let deploys: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "default");
    let d = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bench"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap();
    let start = Instant::now();
    deploys.create(&PostParams::default(), &d).await.unwrap();
    loop {
        let n_works = works
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len();
        if n_works >= n {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "only {n_works} Works after 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
