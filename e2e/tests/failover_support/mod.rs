//! Shared pieces of the failover tests: a hub with cluster failover on, member clusters with
//! agents, the workloads and the hub-side reads the scenarios check.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use flotilla_e2e::clusters::{ClusterOptions, MemberCluster, StoppedApiServer};
use serde_json::Value;

use crate::agent_support::{AgentProcess, HubProcess, wait_for};

/// The MCS API CRDs (`ServiceExport`, `ServiceImport`) as the agent chart installs them.
pub const MCS_CRDS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/charts/flotilla-agent/crds/multicluster.x-k8s.io.yaml"
);

/// Installs the MCS API CRDs in each member, as the agent chart does.
pub async fn install_mcs_crds(members: &[Member]) -> Result<()> {
    for m in members {
        let out = m
            .cluster
            .kubectl()
            .args(["apply", "-f", MCS_CRDS])
            .output()
            .await?;
        ensure!(
            out.status.success(),
            "MCS CRDs in {}: {}",
            m.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The hub's `--failover-startup-grace-seconds` here: longer than the agents' 30 s reconnect
/// backoff plus the 10 s cluster grace.
pub const STARTUP_GRACE: Duration = Duration::from_secs(45);

pub struct Member {
    pub name: &'static str,
    pub cluster: MemberCluster,
    pub agent: AgentProcess,
}

impl Member {
    /// `kubectl get` against the member: `Some(stdout)`, `None` on NotFound; any other
    /// failure is an error, so an unreachable member never reads as "absent".
    pub async fn get(&self, args: &[&str]) -> Result<Option<String>> {
        let out = self
            .cluster
            .kubectl()
            .arg("get")
            .args(args)
            .output()
            .await?;
        if out.status.success() {
            return Ok(Some(String::from_utf8(out.stdout)?));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            err.contains("NotFound"),
            "kubectl get {args:?} on {}: {err}",
            self.name
        );
        Ok(None)
    }

    /// Ready replicas of Deployment `demo/name` (0 when it has none, None when absent).
    pub async fn ready(&self, name: &str) -> Result<Option<i64>> {
        let out = self
            .get(&[
                "deploy",
                name,
                "-n",
                "demo",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ])
            .await?;
        Ok(out.map(|s| s.trim().parse().unwrap_or(0)))
    }

    /// The uid of Deployment `demo/name`.
    pub async fn uid(&self, name: &str) -> Result<Option<String>> {
        self.get(&[
            "deploy",
            name,
            "-n",
            "demo",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .await
    }
}

pub const TAINT_POLICY: &str = "apiVersion: policy.karmada.io/v1alpha1
kind: ClusterTaintPolicy
metadata: {name: not-ready-evicts}
spec:
  addOnConditions:
  - {conditionType: Ready, operator: In, statusValues: [\"False\", \"Unknown\"]}
  removeOnConditions:
  - {conditionType: Ready, operator: In, statusValues: [\"True\"]}
  taints:
  - {key: cluster.karmada.io/not-ready, effect: NoExecute}
";

/// A Deployment and its PropagationPolicy: static weights 1:1:1 over `clusters`, tolerating
/// the not-ready `NoExecute` taint for 10 s.
pub fn app(name: &str, replicas: u32, clusters: &[&str]) -> String {
    app_with(
        name,
        replicas,
        clusters,
        "    cluster: {purgeMode: Gracefully}\n",
    )
}

/// [`app`] with another `failover` section (YAML at four spaces).
pub fn app_with(name: &str, replicas: u32, clusters: &[&str], failover: &str) -> String {
    let weights: String = clusters
        .iter()
        .map(|c| format!("        - {{targetCluster: {{clusterNames: [{c}]}}, weight: 1}}\n"))
        .collect();
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: demo}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - {{name: app, image: registry.k8s.io/pause:3.10}}
---
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: {name}, namespace: demo}}
spec:
  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: {name}}}]
  propagateDeps: true
  failover:
{failover}  placement:
    clusterAffinity: {{clusterNames: [{names}]}}
    clusterTolerations:
    - {{key: cluster.karmada.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 10}}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference:
        staticWeightList:
{weights}",
        names = clusters.join(", ")
    )
}

/// An OverridePolicy that gives Deployment `demo/deployment` in m1 a node selector no node
/// there matches: its pods never run in m1.
pub fn unschedulable_in_m1(policy: &str, deployment: &str) -> String {
    format!(
        "apiVersion: policy.karmada.io/v1alpha1
kind: OverridePolicy
metadata: {{name: {policy}, namespace: demo}}
spec:
  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: {deployment}}}]
  overrideRules:
  - targetCluster: {{clusterNames: [m1]}}
    overriders:
      plaintext:
      - {{path: /spec/template/spec/nodeSelector, operator: add, value: {{flotilla.io/no-such-node: \"true\"}}}}
"
    )
}

/// The Deployment `demo/name` in the hub's Work for `cluster`, if there is one.
pub async fn work_manifest(hub: &HubProcess, cluster: &str, name: &str) -> Result<Option<Value>> {
    let out = hub
        .kubectl(&[
            "get",
            "works",
            "-n",
            &format!("karmada-es-{cluster}"),
            "-o",
            "json",
        ])
        .await?;
    let list: Value = serde_json::from_str(&out)?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.pointer("/spec/workload/manifests/0"))
        .find(|m| m["kind"] == "Deployment" && m["metadata"]["name"] == name)
        .cloned())
}

/// Whether the hub holds a Work of Deployment `demo/name` for `cluster`.
pub async fn work_exists(hub: &HubProcess, cluster: &str, name: &str) -> Result<bool> {
    Ok(work_manifest(hub, cluster, name).await?.is_some())
}

/// Replicas of Deployment `demo/name` in the hub's Work for `cluster`.
pub async fn work_replicas(hub: &HubProcess, cluster: &str, name: &str) -> Result<Option<i64>> {
    Ok(work_manifest(hub, cluster, name)
        .await?
        .and_then(|m| m.pointer("/spec/replicas").and_then(Value::as_i64)))
}

/// The binding of Deployment `demo/name` on the hub.
pub async fn binding(hub: &HubProcess, name: &str) -> Result<Value> {
    let out = hub
        .kubectl(&[
            "get",
            "rb",
            &format!("{name}-deployment"),
            "-n",
            "demo",
            "-o",
            "json",
        ])
        .await?;
    Ok(serde_json::from_str(&out)?)
}

pub fn targets(b: &Value) -> Vec<(String, i64)> {
    b.pointer("/spec/clusters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["replicas"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

pub fn condition<'a>(b: &'a Value, type_: &str) -> Option<&'a Value> {
    b.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == type_)
}

