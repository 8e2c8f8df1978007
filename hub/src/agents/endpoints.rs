//! Endpoint reports of exported Services, folded into EndpointSlices on the hub.
//!
//! A report is checked against its bounds, then each Service in it against the cluster's own
//! Works (only a Service the hub exports from that cluster is taken), and written as the
//! cluster's copies of the Service's EndpointSlices in the Service's namespace
//! ([`flotilla_karmada::discovery::stored`]). The service discovery controller reads those.

use std::collections::BTreeSet;
use std::sync::Arc;

use flotilla_apimachinery::selector::{FieldSelector, LabelSelector};
use flotilla_karmada::discovery::stored::{same_content, since_of, stored_slice};
use flotilla_karmada::discovery::{
    Endpoint, MCS_SERVICE_NAME_LABEL, PortShape, SOURCE_CLUSTER_LABEL, ServiceShape, Slice,
    SlicePort,
};
use flotilla_proto::v1::{ExportedService, ServiceEndpoints};
use serde_json::Value;

use crate::api::deletion::DeleteOptions;
use crate::api::error::ApiError;
use crate::api::meta;
use crate::api::objects::Objects;
use crate::registry::Resource;

/// Most Services one report may name.
pub const MAX_SERVICES: usize = 2000;
/// Most EndpointSlices per Service.
pub const MAX_SLICES: usize = 100;
/// Most endpoints per EndpointSlice (Kubernetes' own limit).
pub const MAX_ENDPOINTS: usize = 1000;
/// Most addresses per endpoint, and ports per Service or slice.
pub const MAX_SMALL_LIST: usize = 100;
/// Longest name or string field.
pub const MAX_STRING: usize = 253;

/// What one report changed on the hub.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Folded {
    /// Slices created or updated.
    pub written: usize,
    /// Slices deleted.
    pub deleted: usize,
    /// Services left out because the hub does not export them from this cluster.
    pub refused: usize,
}

fn long(s: &str) -> bool {
    s.len() > MAX_STRING
}

/// Refuses a report past its bounds.
pub fn check(r: &ServiceEndpoints) -> Result<(), String> {
    if r.services.len() > MAX_SERVICES || r.exported.len() > MAX_SERVICES {
        return Err(format!("more than {MAX_SERVICES} Services in one report"));
    }
    if r.exported.iter().any(|e| long(e)) {
        return Err("an exported Service name is too long".into());
    }
    for s in &r.services {
        let what = format!("Service {}/{}", s.namespace, s.name);
        if [&s.namespace, &s.name, &s.work_name]
            .iter()
            .any(|v| long(v))
        {
            return Err(format!("{what}: a name is too long"));
        }
        if s.slices.len() > MAX_SLICES || s.ports.len() > MAX_SMALL_LIST {
            return Err(format!(
                "{what}: more than {MAX_SLICES} slices or {MAX_SMALL_LIST} ports"
            ));
        }
        if s.ports
            .iter()
            .any(|p| long(&p.name) || long(&p.protocol) || long(&p.app_protocol))
        {
            return Err(format!("{what}: a port field is too long"));
        }
        for sl in &s.slices {
            if long(&sl.name) || long(&sl.address_type) {
                return Err(format!("{what}: a slice name is too long"));
            }
            if sl.endpoints.len() > MAX_ENDPOINTS || sl.ports.len() > MAX_SMALL_LIST {
                return Err(format!(
                    "{what}: slice {} has more than {MAX_ENDPOINTS} endpoints or {MAX_SMALL_LIST} ports",
                    sl.name
                ));
            }
            if sl
                .ports
                .iter()
                .any(|p| long(&p.name) || long(&p.protocol) || long(&p.app_protocol))
            {
                return Err(format!("{what}: a slice port field is too long"));
            }
            for e in &sl.endpoints {
                if e.addresses.len() > MAX_SMALL_LIST
                    || e.addresses.iter().any(|a| long(a))
                    || long(&e.zone)
                    || long(&e.hostname)
                {
                    return Err(format!(
                        "{what}: an endpoint of slice {} is too large",
                        sl.name
                    ));
                }
            }
        }
    }
    Ok(())
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// A reported Service's shape.
pub fn shape_of(s: &ExportedService) -> ServiceShape {
    ServiceShape::new(
        s.headless,
        s.ports
            .iter()
            .map(|p| PortShape {
                name: p.name.clone(),
                protocol: if p.protocol.is_empty() {
                    "TCP".to_owned()
                } else {
                    p.protocol.clone()
                },
                port: p.port,
                app_protocol: opt(&p.app_protocol),
            })
            .collect(),
    )
}

/// A reported Service's slices.
pub fn slices_of(s: &ExportedService) -> Vec<Slice> {
    s.slices
        .iter()
        .map(|sl| Slice {
            name: sl.name.clone(),
            address_type: sl.address_type.clone(),
            ports: sl
                .ports
                .iter()
                .map(|p| SlicePort {
                    name: opt(&p.name),
                    protocol: opt(&p.protocol),
                    port: p.port,
                    app_protocol: opt(&p.app_protocol),
                })
                .collect(),
            endpoints: sl
                .endpoints
                .iter()
                .map(|e| Endpoint {
                    addresses: e.addresses.clone(),
                    ready: e.ready,
                    serving: e.serving,
                    terminating: e.terminating,
                    zone: opt(&e.zone),
                    hostname: opt(&e.hostname),
                })
                .collect(),
        })
        .collect()
}

/// Whether `work` (in the cluster's execution namespace) is the hub's export of the Service.
pub fn exports(work: &Value, namespace: &str, name: &str) -> bool {
    let annotated = work
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(flotilla_proto::EXPORT_ANNOTATION))
        .and_then(Value::as_str)
        == Some("true");
    let Some(m) = work.pointer("/spec/workload/manifests/0") else {
        return false;
    };
    annotated
        && m.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && m.get("kind").and_then(Value::as_str) == Some("Service")
        && m.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
        && m.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            == namespace
}

