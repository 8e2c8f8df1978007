//! FederatedHPA cost: one real hub process, N simulated clusters connected as real agents
//! (the real engine, gRPC client and metrics reports, with in-memory members whose pods use a
//! set percentage of their cpu requests), T Deployments each divided over two clusters, and
//! one FederatedHPA per Deployment (cpu 50 %, 1 to 4 replicas).
//!
//! Measures the hub's CPU over the same window twice in one run: with the Deployments alone,
//! then with the FederatedHPAs evaluating every 15 s on the agents' reports (usage at the
//! target, so nothing scales), and reports the difference. Then checks the result: usage is
//! raised to 100 % of the requests, so every FederatedHPA must scale its Deployment from 2 to
//! 4 replicas, and every member must hold its share.
//!
//! ```sh
//! cargo build --release -p flotilla-hub -p flotilla-agent --example fhpa_bench
//! $CARGO_TARGET_DIR/release/examples/fhpa_bench --clusters 100 --fhpas 1000
//! ```

mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use flotilla_agent::fake::FakeMember;
use futures::StreamExt;
use serde_json::{Value, json};
use support::{Agents, ClusterSpec, HubProcess};

#[derive(Debug, Clone, Parser)]
#[command(about = "The hub's CPU cost of FederatedHPAs over simulated clusters")]
struct Args {
    /// Simulated clusters (pairs of them share Deployments).
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    /// FederatedHPAs (one Deployment each).
    #[arg(long, default_value_t = 1_000)]
    fhpas: usize,
    /// Seconds over which the hub's CPU is measured, each time.
    #[arg(long, default_value_t = 120)]
    measure_secs: u64,
    /// The hub binary's profile directory (`release` or `debug`).
    #[arg(long, default_value = "release")]
    profile: String,
}

const NS: &str = "bench";

fn deployment(t: usize, pairs: usize) -> Value {
    let name = format!("app-{t}");
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": {"bench/pair": format!("p{}", t % pairs)}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.local/app:1",
                    "resources": {"requests": {"cpu": "100m"}}}]}}}})
}

fn fhpa(t: usize) -> Value {
    let name = format!("app-{t}");
    json!({"apiVersion": "autoscaling.karmada.io/v1alpha1", "kind": "FederatedHPA",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1, "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}]}})
}

/// Policy `p` divides the Deployments labelled `bench/pair=p<p>` 1:1 over the clusters
/// labelled `bench/pair=p<p>` (clusters `2p` and `2p+1`).
fn policy(p: usize) -> Value {
    let pair = format!("p{p}");
    json!({"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": pair, "namespace": NS},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment",
                "labelSelector": {"matchLabels": {"bench/pair": pair}}}],
            "placement": {"clusterAffinity": {"labelSelector": {"matchLabels": {"bench/pair": pair}}},
                "replicaScheduling": {"replicaSchedulingType": "Divided",
                    "replicaDivisionPreference": "Weighted"}}}})
}

