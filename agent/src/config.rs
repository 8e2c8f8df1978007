//! Command-line and environment configuration, and start-up: credentials, member client,
//! engine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connect;
use crate::credentials::{Credential, CredentialStore, default_state_dir};
use crate::engine::{Engine, EngineConfig};
use crate::kube_member::KubeMember;
use crate::metrics::Metrics;

/// Log output format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `flotilla-agent` arguments; every flag can also be set with a `FLOTILLA_...` variable.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "flotilla-agent",
    version,
    about = "The Flotilla agent: pulls a member cluster's Work from the hub and applies it",
    after_help = "Examples:\n  flotilla-agent --hub hub.example.com:7443 --cluster-name m1 --token abcdef.0123456789abcdef --ca-hash sha256:... --kubeconfig ~/.kube/m1\n  flotilla-agent --hub hub.example.com:7443 --cluster-name m1 --kubeconfig ~/.kube/m1   # after enrollment"
)]
pub struct AgentArgs {
    /// Hub agent address (`host:port`, as printed by `flotillactl register cluster`).
    #[arg(long, env = "FLOTILLA_HUB")]
    pub hub: String,
    /// This cluster's name on the hub.
    #[arg(long, env = "FLOTILLA_CLUSTER_NAME")]
    pub cluster_name: String,
    /// Bootstrap token (`<id>.<secret>`); needed only until the agent has enrolled.
    #[arg(long, env = "FLOTILLA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Expected hash of the hub CA (`sha256:<hex>`); required to enroll, checked when given.
    #[arg(long, env = "FLOTILLA_CA_HASH")]
    pub ca_hash: Option<String>,
    /// Kubeconfig of the member cluster (in-cluster configuration when omitted).
    #[arg(long, env = "FLOTILLA_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, env = "FLOTILLA_CONTEXT")]
    pub context: Option<String>,
    /// Where the credential is kept (default `$XDG_STATE_HOME/flotilla/agents/<cluster>`).
    #[arg(long, env = "FLOTILLA_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Keep the credential in this Secret of the agent's namespace instead of a directory
    /// (the default when running in a cluster without --state-dir).
    #[arg(long, env = "FLOTILLA_CREDENTIALS_SECRET")]
    pub credentials_secret: Option<String>,
    /// The agent's namespace in the member, for the credentials Secret.
    #[arg(long, env = "POD_NAMESPACE", default_value = "flotilla-system")]
    pub namespace: String,
    /// Address of `/healthz` and `/metrics` (off when omitted).
    #[arg(long, env = "FLOTILLA_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds between heartbeats.
    #[arg(long, env = "FLOTILLA_HEARTBEAT_SECONDS", default_value_t = 10)]
    pub heartbeat_seconds: u64,
    /// Log format.
    #[arg(long, env = "FLOTILLA_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// What the hub may apply in this member, as JSON (the chart's `guardRails` values):
    /// `allowedNamespaces`, `deniedNamespaces`, `allowedKinds`, `clusterScoped`, `rbac`,
    /// `admissionWebhooks`, `crds`, `takeOver`. Unset fields keep their safe defaults.
    #[arg(long, env = "FLOTILLA_GUARD_RAILS", default_value = "")]
    pub guard_rails: String,
}

async fn member_client(args: &AgentArgs) -> anyhow::Result<kube::Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            let opts = kube::config::KubeConfigOptions {
                context: args.context.clone(),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no --kubeconfig and no in-cluster configuration")?,
    };
    kube::Client::try_from(config).context("building the member client")
}

fn credential_store(args: &AgentArgs, client: &kube::Client) -> CredentialStore {
    let in_cluster =
        args.kubeconfig.is_none() && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    match (&args.credentials_secret, &args.state_dir) {
        (Some(name), _) => CredentialStore::Secret {
            api: Box::new(Api::<Secret>::namespaced(client.clone(), &args.namespace)),
            name: name.clone(),
        },
        (None, Some(dir)) => CredentialStore::Dir(dir.clone()),
        (None, None) if in_cluster => CredentialStore::Secret {
            api: Box::new(Api::<Secret>::namespaced(client.clone(), &args.namespace)),
            name: format!("flotilla-agent-{}", args.cluster_name),
        },
        (None, None) => CredentialStore::Dir(default_state_dir(&args.cluster_name)),
    }
}

