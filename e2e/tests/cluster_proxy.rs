//! The cluster proxy end to end: plain kubectl against a real member through the hub
//! (`flotillactl kubeconfig cluster`), over the agent's own connection: get, watch, logs -f,
//! attach, exec and a 10 MB port-forward; the hub's RBAC for `clusters/proxy` and the member's RBAC
//! for the impersonated `flotilla:<user>`; the agent's guard rails refusing exec by default
//! and the whole proxy when it is off; every proxied request in the audit log.
#![allow(clippy::unwrap_used, missing_docs)]

mod agent_support;

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use agent_support::{AgentProcess, HubProcess, wait_for};
use anyhow::{Context, Result, ensure};
use flotilla_e2e::clusters::{ClusterOptions, MemberCluster, clusters_root, kubectl_path};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// The hub's proxy idle timeout in this test.
const IDLE: Duration = Duration::from_secs(8);

/// Runs kubectl with `kubeconfig`; returns (success, stdout, stderr).
async fn kubectl_as(kubeconfig: &Path, args: &[&str]) -> Result<(bool, String, String)> {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(kubectl_path())
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .output(),
    )
    .await
    .with_context(|| format!("kubectl {} timed out", args.join(" ")))??;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// kubectl that must succeed; returns stdout.
async fn ok(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let (success, out, err) = kubectl_as(kubeconfig, args).await?;
    ensure!(success, "kubectl {} failed: {err}", args.join(" "));
    Ok(out)
}

