//! Cross-cluster service discovery end to end: a hub and three member clusters, m1 and m3 in
//! us-east and m2 in eu-west. KWOK pods get IPs and readiness, and each member's controller
//! manager builds the EndpointSlices that its agent reports.
//!
//! 1. `web` (a Deployment and its Service in m1 and m2, exported, imported into m3): m3's
//!    `derived-web` slices hold m1's endpoints only; m1's copy scaled to 0 by an override:
//!    within 30 s they hold m2's; the override removed: back to m1's.
//! 2. A MultiClusterService `CrossCluster` for `api` (providers m1 and m2, consumer m3): m3's
//!    `api` Service gets m1's slices; removing the MultiClusterService removes them.
//! 3. `conf`, exported from m1 first, then from m2 with another port: `Conflict` on the
//!    ServiceExport and the ServiceImport, and m3 never gets m2's endpoints.
//! 4. The ServiceExport `conf` deleted: m3's `derived-conf` slices go.
//! 5. m1's agent stopped: past the cluster grace period m3's `web` slices drop m1's endpoints
//!    within grace + 30 s.
//! 6. The ServiceImport `web` deleted: m3's `derived-web` Service and slices go.
//!
//! The MCS API CRDs are installed in the members after their agents joined, so the test also
//! covers a kind that appears in a member later (its API enablements reach the scheduler).
#![allow(clippy::unwrap_used, missing_docs)]

mod agent_support;
mod failover_support;

use std::time::{Duration, Instant};

use agent_support::{HubProcess, build_binaries, wait_for};
use anyhow::{Context, Result, ensure};
use failover_support::{Member, install_mcs_crds, join_members};
use serde_json::Value;

/// The hub's cluster grace period here (seconds).
const GRACE: u64 = 10;

/// A Deployment and its Service (port `port` to 8080), both named `name`.
fn app(name: &str, replicas: u32, port: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: shop}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: app, image: registry.k8s.io/pause:3.10}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: shop}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: {port}, targetPort: 8080}}]
"
    )
}

/// A PropagationPolicy named `name` of the given kinds named `target` to `clusters`.
fn policy(name: &str, target: &str, kinds: &[(&str, &str)], clusters: &[&str]) -> String {
    let selectors: String = kinds
        .iter()
        .map(|(api, kind)| format!("  - {{apiVersion: {api}, kind: {kind}, name: {target}}}\n"))
        .collect();
    format!(
        "apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: {name}, namespace: shop}}
spec:
  resourceSelectors:
{selectors}  placement:
    clusterAffinity: {{clusterNames: [{}]}}
    replicaScheduling: {{replicaSchedulingType: Duplicated}}
",
        clusters.join(", ")
    )
}

const WORKLOAD: &[(&str, &str)] = &[("apps/v1", "Deployment"), ("v1", "Service")];
const EXPORT: &[(&str, &str)] = &[("multicluster.x-k8s.io/v1alpha1", "ServiceExport")];
const IMPORT: &[(&str, &str)] = &[("multicluster.x-k8s.io/v1alpha1", "ServiceImport")];

fn export(name: &str) -> String {
    format!(
        "apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata: {{name: {name}, namespace: shop}}
"
    )
}

fn import(name: &str, port: u32) -> String {
    format!(
        "apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceImport
metadata: {{name: {name}, namespace: shop}}
spec:
  type: ClusterSetIP
  ports: [{{name: http, protocol: TCP, port: {port}}}]
"
    )
}

/// An OverridePolicy replacing `path` of `kind` `target` in `cluster` with `value`.
fn override_policy(
    name: &str,
    api: &str,
    kind: &str,
    target: &str,
    cluster: &str,
    path: &str,
    value: &str,
) -> String {
    format!(
        "apiVersion: policy.karmada.io/v1alpha1
kind: OverridePolicy
metadata: {{name: {name}, namespace: shop}}
spec:
  resourceSelectors:
  - {{apiVersion: {api}, kind: {kind}, name: {target}}}
  overrideRules:
  - targetCluster: {{clusterNames: [{cluster}]}}
    overriders:
      plaintext:
      - {{path: {path}, operator: replace, value: {value}}}
"
    )
}

