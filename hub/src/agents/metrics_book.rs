//! The latest workload metrics each agent reported, kept in memory for the FederatedHPA
//! controller. Metrics are samples, not state: nothing is stored, and a hub restart simply
//! waits one report period for fresh ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_proto::v1::WorkloadMetricsReport;

/// Most workloads one report may describe.
pub const MAX_REPORTS: usize = 500;
/// Most bytes of reports one cluster may keep (its previous set is replaced).
pub const MAX_BYTES: usize = 1024 * 1024;
/// Reports older than this are not used (four report periods).
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// A workload on the hub: group, kind, namespace, name.
pub type WorkloadKey = (String, String, String, String);

/// One cluster's report about one workload, and when it arrived.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The cluster.
    pub cluster: String,
    /// The report.
    pub report: Arc<WorkloadMetricsReport>,
    /// When the hub received it.
    pub received: Instant,
}

/// The latest report of every (workload, cluster).
#[derive(Debug, Default)]
pub struct MetricsBook {
    by_workload: Mutex<HashMap<WorkloadKey, HashMap<String, Entry>>>,
    /// What each cluster reported last, so a report replaces the cluster's previous set.
    by_cluster: Mutex<HashMap<String, Vec<WorkloadKey>>>,
    /// Workload reports accepted.
    received: prometheus_client::metrics::counter::Counter,
}

/// Why a report was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BookError {
    /// Too many workloads in one report.
    #[error("a metrics report may describe at most {MAX_REPORTS} workloads, this one has {0}")]
    TooMany(usize),
    /// Too many bytes in one report.
    #[error("a metrics report may hold at most {MAX_BYTES} bytes, this one has {0}")]
    TooLarge(usize),
}

impl MetricsBook {
    /// An empty book.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// An empty book counting the workload reports it accepts on `received`.
    pub fn counting(received: prometheus_client::metrics::counter::Counter) -> Arc<Self> {
        Arc::new(Self {
            received,
            ..Self::default()
        })
    }

    /// Records `cluster`'s reports, replacing everything it reported before.
    pub fn record(
        &self,
        cluster: &str,
        reports: Vec<WorkloadMetricsReport>,
    ) -> Result<(), BookError> {
        if reports.len() > MAX_REPORTS {
            return Err(BookError::TooMany(reports.len()));
        }
        let bytes: usize = reports
            .iter()
            .map(prost::Message::encoded_len)
            .fold(0, usize::saturating_add);
        if bytes > MAX_BYTES {
            return Err(BookError::TooLarge(bytes));
        }
        let now = Instant::now();
        self.received
            .inc_by(u64::try_from(reports.len()).unwrap_or(u64::MAX));
        let mut keys = Vec::with_capacity(reports.len());
        let mut by_workload = self.by_workload.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_cluster = self.by_cluster.lock().unwrap_or_else(|e| e.into_inner());
        for old in by_cluster.remove(cluster).unwrap_or_default() {
            if let Some(m) = by_workload.get_mut(&old) {
                m.remove(cluster);
                if m.is_empty() {
                    by_workload.remove(&old);
                }
            }
        }
        for r in reports {
            let Some(w) = r.workload.as_ref() else {
                continue;
            };
            let key = (
                w.group.clone(),
                w.kind.clone(),
                w.namespace.clone(),
                w.name.clone(),
            );
            keys.push(key.clone());
            by_workload.entry(key).or_default().insert(
                cluster.to_owned(),
                Entry {
                    cluster: cluster.to_owned(),
                    report: Arc::new(r),
                    received: now,
                },
            );
        }
        by_cluster.insert(cluster.to_owned(), keys);
        Ok(())
    }

    /// The fresh reports about a workload, by cluster.
    pub fn reports(&self, key: &WorkloadKey) -> HashMap<String, Entry> {
        let by_workload = self.by_workload.lock().unwrap_or_else(|e| e.into_inner());
        by_workload
            .get(key)
            .map(|m| {
                m.iter()
                    .filter(|(_, e)| e.received.elapsed() <= MAX_AGE)
                    .map(|(c, e)| (c.clone(), e.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use flotilla_proto::v1::ManifestIdentifier;

    use super::*;

    fn report(name: &str) -> WorkloadMetricsReport {
        WorkloadMetricsReport {
            workload: Some(ManifestIdentifier {
                group: "apps".into(),
                kind: "Deployment".into(),
                namespace: "demo".into(),
                name: name.into(),
                ..Default::default()
            }),
            pods: 3,
            ..Default::default()
        }
    }

    fn key(name: &str) -> WorkloadKey {
        (
            "apps".into(),
            "Deployment".into(),
            "demo".into(),
            name.into(),
        )
    }

    #[test]
    fn a_report_replaces_the_clusters_previous_set() {
        let book = MetricsBook::new();
        book.record("m1", vec![report("a"), report("b")]).unwrap();
        book.record("m2", vec![report("a")]).unwrap();
        assert_eq!(book.reports(&key("a")).len(), 2);
        book.record("m1", vec![report("b")]).unwrap();
        assert_eq!(book.reports(&key("a")).keys().collect::<Vec<_>>(), ["m2"]);
        assert_eq!(book.reports(&key("b")).len(), 1);
        book.record("m2", Vec::new()).unwrap();
        assert!(book.reports(&key("a")).is_empty());
        let many = vec![report("x"); MAX_REPORTS + 1];
        assert_eq!(
            book.record("m1", many),
            Err(BookError::TooMany(MAX_REPORTS + 1))
        );
        let mut huge = report("y");
        huge.error = "x".repeat(MAX_BYTES);
        assert!(matches!(
            book.record("m1", vec![huge]),
            Err(BookError::TooLarge(_))
        ));
        // A refused report changes nothing.
        assert_eq!(book.reports(&key("b")).len(), 1);
    }
}
