//! The TokenRequest API (`POST .../serviceaccounts/{name}/token`, what `kubectl create token`
//! calls): a signed, expiring token bound to the ServiceAccount's uid.

use serde_json::{Value, json};

use super::jwt::{Claims, ISSUER, KubeClaims, ObjectRef, TokenKeys};
use crate::api::error::ApiError;

/// Default token lifetime, as kube-apiserver's.
pub const DEFAULT_EXPIRATION: i64 = 3600;
/// Shortest lifetime a client may ask for (kube-apiserver's minimum).
pub const MIN_EXPIRATION: i64 = 600;
/// Longest lifetime a client may ask for: longer requests are shortened to it.
pub const MAX_EXPIRATION: i64 = 48 * 3600;

/// The TokenRequest answer for `request` on the ServiceAccount `sa` at `now`
/// (Unix seconds).
pub fn issue(keys: &TokenKeys, sa: &Value, request: &Value, now: i64) -> Result<Value, ApiError> {
    let name = crate::api::meta::name(sa).to_owned();
    let namespace = crate::api::meta::str_at(sa, "/metadata/namespace")
        .unwrap_or_default()
        .to_owned();
    let uid = crate::api::meta::str_at(sa, "/metadata/uid")
        .unwrap_or_default()
        .to_owned();
    let spec = request.get("spec").cloned().unwrap_or(json!({}));
    let expiration = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION,
        Some(v) => v.as_i64().ok_or_else(|| invalid("must be an integer"))?,
    };
    if expiration < MIN_EXPIRATION {
        return Err(invalid("may not specify a duration less than 10 minutes"));
    }
    let expiration = expiration.min(MAX_EXPIRATION);
    let audiences: Vec<String> = match spec.get("audiences") {
        None | Some(Value::Null) => vec![ISSUER.to_owned()],
        Some(Value::Array(a)) if a.is_empty() => vec![ISSUER.to_owned()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::bad_request("spec.audiences must be strings"))?,
        Some(_) => return Err(ApiError::bad_request("spec.audiences must be a list")),
    };
    if spec.get("boundObjectRef").is_some_and(|b| !b.is_null()) {
        return Err(ApiError::bad_request(
            "spec.boundObjectRef: tokens bound to pods or secrets are not issued by this hub; omit it",
        ));
    }
    let exp = now.saturating_add(expiration);
    let claims = Claims {
        iss: ISSUER.into(),
        sub: format!("{}{namespace}:{name}", super::SERVICE_ACCOUNT_PREFIX),
        aud: audiences.clone(),
        exp: Some(exp),
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        kube: KubeClaims {
            namespace: namespace.clone(),
            serviceaccount: ObjectRef {
                name: name.clone(),
                uid,
            },
            secret: None,
        },
    };
    let token = keys
        .sign(&claims)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let expires = jiff::Timestamp::from_second(exp)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": null},
        "spec": {"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": null},
        "status": {"token": token, "expirationTimestamp": expires},
    }))
}

fn invalid(why: &str) -> ApiError {
    ApiError::invalid(
        "TokenRequest",
        "",
        vec![crate::api::error::Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {why}"),
            field: "spec.expirationSeconds".into(),
        }],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_bound_expiring_tokens() -> Result<(), Box<dyn std::error::Error>> {
        let keys = TokenKeys::load_or_create(tempfile::tempdir()?.path())?;
        let sa = json!({"metadata": {"name": "ci", "namespace": "team-a", "uid": "u1"}});
        let now = 1_800_000_000;
        let r = issue(
            &keys,
            &sa,
            &json!({"spec": {"expirationSeconds": 1200}}),
            now,
        )
        .map_err(|e| e.to_string())?;
        assert_eq!(r["spec"]["expirationSeconds"], 1200);
        assert_eq!(r["status"]["expirationTimestamp"], "2027-01-15T08:20:00Z");
        let token = r["status"]["token"].as_str().unwrap_or_default();
        let c = keys.verify(token, now)?;
        assert_eq!(c.sub, "system:serviceaccount:team-a:ci");
        assert_eq!(c.kube.serviceaccount.uid, "u1");
        assert_eq!(c.exp, Some(now + 1200));
        assert!(keys.verify(token, now + 1200 + 61).is_err());
        // Defaults, a cap, and a floor.
        let r = issue(&keys, &sa, &json!({}), now).map_err(|e| e.to_string())?;
        assert_eq!(r["spec"]["expirationSeconds"], DEFAULT_EXPIRATION);
        let r = issue(
            &keys,
            &sa,
            &json!({"spec": {"expirationSeconds": 1_000_000_000}}),
            now,
        )
        .map_err(|e| e.to_string())?;
        assert_eq!(r["spec"]["expirationSeconds"], MAX_EXPIRATION);
        let e = issue(&keys, &sa, &json!({"spec": {"expirationSeconds": 60}}), now)
            .err()
            .ok_or("too short is refused")?;
        assert_eq!(e.code.as_u16(), 422);
        // A token for another audience does not authenticate here.
        let r = issue(&keys, &sa, &json!({"spec": {"audiences": ["vault"]}}), now)
            .map_err(|e| e.to_string())?;
        assert!(
            keys.verify(r["status"]["token"].as_str().unwrap_or_default(), now)
                .is_err()
        );
        Ok(())
    }
}
