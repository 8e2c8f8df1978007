//! Who is asking: authentication of API requests.
//!
//! A request is authenticated, in this order, by a client certificate signed by the hub's
//! client CA (user from the common name, groups from the organizations), by a bearer token
//! (the admin token, a token of `--token-auth-file`, or a ServiceAccount token signed by the
//! hub), or else it is anonymous (`system:anonymous`, group `system:unauthenticated`).
//! A bearer token that matches nothing is refused with 401 even when a certificate is
//! presented, so a mistyped token never silently runs as someone else.

pub mod attributes;
pub mod authorizer;
pub mod certs;
pub mod csr;
pub mod escalation;
pub mod impersonate;
pub mod jwt;
pub mod legacy_tokens;
pub mod reviews;
pub mod token_file;
pub mod token_request;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderMap, header};

use crate::api::error::ApiError;
use crate::api::objects::Objects;

/// Every authenticated user is in this group.
pub const AUTHENTICATED: &str = "system:authenticated";
/// Anonymous requests are in this group.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user name of anonymous requests.
pub const ANONYMOUS: &str = "system:anonymous";
/// Members of this group may do everything.
pub const MASTERS: &str = "system:masters";
/// The user of the admin token and the admin kubeconfig.
pub const ADMIN_USER: &str = "flotilla-admin";
/// The prefix of ServiceAccount user names.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

pub use flotilla_rbac::{Request, UserInfo};

/// The anonymous user.
pub fn anonymous() -> UserInfo {
    UserInfo {
        name: ANONYMOUS.into(),
        groups: vec![UNAUTHENTICATED.into()],
        ..Default::default()
    }
}

/// Whether `user` is the anonymous user.
pub fn is_anonymous(user: &UserInfo) -> bool {
    user.name == ANONYMOUS
}

/// What the server knows of a connection, attached to each of its requests: the user its
/// TLS client certificate proves, and the client's address.
#[derive(Clone, Debug, Default)]
pub struct PeerIdentity {
    /// The user of a verified client certificate.
    pub user: Option<UserInfo>,
    /// The client's address.
    pub addr: Option<std::net::SocketAddr>,
}

/// Checks credentials.
pub struct Authenticator {
    admin_token: String,
    token_file: token_file::TokenFile,
    keys: Arc<jwt::TokenKeys>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("token_file", &self.token_file)
            .finish_non_exhaustive()
    }
}

fn admin() -> UserInfo {
    UserInfo {
        name: ADMIN_USER.into(),
        uid: String::new(),
        groups: vec![MASTERS.into(), AUTHENTICATED.into()],
        extra: BTreeMap::new(),
    }
}

/// The user of a ServiceAccount.
pub fn service_account_user(namespace: &str, name: &str, uid: &str) -> UserInfo {
    UserInfo {
        name: format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"),
        uid: uid.into(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
            AUTHENTICATED.into(),
        ],
        extra: BTreeMap::new(),
    }
}

impl Authenticator {
    /// An authenticator for the admin token, static tokens and the hub's ServiceAccount
    /// tokens.
    pub fn new(
        admin_token: String,
        token_file: token_file::TokenFile,
        keys: Arc<jwt::TokenKeys>,
    ) -> Self {
        Self {
            admin_token,
            token_file,
            keys,
        }
    }

    /// The keys that sign ServiceAccount tokens.
    pub fn keys(&self) -> &Arc<jwt::TokenKeys> {
        &self.keys
    }

    /// Who sent a request with `headers` on a connection proven to be `peer`.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Option<&UserInfo>,
        objects: &Objects,
    ) -> Result<UserInfo, ApiError> {
        let Some(auth) = headers.get(header::AUTHORIZATION) else {
            return Ok(peer.cloned().unwrap_or_else(anonymous));
        };
        let token = auth
            .to_str()
            .ok()
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        self.authenticate_token(token, objects).await
    }

    /// Who a bearer token stands for.
    pub async fn authenticate_token(
        &self,
        token: &str,
        objects: &Objects,
    ) -> Result<UserInfo, ApiError> {
        if crate::api::constant_time_eq(token.as_bytes(), self.admin_token.as_bytes()) {
            return Ok(admin());
        }
        if let Some(u) = self.token_file.user(token) {
            return Ok(u);
        }
        if token.matches('.').count() == 2 {
            return self.service_account(token, objects).await;
        }
        Err(ApiError::unauthorized())
    }

    async fn service_account(&self, token: &str, objects: &Objects) -> Result<UserInfo, ApiError> {
        let now = jiff::Timestamp::now().as_second();
        let claims = self.keys.verify(token, now).map_err(|e| {
            tracing::debug!(error = %e, "ServiceAccount token refused");
            ApiError::unauthorized()
        })?;
        let k = &claims.kube;
        let uid_of = |plural: &'static str, name: String| async move {
            let res = objects.registry().get("", "v1", plural)?;
            let obj = objects.get(&res, Some(&k.namespace), &name).await.ok()?;
            crate::api::meta::str_at(&obj, "/metadata/uid").map(str::to_owned)
        };
        // The token is bound: it dies with the ServiceAccount (or legacy Secret) it names.
        let sa_uid = uid_of("serviceaccounts", k.serviceaccount.name.clone()).await;
        if sa_uid.as_deref() != Some(k.serviceaccount.uid.as_str()) {
            return Err(ApiError::unauthorized());
        }
        if let Some(secret) = &k.secret {
            let uid = uid_of("secrets", secret.name.clone()).await;
            if uid.as_deref() != Some(secret.uid.as_str()) {
                return Err(ApiError::unauthorized());
            }
        }
        Ok(service_account_user(
            &k.namespace,
            &k.serviceaccount.name,
            &k.serviceaccount.uid,
        ))
    }
}
