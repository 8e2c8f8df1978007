//! Agent security: a cluster's credential cannot receive or report for another cluster,
//! bootstrap tokens are single-use and bound to their cluster, a wrong CA hash makes the
//! agent refuse the hub, and unregistering revokes the credential. No member cluster is
//! needed: the tests speak the agent protocol directly.

mod agent_support;

use std::time::Duration;

use agent_support::{HubProcess, app_manifests, bin};
use anyhow::{Context, Result, bail, ensure};
use flotilla_agent::connect::{self, ClientIdentity};
use flotilla_proto::v1::{AgentMessage, Hello, HubMessage, WorkStatus, agent_message, hub_message};
use serde_json::Value;
use tokio::sync::mpsc;
use tonic::Code;

fn hello(cluster: &str) -> AgentMessage {
    AgentMessage {
        message: Some(agent_message::Message::Hello(Hello {
            cluster_name: cluster.into(),
            resume_revision: 0,
            agent_version: "test".into(),
        })),
    }
}

/// Opens a work stream with `id` claiming `cluster`; returns the sender and the stream.
async fn open(
    addr: &str,
    ca: &str,
    id: &ClientIdentity,
    cluster: &str,
) -> Result<(mpsc::Sender<AgentMessage>, tonic::Streaming<HubMessage>), tonic::Status> {
    let ch = connect::authenticated(addr, ca, id)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let (tx, rx) = mpsc::channel(16);
    tx.send(hello(cluster))
        .await
        .map_err(|_| tonic::Status::internal("send"))?;
    let stream = connect::client(ch)
        .work_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok((tx, stream))
}

