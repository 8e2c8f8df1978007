//! The agent's side of the cluster proxy: listens for the hub's proxy requests over its own
//! connection, checks each against the member owners' guard rails, and sends it to the member
//! API server as the impersonated hub user (`flotilla:<user>`), streaming the answer back.
//! Upgraded requests (exec, attach, port-forward) become a byte stream in both directions.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use flotilla_proto::proxy::{
    CHUNK_BYTES, Category, forwarded_request_header, impersonated, refusal, valid_path,
};
use flotilla_proto::v1::{
    ProxyDown, ProxyEnd, ProxyHeader, ProxyListenRequest, ProxyPolicy, ProxyRequest,
    ProxyResponseHead, ProxyUp, proxy_down, proxy_up,
};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;
use tonic::transport::Channel;
use tracing::Instrument;

use crate::metrics::Metrics;

/// Most proxied requests this agent serves at once (the hub bounds them too).
pub const MAX_EXCHANGES: usize = 32;

/// Most requests answered 429 at once when every place is taken.
const MAX_REFUSALS: usize = 8;

/// How long an ended exchange waits for the hub to take what is queued.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest request body forwarded (the hub's own request limit).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Listens for proxy requests until `shutdown`, reconnecting with backoff.
pub async fn run(
    hub: Channel,
    member: kube::Client,
    policy: ProxyPolicy,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let policy = Arc::new(policy);
    let places = Arc::new(Semaphore::new(MAX_EXCHANGES));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut client = crate::connect::client(hub.clone());
        let listen = client.proxy_listen(ProxyListenRequest {
            policy: Some((*policy).clone()),
        });
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listen => r,
        };
        match stream {
            Ok(resp) => {
                backoff = Duration::from_secs(1);
                tracing::info!(enabled = policy.enabled, allow = ?policy.allow, "cluster proxy listening");
                let mut requests = resp.into_inner();
                loop {
                    let next = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        m = requests.message() => m,
                    };
                    match next {
                        Ok(Some(req)) => {
                            let ctx = Ctx {
                                hub: crate::connect::client(hub.clone()),
                                member: member.clone(),
                                policy: policy.clone(),
                                metrics: metrics.clone(),
                            };
                            let place = places.clone().try_acquire_owned().ok();
                            // Refusing takes a task too: bounded, and beyond it the hub's
                            // wait for the exchange times out.
                            let refusal = match place {
                                Some(_) => None,
                                None => match refusals.clone().try_acquire_owned() {
                                    Ok(r) => Some(r),
                                    Err(_) => continue,
                                },
                            };
                            tokio::spawn(async move {
                                ctx.serve(req, place.is_some()).await;
                                drop((place, refusal));
                            });
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(error = %e, "the cluster proxy stream ended");
                            break;
                        }
                    }
                }
            }
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                tracing::warn!("the hub does not offer the cluster proxy");
                backoff = Duration::from_secs(300);
            }
            Err(s) => tracing::debug!(error = %s, "opening the cluster proxy stream failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// What serving one request needs.
struct Ctx {
    hub: flotilla_proto::v1::agent_hub_client::AgentHubClient<Channel>,
    member: kube::Client,
    policy: Arc<ProxyPolicy>,
    metrics: Arc<Metrics>,
}

/// The messages going up to the hub on one exchange.
struct Up(mpsc::Sender<ProxyUp>);

impl Up {
    async fn send(&self, m: proxy_up::Message) -> bool {
        self.0.send(ProxyUp { message: Some(m) }).await.is_ok()
    }
    async fn head(&self, status: u16, headers: Vec<ProxyHeader>) -> bool {
        self.send(proxy_up::Message::Head(ProxyResponseHead {
            status: u32::from(status),
            headers,
        }))
        .await
    }
    async fn end(&self, error: &str) {
        self.send(proxy_up::Message::End(ProxyEnd {
            error: error.to_owned(),
        }))
        .await;
    }
    /// A complete `Status` answer.
    async fn status(&self, code: u16, reason: &str, message: &str) {
        let body = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code,
        });
        let headers = vec![ProxyHeader {
            name: "content-type".into(),
            value: Bytes::from_static(b"application/json"),
        }];
        if self.head(code, headers).await {
            self.send(proxy_up::Message::Data(Bytes::from(
                serde_json::to_vec(&body).unwrap_or_default(),
            )))
            .await;
        }
        self.end("").await;
    }
}

