//! Legacy ServiceAccount token Secrets: a Secret of type
//! `kubernetes.io/service-account-token` annotated `kubernetes.io/service-account.name` gets a
//! non-expiring token bound to the Secret and the ServiceAccount, with the hub's CA and the
//! namespace, as kube-controller-manager's tokens controller fills it in. Deleting either the
//! Secret or the ServiceAccount voids the token.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::jwt::{Claims, ISSUER, KubeClaims, ObjectRef, TokenKeys};
use crate::api::error::ApiError;
use crate::api::meta;
use crate::api::objects::{Objects, WriteOptions};

/// The Secret type.
pub const TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
/// The annotation naming the ServiceAccount.
pub const SA_NAME: &str = "kubernetes.io/service-account.name";
/// The annotation the hub sets to the ServiceAccount's uid.
pub const SA_UID: &str = "kubernetes.io/service-account.uid";

/// The filled-in Secret for `secret` when it asks for a token and has none yet, given the
/// ServiceAccount `sa` (a pure function; `now` in Unix seconds).
pub fn filled(
    secret: &Value,
    sa: &Value,
    keys: &TokenKeys,
    ca_pem: &str,
    now: i64,
) -> Result<Option<Value>, ApiError> {
    if secret.get("type").and_then(Value::as_str) != Some(TOKEN_TYPE)
        || secret.pointer("/data/token").is_some()
    {
        return Ok(None);
    }
    let ns = meta::str_at(secret, "/metadata/namespace").unwrap_or_default();
    let sa_name = meta::name(sa);
    let sa_uid = meta::str_at(sa, "/metadata/uid").unwrap_or_default();
    let claims = Claims {
        iss: ISSUER.into(),
        sub: format!("{}{ns}:{sa_name}", super::SERVICE_ACCOUNT_PREFIX),
        aud: vec![ISSUER.into()],
        exp: None,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        kube: KubeClaims {
            namespace: ns.to_owned(),
            serviceaccount: ObjectRef {
                name: sa_name.to_owned(),
                uid: sa_uid.to_owned(),
            },
            secret: Some(ObjectRef {
                name: meta::name(secret).to_owned(),
                uid: meta::str_at(secret, "/metadata/uid")
                    .unwrap_or_default()
                    .to_owned(),
            }),
        },
    };
    let token = keys
        .sign(&claims)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut out = secret.clone();
    out["data"] = json!({
        "token": STANDARD.encode(token),
        "ca.crt": STANDARD.encode(ca_pem),
        "namespace": STANDARD.encode(ns),
    });
    meta::metadata_mut(&mut out)
        .entry("annotations")
        .or_insert_with(|| json!({}))[SA_UID] = json!(sa_uid);
    Ok(Some(out))
}

/// Fills in `secret` (just written) if it asks for a token.
pub async fn fill(
    objects: &Objects,
    keys: &TokenKeys,
    ca_pem: &str,
    secret: &Value,
) -> Result<(), ApiError> {
    let Some(sa_name) = meta::str_at(
        secret,
        &format!("/metadata/annotations/{}", SA_NAME.replace('/', "~1")),
    ) else {
        return Ok(());
    };
    let ns = meta::str_at(secret, "/metadata/namespace").unwrap_or_default();
    let reg = objects.registry();
    let (Some(sas), Some(secrets)) = (
        reg.get("", "v1", "serviceaccounts"),
        reg.get("", "v1", "secrets"),
    ) else {
        return Ok(());
    };
    let sa = match objects.get(&sas, Some(ns), sa_name).await {
        Ok(sa) => sa,
        Err(e) if e.code == http::StatusCode::NOT_FOUND => {
            tracing::info!(secret = meta::name(secret), %ns, sa = sa_name, "token Secret names a missing ServiceAccount; left empty");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let now = jiff::Timestamp::now().as_second();
    if let Some(new) = filled(secret, &sa, keys, ca_pem, now)? {
        objects
            .update(
                &secrets,
                Some(ns),
                meta::name(secret),
                new,
                None,
                &WriteOptions::default(),
            )
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_secrets_get_a_bound_token_once() -> Result<(), Box<dyn std::error::Error>> {
        let keys = TokenKeys::load_or_create(tempfile::tempdir()?.path())?;
        let sa = json!({"metadata": {"name": "ci", "namespace": "a", "uid": "sa-1"}});
        let secret = json!({"type": TOKEN_TYPE, "metadata": {"name": "ci-token", "namespace": "a", "uid": "s-1",
            "annotations": {SA_NAME: "ci"}}});
        let out = filled(&secret, &sa, &keys, "CA", 1_800_000_000)
            .map_err(|e| e.to_string())?
            .ok_or("filled")?;
        let token =
            String::from_utf8(STANDARD.decode(out["data"]["token"].as_str().unwrap_or_default())?)?;
        let c = keys.verify(&token, 1_900_000_000)?;
        assert_eq!(c.exp, None, "legacy tokens do not expire");
        assert_eq!(
            c.kube.secret,
            Some(ObjectRef {
                name: "ci-token".into(),
                uid: "s-1".into()
            })
        );
        assert_eq!(out["metadata"]["annotations"][SA_UID], "sa-1");
        assert_eq!(out["data"]["namespace"], STANDARD.encode("a"));
        // Filled once; other Secret types untouched.
        assert!(
            filled(&out, &sa, &keys, "CA", 0)
                .map_err(|e| e.to_string())?
                .is_none()
        );
        let opaque = json!({"type": "Opaque", "metadata": {"name": "x", "namespace": "a"}});
        assert!(
            filled(&opaque, &sa, &keys, "CA", 0)
                .map_err(|e| e.to_string())?
                .is_none()
        );
        Ok(())
    }
}
