//! Endpoints of exported Services: the Works the hub marks with
//! [`flotilla_proto::EXPORT_ANNOTATION`] name a Service; this member's copy of it (its type and
//! ports) and its EndpointSlices go to the hub, which hands them to consumer clusters.
//!
//! The conversions are pure functions; [`run`] reads the member whenever it says something
//! changed (a real member watches the exported Services and their slices, see [`watch`]),
//! and every [`RESYNC`], and sends only what changed. After a change of the exported set the
//! report is `full`: it names every exported Service (the hub drops the others' copies), still
//! with the data of the changed ones only; at the start of a session everything has changed.

use std::collections::BTreeMap;
use std::time::Duration;

use flotilla_proto::v1::{
    AgentMessage, EndpointPort, EndpointReport, EndpointSliceReport, ExportedService,
    ServiceEndpoints, ServicePortShape, agent_message,
};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::member::Member;

/// Most Services one agent exports; the rest are not reported.
pub const MAX_EXPORTS: usize = 2000;
/// Most EndpointSlices reported per Service.
pub const MAX_SLICES: usize = 100;
/// Most endpoints reported per EndpointSlice (Kubernetes allows 1,000).
pub const MAX_ENDPOINTS: usize = 1000;
/// Most Services in one message.
const BATCH: usize = 200;
/// How often the exported Services are read when the member reports no change.
pub const RESYNC: Duration = Duration::from_secs(30);
/// How long a report waits after a change for the ones that come with it.
const BURST: Duration = Duration::from_millis(50);
/// How long a report waits after a change of the exported set for the ones that come with it
/// (the hub marks many Works at once when a policy exports many Services).
const EXPORTS_SETTLE: Duration = Duration::from_millis(250);

/// A Service the member exports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceRef {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The Work that exports it.
    pub work: String,
}

/// The Service a Work exports: its first manifest, when the Work carries the export
/// annotation and that manifest is a core Service.
pub fn export_of(work: &str, annotation: Option<&str>, manifests: &[Value]) -> Option<ServiceRef> {
    if annotation != Some("true") {
        return None;
    }
    let m = manifests.first()?;
    if m.get("apiVersion").and_then(Value::as_str) != Some("v1")
        || m.get("kind").and_then(Value::as_str) != Some("Service")
    {
        return None;
    }
    let md = m.get("metadata")?;
    let name = md.get("name").and_then(Value::as_str)?;
    let namespace = md
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    Some(ServiceRef {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        work: work.to_owned(),
    })
}

fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The report of one Service from its object (`None` when absent) and its EndpointSlices.
pub fn report(service: &ServiceRef, object: Option<&Value>, slices: &[Value]) -> ExportedService {
    let mut out = ExportedService {
        namespace: service.namespace.clone(),
        name: service.name.clone(),
        work_name: service.work.clone(),
        ..Default::default()
    };
    let Some(svc) = object else {
        return out;
    };
    out.present = true;
    out.headless = svc.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
    out.ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .map(|p| ServicePortShape {
                    name: s(p, "name"),
                    protocol: p
                        .get("protocol")
                        .and_then(Value::as_str)
                        .unwrap_or("TCP")
                        .to_owned(),
                    port: p
                        .get("port")
                        .and_then(Value::as_i64)
                        .and_then(|n| i32::try_from(n).ok())
                        .unwrap_or_default(),
                    app_protocol: s(p, "appProtocol"),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut sorted: Vec<&Value> = slices.iter().collect();
    sorted.sort_by_key(|v| v.pointer("/metadata/name").and_then(Value::as_str));
    out.slices = sorted
        .into_iter()
        .filter(|v| v.pointer("/metadata/deletionTimestamp").is_none())
        .take(MAX_SLICES)
        .map(slice_report)
        .collect();
    out
}

fn slice_report(v: &Value) -> EndpointSliceReport {
    let ports = v
        .get("ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .map(|p| EndpointPort {
                    name: s(p, "name"),
                    protocol: s(p, "protocol"),
                    port: p
                        .get("port")
                        .and_then(Value::as_i64)
                        .and_then(|n| i32::try_from(n).ok()),
                    app_protocol: s(p, "appProtocol"),
                })
                .collect()
        })
        .unwrap_or_default();
    let endpoints = v
        .get("endpoints")
        .and_then(Value::as_array)
        .map(|eps| {
            eps.iter()
                .take(MAX_ENDPOINTS)
                .map(|e| {
                    let cond = |k: &str| {
                        e.pointer(&format!("/conditions/{k}"))
                            .and_then(Value::as_bool)
                    };
                    EndpointReport {
                        addresses: e
                            .get("addresses")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_owned)
                                    .collect()
                            })
                            .unwrap_or_default(),
                        ready: cond("ready"),
                        serving: cond("serving"),
                        terminating: cond("terminating"),
                        zone: s(e, "zone"),
                        hostname: s(e, "hostname"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    EndpointSliceReport {
        name: v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        address_type: s(v, "addressType"),
        ports,
        endpoints,
    }
}

/// What changed since the last report: every Service in `now` whose report differs from
/// `sent`, in order.
pub fn changed<'a>(
    sent: &BTreeMap<ServiceRef, ExportedService>,
    now: &'a BTreeMap<ServiceRef, ExportedService>,
) -> Vec<&'a ExportedService> {
    now.iter()
        .filter(|(k, v)| sent.get(*k) != Some(*v))
        .map(|(_, v)| v)
        .collect()
}

