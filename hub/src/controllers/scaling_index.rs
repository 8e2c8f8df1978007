//! The cache's view of FederatedHPAs and CronFederatedHPAs: their objects and which
//! template each one scales, so a template change finds its autoscalers and the renderer
//! finds the metrics the members must report.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use serde_json::Value;

/// What the index remembers of one autoscaler.
#[derive(Debug, Clone)]
struct Entry {
    bytes: Bytes,
    /// The template key it scales (if its target resolves to a served kind).
    target: Option<String>,
}

/// FederatedHPAs and CronFederatedHPAs by key, and by the template they scale.
#[derive(Debug, Default)]
pub struct ScalingIndex {
    entries: HashMap<String, Entry>,
    by_target: HashMap<String, BTreeSet<String>>,
}

impl ScalingIndex {
    /// Records an autoscaler whose target template key is `target`. Returns the target it
    /// had before, if different.
    pub fn upsert(&mut self, key: &str, bytes: Bytes, target: Option<String>) -> Option<String> {
        let old = self.remove(key);
        if let Some(t) = &target {
            self.by_target
                .entry(t.clone())
                .or_default()
                .insert(key.to_owned());
        }
        self.entries.insert(
            key.to_owned(),
            Entry {
                bytes,
                target: target.clone(),
            },
        );
        old.filter(|o| Some(o) != target.as_ref())
    }

    /// Forgets an autoscaler; returns the template it scaled.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let e = self.entries.remove(key)?;
        if let Some(t) = &e.target
            && let Some(set) = self.by_target.get_mut(t)
        {
            set.remove(key);
            if set.is_empty() {
                self.by_target.remove(t);
            }
        }
        e.target
    }

    /// The autoscaler stored under `key`.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.entries
            .get(key)
            .and_then(|e| serde_json::from_slice(&e.bytes).ok())
    }

    /// The template an autoscaler scales.
    pub fn target_of(&self, key: &str) -> Option<&str> {
        self.entries.get(key).and_then(|e| e.target.as_deref())
    }

    /// The autoscalers scaling a template.
    pub fn scaling(&self, template: &str) -> impl Iterator<Item = &String> {
        self.by_target.get(template).into_iter().flatten()
    }

    /// Every autoscaler key.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }

    /// The metrics the members must report for a template: the `spec.metrics` of the
    /// FederatedHPAs scaling it, as one JSON list (sorted, without duplicates), or `None`
    /// when no FederatedHPA scales it.
    pub fn metrics_of(&self, template: &str, fhpa_prefix: &str) -> Option<String> {
        let mut specs: Vec<Value> = Vec::new();
        let mut any = false;
        for k in self
            .scaling(template)
            .filter(|k| k.starts_with(fhpa_prefix))
        {
            any = true;
            let Some(v) = self.get(k) else { continue };
            let metrics = match v.pointer("/spec/metrics").and_then(Value::as_array) {
                Some(m) if !m.is_empty() => m.clone(),
                _ => vec![flotilla_karmada::autoscaling::default_metric()],
            };
            for m in metrics {
                if !specs.contains(&m) {
                    specs.push(m);
                }
            }
        }
        if !any {
            return None;
        }
        specs.sort_by_key(|m| m.to_string());
        Some(Value::Array(specs).to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    const P: &str = "/autoscaling.karmada.io/federatedhpas/";

    fn fhpa(metrics: Value) -> Bytes {
        Bytes::from(json!({"spec": {"metrics": metrics}}).to_string())
    }

    #[test]
    fn follows_targets_and_merges_metrics() {
        let mut ix = ScalingIndex::default();
        let cpu = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}});
        let a = format!("{P}demo/a");
        assert_eq!(
            ix.upsert(
                &a,
                fhpa(json!([cpu])),
                Some("/apps/deployments/demo/web".into())
            ),
            None
        );
        assert_eq!(
            ix.scaling("/apps/deployments/demo/web").collect::<Vec<_>>(),
            [&a]
        );
        let m = ix.metrics_of("/apps/deployments/demo/web", P).unwrap();
        assert!(m.contains("\"cpu\""), "{m}");
        assert_eq!(ix.metrics_of("/apps/deployments/demo/other", P), None);
        // Retargeted: the old template loses it and is returned.
        assert_eq!(
            ix.upsert(
                &a,
                fhpa(json!([])),
                Some("/apps/deployments/demo/api".into())
            ),
            Some("/apps/deployments/demo/web".into())
        );
        assert_eq!(ix.scaling("/apps/deployments/demo/web").count(), 0);
        // No metrics means Karmada's default (cpu at 80%).
        let m = ix.metrics_of("/apps/deployments/demo/api", P).unwrap();
        assert!(m.contains("80"), "{m}");
        assert_eq!(ix.remove(&a), Some("/apps/deployments/demo/api".into()));
        assert_eq!(ix.keys().count(), 0);
    }
}
