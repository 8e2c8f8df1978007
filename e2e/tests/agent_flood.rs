//! A flooding agent: one cluster's credential sending large heartbeats and Work statuses as
//! fast as it can must not slow the other clusters' propagation by more than 20% (measured in
//! the same run), nor grow the hub's memory without bound. The other clusters run the real
//! agent engine over in-memory members; no member cluster is needed.
//!
//! Quiet and flooded changes are measured in alternating rounds, so that a slower or faster
//! moment of the shared machine weighs on both medians alike.

mod agent_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agent_support::{HubProcess, wait_for};
use anyhow::{Context, Result, ensure};
use flotilla_agent::connect::{self, ClientIdentity};
use flotilla_agent::engine::{Engine, EngineConfig};
use flotilla_agent::fake::FakeMember;
use flotilla_agent::metrics::Metrics;
use flotilla_proto::v1::{
    AgentMessage, Heartbeat, Hello, ManifestStatus, WorkStatus, agent_message,
};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Clusters propagating normally.
const NORMAL: usize = 4;
/// Alternating rounds: quiet, flooded, quiet, flooded, ...
const ROUNDS: usize = 12;
/// Changes measured per round.
const CHANGES_PER_ROUND: usize = 10;
/// Time for the hub to take in what the flooder had already sent before a quiet round.
const DRAIN: Duration = Duration::from_secs(2);
/// Time for the flood to reach full pace before a flooded round.
const RAMP: Duration = Duration::from_millis(500);

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

