//! Exchanging a bootstrap token for a cluster's client certificate.

use base64::Engine;
use flotilla_proto::enrollment::{self, Token};
use serde_json::{Value, json};
use tonic::Status;

use super::Shared;
use crate::api::meta;

/// Why a token was refused, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not `<id>.<secret>`.
    Malformed,
    /// No such token (never issued, or removed).
    Unknown(String),
    /// The secret does not match.
    WrongSecret(String),
    /// Already exchanged.
    Used(String, String),
    /// Past its expiry.
    Expired(String, String),
    /// Issued for another cluster.
    OtherCluster(String, String),
}

impl Refusal {
    /// The gRPC status for the refusal.
    pub fn status(&self, cluster: &str) -> Status {
        let again =
            format!("run `flotillactl register cluster {cluster}` on the hub for a new token");
        match self {
            Self::Malformed => Status::invalid_argument(
                "the bootstrap token is malformed: expected <id>.<secret> as printed by `flotillactl register cluster`",
            ),
            // One answer for both, so a caller cannot learn which token ids exist.
            Self::Unknown(id) | Self::WrongSecret(id) => Status::unauthenticated(format!(
                "bootstrap token {id} is not valid (unknown, revoked, or a wrong secret); {again}"
            )),
            Self::Used(id, at) => Status::unauthenticated(format!(
                "bootstrap token {id} was already used at {at}; tokens are single-use; {again}"
            )),
            Self::Expired(id, at) => {
                Status::unauthenticated(format!("bootstrap token {id} expired at {at}; {again}"))
            }
            Self::OtherCluster(id, other) => Status::permission_denied(format!(
                "bootstrap token {id} was issued for cluster {other}, not {cluster}"
            )),
        }
    }
}

