//! Shared by the benchmark examples: starting a real hub process, registering and enrolling
//! clusters the way `flotillactl` and the agent do, running many simulated agents in one
//! process, and reading the hub's memory and CPU from `/proc`.

// Each example uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use flotilla_agent::connect::{self, ClientIdentity};
use flotilla_agent::engine::{Engine, EngineConfig};
use flotilla_agent::member::{Member, MemberEvent};
use flotilla_agent::metrics::Metrics;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// `VmRSS` of a process in KiB (0 when unreadable).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// `utime + stime` of a process in clock ticks (fields 14 and 15 of `/proc/PID/stat`).
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let rest = s
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc/PID/stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so utime (14) is index 11 and stime (15) index 12.
    let num = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .context("short /proc/PID/stat")?
            .parse()
            .context("parsing /proc/PID/stat")
    };
    Ok(num(11)? + num(12)?)
}

/// Clock ticks per second for [`cpu_ticks`]; Linux reports 100 on every common platform.
pub const TICKS_PER_SECOND: f64 = 100.0;

/// Bytes on disk (allocated blocks) under `dir`.
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else {
                total += md.blocks() * 512;
            }
        }
    }
    total
}

/// The `flotilla-hub` binary of `profile` in the cargo target directory.
pub fn hub_binary(profile: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join(profile).join("flotilla-hub")
}

/// A running hub process on free local ports, killed when dropped.
pub struct HubProcess {
    child: tokio::process::Child,
    /// Its process id.
    pub pid: u32,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The admin kubeconfig it wrote.
    pub kubeconfig: PathBuf,
    /// A client of its API for registrations.
    pub hub: flotillactl::hub::Hub,
    /// A raw client of its API.
    pub client: kube::Client,
}

impl HubProcess {
    /// Starts `binary` with its data in `data_dir` and `extra` arguments, and waits until it
    /// prints its ready line.
    pub async fn start(binary: &Path, data_dir: &Path, extra: &[String]) -> Result<Self> {
        let mut child = tokio::process::Command::new(binary)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("hub pid")?;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("the hub did not get ready within 60 s")??
            .context("the hub exited before it was ready")?;
        let words: Vec<&str> = ready.split_whitespace().collect();
        let kubeconfig = words
            .iter()
            .position(|w| *w == "kubeconfig")
            .and_then(|i| words.get(i + 1))
            .map(PathBuf::from)
            .with_context(|| format!("no kubeconfig in the hub's ready line {ready:?}"))?;
        // Keep draining stdout so the hub never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let hub = flotillactl::hub::Hub::connect(Some(&kubeconfig)).await?;
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        let client = kube::Client::try_from(cfg)?;
        Ok(Self {
            child,
            pid,
            data_dir: data_dir.to_path_buf(),
            kubeconfig,
            hub,
            client,
        })
    }

