//! Service discovery: for one Service (`namespace/name`), hands the endpoints its provider
//! clusters report to its consumer clusters, through Works, and reports on the
//! ServiceExport, ServiceImport and MultiClusterService what it did.
//!
//! Providers are the clusters a ServiceExport is propagated to, or a MultiClusterService's
//! `providerClusters` (the renderer marks the Service's Work there for export, see
//! [`exported_in`]); their endpoints arrive as the hub's EndpointSlice copies
//! ([`crate::agents::endpoints`]). Consumers are the clusters a ServiceImport is propagated to
//! (they get a `derived-<name>` Service and the slices) and a MultiClusterService's
//! `consumerClusters` (the slices attach to the Service of the same name). Which providers
//! serve which consumer is [`flotilla_karmada::discovery::plan`].

use std::collections::{BTreeMap, BTreeSet};

use flotilla_karmada::discovery::stored::{shape_of, since_of, slice_of};
use flotilla_karmada::discovery::{
    AFFINITY_ANNOTATION, Affinity, Consumer, ConsumerPlan, DERIVED_PREFIX, Export,
    MCS_SERVICE_NAME_LABEL, Resolution, SOURCE_CLUSTER_LABEL, plan, render_slice, resolve,
};
use flotilla_karmada::scheduler::cluster::Readiness;
use serde_json::{Value, json};

use super::cache::State;
use super::keys::{SERVICE_LABEL, prefix};
use super::rendering::{discovery_work_name, execution_namespace, reconcile_works, targets};
use super::write;

/// The Work owner of a Service's discovery Works in the cache's index.
pub fn owner(svc: &str) -> String {
    format!("svc:{svc}")
}

/// The label value naming a Service on its discovery Works (`namespace.name`: neither part
/// may hold a dot).
pub fn label_value(svc: &str) -> String {
    svc.replacen('/', ".", 1)
}

fn split(svc: &str) -> Option<(&str, &str)> {
    svc.split_once('/')
}

/// A MultiClusterService's provider or consumer clusters: the listed ones (the current field,
/// else its deprecated predecessor), or every cluster when none are listed.
fn listed(mcs: &Value, field: &str, deprecated: &str) -> Option<BTreeSet<String>> {
    let names: BTreeSet<String> = mcs
        .pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .map(str::to_owned)
        .chain(
            mcs.pointer(&format!("/spec/{deprecated}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned),
        )
        .collect();
    (!names.is_empty()).then_some(names)
}

fn cross_cluster(mcs: &Value) -> bool {
    mcs.pointer("/spec/types")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|t| t == "CrossCluster"))
}

/// The clusters a propagated template (ServiceExport, ServiceImport) is placed in.
fn placed_in(state: &State, template_key: &str) -> BTreeSet<String> {
    state
        .binding_key_of_template(template_key)
        .and_then(|b| state.binding(&b))
        .map(|b| targets(&b).into_iter().map(|t| t.name).collect())
        .unwrap_or_default()
}

/// Whether the Service `svc` is exported from `cluster`: a ServiceExport placed there, or a
/// CrossCluster MultiClusterService whose providers include it.
pub fn exported_in(state: &State, svc: &str, cluster: &str) -> bool {
    let export = format!("{}{svc}", prefix::SERVICE_EXPORTS);
    if state.has_template(&export) && placed_in(state, &export).contains(cluster) {
        return true;
    }
    state.discovery.mcs(svc).is_some_and(|m| {
        cross_cluster(&m)
            && listed(&m, "providerClusters", "serviceProvisionClusters")
                .is_none_or(|p| p.contains(cluster))
    })
}

/// The providers' exports of a Service, from the hub's copies and the Cluster objects.
fn exports(state: &State, svc: &str) -> Vec<Export> {
    let mut by_cluster: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for c in state.discovery.copies(svc) {
        if let Some(cluster) = c
            .pointer("/metadata/labels")
            .and_then(|l| l.get(SOURCE_CLUSTER_LABEL))
            .and_then(Value::as_str)
        {
            by_cluster.entry(cluster.to_owned()).or_default().push(c);
        }
    }
    by_cluster
        .into_iter()
        .filter_map(|(cluster, copies)| {
            let info = state.clusters().get(&cluster).map(|c| c.info.clone());
            let first = copies.first()?;
            Some(Export {
                region: info
                    .as_ref()
                    .map(|i| i.region.clone())
                    .filter(|r| !r.is_empty()),
                zone: info.as_ref().and_then(|i| i.zones.first().cloned()),
                healthy: info
                    .as_ref()
                    .is_some_and(|i| i.readiness == Readiness::Ready && !i.deleting),
                since: since_of(first).unwrap_or_default().to_owned(),
                shape: shape_of(first).unwrap_or_default(),
                slices: copies.iter().map(slice_of).collect(),
                cluster,
            })
        })
        .collect()
}

