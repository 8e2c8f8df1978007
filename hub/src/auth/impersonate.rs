//! Impersonation (`kubectl --as`, `--as-group`, `--as-uid`): the `Impersonate-*` headers,
//! each part authorized with the `impersonate` verb as kube-apiserver does.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use flotilla_rbac::Request;

use super::{ANONYMOUS, AUTHENTICATED, SERVICE_ACCOUNT_PREFIX, UNAUTHENTICATED, UserInfo};
use crate::api::error::ApiError;

/// Headers with more values than this are refused.
pub const MAX_VALUES: usize = 64;

/// Who a request asks to act as.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Impersonation {
    /// `Impersonate-User`.
    pub user: String,
    /// `Impersonate-Uid`.
    pub uid: Option<String>,
    /// `Impersonate-Group` (repeatable).
    pub groups: Vec<String>,
    /// `Impersonate-Extra-<key>` (repeatable).
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The impersonation `headers` ask for, if any.
pub fn requested(headers: &HeaderMap) -> Result<Option<Impersonation>, ApiError> {
    let mut imp = Impersonation::default();
    let mut user = None;
    let mut count = 0usize;
    for (name, value) in headers {
        let name = name.as_str();
        let lower = name.to_ascii_lowercase();
        if !lower.starts_with("impersonate-") {
            continue;
        }
        count += 1;
        if count > MAX_VALUES {
            return Err(ApiError::bad_request("too many Impersonate headers"));
        }
        let value = value
            .to_str()
            .map_err(|_| ApiError::bad_request(format!("header {name} is not text")))?
            .to_owned();
        match lower.as_str() {
            "impersonate-user" => user = Some(value),
            "impersonate-uid" => imp.uid = Some(value),
            "impersonate-group" => imp.groups.push(value),
            other => {
                let key = other.trim_start_matches("impersonate-extra-");
                if key == other || key.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "unknown impersonation header {name}"
                    )));
                }
                // Keys are percent-encoded in header names, as kube-apiserver reads them.
                let key = percent_decode(key);
                imp.extra.entry(key).or_default().push(value);
            }
        }
    }
    match user {
        Some(u) if !u.is_empty() => {
            imp.user = u;
            Ok(Some(imp))
        }
        _ if count > 0 => Err(ApiError::bad_request(
            "requested impersonation of groups, uid or extra without impersonating a user",
        )),
        _ => Ok(None),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(h, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn impersonate(
    group: &str,
    resource: &str,
    sub: Option<&str>,
    ns: Option<&str>,
    name: &str,
) -> Request {
    Request::Resource {
        verb: "impersonate".into(),
        api_group: group.into(),
        resource: resource.into(),
        subresource: sub.map(str::to_owned),
        namespace: ns.map(str::to_owned),
        name: Some(name.to_owned()),
    }
}

/// What the impersonator must be allowed, one request per part.
pub fn checks(imp: &Impersonation) -> Vec<Request> {
    let mut out = Vec::new();
    match imp
        .user
        .strip_prefix(SERVICE_ACCOUNT_PREFIX)
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, name)) => out.push(impersonate("", "serviceaccounts", None, Some(ns), name)),
        None => out.push(impersonate("", "users", None, None, &imp.user)),
    }
    for g in &imp.groups {
        out.push(impersonate("", "groups", None, None, g));
    }
    if let Some(uid) = &imp.uid {
        out.push(impersonate(
            "authentication.k8s.io",
            "uids",
            None,
            None,
            uid,
        ));
    }
    for (k, vals) in &imp.extra {
        for v in vals {
            out.push(impersonate(
                "authentication.k8s.io",
                "userextras",
                Some(k),
                None,
                v,
            ));
        }
    }
    out
}

/// The user the request then acts as.
pub fn user(imp: &Impersonation) -> UserInfo {
    let mut groups = imp.groups.clone();
    if let Some((ns, _)) = imp
        .user
        .strip_prefix(SERVICE_ACCOUNT_PREFIX)
        .and_then(|r| r.split_once(':'))
    {
        for g in [
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{ns}"),
        ] {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    let implied = if imp.user == ANONYMOUS {
        UNAUTHENTICATED
    } else {
        AUTHENTICATED
    };
    if !groups.iter().any(|g| g == implied) {
        groups.push(implied.to_owned());
    }
    UserInfo {
        name: imp.user.clone(),
        uid: imp.uid.clone().unwrap_or_default(),
        groups,
        extra: imp.extra.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    #[test]
    fn reads_the_headers_kubectl_sends() -> Result<(), ApiError> {
        assert_eq!(requested(&headers(&[("Accept", "x")]))?, None);
        let imp = requested(&headers(&[
            ("Impersonate-User", "alice"),
            ("Impersonate-Group", "team-a"),
            ("Impersonate-Group", "devs"),
            ("Impersonate-Uid", "u1"),
            ("Impersonate-Extra-Scopes%2Fread", "x"),
        ]))?
        .expect("impersonation");
        assert_eq!(imp.user, "alice");
        assert_eq!(imp.groups, vec!["team-a", "devs"]);
        assert_eq!(imp.extra.get("scopes/read"), Some(&vec!["x".to_owned()]));
        let checks = checks(&imp);
        assert_eq!(checks.len(), 5);
        assert_eq!(checks[0], impersonate("", "users", None, None, "alice"));
        assert_eq!(
            checks[3],
            impersonate("authentication.k8s.io", "uids", None, None, "u1")
        );
        assert_eq!(
            user(&imp).groups,
            vec!["team-a", "devs", "system:authenticated"]
        );
        // Groups without a user are refused.
        assert!(requested(&headers(&[("Impersonate-Group", "system:masters")])).is_err());
        Ok(())
    }

    #[test]
    fn service_accounts_are_checked_in_their_namespace() -> Result<(), ApiError> {
        let imp = requested(&headers(&[(
            "Impersonate-User",
            "system:serviceaccount:team-a:ci",
        )]))?
        .expect("impersonation");
        assert_eq!(
            checks(&imp),
            vec![impersonate(
                "",
                "serviceaccounts",
                None,
                Some("team-a"),
                "ci"
            )]
        );
        assert_eq!(
            user(&imp).groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:team-a",
                "system:authenticated"
            ]
        );
        Ok(())
    }
}
