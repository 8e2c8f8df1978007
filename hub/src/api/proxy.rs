//! The cluster proxy: `/apis/cluster.karmada.io/v1alpha1/clusters/{name}/proxy/{path}`
//! forwards a request to the member through its agent's tunnel
//! ([`crate::agents::proxy::Tunnels`]). Plain requests and watches stream their response;
//! upgrades (exec, attach, port-forward over WebSocket or SPDY) become a byte stream in both
//! directions. The request was authenticated and authorized for `clusters/proxy` before it
//! gets here; the member decides the rest for the impersonated user.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use flotilla_proto::proxy::{
    CHUNK_BYTES, forwarded_request_header, forwards_response_header, valid_path,
};
use flotilla_proto::v1::{
    ProxyDown, ProxyEnd, ProxyHeader, ProxyRequest, ProxyResponseHead, ProxyUp, proxy_down,
    proxy_up,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::ApiError;
use crate::agents::proxy::{Downstream, Exchange, TunnelError, Tunnels};
use crate::auth::UserInfo;

/// How long the member has to answer with a status line.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(60);

/// A proxied stream with no bytes in either direction for this long is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(4 * 3600);

/// The cluster and the member path of a proxy request path, if it is one.
pub fn target(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/apis/cluster.karmada.io/v1alpha1/clusters/")?;
    let (cluster, rest) = rest.split_once('/')?;
    let member_path = rest.strip_prefix("proxy")?;
    if !(member_path.is_empty() || member_path.starts_with('/')) || cluster.is_empty() {
        return None;
    }
    Some((cluster, member_path))
}

impl From<TunnelError> for ApiError {
    fn from(e: TunnelError) -> Self {
        match &e {
            TunnelError::Refused {
                disabled: false, ..
            } => ApiError::forbidden(e.to_string()),
            TunnelError::Busy { .. } => ApiError::too_many_requests_because(e.to_string()),
            TunnelError::Timeout(..) => ApiError::gateway_timeout(e.to_string()),
            _ => ApiError::service_unavailable(e.to_string()),
        }
    }
}

/// Whether the request asks to upgrade its connection.
pub(crate) fn is_upgrade(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        && headers.contains_key(http::header::UPGRADE)
}

/// The request to send to the agent.
fn proxy_request(
    method: &http::Method,
    member_path: &str,
    query: Option<&str>,
    headers: &http::HeaderMap,
    user: &UserInfo,
    upgrade: bool,
) -> ProxyRequest {
    let mut path = if member_path.is_empty() {
        "/".to_owned()
    } else {
        member_path.to_owned()
    };
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        path.push('?');
        path.push_str(q);
    }
    let headers = headers
        .iter()
        .filter_map(|(name, value)| {
            forwarded_request_header(name.as_str(), value.as_bytes(), upgrade).map(|v| {
                ProxyHeader {
                    name: name.as_str().to_owned(),
                    value: Bytes::from(v),
                }
            })
        })
        .collect();
    ProxyRequest {
        id: 0,
        method: method.as_str().to_owned(),
        path,
        headers,
        user: user.name.clone(),
        groups: user.groups.clone(),
        upgrade,
    }
}

async fn send_end(out: &Downstream, error: &str) {
    let _ = out
        .send(Ok(ProxyDown {
            message: Some(proxy_down::Message::End(ProxyEnd {
                error: error.to_owned(),
            })),
        }))
        .await;
}

/// When a proxied stream last moved a byte, for its idle timeout.
struct Activity {
    started: std::time::Instant,
    last_ms: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: std::time::Instant::now(),
            last_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Returns once nothing moved for `idle`.
    async fn expired(&self, idle: Duration) {
        loop {
            let last =
                Duration::from_millis(self.last_ms.load(std::sync::atomic::Ordering::Relaxed));
            let quiet = self.started.elapsed().saturating_sub(last);
            match idle.checked_sub(quiet) {
                Some(left) if !left.is_zero() => tokio::time::sleep(left).await,
                _ => return,
            }
        }
    }
}

async fn send_data(out: &Downstream, data: Bytes) -> bool {
    out.send(Ok(ProxyDown {
        message: Some(proxy_down::Message::Data(data)),
    }))
    .await
    .is_ok()
}