/// A request the agent answers itself, without asking the member.
#[derive(Debug, PartialEq, Eq)]
struct Refused {
    code: u16,
    reason: &'static str,
    message: String,
}

/// Whether `req` is refused here: by the member owners' policy (whatever the hub said), for
/// lack of a place, or for a path that is not a plain absolute one.
fn refuse(
    policy: &ProxyPolicy,
    req: &ProxyRequest,
    category: Category,
    has_place: bool,
) -> Option<Refused> {
    if let Some(message) = refusal(policy, category) {
        let (code, reason) = if policy.enabled {
            (403, "Forbidden")
        } else {
            (503, "ServiceUnavailable")
        };
        return Some(Refused {
            code,
            reason,
            message,
        });
    }
    if !has_place {
        return Some(Refused {
            code: 429,
            reason: "TooManyRequests",
            message: format!("this member's agent already serves {MAX_EXCHANGES} proxied requests"),
        });
    }
    (!valid_path(&req.path)).then(|| Refused {
        code: 400,
        reason: "BadRequest",
        message: "invalid member path".to_owned(),
    })
}

/// The request to send to the member, as `flotilla:<user>`.
fn member_request(
    req: &ProxyRequest,
    body: Vec<u8>,
) -> Result<http::Request<kube::client::Body>, String> {
    let mut b = http::Request::builder()
        .method(req.method.as_str())
        .uri(req.path.as_str());
    for h in &req.headers {
        let name = h.name.to_ascii_lowercase();
        if let Some(value) = forwarded_request_header(&name, &h.value, req.upgrade) {
            b = b.header(name, value);
        }
    }
    if req.upgrade {
        b = b.header("connection", "Upgrade");
    }
    b = b.header("impersonate-user", impersonated(&req.user));
    for g in &req.groups {
        b = b.header("impersonate-group", impersonated(g));
    }
    b.body(kube::client::Body::from(body))
        .map_err(|e| format!("invalid request: {e}"))
}

fn response_headers(headers: &http::HeaderMap) -> Vec<ProxyHeader> {
    headers
        .iter()
        .map(|(n, v)| ProxyHeader {
            name: n.as_str().to_owned(),
            value: Bytes::copy_from_slice(v.as_bytes()),
        })
        .collect()
}

impl Ctx {
    /// Serves one request: opens its exchange, checks it, forwards it.
    async fn serve(self, req: ProxyRequest, has_place: bool) {
        let (tx, rx) = mpsc::channel(4);
        let up = Up(tx);
        up.send(proxy_up::Message::Open(req.id)).await;
        let mut hub = self.hub.clone();
        let mut down = match hub.proxy_exchange(ReceiverStream::new(rx)).await {
            Ok(r) => r.into_inner(),
            Err(e) => {
                tracing::debug!(error = %e, "opening a proxy exchange failed");
                return;
            }
        };
        let category = Category::of(&req.method, &req.path, req.upgrade);
        let path = req.path.split('?').next().unwrap_or_default();
        let span = tracing::info_span!("proxy", id = req.id, method = %req.method, %path, user = %req.user, %category);
        let code = self
            .forward(&req, category, &up, &mut down, has_place)
            .instrument(span.clone())
            .await;
        self.metrics.proxy_request(category.name(), code);
        tracing::debug!(parent: &span, code, "proxied request done");
        // Dropping the hub's half of the exchange would reset the stream and lose what is
        // still queued up: wait for the hub to close it after taking everything.
        drop(up);
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while let Ok(Some(_)) = down.message().await {}
        })
        .await;
    }

    /// Forwards `req`; returns the status code answered.
    async fn forward(
        &self,
        req: &ProxyRequest,
        category: Category,
        up: &Up,
        down: &mut Streaming<ProxyDown>,
        has_place: bool,
    ) -> u16 {
        if let Some(r) = refuse(&self.policy, req, category, has_place) {
            up.status(r.code, r.reason, &r.message).await;
            return r.code;
        }
        let body = if req.upgrade {
            Vec::new()
        } else {
            match read_body(down).await {
                Ok(b) => b,
                Err((413, msg)) => {
                    up.status(413, "RequestEntityTooLarge", &msg).await;
                    return 413;
                }
                Err((code, msg)) => {
                    tracing::debug!(%msg, "not forwarded");
                    return code;
                }
            }
        };
        let request = match member_request(req, body) {
            Ok(r) => r,
            Err(msg) => {
                up.status(400, "BadRequest", &msg).await;
                return 400;
            }
        };
        let mut resp = match self.member.send(request).await {
            Ok(r) => r,
            Err(e) => {
                up.status(
                    502,
                    "InternalError",
                    &format!("the member API server did not answer: {e}"),
                )
                .await;
                return 502;
            }
        };
        let code = resp.status().as_u16();
        if !up.head(code, response_headers(resp.headers())).await {
            tracing::debug!(code, "the hub closed the exchange before the answer");
            return code;
        }
        self.metrics.proxy_open.fetch_add(1, Ordering::Relaxed);
        if code == 101 {
            match hyper::upgrade::on(&mut resp).await {
                Ok(io) => pipe(hyper_util::rt::TokioIo::new(io), up, down).await,
                Err(e) => up.end(&format!("the member did not upgrade: {e}")).await,
            }
        } else {
            stream_body(resp.into_body(), up, down).await;
        }
        self.metrics.proxy_open.fetch_sub(1, Ordering::Relaxed);
        code
    }
}

