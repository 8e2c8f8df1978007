//! An in-memory member cluster, for tests and for benchmarking the hub with many agents.

use std::collections::BTreeMap;
use std::sync::Mutex;

use flotilla_proto::v1::{
    ApiEnablement, ApiResource, Heartbeat, ResourceMetricSums, WorkloadMetricsReport,
};
use serde_json::Value;

use crate::autoscaling::{MeasureTarget, MetricRequest};
use crate::member::{self, Applied, Member, MemberError, ObjectRef};

/// A member cluster that stores applied objects in memory and reports fixed facts.
#[derive(Debug, Default)]
pub struct FakeMember {
    objects: Mutex<BTreeMap<ObjectRef, Value>>,
    applies: std::sync::atomic::AtomicU64,
    /// Simulated usage of every pod, in percent of its request.
    usage_percent: std::sync::atomic::AtomicU32,
}

fn target_of(manifest: &Value) -> Result<ObjectRef, MemberError> {
    let api_version = manifest
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = manifest
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = manifest
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() || name.is_empty() {
        return Err(MemberError::Invalid(
            "a manifest needs apiVersion, kind and metadata.name".into(),
        ));
    }
    let (group, version) = member::group_version(api_version);
    Ok(ObjectRef {
        group: group.to_owned(),
        version: version.to_owned(),
        kind: kind.to_owned(),
        resource: format!("{}s", kind.to_ascii_lowercase()),
        namespace: manifest
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        name: name.to_owned(),
    })
}

impl FakeMember {
    /// An empty member.
    pub fn new() -> Self {
        Self::default()
    }

