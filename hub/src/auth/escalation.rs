//! RBAC's rule that nobody grants what they do not hold, as kube-apiserver enforces it: a
//! Role or ClusterRole may be written only with rules its writer holds (or with the `escalate`
//! verb on it), a binding only to a role whose rules its writer holds (or with the `bind` verb
//! on that role).

use flotilla_rbac::{PolicyRule, Request};
use serde_json::Value;

use super::UserInfo;
use super::authorizer::Authorizer;
use crate::api::error::ApiError;
use crate::api::objects::Objects;
use crate::registry::Resource;

fn rules_of(obj: &Value) -> Vec<PolicyRule> {
    obj.get("rules")
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default()
}

fn verb_on(verb: &str, resource: &str, ns: Option<&str>, name: &str) -> Request {
    Request::Resource {
        verb: verb.into(),
        api_group: flotilla_rbac::RBAC_GROUP.into(),
        resource: resource.into(),
        subresource: None,
        namespace: ns.map(str::to_owned),
        name: Some(name.to_owned()),
    }
}

fn refused(res: &Resource, name: &str, user: &UserInfo, missing: &[PolicyRule]) -> ApiError {
    let list: Vec<String> = missing.iter().map(PolicyRule::compact_string).collect();
    ApiError::forbidden(format!(
        "{}.{} {name:?} is forbidden: user {:?} (groups={:?}) is attempting to grant RBAC permissions not currently held:\n{}",
        res.plural,
        res.group,
        user.name,
        user.groups,
        list.join("\n")
    ))
}

/// Checks that `user` may write `obj` (a Role, ClusterRole, RoleBinding or
/// ClusterRoleBinding) in `ns`.
pub async fn check(
    objects: &Objects,
    authz: &Authorizer,
    user: &UserInfo,
    res: &Resource,
    ns: Option<&str>,
    obj: &Value,
) -> Result<(), ApiError> {
    if res.group != flotilla_rbac::RBAC_GROUP {
        return Ok(());
    }
    let name = crate::api::meta::name(obj);
    let review = authz.rules_for(user, ns.unwrap_or_default());
    let held: Vec<PolicyRule> = review
        .resource_rules
        .into_iter()
        .chain(review.non_resource_rules)
        .collect();
    match res.kind.as_str() {
        "Role" | "ClusterRole" => {
            if authz.allows(user, &verb_on("escalate", &res.plural, ns, name)) {
                return Ok(());
            }
            let missing = flotilla_rbac::uncovered(&held, &rules_of(obj));
            if missing.is_empty() {
                Ok(())
            } else {
                Err(refused(res, name, user, &missing))
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let role_kind = crate::api::meta::str_at(obj, "/roleRef/kind").unwrap_or_default();
            let role_name = crate::api::meta::str_at(obj, "/roleRef/name").unwrap_or_default();
            let (plural, role_ns) = match role_kind {
                "Role" => ("roles", ns),
                _ => ("clusterroles", None),
            };
            if authz.allows(user, &verb_on("bind", plural, role_ns, role_name)) {
                return Ok(());
            }
            let Some(role_res) = objects
                .registry()
                .get(flotilla_rbac::RBAC_GROUP, "v1", plural)
            else {
                return Err(ApiError::internal("RBAC kinds not served"));
            };
            let role = match objects.get(&role_res, role_ns, role_name).await {
                Ok(r) => r,
                // kube-apiserver refuses a binding to a missing role unless `bind` allows it.
                Err(e) if e.code == http::StatusCode::NOT_FOUND => {
                    return Err(ApiError::forbidden(format!(
                        "{}.{} {name:?} is forbidden: user {:?} cannot bind to {role_kind} {role_name:?}: it does not exist and the user may not bind it",
                        res.plural, res.group, user.name
                    )));
                }
                Err(e) => return Err(e),
            };
            let missing = flotilla_rbac::uncovered(&held, &rules_of(&role));
            if missing.is_empty() {
                Ok(())
            } else {
                Err(refused(res, name, user, &missing))
            }
        }
        _ => Ok(()),
    }
}
