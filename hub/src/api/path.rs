//! Parsing request paths into the resource and object they address.

use std::sync::Arc;

use super::error::ApiError;
use crate::registry::{Registry, Resource};

/// What a resource path addresses.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resource.
    pub resource: Arc<Resource>,
    /// The namespace from the path, if any.
    pub namespace: Option<String>,
    /// The object name, if any.
    pub name: Option<String>,
    /// The subresource (`status`, `scale`), if any.
    pub subresource: Option<String>,
}

/// Parses the segments after `/api/v1` or `/apis/{group}/{version}`.
pub fn parse(
    reg: &Registry,
    group: &str,
    version: &str,
    rest: &[&str],
    full_path: &str,
) -> Result<Target, ApiError> {
    let lookup = |plural: &str| {
        reg.get(group, version, plural)
            .ok_or_else(|| ApiError::no_route(full_path))
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if !(group.is_empty()
                && tail.is_empty()
                && matches!(*plural, "status" | "finalize")) =>
        {
            (Some((*ns).to_owned()), {
                let mut v = vec![*plural];
                v.extend_from_slice(tail);
                v
            })
        }
        other => (None, other.to_vec()),
    };
    let (resource, name, sub) = match rest.as_slice() {
        [plural] => (lookup(plural)?, None, None),
        [plural, name] => (lookup(plural)?, Some(*name), None),
        [plural, name, sub] => (lookup(plural)?, Some(*name), Some(*sub)),
        _ => return Err(ApiError::no_route(full_path)),
    };
    if namespace.is_some() && !resource.namespaced {
        return Err(ApiError::no_route(full_path));
    }
    if let Some(sub) = sub {
        let served = (sub == "status" && resource.status)
            || (sub == "scale" && resource.scale)
            || (sub == "finalize" && resource.kind == "Namespace")
            || (sub == "token" && resource.kind == "ServiceAccount" && resource.group.is_empty())
            || (sub == "approval" && resource.kind == "CertificateSigningRequest");
        if !served {
            return Err(ApiError::no_route(full_path));
        }
    }
    Ok(Target {
        resource,
        namespace,
        name: name.map(str::to_owned),
        subresource: sub.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaced_cluster_and_subresource_paths() {
        let reg = Registry::new();
        let t = parse(
            &reg,
            "apps",
            "v1",
            &["namespaces", "ns1", "deployments", "web", "scale"],
            "/x",
        )
        .expect("scale path");
        assert_eq!(t.namespace.as_deref(), Some("ns1"));
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.subresource.as_deref(), Some("scale"));
        let t = parse(&reg, "", "v1", &["namespaces", "ns1"], "/x").expect("namespace object");
        assert_eq!(t.resource.kind, "Namespace");
        assert_eq!(t.name.as_deref(), Some("ns1"));
        let t = parse(&reg, "", "v1", &["namespaces", "ns1", "status"], "/x").expect("ns status");
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t = parse(&reg, "apps", "v1", &["deployments"], "/x").expect("all namespaces");
        assert!(t.namespace.is_none() && t.name.is_none());
        assert!(parse(&reg, "apps", "v1", &["namespaces", "a", "nothings"], "/x").is_err());
        assert!(parse(&reg, "", "v1", &["configmaps", "a", "scale"], "/x").is_err());
        assert!(parse(&reg, "", "v1", &["namespaces", "a", "namespaces"], "/x").is_err());
    }
}
