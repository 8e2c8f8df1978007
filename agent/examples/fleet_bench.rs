//! Fleet simulation: one real hub process, N simulated clusters connected as real agents over
//! gRPC (the real engine and client, with in-memory members), and T Deployment templates
//! spread over PropagationPolicies of four kinds. Measures cold convergence, the latency of
//! one template change (idle and under churn), a cluster joining a policy group, and the
//! hub's memory, store size and idle CPU. Every convergence is checked: each member must hold
//! exactly the Deployments the policies place there, with the expected replicas and image.
//!
//! ```sh
//! cargo build --release -p flotilla-hub -p flotilla-agent --example fleet_bench
//! $CARGO_TARGET_DIR/release/examples/fleet_bench --quick
//! $CARGO_TARGET_DIR/release/examples/fleet_bench --clusters 1000 --templates 10000
//! $CARGO_TARGET_DIR/release/examples/fleet_bench --all   # the three reference points
//! ```
//!
//! Placement model (all deterministic, so the expected result is known exactly): cluster `i`
//! is in region `region-{i % 3}` and labelled `fleet.bench/group=g{i / 3}`, so every group
//! has one cluster per region. Policy `p` selects the group `g(p)` by label and is, by
//! `p % 4`: Duplicated; static weights 1:2:3 by region (6 replicas); dynamic weights by
//! available replicas (3 or 6 replicas, equal capacity); spread over 3 regions and 3 clusters
//! (3 or 6 replicas, equal weights). Policy 0 (Duplicated) also selects clusters labelled
//! `fleet.bench/group=join`; the joining cluster carries that label.

mod support;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use flotilla_agent::fake::FakeMember;
use flotilla_agent::member::{Applied, Member, MemberError, ObjectRef};
use flotilla_proto::v1::Heartbeat;
use futures::StreamExt;
use serde_json::{Value, json};
use support::{Agents, ClusterSpec, HubProcess};

const GROUP_LABEL: &str = "fleet.bench/group";
const POLICY_LABEL: &str = "fleet.bench/policy";
const IMAGE: &str = "registry.local/fleet/app:v";
const REGIONS: usize = 3;

/// The three reference points of the benchmark: (clusters, templates).
const REFERENCE_POINTS: [(usize, usize); 3] =
    [(1_000, 10_000), (1_000, 100_000), (10_000, 100_000)];

#[derive(Debug, Clone, Parser)]
#[command(about = "Fleet simulation benchmark of the hub's controllers")]
struct Args {
    /// Simulated clusters.
    #[arg(long, default_value_t = 1_000)]
    clusters: usize,
    /// Deployment templates.
    #[arg(long, default_value_t = 10_000)]
    templates: usize,
    /// PropagationPolicies (kinds rotate over them).
    #[arg(long, default_value_t = 100)]
    policies: usize,
    /// Namespaces the policies and templates are spread over.
    #[arg(long, default_value_t = 4)]
    namespaces: usize,
    /// Template changes measured, idle and again under churn.
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// Background churn: percent of templates changed per second.
    #[arg(long, default_value_t = 1.0)]
    churn_percent: f64,
    /// Seconds of idle over which hub CPU is measured.
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
    /// Seconds to wait after convergence before measuring memory and idle CPU.
    #[arg(long, default_value_t = 10)]
    settle_secs: u64,
    /// Agent heartbeat period in seconds.
    #[arg(long, default_value_t = 10)]
    heartbeat_secs: u64,
    /// Template creates in flight.
    #[arg(long, default_value_t = 64)]
    create_concurrency: usize,
    /// Registrations and enrollments in flight.
    #[arg(long, default_value_t = 16)]
    register_concurrency: usize,
    /// Agents connecting at once.
    #[arg(long, default_value_t = 100)]
    connect_wave: usize,
    /// Upper bound in seconds on every wait for convergence.
    #[arg(long, default_value_t = 1_800)]
    timeout_secs: u64,
    /// Upper bound in seconds on one measured change.
    #[arg(long, default_value_t = 120)]
    change_timeout_secs: u64,
    /// Cargo profile of the hub binary (in $CARGO_TARGET_DIR).
    #[arg(long, default_value = "release")]
    hub_profile: String,
    /// Extra hub argument (repeatable), e.g. `--hub-arg=--cluster-grace-seconds=120`.
    #[arg(long, allow_hyphen_values = true)]
    hub_arg: Vec<String>,
    /// Safety limit: the hub is killed (and the run fails) if its RSS exceeds this many MiB.
    #[arg(long, default_value_t = 8_192)]
    max_hub_rss_mib: u64,
    /// Where the hub's data directories go (a temporary directory by default).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the hub's data directory after the run (for `store_usage`).
    #[arg(long)]
    keep_data_dir: bool,
    /// Smoke test: 50 clusters, 1,000 templates, 40 changes, 10 s idle window.
    #[arg(long, conflicts_with = "all")]
    quick: bool,
    /// Run the three reference points (1,000 x 10,000; 1,000 x 100,000; 10,000 x 100,000).
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Duplicated,
    StaticWeights,
    DynamicWeights,
    RegionSpread,
}

