//! The review APIs `kubectl auth can-i` and `kubectl auth whoami` use: access reviews
//! (`SelfSubjectAccessReview`, `SubjectAccessReview`, `LocalSubjectAccessReview`), rules
//! reviews (`SelfSubjectRulesReview`), `SelfSubjectReview` and `TokenReview`. Each is answered
//! from the request alone and never stored.

use std::collections::BTreeMap;

use flotilla_rbac::{Decision, PolicyRule, Request};
use serde_json::{Value, json};

use super::UserInfo;
use super::authorizer::Authorizer;
use crate::api::error::ApiError;

fn s(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn opt(v: &Value, k: &str) -> Option<String> {
    Some(s(v, k)).filter(|x| !x.is_empty())
}

/// The request an access review's spec asks about.
fn request_of(spec: &Value, namespace_override: Option<&str>) -> Result<Request, ApiError> {
    if let Some(r) = spec.get("resourceAttributes").filter(|r| r.is_object()) {
        let namespace = namespace_override
            .map(str::to_owned)
            .or_else(|| opt(r, "namespace"));
        return Ok(Request::Resource {
            verb: s(r, "verb"),
            api_group: s(r, "group"),
            resource: s(r, "resource"),
            subresource: opt(r, "subresource"),
            namespace,
            name: opt(r, "name"),
        });
    }
    if let Some(r) = spec.get("nonResourceAttributes").filter(|r| r.is_object()) {
        return Ok(Request::NonResource {
            verb: s(r, "verb"),
            path: s(r, "path"),
        });
    }
    Err(ApiError::invalid(
        "SelfSubjectAccessReview",
        "",
        vec![crate::api::error::Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
            field: "spec.resourceAttributes".into(),
        }],
    ))
}

fn extra_of(v: Option<&Value>) -> BTreeMap<String, Vec<String>> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), crate::api::meta::strings(Some(v))))
                .collect()
        })
        .unwrap_or_default()
}

fn status_of(d: Decision) -> Value {
    match d {
        Decision::Allow { reason } => json!({"allowed": true, "reason": reason}),
        Decision::Deny { reason } if reason.is_empty() => json!({"allowed": false}),
        Decision::Deny { reason } => json!({"allowed": false, "reason": reason}),
    }
}

fn rules_json(rules: &[PolicyRule]) -> Vec<Value> {
    rules
        .iter()
        .map(|r| {
            let mut o = json!({"verbs": r.verbs});
            if !r.non_resource_urls.is_empty() {
                o["nonResourceURLs"] = json!(r.non_resource_urls);
            } else {
                o["apiGroups"] = json!(r.api_groups);
                o["resources"] = json!(r.resources);
                if !r.resource_names.is_empty() {
                    o["resourceNames"] = json!(r.resource_names);
                }
            }
            o
        })
        .collect()
}

/// The answer to a review of `kind` (body `body`, in `namespace` for namespaced reviews)
/// asked by `user`. `token_user` authenticates a TokenReview's token.
pub fn answer(
    kind: &str,
    namespace: Option<&str>,
    body: &Value,
    user: &UserInfo,
    authz: &Authorizer,
    token_user: Option<Result<UserInfo, ()>>,
) -> Result<Value, ApiError> {
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    let status = match kind {
        "SelfSubjectAccessReview" => status_of(authz.authorize(user, &request_of(&spec, None)?)),
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            let subject = UserInfo {
                name: s(&spec, "user"),
                uid: s(&spec, "uid"),
                groups: crate::api::meta::strings(spec.get("groups")),
                extra: extra_of(spec.get("extra")),
            };
            if subject.name.is_empty() && subject.groups.is_empty() {
                return Err(ApiError::bad_request(
                    "spec.user or spec.groups: at least one of user or group must be specified",
                ));
            }
            status_of(authz.authorize(&subject, &request_of(&spec, namespace)?))
        }
        "SelfSubjectRulesReview" => {
            let ns = s(&spec, "namespace");
            let r = authz.rules_for(user, &ns);
            let mut st = json!({
                "resourceRules": rules_json(&r.resource_rules),
                "nonResourceRules": rules_json(&r.non_resource_rules),
                "incomplete": r.incomplete,
            });
            if !r.evaluation_error.is_empty() {
                st["evaluationError"] = json!(r.evaluation_error);
            }
            st
        }
        "SelfSubjectReview" => json!({"userInfo": user_json(user)}),
        "TokenReview" => match token_user {
            Some(Ok(u)) => json!({
                "authenticated": true,
                "user": user_json(&u),
                "audiences": [super::jwt::ISSUER],
            }),
            _ => json!({"authenticated": false, "error": "the token is not valid"}),
        },
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "{other} is not a review"
            )));
        }
    };
    let mut out = json!({
        "kind": kind,
        "apiVersion": body.get("apiVersion").cloned().unwrap_or(Value::Null),
        "metadata": {"creationTimestamp": null},
        "spec": spec,
        "status": status,
    });
    if kind == "TokenReview"
        && let Some(spec) = out.get_mut("spec").and_then(Value::as_object_mut)
    {
        // The token is never echoed.
        spec.remove("token");
    }
    if let Some(ns) = namespace {
        out["metadata"]["namespace"] = json!(ns);
    }
    Ok(out)
}

