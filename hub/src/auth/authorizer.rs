//! Authorization with Kubernetes RBAC: the Roles, ClusterRoles and bindings of the store,
//! kept in memory by a watch, evaluated by `flotilla-rbac`; and the clusterrole-aggregation
//! controller, which writes the rules of aggregated ClusterRoles (`admin`, `edit`, `view`).

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::Duration;

use flotilla_rbac::{Decision, Policy, PolicyRule, Request, RulesReview};
use flotilla_store::EventKind;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::UserInfo;
use crate::api::error::ApiError;
use crate::api::objects::{Objects, WriteOptions};

/// Where the RBAC kinds are stored.
const PREFIX: &str = "/rbac.authorization.k8s.io/";

/// The RBAC objects in force.
#[derive(Default)]
pub struct Authorizer {
    policy: RwLock<Policy>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer").finish_non_exhaustive()
    }
}

impl Authorizer {
    /// Whether `user` may do `req`, and why.
    pub fn authorize(&self, user: &UserInfo, req: &Request) -> Decision {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .authorize(user, req)
    }

    /// Whether `user` may do `req`.
    pub fn allows(&self, user: &UserInfo, req: &Request) -> bool {
        self.authorize(user, req).is_allowed()
    }

    /// What `user` may do in `namespace`.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> RulesReview {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .rules_for(user, namespace)
    }

    /// Adds or replaces one RBAC object (for tests that build an authorizer by hand).
    #[cfg(test)]
    pub fn upsert_for_tests(&self, obj: &Value) {
        self.apply(obj, false);
    }

    fn replace(&self, p: Policy) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = p;
    }

    fn apply(&self, obj: &Value, deleted: bool) {
        let mut p = self.policy.write().unwrap_or_else(|e| e.into_inner());
        if deleted {
            p.remove(
                crate::api::meta::str_at(obj, "/kind").unwrap_or_default(),
                crate::api::meta::str_at(obj, "/metadata/namespace"),
                crate::api::meta::name(obj),
            );
        } else if let Err(e) = p.upsert(obj) {
            tracing::warn!(name = crate::api::meta::name(obj), error = %e, "RBAC object ignored");
        }
    }
}

/// ClusterRoles by name, for aggregation.
type ClusterRoles = BTreeMap<String, Value>;

fn is_cluster_role(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("ClusterRole")
}

/// Lists the RBAC objects into `authz`; returns the list's revision and the ClusterRoles.
pub async fn load(objects: &Objects, authz: &Authorizer) -> Result<(u64, ClusterRoles), ApiError> {
    let mut policy = Policy::new();
    let mut roles = ClusterRoles::new();
    let mut after: Option<String> = None;
    let revision = loop {
        let page = objects.store().list(PREFIX, after.as_deref(), 1000).await?;
        for kv in &page.items {
            let Ok(obj) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            if let Err(e) = policy.upsert(&obj) {
                tracing::warn!(key = %kv.key, error = %e, "RBAC object ignored");
            }
            if is_cluster_role(&obj) {
                roles.insert(crate::api::meta::name(&obj).to_owned(), obj);
            }
        }
        match page.continue_after {
            Some(k) => after = Some(k),
            None => break page.revision,
        }
    };
    authz.replace(policy);
    Ok((revision, roles))
}

/// Writes the rules aggregated ClusterRoles should have, where they differ.
async fn aggregate(objects: &Objects, roles: &ClusterRoles) {
    let all: Vec<Value> = roles.values().cloned().collect();
    let Some(res) = objects
        .registry()
        .get(flotilla_rbac::RBAC_GROUP, "v1", "clusterroles")
    else {
        return;
    };
    for (name, rules) in flotilla_rbac::aggregate(&all) {
        let Some(current) = roles.get(&name) else {
            continue;
        };
        let want = json!(rules);
        let have: Vec<PolicyRule> = current
            .get("rules")
            .cloned()
            .and_then(|r| serde_json::from_value(r).ok())
            .unwrap_or_default();
        if json!(have) == want {
            continue;
        }
        let mut new = current.clone();
        new["rules"] = want;
        match objects
            .update(&res, None, &name, new, None, &WriteOptions::default())
            .await
        {
            Ok(_) => tracing::info!(role = %name, "aggregated ClusterRole rules updated"),
            // A newer version will be aggregated when its event arrives.
            Err(e) if e.reason == "Conflict" => {}
            Err(e) => tracing::warn!(role = %name, error = %e, "aggregating a ClusterRole failed"),
        }
    }
}

