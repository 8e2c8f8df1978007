//! The hub's side of the cluster proxy tunnel: each agent's open `ProxyListen` stream, the
//! requests waiting for their agent to open a `ProxyExchange`, and the per-cluster bound on
//! concurrent proxied requests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flotilla_proto::v1::{ProxyDown, ProxyPolicy, ProxyRequest, ProxyUp, proxy_up};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

/// Default bound on concurrent proxied requests per cluster.
pub const DEFAULT_MAX_STREAMS: usize = 16;

/// How long an agent has to open the exchange for a request.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(15);

/// How long an agent has to send the first message of an exchange.
pub const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request cannot be forwarded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TunnelError {
    /// No agent of the cluster listens for proxy requests.
    #[error(
        "the agent of cluster {0} is not connected to the hub's cluster proxy (check the agent's logs and `kubectl get cluster {0}`)"
    )]
    NotConnected(String),
    /// The agent's policy refuses it.
    #[error("cluster {cluster}: {reason}")]
    Refused {
        /// The cluster.
        cluster: String,
        /// The agent's policy's reason.
        reason: String,
        /// True when the proxy is off altogether.
        disabled: bool,
    },
    /// Too many requests to the cluster are being proxied.
    #[error(
        "cluster {cluster} already has {max} proxied requests open (hub flag --proxy-max-streams-per-cluster); retry when one ends"
    )]
    Busy {
        /// The cluster.
        cluster: String,
        /// The bound.
        max: usize,
    },
    /// The agent did not open the exchange in time.
    #[error("the agent of cluster {0} did not take the request within {1:?}")]
    Timeout(String, Duration),
}

/// An open exchange with an agent, holding one of its cluster's places until dropped.
#[derive(Debug)]
pub struct Exchange {
    /// The agent's messages (response head, data, end).
    pub inbound: Streaming<ProxyUp>,
    /// Messages to the agent (request body, data, end).
    pub outbound: Downstream,
    _place: OwnedSemaphorePermit,
    _open: OpenStream,
}

/// Counts an exchange in the open-streams gauge while it lives.
#[derive(Debug)]
struct OpenStream(prometheus_client::metrics::gauge::Gauge);

impl OpenStream {
    fn new(g: &prometheus_client::metrics::gauge::Gauge) -> Self {
        g.inc();
        Self(g.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[derive(Debug)]
struct Listener {
    id: u64,
    /// The credential generation of the certificate it was opened with.
    generation: u64,
    policy: ProxyPolicy,
    requests: mpsc::Sender<Result<ProxyRequest, Status>>,
    closed: CancellationToken,
}

/// Messages to an agent on one exchange.
pub type Downstream = mpsc::Sender<Result<ProxyDown, Status>>;

#[derive(Debug)]
struct Pending {
    cluster: String,
    reply: oneshot::Sender<(Streaming<ProxyUp>, Downstream)>,
}

/// Removes a waiting request when dropped.
struct Forget<'a> {
    tunnels: &'a Tunnels,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.tunnels.pending.lock() {
            p.remove(&self.id);
        }
    }
}

/// Every cluster's proxy listener and the requests in flight to them.
#[derive(Debug)]
pub struct Tunnels {
    listeners: Mutex<HashMap<String, Listener>>,
    /// Each cluster's places, kept across its listeners (an agent that listens again must not
    /// get a second set).
    places: Mutex<HashMap<String, std::sync::Arc<Semaphore>>>,
    pending: Mutex<HashMap<u64, Pending>>,
    next: AtomicU64,
    max_streams: usize,
    open_streams: prometheus_client::metrics::gauge::Gauge,
}

impl Default for Tunnels {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_STREAMS)
    }
}

impl Tunnels {
    /// Tunnels allowing `max_streams` concurrent requests per cluster.
    pub fn new(max_streams: usize) -> Self {
        Self {
            listeners: Mutex::new(HashMap::new()),
            places: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            max_streams: max_streams.max(1),
            open_streams: prometheus_client::metrics::gauge::Gauge::default(),
        }
    }

    /// The same tunnels counting open requests in `gauge`.
    pub fn with_gauge(mut self, gauge: prometheus_client::metrics::gauge::Gauge) -> Self {
        self.open_streams = gauge;
        self
    }

    /// The most concurrent requests per cluster.
    pub fn max_streams(&self) -> usize {
        self.max_streams
    }

