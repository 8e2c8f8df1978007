//! Looking inside members through the hub's cluster proxy: kubeconfigs whose server is a
//! cluster's proxy path, and kubectl run against one or many members with a CLUSTER column.

use std::path::Path;

use anyhow::{Context, Result, bail};
use kube::config::Kubeconfig;

/// The hub path under which a cluster's API is proxied.
pub fn proxy_path(cluster: &str) -> String {
    format!("/apis/cluster.karmada.io/v1alpha1/clusters/{cluster}/proxy")
}

/// The hub kubeconfig at `path`, or the usual discovery (`$KUBECONFIG`, `~/.kube/config`).
pub fn hub_kubeconfig(path: Option<&Path>) -> Result<Kubeconfig> {
    match path {
        Some(p) => {
            Kubeconfig::read_from(p).with_context(|| format!("reading kubeconfig {}", p.display()))
        }
        None => Kubeconfig::read().context("finding a kubeconfig for the hub (use --kubeconfig)"),
    }
}

/// A kubeconfig for member `cluster`: the hub kubeconfig's current context, with its server
/// moved to the cluster's proxy path and everything else (credentials, CA) kept.
pub fn proxy_kubeconfig(hub: &Kubeconfig, cluster: &str) -> Result<Kubeconfig> {
    let current = hub
        .current_context
        .as_deref()
        .context("the hub kubeconfig has no current context")?;
    let ctx = hub
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.clone())
        .with_context(|| format!("context {current} is not in the hub kubeconfig"))?;
    let mut named_cluster = hub
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .cloned()
        .with_context(|| format!("cluster {} is not in the hub kubeconfig", ctx.cluster))?;
    let c = named_cluster
        .cluster
        .as_mut()
        .context("the hub kubeconfig's cluster has no settings")?;
    let server = c
        .server
        .as_deref()
        .context("the hub kubeconfig's cluster has no server")?;
    c.server = Some(format!(
        "{}{}",
        server.trim_end_matches('/'),
        proxy_path(cluster)
    ));
    let name = format!("flotilla-{cluster}");
    named_cluster.name = name.clone();
    let user = ctx.user.clone();
    let auth = hub
        .auth_infos
        .iter()
        .filter(|a| Some(&a.name) == user.as_ref())
        .cloned()
        .collect();
    let mut context = ctx;
    context.cluster = name.clone();
    context.namespace = None;
    Ok(Kubeconfig {
        clusters: vec![named_cluster],
        auth_infos: auth,
        contexts: vec![kube::config::NamedContext {
            name: name.clone(),
            context: Some(context),
            ..Default::default()
        }],
        current_context: Some(name),
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        ..Kubeconfig::default()
    })
}

/// A private temporary file holding `kc` (removed when dropped).
pub struct TempKubeconfig {
    dir: std::path::PathBuf,
    /// The file.
    pub path: std::path::PathBuf,
}

impl Drop for TempKubeconfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TempKubeconfig {
    /// Writes `kc` to a new private directory.
    pub fn write(kc: &Kubeconfig) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("flotillactl-{}", uuid::Uuid::new_v4()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("kubeconfig");
        let text = serde_json::to_string_pretty(kc).context("encoding the kubeconfig")?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(Self { dir, path })
    }
}

/// The kubectl to run: `$KUBECTL`, else `kubectl` on `PATH`.
pub fn kubectl() -> std::ffi::OsString {
    std::env::var_os("KUBECTL").unwrap_or_else(|| "kubectl".into())
}

/// Runs kubectl with `args` against member `cluster`, attached to this terminal; returns its
/// exit code.
pub async fn run_kubectl(hub: &Kubeconfig, cluster: &str, args: &[String]) -> Result<i32> {
    let kc = TempKubeconfig::write(&proxy_kubeconfig(hub, cluster)?)?;
    // Ctrl-C (the usual end of `logs -f` and `port-forward`) reaches kubectl, which exits;
    // flotillactl stays to remove the temporary kubeconfig.
    let ignore_interrupts = tokio::spawn(async {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                break;
            }
        }
    });
    let status = tokio::process::Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&kc.path)
        .args(args)
        .status()
        .await
        .with_context(|| {
            format!(
                "running {:?}: install kubectl or set KUBECTL to its path",
                kubectl()
            )
        });
    ignore_interrupts.abort();
    drop(kc);
    Ok(status?.code().unwrap_or(1))
}

