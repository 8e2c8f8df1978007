//! Users proven by TLS client certificates: the user is the certificate's common name, the
//! groups its organizations, as kube-apiserver does.

use super::{AUTHENTICATED, UserInfo};

/// The user a verified client certificate (DER) names, if it names one.
pub fn user_from_cert(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .filter(|n| !n.is_empty())?
        .to_owned();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(str::to_owned)
        .collect();
    groups.push(AUTHENTICATED.to_owned());
    Some(UserInfo {
        name,
        groups,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    #[test]
    fn common_name_is_the_user_and_organizations_the_groups() -> Result<(), rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CommonName, "alice");
        p.distinguished_name
            .push(DnType::OrganizationName, "team-a");
        let cert = p.self_signed(&key)?;
        let u = user_from_cert(cert.der()).expect("a user");
        assert_eq!(u.name, "alice");
        assert_eq!(u.groups, vec!["team-a", AUTHENTICATED]);
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::OrganizationName, "team-a");
        let cert = p.self_signed(&key)?;
        assert!(user_from_cert(cert.der()).is_none(), "no common name");
        assert!(user_from_cert(b"junk").is_none());
        Ok(())
    }
}