/// The agent's next message, or `None` at the end of the exchange.
async fn next_up(ex: &mut Exchange) -> Result<Option<proxy_up::Message>, ApiError> {
    match ex.inbound.message().await {
        Ok(Some(ProxyUp { message: Some(m) })) => Ok(Some(m)),
        Ok(Some(ProxyUp { message: None })) => {
            Err(ApiError::bad_gateway("the agent sent an empty message"))
        }
        Ok(None) => Ok(None),
        Err(s) => Err(ApiError::bad_gateway(format!(
            "the agent's stream failed: {}",
            s.message()
        ))),
    }
}

fn response_head(head: &ProxyResponseHead) -> Result<http::response::Builder, ApiError> {
    let status = u16::try_from(head.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| ApiError::bad_gateway(format!("invalid status {}", head.status)))?;
    let upgraded = status == StatusCode::SWITCHING_PROTOCOLS;
    let mut b = Response::builder().status(status);
    for h in &head.headers {
        let Ok(name) = HeaderName::from_bytes(h.name.as_bytes()) else {
            continue;
        };
        let Ok(value) = HeaderValue::from_bytes(&h.value) else {
            continue;
        };
        if forwards_response_header(name.as_str(), upgraded) {
            b = b.header(name, value);
        }
    }
    Ok(b)
}

/// Forwards `req` to `member_path` in `cluster`.
pub async fn serve(
    tunnels: &Tunnels,
    cluster: &str,
    member_path: &str,
    mut req: Request,
    user: &UserInfo,
    idle: Duration,
) -> Result<Response, ApiError> {
    let upgrade = is_upgrade(req.headers());
    let request = proxy_request(
        req.method(),
        member_path,
        req.uri().query(),
        req.headers(),
        user,
        upgrade,
    );
    if !valid_path(&request.path) {
        return Err(ApiError::bad_request(format!(
            "invalid member path {:?}",
            request.path
        )));
    }
    let on_upgrade = upgrade
        .then(|| req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>())
        .flatten();
    if upgrade && on_upgrade.is_none() {
        return Err(ApiError::bad_request(
            "this connection cannot be upgraded (use HTTP/1.1 for exec, attach and port-forward)",
        ));
    }
    let body = tokio::time::timeout(
        super::BODY_READ_TIMEOUT,
        axum::body::to_bytes(req.into_body(), super::MAX_BODY),
    )
    .await
    .map_err(|_| ApiError::request_timeout())?
    .map_err(|_| ApiError::too_large())?;
    let mut ex = tunnels.open(cluster, request).await?;
    for chunk in body.chunks(CHUNK_BYTES) {
        if !send_data(&ex.outbound, Bytes::copy_from_slice(chunk)).await {
            return Err(ApiError::bad_gateway("the agent closed the request"));
        }
    }
    if !upgrade {
        send_end(&ex.outbound, "").await;
    }
    let head = match tokio::time::timeout(HEAD_TIMEOUT, next_up(&mut ex)).await {
        Err(_) => {
            return Err(ApiError::gateway_timeout(format!(
                "cluster {cluster} did not answer within {HEAD_TIMEOUT:?}"
            )));
        }
        Ok(r) => match r? {
            Some(proxy_up::Message::Head(h)) => h,
            Some(proxy_up::Message::End(e)) => {
                return Err(ApiError::bad_gateway(format!(
                    "cluster {cluster}: {}",
                    e.error
                )));
            }
            _ => return Err(ApiError::bad_gateway("the agent sent no response head")),
        },
    };
    let builder = response_head(&head)?;
    if head.status == 101 {
        let Some(on_upgrade) = on_upgrade else {
            return Err(ApiError::bad_gateway("the member upgraded a plain request"));
        };
        let cluster = cluster.to_owned();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(io) => pipe(hyper_util::rt::TokioIo::new(io), ex, idle, &cluster).await,
                Err(e) => {
                    tracing::debug!(%cluster, error = %e, "the client did not complete the upgrade");
                    send_end(&ex.outbound, "the client did not complete the upgrade").await;
                }
            }
        });
        return builder
            .body(Body::empty())
            .map_err(|e| ApiError::internal(e.to_string()));
    }
    // The body is pumped by its own task, so a client that stops reading is bounded by the
    // idle timeout too (hyper stops polling a body its client does not take).
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(pump(ex, tx, idle));
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    builder
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Moves the agent's response body to the client's until it ends, either side goes away, or
/// nothing moves for `idle`.
async fn pump(
    mut ex: Exchange,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    idle: Duration,
) {
    loop {
        let item = match tokio::time::timeout(idle, ex.inbound.message()).await {
            Ok(Ok(Some(ProxyUp {
                message: Some(proxy_up::Message::Data(d)),
            }))) => Ok(d),
            Ok(Ok(Some(ProxyUp {
                message: Some(proxy_up::Message::End(e)),
            }))) if e.error.is_empty() => return,
            Ok(Ok(None)) => return,
            Ok(Ok(Some(ProxyUp {
                message: Some(proxy_up::Message::End(e)),
            }))) => Err(std::io::Error::other(e.error)),
            Ok(Ok(Some(_))) => Err(std::io::Error::other("unexpected message from the agent")),
            Ok(Err(s)) => Err(std::io::Error::other(s.message().to_owned())),
            Err(_) => Err(std::io::Error::other(
                "the proxied stream was idle too long",
            )),
        };
        let last = item.is_err();
        if tx.send_timeout(item, idle).await.is_err() || last {
            return;
        }
    }
}

