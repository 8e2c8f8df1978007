//! Cross-cluster autoscaling end to end: a hub and two member clusters serving
//! `metrics.k8s.io` (metrics-server over KWOK's simulated pod usage, see `kind/README.md`).
//!
//! 1. A FederatedHPA (cpu 50 %, 2 to 10, 30 s down-scale window) over a Deployment divided 1:1:
//!    usage at 150 % of the request scales it up across both clusters, split 1:1; at 10 % it
//!    comes back to the floor, not before the window; `kubectl get fhpa` shows it.
//! 2. A CronFederatedHPA scales another Deployment to 6 at one minute and back to 2 at the
//!    next; its history records both.
//! 3. A propagated HorizontalPodAutoscaler scales one member's copy of a duplicated Deployment:
//!    the template on the hub follows the sum and the hub does not reset the member.
//! 4. Bad input: a FederatedHPA whose target is missing, one with min above max, one on a
//!    metric no member serves: refused or reported, and nothing is scaled.
#![allow(clippy::unwrap_used, missing_docs)]

mod agent_support;
mod failover_support;

use std::time::{Duration, Instant};

use agent_support::{HubProcess, build_binaries, wait_for};
use anyhow::{Context, Result, ensure};
use failover_support::{Member, binding, join_members_with, targets};
use serde_json::Value;

const REQUESTS: &str = "resources: {requests: {cpu: 100m, memory: 32Mi}}";

/// A Deployment of `replicas` pause pods requesting 100m cpu each.
fn deployment(name: &str, replicas: u32) -> String {
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
      containers: [{{name: app, image: registry.k8s.io/pause:3.10, {REQUESTS}}}]
"
    )
}

/// A PropagationPolicy of `kinds` named `name` to m1 and m2: divided 1:1, or duplicated.
fn policy(name: &str, resources: &[(&str, &str)], divided: bool) -> String {
    let selectors: String = resources
        .iter()
        .map(|(api, kind)| format!("  - {{apiVersion: {api}, kind: {kind}, name: {name}}}\n"))
        .collect();
    let scheduling = if divided {
        "    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference:
        staticWeightList:
        - {targetCluster: {clusterNames: [m1]}, weight: 1}
        - {targetCluster: {clusterNames: [m2]}, weight: 1}
"
    } else {
        "    replicaScheduling: {replicaSchedulingType: Duplicated}\n"
    };
    format!(
        "apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: {name}, namespace: demo}}
spec:
  resourceSelectors:
{selectors}  placement:
    clusterAffinity: {{clusterNames: [m1, m2]}}
{scheduling}"
    )
}

fn fhpa(name: &str, target: &str, min: u32, max: u32, metric: &str) -> String {
    format!(
        "apiVersion: autoscaling.karmada.io/v1alpha1
kind: FederatedHPA
metadata: {{name: {name}, namespace: demo}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {target}}}
  minReplicas: {min}
  maxReplicas: {max}
  metrics:
  - {metric}
  behavior:
    scaleDown: {{stabilizationWindowSeconds: 30}}
"
    )
}

const CPU_50: &str =
    "{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}";

/// `spec.replicas` of Deployment `demo/name` on the hub.
async fn replicas(hub: &HubProcess, name: &str) -> Result<i64> {
    let out = hub
        .kubectl(&[
            "get",
            "deploy",
            name,
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .await?;
    out.trim().parse().context("replicas")
}

async fn get_json(hub: &HubProcess, args: &[&str]) -> Result<Value> {
    let mut all = args.to_vec();
    all.extend(["-n", "demo", "-o", "json"]);
    Ok(serde_json::from_str(&hub.kubectl(&all).await?)?)
}

fn condition(v: &Value, ty: &str) -> Value {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == ty))
        .cloned()
        .unwrap_or(Value::Null)
}

