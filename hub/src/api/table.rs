//! `meta.k8s.io/v1` Table output for `kubectl get`, with the columns a real cluster shows.

use serde_json::{Value, json};

use super::meta::{age, str_at};
use crate::registry::Resource;

/// One column: header, type, description, priority, and how to compute its cell.
struct Column {
    name: &'static str,
    type_: &'static str,
    priority: i64,
    cell: fn(&Value) -> Value,
}

fn i(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn s(v: &Value, ptr: &str) -> String {
    str_at(v, ptr).unwrap_or_default().to_owned()
}

/// A ResourceQuota's `used/hard` per resource, for `limits.*` resources or the others, as
/// kubectl prints them (`pods: 0/10, requests.cpu: 0/2`).
fn quota_usage(v: &Value, limits: bool) -> String {
    let hard = v
        .pointer("/status/hard")
        .or_else(|| v.pointer("/spec/hard"))
        .and_then(Value::as_object);
    let mut out: Vec<String> = hard
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("limits.") == limits)
        .map(|(k, h)| {
            let used = v
                .pointer(&format!(
                    "/status/used/{}",
                    k.replace('~', "~0").replace('/', "~1")
                ))
                .and_then(Value::as_str)
                .unwrap_or("0");
            format!("{k}: {used}/{}", h.as_str().unwrap_or_default())
        })
        .collect();
    out.sort();
    out.join(", ")
}

fn or_none(x: String) -> Value {
    if x.is_empty() {
        json!("<none>")
    } else {
        json!(x)
    }
}