fn hub_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The image of `web` in a member, if it holds it.
fn image(m: &FakeMember) -> Option<String> {
    m.objects()
        .into_iter()
        .find(|(t, _)| t.kind == "Deployment" && t.name == "web")
        .and_then(|(_, o)| {
            o.pointer("/spec/template/spec/containers/0/image")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
}

/// Times from an image change's API response until every member holds it, one per change.
async fn measure(
    deploys: &Api<Deployment>,
    members: &[Arc<FakeMember>],
    first: usize,
    samples: &mut Vec<Duration>,
) -> Result<()> {
    for k in first..first + CHANGES_PER_ROUND {
        let img = format!("registry.example/web:{k}");
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": img}]}}}});
        deploys
            .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
            .await?;
        let written = Instant::now();
        loop {
            if members
                .iter()
                .all(|m| image(m).as_deref() == Some(img.as_str()))
            {
                samples.push(written.elapsed());
                break;
            }
            ensure!(
                written.elapsed() < Duration::from_secs(60),
                "change {k} did not reach every member within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Sends maximal heartbeats and Work statuses on `cluster`'s stream as fast as the hub takes
/// them while `flooding` is true, counting what was sent, until `stop`.
async fn flood(
    addr: String,
    ca: String,
    id: ClientIdentity,
    cluster: String,
    sent: Arc<AtomicU64>,
    mut flooding: tokio::sync::watch::Receiver<bool>,
    stop: CancellationToken,
) -> Result<()> {
    let ch = connect::authenticated(&addr, &ca, &id).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<AgentMessage>(4);
    tx.send(AgentMessage {
        message: Some(agent_message::Message::Hello(Hello {
            cluster_name: cluster.clone(),
            resume_revision: 0,
            agent_version: "flood".into(),
        })),
    })
    .await?;
    let mut stream = connect::client(ch)
        .work_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    tokio::spawn(async move { while let Ok(Some(_)) = stream.message().await {} });
    let big = vec![b'x'; 900];
    for n in 0u64.. {
        // Every heartbeat differs (so none is skipped as unchanged), at the size limits.
        let hb = Heartbeat {
            api_reachable: true,
            message: "m".repeat(4096),
            allocatable: (0..128)
                .map(|i| (format!("example.com/r{i}"), format!("{}", n + i)))
                .collect(),
            ..Default::default()
        };
        let status = WorkStatus {
            work_name: "flood-cm-configmap".into(),
            observed_generation: 1,
            applied: n % 2 == 0,
            message: format!("flood {n}"),
            // One shared buffer for the 1,000 manifests: the flooder spends its time sending.
            manifests: vec![
                ManifestStatus {
                    status_json: format!(
                        "{{\"n\":{n},\"pad\":\"{}\"}}",
                        String::from_utf8_lossy(&big)
                    )
                    .into_bytes()
                    .into(),
                    ..Default::default()
                };
                1000
            ],
        };
        while !*flooding.borrow_and_update() {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = flooding.changed() => r?,
            }
        }
        for m in [
            agent_message::Message::Heartbeat(hb),
            agent_message::Message::Status(status),
        ] {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = tx.send(AgentMessage { message: Some(m) }) => r?,
            }
            sent.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_agent_does_not_slow_the_others() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir()?;
    let hub = HubProcess::start(&tmp.path().join("hub"), 40).await?;
    let hub_pid = hub.pid().context("the hub's pid")?;

    // Enroll the normal clusters and the flooder.
    let mut regs = Vec::new();
    for i in 0..NORMAL {
        regs.push(hub.register(&format!("n{i}")).await?);
    }
    let flood_reg = hub.register("flooder").await?;
    let addr = field(&flood_reg, "hubAddress").to_owned();
    let ca = connect::discover(&addr, field(&flood_reg, "caHash")).await?;
    let shutdown = CancellationToken::new();
    let mut members = Vec::new();
    // The engines' member-event channels stay open for the whole test.
    let mut event_senders = Vec::new();
    for (i, r) in regs.iter().enumerate() {
        let cluster = format!("n{i}");
        let id = connect::enroll(&addr, &ca, &cluster, field(r, "token")).await?;
        let ch = connect::authenticated(&addr, &ca, &id).await?;
        let member = Arc::new(FakeMember::new());
        let (events_tx, events) = tokio::sync::mpsc::channel(16);
        event_senders.push(events_tx);
        let mut cfg = EngineConfig::new(&cluster);
        cfg.heartbeat = Duration::from_secs(10);
        let engine = Engine::new(cfg, member.clone(), events, Arc::new(Metrics::default()));
        tokio::spawn(engine.run(ch, shutdown.clone()));
        members.push(member);
    }
    let flood_id = connect::enroll(&addr, &ca, "flooder", field(&flood_reg, "token")).await?;
    hub.ctl_stdin(
        &["work", "put", "--cluster", "flooder", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: flood}\ndata: {a: '1'}\n",
    )
    .await?;

    // One Deployment propagated to every normal cluster.
    let names: Vec<String> = (0..NORMAL).map(|i| format!("n{i}")).collect();
    let yaml = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: shop}}\n---\napiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {{name: web, namespace: shop}}\nspec:\n  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: web}}]\n  placement:\n    clusterAffinity: {{clusterNames: {names:?}}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: shop}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: web, image: 'registry.example/web:start'}}]\n"
    );
    let path = tmp.path().join("web.yaml");
    std::fs::write(&path, yaml)?;
    hub.kubectl(&["apply", "-f", path.to_str().context("path")?])
        .await?;
    wait_for("web in every member", Duration::from_secs(90), || async {
        Ok(members
            .iter()
            .all(|m| image(m).as_deref() == Some("registry.example/web:start"))
            .then_some(()))
    })
    .await?;
    let kc = kube::config::Kubeconfig::read_from(&hub.kubeconfig)?;
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?,
    )?;
    let deploys: Api<Deployment> = Api::namespaced(client, "shop");

    // The flooder connects and exhausts its bursts before the first round.
    let rss_before = hub_rss_kib(hub_pid);
    let sent = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let (flooding, flooding_rx) = tokio::sync::watch::channel(true);
    let flooder = tokio::spawn(flood(
        addr.clone(),
        ca.clone(),
        flood_id,
        "flooder".into(),
        sent.clone(),
        flooding_rx,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let flood_started = Instant::now();
    let (mut quiet, mut flooded) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let is_flooded = round % 2 == 1;
        flooding.send_replace(is_flooded);
        tokio::time::sleep(if is_flooded { RAMP } else { DRAIN }).await;
        let samples = if is_flooded { &mut flooded } else { &mut quiet };
        measure(&deploys, &members, round * CHANGES_PER_ROUND, samples).await?;
    }
    flooding.send_replace(true);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_after = hub_rss_kib(hub_pid);
    let flood_secs = flood_started.elapsed().as_secs_f64() + 10.0;
    stop.cancel();
    let _ = flooder.await;
    let messages = sent.load(Ordering::Relaxed);
    let (quiet, flooded) = (median(quiet), median(flooded));
    eprintln!(
        "median change: quiet {quiet:?}, flooded {flooded:?} ({:.2}x); flooder sent {messages} messages in {flood_secs:.0} s; hub RSS {} -> {} MiB",
        flooded.as_secs_f64() / quiet.as_secs_f64().max(1e-9),
        rss_before / 1024,
        rss_after / 1024
    );
    // The flood was real: the flooder kept the hub's limits busy (its sends wait only on the
    // hub taking messages).
    ensure!(messages >= 20, "the flooder sent only {messages} messages");
    ensure!(
        flooded.as_secs_f64() <= quiet.as_secs_f64() * 1.2,
        "the flood slowed propagation from {quiet:?} to {flooded:?} (more than 20%)"
    );
    // The store's page cache (128 MiB by default) fills with the large statuses; beyond it
    // the flood may cost little.
    ensure!(
        rss_after <= rss_before + (128 + 64) * 1024,
        "the hub's memory grew from {} to {} MiB during the flood",
        rss_before / 1024,
        rss_after / 1024
    );
    shutdown.cancel();
    Ok(())
}