fn data_str(secret: &Value, key: &str) -> Option<String> {
    let b64 = secret
        .pointer(&format!("/data/{key}"))
        .and_then(Value::as_str)?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

/// Checks a token Secret against a presented token for `cluster` at time `now`.
pub fn check(
    secret: &Value,
    token: &Token,
    cluster: &str,
    now: jiff::Timestamp,
) -> Result<(), Refusal> {
    let id = token.id.clone();
    let hash = data_str(secret, enrollment::KEY_SECRET_HASH).unwrap_or_default();
    if !crate::api::constant_time_eq(hash.as_bytes(), token.secret_hash().as_bytes()) {
        return Err(Refusal::WrongSecret(id));
    }
    if let Some(at) = data_str(secret, enrollment::KEY_USED_AT) {
        return Err(Refusal::Used(id, at));
    }
    let exp = data_str(secret, enrollment::KEY_EXPIRATION).unwrap_or_default();
    match exp.parse::<jiff::Timestamp>() {
        Ok(t) if t > now => {}
        _ => return Err(Refusal::Expired(id, exp)),
    }
    let for_cluster = data_str(secret, enrollment::KEY_CLUSTER).unwrap_or_default();
    if for_cluster != cluster {
        return Err(Refusal::OtherCluster(id, for_cluster));
    }
    Ok(())
}

/// Validates and consumes `token` for `cluster`, then signs the cluster's certificate for
/// the key pair of `csr_pem`: returns the certificate PEM.
pub async fn enroll(
    shared: &Shared,
    cluster: &str,
    token: &str,
    csr_pem: &str,
) -> Result<String, Status> {
    check_csr(csr_pem)?;
    let token = Token::parse(token).ok_or_else(|| Refusal::Malformed.status(cluster))?;
    let objects = &shared.objects;
    let secrets = crate::registry::builtin_resource("", "v1", "secrets")
        .ok_or_else(|| Status::internal("secrets are not served"))?;
    let secret = match objects
        .get(&secrets, Some(enrollment::NAMESPACE), &token.secret_name())
        .await
    {
        Ok(s) => s,
        Err(e) if e.code.as_u16() == 404 => {
            return Err(Refusal::Unknown(token.id.clone()).status(cluster));
        }
        Err(e) => return Err(Status::unavailable(e.message)),
    };
    if meta::str_at(&secret, "/type") != Some(enrollment::TOKEN_SECRET_TYPE) {
        return Err(Refusal::Unknown(token.id.clone()).status(cluster));
    }
    check(&secret, &token, cluster, jiff::Timestamp::now()).map_err(|r| r.status(cluster))?;
    let clusters = super::clusters().map_err(|e| Status::internal(e.message))?;
    let (uid, generation) = match objects.get(&clusters, None, cluster).await {
        Ok(c) => (
            meta::str_at(&c, "/metadata/uid")
                .unwrap_or_default()
                .to_owned(),
            super::credential_generation(&c),
        ),
        Err(e) if e.code.as_u16() == 404 => {
            return Err(Status::failed_precondition(format!(
                "cluster {cluster} is not registered on the hub"
            )));
        }
        Err(e) => return Err(Status::unavailable(e.message)),
    };
    // Mark the token used with a precondition, so two agents racing with one token cannot both win.
    let mut used = secret.clone();
    used["data"][enrollment::KEY_USED_AT] =
        json!(base64::engine::general_purpose::STANDARD.encode(meta::now()));
    let rv = meta::str_at(&secret, "/metadata/resourceVersion")
        .unwrap_or_default()
        .to_owned();
    meta::metadata_mut(&mut used).insert("resourceVersion".into(), json!(rv));
    match objects
        .update(
            &secrets,
            Some(enrollment::NAMESPACE),
            &token.secret_name(),
            used,
            None,
            &super::work::opts(),
        )
        .await
    {
        Ok(_) => {}
        Err(e) if e.reason == "Conflict" => {
            return Err(Refusal::Used(token.id.clone(), "this moment".into()).status(cluster));
        }
        Err(e) => return Err(Status::unavailable(e.message)),
    }
    let cert = shared
        .pki
        .sign_client_csr(csr_pem, cluster, &uid, generation, shared.cert_ttl)
        .map_err(|e| Status::internal(e.to_string()))?;
    tracing::info!(%cluster, token = %token.id, "cluster enrolled");
    Ok(cert)
}

/// Checks a certificate signing request before a token is spent on it.
pub fn check_csr(csr_pem: &str) -> Result<(), Status> {
    if csr_pem.trim().is_empty() {
        return Err(Status::failed_precondition(
            "this agent sends no certificate signing request: upgrade the agent (the hub no longer makes keys for agents)",
        ));
    }
    if csr_pem.len() > 16 * 1024 {
        return Err(Status::invalid_argument(
            "the certificate signing request is larger than 16 KiB",
        ));
    }
    rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
        .map(|_| ())
        .map_err(|e| Status::invalid_argument(format!("invalid certificate signing request: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn secret(token: &Token, cluster: &str, exp: &str, used: Option<&str>) -> Value {
        let mut data = json!({
            "cluster": b64(cluster),
            "secret-hash": b64(&token.secret_hash()),
            "expiration": b64(exp),
        });
        if let Some(u) = used {
            data["used-at"] = json!(b64(u));
        }
        json!({"type": enrollment::TOKEN_SECRET_TYPE, "data": data})
    }

    #[test]
    fn token_checks() {
        let t = Token::parse("abcdef.0123456789abcdef").expect("valid");
        let other = Token::parse("abcdef.ffffffffffffffff").expect("valid");
        let now: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().expect("time");
        let later = "2030-01-02T00:00:00Z";
        let earlier = "2029-12-31T00:00:00Z";
        let cases = [
            (secret(&t, "m1", later, None), &t, "m1", None),
            (
                secret(&t, "m1", later, None),
                &other,
                "m1",
                Some("WrongSecret"),
            ),
            (secret(&t, "m1", later, Some("x")), &t, "m1", Some("Used")),
            (secret(&t, "m1", earlier, None), &t, "m1", Some("Expired")),
            (secret(&t, "m1", "garbage", None), &t, "m1", Some("Expired")),
            (
                secret(&t, "m1", later, None),
                &t,
                "m2",
                Some("OtherCluster"),
            ),
            // A used token with the wrong secret reveals nothing about its use.
            (
                secret(&t, "m1", later, Some("x")),
                &other,
                "m1",
                Some("WrongSecret"),
            ),
        ];
        for (s, tok, cluster, want) in cases {
            let got = check(&s, tok, cluster, now).err().map(|r| format!("{r:?}"));
            match want {
                None => assert!(got.is_none(), "{got:?}"),
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.starts_with(w)),
                    "{got:?} != {w}"
                ),
            }
        }
    }
}