/// The Events of namespace `demo` that match a field selector, in an output format
/// (`-o FORMAT`).
pub async fn events(hub: &HubProcess, selector: &str, format: &str) -> Result<String> {
    hub.kubectl(&[
        "get",
        "events",
        "-n",
        "demo",
        "--field-selector",
        selector,
        "-o",
        format,
    ])
    .await
}

/// Whether cluster `name` carries a taint with this key and effect.
pub async fn tainted(hub: &HubProcess, name: &str, key: &str, effect: &str) -> Result<bool> {
    let out = hub
        .kubectl(&["get", "cluster", name, "-o", "jsonpath={.spec.taints}"])
        .await?;
    let taints: Value = serde_json::from_str(if out.trim().is_empty() { "[]" } else { &out })?;
    Ok(taints
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["key"] == key && t["effect"] == effect))
}

/// Kills m1's kube-apiserver while Deployment `name` (6 replicas, 2 in each member) runs, and
/// watches it move: m1's copy must be given up only after m2 and m3 run all 6 Ready. Returns
/// the time from the kill until m2 and m3 ran 6 Ready, the fewest Ready in m2 and m3 in
/// between, and the stopped server to start again.
pub async fn fail_m1(
    hub: &HubProcess,
    [m1, m2, m3]: [&Member; 3],
    name: &str,
) -> Result<(Duration, i64, StoppedApiServer)> {
    let killed_at = Instant::now();
    let stopped = m1.cluster.kill_api_server().await?;
    let mut min_healthy = i64::MAX;
    let mut moved_after = None;
    loop {
        // Members first, then the hub's Work: when the Work is first seen gone, m2 and m3 must
        // already have run 6 Ready replicas (the Event below says the hub saw them Healthy).
        let moved = m2.ready(name).await?.unwrap_or(0) + m3.ready(name).await?.unwrap_or(0);
        min_healthy = min_healthy.min(moved);
        if moved == 6 && moved_after.is_none() {
            moved_after = Some(killed_at.elapsed());
        }
        if !work_exists(hub, "m1", name).await? {
            ensure!(
                moved_after.is_some(),
                "m1's copy of {name} was given up before m2 and m3 ran 6 Ready replicas ({moved} ready)"
            );
            break;
        }
        ensure!(
            killed_at.elapsed() < Duration::from_secs(90),
            "{name} did not fail over within 90 s: {moved} ready in m2 and m3"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let events = events(
        hub,
        &format!("involvedObject.name={name}-deployment,reason=GracefulEvictionTaskCompleted"),
        "jsonpath={.items[*].message}",
    )
    .await?;
    ensure!(
        events.contains("The copy in cluster m1 is removed: the new placement is healthy"),
        "the eviction task of {name} ended otherwise: {events:?}"
    );
    let moved_after = moved_after.context("never moved")?;
    eprintln!(
        "failover: 6 replicas Ready in m2+m3 {:.1}s after the kill; fewest healthy in m2+m3 during it: {min_healthy}",
        moved_after.as_secs_f64()
    );
    Ok((moved_after, min_healthy, stopped))
}

/// Creates member clusters (name, region), registers them with the hub, starts their agents
/// and waits until the hub has them Ready.
pub async fn join_members(
    hub: &HubProcess,
    dir: &std::path::Path,
    clusters: &[(&'static str, &str)],
) -> Result<Vec<Member>> {
    join_members_with(hub, dir, clusters, false).await
}

/// [`join_members`], with clusters serving `metrics.k8s.io` when `metrics`.
pub async fn join_members_with(
    hub: &HubProcess,
    dir: &std::path::Path,
    clusters: &[(&'static str, &str)],
    metrics: bool,
) -> Result<Vec<Member>> {
    let mut members = Vec::new();
    for (name, region) in clusters.iter().copied() {
        let mut options = ClusterOptions::with_nodes(2).in_zone(region, &format!("{region}-1a"));
        if metrics {
            options = options.with_metrics();
        }
        let cluster = MemberCluster::create(name, options).await?;
        let out = hub
            .ctl(&[
                "-o", "json", "register", "cluster", name, "--region", region,
            ])
            .await?;
        let reg: Value = serde_json::from_str(&out).context("register output")?;
        let agent = AgentProcess::start(&reg, cluster.kubeconfig(), &dir.join(name)).await?;
        members.push(Member {
            name,
            cluster,
            agent,
        });
    }
    for m in &members {
        wait_for(
            &format!("{} Ready", m.name),
            Duration::from_secs(90),
            || async { Ok((hub.ready(m.name).await? == "True").then_some(())) },
        )
        .await?;
    }
    Ok(members)
}

/// A hub with `--enable-no-execute-taint-eviction` (started when the returned instant says),
/// members m1, m2 and m3 Ready, namespace `demo` and [`TAINT_POLICY`].
pub async fn failover_fleet(dir: &std::path::Path) -> Result<(HubProcess, Instant, Vec<Member>)> {
    let hub = HubProcess::start_with(
        dir,
        10,
        &[
            "--enable-no-execute-taint-eviction",
            "--failover-startup-grace-seconds",
            &STARTUP_GRACE.as_secs().to_string(),
        ],
    )
    .await?;
    let started = Instant::now();
    let members = join_members(
        &hub,
        dir,
        &[("m1", "us-east"), ("m2", "us-west"), ("m3", "eu-central")],
    )
    .await?;
    hub.kubectl(&["create", "namespace", "demo"]).await?;
    hub.apply(TAINT_POLICY).await?;
    Ok((hub, started, members))
}

/// Waits until m1 is Ready again and has lost the policy's `NoExecute` taint.
pub async fn m1_recovered(hub: &HubProcess) -> Result<()> {
    wait_for(
        "m1 Ready and without its NoExecute taint",
        Duration::from_secs(90),
        || async {
            let ready = hub.ready("m1").await? == "True";
            let tainted = tainted(hub, "m1", "cluster.karmada.io/not-ready", "NoExecute").await?;
            Ok((ready && !tainted).then_some(()))
        },
    )
    .await
}

/// The pods in namespace `demo` of a member as `name/uid`, sorted.
pub async fn pod_uids(m: &Member) -> Result<Vec<String>> {
    let out = m
        .get(&[
            "pods",
            "-n",
            "demo",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}/{.metadata.uid} {end}",
        ])
        .await?
        .unwrap_or_default();
    let mut uids: Vec<String> = out.split_whitespace().map(str::to_owned).collect();
    uids.sort();
    Ok(uids)
}
