//! The cache's view of service discovery: MultiClusterServices and the hub's copies of
//! provider clusters' EndpointSlices, by the Service (`namespace/name`) they are about.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use flotilla_karmada::discovery::{MANAGED_BY, MANAGED_BY_LABEL, MCS_SERVICE_NAME_LABEL};
use serde_json::Value;

use super::keys::prefix;

/// MultiClusterServices and imported EndpointSlice copies, indexed by Service.
#[derive(Debug, Default)]
pub struct DiscoveryIndex {
    mcs: HashMap<String, Bytes>,
    copies: HashMap<String, BTreeMap<String, Bytes>>,
    copy_service: HashMap<String, String>,
}

/// `namespace/name` of a namespaced store key under `prefix`.
fn service_of_key(key: &str, prefix: &str) -> Option<String> {
    let rest = key.strip_prefix(prefix)?;
    rest.contains('/').then(|| rest.to_owned())
}

/// `namespace/service` of one of our EndpointSlice copies; `None` for any other slice.
pub fn service_of_copy(v: &Value) -> Option<String> {
    let labels = v.pointer("/metadata/labels")?;
    if labels.get(MANAGED_BY_LABEL).and_then(Value::as_str) != Some(MANAGED_BY) {
        return None;
    }
    let svc = labels.get(MCS_SERVICE_NAME_LABEL)?.as_str()?;
    let ns = v.pointer("/metadata/namespace")?.as_str()?;
    Some(format!("{ns}/{svc}"))
}

impl DiscoveryIndex {
    /// Records a MultiClusterService; returns its Service.
    pub fn upsert_mcs(&mut self, key: &str, bytes: Bytes) -> Option<String> {
        let svc = service_of_key(key, prefix::MCS)?;
        self.mcs.insert(svc.clone(), bytes);
        Some(svc)
    }

    /// Forgets a MultiClusterService; returns its Service.
    pub fn remove_mcs(&mut self, key: &str) -> Option<String> {
        let svc = service_of_key(key, prefix::MCS)?;
        self.mcs.remove(&svc).map(|_| svc)
    }

    /// Records an EndpointSlice copy (ignored unless it is one of ours); returns the
    /// Services it was and is about.
    pub fn upsert_copy(&mut self, key: &str, bytes: Bytes, parsed: Option<&Value>) -> Vec<String> {
        let mut out: Vec<String> = self.remove_copy(key).into_iter().collect();
        if let Some(svc) = parsed.and_then(service_of_copy) {
            self.copies
                .entry(svc.clone())
                .or_default()
                .insert(key.to_owned(), bytes);
            self.copy_service.insert(key.to_owned(), svc.clone());
            if !out.contains(&svc) {
                out.push(svc);
            }
        }
        out
    }

    /// Forgets an EndpointSlice copy; returns its Service.
    pub fn remove_copy(&mut self, key: &str) -> Option<String> {
        let svc = self.copy_service.remove(key)?;
        if let Some(m) = self.copies.get_mut(&svc) {
            m.remove(key);
            if m.is_empty() {
                self.copies.remove(&svc);
            }
        }
        Some(svc)
    }

    /// The MultiClusterService of a Service, parsed.
    pub fn mcs(&self, svc: &str) -> Option<Value> {
        self.mcs
            .get(svc)
            .and_then(|b| serde_json::from_slice(b).ok())
    }

    /// The copies of a Service's provider slices, parsed.
    pub fn copies(&self, svc: &str) -> Vec<Value> {
        self.copies
            .get(svc)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|b| serde_json::from_slice(b).ok())
            .collect()
    }

    /// Every Service with a MultiClusterService or copies.
    pub fn services(&self) -> BTreeSet<String> {
        self.mcs.keys().chain(self.copies.keys()).cloned().collect()
    }

    /// The Services with a MultiClusterService.
    pub fn mcs_services(&self) -> impl Iterator<Item = &String> {
        self.mcs.keys()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn copy(svc: &str, ours: bool) -> (Bytes, Value) {
        let managed = if ours {
            MANAGED_BY
        } else {
            "endpointslice-controller.k8s.io"
        };
        let v = json!({"metadata": {"namespace": "shop", "name": "imported-a-x",
            "labels": {MANAGED_BY_LABEL: managed, MCS_SERVICE_NAME_LABEL: svc}}});
        (Bytes::from(v.to_string()), v)
    }

    #[test]
    fn copies_follow_their_service() {
        let mut ix = DiscoveryIndex::default();
        let k = "/discovery.k8s.io/endpointslices/shop/imported-a-x";
        let (b, v) = copy("web", true);
        assert_eq!(ix.upsert_copy(k, b, Some(&v)), ["shop/web"]);
        assert_eq!(ix.copies("shop/web").len(), 1);
        // Relabelled to another Service: both are affected.
        let (b, v) = copy("api", true);
        assert_eq!(ix.upsert_copy(k, b, Some(&v)), ["shop/web", "shop/api"]);
        assert!(ix.copies("shop/web").is_empty());
        // A slice that is not ours is not indexed.
        let (b, v) = copy("api", false);
        assert_eq!(ix.upsert_copy(k, b, Some(&v)), ["shop/api"]);
        assert!(ix.services().is_empty());
        assert_eq!(ix.remove_copy(k), None);
        let m = "/networking.karmada.io/multiclusterservices/shop/web";
        assert_eq!(
            ix.upsert_mcs(m, Bytes::from_static(b"{}")),
            Some("shop/web".into())
        );
        assert_eq!(ix.services().into_iter().collect::<Vec<_>>(), ["shop/web"]);
        assert_eq!(ix.remove_mcs(m), Some("shop/web".into()));
    }
}