fn user_json(u: &UserInfo) -> Value {
    let mut o = json!({"username": u.name, "groups": u.groups});
    if !u.uid.is_empty() {
        o["uid"] = json!(u.uid);
    }
    if !u.extra.is_empty() {
        o["extra"] = json!(u.extra);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authz() -> Authorizer {
        let a = Authorizer::default();
        for o in flotilla_rbac::default_objects() {
            a.upsert_for_tests(&o);
        }
        a.upsert_for_tests(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "alice-edit", "namespace": "team-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}],
        }));
        a
    }

    fn alice() -> UserInfo {
        UserInfo {
            name: "alice".into(),
            groups: vec!["system:authenticated".into()],
            ..Default::default()
        }
    }

    fn ssar(ns: &str, verb: &str, group: &str, resource: &str) -> Value {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": ns, "verb": verb, "group": group, "resource": resource}}})
    }

    #[test]
    fn access_reviews_answer_from_rbac() -> Result<(), ApiError> {
        let a = authz();
        let ask = |body: &Value| answer("SelfSubjectAccessReview", None, body, &alice(), &a, None);
        assert_eq!(
            ask(&ssar("team-a", "create", "apps", "deployments"))?["status"]["allowed"],
            true
        );
        assert_eq!(
            ask(&ssar("team-b", "create", "apps", "deployments"))?["status"]["allowed"],
            false
        );
        assert_eq!(
            ask(&ssar("team-a", "get", "", "secrets"))?["status"]["allowed"],
            true
        );
        assert_eq!(
            ask(&ssar("", "list", "work.karmada.io", "works"))?["status"]["allowed"],
            false
        );
        let health =
            json!({"spec": {"nonResourceAttributes": {"verb": "get", "path": "/healthz"}}});
        assert_eq!(ask(&health)?["status"]["allowed"], true);
        assert!(ask(&json!({"spec": {}})).is_err());
        // Someone else's access, asked by an admin.
        let sar = json!({"spec": {"user": "alice", "resourceAttributes": {"namespace": "team-a", "verb": "delete", "group": "apps", "resource": "deployments"}}});
        let r = answer(
            "SubjectAccessReview",
            None,
            &sar,
            &UserInfo::default(),
            &a,
            None,
        )?;
        assert_eq!(r["status"]["allowed"], true);
        // A local review is confined to its namespace, whatever the spec says.
        let mut local = sar.clone();
        local["spec"]["resourceAttributes"]["namespace"] = json!("team-b");
        let r = answer(
            "LocalSubjectAccessReview",
            Some("team-a"),
            &local,
            &UserInfo::default(),
            &a,
            None,
        )?;
        assert_eq!(r["status"]["allowed"], true);
        assert_eq!(r["metadata"]["namespace"], "team-a");
        Ok(())
    }

    #[test]
    fn rules_and_self_reviews() -> Result<(), ApiError> {
        let a = authz();
        let r = answer(
            "SelfSubjectRulesReview",
            None,
            &json!({"spec": {"namespace": "team-a"}}),
            &alice(),
            &a,
            None,
        )?;
        let rules = r["status"]["resourceRules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(rules.iter().any(|r| {
            r["apiGroups"] == json!(["apps"])
                && r["resources"]
                    .as_array()
                    .is_some_and(|x| x.contains(&json!("deployments")))
                && r["verbs"]
                    .as_array()
                    .is_some_and(|v| v.contains(&json!("create")))
        }));
        assert!(
            r["status"]["nonResourceRules"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        );
        let w = answer("SelfSubjectReview", None, &json!({}), &alice(), &a, None)?;
        assert_eq!(w["status"]["userInfo"]["username"], "alice");
        let t = answer(
            "TokenReview",
            None,
            &json!({"spec": {"token": "secret"}}),
            &alice(),
            &a,
            Some(Err(())),
        )?;
        assert_eq!(t["status"]["authenticated"], false);
        assert!(t["spec"].get("token").is_none(), "the token is not echoed");
        Ok(())
    }
}
