//! Limits on the hub's network connections: how many may be open in all and per peer
//! address, how long a TLS handshake and HTTP/1 request headers may take, and how long a
//! connection may stay open with nothing in flight. Over a cap a new connection is closed
//! right after accept and counted in `flotilla_api_connections_refused_total`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::ConnectionMetrics;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most connections a listener holds open, whatever the file limit allows.
pub const MAX_CONNECTIONS: usize = 4096;

/// The most connections one peer address may hold open on a listener.
pub const MAX_CONNECTIONS_PER_PEER: usize = 256;

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send the headers of an HTTP/1 request (this also closes
/// an HTTP/1 connection that waits that long for its next request).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may stay open with no request in flight and no response (such
/// as a watch) still streaming.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The most connections the agent listener holds open (one per member cluster), whatever
/// the file limit allows.
pub const MAX_AGENT_CONNECTIONS: usize = 65_536;

/// The shares of the process's open-file limit (`RLIMIT_NOFILE`, raised to its hard limit
/// at start): a fifth for the API listener, three fifths for the agent listener (one
/// connection per member cluster, so 10,000 clusters need a limit of about 17,000), the
/// rest for the store and everything else.
const API_FD_SHARE: (usize, usize) = (1, 5);
/// The agent listener's share, see [`API_FD_SHARE`].
const AGENT_FD_SHARE: (usize, usize) = (3, 5);

/// The limits of one listener. `Default` is for the API listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_per_peer: usize,
    /// TLS handshake time.
    pub handshake_timeout: Duration,
    /// HTTP/1 request header time.
    pub header_read_timeout: Duration,
    /// Time with nothing in flight before a connection is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: fd_budget(API_FD_SHARE, MAX_CONNECTIONS),
            max_per_peer: MAX_CONNECTIONS_PER_PEER,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

impl ConnectionLimits {
    /// The defaults of the agent listener: the larger share of open files.
    pub fn agents() -> Self {
        Self {
            max_connections: fd_budget(AGENT_FD_SHARE, MAX_AGENT_CONNECTIONS),
            ..Self::default()
        }
    }
}

/// `cap`, or the `share` (numerator, denominator) of the soft open-file limit if lower.
fn fd_budget(share: (usize, usize), cap: usize) -> usize {
    let files = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| soft_open_files(&text));
    match files {
        Some(n) => share_of(n, share).clamp(1, cap),
        None => cap,
    }
}

fn share_of(files: usize, (num, den): (usize, usize)) -> usize {
    (files / den.max(1)).saturating_mul(num)
}

/// Raises the soft open-file limit to the hard limit (as Go programs do at start), so the
/// listeners' shares of it fit a large fleet. Returns the soft limit now in force.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let Some(hard) = lim.maximum
        && lim.current.is_some_and(|c| c < hard)
    {
        lim.current = Some(hard);
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            tracing::warn!(error = %e, "raising the open-file limit failed");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The soft limit of the `Max open files` line of `/proc/self/limits`.
fn soft_open_files(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        return Some(usize::MAX);
    }
    soft.parse().ok()
}

/// Why a connection was refused, the `reason` label of the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener holds [`ConnectionLimits::max_connections`].
    Total,
    /// The peer holds [`ConnectionLimits::max_per_peer`].
    PerPeer,
}

/// Admits connections of one listener within its limits. Shared by its accept loop.
#[derive(Debug)]
pub struct Gate {
    /// The limits.
    pub limits: ConnectionLimits,
    listener: &'static str,
    metrics: ConnectionMetrics,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl Gate {
    /// A gate for the listener named `listener` (the metric label).
    pub fn new(
        listener: &'static str,
        limits: ConnectionLimits,
        metrics: ConnectionMetrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            limits,
            listener,
            metrics,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// A permit for a connection from `peer`, held while it is open; `None` (counted)
    /// when a cap is reached and the connection is to be closed.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Permit> {
        let refused = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let (total, per_peer) = &mut *open;
            let from_peer = per_peer.get(&peer).copied().unwrap_or(0);
            if *total >= self.limits.max_connections {
                Some(Refusal::Total)
            } else if from_peer >= self.limits.max_per_peer {
                Some(Refusal::PerPeer)
            } else {
                *total += 1;
                per_peer.insert(peer, from_peer + 1);
                self.metrics.opened(self.listener);
                None
            }
        };
        if let Some(r) = refused {
            self.metrics.refused(self.listener, r);
            tracing::debug!(%peer, listener = self.listener, reason = ?r, "connection refused");
            return None;
        }
        Some(Permit {
            gate: self.clone(),
            peer,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<Gate>,
    peer: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_peer) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = per_peer.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_peer.remove(&self.peer);
            }
        }
        self.gate.metrics.closed(self.gate.listener);
    }
}