impl Kind {
    fn of(policy: usize) -> Self {
        match policy % 4 {
            0 => Kind::Duplicated,
            1 => Kind::StaticWeights,
            2 => Kind::DynamicWeights,
            _ => Kind::RegionSpread,
        }
    }
}

/// The desired state of the simulation and what every member should hold.
struct Model {
    clusters: usize,
    groups: usize,
    policies: usize,
    namespaces: usize,
    /// Per template: `namespace/name`.
    keys: Vec<String>,
    /// Per template: replicas of the template.
    replicas: Vec<i64>,
    /// Per template: current image version.
    versions: Vec<AtomicU32>,
    /// Whether the joining cluster is part of the fleet yet.
    joined: AtomicBool,
}

impl Model {
    fn new(clusters: usize, templates: usize, policies: usize, namespaces: usize) -> Self {
        let policy = |t: usize| t % policies;
        Self {
            clusters,
            groups: clusters / REGIONS,
            policies,
            namespaces,
            keys: (0..templates)
                .map(|t| format!("{}/{}", Self::ns(policy(t) % namespaces), Self::name(t)))
                .collect(),
            replicas: (0..templates)
                .map(|t| match Kind::of(policy(t)) {
                    Kind::Duplicated => 2 + (t % 5) as i64,
                    Kind::StaticWeights => 6,
                    Kind::DynamicWeights | Kind::RegionSpread => {
                        3 * (1 + ((t / policies) % 2) as i64)
                    }
                })
                .collect(),
            versions: (0..templates).map(|_| AtomicU32::new(1)).collect(),
            joined: AtomicBool::new(false),
        }
    }

    fn templates(&self) -> usize {
        self.keys.len()
    }

    fn ns(i: usize) -> String {
        format!("fleet-{i}")
    }

    fn name(t: usize) -> String {
        format!("app-{t:06}")
    }

    fn cluster_name(i: usize) -> String {
        format!("c{i:05}")
    }

    /// Index of the joining cluster among the members.
    fn join_index(&self) -> usize {
        self.clusters
    }

    fn policy(&self, t: usize) -> usize {
        t % self.policies
    }

    fn group_of_policy(&self, p: usize) -> usize {
        if self.groups >= self.policies {
            p * self.groups / self.policies
        } else {
            p % self.groups
        }
    }

    fn cluster_spec(&self, i: usize) -> ClusterSpec {
        let group = if i / REGIONS < self.groups {
            format!("g{}", i / REGIONS)
        } else {
            "spare".to_owned()
        };
        ClusterSpec {
            name: Self::cluster_name(i),
            region: Some(format!("region-{}", i % REGIONS)),
            labels: [(GROUP_LABEL.to_owned(), group)].into(),
        }
    }

    fn join_spec() -> ClusterSpec {
        ClusterSpec {
            name: "join-0".to_owned(),
            region: Some("region-0".to_owned()),
            labels: [(GROUP_LABEL.to_owned(), "join".to_owned())].into(),
        }
    }

    /// Member index and replicas of every cluster template `t` is placed on.
    fn placement(&self, t: usize) -> Vec<(usize, i64)> {
        let p = self.policy(t);
        let base = self.group_of_policy(p) * REGIONS;
        let r = self.replicas[t];
        let mut out: Vec<(usize, i64)> = match Kind::of(p) {
            Kind::Duplicated => (0..REGIONS).map(|k| (base + k, r)).collect(),
            // Weights 1:2:3 for regions 0, 1, 2 (cluster base + k is in region k).
            Kind::StaticWeights => (0..REGIONS)
                .map(|k| (base + k, r * (k as i64 + 1) / 6))
                .collect(),
            Kind::DynamicWeights | Kind::RegionSpread => {
                (0..REGIONS).map(|k| (base + k, r / 3)).collect()
            }
        };
        if p == 0 && self.joined.load(Ordering::Relaxed) {
            out.push((self.join_index(), r));
        }
        out
    }

    /// Per member (clusters, then the joining cluster): template and replicas expected.
    fn expected(&self) -> Vec<Vec<(u32, i64)>> {
        let mut out = vec![Vec::new(); self.clusters + 1];
        for t in 0..self.templates() {
            for (m, r) in self.placement(t) {
                out[m].push((t as u32, r));
            }
        }
        out
    }