/// A pod port the member's KWOK forwards to the same port on 127.0.0.1 (kind/cluster's
/// default `--port-forward 8000-8999`) that is free here.
fn forwardable_listener() -> Result<std::net::TcpListener> {
    (8000..9000)
        .find_map(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
        .context("no free port in 8000-8999")
}

/// `kubectl port-forward pod/POD LOCAL:pod_port` through `kubeconfig`, once it listens;
/// returns the process and the local address.
async fn port_forward(
    kubeconfig: &Path,
    pod: &str,
    pod_port: u16,
) -> Result<(tokio::process::Child, String)> {
    let local = agent_support::free_local_address()?;
    let local_port = local.rsplit(':').next().unwrap().to_owned();
    let mut forward = tokio::process::Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "port-forward",
            &format!("pod/{pod}"),
            &format!("{local_port}:{pod_port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(forward.stdout.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("port-forward did not start")??;
    // kubectl prints a line per connection: keep reading, or it dies writing.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((forward, local))
}

/// One CRI-format line for the member's pod log file.
fn cri_line(text: &str) -> String {
    format!(
        "{} stdout F {text}\n",
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_reaches_a_member_through_the_hub() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let audit = tmp.path().join("audit.log");
    let hub = HubProcess::start_with(
        &tmp.path().join("hub"),
        40,
        &[
            "--audit-log-path",
            audit.to_str().unwrap(),
            "--proxy-idle-timeout-seconds",
            &IDLE.as_secs().to_string(),
        ],
    )
    .await?;
    let member = MemberCluster::create("px", ClusterOptions::with_nodes(1)).await?;
    let reg = hub.register("px").await?;
    let rails_all = r#"{"proxy": {"allow": ["read", "logs", "exec", "port-forward"]}}"#;
    let mut agent = AgentProcess::start_with(
        &reg,
        member.kubeconfig(),
        &tmp.path().join("px"),
        &["--guard-rails", rails_all],
    )
    .await?;
    wait_for("px Ready", Duration::from_secs(90), || async {
        Ok((hub.ready("px").await? == "True").then_some(()))
    })
    .await?;

    // In the member: the hub admin, as the agent impersonates it, may do everything; a pod.
    let m = member.kubeconfig();
    let admin = ok(
        &hub.kubeconfig,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    )
    .await?;
    ok(
        m,
        &[
            "create",
            "clusterrolebinding",
            "hub-admin",
            "--clusterrole=cluster-admin",
            &format!("--user=flotilla:{admin}"),
        ],
    )
    .await?;
    ok(
        m,
        &[
            "create",
            "deployment",
            "web",
            "--image=registry.k8s.io/pause:3.10",
        ],
    )
    .await?;
    ok(m, &["rollout", "status", "deployment/web", "--timeout=90s"]).await?;
    let pod = ok(
        m,
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ],
    )
    .await?;
    ensure!(!pod.is_empty(), "no pod in the member");

    // 1. A kubeconfig for the member: get, and a watch that streams a change.
    let px = tmp.path().join("px.kubeconfig");
    hub.ctl(&["kubeconfig", "cluster", "px", "--out", px.to_str().unwrap()])
        .await?;
    let pods = ok(&px, &["get", "pods", "-A", "-o", "name"]).await?;
    ensure!(pods.contains(&format!("pod/{pod}")), "{pods}");
    let nodes = ok(&px, &["get", "nodes", "-o", "name"]).await?;
    ensure!(
        nodes.contains("node/"),
        "the member's nodes, not the hub's: {nodes}"
    );
    let mut watch = tokio::process::Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(&px)
        .args(["get", "configmaps", "-n", "default", "-w", "-o", "name"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    tokio::time::sleep(Duration::from_secs(2)).await;
    ok(m, &["create", "configmap", "seen-through-the-hub"]).await?;
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = lines.next_line().await? {
            if l.contains("seen-through-the-hub") {
                return Ok::<_, anyhow::Error>(());
            }
        }
        anyhow::bail!("the watch ended")
    })
    .await
    .context("the watch did not stream the new ConfigMap")??;
    drop(watch);

    // 2. logs -f, exec and a 10 MB port-forward.
    let log_file = clusters_root().join(member.name()).join("pod.log");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log_file)?
        .write_all(cri_line("first line").as_bytes())?;
    let logs = ok(&px, &["logs", &pod]).await?;
    ensure!(logs.contains("first line"), "logs: {logs}");
    let mut follow = tokio::process::Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(&px)
        .args(["logs", "-f", &pod])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut flines = tokio::io::BufReader::new(follow.stdout.take().unwrap()).lines();
    tokio::time::sleep(Duration::from_secs(2)).await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log_file)?
        .write_all(cri_line("followed line").as_bytes())?;
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = flines.next_line().await? {
            if l.contains("followed line") {
                return Ok::<_, anyhow::Error>(());
            }
        }
        anyhow::bail!("logs -f ended")
    })
    .await
    .context("logs -f did not stream the appended line")??;
    drop(follow);
    // attach: the member's KWOK streams lines appended to the pod log.
    let mut attach = tokio::process::Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(&px)
        .args(["attach", &pod])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut alines = tokio::io::BufReader::new(attach.stdout.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            std::fs::OpenOptions::new()
                .append(true)
                .open(&log_file)?
                .write_all(cri_line("attached line").as_bytes())?;
            match tokio::time::timeout(Duration::from_secs(2), alines.next_line()).await {
                Ok(Ok(Some(l))) if l.contains("attached line") => return Ok::<_, anyhow::Error>(()),
                Ok(Ok(None)) => anyhow::bail!("attach ended"),
                Ok(Err(e)) => return Err(e.into()),
                _ => {}
            }
        }
    })
    .await
    .context("attach did not stream an appended line")??;
    drop(attach);
    let out = ok(&px, &["exec", &pod, "--", "echo", "ok"]).await?;
    ensure!(out.trim() == "ok", "exec printed {out:?}");
    // The same over SPDY, kubectl's older protocol.
    let spdy = tokio::process::Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(&px)
        .args(["exec", &pod, "--", "echo", "spdy"])
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        .output()
        .await?;
    ensure!(
        spdy.status.success() && String::from_utf8_lossy(&spdy.stdout).trim() == "spdy",
        "exec over SPDY: {}",
        String::from_utf8_lossy(&spdy.stderr)
    );

    // flotillactl across clusters, and its logs/exec.
    let ctl = |args: &[&str]| {
        let mut c = tokio::process::Command::new(agent_support::bin("flotillactl"));
        c.arg("--kubeconfig")
            .arg(&hub.kubeconfig)
            .args(args)
            .env("KUBECTL", kubectl_path());
        c
    };
    let table = ctl(&["get", "pods", "-A", "--clusters", "all"])
        .output()
        .await?;
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    ensure!(
        table.starts_with("CLUSTER ")
            && table
                .lines()
                .any(|l| l.starts_with("px ") && l.contains(&pod)),
        "flotillactl get --clusters all: {table}"
    );
    let out = ctl(&["exec", "--cluster", "px", &pod, "--", "echo", "via-ctl"])
        .output()
        .await?;
    ensure!(
        String::from_utf8_lossy(&out.stdout).trim() == "via-ctl",
        "flotillactl exec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ctl(&["logs", "--cluster", "px", &pod]).output().await?;
    ensure!(
        String::from_utf8_lossy(&out.stdout).contains("first line"),
        "flotillactl logs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ctl(&["get", "pods", "--clusters", "px,missing"])
        .output()
        .await?;
    ensure!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("cluster missing is not registered"),
        "an unknown cluster is named: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let listener = forwardable_listener()?;
    let pod_port = listener.local_addr()?.port();
    let payload: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let want = Sha256::digest(&payload);
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        s.write_all(&payload).await?;
        s.shutdown().await?;
        Ok::<_, anyhow::Error>(())
    });
    let (forward, local) = port_forward(&px, &pod, pod_port).await?;
    // kubectl does not pass the far side's end on to the local connection: read the size sent.
    let mut got = vec![0u8; 10 * 1024 * 1024];
    let mut conn = tokio::net::TcpStream::connect(&local).await?;
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(60), conn.read_exact(&mut got))
        .await
        .context("the port-forward did not carry 10 MB within 60 s")??;
    eprintln!("10 MiB through the port-forward in {:?}", started.elapsed());
    ensure!(
        Sha256::digest(&got) == want,
        "the port-forward carried other bytes than those sent"
    );
    server.await??;
    drop(forward);

    // Both directions at once: 10 MiB sent to an echo server while its echo comes back.
    let listener = forwardable_listener()?;
    let pod_port = listener.local_addr()?.port();
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let echo = tokio::spawn(async move {
        let (s, _) = listener.accept().await?;
        let (mut r, mut w) = s.into_split();
        tokio::io::copy(&mut r, &mut w).await?;
        Ok::<_, anyhow::Error>(())
    });
    let (forward, local) = port_forward(&px, &pod, pod_port).await?;
    let payload: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let want = Sha256::digest(&payload);
    let (mut r, mut w) = tokio::net::TcpStream::connect(&local).await?.into_split();
    let writer = tokio::spawn(async move { w.write_all(&payload).await });
    let mut got = vec![0u8; 10 * 1024 * 1024];
    tokio::time::timeout(Duration::from_secs(60), r.read_exact(&mut got))
        .await
        .context("10 MiB through an echo in both directions did not finish in 60 s")??;
    writer.await??;
    ensure!(Sha256::digest(&got) == want, "the echo came back changed");
    drop(forward);
    echo.abort();

    // A followed log that carries nothing more is closed after the idle timeout, not before
    // (a follow of an empty log gets no answer from the member at all: it ends at the 60 s
    // wait for the head).
    let started = std::time::Instant::now();
    let (_, _, _) = tokio::time::timeout(IDLE * 4, kubectl_as(&px, &["logs", "-f", &pod]))
        .await
        .context("an idle logs -f was not closed")??;
    ensure!(
        started.elapsed() >= IDLE,
        "the idle stream was closed after {:?}",
        started.elapsed()
    );

    // 3. The hub's RBAC: `view` without clusters/proxy is refused by the hub; with it, the
    // member's RBAC refuses the impersonated flotilla:viewer.
    let viewer = tmp.path().join("viewer.kubeconfig");
    hub.ctl(&[
        "create",
        "user",
        "viewer",
        "--out",
        viewer.to_str().unwrap(),
    ])
    .await?;
    hub.kubectl(&[
        "create",
        "clusterrolebinding",
        "viewer-view",
        "--clusterrole=view",
        "--user=viewer",
    ])
    .await?;
    let viewer_px = tmp.path().join("viewer-px.kubeconfig");
    let out = tokio::process::Command::new(agent_support::bin("flotillactl"))
        .arg("--kubeconfig")
        .arg(&viewer)
        .args([
            "kubeconfig",
            "cluster",
            "px",
            "--out",
            viewer_px.to_str().unwrap(),
        ])
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (success, _, err) = kubectl_as(&viewer_px, &["get", "pods"]).await?;
    ensure!(
        !success && err.contains("clusters/proxy") && err.contains("cluster.karmada.io"),
        "the hub must refuse a user without clusters/proxy: {err}"
    );
    hub.kubectl(&[
        "create",
        "clusterrole",
        "proxy-px",
        "--verb=get,list,watch",
        "--resource=clusters.cluster.karmada.io/proxy",
        "--resource-name=px",
    ])
    .await?;
    hub.kubectl(&[
        "create",
        "clusterrolebinding",
        "viewer-proxy",
        "--clusterrole=proxy-px",
        "--user=viewer",
    ])
    .await?;
    let err = wait_for("the member's refusal", Duration::from_secs(30), || async {
        let (success, _, err) = kubectl_as(&viewer_px, &["get", "pods"]).await?;
        ensure!(!success, "flotilla:viewer has no rights in the member");
        Ok(err.contains("\"flotilla:viewer\"").then_some(err))
    })
    .await?;
    ensure!(err.contains("forbidden"), "{err}");
    // Upgrades (exec, attach, port-forward) need `create`, whatever their method (a WebSocket
    // handshake is a GET; kube-apiserver 1.36 authorizes it as `get` on pods/exec, the member
    // below says so when this check is removed).
    // A WebSocket exec handshake as kubectl sends it (kubectl itself would fall back to SPDY,
    // a POST, and show that answer instead).
    let viewer_client = flotilla_e2e::clusters::client_for(&viewer_px).await?;
    let handshake = http::Request::get(format!(
        "/api/v1/namespaces/default/pods/{pod}/exec?command=echo&command=ok&stdout=true"
    ))
    .header("connection", "Upgrade")
    .header("upgrade", "websocket")
    .header("sec-websocket-version", "13")
    .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    .header("sec-websocket-protocol", "v5.channel.k8s.io")
    .body(kube::client::Body::from(Vec::new()))?;
    let resp = viewer_client.send(handshake).await?;
    let status = resp.status();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    ensure!(
        status == 403 && body.contains("cannot create resource") && body.contains("clusters/proxy"),
        "a WebSocket exec needs create on clusters/proxy: {status} {body}"
    );

    // 4. Every proxied request is audited, as the clusters/proxy subresource.
    let audited = std::fs::read_to_string(&audit)?;
    ensure!(
        audited
            .lines()
            .any(|l| l.contains("\"subresource\":\"proxy\"")
                && l.contains("/clusters/px/proxy/api/v1/namespaces/default/pods")),
        "no audit entry for the proxied requests"
    );

    // The hub counts proxied requests by code (101: upgraded).
    let metrics = hub.kubectl(&["get", "--raw", "/metrics"]).await?;
    for code in ["101", "200", "403"] {
        ensure!(
            metrics.lines().any(|l| l.starts_with(&format!(
                "flotilla_hub_proxy_requests_total{{code=\"{code}\"}} "
            ))),
            "no proxied request with code {code} counted"
        );
    }

    // 5. The member's guard rails: exec is off by default, and the proxy can be off.
    agent.restart_with("--guard-rails", "").await?;
    let err = wait_for(
        "exec refused by the default rails",
        Duration::from_secs(60),
        || async {
            let (success, _, err) = kubectl_as(&px, &["exec", &pod, "--", "echo", "ok"]).await?;
            Ok((!success && err.contains("proxy.allow")).then_some(err))
        },
    )
    .await?;
    ensure!(err.contains("exec"), "{err}");
    ok(&px, &["get", "pods"])
        .await
        .context("reading stays allowed by default")?;
    agent
        .restart_with("--guard-rails", r#"{"proxy": {"enabled": false}}"#)
        .await?;
    wait_for("the proxy off", Duration::from_secs(60), || async {
        let (success, _, err) = kubectl_as(&px, &["get", "pods"]).await?;
        Ok(
            (!success && (err.contains("ServiceUnavailable") || err.contains("is off")))
                .then_some(()),
        )
    })
    .await?;
    let raw = hub
        .kubectl(&[
            "get",
            "--raw",
            "/apis/cluster.karmada.io/v1alpha1/clusters/px/proxy/version",
        ])
        .await;
    let e = raw.expect_err("the proxy is off");
    ensure!(
        e.to_string().contains("proxy.enabled"),
        "the hub says why: {e}"
    );
    Ok(())
}
