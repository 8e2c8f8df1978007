//! Real member clusters for end-to-end tests.
//!
//! Clusters are created and deleted through the repository's `kind/cluster` script, the same
//! code path developers use by hand. Each [`MemberCluster`] owns its cluster: dropping it (also
//! while a test panics) deletes the cluster, so no process or port outlives the test.
//!
//! The first use on a fresh machine builds the Kubernetes components (`kind/build`), which takes
//! many minutes; later runs reuse the cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Maximum length of a cluster name accepted by `kind/cluster`.
const MAX_NAME_LEN: usize = 40;
/// Prefix of every cluster name created by this harness; used to find stale clusters.
const NAME_PREFIX: &str = "e2e";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Options for [`MemberCluster::create`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of fake nodes (KWOK nodes, or kind workers where Docker exists).
    pub nodes: u32,
    /// Value of the `topology.kubernetes.io/region` label on every node.
    pub region: Option<String>,
    /// Value of the `topology.kubernetes.io/zone` label on every node.
    pub zone: Option<String>,
    /// Seconds `kind/cluster` waits for the cluster to become ready.
    pub timeout_secs: u64,
    /// Whether the cluster serves `metrics.k8s.io` (metrics-server over KWOK's simulated
    /// usage, see [`MemberCluster::set_usage`]).
    pub metrics: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            nodes: 1,
            region: None,
            zone: None,
            timeout_secs: 240,
            metrics: false,
        }
    }
}

impl ClusterOptions {
    /// Options for a cluster with `nodes` nodes.
    pub fn with_nodes(nodes: u32) -> Self {
        Self {
            nodes,
            ..Self::default()
        }
    }

    /// Serves `metrics.k8s.io` with simulated usage.
    pub fn with_metrics(mut self) -> Self {
        self.metrics = true;
        self
    }

    /// Sets the region and zone labels of every node.
    pub fn in_zone(mut self, region: &str, zone: &str) -> Self {
        self.region = Some(region.to_owned());
        self.zone = Some(zone.to_owned());
        self
    }
}

/// A running member cluster, deleted when dropped.
pub struct MemberCluster {
    guard: ClusterGuard,
    kubeconfig: PathBuf,
    ports: BTreeMap<String, u16>,
    client: Client,
}

/// Deletes the named cluster when dropped unless disarmed; armed before `create` starts, so an
/// interrupted or failed create leaves nothing behind either.
struct ClusterGuard {
    name: String,
    armed: bool,
}

