//! What a request asks to do, read from its method and path alone (kube-apiserver's
//! `RequestInfoFactory`): the verb, API group, resource, subresource, namespace and name of
//! a resource request, or the verb and path of any other request.

pub use flotilla_rbac::Request;

/// The API verb of a request on a resource: its method, whether it names one object, and
/// whether it asks to watch. `None` for a method that maps to no verb.
pub fn verb_of(method: &str, named: bool, watch: bool) -> Option<&'static str> {
    Some(match (method, named) {
        ("GET" | "HEAD", _) if watch => "watch",
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return None,
    })
}

/// The request attributes of `method` on `path` with the query's `watch` flag.
pub fn of(method: &str, path: &str, watch_param: bool) -> Request {
    let non_resource = || Request::NonResource {
        verb: match method {
            "HEAD" => "get".to_owned(),
            m => m.to_ascii_lowercase(),
        },
        path: path.to_owned(),
    };
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (api_group, rest) = match segs.as_slice() {
        ["api", _version, rest @ ..] if !rest.is_empty() => ("", rest),
        ["apis", group, _version, rest @ ..] if !rest.is_empty() => (*group, rest),
        _ => return non_resource(),
    };
    let (mut watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        r => (false, r),
    };
    watch |= watch_param;
    // `namespaces/{ns}/{resource}...`; `namespaces/{ns}` alone is the Namespace itself.
    let (namespace, parts): (Option<&str>, &[&str]) = match rest {
        ["namespaces", ns, resource, tail @ ..]
            if !(tail.is_empty() && matches!(*resource, "status" | "finalize")) =>
        {
            (Some(*ns), &rest[2..])
        }
        _ => (None, rest),
    };
    let (resource, name, subresource) = match parts {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub, ..] => (*resource, Some(*name), Some(*sub)),
        _ => return non_resource(),
    };
    // A proxied request's own `watch` parameter is the member's business, not a watch here.
    if subresource == Some("proxy") {
        watch = false;
    }
    // A Namespace's own requests are in that namespace.
    let namespace = match (namespace, resource, name) {
        (None, "namespaces", Some(n)) if api_group.is_empty() => Some(n),
        (ns, _, _) => ns,
    };
    let Some(verb) = verb_of(method, name.is_some(), watch) else {
        return Request::Resource {
            verb: method.to_ascii_lowercase(),
            api_group: api_group.to_owned(),
            resource: resource.to_owned(),
            subresource: subresource.map(str::to_owned),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
        };
    };
    Request::Resource {
        verb: verb.to_owned(),
        api_group: api_group.to_owned(),
        resource: resource.to_owned(),
        subresource: subresource.map(str::to_owned),
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(
        verb: &str,
        g: &str,
        r: &str,
        sub: Option<&str>,
        ns: Option<&str>,
        n: Option<&str>,
    ) -> Request {
        Request::Resource {
            verb: verb.into(),
            api_group: g.into(),
            resource: r.into(),
            subresource: sub.map(Into::into),
            namespace: ns.map(Into::into),
            name: n.map(Into::into),
        }
    }

    #[test]
    fn reads_requests_as_kube_apiserver_does() {
        let cases = [
            (
                "GET",
                "/apis/cluster.karmada.io/v1alpha1/clusters/m1/proxy/api/v1/pods",
                true,
                res(
                    "get",
                    "cluster.karmada.io",
                    "clusters",
                    Some("proxy"),
                    None,
                    Some("m1"),
                ),
            ),
            (
                "POST",
                "/apis/cluster.karmada.io/v1alpha1/clusters/m1/proxy/api/v1/namespaces/a/pods/p/exec",
                false,
                res(
                    "create",
                    "cluster.karmada.io",
                    "clusters",
                    Some("proxy"),
                    None,
                    Some("m1"),
                ),
            ),
            (
                "GET",
                "/api/v1/namespaces/a/pods",
                false,
                res("list", "", "pods", None, Some("a"), None),
            ),
            (
                "GET",
                "/api/v1/namespaces/a/pods",
                true,
                res("watch", "", "pods", None, Some("a"), None),
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/a/pods",
                false,
                res("watch", "", "pods", None, Some("a"), None),
            ),
            (
                "GET",
                "/api/v1/pods",
                false,
                res("list", "", "pods", None, None, None),
            ),
            (
                "GET",
                "/apis/apps/v1/namespaces/a/deployments/web",
                false,
                res("get", "apps", "deployments", None, Some("a"), Some("web")),
            ),
            (
                "PUT",
                "/apis/apps/v1/namespaces/a/deployments/web/scale",
                false,
                res(
                    "update",
                    "apps",
                    "deployments",
                    Some("scale"),
                    Some("a"),
                    Some("web"),
                ),
            ),
            (
                "POST",
                "/apis/apps/v1/namespaces/a/deployments",
                false,
                res("create", "apps", "deployments", None, Some("a"), None),
            ),
            (
                "PATCH",
                "/apis/policy.karmada.io/v1alpha1/namespaces/a/propagationpolicies/p",
                false,
                res(
                    "patch",
                    "policy.karmada.io",
                    "propagationpolicies",
                    None,
                    Some("a"),
                    Some("p"),
                ),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/a/configmaps",
                false,
                res("deletecollection", "", "configmaps", None, Some("a"), None),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/a/configmaps/c",
                false,
                res("delete", "", "configmaps", None, Some("a"), Some("c")),
            ),
            (
                "GET",
                "/api/v1/namespaces/a",
                false,
                res("get", "", "namespaces", None, Some("a"), Some("a")),
            ),
            (
                "PUT",
                "/api/v1/namespaces/a/finalize",
                false,
                res(
                    "update",
                    "",
                    "namespaces",
                    Some("finalize"),
                    Some("a"),
                    Some("a"),
                ),
            ),
            (
                "GET",
                "/api/v1/namespaces",
                false,
                res("list", "", "namespaces", None, None, None),
            ),
            (
                "POST",
                "/api/v1/namespaces/a/serviceaccounts/ci/token",
                false,
                res(
                    "create",
                    "",
                    "serviceaccounts",
                    Some("token"),
                    Some("a"),
                    Some("ci"),
                ),
            ),
            (
                "GET",
                "/apis/cluster.karmada.io/v1alpha1/clusters/m1",
                false,
                res(
                    "get",
                    "cluster.karmada.io",
                    "clusters",
                    None,
                    None,
                    Some("m1"),
                ),
            ),
        ];
        for (method, path, watch, want) in cases {
            assert_eq!(of(method, path, watch), want, "{method} {path}");
        }
        for (method, path, verb) in [
            ("GET", "/api", "get"),
            ("GET", "/apis/apps/v1", "get"),
            ("GET", "/version", "get"),
            ("HEAD", "/healthz", "get"),
            ("POST", "/openapi/v3", "post"),
        ] {
            assert_eq!(
                of(method, path, false),
                Request::NonResource {
                    verb: verb.into(),
                    path: path.into()
                }
            );
        }
    }
}