    /// Registers `cluster`'s listener (replacing an older one of the same cluster); the
    /// returned receiver yields the requests for it, and the token fires when the listener is
    /// replaced or closed.
    pub(crate) fn listen(
        &self,
        cluster: &str,
        generation: u64,
        policy: ProxyPolicy,
    ) -> (
        u64,
        mpsc::Receiver<Result<ProxyRequest, Status>>,
        CancellationToken,
    ) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.max_streams);
        let closed = CancellationToken::new();
        let listener = Listener {
            id,
            generation,
            policy,
            requests: tx,
            closed: closed.clone(),
        };
        if let Ok(mut l) = self.listeners.lock()
            && let Some(old) = l.insert(cluster.to_owned(), listener)
        {
            old.closed.cancel();
        }
        (id, rx, closed)
    }

    /// Removes listener `id` of `cluster` if it is still the current one.
    pub(crate) fn unlisten(&self, cluster: &str, id: u64) {
        if let Ok(mut l) = self.listeners.lock()
            && l.get(cluster).is_some_and(|x| x.id == id)
            && let Some(old) = l.remove(cluster)
        {
            old.closed.cancel();
        }
    }

    /// Closes `cluster`'s listener (its agent was disconnected or its cluster removed).
    pub fn close(&self, cluster: &str) {
        if let Ok(mut l) = self.listeners.lock()
            && let Some(old) = l.remove(cluster)
        {
            old.closed.cancel();
        }
        if let Ok(mut p) = self.places.lock() {
            p.remove(cluster);
        }
    }

    /// Closes `cluster`'s listener if it was opened with a certificate of another credential
    /// generation than `current` (the cluster's certificates were revoked).
    pub fn close_revoked(&self, cluster: &str, current: u64) {
        if let Ok(mut l) = self.listeners.lock()
            && l.get(cluster).is_some_and(|x| x.generation != current)
            && let Some(old) = l.remove(cluster)
        {
            tracing::warn!(%cluster, "certificate revoked: closing the agent's proxy stream");
            old.closed.cancel();
        }
    }

    /// Clusters with a proxy listener.
    pub fn clusters(&self) -> Vec<String> {
        self.listeners
            .lock()
            .map(|l| l.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn places_of(&self, cluster: &str) -> std::sync::Arc<Semaphore> {
        match self.places.lock() {
            Ok(mut p) => p
                .entry(cluster.to_owned())
                .or_insert_with(|| std::sync::Arc::new(Semaphore::new(self.max_streams)))
                .clone(),
            Err(_) => std::sync::Arc::new(Semaphore::new(0)),
        }
    }

    /// The policy `cluster`'s agent announced, if it listens.
    pub fn policy(&self, cluster: &str) -> Option<ProxyPolicy> {
        self.listeners
            .lock()
            .ok()
            .and_then(|l| l.get(cluster).map(|x| x.policy.clone()))
    }

    /// Sends `req` (its id is set here) to `cluster`'s agent and waits for the agent to open
    /// the exchange for it.
    pub async fn open(
        &self,
        cluster: &str,
        mut req: ProxyRequest,
    ) -> Result<Exchange, TunnelError> {
        let category = flotilla_proto::proxy::Category::of(&req.method, &req.path, req.upgrade);
        let (requests, policy) = {
            let l = self
                .listeners
                .lock()
                .map_err(|_| TunnelError::NotConnected(cluster.to_owned()))?;
            let x = l
                .get(cluster)
                .ok_or_else(|| TunnelError::NotConnected(cluster.to_owned()))?;
            (x.requests.clone(), x.policy.clone())
        };
        let places = self.places_of(cluster);
        if let Some(reason) = flotilla_proto::proxy::refusal(&policy, category) {
            return Err(TunnelError::Refused {
                cluster: cluster.to_owned(),
                reason,
                disabled: !policy.enabled,
            });
        }
        let place = places.try_acquire_owned().map_err(|_| TunnelError::Busy {
            cluster: cluster.to_owned(),
            max: self.max_streams,
        })?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        req.id = id;
        let (reply, opened) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(
                id,
                Pending {
                    cluster: cluster.to_owned(),
                    reply,
                },
            );
        }
        // Forgets the request however this ends, also when the caller goes away.
        let _forget = Forget { tunnels: self, id };
        let timeout = TunnelError::Timeout(cluster.to_owned(), OPEN_TIMEOUT);
        match tokio::time::timeout(OPEN_TIMEOUT, requests.send(Ok(req))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(TunnelError::NotConnected(cluster.to_owned())),
            Err(_) => return Err(timeout),
        }
        match tokio::time::timeout(OPEN_TIMEOUT, opened).await {
            Ok(Ok((inbound, outbound))) => Ok(Exchange {
                inbound,
                outbound,
                _place: place,
                _open: OpenStream::new(&self.open_streams),
            }),
            Ok(Err(_)) => Err(TunnelError::NotConnected(cluster.to_owned())),
            Err(_) => Err(timeout),
        }
    }

    /// Hands an exchange opened by `cluster`'s agent to the request waiting for it: the
    /// agent's first message names the request, which must be one for its own cluster.
    pub(crate) async fn accept(
        &self,
        cluster: &str,
        mut inbound: Streaming<ProxyUp>,
    ) -> Result<mpsc::Receiver<Result<ProxyDown, Status>>, Status> {
        let first = tokio::time::timeout(FIRST_MESSAGE_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no open message"))??;
        let Some(ProxyUp {
            message: Some(proxy_up::Message::Open(id)),
        }) = first
        else {
            return Err(Status::invalid_argument(
                "the first message of an exchange must be open",
            ));
        };
        let pending = {
            let mut p = self
                .pending
                .lock()
                .map_err(|_| Status::internal("proxy state poisoned"))?;
            match p.get(&id) {
                Some(x) if x.cluster == cluster => p.remove(&id),
                Some(_) => {
                    return Err(Status::permission_denied(
                        "this proxy request belongs to another cluster",
                    ));
                }
                None => None,
            }
        };
        let pending = pending
            .ok_or_else(|| Status::not_found(format!("no proxy request {id} is waiting")))?;
        let (tx, rx) = mpsc::channel(4);
        pending
            .reply
            .send((inbound, tx))
            .map_err(|_| Status::cancelled("the client went away"))?;
        Ok(rx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> ProxyPolicy {
        ProxyPolicy {
            enabled: true,
            allow: allow.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn get(path: &str) -> ProxyRequest {
        ProxyRequest {
            method: "GET".into(),
            path: path.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn refuses_without_a_listener_or_by_policy() {
        let t = Tunnels::new(2);
        assert_eq!(
            t.open("m1", get("/api")).await.unwrap_err(),
            TunnelError::NotConnected("m1".into())
        );
        let (_id, _rx, _closed) = t.listen("m1", 0, policy(&["read"]));
        let e = t
            .open("m1", get("/api/v1/namespaces/a/pods/p/log"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                TunnelError::Refused {
                    disabled: false,
                    ..
                }
            ),
            "{e:?}"
        );
        let (_id, _rx2, _closed) = t.listen(
            "m1",
            0,
            ProxyPolicy {
                enabled: false,
                allow: vec![],
            },
        );
        let e = t.open("m1", get("/api")).await.unwrap_err();
        assert!(
            matches!(e, TunnelError::Refused { disabled: true, .. }),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_replaced_or_closed_listener_is_gone() {
        let t = Tunnels::new(2);
        let (first, _rx, closed) = t.listen("m1", 1, policy(&["read"]));
        let (second, _rx2, closed2) = t.listen("m1", 1, policy(&["read"]));
        assert!(closed.is_cancelled(), "the replaced listener is told");
        t.unlisten("m1", first);
        assert!(t.policy("m1").is_some(), "an old id removes nothing");
        t.close_revoked("m1", 1);
        assert!(t.policy("m1").is_some(), "the current generation stays");
        t.close_revoked("m1", 2);
        assert!(
            closed2.is_cancelled() && t.policy("m1").is_none(),
            "a revoked one goes"
        );
        let (third, _rx3, _closed3) = t.listen("m1", 2, policy(&["read"]));
        t.unlisten("m1", second);
        assert!(t.policy("m1").is_some(), "an old id removes nothing");
        t.unlisten("m1", third);
        assert!(t.policy("m1").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn places_are_bounded_and_an_untaken_request_times_out() {
        let t = std::sync::Arc::new(Tunnels::new(1));
        let (_id, mut rx, _closed) = t.listen("m1", 0, policy(&["read"]));
        let t2 = t.clone();
        let first = tokio::spawn(async move { t2.open("m1", get("/api")).await });
        let req = rx.recv().await.unwrap().unwrap();
        assert!(req.id > 0);
        // The first request holds the only place until it times out.
        let e = t.open("m1", get("/api")).await.unwrap_err();
        assert!(matches!(e, TunnelError::Busy { max: 1, .. }), "{e:?}");
        let e = first.await.unwrap().unwrap_err();
        assert!(matches!(e, TunnelError::Timeout(..)), "{e:?}");
        assert!(
            t.pending.lock().unwrap().is_empty(),
            "the request is forgotten"
        );
    }
}
