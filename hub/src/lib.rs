//! The Flotilla hub: a Kubernetes-compatible API server over an embedded store.

pub mod agents;
pub mod api;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod connections;
pub mod controllers;
pub mod crd_status;
pub mod events;
pub mod metrics;
pub mod pki;
pub mod registry;
pub mod root_ca;
pub mod tls;

/// Where Secrets are stored (encrypted with `--encryption-key-file`).
pub const SECRETS_PREFIX: &str = "/core/secrets/";

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::HubArgs;

/// The Kubernetes version the hub's API corresponds to.
pub const KUBERNETES_VERSION: &str = "v1.36.0";

/// The `/version` document.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "36",
        "gitVersion": format!("{KUBERNETES_VERSION}+flotilla-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

/// Hub start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Certificates could not be created or loaded.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// TLS could not be configured.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] flotilla_store::StoreError),
}

/// A started hub.
pub struct Hub {
    /// The API address actually listened on.
    pub api_addr: std::net::SocketAddr,
    /// The agent address actually listened on.
    pub agent_addr: std::net::SocketAddr,
    /// The admin kubeconfig path.
    pub kubeconfig: std::path::PathBuf,
    shutdown: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
    store: Arc<dyn flotilla_store::Store>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("api_addr", &self.api_addr)
            .finish_non_exhaustive()
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HubError {
    let context = context.into();
    move |source| HubError::Io { context, source }
}

/// Mode of the data directory and the store's directory: the owner's only.
const DATA_DIR_MODE: u32 = 0o700;

/// Creates `dir` with [`DATA_DIR_MODE`], or tightens an existing one that others can
/// read or enter (with a warning): it holds the store, the CA key and the admin token.
pub fn private_dir(dir: &std::path::Path) -> Result<(), HubError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DATA_DIR_MODE)
        .create(dir)
        .map_err(io(format!("creating {}", dir.display())))?;
    let mode = std::fs::metadata(dir)
        .map_err(io(format!("reading {}", dir.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{:o}", mode & 0o777),
            "the data directory was open to other users; setting it to 0700"
        );
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DATA_DIR_MODE))
            .map_err(io(format!("setting the mode of {}", dir.display())))?;
    }
    Ok(())
}

