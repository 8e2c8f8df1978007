//! The command line.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;

use crate::hub::Hub;
use crate::register::{self, RegisterOptions};
use crate::work;

/// Output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// Human-readable text.
    Text,
    /// JSON for scripts.
    Json,
    /// Extra columns (for `get`).
    Wide,
}

/// `flotillactl`.
#[derive(Debug, Parser)]
#[command(
    name = "flotillactl",
    version,
    about = "Flotilla command-line tool: enroll member clusters and manage their Work",
    after_help = "Examples:\n  flotillactl --kubeconfig hub.kubeconfig register cluster m1 --region eu-west --zone eu-west-1a\n  flotillactl get clusters\n  flotillactl describe binding default/nginx-deployment\n  flotillactl rebalance deploy/nginx -n default\n  flotillactl work put --cluster m1 -f deployment.yaml\n  flotillactl revoke cluster m1\n  flotillactl unregister cluster m1\n  flotillactl create user alice --group team-a --out alice.kubeconfig\n  flotillactl get pods -A --clusters all\n  flotillactl get endpoints web -n shop\n  flotillactl logs --cluster m1 deploy/web -n shop -f\n  kubectl --kubeconfig <(flotillactl kubeconfig cluster m1) get pods -A"
)]
pub struct Cli {
    /// Kubeconfig of the hub (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true, env = "FLOTILLA_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value = "text")]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register something with the hub.
    Register {
        /// What to register.
        #[command(subcommand)]
        what: RegisterWhat,
    },
    /// Revoke credentials: every certificate of a cluster's agent stops working at once (its
    /// stream is closed); the agent enrolls again with a new token from `register cluster`.
    Revoke {
        /// What to revoke.
        #[command(subcommand)]
        what: RevokeWhat,
    },
    /// Create something on the hub.
    Create {
        /// What to create.
        #[command(subcommand)]
        what: CreateWhat,
    },
    /// Remove something from the hub.
    Unregister {
        /// What to remove.
        #[command(subcommand)]
        what: UnregisterWhat,
    },
    /// Show objects.
    Get {
        /// What to show.
        #[command(subcommand)]
        what: GetWhat,
    },
    /// Explain an object: for bindings, where they were placed and why.
    Describe {
        /// What to describe.
        #[command(subcommand)]
        what: DescribeWhat,
    },
    /// Schedule workloads again from scratch (a WorkloadRebalancer), e.g. to move replicas back
    /// to a cluster that recovered; failover's rules hold: nothing is removed before its
    /// replacement is placed.
    #[command(
        after_help = "Examples:\n  flotillactl rebalance deploy/web -n demo\n  flotillactl rebalance deploy/web sts/db -n demo --ttl 300"
    )]
    Rebalance {
        /// Workloads as `TYPE/NAME` (deploy, sts, ds, job, cronjob).
        #[arg(required = true)]
        targets: Vec<String>,
        /// Namespace of the workloads.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Delete the WorkloadRebalancer this many seconds after it finished.
        #[arg(long)]
        ttl: Option<u32>,
    },
    /// Write a kubeconfig that reaches a member cluster through the hub's cluster proxy
    /// (plain kubectl then works against the member, as the hub user `flotilla:<you>`).
    #[command(
        after_help = "Examples:\n  flotillactl kubeconfig cluster m1 > m1.kubeconfig\n  kubectl --kubeconfig <(flotillactl kubeconfig cluster m1) get pods -A"
    )]
    Kubeconfig {
        /// What for.
        #[command(subcommand)]
        what: KubeconfigWhat,
    },
    /// `kubectl logs` in a member cluster, through the hub's cluster proxy.
    #[command(
        after_help = "Examples:\n  flotillactl logs --cluster m1 web-6d4cf56db6-x7k2p -n shop\n  flotillactl logs --cluster m1 deploy/web -n shop -f --tail 20"
    )]
    Logs {
        /// The member cluster.
        #[arg(long)]
        cluster: String,
        /// kubectl logs arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// `kubectl exec` in a member cluster, through the hub's cluster proxy (the member's
    /// agent must allow `exec` in its guard rails).
    #[command(
        after_help = "Examples:\n  flotillactl exec --cluster m1 web-6d4cf56db6-x7k2p -n shop -- ls /\n  flotillactl exec --cluster m1 -it deploy/web -n shop -- sh"
    )]
    Exec {
        /// The member cluster.
        #[arg(long)]
        cluster: String,
        /// kubectl exec arguments: the pod, flags such as `-n` and `-it`, then `--` and the
        /// command.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// `kubectl port-forward` to a member cluster, through the hub's cluster proxy (the
    /// member's agent must allow `port-forward` in its guard rails).
    #[command(
        name = "port-forward",
        after_help = "Examples:\n  flotillactl port-forward --cluster m1 pod/web-6d4cf56db6-x7k2p 8080:80 -n shop"
    )]
    PortForward {
        /// The member cluster.
        #[arg(long)]
        cluster: String,
        /// kubectl port-forward arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// Change a cluster's Work set by hand.
    Work {
        /// The change.
        #[command(subcommand)]
        what: WorkWhat,
    },
}

