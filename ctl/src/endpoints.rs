//! `flotillactl get endpoints SERVICE`: where a Service exported across clusters runs. The
//! backends come from the hub's copies of the EndpointSlices the providers' agents report
//! (one row per endpoint, with its cluster, region and zone); the consumers and the regions
//! each one is served from come from the MultiClusterService and ServiceImport statuses.

use anyhow::{Context, Result};
use flotilla_karmada::discovery::{MCS_SERVICE_NAME_LABEL, SOURCE_CLUSTER_LABEL};
use serde_json::Value;

use crate::hub::Hub;

/// One endpoint of one provider cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The provider cluster.
    pub cluster: String,
    /// Its region (empty when it has none).
    pub region: String,
    /// The endpoint's zone, else the cluster's first zone (empty when neither is known).
    pub zone: String,
    /// The endpoint's addresses, comma-separated.
    pub addresses: String,
    /// `Ready`, `Serving` (not ready but serving), `Terminating` or `NotReady`.
    pub state: &'static str,
}

fn text<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn items(list: &Value) -> &[Value] {
    list.get("items")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn state(e: &Value) -> &'static str {
    let cond = |k: &str| {
        e.pointer(&format!("/conditions/{k}"))
            .and_then(Value::as_bool)
    };
    // EndpointSlice semantics: a missing `ready` means ready.
    if cond("terminating") == Some(true) {
        "Terminating"
    } else if cond("ready") != Some(false) {
        "Ready"
    } else if cond("serving") == Some(true) {
        "Serving"
    } else {
        "NotReady"
    }
}

/// The backends in the hub's slice copies, sorted by region, cluster and address; regions
/// and zones from the Cluster objects.
pub fn backends(copies: &[Value], clusters: &[Value]) -> Vec<Backend> {
    let cluster = |name: &str| clusters.iter().find(|c| text(c, "/metadata/name") == name);
    let mut out: Vec<Backend> = Vec::new();
    for slice in copies {
        let name = slice
            .pointer("/metadata/labels")
            .and_then(|l| l.get(SOURCE_CLUSTER_LABEL))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let c = cluster(name);
        let region = c.map(|c| text(c, "/spec/region")).unwrap_or_default();
        let cluster_zone = c
            .and_then(|c| {
                c.pointer("/spec/zones/0")
                    .or_else(|| c.pointer("/spec/zone"))
            })
            .and_then(Value::as_str)
            .unwrap_or_default();
        for e in slice
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let zone = match text(e, "/zone") {
                "" => cluster_zone,
                z => z,
            };
            let addresses: Vec<&str> = e
                .get("addresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            out.push(Backend {
                cluster: name.to_owned(),
                region: region.to_owned(),
                zone: zone.to_owned(),
                addresses: addresses.join(","),
                state: state(e),
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.region, &a.cluster, &a.addresses).cmp(&(&b.region, &b.cluster, &b.addresses))
    });
    out
}

/// The consumers a MultiClusterService reports: (cluster, regions, provider clusters,
/// ready endpoints).
pub fn mcs_consumers(mcs: &Value) -> Vec<[String; 4]> {
    let join = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    mcs.pointer("/status/consumers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            [
                text(c, "/cluster").to_owned(),
                join(&c["servedFromRegions"]),
                join(&c["servedFromClusters"]),
                c["readyEndpoints"].as_i64().unwrap_or(0).to_string(),
            ]
        })
        .collect()
}

