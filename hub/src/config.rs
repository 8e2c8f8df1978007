//! Command-line and environment configuration of the hub.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Log output format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `flotilla-hub` arguments; every flag can also be set with a `FLOTILLA_...` variable.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "flotilla-hub",
    version,
    about = "The Flotilla hub: a Kubernetes-compatible API server that places workloads on member clusters",
    after_help = "Examples:\n  flotilla-hub                                  # data in ~/.local/share/flotilla, API on 127.0.0.1:6443\n  flotilla-hub --data-dir /var/lib/flotilla --listen 0.0.0.0:6443 --tls-san hub.example.com\n  kubectl --kubeconfig ~/.local/share/flotilla/admin.kubeconfig get clusters"
)]
pub struct HubArgs {
    /// Data directory (store, certificates, admin kubeconfig).
    #[arg(long, env = "FLOTILLA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the Kubernetes API (port 0 picks a free port).
    #[arg(long, env = "FLOTILLA_LISTEN", default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Address agents connect to (port 0 picks a free port).
    #[arg(long, env = "FLOTILLA_AGENT_LISTEN", default_value = "127.0.0.1:7443")]
    pub agent_listen: SocketAddr,
    /// Extra name or IP for the serving certificate (repeatable).
    #[arg(long = "tls-san", env = "FLOTILLA_TLS_SAN", value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Log format.
    #[arg(long, env = "FLOTILLA_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Seconds without a heartbeat before a cluster is marked not ready.
    #[arg(long, env = "FLOTILLA_CLUSTER_GRACE_SECONDS", default_value_t = 40)]
    pub cluster_grace_seconds: u64,
    /// Lifetime of the client certificates signed for agents, in seconds; agents renew them
    /// at 70 to 80% of it. From 60 to 31,622,400 (a year).
    #[arg(
        long,
        env = "FLOTILLA_AGENT_CERT_TTL_SECONDS",
        default_value_t = 86_400,
        value_parser = clap::value_parser!(u64).range(60..=31_622_400)
    )]
    pub agent_cert_ttl_seconds: u64,
    /// Static bearer tokens, in kube-apiserver's format: one CSV line per token,
    /// `token,user,uid[,"group1,group2"]`.
    #[arg(long, env = "FLOTILLA_TOKEN_AUTH_FILE")]
    pub token_auth_file: Option<PathBuf>,
    /// Write an audit log (JSON lines, `audit.k8s.io/v1` Events) to this file.
    #[arg(long, env = "FLOTILLA_AUDIT_LOG_PATH")]
    pub audit_log_path: Option<PathBuf>,
    /// Audit policy (kube-apiserver's `audit.k8s.io/v1` Policy); without one every request
    /// is logged at Metadata. Secrets and tokens never go beyond Metadata.
    #[arg(long, env = "FLOTILLA_AUDIT_POLICY_FILE")]
    pub audit_policy_file: Option<PathBuf>,
    /// Rotate the audit log when it reaches this many megabytes.
    #[arg(long, env = "FLOTILLA_AUDIT_LOG_MAXSIZE", default_value_t = 100)]
    pub audit_log_maxsize: u64,
    /// Old audit log files to keep.
    #[arg(long, env = "FLOTILLA_AUDIT_LOG_MAXBACKUP", default_value_t = 10)]
    pub audit_log_maxbackup: usize,
    /// Encrypt Secrets at rest with AES-256-GCM: a file with one `name:base64 of 32 bytes`
    /// key per line; the first encrypts, all decrypt (add a key first to rotate, rewrite the
    /// Secrets, then remove the old key).
    #[arg(long, env = "FLOTILLA_ENCRYPTION_KEY_FILE")]
    pub encryption_key_file: Option<PathBuf>,
}

impl HubArgs {
    /// The data directory, defaulting to `$XDG_DATA_HOME/flotilla` or `~/.local/share/flotilla`.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("flotilla");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".local/share/flotilla")
    }
}