impl Hub {
    /// Opens the store, prepares certificates, binds the listeners and starts serving.
    pub async fn start(args: &HubArgs) -> Result<Self, HubError> {
        let dir = args.data_dir();
        private_dir(&dir)?;
        let listener = TcpListener::bind(args.listen).await.map_err(io(format!(
            "listening on {} (is another hub running? choose another address with --listen)",
            args.listen
        )))?;
        let api_addr = listener
            .local_addr()
            .map_err(io("reading the API address"))?;
        let agent_listener = TcpListener::bind(args.agent_listen)
            .await
            .map_err(io(format!(
                "listening on {} (choose another address with --agent-listen)",
                args.agent_listen
            )))?;
        let agent_addr = agent_listener
            .local_addr()
            .map_err(io("reading the agent address"))?;
        let mut sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        for h in [api_addr.ip().to_string(), agent_addr.ip().to_string()]
            .into_iter()
            .chain(args.tls_san.iter().cloned())
        {
            if h != "0.0.0.0" && h != "::" && !sans.contains(&h) {
                sans.push(h);
            }
        }
        let pki = Arc::new(pki::Pki::load_or_create(&dir, &sans)?);
        private_dir(&dir.join("store"))?;
        let token_file = match &args.token_auth_file {
            None => auth::token_file::TokenFile::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(io(format!("reading --token-auth-file {}", p.display())))?;
                auth::token_file::TokenFile::parse(&text).map_err(|e| HubError::Io {
                    context: format!("--token-auth-file {}", p.display()),
                    source: std::io::Error::other(e.to_string()),
                })?
            }
        };
        let mut stale_secrets = Vec::new();
        let mut store: Arc<dyn flotilla_store::Store> = Arc::new(
            flotilla_store::SledStore::open(
                dir.join("store"),
                flotilla_store::SledOptions::default(),
            )
            .await?,
        );
        if let Some(p) = &args.encryption_key_file {
            let text = std::fs::read_to_string(p)
                .map_err(io(format!("reading --encryption-key-file {}", p.display())))?;
            let keys = flotilla_store::EncryptionKeys::parse(&text).map_err(|e| HubError::Io {
                context: format!("--encryption-key-file {}", p.display()),
                source: std::io::Error::other(e),
            })?;
            tracing::info!(key = keys.primary(), "Secrets are encrypted at rest");
            let encrypted =
                flotilla_store::EncryptedStore::new(store, keys, vec![SECRETS_PREFIX.to_owned()]);
            stale_secrets = encrypted.stale_keys().await?;
            store = Arc::new(encrypted);
        }
        let registry = registry::Registry::new();
        let objects = api::objects::Objects::new(store.clone(), registry);
        if !stale_secrets.is_empty() {
            tracing::info!(
                count = stale_secrets.len(),
                "encrypting Secrets with the first key of --encryption-key-file"
            );
            for key in &stale_secrets {
                objects.rewrite(key).await.map_err(|e| HubError::Io {
                    context: format!("re-encrypting {key}"),
                    source: std::io::Error::other(e.to_string()),
                })?;
            }
        }
        bootstrap::run(&objects).await.map_err(|e| HubError::Io {
            context: "bootstrapping the store".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        auth::authorizer::bootstrap(&objects)
            .await
            .map_err(|e| HubError::Io {
                context: "creating the default RBAC roles".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
        let authz = Arc::new(auth::authorizer::Authorizer::default());
        let (rbac_revision, cluster_roles) = auth::authorizer::load(&objects, &authz)
            .await
            .map_err(|e| HubError::Io {
                context: "loading RBAC objects".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
        let host = if api_addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            api_addr.ip().to_string()
        };
        let server = format!(
            "https://{}",
            std::net::SocketAddr::new(host.parse().unwrap_or(api_addr.ip()), api_addr.port())
        );
        let kubeconfig = dir.join("admin.kubeconfig");
        pki::write_kubeconfig(&kubeconfig, &server, &pki)?;
        let audit = match &args.audit_log_path {
            None => None,
            Some(path) => {
                let policy = match &args.audit_policy_file {
                    None => audit::Policy::default(),
                    Some(p) => {
                        let text = std::fs::read_to_string(p)
                            .map_err(io(format!("reading --audit-policy-file {}", p.display())))?;
                        audit::Policy::parse(&text).map_err(|e| HubError::Io {
                            context: format!("--audit-policy-file {}", p.display()),
                            source: std::io::Error::other(e),
                        })?
                    }
                };
                Some(Arc::new(
                    audit::AuditLog::new(
                        path.clone(),
                        policy,
                        args.audit_log_maxsize,
                        usize::try_from(args.audit_log_maxbackup).unwrap_or(1000),
                    )
                    .map_err(io(format!("opening --audit-log-path {}", path.display())))?,
                ))
            }
        };
        let metrics = metrics::Metrics::new();
        let tunnels = Arc::new(
            agents::proxy::Tunnels::new(usize::from(args.proxy_max_streams_per_cluster))
                .with_gauge(metrics.proxy_streams()),
        );
        let state = api::ApiState {
            objects,
            auth: Arc::new(auth::Authenticator::new(
                pki.admin_token.clone(),
                token_file,
                Arc::new(
                    auth::jwt::TokenKeys::load_or_create(&dir).map_err(|e| HubError::Io {
                        context: "loading the ServiceAccount token key".into(),
                        source: std::io::Error::other(e.to_string()),
                    })?,
                ),
            )),
            authz: authz.clone(),
            audit,
            pki: pki.clone(),
            server_address: Arc::new(api_addr.to_string()),
            metrics,
            openapi: Arc::new(api::openapi::OpenApiCache::default()),
            in_flight: api::inflight::InFlight::new(args.in_flight_limits()),
            tunnels: tunnels.clone(),
            proxy_idle: std::time::Duration::from_secs(args.proxy_idle_timeout_seconds),
        };
        let shutdown = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        let cfg = tls::server_config(
            &pki.serving_cert_pem,
            &pki.serving_key_pem,
            Some(&pki.client_ca_cert_pem),
        )?;
        let agent_objects = state.objects.clone();
        let health_metrics = state.metrics.controllers();
        let endpoint_metrics = state.metrics.endpoints();
        let book = agents::metrics_book::MetricsBook::counting(state.metrics.workload_reports());
        tasks.spawn(controllers::run(
            state.objects.clone(),
            state.metrics.controllers(),
            args.failover(),
            book.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(events::run_reaper(state.objects.clone(), shutdown.clone()));
        tasks.spawn(root_ca::run(
            state.objects.clone(),
            pki.ca_cert_pem.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(auth::authorizer::run(
            state.objects.clone(),
            authz,
            rbac_revision,
            cluster_roles,
            shutdown.clone(),
        ));
        let api_gate = connections::Gate::new(
            "api",
            args.api_connection_limits(),
            state.metrics.connections(),
        );
        let agent_gate = connections::Gate::new(
            "agent",
            args.agent_connection_limits(),
            state.metrics.connections(),
        );
        tasks.spawn(tls::serve(
            listener,
            cfg,
            api::router(state),
            api_gate,
            shutdown.clone(),
        ));
        let agents_cfg = agents::AgentsConfig::new(
            agent_objects,
            pki.clone(),
            agent_addr,
            &args.tls_san,
            args.cluster_grace_seconds,
            health_metrics,
        )
        .with_cert_ttl(std::time::Duration::from_secs(args.agent_cert_ttl_seconds))
        .with_tunnels(tunnels)
        .with_metrics_book(book)
        .with_endpoint_metrics(endpoint_metrics);
        agents::start(
            agent_listener,
            agent_gate,
            agents_cfg,
            shutdown.clone(),
            &mut tasks,
        )
        .await
        .map_err(|e| HubError::Io {
            context: "starting the agent server".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(Self {
            api_addr,
            agent_addr,
            kubeconfig,
            shutdown,
            tasks,
            store,
        })
    }

    /// Stops serving, waits for tasks and flushes the store.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        if let Err(e) = self.store.close().await {
            tracing::error!(error = %e, "closing the store failed");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_data_directory_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("a/b");
        private_dir(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700, "an existing directory is tightened");
    }
}