    /// Objects currently stored.
    pub fn objects(&self) -> BTreeMap<ObjectRef, Value> {
        self.objects.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Puts an object directly, as if someone created it in the member.
    pub fn insert(&self, target: ObjectRef, obj: Value) {
        if let Ok(mut o) = self.objects.lock() {
            o.insert(target, obj);
        }
    }

    /// Sets every simulated pod's usage, in percent of its request (0 by default).
    pub fn set_usage_percent(&self, percent: u32) {
        self.usage_percent
            .store(percent, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many applies changed something.
    pub fn applies(&self) -> u64 {
        self.applies.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Member for FakeMember {
    async fn apply(
        &self,
        work: &str,
        manifest: &Value,
        overwrite: bool,
    ) -> Result<Applied, MemberError> {
        let target = target_of(manifest)?;
        let ns = (!target.namespace.is_empty()).then_some(target.namespace.as_str());
        let desired = member::prepare(manifest, work, ns)?;
        let mut objs = self
            .objects
            .lock()
            .map_err(|_| MemberError::Api("poisoned".into()))?;
        if let Some(live) = objs.get(&target) {
            if !member::is_managed(live) && !overwrite {
                return Err(MemberError::Conflict(target.to_string()));
            }
            if member::up_to_date(live, &desired) {
                return Ok(Applied {
                    target,
                    object: live.clone(),
                    changed: false,
                });
            }
        }
        objs.insert(target.clone(), desired.clone());
        self.applies
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Applied {
            target,
            object: desired,
            changed: true,
        })
    }

    async fn delete(&self, work: &str, target: &ObjectRef) -> Result<(), MemberError> {
        let mut objs = self
            .objects
            .lock()
            .map_err(|_| MemberError::Api("poisoned".into()))?;
        if objs
            .get(target)
            .is_some_and(|o| member::belongs_to(o, work))
        {
            objs.remove(target);
        }
        Ok(())
    }

    async fn release(&self, work: &str, target: &ObjectRef) -> Result<(), MemberError> {
        let mut objs = self
            .objects
            .lock()
            .map_err(|_| MemberError::Api("poisoned".into()))?;
        if let Some(o) = objs.get_mut(target).filter(|o| member::belongs_to(o, work))
            && let Some(labels) = o
                .pointer_mut("/metadata/labels")
                .and_then(Value::as_object_mut)
        {
            labels.remove(flotilla_proto::MANAGED_LABEL);
            labels.remove(flotilla_proto::WORK_LABEL);
        }
        Ok(())
    }

    async fn managed_objects(&self) -> Result<Vec<(String, ObjectRef)>, MemberError> {
        let objs = self
            .objects
            .lock()
            .map_err(|_| MemberError::Api("poisoned".into()))?;
        Ok(objs
            .iter()
            .filter(|(_, o)| member::is_managed(o))
            .filter_map(|(t, o)| Some((member::work_of(o)?, t.clone())))
            .collect())
    }

    /// Services and EndpointSlices are the stored objects (put with [`FakeMember::insert`]
    /// or applied).
    async fn exported(
        &self,
        services: &[crate::discovery::ServiceRef],
    ) -> BTreeMap<crate::discovery::ServiceRef, flotilla_proto::v1::ExportedService> {
        let objects = self.objects();
        services
            .iter()
            .map(|r| {
                let object = objects
                    .iter()
                    .find(|(k, _)| {
                        k.group.is_empty()
                            && k.kind == "Service"
                            && k.namespace == r.namespace
                            && k.name == r.name
                    })
                    .map(|(_, v)| v);
                let slices: Vec<Value> = objects
                    .iter()
                    .filter(|(k, v)| {
                        k.group == "discovery.k8s.io"
                            && k.kind == "EndpointSlice"
                            && k.namespace == r.namespace
                            && v.pointer("/metadata/labels/kubernetes.io~1service-name")
                                .and_then(Value::as_str)
                                == Some(r.name.as_str())
                    })
                    .map(|(_, v)| v.clone())
                    .collect();
                (r.clone(), crate::discovery::report(r, object, &slices))
            })
            .collect()
    }

    /// Not watched: read every [`flotilla_proto::ENDPOINTS_PERIOD`].
    async fn endpoints_changed(&self) {
        tokio::time::sleep(flotilla_proto::ENDPOINTS_PERIOD).await;
    }

    /// Every replica of the applied workload is a ready pod with a sample of each resource
    /// at the set percentage of its request.
    async fn measure(&self, target: &MeasureTarget) -> WorkloadMetricsReport {
        let w = &target.workload;
        let live = self.objects().into_iter().find(|(k, _)| {
            k.group == w.group && k.kind == w.kind && k.namespace == w.namespace && k.name == w.name
        });
        let mut report = WorkloadMetricsReport {
            timestamp: jiff::Timestamp::now().as_second(),
            ..Default::default()
        };
        let Some((_, obj)) = live else {
            report.error = format!("{} {} is not in the member", w.kind, w.name);
            return report;
        };
        let replicas = obj
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(0);
        report.pods = u32::try_from(replicas).unwrap_or(u32::MAX);
        let percent = i64::from(
            self.usage_percent
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        for m in &target.metrics {
            if let MetricRequest::Resource { name, container } = m {
                let request: i64 = obj
                    .pointer("/spec/template/spec/containers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|c| container.as_deref().is_none_or(|n| c["name"] == n))
                    .filter_map(|c| c.pointer(&format!("/resources/requests/{name}")))
                    .filter_map(Value::as_str)
                    .filter_map(crate::quantity::parse_milli)
                    .filter_map(|m| i64::try_from(m).ok())
                    .fold(0i64, i64::saturating_add);
                let total = request.saturating_mul(replicas);
                report.resources.push(ResourceMetricSums {
                    name: name.clone(),
                    container: container.clone().unwrap_or_default(),
                    usage_milli: total.saturating_mul(percent) / 100,
                    request_milli: total,
                    ready: report.pods,
                    ..Default::default()
                });
            }
        }
        report
    }

    async fn heartbeat(&self, with_enablements: bool) -> Heartbeat {
        let mut hb = Heartbeat {
            api_reachable: true,
            kubernetes_version: "v1.36.0-fake".into(),
            nodes_total: 1,
            nodes_ready: 1,
            allocatable: [
                ("cpu".to_owned(), "8".to_owned()),
                ("pods".to_owned(), "110".to_owned()),
            ]
            .into(),
            ..Default::default()
        };
        if with_enablements {
            // Serves Deployments and the core kinds workloads use.
            let res = |name: &str, kind: &str| ApiResource {
                name: name.to_owned(),
                kind: kind.to_owned(),
            };
            hb.api_enablements = vec![
                ApiEnablement {
                    group_version: "apps/v1".to_owned(),
                    resources: vec![res("deployments", "Deployment")],
                },
                ApiEnablement {
                    group_version: "v1".to_owned(),
                    resources: vec![
                        res("configmaps", "ConfigMap"),
                        res("namespaces", "Namespace"),
                        res("secrets", "Secret"),
                        res("services", "Service"),
                    ],
                },
            ];
            hb.api_enablements_included = true;
        }
        hb
    }
}