/// Follows the store's RBAC objects from `from`, relisting when the watch is lost, until
/// `shutdown`.
pub async fn run(
    objects: Objects,
    authz: std::sync::Arc<Authorizer>,
    mut from: u64,
    mut roles: ClusterRoles,
    shutdown: CancellationToken,
) {
    aggregate(&objects, &roles).await;
    loop {
        let mut events = match objects.store().watch(PREFIX, from).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "watching RBAC objects failed; relisting");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                match load(&objects, &authz).await {
                    Ok((rev, r)) => (from, roles) = (rev, r),
                    Err(e) => tracing::warn!(error = %e, "listing RBAC objects failed"),
                }
                continue;
            }
        };
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = events.next() => ev,
            };
            let Some(Ok(ev)) = ev else {
                tracing::warn!("the RBAC watch ended; relisting");
                if let Ok((rev, r)) = load(&objects, &authz).await {
                    (from, roles) = (rev, r);
                    aggregate(&objects, &roles).await;
                }
                break;
            };
            from = ev.kv.mod_revision;
            let Ok(obj) = serde_json::from_slice::<Value>(&ev.kv.value) else {
                continue;
            };
            let deleted = ev.kind == EventKind::Deleted;
            authz.apply(&obj, deleted);
            if is_cluster_role(&obj) {
                let name = crate::api::meta::name(&obj).to_owned();
                if deleted {
                    roles.remove(&name);
                } else {
                    roles.insert(name, obj);
                }
                aggregate(&objects, &roles).await;
            }
        }
    }
}

/// Creates the default ClusterRoles and ClusterRoleBindings kube-apiserver creates, and
/// brings those marked for automatic update back to their defaults (an aggregated role's
/// rules are left to aggregation).
pub async fn bootstrap(objects: &Objects) -> Result<(), ApiError> {
    let reg = objects.registry();
    for obj in flotilla_rbac::default_objects() {
        let plural = match obj.get("kind").and_then(Value::as_str) {
            Some("ClusterRole") => "clusterroles",
            Some("ClusterRoleBinding") => "clusterrolebindings",
            _ => continue,
        };
        let res = reg
            .get(flotilla_rbac::RBAC_GROUP, "v1", plural)
            .ok_or_else(|| ApiError::internal("RBAC kinds not served"))?;
        let name = crate::api::meta::name(&obj).to_owned();
        let current = match objects.get(&res, None, &name).await {
            Ok(c) => c,
            Err(e) if e.code == http::StatusCode::NOT_FOUND => {
                objects
                    .create(&res, None, obj, &WriteOptions::default())
                    .await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let auto = crate::api::meta::str_at(
            &current,
            &format!(
                "/metadata/annotations/{}",
                flotilla_rbac::AUTOUPDATE_ANNOTATION.replace('/', "~1")
            ),
        ) == Some("true");
        if !auto {
            continue;
        }
        let mut new = current.clone();
        let aggregated = obj.get("aggregationRule").is_some();
        for field in ["rules", "aggregationRule", "subjects", "roleRef"] {
            if field == "rules" && aggregated {
                continue;
            }
            match obj.get(field) {
                Some(v) => new[field] = v.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        if new != current {
            objects
                .update(&res, None, &name, new, None, &WriteOptions::default())
                .await?;
        }
    }
    Ok(())
}
