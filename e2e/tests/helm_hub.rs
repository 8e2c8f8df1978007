//! Helm against the hub itself: install, upgrade twice, roll back and uninstall a chart of
//! several kinds, while a ClusterPropagationPolicy places what the chart makes on a real member
//! cluster: every release's objects reach the member, and uninstall removes them there. Helm 4
//! applies with server-side apply, so every upgrade is the same field manager applying again;
//! `kubectl apply --server-side` twice is checked the same way.

mod agent_support;

use std::process::Output;
use std::time::Duration;

use agent_support::{AgentProcess, HubProcess, wait_for};
use anyhow::{Context, Result, ensure};
use flotilla_e2e::clusters::{ClusterOptions, MemberCluster, kind_dir};

const CHART: &str = "apiVersion: v2\nname: demo\nversion: 0.1.0\n";
const VALUES: &str = "image: nginx:1.25\nreplicas: 2\ncolor: blue\n";
const TEMPLATE: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  color: {{ .Values.color | quote }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {app: {{ .Release.Name }}}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
      - name: web
        image: {{ .Values.image }}
"#;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_upgrades_rolls_back_and_uninstalls_on_the_hub() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir()?;
    let hub = HubProcess::start(&tmp.path().join("hub"), 40).await?;
    let member = MemberCluster::create("helm-m1", ClusterOptions::default()).await?;
    let reg = hub.register("helm-m1").await?;
    let _agent = AgentProcess::start(&reg, member.kubeconfig(), &tmp.path().join("m1")).await?;
    wait_for("helm-m1 Ready", Duration::from_secs(90), || async {
        Ok((hub.ready("helm-m1").await? == "True").then_some(()))
    })
    .await?;
    hub.apply(
        "apiVersion: policy.karmada.io/v1alpha1\nkind: ClusterPropagationPolicy\nmetadata: {name: demo}\nspec:\n  resourceSelectors:\n  - {apiVersion: apps/v1, kind: Deployment, name: demo}\n  - {apiVersion: v1, kind: ConfigMap, name: demo-settings}\n  - {apiVersion: v1, kind: ConfigMap, name: applied}\n  placement: {clusterAffinity: {clusterNames: [helm-m1]}}\n",
    )
    .await?;
    // What the member holds: `None` only for NotFound from a member that answers.
    let on_member = |what: &'static str, path: &'static str| {
        let member = &member;
        async move {
            let out = member
                .kubectl()
                .args([
                    "get",
                    what,
                    "-n",
                    "default",
                    "-o",
                    &format!("jsonpath={path}"),
                ])
                .output()
                .await?;
            if out.status.success() {
                return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
            }
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            ensure!(
                err.contains("(NotFound)"),
                "kubectl get {what} on helm-m1: {err}"
            );
            let alive = member
                .kubectl()
                .args(["get", "ns", "default"])
                .output()
                .await?;
            ensure!(
                alive.status.success(),
                "helm-m1 answered NotFound but is not answering"
            );
            anyhow::Ok(None)
        }
    };
    let member_has = |what: &'static str, path: &'static str, want: &'static str| {
        let on_member = &on_member;
        async move {
            wait_for(
                &format!("{what} {path} = {want} on helm-m1"),
                Duration::from_secs(60),
                || async {
                    Ok((on_member(what, path).await?.as_deref() == Some(want)).then_some(()))
                },
            )
            .await
        }
    };
    let chart = tmp.path().join("demo");
    std::fs::create_dir_all(chart.join("templates"))?;
    std::fs::write(chart.join("Chart.yaml"), CHART)?;
    std::fs::write(chart.join("values.yaml"), VALUES)?;
    std::fs::write(chart.join("templates/all.yaml"), TEMPLATE)?;
    let chart = chart.to_str().context("chart path")?.to_owned();
    let kubeconfig = hub
        .kubeconfig
        .to_str()
        .context("kubeconfig path")?
        .to_owned();
    let helm = |args: &[&str]| -> Result<String> {
        let o = std::process::Command::new(kind_dir().join("helm"))
            .args(["--kubeconfig", &kubeconfig, "-n", "default"])
            .args(args)
            .output()
            .context("running kind/helm")?;
        ensure!(o.status.success(), "helm {}: {}", args.join(" "), text(&o));
        Ok(text(&o))
    };
    let version = helm(&["version", "--short"])?;
    ensure!(
        version.starts_with("v4."),
        "this test expects Helm 4, got {version}"
    );
    let get = |what: &str, path: &str| {
        let hub = &hub;
        let (what, path) = (what.to_owned(), path.to_owned());
        async move {
            hub.kubectl(&["get", &what, "-o", &format!("jsonpath={path}")])
                .await
        }
    };

    helm(&["install", "demo", &chart])?;
    ensure!(get("deploy/demo", "{.spec.template.spec.containers[0].image}").await? == "nginx:1.25");
    member_has(
        "deploy/demo",
        "{.spec.template.spec.containers[0].image}",
        "nginx:1.25",
    )
    .await?;
    helm(&[
        "upgrade",
        "demo",
        &chart,
        "--set",
        "image=nginx:1.27,color=green",
    ])?;
    ensure!(get("deploy/demo", "{.spec.template.spec.containers[0].image}").await? == "nginx:1.27");
    ensure!(get("cm/demo-settings", "{.data.color}").await? == "green");
    member_has(
        "deploy/demo",
        "{.spec.template.spec.containers[0].image}",
        "nginx:1.27",
    )
    .await?;
    member_has("cm/demo-settings", "{.data.color}", "green").await?;
    helm(&[
        "upgrade",
        "demo",
        &chart,
        "--reuse-values",
        "--set",
        "replicas=3",
    ])?;
    ensure!(get("deploy/demo", "{.spec.replicas}").await? == "3");
    member_has("deploy/demo", "{.spec.replicas}", "3").await?;
    helm(&["rollback", "demo", "1"])?;
    ensure!(get("deploy/demo", "{.spec.template.spec.containers[0].image}").await? == "nginx:1.25");
    ensure!(get("deploy/demo", "{.spec.replicas}").await? == "2");
    ensure!(get("cm/demo-settings", "{.data.color}").await? == "blue");
    member_has(
        "deploy/demo",
        "{.spec.template.spec.containers[0].image}",
        "nginx:1.25",
    )
    .await?;
    member_has("deploy/demo", "{.spec.replicas}", "2").await?;
    member_has("cm/demo-settings", "{.data.color}", "blue").await?;

    // kubectl apply --server-side twice by the same manager: the second apply wins, and the
    // member gets it.
    for colour in ["red", "black"] {
        let file = tmp.path().join(format!("applied-{colour}.yaml"));
        std::fs::write(
            &file,
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: applied, namespace: default}}\ndata: {{colour: {colour}}}\n"
            ),
        )?;
        hub.kubectl(&["apply", "--server-side", "-f", &file.to_string_lossy()])
            .await?;
    }
    ensure!(get("cm/applied", "{.data.colour}").await? == "black");
    member_has("cm/applied", "{.data.colour}", "black").await?;
    let history = helm(&["history", "demo", "-o", "json"])?;
    let revisions = serde_json::from_str::<serde_json::Value>(&history)?
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    ensure!(revisions == 4, "helm history: {history}");
    helm(&["uninstall", "demo"])?;
    let left = hub
        .kubectl(&["get", "deploy,svc,cm", "-l", "app=demo", "-o", "name"])
        .await?;
    ensure!(
        hub.kubectl(&["get", "deploy", "-o", "name"])
            .await?
            .trim()
            .is_empty(),
        "the Deployment survived uninstall: {left}"
    );
    wait_for(
        "deploy/demo gone from helm-m1",
        Duration::from_secs(60),
        || async {
            Ok(on_member("deploy/demo", "{.metadata.name}")
                .await?
                .is_none()
                .then_some(()))
        },
    )
    .await?;
    member.delete().await?;
    Ok(())
}
