//! The Helm charts: `helm lint --strict`, then their rendered manifests accepted by a real
//! member cluster's API server (`kubectl apply --dry-run=server`), and refused when a required
//! value is missing.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Result, ensure};
use flotilla_e2e::clusters::{ClusterOptions, MemberCluster, kind_dir};

fn charts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/charts")
}

fn helm(args: &[&str]) -> Output {
    Command::new(kind_dir().join("helm"))
        .args(args)
        .output()
        .expect("kind/helm runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const AGENT_VALUES: &[&str] = &[
    "--set",
    "clusterName=edge-1",
    "--set",
    "hub.address=hub.example.com:7443",
    "--set",
    "hub.caHash=sha256:0000000000000000000000000000000000000000000000000000000000000000",
    "--set",
    "token=abcdef.0123456789abcdef",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_lint_and_render_manifests_a_cluster_accepts() -> Result<()> {
    for chart in ["flotilla-agent", "flotilla-hub"] {
        let path = charts().join(chart);
        let mut args = vec!["lint", "--strict", path.to_str().unwrap()];
        if chart == "flotilla-agent" {
            args.extend_from_slice(AGENT_VALUES);
        }
        let o = helm(&args);
        ensure!(o.status.success(), "helm lint {chart}: {}", text(&o));
    }
    // A required value left out is an error, not a broken manifest.
    let o = helm(&[
        "template",
        "a",
        charts().join("flotilla-agent").to_str().unwrap(),
        "--set",
        "clusterName=x",
    ]);
    ensure!(
        !o.status.success() && text(&o).contains("required"),
        "{}",
        text(&o)
    );

    let cluster = MemberCluster::create("charts", ClusterOptions::with_nodes(1)).await?;
    let ns = cluster
        .kubectl()
        .args(["create", "namespace", "flotilla-system"])
        .output()
        .await?;
    ensure!(ns.status.success(), "{}", text(&ns));
    for chart in ["flotilla-agent", "flotilla-hub"] {
        let path = charts().join(chart);
        let mut args = vec![
            "template",
            "flotilla",
            path.to_str().unwrap(),
            "--namespace",
            "flotilla-system",
        ];
        if chart == "flotilla-agent" {
            args.extend_from_slice(AGENT_VALUES);
        }
        let rendered = helm(&args);
        ensure!(
            rendered.status.success(),
            "helm template {chart}: {}",
            text(&rendered)
        );
        let file = std::env::temp_dir().join(format!("{chart}-{}.yaml", std::process::id()));
        std::fs::write(&file, &rendered.stdout)?;
        let applied = cluster
            .kubectl()
            .args([
                "apply",
                "--dry-run=server",
                "-n",
                "flotilla-system",
                "-f",
                file.to_str().unwrap(),
            ])
            .output()
            .await?;
        let _ = std::fs::remove_file(&file);
        ensure!(
            applied.status.success(),
            "{chart} rejected by the API server: {}",
            text(&applied)
        );
        let out = String::from_utf8_lossy(&applied.stdout);
        let kind = if chart == "flotilla-hub" {
            "statefulset.apps/"
        } else {
            "deployment.apps/"
        };
        ensure!(
            out.contains(kind) && out.contains("(server dry run)"),
            "{chart}: {out}"
        );
    }
    cluster.delete().await?;
    Ok(())
}
