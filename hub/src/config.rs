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
    /// Let `NoExecute` cluster taints evict workloads (cluster failover; Karmada's flag of the
    /// same name). Off by default: taints then only stop new placements.
    #[arg(long, env = "FLOTILLA_ENABLE_NO_EXECUTE_TAINT_EVICTION")]
    pub enable_no_execute_taint_eviction: bool,
    /// What becomes of the copy in a cluster a workload is evicted from when its policy's
    /// `failover.cluster.purgeMode` says nothing: `Gracefully` (kept until the new placement
    /// is healthy or the grace period ends) or `Directly` (removed at once).
    #[arg(
        long,
        env = "FLOTILLA_NO_EXECUTE_TAINT_EVICTION_PURGE_MODE",
        default_value = "Gracefully",
        value_parser = ["Gracefully", "Directly"]
    )]
    pub no_execute_taint_eviction_purge_mode: String,
    /// Seconds after the hub starts before cluster taints evict anything: agents reconnect with
    /// a backoff of up to 30 s after an outage of the hub, and until they have, a cluster's
    /// silence is the hub's, not the cluster's.
    #[arg(
        long,
        env = "FLOTILLA_FAILOVER_STARTUP_GRACE_SECONDS",
        default_value_t = 120
    )]
    pub failover_startup_grace_seconds: u64,
    /// Longest time, in seconds, an evicted copy waits for its replacement to be healthy when
    /// its eviction task sets no `gracePeriodSeconds` (counted once the replacement is
    /// scheduled).
    #[arg(
        long,
        env = "FLOTILLA_GRACEFUL_EVICTION_TIMEOUT_SECONDS",
        default_value_t = 600
    )]
    pub graceful_eviction_timeout_seconds: u32,
    /// Bindings evicted per second for `NoExecute` taints, across the hub (Karmada's flag of
    /// the same name); 0 stops taint evictions.
    #[arg(
        long,
        env = "FLOTILLA_RESOURCE_EVICTION_RATE",
        default_value_t = flotilla_karmada::failover::DEFAULT_EVICTION_RATE,
        value_parser = eviction_rate
    )]
    pub resource_eviction_rate: f64,
    /// Taint evictions stop while at least this percentage of the clusters (and at least two)
    /// is not ready: so many failing together is more likely the hub's own connectivity.
    /// Above 100 never stops them.
    #[arg(
        long,
        env = "FLOTILLA_EVICTION_HALT_PERCENT",
        default_value_t = flotilla_karmada::failover::DEFAULT_EVICTION_HALT_PERCENT,
        value_parser = clap::value_parser!(u32).range(1..=101)
    )]
    pub eviction_halt_percent: u32,
    /// Lifetime of the client certificates signed for agents, in seconds; agents renew them
    /// at 70 to 80% of it. From 60 to 31,622,400 (a year).
    #[arg(
        long,
        env = "FLOTILLA_AGENT_CERT_TTL_SECONDS",
        default_value_t = 86_400,
        value_parser = clap::value_parser!(u64).range(60..=31_622_400)
    )]
    pub agent_cert_ttl_seconds: u64,
    /// Most requests the cluster proxy forwards to one cluster at once (watches, logs, exec
    /// and port-forwards count while open); more get 429.
    #[arg(
        long,
        env = "FLOTILLA_PROXY_MAX_STREAMS_PER_CLUSTER",
        default_value_t = 16,
        value_parser = clap::value_parser!(u16).range(1..=1024)
    )]
    pub proxy_max_streams_per_cluster: u16,
    /// Seconds a cluster proxy stream (watch, log follow, exec, port-forward) may carry no
    /// bytes in either direction before it is closed.
    #[arg(
        long,
        env = "FLOTILLA_PROXY_IDLE_TIMEOUT_SECONDS",
        default_value_t = 14_400,
        value_parser = clap::value_parser!(u64).range(1..=604_800)
    )]
    pub proxy_idle_timeout_seconds: u64,
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
    /// Rotate the audit log when it reaches this many megabytes (1 to 100,000).
    #[arg(
        long,
        env = "FLOTILLA_AUDIT_LOG_MAXSIZE",
        default_value_t = 100,
        value_parser = clap::value_parser!(u64).range(1..=100_000)
    )]
    pub audit_log_maxsize: u64,
    /// Old audit log files to keep (0 to 1,000).
    #[arg(
        long,
        env = "FLOTILLA_AUDIT_LOG_MAXBACKUP",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(0..=1000)
    )]
    pub audit_log_maxbackup: u64,
    /// Encrypt Secrets at rest with AES-256-GCM: a file with one `name:base64 of 32 bytes`
    /// key per line; the first encrypts, all decrypt (add a key first to rotate, rewrite the
    /// Secrets, then remove the old key).
    #[arg(long, env = "FLOTILLA_ENCRYPTION_KEY_FILE")]
    pub encryption_key_file: Option<PathBuf>,
    /// Connections the API listener holds open at once; more are closed right after
    /// accept. Default: 4096, or a fifth of the open-file limit if lower (the hub raises
    /// its soft limit to the hard one; the agent listener gets three fifths, at most
    /// 65,536, or half this value when it is given).
    #[arg(long, env = "FLOTILLA_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// Connections one IP address may hold open at once on each listener.
    #[arg(
        long,
        env = "FLOTILLA_MAX_CONNECTIONS_PER_IP",
        default_value_t = crate::connections::MAX_CONNECTIONS_PER_PEER as u64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_connections_per_ip: u64,
    /// Seconds a client may take for the TLS handshake and for the headers of an HTTP/1
    /// request.
    #[arg(
        long,
        env = "FLOTILLA_REQUEST_HEADER_TIMEOUT_SECONDS",
        default_value_t = crate::connections::HEADER_READ_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub request_header_timeout_seconds: u64,
    /// Seconds an API connection may stay open with no request in flight and no watch.
    #[arg(
        long,
        env = "FLOTILLA_IDLE_CONNECTION_TIMEOUT_SECONDS",
        default_value_t = crate::connections::IDLE_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub idle_connection_timeout_seconds: u64,
    /// Non-mutating API requests served at once (watches excepted); more get 429, as
    /// kube-apiserver's flag of the same name.
    #[arg(
        long,
        env = "FLOTILLA_MAX_REQUESTS_INFLIGHT",
        default_value_t = crate::api::inflight::MAX_READONLY_IN_FLIGHT as u64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_requests_inflight: u64,
    /// Mutating API requests served at once; more get 429.
    #[arg(
        long,
        env = "FLOTILLA_MAX_MUTATING_REQUESTS_INFLIGHT",
        default_value_t = crate::api::inflight::MAX_MUTATING_IN_FLIGHT as u64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_mutating_requests_inflight: u64,
}