/// The report printed by `get endpoints`.
pub fn render(
    namespace: &str,
    service: &str,
    backends: &[Backend],
    import: Option<&Value>,
    mcs: Option<&Value>,
) -> String {
    let mut out = String::new();
    if backends.is_empty() {
        out.push_str(&format!(
            "No provider cluster reports endpoints of {namespace}/{service}; export it with a \
             ServiceExport propagated to the clusters it runs in, or a MultiClusterService\n"
        ));
    } else {
        let mut rows = vec![
            ["CLUSTER", "REGION", "ZONE", "ADDRESSES", "STATE"]
                .map(str::to_owned)
                .to_vec(),
        ];
        let dash = |s: &str| {
            if s.is_empty() {
                "-".to_owned()
            } else {
                s.to_owned()
            }
        };
        rows.extend(backends.iter().map(|b| {
            vec![
                b.cluster.clone(),
                dash(&b.region),
                dash(&b.zone),
                dash(&b.addresses),
                b.state.to_owned(),
            ]
        }));
        out.push_str(&crate::cli::align(&rows));
    }
    for (kind, obj) in [("ServiceImport", import), ("MultiClusterService", mcs)] {
        let Some(obj) = obj else { continue };
        for c in obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| c["status"] != "True" || c["type"] == "Conflict")
            .filter(|c| !(c["type"] == "Conflict" && c["status"] == "False"))
        {
            out.push_str(&format!(
                "\n{kind} {}: {} ({})",
                text(c, "/type"),
                text(c, "/message"),
                text(c, "/reason")
            ));
        }
    }
    if let Some(import) = import {
        let from: Vec<&str> = import
            .pointer("/status/clusters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("cluster").and_then(Value::as_str))
            .collect();
        out.push_str(&format!(
            "\nServiceImport: consumers get derived-{service}, from {}\n",
            if from.is_empty() {
                "no cluster".to_owned()
            } else {
                from.join(", ")
            }
        ));
    }
    if let Some(mcs) = mcs {
        let consumers = mcs_consumers(mcs);
        if !consumers.is_empty() {
            let mut rows = vec![
                ["CONSUMER", "SERVED FROM REGIONS", "FROM CLUSTERS", "READY"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            rows.extend(consumers.into_iter().map(|r| {
                r.into_iter()
                    .map(|s| if s.is_empty() { "-".to_owned() } else { s })
                    .collect()
            }));
            out.push_str("\nMultiClusterService consumers:\n");
            out.push_str(&crate::cli::align(&rows));
        }
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Reads what `get endpoints` shows from the hub.
pub async fn show(hub: &Hub, namespace: &str, service: &str) -> Result<String> {
    let ns = encode(namespace);
    let copies = hub
        .get(&format!(
            "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector={}",
            encode(&format!("{MCS_SERVICE_NAME_LABEL}={service}"))
        ))
        .await?
        .context("the hub serves no EndpointSlices")?;
    let clusters = hub
        .get("/apis/cluster.karmada.io/v1alpha1/clusters")
        .await?
        .unwrap_or_default();
    let name = encode(service);
    let import = hub
        .get(&format!(
            "/apis/multicluster.x-k8s.io/v1alpha1/namespaces/{ns}/serviceimports/{name}"
        ))
        .await?;
    let mcs = hub
        .get(&format!(
            "/apis/networking.karmada.io/v1alpha1/namespaces/{ns}/multiclusterservices/{name}"
        ))
        .await?;
    let b = backends(items(&copies), items(&clusters));
    Ok(render(
        namespace,
        service,
        &b,
        import.as_ref(),
        mcs.as_ref(),
    ))
}

/// `get endpoints` arguments: the Service and `-n`/`--namespace` (default `default`).
pub fn parse_args(args: &[String]) -> Result<(String, String)> {
    let mut namespace = "default".to_owned();
    let mut service = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-n" || a == "--namespace" {
            namespace = it
                .next()
                .context("-n needs a namespace, e.g. -n shop")?
                .clone();
        } else if let Some(v) = a.strip_prefix("--namespace=") {
            v.clone_into(&mut namespace);
        } else if a.starts_with('-') {
            anyhow::bail!(
                "get endpoints takes SERVICE and -n NAMESPACE; for members' own Endpoints add --clusters"
            );
        } else if service.replace(a.clone()).is_some() {
            anyhow::bail!("get endpoints shows one Service at a time");
        }
    }
    let service = service.context(
        "say which Service, e.g. `flotillactl get endpoints web -n shop` (add --clusters to list members' own Endpoints)",
    )?;
    Ok((namespace, service))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn copy(cluster: &str, endpoints: Value) -> Value {
        json!({"metadata": {"labels": {SOURCE_CLUSTER_LABEL: cluster, MCS_SERVICE_NAME_LABEL: "web"}},
               "endpoints": endpoints})
    }

    #[test]
    fn backends_per_cluster_and_region() {
        let copies = [
            copy(
                "m2",
                json!([{"addresses": ["10.2.0.1"], "conditions": {"ready": true}}]),
            ),
            copy(
                "m1",
                json!([
                    {"addresses": ["10.1.0.2"], "conditions": {"ready": false, "serving": true}},
                    {"addresses": ["10.1.0.1"], "zone": "us-east-1b"},
                    {"addresses": ["10.1.0.3"], "conditions": {"ready": false, "terminating": true}},
                    {"addresses": ["10.1.0.4"], "conditions": {"ready": false}}
                ]),
            ),
        ];
        let clusters = [
            json!({"metadata": {"name": "m1"}, "spec": {"region": "us-east", "zones": ["us-east-1a"]}}),
            json!({"metadata": {"name": "m2"}, "spec": {"region": "eu-west"}}),
        ];
        let b = backends(&copies, &clusters);
        let rows: Vec<(&str, &str, &str, &str, &str)> = b
            .iter()
            .map(|b| {
                (
                    b.cluster.as_str(),
                    b.region.as_str(),
                    b.zone.as_str(),
                    b.addresses.as_str(),
                    b.state,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("m2", "eu-west", "", "10.2.0.1", "Ready"),
                ("m1", "us-east", "us-east-1b", "10.1.0.1", "Ready"),
                ("m1", "us-east", "us-east-1a", "10.1.0.2", "Serving"),
                ("m1", "us-east", "us-east-1a", "10.1.0.3", "Terminating"),
                ("m1", "us-east", "us-east-1a", "10.1.0.4", "NotReady"),
            ]
        );
        let text = render("shop", "web", &b, None, None);
        assert!(text.starts_with("CLUSTER   REGION    ZONE"), "{text}");
        assert!(text.contains("m2        eu-west   -"), "{text}");
    }

    #[test]
    fn consumers_and_problems_are_shown() {
        let mcs = json!({"status": {
            "conditions": [
                {"type": "EndpointSliceDispatched", "status": "True", "reason": "EndpointSlicesDispatched", "message": "ok"},
                {"type": "Conflict", "status": "False", "reason": "NoConflict", "message": ""}
            ],
            "consumers": [{"cluster": "m3", "servedFromRegions": ["us-east"],
                           "servedFromClusters": ["m1"], "readyEndpoints": 2}]}});
        let import = json!({"status": {
            "clusters": [{"cluster": "m1"}],
            "conditions": [{"type": "Conflict", "status": "True", "reason": "PortConflict", "message": "m2 differs"}]}});
        let text = render("shop", "web", &[], Some(&import), Some(&mcs));
        assert!(text.starts_with("No provider cluster reports endpoints of shop/web"));
        assert!(
            text.contains("ServiceImport Conflict: m2 differs (PortConflict)"),
            "{text}"
        );
        assert!(!text.contains("NoConflict"), "{text}");
        assert!(
            text.contains("consumers get derived-web, from m1"),
            "{text}"
        );
        assert!(text.contains("m3         us-east"), "{text}");
    }

    #[test]
    fn selectors_are_encoded() {
        assert_eq!(
            encode("multicluster.kubernetes.io/service-name=web_1~"),
            "multicluster.kubernetes.io%2Fservice-name%3Dweb_1~"
        );
    }

    #[test]
    fn arguments() {
        let a = |s: &[&str]| parse_args(&s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(
            a(&["web", "-n", "shop"]).unwrap(),
            ("shop".to_owned(), "web".to_owned())
        );
        assert_eq!(
            a(&["--namespace=x", "web"]).unwrap(),
            ("x".to_owned(), "web".to_owned())
        );
        assert_eq!(a(&["web"]).unwrap().0, "default");
        assert!(a(&[]).is_err());
        assert!(a(&["a", "b"]).is_err());
        assert!(a(&["web", "-o", "json"]).is_err());
    }
}
