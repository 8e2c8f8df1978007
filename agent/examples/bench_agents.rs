//! Benchmark: N simulated agents (the real protocol client and engine, with in-memory member
//! clusters) connected to one real hub process.
//!
//! Measures the hub's memory per connected cluster, the time for one change that touches
//! every cluster to reach all of them, and the latency of a single-cluster change.
//!
//! ```sh
//! cargo build -p flotilla-hub && cargo run --release -p flotilla-agent --example bench_agents -- 100
//! ```

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use flotilla_agent::fake::FakeMember;
use futures::StreamExt;
use serde_json::{Value, json};
use support::{Agents, ClusterSpec, HubProcess, rss_kib};

fn manifest(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "bench"}, "data": {"v": value}})
}

fn has(member: &FakeMember, name: &str, value: &str) -> bool {
    member.objects().values().any(|o| {
        o.pointer("/metadata/name") == Some(&json!(name))
            && o.pointer("/data/v") == Some(&json!(value))
    })
}

async fn wait_all(
    members: &[Arc<FakeMember>],
    name: &str,
    value: &str,
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    while !members.iter().all(|m| has(m, name, value)) {
        if started.elapsed() > timeout {
            let missing = members.iter().filter(|m| !has(m, name, value)).count();
            bail!(
                "{missing} of {} members did not receive {name}={value} within {timeout:?}",
                members.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100);
    let profile = std::env::var("BENCH_HUB_PROFILE").unwrap_or_else(|_| "debug".into());
    let hub_bin = support::hub_binary(&profile);
    let tmp = tempfile::tempdir()?;
    let hub_process = HubProcess::start(&hub_bin, &tmp.path().join("hub"), &[]).await?;
    let pid = hub_process.pid;
    let hub = hub_process.hub.clone();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = rss_kib(pid);
    eprintln!(
        "hub {} ({profile}) RSS at start: {} MiB",
        hub_bin.display(),
        base / 1024
    );

    // Register and enroll N clusters.
    let t = Instant::now();
    let specs: Vec<ClusterSpec> = (0..n)
        .map(|i| ClusterSpec {
            name: format!("b{i:04}"),
            ..Default::default()
        })
        .collect();
    let enrolled = support::register_and_enroll(&hub, &specs, 16).await?;
    // Members are indexed like `regs`.
    let regs: Vec<String> = enrolled.creds.iter().map(|(c, _)| c.clone()).collect();
    eprintln!(
        "registered and enrolled {n} clusters in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let registered = rss_kib(pid);

    // Connect N engines with fake members.
    let t = Instant::now();
    let mut agents: Agents<FakeMember> = Agents::new();
    agents
        .start(
            &enrolled,
            &enrolled.creds,
            Duration::from_secs(10),
            n,
            Duration::from_secs(300),
            |_| FakeMember::new(),
        )
        .await?;
    let members: Vec<Arc<FakeMember>> = agents.agents.iter().map(|a| a.member.clone()).collect();
    eprintln!("{n} agents connected in {:.1}s", t.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(12)).await;
    let connected = rss_kib(pid);

    // One change for every cluster: N Work writes through the hub API.
    let t = Instant::now();
    futures::stream::iter(regs.iter())
        .map(|r| {
            let hub = hub.clone();
            async move { flotillactl::work::put(&hub, r, vec![manifest("all", "1")]).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let written = t.elapsed();
    wait_all(&members, "all", "1", Duration::from_secs(600)).await?;
    let fanout = t.elapsed();
    let with_work = rss_kib(pid);

    // Single-cluster change latency.
    let mut samples = Vec::new();
    for i in 0..20 {
        let r = &regs[i % regs.len()];
        let m = &members[i % regs.len()];
        let t = Instant::now();
        flotillactl::work::put(&hub, r, vec![manifest("one", &i.to_string())]).await?;
        while !has(m, "one", &i.to_string()) {
            if t.elapsed() > Duration::from_secs(30) {
                bail!("single change did not arrive");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    let per_cluster = connected.saturating_sub(registered) as f64 / n as f64;
    println!("## N = {n}");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| hub RSS: start / {n} registered / {n} connected / with 1 Work each | {} / {} / {} / {} MiB |",
        base / 1024,
        registered / 1024,
        connected / 1024,
        with_work / 1024
    );
    println!(
        "| hub memory per connected agent (connected - registered) / N | {per_cluster:.0} KiB |"
    );
    println!(
        "| one change to all {n} clusters: API writes done | {:.2} s |",
        written.as_secs_f64()
    );
    println!(
        "| one change to all {n} clusters: applied in every member | {:.2} s |",
        fanout.as_secs_f64()
    );
    println!(
        "| single-cluster change, API write to member apply: median / max of 20 | {:.1} / {:.1} ms |",
        samples[10].as_secs_f64() * 1000.0,
        samples[19].as_secs_f64() * 1000.0
    );
    agents.stop().await;
    hub_process.stop().await;
    Ok(())
}
