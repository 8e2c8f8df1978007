//! EndpointSlice objects for consumer clusters.

use serde_json::{Map, Value, json};

use super::{
    ImportedSlice, MANAGED_BY, MANAGED_BY_LABEL, MCS_SERVICE_NAME_LABEL, SERVICE_NAME_LABEL,
    SOURCE_CLUSTER_LABEL,
};
use crate::scheduler::webster::fnv32a;

/// Longest object name Kubernetes accepts (DNS-1123 subdomain).
const MAX_NAME: usize = 253;

/// The name of a provider's slice in a consumer: `imported-<cluster>-<slice>`, shortened
/// with a hash when too long (Karmada's naming).
pub fn imported_slice_name(cluster: &str, slice: &str) -> String {
    let name = format!("imported-{cluster}-{slice}");
    if name.len() <= MAX_NAME {
        return name;
    }
    let head: String = name.chars().take(MAX_NAME - 9).collect();
    format!(
        "{}-{:08x}",
        head.trim_end_matches(['-', '.']),
        fnv32a(&name)
    )
}

/// The EndpointSlice written into a consumer: the provider's endpoints (without node names,
/// which belong to another cluster) attached to `service` in `namespace`, labelled with the
/// source cluster and the exported Service's name.
pub fn render_slice(
    imported: &ImportedSlice,
    namespace: &str,
    service: &str,
    exported: &str,
) -> Value {
    let s = &imported.slice;
    let ports: Vec<Value> = s
        .ports
        .iter()
        .map(|p| {
            let mut m = Map::new();
            if let Some(n) = &p.name {
                m.insert("name".into(), json!(n));
            }
            if let Some(v) = &p.protocol {
                m.insert("protocol".into(), json!(v));
            }
            if let Some(v) = p.port {
                m.insert("port".into(), json!(v));
            }
            if let Some(v) = &p.app_protocol {
                m.insert("appProtocol".into(), json!(v));
            }
            Value::Object(m)
        })
        .collect();
    let endpoints: Vec<Value> = s
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut conditions = Map::new();
            for (key, v) in [
                ("ready", e.ready),
                ("serving", e.serving),
                ("terminating", e.terminating),
            ] {
                if let Some(v) = v {
                    conditions.insert(key.into(), json!(v));
                }
            }
            let mut m = Map::new();
            m.insert("addresses".into(), json!(e.addresses));
            m.insert("conditions".into(), Value::Object(conditions));
            if let Some(z) = &e.zone {
                m.insert("zone".into(), json!(z));
            }
            if let Some(h) = &e.hostname {
                m.insert("hostname".into(), json!(h));
            }
            if let Some(Some(z)) = imported.hints.get(i) {
                m.insert("hints".into(), json!({"forZones": [{"name": z}]}));
            }
            Value::Object(m)
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": imported_slice_name(&imported.source_cluster, &s.name),
            "namespace": namespace,
            "labels": {
                SERVICE_NAME_LABEL: service,
                MANAGED_BY_LABEL: MANAGED_BY,
                SOURCE_CLUSTER_LABEL: imported.source_cluster,
                MCS_SERVICE_NAME_LABEL: exported,
            },
        },
        "addressType": s.address_type,
        "ports": ports,
        "endpoints": endpoints,
    })
}
