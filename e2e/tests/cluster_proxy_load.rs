//! The cluster proxy under load, with a real member: a 200 MiB `logs -f` through the hub,
//! whose reader stalls, does not hold back Work delivery over the same agent connection and does not
//! grow the hub's memory by what it carries; and the latency benchmark of proxied GETs
//! against direct ones (`proxy_latency`, ignored: `cargo test -p flotilla-e2e --test
//! cluster_proxy_load -- --ignored --nocapture`).
#![allow(clippy::unwrap_used, missing_docs)]

mod agent_support;

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use agent_support::{AgentProcess, HubProcess, wait_for};
use anyhow::{Context, Result, ensure};
use flotilla_e2e::clusters::{ClusterOptions, MemberCluster, clusters_root, kubectl_path};
use k8s_openapi::api::core::v1::ConfigMap;

/// A hub, one member with its agent, and the hub admin allowed everything in the member.
struct Setup {
    _tmp: tempfile::TempDir,
    hub: HubProcess,
    member: MemberCluster,
    _agent: AgentProcess,
    proxy_kubeconfig: std::path::PathBuf,
}

async fn setup(label: &str) -> Result<Setup> {
    let tmp = tempfile::tempdir()?;
    let hub = HubProcess::start(&tmp.path().join("hub"), 40).await?;
    let member = MemberCluster::create(label, ClusterOptions::with_nodes(1)).await?;
    let reg = hub.register(label).await?;
    let agent = AgentProcess::start(&reg, member.kubeconfig(), &tmp.path().join(label)).await?;
    wait_for("member Ready", Duration::from_secs(90), || async {
        Ok((hub.ready(label).await? == "True").then_some(()))
    })
    .await?;
    let admin = hub
        .kubectl(&[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .await?;
    kubectl(
        member.kubeconfig(),
        &[
            "create",
            "clusterrolebinding",
            "hub-admin",
            "--clusterrole=cluster-admin",
            &format!("--user=flotilla:{admin}"),
        ],
    )
    .await?;
    let proxy_kubeconfig = tmp.path().join("member.kubeconfig");
    hub.ctl(&[
        "kubeconfig",
        "cluster",
        label,
        "--out",
        proxy_kubeconfig.to_str().unwrap(),
    ])
    .await?;
    Ok(Setup {
        _tmp: tmp,
        hub,
        member,
        _agent: agent,
        proxy_kubeconfig,
    })
}

async fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// The hub's resident memory in bytes.
fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb * 1024)
}

