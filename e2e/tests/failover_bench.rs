//! The failover-time benchmark (scenario 1 of `failover.rs`, repeated).
#![allow(clippy::unwrap_used, missing_docs)]

mod agent_support;
mod failover_support;

use std::time::Duration;

use agent_support::{build_binaries, wait_for};
use anyhow::{Result, ensure};
use failover_support::{STARTUP_GRACE, app, fail_m1, failover_fleet, m1_recovered};

/// The failover-time benchmark: scenario 1 (m1's kube-apiserver killed under a 2/2/2
/// Deployment), `FAILOVER_RUNS` times (default 5) on one hub and three members, each run with
/// a fresh Deployment once m1 is back and untainted. Prints each run's failover time and
/// fewest healthy replicas, then the median.
///
/// `cargo test -p flotilla-e2e --test failover_bench -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: several minutes; run on demand"]
async fn failover_time() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    build_binaries()?;
    let runs: usize = std::env::var("FAILOVER_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let tmp = tempfile::tempdir()?;
    let (hub, hub_started, members) = failover_fleet(tmp.path()).await?;
    let ms = [&members[0], &members[1], &members[2]];
    let mut results = Vec::new();
    for run in 1..=runs {
        let name = format!("bench-{run}");
        hub.apply(&app(&name, 6, &["m1", "m2", "m3"])).await?;
        wait_for(
            &format!("{name} 2/2/2 ready"),
            Duration::from_secs(120),
            || async {
                let mut ready = Vec::new();
                for m in ms {
                    ready.push(m.ready(&name).await?);
                }
                Ok((ready == [Some(2); 3]).then_some(()))
            },
        )
        .await?;
        tokio::time::sleep(STARTUP_GRACE.saturating_sub(hub_started.elapsed())).await;
        let (took, fewest, stopped) = fail_m1(&hub, ms, &name).await?;
        ensure!(
            fewest >= 4,
            "run {run}: m2+m3 dropped to {fewest} healthy replicas"
        );
        println!(
            "run {run}: failover {:.1} s, fewest healthy in m2+m3 {fewest}",
            took.as_secs_f64()
        );
        results.push((took, fewest));
        ms[0].cluster.start_api_server(stopped).await?;
        m1_recovered(&hub).await?;
        wait_for(
            &format!("{name} gone from m1"),
            Duration::from_secs(60),
            || async { Ok(ms[0].ready(&name).await?.is_none().then_some(())) },
        )
        .await?;
        hub.kubectl(&["delete", "deploy", &name, "-n", "demo", "--timeout=60s"])
            .await?;
    }
    let mut times: Vec<Duration> = results.iter().map(|r| r.0).collect();
    times.sort();
    let p50 = times[times.len() / 2];
    let fewest = results.iter().map(|r| r.1).min().unwrap_or(0);
    println!(
        "failover over {runs} runs: p50 {:.1} s, min {:.1} s, max {:.1} s; fewest healthy replicas in any run {fewest}",
        p50.as_secs_f64(),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    );
    Ok(())
}