/// Carries bytes between the upgraded client connection and the agent, each direction on
/// its own (neither waits for the other), until the agent's side ends, the agent goes away, or
/// nothing moves for `idle`. A client that closes its side ends the agent's side and keeps
/// receiving.
async fn pipe<IO>(io: IO, mut ex: Exchange, idle: Duration, cluster: &str)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let activity = Activity::new();
    let out = ex.outbound.clone();
    let to_agent = async {
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    send_end(&out, "").await;
                    break;
                }
                Ok(n) => {
                    activity.touch();
                    if !send_data(&out, Bytes::copy_from_slice(&buf[..n])).await {
                        return;
                    }
                }
            }
        }
        std::future::pending::<()>().await;
    };
    let inbound = &mut ex.inbound;
    let to_client = async {
        loop {
            match inbound.message().await {
                Ok(Some(ProxyUp {
                    message: Some(proxy_up::Message::Data(d)),
                })) => {
                    activity.touch();
                    if wr.write_all(&d).await.is_err() {
                        send_end(&out, "the client went away").await;
                        break;
                    }
                }
                Ok(Some(ProxyUp {
                    message: Some(proxy_up::Message::End(e)),
                })) => {
                    if !e.error.is_empty() {
                        tracing::debug!(%cluster, error = %e.error, "the member ended the stream");
                    }
                    break;
                }
                _ => break,
            }
        }
        let _ = wr.shutdown().await;
    };
    tokio::select! {
        () = to_agent => {}
        () = to_client => {}
        () = activity.expired(idle) => {
            tracing::debug!(%cluster, "closing an idle proxied stream");
            send_end(&ex.outbound, "idle").await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            target("/apis/cluster.karmada.io/v1alpha1/clusters/m1/proxy/api/v1/pods"),
            Some(("m1", "/api/v1/pods"))
        );
        assert_eq!(
            target("/apis/cluster.karmada.io/v1alpha1/clusters/m1/proxy"),
            Some(("m1", ""))
        );
        assert_eq!(
            target("/apis/cluster.karmada.io/v1alpha1/clusters/m1/proxyx/api"),
            None
        );
        assert_eq!(
            target("/apis/cluster.karmada.io/v1alpha1/clusters/m1"),
            None
        );
        assert_eq!(
            target("/apis/cluster.karmada.io/v1alpha1/clusters/m1/status"),
            None
        );
    }

    #[test]
    fn requests_carry_no_credentials() {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer secret"));
        h.insert("impersonate-user", HeaderValue::from_static("root"));
        h.insert("accept", HeaderValue::from_static("application/json"));
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        let user = UserInfo {
            name: "alice".into(),
            groups: vec!["devs".into()],
            ..Default::default()
        };
        let r = proxy_request(
            &http::Method::GET,
            "/api/v1/pods",
            Some("watch=1"),
            &h,
            &user,
            false,
        );
        assert_eq!(r.path, "/api/v1/pods?watch=1");
        let names: Vec<&str> = r.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            ["accept"],
            "no credentials, no upgrade on a plain request"
        );
        assert_eq!(
            (r.user.as_str(), r.groups.as_slice()),
            ("alice", &["devs".to_owned()][..])
        );
        let r = proxy_request(&http::Method::GET, "", None, &h, &user, true);
        assert_eq!(r.path, "/");
        let names: Vec<&str> = r.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            ["accept", "upgrade"],
            "an upgrade keeps its handshake headers"
        );
        assert!(is_upgrade(&h));
    }
}