/// A `--resource-eviction-rate`: a finite number from 0 to 1000.
fn eviction_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && (0.0..=1000.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "{s:?} is not an eviction rate: give bindings per second, from 0 (no taint evictions) to 1000"
        )),
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl HubArgs {
    /// The failover settings the flags give.
    pub fn failover(&self) -> flotilla_karmada::failover::FailoverConfig {
        use flotilla_karmada::failover::{FailoverConfig, PurgeMode};
        FailoverConfig {
            no_execute_eviction: self.enable_no_execute_taint_eviction,
            purge_mode: PurgeMode::parse(&self.no_execute_taint_eviction_purge_mode)
                .unwrap_or(PurgeMode::Gracefully),
            grace_period_seconds: i64::from(self.graceful_eviction_timeout_seconds),
            evictions_from: jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(
                    i64::try_from(self.failover_startup_grace_seconds).unwrap_or(i64::MAX),
                ))
                .ok(),
            eviction_limiter: std::sync::Arc::new(
                flotilla_karmada::failover::EvictionLimiter::new(self.resource_eviction_rate),
            ),
            eviction_halt_percent: self.eviction_halt_percent,
        }
    }

    /// The limits of the API listener.
    pub fn api_connection_limits(&self) -> crate::connections::ConnectionLimits {
        let defaults = crate::connections::ConnectionLimits::default();
        let header = std::time::Duration::from_secs(self.request_header_timeout_seconds);
        crate::connections::ConnectionLimits {
            max_connections: self
                .max_connections
                .map_or(defaults.max_connections, to_usize),
            max_per_peer: to_usize(self.max_connections_per_ip),
            handshake_timeout: header,
            header_read_timeout: header,
            idle_timeout: std::time::Duration::from_secs(self.idle_connection_timeout_seconds),
        }
    }

    /// The limits of the agent listener.
    pub fn agent_connection_limits(&self) -> crate::connections::ConnectionLimits {
        let defaults = crate::connections::ConnectionLimits::agents();
        crate::connections::ConnectionLimits {
            max_connections: self
                .max_connections
                .map_or(defaults.max_connections, |n| to_usize(n / 2).max(1)),
            max_per_peer: to_usize(self.max_connections_per_ip),
            handshake_timeout: std::time::Duration::from_secs(self.request_header_timeout_seconds),
            ..defaults
        }
    }

    /// The max-in-flight limits of the API.
    pub fn in_flight_limits(&self) -> crate::api::inflight::InFlightLimits {
        crate::api::inflight::InFlightLimits {
            readonly: to_usize(self.max_requests_inflight),
            mutating: to_usize(self.max_mutating_requests_inflight),
        }
    }

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
