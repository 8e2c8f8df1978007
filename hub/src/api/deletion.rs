//! What a DELETE asks for: preconditions, dry run and what becomes of the object's
//! dependents (`propagationPolicy`, or the older `orphanDependents`), read from the query and
//! from a `DeleteOptions` body as kube-apiserver reads them.

use serde_json::Value;

use super::error::ApiError;
use crate::registry::Resource;

/// The finalizer that keeps an object until the garbage collector has removed its owner
/// references from its dependents.
pub const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer that keeps an object until the garbage collector has deleted its blocking
/// dependents.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// What happens to the dependents of a deleted object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// The object goes at once; the garbage collector deletes its dependents afterwards.
    #[default]
    Background,
    /// The object stays, terminating, until its blocking dependents are deleted.
    Foreground,
    /// The object stays, terminating, until its dependents no longer name it as an owner.
    Orphan,
}

impl Propagation {
    /// The finalizer this propagation adds, if any.
    pub fn finalizer(self) -> Option<&'static str> {
        match self {
            Propagation::Background => None,
            Propagation::Foreground => Some(FOREGROUND_FINALIZER),
            Propagation::Orphan => Some(ORPHAN_FINALIZER),
        }
    }

    /// The default for a resource when the request names none: `Orphan` for
    /// ReplicationControllers (kept from before garbage collection), `Background` otherwise.
    pub fn default_for(res: &Resource) -> Self {
        if res.group.is_empty() && res.kind == "ReplicationController" {
            Propagation::Orphan
        } else {
            Propagation::Background
        }
    }
}

/// The options of one DELETE.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteOptions {
    /// `preconditions.resourceVersion`.
    pub precondition_rv: Option<u64>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// Validate only.
    pub dry_run: bool,
    /// What becomes of dependents.
    pub propagation: Propagation,
}

fn parse_propagation(s: &str) -> Result<Propagation, ApiError> {
    match s {
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        "Orphan" => Ok(Propagation::Orphan),
        other => Err(ApiError::bad_request(format!(
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
        ))),
    }
}

impl DeleteOptions {
    /// The options of a request: its `DeleteOptions` body (`{}` when empty), then the query
    /// parameters `propagationPolicy` and `orphanDependents`, then the resource's default.
    pub fn from_request(
        res: &Resource,
        body: &Value,
        query_propagation: Option<&str>,
        query_orphan: Option<&str>,
        query_dry_run: bool,
    ) -> Result<Self, ApiError> {
        let body_policy = body.get("propagationPolicy").and_then(Value::as_str);
        let body_orphan = body.get("orphanDependents").and_then(Value::as_bool);
        let query_orphan = match query_orphan {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "orphanDependents: invalid value \"{other}\": expected true or false"
                )));
            }
        };
        let policy = body_policy.or(query_propagation);
        let orphan = body_orphan.or(query_orphan);
        if policy.is_some() && orphan.is_some() {
            return Err(ApiError::unprocessable(
                "DeleteOptions.meta.k8s.io \"\" is invalid: orphanDependents: Invalid value: orphanDependents and propagationPolicy cannot be both set",
            ));
        }
        let propagation = match (policy, orphan) {
            (Some(p), _) => parse_propagation(p)?,
            (None, Some(true)) => Propagation::Orphan,
            (None, Some(false)) => Propagation::Background,
            (None, None) => Propagation::default_for(res),
        };
        Ok(Self {
            precondition_rv: body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok()),
            precondition_uid: body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            dry_run: query_dry_run
                || body
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x == "All")),
            propagation,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn res(group: &str, kind: &str) -> std::sync::Arc<Resource> {
        let version = if group.is_empty() { "v1" } else { "apps/v1" };
        let version = version.rsplit('/').next().unwrap_or("v1");
        crate::registry::Registry::new()
            .by_kind(group, version, kind)
            .expect("a built-in kind")
    }

    #[test]
    fn body_then_query_then_default() {
        let deploy = res("apps", "Deployment");
        let p = |body: Value, q: Option<&str>, o: Option<&str>| {
            DeleteOptions::from_request(&deploy, &body, q, o, false).map(|d| d.propagation)
        };
        assert_eq!(p(json!({}), None, None).unwrap(), Propagation::Background);
        assert_eq!(
            p(
                json!({"propagationPolicy": "Orphan"}),
                Some("Foreground"),
                None
            )
            .unwrap(),
            Propagation::Orphan
        );
        assert_eq!(
            p(json!({}), Some("Foreground"), None).unwrap(),
            Propagation::Foreground
        );
        assert_eq!(
            p(json!({"orphanDependents": true}), None, None).unwrap(),
            Propagation::Orphan
        );
        assert_eq!(
            p(json!({}), None, Some("false")).unwrap(),
            Propagation::Background
        );
        assert_eq!(
            p(json!({}), Some("Sideways"), None)
                .unwrap_err()
                .code
                .as_u16(),
            400
        );
        assert_eq!(
            p(
                json!({"propagationPolicy": "Orphan", "orphanDependents": true}),
                None,
                None
            )
            .unwrap_err()
            .code
            .as_u16(),
            422
        );
        // Not served by the hub, but its rule is kube-apiserver's.
        let mut rc = (*res("", "ConfigMap")).clone();
        rc.kind = "ReplicationController".into();
        assert_eq!(
            DeleteOptions::from_request(&rc, &json!({}), None, None, false)
                .unwrap()
                .propagation,
            Propagation::Orphan
        );
    }

    #[test]
    fn preconditions_and_dry_run() {
        let d = DeleteOptions::from_request(
            &res("", "ConfigMap"),
            &json!({"preconditions": {"resourceVersion": "7", "uid": "u"}, "dryRun": ["All"]}),
            None,
            None,
            false,
        )
        .unwrap();
        assert_eq!(d.precondition_rv, Some(7));
        assert_eq!(d.precondition_uid.as_deref(), Some("u"));
        assert!(d.dry_run);
    }
}
