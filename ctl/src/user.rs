//! `create user`: a key made here, a CertificateSigningRequest for the hub's client signer,
//! approved and signed, and a kubeconfig with the resulting client certificate. The user has
//! no rights until a RoleBinding or ClusterRoleBinding grants some.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::hub::Hub;

const CSR_PATH: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

/// What `create user` makes.
#[derive(Debug)]
pub struct NewUser {
    /// The kubeconfig text (holds the private key).
    pub kubeconfig: String,
    /// When the certificate expires (RFC 3339).
    pub expires: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Checks a user name the way the hub reads it back from the certificate.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 {
        bail!("the user name must have 1 to 64 characters");
    }
    if name.starts_with("system:") {
        bail!("names starting with \"system:\" are reserved for Kubernetes identities");
    }
    if name.chars().any(|c| c.is_control() || c == ',' || c == '=') {
        bail!("the user name {name:?} may not hold control characters, ',' or '='");
    }
    Ok(())
}

/// Creates user `name` in `group` with a certificate valid for `ttl`, reporting progress on
/// stderr.
pub async fn create(hub: &Hub, name: &str, group: Option<&str>, ttl: Duration) -> Result<NewUser> {
    check_name(name)?;
    if group == Some("system:masters") {
        bail!(
            "refusing to put a user in system:masters: bind the cluster-admin ClusterRole instead"
        );
    }
    let key = rcgen::KeyPair::generate().context("generating a key")?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    if let Some(g) = group {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, g);
    }
    let csr = params
        .serialize_request(&key)
        .context("building the signing request")?
        .pem()?;
    let csr_name = format!(
        "user-{}-{}",
        name.to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .trim_matches('-'),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let body = json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": csr_name},
        "spec": {
            "request": STANDARD.encode(csr),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
            "expirationSeconds": ttl.as_secs(),
        },
    });
    eprintln!("certificatesigningrequest/{csr_name}: created");
    let created = hub
        .create(CSR_PATH, &body)
        .await?
        .context("a signing request of that name exists already; try again")?;
    let mut approved = created.clone();
    approved["status"]["conditions"] = json!([{
        "type": "Approved", "status": "True", "reason": "FlotillactlCreateUser",
        "message": format!("approved by flotillactl create user {name}"),
    }]);
    hub.put(&format!("{CSR_PATH}/{csr_name}/approval"), &approved)
        .await?;
    eprintln!("certificatesigningrequest/{csr_name}: approved, waiting for the certificate");
    let started = std::time::Instant::now();
    let cert_pem = loop {
        let obj = hub
            .get(&format!("{CSR_PATH}/{csr_name}"))
            .await?
            .context("the signing request disappeared")?;
        if let Some(c) = obj.pointer("/status/certificate").and_then(Value::as_str) {
            let pem = STANDARD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .context("the hub returned a certificate that is not base64 PEM")?;
            break pem;
        }
        if let Some(f) = obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["type"] == "Failed" || c["type"] == "Denied")
            })
        {
            bail!(
                "the hub did not sign the request: {}",
                f["message"].as_str().unwrap_or("no reason given")
            );
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "no certificate after 30 s; check the hub's log, then `kubectl get csr {csr_name}`"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ca: String = hub.ca_der().iter().map(|d| pem("CERTIFICATE", d)).collect();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: flotilla\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {name:?}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\ncontexts:\n- name: {name:?}\n  context:\n    cluster: flotilla\n    user: {name:?}\n    namespace: default\ncurrent-context: {name:?}\n",
        server = hub.server(),
        ca = STANDARD.encode(ca),
        cert = STANDARD.encode(&cert_pem),
        key = STANDARD.encode(key.serialize_pem()),
    );
    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(
            i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        ))
        .map(|t| t.to_string())
        .unwrap_or_default();
    Ok(NewUser {
        kubeconfig,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("alice@example.com").is_ok());
        for bad in ["", "system:admin", "a,b", "a=b", "a\nb", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pem_wraps_at_64() {
        let p = pem("CERTIFICATE", &[0u8; 100]);
        assert!(p.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(p.lines().all(|l| l.len() <= 64));
    }
}