async fn create_all(client: &kube::Client, path: &str, objects: Vec<Value>) -> Result<()> {
    let results: Vec<Result<Value>> = futures::stream::iter(objects)
        .map(|o| async move {
            support::request(
                client,
                http::Method::POST,
                path,
                "application/json",
                Some(&o),
            )
            .await
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(())
}

/// Replicas the members hold of each Deployment, summed.
fn held(agents: &Agents<FakeMember>, deployments: usize) -> Vec<i64> {
    let mut out = vec![0i64; deployments];
    for a in &agents.agents {
        for (k, v) in a.member.objects() {
            if k.kind == "Deployment"
                && let Some(t) = k
                    .name
                    .strip_prefix("app-")
                    .and_then(|n| n.parse::<usize>().ok())
                && t < deployments
            {
                out[t] += v
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
            }
        }
    }
    out
}

async fn wait_held(
    agents: &Agents<FakeMember>,
    deployments: usize,
    want: i64,
    timeout: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let h = held(agents, deployments);
        let done = h.iter().filter(|n| **n == want).count();
        if done == deployments {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            bail!(
                "after {timeout:?} {done} of {deployments} Deployments are held at {want} replicas in the members"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The hub's CPU over `secs`, in percent of one core.
async fn cpu_percent(pid: u32, secs: u64) -> Result<f64> {
    let before = support::cpu_ticks(pid)?;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let after = support::cpu_ticks(pid)?;
    Ok((after.saturating_sub(before)) as f64 / support::TICKS_PER_SECOND / secs as f64 * 100.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let machine = support::machine();
    let dir = tempfile::tempdir()?;
    let binary = support::hub_binary(&args.profile);
    let hub = HubProcess::start(&binary, &dir.path().join("hub"), &[]).await?;
    eprintln!("hub {} started ({})", hub.pid, binary.display());
    let pairs = (args.clusters / 2).max(1);
    let specs: Vec<ClusterSpec> = (0..args.clusters)
        .map(|i| ClusterSpec {
            name: format!("c{i:04}"),
            region: Some(format!("region-{}", i % 3)),
            labels: [("bench/pair".to_owned(), format!("p{}", (i / 2) % pairs))].into(),
        })
        .collect();
    let enrolled = support::register_and_enroll(&hub.hub, &specs, 16).await?;
    let mut agents: Agents<FakeMember> = Agents::new();
    agents
        .start(
            &enrolled,
            &enrolled.creds,
            Duration::from_secs(10),
            100,
            Duration::from_secs(120),
            |_| FakeMember::new(),
        )
        .await?;
    for a in &agents.agents {
        a.member.set_usage_percent(50);
    }
    support::wait_clusters_ready(&hub.client, args.clusters, Duration::from_secs(300)).await?;
    support::request(
        &hub.client,
        http::Method::POST,
        "/api/v1/namespaces",
        "application/json",
        Some(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})),
    )
    .await?;
    let pp_path = format!("/apis/policy.karmada.io/v1alpha1/namespaces/{NS}/propagationpolicies");
    create_all(&hub.client, &pp_path, (0..pairs).map(policy).collect()).await?;
    let started = Instant::now();
    create_all(
        &hub.client,
        &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
        (0..args.fhpas).map(|t| deployment(t, pairs)).collect(),
    )
    .await?;
    wait_held(&agents, args.fhpas, 2, Duration::from_secs(600)).await?;
    eprintln!(
        "{} Deployments held at 2 replicas in the members after {:.0}s",
        args.fhpas,
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(15)).await;
    let without = cpu_percent(hub.pid, args.measure_secs).await?;
    eprintln!("hub CPU without FederatedHPAs: {without:.2}% of a core");

    create_all(
        &hub.client,
        &format!("/apis/autoscaling.karmada.io/v1alpha1/namespaces/{NS}/federatedhpas"),
        (0..args.fhpas).map(fhpa).collect(),
    )
    .await?;
    // Every FederatedHPA has evaluated and reported at the target at least twice.
    let fhpa_list = format!("/apis/autoscaling.karmada.io/v1alpha1/namespaces/{NS}/federatedhpas");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = support::request(
            &hub.client,
            http::Method::GET,
            &fhpa_list,
            "application/json",
            None,
        )
        .await?;
        let active = list
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|f| {
                f.pointer("/status/currentMetrics/0/resource/current/averageUtilization")
                    .and_then(Value::as_i64)
                    == Some(50)
            })
            .count();
        if active == args.fhpas {
            break;
        }
        if Instant::now() > deadline {
            let sample = list.pointer("/items/0/status").cloned().unwrap_or_default();
            bail!(
                "only {active} of {} FederatedHPAs report 50% utilization after 300 s; the first one's status: {sample}",
                args.fhpas
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    let with = cpu_percent(hub.pid, args.measure_secs).await?;
    let unchanged = held(&agents, args.fhpas).iter().all(|n| *n == 2);
    eprintln!(
        "hub CPU with {} FederatedHPAs: {with:.2}% of a core",
        args.fhpas
    );
    if !unchanged {
        bail!("a FederatedHPA scaled a Deployment whose usage is at its target");
    }

    // The result: usage at 100 % of requests asks for 4 replicas everywhere.
    for a in &agents.agents {
        a.member.set_usage_percent(100);
    }
    let scaled = wait_held(&agents, args.fhpas, 4, Duration::from_secs(300))
        .await
        .context("scaling up on the agents' reports")?;
    let rss = support::rss_kib(hub.pid);
    println!(
        "fhpa_bench: {machine}\n  clusters {}, FederatedHPAs {}, window {} s each\n  hub CPU without FederatedHPAs {without:.2}% of a core, with {with:.2}%: {:.2} points for {} FederatedHPAs ({:.4} per 1,000 FederatedHPA evaluations per minute)\n  usage raised to 100%: every Deployment held at 4 replicas in its members after {:.1} s\n  hub RSS {:.1} MiB",
        args.clusters,
        args.fhpas,
        args.measure_secs,
        with - without,
        args.fhpas,
        (with - without) / (args.fhpas as f64 * 4.0 / 1000.0),
        scaled.as_secs_f64(),
        rss as f64 / 1024.0,
    );
    agents.stop().await;
    hub.stop().await;
    Ok(())
}
