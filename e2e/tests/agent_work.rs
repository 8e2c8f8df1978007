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
    // Agent certificates live two minutes here, so each agent renews its own during the test.
    let hub = HubProcess::start_with(
        &tmp.path().join("hub"),
        40,
        &["--agent-cert-ttl-seconds", "120"],
    )
    .await?;

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
    let a1 = AgentProcess::start(&r1, m1.kubeconfig(), &tmp.path().join("a1")).await?;
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
    let first_cert = std::fs::read_to_string(tmp.path().join("a1/tls.crt"))?;
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

    // 3. The member's guard rails (the defaults): a ClusterRole and a ConfigMap in
    //    kube-system are refused and reported with the rule that refused them, the rest is
    //    applied, and an existing object is not taken over although the Work asks for it.
    let theirs: Api<ConfigMap> = Api::namespaced(m2.client(), "default");
    theirs
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "owned-by-someone"}, "data": {"who": "member"}}))?,
        )
        .await?;
    hub.ctl_stdin(&["work", "put", "--cluster", m2.name(), "-f", "-"], GUARDED)
        .await?;
    let allowed: Api<ConfigMap> = Api::namespaced(m2.client(), "shop");
    wait_for(
        "the allowed ConfigMap in m2",
        Duration::from_secs(60),
        || async { Ok(allowed.get_opt("allowed").await?.map(|_| ())) },
    )
    .await?;
    let ns2 = format!("karmada-es-{}", m2.name());
    let reports = wait_for("refusals reported", Duration::from_secs(60), || async {
        let works: Value = serde_json::from_str(
            &hub.kubectl(&["get", "works", "-n", &ns2, "-o", "json"])
                .await?,
        )?;
        let message = |name: &str| {
            works["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|w| {
                    w.pointer("/spec/workload/manifests/0/metadata/name")
                        == Some(&serde_json::json!(name))
                })
                .and_then(|w| {
                    w.pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .cloned()
                })
                .and_then(|cs| {
                    cs.into_iter()
                        .find(|c| c["type"] == "Applied" && c["status"] == "False")
                })
                .and_then(|c| c["message"].as_str().map(str::to_owned))
        };
        let got: Vec<Option<String>> = ["flotilla-intruder", "intruder", "owned-by-someone"]
            .iter()
            .map(|n| message(n))
            .collect();
        Ok(got.iter().all(Option::is_some).then_some(got))
    })
    .await?;
    let reports: Vec<String> = reports.into_iter().flatten().collect();
    ensure!(
        reports[0].contains("guard rails (rbac)"),
        "the ClusterRole's refusal: {}",
        reports[0]
    );
    ensure!(
        reports[1].contains("guard rails (deniedNamespaces/allowedNamespaces)"),
        "the kube-system ConfigMap's refusal: {}",
        reports[1]
    );
    ensure!(
        reports[2].contains("not managed by Flotilla"),
        "the existing ConfigMap's conflict: {}",
        reports[2]
    );
    // Each refusal is also a Warning Event on the hub, on the refused object's Work.
    let events = wait_for(
        "refusal Events on the hub",
        Duration::from_secs(30),
        || async {
            let list: Value = serde_json::from_str(
                &hub.kubectl(&["get", "events", "-n", &ns2, "-o", "json"])
                    .await?,
            )?;
            let refused: Vec<String> = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["reason"] == "GuardRailRefused" && e["type"] == "Warning")
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .collect();
            Ok((refused.len() >= 2).then_some(refused))
        },
    )
    .await?;
    ensure!(
        events.iter().any(|m| m.contains("(rbac)"))
            && events
                .iter()
                .any(|m| m.contains("(deniedNamespaces/allowedNamespaces)")),
        "refusal Events: {events:?}"
    );
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(m2.client());
    ensure!(
        absent(&m2.client(), &roles, "flotilla-intruder").await?,
        "the ClusterRole was applied"
    );
    let system: Api<ConfigMap> = Api::namespaced(m2.client(), "kube-system");
    ensure!(
        absent(&m2.client(), &system, "intruder").await?,
        "the kube-system ConfigMap was applied"
    );
    let kept = theirs.get("owned-by-someone").await?;
    ensure!(
        kept.data.and_then(|d| d.get("who").cloned()).as_deref() == Some("member"),
        "the member's own ConfigMap was taken over"
    );

    // 4. Rotation: m1's agent renews its two-minute certificate (a new key pair, the key never
    //    sent) over the hub connection and stores it; its one stream stays up and Work still
    //    flows.
    wait_for(
        "a certificate rotation by m1's agent",
        Duration::from_secs(150),
        || async {
            Ok((a1
                .metric("flotilla_agent_certificate_rotations_total")
                .await?
                >= 1)
                .then_some(()))
        },
    )
    .await?;
    let stored = std::fs::read_to_string(tmp.path().join("a1/tls.crt"))?;
    ensure!(
        stored != first_cert,
        "the renewed certificate was not stored"
    );
    let sessions = a1.metric("flotilla_agent_sessions_total").await?;
    ensure!(
        sessions == 1,
        "m1's agent reconnected during the rotation ({sessions} sessions)"
    );
    hub.ctl_stdin(
        &["work", "put", "--cluster", m1.name(), "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after-rotation, namespace: shop}\ndata: {a: '1'}\n",
    )
    .await?;
    wait_for(
        "Work applied after the rotation",
        Duration::from_secs(60),
        || async { Ok(cms1.get_opt("after-rotation").await?.map(|_| ())) },
    )
    .await?;
    Ok(())
}

/// A Work set the default guard rails must partly refuse.
const GUARDED: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: flotilla-intruder}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: intruder, namespace: kube-system}
data: {a: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: allowed, namespace: shop}
data: {a: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: owned-by-someone
  namespace: default
  annotations: {work.karmada.io/conflict-resolution: overwrite}
data: {who: hub}
"#;
