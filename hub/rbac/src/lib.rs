//! Kubernetes RBAC authorization semantics over plain JSON objects.
//!
//! The crate mirrors what kube-apiserver does with `rbac.authorization.k8s.io/v1` objects:
//! matching a request against PolicyRules ([`PolicyRule::allows`]), resolving bindings into
//! rules ([`Policy::authorize`], [`Policy::rules_for`]), the clusterrole-aggregation controller
//! ([`aggregate`]), the escalation check ([`covers`]), the default roles ([`default_objects`]) and
//! the 403 message ([`forbidden_message`]).
//!
//! Everything here is pure: no I/O, no async, deterministic output order.

use std::collections::BTreeMap;

mod aggregate;
mod defaults;
mod escalation;
mod message;
mod policy;
mod rule;

pub use aggregate::aggregate;
pub use defaults::{AUTOUPDATE_ANNOTATION, BOOTSTRAPPING_LABEL, default_objects};
pub use escalation::{covers, uncovered};
pub use message::forbidden_message;
pub use policy::Policy;
pub use rule::PolicyRule;

/// The group whose members are allowed everything (kube-apiserver's privileged-group authorizer).
pub const SYSTEM_MASTERS: &str = "system:masters";

/// The API group of the RBAC kinds.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Who is asking (as kube-apiserver's user.Info).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name, e.g. `alice` or `system:serviceaccount:team-a:builder`.
    pub name: String,
    /// A unique identifier of the user, if the authenticator knows one.
    pub uid: String,
    /// The groups the user belongs to, e.g. `system:authenticated`.
    pub groups: Vec<String>,
    /// Extra authenticator-provided attributes.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What is asked: kube-apiserver's authorizer.Attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A request on an API resource.
    Resource {
        /// The verb: get, list, watch, create, update, patch, delete, deletecollection, or another.
        verb: String,
        /// The API group, `""` for the core group.
        api_group: String,
        /// The resource (plural, lower case), e.g. `deployments`.
        resource: String,
        /// The subresource, e.g. `status` or `exec`.
        subresource: Option<String>,
        /// The namespace; `None` (or empty) for cluster-scoped requests and cluster-wide lists.
        namespace: Option<String>,
        /// The object name; `None` for list, watch of a collection, create without a name.
        name: Option<String>,
    },
    /// A request on a path outside the resource API, e.g. `/healthz`.
    NonResource {
        /// The verb, the lower-case HTTP method (`get`, `post`, ...).
        verb: String,
        /// The request path.
        path: String,
    },
}

impl UserInfo {
    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

impl Request {
    /// The verb of the request.
    pub fn verb(&self) -> &str {
        match self {
            Request::Resource { verb, .. } | Request::NonResource { verb, .. } => verb,
        }
    }

    /// The namespace of a resource request, `""` when there is none (as kube's GetNamespace).
    pub fn namespace(&self) -> &str {
        match self {
            Request::Resource { namespace, .. } => namespace.as_deref().unwrap_or(""),
            Request::NonResource { .. } => "",
        }
    }
}

/// The outcome of [`Policy::authorize`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The request is allowed; the reason names the binding and role that allowed it.
    Allow {
        /// E.g. `RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "u"`.
        reason: String,
    },
    /// No rule allows the request (kube's NoOpinion); the reason lists resolution errors, if any.
    Deny {
        /// Empty, or `RBAC: ` followed by the errors met while resolving bindings.
        reason: String,
    },
}

impl Decision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The reason, allowed or not.
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow { reason } | Decision::Deny { reason } => reason,
        }
    }
}

/// The rules that apply to a user in a namespace, as a SelfSubjectRulesReview status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RulesReview {
    /// Rules with resources (verbs, apiGroups, resources, resourceNames).
    pub resource_rules: Vec<PolicyRule>,
    /// Rules with non-resource URLs (verbs, nonResourceURLs).
    pub non_resource_rules: Vec<PolicyRule>,
    /// True when some bindings could not be resolved, so the lists may miss rules.
    pub incomplete: bool,
    /// The errors met while resolving bindings, empty when there were none.
    pub evaluation_error: String,
}

/// Why an RBAC object could not be taken into a [`Policy`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RbacError {
    /// The object is not a Role, ClusterRole, RoleBinding or ClusterRoleBinding.
    #[error(
        "unsupported kind {0:?}: expected Role, ClusterRole, RoleBinding or ClusterRoleBinding"
    )]
    UnsupportedKind(String),
    /// The apiVersion is not in the rbac.authorization.k8s.io group.
    #[error("unsupported apiVersion {0:?}: expected rbac.authorization.k8s.io/v1")]
    UnsupportedApiVersion(String),
    /// A required field is missing or empty.
    #[error("{kind} is missing {field}")]
    MissingField {
        /// The kind of the object.
        kind: String,
        /// The JSON path of the field.
        field: &'static str,
    },
    /// A field has the wrong shape.
    #[error("{kind}: invalid {field}: {message}")]
    Invalid {
        /// The kind of the object.
        kind: String,
        /// The JSON path of the field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}