/// Merges per-cluster kubectl tables into one with a leading CLUSTER column: each table is
/// cut at its header's column starts (kubectl aligns cells under their headers).
pub fn merge_tables(tables: &[(String, String)]) -> String {
    let mut header: Option<Vec<String>> = None;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (cluster, text) in tables {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let Some(head) = lines.next() else { continue };
        let starts = column_starts(head);
        let cut = |line: &str| -> Vec<String> {
            starts
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    let end = starts.get(i + 1).copied().unwrap_or(usize::MAX);
                    let cell: String = line.chars().skip(s).take(end.saturating_sub(s)).collect();
                    cell.trim().to_owned()
                })
                .collect()
        };
        if header.is_none() {
            let mut h = vec!["CLUSTER".to_owned()];
            h.extend(cut(head));
            header = Some(h);
        }
        for l in lines {
            let mut r = vec![cluster.clone()];
            r.extend(cut(l));
            rows.push(r);
        }
    }
    let Some(header) = header else {
        return "No resources found\n".into();
    };
    let mut all = vec![header];
    all.extend(rows);
    crate::cli::align(&all)
}

/// Character offsets where the header's column names begin.
fn column_starts(head: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut prev_space = true;
    for (i, ch) in head.chars().enumerate() {
        if !ch.is_whitespace() && prev_space {
            starts.push(i);
        }
        prev_space = ch.is_whitespace();
    }
    starts
}

/// Runs `kubectl get ARGS` against each of `clusters` at once and prints one table.
pub async fn get(hub: &Kubeconfig, clusters: &[String], args: &[String]) -> Result<String> {
    if args
        .iter()
        .any(|a| a == "-o" || a.starts_with("-o=") || a.starts_with("--output"))
    {
        bail!(
            "--clusters prints tables only; for other output run kubectl with `flotillactl kubeconfig cluster NAME`"
        );
    }
    let mut tasks = Vec::new();
    for c in clusters {
        let kc = TempKubeconfig::write(&proxy_kubeconfig(hub, c)?)?;
        let args = args.to_vec();
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let out = tokio::process::Command::new(kubectl())
                .arg("--kubeconfig")
                .arg(&kc.path)
                .arg("get")
                .args(&args)
                .output()
                .await;
            drop(kc);
            (c, out)
        }));
    }
    let mut tables = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        let (c, out) = t.await.context("a kubectl run panicked")?;
        let out = out.with_context(|| {
            format!(
                "running {:?}: install kubectl or set KUBECTL to its path",
                kubectl()
            )
        })?;
        if out.status.success() {
            tables.push((c, String::from_utf8_lossy(&out.stdout).into_owned()));
        } else {
            errors.push(format!(
                "cluster {c}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    for e in &errors {
        eprintln!("{e}");
    }
    if tables.is_empty() && !errors.is_empty() {
        bail!("no cluster answered");
    }
    Ok(merge_tables(&tables))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn proxy_kubeconfigs_keep_credentials_and_move_the_server() {
        let hub: Kubeconfig = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "hub",
            "clusters": [{"name": "hub", "cluster": {"server": "https://127.0.0.1:6443/", "certificate-authority-data": "Y2E="}},
                         {"name": "other", "cluster": {"server": "https://other"}}],
            "users": [{"name": "admin", "user": {"token": "secret"}}, {"name": "x", "user": {"token": "y"}}],
            "contexts": [{"name": "hub", "context": {"cluster": "hub", "user": "admin", "namespace": "team"}}],
        }))
        .unwrap();
        let kc = proxy_kubeconfig(&hub, "m1").unwrap();
        let v = serde_json::to_value(&kc).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443/apis/cluster.karmada.io/v1alpha1/clusters/m1/proxy"
        );
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"],
            "Y2E="
        );
        assert_eq!(v["clusters"].as_array().unwrap().len(), 1);
        assert_eq!(
            v["users"].as_array().unwrap().len(),
            1,
            "only the context's user"
        );
        assert_eq!(v["users"][0]["user"]["token"], "secret");
        assert_eq!(v["current-context"], "flotilla-m1");
        assert!(v["contexts"][0]["context"].get("namespace").is_none());
    }

    #[test]
    fn tables_merge_with_a_cluster_column() {
        let a = "NAME    READY   STATUS    AGE\nweb-1   1/1     Running   5s\n";
        let b = "NAME          READY   STATUS    AGE\nlong-name-2   0/1     Pending   1m\n";
        let out = merge_tables(&[("m1".into(), a.into()), ("member2".into(), b.into())]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "CLUSTER   NAME          READY   STATUS    AGE");
        assert_eq!(lines[1], "m1        web-1         1/1     Running   5s");
        assert_eq!(lines[2], "member2   long-name-2   0/1     Pending   1m");
        assert_eq!(merge_tables(&[]), "No resources found\n");
    }
}
