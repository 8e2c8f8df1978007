//! Agent fault tolerance with a real member cluster: the hub down for 30 s, the agent killed
//! and restarted, the member's API server stopped.

mod agent_support;

use std::time::Duration;

use agent_support::{AgentProcess, HubProcess, app_manifests, wait_for};
use anyhow::{Context, Result, ensure};
use flotilla_e2e::clusters::{ClusterOptions, MemberCluster};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::ListParams;

const EXTRA: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: shop\ndata:\n  k: v\n";

async fn color(cms: &Api<ConfigMap>) -> Result<Option<String>> {
    Ok(cms
        .get_opt("settings")
        .await?
        .and_then(|c| c.data)
        .and_then(|d| d.get("color").cloned()))
}

fn signal(pid: u32, sig: &str) -> Result<()> {
    let st = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()?;
    ensure!(st.success(), "kill {sig} {pid} failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_survives_hub_agent_and_member_faults() -> Result<()> {
    agent_support::build_binaries()?;
    let tmp = tempfile::tempdir()?;
    let m = MemberCluster::create("agent-faults", ClusterOptions::with_nodes(2)).await?;
    let mut hub = HubProcess::start(&tmp.path().join("hub"), 15).await?;
    let reg = hub.register(m.name()).await?;
    let mut agent = AgentProcess::start(&reg, m.kubeconfig(), &tmp.path().join("agent")).await?;
    let name = m.name().to_owned();
    wait_for("cluster Ready", Duration::from_secs(60), || async {
        Ok((hub.ready(&name).await? == "True").then_some(()))
    })
    .await?;

    let deploys: Api<Deployment> = Api::namespaced(m.client(), "shop");
    let cms: Api<ConfigMap> = Api::namespaced(m.client(), "shop");
    hub.ctl_stdin(
        &["work", "put", "--cluster", &name, "-f", "-"],
        &app_manifests("shop", 2, "blue"),
    )
    .await?;
    wait_for(
        "app running in the member",
        Duration::from_secs(90),
        || async {
            let d = deploys.get_opt("web").await?;
            let ok = d.and_then(|d| d.status).and_then(|s| s.available_replicas) == Some(2)
                && color(&cms).await?.as_deref() == Some("blue");
            Ok(ok.then_some(()))
        },
    )
    .await?;

    // 1. The hub is killed for 30 s: the member keeps everything.
    hub.kill().await;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        ensure!(
            deploys.get_opt("web").await?.is_some(),
            "the Deployment was deleted while the hub was down"
        );
        ensure!(
            color(&cms).await?.as_deref() == Some("blue"),
            "the ConfigMap changed while the hub was down"
        );
    }
    hub.restart().await?;
    // Updates made after the restart reach the member over the resumed stream.
    hub.ctl_stdin(
        &["work", "put", "--cluster", &name, "-f", "-"],
        &app_manifests("shop", 2, "green"),
    )
    .await?;
    hub.ctl_stdin(&["work", "put", "--cluster", &name, "-f", "-"], EXTRA)
        .await?;
    wait_for(
        "converged after the hub restart",
        Duration::from_secs(90),
        || async {
            let ok = color(&cms).await?.as_deref() == Some("green")
                && cms.get_opt("extra").await?.is_some();
            Ok(ok.then_some(()))
        },
    )
    .await?;
    wait_for(
        "cluster Ready after the hub restart",
        Duration::from_secs(60),
        || async { Ok((hub.ready(&name).await? == "True").then_some(())) },
    )
    .await?;

    // 2. The agent is killed; a change is made while it is down; it restarts and converges
    //    without duplicates and without re-applying what did not change: the unchanged
    //    objects keep their resourceVersion, and the new agent process counts exactly one
    //    apply (the changed ConfigMap).
    let rv = |o: Option<String>| o.context("an object without a resourceVersion");
    let deploy_rv = rv(deploys.get("web").await?.metadata.resource_version)?;
    let extra_rv = rv(cms.get("extra").await?.metadata.resource_version)?;
    let settings_rv = rv(cms.get("settings").await?.metadata.resource_version)?;
    agent.kill().await;
    hub.ctl_stdin(
        &["work", "put", "--cluster", &name, "-f", "-"],
        &app_manifests("shop", 2, "yellow"),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    agent.restart().await?;
    wait_for(
        "converged after the agent restart",
        Duration::from_secs(60),
        || async { Ok((color(&cms).await?.as_deref() == Some("yellow")).then_some(())) },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let managed = ListParams::default().labels("karmada.io/managed=true");
    let cm_names: Vec<String> = cms
        .list(&managed)
        .await?
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    ensure!(
        cm_names.len() == 2
            && cm_names.contains(&"settings".to_owned())
            && cm_names.contains(&"extra".to_owned()),
        "ConfigMaps: {cm_names:?}"
    );
    ensure!(
        deploys.list(&managed).await?.items.len() == 1,
        "exactly one managed Deployment"
    );
    let after = |what: &str, before: &str, now: String| {
        ensure!(
            before == now,
            "the unchanged {what} was written after the agent restart (resourceVersion {before} -> {now})"
        );
        Ok(())
    };
    after(
        "Deployment",
        &deploy_rv,
        rv(deploys.get("web").await?.metadata.resource_version)?,
    )?;
    after(
        "ConfigMap extra",
        &extra_rv,
        rv(cms.get("extra").await?.metadata.resource_version)?,
    )?;
    ensure!(
        rv(cms.get("settings").await?.metadata.resource_version)? != settings_rv,
        "the changed ConfigMap kept its resourceVersion"
    );
    let applies = agent.metric("flotilla_agent_applies_total").await?;
    ensure!(
        applies == 1,
        "the restarted agent applied {applies} objects; only the changed ConfigMap needed it"
    );
    ensure!(
        !agent.log().contains('\u{1b}'),
        "the agent's log, written to a file, has terminal colour codes"
    );

    // 3. The member API server stops: the cluster turns not Ready, and recovers.
    let pid = m
        .api_server_pid()
        .context("the member's kube-apiserver process")?;
    signal(pid, "-STOP")?;
    let stopped = wait_for(
        "cluster not Ready while the member API server is stopped",
        Duration::from_secs(60),
        || async {
            let r = hub.ready(&name).await?;
            Ok((r == "False" || r == "Unknown").then_some(r))
        },
    )
    .await;
    signal(pid, "-CONT")?;
    let r = stopped?;
    eprintln!("Ready={r} while the member API server was stopped");
    wait_for("cluster Ready again", Duration::from_secs(60), || async {
        Ok((hub.ready(&name).await? == "True").then_some(()))
    })
    .await?;
    ensure!(
        deploys.get_opt("web").await?.is_some(),
        "the Deployment survived"
    );

    // 4. The agent falls silent (stopped, its connection open): after the grace period the
    //    cluster turns Ready=Unknown with Karmada's reason, its Lease still says when it was
    //    last heard from, and the cluster recovers when the agent resumes.
    // The first Lease write comes within a minute of the hub hearing from the agent.
    let lease: serde_json::Value =
        wait_for("the cluster's Lease", Duration::from_secs(90), || async {
            let out = hub
                .kubectl(&["get", "leases", "-n", "karmada-cluster", "-o", "json"])
                .await?;
            let list: serde_json::Value = serde_json::from_str(&out)?;
            Ok(list["items"]
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .find(|l| l["metadata"]["name"] == name.as_str())
                })
                .cloned())
        })
        .await?;
    let renewed = lease["spec"]["renewTime"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure!(
        lease["spec"]["holderIdentity"] == name.as_str() && renewed.len() == 27,
        "the cluster's Lease is not as expected: {lease}"
    );
    let apid = agent.pid().context("the agent's process")?;
    signal(apid, "-STOP")?;
    let silent = wait_for(
        "cluster Ready=Unknown while its agent is silent",
        Duration::from_secs(60),
        || async {
            let c: serde_json::Value = serde_json::from_str(
                &hub.kubectl(&["get", "cluster", &name, "-o", "json"])
                    .await?,
            )?;
            let ready = c["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .cloned()
                .unwrap_or_default();
            Ok((ready["status"] == "Unknown").then_some(ready))
        },
    )
    .await;
    signal(apid, "-CONT")?;
    let silent = silent?;
    ensure!(
        silent["reason"] == "ClusterStatusUnknown",
        "a silent agent's cluster has reason {}, not ClusterStatusUnknown",
        silent["reason"]
    );
    wait_for(
        "cluster Ready again after the agent resumed",
        Duration::from_secs(60),
        || async { Ok((hub.ready(&name).await? == "True").then_some(())) },
    )
    .await?;
    Ok(())
}
