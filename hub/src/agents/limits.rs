//! Bounds on what one agent may send: the size of every reported field, sane capacity
//! figures, and per-cluster rates for heartbeats, statuses and new streams.
//!
//! A report over a size bound is refused whole (the stream goes on; the refusal is logged). Capacity that is malformed, negative or absurd is left out of the Cluster's
//! status, which says why, so it never steers scheduling. Rates are token buckets per
//! cluster, so reconnecting does not refill them: heartbeats and statuses over the rate wait
//! (the agent is slowed through the stream's flow control), streams opened too often are
//! refused with `RESOURCE_EXHAUSTED`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use flotilla_proto::v1::{Heartbeat, WorkStatus};

/// Longest free text (messages, versions).
pub const MAX_TEXT: usize = 4096;
/// Longest name (Work, resource, kind, group version, capacity resource).
pub const MAX_NAME: usize = 316;
/// Most entries in one capacity map.
pub const MAX_QUANTITIES: usize = 128;
/// Longest quantity.
pub const MAX_QUANTITY: usize = 64;
/// Most group versions in an API enablement report.
pub const MAX_GROUP_VERSIONS: usize = 1024;
/// Most resources over all group versions of an enablement report.
pub const MAX_RESOURCES: usize = 8192;
/// Most manifest statuses in one Work status.
pub const MAX_MANIFESTS: usize = 1024;
/// Most bytes of reflected status JSON in one Work status (all manifests).
pub const MAX_STATUS_BYTES: usize = 1024 * 1024;
/// Largest count of a countable capacity resource (cpu cores, pods, devices).
pub const MAX_COUNT: i128 = 10_000_000;
/// Largest byte size of a capacity resource (memory, storage, hugepages): 16 EiB.
pub const MAX_BYTES: i128 = 1 << 64;

/// A report refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct Refused {
    /// The field.
    pub field: String,
    /// Why.
    pub why: String,
}

fn refuse(field: impl Into<String>, why: impl Into<String>) -> Refused {
    Refused {
        field: field.into(),
        why: why.into(),
    }
}

fn text(field: &str, s: &str, max: usize) -> Result<(), Refused> {
    if s.len() > max {
        return Err(refuse(field, format!("{} bytes, at most {max}", s.len())));
    }
    Ok(())
}

fn count(field: &str, n: usize, max: usize) -> Result<(), Refused> {
    if n > max {
        return Err(refuse(field, format!("{n} entries, at most {max}")));
    }
    Ok(())
}

/// Checks the sizes of a heartbeat (capacity values are judged by [`capacity_problem`]).
pub fn check_heartbeat(hb: &Heartbeat) -> Result<(), Refused> {
    text("message", &hb.message, MAX_TEXT)?;
    text("kubernetesVersion", &hb.kubernetes_version, MAX_NAME)?;
    count(
        "apiEnablements",
        hb.api_enablements.len(),
        MAX_GROUP_VERSIONS,
    )?;
    let mut resources = 0usize;
    for e in &hb.api_enablements {
        text("apiEnablements.groupVersion", &e.group_version, MAX_NAME)?;
        resources = resources.saturating_add(e.resources.len());
        for r in &e.resources {
            text("apiEnablements.resources.name", &r.name, MAX_NAME)?;
            text("apiEnablements.resources.kind", &r.kind, MAX_NAME)?;
        }
    }
    count("apiEnablements.resources", resources, MAX_RESOURCES)?;
    for (field, m) in [
        ("allocatable", &hb.allocatable),
        ("allocated", &hb.allocated),
        ("allocating", &hb.allocating),
    ] {
        count(field, m.len(), MAX_QUANTITIES)?;
        for (k, v) in m {
            text(field, k, MAX_NAME)?;
            text(field, v, MAX_QUANTITY)?;
        }
    }
    Ok(())
}

/// Checks the sizes of a Work status.
pub fn check_work_status(ws: &WorkStatus) -> Result<(), Refused> {
    text("workName", &ws.work_name, MAX_NAME)?;
    text("message", &ws.message, MAX_TEXT)?;
    count("manifests", ws.manifests.len(), MAX_MANIFESTS)?;
    let mut bytes = 0usize;
    for m in &ws.manifests {
        text("manifests.message", &m.message, MAX_TEXT)?;
        if let Some(id) = &m.identifier {
            for s in [
                &id.group,
                &id.version,
                &id.kind,
                &id.resource,
                &id.namespace,
                &id.name,
            ] {
                text("manifests.identifier", s, MAX_NAME)?;
            }
        }
        bytes = bytes.saturating_add(m.status_json.len());
    }
    if bytes > MAX_STATUS_BYTES {
        return Err(refuse(
            "manifests.status",
            format!("{bytes} bytes, at most {MAX_STATUS_BYTES}"),
        ));
    }
    Ok(())
}

