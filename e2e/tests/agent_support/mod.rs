//! Shared pieces of the agent tests: the hub, agent and flotillactl as real processes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Whether the binaries are release builds (`FLOTILLA_E2E_RELEASE=1`, for benchmarks).
fn release() -> bool {
    std::env::var_os("FLOTILLA_E2E_RELEASE").is_some_and(|v| v == "1")
}

/// Path of a workspace binary (debug build, or release with `FLOTILLA_E2E_RELEASE=1`).
pub fn bin(name: &str) -> PathBuf {
    target_dir()
        .join(if release() { "release" } else { "debug" })
        .join(name)
}

static BUILT: OnceLock<Result<(), String>> = OnceLock::new();

/// Builds the hub, agent and flotillactl binaries once per test process.
pub fn build_binaries() -> Result<()> {
    BUILT
        .get_or_init(|| {
            let status = std::process::Command::new(env!("CARGO"))
                .arg("build")
                .args(release().then_some("--release"))
                .args([
                    "-p",
                    "flotilla-hub",
                    "-p",
                    "flotilla-agent",
                    "-p",
                    "flotillactl",
                ])
                .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
                .status()
                .map_err(|e| e.to_string())?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("cargo build failed: {status}"))
            }
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// A hub process, killed when dropped.
pub struct HubProcess {
    child: Option<Child>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// `127.0.0.1:port` of the API.
    pub api: String,
    /// `127.0.0.1:port` of the agent server.
    pub agents: String,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    grace: u64,
    extra: Vec<String>,
}

impl HubProcess {
    /// Starts a hub on free ports in `data_dir`.
    pub async fn start(data_dir: &Path, grace_seconds: u64) -> Result<Self> {
        Self::start_on(data_dir, "127.0.0.1:0", "127.0.0.1:0", grace_seconds, &[]).await
    }

    /// Starts a hub on free ports with extra arguments.
    pub async fn start_with(data_dir: &Path, grace_seconds: u64, extra: &[&str]) -> Result<Self> {
        Self::start_on(data_dir, "127.0.0.1:0", "127.0.0.1:0", grace_seconds, extra).await
    }

    /// Starts a hub on the given addresses.
    pub async fn start_on(
        data_dir: &Path,
        api: &str,
        agents: &str,
        grace_seconds: u64,
        extra: &[&str],
    ) -> Result<Self> {
        build_binaries()?;
        let log = std::fs::File::create(data_dir.with_extension("hub.log")).context("hub log")?;
        let mut child = Command::new(bin("flotilla-hub"))
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--listen",
                api,
                "--agent-listen",
                agents,
                "--cluster-grace-seconds",
                &grace_seconds.to_string(),
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting flotilla-hub")?;
        let stdout = child.stdout.take().context("hub stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("the hub did not become ready within 60s")??
            .context("the hub exited before it was ready")?;
        // flotilla-hub ready: API https://ADDR agents ADDR kubeconfig PATH
        let words: Vec<&str> = line.split_whitespace().collect();
        let find = |key: &str| {
            words
                .iter()
                .position(|w| *w == key)
                .and_then(|i| words.get(i + 1))
                .map(|s| s.to_string())
        };
        let api = find("API")
            .context("no API address in the ready line")?
            .trim_start_matches("https://")
            .to_owned();
        let agents = find("agents").context("no agent address in the ready line")?;
        let kubeconfig =
            PathBuf::from(find("kubeconfig").context("no kubeconfig in the ready line")?);
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child: Some(child),
            data_dir: data_dir.to_owned(),
            api,
            agents,
            kubeconfig,
            grace: grace_seconds,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// The hub's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Kills the hub (SIGKILL).
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Starts the hub again on the same addresses and data.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill().await;
        let extra = self.extra.clone();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let again = Self::start_on(
            &self.data_dir.clone(),
            &self.api.clone(),
            &self.agents.clone(),
            self.grace,
            &extra,
        )
        .await?;
        *self = again;
        Ok(())
    }

    /// Runs flotillactl against this hub and returns stdout; fails on a non-zero exit.
    pub async fn ctl(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(bin("flotillactl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .await
            .context("running flotillactl")?;
        if !out.status.success() {
            bail!(
                "flotillactl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Runs flotillactl with a file on stdin.
    pub async fn ctl_stdin(&self, args: &[&str], input: &str) -> Result<String> {
        use tokio::io::AsyncWriteExt;
        let mut child = Command::new(bin("flotillactl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().context("stdin")?;
        stdin.write_all(input.as_bytes()).await?;
        drop(stdin);
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!(
                "flotillactl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Registers a cluster and returns flotillactl's JSON.
    pub async fn register(&self, name: &str) -> Result<Value> {
        let out = self
            .ctl(&["register", "cluster", name, "-o", "json"])
            .await?;
        serde_json::from_str(&out).context("parsing register output")
    }

    /// Runs the cached kubectl against the hub.
    pub async fn kubectl(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(flotilla_e2e::clusters::kubectl_path())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .await
            .context("running kubectl")?;
        if !out.status.success() {
            bail!(
                "kubectl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// `kubectl get clusters` rows as (name, version, mode, ready).
    pub async fn clusters(&self) -> Result<Vec<(String, String, String, String)>> {
        let out = self.kubectl(&["get", "clusters", "--no-headers"]).await?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                // A cluster without a version has one column less.
                match w.len() {
                    5 => Some((w[0].into(), w[1].into(), w[2].into(), w[3].into())),
                    4 => Some((w[0].into(), String::new(), w[1].into(), w[2].into())),
                    _ => None,
                }
            })
            .collect())
    }

    /// `kubectl apply` of YAML text on the hub.
    pub async fn apply(&self, yaml: &str) -> Result<String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = self
            .data_dir
            .with_extension(format!("apply-{}.yaml", N.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&path, yaml)?;
        self.kubectl(&["apply", "-f", &path.to_string_lossy()])
            .await
    }

    /// The Ready column of one cluster.
    pub async fn ready(&self, name: &str) -> Result<String> {
        Ok(self
            .clusters()
            .await?
            .into_iter()
            .find(|c| c.0 == name)
            .map(|c| c.3)
            .unwrap_or_default())
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

/// An agent process, killed when dropped.
pub struct AgentProcess {
    child: Option<Child>,
    args: Vec<String>,
    log: PathBuf,
    /// `127.0.0.1:port` of the agent's `/metrics`, kept across restarts.
    pub metrics: String,
}

impl AgentProcess {
    /// Starts an agent for `cluster` with the registration JSON `reg`.
    pub async fn start(reg: &Value, kubeconfig: &Path, state_dir: &Path) -> Result<Self> {
        Self::start_with(reg, kubeconfig, state_dir, &[]).await
    }

    /// Starts an agent with extra arguments (kept across restarts).
    pub async fn start_with(
        reg: &Value,
        kubeconfig: &Path,
        state_dir: &Path,
        extra: &[&str],
    ) -> Result<Self> {
        let s = |k: &str| reg[k].as_str().unwrap_or_default().to_owned();
        let args = vec![
            "--hub".into(),
            s("hubAddress"),
            "--cluster-name".into(),
            s("cluster"),
            "--token".into(),
            s("token"),
            "--ca-hash".into(),
            s("caHash"),
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--state-dir".into(),
            state_dir.display().to_string(),
            "--heartbeat-seconds".into(),
            "2".into(),
        ];
        let metrics = free_local_address()?;
        let mut args = args;
        args.extend(["--metrics-listen".into(), metrics.clone()]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let log = state_dir.with_extension("agent.log");
        let mut a = Self {
            child: None,
            args,
            log,
            metrics,
        };
        a.spawn()?;
        Ok(a)
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(bin("flotilla-agent"))
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting flotilla-agent")?;
        self.child = Some(child);
        Ok(())
    }

    /// Kills the agent (SIGKILL).
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Kills and starts the agent again (with its stored credential).
    pub async fn restart(&mut self) -> Result<()> {
        self.kill().await;
        self.spawn()
    }

    /// Kills the agent and starts it again with `flag` set to `value` (replacing an earlier
    /// value of the flag).
    pub async fn restart_with(&mut self, flag: &str, value: &str) -> Result<()> {
        self.kill().await;
        if let Some(i) = self.args.iter().position(|a| a == flag) {
            self.args.drain(i..=i + 1);
        }
        self.args.extend([flag.to_owned(), value.to_owned()]);
        self.spawn()
    }

    /// PID of the running agent.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of one of the agent's Prometheus metrics, from its `/metrics`.
    pub async fn metric(&self, name: &str) -> Result<u64> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(&self.metrics)
            .await
            .with_context(|| format!("connecting to the agent's metrics on {}", self.metrics))?;
        sock.write_all(b"GET /metrics HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = String::new();
        tokio::time::timeout(Duration::from_secs(5), sock.read_to_string(&mut response))
            .await
            .context("reading the agent's metrics timed out")??;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .context("no HTTP body from /metrics")?;
        anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "/metrics answered {head}");
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .with_context(|| format!("no metric {name} in {body}"))?
            .trim()
            .parse()
            .with_context(|| format!("metric {name} is not a count"))
    }
}

/// A free `127.0.0.1:port` (bound and released, so another process can listen on it).
pub fn free_local_address() -> Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.to_string())
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

/// Whether object `name` is absent from a cluster: its API server answered NotFound for it
/// and answers for a known object (the namespace `default`). Any other failure is an error,
/// so a cluster that does not answer never passes a negative check.
pub async fn absent<K>(client: &kube::Client, api: &kube::Api<K>, name: &str) -> Result<bool>
where
    K: kube::Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    if api.get_opt(name).await?.is_some() {
        return Ok(false);
    }
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    namespaces
        .get("default")
        .await
        .context("the cluster answered NotFound but does not show the namespace default")?;
    Ok(true)
}

/// Polls `check` every 500 ms until it returns `Some`, or fails after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let started = Instant::now();
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(v)) => {
                eprintln!("{what}: after {:.1}s", started.elapsed().as_secs_f64());
                return Ok(v);
            }
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if started.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what} (last error: {last_err:?})");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A Deployment and a ConfigMap in namespace `ns`, as YAML.
pub fn app_manifests(ns: &str, replicas: u32, color: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: app\n        image: registry.k8s.io/pause:3.10\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\ndata:\n  color: {color}\n"
    )
}
