//! CertificateSigningRequests (`certificates.k8s.io/v1`) for users' client certificates:
//! the requester's identity is recorded on create, an approval (the `approval` subresource,
//! `kubectl certificate approve`) lets the hub sign requests for the
//! `kubernetes.io/kube-apiserver-client` signer with its client CA, as kube-controller-manager
//! does.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::UserInfo;
use crate::api::error::ApiError;
use crate::api::objects::Objects;
use crate::pki::Pki;

/// The signer of client certificates for the API.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// Lifetime of a signed certificate when the request does not ask for one (a year, as
/// kube-controller-manager's `--cluster-signing-duration`); also the longest.
pub const MAX_DURATION: u64 = 365 * 86_400;
/// Shortest lifetime a request may ask for.
pub const MIN_DURATION: u64 = 600;

/// Records who asked (`spec.username`, `spec.uid`, `spec.groups`), as kube-apiserver does on
/// create; whatever the client put there is replaced.
pub fn record_requester(obj: &mut Value, user: &UserInfo) {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("username".into(), json!(user.name));
        if user.uid.is_empty() {
            spec.remove("uid");
        } else {
            spec.insert("uid".into(), json!(user.uid));
        }
        spec.insert("groups".into(), json!(user.groups));
    }
}

/// The object after an `approval` update: the current object with the incoming
/// `status.conditions` (nothing else of the request is taken).
pub fn with_approval(current: &Value, incoming: &Value) -> Value {
    let mut n = current.clone();
    let conditions = incoming
        .pointer("/status/conditions")
        .cloned()
        .unwrap_or(Value::Null);
    if !n.get("status").is_some_and(Value::is_object) {
        n["status"] = json!({});
    }
    n["status"]["conditions"] = conditions;
    n
}

fn condition(obj: &Value, kind: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == kind && c["status"] != "False")
        })
}

/// What the signer should do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: not approved, denied, failed, already signed, or another signer's.
    Nothing,
    /// Sign the PEM request for this lifetime.
    Sign {
        /// The PKCS#10 request, PEM.
        request_pem: String,
        /// Certificate lifetime.
        ttl: Duration,
    },
    /// Mark the request failed with this message.
    Fail(String),
}

/// Decides what to do with a CertificateSigningRequest (a pure function of the object).
pub fn decide(obj: &Value) -> Decision {
    if obj.pointer("/spec/signerName").and_then(Value::as_str) != Some(CLIENT_SIGNER)
        || !condition(obj, "Approved")
        || condition(obj, "Denied")
        || condition(obj, "Failed")
        || obj
            .pointer("/status/certificate")
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty())
    {
        return Decision::Nothing;
    }
    let usages: Vec<&str> = obj
        .pointer("/spec/usages")
        .and_then(Value::as_array)
        .map(|u| u.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !usages.contains(&"client auth")
        || usages
            .iter()
            .any(|u| !matches!(*u, "client auth" | "digital signature" | "key encipherment"))
    {
        return Decision::Fail(format!(
            "{CLIENT_SIGNER} signs only client certificates: usages must be \"client auth\" with optionally \"digital signature\" and \"key encipherment\""
        ));
    }
    let Some(request_pem) = obj
        .pointer("/spec/request")
        .and_then(Value::as_str)
        .and_then(|r| STANDARD.decode(r).ok())
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return Decision::Fail("spec.request is not a base64-encoded PEM request".into());
    };
    let secs = obj
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(MAX_DURATION)
        .clamp(MIN_DURATION, MAX_DURATION);
    Decision::Sign {
        request_pem,
        ttl: Duration::from_secs(secs),
    }
}

/// The subject a PEM request asks for: its common name and first organization.
fn subject(request_pem: &str) -> Result<(String, Option<String>), String> {
    use x509_parser::prelude::FromDer;
    let der = crate::pki::pem_to_der(request_pem).map_err(|e| e.to_string())?;
    let (_, req) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
        .map_err(|e| format!("the request cannot be read: {e}"))?;
    let subject = &req.certification_request_info.subject;
    let first = |mut it: Box<
        dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue> + '_,
    >| { it.next().and_then(|a| a.as_str().ok()).map(str::to_owned) };
    let cn = first(Box::new(subject.iter_common_name()))
        .filter(|c| !c.is_empty())
        .ok_or("the request has no common name (the user name)")?;
    Ok((cn, first(Box::new(subject.iter_organization()))))
}

