//! The hub's copies of provider clusters' EndpointSlices: one object per reported slice, in
//! the Service's namespace, named and labelled after its source cluster, with the Service's
//! shape and the time the export was first seen in annotations.

use serde_json::{Map, Value, json};

use super::{
    Endpoint, MANAGED_BY, MANAGED_BY_LABEL, MCS_SERVICE_NAME_LABEL, PortShape,
    SOURCE_CLUSTER_LABEL, ServiceShape, Slice, SlicePort, imported_slice_name,
};

/// Annotation with the exporting cluster's Service shape (JSON).
pub const SHAPE_ANNOTATION: &str = "discovery.flotilla.io/service-shape";
/// Annotation with the time the hub first saw the cluster export the Service (RFC 3339).
pub const SINCE_ANNOTATION: &str = "discovery.flotilla.io/exported-since";

/// A stored copy of one provider slice.
pub fn stored_slice(
    cluster: &str,
    namespace: &str,
    service: &str,
    shape: &ServiceShape,
    since: &str,
    slice: &Slice,
) -> Value {
    let ports: Vec<Value> = shape
        .ports
        .iter()
        .map(|p| {
            let mut m = Map::new();
            m.insert("name".into(), json!(p.name));
            m.insert("protocol".into(), json!(p.protocol));
            m.insert("port".into(), json!(p.port));
            if let Some(a) = &p.app_protocol {
                m.insert("appProtocol".into(), json!(a));
            }
            Value::Object(m)
        })
        .collect();
    let shape_json = json!({"headless": shape.headless, "ports": ports}).to_string();
    let imported = super::ImportedSlice {
        source_cluster: cluster.to_owned(),
        slice: slice.clone(),
        hints: Vec::new(),
    };
    let mut v = super::render_slice(&imported, namespace, service, service);
    v["metadata"] = json!({
        "name": imported_slice_name(cluster, &slice.name),
        "namespace": namespace,
        "labels": {
            MANAGED_BY_LABEL: MANAGED_BY,
            SOURCE_CLUSTER_LABEL: cluster,
            MCS_SERVICE_NAME_LABEL: service,
        },
        "annotations": {
            SHAPE_ANNOTATION: shape_json,
            SINCE_ANNOTATION: since,
            super::SLICE_NAME_ANNOTATION: slice.name,
        },
    });
    v
}

fn s(v: &Value, ptr: &str) -> Option<String> {
    v.pointer(ptr).and_then(Value::as_str).map(str::to_owned)
}

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// The shape recorded on a stored slice.
pub fn shape_of(v: &Value) -> Option<ServiceShape> {
    let raw: Value = serde_json::from_str(annotation(v, SHAPE_ANNOTATION)?).ok()?;
    let ports = raw
        .get("ports")?
        .as_array()?
        .iter()
        .map(|p| {
            Some(PortShape {
                name: s(p, "/name").unwrap_or_default(),
                protocol: s(p, "/protocol").unwrap_or_default(),
                port: i32::try_from(p.get("port")?.as_i64()?).ok()?,
                app_protocol: s(p, "/appProtocol"),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(ServiceShape::new(
        raw.get("headless")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ports,
    ))
}

/// When the export behind a stored slice was first seen.
pub fn since_of(v: &Value) -> Option<&str> {
    annotation(v, SINCE_ANNOTATION)
}

/// The provider slice a stored copy holds.
pub fn slice_of(v: &Value) -> Slice {
    let ports = v
        .get("ports")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| SlicePort {
                    name: s(p, "/name"),
                    protocol: s(p, "/protocol"),
                    port: p
                        .get("port")
                        .and_then(Value::as_i64)
                        .and_then(|n| i32::try_from(n).ok()),
                    app_protocol: s(p, "/appProtocol"),
                })
                .collect()
        })
        .unwrap_or_default();
    let endpoints = v
        .get("endpoints")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Endpoint {
                    addresses: e
                        .get("addresses")
                        .and_then(Value::as_array)
                        .map(|x| {
                            x.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                    ready: e.pointer("/conditions/ready").and_then(Value::as_bool),
                    serving: e.pointer("/conditions/serving").and_then(Value::as_bool),
                    terminating: e
                        .pointer("/conditions/terminating")
                        .and_then(Value::as_bool),
                    zone: s(e, "/zone"),
                    hostname: s(e, "/hostname"),
                })
                .collect()
        })
        .unwrap_or_default();
    Slice {
        name: annotation(v, super::SLICE_NAME_ANNOTATION)
            .map(str::to_owned)
            .or_else(|| s(v, "/metadata/name"))
            .unwrap_or_default(),
        address_type: s(v, "/addressType").unwrap_or_default(),
        ports,
        endpoints,
    }
}

/// Compares two stored slices by what the fold writes (not server-set metadata).
pub fn same_content(a: &Value, b: &Value) -> bool {
    let view = |v: &Value| {
        json!({
            "labels": v.pointer("/metadata/labels"),
            "annotations": v.pointer("/metadata/annotations"),
            "addressType": v.get("addressType"),
            "ports": v.get("ports"),
            "endpoints": v.get("endpoints"),
        })
    };
    view(a) == view(b)
}
