//! End-to-end tests of the local member clusters (`kind/cluster`): real kube-apiservers, etcd,
//! controller-manager, scheduler and KWOK nodes, driven with kube-rs.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use flotilla_e2e::clusters::{ClusterOptions, MemberCluster, port_closed, port_listening};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

const FIELD_MANAGER: &str = "flotilla-e2e";

fn deployment(name: &str, replicas: i32) -> Result<Deployment> {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "namespace": "default" },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": {
                    "containers": [{
                        "name": "app",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": { "requests": { "cpu": "100m", "memory": "64Mi" } }
                    }]
                }
            }
        }
    }))
    .context("building the Deployment")
}

/// Server-side applies a Deployment and waits until all its replicas are available.
async fn apply_and_wait_available(client: Client, name: &str, replicas: i32) -> Result<()> {
    let api: Api<Deployment> = Api::namespaced(client, "default");
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(name, &params, &Patch::Apply(&deployment(name, replicas)?))
        .await
        .with_context(|| format!("server-side apply of Deployment {name}"))?;
    let started = Instant::now();
    loop {
        let current = api.get(name).await?;
        let available = current
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        if available == replicas {
            eprintln!(
                "Deployment {name}: {available}/{replicas} available after {:.1}s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("Deployment {name} has {available}/{replicas} available replicas after 120s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_until<F: Fn() -> bool>(what: &str, timeout: Duration, check: F) -> Result<()> {
    let started = Instant::now();
    while !check() {
        if started.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_runs_a_deployment_and_deletes_cleanly() -> Result<()> {
    let cluster = MemberCluster::create(
        "deploy",
        ClusterOptions::with_nodes(3).in_zone("eu-west", "eu-west-1a"),
    )
    .await?;

    let nodes: Api<Node> = Api::all(cluster.client());
    let list = nodes.list(&ListParams::default()).await?;
    ensure!(
        list.items.len() == 3,
        "expected 3 nodes, got {}",
        list.items.len()
    );
    for node in &list.items {
        let name = node.metadata.name.as_deref().unwrap_or("?");
        let labels = node.metadata.labels.clone().unwrap_or_default();
        ensure!(
            labels
                .get("topology.kubernetes.io/region")
                .map(String::as_str)
                == Some("eu-west"),
            "node {name} lacks the region label: {labels:?}"
        );
        ensure!(
            labels
                .get("topology.kubernetes.io/zone")
                .map(String::as_str)
                == Some("eu-west-1a"),
            "node {name} lacks the zone label: {labels:?}"
        );
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|conds| {
                conds
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
        ensure!(ready, "node {name} is not Ready");
    }

    apply_and_wait_available(cluster.client(), "web", 3).await?;

    // kubectl from the cache sees the same cluster.
    let out = cluster
        .kubectl()
        .args([
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.status.availableReplicas}",
        ])
        .output()
        .await?;
    ensure!(
        out.status.success() && String::from_utf8_lossy(&out.stdout) == "3",
        "kubectl get deployment: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ports: Vec<u16> = cluster.ports().values().copied().collect();
    let name = cluster.name().to_owned();
    ensure!(!ports.is_empty(), "no ports recorded for {name}");
    ensure!(
        !cluster.processes().is_empty(),
        "no processes found for {name}"
    );
    // The probe used below tells a listening port from a closed one.
    let api_port = cluster
        .api_server_port()
        .context("no kube-apiserver port")?;
    ensure!(
        !port_closed(api_port)?,
        "the API server port {api_port} is closed before delete"
    );
    cluster.delete().await?;

    let leftovers = flotilla_e2e::clusters::cluster_processes(&name);
    ensure!(
        leftovers.is_empty(),
        "processes left after delete: {leftovers:?}"
    );
    let mut listening = Vec::new();
    for p in ports {
        if !port_closed(p).with_context(|| format!("probing port {p} after delete"))? {
            listening.push(p);
        }
    }
    ensure!(
        listening.is_empty(),
        "ports still listening after delete: {listening:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_are_independent() -> Result<()> {
    let (a, b, c) = tokio::try_join!(
        MemberCluster::create(
            "ind-a",
            ClusterOptions::with_nodes(1).in_zone("us-east", "us-east-1a")
        ),
        MemberCluster::create(
            "ind-b",
            ClusterOptions::with_nodes(1).in_zone("us-west", "us-west-1a")
        ),
        MemberCluster::create(
            "ind-c",
            ClusterOptions::with_nodes(1).in_zone("eu-west", "eu-west-1a")
        ),
    )?;

    for cluster in [&a, &b, &c] {
        let api: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
        let cm: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": "identity", "namespace": "default" },
            "data": { "cluster": cluster.name() }
        }))?;
        api.patch(
            "identity",
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&cm),
        )
        .await
        .with_context(|| format!("server-side apply on {}", cluster.name()))?;
        let back = api.get("identity").await?;
        ensure!(
            back.data
                .as_ref()
                .and_then(|d| d.get("cluster"))
                .map(String::as_str)
                == Some(cluster.name()),
            "cluster {} returned another cluster's ConfigMap",
            cluster.name()
        );
    }

    // Kill a's kube-apiserver; b and c must keep serving.
    let pid = a
        .api_server_pid()
        .context("kube-apiserver process of the first cluster not found")?;
    let port = a.api_server_port().context("no kube-apiserver port")?;
    let status = tokio::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await?;
    ensure!(status.success(), "kill -KILL {pid} failed");
    wait_until(
        "the killed kube-apiserver stops listening",
        Duration::from_secs(10),
        || port_closed(port).unwrap_or(false),
    )
    .await?;
    let nodes: Api<Node> = Api::all(a.client());
    ensure!(
        tokio::time::timeout(Duration::from_secs(10), nodes.list(&ListParams::default()))
            .await
            .map(|r| r.is_err())
            .unwrap_or(true),
        "the killed cluster still answers"
    );

    tokio::try_join!(
        apply_and_wait_available(b.client(), "after-kill", 2),
        apply_and_wait_available(c.client(), "after-kill", 2),
    )?;

    // Deleting the broken cluster works and does not disturb the others.
    let b_port = b.api_server_port().context("no kube-apiserver port")?;
    a.delete().await?;
    ensure!(
        port_listening(b_port),
        "deleting one cluster stopped another"
    );
    apply_and_wait_available(b.client(), "after-delete", 1).await?;
    b.delete().await?;
    c.delete().await?;
    Ok(())
}