/// Reads messages until the snapshot ends; returns the Work names in it.
async fn snapshot(stream: &mut tonic::Streaming<HubMessage>) -> Result<Vec<String>, tonic::Status> {
    let mut names = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .map_err(|_| tonic::Status::deadline_exceeded("no snapshot"))??;
        match m.and_then(|m| m.message) {
            Some(hub_message::Message::Upsert(u)) => names.push(u.work_name),
            Some(hub_message::Message::SnapshotEnd(_)) => return Ok(names),
            Some(_) => {}
            None => return Err(tonic::Status::aborted("stream ended")),
        }
    }
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_credentials_are_confined_to_their_cluster() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir()?;
    let hub = HubProcess::start(&tmp.path().join("hub"), 40).await?;
    let ra = hub.register("sec-a").await?;
    let rb = hub.register("sec-b").await?;
    let addr = field(&ra, "hubAddress").to_owned();

    // A wrong CA hash: the agent refuses to talk to the hub at all.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(bin("flotilla-agent"))
            .args([
                "--hub",
                &addr,
                "--cluster-name",
                "sec-a",
                "--token",
                field(&ra, "token"),
                "--ca-hash",
                &wrong,
            ])
            .arg("--kubeconfig")
            .arg(&hub.kubeconfig)
            .arg("--state-dir")
            .arg(tmp.path().join("wrong"))
            .output(),
    )
    .await
    .context("the agent with a wrong CA hash did not exit")??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "the agent must fail with a wrong CA hash"
    );
    ensure!(
        stderr.contains("refusing to connect"),
        "clear message expected, got: {stderr}"
    );
    ensure!(
        !tmp.path().join("wrong/tls.crt").exists(),
        "no credential may be stored"
    );
    // The token was not consumed by the refused attempt.
    let ca = connect::discover(&addr, field(&ra, "caHash")).await?;

    // B's token cannot enroll A.
    match connect::enroll(&addr, &ca, "sec-a", field(&rb, "token")).await {
        Err(connect::ConnectError::Rpc(s)) if s.code() == Code::PermissionDenied => {}
        other => bail!("B's token enrolled A: {other:?}"),
    }
    let ea = connect::enroll(&addr, &ca, "sec-a", field(&ra, "token")).await?;
    let eb = connect::enroll(&addr, &ca, "sec-b", field(&rb, "token")).await?;
    // A reused token is refused with a clear message.
    match connect::enroll(&addr, &ca, "sec-a", field(&ra, "token")).await {
        Err(connect::ConnectError::Rpc(s))
            if s.code() == Code::Unauthenticated && s.message().contains("already used") => {}
        other => bail!("a reused token must be refused: {other:?}"),
    }
    let id_a = ClientIdentity {
        cert_pem: ea.cert_pem,
        key_pem: ea.key_pem,
    };
    let id_b = ClientIdentity {
        cert_pem: eb.cert_pem,
        key_pem: eb.key_pem,
    };

    hub.ctl_stdin(
        &["work", "put", "--cluster", "sec-a", "-f", "-"],
        &app_manifests("shop", 1, "red"),
    )
    .await?;

    // B's credential claiming to be A is refused.
    match open(&addr, &ca, &id_b, "sec-a").await {
        Err(s) if s.code() == Code::PermissionDenied => {}
        Err(s) => bail!("expected PermissionDenied, got {s:?}"),
        Ok((_, mut st)) => match snapshot(&mut st).await {
            Err(s) if s.code() == Code::PermissionDenied => {}
            other => bail!("B received A's stream: {other:?}"),
        },
    }
    // B's own stream carries none of A's Work.
    let (tx_b, mut st_b) = open(&addr, &ca, &id_b, "sec-b").await?;
    ensure!(
        snapshot(&mut st_b).await?.is_empty(),
        "B must not see A's Works"
    );
    // B reporting status for A's Work name writes nothing into A's Work.
    tx_b.send(AgentMessage {
        message: Some(agent_message::Message::Status(WorkStatus {
            work_name: "shop-web-deployment".into(),
            applied: false,
            message: "forged".into(),
            ..Default::default()
        })),
    })
    .await?;
    // A sees its own Works.
    let (_tx_a, mut st_a) = open(&addr, &ca, &id_a, "sec-a").await?;
    let mut names = snapshot(&mut st_a).await?;
    names.sort();
    ensure!(
        names == ["shop-settings-configmap", "shop-web-deployment"],
        "A's snapshot: {names:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let w: Value = serde_json::from_str(
        &hub.kubectl(&[
            "get",
            "work",
            "-n",
            "karmada-es-sec-a",
            "shop-web-deployment",
            "-o",
            "json",
        ])
        .await?,
    )?;
    ensure!(
        w.get("status")
            .is_none_or(|s| !s.to_string().contains("forged")),
        "B wrote A's status: {w}"
    );

    // No certificate at all: no stream.
    let ch = connect::authenticated(
        &addr,
        &ca,
        &ClientIdentity {
            cert_pem: String::new(),
            key_pem: String::new(),
        },
    )
    .await;
    ensure!(ch.is_err(), "an empty identity must not make a channel");

    // Unregistering A closes its stream and revokes its credential.
    hub.ctl(&["unregister", "cluster", "sec-a"]).await?;
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match st_a.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(s) => return Some(s.code()),
            }
        }
    })
    .await
    .context("A's stream stayed open after unregistering")?;
    ensure!(
        matches!(
            ended,
            None | Some(Code::PermissionDenied | Code::Unauthenticated)
        ),
        "stream end: {ended:?}"
    );
    match open(&addr, &ca, &id_a, "sec-a").await {
        Err(s) if s.code() == Code::Unauthenticated => {}
        Err(s) => bail!("expected Unauthenticated after unregister, got {s:?}"),
        Ok(_) => bail!("a revoked credential opened a stream"),
    }
    // Registering A again does not revive the old credential (new uid).
    hub.register("sec-a").await?;
    match open(&addr, &ca, &id_a, "sec-a").await {
        Err(s) if s.code() == Code::Unauthenticated => {}
        other => bail!(
            "an old credential must stay revoked after re-registering: {:?}",
            other.err()
        ),
    }
    Ok(())
}