fn consumer(state: &State, cluster: &str) -> Consumer {
    let info = state.clusters().get(cluster).map(|c| c.info.clone());
    Consumer {
        cluster: cluster.to_owned(),
        region: info
            .as_ref()
            .map(|i| i.region.clone())
            .filter(|r| !r.is_empty()),
        zone: info.as_ref().and_then(|i| i.zones.first().cloned()),
    }
}

fn affinity(obj: &Value) -> (Affinity, Option<String>) {
    let raw = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(AFFINITY_ANNOTATION))
        .and_then(Value::as_str);
    match Affinity::parse(raw) {
        Ok(a) => (a, None),
        Err(e) => (Affinity::Region, Some(e)),
    }
}

/// The Service a ServiceImport creates in consumers: its ports, no selector, so only the
/// imported slices back it.
fn derived_service(import: &Value, ns: &str, name: &str, affinity: Affinity) -> Value {
    let headless = import.pointer("/spec/type").and_then(Value::as_str) == Some("Headless");
    let ports: Vec<Value> = import
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let mut o = json!({
                "port": p.get("port").cloned().unwrap_or(json!(0)),
                "protocol": p.get("protocol").and_then(Value::as_str).unwrap_or("TCP"),
            });
            for k in ["name", "appProtocol"] {
                if let Some(v) = p.get(k) {
                    o[k] = v.clone();
                }
            }
            o
        })
        .collect();
    let mut spec = json!({"type": "ClusterIP", "ports": ports});
    if headless {
        spec["clusterIP"] = json!("None");
    }
    if let Some(a) = import.pointer("/spec/sessionAffinity") {
        spec["sessionAffinity"] = a.clone();
    }
    if affinity != Affinity::None {
        spec["trafficDistribution"] = json!("PreferClose");
    }
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("{DERIVED_PREFIX}{name}"), "namespace": ns,
            "labels": {MCS_SERVICE_NAME_LABEL: name}},
        "spec": spec})
}

fn work(kind: &str, svc: &str, cluster: &str, manifests: Vec<Value>) -> Option<(String, Value)> {
    let (ns, name) = split(svc)?;
    let wname = discovery_work_name(kind, ns, name);
    let es = execution_namespace(cluster);
    Some((
        format!("{es}/{wname}"),
        json!({"apiVersion": "work.karmada.io/v1alpha1", "kind": "Work",
            "metadata": {"name": wname, "namespace": es,
                "labels": {SERVICE_LABEL: label_value(svc)}},
            "spec": {"workload": {"manifests": manifests}}}),
    ))
}

/// What one consumer of one kind receives, for the status.
struct Served {
    cluster: String,
    plan: ConsumerPlan,
}

fn conflict_condition(res: &Resolution<'_>, previous: Option<&Value>) -> Value {
    if res.conflicts.is_empty() {
        write::condition("Conflict", false, "NoConflicts", "", previous)
    } else {
        let reason = if res.conflicts.iter().any(|c| c.reason == "TypeConflict") {
            "TypeConflict"
        } else {
            "PortConflict"
        };
        let message = res
            .conflicts
            .iter()
            .map(|c| c.message.clone())
            .collect::<Vec<_>>()
            .join("; ");
        let message = format!("{message}; their endpoints are not used");
        write::condition("Conflict", true, reason, &message, previous)
    }
}

/// `Valid=False` when the affinity annotation has a value it cannot take (the default,
/// `region`, is used meanwhile).
fn affinity_condition(bad: Option<&str>, obj: &Value) -> Option<Value> {
    bad.map(|e| write::condition("Valid", false, "InvalidAffinity", e, previous(obj, "Valid")))
}

fn previous<'a>(obj: &'a Value, ty: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == ty))
}

/// Sets the conditions of `types` on `obj`'s status, keeping its other status fields and
/// conditions; `extra` sets further status fields.
fn with_conditions(obj: &Value, conditions: Vec<Value>, extra: &[(&str, Value)]) -> Value {
    let mut status = obj.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut list: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in conditions {
        match list.iter().position(|o| o["type"] == c["type"]) {
            Some(i) => list[i] = c,
            None => list.push(c),
        }
    }
    status["conditions"] = json!(list);
    for (k, v) in extra {
        status[*k] = v.clone();
    }
    status
}