fn endpoint_slices() -> Result<Arc<Resource>, ApiError> {
    crate::registry::builtin_resource("discovery.k8s.io", "v1", "endpointslices")
        .ok_or_else(|| ApiError::internal("endpointslices are not served"))
}

fn selector(cluster: &str, service: Option<&str>) -> Result<LabelSelector, ApiError> {
    let mut s = format!("{SOURCE_CLUSTER_LABEL}={cluster}");
    if let Some(svc) = service {
        s.push_str(&format!(",{MCS_SERVICE_NAME_LABEL}={svc}"));
    }
    LabelSelector::parse(&s).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn list(
    objects: &Objects,
    res: &Resource,
    ns: Option<&str>,
    labels: &LabelSelector,
) -> Result<Vec<Value>, ApiError> {
    let (items, _, _) = objects
        .list(res, ns, labels, &FieldSelector::default(), 0, None)
        .await?;
    Ok(items)
}

async fn delete(objects: &Objects, res: &Resource, v: &Value) -> Result<bool, ApiError> {
    let ns = meta::str_at(v, "/metadata/namespace");
    let Some(name) = meta::str_at(v, "/metadata/name") else {
        return Ok(false);
    };
    match objects
        .delete(res, ns, name, &DeleteOptions::default())
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.code.as_u16() == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes one cluster's report: its copies of each reported Service's slices, and (for a
/// full report) the removal of those of Services it no longer exports.
pub async fn fold(
    objects: &Objects,
    cluster: &str,
    report: &ServiceEndpoints,
) -> Result<Folded, ApiError> {
    let res = endpoint_slices()?;
    let works = super::work::works()?;
    let es = flotilla_proto::execution_namespace(cluster);
    let mut out = Folded::default();
    for s in &report.services {
        let exported = match objects.get(&works, Some(&es), &s.work_name).await {
            Ok(w) => exports(&w, &s.namespace, &s.name),
            Err(e) if e.code.as_u16() == 404 => false,
            Err(e) => return Err(e),
        };
        let existing = list(
            objects,
            &res,
            Some(&s.namespace),
            &selector(cluster, Some(&s.name))?,
        )
        .await?;
        let wanted: Vec<Value> = if exported && s.present {
            let since = existing
                .iter()
                .find_map(|v| since_of(v).map(str::to_owned))
                .unwrap_or_else(meta::now);
            let shape = shape_of(s);
            slices_of(s)
                .iter()
                .map(|sl| stored_slice(cluster, &s.namespace, &s.name, &shape, &since, sl))
                .collect()
        } else {
            Vec::new()
        };
        if !exported {
            out.refused += 1;
        }
        for w in &wanted {
            let name = meta::str_at(w, "/metadata/name").unwrap_or_default();
            let current = existing
                .iter()
                .find(|v| meta::str_at(v, "/metadata/name") == Some(name));
            match current {
                Some(c) if same_content(c, w) => {}
                Some(_) => {
                    objects
                        .update(
                            &res,
                            Some(&s.namespace),
                            name,
                            w.clone(),
                            None,
                            &super::work::opts(),
                        )
                        .await?;
                    out.written += 1;
                }
                None => {
                    objects
                        .create(&res, Some(&s.namespace), w.clone(), &super::work::opts())
                        .await?;
                    out.written += 1;
                }
            }
        }
        let keep: BTreeSet<&str> = wanted
            .iter()
            .filter_map(|w| meta::str_at(w, "/metadata/name"))
            .collect();
        for v in &existing {
            if !meta::str_at(v, "/metadata/name").is_some_and(|n| keep.contains(n))
                && delete(objects, &res, v).await?
            {
                out.deleted += 1;
            }
        }
    }
    if report.full {
        let exported: BTreeSet<&str> = report.exported.iter().map(String::as_str).collect();
        for v in list(objects, &res, None, &selector(cluster, None)?).await? {
            let key = format!(
                "{}/{}",
                meta::str_at(&v, "/metadata/namespace").unwrap_or_default(),
                v.pointer("/metadata/labels")
                    .and_then(|l| l.get(MCS_SERVICE_NAME_LABEL))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            );
            if !exported.contains(key.as_str()) && delete(objects, &res, &v).await? {
                out.deleted += 1;
            }
        }
    }
    Ok(out)
}

/// Deletes every copy of a removed cluster's slices; returns how many. Errors are logged:
/// consumers already stop using a cluster the hub no longer has.
pub async fn forget_cluster(objects: &Objects, cluster: &str) -> usize {
    let run = async {
        let res = endpoint_slices()?;
        let mut n = 0;
        for v in list(objects, &res, None, &selector(cluster, None)?).await? {
            if delete(objects, &res, &v).await? {
                n += 1;
            }
        }
        Ok::<usize, ApiError>(n)
    };
    match run.await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(cluster, error = %e.message, "removing a deleted cluster's endpoint copies failed");
            0
        }
    }
}

#[cfg(test)]
mod tests;
