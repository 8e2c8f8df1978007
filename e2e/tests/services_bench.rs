//! Service discovery benchmarks with real member clusters (ignored; run with
//! `cargo test -p flotilla-e2e --test services_bench -- --ignored --nocapture --test-threads 1`,
//! `FLOTILLA_E2E_RELEASE=1` for release builds of the hub and agents):
//!
//! - `endpoint_change_to_consumer`: how long an endpoint change in a provider's EndpointSlice
//!   takes to reach the consumer's imported slice (`BENCH_CHANGES`, default 50).
//! - `cost_of_exported_services`: the hub's and the agents' CPU and memory with
//!   `BENCH_SERVICES` (default 1,000) Services of 10 endpoints each, exported from three
//!   clusters and imported into one, against the same Services propagated but not exported.
//!
//! Provider endpoints are EndpointSlices written directly into the members (Services without
//! a selector), so a change's time is known exactly and no pods are needed. The Services are
//! headless (imported as `Headless`): a member's service range holds only 254 cluster IPs.
#![allow(clippy::unwrap_used, missing_docs)]

mod agent_support;
mod failover_support;

use std::time::{Duration, Instant};

use agent_support::{HubProcess, build_binaries, wait_for};
use anyhow::{Context, Result, ensure};
use failover_support::{Member, install_mcs_crds, join_members};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};

const NS: &str = "bench";
const MANAGED: &str = "endpointslice.kubernetes.io/managed-by=service-discovery.flotilla.io";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Services `svc-0000`... without a selector, exported and imported as asked, each kind
/// propagated by one policy selecting all of that kind in the namespace.
fn hub_objects(
    n: usize,
    services: bool,
    exports: &[&str],
    imports: &[&str],
    providers: &[&str],
) -> String {
    let mut y = String::new();
    let policy = |kind: &str, api: &str, clusters: &[&str]| {
        format!(
            "---\napiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {{name: all-{}, namespace: {NS}}}\nspec:\n  resourceSelectors: [{{apiVersion: {api}, kind: {kind}}}]\n  placement:\n    clusterAffinity: {{clusterNames: [{}]}}\n",
            kind.to_lowercase(),
            clusters.join(", ")
        )
    };
    if services {
        y.push_str(&policy("Service", "v1", providers));
    }
    if !exports.is_empty() {
        y.push_str(&policy(
            "ServiceExport",
            "multicluster.x-k8s.io/v1alpha1",
            exports,
        ));
    }
    if !imports.is_empty() {
        y.push_str(&policy(
            "ServiceImport",
            "multicluster.x-k8s.io/v1alpha1",
            imports,
        ));
    }
    for i in 0..n {
        let name = format!("svc-{i:04}");
        if services {
            y.push_str(&format!(
                "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  clusterIP: None\n  ports: [{{name: http, port: 80, targetPort: 8080}}]\n"
            ));
        }
        if !exports.is_empty() {
            y.push_str(&format!(
                "---\napiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata: {{name: {name}, namespace: {NS}}}\n"
            ));
        }
        if !imports.is_empty() {
            y.push_str(&format!(
                "---\napiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceImport\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  type: Headless\n  ports: [{{name: http, protocol: TCP, port: 80}}]\n"
            ));
        }
    }
    y
}

/// A provider's own slice of `svc`: `addresses` with their readiness.
fn slice(svc: &str, addresses: &[(String, bool)]) -> Value {
    let endpoints: Vec<Value> = addresses
        .iter()
        .map(|(a, ready)| json!({"addresses": [a], "conditions": {"ready": ready}}))
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{svc}-own"), "namespace": NS,
            "labels": {"kubernetes.io/service-name": svc,
                       "endpointslice.kubernetes.io/managed-by": "bench.flotilla.io"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    })
}

async fn put_slice(api: &Api<EndpointSlice>, v: &Value) -> Result<()> {
    let name = v["metadata"]["name"].as_str().context("name")?;
    api.patch(
        name,
        &PatchParams::apply("services-bench").force(),
        &Patch::Apply(v),
    )
    .await
    .with_context(|| format!("writing EndpointSlice {name}"))?;
    Ok(())
}