/// Whether a capacity resource is measured in bytes.
fn is_bytes(resource: &str) -> bool {
    resource.contains("memory")
        || resource.contains("storage")
        || resource.starts_with("hugepages-")
}

/// What is wrong with the capacity a heartbeat reports, if anything: a value that is not a
/// quantity, is negative, or is beyond any real cluster.
pub fn capacity_problem(hb: &Heartbeat) -> Option<String> {
    for (field, m) in [
        ("allocatable", &hb.allocatable),
        ("allocated", &hb.allocated),
        ("allocating", &hb.allocating),
    ] {
        let mut sorted: Vec<_> = m.iter().collect();
        sorted.sort();
        for (k, v) in sorted {
            let Some(milli) = flotilla_karmada::quantity::parse_milli(v) else {
                return Some(format!("{field} {k}={v:?} is not a quantity"));
            };
            if milli < 0 {
                return Some(format!("{field} {k}={v} is negative"));
            }
            let max = if is_bytes(k) { MAX_BYTES } else { MAX_COUNT };
            if milli / 1000 > max {
                return Some(format!("{field} {k}={v} is beyond any real cluster"));
            }
        }
    }
    None
}

/// A token bucket: `rate` tokens per second, at most `burst` saved.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A bucket's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens per second.
    pub per_second: f64,
    /// Most tokens saved.
    pub burst: f64,
}

/// Heartbeats: one per second on average (agents send one every 10 s), bursts of 10.
pub const HEARTBEATS: Rate = Rate {
    per_second: 1.0,
    burst: 10.0,
};
/// Work statuses: 50 per second on average, bursts of 2,000 (a resync of a large member).
pub const STATUSES: Rate = Rate {
    per_second: 50.0,
    burst: 2000.0,
};
/// Bytes of heartbeats and statuses: 128 KiB per second on average, bursts of 16 MiB (a
/// resync of a large member). Counted on top of the message rates.
pub const BYTES: Rate = Rate {
    per_second: 128.0 * 1024.0,
    burst: 16.0 * 1024.0 * 1024.0,
};
/// Certificate renewals: one a minute on average, bursts of 3.
pub const RENEWALS: Rate = Rate {
    per_second: 1.0 / 60.0,
    burst: 3.0,
};
/// New streams: one every 5 s on average, bursts of 10.
pub const STREAMS: Rate = Rate {
    per_second: 0.2,
    burst: 10.0,
};

impl Bucket {
    /// A full bucket.
    pub fn full(rate: Rate, now: Instant) -> Self {
        Self {
            tokens: rate.burst,
            last: now,
        }
    }

    /// Takes one token at `now`: `None` if there was one, else how long until there is.
    pub fn take(&mut self, rate: Rate, now: Instant) -> Option<Duration> {
        self.take_n(rate, now, 1.0)
    }

    /// Takes `cost` tokens (at most a burst) at `now`: `None` if there were enough, else how
    /// long until there are.
    pub fn take_n(&mut self, rate: Rate, now: Instant, cost: f64) -> Option<Duration> {
        let cost = cost.clamp(0.0, rate.burst);
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.last = now;
        if self.tokens >= cost {
            self.tokens -= cost;
            None
        } else {
            let wait = (cost - self.tokens) / rate.per_second.max(f64::MIN_POSITIVE);
            Some(Duration::from_secs_f64(wait.min(3600.0)))
        }
    }
}

/// Which bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Heartbeats.
    Heartbeat,
    /// Work statuses.
    Status,
    /// New streams.
    Stream,
    /// Certificate renewals.
    Renew,
    /// Bytes of heartbeats and statuses.
    Bytes,
}

impl Kind {
    fn rate(self) -> Rate {
        match self {
            Kind::Heartbeat => HEARTBEATS,
            Kind::Status => STATUSES,
            Kind::Stream => STREAMS,
            Kind::Renew => RENEWALS,
            Kind::Bytes => BYTES,
        }
    }
}

/// The buckets of every cluster.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<(String, Kind), Bucket>>,
}

impl Limiter {
    /// Takes a token of `kind` for `cluster`: `None` if allowed now, else the wait.
    pub fn take(&self, cluster: &str, kind: Kind) -> Option<Duration> {
        self.take_n(cluster, kind, 1)
    }