/// `register ...`.
#[derive(Debug, Subcommand)]
pub enum RegisterWhat {
    /// Register a member cluster (syncMode Pull) and print a bootstrap token for its agent.
    Cluster {
        /// Cluster name (DNS label, at most 48 characters).
        name: String,
        /// Region.
        #[arg(long)]
        region: Option<String>,
        /// Zone (repeatable).
        #[arg(long = "zone")]
        zones: Vec<String>,
        /// Provider.
        #[arg(long)]
        provider: Option<String>,
        /// Labels, `k=v,k2=v2`.
        #[arg(long, default_value = "")]
        labels: String,
        /// Token lifetime (`30m`, `24h`, `7d`).
        #[arg(long, default_value = "24h")]
        ttl: String,
    },
}

/// `create ...`.
#[derive(Debug, Subcommand)]
pub enum CreateWhat {
    /// A user with a client certificate signed by the hub, and a kubeconfig for it. The user
    /// has no rights until bound to a role, e.g.
    /// `kubectl create rolebinding alice-edit --clusterrole=edit --user=alice -n team-a`.
    User {
        /// User name (the certificate's common name).
        name: String,
        /// Group (the certificate's organization).
        #[arg(long)]
        group: Option<String>,
        /// Certificate lifetime (`30m`, `24h`, `30d`; at most 365d).
        #[arg(long, default_value = "30d")]
        ttl: String,
        /// Where to write the kubeconfig (mode 0600; default NAME.kubeconfig).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `revoke ...`.
#[derive(Debug, Subcommand)]
pub enum RevokeWhat {
    /// Every agent certificate of a cluster.
    Cluster {
        /// Cluster name.
        name: String,
    },
}

/// `unregister ...`.
#[derive(Debug, Subcommand)]
pub enum UnregisterWhat {
    /// Remove a cluster; its agent is disconnected and its credential stops working.
    Cluster {
        /// Cluster name.
        name: String,
    },
}

/// `describe ...`.
#[derive(Debug, Subcommand)]
pub enum DescribeWhat {
    /// A ResourceBinding (`NAMESPACE/NAME`) or ClusterResourceBinding (`NAME`): its clusters,
    /// replica split, conditions, the scheduler's reasons and each member's report.
    Binding {
        /// `NAMESPACE/NAME` or `NAME`.
        target: String,
    },
}

/// `get ...`.
#[derive(Debug, Subcommand)]
pub enum GetWhat {
    /// List member clusters.
    Clusters,
    /// Any kind, from member clusters through the hub's cluster proxy, with a CLUSTER column:
    /// `get KIND [NAME] [-n NS | -A] [-l SELECTOR] --clusters m1,m2` (or `--clusters all`).
    /// Without `--clusters`, `get endpoints SERVICE [-n NS]` shows an exported Service's
    /// backends per cluster and region and where each consumer is served from.
    #[command(external_subcommand)]
    Members(Vec<String>),
}

/// `kubeconfig ...`.
#[derive(Debug, Subcommand)]
pub enum KubeconfigWhat {
    /// A kubeconfig for one member cluster (printed, or written to --out with mode 0600).
    Cluster {
        /// Cluster name.
        name: String,
        /// Write it here instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Splits `--clusters LIST` (or `--clusters=LIST`) from kubectl arguments.
pub fn split_clusters(args: &[String]) -> Result<(Vec<String>, Vec<String>)> {
    let mut clusters = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--clusters" {
            clusters = Some(
                it.next()
                    .context("--clusters needs a list, e.g. --clusters m1,m2 or all")?
                    .clone(),
            );
        } else if let Some(v) = a.strip_prefix("--clusters=") {
            clusters = Some(v.to_owned());
        } else {
            rest.push(a.clone());
        }
    }
    let clusters = clusters.context(
        "say which member clusters with --clusters m1,m2 (or --clusters all); `flotillactl get clusters` lists them",
    )?;
    Ok((
        clusters
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        rest,
    ))
}

/// `work ...`.
#[derive(Debug, Subcommand)]
pub enum WorkWhat {
    /// Put the manifests of a file into the cluster's Work set (one Work per manifest).
    Put {
        /// Target cluster.
        #[arg(long)]
        cluster: String,
        /// Manifest file (YAML or JSON; `-` for stdin).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
    /// Remove the manifests of a file from the cluster's Work set.
    Remove {
        /// Target cluster.
        #[arg(long)]
        cluster: String,
        /// Manifest file (YAML or JSON; `-` for stdin).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
}

/// Writes a file only its owner can read.
fn write_private(p: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .with_context(|| format!("creating {} (it must not exist yet)", p.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", p.display()))
}

fn read_file(p: &PathBuf) -> Result<String> {
    if p.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading stdin")?;
        return Ok(s);
    }
    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
}

/// Renders a Kubernetes Table as aligned text.
pub fn render_table(table: &Value, wide: bool) -> String {
    let cols: Vec<(usize, String)> = table["columnDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| wide || c["priority"].as_i64().unwrap_or(0) == 0)
        .map(|(i, c)| (i, c["name"].as_str().unwrap_or_default().to_uppercase()))
        .collect();
    let mut rows = vec![cols.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>()];
    for r in table["rows"].as_array().into_iter().flatten() {
        rows.push(
            cols.iter()
                .map(|(i, _)| match &r["cells"][*i] {
                    Value::String(s) => s.clone(),
                    Value::Null => "<none>".into(),
                    other => other.to_string(),
                })
                .collect(),
        );
    }
    if rows.len() == 1 {
        return "No resources found\n".into();
    }
    align(&rows)
}

/// Rows of cells as text columns, each as wide as its widest cell, three spaces apart.
pub fn align(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// Fails unless `cluster` is registered on the hub (or the caller may not read Clusters, and
/// the hub will say so if it may not use the proxy either).
async fn registered(hub: &Hub, cluster: &str) -> Result<()> {
    let path = format!("/apis/cluster.karmada.io/v1alpha1/clusters/{cluster}");
    if hub.exists(&path).await? == Some(false) {
        anyhow::bail!(
            "cluster {cluster} is not registered on the hub (`flotillactl get clusters` lists them)"
        );
    }
    Ok(())
}

/// Runs kubectl `args` against member `cluster` through the hub; returns its exit code.
async fn member_kubectl(
    hub: &Hub,
    kubeconfig: Option<&std::path::Path>,
    cluster: &str,
    args: &[String],
) -> Result<i32> {
    registered(hub, cluster).await?;
    let kc = crate::members::hub_kubeconfig(kubeconfig)?;
    crate::members::run_kubectl(&kc, cluster, args).await
}

/// Runs the command.
pub async fn run(cli: Cli) -> Result<()> {
    let hub = Hub::connect(cli.kubeconfig.as_deref()).await?;
    let json = cli.output == Output::Json;
    match cli.command {
        Command::Register {
            what:
                RegisterWhat::Cluster {
                    name,
                    region,
                    zones,
                    provider,
                    labels,
                    ttl,
                },
        } => {
            let o = RegisterOptions {
                name,
                region,
                zones,
                provider,
                labels: register::parse_labels(&labels)?,
                ttl: register::parse_ttl(&ttl)?,
            };
            let r = register::register(&hub, &o).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&register::to_json(&r))?);
            } else {
                print!("{}", register::to_text(&r));
            }
        }
        Command::Revoke {
            what: RevokeWhat::Cluster { name },
        } => match register::revoke(&hub, &name).await? {
            Some(generation) => println!(
                "cluster.cluster.karmada.io/{name}: agent credentials revoked (now generation {generation}); enroll the agent again with a token from `flotillactl register cluster {name}`"
            ),
            None => anyhow::bail!("cluster {name} is not registered"),
        },
        Command::Create {
            what:
                CreateWhat::User {
                    name,
                    group,
                    ttl,
                    out,
                },
        } => {
            let ttl = register::parse_ttl(&ttl)?;
            anyhow::ensure!(
                ttl.as_secs() >= 600 && ttl.as_secs() <= 365 * 86_400,
                "--ttl must be from 10m to 365d"
            );
            let u = crate::user::create(&hub, &name, group.as_deref(), ttl).await?;
            let out = out.unwrap_or_else(|| PathBuf::from(format!("{name}.kubeconfig")));
            write_private(&out, &u.kubeconfig)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"user": name, "group": group, "kubeconfig": out, "expires": u.expires})
                );
            } else {
                println!(
                    "user {name}: kubeconfig written to {} (certificate valid until {}); it has no rights until bound, e.g.\n  kubectl create rolebinding {name}-edit --clusterrole=edit --user={name} -n NAMESPACE",
                    out.display(),
                    u.expires
                );
            }
        }
        Command::Unregister {
            what: UnregisterWhat::Cluster { name },
        } => {
            if register::unregister(&hub, &name).await? {
                println!("cluster.cluster.karmada.io/{name} unregistered");
            } else {
                anyhow::bail!("cluster {name} is not registered");
            }
        }
        Command::Get {
            what: GetWhat::Members(args),
        } if args.first().is_some_and(|a| a == "endpoints")
            && !args.iter().any(|a| a.starts_with("--clusters")) =>
        {
            let (namespace, service) = crate::endpoints::parse_args(&args[1..])?;
            print!(
                "{}",
                crate::endpoints::show(&hub, &namespace, &service).await?
            );
        }
        Command::Get {
            what: GetWhat::Members(args),
        } => {
            let (mut clusters, args) = split_clusters(&args)?;
            if clusters == ["all"] {
                clusters = hub
                    .get("/apis/cluster.karmada.io/v1alpha1/clusters")
                    .await?
                    .and_then(|l| l.get("items").cloned())
                    .and_then(|i| i.as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|c| c.pointer("/metadata/name")?.as_str().map(str::to_owned))
                    .collect();
            } else {
                for c in &clusters {
                    registered(&hub, c).await?;
                }
            }
            let kc = crate::members::hub_kubeconfig(cli.kubeconfig.as_deref())?;
            print!("{}", crate::members::get(&kc, &clusters, &args).await?);
        }
        Command::Kubeconfig {
            what: KubeconfigWhat::Cluster { name, out },
        } => {
            registered(&hub, &name).await?;
            let kc = crate::members::hub_kubeconfig(cli.kubeconfig.as_deref())?;
            let text =
                serde_json::to_string_pretty(&crate::members::proxy_kubeconfig(&kc, &name)?)?;
            match out {
                Some(p) => {
                    write_private(&p, &text)?;
                    eprintln!(
                        "wrote {} (server: the hub's proxy to cluster {name})",
                        p.display()
                    );
                }
                None => println!("{text}"),
            }
        }
        Command::Logs { cluster, args } => {
            let mut a = vec!["logs".to_owned()];
            a.extend(args);
            std::process::exit(
                member_kubectl(&hub, cli.kubeconfig.as_deref(), &cluster, &a).await?,
            );
        }
        Command::Exec { cluster, args } => {
            let mut a = vec!["exec".to_owned()];
            a.extend(args);
            std::process::exit(
                member_kubectl(&hub, cli.kubeconfig.as_deref(), &cluster, &a).await?,
            );
        }
        Command::PortForward { cluster, args } => {
            let mut a = vec!["port-forward".to_owned()];
            a.extend(args);
            std::process::exit(
                member_kubectl(&hub, cli.kubeconfig.as_deref(), &cluster, &a).await?,
            );
        }
        Command::Get {
            what: GetWhat::Clusters,
        } => {
            let path = "/apis/cluster.karmada.io/v1alpha1/clusters";
            if json {
                let list = hub.get(path).await?.unwrap_or_default();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let t = hub
                    .get_as(
                        path,
                        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                    )
                    .await?;
                print!("{}", render_table(&t, cli.output == Output::Wide));
            }
        }
        Command::Describe {
            what: DescribeWhat::Binding { target },
        } => {
            if json {
                let b = hub
                    .get(&crate::describe::binding_path(&target)?)
                    .await?
                    .with_context(|| format!("binding {target} not found"))?;
                println!("{}", serde_json::to_string_pretty(&b)?);
            } else {
                print!(
                    "{}",
                    crate::describe::describe_binding(&hub, &target).await?
                );
            }
        }
        Command::Rebalance {
            targets,
            namespace,
            ttl,
        } => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let body = crate::rebalance::rebalancer(
                &format!("rebalance-{stamp}"),
                &targets,
                &namespace,
                ttl,
            )?;
            let (lines, ok) =
                crate::rebalance::run(&hub, &body, std::time::Duration::from_secs(30)).await?;
            for l in lines {
                println!("{l}");
            }
            anyhow::ensure!(
                ok,
                "some workloads were not rebalanced: a workload needs a binding (is it selected by a PropagationPolicy?)"
            );
        }
        Command::Work {
            what: WorkWhat::Put { cluster, file },
        } => {
            let ms = work::parse_manifests(&read_file(&file)?)?;
            for n in work::put(&hub, &cluster, ms).await? {
                println!(
                    "work.work.karmada.io/{n} configured in {}",
                    flotilla_proto::execution_namespace(&cluster)
                );
            }
        }
        Command::Work {
            what: WorkWhat::Remove { cluster, file },
        } => {
            let ms = work::parse_manifests(&read_file(&file)?)?;
            for n in work::remove(&hub, &cluster, &ms).await? {
                println!(
                    "work.work.karmada.io/{n} removed from {}",
                    flotilla_proto::execution_namespace(&cluster)
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables() {
        let t = json!({
            "columnDefinitions": [{"name": "Name", "priority": 0}, {"name": "Version", "priority": 0}, {"name": "Zones", "priority": 1}],
            "rows": [{"cells": ["m1", "v1.36.3", "a"]}, {"cells": ["member-2", null, "b"]}],
        });
        assert_eq!(
            render_table(&t, false),
            "NAME       VERSION\nm1         v1.36.3\nmember-2   <none>\n"
        );
        assert!(render_table(&t, true).contains("ZONES"));
        assert_eq!(
            render_table(&json!({"columnDefinitions": [], "rows": []}), false),
            "No resources found\n"
        );
    }

    #[test]
    fn parses_command_lines() {
        let c = Cli::try_parse_from([
            "flotillactl",
            "--kubeconfig",
            "k",
            "register",
            "cluster",
            "m1",
            "--zone",
            "a",
            "--zone",
            "b",
            "-o",
            "json",
        ]);
        let c = c.expect("parses");
        assert_eq!(c.output, Output::Json);
        match c.command {
            Command::Register {
                what: RegisterWhat::Cluster { zones, ttl, .. },
            } => {
                assert_eq!(zones, vec!["a", "b"]);
                assert_eq!(ttl, "24h");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            Cli::try_parse_from(["flotillactl", "work", "put", "-f", "x"]).is_err(),
            "--cluster is required"
        );
    }
}
