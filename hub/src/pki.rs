//! The hub's certificate authority, serving certificate and admin credential.
//!
//! Everything lives in the data directory and is created on first start:
//! `ca.crt`/`ca.key` (the hub CA: serving certificate and agents), `client-ca.crt`/
//! `client-ca.key` (the CA of users' client certificates; a separate CA so that an agent's
//! certificate never authenticates on the API), `serving.crt`/`serving.key` (re-issued when
//! the wanted SANs change) and `admin.token`. Key files are mode 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};

/// PKI errors.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Certificate generation or parsing failed.
    #[error("certificate error: {0}")]
    Cert(#[from] rcgen::Error),
    /// A stored file is not what it should be.
    #[error("{0}")]
    Invalid(String),
}

/// The hub's key material, loaded or created.
pub struct Pki {
    /// The CA certificate, PEM.
    pub ca_cert_pem: String,
    ca_key: KeyPair,
    /// The CA certificate of users' client certificates, PEM.
    pub client_ca_cert_pem: String,
    client_ca_key: KeyPair,
    /// The serving certificate, PEM.
    pub serving_cert_pem: String,
    /// The serving key, PEM.
    pub serving_key_pem: String,
    /// The admin bearer token.
    pub admin_token: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes a file atomically (temp file + rename) with the given mode.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io)?;
    f.write_all(contents).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

fn ca_params(common_name: &str) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "flotilla");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2125, 1, 1);
    Ok(params)
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // Two v4 UUIDs carry 244 random bits from the OS generator.
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    hex::encode(bytes)
}

impl Pki {
    /// Loads the PKI from `dir`, creating what is missing; the serving certificate is
    /// re-issued when it does not cover `sans`.
    pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<Self, PkiError> {
        let (ca_cert_pem, ca_key) = load_or_create_ca(dir, "ca", "flotilla-hub-ca")?;
        let (client_ca_cert_pem, client_ca_key) =
            load_or_create_ca(dir, "client-ca", "flotilla-client-ca")?;
        let sans_path = dir.join("serving.sans");
        let wanted = sans.join(",");
        let serving_crt = dir.join("serving.crt");
        let serving_key = dir.join("serving.key");
        let (serving_cert_pem, serving_key_pem) =
            match (read(&serving_crt)?, read(&serving_key)?, read(&sans_path)?) {
                (Some(c), Some(k), Some(s)) if s == wanted => (c, k),
                _ => {
                    let key = KeyPair::generate()?;
                    let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, &ca_key)?;
                    let mut params = CertificateParams::new(Vec::<String>::new())?;
                    params.subject_alt_names = sans
                        .iter()
                        .map(|s| match s.parse::<std::net::IpAddr>() {
                            Ok(ip) => Ok(SanType::IpAddress(ip)),
                            Err(_) => Ok(SanType::DnsName(s.as_str().try_into()?)),
                        })
                        .collect::<Result<_, rcgen::Error>>()?;
                    params
                        .distinguished_name
                        .push(DnType::CommonName, "flotilla-hub");
                    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                    params.not_after = rcgen::date_time_ymd(2125, 1, 1);
                    let cert = params.signed_by(&key, &issuer)?;
                    write_file(&serving_key, key.serialize_pem().as_bytes(), 0o600)?;
                    write_file(&serving_crt, cert.pem().as_bytes(), 0o644)?;
                    write_file(&sans_path, wanted.as_bytes(), 0o644)?;
                    (cert.pem(), key.serialize_pem())
                }
            };
        let token_path = dir.join("admin.token");
        let admin_token = match read(&token_path)? {
            Some(t) if !t.trim().is_empty() => t.trim().to_owned(),
            _ => {
                let t = random_token();
                write_file(&token_path, t.as_bytes(), 0o600)?;
                t
            }
        };
        Ok(Self {
            ca_cert_pem,
            ca_key,
            client_ca_cert_pem,
            client_ca_key,
            serving_cert_pem,
            serving_key_pem,
            admin_token,
        })
    }

    /// The CA hash agents pin: `sha256:` and the hex SHA-256 of the CA certificate's DER.
    pub fn ca_hash(&self) -> Result<String, PkiError> {
        let der = pem_to_der(&self.ca_cert_pem)?;
        Ok(format!("sha256:{}", hex::encode(Sha256::digest(&der))))
    }

    /// Signs a client certificate for the key pair of a PKCS#10 request (whose signature must
    /// verify; nothing else of the request is used): subject `common_name` / `org` /
    /// organizational unit `generation`, valid for `ttl` from now, and from a little before now
    /// for clock skew (a tenth of `ttl`, at most 5 minutes, so short lifetimes keep their
    /// shape: agents renew at a fraction of the whole validity).
    /// Returns the certificate PEM.
    pub fn sign_client_csr(
        &self,
        csr_pem: &str,
        common_name: &str,
        org: &str,
        generation: u64,
        ttl: std::time::Duration,
    ) -> Result<String, PkiError> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, org);
        dn.push(DnType::OrganizationalUnitName, generation.to_string());
        sign_client(csr_pem, dn, ttl, &self.ca_cert_pem, &self.ca_key)
    }

    /// Signs a user's client certificate with the client CA for the key of a PKCS#10
    /// request: subject common name `user`, organization `group` (kube-apiserver reads the
    /// user from the common name and the groups from the organizations), valid for `ttl`.
    pub fn sign_user_csr(
        &self,
        csr_pem: &str,
        user: &str,
        group: Option<&str>,
        ttl: std::time::Duration,
    ) -> Result<String, PkiError> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, user);
        if let Some(g) = group {
            dn.push(DnType::OrganizationName, g);
        }
        sign_client(
            csr_pem,
            dn,
            ttl,
            &self.client_ca_cert_pem,
            &self.client_ca_key,
        )
    }
}