/// The request body the hub sends, up to its end; an exchange that ends without saying so is
/// not forwarded.
async fn read_body(down: &mut Streaming<ProxyDown>) -> Result<Vec<u8>, (u16, String)> {
    let mut body = Vec::new();
    loop {
        match down.message().await {
            Ok(Some(ProxyDown {
                message: Some(proxy_down::Message::Data(d)),
            })) => {
                if body.len().saturating_add(d.len()) > MAX_BODY {
                    return Err((
                        413,
                        format!("request bodies are limited to {MAX_BODY} bytes"),
                    ));
                }
                body.extend_from_slice(&d);
            }
            Ok(Some(ProxyDown {
                message: Some(proxy_down::Message::End(e)),
            })) if e.error.is_empty() => return Ok(body),
            Ok(Some(ProxyDown { message: None })) => {}
            _ => return Err((499, "the hub ended the request before its body".to_owned())),
        }
    }
}

/// Streams the member's response body up until it ends or the hub closes the exchange.
async fn stream_body(mut body: kube::client::Body, up: &Up, down: &mut Streaming<ProxyDown>) {
    loop {
        tokio::select! {
            f = body.frame() => match f {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        for chunk in data.chunks(CHUNK_BYTES) {
                            if !up.send(proxy_up::Message::Data(Bytes::copy_from_slice(chunk))).await {
                                return;
                            }
                        }
                    }
                }
                Some(Err(e)) => {
                    up.end(&format!("reading the member's answer: {e}")).await;
                    return;
                }
                None => {
                    up.end("").await;
                    return;
                }
            },
            // The hub ends the exchange when its client goes away.
            m = down.message() => {
                if !matches!(m, Ok(Some(ProxyDown { message: Some(proxy_down::Message::Data(_)) }))) {
                    return;
                }
            }
        }
    }
}