    fn template(&self, t: usize) -> Value {
        let p = self.policy(t);
        let name = Self::name(t);
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": Self::ns(p % self.namespaces),
                "labels": {POLICY_LABEL: format!("p{p}"), "app": name},
            },
            "spec": {
                "replicas": self.replicas[t],
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": format!("{IMAGE}{}", self.versions[t].load(Ordering::Relaxed))}]},
                },
            },
        })
    }

    fn policy_object(&self, p: usize) -> Value {
        let group = format!("g{}", self.group_of_policy(p));
        let selector = if p == 0 {
            json!({"matchExpressions": [{"key": GROUP_LABEL, "operator": "In", "values": [group, "join"]}]})
        } else {
            json!({"matchLabels": {GROUP_LABEL: group}})
        };
        let region = |k: usize| json!({"fieldSelector": {"matchExpressions": [{"key": "region", "operator": "In", "values": [format!("region-{k}")]}]}});
        let mut placement = json!({"clusterAffinity": {"labelSelector": selector}});
        match Kind::of(p) {
            Kind::Duplicated => {
                placement["replicaScheduling"] = json!({"replicaSchedulingType": "Duplicated"});
            }
            Kind::StaticWeights => {
                placement["replicaScheduling"] = json!({
                    "replicaSchedulingType": "Divided",
                    "replicaDivisionPreference": "Weighted",
                    "weightPreference": {"staticWeightList": (0..REGIONS)
                        .map(|k| json!({"targetCluster": region(k), "weight": k + 1}))
                        .collect::<Vec<_>>()},
                });
            }
            Kind::DynamicWeights => {
                placement["replicaScheduling"] = json!({
                    "replicaSchedulingType": "Divided",
                    "replicaDivisionPreference": "Weighted",
                    "weightPreference": {"dynamicWeight": "AvailableReplicas"},
                });
            }
            Kind::RegionSpread => {
                placement["spreadConstraints"] = json!([
                    {"spreadByField": "region", "minGroups": 3, "maxGroups": 3},
                    {"spreadByField": "cluster", "minGroups": 3, "maxGroups": 3},
                ]);
                placement["replicaScheduling"] = json!({
                    "replicaSchedulingType": "Divided",
                    "replicaDivisionPreference": "Weighted",
                });
            }
        }
        json!({
            "apiVersion": "policy.karmada.io/v1alpha1",
            "kind": "PropagationPolicy",
            "metadata": {"name": format!("p{p}"), "namespace": Self::ns(p % self.namespaces)},
            "spec": {
                "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment",
                    "labelSelector": {"matchLabels": {POLICY_LABEL: format!("p{p}")}}}],
                "placement": placement,
            },
        })
    }
}

fn image_version(obj: &Value) -> u32 {
    obj.pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .and_then(|i| i.strip_prefix(IMAGE))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX)
}

/// An in-memory member ([`FakeMember`]) that serves Deployments and keeps a small index of
/// the Deployments it holds (image version and replicas) for cheap polling.
#[derive(Default)]
struct BenchMember {
    inner: FakeMember,
    deployments: Mutex<HashMap<String, (u32, i64)>>,
}

impl BenchMember {
    fn key(target: &ObjectRef) -> String {
        format!("{}/{}", target.namespace, target.name)
    }

    fn get(&self, key: &str) -> Option<(u32, i64)> {
        self.deployments.lock().ok()?.get(key).copied()
    }

    /// Number of expected entries that match, and number of Deployments held.
    fn matching(&self, model: &Model, expected: &[(u32, i64)]) -> (usize, usize) {
        let Ok(d) = self.deployments.lock() else {
            return (0, 0);
        };
        let ok = expected
            .iter()
            .filter(|(t, r)| {
                let t = *t as usize;
                d.get(&model.keys[t]) == Some(&(model.versions[t].load(Ordering::Relaxed), *r))
            })
            .count();
        (ok, d.len())
    }
}

impl Member for BenchMember {
    async fn apply(
        &self,
        work: &str,
        manifest: &Value,
        overwrite: bool,
    ) -> Result<Applied, MemberError> {
        let a = self.inner.apply(work, manifest, overwrite).await?;
        if a.target.kind == "Deployment"
            && let Ok(mut d) = self.deployments.lock()
        {
            let replicas = a
                .object
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(-1);
            d.insert(Self::key(&a.target), (image_version(&a.object), replicas));
        }
        Ok(a)
    }

    async fn delete(&self, work: &str, target: &ObjectRef) -> Result<(), MemberError> {
        self.inner.delete(work, target).await?;
        if target.kind == "Deployment"
            && let Ok(mut d) = self.deployments.lock()
        {
            d.remove(&Self::key(target));
        }
        Ok(())
    }

    async fn release(&self, work: &str, target: &ObjectRef) -> Result<(), MemberError> {
        self.inner.release(work, target).await
    }

    async fn managed_objects(&self) -> Result<Vec<(String, ObjectRef)>, MemberError> {
        self.inner.managed_objects().await
    }

    async fn heartbeat(&self, with_enablements: bool) -> Heartbeat {
        self.inner.heartbeat(with_enablements).await
    }

    async fn measure(
        &self,
        target: &flotilla_agent::autoscaling::MeasureTarget,
    ) -> flotilla_proto::v1::WorkloadMetricsReport {
        self.inner.measure(target).await
    }

    async fn exported(
        &self,
        services: &[flotilla_agent::discovery::ServiceRef],
    ) -> std::collections::BTreeMap<
        flotilla_agent::discovery::ServiceRef,
        flotilla_proto::v1::ExportedService,
    > {
        self.inner.exported(services).await
    }

    async fn endpoints_changed(&self) {
        self.inner.endpoints_changed().await;
    }
}

