//! Helm against the hub itself: install, upgrade twice, roll back and uninstall a chart of
//! several kinds. Helm 4 applies with server-side apply, so every upgrade is the same field
//! manager applying again.

mod agent_support;

use std::process::Output;

use agent_support::HubProcess;
use anyhow::{Context, Result, ensure};
use flotilla_e2e::clusters::kind_dir;

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
    let tmp = tempfile::tempdir()?;
    let hub = HubProcess::start(&tmp.path().join("hub"), 40).await?;
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
    helm(&[
        "upgrade",
        "demo",
        &chart,
        "--set",
        "image=nginx:1.27,color=green",
    ])?;
    ensure!(get("deploy/demo", "{.spec.template.spec.containers[0].image}").await? == "nginx:1.27");
    ensure!(get("cm/demo-settings", "{.data.color}").await? == "green");
    helm(&[
        "upgrade",
        "demo",
        &chart,
        "--reuse-values",
        "--set",
        "replicas=3",
    ])?;
    ensure!(get("deploy/demo", "{.spec.replicas}").await? == "3");
    helm(&["rollback", "demo", "1"])?;
    ensure!(get("deploy/demo", "{.spec.template.spec.containers[0].image}").await? == "nginx:1.25");
    ensure!(get("deploy/demo", "{.spec.replicas}").await? == "2");
    ensure!(get("cm/demo-settings", "{.data.color}").await? == "blue");
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
    Ok(())
}