/// Loads the stored credential, or enrolls with the bootstrap token and stores the result.
pub async fn obtain_credential(
    args: &AgentArgs,
    store: &CredentialStore,
) -> anyhow::Result<Credential> {
    if let Some(c) = store
        .load()
        .await
        .with_context(|| format!("reading the credential from {store:?}"))?
    {
        // The stored CA must be exactly one certificate, and the pinned one when a pin is given.
        let actual = connect::ca_hash_of_pem(&c.ca_pem)
            .with_context(|| format!("the CA stored in {store:?}"))?;
        if let Some(expected) = &args.ca_hash
            && !actual.eq_ignore_ascii_case(expected.trim())
        {
            bail!(
                "the stored hub CA ({actual}) does not match --ca-hash {expected}: refusing to connect; remove {store:?} to enroll again"
            );
        }
        tracing::info!(store = ?store, "using the stored credential");
        return Ok(c);
    }
    let (Some(token), Some(hash)) = (&args.token, &args.ca_hash) else {
        bail!(
            "this agent has not enrolled yet: pass --token and --ca-hash (printed by `flotillactl register cluster {}`)",
            args.cluster_name
        );
    };
    let ca_pem = connect::discover(&args.hub, hash)
        .await
        .context("verifying the hub")?;
    tracing::info!(hub = %args.hub, "hub CA verified against the pinned hash");
    let identity = connect::enroll(&args.hub, &ca_pem, &args.cluster_name, token)
        .await
        .context("enrolling with the bootstrap token")?;
    let c = Credential { ca_pem, identity };
    store
        .save(&c)
        .await
        .with_context(|| format!("storing the credential in {store:?}"))?;
    tracing::info!(store = ?store, "enrolled; credential stored");
    Ok(c)
}

/// Runs the agent until `shutdown`.
pub async fn run(args: AgentArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let client = member_client(&args).await?;
    let store = credential_store(&args, &client);
    let cred = obtain_credential(&args, &store).await?;
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = args.metrics_listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr} for metrics"))?;
        tracing::info!(addr = %l.local_addr()?, "serving /healthz and /metrics");
        tokio::spawn(crate::metrics::serve(l, metrics.clone(), shutdown.clone()));
    }
    let identity = Arc::new(std::sync::RwLock::new(cred.identity.clone()));
    let channel = connect::authenticated_shared(&args.hub, &cred.ca_pem, identity.clone()).await?;
    tokio::spawn(
        crate::rotation::Rotation {
            hub: args.hub.clone(),
            ca_pem: cred.ca_pem.clone(),
            cluster: args.cluster_name.clone(),
            identity,
            store: store.clone(),
            metrics: metrics.clone(),
        }
        .run(shutdown.clone()),
    );
    let (tx, rx) = mpsc::channel(1024);
    let guard = crate::guard::GuardRails::from_json(&args.guard_rails, &args.namespace)
        .map_err(anyhow::Error::msg)?;
    tracing::info!(guard_rails = %serde_json::to_string(&guard).unwrap_or_default(), "guard rails");
    tokio::spawn(crate::proxy::run(
        channel.clone(),
        client.clone(),
        guard.proxy.policy(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let member = Arc::new(KubeMember::new(client, tx, shutdown.clone()).with_guard_rails(guard));
    let mut cfg = EngineConfig::new(&args.cluster_name);
    cfg.heartbeat = Duration::from_secs(args.heartbeat_seconds.max(1));
    Engine::new(cfg, member, rx, metrics)
        .run(channel, shutdown)
        .await;
    Ok(())
}