/// Signs a client certificate for the key of `csr_pem` with subject `dn`.
fn sign_client(
    csr_pem: &str,
    dn: DistinguishedName,
    ttl: std::time::Duration,
    ca_cert_pem: &str,
    ca_key: &KeyPair,
) -> Result<String, PkiError> {
    let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|e| PkiError::Invalid(format!("the certificate signing request: {e}")))?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let now = jiff::Timestamp::now();
    let at = |secs: i64| {
        time::OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|e| PkiError::Invalid(format!("certificate time: {e}")))
    };
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let skew = (ttl / 10).min(300);
    params.not_before = at(now.as_second().saturating_sub(skew))?;
    params.not_after = at(now.as_second().saturating_add(ttl.max(60)))?;
    let cert = params.signed_by(&csr.public_key, &issuer)?;
    Ok(cert.pem())
}

/// Loads `dir/{stem}.crt` and `dir/{stem}.key`, creating a CA named `common_name` when
/// either is missing.
fn load_or_create_ca(
    dir: &Path,
    stem: &str,
    common_name: &str,
) -> Result<(String, KeyPair), PkiError> {
    let crt = dir.join(format!("{stem}.crt"));
    let key_path = dir.join(format!("{stem}.key"));
    match (read(&crt)?, read(&key_path)?) {
        (Some(cert), Some(key)) => Ok((cert, KeyPair::from_pem(&key)?)),
        _ => {
            let key = KeyPair::generate()?;
            let cert = ca_params(common_name)?.self_signed(&key)?;
            write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
            write_file(&crt, cert.pem().as_bytes(), 0o644)?;
            Ok((cert.pem(), key))
        }
    }
}

/// Decodes the first PEM block's DER bytes.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, PkiError> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|e| PkiError::Invalid(format!("bad PEM: {e}")))
}

/// Writes an admin kubeconfig for `server` (an `https://host:port` URL).
pub fn write_kubeconfig(path: &Path, server: &str, pki: &Pki) -> Result<(), PkiError> {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(pki.ca_cert_pem.as_bytes());
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: flotilla\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: flotilla-admin\n  user:\n    token: {token}\ncontexts:\n- name: flotilla\n  context:\n    cluster: flotilla\n    user: flotilla-admin\n    namespace: default\ncurrent-context: flotilla\n",
        token = pki.admin_token
    );
    if read(path)?.as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    write_file(path, text.as_bytes(), 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reuses_material() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let first = Pki::load_or_create(dir.path(), &sans)?;
        let again = Pki::load_or_create(dir.path(), &sans)?;
        assert_eq!(first.ca_cert_pem, again.ca_cert_pem);
        assert_eq!(first.serving_cert_pem, again.serving_cert_pem);
        assert_eq!(first.admin_token, again.admin_token);
        let mode = fs::metadata(dir.path().join("ca.key"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // New SANs re-issue the serving certificate but keep the CA.
        let more = vec!["localhost".to_owned(), "hub.example".to_owned()];
        let third = Pki::load_or_create(dir.path(), &more)?;
        assert_eq!(first.ca_cert_pem, third.ca_cert_pem);
        assert_ne!(first.serving_cert_pem, third.serving_cert_pem);
        assert!(first.ca_hash()?.starts_with("sha256:"));
        assert_eq!(first.ca_hash()?.len(), "sha256:".len() + 64);
        Ok(())
    }

    #[test]
    fn client_certificates_come_from_requests_and_expire() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let pki = Pki::load_or_create(dir.path(), &["localhost".to_owned()])?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        // What the request asks for beyond its key is ignored.
        params
            .distinguished_name
            .push(DnType::CommonName, "other-cluster");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let csr = params.serialize_request(&key)?.pem()?;
        let ttl = std::time::Duration::from_secs(3600);
        let pem = pki.sign_client_csr(&csr, "m1", "uid-1", 3, ttl)?;
        let der = pem_to_der(&pem)?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)?;
        let subject = cert.subject();
        let first = |it: Option<&x509_parser::x509::AttributeTypeAndValue>| {
            it.and_then(|a| a.as_str().ok()).map(str::to_owned)
        };
        assert_eq!(
            first(subject.iter_common_name().next()).as_deref(),
            Some("m1")
        );
        assert_eq!(
            first(subject.iter_organization().next()).as_deref(),
            Some("uid-1")
        );
        assert_eq!(
            first(subject.iter_organizational_unit().next()).as_deref(),
            Some("3")
        );
        assert!(!cert.is_ca());
        assert_eq!(
            cert.public_key().raw,
            rcgen::PublicKeyData::subject_public_key_info(&key)
        );
        let life = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
        assert_eq!(
            life,
            3600 + 300,
            "one hour plus the 5 minutes of skew allowance"
        );
        // A short lifetime keeps its shape: the skew allowance is a tenth of it.
        let short =
            pki.sign_client_csr(&csr, "m1", "uid-1", 3, std::time::Duration::from_secs(120))?;
        let der = pem_to_der(&short)?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)?;
        let v = cert.validity();
        assert_eq!(v.not_after.timestamp() - v.not_before.timestamp(), 132);
        // A request whose signature does not verify is refused.
        let mut bad = csr.clone().into_bytes();
        let at = bad.len() / 2;
        bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad)?;
        assert!(pki.sign_client_csr(&bad, "m1", "uid-1", 0, ttl).is_err());
        Ok(())
    }
}