fn condition(v: &Value, ty: &str) -> String {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn name_col() -> Column {
    Column {
        name: "Name",
        type_: "string",
        priority: 0,
        cell: |v| json!(s(v, "/metadata/name")),
    }
}

/// kubectl's list cell: up to three values, then `+ N more...`; `empty` when there are none.
fn first_three(values: &[String], empty: &str) -> String {
    match values.len() {
        0 => empty.to_owned(),
        1..=3 => values.join(","),
        n => format!("{} + {} more...", values[..3].join(","), n - 3),
    }
}

fn age_col() -> Column {
    Column {
        name: "Age",
        type_: "string",
        priority: 0,
        cell: |v| json!(age(str_at(v, "/metadata/creationTimestamp"))),
    }
}

fn images(v: &Value, ptr: &str, field: &str) -> Value {
    let list: Vec<String> = v
        .pointer(ptr)
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c[field].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    json!(list.join(","))
}

fn selector_string(v: &Value, ptr: &str) -> Value {
    let m = v.pointer(ptr).and_then(Value::as_object);
    or_none(
        m.map(|m| {
            m.iter()
                .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default(),
    )
}

fn created_at_col() -> Column {
    Column {
        name: "Created At",
        type_: "date",
        priority: 0,
        cell: |v| json!(s(v, "/metadata/creationTimestamp")),
    }
}

/// `users`, `groups` or service accounts (`namespace/name`) of a binding, joined.
fn subjects(v: &Value, kind: &str) -> Value {
    let list: Vec<String> = v
        .get("subjects")
        .and_then(Value::as_array)
        .map(|ss| {
            ss.iter()
                .filter(|x| x["kind"] == kind)
                .map(|x| {
                    let name = x["name"].as_str().unwrap_or_default();
                    match x["namespace"].as_str() {
                        Some(ns) if kind == "ServiceAccount" => format!("{ns}/{name}"),
                        _ => name.to_owned(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    json!(list.join(", "))
}

fn binding_cols() -> Vec<Column> {
    vec![
        Column {
            name: "Role",
            type_: "string",
            priority: 0,
            cell: |v| {
                json!(format!(
                    "{}/{}",
                    s(v, "/roleRef/kind"),
                    s(v, "/roleRef/name")
                ))
            },
        },
        age_col(),
        Column {
            name: "Users",
            type_: "string",
            priority: 1,
            cell: |v| subjects(v, "User"),
        },
        Column {
            name: "Groups",
            type_: "string",
            priority: 1,
            cell: |v| subjects(v, "Group"),
        },
        Column {
            name: "ServiceAccounts",
            type_: "string",
            priority: 1,
            cell: |v| subjects(v, "ServiceAccount"),
        },
    ]
}

/// An int-or-string field as kubectl shows it, `N/A` when unset.
fn int_or_string(v: &Value, ptr: &str) -> Value {
    match v.pointer(ptr) {
        Some(Value::String(x)) => json!(x),
        Some(Value::Number(n)) => json!(n.to_string()),
        _ => json!("N/A"),
    }
}

fn columns(res: &Resource) -> Vec<Column> {
    let c = |name, type_, priority, cell| Column {
        name,
        type_,
        priority,
        cell,
    };
    let mut cols = vec![name_col()];
    match (res.group.as_str(), res.kind.as_str()) {
        ("apps", "Deployment") => cols.extend([
            c("Ready", "string", 0, |v| {
                json!(format!(
                    "{}/{}",
                    i(v, "/status/readyReplicas"),
                    i(v, "/spec/replicas")
                ))
            }),
            c("Up-to-date", "integer", 0, |v| {
                json!(i(v, "/status/updatedReplicas"))
            }),
            c("Available", "integer", 0, |v| {
                json!(i(v, "/status/availableReplicas"))
            }),
            age_col(),
            c("Containers", "string", 1, |v| {
                images(v, "/spec/template/spec/containers", "name")
            }),
            c("Images", "string", 1, |v| {
                images(v, "/spec/template/spec/containers", "image")
            }),
            c("Selector", "string", 1, |v| {
                selector_string(v, "/spec/selector/matchLabels")
            }),
        ]),
        ("apps", "StatefulSet") => cols.extend([
            c("Ready", "string", 0, |v| {
                json!(format!(
                    "{}/{}",
                    i(v, "/status/readyReplicas"),
                    i(v, "/spec/replicas")
                ))
            }),
            age_col(),
            c("Containers", "string", 1, |v| {
                images(v, "/spec/template/spec/containers", "name")
            }),
            c("Images", "string", 1, |v| {
                images(v, "/spec/template/spec/containers", "image")
            }),
        ]),
        ("apps", "DaemonSet") => cols.extend([
            c("Desired", "integer", 0, |v| {
                json!(i(v, "/status/desiredNumberScheduled"))
            }),
            c("Current", "integer", 0, |v| {
                json!(i(v, "/status/currentNumberScheduled"))
            }),
            c("Ready", "integer", 0, |v| {
                json!(i(v, "/status/numberReady"))
            }),
            c("Up-to-date", "integer", 0, |v| {
                json!(i(v, "/status/updatedNumberScheduled"))
            }),
            c("Available", "integer", 0, |v| {
                json!(i(v, "/status/numberAvailable"))
            }),
            c("Node Selector", "string", 0, |v| {
                selector_string(v, "/spec/template/spec/nodeSelector")
            }),
            age_col(),
        ]),
        ("apps", "ReplicaSet") => cols.extend([
            c("Desired", "integer", 0, |v| json!(i(v, "/spec/replicas"))),
            c("Current", "integer", 0, |v| json!(i(v, "/status/replicas"))),
            c("Ready", "integer", 0, |v| {
                json!(i(v, "/status/readyReplicas"))
            }),
            age_col(),
            c("Containers", "string", 1, |v| {
                images(v, "/spec/template/spec/containers", "name")
            }),
            c("Images", "string", 1, |v| {
                images(v, "/spec/template/spec/containers", "image")
            }),
            c("Selector", "string", 1, |v| {
                selector_string(v, "/spec/selector/matchLabels")
            }),
        ]),
        ("apps", "ControllerRevision") => cols.extend([
            c("Controller", "string", 0, |v| {
                let owner = v
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|r| r["controller"] == true));
                json!(owner.map_or(String::new(), |r| {
                    let group = r["apiVersion"]
                        .as_str()
                        .and_then(|a| a.rsplit_once('/'))
                        .map_or("", |(g, _)| g);
                    let kind = r["kind"].as_str().unwrap_or_default().to_lowercase();
                    let kind = if group.is_empty() {
                        kind
                    } else {
                        format!("{kind}.{group}")
                    };
                    format!("{kind}/{}", r["name"].as_str().unwrap_or_default())
                }))
            }),
            c("Revision", "integer", 0, |v| json!(i(v, "/revision"))),
            age_col(),
        ]),
        ("batch", "Job") => cols.extend([
            c("Status", "string", 0, |v| {
                json!(if condition(v, "Complete") == "True" {
                    "Complete"
                } else if condition(v, "Failed") == "True" {
                    "Failed"
                } else {
                    "Running"
                })
            }),
            c("Completions", "string", 0, |v| {
                json!(format!(
                    "{}/{}",
                    i(v, "/status/succeeded"),
                    v.pointer("/spec/completions")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                ))
            }),
            c("Duration", "string", 0, |_| json!("")),
            age_col(),
        ]),
        ("batch", "CronJob") => cols.extend([
            c("Schedule", "string", 0, |v| json!(s(v, "/spec/schedule"))),
            c("Timezone", "string", 0, |v| or_none(s(v, "/spec/timeZone"))),
            c("Suspend", "boolean", 0, |v| {
                json!(
                    v.pointer("/spec/suspend")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                )
            }),
            c("Active", "integer", 0, |v| {
                json!(
                    v.pointer("/status/active")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                )
            }),
            c("Last Schedule", "string", 0, |v| {
                or_none(s(v, "/status/lastScheduleTime"))
            }),
            age_col(),
        ]),
        ("", "Service") => cols.extend([
            c("Type", "string", 0, |v| {
                json!(str_at(v, "/spec/type").unwrap_or("ClusterIP"))
            }),
            c("Cluster-IP", "string", 0, |v| {
                or_none(s(v, "/spec/clusterIP"))
            }),
            c("External-IP", "string", 0, |v| {
                let ips: Vec<String> = v
                    .pointer("/status/loadBalancer/ingress")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| {
                                x["ip"]
                                    .as_str()
                                    .or(x["hostname"].as_str())
                                    .map(str::to_owned)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                or_none(ips.join(","))
            }),
            c("Port(s)", "string", 0, |v| {
                let ports: Vec<String> = v
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|p| {
                                format!(
                                    "{}/{}",
                                    p["port"].as_i64().unwrap_or(0),
                                    p["protocol"].as_str().unwrap_or("TCP")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                or_none(ports.join(","))
            }),
            age_col(),
            c("Selector", "string", 1, |v| {
                selector_string(v, "/spec/selector")
            }),
        ]),
        ("", "ConfigMap") => cols.extend([
            c("Data", "integer", 0, |v| {
                let n = v
                    .get("data")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len())
                    + v.get("binaryData")
                        .and_then(Value::as_object)
                        .map_or(0, |m| m.len());
                json!(n)
            }),
            age_col(),
        ]),
        ("", "Secret") => cols.extend([
            c("Type", "string", 0, |v| {
                json!(str_at(v, "/type").unwrap_or("Opaque"))
            }),
            c("Data", "integer", 0, |v| {
                json!(
                    v.get("data")
                        .and_then(Value::as_object)
                        .map_or(0, |m| m.len())
                )
            }),
            age_col(),
        ]),
        ("", "Namespace") => cols.extend([
            c("Status", "string", 0, |v| {
                json!(str_at(v, "/status/phase").unwrap_or("Active"))
            }),
            age_col(),
        ]),
        ("", "Pod") => cols.extend([
            c("Ready", "string", 0, |v| {
                let statuses = v
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array);
                let total = v
                    .pointer("/spec/containers")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let ready = statuses.map_or(0, |a| a.iter().filter(|c| c["ready"] == true).count());
                json!(format!("{ready}/{total}"))
            }),
            c("Status", "string", 0, |v| {
                json!(str_at(v, "/status/phase").unwrap_or("Pending"))
            }),
            c("Restarts", "integer", 0, |v| {
                json!(
                    v.pointer("/status/containerStatuses")
                        .and_then(Value::as_array)
                        .map_or(0, |a| a
                            .iter()
                            .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                            .sum::<i64>())
                )
            }),
            age_col(),
            c("IP", "string", 1, |v| or_none(s(v, "/status/podIP"))),
            c("Node", "string", 1, |v| or_none(s(v, "/spec/nodeName"))),
        ]),
        ("", "PersistentVolumeClaim") => cols.extend([
            c("Status", "string", 0, |v| {
                json!(str_at(v, "/status/phase").unwrap_or("Pending"))
            }),
            c("Volume", "string", 0, |v| json!(s(v, "/spec/volumeName"))),
            c("Capacity", "string", 0, |v| {
                json!(s(v, "/status/capacity/storage"))
            }),
            c("Access Modes", "string", 0, |v| {
                json!(
                    v.pointer("/spec/accessModes")
                        .and_then(Value::as_array)
                        .map(|a| a
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(","))
                        .unwrap_or_default()
                )
            }),
            c("StorageClass", "string", 0, |v| {
                json!(s(v, "/spec/storageClassName"))
            }),
            c("VolumeAttributesClass", "string", 0, |v| {
                json!(str_at(v, "/spec/volumeAttributesClassName").unwrap_or("<unset>"))
            }),
            age_col(),
        ]),
        ("discovery.k8s.io", "EndpointSlice") => cols.extend([
            c("AddressType", "string", 0, |v| json!(s(v, "/addressType"))),
            c("Ports", "string", 0, |v| {
                let ports: Vec<String> = v
                    .get("ports")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|p| match p.get("port").and_then(Value::as_i64) {
                                Some(n) => n.to_string(),
                                None => "<unset>".to_owned(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!(first_three(&ports, "<unset>"))
            }),
            c("Endpoints", "string", 0, |v| {
                let addresses: Vec<String> = v
                    .get("endpoints")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e.get("addresses").and_then(Value::as_array))
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                json!(first_three(&addresses, "<unset>"))
            }),
            age_col(),
        ]),
        ("storage.k8s.io", "StorageClass") => cols.extend([
            c("Provisioner", "string", 0, |v| json!(s(v, "/provisioner"))),
            c("ReclaimPolicy", "string", 0, |v| {
                json!(str_at(v, "/reclaimPolicy").unwrap_or("Delete"))
            }),
            c("VolumeBindingMode", "string", 0, |v| {
                json!(str_at(v, "/volumeBindingMode").unwrap_or("Immediate"))
            }),
            c("AllowVolumeExpansion", "string", 0, |v| {
                json!(
                    v.get("allowVolumeExpansion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        .to_string()
                )
            }),
            age_col(),
        ]),
        ("scheduling.k8s.io", "PriorityClass") => cols.extend([
            c("Value", "integer", 0, |v| json!(i(v, "/value"))),
            c("Global-Default", "boolean", 0, |v| {
                json!(
                    v.get("globalDefault")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                )
            }),
            age_col(),
            c("PreemptionPolicy", "string", 0, |v| {
                json!(str_at(v, "/preemptionPolicy").unwrap_or("PreemptLowerPriority"))
            }),
        ]),
        ("", "ResourceQuota") => cols.extend([
            c("Request", "string", 0, |v| json!(quota_usage(v, false))),
            c("Limit", "string", 0, |v| json!(quota_usage(v, true))),
            age_col(),
        ]),
        ("", "LimitRange") => cols.extend([c("Created At", "date", 0, |v| {
            json!(s(v, "/metadata/creationTimestamp"))
        })]),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            cols.extend([c("Created At", "date", 0, |v| {
                json!(s(v, "/metadata/creationTimestamp"))
            })])
        }
        ("cluster.karmada.io", "Cluster") => cols.extend([
            c("Version", "string", 0, |v| {
                json!(s(v, "/status/kubernetesVersion"))
            }),
            c("Mode", "string", 0, |v| {
                json!(str_at(v, "/spec/syncMode").unwrap_or("Push"))
            }),
            c("Ready", "string", 0, |v| {
                let r = condition(v, "Ready");
                json!(if r.is_empty() {
                    "Unknown".to_owned()
                } else {
                    r
                })
            }),
            age_col(),
            c("Zones", "string", 1, |v| {
                let zs = super::meta::strings(v.pointer("/spec/zones"));
                let z = if zs.is_empty() {
                    s(v, "/spec/zone")
                } else {
                    zs.join(",")
                };
                json!(z)
            }),
            c("Region", "string", 1, |v| json!(s(v, "/spec/region"))),
            c("Provider", "string", 1, |v| json!(s(v, "/spec/provider"))),
        ]),
        ("work.karmada.io", "ResourceBinding" | "ClusterResourceBinding") => cols.extend([
            c("Scheduled", "string", 0, |v| {
                json!(condition(v, "Scheduled"))
            }),
            c("FullyApplied", "string", 0, |v| {
                json!(condition(v, "FullyApplied"))
            }),
            age_col(),
        ]),
        ("work.karmada.io", "Work") => cols.extend([
            c("Workload-Kind", "string", 0, |v| {
                json!(s(v, "/spec/workload/manifests/0/kind"))
            }),
            c("Applied", "string", 0, |v| json!(condition(v, "Applied"))),
            age_col(),
        ]),
        ("networking.k8s.io", "Ingress") => cols.extend([
            c("Class", "string", 0, |v| {
                or_none(s(v, "/spec/ingressClassName"))
            }),
            c("Hosts", "string", 0, |v| {
                let hosts: Vec<String> = v
                    .pointer("/spec/rules")
                    .and_then(Value::as_array)
                    .map(|rs| {
                        rs.iter()
                            .map(|r| r["host"].as_str().unwrap_or("*").to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                json!(if hosts.is_empty() {
                    "*".to_owned()
                } else {
                    hosts.join(",")
                })
            }),
            c("Address", "string", 0, |v| {
                let addrs: Vec<String> = v
                    .pointer("/status/loadBalancer/ingress")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x["ip"].as_str().or(x["hostname"].as_str()))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                json!(addrs.join(","))
            }),
            c("Ports", "string", 0, |v| {
                let tls = v
                    .pointer("/spec/tls")
                    .and_then(Value::as_array)
                    .is_some_and(|t| !t.is_empty());
                json!(if tls { "80, 443" } else { "80" })
            }),
            age_col(),
        ]),
        ("networking.k8s.io", "NetworkPolicy") => cols.extend([
            c("Pod-Selector", "string", 0, |v| {
                selector_string(v, "/spec/podSelector/matchLabels")
            }),
            age_col(),
        ]),
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => cols.push(created_at_col()),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            cols.extend(binding_cols());
        }
        ("policy", "PodDisruptionBudget") => cols.extend([
            c("Min Available", "string", 0, |v| {
                int_or_string(v, "/spec/minAvailable")
            }),
            c("Max Unavailable", "string", 0, |v| {
                int_or_string(v, "/spec/maxUnavailable")
            }),
            c("Allowed Disruptions", "integer", 0, |v| {
                json!(i(v, "/status/disruptionsAllowed"))
            }),
            age_col(),
        ]),
        ("autoscaling", "HorizontalPodAutoscaler") => cols.extend([
            c("Reference", "string", 0, |v| {
                json!(format!(
                    "{}/{}",
                    s(v, "/spec/scaleTargetRef/kind"),
                    s(v, "/spec/scaleTargetRef/name")
                ))
            }),
            c("Targets", "string", 0, |v| {
                let targets: Vec<String> = v
                    .pointer("/spec/metrics")
                    .and_then(Value::as_array)
                    .map(|ms| {
                        ms.iter()
                            .map(|m| {
                                let name = m
                                    .pointer("/resource/name")
                                    .and_then(Value::as_str)
                                    .unwrap_or("");
                                match m
                                    .pointer("/resource/target/averageUtilization")
                                    .and_then(Value::as_i64)
                                {
                                    Some(u) => format!("{name}: <unknown>/{u}%"),
                                    None => "<unknown>".to_owned(),
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                or_none(targets.join(", "))
            }),
            c("MinPods", "integer", 0, |v| {
                json!(
                    v.pointer("/spec/minReplicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                )
            }),
            c("MaxPods", "integer", 0, |v| {
                json!(i(v, "/spec/maxReplicas"))
            }),
            c("Replicas", "integer", 0, |v| {
                json!(i(v, "/status/currentReplicas"))
            }),
            age_col(),
        ]),
        ("certificates.k8s.io", "CertificateSigningRequest") => cols.extend([
            age_col(),
            c("SignerName", "string", 0, |v| {
                json!(s(v, "/spec/signerName"))
            }),
            c("Requestor", "string", 0, |v| json!(s(v, "/spec/username"))),
            c("RequestedDuration", "string", 0, |v| {
                or_none(
                    v.pointer("/spec/expirationSeconds")
                        .and_then(Value::as_i64)
                        .map(human_duration)
                        .unwrap_or_default(),
                )
            }),
            c("Condition", "string", 0, |v| {
                let mut cs: Vec<String> = v
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .map(|cs| {
                        cs.iter()
                            .filter_map(|c| c["type"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if cs.is_empty() {
                    cs.push("Pending".into());
                }
                if v.pointer("/status/certificate")
                    .and_then(Value::as_str)
                    .is_some_and(|c| !c.is_empty())
                {
                    cs.push("Issued".into());
                }
                json!(cs.join(","))
            }),
        ]),
        ("", "ServiceAccount") => cols.extend([age_col()]),
        ("coordination.k8s.io", "Lease") => cols.extend([
            c("Holder", "string", 0, |v| {
                json!(s(v, "/spec/holderIdentity"))
            }),
            age_col(),
        ]),
        _ => {
            if res.printer_columns.is_empty() {
                cols.push(age_col());
            }
        }
    }
    cols
}

/// A duration as kubectl prints it (`30d`, `2h`, `10m`, `45s`).
fn human_duration(secs: i64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Evaluates a simple JSONPath (`.spec.replicas`, `.status.conditions[0].type`).
pub fn json_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
    {
        let (key, idx) = match part.find('[') {
            Some(i) => (
                &part[..i],
                part[i + 1..].trim_end_matches(']').parse::<usize>().ok(),
            ),
            None => (part, None),
        };
        cur = cur.get(key)?;
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

/// The column definitions of a resource's table.
pub fn column_definitions(res: &Resource) -> Vec<Value> {
    let mut defs: Vec<Value> = columns(res)
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.type_, "format": if c.name == "Name" { "name" } else { "" },
                "description": "", "priority": c.priority})
        })
        .collect();
    for pc in &res.printer_columns {
        defs.push(
            json!({"name": pc.name, "type": pc.type_, "format": pc.format,
            "description": pc.description, "priority": pc.priority}),
        );
    }
    defs
}

fn cells(res: &Resource, obj: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = columns(res).iter().map(|c| (c.cell)(obj)).collect();
    for pc in &res.printer_columns {
        let v = json_path(obj, &pc.json_path)
            .cloned()
            .unwrap_or(Value::Null);
        out.push(if pc.type_ == "date" {
            json!(age(v.as_str()))
        } else {
            v
        });
    }
    out
}

/// One table row: the cells and the object (full or as PartialObjectMetadata).
pub fn row(res: &Resource, obj: &Value, include_object: bool) -> Value {
    let object = if include_object {
        obj.clone()
    } else {
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
    };
    json!({"cells": cells(res, obj), "object": object})
}

/// A whole table.
pub fn table(
    res: &Resource,
    items: &[Value],
    rv: &str,
    cont: Option<&str>,
    include_object: bool,
    with_columns: bool,
) -> Value {
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        metadata["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": if with_columns { Value::Array(column_definitions(res)) } else { Value::Null },
        "rows": items.iter().map(|o| row(res, o, include_object)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn deployment_columns_match_kubectl() {
        let reg = Registry::new();
        let res = reg.get("apps", "v1", "deployments").expect("served");
        let names: Vec<String> = column_definitions(&res)
            .iter()
            .filter(|c| c["priority"] == 0)
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(names, ["Name", "Ready", "Up-to-date", "Available", "Age"]);
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let t = table(&res, &[d], "5", None, false, true);
        assert_eq!(t["rows"][0]["cells"][1], "2/3");
        assert_eq!(t["rows"][0]["cells"][3], 2);
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn cluster_columns_and_json_path() {
        let reg = Registry::new();
        let res = reg
            .get("cluster.karmada.io", "v1alpha1", "clusters")
            .expect("served");
        let c = json!({"metadata": {"name": "m1"}, "spec": {"syncMode": "Pull", "region": "us-east"},
            "status": {"kubernetesVersion": "v1.36.3", "conditions": [{"type": "Ready", "status": "True"}]}});
        let t = table(&res, std::slice::from_ref(&c), "1", None, false, true);
        assert_eq!(t["rows"][0]["cells"][1], "v1.36.3");
        assert_eq!(t["rows"][0]["cells"][2], "Pull");
        assert_eq!(t["rows"][0]["cells"][3], "True");
        assert_eq!(
            json_path(&c, ".status.conditions[0].type"),
            Some(&json!("Ready"))
        );
        assert_eq!(json_path(&c, ".spec.missing"), None);
    }

    fn cells(group: &str, plural: &str, obj: Value) -> Vec<(String, Value)> {
        let reg = Registry::new();
        let res = reg
            .get(
                group,
                if group == "autoscaling" { "v2" } else { "v1" },
                plural,
            )
            .expect("served");
        let t = table(&res, &[obj], "1", None, false, true);
        column_definitions(&res)
            .iter()
            .zip(
                t["rows"][0]["cells"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            )
            .map(|(c, v)| (c["name"].as_str().unwrap_or_default().to_owned(), v))
            .collect()
    }

    #[test]
    fn rbac_policy_networking_and_certificate_columns_match_kubectl() {
        let rb = cells(
            "rbac.authorization.k8s.io",
            "rolebindings",
            json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "edit"},
                "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "ci", "namespace": "a"}]}),
        );
        let names: Vec<&str> = rb.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
        );
        assert_eq!(rb[1].1, "ClusterRole/edit");
        assert_eq!(rb[3].1, "alice");
        assert_eq!(rb[5].1, "a/ci");
        let role = cells(
            "rbac.authorization.k8s.io",
            "clusterroles",
            json!({"metadata": {"name": "r", "creationTimestamp": "2026-01-02T03:04:05Z"}}),
        );
        assert_eq!(
            role[1],
            ("Created At".to_owned(), json!("2026-01-02T03:04:05Z"))
        );
        let pdb = cells(
            "policy",
            "poddisruptionbudgets",
            json!({"metadata": {"name": "p"}, "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}}),
        );
        assert_eq!(pdb[1].1, "2");
        assert_eq!(pdb[2].1, "N/A");
        assert_eq!(pdb[3].1, 1);
        let ing = cells(
            "networking.k8s.io",
            "ingresses",
            json!({"metadata": {"name": "i"}, "spec": {"ingressClassName": "nginx",
            "rules": [{"host": "a.example"}, {"host": "b.example"}], "tls": [{"hosts": ["a.example"]}]}}),
        );
        assert_eq!(ing[1].1, "nginx");
        assert_eq!(ing[2].1, "a.example,b.example");
        assert_eq!(ing[4].1, "80, 443");
        let hpa = cells(
            "autoscaling",
            "horizontalpodautoscalers",
            json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}),
        );
        assert_eq!(hpa[1].1, "Deployment/web");
        assert_eq!(hpa[2].1, "cpu: <unknown>/80%");
        assert_eq!(hpa[3].1, 1);
        let csr = cells(
            "certificates.k8s.io",
            "certificatesigningrequests",
            json!({"metadata": {"name": "c"},
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "flotilla-admin", "expirationSeconds": 2_592_000},
            "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "Q0VSVA=="}}),
        );
        assert_eq!(csr[4].1, "30d");
        assert_eq!(csr[5].1, "Approved,Issued");
    }
}