/// The hub's API paths used here.
fn deployments_path(ns: &str) -> String {
    format!("/apis/apps/v1/namespaces/{ns}/deployments")
}

/// POST, treating "already exists" as success; retried a few times on other errors.
async fn create(client: &kube::Client, path: &str, body: &Value) -> Result<()> {
    let mut last = None;
    for attempt in 0..4u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        match support::request(
            client,
            http::Method::POST,
            path,
            "application/json",
            Some(body),
        )
        .await
        {
            Ok(_) => return Ok(()),
            Err(e)
                if e.downcast_ref::<kube::Error>()
                    .is_some_and(|k| matches!(k, kube::Error::Api(s) if s.code == 409)) =>
            {
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("POST {path} failed")))
}

/// Sets template `t`'s image to version `v` (JSON merge patch).
async fn set_image(client: &kube::Client, model: &Model, t: usize, v: u32) -> Result<()> {
    let (ns, name) = model.keys[t]
        .split_once('/')
        .context("template key without namespace")?;
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": format!("{IMAGE}{v}")}]}}}});
    support::request(
        client,
        http::Method::PATCH,
        &format!("{}/{name}", deployments_path(ns)),
        "application/merge-patch+json",
        Some(&patch),
    )
    .await?;
    Ok(())
}

/// Reads template `t`'s image version back from the hub.
async fn read_image(client: &kube::Client, model: &Model, t: usize) -> Result<u32> {
    let (ns, name) = model.keys[t]
        .split_once('/')
        .context("template key without namespace")?;
    let v = support::request(
        client,
        http::Method::GET,
        &format!("{}/{name}", deployments_path(ns)),
        "application/json",
        None,
    )
    .await?;
    Ok(image_version(&v))
}

/// Progress of a convergence wait.
struct Progress {
    matched: usize,
    expected: usize,
    members_ok: usize,
    members: usize,
}

fn progress(model: &Model, expected: &[Vec<(u32, i64)>], agents: &Agents<BenchMember>) -> Progress {
    let mut p = Progress {
        matched: 0,
        expected: 0,
        members_ok: 0,
        members: agents.agents.len(),
    };
    for (i, a) in agents.agents.iter().enumerate() {
        let exp = expected.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let (ok, held) = a.member.matching(model, exp);
        p.matched += ok;
        p.expected += exp.len();
        if ok == exp.len() && held == exp.len() {
            p.members_ok += 1;
        }
    }
    p
}

