//! ServiceAccount tokens: JSON Web Tokens signed by the hub (ES256), in the shape
//! kube-apiserver issues for the TokenRequest API and for legacy token Secrets.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The issuer of the hub's tokens, and the audience the API accepts (kube-apiserver's
/// default `--service-account-issuer` / `--api-audiences`).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Tokens longer than this are refused before any decoding.
pub const MAX_TOKEN: usize = 8 * 1024;
/// Clock skew allowed on `nbf` and `exp`, in seconds.
const LEEWAY: i64 = 60;

/// Token errors; the messages never include the token.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// The key file is unusable.
    #[error("service account signing key: {0}")]
    Key(String),
    /// The token is not one of ours or no longer valid.
    #[error("invalid token: {0}")]
    Invalid(&'static str),
}

/// A reference to an object a token is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Name.
    pub name: String,
    /// UID: the token is void once the object is replaced.
    pub uid: String,
}

/// The `kubernetes.io` claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeClaims {
    /// The ServiceAccount's namespace.
    pub namespace: String,
    /// The ServiceAccount.
    pub serviceaccount: ObjectRef,
    /// The legacy token Secret holding the token, if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
}

/// The claims of a ServiceAccount token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// `system:serviceaccount:<namespace>:<name>`.
    pub sub: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry (Unix seconds); absent for legacy tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Unique id.
    pub jti: String,
    /// What the token is bound to.
    #[serde(rename = "kubernetes.io")]
    pub kube: KubeClaims,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    kid: String,
}

/// Signs and verifies the hub's ServiceAccount tokens.
pub struct TokenKeys {
    key: EcdsaKeyPair,
    kid: String,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("kid", &self.kid).finish()
    }
}

impl TokenKeys {
    /// Loads the signing key from `dir/service-account.key` (PKCS#8), creating it (0600)
    /// when missing.
    pub fn load_or_create(dir: &Path) -> Result<Self, JwtError> {
        let path = dir.join("service-account.key");
        let rng = SystemRandom::new();
        let pkcs8 = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| JwtError::Key("could not generate a key".into()))?;
                crate::pki::write_file(&path, doc.as_ref(), 0o600)
                    .map_err(|e| JwtError::Key(e.to_string()))?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(JwtError::Key(format!("{}: {e}", path.display()))),
        };
        Self::from_pkcs8(&pkcs8)
    }

    /// Keys from PKCS#8 bytes.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, JwtError> {
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|e| JwtError::Key(format!("not a P-256 PKCS#8 key: {e}")))?;
        let kid = hex::encode(&Sha256::digest(key.public_key().as_ref())[..16]);
        Ok(Self { key, kid })
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> Result<String, JwtError> {
        let header = serde_json::to_vec(&Header {
            alg: "ES256".into(),
            kid: self.kid.clone(),
        })
        .map_err(|_| JwtError::Key("header".into()))?;
        let body = serde_json::to_vec(claims).map_err(|_| JwtError::Key("claims".into()))?;
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(body)
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| JwtError::Key("signing failed".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }

    /// Verifies a token's signature, issuer, audience and times at `now` (Unix seconds).
    /// Whether the objects it is bound to still exist is for the caller to check.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN {
            return Err(JwtError::Invalid("too long"));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(b), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Invalid("not a JWT"));
        };
        let header: Header = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(JwtError::Invalid("bad header"))?;
        if header.alg != "ES256" || header.kid != self.kid {
            return Err(JwtError::Invalid("not signed by this hub"));
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| JwtError::Invalid("bad signature encoding"))?;
        let signed = &token[..h.len() + 1 + b.len()];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(signed.as_bytes(), &sig)
            .map_err(|_| JwtError::Invalid("bad signature"))?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(b)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(JwtError::Invalid("bad claims"))?;
        if claims.iss != ISSUER {
            return Err(JwtError::Invalid("wrong issuer"));
        }
        if !claims.aud.iter().any(|a| a == ISSUER) {
            return Err(JwtError::Invalid("not meant for this API"));
        }
        if claims.nbf > now.saturating_add(LEEWAY) {
            return Err(JwtError::Invalid("not valid yet"));
        }
        if claims
            .exp
            .is_some_and(|exp| exp.saturating_add(LEEWAY) < now)
        {
            return Err(JwtError::Invalid("expired"));
        }
        let expected = format!(
            "system:serviceaccount:{}:{}",
            claims.kube.namespace, claims.kube.serviceaccount.name
        );
        if claims.sub != expected {
            return Err(JwtError::Invalid("subject and binding differ"));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64, exp: Option<i64>) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "system:serviceaccount:team-a:ci".into(),
            aud: vec![ISSUER.into()],
            exp,
            iat: now,
            nbf: now,
            jti: "j1".into(),
            kube: KubeClaims {
                namespace: "team-a".into(),
                serviceaccount: ObjectRef {
                    name: "ci".into(),
                    uid: "u1".into(),
                },
                secret: None,
            },
        }
    }

    #[test]
    fn signed_tokens_verify_until_they_expire() -> Result<(), JwtError> {
        let dir = tempfile::tempdir().map_err(|e| JwtError::Key(e.to_string()))?;
        let keys = TokenKeys::load_or_create(dir.path())?;
        let again = TokenKeys::load_or_create(dir.path())?;
        let now = 1_800_000_000;
        let t = keys.sign(&claims(now, Some(now + 600)))?;
        assert_eq!(again.verify(&t, now + 10)?, claims(now, Some(now + 600)));
        assert!(keys.verify(&t, now + 600 + LEEWAY + 1).is_err(), "expired");
        assert!(keys.verify(&t, now - LEEWAY - 1).is_err(), "not yet valid");
        // Legacy tokens do not expire.
        let legacy = keys.sign(&claims(now, None))?;
        assert!(keys.verify(&legacy, now + 10 * 365 * 86_400).is_ok());
        Ok(())
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() -> Result<(), JwtError> {
        let keys = TokenKeys::load_or_create(tempfile::tempdir().expect("dir").path())?;
        let other = TokenKeys::load_or_create(tempfile::tempdir().expect("dir").path())?;
        let now = 1_800_000_000;
        let t = keys.sign(&claims(now, Some(now + 600)))?;
        assert!(other.verify(&t, now).is_err(), "another hub's key");
        // A changed body with the old signature.
        let parts: Vec<&str> = t.split('.').collect();
        let mut c = claims(now, Some(now + 600));
        c.sub = "system:serviceaccount:kube-system:admin".into();
        c.kube.namespace = "kube-system".into();
        c.kube.serviceaccount.name = "admin".into();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).expect("json"));
        let forged = format!("{}.{body}.{}", parts[0], parts[2]);
        assert!(keys.verify(&forged, now).is_err());
        // An unsigned token.
        let none = format!(
            "{}.{body}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":""}"#)
        );
        assert!(keys.verify(&none, now).is_err());
        // Wrong audience, issuer, or a subject that differs from the binding.
        for change in [
            (|c: &mut Claims| c.aud = vec!["vault".into()]) as fn(&mut Claims),
            |c| c.iss = "https://elsewhere".into(),
            |c| c.sub = "system:serviceaccount:team-a:other".into(),
        ] {
            let mut c = claims(now, Some(now + 600));
            change(&mut c);
            assert!(keys.verify(&keys.sign(&c)?, now).is_err());
        }
        for junk in ["", "a.b", "a.b.c.d", &"x".repeat(MAX_TOKEN + 1)] {
            assert!(keys.verify(junk, now).is_err());
        }
        Ok(())
    }
}