/// The imported slices a consumer has, as (Service, source cluster, ready endpoints,
/// addresses).
async fn consumer_slices(
    api: &Api<EndpointSlice>,
) -> Result<Vec<(String, String, usize, Vec<String>)>> {
    let list = api.list(&ListParams::default().labels(MANAGED)).await?;
    Ok(list
        .items
        .iter()
        .map(|s| {
            let labels = s.metadata.labels.clone().unwrap_or_default();
            let svc = labels
                .get("kubernetes.io/service-name")
                .cloned()
                .unwrap_or_default();
            let source = labels
                .get("multicluster.kubernetes.io/source-cluster")
                .cloned()
                .unwrap_or_default();
            let ready = s
                .endpoints
                .iter()
                .flatten()
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
                .count();
            let addresses = s
                .endpoints
                .iter()
                .flatten()
                .flat_map(|e| e.addresses.clone())
                .collect();
            (svc, source, ready, addresses)
        })
        .collect())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark"]
async fn endpoint_change_to_consumer() -> Result<()> {
    let changes = env_or("BENCH_CHANGES", 50);
    build_binaries()?;
    let dir = tempfile::tempdir()?;
    let hub = HubProcess::start(dir.path(), 40).await?;
    let members = join_members(&hub, dir.path(), &[("lp", "us-east"), ("lc", "us-east")]).await?;
    install_mcs_crds(&members).await?;
    hub.kubectl(&["create", "namespace", NS]).await?;
    hub.apply(&hub_objects(1, true, &["lp"], &["lc"], &["lp"]))
        .await?;
    let provider: Api<EndpointSlice> = Api::namespaced(members[0].cluster.client(), NS);
    let consumer: Api<EndpointSlice> = Api::namespaced(members[1].cluster.client(), NS);
    let address = |i: usize| format!("10.1.{}.{}", i / 200, i % 200 + 1);
    put_slice(&provider, &slice("svc-0000", &[(address(0), true)])).await?;
    let arrived = |want: String| {
        let consumer = consumer.clone();
        async move {
            Ok(consumer_slices(&consumer)
                .await?
                .iter()
                .any(|s| s.3.contains(&want) && s.2 == 1)
                .then_some(()))
        }
    };
    wait_for(
        "the first endpoint in the consumer",
        Duration::from_secs(90),
        || arrived(address(0)),
    )
    .await?;
    let mut took = Vec::new();
    for i in 1..=changes {
        let want = address(i);
        let started = Instant::now();
        put_slice(&provider, &slice("svc-0000", &[(want.clone(), true)])).await?;
        loop {
            if arrived(want.clone()).await?.is_some() {
                break;
            }
            ensure!(
                started.elapsed() < Duration::from_secs(30),
                "change {i} did not reach the consumer in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        took.push(started.elapsed());
        // Changes spaced like independent events, not one burst.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    took.sort();
    eprintln!(
        "endpoint change to consumer over {changes} changes: p50 {:.0} ms, p99 {:.0} ms, min {:.0} ms, max {:.0} ms",
        percentile(&took, 0.5).as_secs_f64() * 1000.0,
        percentile(&took, 0.99).as_secs_f64() * 1000.0,
        took[0].as_secs_f64() * 1000.0,
        took[took.len() - 1].as_secs_f64() * 1000.0,
    );
    Ok(())
}

const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?)
}

fn rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb / 1024.0)
}

/// CPU seconds used by the hub and by all agents together since `before`.
struct Cpu {
    hub: u64,
    agents: u64,
}

fn cpu(hub: &HubProcess, members: &[Member]) -> Result<Cpu> {
    let mut agents = 0;
    for m in members {
        agents += cpu_ticks(m.agent.pid().context("agent pid")?)?;
    }
    Ok(Cpu {
        hub: cpu_ticks(hub.pid().context("hub pid")?)?,
        agents,
    })
}

fn used(before: &Cpu, after: &Cpu) -> (f64, f64) {
    (
        after.hub.saturating_sub(before.hub) as f64 / TICKS_PER_SECOND,
        after.agents.saturating_sub(before.agents) as f64 / TICKS_PER_SECOND,
    )
}

