//! `/healthz` and `/metrics` on a small HTTP port.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The agent's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Whether the work stream is up.
    pub connected: AtomicBool,
    /// Last hub revision processed.
    pub revision: AtomicU64,
    /// Works held.
    pub works: AtomicU64,
    /// Applies that changed the member.
    pub applies: AtomicU64,
    /// Failed applies.
    pub apply_errors: AtomicU64,
    /// Objects deleted.
    pub deletes: AtomicU64,
    /// Client certificates renewed.
    pub rotations: AtomicU64,
    /// Work stream sessions started.
    pub sessions: AtomicU64,
    /// When the current client certificate expires (Unix seconds).
    pub certificate_expiry: AtomicU64,
    /// Proxied requests streaming now.
    pub proxy_open: AtomicU64,
    /// Workload metrics reports sent (one per autoscaled workload per period).
    pub metrics_reports: AtomicU64,
    /// Of those, reports with a metric that could not be read.
    pub metrics_errors: AtomicU64,
    /// Exported Service reports sent (one per Service whose endpoints changed).
    pub endpoint_reports: AtomicU64,
    /// Proxied requests done, by category and status code.
    pub proxy_requests: std::sync::Mutex<std::collections::BTreeMap<(&'static str, u16), u64>>,
}

impl Metrics {
    /// Counts a proxied request of `category` answered with `code`.
    pub fn proxy_request(&self, category: &'static str, code: u16) {
        if let Ok(mut m) = self.proxy_requests.lock() {
            *m.entry((category, code)).or_default() += 1;
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut line = |name: &str, help: &str, kind: &str, v: u64| {
            let _ = write!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            );
        };
        line(
            "flotilla_agent_connected",
            "Whether the work stream to the hub is up.",
            "gauge",
            u64::from(self.connected.load(Ordering::Relaxed)),
        );
        line(
            "flotilla_agent_revision",
            "Last hub revision processed.",
            "gauge",
            self.revision.load(Ordering::Relaxed),
        );
        line(
            "flotilla_agent_works",
            "Works held.",
            "gauge",
            self.works.load(Ordering::Relaxed),
        );
        line(
            "flotilla_agent_applies_total",
            "Applies that changed the member.",
            "counter",
            self.applies.load(Ordering::Relaxed),
        );
        line(
            "flotilla_agent_apply_errors_total",
            "Failed applies.",
            "counter",
            self.apply_errors.load(Ordering::Relaxed),
        );
        line(
            "flotilla_agent_deletes_total",
            "Objects deleted from the member.",
            "counter",
            self.deletes.load(Ordering::Relaxed),
        );
        line(
            "flotilla_agent_sessions_total",
            "Work stream sessions started (connections to the hub).",
            "counter",
            self.sessions.load(Ordering::Relaxed),
        );
        line(
            "flotilla_agent_certificate_rotations_total",
            "Client certificates renewed over the hub connection.",
            "counter",
            self.rotations.load(Ordering::Relaxed),
        );
        line(
            "flotilla_agent_certificate_expiry_timestamp_seconds",
            "When the current client certificate expires.",
            "gauge",
            self.certificate_expiry.load(Ordering::Relaxed),
        );
        line(
            "flotilla_agent_metrics_reports_total",
            "Workload metrics reports sent to the hub for its FederatedHPAs.",
            "counter",
            self.metrics_reports.load(Ordering::Relaxed),
        );
        line(
            "flotilla_agent_metrics_errors_total",
            "Workload metrics reports with a metric the member could not provide.",
            "counter",
            self.metrics_errors.load(Ordering::Relaxed),
        );
        line(
            "flotilla_agent_endpoint_reports_total",
            "Exported Service endpoint reports sent to the hub.",
            "counter",
            self.endpoint_reports.load(Ordering::Relaxed),
        );
        line(
            "flotilla_agent_proxy_open_streams",
            "Proxied requests streaming now (watches, logs, exec, port-forward).",
            "gauge",
            self.proxy_open.load(Ordering::Relaxed),
        );
        let name = "flotilla_agent_proxy_requests_total";
        let _ = write!(
            s,
            "# HELP {name} Cluster proxy requests served, by category and status code.\n# TYPE {name} counter\n"
        );
        if let Ok(m) = self.proxy_requests.lock() {
            for ((category, code), n) in m.iter() {
                let _ = writeln!(s, "{name}{{category=\"{category}\",code=\"{code}\"}} {n}");
            }
        }
        s
    }
}

/// First wait after a failed accept.
const ACCEPT_BACKOFF_MIN: std::time::Duration = std::time::Duration::from_millis(50);
/// Longest wait after failed accepts.
const ACCEPT_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves `/healthz` and `/metrics` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let (mut sock, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    x
                }
                Err(e) => {
                    // Out of file handles or similar: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a metrics connection failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n =
                match tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf))
                    .await
                {
                    Ok(Ok(n)) => n,
                    _ => return,
                };
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req.split_whitespace().nth(1).unwrap_or("/");
            let (code, body) = match path {
                "/healthz" | "/livez" | "/readyz" => ("200 OK", "ok\n".to_owned()),
                "/metrics" => ("200 OK", metrics.render()),
                _ => ("404 Not Found", "not found\n".to_owned()),
            };
            let resp = format!(
                "HTTP/1.1 {code}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}