/// What one connection has in flight, for the idle timeout.
#[derive(Debug)]
pub struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `started` of the last request start or response end.
    last: AtomicU64,
}

impl Activity {
    /// A connection with nothing in flight yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// A request starts; the guard, held until its response body ends, ends it.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    /// Resolves once nothing has been in flight for `idle`.
    pub async fn idle(&self, idle: Duration) {
        loop {
            let since = self
                .started
                .elapsed()
                .saturating_sub(Duration::from_millis(self.last.load(Ordering::Relaxed)));
            if self.in_flight.load(Ordering::Relaxed) == 0 && since >= idle {
                return;
            }
            let wait = if self.in_flight.load(Ordering::Relaxed) == 0 {
                idle.saturating_sub(since)
            } else {
                idle
            };
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
    }
}

/// One request in flight on a connection.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request in flight until it is finished or dropped
/// (a watch stays in flight while it streams).
pub struct TrackedBody {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl TrackedBody {
    /// Wraps `inner`.
    pub fn new(inner: axum::body::Body, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl hyper::body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// An admitted stream: the inner stream with its [`Permit`], for servers (tonic) that
/// take a stream of connections.
#[derive(Debug)]
pub struct Admitted<S> {
    inner: S,
    _permit: Permit,
}

impl<S> Admitted<S> {
    /// Holds `permit` as long as `inner` is open.
    pub fn new(inner: S, permit: Permit) -> Self {
        Self {
            inner,
            _permit: permit,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Admitted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Admitted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected for Admitted<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// The connections of `listener` that `gate` admits, for a server that takes a stream:
/// refused ones are closed at once, accept errors (such as running out of files) are
/// logged and retried after a pause instead of ending the server.
pub fn admitted(
    listener: tokio::net::TcpListener,
    gate: Arc<Gate>,
) -> impl futures::Stream<Item = std::io::Result<Admitted<tokio::net::TcpStream>>> {
    futures::stream::unfold((listener, gate), |(listener, gate)| async move {
        loop {
            match listener.accept().await {
                Ok((tcp, peer)) => {
                    // Small messages (proxied requests, acks) must not wait for Nagle.
                    let _ = tcp.set_nodelay(true);
                    if let Some(permit) = gate.admit(peer.ip()) {
                        return Some((Ok(Admitted::new(tcp, permit)), (listener, gate)));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(max: usize, per_peer: usize) -> Arc<Gate> {
        Gate::new(
            "test",
            ConnectionLimits {
                max_connections: max,
                max_per_peer: per_peer,
                ..ConnectionLimits::default()
            },
            crate::metrics::Metrics::new().connections(),
        )
    }

    #[test]
    fn caps_in_total_and_per_peer() {
        let g = gate(3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let p1 = g.admit(a);
        let p2 = g.admit(a);
        assert!(p1.is_some() && p2.is_some());
        assert!(g.admit(a).is_none(), "per peer");
        let p3 = g.admit(b);
        assert!(p3.is_some());
        assert!(g.admit(b).is_none(), "in total");
        assert_eq!(g.open(), 3);
        drop(p1);
        assert!(g.admit(a).is_some(), "a closed connection frees its place");
    }

    #[test]
    fn the_file_limit_lowers_the_cap() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(soft_open_files(limits), Some(1024));
        assert!(fd_budget(API_FD_SHARE, MAX_CONNECTIONS) <= MAX_CONNECTIONS);
        assert_eq!(share_of(1024, API_FD_SHARE), 204);
        assert_eq!(share_of(20_000, AGENT_FD_SHARE), 12_000);
        assert_eq!(share_of(usize::MAX, AGENT_FD_SHARE), usize::MAX / 5 * 3);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_in_flight_requests() {
        let a = Activity::new();
        let guard = a.begin();
        let idle = a.idle(Duration::from_secs(5));
        tokio::pin!(idle);
        assert!(
            tokio::time::timeout(Duration::from_secs(60), idle.as_mut())
                .await
                .is_err(),
            "a request in flight keeps the connection"
        );
        drop(guard);
        let started = tokio::time::Instant::now();
        idle.await;
        assert!(started.elapsed() >= Duration::from_secs(5));
    }
}