/// The slices a member holds for `service` in `shop` that Flotilla wrote, as (source
/// cluster, ready endpoints). The member must answer: any error fails.
async fn imported(m: &Member, service: &str) -> Result<Vec<(String, usize)>> {
    let out = m
        .get(&[
            "endpointslices",
            "-n",
            "shop",
            "-l",
            &format!(
                "kubernetes.io/service-name={service},endpointslice.kubernetes.io/managed-by=service-discovery.flotilla.io"
            ),
            "-o",
            "json",
        ])
        .await?
        .context("a list is never NotFound")?;
    let v: Value = serde_json::from_str(&out)?;
    let mut rows: Vec<(String, usize)> = v["items"]
        .as_array()
        .context("items")?
        .iter()
        .map(|s| {
            let source = s["metadata"]["labels"]["multicluster.kubernetes.io/source-cluster"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let ready = s["endpoints"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .filter(|e| e["conditions"]["ready"] != false)
                        .count()
                })
                .unwrap_or(0);
            (source, ready)
        })
        .collect();
    rows.sort();
    Ok(rows)
}

/// The sources with ready endpoints.
fn ready_sources(rows: &[(String, usize)]) -> Vec<&str> {
    rows.iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, _)| s.as_str())
        .collect()
}

async fn wait_sources(
    m: &Member,
    service: &str,
    want: &[&str],
    within: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    wait_for(
        &format!("{} {service} slices ready from {want:?}", m.name),
        within,
        || async {
            let rows = imported(m, service).await?;
            Ok((ready_sources(&rows) == want).then_some(()))
        },
    )
    .await?;
    Ok(started.elapsed())
}

/// Prints the state along a service's path (provider slices, hub copies, Works, consumer
/// objects) when a step fails, so the failure says where the chain broke.
async fn dump(hub: &HubProcess, members: &[Member]) {
    let hub_reads: &[&[&str]] = &[
        &["get", "endpointslices", "-n", "shop", "--show-labels"],
        &[
            "get",
            "serviceexports,serviceimports,mcs",
            "-n",
            "shop",
            "-o",
            "yaml",
        ],
        &["get", "works", "-A"],
        &["get", "resourcebindings", "-n", "shop", "-o", "yaml"],
    ];
    for args in hub_reads {
        match hub.kubectl(args).await {
            Ok(out) => eprintln!("--- hub {}\n{out}", args.join(" ")),
            Err(e) => eprintln!("--- hub {}: {e:#}", args.join(" ")),
        }
    }
    for m in members {
        for what in [
            "endpointslices",
            "services",
            "serviceexports",
            "serviceimports",
            "pods",
        ] {
            match m.get(&[what, "-n", "shop", "--show-labels"]).await {
                Ok(out) => eprintln!("--- {} {what}\n{}", m.name, out.unwrap_or_default()),
                Err(e) => eprintln!("--- {} {what}: {e:#}", m.name),
            }
        }
    }
}