impl std::fmt::Debug for MemberCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberCluster")
            .field("name", &self.guard.name)
            .field("kubeconfig", &self.kubeconfig)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl MemberCluster {
    /// Creates a cluster with a unique name derived from `label` and waits until it is ready
    /// (nodes Ready, default service account present).
    ///
    /// Creating a cluster is the test's setting, not what it checks: a create that fails (a
    /// component that did not start on a busy machine) is reported and tried once more under
    /// a new name.
    pub async fn create(label: &str, options: ClusterOptions) -> Result<Self> {
        ensure_binaries().await?;
        reap_stale_clusters().await;
        match Self::create_once(label, &options).await {
            Ok(cluster) => Ok(cluster),
            Err(first) => {
                eprintln!(
                    "creating a member cluster for {label} failed, trying once more: {first:#}"
                );
                Self::create_once(label, &options)
                    .await
                    .with_context(|| format!("first attempt: {first:#}"))
            }
        }
    }

    async fn create_once(label: &str, options: &ClusterOptions) -> Result<Self> {
        let name = unique_name(label);
        let mut args = vec![
            "create".to_owned(),
            name.clone(),
            "--nodes".to_owned(),
            options.nodes.to_string(),
            "--timeout".to_owned(),
            options.timeout_secs.to_string(),
        ];
        if let Some(region) = &options.region {
            args.extend(["--region".to_owned(), region.clone()]);
        }
        if let Some(zone) = &options.zone {
            args.extend(["--zone".to_owned(), zone.clone()]);
        }
        if options.metrics {
            args.push("--metrics".to_owned());
        }
        let guard = ClusterGuard {
            name: name.clone(),
            armed: true,
        };
        let started = Instant::now();
        let output = run_cluster_script(&args, Duration::from_secs(options.timeout_secs + 60))
            .await
            .with_context(|| format!("creating member cluster {name}"))?;
        let kubeconfig = PathBuf::from(output.trim());
        eprintln!(
            "member cluster {name} ready in {:.1}s ({})",
            started.elapsed().as_secs_f64(),
            kubeconfig.display()
        );
        let ports = cluster_ports(&name).await?;
        let client = client_for(&kubeconfig).await?;
        Ok(Self {
            guard,
            kubeconfig,
            ports,
            client,
        })
    }

    /// Sets the simulated cpu usage of every container of the pods `selector` selects in
    /// `namespace` (a cluster created [`ClusterOptions::with_metrics`]); the metrics API shows
    /// it within one metrics resolution.
    pub async fn set_usage(&self, namespace: &str, selector: &str, cpu: &str) -> Result<()> {
        let args: Vec<String> = [
            "usage",
            self.name(),
            "--namespace",
            namespace,
            "--selector",
            selector,
            "--cpu",
            cpu,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        run_cluster_script(&args, Duration::from_secs(60))
            .await
            .with_context(|| format!("setting the usage of {selector} in {}", self.name()))?;
        Ok(())
    }

    /// The cluster's unique name.
    pub fn name(&self) -> &str {
        &self.guard.name
    }

    /// Path of the cluster's admin kubeconfig (self-contained; context `flotilla-NAME`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kube-rs client for the cluster's admin user.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Loopback ports of the cluster's components, keyed by component
    /// (`kube-apiserver`, `etcd`, `etcd-peer`, `kube-controller-manager`, `kube-scheduler`,
    /// `kwok-controller`). Empty for kind clusters.
    pub fn ports(&self) -> &BTreeMap<String, u16> {
        &self.ports
    }

    /// The kube-apiserver port on 127.0.0.1, when the cluster runs as local processes.
    pub fn api_server_port(&self) -> Option<u16> {
        self.ports.get("kube-apiserver").copied()
    }

    /// PIDs of the cluster's processes (empty for kind clusters).
    pub fn processes(&self) -> Vec<u32> {
        cluster_processes(self.name())
    }

    /// PID of the cluster's kube-apiserver process, if running as a local process.
    pub fn api_server_pid(&self) -> Option<u32> {
        self.processes().into_iter().find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .and_then(|cmd| {
                    cmd.split(|b| *b == 0)
                        .next()
                        .map(|argv0| argv0.ends_with(b"kube-apiserver"))
                })
                .unwrap_or(false)
        })
    }

    /// Kills the cluster's kube-apiserver with SIGKILL, as a crash would, and returns what
    /// starts it again ([`Self::start_api_server`]). Process-runtime clusters only.
    pub async fn kill_api_server(&self) -> Result<StoppedApiServer> {
        let pid = self
            .api_server_pid()
            .context("the cluster has no kube-apiserver process")?;
        // The other components may exit while it is gone (leader election lost), as they do
        // on a real control plane, where their supervisor starts them again.
        let processes = self
            .processes()
            .into_iter()
            .filter_map(|p| ProcessSnapshot::of(p).ok())
            .collect();
        let status = tokio::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .await?;
        anyhow::ensure!(status.success(), "kill -KILL {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.api_server_pid().is_some() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "kube-apiserver {pid} did not exit"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(StoppedApiServer { processes })
    }

    /// Starts a kube-apiserver killed by [`Self::kill_api_server`] again, with the same
    /// command, environment and log, and waits until it answers `/readyz`; then starts again,
    /// as a supervisor would, every other component that exited meanwhile. PIDs are recorded
    /// where the cluster tooling looks for them.
    pub async fn start_api_server(&self, stopped: StoppedApiServer) -> Result<()> {
        let dir = clusters_root()
            .join(self.name())
            .join("kwok/clusters")
            .join(self.name());
        let (api, others): (Vec<_>, Vec<_>) = stopped
            .processes
            .into_iter()
            .partition(|p| p.component == "kube-apiserver");
        for p in &api {
            p.spawn(&dir)?;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = self
                .kubectl()
                .args(["get", "--raw", "/readyz"])
                .output()
                .await?;
            if out.status.success() {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver of {} not ready 120 s after its restart: {}",
                    self.name(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let running = self.processes();
        for p in others.iter().filter(|p| !running.contains(&p.pid)) {
            p.spawn(&dir)?;
        }
        Ok(())
    }

    /// A `kubectl` command (the cached 1.36 build) pointed at this cluster.
    pub fn kubectl(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(kubectl_path());
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// Deletes the cluster now and reports errors (dropping deletes it too, ignoring errors).
    pub async fn delete(mut self) -> Result<()> {
        self.guard.armed = false;
        let name = self.name().to_owned();
        run_cluster_script(
            &["delete".to_owned(), name.clone()],
            Duration::from_secs(180),
        )
        .await
        .with_context(|| format!("deleting member cluster {name}"))?;
        Ok(())
    }
}

/// A kube-apiserver killed by [`MemberCluster::kill_api_server`], with how every component
/// of the cluster was started.
#[derive(Debug)]
pub struct StoppedApiServer {
    processes: Vec<ProcessSnapshot>,
}

/// How one component process was started: command line, environment, working directory.
#[derive(Debug)]
struct ProcessSnapshot {
    pid: u32,
    component: String,
    argv: Vec<std::ffi::OsString>,
    env: Vec<std::ffi::OsString>,
    cwd: PathBuf,
}

impl ProcessSnapshot {
    fn of(pid: u32) -> Result<Self> {
        let split = |b: Vec<u8>| -> Vec<std::ffi::OsString> {
            use std::os::unix::ffi::OsStringExt;
            b.split(|c| *c == 0)
                .filter(|p| !p.is_empty())
                .map(|p| std::ffi::OsString::from_vec(p.to_vec()))
                .collect()
        };
        let argv = split(std::fs::read(format!("/proc/{pid}/cmdline"))?);
        let component = argv
            .first()
            .and_then(|a| Path::new(a).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .context("empty command line")?;
        Ok(Self {
            pid,
            component,
            argv,
            env: split(std::fs::read(format!("/proc/{pid}/environ"))?),
            cwd: std::fs::read_link(format!("/proc/{pid}/cwd"))?,
        })
    }

    /// Starts the process again in its own process group, logging where the cluster
    /// tooling logs it, and records its PID in the tooling's PID file.
    fn spawn(&self, cluster_dir: &Path) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(cluster_dir.join(format!("logs/{}.log", self.component)))?;
        let (program, args) = self.argv.split_first().context("empty command line")?;
        let envs = self
            .env
            .iter()
            .filter_map(|kv| kv.to_str()?.split_once('='));
        let child = std::process::Command::new(program)
            .args(args)
            .env_clear()
            .envs(envs)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {} again", self.component))?;
        std::fs::write(
            cluster_dir.join(format!("pids/{}.pid", self.component)),
            child.id().to_string(),
        )?;
        Ok(())
    }
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Runs during unwinding too; a blocking call is fine in test code.
        let result = std::process::Command::new(cluster_script())
            .args(["delete", &self.name, "--ignore-missing"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output();
        match result {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: deleting member cluster {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(err) => eprintln!(
                "warning: cannot run kind/cluster to delete {}: {err}",
                self.name
            ),
        }
    }
}

/// Path of the repository's `kind/` directory (override with `FLOTILLA_KIND_DIR`).
pub fn kind_dir() -> PathBuf {
    std::env::var_os("FLOTILLA_KIND_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../kind"))
}

/// Path of the `kind/cluster` script.
pub fn cluster_script() -> PathBuf {
    kind_dir().join("cluster")
}

/// Directory holding per-cluster state (`FLOTILLA_CLUSTERS_DIR`, default
/// `~/.flotilla/clusters`).
pub fn clusters_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLOTILLA_CLUSTERS_DIR") {
        return PathBuf::from(dir);
    }
    home_dir().join(".flotilla/clusters")
}

/// Path of the cached `kubectl` built by `kind/build` (`$FLOTILLA_CACHE/bin/k8s-VERSION`).
pub fn kubectl_path() -> PathBuf {
    let cache = std::env::var_os("FLOTILLA_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join(".cache/flotilla"));
    cache
        .join("bin")
        .join(format!("k8s-{}", k8s_version()))
        .join("kubectl")
}

/// The Kubernetes version pinned in `kind/versions.env`.
pub fn k8s_version() -> String {
    std::fs::read_to_string(kind_dir().join("versions.env"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.trim().strip_prefix("K8S_VERSION="))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "1.36.3".to_owned())
}

/// The `kind/build` components member clusters run.
const COMPONENTS: [&str; 4] = ["k8s", "etcd", "kwok", "metrics-server"];

/// Builds the cached binaries when missing (`kind/build k8s etcd kwok metrics-server`, 15-35
/// minutes on a fresh machine, with progress on stderr); a quick check when they are cached.
pub async fn ensure_binaries() -> Result<()> {
    static BUILT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_try_init(|| async {
            let build = kind_dir().join("build");
            let check = tokio::process::Command::new(&build)
                .args(["--check"])
                .args(COMPONENTS)
                .stdin(Stdio::null())
                .output()
                .await
                .with_context(|| format!("running {}", build.display()))?;
            if check.status.success() {
                return Ok(());
            }
            eprintln!("building the Kubernetes components for member clusters (kind/build)");
            // Progress goes straight to the terminal: the first build takes many minutes.
            let status = tokio::process::Command::new(&build)
                .args(COMPONENTS)
                .stdin(Stdio::null())
                .stdout(std::io::stderr())
                .status()
                .await
                .with_context(|| format!("running {}", build.display()))?;
            if !status.success() {
                bail!("kind/build failed ({status}); see its output above");
            }
            Ok(())
        })
        .await
        .map(|_| ())
}

/// Builds a kube-rs client from a kubeconfig file.
pub async fn client_for(kubeconfig: &Path) -> Result<Client> {
    let raw = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(raw, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", kubeconfig.display()))?;
    Client::try_from(config).context("building a kube client")
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

/// True when 127.0.0.1:`port` refuses TCP connections (nothing listens). Any other outcome
/// (a connection, a timeout, another error) is not proof that the port is free: an error is
/// returned for those other than a connection.
pub fn port_closed(port: u16) -> std::io::Result<bool> {
    match std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    ) {
        Ok(_) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(true),
        Err(e) => Err(e),
    }
}

/// PIDs of processes belonging to the named process-runtime cluster.
pub fn cluster_processes(name: &str) -> Vec<u32> {
    let marker = clusters_root().join(name).join("kwok");
    let marker = marker.to_string_lossy().into_owned().into_bytes();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|cmd| cmd.windows(marker.len()).any(|w| w == marker.as_slice()))
                .unwrap_or(false)
        })
        .filter(|pid| !is_zombie(*pid))
        .collect()
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                == Some("Z")
        })
        .unwrap_or(true)
}

fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `e2e-PID-N-label`, cut to the length `kind/cluster` accepts.
fn unique_name(label: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let label: String = label
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut name = format!("{NAME_PREFIX}-{}-{n}-{label}", std::process::id());
    name.truncate(MAX_NAME_LEN);
    name.trim_end_matches('-').to_owned()
}

/// Deletes clusters left behind by earlier test processes that were killed before cleanup.
async fn reap_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(clusters_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(&format!("{NAME_PREFIX}-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("deleting stale member cluster {name} (its test process {pid} is gone)");
        if let Err(err) = run_cluster_script(
            &[
                "delete".to_owned(),
                name.clone(),
                "--ignore-missing".to_owned(),
            ],
            Duration::from_secs(180),
        )
        .await
        {
            eprintln!("warning: {err:#}");
        }
    }
}

async fn cluster_ports(name: &str) -> Result<BTreeMap<String, u16>> {
    let out = run_cluster_script(
        &["list".to_owned(), "--json".to_owned()],
        Duration::from_secs(60),
    )
    .await?;
    let rows: serde_json::Value =
        serde_json::from_str(&out).context("parsing `kind/cluster list --json`")?;
    let ports = rows
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["name"] == name))
        .and_then(|row| row["ports"].as_object())
        .map(|ports| {
            ports
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), u16::try_from(v.as_u64()?).ok()?)))
                .collect()
        })
        .unwrap_or_default();
    Ok(ports)
}

async fn run_cluster_script(args: &[String], timeout: Duration) -> Result<String> {
    let script = cluster_script();
    let child = tokio::process::Command::new(&script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", script.display()))?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| {
            format!(
                "kind/cluster {} timed out after {timeout:?}",
                args.join(" ")
            )
        })?
        .context("waiting for kind/cluster")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "kind/cluster {} failed ({}):\n{}",
            args.join(" "),
            output.status,
            stderr.trim()
        );
    }
    String::from_utf8(output.stdout).context("kind/cluster printed invalid UTF-8")
}
