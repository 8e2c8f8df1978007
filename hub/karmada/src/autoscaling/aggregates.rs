//! What the member agents report per workload and the hub adds up over clusters: the
//! per-class sums of a Resource or Pods metric over the workload's pods ([`ResourceAggregate`],
//! [`PodsAggregate`]) and its pod counts ([`WorkloadPods`]), summed with overflow checks
//! ([`sum_clusters`]).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Adding two clusters' reports overflowed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the sum of the clusters' {field} overflows")]
pub struct AggregateOverflow {
    /// The field that overflowed.
    pub field: &'static str,
}

/// A per-cluster report the hub adds up over clusters.
pub trait Aggregate: Sized {
    /// `self + other`, field by field, failing on overflow.
    fn checked_add(&self, other: &Self) -> Result<Self, AggregateOverflow>;
}

/// The sum of every cluster's report (zero for none).
pub fn sum_clusters<'a, A>(reports: impl IntoIterator<Item = &'a A>) -> Result<A, AggregateOverflow>
where
    A: Aggregate + Default + 'a,
{
    reports
        .into_iter()
        .try_fold(A::default(), |sum, r| sum.checked_add(r))
}

impl Aggregate for i64 {
    fn checked_add(&self, other: &Self) -> Result<Self, AggregateOverflow> {
        i64::checked_add(*self, *other).ok_or(AggregateOverflow { field: "value" })
    }
}

/// Implements [`Aggregate`] as the checked sum of every listed field.
macro_rules! field_sums {
    ($ty:ident { $($field:ident: $name:literal),* $(,)? }) => {
        impl Aggregate for $ty {
            fn checked_add(&self, o: &Self) -> Result<Self, AggregateOverflow> {
                Ok($ty {
                    $($field: self.$field.checked_add(o.$field)
                        .ok_or(AggregateOverflow { field: $name })?,)*
                })
            }
        }
    };
}

/// One cluster's (or the sum of all clusters') view of a Resource or ContainerResource metric
/// over the pods of one workload. Values are milli-units (millicores, milli-bytes).
///
/// The agent sorts every pod the workload's selector matches into one class, in this order:
/// *ignored* (deleting or `Failed`), *unready* (`Pending`; for `cpu` also the HPA's CPU
/// initialization rules: not Ready, or no full metric window since turning Ready, within
/// `--horizontal-pod-autoscaler-cpu-initialization-period`), *missing* (no metric sample), else
/// *ready*. Requests are the pod's (or the named container's) requests for the resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAggregate {
    /// Summed usage of the ready pods.
    pub usage_sum: i64,
    /// Summed requests of the ready pods.
    pub request_sum: i64,
    /// Pods with a metric, counted ready.
    pub ready_count: u32,
    /// Pods counted unready.
    pub unready_count: u32,
    /// Summed requests of the unready pods.
    pub unready_request_sum: i64,
    /// Pods without a metric.
    pub missing_count: u32,
    /// Summed requests of the pods without a metric.
    pub missing_request_sum: i64,
    /// Deleting or failed pods.
    pub ignored_count: u32,
    /// Pods, of any class, with a container that has no request for the resource.
    pub pods_without_request: u32,
}

impl ResourceAggregate {
    /// Pods of every class.
    pub(super) fn total(&self) -> u64 {
        u64::from(self.ready_count)
            + u64::from(self.unready_count)
            + u64::from(self.missing_count)
            + u64::from(self.ignored_count)
    }
}

field_sums!(ResourceAggregate {
    usage_sum: "usageSum",
    request_sum: "requestSum",
    ready_count: "readyCount",
    unready_count: "unreadyCount",
    unready_request_sum: "unreadyRequestSum",
    missing_count: "missingCount",
    missing_request_sum: "missingRequestSum",
    ignored_count: "ignoredCount",
    pods_without_request: "podsWithoutRequest",
});

/// One cluster's (or all clusters') view of a Pods metric (a custom metric per pod), milli-units.
///
/// Classes as for [`ResourceAggregate`], except that readiness does not matter for Pods
/// metrics: only `Pending` pods are unready.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodsAggregate {
    /// Summed values of the ready pods.
    pub value_sum: i64,
    /// Pods with a value.
    pub ready_count: u32,
    /// `Pending` pods.
    pub unready_count: u32,
    /// Pods without a value.
    pub missing_count: u32,
    /// Deleting or failed pods.
    pub ignored_count: u32,
}

field_sums!(PodsAggregate {
    value_sum: "valueSum",
    ready_count: "readyCount",
    unready_count: "unreadyCount",
    missing_count: "missingCount",
    ignored_count: "ignoredCount",
});

/// The workload's pods and replicas in one cluster (or all clusters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadPods {
    /// The member workload's `status.replicas` (AverageValue targets of Object and External
    /// metrics divide by it).
    pub status_replicas: i32,
    /// Pods the selector matches, whatever their phase.
    pub pods: u32,
    /// Of those, `Running` and `Ready` (Value targets of Object and External metrics scale them).
    pub running_ready_pods: u32,
}

field_sums!(WorkloadPods {
    status_replicas: "statusReplicas",
    pods: "pods",
    running_ready_pods: "runningReadyPods",
});