/// Changes the propagated ConfigMap on the hub and returns how long until the member has it
/// and the hub has the agent's report that it applied it (both directions of the agent's
/// connection).
async fn propagation_latency(s: &Setup, cluster: &str, value: &str) -> Result<Duration> {
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(s.member.client(), "default");
    let works = format!("karmada-es-{cluster}");
    let started = Instant::now();
    s.hub
        .kubectl(&[
            "patch",
            "configmap",
            "settings",
            "--type=merge",
            "-p",
            &format!(r#"{{"data":{{"color":"{value}"}}}}"#),
        ])
        .await?;
    let mut in_member = false;
    loop {
        if !in_member {
            in_member = api
                .get_opt("settings")
                .await?
                .and_then(|cm| cm.data)
                .and_then(|d| d.get("color").cloned())
                .as_deref()
                == Some(value);
        }
        if in_member {
            let list: serde_json::Value = serde_json::from_str(
                &s.hub
                    .kubectl(&["get", "works", "-n", &works, "-o", "json"])
                    .await?,
            )?;
            let reported = list["items"].as_array().into_iter().flatten().any(|w| {
                let name = w["metadata"]["name"].as_str().unwrap_or_default();
                let generation = w["metadata"]["generation"].as_i64();
                name.starts_with("settings-configmap")
                    && w["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| {
                            c["type"] == "Applied"
                                && c["status"] == "True"
                                && c["observedGeneration"].as_i64() == generation
                        })
            });
            if reported {
                return Ok(started.elapsed());
            }
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the change {value} was not applied and reported in 60 s (in the member: {in_member})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_log_follow_does_not_hold_back_work() -> Result<()> {
    let s = setup("pxload").await?;
    s.hub
        .apply(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  color: start\n---\napiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata:\n  name: settings\n  namespace: default\nspec:\n  resourceSelectors:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: settings\n  placement:\n    clusterAffinity:\n      clusterNames: [{}]\n",
            "pxload"
        ))
        .await?;
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(s.member.client(), "default");
    wait_for(
        "the ConfigMap in the member",
        Duration::from_secs(60),
        || async { Ok(api.get_opt("settings").await?.map(|_| ())) },
    )
    .await?;
    let m = s.member.kubeconfig();
    kubectl(
        m,
        &[
            "create",
            "deployment",
            "web",
            "--image=registry.k8s.io/pause:3.10",
        ],
    )
    .await?;
    kubectl(m, &["rollout", "status", "deployment/web", "--timeout=90s"]).await?;
    let pod = kubectl(
        m,
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ],
    )
    .await?;

    let log_file = clusters_root().join(s.member.name()).join("pod.log");
    // 200 MiB of log text in the member: CRI lines whose message is 1 KiB with its newline.
    let line = format!(
        "2026-01-01T00:00:00.000000000Z stdout F {}\n",
        "x".repeat(1023)
    );
    let total: u64 = 200 * 1024 * 1024;
    {
        let mut f =
            std::io::BufWriter::new(std::fs::OpenOptions::new().append(true).open(&log_file)?);
        for _ in 0..total / 1024 {
            f.write_all(line.as_bytes())?;
        }
        f.flush()?;
    }

    let hub_pid = s.hub.pid().context("hub pid")?;
    let mut before = Vec::new();
    for i in 0..5 {
        before.push(propagation_latency(&s, "pxload", &format!("before-{i}")).await?);
    }
    let rss_before = rss(hub_pid)?;

    // Follow it through the hub: read 20 MiB, then stop reading while Work changes (the
    // stream's windows fill up and it pushes back through the hub to the agent), then read
    // the rest.
    // kube-rs over HTTP/1.1 buffers no more than the socket does (kubectl would take the
    // whole log into its own memory while its output is not read).
    let client = flotilla_e2e::clusters::client_for(&s.proxy_kubeconfig).await?;
    let mut out = client
        .request_stream(
            http::Request::get(format!(
                "/api/v1/namespaces/default/pods/{pod}/log?follow=true"
            ))
            .body(Vec::new())?,
        )
        .await?;
    let (stalled_tx, stalled) = tokio::sync::oneshot::channel();
    let (resume, resumed) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        let mut read: u64 = 0;
        let started = Instant::now();
        let mut stall = Some((stalled_tx, resumed));
        while read < total {
            if read >= 20 * 1024 * 1024
                && let Some((tell, wait)) = stall.take()
            {
                let _ = tell.send(());
                let _ = wait.await;
            }
            let n = futures::AsyncReadExt::read(&mut out, &mut buf).await?;
            ensure!(n > 0, "logs -f ended after {read} bytes");
            read += n as u64;
        }
        Ok::<_, anyhow::Error>(started.elapsed())
    });
    tokio::time::timeout(Duration::from_secs(60), stalled)
        .await
        .context("the first 20 MiB of the log did not arrive in 60 s")??;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut during = Vec::new();
    let mut rss_max = rss_before;
    for i in 0..5 {
        during.push(propagation_latency(&s, "pxload", &format!("during-{i}")).await?);
        rss_max = rss_max.max(rss(hub_pid)?);
    }
    let _ = resume.send(());
    let took = tokio::time::timeout(Duration::from_secs(120), reader)
        .await
        .context("the 200 MB log follow did not finish in 120 s")???;
    rss_max = rss_max.max(rss(hub_pid)?);
    let (b, d) = (median(before), median(during));
    eprintln!(
        "propagation (applied and reported) median {b:?} before, {d:?} while a 200 MiB log follow stalled ({took:?} in all); hub RSS {} MiB before, at most {} MiB during",
        rss_before / (1024 * 1024),
        rss_max / (1024 * 1024)
    );
    ensure!(
        d <= b * 3 + Duration::from_millis(500),
        "Work was held back by the log follow: median {d:?} during against {b:?} before"
    );
    ensure!(
        rss_max < rss_before + 64 * 1024 * 1024,
        "the hub's memory grew by {} MiB carrying the log",
        (rss_max - rss_before) / (1024 * 1024)
    );
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn proxy_latency() -> Result<()> {
    let s = setup("pxbench").await?;
    let m = s.member.kubeconfig();
    kubectl(m, &["create", "configmap", "probe", "--from-literal=k=v"]).await?;
    let direct: kube::Api<ConfigMap> = kube::Api::default_namespaced(s.member.client());
    let proxied: kube::Api<ConfigMap> = kube::Api::namespaced(
        flotilla_e2e::clusters::client_for(&s.proxy_kubeconfig).await?,
        "default",
    );
    let runs: usize = std::env::var("PROXY_GETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    // Warm both paths (connections, TLS).
    for _ in 0..20 {
        direct.get("probe").await?;
        proxied.get("probe").await?;
    }
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let a = direct.get("probe").await?;
        d.push(t.elapsed());
        let t = Instant::now();
        let b = proxied.get("probe").await?;
        p.push(t.elapsed());
        ensure!(
            a.metadata.uid == b.metadata.uid && b.data == a.data,
            "the proxied answer is not the member's object"
        );
    }
    d.sort();
    p.sort();
    let row = |name: &str, v: &[Duration]| {
        format!(
            "{name}: p50 {:.2} ms, p99 {:.2} ms",
            percentile(v, 0.5).as_secs_f64() * 1e3,
            percentile(v, 0.99).as_secs_f64() * 1e3
        )
    };
    eprintln!("{runs} GETs of one ConfigMap, alternating");
    eprintln!("{}", row("direct to the member", &d));
    eprintln!("{}", row("through hub and agent", &p));
    eprintln!(
        "overhead p50 {:.2} ms, p99 {:.2} ms",
        (percentile(&p, 0.5).as_secs_f64() - percentile(&d, 0.5).as_secs_f64()) * 1e3,
        (percentile(&p, 0.99).as_secs_f64() - percentile(&d, 0.99).as_secs_f64()) * 1e3
    );
    Ok(())
}