/// The Works and status writes one Service needs.
pub fn decide(state: &State, svc: &str) -> super::Decision {
    let Some((ns, name)) = split(svc) else {
        return super::Decision::default();
    };
    let Some(works_res) = state.resource_of_key(prefix::WORKS).cloned() else {
        return super::Decision::default();
    };
    let exports = exports(state, svc);
    let res = resolve(&exports);
    let mut wanted: BTreeMap<String, Value> = BTreeMap::new();
    let mut writes = Vec::new();

    // ServiceImport: a derived Service and every chosen provider's slices.
    let import_key = format!("{}{svc}", prefix::SERVICE_IMPORTS);
    if let Some(import) = state.template(&import_key)
        && import.pointer("/metadata/deletionTimestamp").is_none()
    {
        let (aff, bad) = affinity(&import);
        let derived = format!("{DERIVED_PREFIX}{name}");
        let mut served = Vec::new();
        for cluster in placed_in(state, &import_key) {
            let p = plan(&res.accepted, &consumer(state, &cluster), aff, true);
            let mut manifests = vec![derived_service(&import, ns, name, aff)];
            manifests.extend(p.slices.iter().map(|s| render_slice(s, ns, &derived, name)));
            if let Some((k, w)) = work("import", svc, &cluster, manifests) {
                wanted.insert(k, w);
            }
            served.push(Served { cluster, plan: p });
        }
        let sources: BTreeSet<&String> = served.iter().flat_map(|s| &s.plan.sources).collect();
        let clusters: Vec<Value> = sources.iter().map(|c| json!({"cluster": c})).collect();
        let mut conditions = vec![conflict_condition(&res, previous(&import, "Conflict"))];
        conditions.extend(affinity_condition(bad.as_deref(), &import));
        let status = with_conditions(&import, conditions, &[("clusters", json!(clusters))]);
        if let Some(r) = state.resource_of_key(&import_key) {
            writes.extend(write::status(r, &import, status));
        }
    }

    // MultiClusterService CrossCluster: the chosen providers' slices, attached to the
    // Service of the same name in each consumer.
    if let Some(mcs) = state.discovery.mcs(svc)
        && mcs.pointer("/metadata/deletionTimestamp").is_none()
        && cross_cluster(&mcs)
    {
        let (aff, bad) = affinity(&mcs);
        let consumers: Vec<String> =
            match listed(&mcs, "consumerClusters", "serviceConsumptionClusters")
                .or_else(|| listed(&mcs, "range/clusterNames", "range/clusterNames"))
            {
                Some(c) => c.into_iter().collect(),
                None => state.clusters().keys().cloned().collect(),
            };
        let mut served = Vec::new();
        for cluster in consumers {
            let p = plan(&res.accepted, &consumer(state, &cluster), aff, false);
            let manifests: Vec<Value> = p
                .slices
                .iter()
                .map(|s| render_slice(s, ns, name, name))
                .collect();
            if !manifests.is_empty()
                && let Some((k, w)) = work("mcs", svc, &cluster, manifests)
            {
                wanted.insert(k, w);
            }
            served.push(Served { cluster, plan: p });
        }
        let starved: Vec<&str> = served
            .iter()
            .filter(|s| s.plan.ready_endpoints == 0)
            .map(|s| s.cluster.as_str())
            .collect();
        let dispatched = if starved.is_empty() {
            write::condition(
                "EndpointSliceDispatched",
                true,
                "EndpointSlicesDispatched",
                "every consumer cluster receives ready endpoints",
                previous(&mcs, "EndpointSliceDispatched"),
            )
        } else {
            write::condition(
                "EndpointSliceDispatched",
                false,
                "NoReadyEndpoints",
                &format!(
                    "no ready endpoint for consumer cluster(s) {}",
                    starved.join(", ")
                ),
                previous(&mcs, "EndpointSliceDispatched"),
            )
        };
        let mut conditions = vec![
            dispatched,
            conflict_condition(&res, previous(&mcs, "Conflict")),
        ];
        conditions.extend(affinity_condition(bad.as_deref(), &mcs));
        let consumers: Vec<Value> = served
            .iter()
            .map(|s| {
                json!({"cluster": s.cluster, "servedFromRegions": s.plan.regions,
                       "servedFromClusters": s.plan.sources, "readyEndpoints": s.plan.ready_endpoints})
            })
            .collect();
        let status = with_conditions(&mcs, conditions, &[("consumers", json!(consumers))]);
        if let Some(r) = state.resource_of_key(prefix::MCS) {
            writes.extend(write::status(r, &mcs, status));
        }
    }

    // ServiceExport: whether the Service exists to export, and conflicts.
    let export_key = format!("{}{svc}", prefix::SERVICE_EXPORTS);
    if let Some(export) = state.template(&export_key)
        && export.pointer("/metadata/deletionTimestamp").is_none()
    {
        let has_service = state.has_template(&format!("{}{svc}", prefix::SERVICES));
        let valid = if has_service {
            write::condition(
                "Valid",
                true,
                "ServiceExported",
                "the Service is exported",
                previous(&export, "Valid"),
            )
        } else {
            write::condition(
                "Valid",
                false,
                "NoService",
                &format!(
                    "there is no Service {name} in namespace {ns} on the hub; create it (and propagate it) to export it"
                ),
                previous(&export, "Valid"),
            )
        };
        let status = with_conditions(
            &export,
            vec![
                valid,
                conflict_condition(&res, previous(&export, "Conflict")),
            ],
            &[],
        );
        if let Some(r) = state.resource_of_key(&export_key) {
            writes.extend(write::status(r, &export, status));
        }
    }

    writes.extend(reconcile_works(state, &works_res, &owner(svc), wanted));
    super::Decision {
        writes,
        after: None,
        concurrent: true,
    }
}

#[cfg(test)]
mod tests;