fn memory(hub: &HubProcess, members: &[Member]) -> Result<(f64, f64)> {
    let mut agents: f64 = 0.0;
    for m in members {
        agents = agents.max(rss_mib(m.agent.pid().context("agent pid")?)?);
    }
    Ok((rss_mib(hub.pid().context("hub pid")?)?, agents))
}

/// CPU over `secs` as percent of one core (hub, all agents), and RSS (hub, largest agent).
async fn steady(hub: &HubProcess, members: &[Member], secs: u64) -> Result<[f64; 4]> {
    let before = cpu(hub, members)?;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (h, a) = used(&before, &cpu(hub, members)?);
    let (hm, am) = memory(hub, members)?;
    Ok([h / secs as f64 * 100.0, a / secs as f64 * 100.0, hm, am])
}

async fn count(hub: &HubProcess, args: &[&str]) -> Result<usize> {
    Ok(hub.kubectl(args).await?.lines().count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark"]
async fn cost_of_exported_services() -> Result<()> {
    let n = env_or("BENCH_SERVICES", 1000);
    let secs = env_or("BENCH_SECONDS", 60) as u64;
    const ENDPOINTS: usize = 10;
    build_binaries()?;
    let dir = tempfile::tempdir()?;
    let hub = HubProcess::start(dir.path(), 40).await?;
    let names = ["s1", "s2", "s3"];
    let members = join_members(
        &hub,
        dir.path(),
        &[("s1", "us-east"), ("s2", "us-east"), ("s3", "us-east")],
    )
    .await?;
    install_mcs_crds(&members).await?;
    hub.kubectl(&["create", "namespace", NS]).await?;
    let file = dir.path().join("services.yaml");
    std::fs::write(&file, hub_objects(n, true, &[], &[], &names))?;
    hub.kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap()])
        .await?;
    // Every provider's own slice: 10 ready endpoints per Service.
    let ready_of = |m: usize, i: usize, flipped: bool| -> Vec<(String, bool)> {
        (0..ENDPOINTS)
            .map(|e| {
                (
                    format!("10.{}.{}.{}", m + 10, i / 25, (i % 25) * 10 + e + 1),
                    !(flipped && e == 0),
                )
            })
            .collect()
    };
    for (mi, m) in members.iter().enumerate() {
        let api: Api<EndpointSlice> = Api::namespaced(m.cluster.client(), NS);
        wait_for(
            &format!("{} has the namespace", m.name),
            Duration::from_secs(120),
            || async { Ok(m.get(&["namespace", NS, "-o", "name"]).await?.map(|_| ())) },
        )
        .await?;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in (0..n).collect::<Vec<_>>().chunks(n.div_ceil(8).max(1)) {
            let api = api.clone();
            let slices: Vec<Value> = chunk
                .iter()
                .map(|&i| slice(&format!("svc-{i:04}"), &ready_of(mi, i, false)))
                .collect();
            tasks.spawn(async move {
                for s in &slices {
                    put_slice(&api, s).await?;
                }
                Ok::<(), anyhow::Error>(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        eprintln!(
            "{}: {n} EndpointSlices written in {:.1}s",
            m.name,
            started.elapsed().as_secs_f64()
        );
    }
    for m in &members {
        wait_for(
            &format!("{} has the {n} Services", m.name),
            Duration::from_secs(600),
            || async {
                let got = m
                    .get(&["services", "-n", NS, "-o", "name"])
                    .await?
                    .unwrap_or_default()
                    .lines()
                    .count();
                Ok((got >= n).then_some(()))
            },
        )
        .await?;
    }
    let base = steady(&hub, &members, secs).await?;
    eprintln!("propagated, not exported: {base:?}");

    // Exported from all three, imported into s3.
    std::fs::write(&file, hub_objects(n, false, &names, &["s3"], &names))?;
    let before = cpu(&hub, &members)?;
    let started = Instant::now();
    hub.kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap()])
        .await?;
    let consumer: Api<EndpointSlice> = Api::namespaced(members[2].cluster.client(), NS);
    let want_copies = 3 * n;
    wait_for(
        "every provider slice copied on the hub and imported into s3",
        Duration::from_secs(1800),
        || async {
            let copies = count(
                &hub,
                &[
                    "get",
                    "endpointslices",
                    "-n",
                    NS,
                    "-l",
                    "multicluster.kubernetes.io/source-cluster",
                    "-o",
                    "name",
                ],
            )
            .await?;
            let imported = consumer_slices(&consumer)
                .await?
                .iter()
                .filter(|s| s.2 == ENDPOINTS)
                .count();
            eprintln!(
                "  {:>4.0}s: {copies}/{want_copies} hub copies, {imported}/{want_copies} imported slices ready in s3",
                started.elapsed().as_secs_f64()
            );
            Ok((copies == want_copies && imported == want_copies).then_some(()))
        },
    )
    .await?;
    let synced = started.elapsed();
    let (sync_hub, sync_agents) = used(&before, &cpu(&hub, &members)?);
    eprintln!(
        "synced in {:.1}s: hub {sync_hub:.1} CPU s, agents {sync_agents:.1} CPU s",
        synced.as_secs_f64()
    );
    let idle = steady(&hub, &members, secs).await?;
    eprintln!("exported and imported, idle: {idle:?}");

    // Churn: every second, one endpoint of ten of s1's Services turns not ready or back.
    let provider: Api<EndpointSlice> = Api::namespaced(members[0].cluster.client(), NS);
    let before = cpu(&hub, &members)?;
    let mut flipped = vec![false; n];
    let churn_started = Instant::now();
    let mut changes = 0;
    for second in 0..secs as usize {
        let tick = Instant::now();
        for k in 0..10 {
            let i = (second * 10 + k) % n;
            flipped[i] = !flipped[i];
            put_slice(
                &provider,
                &slice(&format!("svc-{i:04}"), &ready_of(0, i, flipped[i])),
            )
            .await?;
            changes += 1;
        }
        if let Some(rest) = Duration::from_secs(1).checked_sub(tick.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let churn_secs = churn_started.elapsed().as_secs_f64();
    let (ch, ca) = used(&before, &cpu(&hub, &members)?);
    let (chm, cam) = memory(&hub, &members)?;
    // The consumer ends with s1's final readiness for every Service.
    wait_for(
        "s3 has s1's final readiness",
        Duration::from_secs(60),
        || async {
            let rows = consumer_slices(&consumer).await?;
            let wrong = (0..n)
                .filter(|&i| {
                    let svc = format!("derived-svc-{i:04}");
                    let want = if flipped[i] { ENDPOINTS - 1 } else { ENDPOINTS };
                    !rows
                        .iter()
                        .any(|r| r.0 == svc && r.1 == "s1" && r.2 == want)
                })
                .count();
            Ok((wrong == 0).then_some(()))
        },
    )
    .await?;
    eprintln!(
        "churn ({changes} changes in {churn_secs:.0}s): hub {:.2}% agents {:.2}% hub RSS {chm:.0} MiB agent RSS {cam:.0} MiB",
        ch / churn_secs * 100.0,
        ca / churn_secs * 100.0
    );
    eprintln!("| | hub CPU (% of a core) | 3 agents' CPU | hub RSS | largest agent RSS |");
    eprintln!("|---|---|---|---|---|");
    eprintln!(
        "| {n} Services propagated to 3 clusters, not exported | {:.2} % | {:.2} % | {:.0} MiB | {:.0} MiB |",
        base[0], base[1], base[2], base[3]
    );
    eprintln!(
        "| the same exported from 3, imported into 1, idle | {:.2} % | {:.2} % | {:.0} MiB | {:.0} MiB |",
        idle[0], idle[1], idle[2], idle[3]
    );
    eprintln!(
        "| the same, 10 endpoint changes a second | {:.2} % | {:.2} % | {chm:.0} MiB | {cam:.0} MiB |",
        ch / churn_secs * 100.0,
        ca / churn_secs * 100.0
    );
    eprintln!(
        "initial sync of {want_copies} slices: {:.1} s, hub {sync_hub:.1} CPU s, agents {sync_agents:.1} CPU s",
        synced.as_secs_f64()
    );
    Ok(())
}