    /// Kills the process and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Sends a JSON request with `content_type`; returns the response body.
pub async fn request(
    client: &kube::Client,
    method: http::Method,
    path: &str,
    content_type: &str,
    body: Option<&Value>,
) -> Result<Value> {
    let body = match body {
        Some(b) => serde_json::to_vec(b)?,
        None => Vec::new(),
    };
    let req = http::Request::builder()
        .method(method.clone())
        .uri(path)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .context("building a request")?;
    // The client retries 429 and 503 answers with a long backoff; bound the whole request.
    tokio::time::timeout(REQUEST_TIMEOUT, client.request::<Value>(req))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {REQUEST_TIMEOUT:?}"))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("{method} {path}"))
}

/// Upper bound on one API request, retries included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// One cluster to register.
#[derive(Debug, Clone, Default)]
pub struct ClusterSpec {
    /// Its name.
    pub name: String,
    /// `spec.region`.
    pub region: Option<String>,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Enrolled clusters and where their agents connect.
pub struct Enrolled {
    /// The hub's agent address.
    pub addr: String,
    /// The hub's CA, pinned.
    pub ca: String,
    /// Cluster name and client identity, in the order the specs were given.
    pub creds: Vec<(String, ClientIdentity)>,
}

/// Registers `specs` like `flotillactl register cluster` and enrolls each like a new agent,
/// `concurrency` at a time, printing progress to stderr.
pub async fn register_and_enroll(
    hub: &flotillactl::hub::Hub,
    specs: &[ClusterSpec],
    concurrency: usize,
) -> Result<Enrolled> {
    let started = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let report = |what: &str| {
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        if d.is_multiple_of(1000) {
            eprintln!(
                "  {what} {d}/{} ({:.0}s)",
                specs.len(),
                started.elapsed().as_secs_f64()
            );
        }
    };
    let regs: Vec<flotillactl::register::Registration> = futures::stream::iter(specs)
        .map(|s| async {
            let o = flotillactl::register::RegisterOptions {
                name: s.name.clone(),
                region: s.region.clone(),
                labels: s.labels.clone(),
                ttl: Duration::from_secs(3600),
                ..Default::default()
            };
            let r = flotillactl::register::register(hub, &o).await;
            report("registered");
            r
        })
        .buffered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let first = regs.first().context("no clusters to register")?;
    let addr = first.hub_address.clone();
    let ca = connect::discover(&addr, &first.ca_hash).await?;
    done.store(0, Ordering::Relaxed);
    let creds: Vec<(String, ClientIdentity)> = futures::stream::iter(&regs)
        .map(|r| async {
            let id = connect::enroll(&addr, &ca, &r.cluster, &r.token)
                .await
                .with_context(|| format!("enrolling {}", r.cluster))?;
            report("enrolled");
            Ok::<_, anyhow::Error>((r.cluster.clone(), id))
        })
        .buffered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    Ok(Enrolled { addr, ca, creds })
}

/// One simulated agent: the real engine and gRPC client with an in-process member.
pub struct Agent<M> {
    /// Cluster name.
    pub cluster: String,
    /// The member it applies to.
    pub member: Arc<M>,
    /// Its counters.
    pub metrics: Arc<Metrics>,
    /// Keeps the engine's member-event channel open.
    _events: tokio::sync::mpsc::Sender<MemberEvent>,
}

/// Simulated agents sharing one runtime, stopped together.
pub struct Agents<M> {
    /// The agents, in the order they were started.
    pub agents: Vec<Agent<M>>,
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
}

impl<M: Member> Default for Agents<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Member> Agents<M> {
    /// No agents yet.
    pub fn new() -> Self {
        Self {
            agents: Vec::new(),
            tasks: JoinSet::new(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Starts agents for `creds`, at most `wave` connecting at a time: each wave must have its
    /// work streams up (within `timeout`) before the next starts.
    pub async fn start(
        &mut self,
        enrolled: &Enrolled,
        creds: &[(String, ClientIdentity)],
        heartbeat: Duration,
        wave: usize,
        timeout: Duration,
        member: impl Fn(&str) -> M,
    ) -> Result<()> {
        let started = Instant::now();
        for chunk in creds.chunks(wave.max(1)) {
            let first = self.agents.len();
            for (cluster, id) in chunk {
                let ch = connect::authenticated(&enrolled.addr, &enrolled.ca, id).await?;
                let m = Arc::new(member(cluster));
                let (tx, rx) = tokio::sync::mpsc::channel(16);
                let metrics = Arc::new(Metrics::default());
                let mut cfg = EngineConfig::new(cluster);
                cfg.heartbeat = heartbeat;
                let engine = Engine::new(cfg, m.clone(), rx, metrics.clone());
                self.tasks.spawn(engine.run(ch, self.shutdown.clone()));
                self.agents.push(Agent {
                    cluster: cluster.clone(),
                    member: m,
                    metrics,
                    _events: tx,
                });
            }
            let wave_started = Instant::now();
            while !self.agents[first..]
                .iter()
                .all(|a| a.metrics.connected.load(Ordering::Relaxed))
            {
                if wave_started.elapsed() > timeout {
                    let down = self.agents[first..]
                        .iter()
                        .filter(|a| !a.metrics.connected.load(Ordering::Relaxed))
                        .count();
                    bail!("{down} agents of a wave did not connect within {timeout:?}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if self.agents.len() % 1000 < wave.max(1) || self.agents.len() == creds.len() {
                eprintln!(
                    "  {} agents connected ({:.0}s)",
                    self.agents.len(),
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    }

    /// How many agents have their work stream up.
    pub fn connected(&self) -> usize {
        self.agents
            .iter()
            .filter(|a| a.metrics.connected.load(Ordering::Relaxed))
            .count()
    }

    /// Stops every engine and waits (bounded) for them to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
    }
}

/// Raises the soft open-file limit to the hard limit and checks that `need` descriptors fit.
pub fn raise_fd_limit(need: u64) -> Result<()> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let Some(hard) = lim.maximum
        && lim.current.is_some_and(|c| c < hard)
    {
        lim.current = Some(hard);
        let _ = setrlimit(Resource::Nofile, lim);
    }
    let now = getrlimit(Resource::Nofile).current;
    if let Some(cur) = now
        && cur < need
    {
        bail!(
            "the open-file limit is {cur}, about {need} are needed: raise it (`ulimit -n {need}`) and run again"
        );
    }
    Ok(())
}

/// Kills process `pid` if its RSS exceeds `limit_kib` (checked every second), so a run cannot
/// exhaust a shared machine's memory.
pub fn rss_watchdog(pid: u32, limit_kib: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let rss = rss_kib(pid);
            if rss == 0 {
                return;
            }
            if rss > limit_kib {
                eprintln!(
                    "hub RSS {} MiB exceeds the limit of {} MiB: killing it",
                    rss / 1024,
                    limit_kib / 1024
                );
                if let Some(p) = i32::try_from(pid)
                    .ok()
                    .and_then(rustix::process::Pid::from_raw)
                {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
                return;
            }
        }
    })
}

/// Waits until `n` clusters are Ready with their API enablements reported.
pub async fn wait_clusters_ready(client: &kube::Client, n: usize, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let list = request(
            client,
            http::Method::GET,
            "/apis/cluster.karmada.io/v1alpha1/clusters",
            "application/json",
            None,
        )
        .await?;
        let items = list
            .get("items")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let ready = items
            .iter()
            .filter(|c| {
                let st = c.get("status");
                let ready = st
                    .and_then(|s| s.get("conditions"))
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c.get("type") == Some(&json!("Ready"))
                                && c.get("status") == Some(&json!("True"))
                        })
                    });
                let apis = st
                    .and_then(|s| s.get("apiEnablements"))
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
                ready && apis
            })
            .count();
        if ready >= n {
            return Ok(());
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            eprintln!(
                "  {ready}/{n} clusters Ready with API enablements ({:.0}s)",
                started.elapsed().as_secs_f64()
            );
        }
        if started.elapsed() > timeout {
            let missing: Vec<&str> = items
                .iter()
                .filter(|c| {
                    c.pointer("/status/apiEnablements")
                        .and_then(Value::as_array)
                        .is_none_or(Vec::is_empty)
                })
                .filter_map(|c| c.pointer("/metadata/name").and_then(Value::as_str))
                .take(5)
                .collect();
            bail!(
                "only {ready} of {n} clusters became Ready with API enablements within {timeout:?} (without enablements, e.g.: {})",
                missing.join(", ")
            );
        }
        // Listing thousands of Clusters is not free for the hub: poll less often for many.
        tokio::time::sleep(Duration::from_secs(if n > 2_000 { 5 } else { 2 })).await;
    }
}

/// The machine, for benchmark records: CPUs, model, memory, load.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "{cpus} CPUs (nproc), {model}, {:.0} GiB RAM; load average at start {load}",
        mem as f64 / 1048576.0
    )
}