/// A condition of a hub object, as (status, reason, message).
async fn condition(
    hub: &HubProcess,
    resource: &str,
    name: &str,
    ty: &str,
) -> Result<Option<(String, String, String)>> {
    let out = hub
        .kubectl(&["get", resource, name, "-n", "shop", "-o", "json"])
        .await?;
    let v: Value = serde_json::from_str(&out)?;
    Ok(v["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == ty))
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
                c["message"].as_str().unwrap_or_default().to_owned(),
            )
        }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn services_are_discovered_across_clusters_from_the_nearest_region() -> Result<()> {
    build_binaries()?;
    let dir = tempfile::tempdir()?;
    let hub = HubProcess::start(dir.path(), GRACE).await?;
    let mut members = join_members(
        &hub,
        dir.path(),
        &[("m1", "us-east"), ("m2", "eu-west"), ("m3", "us-east")],
    )
    .await?;
    let result = scenario(&hub, &mut members).await;
    if result.is_err() {
        dump(&hub, &members).await;
        eprintln!("hub and agent logs kept in {}", dir.keep().display());
    }
    result
}

async fn scenario(hub: &HubProcess, members: &mut [Member]) -> Result<()> {
    let [m2, m3] = [&members[1], &members[2]];
    install_mcs_crds(members).await?;
    hub.kubectl(&["create", "namespace", "shop"]).await?;

    // 1. Exported from m1 and m2, imported into m3: the region's provider serves m3.
    hub.apply(&app("web", 2, 80)).await?;
    hub.apply(&policy("web", "web", WORKLOAD, &["m1", "m2"]))
        .await?;
    hub.apply(&export("web")).await?;
    hub.apply(&policy("web-export", "web", EXPORT, &["m1", "m2"]))
        .await?;
    hub.apply(&import("web", 80)).await?;
    hub.apply(&policy("web-import", "web", IMPORT, &["m3"]))
        .await?;
    wait_sources(m3, "derived-web", &["m1"], Duration::from_secs(90)).await?;
    let derived = m3
        .get(&[
            "service",
            "derived-web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.ports[0].port}",
        ])
        .await?
        .context("m3 has derived-web")?;
    ensure!(derived == "80", "derived-web port {derived}");
    // m2 serves the same Service, and the hub has both clusters' copies.
    let copies = hub
        .kubectl(&[
            "get",
            "endpointslices",
            "-n",
            "shop",
            "-l",
            "multicluster.kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[*].metadata.labels.multicluster\\.kubernetes\\.io/source-cluster}",
        ])
        .await?;
    let mut copies: Vec<&str> = copies.split_whitespace().collect();
    copies.sort();
    ensure!(copies == ["m1", "m2"], "hub copies from {copies:?}");
    // flotillactl shows the backends per cluster and region.
    let table = hub.ctl(&["get", "endpoints", "web", "-n", "shop"]).await?;
    for (cluster, region) in [("m1", "us-east"), ("m2", "eu-west")] {
        ensure!(
            table.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.first() == Some(&cluster)
                    && f.get(1) == Some(&region)
                    && f.last() == Some(&"Ready")
            }),
            "flotillactl get endpoints has no ready {cluster} ({region}) row:\n{table}"
        );
    }
    let valid = condition(hub, "serviceexport", "web", "Valid").await?;
    ensure!(
        valid.as_ref().is_some_and(|c| c.0 == "True"),
        "ServiceExport Valid: {valid:?}"
    );
    // m1 scaled to 0: m3 is served from every region, so by m2.
    hub.apply(&override_policy(
        "web-m1-zero",
        "apps/v1",
        "Deployment",
        "web",
        "m1",
        "/spec/replicas",
        "0",
    ))
    .await?;
    let moved = wait_sources(m3, "derived-web", &["m2"], Duration::from_secs(30)).await?;
    eprintln!(
        "m3 served from m2 {:.1}s after m1 scaled to 0",
        moved.as_secs_f64()
    );
    hub.kubectl(&["delete", "overridepolicy", "web-m1-zero", "-n", "shop"])
        .await?;
    wait_sources(m3, "derived-web", &["m1"], Duration::from_secs(30)).await?;

    // 2. A MultiClusterService: m3's own `api` Service gets the providers' slices.
    hub.apply(&app("api", 1, 80)).await?;
    hub.apply(&policy(
        "api",
        "api",
        &[("apps/v1", "Deployment")],
        &["m1", "m2"],
    ))
    .await?;
    hub.apply(&policy(
        "api-svc",
        "api",
        &[("v1", "Service")],
        &["m1", "m2", "m3"],
    ))
    .await?;
    hub.apply(
        "apiVersion: networking.karmada.io/v1alpha1
kind: MultiClusterService
metadata: {name: api, namespace: shop}
spec:
  types: [CrossCluster]
  providerClusters: [{name: m1}, {name: m2}]
  consumerClusters: [{name: m3}]
",
    )
    .await?;
    wait_sources(m3, "api", &["m1"], Duration::from_secs(60)).await?;
    let served = hub
        .kubectl(&[
            "get",
            "mcs",
            "api",
            "-n",
            "shop",
            "-o",
            "jsonpath={.status.consumers[0].servedFromRegions}",
        ])
        .await?;
    ensure!(served.contains("us-east"), "MCS status: {served}");
    hub.kubectl(&["delete", "mcs", "api", "-n", "shop"]).await?;
    wait_for(
        "m3's api slices removed",
        Duration::from_secs(30),
        || async { Ok(imported(m3, "api").await?.is_empty().then_some(())) },
    )
    .await?;

    // 3. A conflict: m2 exports `conf` with another port after m1 did.
    hub.apply(&app("conf", 1, 80)).await?;
    hub.apply(&export("conf")).await?;
    hub.apply(&policy(
        "conf",
        "conf",
        &[("apps/v1", "Deployment"), ("v1", "Service"), EXPORT[0]],
        &["m1"],
    ))
    .await?;
    hub.apply(&import("conf", 80)).await?;
    hub.apply(&policy("conf-import", "conf", IMPORT, &["m3"]))
        .await?;
    wait_sources(m3, "derived-conf", &["m1"], Duration::from_secs(60)).await?;
    hub.apply(&override_policy(
        "conf-m2-port",
        "v1",
        "Service",
        "conf",
        "m2",
        "/spec/ports/0/port",
        "8080",
    ))
    .await?;
    hub.apply(&policy(
        "conf",
        "conf",
        &[("apps/v1", "Deployment"), ("v1", "Service"), EXPORT[0]],
        &["m1", "m2"],
    ))
    .await?;
    wait_for(
        "Conflict on the ServiceExport and the ServiceImport",
        Duration::from_secs(60),
        || async {
            let e = condition(hub, "serviceexport", "conf", "Conflict").await?;
            let i = condition(hub, "serviceimport", "conf", "Conflict").await?;
            Ok(match (e, i) {
                (Some(e), Some(i)) if e.0 == "True" && i.0 == "True" => Some((e, i)),
                _ => None,
            })
        },
    )
    .await?;
    let (_, reason, message) = condition(hub, "serviceexport", "conf", "Conflict")
        .await?
        .unwrap();
    ensure!(
        reason == "PortConflict" && message.contains("m2"),
        "{reason}: {message}"
    );
    // m2 runs its copy (so its endpoints exist) yet m3 never gets them.
    wait_for("m2 runs conf", Duration::from_secs(60), || async {
        Ok((m2
            .get(&[
                "deploy",
                "conf",
                "-n",
                "shop",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ])
            .await?
            .as_deref()
            == Some("1"))
        .then_some(()))
    })
    .await?;
    for _ in 0..10 {
        let rows = imported(m3, "derived-conf").await?;
        ensure!(
            rows.iter().all(|(s, _)| s == "m1"),
            "m3 got a conflicting export's endpoints: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 4. The export removed (m1 still serves `conf`): m3's copies go.
    let rows = imported(m3, "derived-conf").await?;
    ensure!(
        ready_sources(&rows) == ["m1"],
        "before the export goes: {rows:?}"
    );
    hub.kubectl(&["delete", "serviceexport", "conf", "-n", "shop"])
        .await?;
    wait_for(
        "m3's derived-conf slices removed",
        Duration::from_secs(30),
        || async { Ok(imported(m3, "derived-conf").await?.is_empty().then_some(())) },
    )
    .await?;

    // 5. m1's agent stops: past the grace period, m3 drops m1's endpoints.
    let stopped_at = Instant::now();
    members[0].agent.kill().await;
    let m3 = &members[2];
    // No consumer keeps a failed provider's endpoints longer than grace + 30 s.
    wait_sources(m3, "derived-web", &["m2"], Duration::from_secs(GRACE + 30)).await?;
    eprintln!(
        "m3 dropped m1's endpoints {:.1}s after its agent stopped",
        stopped_at.elapsed().as_secs_f64()
    );

    // 6. The import removed (m2 still serves `web`): m3's derived Service and slices go.
    hub.kubectl(&["delete", "serviceimport", "web", "-n", "shop"])
        .await?;
    wait_for(
        "m3's derived-web Service and slices removed",
        Duration::from_secs(30),
        || async {
            let service = m3.get(&["service", "derived-web", "-n", "shop"]).await?;
            let slices = imported(m3, "derived-web").await?;
            Ok((service.is_none() && slices.is_empty()).then_some(()))
        },
    )
    .await?;
    Ok(())
}
