//! `PartialObjectMetadata`: objects reduced to their metadata, as kube-apiserver serves them
//! to clients that ask with `Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1`
//! (or `as=PartialObjectMetadataList` for lists).

use serde_json::{Value, json};

/// The group of `PartialObjectMetadata`.
const GROUP: &str = "meta.k8s.io";

/// A request for objects as `PartialObjectMetadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    /// `as=PartialObjectMetadataList` rather than `as=PartialObjectMetadata`.
    pub list: bool,
    /// `v1` or `v1beta1`.
    pub version: &'static str,
}

impl Partial {
    /// The `apiVersion` of the objects this renders.
    pub fn api_version(&self) -> String {
        format!("{GROUP}/{}", self.version)
    }

    /// `obj` reduced to its metadata.
    pub fn object(&self, obj: &Value) -> Value {
        json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": self.api_version(),
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })
    }

    /// A `PartialObjectMetadataList` of `items` with the list's `metadata`.
    pub fn list_of(&self, items: &[Value], metadata: Value) -> Value {
        json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": self.api_version(),
            "metadata": metadata,
            "items": items.iter().map(|i| self.object(i)).collect::<Vec<_>>(),
        })
    }
}

/// The `PartialObjectMetadata` rendering the first JSON media type of `accept` asks for,
/// if any. Media types of other groups or kinds (tables, plain JSON) yield `None`.
pub fn requested(accept: &str) -> Option<Partial> {
    let first_json = accept.split(',').find(|part| {
        let ty = part.split(';').next().unwrap_or_default().trim();
        ty == "application/json" || ty == "*/*" || ty == "application/*"
    })?;
    let mut as_kind = None;
    let mut group = None;
    let mut version = None;
    for param in first_json.split(';').skip(1) {
        let Some((k, v)) = param.split_once('=') else {
            continue;
        };
        match k.trim() {
            "as" => as_kind = Some(v.trim()),
            "g" => group = Some(v.trim()),
            "v" => version = Some(v.trim()),
            _ => {}
        }
    }
    let list = match as_kind? {
        "PartialObjectMetadata" => false,
        "PartialObjectMetadataList" => true,
        _ => return None,
    };
    if group? != GROUP {
        return None;
    }
    let version = match version? {
        "v1" => "v1",
        "v1beta1" => "v1beta1",
        _ => return None,
    };
    Some(Partial { list, version })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_metadata_clients_accept_headers() {
        let p = requested(
            "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json",
        );
        assert_eq!(
            p,
            Some(Partial {
                list: false,
                version: "v1"
            })
        );
        let p = requested("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1");
        assert_eq!(
            p,
            Some(Partial {
                list: true,
                version: "v1beta1"
            })
        );
        assert_eq!(requested("application/json"), None);
        assert_eq!(
            requested("application/json;as=Table;v=v1;g=meta.k8s.io"),
            None
        );
        assert_eq!(
            requested("application/json;as=PartialObjectMetadata;g=apps;v=v1"),
            None
        );
        // Plain JSON first wins, as in kube-apiserver's negotiation.
        assert_eq!(
            requested(
                "application/json,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
            ),
            None
        );
    }

    #[test]
    fn keeps_only_the_metadata() {
        let p = Partial {
            list: false,
            version: "v1",
        };
        let obj = json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "a", "labels": {"x": "y"}}, "data": {"k": "v"}});
        assert_eq!(
            p.object(&obj),
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"name": "a", "labels": {"x": "y"}}})
        );
        let l = p.list_of(&[obj], json!({"resourceVersion": "7"}));
        assert_eq!(l["kind"], "PartialObjectMetadataList");
        assert_eq!(l["items"][0]["kind"], "PartialObjectMetadata");
        assert!(l["items"][0].get("data").is_none());
    }
}