/// `spec.replicas` of Deployment `demo/name` in a member.
async fn member_replicas(m: &Member, name: &str) -> Result<Option<i64>> {
    let out = m
        .get(&[
            "deploy",
            name,
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .await?;
    Ok(out.and_then(|s| s.trim().parse().ok()))
}

/// A 5-field schedule for the UTC minute `minutes` from now.
fn at_minute(minutes: i64) -> String {
    let t = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_mins(minutes))
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC);
    format!("{} {} * * *", t.minute(), t.hour())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_scale_across_clusters_on_member_metrics() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    build_binaries()?;
    let tmp = tempfile::tempdir()?;
    let hub = HubProcess::start(tmp.path(), 10).await?;
    let members = join_members_with(
        &hub,
        tmp.path(),
        &[("m1", "us-east"), ("m2", "eu-west")],
        true,
    )
    .await?;
    let [m1, m2] = [&members[0], &members[1]];
    hub.kubectl(&["create", "namespace", "demo"]).await?;

    // Everything starts at once; the checks below follow each scenario in turn.
    hub.apply(&deployment("web", 2)).await?;
    hub.apply(&policy("web", &[("apps/v1", "Deployment")], true))
        .await?;
    hub.apply(&deployment("batch", 2)).await?;
    hub.apply(&policy("batch", &[("apps/v1", "Deployment")], true))
        .await?;
    // Two minutes ahead at least, so the hub sees the rules before their time.
    let (up_at, down_at) = (at_minute(2), at_minute(3));
    hub.apply(&format!(
        "apiVersion: autoscaling.karmada.io/v1alpha1
kind: CronFederatedHPA
metadata: {{name: batch, namespace: demo}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: batch}}
  rules:
  - {{name: up, schedule: '{up_at}', targetReplicas: 6}}
  - {{name: down, schedule: '{down_at}', targetReplicas: 2}}
"
    ))
    .await?;
    hub.apply(&deployment("api", 1)).await?;
    hub.apply(
        "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api, namespace: demo}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - {type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}
",
    )
    .await?;
    hub.apply(&policy(
        "api",
        &[
            ("apps/v1", "Deployment"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ],
        false,
    ))
    .await?;
    hub.apply(&deployment("steady", 2)).await?;
    hub.apply(&policy("steady", &[("apps/v1", "Deployment")], true))
        .await?;
    wait_for(
        "web, api and steady running in both members",
        Duration::from_secs(120),
        || async {
            let ok = m1.ready("web").await? == Some(1)
                && m2.ready("web").await? == Some(1)
                && m1.ready("api").await? == Some(1)
                && m2.ready("api").await? == Some(1)
                && m1.ready("steady").await? == Some(1)
                && m2.ready("steady").await? == Some(1);
            Ok(ok.then_some(()))
        },
    )
    .await?;

    // 4. Bad input, first: nothing of it may scale anything below.
    let refused = hub
        .apply(&fhpa("inverted", "steady", 5, 2, CPU_50))
        .await
        .err()
        .context("an FHPA with minReplicas above maxReplicas was accepted")?;
    ensure!(
        refused.to_string().contains("maxReplicas"),
        "refusal does not name the field: {refused}"
    );
    hub.apply(&fhpa("ghost", "absent", 1, 3, CPU_50)).await?;
    hub.apply(&fhpa(
        "custom",
        "steady",
        1,
        6,
        "{type: Pods, pods: {metric: {name: requests_per_second}, target: {type: AverageValue, averageValue: '10'}}}",
    ))
    .await?;

    // 1. FederatedHPA on cpu.
    hub.apply(&fhpa("web", "web", 2, 10, CPU_50)).await?;
    m1.cluster.set_usage("demo", "app=web", "150m").await?;
    m2.cluster.set_usage("demo", "app=web", "150m").await?;
    m1.cluster.set_usage("demo", "app=api", "150m").await?;
    let started = Instant::now();
    let scaled = wait_for(
        "web scaled up over both clusters",
        Duration::from_secs(120),
        || async {
            let n = replicas(&hub, "web").await?;
            let t = targets(&binding(&hub, "web").await?);
            let split: Vec<i64> = ["m1", "m2"]
                .iter()
                .map(|c| t.iter().find(|(n, _)| n == c).map(|x| x.1).unwrap_or(0))
                .collect();
            let (a, b) = (m1.ready("web").await?, m2.ready("web").await?);
            Ok((n > 2
                && split.iter().sum::<i64>() == n
                && (split[0] - split[1]).abs() <= 1
                && a == Some(split[0])
                && b == Some(split[1]))
            .then_some((n, split)))
        },
    )
    .await?;
    eprintln!(
        "autoscaling: web scaled to {} (split {:?}) {:.0}s after the usage rose",
        scaled.0,
        scaled.1,
        started.elapsed().as_secs_f64()
    );
    wait_for("web at the ceiling", Duration::from_secs(120), || async {
        let f = get_json(&hub, &["get", "fhpa", "web"]).await?;
        let limited = condition(&f, "ScalingLimited");
        Ok((replicas(&hub, "web").await? == 10
            && limited["status"] == "True"
            && limited["reason"] == "TooManyReplicas")
            .then_some(()))
    })
    .await?;
    // The status catches up at the next evaluation: current and desired both at the ceiling.
    wait_for(
        "kubectl get fhpa showing web at 10",
        Duration::from_secs(60),
        || async {
            let table = hub.kubectl(&["get", "fhpa", "-n", "demo"]).await?;
            let row = table
                .lines()
                .find(|l| l.starts_with("web "))
                .context("web in kubectl get fhpa")?;
            let cols: Vec<&str> = row.split_whitespace().collect();
            Ok(
                (cols.get(1..7) == Some(&["Deployment", "web", "2", "10", "10", "10"][..]))
                    .then_some(()),
            )
        },
    )
    .await?;
    let describe = hub
        .ctl(&["describe", "binding", "demo/web-deployment"])
        .await?;
    ensure!(
        describe.contains("by FederatedHPA web")
            && describe
                .lines()
                .any(|l| l.trim_start().starts_with("m1 ") && l.contains(" requested (")),
        "describe binding shows no scaling decision:\n{describe}"
    );

    // 3. The member's own HPA scaled m1's copy of api; the hub follows the sum.
    wait_for(
        "api's template at the members' sum",
        Duration::from_secs(150),
        || async {
            let (a, b) = (
                member_replicas(m1, "api").await?,
                member_replicas(m2, "api").await?,
            );
            let sum = a.unwrap_or(0) + b.unwrap_or(0);
            Ok((a.unwrap_or(0) > 1 && replicas(&hub, "api").await? == sum).then_some(()))
        },
    )
    .await?;
    let (a1, a2) = (
        member_replicas(m1, "api").await?,
        member_replicas(m2, "api").await?,
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    ensure!(
        (
            member_replicas(m1, "api").await?,
            member_replicas(m2, "api").await?
        ) == (a1, a2),
        "the hub reset the members' replicas of api (were {a1:?}/{a2:?})"
    );
    let api = get_json(&hub, &["get", "deploy", "api"]).await?;
    ensure!(
        api.pointer("/metadata/labels/resourcetemplate.karmada.io~1retain-replicas")
            == Some(&Value::from("true")),
        "api's template is not marked to retain the members' replicas"
    );

    // Down again: not before the 30 s window, then to the floor.
    m1.cluster.set_usage("demo", "app=web", "10m").await?;
    m2.cluster.set_usage("demo", "app=web", "10m").await?;
    let lowered = Instant::now();
    let dropped = wait_for("web scaling down", Duration::from_secs(150), || async {
        Ok((replicas(&hub, "web").await? < 10).then_some(lowered.elapsed()))
    })
    .await?;
    ensure!(
        dropped >= Duration::from_secs(25),
        "web scaled down {dropped:?} after the load fell, inside its 30 s stabilization window"
    );
    wait_for(
        "web back at the floor",
        Duration::from_secs(120),
        || async {
            Ok((replicas(&hub, "web").await? == 2
                && m1.ready("web").await? == Some(1)
                && m2.ready("web").await? == Some(1))
            .then_some(()))
        },
    )
    .await?;

    // 2. The CronFederatedHPA ran both rules.
    wait_for(
        "batch scaled to 6 and back to 2",
        Duration::from_secs(240),
        || async {
            let n = replicas(&hub, "batch").await?;
            let c = get_json(&hub, &["get", "cronfhpa", "batch"]).await?;
            let ran = |rule: &str| {
                c.pointer("/status/executionHistories")
                    .and_then(Value::as_array)
                    .and_then(|h| h.iter().find(|h| h["ruleName"] == rule))
                    .and_then(|h| h["successfulExecutions"].as_array())
                    .is_some_and(|e| !e.is_empty())
            };
            Ok((ran("up") && ran("down") && n == 2).then_some(()))
        },
    )
    .await?;
    let c = get_json(&hub, &["get", "cronfhpa", "batch"]).await?;
    let applied: Vec<i64> = ["up", "down"]
        .iter()
        .map(|r| {
            c.pointer("/status/executionHistories")
                .and_then(Value::as_array)
                .and_then(|h| h.iter().find(|h| h["ruleName"] == *r))
                .and_then(|h| h.pointer("/successfulExecutions/0/appliedReplicas"))
                .and_then(Value::as_i64)
                .unwrap_or(-1)
        })
        .collect();
    ensure!(applied == [6, 2], "cron history: {c}");

    // 4. The bad ones say why and scaled nothing.
    let ghost = get_json(&hub, &["get", "fhpa", "ghost"]).await?;
    let able = condition(&ghost, "AbleToScale");
    ensure!(
        able["status"] == "False" && able["reason"] == "FailedGetScale",
        "ghost: {ghost}"
    );
    let custom = get_json(&hub, &["get", "fhpa", "custom"]).await?;
    let active = condition(&custom, "ScalingActive");
    ensure!(active["status"] == "False", "custom: {custom}");
    ensure!(
        replicas(&hub, "steady").await? == 2,
        "steady was scaled by a FederatedHPA that has no metric"
    );

    // The reports are counted on both sides, and the unreadable metric as an error.
    let hub_metrics = hub.kubectl(&["get", "--raw", "/metrics"]).await?;
    let received = hub_metrics
        .lines()
        .find(|l| l.starts_with("flotilla_hub_workload_metrics_reports_total "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .context("flotilla_hub_workload_metrics_reports_total on the hub's /metrics")?;
    ensure!(
        received > 0.0,
        "the hub counted no workload metrics reports"
    );
    for m in [m1, m2] {
        let sent = m
            .agent
            .metric("flotilla_agent_metrics_reports_total")
            .await?;
        let errors = m
            .agent
            .metric("flotilla_agent_metrics_errors_total")
            .await?;
        ensure!(
            sent > 0 && errors > 0 && errors < sent,
            "{}: {sent} reports sent, {errors} with errors (the custom metric is served nowhere)",
            m.name
        );
    }
    Ok(())
}
