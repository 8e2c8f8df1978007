//! Cross-cluster autoscaling: the Kubernetes HPA algorithm over the pods of every member
//! ([`replicas`], with [`aggregates`], [`proposals`] and [`behavior`]) and CronFederatedHPA
//! schedules ([`cron`]). Pure functions over plain data; the hub's controllers feed them.

pub mod aggregates;
pub mod behavior;
pub mod cron;
pub mod proposals;
pub mod replicas;

#[cfg(test)]
mod tests;

/// The metric a FederatedHPA without `spec.metrics` scales on: average cpu utilization 80%
/// (Karmada's default, as the Kubernetes HPA's).
pub fn default_metric() -> serde_json::Value {
    serde_json::json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 80}}})
}