fn message(exported: Option<Vec<String>>, services: Vec<ExportedService>) -> AgentMessage {
    AgentMessage {
        message: Some(agent_message::Message::Endpoints(ServiceEndpoints {
            full: exported.is_some(),
            services,
            exported: exported.unwrap_or_default(),
        })),
    }
}

/// Reports the exported Services' endpoints while the session lasts: everything at the
/// start and whenever the exported set changes (`full`), then the Services whose report
/// changed, looking when the member says something changed and every `period`. A namespace
/// the member could not be read in keeps its last report.
pub async fn run<M: Member>(
    member: std::sync::Arc<M>,
    mut exports: watch::Receiver<Vec<ServiceRef>>,
    tx: mpsc::Sender<AgentMessage>,
    period: Duration,
    counters: std::sync::Arc<crate::metrics::Metrics>,
) {
    let mut sent: BTreeMap<ServiceRef, ExportedService> = BTreeMap::new();
    let mut full = true;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = exports.changed() => {
                if r.is_err() {
                    return;
                }
                full = true;
                tokio::time::sleep(EXPORTS_SETTLE).await;
            }
            () = member.endpoints_changed() => {
                // Changes come in bursts (a rollout touches every slice): one report for it.
                tokio::time::sleep(BURST).await;
            }
        }
        let list: Vec<ServiceRef> = exports
            .borrow_and_update()
            .iter()
            .take(MAX_EXPORTS)
            .cloned()
            .collect();
        if list.is_empty() && !full {
            continue;
        }
        let read = member.exported(&list).await;
        let mut now: BTreeMap<ServiceRef, ExportedService> = BTreeMap::new();
        for r in &list {
            match read.get(r) {
                Some(v) => {
                    now.insert(r.clone(), v.clone());
                }
                // Unreadable this time: keep what the hub has.
                None => {
                    if let Some(old) = sent.get(r) {
                        now.insert(r.clone(), old.clone());
                    }
                }
            }
        }
        let mut batches: Vec<Vec<ExportedService>> = changed(&sent, &now)
            .chunks(BATCH)
            .map(|c| c.iter().map(|s| (*s).clone()).collect())
            .collect();
        if full && batches.is_empty() {
            // The exported set changed with no data: the list goes alone.
            batches.push(Vec::new());
        }
        // A full report names every exported Service in its first message; its data may
        // follow in later ones.
        for (i, services) in batches.into_iter().enumerate() {
            counters.endpoint_reports.fetch_add(
                u64::try_from(services.len()).unwrap_or(u64::MAX),
                std::sync::atomic::Ordering::Relaxed,
            );
            let exported = (full && i == 0).then(|| {
                list.iter()
                    .map(|r| format!("{}/{}", r.namespace, r.name))
                    .collect()
            });
            if tx.send(message(exported, services)).await.is_err() {
                return;
            }
        }
        sent = now;
        full = false;
    }
}

#[cfg(test)]
mod tests;
pub mod watches;
