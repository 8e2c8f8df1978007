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

/// Opens a stream with `id` claiming `cluster` and expects the hub to refuse it at once with
/// `code`; returns the refusal's message. `what` names the case.
async fn refused(
    addr: &str,
    ca: &str,
    id: &ClientIdentity,
    cluster: &str,
    code: Code,
    what: &str,
) -> Result<String> {
    match open(addr, ca, id, cluster).await {
        Err(s) if s.code() == code => Ok(s.message().to_owned()),
        Err(s) => bail!("{what}: expected {code:?}, got {s:?}"),
        Ok(_) => bail!("{what}: the hub opened the stream"),
    }
}

/// A client of the hub's agent service over TLS verified against `ca`, with `id` as client
/// certificate if given, for requests the agent library would never send.
async fn raw_client(
    addr: &str,
    ca: &str,
    id: Option<&ClientIdentity>,
) -> Result<flotilla_proto::v1::agent_hub_client::AgentHubClient<tonic::transport::Channel>> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("127.0.0.1");
    if let Some(id) = id {
        tls = tls.identity(Identity::from_pem(&id.cert_pem, &id.key_pem));
    }
    let ch = Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(connect::client(ch))
}

/// Reads a stream until it ends: `None` for a clean end, else the error code.
async fn end_of(st: &mut tonic::Streaming<HubMessage>) -> Option<Code> {
    loop {
        match st.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => return None,
            Err(s) => return Some(s.code()),
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
    let (id_a, id_b) = (ea, eb);

    hub.ctl_stdin(
        &["work", "put", "--cluster", "sec-a", "-f", "-"],
        &app_manifests("shop", 1, "red"),
    )
    .await?;

    // B's credential claiming to be A is refused.
    refused(
        &addr,
        &ca,
        &id_b,
        "sec-a",
        Code::PermissionDenied,
        "B claiming A",
    )
    .await?;
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

    // B renews its certificate with a new key pair; the new one opens streams.
    let (_, old_not_after) = connect::validity(&id_b.cert_pem)?;
    let renewed = connect::renew(&addr, &ca, "sec-b", &id_b).await?;
    ensure!(
        renewed.key_pem != id_b.key_pem && renewed.cert_pem != id_b.cert_pem,
        "a renewal must bring a new key pair and certificate"
    );
    ensure!(
        connect::validity(&renewed.cert_pem)?.1 >= old_not_after,
        "the renewed certificate expires earlier"
    );
    drop((tx_b, st_b));
    let (_tx_b2, mut st_b2) = open(&addr, &ca, &renewed, "sec-b").await?;
    snapshot(&mut st_b2).await?;
    // `flotillactl revoke` closes the stream within 5 s; neither certificate works after it,
    // for streams or renewals.
    let revoked_at = std::time::Instant::now();
    hub.ctl(&["revoke", "cluster", "sec-b"]).await?;
    let ended = tokio::time::timeout(Duration::from_secs(5), end_of(&mut st_b2))
        .await
        .context("B's stream stayed open for 5 s after `flotillactl revoke`")?;
    eprintln!(
        "revoked stream ended after {:?}: {ended:?}",
        revoked_at.elapsed()
    );
    for (what, id) in [("renewed", &renewed), ("first", &id_b)] {
        let message = refused(&addr, &ca, id, "sec-b", Code::Unauthenticated, what).await?;
        ensure!(
            message.contains("revoked"),
            "B's {what} certificate: {message}"
        );
    }
    match connect::renew(&addr, &ca, "sec-b", &renewed).await {
        Err(connect::ConnectError::Rpc(s)) if s.code() == Code::Unauthenticated => {}
        other => bail!("a revoked certificate was renewed: {:?}", other.map(|_| ())),
    }
    // A new token enrolls B again, in the new generation. Before that, requests without a
    // signing request or with a broken one are refused and do not spend the token.
    let rb2 = hub.register("sec-b").await?;
    for (csr, code) in [
        (String::new(), Code::FailedPrecondition),
        ("-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgcmVxdWVzdA==\n-----END CERTIFICATE REQUEST-----\n".to_owned(), Code::InvalidArgument),
        ("x".repeat(17 * 1024), Code::InvalidArgument),
    ] {
        let r = raw_client(&addr, &ca, None)
            .await?
            .enroll(flotilla_proto::v1::EnrollRequest {
                cluster_name: "sec-b".into(),
                token: field(&rb2, "token").into(),
                csr_pem: csr.clone(),
            })
            .await;
        match r {
            Err(s) if s.code() == code => {}
            other => bail!("enrolling with CSR {:?}...: expected {code:?}, got {other:?}", &csr[..csr.len().min(20)]),
        }
    }
    let id_b3 = connect::enroll(&addr, &ca, "sec-b", field(&rb2, "token")).await?;
    // A renewal with a broken signing request is refused.
    match raw_client(&addr, &ca, Some(&id_b3))
        .await?
        .renew(flotilla_proto::v1::RenewRequest {
            csr_pem: "not a request".into(),
        })
        .await
    {
        Err(s) if s.code() == Code::InvalidArgument => {}
        other => bail!("a renewal with a broken request: {other:?}"),
    }
    let (_tx_b3, mut st_b3) = open(&addr, &ca, &id_b3, "sec-b").await?;
    snapshot(&mut st_b3).await?;
    // Registering B again revokes that credential too, its open stream included.
    hub.register("sec-b").await?;
    let ended = tokio::time::timeout(Duration::from_secs(5), end_of(&mut st_b3))
        .await
        .context("B's stream stayed open for 5 s after registering B again")?;
    ensure!(
        matches!(
            ended,
            None | Some(Code::PermissionDenied | Code::Unauthenticated)
        ),
        "stream end: {ended:?}"
    );
    refused(
        &addr,
        &ca,
        &id_b3,
        "sec-b",
        Code::Unauthenticated,
        "B registered again",
    )
    .await?;

    // Unregistering A closes its stream and revokes its credential.
    hub.ctl(&["unregister", "cluster", "sec-a"]).await?;
    let ended = tokio::time::timeout(Duration::from_secs(20), end_of(&mut st_a))
        .await
        .context("A's stream stayed open after unregistering")?;
    ensure!(
        matches!(
            ended,
            None | Some(Code::PermissionDenied | Code::Unauthenticated)
        ),
        "stream end: {ended:?}"
    );
    refused(
        &addr,
        &ca,
        &id_a,
        "sec-a",
        Code::Unauthenticated,
        "A unregistered",
    )
    .await?;
    // Registering A again does not revive the old credential (new uid).
    hub.register("sec-a").await?;
    refused(
        &addr,
        &ca,
        &id_a,
        "sec-a",
        Code::Unauthenticated,
        "A registered anew",
    )
    .await?;
    Ok(())
}

/// A server that answers Discover with the real hub's CA followed by its own, as a man in the
/// middle would, and records whether anyone tried to enroll with it.
struct Impostor {
    bundle: String,
    enrolls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

type Stream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<HubMessage, tonic::Status>> + Send>>;

type ProxyStream<T> =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl flotilla_proto::v1::agent_hub_server::AgentHub for Impostor {
    async fn discover(
        &self,
        _: tonic::Request<flotilla_proto::v1::DiscoverRequest>,
    ) -> Result<tonic::Response<flotilla_proto::v1::DiscoverResponse>, tonic::Status> {
        Ok(tonic::Response::new(flotilla_proto::v1::DiscoverResponse {
            ca_pem: self.bundle.clone(),
        }))
    }

    async fn enroll(
        &self,
        _: tonic::Request<flotilla_proto::v1::EnrollRequest>,
    ) -> Result<tonic::Response<flotilla_proto::v1::EnrollResponse>, tonic::Status> {
        self.enrolls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(tonic::Status::unimplemented("impostor"))
    }

    async fn renew(
        &self,
        _: tonic::Request<flotilla_proto::v1::RenewRequest>,
    ) -> Result<tonic::Response<flotilla_proto::v1::RenewResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("impostor"))
    }

    type WorkStreamStream = Stream;

    async fn work_stream(
        &self,
        _: tonic::Request<tonic::Streaming<AgentMessage>>,
    ) -> Result<tonic::Response<Stream>, tonic::Status> {
        Err(tonic::Status::unimplemented("impostor"))
    }

    type ProxyListenStream = ProxyStream<flotilla_proto::v1::ProxyRequest>;

    async fn proxy_listen(
        &self,
        _: tonic::Request<flotilla_proto::v1::ProxyListenRequest>,
    ) -> Result<tonic::Response<Self::ProxyListenStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("impostor"))
    }

    type ProxyExchangeStream = ProxyStream<flotilla_proto::v1::ProxyDown>;

    async fn proxy_exchange(
        &self,
        _: tonic::Request<tonic::Streaming<flotilla_proto::v1::ProxyUp>>,
    ) -> Result<tonic::Response<Self::ProxyExchangeStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("impostor"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_hub_adding_its_own_ca_is_refused() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir()?;
    let hub = HubProcess::start(&tmp.path().join("hub"), 40).await?;
    let reg = hub.register("mitm").await?;
    let real_ca = connect::discover(field(&reg, "hubAddress"), field(&reg, "caHash")).await?;

    // The impostor's own CA and serving certificate.
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let own_ca = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::from_ca_cert_der(own_ca.der(), &ca_key)?;
    let key = rcgen::KeyPair::generate()?;
    let serving =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&key, &issuer)?;
    let enrolls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let impostor = Impostor {
        bundle: format!("{real_ca}{}", own_ca.pem()),
        enrolls: enrolls.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mitm_addr = listener.local_addr()?.to_string();
    let tls = tonic::transport::ServerTlsConfig::new().identity(
        tonic::transport::Identity::from_pem(serving.pem(), key.serialize_pem()),
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .tls_config(tls)?
            .add_service(flotilla_proto::v1::agent_hub_server::AgentHubServer::new(
                impostor,
            ))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    // The agent, given the real hub's CA hash and a real token, is pointed at the impostor.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(bin("flotilla-agent"))
            .args([
                "--hub",
                &mitm_addr,
                "--cluster-name",
                "mitm",
                "--token",
                field(&reg, "token"),
                "--ca-hash",
                field(&reg, "caHash"),
            ])
            .arg("--kubeconfig")
            .arg(&hub.kubeconfig)
            .arg("--state-dir")
            .arg(tmp.path().join("mitm"))
            .output(),
    )
    .await
    .context("the agent facing an impostor did not exit")??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "the agent must refuse the impostor");
    ensure!(
        stderr.contains("not a single certificate"),
        "the agent must say why: {stderr}"
    );
    ensure!(
        enrolls.load(std::sync::atomic::Ordering::SeqCst) == 0,
        "the agent sent its bootstrap token to the impostor"
    );
    ensure!(
        !tmp.path().join("mitm/ca.crt").exists(),
        "nothing may be stored"
    );
    // The token still works against the real hub.
    connect::enroll(
        field(&reg, "hubAddress"),
        &real_ca,
        "mitm",
        field(&reg, "token"),
    )
    .await?;
    Ok(())
}
