//! Benchmark: N simulated agents (the real protocol client and engine, with in-memory member
//! clusters) connected to one real hub process.
//!
//! Measures the hub's memory per connected cluster, the time for one change that touches
//! every cluster to reach all of them, and the latency of a single-cluster change.
//!
//! ```sh
//! cargo build -p flotilla-hub && cargo run --release -p flotilla-agent --example bench_agents -- 100
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use flotilla_agent::connect::{self, ClientIdentity};
use flotilla_agent::engine::{Engine, EngineConfig};
use flotilla_agent::fake::FakeMember;
use flotilla_agent::metrics::Metrics;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

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
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let profile = std::env::var("BENCH_HUB_PROFILE").unwrap_or_else(|_| "debug".into());
    let hub_bin = target.join(&profile).join("flotilla-hub");
    let tmp = tempfile::tempdir()?;
    let mut child = tokio::process::Command::new(&hub_bin)
        .arg("--data-dir")
        .arg(tmp.path().join("hub"))
        .args(["--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", hub_bin.display()))?;
    let pid = child.id().context("hub pid")?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let ready = lines.next_line().await?.context("hub exited")?;
    let words: Vec<&str> = ready.split_whitespace().collect();
    let after = |k: &str| {
        words
            .iter()
            .position(|w| *w == k)
            .and_then(|i| words.get(i + 1))
            .map(|s| s.to_string())
    };
    let kubeconfig = PathBuf::from(after("kubeconfig").context("kubeconfig")?);
    let hub = flotillactl::hub::Hub::connect(Some(&kubeconfig)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = rss_kib(pid);
    eprintln!(
        "hub {} ({profile}) RSS at start: {} MiB",
        hub_bin.display(),
        base / 1024
    );

    // Register and enroll N clusters.
    let t = Instant::now();
    let regs: Vec<flotillactl::register::Registration> = futures::stream::iter(0..n)
        .map(|i| {
            let hub = hub.clone();
            async move {
                let o = flotillactl::register::RegisterOptions {
                    name: format!("b{i:04}"),
                    ttl: Duration::from_secs(3600),
                    ..Default::default()
                };
                flotillactl::register::register(&hub, &o).await
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let mut regs = regs;
    regs.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    let addr = regs[0].hub_address.clone();
    let ca = connect::discover(&addr, &regs[0].ca_hash).await?;
    let creds: Vec<(String, ClientIdentity)> = futures::stream::iter(regs.iter())
        .map(|r| {
            let (addr, ca) = (addr.clone(), ca.clone());
            async move {
                let e = connect::enroll(&addr, &ca, &r.cluster, &r.token).await?;
                Ok::<_, anyhow::Error>((
                    r.cluster.clone(),
                    ClientIdentity {
                        cert_pem: e.cert_pem,
                        key_pem: e.key_pem,
                    },
                ))
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let mut creds = creds;
    // Members are indexed like `regs`.
    creds.sort_by(|a, b| a.0.cmp(&b.0));
    eprintln!(
        "registered and enrolled {n} clusters in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let registered = rss_kib(pid);

    // Connect N engines with fake members.
    let shutdown = CancellationToken::new();
    let mut members = Vec::new();
    let mut senders = Vec::new();
    let mut metrics = Vec::new();
    for (cluster, id) in &creds {
        let ch = connect::authenticated(&addr, &ca, id).await?;
        let member = Arc::new(FakeMember::new());
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let m = Arc::new(Metrics::default());
        let engine = Engine::new(EngineConfig::new(cluster), member.clone(), rx, m.clone());
        tokio::spawn(engine.run(ch, shutdown.clone()));
        members.push(member);
        senders.push(tx);
        metrics.push(m);
    }
    let t = Instant::now();
    while !metrics
        .iter()
        .all(|m| m.connected.load(std::sync::atomic::Ordering::Relaxed))
    {
        if t.elapsed() > Duration::from_secs(300) {
            bail!("not all agents connected");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("{n} agents connected in {:.1}s", t.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(12)).await;
    let connected = rss_kib(pid);

    // One change for every cluster: N Work writes through the hub API.
    let t = Instant::now();
    futures::stream::iter(regs.iter())
        .map(|r| {
            let hub = hub.clone();
            async move { flotillactl::work::put(&hub, &r.cluster, vec![manifest("all", "1")]).await }
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
        flotillactl::work::put(&hub, &r.cluster, vec![manifest("one", &i.to_string())]).await?;
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
    shutdown.cancel();
    drop(senders);
    let _ = child.kill().await;
    Ok(())
}
