//! The agent end to end: two real member clusters enrolled with a real hub; Work put into
//! one cluster's set appears there and nowhere else, its status comes back, and removing it
//! deletes it.

mod agent_support;

use std::time::Duration;

use agent_support::{AgentProcess, HubProcess, absent, app_manifests, wait_for};
use anyhow::{Context, Result, ensure};
use flotilla_e2e::clusters::{ClusterOptions, MemberCluster};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_two_clusters_work_and_status() -> Result<()> {
    agent_support::build_binaries()?;
    let tmp = tempfile::tempdir()?;
    let (m1, m2) = tokio::try_join!(
        MemberCluster::create("agent-m1", ClusterOptions::with_nodes(2)),
        MemberCluster::create("agent-m2", ClusterOptions::with_nodes(2)),
    )?;
    let hub = HubProcess::start(&tmp.path().join("hub"), 40).await?;

    // Enroll both clusters with their own tokens.
    let r1 = hub.register(m1.name()).await?;
    let r2 = hub.register(m2.name()).await?;
    ensure!(
        r1["caHash"]
            .as_str()
            .is_some_and(|h| h.starts_with("sha256:")),
        "register prints the CA hash: {r1}"
    );
    ensure!(
        r1["agentCommand"]
            .as_str()
            .is_some_and(|c| c.contains("--token")),
        "register prints the agent command"
    );
    ensure!(
        r1["helmCommand"]
            .as_str()
            .is_some_and(|c| c.starts_with("helm install")),
        "register prints the helm command"
    );
    let _a1 = AgentProcess::start(&r1, m1.kubeconfig(), &tmp.path().join("a1")).await?;
    let _a2 = AgentProcess::start(&r2, m2.kubeconfig(), &tmp.path().join("a2")).await?;

    // Both Ready with the members' real version, as kubectl on the hub shows them.
    let version = format!("v{}", flotilla_e2e::clusters::k8s_version());
    let names = [m1.name().to_owned(), m2.name().to_owned()];
    wait_for("both clusters Ready", Duration::from_secs(60), || async {
        let rows = hub.clusters().await?;
        let ok = names.iter().all(|n| {
            rows.iter()
                .any(|r| &r.0 == n && r.1 == version && r.2 == "Pull" && r.3 == "True")
        });
        Ok(ok.then_some(()))
    })
    .await?;
    let status: Value = serde_json::from_str(
        &hub.kubectl(&["get", "cluster", m1.name(), "-o", "json"])
            .await?,
    )?;
    ensure!(
        status.pointer("/status/nodeSummary/totalNum") == Some(&serde_json::json!(2)),
        "node summary: {status}"
    );
    ensure!(
        status
            .pointer("/status/resourceSummary/allocatable/cpu")
            .is_some(),
        "allocatable: {status}"
    );
    ensure!(
        status
            .pointer("/status/apiEnablements")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty()),
        "apiEnablements"
    );

    // Put a Deployment and a ConfigMap into m1's Work.
    let manifests = app_manifests("shop", 2, "blue");
    hub.ctl_stdin(
        &["work", "put", "--cluster", m1.name(), "-f", "-"],
        &manifests,
    )
    .await?;
    let deploys1: Api<Deployment> = Api::namespaced(m1.client(), "shop");
    let cms1: Api<ConfigMap> = Api::namespaced(m1.client(), "shop");
    wait_for(
        "Deployment available in m1",
        Duration::from_secs(90),
        || async {
            let d = deploys1.get_opt("web").await?;
            Ok(
                d.filter(|d| d.status.as_ref().and_then(|s| s.available_replicas) == Some(2))
                    .map(|_| ()),
            )
        },
    )
    .await?;
    let cm = cms1.get("settings").await.context("ConfigMap in m1")?;
    ensure!(
        cm.data
            .as_ref()
            .and_then(|d| d.get("color"))
            .map(String::as_str)
            == Some("blue")
    );
    ensure!(
        cm.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("karmada.io/managed"))
            .map(String::as_str)
            == Some("true"),
        "managed label"
    );

    // Nothing in m2.
    let deploys2: Api<Deployment> = Api::namespaced(m2.client(), "shop");
    ensure!(
        absent(&m2.client(), &deploys2, "web").await?,
        "the Deployment must not reach m2"
    );

    // The Deployment's status comes back to the hub's Work.
    let ns = format!("karmada-es-{}", m1.name());
    wait_for(
        "Work status with available replicas",
        Duration::from_secs(60),
        || async {
            let w: Value = serde_json::from_str(
                &hub.kubectl(&[
                    "get",
                    "work",
                    "-n",
                    &ns,
                    "shop-web-deployment",
                    "-o",
                    "json",
                ])
                .await?,
            )?;
            let applied =
                w.pointer("/status/conditions/0/status") == Some(&serde_json::json!("True"));
            let avail = w
                .pointer("/status/manifestStatuses/0/status/availableReplicas")
                .and_then(Value::as_i64);
            let healthy = w.pointer("/status/manifestStatuses/0/health")
                == Some(&serde_json::json!("Healthy"));
            Ok((applied && avail == Some(2) && healthy).then_some(()))
        },
    )
    .await?;

    // Remove it from the Work set: it disappears from m1.
    hub.ctl_stdin(
        &["work", "remove", "--cluster", m1.name(), "-f", "-"],
        &manifests,
    )
    .await?;
    wait_for(
        "Deployment and ConfigMap gone from m1",
        Duration::from_secs(60),
        || async {
            let m1 = m1.client();
            Ok(
                (absent(&m1, &deploys1, "web").await? && absent(&m1, &cms1, "settings").await?)
                    .then_some(()),
            )
        },
    )
    .await?;
    wait_for(
        "Works gone from the hub",
        Duration::from_secs(30),
        || async {
            let out = hub
                .kubectl(&["get", "works", "-n", &ns, "-o", "name"])
                .await?;
            Ok(out.trim().is_empty().then_some(()))
        },
    )
    .await?;
    Ok(())
}