/// Waits until every member holds exactly what it should (by the members' indexes).
async fn converge(
    what: &str,
    model: &Model,
    agents: &Agents<BenchMember>,
    hub: &mut HubProcess,
    timeout: Duration,
) -> Result<Duration> {
    let expected = model.expected();
    let started = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let p = progress(model, &expected, agents);
        if p.members_ok == p.members {
            return Ok(started.elapsed());
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            eprintln!(
                "  {what}: {}/{} objects as expected, {}/{} members done ({:.0}s, hub RSS {} MiB)",
                p.matched,
                p.expected,
                p.members_ok,
                p.members,
                started.elapsed().as_secs_f64(),
                support::rss_kib(hub.pid) / 1024
            );
        }
        if !hub.alive() {
            bail!("{what}: the hub process exited");
        }
        if started.elapsed() > timeout {
            let detail = match verify(model, agents) {
                Ok(s) => s,
                Err(e) => format!("{e:#}"),
            };
            bail!(
                "{what}: not converged within {timeout:?}: {}/{} objects as expected, {}/{} members done; {detail}",
                p.matched,
                p.expected,
                p.members_ok,
                p.members
            );
        }
        let pause = if expected.len() > 2_000 || model.templates() > 20_000 {
            500
        } else {
            50
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// Checks every member's objects (the in-memory member itself, not the index): exactly the
/// expected Deployments, with the expected replicas and image. Returns a summary.
fn verify(model: &Model, agents: &Agents<BenchMember>) -> Result<String> {
    let expected = model.expected();
    let mut errors = Vec::new();
    let mut objects = 0usize;
    let mut holding = 0usize;
    let mut other_kinds = 0usize;
    for (i, a) in agents.agents.iter().enumerate() {
        let exp = expected.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let mut held: HashMap<String, (u32, i64)> = HashMap::new();
        for (target, obj) in a.member.inner.objects() {
            if target.kind != "Deployment" {
                other_kinds += 1;
                continue;
            }
            let replicas = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(-1);
            held.insert(
                format!("{}/{}", target.namespace, target.name),
                (image_version(&obj), replicas),
            );
        }
        objects += held.len();
        holding += usize::from(!held.is_empty());
        for (t, r) in exp {
            let t = *t as usize;
            let want = (model.versions[t].load(Ordering::Relaxed), *r);
            match held.remove(&model.keys[t]) {
                None => errors.push(format!("{}: {} missing", a.cluster, model.keys[t])),
                Some(got) if got != want => errors.push(format!(
                    "{}: {} has image v{} replicas {}, expected v{} replicas {}",
                    a.cluster, model.keys[t], got.0, got.1, want.0, want.1
                )),
                Some(_) => {}
            }
        }
        for k in held.keys() {
            errors.push(format!("{}: unexpected Deployment {k}", a.cluster));
        }
    }
    if !errors.is_empty() {
        let n = errors.len();
        errors.truncate(5);
        bail!(
            "check failed: {n} discrepancies, first: {}",
            errors.join("; ")
        );
    }
    Ok(format!(
        "ok: {objects} Deployments on {holding} of {} members, all as expected (plus {other_kinds} other objects, e.g. namespaces)",
        agents.agents.len()
    ))
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Latency summary of measured changes.
#[derive(Debug, Clone, Default)]
struct Latencies {
    samples: Vec<Duration>,
    timeouts: usize,
    /// Changes not measured because too many timed out before them.
    abandoned: usize,
}

impl Latencies {
    fn p(&self, q: f64) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        percentile(&s, q)
    }

    fn summary(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut s = format!(
            "{:.0} / {:.0} / {:.0} ms (n = {})",
            ms(self.p(0.5)),
            ms(self.p(0.99)),
            ms(self.p(1.0)),
            self.samples.len()
        );
        if self.timeouts > 0 {
            let _ = write!(s, ", {} TIMED OUT", self.timeouts);
        }
        if self.abandoned > 0 {
            let _ = write!(s, ", {} not measured after that", self.abandoned);
        }
        s
    }
}

/// Templates measured: change `k` takes a template of policy `k % policies`, so every policy
/// (and kind) is measured, at a position spread over that policy's templates.
fn probe_templates(model: &Model, changes: usize) -> Vec<usize> {
    let (t, p) = (model.templates(), model.policies);
    (0..changes)
        .map(|k| {
            let policy = k % p;
            // Templates of `policy` are policy, policy + p, policy + 2p, ... below t.
            let count = t.saturating_sub(policy).div_ceil(p).max(1);
            let j = (k / p * 37 + k * 13) % count;
            (policy + j * p).min(t - 1)
        })
        .collect()
}

/// Timed-out changes after which a measurement stops: the hub is not keeping up, and every
/// further change would only wait out its timeout.
const MAX_TIMEOUTS: usize = 3;

/// Changes each probe template's image, one at a time, and measures from the API write's
/// response until every member it is placed on holds the new image.
#[allow(clippy::too_many_arguments)]
async fn measure_changes(
    what: &str,
    hub_pid: u32,
    client: &kube::Client,
    model: &Model,
    agents: &Agents<BenchMember>,
    probes: &[usize],
    timeout: Duration,
) -> Result<Latencies> {
    let mut out = Latencies::default();
    let started = Instant::now();
    for (k, &t) in probes.iter().enumerate() {
        let v = model.versions[t].load(Ordering::Relaxed) + 1;
        set_image(client, model, t, v).await?;
        model.versions[t].store(v, Ordering::Relaxed);
        let written = Instant::now();
        let targets = model.placement(t);
        loop {
            let done = targets
                .iter()
                .all(|(m, r)| agents.agents[*m].member.get(&model.keys[t]) == Some((v, *r)));
            if done {
                let took = written.elapsed();
                if took > Duration::from_secs(2) {
                    eprintln!(
                        "  {what}: change {}/{} ({}) took {:.1} s",
                        k + 1,
                        probes.len(),
                        model.keys[t],
                        took.as_secs_f64()
                    );
                }
                out.samples.push(took);
                break;
            }
            if support::rss_kib(hub_pid) == 0 {
                bail!("{what}: the hub process exited");
            }
            if written.elapsed() > timeout {
                out.timeouts += 1;
                eprintln!("  {what}: change of {} timed out", model.keys[t]);
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if out.timeouts >= MAX_TIMEOUTS {
            eprintln!(
                "  {what}: {MAX_TIMEOUTS} changes timed out; the rest are not measured (not sustained)"
            );
            out.abandoned = probes.len() - k - 1;
            break;
        }
        if (k + 1) % 20 == 0 {
            eprintln!(
                "  {what}: {}/{} changes, so far p50 {:.0} ms ({:.0}s)",
                k + 1,
                probes.len(),
                out.p(0.5).as_secs_f64() * 1000.0,
                started.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(out)
}

/// Counters of the background churn.
#[derive(Debug, Default)]
struct Churn {
    issued: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
}

/// Changes `rate` templates per second (not the probes), at most 64 writes in flight, until
/// `stop`. Writes that cannot start because 64 are in flight are skipped and counted.
async fn churn(
    client: kube::Client,
    model: Arc<Model>,
    exclude: HashSet<usize>,
    rate: f64,
    stats: Arc<Churn>,
    stop: tokio_util::sync::CancellationToken,
) {
    let pool: Vec<usize> = (0..model.templates())
        .filter(|t| !exclude.contains(t))
        .collect();
    if pool.is_empty() || rate <= 0.0 {
        return;
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(64));
    let started = Instant::now();
    let mut next = 0usize;
    let mut due_done = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let due = (started.elapsed().as_secs_f64() * rate) as u64;
        while due_done < due {
            due_done += 1;
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                stats.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let t = pool[next % pool.len()];
            next += 1;
            let (client, model, stats) = (client.clone(), model.clone(), stats.clone());
            stats.issued.fetch_add(1, Ordering::Relaxed);
            tasks.spawn(async move {
                let v = model.versions[t].fetch_add(1, Ordering::Relaxed) + 1;
                match set_image(&client, &model, t, v).await {
                    Ok(()) => {
                        stats.done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        // The write may or may not have happened: learn the truth.
                        for _ in 0..5 {
                            if let Ok(actual) = read_image(&client, &model, t).await {
                                model.versions[t].store(actual, Ordering::Relaxed);
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
                drop(permit);
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// Figures of one run.
#[derive(Debug, Default)]
struct PointResult {
    clusters: usize,
    templates: usize,
    idle: Latencies,
    churned: Latencies,
    table: String,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A result table, printed row by row as figures are measured so a failed run keeps them.
struct Table(String);

impl Table {
    fn new(title: String) -> Self {
        let head = format!("### {title}\n\n| measure | value |\n|---|---|\n");
        print!("{head}");
        Self(head)
    }

    fn row(&mut self, measure: impl std::fmt::Display, value: impl std::fmt::Display) {
        let line = format!("| {measure} | {value} |\n");
        print!("{line}");
        self.0.push_str(&line);
    }
}

async fn run_point(args: &Args, clusters: usize, templates: usize) -> Result<PointResult> {
    if clusters < REGIONS {
        bail!("--clusters must be at least {REGIONS}");
    }
    if templates == 0 || args.policies == 0 || args.namespaces == 0 {
        bail!("--templates, --policies and --namespaces must be positive");
    }
    support::raise_fd_limit(clusters as u64 + 1_000)?;
    let model = Arc::new(Model::new(
        clusters,
        templates,
        args.policies,
        args.namespaces,
    ));
    let timeout = Duration::from_secs(args.timeout_secs);
    let per_t = |kib: u64| kib as f64 / templates as f64;
    eprintln!("== {clusters} clusters, {templates} templates");
    let mut table = Table::new(format!(
        "N = {clusters} clusters, T = {templates} templates"
    ));

    let tmp = match &args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir()?,
    };
    let (_tmp, root) = if args.keep_data_dir {
        (None, tmp.keep())
    } else {
        let root = tmp.path().to_owned();
        (Some(tmp), root)
    };
    let data_dir = root.join("hub");
    if args.keep_data_dir {
        eprintln!("keeping the hub's data in {}", data_dir.display());
    }
    let binary = support::hub_binary(&args.hub_profile);
    let mut hub_args = args.hub_arg.clone();
    // Every simulated agent connects from this one address; real members have their own.
    if !hub_args
        .iter()
        .any(|a| a.starts_with("--max-connections-per-ip"))
    {
        hub_args.push(format!("--max-connections-per-ip={}", clusters + 1000));
    }
    let mut hub = HubProcess::start(&binary, &data_dir, &hub_args).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_empty = support::rss_kib(hub.pid);
    let watchdog = support::rss_watchdog(hub.pid, args.max_hub_rss_mib * 1024);
    eprintln!(
        "hub {} pid {}: RSS {:.0} MiB",
        binary.display(),
        hub.pid,
        mib(rss_empty)
    );

    // Clusters.
    let t0 = Instant::now();
    let specs: Vec<ClusterSpec> = (0..clusters).map(|i| model.cluster_spec(i)).collect();
    let enrolled = support::register_and_enroll(&hub.hub, &specs, args.register_concurrency)
        .await
        .context("registering clusters")?;
    let register_time = t0.elapsed();
    eprintln!(
        "registered and enrolled {clusters} clusters in {:.1}s",
        register_time.as_secs_f64()
    );
    let t0 = Instant::now();
    let mut agents: Agents<BenchMember> = Agents::new();
    agents
        .start(
            &enrolled,
            &enrolled.creds,
            Duration::from_secs(args.heartbeat_secs),
            args.connect_wave,
            Duration::from_secs(120),
            |_| BenchMember::default(),
        )
        .await?;
    let connect_time = t0.elapsed();
    support::wait_clusters_ready(&hub.client, clusters, timeout).await?;
    eprintln!(
        "{clusters} agents connected in {:.1}s, all clusters Ready after {:.1}s",
        connect_time.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    let rss_connected = support::rss_kib(hub.pid);
    let disk_connected = support::disk_usage(&data_dir);
    table.row(
        format!(
            "register + enroll N clusters ({} in flight) / connect N agents ({} per wave)",
            args.register_concurrency, args.connect_wave
        ),
        format!(
            "{:.1} s / {:.1} s",
            register_time.as_secs_f64(),
            connect_time.as_secs_f64()
        ),
    );
    table.row(
        "hub RSS: empty / N clusters connected; simulator RSS",
        format!(
            "{:.0} / {:.0} MiB; {:.0} MiB",
            mib(rss_empty),
            mib(rss_connected),
            mib(support::rss_kib(std::process::id()))
        ),
    );

    // Namespaces and policies, then the templates.
    for i in 0..args.namespaces {
        create(
            &hub.client,
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": Model::ns(i)}}),
        )
        .await?;
    }
    for p in 0..args.policies {
        let ns = Model::ns(p % args.namespaces);
        create(
            &hub.client,
            &format!("/apis/policy.karmada.io/v1alpha1/namespaces/{ns}/propagationpolicies"),
            &model.policy_object(p),
        )
        .await?;
    }
    eprintln!(
        "creating {templates} templates, {} in flight",
        args.create_concurrency
    );
    let created = AtomicU64::new(0);
    let t_create = Instant::now();
    let mut last_print = Instant::now();
    let mut stream = futures::stream::iter(0..templates)
        .map(|t| {
            let (client, model) = (&hub.client, &model);
            async move {
                let ns = Model::ns(model.policy(t) % model.namespaces);
                create(client, &deployments_path(&ns), &model.template(t)).await
            }
        })
        .buffer_unordered(args.create_concurrency.max(1));
    while let Some(r) = stream.next().await {
        r?;
        let c = created.fetch_add(1, Ordering::Relaxed) + 1;
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            eprintln!(
                "  created {c}/{templates} ({:.0}/s)",
                c as f64 / t_create.elapsed().as_secs_f64()
            );
        }
    }
    drop(stream);
    let create_time = t_create.elapsed();
    eprintln!(
        "created {templates} templates in {:.1}s; waiting for convergence",
        create_time.as_secs_f64()
    );
    table.row(
        format!("create T templates ({} in flight)", args.create_concurrency),
        format!(
            "{:.1} s, {:.0}/s",
            create_time.as_secs_f64(),
            templates as f64 / create_time.as_secs_f64()
        ),
    );

    // 1. Cold convergence.
    let cold = converge("cold convergence", &model, &agents, &mut hub, timeout).await?;
    let cold_from_first = t_create.elapsed();
    table.row(
        "1. cold convergence: last template created → all Works applied in all members",
        format!(
            "{:.1} s ({:.1} s from the first create)",
            cold.as_secs_f64(),
            cold_from_first.as_secs_f64()
        ),
    );
    let check_cold = verify(&model, &agents)?;
    table.row("check after cold convergence", &check_cold);

    // 4. Memory, store and idle CPU.
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let rss_converged = support::rss_kib(hub.pid);
    let disk_converged = support::disk_usage(&data_dir);
    table.row(
        format!(
            "4. hub RSS {} s after convergence; per template: (converged − connected) / T",
            args.settle_secs
        ),
        format!(
            "{:.0} MiB; {:.1} KiB",
            mib(rss_converged),
            per_t(rss_converged.saturating_sub(rss_connected))
        ),
    );
    table.row(
        "4. store on disk: connected / converged; per template (converged − connected) / T",
        format!(
            "{:.0} / {:.0} MiB; {:.1} KiB",
            disk_connected as f64 / 1048576.0,
            disk_converged as f64 / 1048576.0,
            per_t(disk_converged.saturating_sub(disk_connected) / 1024)
        ),
    );
    eprintln!("measuring hub CPU over {} s idle", args.idle_secs);
    let ticks0 = support::cpu_ticks(hub.pid)?;
    let idle_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let idle_cpu = (support::cpu_ticks(hub.pid)? - ticks0) as f64 / support::TICKS_PER_SECOND;
    let idle_wall = idle_started.elapsed().as_secs_f64();
    table.row(
        format!(
            "4. hub CPU per idle minute (N agents heartbeating every {} s, over {idle_wall:.0} s)",
            args.heartbeat_secs
        ),
        format!(
            "{:.2} CPU-s ({:.1}% of one core)",
            idle_cpu * 60.0 / idle_wall,
            idle_cpu / idle_wall * 100.0
        ),
    );

    // 2. One change at a time, idle, then under churn.
    let probes = probe_templates(&model, args.changes);
    let change_timeout = Duration::from_secs(args.change_timeout_secs);
    let idle = measure_changes(
        "idle",
        hub.pid,
        &hub.client,
        &model,
        &agents,
        &probes,
        change_timeout,
    )
    .await?;
    table.row(
        "2. one template change → applied in all its members, idle: p50 / p99 / max",
        idle.summary(),
    );
    let rate = templates as f64 * args.churn_percent / 100.0;
    let stats = Arc::new(Churn::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let churner = tokio::spawn(churn(
        hub.client.clone(),
        model.clone(),
        probes.iter().copied().collect(),
        rate,
        stats.clone(),
        stop.clone(),
    ));
    let churn_started = Instant::now();
    // Let the churn reach its steady rate before measuring.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let churned = measure_changes(
        "churn",
        hub.pid,
        &hub.client,
        &model,
        &agents,
        &probes,
        change_timeout,
    )
    .await;
    stop.cancel();
    let _ = churner.await;
    let churn_secs = churn_started.elapsed().as_secs_f64();
    let churned = churned?;
    table.row(
        format!(
            "2. same, with {}% of templates changing per second ({rate:.0}/s wanted, {:.1}/s written, {} failed, {} skipped at 64 in flight)",
            args.churn_percent,
            stats.done.load(Ordering::Relaxed) as f64 / churn_secs,
            stats.failed.load(Ordering::Relaxed),
            stats.skipped.load(Ordering::Relaxed),
        ),
        churned.summary(),
    );
    let drained = converge("after churn", &model, &agents, &mut hub, timeout).await?;
    let check_churn = verify(&model, &agents)?;
    table.row(
        "churn stopped → every member up to date",
        format!("{:.1} s; {check_churn}", drained.as_secs_f64()),
    );

    // 3. A cluster joins policy 0's group.
    let t_join = Instant::now();
    let joined = support::register_and_enroll(&hub.hub, &[Model::join_spec()], 1).await?;
    let mut join_agent = Agents::new();
    join_agent
        .start(
            &joined,
            &joined.creds,
            Duration::from_secs(args.heartbeat_secs),
            1,
            Duration::from_secs(120),
            |_| BenchMember::default(),
        )
        .await?;
    let join_connected = t_join.elapsed();
    model.joined.store(true, Ordering::Relaxed);
    agents.agents.append(&mut join_agent.agents);
    let join_expected = model.expected()[model.join_index()].len();
    converge("join", &model, &agents, &mut hub, timeout).await?;
    let join_time = t_join.elapsed();
    table.row(
        format!("3. new cluster joins policy p0's group: registration → its {join_expected} Deployments applied"),
        format!(
            "{:.1} s (agent connected after {:.1} s)",
            join_time.as_secs_f64(),
            join_connected.as_secs_f64()
        ),
    );
    let check_join = verify(&model, &agents)?;
    table.row("check after the join", &check_join);
    let rss_end = support::rss_kib(hub.pid);
    table.row(
        "hub RSS at the end / this simulator's RSS (N agents and members)",
        format!(
            "{:.0} MiB / {:.0} MiB",
            mib(rss_end),
            mib(support::rss_kib(std::process::id()))
        ),
    );
    println!();

    watchdog.abort();
    agents.stop().await;
    join_agent.stop().await;
    hub.stop().await;
    Ok(PointResult {
        clusters,
        templates,
        idle,
        churned,
        table: table.0,
    })
}

/// Waits until `n` Clusters report Ready with their API enablements.
/// Resolves on Ctrl-C or SIGTERM (to an error naming the signal).
async fn interrupted() -> Result<anyhow::Error> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(anyhow::anyhow!("SIGINT")),
        _ = term.recv() => Ok(anyhow::anyhow!("SIGTERM")),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = Args::parse();
    if args.quick {
        args.clusters = 50;
        args.templates = 1_000;
        args.changes = 40;
        args.idle_secs = 10;
        args.settle_secs = 3;
        args.timeout_secs = args.timeout_secs.min(300);
    }
    let points: Vec<(usize, usize)> = if args.all {
        REFERENCE_POINTS.to_vec()
    } else {
        vec![(args.clusters, args.templates)]
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let header = format!(
        "Machine: {}\nDate: {}\nCommand: `{command}`\nHub: `{}` ({} build); {} policies over {} namespaces; agent heartbeat {} s\n",
        support::machine(),
        jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC"),
        support::hub_binary(&args.hub_profile).display(),
        args.hub_profile,
        args.policies,
        args.namespaces,
        args.heartbeat_secs,
    );
    println!("{header}");
    let mut results = Vec::new();
    for (n, t) in points {
        // On Ctrl-C or SIGTERM the run is dropped, which kills the hub and removes its data.
        let run = tokio::select! {
            r = run_point(&args, n, t) => r,
            s = interrupted() => Err(s.unwrap_or_else(|e| e).context("interrupted")),
        };
        match run {
            Ok(r) => results.push(r),
            Err(e) => {
                println!("\nFAILED: {e:#}\n");
                eprintln!("run failed: {e:#}");
                return Err(e);
            }
        }
    }
    let find = |n: usize, t: usize| results.iter().find(|r| r.clusters == n && r.templates == t);
    if let (Some(small), Some(large)) = (find(1_000, 10_000), find(1_000, 100_000)) {
        let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64().max(1e-9);
        println!(
            "5. one change as T grows, (1,000, 100,000) / (1,000, 10,000): idle p50 {:.2}x, p99 {:.2}x; under churn p50 {:.2}x, p99 {:.2}x\n",
            ratio(small.idle.p(0.5), large.idle.p(0.5)),
            ratio(small.idle.p(0.99), large.idle.p(0.99)),
            ratio(small.churned.p(0.5), large.churned.p(0.5)),
            ratio(small.churned.p(0.99), large.churned.p(0.99)),
        );
    }
    if results.len() > 1 {
        println!("All points:\n");
        for r in &results {
            println!("{}", r.table);
        }
    }
    if results
        .iter()
        .any(|r| r.idle.timeouts + r.churned.timeouts > 0)
    {
        bail!("some measured changes timed out");
    }
    Ok(())
}