/// Signs `obj` if it is an approved client request without a certificate, writing the
/// certificate (or a `Failed` condition) to its status.
pub async fn sign_if_approved(objects: &Objects, pki: &Pki, obj: &Value) -> Result<(), ApiError> {
    let name = crate::api::meta::name(obj).to_owned();
    let status = match decide(obj) {
        Decision::Nothing => return Ok(()),
        Decision::Fail(msg) => Err(msg),
        Decision::Sign { request_pem, ttl } => subject(&request_pem).and_then(|(cn, org)| {
            pki.sign_user_csr(&request_pem, &cn, org.as_deref(), ttl)
                .map_err(|e| e.to_string())
        }),
    };
    let Some(res) =
        objects
            .registry()
            .get("certificates.k8s.io", "v1", "certificatesigningrequests")
    else {
        return Ok(());
    };
    let mut new = obj.clone();
    match status {
        Ok(pem) => {
            tracing::info!(csr = %name, "signed a client certificate");
            new["status"]["certificate"] = json!(STANDARD.encode(pem));
        }
        Err(msg) => {
            tracing::info!(csr = %name, %msg, "refused to sign");
            let cs = new["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut cs = cs;
            cs.push(json!({
                "type": "Failed", "status": "True", "reason": "SignerValidationFailure",
                "message": msg, "lastUpdateTime": crate::api::meta::now(),
                "lastTransitionTime": crate::api::meta::now(),
            }));
            new["status"]["conditions"] = json!(cs);
        }
    }
    objects
        .update(
            &res,
            None,
            &name,
            new,
            Some("status"),
            &crate::api::objects::WriteOptions::default(),
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(extra: Value) -> Value {
        let mut o = json!({
            "spec": {"signerName": CLIENT_SIGNER, "usages": ["client auth"], "request": STANDARD.encode("PEM")},
            "status": {"conditions": [{"type": "Approved", "status": "True"}]},
        });
        if let (Some(o), Some(e)) = (o.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        o
    }

    #[test]
    fn signs_only_approved_client_requests_once() {
        assert_eq!(
            decide(&csr(json!({}))),
            Decision::Sign {
                request_pem: "PEM".into(),
                ttl: Duration::from_secs(MAX_DURATION)
            }
        );
        assert_eq!(decide(&csr(json!({"status": {}}))), Decision::Nothing);
        assert_eq!(
            decide(&csr(
                json!({"status": {"conditions": [{"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}]}})
            )),
            Decision::Nothing
        );
        assert_eq!(
            decide(&csr(
                json!({"status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "Q0VSVA=="}})
            )),
            Decision::Nothing
        );
        let mut other = csr(json!({}));
        other["spec"]["signerName"] = json!("example.com/other");
        assert_eq!(decide(&other), Decision::Nothing);
        let mut server = csr(json!({}));
        server["spec"]["usages"] = json!(["client auth", "server auth"]);
        assert!(matches!(decide(&server), Decision::Fail(_)));
        let mut short = csr(json!({}));
        short["spec"]["expirationSeconds"] = json!(1);
        assert!(
            matches!(decide(&short), Decision::Sign { ttl, .. } if ttl == Duration::from_secs(MIN_DURATION))
        );
    }

    #[test]
    fn the_requester_is_recorded_and_approval_takes_only_conditions() {
        let mut o = csr(json!({}));
        o["spec"]["username"] = json!("someone-else");
        o["spec"]["groups"] = json!(["system:masters"]);
        let alice = UserInfo {
            name: "alice".into(),
            groups: vec!["team-a".into()],
            ..Default::default()
        };
        record_requester(&mut o, &alice);
        assert_eq!(o["spec"]["username"], "alice");
        assert_eq!(o["spec"]["groups"], json!(["team-a"]));
        let incoming = json!({"spec": {"request": "changed"}, "status": {"conditions": [{"type": "Approved"}], "certificate": "forged"}});
        let n = with_approval(&o, &incoming);
        assert_eq!(n["spec"], o["spec"]);
        assert_eq!(n["status"]["conditions"], json!([{"type": "Approved"}]));
        assert!(n["status"].get("certificate").is_none());
    }
}