    fn take_n(&self, cluster: &str, kind: Kind, cost: usize) -> Option<Duration> {
        let now = Instant::now();
        let rate = kind.rate();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        b.entry((cluster.to_owned(), kind))
            .or_insert_with(|| Bucket::full(rate, now))
            .take_n(rate, now, cost as f64)
    }

    /// Waits until `cluster` may send one more message of `kind`, of `bytes` bytes.
    pub async fn wait(&self, cluster: &str, kind: Kind, bytes: usize) {
        while let Some(d) = self.take(cluster, kind) {
            tokio::time::sleep(d).await;
        }
        while let Some(d) = self.take_n(cluster, Kind::Bytes, bytes) {
            tokio::time::sleep(d).await;
        }
    }

    /// Forgets a removed cluster.
    pub fn forget(&self, cluster: &str) {
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        b.retain(|(c, _), _| c != cluster);
    }
}

#[cfg(test)]
mod tests {
    use flotilla_proto::v1::{ApiEnablement, ApiResource, ManifestStatus};

    use super::*;

    #[test]
    fn sizes_are_bounded() {
        let ok = Heartbeat {
            message: "fine".into(),
            allocatable: [("cpu".to_owned(), "8".to_owned())].into(),
            ..Default::default()
        };
        assert_eq!(check_heartbeat(&ok), Ok(()));
        let long = Heartbeat {
            message: "x".repeat(MAX_TEXT + 1),
            ..Default::default()
        };
        assert_eq!(
            check_heartbeat(&long).map_err(|e| e.field),
            Err("message".into())
        );
        let many = Heartbeat {
            allocated: (0..=MAX_QUANTITIES)
                .map(|i| (format!("r{i}"), "1".into()))
                .collect(),
            ..Default::default()
        };
        assert!(check_heartbeat(&many).is_err());
        let resources = Heartbeat {
            api_enablements: (0..9)
                .map(|g| ApiEnablement {
                    group_version: format!("g{g}/v1"),
                    resources: (0..1000)
                        .map(|i| ApiResource {
                            name: format!("r{i}"),
                            kind: format!("K{i}"),
                        })
                        .collect(),
                })
                .collect(),
            api_enablements_included: true,
            ..Default::default()
        };
        assert_eq!(
            check_heartbeat(&resources).map_err(|e| e.field),
            Err("apiEnablements.resources".into())
        );
        let status = |n: usize, bytes: usize| WorkStatus {
            work_name: "w".into(),
            manifests: (0..n)
                .map(|_| ManifestStatus {
                    status_json: vec![b' '; bytes].into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        assert_eq!(check_work_status(&status(2, 1000)), Ok(()));
        assert!(check_work_status(&status(MAX_MANIFESTS + 1, 0)).is_err());
        assert!(check_work_status(&status(2, MAX_STATUS_BYTES / 2 + 1)).is_err());
    }

    #[test]
    fn absurd_capacity_is_named() {
        let hb = |k: &str, v: &str| Heartbeat {
            allocatable: [(k.to_owned(), v.to_owned())].into(),
            ..Default::default()
        };
        assert_eq!(capacity_problem(&hb("cpu", "64")), None);
        assert_eq!(capacity_problem(&hb("memory", "512Gi")), None);
        assert_eq!(capacity_problem(&hb("pods", "110")), None);
        for (k, v) in [
            ("cpu", "-1"),
            ("cpu", "lots"),
            ("cpu", "1e18"),
            ("pods", "100000000"),
            ("memory", "100Ei"),
        ] {
            assert!(capacity_problem(&hb(k, v)).is_some(), "{k}={v}");
        }
    }

    #[test]
    fn buckets_allow_bursts_then_the_rate() {
        let rate = Rate {
            per_second: 10.0,
            burst: 3.0,
        };
        let t0 = Instant::now();
        let mut b = Bucket::full(rate, t0);
        for _ in 0..3 {
            assert_eq!(b.take(rate, t0), None);
        }
        let wait = b.take(rate, t0).unwrap_or_default();
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // 100 ms later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(b.take(rate, t1), None);
        assert!(b.take(rate, t1).is_some());
        // A long pause saves no more than the burst.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(b.take(rate, t2), None);
        }
        assert!(b.take(rate, t2).is_some());
    }

    #[test]
    fn the_limiter_keeps_clusters_apart() {
        let l = Limiter::default();
        for _ in 0..STREAMS.burst as usize {
            assert_eq!(l.take("a", Kind::Stream), None);
        }
        assert!(l.take("a", Kind::Stream).is_some());
        assert_eq!(l.take("b", Kind::Stream), None);
        assert_eq!(l.take("a", Kind::Heartbeat), None);
        l.forget("a");
        assert_eq!(l.take("a", Kind::Stream), None);
    }
}