/// Carries bytes between the member's upgraded connection and the hub, each direction on
/// its own (neither waits for the other). The hub closing its side closes the member's
/// writing side and keeps the member's answer coming; the hub going away ends both.
async fn pipe<IO>(io: IO, up: &Up, down: &mut Streaming<ProxyDown>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let to_hub = async {
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    up.end("").await;
                    return;
                }
                Ok(n) => {
                    if !up
                        .send(proxy_up::Message::Data(Bytes::copy_from_slice(&buf[..n])))
                        .await
                    {
                        return;
                    }
                }
            }
        }
    };
    let to_member = async {
        loop {
            match down.message().await {
                Ok(Some(ProxyDown {
                    message: Some(proxy_down::Message::Data(d)),
                })) => {
                    if wr.write_all(&d).await.is_err() {
                        up.end("the member closed the stream").await;
                        return;
                    }
                }
                Ok(Some(ProxyDown {
                    message: Some(proxy_down::Message::End(_)),
                })) => {
                    let _ = wr.shutdown().await;
                    std::future::pending::<()>().await;
                }
                _ => return,
            }
        }
    };
    tokio::select! {
        () = to_hub => {}
        () = to_member => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_applies_its_own_policy() {
        let policy = ProxyPolicy {
            enabled: true,
            allow: vec!["read".into(), "logs".into()],
        };
        let req = |method: &str, path: &str, upgrade: bool| ProxyRequest {
            method: method.into(),
            path: path.into(),
            upgrade,
            ..Default::default()
        };
        let check = |p: &ProxyPolicy, r: &ProxyRequest, place: bool| {
            refuse(p, r, Category::of(&r.method, &r.path, r.upgrade), place).map(|x| x.code)
        };
        let exec = req("POST", "/api/v1/namespaces/a/pods/p/exec?command=sh", true);
        assert_eq!(
            check(&policy, &exec, true),
            Some(403),
            "exec is not allowed"
        );
        let delete = req("DELETE", "/api/v1/namespaces/a/pods/p", false);
        assert_eq!(
            check(&policy, &delete, true),
            Some(403),
            "writes are not allowed"
        );
        let get = req("GET", "/api/v1/pods", false);
        assert_eq!(check(&policy, &get, true), None);
        assert_eq!(check(&policy, &get, false), Some(429));
        let log = req("GET", "/api/v1/namespaces/a/pods/p/log?follow=true", false);
        assert_eq!(check(&policy, &log, true), None);
        let escape = req("GET", "/api/../../etc", false);
        assert_eq!(check(&policy, &escape, true), Some(400));
        let off = ProxyPolicy {
            enabled: false,
            ..policy
        };
        assert_eq!(check(&off, &get, true), Some(503));
    }

    #[test]
    fn member_requests_act_as_the_prefixed_user_only() {
        let req = ProxyRequest {
            id: 1,
            method: "GET".into(),
            path: "/api/v1/pods?watch=1".into(),
            headers: vec![
                ProxyHeader {
                    name: "Impersonate-User".into(),
                    value: Bytes::from_static(b"system:admin"),
                },
                ProxyHeader {
                    name: "Authorization".into(),
                    value: Bytes::from_static(b"Bearer x"),
                },
                ProxyHeader {
                    name: "Accept".into(),
                    value: Bytes::from_static(b"application/json"),
                },
                ProxyHeader {
                    name: "Connection".into(),
                    value: Bytes::from_static(b"Upgrade"),
                },
            ],
            user: "alice".into(),
            groups: vec!["system:masters".into(), "devs".into()],
            upgrade: false,
        };
        let r = member_request(&req, vec![]).unwrap();
        let users: Vec<_> = r.headers().get_all("impersonate-user").iter().collect();
        assert_eq!(
            users,
            ["flotilla:alice"],
            "a hub-supplied impersonation header is dropped"
        );
        let groups: Vec<_> = r.headers().get_all("impersonate-group").iter().collect();
        assert_eq!(groups, ["flotilla:system:masters", "flotilla:devs"]);
        assert!(r.headers().get("authorization").is_none());
        assert!(r.headers().get("connection").is_none(), "not an upgrade");
        let up = ProxyRequest {
            upgrade: true,
            headers: vec![
                ProxyHeader {
                    name: "Connection".into(),
                    value: Bytes::from_static(b"Upgrade, impersonate-user, impersonate-group"),
                },
                ProxyHeader {
                    name: "Upgrade".into(),
                    value: Bytes::from_static(b"websocket"),
                },
                ProxyHeader {
                    name: "Sec-WebSocket-Protocol".into(),
                    value: Bytes::from_static(
                        b"v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.c2VjcmV0",
                    ),
                },
            ],
            ..req
        };
        let ru = member_request(&up, vec![]).unwrap();
        assert_eq!(
            ru.headers()["connection"],
            "Upgrade",
            "set by the agent alone"
        );
        assert_eq!(ru.headers()["upgrade"], "websocket");
        assert_eq!(ru.headers()["sec-websocket-protocol"], "v5.channel.k8s.io");
        assert_eq!(r.headers()["accept"], "application/json");
        assert_eq!(
            r.uri().path_and_query().unwrap().as_str(),
            "/api/v1/pods?watch=1"
        );
    }
}
